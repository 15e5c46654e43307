//! What a bench run found, the math behind it (rates, spread, percentiles, medians, ratios),
//! and its presentation: the table people read, the JSON machines read, and the comparison of
//! several servers' reports.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// One client's count over its own active time.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ClientStats {
    /// `pub`, `sub`, `req` or `rep`.
    pub role: String,
    pub id: usize,
    pub msgs: u64,
    pub bytes: u64,
    pub secs: f64,
}

impl ClientStats {
    pub fn msgs_per_s(&self) -> f64 {
        rate(self.msgs as f64, self.secs)
    }
}

fn yes() -> bool {
    true
}

/// `n / secs`, 0 when no time passed.
pub fn rate(n: f64, secs: f64) -> f64 {
    if secs > 0.0 { n / secs } else { 0.0 }
}

/// Min / mean / max of per-client rates.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq)]
pub struct Spread {
    pub min: f64,
    pub avg: f64,
    pub max: f64,
}

impl Spread {
    pub fn of(values: &[f64]) -> Option<Spread> {
        if values.is_empty() {
            return None;
        }
        let min = values.iter().copied().fold(f64::INFINITY, f64::min);
        let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let avg = values.iter().sum::<f64>() / values.len() as f64;
        Some(Spread { min, avg, max })
    }
}

/// A role's aggregate: all its clients' messages over the span from the first one's start to
/// the last one's end.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Group {
    pub clients: usize,
    pub msgs: u64,
    pub bytes: u64,
    pub secs: f64,
    pub msgs_per_s: f64,
    pub mb_per_s: f64,
    pub spread: Option<Spread>,
}

impl Group {
    pub fn new(clients: &[ClientStats], secs: f64) -> Group {
        let msgs = clients.iter().map(|c| c.msgs).sum();
        let bytes = clients.iter().map(|c| c.bytes).sum();
        let rates: Vec<f64> = clients.iter().map(ClientStats::msgs_per_s).collect();
        Group {
            clients: clients.len(),
            msgs,
            bytes,
            secs,
            msgs_per_s: rate(msgs as f64, secs),
            mb_per_s: rate(bytes as f64, secs) / 1e6,
            spread: Spread::of(&rates),
        }
    }
}

/// Latency percentiles in microseconds.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq)]
pub struct Latency {
    pub count: u64,
    pub min_us: f64,
    pub p50_us: f64,
    pub p90_us: f64,
    pub p99_us: f64,
    pub p999_us: f64,
    pub max_us: f64,
}

/// A latency histogram in nanoseconds (HdrHistogram, 3 significant digits).
pub type Histogram = hdrhistogram::Histogram<u64>;

/// 1 ns to 100 s; larger values are clamped (`saturating_record`).
pub fn new_histogram() -> Histogram {
    Histogram::new_with_bounds(1, 100_000_000_000, 3).expect("valid histogram bounds")
}

impl Latency {
    pub fn of(h: &Histogram) -> Option<Latency> {
        if h.is_empty() {
            return None;
        }
        let us = |ns: u64| ns as f64 / 1000.0;
        Some(Latency {
            count: h.len(),
            min_us: us(h.min()),
            p50_us: us(h.value_at_quantile(0.50)),
            p90_us: us(h.value_at_quantile(0.90)),
            p99_us: us(h.value_at_quantile(0.99)),
            p999_us: us(h.value_at_quantile(0.999)),
            max_us: us(h.max()),
        })
    }
}

/// Idle-connection memory (`conns`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ConnsStats {
    pub conns: usize,
    /// Connections the server's `/varz` counted with ours open.
    pub server_connections: u64,
    pub rss_before: u64,
    pub rss_after: u64,
    pub rss_per_conn: f64,
    pub open_secs: f64,
}

/// One number to compare across servers.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Metric {
    pub name: String,
    pub value: f64,
    #[serde(default = "yes")]
    pub higher_is_better: bool,
}

