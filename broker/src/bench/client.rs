//! A minimal NATS client for benchmarking, over raw tokio TCP streams (or TLS on them): large
//! batched writes and a reader that frames messages in place in one big buffer (nothing is
//! copied or allocated per message). It speaks only what the scenarios need, to any NATS server.

use super::args::ServerUrl;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::OnceLock;
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream, lookup_host};

/// A connection's read and write halves: plain TCP or TLS, behind one type (a virtual call per
/// read or write, which moves many messages).
pub type Reader = Box<dyn AsyncRead + Send + Unpin>;
pub type Writer = Box<dyn AsyncWrite + Send + Unpin>;

/// TLS to one server: how to verify it and which name to check its certificate against.
#[derive(Clone)]
pub struct TlsTarget {
    pub connector: tokio_rustls::TlsConnector,
    pub name: rustls_pki_types::ServerName<'static>,
}

impl std::fmt::Debug for TlsTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TlsTarget({:?})", self.name)
    }
}

/// How long a handshake step may take.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Nanoseconds since a process-wide epoch: publishers stamp payloads with it and subscribers
/// in the same process subtract.
pub fn now_ns() -> u64 {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    let e = *EPOCH.get_or_init(Instant::now);
    u64::try_from(e.elapsed().as_nanos()).unwrap_or(u64::MAX)
}

/// Credentials for CONNECT (the URL's win over the flags'), and TLS when the server is
/// reached over it.
#[derive(Debug, Clone, Default)]
pub struct Creds {
    pub user: Option<String>,
    pub pass: Option<String>,
    pub token: Option<String>,
    pub tls: Option<TlsTarget>,
}

impl Creds {
    pub fn for_url(
        url: &ServerUrl,
        user: &Option<String>,
        pass: &Option<String>,
        token: &Option<String>,
    ) -> Creds {
        Creds {
            user: url.user.clone().or_else(|| user.clone()),
            pass: url.pass.clone().or_else(|| pass.clone()),
            token: url.token.clone().or_else(|| token.clone()),
            tls: None,
        }
    }
}

fn err(msg: impl Into<String>) -> io::Error {
    io::Error::other(msg.into())
}

/// Resolves a server URL to socket addresses.
pub async fn resolve(url: &ServerUrl) -> io::Result<SocketAddr> {
    lookup_host(url.addr())
        .await?
        .next()
        .ok_or_else(|| err(format!("cannot resolve {}", url.addr())))
}

/// Opens a TCP connection, from `local` (port chosen by the kernel) when given.
pub async fn tcp_connect(addr: SocketAddr, local: Option<IpAddr>) -> io::Result<TcpStream> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    if let Some(ip) = local {
        socket.bind(SocketAddr::new(ip, 0))?;
    }
    let stream = socket.connect(addr).await?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// A connected, handshaken client: INFO read, CONNECT sent, PING answered.
pub struct Conn {
    pub rd: Reader,
    pub wr: Writer,
    /// Bytes read past the handshake's PONG, and the frame parser.
    pub frames: Frames,
    pub info: serde_json::Value,
}

/// Connects and handshakes: reads INFO (then upgrades to TLS when `creds.tls` says so, as the
/// protocol orders it), sends CONNECT (no echo, not verbose) and a PING, and waits for the PONG.
/// Fails on `-ERR` (authorization) or when the server requires TLS the client was not given.
/// `linger0`: reset the connection on close instead of leaving it in TIME_WAIT (idle-connection
/// runs open thousands).
pub async fn connect(
    addr: SocketAddr,
    creds: &Creds,
    local: Option<IpAddr>,
    name: &str,
    buf_size: usize,
    linger0: bool,
) -> io::Result<Conn> {
    let mut stream = tokio::time::timeout(HANDSHAKE_TIMEOUT, tcp_connect(addr, local))
        .await
        .map_err(|_| err(format!("connect to {addr} timed out")))??;
    if linger0 {
        // Deprecated because a non-zero linger blocks the thread on drop; zero never does.
        #[allow(deprecated)]
        stream.set_linger(Some(Duration::ZERO))?;
    }
    let (rd, wr, info_line): (Reader, Writer, Option<Vec<u8>>) = match &creds.tls {
        None => {
            let (rd, wr) = stream.into_split();
            (Box::new(rd), Box::new(wr), None)
        }
        Some(tls) => {
            let line = tokio::time::timeout(HANDSHAKE_TIMEOUT, read_plain_line(&mut stream))
                .await
                .map_err(|_| err(format!("no INFO from {addr}")))??;
            let s = tokio::time::timeout(
                HANDSHAKE_TIMEOUT,
                tls.connector.connect(tls.name.clone(), stream),
            )
            .await
            .map_err(|_| err(format!("TLS handshake with {addr} timed out")))??;
            let (rd, wr) = tokio::io::split(s);
            (Box::new(rd), Box::new(wr), Some(line))
        }
    };
    let mut c = Conn {
        rd,
        wr,
        frames: Frames::new(buf_size),
        info: serde_json::Value::Null,
    };
    tokio::time::timeout(HANDSHAKE_TIMEOUT, c.handshake(creds, name, info_line))
        .await
        .map_err(|_| err(format!("handshake with {addr} timed out")))??;
    Ok(c)
}

