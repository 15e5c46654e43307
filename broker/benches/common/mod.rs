//! Settings every benchmark here shares: small samples, so a full run takes seconds on a shared
//! machine; compare runs on the same machine, not absolute numbers.

use criterion::Criterion;
use std::time::Duration;

pub fn config() -> Criterion {
    Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
}
