//! Shared helpers for nats-mini's end-to-end tests: starting embedded servers, a raw-protocol
//! TCP client with timeouts on every read, and connecting real `async-nats` clients.
//!
//! Every helper that waits does so under a timeout and panics with what it saw so far, so a
//! broken server makes a test fail with a readable message instead of hanging.

pub mod cluster;
pub mod netns;
pub mod pki;
pub mod process;

use nats_mini::{Server, ServerBuilder};
use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The default wait for anything that should happen "at once".
pub const T: Duration = Duration::from_secs(5);

/// A short wait used to check that nothing (more) arrives.
pub const QUIET: Duration = Duration::from_millis(300);

/// Starts an embedded server on loopback with an ephemeral port and default options.
pub async fn start_default() -> Server {
    start(Server::builder()).await
}

/// Starts a server from `builder` and panics (with the error) if it cannot start.
///
/// `start` returns only after the startup self-check's connection is gone, so a server starts
/// with zero connections and subscriptions; this asserts it.
pub async fn start(builder: ServerBuilder) -> Server {
    let server = tokio::time::timeout(Duration::from_secs(10), builder.start())
        .await
        .expect("server start timed out")
        .expect("server failed to start");
    assert_eq!(
        server.num_connections(),
        0,
        "self-check connection left over"
    );
    assert_eq!(
        server.num_subscriptions(),
        0,
        "self-check subscription left over"
    );
    server
}

/// Awaits `fut` for at most `d`, panicking with `what` on timeout.
pub async fn within<F: Future>(d: Duration, what: &str, fut: F) -> F::Output {
    match tokio::time::timeout(d, fut).await {
        Ok(v) => v,
        Err(_) => panic!("timed out after {d:?} waiting for {what}"),
    }
}

/// Connects a real `async-nats` client with default options.
pub async fn nats_connect(server: &Server) -> async_nats::Client {
    nats_connect_with(server, async_nats::ConnectOptions::new()).await
}

/// Connects a real `async-nats` client with the given options.
pub async fn nats_connect_with(
    server: &Server,
    opts: async_nats::ConnectOptions,
) -> async_nats::Client {
    within(T, "async-nats connect", opts.connect(server.client_url()))
        .await
        .expect("async-nats connect failed")
}

/// A round trip through the server: when it returns, everything `client` sent before has been
/// processed (subscriptions registered, messages routed). async-nats' `flush` only writes the
/// client's buffer to the socket; this waits for the client's own message to come back.
/// Needs echo (the default); see [`nats_sync_no_echo`] otherwise.
pub async fn nats_sync(client: &async_nats::Client) {
    let inbox = client.new_inbox();
    let mut sub = client
        .subscribe(inbox.clone())
        .await
        .expect("sync subscribe");
    // Removed by the server on delivery, so it never shows in subscription counts afterwards.
    sub.unsubscribe_after(1).await.expect("sync unsubscribe");
    client
        .publish(inbox, bytes::Bytes::new())
        .await
        .expect("sync publish");
    within(
        T,
        "a round trip through the server",
        futures::StreamExt::next(&mut sub),
    )
    .await
    .expect("sync subscription ended");
}

/// [`nats_sync`] for a client without echo: a request nobody serves comes back as a
/// no-responders status once the server has processed everything sent before it.
pub async fn nats_sync_no_echo(client: &async_nats::Client) {
    let subject = format!("_e2e.nobody.{}", client.new_inbox());
    let r = within(
        T,
        "a no-responders round trip",
        client.request(subject, "".into()),
    )
    .await;
    match r {
        Err(e) if e.kind() == async_nats::RequestErrorKind::NoResponders => {}
        other => panic!("expected a no-responders reply, got {other:?}"),
    }
}

/// Shows bytes readably in assertion messages.
pub fn show(b: &[u8]) -> String {
    String::from_utf8_lossy(b)
        .replace('\r', "\\r")
        .replace('\n', "\\n\n")
}

/// Whether `hay` contains `needle`.
pub fn contains(hay: &[u8], needle: &[u8]) -> bool {
    find(hay, needle).is_some()
}

/// The first position of `needle` in `hay`.
pub fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() {
        return Some(0);
    }
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Counts (possibly overlapping) occurrences of `needle` in `hay`.
pub fn count(hay: &[u8], needle: &[u8]) -> usize {
    hay.windows(needle.len()).filter(|w| *w == needle).count()
}