impl Metric {
    pub fn higher(name: &str, value: f64) -> Metric {
        Metric {
            name: name.into(),
            value,
            higher_is_better: true,
        }
    }
    pub fn lower(name: &str, value: f64) -> Metric {
        Metric {
            name: name.into(),
            value,
            higher_is_better: false,
        }
    }
}

/// Everything one run found. Missing fields read as defaults, so a script can add its own
/// lines (`{"name": "startup", "label": "…", "metrics": […]}`) to a comparison.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct Report {
    pub scenario: String,
    /// The case's name for comparisons (`--name`), else the scenario.
    pub name: String,
    /// The server's label for comparisons (`--label`), else the server's INFO name.
    pub label: String,
    pub server: String,
    pub size: usize,
    pub pubs: usize,
    pub subs: usize,
    pub inflight: usize,
    /// Messages published (requests sent for `reqrep`).
    pub sent: u64,
    /// Deliveries the subscribers should have seen (sent × subscribers, or sent for a queue).
    pub expected: u64,
    /// Deliveries the subscribers reported.
    pub received: u64,
    /// `expected - received` when positive: shed by the server (or lost).
    pub dropped: u64,
    /// Queue only: sequence numbers delivered more than once, and never delivered.
    pub duplicates: u64,
    pub missing: u64,
    pub pub_group: Option<Group>,
    pub sub_group: Option<Group>,
    pub latency: Option<Latency>,
    pub conns: Option<ConnsStats>,
    pub server_cpu_secs: Option<f64>,
    /// The server's socket I/O during the run (`/proc/PID/io`, with `--server-pid`).
    #[serde(default)]
    pub server_io: Option<ServerIo>,
    pub elapsed_secs: f64,
    pub clients: Vec<ClientStats>,
    pub notes: Vec<String>,
    pub metrics: Vec<Metric>,
}

/// How batched the server's I/O was: its read and write system calls during the run, and the
/// payload bytes per call (messages in, or deliveries out, times the payload size). A syscall
/// costs the same whatever it moves, so more bytes per call is how close a server gets to the
/// machine's copy rate.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ServerIo {
    pub reads: u64,
    pub writes: u64,
    pub read_payload_bytes: u64,
    pub write_payload_bytes: u64,
}

impl ServerIo {
    pub fn bytes_per_read(&self) -> Option<f64> {
        (self.reads > 0 && self.read_payload_bytes > 0)
            .then(|| self.read_payload_bytes as f64 / self.reads as f64)
    }
    pub fn bytes_per_write(&self) -> Option<f64> {
        (self.writes > 0 && self.write_payload_bytes > 0)
            .then(|| self.write_payload_bytes as f64 / self.writes as f64)
    }
}

impl Report {
    /// Server CPU seconds per million deliveries (or sends, when nothing is delivered).
    pub fn cpu_per_million(&self) -> Option<f64> {
        let n = if self.received > 0 {
            self.received
        } else {
            self.sent
        };
        let cpu = self.server_cpu_secs?;
        (n > 0).then(|| cpu / (n as f64 / 1e6))
    }
}

/// `1234567.8` → `1,234,568`.
pub fn thousands(v: f64) -> String {
    if !v.is_finite() {
        return format!("{v}");
    }
    let n = v.round() as i128;
    let s = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 { format!("-{out}") } else { out }
}

