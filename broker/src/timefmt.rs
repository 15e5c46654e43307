//! Time formats nats-server's tools parse: RFC 3339 UTC with nanoseconds (`/varz` `start`),
//! its uptime style (`1y2d3h4m5s`, `3m2s`, `0s`), and Go's `time.Duration` text (`474µs`), which
//! prometheus-nats-exporter parses from `/connz` `rtt`. No timezone database is needed: all UTC.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Seconds since the epoch → (year, month, day, hour, minute, second) in UTC.
pub fn civil(secs: u64) -> (i64, u32, u32, u32, u32, u32) {
    let days = (secs / 86400) as i64;
    let rem = secs % 86400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = if m <= 2 { y + 1 } else { y };
    (
        y,
        m,
        d,
        (rem / 3600) as u32,
        (rem % 3600 / 60) as u32,
        (rem % 60) as u32,
    )
}

/// `2026-11-23T15:41:08.033417922Z` (Go's RFC3339Nano drops trailing zeros of the fraction).
pub fn rfc3339(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let (y, mo, da, h, mi, s) = civil(d.as_secs());
    let mut out = format!("{y:04}-{mo:02}-{da:02}T{h:02}:{mi:02}:{s:02}");
    let nanos = d.subsec_nanos();
    if nanos > 0 {
        let frac = format!("{nanos:09}");
        out.push('.');
        out.push_str(frac.trim_end_matches('0'));
    }
    out.push('Z');
    out
}

/// nats-server's uptime format: whole seconds, with days and years but no months.
pub fn uptime(d: Duration) -> String {
    let secs = d.as_secs();
    let (mins, hrs) = (secs / 60, secs / 3600);
    let (days, yrs) = (hrs / 24, hrs / 24 / 365);
    if yrs > 0 {
        format!(
            "{yrs}y{}d{}h{}m{}s",
            days % 365,
            hrs % 24,
            mins % 60,
            secs % 60
        )
    } else if days > 0 {
        format!("{days}d{}h{}m{}s", hrs % 24, mins % 60, secs % 60)
    } else if hrs > 0 {
        format!("{hrs}h{}m{}s", mins % 60, secs % 60)
    } else if mins > 0 {
        format!("{mins}m{}s", secs % 60)
    } else {
        format!("{secs}s")
    }
}

/// Go's `time.Duration.String()`: `0s`, `1ns`, `474µs`, `1.5ms`, `2.000123s`, `1m30s`, `1h0m0s`.
pub fn go_duration(d: Duration) -> String {
    let nanos = d.as_nanos();
    if nanos == 0 {
        return "0s".into();
    }
    let frac = |v: u128, unit: u128, suffix: &str| {
        let whole = v / unit;
        let rem = v % unit;
        if rem == 0 {
            format!("{whole}{suffix}")
        } else {
            let width = unit.ilog10() as usize;
            let f = format!("{rem:0width$}");
            format!("{whole}.{}{suffix}", f.trim_end_matches('0'))
        }
    };
    if nanos < 1_000 {
        return format!("{nanos}ns");
    }
    if nanos < 1_000_000 {
        return frac(nanos, 1_000, "µs");
    }
    if nanos < 1_000_000_000 {
        return frac(nanos, 1_000_000, "ms");
    }
    let secs = nanos / 1_000_000_000;
    let sub = nanos % 1_000_000_000;
    let s_part = |s: u128| frac(s * 1_000_000_000 + sub, 1_000_000_000, "s");
    if secs < 60 {
        return s_part(secs);
    }
    let (h, m, s) = (secs / 3600, secs % 3600 / 60, secs % 60);
    if h > 0 {
        format!("{h}h{m}m{}", s_part(s))
    } else {
        format!("{m}m{}", s_part(s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates() {
        assert_eq!(civil(0), (1970, 1, 1, 0, 0, 0));
        assert_eq!(civil(1_795_446_336), (2026, 11, 23, 15, 5, 36));
        assert_eq!(civil(1_709_208_000), (2024, 2, 29, 12, 0, 0));
    }

    #[test]
    fn rfc3339_like_go() {
        let t = UNIX_EPOCH + Duration::new(1_795_446_336, 33_417_922);
        assert_eq!(rfc3339(t), "2026-11-23T15:05:36.033417922Z");
        let t = UNIX_EPOCH + Duration::new(1_795_446_336, 500_000_000);
        assert_eq!(rfc3339(t), "2026-11-23T15:05:36.5Z");
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00Z");
    }

    #[test]
    fn uptimes() {
        assert_eq!(uptime(Duration::from_secs(0)), "0s");
        assert_eq!(uptime(Duration::from_millis(1999)), "1s");
        assert_eq!(uptime(Duration::from_secs(182)), "3m2s");
        assert_eq!(uptime(Duration::from_secs(3600)), "1h0m0s");
        assert_eq!(uptime(Duration::from_secs(86400 * 2 + 5)), "2d0h0m5s");
        assert_eq!(uptime(Duration::from_secs(86400 * 367 + 61)), "1y2d0h1m1s");
    }

    #[test]
    fn go_durations() {
        assert_eq!(go_duration(Duration::ZERO), "0s");
        assert_eq!(go_duration(Duration::from_nanos(1)), "1ns");
        assert_eq!(go_duration(Duration::from_nanos(474_000)), "474µs");
        assert_eq!(go_duration(Duration::from_nanos(474_123)), "474.123µs");
        assert_eq!(go_duration(Duration::from_micros(1500)), "1.5ms");
        assert_eq!(go_duration(Duration::from_secs(2)), "2s");
        assert_eq!(
            go_duration(Duration::from_nanos(2_000_123_000)),
            "2.000123s"
        );
        assert_eq!(go_duration(Duration::from_secs(90)), "1m30s");
        assert_eq!(go_duration(Duration::from_secs(3600)), "1h0m0s");
    }
}
