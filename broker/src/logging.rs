//! Log output in nats-server's shape — `[pid] 2006/01/02 15:04:05.000000 [INF] message` — on
//! stderr and, with `-l FILE`, in that file too, because operators and test harnesses grep for
//! these lines (`Server is ready`, `Listening for client connections on`, `Slow Consumer
//! Detected`): nats.py reads stderr, nats.rs polls the log file. `--log_format json` writes
//! one JSON object per line instead, for Kubernetes log pipelines.

use crate::options::{LogLevel, Options};
use parking_lot::Mutex;
use std::fmt;
use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, MakeWriter};
use tracing_subscriber::registry::LookupSpan;

/// What the logger needs from the options.
#[derive(Debug, Clone)]
pub struct LogConfig {
    pub level: LogLevel,
    pub file: Option<PathBuf>,
    pub logtime: bool,
    pub json: bool,
}

impl From<&Options> for LogConfig {
    fn from(o: &Options) -> Self {
        LogConfig {
            level: o.log_level,
            file: o.log_file.clone(),
            logtime: o.logtime,
            json: o.log_json,
        }
    }
}

struct NatsFormat {
    pid: u32,
    logtime: bool,
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

/// The line prefix: `[pid] date time [TAG] ` (without the time when `logtime` is off).
fn prefix(pid: u32, logtime: bool, tag: &str) -> String {
    if !logtime {
        return format!("[{pid}] [{tag}] ");
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let (y, mo, d, h, mi, s) = crate::timefmt::civil(now.as_secs());
    format!(
        "[{pid}] {y:04}/{mo:02}/{d:02} {h:02}:{mi:02}:{s:02}.{:06} [{tag}] ",
        now.subsec_micros()
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
        w.write_str(&prefix(
            self.pid,
            self.logtime,
            tag(event.metadata().level()),
        ))?;
        ctx.field_format().format_fields(w.by_ref(), event)?;
        writeln!(w)
    }
}

/// Writes every log line to stderr and, when configured, appends it to the log file.
#[derive(Clone)]
struct Tee {
    file: Option<Arc<Mutex<std::fs::File>>>,
}

/// The log file's path, for [`reopen`].
static FILE_PATH: OnceLock<PathBuf> = OnceLock::new();

/// Reopens the log file (SIGUSR1 / `--signal reopen`), so log rotation can move the old one
/// away. Returns an error naming the file if it cannot be opened.
pub fn reopen() -> Result<(), String> {
    let (Some(path), Some((tee, _))) = (FILE_PATH.get(), SINK.get()) else {
        return Ok(());
    };
    let Some(file) = &tee.file else {
        return Ok(());
    };
    let fresh = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| format!("cannot reopen log file {}: {e}", path.display()))?;
    *file.lock() = fresh;
    Ok(())
}

struct TeeWriter<'a> {
    tee: &'a Tee,
}

impl Write for TeeWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let _ = std::io::stderr().write_all(buf);
        if let Some(f) = &self.tee.file {
            let _ = f.lock().write_all(buf);
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Tee {
    type Writer = TeeWriter<'a>;
    fn make_writer(&'a self) -> Self::Writer {
        TeeWriter { tee: self }
    }
}

static SINK: OnceLock<(Tee, bool)> = OnceLock::new();

type LevelHandle = tracing_subscriber::reload::Handle<
    tracing::level_filters::LevelFilter,
    tracing_subscriber::Registry,
>;

/// Changes the level of the installed logger (config reload).
static LEVEL: OnceLock<LevelHandle> = OnceLock::new();

fn filter_of(level: LogLevel) -> tracing::level_filters::LevelFilter {
    match level {
        LogLevel::Error => tracing::level_filters::LevelFilter::ERROR,
        LogLevel::Warn => tracing::level_filters::LevelFilter::WARN,
        LogLevel::Info => tracing::level_filters::LevelFilter::INFO,
        LogLevel::Debug => tracing::level_filters::LevelFilter::DEBUG,
        LogLevel::Trace => tracing::level_filters::LevelFilter::TRACE,
    }
}

/// Sets the log level of the running logger (no-op before [`init`]).
pub fn set_level(level: LogLevel) {
    if let Some(h) = LEVEL.get() {
        let _ = h.modify(|f| *f = filter_of(level));
    }
}

/// Installs the global logger. Safe to call more than once (later calls are no-ops).
pub fn init(cfg: &LogConfig) -> Result<(), String> {
    let file = match &cfg.file {
        Some(p) => Some(Arc::new(Mutex::new(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
                .map_err(|e| format!("cannot open log file {}: {e}", p.display()))?,
        ))),
        None => None,
    };
    if let Some(p) = &cfg.file {
        let _ = FILE_PATH.set(p.clone());
    }
    let tee = Tee { file };
    let _ = SINK.set((tee.clone(), cfg.logtime));
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let (filter, handle) = tracing_subscriber::reload::Layer::new(filter_of(cfg.level));
    let registry = tracing_subscriber::registry().with(filter);
    let installed = if cfg.json {
        registry
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .with_current_span(false)
                    .with_writer(tee),
            )
            .try_init()
    } else {
        registry
            .with(
                tracing_subscriber::fmt::layer()
                    .event_format(NatsFormat {
                        pid: std::process::id(),
                        logtime: cfg.logtime,
                    })
                    .with_writer(tee),
            )
            .try_init()
    };
    if installed.is_ok() {
        let _ = LEVEL.set(handle);
    }
    Ok(())
}

/// Logs a fatal error as nats-server does (`[FTL]`), before the process exits non-zero.
pub fn fatal(msg: &str) {
    let (tee, logtime) = SINK.get().cloned().unwrap_or((Tee { file: None }, true));
    let line = format!("{}{msg}\n", prefix(std::process::id(), logtime, "FTL"));
    let _ = tee.make_writer().write_all(line.as_bytes());
}
