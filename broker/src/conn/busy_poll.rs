//! Busy polling: after interactive traffic, one task keeps a runtime worker awake for a short
//! window instead of letting it sleep in `epoll_wait` at once.
//!
//! Why: between a request and its reply the server is idle for a few tens of microseconds. A
//! worker that sleeps in that gap has to be woken by the kernel when the reply arrives, and on a
//! virtual machine that wake-up (an interrupt to a halted vCPU) costs as much as everything else
//! in the round trip: on the 2-vCPU machine this was built on, a bare TCP echo between two
//! processes takes 65 µs at the median and sequential NATS request/reply 130 µs, for nats-server
//! as for nats-mini, whose own work per request is a few microseconds. Four sleeping-thread
//! wake-ups per request are the cost; a worker that is still polling when a message arrives
//! saves its share of them. (The same idea as Linux's `net.core.busy_read`, one level up.)
//!
//! How: a connection that has just handled a small read calls [`BusyPoll::arm`]. One spinner task
//! ([`BusyPoll::run`]) then yields in a loop until no connection has armed it for a whole
//! window. Each yield lets the runtime poll its I/O driver without blocking and run whatever
//! became ready, so the spinner never holds up a connection: it only keeps a thread awake.
//!
//! What it costs is CPU, bounded three ways: bulk streams never arm it (their reads are large);
//! at most one task spins; and a window in which nothing arrived makes the spinner ignore the
//! next 1, 2, 4 … up to 1024 arms, so traffic too sparse to profit costs next to nothing.
//! `busy_poll: 0` (or `--busy_poll 0`) turns it off. `/metrics` shows the windows and the time
//! spent in them.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// Reads up to this size count as interactive traffic and arm the spinner; bulk streams read
/// tens of kilobytes at a time.
pub const ARMING_READ_MAX: usize = 4096;

/// The longest back-off, in ignored arms, after windows in which nothing arrived.
const MAX_BACKOFF: u64 = 1024;

/// The busy-poll state of one server.
#[derive(Debug)]
pub struct BusyPoll {
    /// The window in nanoseconds; 0 turns busy polling off. Changes on reload.
    window_ns: AtomicU64,
    /// Small reads handled so far (only ever compared, so wrapping is harmless).
    arms: AtomicU64,
    /// Arms numbered below this are ignored (the back-off).
    ignore_until: AtomicU64,
    /// The spinner is in a window (or about to start one).
    spinning: AtomicBool,
    wake: Notify,
    /// Windows spun, and nanoseconds spent in them (for `/metrics`).
    pub windows: AtomicU64,
    pub spin_ns: AtomicU64,
}

impl BusyPoll {
    pub fn new(window: Duration) -> Self {
        BusyPoll {
            window_ns: AtomicU64::new(window.as_nanos().min(u64::MAX as u128) as u64),
            arms: AtomicU64::new(0),
            ignore_until: AtomicU64::new(0),
            spinning: AtomicBool::new(false),
            wake: Notify::new(),
            windows: AtomicU64::new(0),
            spin_ns: AtomicU64::new(0),
        }
    }

    pub fn set_window(&self, window: Duration) {
        let ns = window.as_nanos().min(u64::MAX as u128) as u64;
        self.window_ns.store(ns, Ordering::Relaxed);
    }

    pub fn window(&self) -> Duration {
        Duration::from_nanos(self.window_ns.load(Ordering::Relaxed))
    }

    /// Called by a connection after it handled a read of at most [`ARMING_READ_MAX`] bytes.
    #[inline]
    pub fn arm(&self) {
        let n = self.arms.fetch_add(1, Ordering::Relaxed).wrapping_add(1);
        // A spinning spinner sees the new count by itself.
        if self.spinning.load(Ordering::Relaxed)
            || n < self.ignore_until.load(Ordering::Relaxed)
            || self.window_ns.load(Ordering::Relaxed) == 0
        {
            return;
        }
        if !self.spinning.swap(true, Ordering::AcqRel) {
            self.wake.notify_one();
        }
    }