/// A number with a sensible precision for tables.
pub fn short(v: f64) -> String {
    let a = v.abs();
    if a >= 10_000.0 {
        thousands(v)
    } else if a >= 100.0 {
        format!("{v:.0}")
    } else if a >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

fn bytes_h(b: f64) -> String {
    if b.abs() >= 1024.0 * 1024.0 {
        format!("{:.1} MiB", b / (1024.0 * 1024.0))
    } else if b.abs() >= 1024.0 {
        format!("{:.1} KiB", b / 1024.0)
    } else {
        format!("{b:.0} B")
    }
}

/// The human table for one report.
pub fn render(r: &Report) -> String {
    let mut o = String::new();
    let what = match r.scenario.as_str() {
        "reqrep" => format!(
            "{} requester(s) with {} in flight each, {} responder(s), {} B payloads",
            r.pubs, r.inflight, r.subs, r.size
        ),
        "conns" => "idle connections".to_string(),
        "pub" => format!("{} publisher(s), {} B payloads", r.pubs, r.size),
        "sub" => format!("{} subscriber(s)", r.subs),
        "queue" => format!(
            "{} publisher(s) -> a queue group of {}, {} B payloads",
            r.pubs, r.subs, r.size
        ),
        _ => format!(
            "{} publisher(s) -> {} subscriber(s), {} B payloads",
            r.pubs, r.subs, r.size
        ),
    };
    let _ = writeln!(o, "{} on {} ({}): {what}", r.name, r.server, r.label);
    if r.pub_group.is_some() || r.sub_group.is_some() {
        let _ = writeln!(
            o,
            "\n{:<6} {:>8} {:>12} {:>14} {:>10}   per-client msgs/s min / avg / max",
            "", "clients", "msgs", "msgs/s", "MB/s"
        );
        let first = if r.scenario == "reqrep" { "req" } else { "pub" };
        for (role, g) in [(first, &r.pub_group), ("sub", &r.sub_group)] {
            let Some(g) = g else { continue };
            let spread = g
                .spread
                .map(|s| {
                    format!(
                        "{} / {} / {}",
                        thousands(s.min),
                        thousands(s.avg),
                        thousands(s.max)
                    )
                })
                .unwrap_or_default();
            let _ = writeln!(
                o,
                "{role:<6} {:>8} {:>12} {:>14} {:>10.1}   {spread}",
                g.clients,
                thousands(g.msgs as f64),
                thousands(g.msgs_per_s),
                g.mb_per_s
            );
        }
    }
    match r.scenario.as_str() {
        "conns" => {}
        "pub" => {
            let _ = writeln!(o, "\nsent {} (no subscribers)", thousands(r.sent as f64));
        }
        sc => {
            let _ = writeln!(
                o,
                "\nsent {}, received {} of {} expected, dropped {}{}",
                thousands(r.sent as f64),
                thousands(r.received as f64),
                thousands(r.expected as f64),
                thousands(r.dropped as f64),
                if sc == "queue" {
                    format!(", duplicates {}, missing {}", r.duplicates, r.missing)
                } else {
                    String::new()
                }
            );
        }
    }
    if let Some(l) = &r.latency {
        let what = if r.scenario == "reqrep" {
            "round trip"
        } else {
            "publish to delivery"
        };
        let _ = writeln!(
            o,
            "latency ({what}, µs): p50 {}  p90 {}  p99 {}  p99.9 {}  max {}  (min {}, n={})",
            short(l.p50_us),
            short(l.p90_us),
            short(l.p99_us),
            short(l.p999_us),
            short(l.max_us),
            short(l.min_us),
            thousands(l.count as f64)
        );
    }
    if let Some(c) = &r.conns {
        let _ = writeln!(
            o,
            "\n{} connections open (server counts {}) in {:.2} s; server RSS {} → {}: {} per connection",
            c.conns,
            c.server_connections,
            c.open_secs,
            bytes_h(c.rss_before as f64),
            bytes_h(c.rss_after as f64),
            bytes_h(c.rss_per_conn)
        );
    }
    if let (Some(cpu), Some(per)) = (r.server_cpu_secs, r.cpu_per_million()) {
        let _ = writeln!(o, "server CPU {cpu:.2} s: {per:.3} s per million messages");
    }
    if let Some(io) = &r.server_io {
        let each =
            |v: Option<f64>| v.map_or(String::new(), |b| format!(" ({b:.0} payload B each)"));
        let _ = writeln!(
            o,
            "server syscalls: {} reads{}, {} writes{}",
            thousands(io.reads as f64),
            each(io.bytes_per_read()),
            thousands(io.writes as f64),
            each(io.bytes_per_write()),
        );
    }
    for n in &r.notes {
        let _ = writeln!(o, "note: {n}");
    }
    o
}

/// The median; the mean of the middle two for an even count. `None` when empty.
pub fn median(values: &[f64]) -> Option<f64> {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let m = v.len() / 2;
    Some(if v.len() % 2 == 1 {
        v[m]
    } else {
        (v[m - 1] + v[m]) / 2.0
    })
}

/// `a / b`, `None` when `b` is zero.
pub fn ratio(a: f64, b: f64) -> Option<f64> {
    (b != 0.0 && a.is_finite() && b.is_finite()).then(|| a / b)
}

/// How much better `baseline` is than `other` (> 1: better), whichever way the metric points.
pub fn advantage(baseline: f64, other: f64, higher_is_better: bool) -> Option<f64> {
    if higher_is_better {
        ratio(baseline, other)
    } else {
        ratio(other, baseline)
    }
}

/// One row of a comparison: a case's metric, the median per label, and the ratios.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CompareRow {
    pub case: String,
    pub metric: String,
    pub higher_is_better: bool,
    /// Label → (median, rounds).
    pub medians: BTreeMap<String, (f64, usize)>,
    /// Other label → baseline / other.
    pub ratios: BTreeMap<String, f64>,
    /// Baseline against the best of the others, oriented so that > 1 means ahead.
    pub advantage_vs_best: Option<f64>,
}

