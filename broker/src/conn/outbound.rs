//! The outbound side of a connection: a byte queue that producers append to and one writer task
//! drains with large writes.
//!
//! Why this shape (nats-server's design, see `shared/reference/nats-server-behaviour.md` §6.3):
//! - Producers (other connections' read loops) copy each delivery straight into the receiver's
//!   queue under a short, uncontended mutex. They never write to the receiver's socket, so a slow
//!   receiver can only cost them that memcpy.
//! - A producer does not wake the writer per message. It marks the queue `scheduled` and keeps
//!   the receiver in its own flush list; after the whole read buffer is processed it wakes each
//!   receiver once. One read of a publisher thus becomes one write per receiver.
//! - The writer swaps the queue with its spare buffer (double buffering: no allocation in steady
//!   state) and writes outside the lock, under the write deadline.
//! - `pending` counts queued plus in-flight bytes; crossing `max_pending` closes the receiver as a
//!   slow consumer at once, silently, as nats-server does.
//! - Past 3/4 of `max_pending` the receiver raises its stall gate: a publishing client that
//!   delivered to it waits briefly (bounded, see [`stall`]) before reading more, so a receiver that
//!   is merely slower than its producer catches up instead of being cut off (nats-server's
//!   fast-producer stall).

use crate::conn::Close;
use crate::error::ClosedReason;
use parking_lot::Mutex;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::io::AsyncWriteExt;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// Spare write buffers above this capacity are dropped after a burst, so an idle connection
/// does not keep a burst's worth of memory.
const KEEP_CAPACITY: usize = 256 * 1024;

/// State guarded by the connection's outbound mutex.
#[derive(Debug, Default)]
pub struct Queue {
    /// Bytes waiting for the writer.
    pub buf: Vec<u8>,
    /// Queued plus in-flight bytes, checked against `max_pending`.
    pub pending: usize,
    /// A producer has this connection in its flush list (or the writer is about to run).
    pub scheduled: bool,
    /// Set once; later closes are ignored so the first reason wins.
    pub closing: Option<Close>,
    /// Messages and payload bytes delivered to this connection (for `/connz`).
    pub msgs: u64,
    pub bytes: u64,
}

/// The part of a connection other tasks touch: its outbound queue and its close signals.
#[derive(Debug)]
pub struct Outbound {
    pub queue: Mutex<Queue>,
    wake: Notify,
    /// Cancelled on any close: the read loop stops.
    pub closed: CancellationToken,
    /// Cancelled on a close that must not flush: the writer abandons its write.
    abort: CancellationToken,
    pub max_pending: usize,
    /// Whether the receiver announced headers support (decides HMSG or stripped MSG).
    pub headers: AtomicBool,
    /// Unix time in nanoseconds of the last read or completed write (`/connz`
    /// `last_activity`); the writer stores it once per batch.
    pub last_activity: AtomicU64,
    /// The stall gate: [`GATE_OPEN`], [`GATE_STALL`] (pending past 3/4 of `max_pending`) or
    /// [`GATE_FULL`] (past 7/8). Set by producers under the queue lock, cleared by the writer.
    gate: AtomicU8,
    /// Signalled when the writer has drained the queue below the gate.
    drained: Notify,
}

const GATE_OPEN: u8 = 0;
const GATE_STALL: u8 = 1;
const GATE_FULL: u8 = 2;

/// How long a producer waits for one receiver past the gate (longer when it is nearly full),
/// and in total per read buffer: nats-server 2.10+'s values.
const STALL_WAIT: Duration = Duration::from_millis(2);
const STALL_WAIT_FULL: Duration = Duration::from_millis(5);
const STALL_BUDGET: Duration = Duration::from_millis(10);

/// The result of appending one delivery.
#[derive(Debug, PartialEq, Eq)]
pub enum Enqueued {
    /// Queued; `true` when the caller must wake the writer after its batch.
    Ok(bool),
    /// The connection is closing; nothing was queued.
    Closed,
    /// The delivery would exceed `max_pending`: the connection is now closed.
    SlowConsumer,
}

