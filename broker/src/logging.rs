//! Log output in nats-server's shape — `[pid] 2006/01/02 15:04:05.000000 [INF] message` — on
//! stderr, because operators and test harnesses grep for these lines (`Server is ready`,
//! `Listening for client connections on`, `Slow Consumer Detected`).

use crate::options::LogLevel;
use std::fmt;
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

struct NatsFormat {
    pid: u32,
}

fn tag(level: &Level) -> &'static str {
    match *level {
        Level::ERROR => "ERR",
        Level::WARN => "WRN",
        Level::INFO => "INF",
        Level::DEBUG => "DBG",
        Level::TRACE => "TRC",
    }
}

/// Seconds since the epoch → `YYYY/MM/DD HH:MM:SS` in UTC (civil-from-days, no tz database).
fn civil(secs: u64) -> (i64, u32, u32, u32, u32, u32) {
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

impl<S, N> FormatEvent<S, N> for NatsFormat
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut w: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        let (y, mo, d, h, mi, s) = civil(now.as_secs());
        write!(
            w,
            "[{}] {y:04}/{mo:02}/{d:02} {h:02}:{mi:02}:{s:02}.{:06} [{}] ",
            self.pid,
            now.subsec_micros(),
            tag(event.metadata().level())
        )?;
        ctx.field_format().format_fields(w.by_ref(), event)?;
        writeln!(w)
    }
}

/// Installs the global logger at `level`. Safe to call more than once (later calls are no-ops).
pub fn init(level: LogLevel) {
    let filter = match level {
        LogLevel::Error => tracing::level_filters::LevelFilter::ERROR,
        LogLevel::Warn => tracing::level_filters::LevelFilter::WARN,
        LogLevel::Info => tracing::level_filters::LevelFilter::INFO,
        LogLevel::Debug => tracing::level_filters::LevelFilter::DEBUG,
        LogLevel::Trace => tracing::level_filters::LevelFilter::TRACE,
    };
    let _ = tracing_subscriber::fmt()
        .with_max_level(filter)
        .with_writer(std::io::stderr)
        .event_format(NatsFormat {
            pid: std::process::id(),
        })
        .try_init();
}

#[cfg(test)]
mod tests {
    #[test]
    fn civil_dates() {
        assert_eq!(super::civil(0), (1970, 1, 1, 0, 0, 0));
        // 2026-11-23 15:05:36 UTC
        assert_eq!(super::civil(1_795_446_336), (2026, 11, 23, 15, 5, 36));
        // 2024-02-29 (leap day) 12:00:00
        assert_eq!(super::civil(1_709_208_000), (2024, 2, 29, 12, 0, 0));
    }
}