/// Reads the plain-text INFO line a server sends before the TLS upgrade, byte by byte (nothing
/// past it may be consumed: the TLS handshake follows).
async fn read_plain_line(s: &mut TcpStream) -> io::Result<Vec<u8>> {
    let mut line = Vec::with_capacity(512);
    let mut b = [0u8; 1];
    while !line.ends_with(b"\n") {
        if s.read(&mut b).await? == 0 {
            return Err(err("server closed the connection before INFO"));
        }
        line.push(b[0]);
        if line.len() > 64 * 1024 {
            return Err(err("INFO line too long"));
        }
    }
    line.truncate(line.len() - 1);
    if line.ends_with(b"\r") {
        line.pop();
    }
    Ok(line)
}

impl Conn {
    async fn handshake(
        &mut self,
        creds: &Creds,
        name: &str,
        info_line: Option<Vec<u8>>,
    ) -> io::Result<()> {
        let info = match info_line {
            Some(line) => line,
            None => loop {
                if let Some(line) = self.frames.take_line() {
                    break line;
                }
                if self.frames.fill(&mut self.rd).await? == 0 {
                    return Err(err("server closed the connection before INFO"));
                }
            },
        };
        let Some(json) = info.strip_prefix(b"INFO ") else {
            return Err(err(format!(
                "expected INFO, got {:?}",
                String::from_utf8_lossy(&info)
            )));
        };
        self.info =
            serde_json::from_slice(json.trim_ascii()).map_err(|e| err(format!("bad INFO: {e}")))?;
        if self.info.get("tls_required").and_then(|v| v.as_bool()) == Some(true)
            && creds.tls.is_none()
        {
            return Err(err(
                "the server requires TLS: use a tls:// URL and --tlsca (the CA to verify it)",
            ));
        }
        let mut connect = serde_json::json!({
            "verbose": false,
            "pedantic": false,
            "echo": false,
            "name": name,
            "lang": "rust-bench",
            "version": env!("CARGO_PKG_VERSION"),
            "protocol": 1,
            "headers": false,
            "no_responders": false,
        });
        if let Some(u) = &creds.user {
            connect["user"] = u.clone().into();
        }
        if let Some(p) = &creds.pass {
            connect["pass"] = p.clone().into();
        }
        if let Some(t) = &creds.token {
            connect["auth_token"] = t.clone().into();
        }
        let line = format!("CONNECT {connect}\r\nPING\r\n");
        self.wr.write_all(line.as_bytes()).await?;
        self.await_pong().await
    }

    /// Reads until a PONG, answering PINGs; fails on `-ERR` or close. Messages that arrive
    /// meanwhile are counted into nothing: call this before anything is published.
    pub async fn await_pong(&mut self) -> io::Result<()> {
        loop {
            while let Some(f) = self.frames.next_frame() {
                match f.map_err(err)? {
                    Frame::Pong => return Ok(()),
                    Frame::Ping => self.wr.write_all(b"PONG\r\n").await?,
                    Frame::Err(e) => {
                        return Err(err(format!("server error: {}", String::from_utf8_lossy(e))));
                    }
                    _ => {}
                }
            }
            if self.frames.fill(&mut self.rd).await? == 0 {
                return Err(err("server closed the connection"));
            }
        }
    }