/// A comparison of several servers' reports.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Comparison {
    pub baseline: String,
    /// Labels in order of first appearance, baseline first.
    pub labels: Vec<String>,
    pub rows: Vec<CompareRow>,
    /// Label → deliveries dropped, duplicated or missing over all rounds, per case.
    pub losses: Vec<String>,
}

/// Medians per (case, metric, label) and ratios of the baseline to each other label.
pub fn compare(reports: &[Report], baseline: &str) -> Comparison {
    let mut labels: Vec<String> = vec![baseline.to_string()];
    let mut cases: Vec<String> = Vec::new();
    for r in reports {
        if !labels.contains(&r.label) {
            labels.push(r.label.clone());
        }
        if !cases.contains(&r.name) {
            cases.push(r.name.clone());
        }
    }
    if !reports.iter().any(|r| r.label == baseline) {
        labels.remove(0);
    }
    let mut rows = Vec::new();
    let mut losses = Vec::new();
    for case in &cases {
        let of_case: Vec<&Report> = reports.iter().filter(|r| &r.name == case).collect();
        let mut metric_names: Vec<(String, bool)> = Vec::new();
        for r in &of_case {
            for m in &r.metrics {
                if !metric_names.iter().any(|(n, _)| n == &m.name) {
                    metric_names.push((m.name.clone(), m.higher_is_better));
                }
            }
        }
        for (metric, higher) in metric_names {
            let mut medians = BTreeMap::new();
            for l in &labels {
                let vals: Vec<f64> = of_case
                    .iter()
                    .filter(|r| &r.label == l)
                    .flat_map(|r| {
                        r.metrics
                            .iter()
                            .filter(|m| m.name == metric)
                            .map(|m| m.value)
                    })
                    .collect();
                if let Some(m) = median(&vals) {
                    medians.insert(l.clone(), (m, vals.len()));
                }
            }
            let base = medians.get(baseline).map(|(v, _)| *v);
            let mut ratios = BTreeMap::new();
            let mut best: Option<f64> = None;
            for (l, (v, _)) in &medians {
                if l == baseline {
                    continue;
                }
                if let Some(b) = base
                    && let Some(r) = ratio(b, *v)
                {
                    ratios.insert(l.clone(), r);
                }
                best = Some(match best {
                    None => *v,
                    Some(b) if higher => b.max(*v),
                    Some(b) => b.min(*v),
                });
            }
            let advantage_vs_best = match (base, best) {
                (Some(b), Some(o)) => advantage(b, o, higher),
                _ => None,
            };
            rows.push(CompareRow {
                case: case.clone(),
                metric,
                higher_is_better: higher,
                medians,
                ratios,
                advantage_vs_best,
            });
        }
        for l in &labels {
            let (mut dropped, mut dup, mut missing, mut rounds) = (0u64, 0u64, 0u64, 0usize);
            for r in of_case.iter().filter(|r| &r.label == l) {
                dropped += r.dropped;
                dup += r.duplicates;
                missing += r.missing;
                rounds += 1;
            }
            if dropped + dup + missing > 0 {
                losses.push(format!(
                    "{case}: {l} dropped {dropped}, duplicated {dup}, missed {missing} over {rounds} rounds"
                ));
            }
        }
    }
    Comparison {
        baseline: baseline.to_string(),
        labels,
        rows,
        losses,
    }
}

