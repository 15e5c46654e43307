//! The operator's own Prometheus metrics, served on `/metrics` by [`crate::http`].
//!
//! - `nats_mini_operator_reconciles_total`: reconciles started;
//! - `nats_mini_operator_reconcile_errors_total{error}`: failed reconciles by
//!   [`Error::metric_label`];
//! - `nats_mini_operator_reconcile_duration_seconds`: reconcile duration histogram;
//! - `nats_mini_operator_leader`: 1 while this process holds the leader Lease.
//!
//! One [`Metrics`] per process, each with its own registry (tests make several).

use crate::Error;
use prometheus::{
    Encoder, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, Opts, Registry,
    TextEncoder,
};
use std::time::Instant;

/// Upper bounds of the duration histogram's buckets, in seconds: a reconcile is a handful of
/// API calls plus one `/routez` fetch per ready pod (bounded by its timeout).
const DURATION_BUCKETS: [f64; 9] = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0];

/// The metrics and the registry that exposes them.
#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    pub reconciles: IntCounter,
    pub errors: IntCounterVec,
    pub duration: Histogram,
    pub leader: IntGauge,
}

impl Metrics {
    /// Registers every metric in a fresh registry. Fails only on a bad metric definition
    /// (the unit test below would catch it).
    pub fn new() -> prometheus::Result<Metrics> {
        let registry = Registry::new();
        let reconciles = IntCounter::new(
            "nats_mini_operator_reconciles_total",
            "Reconciles of NatsMini objects started",
        )?;
        let errors = IntCounterVec::new(
            Opts::new(
                "nats_mini_operator_reconcile_errors_total",
                "Reconciles that failed, by error class",
            ),
            &["error"],
        )?;
        let duration = Histogram::with_opts(
            HistogramOpts::new(
                "nats_mini_operator_reconcile_duration_seconds",
                "Duration of reconciles",
            )
            .buckets(DURATION_BUCKETS.to_vec()),
        )?;
        let leader = IntGauge::new(
            "nats_mini_operator_leader",
            "1 while this operator process holds the leader Lease",
        )?;
        for c in [
            Box::new(reconciles.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(errors.clone()),
            Box::new(duration.clone()),
            Box::new(leader.clone()),
        ] {
            registry.register(c)?;
        }
        Ok(Metrics {
            registry,
            reconciles,
            errors,
            duration,
            leader,
        })
    }

    /// Counts a reconcile and returns a guard that observes its duration when dropped.
    pub fn reconcile_started(&self) -> ReconcileTimer {
        self.reconciles.inc();
        ReconcileTimer {
            start: Instant::now(),
            histogram: self.duration.clone(),
        }
    }

    /// Counts a failed reconcile.
    pub fn reconcile_failed(&self, error: &Error) {
        self.errors
            .with_label_values(&[error.metric_label().as_str()])
            .inc();
    }

    /// Everything in the Prometheus text format.
    pub fn encode(&self) -> String {
        let mut buf = Vec::new();
        // Encoding into a Vec only fails on invalid metric families, which the registry
        // never holds.
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut buf);
        String::from_utf8_lossy(&buf).into_owned()
    }
}

/// Observes the time since [`Metrics::reconcile_started`] when dropped.
pub struct ReconcileTimer {
    start: Instant,
    histogram: Histogram,
}

impl Drop for ReconcileTimer {
    fn drop(&mut self) {
        self.histogram.observe(self.start.elapsed().as_secs_f64());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_metric_is_exposed_after_one_failed_reconcile() {
        let m = Metrics::new().unwrap();
        drop(m.reconcile_started());
        m.reconcile_failed(&Error::MissingMetadata("uid"));
        m.leader.set(1);
        let text = m.encode();
        assert!(
            text.contains("nats_mini_operator_reconciles_total 1"),
            "{text}"
        );
        assert!(
            text.contains(
                "nats_mini_operator_reconcile_errors_total{error=\"missing_metadata\"} 1"
            ),
            "{text}"
        );
        assert!(
            text.contains("nats_mini_operator_reconcile_duration_seconds_count 1"),
            "{text}"
        );
        assert!(text.contains("nats_mini_operator_leader 1"), "{text}");
    }
}