    /// Subscribes and waits until the server confirms (a PING round trip).
    pub async fn subscribe(
        &mut self,
        subject: &str,
        queue: Option<&str>,
        sid: u64,
    ) -> io::Result<()> {
        let line = match queue {
            Some(q) => format!("SUB {subject} {q} {sid}\r\nPING\r\n"),
            None => format!("SUB {subject} {sid}\r\nPING\r\n"),
        };
        self.wr.write_all(line.as_bytes()).await?;
        tokio::time::timeout(HANDSHAKE_TIMEOUT, self.await_pong())
            .await
            .map_err(|_| err("subscription not confirmed in time"))?
    }
}

/// One protocol frame, borrowed from the read buffer.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame<'a> {
    /// `MSG subject sid [reply] size`: the control line without `\r\n`, and the payload.
    Msg {
        line: &'a [u8],
        payload: &'a [u8],
    },
    Ping,
    Pong,
    Ok,
    Err(&'a [u8]),
    Info,
    Other(&'a [u8]),
}

/// The subject of a `MSG` control line.
pub fn msg_subject(line: &[u8]) -> &[u8] {
    let rest = line.get(4..).unwrap_or_default();
    let end = memchr::memchr(b' ', rest).unwrap_or(rest.len());
    &rest[..end]
}

/// The reply subject of a `MSG` control line, if it has one.
pub fn msg_reply(line: &[u8]) -> Option<&[u8]> {
    let mut it = line.split(|b| *b == b' ').filter(|t| !t.is_empty());
    let toks: [Option<&[u8]>; 5] = [it.next(), it.next(), it.next(), it.next(), it.next()];
    match toks {
        [Some(_), Some(_), Some(_), Some(reply), Some(_)] => Some(reply),
        _ => None,
    }
}

/// Parses the trailing decimal size of a control line.
fn trailing_size(line: &[u8]) -> Option<usize> {
    let digits = line.iter().rev().take_while(|b| b.is_ascii_digit()).count();
    if digits == 0 || digits > 12 {
        return None;
    }
    let mut n = 0usize;
    for &b in &line[line.len() - digits..] {
        n = n * 10 + usize::from(b - b'0');
    }
    Some(n)
}

/// A read buffer with an in-place frame parser.
#[derive(Debug)]
pub struct Frames {
    buf: Vec<u8>,
    start: usize,
    end: usize,
}

impl Frames {
    pub fn new(size: usize) -> Frames {
        Frames {
            buf: vec![0; size.max(4096)],
            start: 0,
            end: 0,
        }
    }

    /// Bytes buffered and not yet framed.
    pub fn pending(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

    /// Appends bytes (tests, and handshakes that read elsewhere).
    pub fn push(&mut self, data: &[u8]) {
        self.make_room(data.len());
        self.buf[self.end..self.end + data.len()].copy_from_slice(data);
        self.end += data.len();
    }

    fn make_room(&mut self, want: usize) {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
        if self.buf.len() - self.end >= want {
            return;
        }
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.buf.len() - self.end < want {
            let n = (self.end + want).max(self.buf.len() * 2);
            self.buf.resize(n, 0);
        }
    }

    /// One read from `rd` into the buffer; 0 at EOF.
    pub async fn fill<R: AsyncRead + Unpin + ?Sized>(&mut self, rd: &mut R) -> io::Result<usize> {
        // Keep at least a quarter of the buffer free so reads stay large.
        let quarter = self.buf.len() / 4;
        self.make_room(quarter);
        let n = rd.read(&mut self.buf[self.end..]).await?;
        self.end += n;
        Ok(n)
    }

    /// Takes one whole line (without `\r\n`) if buffered.
    fn take_line(&mut self) -> Option<Vec<u8>> {
        let data = &self.buf[self.start..self.end];
        let nl = memchr::memchr(b'\n', data)?;
        let line = data[..nl]
            .strip_suffix(b"\r")
            .unwrap_or(&data[..nl])
            .to_vec();
        self.start += nl + 1;
        Some(line)
    }

    /// The next complete frame, `None` when more bytes are needed, or an error on garbage.
    pub fn next_frame(&mut self) -> Option<Result<Frame<'_>, String>> {
        let data = &self.buf[self.start..self.end];
        let nl = memchr::memchr(b'\n', data)?;
        let line = data[..nl].strip_suffix(b"\r").unwrap_or(&data[..nl]);
        let first = line.first().copied().unwrap_or(b' ');
        if first == b'M' || first == b'm' {
            let Some(size) = trailing_size(line) else {
                return Some(Err(format!(
                    "bad MSG line {:?}",
                    String::from_utf8_lossy(line)
                )));
            };
            let total = nl + 1 + size + 2;
            if data.len() < total {
                // The payload is not all here yet; make sure the whole frame will fit.
                let have = data.len();
                if self.buf.len() - self.start < total {
                    self.make_room(total - have);
                }
                return None;
            }
            let start = self.start;
            self.start += total;
            let data = &self.buf[start..start + total];
            let line = data[..nl].strip_suffix(b"\r").unwrap_or(&data[..nl]);
            return Some(Ok(Frame::Msg {
                line,
                payload: &data[nl + 1..nl + 1 + size],
            }));
        }
        let start = self.start;
        self.start += nl + 1;
        let line = &self.buf[start..start + nl];
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let f = match line {
            b"PING" | b"ping" => Frame::Ping,
            b"PONG" | b"pong" => Frame::Pong,
            b"+OK" => Frame::Ok,
            l if l.starts_with(b"-ERR") => Frame::Err(&l[4..]),
            l if l.starts_with(b"INFO") => Frame::Info,
            l => Frame::Other(l),
        };
        Some(Ok(f))
    }
}

/// A message template for publishers: `count` copies of `PUB subject [reply] size\r\n<payload>\r\n`
/// and where each payload starts, so sequence numbers and timestamps can be stamped in place.
#[derive(Debug)]
pub struct Batch {
    pub bytes: Vec<u8>,
    /// Offset of each message's payload.
    pub payloads: Vec<usize>,
    /// Bytes of one whole message.
    pub msg_len: usize,
    pub size: usize,
}

impl Batch {
    /// Enough messages to fill about `batch_bytes` (at least one).
    pub fn new(subject: &str, size: usize, batch_bytes: usize) -> Batch {
        let head = format!("PUB {subject} {size}\r\n");
        let msg_len = head.len() + size + 2;
        let count = (batch_bytes / msg_len).max(1);
        let mut bytes = Vec::with_capacity(count * msg_len);
        let mut payloads = Vec::with_capacity(count);
        for _ in 0..count {
            bytes.extend_from_slice(head.as_bytes());
            payloads.push(bytes.len());
            bytes.extend(std::iter::repeat_n(b'x', size));
            bytes.extend_from_slice(b"\r\n");
        }
        Batch {
            bytes,
            payloads,
            msg_len,
            size,
        }
    }

    pub fn count(&self) -> usize {
        self.payloads.len()
    }

    /// Stamps the first `n` messages with sequence numbers `seq`, `seq + stride`, … and the
    /// time `ts` (as much of `seq, ts` as the payload size holds, little-endian), and returns
    /// their bytes.
    pub fn stamp(&mut self, n: usize, seq: u64, stride: u64, ts: u64) -> &[u8] {
        let n = n.min(self.count());
        if self.size >= 8 {
            let with_ts = self.size >= 16;
            for (i, &off) in self.payloads[..n].iter().enumerate() {
                let s = seq + i as u64 * stride;
                self.bytes[off..off + 8].copy_from_slice(&s.to_le_bytes());
                if with_ts {
                    self.bytes[off + 8..off + 16].copy_from_slice(&ts.to_le_bytes());
                }
            }
        }
        &self.bytes[..n * self.msg_len]
    }
}

/// The sequence number stamped into a payload, if it is big enough.
pub fn payload_seq(p: &[u8]) -> Option<u64> {
    p.get(..8)
        .map(|b| u64::from_le_bytes(b.try_into().unwrap_or_default()))
}

/// The timestamp stamped into a payload, if it is big enough.
pub fn payload_ts(p: &[u8]) -> Option<u64> {
    p.get(8..16)
        .map(|b| u64::from_le_bytes(b.try_into().unwrap_or_default()))
}

/// `GET base + path` over HTTP/1.0 and parse the body as JSON (for `/varz`).
pub async fn http_get_json(base: &str, path: &str) -> Result<serde_json::Value, String> {
    let rest = base
        .strip_prefix("http://")
        .ok_or_else(|| format!("monitoring URL {base:?} must start with http://"))?;
    let (hostport, prefix) = match rest.find('/') {
        Some(i) => (&rest[..i], rest[i..].trim_end_matches('/')),
        None => (rest, ""),
    };
    let url = ServerUrl::parse(hostport)?;
    let addr = resolve(&url).await.map_err(|e| format!("{base}: {e}"))?;
    let fut = async {
        let mut s = TcpStream::connect(addr).await?;
        let req =
            format!("GET {prefix}{path} HTTP/1.0\r\nHost: {hostport}\r\nConnection: close\r\n\r\n");
        s.write_all(req.as_bytes()).await?;
        let mut out = Vec::new();
        s.read_to_end(&mut out).await?;
        io::Result::Ok(out)
    };
    let out = tokio::time::timeout(HANDSHAKE_TIMEOUT, fut)
        .await
        .map_err(|_| format!("{base}{path}: timed out"))?
        .map_err(|e| format!("{base}{path}: {e}"))?;
    let split = out
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| format!("{base}{path}: malformed HTTP response"))?;
    let status = String::from_utf8_lossy(&out[..split]);
    if !status.lines().next().is_some_and(|l| l.contains(" 200")) {
        return Err(format!(
            "{base}{path}: {}",
            status.lines().next().unwrap_or("")
        ));
    }
    serde_json::from_slice(&out[split + 4..]).map_err(|e| format!("{base}{path}: bad JSON: {e}"))
}

