//! Server-wide counters. Read loops add their per-read totals once per read buffer, so the
//! hot path touches these atomics once per batch, not once per message.

use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Debug, Default)]
pub struct ServerStats {
    pub in_msgs: AtomicU64,
    pub in_bytes: AtomicU64,
    pub out_msgs: AtomicU64,
    pub out_bytes: AtomicU64,
    pub total_connections: AtomicU64,
    pub slow_consumers: AtomicU64,
    pub stale_connections: AtomicU64,
    /// Times a publishing client waited for a receiver to drain (the fast-producer stall).
    pub stalls: AtomicU64,
}

/// Totals gathered during one read buffer, published with [`ServerStats::add`].
#[derive(Debug, Default, Clone, Copy)]
pub struct BatchStats {
    pub in_msgs: u64,
    pub in_bytes: u64,
    pub out_msgs: u64,
    pub out_bytes: u64,
}

/// A plain copy of the counters, for monitoring and tests.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct StatsSnapshot {
    pub in_msgs: u64,
    pub in_bytes: u64,
    pub out_msgs: u64,
    pub out_bytes: u64,
    pub total_connections: u64,
    pub slow_consumers: u64,
    pub stale_connections: u64,
    pub stalls: u64,
}

impl ServerStats {
    pub fn add(&self, b: &BatchStats) {
        if b.in_msgs > 0 {
            self.in_msgs.fetch_add(b.in_msgs, Ordering::Relaxed);
            self.in_bytes.fetch_add(b.in_bytes, Ordering::Relaxed);
        }
        if b.out_msgs > 0 {
            self.out_msgs.fetch_add(b.out_msgs, Ordering::Relaxed);
            self.out_bytes.fetch_add(b.out_bytes, Ordering::Relaxed);
        }
    }

    /// Takes back what the startup self-check added, so counters describe client traffic only.
    pub fn subtract(&self, b: &BatchStats, connections: u64) {
        self.in_msgs.fetch_sub(b.in_msgs, Ordering::Relaxed);
        self.in_bytes.fetch_sub(b.in_bytes, Ordering::Relaxed);
        self.out_msgs.fetch_sub(b.out_msgs, Ordering::Relaxed);
        self.out_bytes.fetch_sub(b.out_bytes, Ordering::Relaxed);
        self.total_connections
            .fetch_sub(connections, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> StatsSnapshot {
        StatsSnapshot {
            in_msgs: self.in_msgs.load(Ordering::Relaxed),
            in_bytes: self.in_bytes.load(Ordering::Relaxed),
            out_msgs: self.out_msgs.load(Ordering::Relaxed),
            out_bytes: self.out_bytes.load(Ordering::Relaxed),
            total_connections: self.total_connections.load(Ordering::Relaxed),
            slow_consumers: self.slow_consumers.load(Ordering::Relaxed),
            stale_connections: self.stale_connections.load(Ordering::Relaxed),
            stalls: self.stalls.load(Ordering::Relaxed),
        }
    }
}
