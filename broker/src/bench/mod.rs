//! `nats-mini bench`: load scenarios against any NATS server (ours or nats-server), and
//! `bench compare` for side-by-side medians and ratios.
//!
//! - [`args`]: the command line ([`Config`], [`Scenario`], [`parse`]).
//! - [`client`]: a minimal protocol client over raw TCP (batched writes, in-place framing).
//! - [`scenarios`]: the scenarios themselves ([`run`]).
//! - [`report`]: the numbers (rates, spread, percentiles, medians, ratios) and the tables.
//! - [`svg`]: the comparison chart.
//!
//! Counting is honest: publishers count what the server acknowledged (a PING round trip after
//! their last message), subscribers what they received; drops are reported, never hidden.
//!
//! ```no_run
//! # async fn demo() -> Result<(), String> {
//! use nats_mini::bench::{Config, Scenario, ServerUrl};
//! let mut cfg = Config::new(Scenario::PubSub);
//! cfg.servers = vec![ServerUrl::parse("nats://127.0.0.1:4222")?];
//! cfg.msgs = 100_000;
//! let report = nats_mini::bench::run(&cfg).await?;
//! assert_eq!(report.dropped, 0);
//! # Ok(()) }
//! ```

pub mod args;
pub mod client;
pub mod report;
pub mod scenarios;
pub mod svg;

pub use args::{Command, CompareConfig, Config, Scenario, ServerUrl, parse, usage};
pub use report::{Comparison, Report};
pub use scenarios::Counters;

use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// Runs one scenario (no progress bar).
pub async fn run(cfg: &Config) -> Result<Report, String> {
    scenarios::run(cfg, Arc::new(Counters::default())).await
}

/// A progress bar on stderr, drawn only when stderr is a terminal.
fn progress_bar(cfg: &Config, counters: Arc<Counters>) -> Option<tokio::task::JoinHandle<()>> {
    if !cfg.progress || !std::io::stderr().is_terminal() {
        return None;
    }
    let duration = cfg.duration;
    Some(tokio::spawn(async move {
        // Short runs finish before the bar would say anything useful.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let bar = indicatif::ProgressBar::new(0);
        let style = match duration {
            Some(_) => "{spinner} {elapsed_precise} [{wide_bar}] {pos}/{len} s {msg}",
            None => "{spinner} {elapsed_precise} [{wide_bar}] {human_pos}/{human_len} {msg}",
        };
        if let Ok(s) = indicatif::ProgressStyle::with_template(style) {
            bar.set_style(s.progress_chars("=> "));
        }
        let start = std::time::Instant::now();
        loop {
            let done = counters.done.load(Ordering::Relaxed);
            match duration {
                Some(d) => {
                    bar.set_length(d.as_secs().max(1));
                    bar.set_position(start.elapsed().as_secs().min(d.as_secs()));
                }
                None => {
                    bar.set_length(counters.total.load(Ordering::Relaxed));
                    bar.set_position(done);
                }
            }
            let rate = report::rate(done as f64, start.elapsed().as_secs_f64() + 0.3);
            bar.set_message(format!("{}/s", report::thousands(rate)));
            tokio::time::sleep(Duration::from_millis(100)).await;
            if counters.total.load(Ordering::Relaxed) == u64::MAX {
                break;
            }
        }
        bar.finish_and_clear();
    }))
}

async fn run_cli(cfg: Config) -> Result<Report, String> {
    let counters = Arc::new(Counters::default());
    let bar = progress_bar(&cfg, counters.clone());
    let result = scenarios::run(&cfg, counters.clone()).await;
    if let Some(b) = bar {
        // u64::MAX tells the bar to clear itself.
        counters.total.store(u64::MAX, Ordering::Relaxed);
        let _ = b.await;
    }
    result
}

fn run_compare(c: &CompareConfig) -> Result<String, String> {
    let mut reports = Vec::new();
    for f in &c.inputs {
        let text = std::fs::read_to_string(f).map_err(|e| format!("{f}: {e}"))?;
        for (i, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let r: Report =
                serde_json::from_str(line).map_err(|e| format!("{f}:{}: {e}", i + 1))?;
            reports.push(r);
        }
    }
    let cmp = report::compare(&reports, &c.baseline);
    let md = report::compare_markdown(&cmp);
    if let Some(p) = &c.markdown {
        std::fs::write(p, &md).map_err(|e| format!("{p}: {e}"))?;
    }
    if let Some(p) = &c.svg {
        let title = format!(
            "{} against each nats-server: medians of alternating rounds",
            c.baseline
        );
        let doc = svg::chart(&cmp, &title)?;
        std::fs::write(p, doc).map_err(|e| format!("{p}: {e}"))?;
    }
    if c.json {
        serde_json::to_string_pretty(&cmp).map_err(|e| e.to_string())
    } else {
        Ok(md)
    }
}

/// `nats-mini bench …`: returns the exit status.
pub fn main(args: &[String]) -> i32 {
    let cmd = match parse(args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("nats-mini bench: {e}");
            eprint!("{}", usage());
            return 2;
        }
    };
    let cfg = match cmd {
        Command::Help => {
            print!("{}", usage());
            return 0;
        }
        Command::Compare(c) => {
            return match run_compare(&c) {
                Ok(out) => {
                    print!("{out}");
                    0
                }
                Err(e) => {
                    eprintln!("nats-mini bench compare: {e}");
                    1
                }
            };
        }
        Command::Run(c) => *c,
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("nats-mini bench: cannot start the runtime: {e}");
            return 1;
        }
    };
    let json = cfg.json;
    match rt.block_on(run_cli(cfg)) {
        Ok(r) => {
            if json {
                match serde_json::to_string(&r) {
                    Ok(s) => println!("{s}"),
                    Err(e) => {
                        eprintln!("nats-mini bench: {e}");
                        return 1;
                    }
                }
            } else {
                print!("{}", report::render(&r));
            }
            0
        }
        Err(e) => {
            eprintln!("nats-mini bench: {e}");
            1
        }
    }
}