/// User + system CPU seconds of process `pid`, from `/proc/PID/stat`.
pub fn proc_cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = f.get(11)?.parse().ok()?;
    let stime: u64 = f.get(12)?.parse().ok()?;
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    Some((utime + stime) as f64 / hz)
}

/// The read-like and write-like system calls perf counts (Go servers `read`/`write`/`writev`,
/// Rust ones `recvfrom`/`sendto`).
const READ_SYSCALLS: &[&str] = &["read", "readv", "recvfrom", "recvmsg"];
const WRITE_SYSCALLS: &[&str] = &["write", "writev", "sendto", "sendmsg"];

/// Counts a process's read and write system calls while a run lasts, with `perf stat` on the
/// syscall tracepoints (needs perf and the rights to trace the process: root here).
pub struct SyscallCounter {
    child: std::process::Child,
    out: std::path::PathBuf,
}

impl SyscallCounter {
    pub fn start(pid: u32) -> Result<SyscallCounter, String> {
        let out =
            std::env::temp_dir().join(format!("nats-mini-bench-perf-{}-{pid}", std::process::id()));
        let events: Vec<String> = READ_SYSCALLS
            .iter()
            .chain(WRITE_SYSCALLS)
            .map(|s| format!("syscalls:sys_enter_{s}"))
            .collect();
        let child = std::process::Command::new("perf")
            .args([
                "stat",
                "-x",
                ",",
                "-e",
                &events.join(","),
                "-p",
                &pid.to_string(),
                "-o",
            ])
            .arg(&out)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .map_err(|e| format!("perf: {e}"))?;
        // perf attaches asynchronously; give it a moment so the run's first calls count.
        std::thread::sleep(Duration::from_millis(200));
        Ok(SyscallCounter { child, out })
    }

