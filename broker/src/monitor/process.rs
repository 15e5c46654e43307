//! Process resource usage for `/varz` and `/metrics`: resident memory and CPU percent, read
//! from `/proc/self` (Linux, where nats-mini runs in production).

use parking_lot::Mutex;
use std::time::Instant;

/// Resident set size in bytes (0 when `/proc` is unavailable).
pub fn rss_bytes() -> u64 {
    let Ok(statm) = std::fs::read_to_string("/proc/self/statm") else {
        return 0;
    };
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    pages * u64::try_from(page).unwrap_or(4096)
}

/// Total user + system CPU time of this process in seconds.
pub fn cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let Some(rest) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
        return 0.0;
    };
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|s| s.parse::<u64>().ok()).unwrap_or(0);
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    (ticks(11) + ticks(12)) as f64 / hz
}

/// CPU percent since the previous sample (like `ps`, 100 = one core), as nats-server reports.
#[derive(Debug)]
pub struct CpuSampler {
    last: Mutex<(Instant, f64)>,
}

impl Default for CpuSampler {
    fn default() -> Self {
        CpuSampler {
            last: Mutex::new((Instant::now(), cpu_seconds())),
        }
    }
}

impl CpuSampler {
    pub fn percent(&self) -> f64 {
        let now = Instant::now();
        let cpu = cpu_seconds();
        let mut last = self.last.lock();
        let wall = now.duration_since(last.0).as_secs_f64();
        let pct = if wall > 0.0 {
            ((cpu - last.1) / wall * 100.0).max(0.0)
        } else {
            0.0
        };
        *last = (now, cpu);
        (pct * 10.0).round() / 10.0
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_own_process() {
        assert!(super::rss_bytes() > 0);
        assert!(super::cpu_seconds() >= 0.0);
    }
}