    /// The spinner task: one per server, until `shutdown`.
    pub async fn run(&self, shutdown: CancellationToken) {
        let mut backoff = 0u64;
        loop {
            tokio::select! {
                _ = self.wake.notified() => {}
                _ = shutdown.cancelled() => return,
            }
            let window = self.window();
            if window.is_zero() {
                self.spinning.store(false, Ordering::Release);
                continue;
            }
            let started = Instant::now();
            let first = self.arms.load(Ordering::Relaxed);
            let mut seen = first;
            let mut until = started + window;
            loop {
                tokio::task::yield_now().await;
                let now = Instant::now();
                let arms = self.arms.load(Ordering::Relaxed);
                if arms != seen {
                    seen = arms;
                    until = now + window;
                }
                if now >= until || shutdown.is_cancelled() {
                    break;
                }
            }
            if seen == first {
                // Nothing came while we spun: ignore the next arms, more of them each time.
                backoff = (backoff * 2).clamp(1, MAX_BACKOFF);
                self.ignore_until
                    .store(seen.wrapping_add(backoff + 1), Ordering::Relaxed);
            } else {
                backoff = 0;
            }
            self.windows.fetch_add(1, Ordering::Relaxed);
            let spent = started.elapsed().as_nanos().min(u64::MAX as u128) as u64;
            self.spin_ns.fetch_add(spent, Ordering::Relaxed);
            self.spinning.store(false, Ordering::Release);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn spinner(window: Duration) -> (Arc<BusyPoll>, CancellationToken) {
        let bp = Arc::new(BusyPoll::new(window));
        let stop = CancellationToken::new();
        let (b, s) = (bp.clone(), stop.clone());
        tokio::spawn(async move { b.run(s).await });
        (bp, stop)
    }

    async fn wait_idle(bp: &BusyPoll) {
        tokio::time::timeout(Duration::from_secs(5), async {
            while bp.spinning.load(Ordering::Acquire) {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        })
        .await
        .expect("the window ends");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_arm_starts_one_window_that_ends_by_itself() {
        let (bp, stop) = spinner(Duration::from_micros(200));
        bp.arm();
        wait_idle(&bp).await;
        assert_eq!(bp.windows.load(Ordering::Relaxed), 1);
        assert!(bp.spin_ns.load(Ordering::Relaxed) >= 200_000);
        stop.cancel();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn empty_windows_back_off_exponentially_and_traffic_resets_it() {
        let (bp, stop) = spinner(Duration::from_micros(100));
        // Each arm after an empty window: 1, then 2, then 4 arms are ignored.
        let mut windows = Vec::new();
        for _ in 0..8 {
            bp.arm();
            wait_idle(&bp).await;
            windows.push(bp.windows.load(Ordering::Relaxed));
        }
        // arm 1 spins (backoff 1: arm 2 ignored), arm 3 spins (backoff 2: 4 and 5 ignored),
        // arm 6 spins (backoff 4: 7..=9 ignored).
        assert_eq!(windows, [1, 1, 2, 2, 2, 3, 3, 3]);
        stop.cancel();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_window_is_extended_while_arms_keep_coming() {
        let (bp, stop) = spinner(Duration::from_millis(20));
        bp.arm();
        let t = Instant::now();
        while t.elapsed() < Duration::from_millis(100) {
            bp.arm();
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        wait_idle(&bp).await;
        // One window covered all of it (a slow machine may have split it, never into many).
        let windows = bp.windows.load(Ordering::Relaxed);
        assert!((1..=3).contains(&windows), "{windows}");
        assert!(bp.spin_ns.load(Ordering::Relaxed) >= 100_000_000);
        stop.cancel();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_zero_window_never_spins() {
        let (bp, stop) = spinner(Duration::ZERO);
        for _ in 0..10 {
            bp.arm();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert_eq!(bp.windows.load(Ordering::Relaxed), 0);
        bp.set_window(Duration::from_micros(100));
        bp.arm();
        wait_idle(&bp).await;
        assert_eq!(bp.windows.load(Ordering::Relaxed), 1);
        stop.cancel();
    }
}