/// The comparison as a markdown table.
pub fn compare_markdown(c: &Comparison) -> String {
    let others: Vec<&String> = c.labels.iter().filter(|l| **l != c.baseline).collect();
    let mut o = String::new();
    let _ = write!(o, "| case | metric |");
    for l in &c.labels {
        let _ = write!(o, " {l} |");
    }
    for l in &others {
        let _ = write!(o, " {} / {l} |", c.baseline);
    }
    let _ = writeln!(o, " vs the faster |");
    let _ = write!(o, "|---|---|");
    for _ in 0..c.labels.len() + others.len() + 1 {
        let _ = write!(o, "---:|");
    }
    o.push('\n');
    for r in &c.rows {
        let arrow = if r.higher_is_better { "↑" } else { "↓" };
        let _ = write!(o, "| {} | {} {arrow} |", r.case, r.metric);
        for l in &c.labels {
            match r.medians.get(l) {
                Some((v, _)) => {
                    let _ = write!(o, " {} |", short(*v));
                }
                None => o.push_str(" – |"),
            }
        }
        for l in &others {
            match r.ratios.get(*l) {
                Some(x) => {
                    let _ = write!(o, " {x:.2} |");
                }
                None => o.push_str(" – |"),
            }
        }
        match r.advantage_vs_best {
            Some(a) if a >= 1.0 => {
                let _ = writeln!(o, " ahead {a:.2}× |");
            }
            Some(a) => {
                let _ = writeln!(o, " **behind** {a:.2}× |");
            }
            None => o.push_str(" – |\n"),
        }
    }
    if !c.losses.is_empty() {
        o.push('\n');
        for l in &c.losses {
            let _ = writeln!(o, "- {l}");
        }
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    fn approx(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
    }

    #[test]
    fn medians_and_ratios() {
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[3.0]), Some(3.0));
        assert_eq!(median(&[5.0, 1.0, 3.0]), Some(3.0));
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), Some(2.5));
        assert_eq!(median(&[f64::NAN, 2.0]), Some(2.0));
        assert_eq!(ratio(3.0, 2.0), Some(1.5));
        assert_eq!(ratio(3.0, 0.0), None);
        assert_eq!(advantage(2.0, 1.0, true), Some(2.0));
        assert_eq!(advantage(2.0, 1.0, false), Some(0.5));
    }

    #[test]
    fn percentiles_from_the_histogram() {
        let mut h = new_histogram();
        for ns in 1..=1000u64 {
            h.saturating_record(ns * 1000);
        }
        let mut clamped = new_histogram();
        clamped.saturating_record(u64::MAX);
        assert!(clamped.max() >= 100_000_000_000);
        let l = Latency::of(&h).unwrap();
        assert_eq!(l.count, 1000);
        // 3 significant digits: within 0.1%.
        let near = |got: f64, want: f64| (got - want).abs() <= want * 0.001 + 1e-9;
        assert!(near(l.p50_us, 500.0), "{l:?}");
        assert!(near(l.p90_us, 900.0), "{l:?}");
        assert!(near(l.p99_us, 990.0), "{l:?}");
        assert!(near(l.p999_us, 999.0), "{l:?}");
        assert!(near(l.max_us, 1000.0), "{l:?}");
        assert!(near(l.min_us, 1.0), "{l:?}");
        assert!(Latency::of(&new_histogram()).is_none());
    }

    #[test]
    fn groups_and_spread() {
        let c = |msgs, secs| ClientStats {
            role: "sub".into(),
            id: 0,
            msgs,
            bytes: msgs * 100,
            secs,
        };
        let g = Group::new(&[c(1000, 1.0), c(3000, 2.0)], 2.0);
        assert_eq!((g.clients, g.msgs, g.bytes), (2, 4000, 400_000));
        assert!(approx(g.msgs_per_s, 2000.0));
        assert!(approx(g.mb_per_s, 0.2));
        let s = g.spread.unwrap();
        assert!(approx(s.min, 1000.0) && approx(s.avg, 1250.0) && approx(s.max, 1500.0));
        assert_eq!(Spread::of(&[]), None);
        assert_eq!(rate(5.0, 0.0), 0.0);
    }

    #[test]
    fn number_formats() {
        assert_eq!(thousands(1234567.8), "1,234,568");
        assert_eq!(thousands(999.0), "999");
        assert_eq!(thousands(-1000.0), "-1,000");
        assert_eq!(short(12.345), "12.3");
        assert_eq!(short(1.2345), "1.23");
        assert_eq!(short(123456.0), "123,456");
    }

    fn rep(name: &str, label: &str, v: f64, lat: f64) -> Report {
        Report {
            name: name.into(),
            label: label.into(),
            metrics: vec![Metric::higher("msgs/s", v), Metric::lower("p50 µs", lat)],
            ..Report::default()
        }
    }

    #[test]
    fn comparison_takes_medians_and_ratios() {
        let reports = vec![
            rep("pubsub", "a", 100.0, 10.0),
            rep("pubsub", "b", 50.0, 20.0),
            rep("pubsub", "c", 80.0, 5.0),
            rep("pubsub", "a", 300.0, 30.0),
            rep("pubsub", "b", 60.0, 40.0),
            rep("pubsub", "c", 90.0, 6.0),
            rep("pubsub", "a", 200.0, 20.0),
            rep("pubsub", "b", 70.0, 60.0),
            rep("pubsub", "c", 100.0, 7.0),
        ];
        let c = compare(&reports, "a");
        assert_eq!(c.labels, ["a", "b", "c"]);
        assert_eq!(c.rows.len(), 2);
        let thr = &c.rows[0];
        assert_eq!(thr.medians["a"], (200.0, 3));
        assert_eq!(thr.medians["b"], (60.0, 3));
        assert!(approx(thr.ratios["b"], 200.0 / 60.0));
        assert!(approx(thr.ratios["c"], 200.0 / 90.0));
        assert!(approx(thr.advantage_vs_best.unwrap(), 200.0 / 90.0));
        let lat = &c.rows[1];
        assert_eq!(lat.medians["a"].0, 20.0);
        // Lower is better: the best other is c (6 µs); a at 20 µs is behind.
        assert!(approx(lat.advantage_vs_best.unwrap(), 6.0 / 20.0));
        let md = compare_markdown(&c);
        assert!(
            md.contains("| pubsub | msgs/s ↑ | 200 | 60.0 | 90.0 | 3.33 | 2.22 | ahead 2.22× |"),
            "{md}"
        );
        assert!(md.contains("**behind** 0.30×"), "{md}");
    }

    #[test]
    fn partial_lines_from_scripts_parse() {
        let r: Report = serde_json::from_str(
            r#"{"name":"startup","label":"x","metrics":[{"name":"ms","value":3.5,"higher_is_better":false}]}"#,
        )
        .unwrap();
        assert_eq!((r.name.as_str(), r.metrics[0].value), ("startup", 3.5));
        assert!(!r.metrics[0].higher_is_better);
    }

    #[test]
    fn comparison_reports_losses_and_missing_baseline() {
        let mut r = rep("queue", "b", 1.0, 1.0);
        r.dropped = 5;
        let c = compare(&[r], "a");
        assert_eq!(c.labels, ["b"]);
        assert_eq!(c.rows[0].advantage_vs_best, None);
        assert_eq!(
            c.losses,
            ["queue: b dropped 5, duplicated 0, missed 0 over 1 rounds"]
        );
    }
}