/// What a raw read produced.
#[derive(Debug, PartialEq, Eq)]
enum ReadOutcome {
    Data,
    /// EOF or connection reset: the server closed the connection.
    Closed,
}

/// A raw protocol client: a TCP stream plus the bytes received and not yet consumed.
#[derive(Debug)]
pub struct Raw {
    pub stream: TcpStream,
    /// Received bytes not yet consumed by an `expect`/`read_until`.
    pub buf: Vec<u8>,
    /// Set once the server closed the connection (EOF or reset).
    pub closed: bool,
}

impl Raw {
    /// Opens a TCP connection without reading anything.
    pub async fn connect(addr: SocketAddr) -> Raw {
        let stream = within(T, "TCP connect", TcpStream::connect(addr))
            .await
            .expect("TCP connect failed");
        stream.set_nodelay(true).ok();
        Raw {
            stream,
            buf: Vec::new(),
            closed: false,
        }
    }

    /// Opens a connection and reads the server's INFO line, checking its framing
    /// (`INFO {json} \r\n`). Returns the client and the parsed INFO JSON.
    pub async fn connect_info(addr: SocketAddr) -> (Raw, serde_json::Value) {
        let mut raw = Raw::connect(addr).await;
        let info = raw.read_info().await;
        (raw, info)
    }

    /// Reads one `INFO {json} \r\n` line and returns the parsed JSON.
    pub async fn read_info(&mut self) -> serde_json::Value {
        let line = self.read_line(T).await;
        parse_info_line(&line)
    }

    /// Sends bytes in one write.
    pub async fn send(&mut self, bytes: impl AsRef<[u8]>) {
        let b = bytes.as_ref();
        within(T, "write", self.stream.write_all(b))
            .await
            .unwrap_or_else(|e| panic!("write of {:?} failed: {e}", show(b)));
    }