    /// Stops counting and returns (read calls, write calls).
    pub fn finish(mut self) -> Result<(u64, u64), String> {
        // SAFETY: kill(2) on our own child's pid; SIGINT makes perf print its counts.
        unsafe {
            libc::kill(self.child.id() as libc::pid_t, libc::SIGINT);
        }
        let _ = self.child.wait();
        let text = std::fs::read_to_string(&self.out).map_err(|e| format!("perf output: {e}"))?;
        let _ = std::fs::remove_file(&self.out);
        let (mut reads, mut writes, mut seen) = (0u64, 0u64, 0);
        for line in text.lines() {
            let f: Vec<&str> = line.split(',').collect();
            let (Some(count), Some(event)) = (f.first(), f.get(2)) else {
                continue;
            };
            let Some(name) = event.strip_prefix("syscalls:sys_enter_") else {
                continue;
            };
            let Ok(n) = count.trim().parse::<u64>() else {
                continue;
            };
            seen += 1;
            if READ_SYSCALLS.contains(&name) {
                reads += n;
            } else if WRITE_SYSCALLS.contains(&name) {
                writes += n;
            }
        }
        if seen == 0 {
            return Err(format!("perf counted nothing: {}", text.trim()));
        }
        Ok((reads, writes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(data: &[u8]) -> Frames {
        let mut f = Frames::new(16);
        f.push(data);
        f
    }

    #[test]
    fn frames_messages_in_place_and_waits_for_partial_payloads() {
        let mut f = frames(b"MSG a 1 3\r\nabc\r\nPING\r\nMSG b.c 2 _INBOX.x 0\r\n\r\n+OK\r\n-ERR 'oops'\r\nMSG d 1 5\r\nhe");
        assert_eq!(
            f.next_frame().unwrap().unwrap(),
            Frame::Msg {
                line: b"MSG a 1 3",
                payload: b"abc"
            }
        );
        assert_eq!(f.next_frame().unwrap().unwrap(), Frame::Ping);
        match f.next_frame().unwrap().unwrap() {
            Frame::Msg { line, payload } => {
                assert_eq!(payload, b"");
                assert_eq!(msg_reply(line), Some(&b"_INBOX.x"[..]));
                assert_eq!(msg_subject(line), b"b.c");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(f.next_frame().unwrap().unwrap(), Frame::Ok);
        assert_eq!(f.next_frame().unwrap().unwrap(), Frame::Err(b" 'oops'"));
        assert!(f.next_frame().is_none(), "partial payload must wait");
        f.push(b"llo\r\nPO");
        match f.next_frame().unwrap().unwrap() {
            Frame::Msg { payload, line } => {
                assert_eq!(payload, b"hello");
                assert_eq!(msg_reply(line), None);
            }
            other => panic!("{other:?}"),
        }
        assert!(f.next_frame().is_none());
        f.push(b"NG\r\n");
        assert_eq!(f.next_frame().unwrap().unwrap(), Frame::Pong);
        assert!(f.pending().is_empty());
        assert!(frames(b"MSG a 1 x\r\n").next_frame().unwrap().is_err());
    }

    #[test]
    fn frames_payloads_larger_than_the_buffer() {
        let mut f = Frames::new(16);
        let payload = vec![b'z'; 100_000];
        f.push(b"MSG big 1 100000\r\n");
        assert!(f.next_frame().is_none());
        f.push(&payload);
        f.push(b"\r\n");
        match f.next_frame().unwrap().unwrap() {
            Frame::Msg { payload: p, .. } => assert_eq!(p.len(), 100_000),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn batches_stamp_sequence_and_time() {
        let mut b = Batch::new("s", 16, 100);
        assert_eq!(b.msg_len, "PUB s 16\r\n".len() + 18);
        assert_eq!(b.count(), 100 / 28);
        let bytes = b.stamp(2, 7, 3, 99).to_vec();
        let mut f = Frames::new(16);
        // Reuse the parser on PUB lines: same shape as MSG without a sid.
        let text = String::from_utf8_lossy(&bytes).replace("PUB s", "MSG s 1");
        f.push(text.as_bytes());
        let mut seqs = Vec::new();
        while let Some(Ok(Frame::Msg { payload, .. })) = f.next_frame() {
            seqs.push((payload_seq(payload).unwrap(), payload_ts(payload).unwrap()));
        }
        // Lossy UTF-8 may mangle bytes ≥ 0x80; these stamps are small.
        assert_eq!(seqs, [(7, 99), (10, 99)]);
        let mut tiny = Batch::new("s", 4, 10);
        assert_eq!(tiny.stamp(5, 1, 1, 1).len(), tiny.msg_len);
        assert_eq!(payload_seq(b"1234"), None);
    }
}