impl Outbound {
    pub fn new(max_pending: usize) -> Self {
        Outbound {
            queue: Mutex::new(Queue::default()),
            wake: Notify::new(),
            closed: CancellationToken::new(),
            abort: CancellationToken::new(),
            max_pending,
            headers: AtomicBool::new(false),
            last_activity: AtomicU64::new(crate::conn::entry::unix_nanos(
                std::time::SystemTime::now(),
            )),
            gate: AtomicU8::new(GATE_OPEN),
            drained: Notify::new(),
        }
    }

    /// Whether producers should give this receiver a moment to drain.
    #[inline]
    pub fn stalling(&self) -> bool {
        self.gate.load(Ordering::Relaxed) != GATE_OPEN
    }

    fn gate_for(&self, pending: usize) -> u8 {
        if pending > self.max_pending / 8 * 7 {
            GATE_FULL
        } else if pending > self.max_pending / 4 * 3 {
            GATE_STALL
        } else {
            GATE_OPEN
        }
    }

    pub fn is_closed(&self) -> bool {
        self.closed.is_cancelled()
    }

    /// Appends what `write` produces, counting one message of `payload` bytes when
    /// `payload` is `Some`. Enforces `max_pending`.
    #[inline]
    pub fn enqueue(&self, payload: Option<usize>, write: impl FnOnce(&mut Vec<u8>)) -> Enqueued {
        let mut q = self.queue.lock();
        if q.closing.is_some() {
            return Enqueued::Closed;
        }
        let before = q.buf.len();
        write(&mut q.buf);
        let added = q.buf.len() - before;
        if q.pending + added > self.max_pending {
            q.buf.truncate(before);
            drop(q);
            self.close(Close::silent(ClosedReason::SlowConsumerPendingBytes));
            return Enqueued::SlowConsumer;
        }
        q.pending += added;
        let gate = self.gate_for(q.pending);
        if gate != GATE_OPEN {
            self.gate.store(gate, Ordering::Relaxed);
        }
        if let Some(n) = payload {
            q.msgs += 1;
            q.bytes += n as u64;
        }
        let wake = !q.scheduled;
        q.scheduled = true;
        Enqueued::Ok(wake)
    }

    /// Wakes the writer (after a batch of enqueues).
    #[inline]
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Closes the connection: the first call decides the reason. A close that flushes queues its
    /// `-ERR` (if any) behind what is pending; one that does not discards the queue.
    pub fn close(&self, close: Close) -> bool {
        let mut q = self.queue.lock();
        if q.closing.is_some() {
            return false;
        }
        q.closing = Some(close);
        if close.reason.flushes() {
            if let Some(text) = close.err {
                let before = q.buf.len();
                crate::proto::wire::err(&mut q.buf, text);
                q.pending += q.buf.len() - before;
            }
        } else {
            q.buf = Vec::new();
        }
        drop(q);
        if !close.reason.flushes() {
            self.abort.cancel();
        }
        self.closed.cancel();
        self.wake.notify_one();
        true
    }

    pub fn close_reason(&self) -> Option<Close> {
        self.queue.lock().closing
    }

    /// The writer task: drains the queue into `sink` until the connection closes, then shuts
    /// the sink down. Every write runs under `deadline`; missing it makes this a slow consumer.
    pub async fn write_loop<W: tokio::io::AsyncWrite + Unpin>(
        &self,
        mut sink: W,
        deadline: Duration,
        flush_seconds: Option<prometheus::Histogram>,
    ) {
        let mut spare: Vec<u8> = Vec::new();
        loop {
            let closing = {
                let mut q = self.queue.lock();
                std::mem::swap(&mut q.buf, &mut spare);
                q.scheduled = false;
                q.closing
            };
            if spare.is_empty() {
                if closing.is_some() {
                    break;
                }
                tokio::select! {
                    _ = self.wake.notified() => {}
                    _ = self.abort.cancelled() => break,
                }
                continue;
            }
            let n = spare.len();
            let started = std::time::Instant::now();
            let res = tokio::select! {
                r = write_with_deadline(&mut sink, &spare, deadline) => r,
                _ = self.abort.cancelled() => break,
            };
            match res {
                Ok(Ok(())) => {}
                Ok(Err(_)) => {
                    self.close(Close::silent(ClosedReason::WriteError));
                    break;
                }
                Err(_) => {
                    // A closing connection that cannot flush in time is simply dropped; only a
                    // live one is a slow consumer.
                    if closing.is_none() {
                        self.close(Close::silent(ClosedReason::SlowConsumerWriteDeadline));
                    }
                    break;
                }
            }
            if let Some(h) = &flush_seconds {
                h.observe(started.elapsed().as_secs_f64());
            }
            self.last_activity.store(
                crate::conn::entry::unix_nanos(std::time::SystemTime::now()),
                Ordering::Relaxed,
            );
            spare.clear();
            if spare.capacity() > KEEP_CAPACITY {
                spare = Vec::new();
            }
            let pending = {
                let mut q = self.queue.lock();
                q.pending -= n;
                q.pending
            };
            if self.stalling() && self.gate_for(pending) == GATE_OPEN {
                self.gate.store(GATE_OPEN, Ordering::Relaxed);
                self.drained.notify_waiters();
            }
        }
        // Nobody should wait on a connection that is gone.
        self.gate.store(GATE_OPEN, Ordering::Relaxed);
        self.drained.notify_waiters();
        let _ = tokio::time::timeout(deadline, sink.shutdown()).await;
    }
}