    /// Sends bytes without panicking on a write error (the server may have closed already).
    pub async fn try_send(&mut self, bytes: impl AsRef<[u8]>) -> std::io::Result<()> {
        match tokio::time::timeout(T, self.stream.write_all(bytes.as_ref())).await {
            Ok(r) => r,
            Err(_) => Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "write timed out",
            )),
        }
    }

    /// One read into `buf`, bounded by `deadline`. `None` on timeout.
    async fn read_some(&mut self, deadline: tokio::time::Instant) -> Option<ReadOutcome> {
        if self.closed {
            return Some(ReadOutcome::Closed);
        }
        // On the heap: a 64 KiB array held across this await makes every future that reads
        // (and every test awaiting one) that much larger, and debug builds copy those futures
        // around on the stack until a long test overflows it.
        let mut chunk = vec![0u8; 64 * 1024];
        match tokio::time::timeout_at(deadline, self.stream.read(&mut chunk)).await {
            Err(_) => None,
            Ok(Ok(0)) => {
                self.closed = true;
                Some(ReadOutcome::Closed)
            }
            Ok(Ok(n)) => {
                self.buf.extend_from_slice(&chunk[..n]);
                Some(ReadOutcome::Data)
            }
            Ok(Err(e))
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::ConnectionAborted
                ) =>
            {
                self.closed = true;
                Some(ReadOutcome::Closed)
            }
            Ok(Err(e)) => panic!("read failed: {e}"),
        }
    }

    /// Reads until the received bytes contain `needle`; returns everything up to and including
    /// it and keeps the rest buffered. Panics on timeout or close, showing what arrived.
    pub async fn read_until(&mut self, needle: &[u8], d: Duration) -> Vec<u8> {
        let deadline = tokio::time::Instant::now() + d;
        loop {
            if let Some(pos) = find(&self.buf, needle) {
                let rest = self.buf.split_off(pos + needle.len());
                return std::mem::replace(&mut self.buf, rest);
            }
            match self.read_some(deadline).await {
                Some(ReadOutcome::Data) => {}
                Some(ReadOutcome::Closed) => panic!(
                    "connection closed while waiting for {:?}; received:\n{}",
                    show(needle),
                    show(&self.buf)
                ),
                None => panic!(
                    "timed out after {d:?} waiting for {:?}; received:\n{}",
                    show(needle),
                    show(&self.buf)
                ),
            }
        }
    }

    /// Reads one line (up to and including `\r\n`).
    pub async fn read_line(&mut self, d: Duration) -> Vec<u8> {
        self.read_until(b"\r\n", d).await
    }

    /// Reads exactly `want.len()` bytes and asserts they equal `want`.
    pub async fn expect(&mut self, want: &[u8]) {
        let deadline = tokio::time::Instant::now() + T;
        while self.buf.len() < want.len() {
            match self.read_some(deadline).await {
                Some(ReadOutcome::Data) => {}
                Some(ReadOutcome::Closed) | None => break,
            }
        }
        let n = want.len().min(self.buf.len());
        let got: Vec<u8> = self.buf.drain(..n).collect();
        assert_eq!(
            show(&got),
            show(want),
            "unexpected bytes from the server (closed: {})",
            self.closed
        );
    }

    /// Reads whatever arrives within `d` (without requiring a close) and returns it together
    /// with any bytes already buffered.
    pub async fn read_for(&mut self, d: Duration) -> Vec<u8> {
        let deadline = tokio::time::Instant::now() + d;
        while let Some(ReadOutcome::Data) = self.read_some(deadline).await {}
        std::mem::take(&mut self.buf)
    }

    /// Reads until the server closes the connection (EOF or reset) within `d`; returns every
    /// byte received (including bytes already buffered). Panics if it stays open.
    pub async fn expect_closed(&mut self, d: Duration) -> Vec<u8> {
        let deadline = tokio::time::Instant::now() + d;
        loop {
            match self.read_some(deadline).await {
                Some(ReadOutcome::Data) => {}
                Some(ReadOutcome::Closed) => return std::mem::take(&mut self.buf),
                None => panic!(
                    "the server did not close the connection within {d:?}; received:\n{}",
                    show(&self.buf)
                ),
            }
        }
    }

    /// Asserts the connection is open and in sync: `PING` is answered by exactly `PONG`
    /// (nothing else pending before it).
    pub async fn expect_pong(&mut self) {
        self.send(b"PING\r\n").await;
        self.expect(b"PONG\r\n").await;
    }

    /// Like [`Raw::expect_pong`], but server `PING`s arriving before the `PONG` are allowed
    /// (and answered); anything else is not.
    pub async fn expect_pong_ignoring_pings(&mut self) {
        self.send(b"PING\r\n").await;
        let got = self.read_until(b"PONG\r\n", T).await;
        let before = &got[..got.len() - b"PONG\r\n".len()];
        assert!(
            before.chunks(6).all(|c| c == b"PING\r\n") && before.len() % 6 == 0,
            "unexpected bytes before PONG:\n{}",
            show(before)
        );
        for _ in 0..before.len() / 6 {
            self.send(b"PONG\r\n").await;
        }
    }

    /// Asserts nothing arrives within `d` and the connection stays open.
    pub async fn expect_silence(&mut self, d: Duration) {
        let got = self.read_for(d).await;
        assert!(
            got.is_empty() && !self.closed,
            "expected silence; received (closed: {}):\n{}",
            self.closed,
            show(&got)
        );
    }
}

/// Parses an `INFO {json} \r\n` line, asserting the exact framing.
pub fn parse_info_line(line: &[u8]) -> serde_json::Value {
    assert!(
        line.starts_with(b"INFO {") && line.ends_with(b"} \r\n"),
        "INFO line not framed as `INFO {{json}} \\r\\n`: {:?}",
        show(line)
    );
    serde_json::from_slice(&line[5..line.len() - 3])
        .unwrap_or_else(|e| panic!("INFO JSON does not parse ({e}): {}", show(line)))
}

/// Raw-connects, reads INFO, sends `CONNECT <json>` and then `PING`, and waits for the `PONG`
/// (consuming everything before it, such as `+OK`). Returns a connection ready for tests.
pub async fn raw_connected(addr: SocketAddr, connect_json: &str) -> Raw {
    let (mut raw, _) = Raw::connect_info(addr).await;
    raw.send(format!("CONNECT {connect_json}\r\nPING\r\n"))
        .await;
    raw.read_until(b"PONG\r\n", T).await;
    raw
}

/// Waits until `cond` holds, polling every 10 ms, for at most `d`.
pub async fn eventually(d: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + d;
    while !cond() {
        if tokio::time::Instant::now() >= deadline {
            panic!("timed out after {d:?} waiting until {what}");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