/// The fast-producer stall: after a read buffer, a publishing client waits for the receivers it
/// pushed past their stall gate to drain, at most [`STALL_WAIT`] each ([`STALL_WAIT_FULL`] when
/// nearly full) and [`STALL_BUDGET`] in all. Not reading meanwhile is the point: the producer's
/// socket pushes back on the publisher. Returns how many receivers it waited for. `receivers` is
/// left empty.
pub async fn stall(receivers: &mut Vec<Arc<Outbound>>) -> u64 {
    let start = Instant::now();
    let mut stalls = 0;
    for r in receivers.drain(..) {
        let spent = start.elapsed();
        if spent >= STALL_BUDGET {
            break;
        }
        let notified = r.drained.notified();
        tokio::pin!(notified);
        // Register before re-checking, so a drain in between is not missed.
        notified.as_mut().enable();
        let wait = match r.gate.load(Ordering::Relaxed) {
            GATE_OPEN => continue,
            GATE_STALL => STALL_WAIT,
            _ => STALL_WAIT_FULL,
        };
        if r.is_closed() {
            continue;
        }
        stalls += 1;
        let _ = tokio::time::timeout(wait.min(STALL_BUDGET - spent), notified).await;
    }
    stalls
}

/// Writes all of `buf`, allowing each individual write `deadline` to make progress: the deadline
/// bounds how long a socket may stay blocked, not how long a large backlog takes to drain.
async fn write_with_deadline<W: tokio::io::AsyncWrite + Unpin>(
    sink: &mut W,
    mut buf: &[u8],
    deadline: Duration,
) -> Result<std::io::Result<()>, tokio::time::error::Elapsed> {
    while !buf.is_empty() {
        match tokio::time::timeout(deadline, sink.write(buf)).await? {
            Ok(0) => return Ok(Err(std::io::ErrorKind::WriteZero.into())),
            Ok(n) => buf = &buf[n..],
            Err(e) => return Ok(Err(e)),
        }
    }
    Ok(Ok(()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_enqueue_asks_for_a_wake_then_not_until_drained() {
        let o = Outbound::new(1024);
        assert_eq!(
            o.enqueue(Some(1), |b| b.extend_from_slice(b"a")),
            Enqueued::Ok(true)
        );
        assert_eq!(
            o.enqueue(Some(1), |b| b.extend_from_slice(b"b")),
            Enqueued::Ok(false)
        );
        let q = o.queue.lock();
        assert_eq!((q.pending, q.msgs, q.bytes), (2, 2, 2));
    }

    #[test]
    fn max_pending_closes_silently_and_drops_the_queue() {
        let o = Outbound::new(10);
        assert_eq!(
            o.enqueue(None, |b| b.extend_from_slice(b"12345678")),
            Enqueued::Ok(true)
        );
        assert_eq!(
            o.enqueue(None, |b| b.extend_from_slice(b"123")),
            Enqueued::SlowConsumer
        );
        assert!(o.is_closed());
        let q = o.queue.lock();
        assert!(q.buf.is_empty());
        assert_eq!(
            q.closing.map(|c| c.reason),
            Some(ClosedReason::SlowConsumerPendingBytes)
        );
        drop(q);
        assert_eq!(o.enqueue(None, |b| b.push(b'x')), Enqueued::Closed);
    }

    #[test]
    fn first_close_wins_and_flushing_close_queues_err() {
        let o = Outbound::new(1024);
        o.enqueue(None, |b| b.extend_from_slice(b"PONG\r\n"));
        assert!(o.close(Close::with_err(
            ClosedReason::StaleConnection,
            "Stale Connection"
        )));
        assert!(!o.close(Close::silent(ClosedReason::ClientClosed)));
        let q = o.queue.lock();
        assert_eq!(q.buf, b"PONG\r\n-ERR 'Stale Connection'\r\n");
        assert_eq!(
            q.closing.map(|c| c.reason),
            Some(ClosedReason::StaleConnection)
        );
    }

    #[tokio::test]
    async fn the_stall_gate_rises_past_three_quarters_and_falls_when_drained() {
        let o = std::sync::Arc::new(Outbound::new(1000));
        o.enqueue(None, |b| b.extend_from_slice(&[b'x'; 700]));
        assert!(!o.stalling());
        o.enqueue(None, |b| b.extend_from_slice(&[b'x'; 100]));
        assert!(o.stalling());
        // A producer stalls on it until the writer drains it.
        let mut receivers = vec![o.clone()];
        let (client, mut reader) = tokio::io::duplex(4096);
        let w = {
            let o = o.clone();
            tokio::spawn(async move { o.write_loop(client, Duration::from_secs(1), None).await })
        };
        o.wake();
        let stalls = stall(&mut receivers).await;
        assert!(receivers.is_empty());
        assert!(stalls <= 1);
        let mut got = vec![0u8; 800];
        tokio::io::AsyncReadExt::read_exact(&mut reader, &mut got)
            .await
            .unwrap();
        tokio::time::timeout(Duration::from_secs(5), async {
            while o.stalling() {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        })
        .await
        .expect("the gate falls once drained");
        // A receiver with an open gate costs nothing.
        let mut receivers = vec![o.clone()];
        assert_eq!(stall(&mut receivers).await, 0);
        o.close(Close::silent(ClosedReason::ClientClosed));
        w.await.unwrap();
    }

    #[tokio::test]
    async fn a_stall_is_bounded_when_the_receiver_never_drains() {
        let o = std::sync::Arc::new(Outbound::new(1000));
        o.enqueue(None, |b| b.extend_from_slice(&[b'x'; 900]));
        let mut receivers = vec![o.clone(), o.clone(), o.clone(), o.clone(), o.clone()];
        let t = Instant::now();
        let stalls = stall(&mut receivers).await;
        // 5 ms each (nearly full), 10 ms in all: the budget is spent after two waits (one if
        // the machine was slow to wake us), never all five.
        assert!((1..=3).contains(&stalls), "{stalls}");
        assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
    }

    #[tokio::test]
    async fn writer_drains_then_closes() {
        let o = std::sync::Arc::new(Outbound::new(1024));
        let (client, mut server_side) = tokio::io::duplex(64);
        let w = {
            let o = o.clone();
            tokio::spawn(async move { o.write_loop(client, Duration::from_secs(1), None).await })
        };
        o.enqueue(None, |b| b.extend_from_slice(b"hello "));
        o.wake();
        o.close(Close::with_err(ClosedReason::ServerShutdown, "bye"));
        let mut got = Vec::new();
        tokio::io::AsyncReadExt::read_to_end(&mut server_side, &mut got)
            .await
            .unwrap();
        assert_eq!(got, b"hello -ERR 'bye'\r\n");
        w.await.unwrap();
    }

    #[tokio::test]
    async fn blocked_writer_becomes_slow_consumer_after_deadline() {
        let o = std::sync::Arc::new(Outbound::new(1 << 20));
        let (client, _server_side_never_read) = tokio::io::duplex(16);
        let w = {
            let o = o.clone();
            tokio::spawn(
                async move { o.write_loop(client, Duration::from_millis(100), None).await },
            )
        };
        o.enqueue(None, |b| b.extend_from_slice(&[0u8; 4096]));
        o.wake();
        tokio::time::timeout(Duration::from_secs(5), w)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            o.close_reason().map(|c| c.reason),
            Some(ClosedReason::SlowConsumerWriteDeadline)
        );
    }
}
