//! The scenarios: publishers, subscribers, queue members, requesters, responders and idle
//! connections, each a tokio task with its own connection, and the orchestration that starts
//! them in order (subscribers confirmed before anything is published), releases subscribers
//! once the publishers' last bytes were processed, and turns what each client counted into a
//! [`Report`].

use super::args::{Config, Scenario};
use super::client::{
    Batch, Conn, Creds, Frame, connect, http_get_json, msg_reply, msg_subject, now_ns, payload_seq,
    payload_ts, proc_cpu_seconds, resolve,
};
use super::report::{
    ClientStats, ConnsStats, Group, Histogram, Latency, Metric, Report, new_histogram,
};
use parking_lot::Mutex;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::io::AsyncWriteExt;
use tokio::sync::watch;

/// Read buffer per receiving connection.
const READ_BUF: usize = 1 << 20;
/// How long a publisher waits for the PONG that proves the server processed its messages.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(120);
/// Subscribers of `sub` wait this long for the first message.
const FIRST_MSG_TIMEOUT: Duration = Duration::from_secs(60);
/// Interest needs time to travel between cluster nodes.
const CLUSTER_SETTLE: Duration = Duration::from_millis(500);

/// Progress counters the progress bar reads: `done` of `total` units (deliveries, messages,
/// requests or connections; `total` is 0 while unknown).
#[derive(Debug, Default)]
pub struct Counters {
    pub total: AtomicU64,
    pub done: AtomicU64,
}

fn e2s(e: std::io::Error) -> String {
    e.to_string()
}

/// Where and as whom the clients connect.
struct Target {
    pub_addr: SocketAddr,
    sub_addr: SocketAddr,
    pub_creds: Creds,
    sub_creds: Creds,
}

/// Runs one scenario and reports what the clients counted.
pub async fn run(cfg: &Config, counters: Arc<Counters>) -> Result<Report, String> {
    let ps = cfg.pub_server();
    let ss = cfg.sub_server();
    let target = Target {
        pub_addr: resolve(ps)
            .await
            .map_err(|e| format!("{}: {e}", ps.addr()))?,
        sub_addr: resolve(ss)
            .await
            .map_err(|e| format!("{}: {e}", ss.addr()))?,
        pub_creds: creds_for(cfg, ps)?,
        sub_creds: creds_for(cfg, ss)?,
    };
    let cpu0 = cfg.server_pid.and_then(proc_cpu_seconds);
    let perf = match cfg.server_pid {
        Some(pid) if cfg.scenario != Scenario::Conns => {
            Some(super::client::SyscallCounter::start(pid))
        }
        _ => None,
    };
    let t0 = Instant::now();
    let mut report = match cfg.scenario {
        Scenario::Pub | Scenario::Sub | Scenario::PubSub | Scenario::Fanout | Scenario::Queue => {
            throughput(cfg, &target, &counters).await?
        }
        Scenario::ReqRep => reqrep(cfg, &target, &counters).await?,
        Scenario::Conns => conns(cfg, &target, &counters).await?,
    };
    if report.elapsed_secs == 0.0 {
        report.elapsed_secs = t0.elapsed().as_secs_f64();
    }
    if let (Some(a), Some(pid)) = (cpu0, cfg.server_pid) {
        report.server_cpu_secs = proc_cpu_seconds(pid).map(|b| b - a);
        if cfg.scenario != Scenario::Conns
            && let Some(per) = report.cpu_per_million()
        {
            report
                .metrics
                .push(Metric::lower("server CPU s/M msgs", per));
        }
    }
    match perf {
        Some(Ok(counter)) => match counter.finish() {
            Ok((reads, writes)) => {
                let io = super::report::ServerIo {
                    reads,
                    writes,
                    read_payload_bytes: report.sent * cfg.size as u64,
                    write_payload_bytes: report.received * cfg.size as u64,
                };
                if let Some(v) = io.bytes_per_read() {
                    report
                        .metrics
                        .push(Metric::higher("server payload B/read", v));
                }
                if let Some(v) = io.bytes_per_write() {
                    report
                        .metrics
                        .push(Metric::higher("server payload B/write", v));
                }
                report.server_io = Some(io);
            }
            Err(e) => report
                .notes
                .push(format!("server syscalls not counted: {e}")),
        },
        Some(Err(e)) => report
            .notes
            .push(format!("server syscalls not counted: {e}")),
        None => {}
    }
    report.scenario = cfg.scenario.name().into();
    report.name = cfg
        .name
        .clone()
        .unwrap_or_else(|| cfg.scenario.name().into());
    report.server = if cfg.servers.len() > 1 {
        format!("{} → {}", ps.addr(), ss.addr())
    } else {
        ps.addr()
    };
    if let Some(l) = &cfg.label {
        report.label = l.clone();
    }
    report.size = cfg.size;
    report.pubs = cfg.pubs;
    report.subs = cfg.subs;
    report.inflight = cfg.inflight;
    Ok(report)
}

/// CONNECT credentials for `url`, and TLS to it when it is a `tls://` URL.
fn creds_for(cfg: &Config, url: &super::args::ServerUrl) -> Result<Creds, String> {
    let mut c = Creds::for_url(url, &cfg.user, &cfg.pass, &cfg.token);
    if url.tls {
        let ca = cfg.tls_ca.as_deref().ok_or("tls:// needs --tlsca")?;
        let cert_key = cfg.tls_cert.as_deref().zip(cfg.tls_key.as_deref());
        c.tls = Some(super::client::TlsTarget {
            connector: crate::tls::connector(ca, cert_key)?,
            name: rustls_pki_types::ServerName::try_from(url.host.clone())
                .map_err(|e| format!("{}: {e}", url.host))?,
        });
    }
    Ok(c)
}

/// `nats-server 2.10.1` for nats-server (whose INFO `go` is the Go version), the `go` field
/// for servers that put their own name there (`nats-mini 0.1.0`).
fn server_label(info: &serde_json::Value) -> String {
    let s = |k: &str| {
        info.get(k)
            .and_then(|v| v.as_str())
            .unwrap_or("")
            .to_string()
    };
    let go = s("go");
    if go.is_empty() || go.starts_with("go") {
        format!("nats-server {}", s("version")).trim().to_string()
    } else {
        go
    }
}

// ---------------------------------------------------------------------------------------------
// Publishers

/// What one publisher sends: `count` messages (or until `deadline`), sequence numbers
/// `first, first + stride, …`.
#[derive(Debug, Clone, Copy)]
struct PubPlan {
    first: u64,
    stride: u64,
    count: u64,
    deadline: Option<Instant>,
}

struct PubResult {
    stats: ClientStats,
    start: Instant,
    end: Instant,
    notes: Vec<String>,
}

/// Reads a publisher's (or any non-receiving client's) socket in the background: counts PONGs,
/// notes PINGs to answer and `-ERR`s.
struct Background {
    pongs: watch::Receiver<u64>,
    pings_owed: Arc<AtomicU32>,
    errors: Arc<Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

fn read_in_background(conn_rd: super::client::Reader, frames: super::client::Frames) -> Background {
    let (tx, rx) = watch::channel(0u64);
    let pings_owed = Arc::new(AtomicU32::new(0));
    let errors = Arc::new(Mutex::new(Vec::new()));
    let (owed, errs) = (pings_owed.clone(), errors.clone());
    let task = tokio::spawn(async move {
        let mut rd = conn_rd;
        let mut frames = frames;
        let mut pongs = 0u64;
        loop {
            while let Some(f) = frames.next_frame() {
                match f {
                    Ok(Frame::Pong) => {
                        pongs += 1;
                        let _ = tx.send(pongs);
                    }
                    Ok(Frame::Ping) => {
                        owed.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(Frame::Err(e)) => errs
                        .lock()
                        .push(format!("-ERR{}", String::from_utf8_lossy(e))),
                    Ok(_) => {}
                    Err(e) => {
                        errs.lock().push(e);
                        return;
                    }
                }
            }
            match frames.fill(&mut rd).await {
                Ok(0) | Err(_) => {
                    errs.lock().push("connection closed by the server".into());
                    // Wake a flush waiter so it fails at once.
                    let _ = tx.send(u64::MAX);
                    return;
                }
                Ok(_) => {}
            }
        }
    });
    Background {
        pongs: rx,
        pings_owed,
        errors,
        task,
    }
}

async fn publisher(
    conn: Conn,
    id: usize,
    subject: String,
    size: usize,
    batch_bytes: usize,
    plan: PubPlan,
    progress: Option<Arc<Counters>>,
) -> Result<PubResult, String> {
    let Conn {
        rd, mut wr, frames, ..
    } = conn;
    let mut bg = read_in_background(rd, frames);
    let mut batch = Batch::new(&subject, size, batch_bytes);
    let start = Instant::now();
    let mut local = 0u64;
    let result: Result<(), String> = async {
        while local < plan.count {
            if let Some(d) = plan.deadline
                && Instant::now() >= d
            {
                break;
            }
            let owed = bg.pings_owed.swap(0, Ordering::Relaxed);
            for _ in 0..owed {
                wr.write_all(b"PONG\r\n").await.map_err(e2s)?;
            }
            let n = (plan.count - local).min(batch.count() as u64);
            let seq = plan.first + local * plan.stride;
            let bytes = batch.stamp(n as usize, seq, plan.stride, now_ns());
            wr.write_all(bytes).await.map_err(e2s)?;
            local += n;
            if let Some(p) = &progress {
                p.done.fetch_add(n, Ordering::Relaxed);
            }
        }
        wr.write_all(b"PING\r\n").await.map_err(e2s)?;
        let got = tokio::time::timeout(FLUSH_TIMEOUT, bg.pongs.wait_for(|n| *n >= 1))
            .await
            .map_err(|_| "no PONG after publishing: the server did not catch up".to_string())?
            .map(|n| *n)
            .map_err(|_| "connection lost".to_string())?;
        if got == u64::MAX {
            return Err("connection closed by the server".into());
        }
        Ok(())
    }
    .await;
    let end = Instant::now();
    bg.task.abort();
    let mut notes: Vec<String> = bg
        .errors
        .lock()
        .iter()
        .map(|e| format!("publisher {id}: {e}"))
        .collect();
    if let Err(e) = result {
        notes.push(format!("publisher {id}: {e} after {local} messages"));
    }
    Ok(PubResult {
        stats: ClientStats {
            role: "pub".into(),
            id,
            msgs: local,
            bytes: local * size as u64,
            secs: (end - start).as_secs_f64(),
        },
        start,
        end,
        notes,
    })
}

// ---------------------------------------------------------------------------------------------
// Subscribers

/// Tells subscribers when to stop: once the whole group received `expected` (known after the
/// publishers finish), or after `wait` without data.
#[derive(Clone)]
struct SubCtl {
    group_received: Arc<AtomicU64>,
    expected: watch::Receiver<Option<u64>>,
    wait: Duration,
    /// `sub` scenario: also stop this long after the first message.
    duration: Option<Duration>,
    latency: bool,
    numbered: bool,
    progress: Arc<Counters>,
}

struct SubResult {
    stats: ClientStats,
    first: Option<Instant>,
    last: Option<Instant>,
    hist: Histogram,
    /// Bitmap of the sequence numbers seen (queue).
    seen: Vec<u64>,
    duplicates: u64,
    note: Option<String>,
}

async fn subscriber(mut conn: Conn, id: usize, mut ctl: SubCtl) -> SubResult {
    let mut r = SubResult {
        stats: ClientStats {
            role: "sub".into(),
            id,
            ..ClientStats::default()
        },
        first: None,
        last: None,
        hist: new_histogram(),
        seen: Vec::new(),
        duplicates: 0,
        note: None,
    };
    let mut tick = tokio::time::interval(Duration::from_millis(50));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut expected = *ctl.expected.borrow();
    let mut last_data = Instant::now();
    let started = Instant::now();
    loop {
        if let Some(e) = expected
            && ctl.group_received.load(Ordering::Relaxed) >= e
        {
            break;
        }
        tokio::select! {
            biased;
            res = conn.frames.fill(&mut conn.rd) => {
                match res {
                    Ok(0) | Err(_) => {
                        r.note = Some(format!(
                            "subscriber {id}: connection closed by the server after {} messages (a slow consumer?)",
                            r.stats.msgs
                        ));
                        break;
                    }
                    Ok(_) => {}
                }
                let now = Instant::now();
                let now_n = now_ns();
                let mut n = 0u64;
                let mut bytes = 0u64;
                let mut pongs = 0;
                while let Some(f) = conn.frames.next_frame() {
                    match f {
                        Ok(Frame::Msg { payload, .. }) => {
                            n += 1;
                            bytes += payload.len() as u64;
                            if ctl.latency && let Some(ts) = payload_ts(payload) {
                                r.hist.saturating_record(now_n.saturating_sub(ts));
                            }
                            if ctl.numbered && let Some(seq) = payload_seq(payload) {
                                let (w, b) = ((seq / 64) as usize, seq % 64);
                                if w >= r.seen.len() {
                                    r.seen.resize(w + 1 + w / 2, 0);
                                }
                                if r.seen[w] & (1 << b) != 0 {
                                    r.duplicates += 1;
                                }
                                r.seen[w] |= 1 << b;
                            }
                        }
                        Ok(Frame::Ping) => pongs += 1,
                        Ok(Frame::Err(e)) => {
                            r.note = Some(format!("subscriber {id}: -ERR{}", String::from_utf8_lossy(e)));
                        }
                        Ok(_) => {}
                        Err(e) => {
                            r.note = Some(format!("subscriber {id}: {e}"));
                            break;
                        }
                    }
                }
                for _ in 0..pongs {
                    let _ = conn.wr.write_all(b"PONG\r\n").await;
                }
                if n > 0 {
                    r.first.get_or_insert(now);
                    r.last = Some(now);
                    last_data = now;
                    r.stats.msgs += n;
                    r.stats.bytes += bytes;
                    ctl.group_received.fetch_add(n, Ordering::Relaxed);
                    ctl.progress.done.fetch_add(n, Ordering::Relaxed);
                }
            }
            _ = tick.tick() => {
                if expected.is_none() {
                    expected = *ctl.expected.borrow_and_update();
                }
                let idle = last_data.elapsed();
                match (r.first, expected) {
                    // `sub`: nobody tells us when the publisher is done.
                    (Some(f), _) if ctl.duration.is_some_and(|d| f.elapsed() >= d) => break,
                    (None, _) if started.elapsed() >= FIRST_MSG_TIMEOUT => {
                        r.note = Some(format!("subscriber {id}: no message in {FIRST_MSG_TIMEOUT:?}"));
                        break;
                    }
                    (_, Some(_)) if idle >= ctl.wait => break,
                    _ => {}
                }
            }
        }
    }
    r.stats.secs = match (r.first, r.last) {
        (Some(f), Some(l)) => (l - f).as_secs_f64(),
        _ => 0.0,
    };
    r
}

/// Merges the members' bitmaps: (distinct sequence numbers, seen by more than one member).
fn merge_seen(results: &[SubResult]) -> (u64, u64) {
    let len = results.iter().map(|r| r.seen.len()).max().unwrap_or(0);
    let mut acc = vec![0u64; len];
    let mut dups = 0u64;
    for r in results {
        for (a, w) in acc.iter_mut().zip(&r.seen) {
            dups += u64::from((*a & w).count_ones());
            *a |= w;
        }
    }
    (acc.iter().map(|w| u64::from(w.count_ones())).sum(), dups)
}

fn split_count(total: u64, parts: usize, i: usize) -> u64 {
    let p = parts as u64;
    total / p + u64::from((i as u64) < total % p)
}

async fn throughput(cfg: &Config, t: &Target, counters: &Arc<Counters>) -> Result<Report, String> {
    let sc = cfg.scenario;
    let n_subs = if sc == Scenario::Pub { 0 } else { cfg.subs };
    let n_pubs = if sc == Scenario::Sub { 0 } else { cfg.pubs };
    let queue = (sc == Scenario::Queue).then_some("bench.q");
    let buf = READ_BUF.max(cfg.size * 4 + 4096);
    let mut label = String::new();

    let mut sub_conns = Vec::with_capacity(n_subs);
    for i in 0..n_subs {
        let mut c = connect(
            t.sub_addr,
            &t.sub_creds,
            None,
            &format!("bench-sub-{i}"),
            buf,
            false,
        )
        .await
        .map_err(|e| format!("subscriber {i}: {e}"))?;
        c.subscribe(&cfg.subject, queue, 1)
            .await
            .map_err(|e| format!("subscriber {i}: {e}"))?;
        label = server_label(&c.info);
        sub_conns.push(c);
    }
    let mut pub_conns = Vec::with_capacity(n_pubs);
    for i in 0..n_pubs {
        let c = connect(
            t.pub_addr,
            &t.pub_creds,
            None,
            &format!("bench-pub-{i}"),
            4096,
            false,
        )
        .await
        .map_err(|e| format!("publisher {i}: {e}"))?;
        label = server_label(&c.info);
        pub_conns.push(c);
    }
    if n_subs > 0 && n_pubs > 0 && t.pub_addr != t.sub_addr {
        tokio::time::sleep(CLUSTER_SETTLE).await;
    }

    let per_sub_factor = match sc {
        Scenario::Queue => 1,
        _ => n_subs as u64,
    };
    let count_mode = cfg.duration.is_none();
    counters.total.store(
        match (sc, count_mode) {
            (_, false) => 0,
            (Scenario::Pub, true) => cfg.msgs,
            (Scenario::Sub, true) => cfg.msgs * n_subs as u64,
            (_, true) => cfg.msgs * per_sub_factor,
        },
        Ordering::Relaxed,
    );
    let group_received = Arc::new(AtomicU64::new(0));
    let (exp_tx, exp_rx) = watch::channel(if sc == Scenario::Sub && count_mode {
        Some(cfg.msgs * n_subs as u64)
    } else {
        None
    });
    let ctl = SubCtl {
        group_received: group_received.clone(),
        expected: exp_rx,
        wait: cfg.wait,
        duration: if sc == Scenario::Sub {
            cfg.duration
        } else {
            None
        },
        latency: sc != Scenario::Sub && cfg.size >= 16,
        numbered: sc == Scenario::Queue,
        progress: counters.clone(),
    };
    if sc == Scenario::Sub {
        eprintln!(
            "bench: {n_subs} subscriber(s) waiting for messages on {:?}",
            cfg.subject
        );
    }
    let sub_tasks: Vec<_> = sub_conns
        .into_iter()
        .enumerate()
        .map(|(i, c)| tokio::spawn(subscriber(c, i, ctl.clone())))
        .collect();

    let t0 = Instant::now();
    let deadline = cfg.duration.map(|d| t0 + d);
    let pub_progress = (sc == Scenario::Pub).then(|| counters.clone());
    let pub_tasks: Vec<_> = pub_conns
        .into_iter()
        .enumerate()
        .map(|(i, c)| {
            let plan = PubPlan {
                first: i as u64,
                stride: n_pubs as u64,
                count: if count_mode {
                    split_count(cfg.msgs, n_pubs, i)
                } else {
                    u64::MAX
                },
                deadline,
            };
            tokio::spawn(publisher(
                c,
                i,
                cfg.subject.clone(),
                cfg.size,
                cfg.batch,
                plan,
                pub_progress.clone(),
            ))
        })
        .collect();
    let mut pubs = Vec::new();
    let mut notes = Vec::new();
    for (i, h) in pub_tasks.into_iter().enumerate() {
        match h.await {
            Ok(Ok(p)) => pubs.push(p),
            Ok(Err(e)) => notes.push(format!("publisher {i}: {e}")),
            Err(e) => notes.push(format!("publisher {i}: {e}")),
        }
    }
    let sent: u64 = pubs.iter().map(|p| p.stats.msgs).sum();
    let expected = match sc {
        Scenario::Pub => 0,
        Scenario::Sub => cfg.msgs * n_subs as u64,
        _ => sent * per_sub_factor,
    };
    if sc != Scenario::Sub {
        let _ = exp_tx.send(Some(expected));
        if !count_mode {
            counters.total.store(expected, Ordering::Relaxed);
        }
    }
    let mut subs = Vec::new();
    for h in sub_tasks {
        match h.await {
            Ok(s) => subs.push(s),
            Err(e) => notes.push(format!("subscriber: {e}")),
        }
    }

    for p in &mut pubs {
        notes.append(&mut p.notes);
    }
    notes.extend(subs.iter().filter_map(|s| s.note.clone()));
    let received: u64 = subs.iter().map(|s| s.stats.msgs).sum();
    let mut hist = new_histogram();
    for s in &subs {
        let _ = hist.add(&s.hist);
    }
    let pub_start = pubs.iter().map(|p| p.start).min();
    let pub_group = (!pubs.is_empty()).then(|| {
        let end = pubs.iter().map(|p| p.end).max().unwrap_or(t0);
        let stats: Vec<ClientStats> = pubs.iter().map(|p| p.stats.clone()).collect();
        Group::new(&stats, (end - pub_start.unwrap_or(t0)).as_secs_f64())
    });
    let sub_group = (!subs.is_empty()).then(|| {
        let first = pub_start.or_else(|| subs.iter().filter_map(|s| s.first).min());
        // Until the last delivery or the publishers' end, whichever is later: a subscriber
        // cut off early must not make the delivered rate look better.
        let pub_end = pubs.iter().map(|p| p.end).max();
        let last = subs.iter().filter_map(|s| s.last).max().max(pub_end);
        let secs = match (first, last) {
            (Some(f), Some(l)) if l > f => (l - f).as_secs_f64(),
            _ => 0.0,
        };
        let stats: Vec<ClientStats> = subs.iter().map(|s| s.stats.clone()).collect();
        Group::new(&stats, secs)
    });
    let (mut duplicates, mut missing) = (0, 0);
    if sc == Scenario::Queue {
        let (distinct, cross) = merge_seen(&subs);
        duplicates = cross + subs.iter().map(|s| s.duplicates).sum::<u64>();
        missing = sent.saturating_sub(distinct);
    }
    let mut metrics = Vec::new();
    match (&pub_group, &sub_group) {
        (Some(g), None) => {
            metrics.push(Metric::higher("msgs/s", g.msgs_per_s));
            metrics.push(Metric::higher("MB/s", g.mb_per_s));
        }
        (_, Some(g)) => {
            metrics.push(Metric::higher("msgs/s", g.msgs_per_s));
            metrics.push(Metric::higher("MB/s", g.mb_per_s));
        }
        _ => {}
    }
    let mut clients: Vec<ClientStats> = pubs.iter().map(|p| p.stats.clone()).collect();
    clients.extend(subs.iter().map(|s| s.stats.clone()));
    Ok(Report {
        label,
        sent,
        expected,
        received,
        dropped: expected.saturating_sub(received),
        duplicates,
        missing,
        pub_group,
        sub_group,
        latency: Latency::of(&hist),
        elapsed_secs: t0.elapsed().as_secs_f64(),
        clients,
        notes,
        metrics,
        ..Report::default()
    })
}

// ---------------------------------------------------------------------------------------------
// Request/reply

async fn responder(mut conn: Conn, id: usize, mut stop: watch::Receiver<bool>) -> ClientStats {
    let mut out = Vec::with_capacity(64 * 1024);
    let mut replies = 0u64;
    let mut bytes = 0u64;
    let start = Instant::now();
    loop {
        tokio::select! {
            biased;
            res = conn.frames.fill(&mut conn.rd) => {
                if !matches!(res, Ok(n) if n > 0) {
                    break;
                }
                while let Some(f) = conn.frames.next_frame() {
                    match f {
                        Ok(Frame::Msg { line, payload }) => {
                            if let Some(reply) = msg_reply(line) {
                                out.extend_from_slice(b"PUB ");
                                out.extend_from_slice(reply);
                                out.extend_from_slice(format!(" {}\r\n", payload.len()).as_bytes());
                                out.extend_from_slice(payload);
                                out.extend_from_slice(b"\r\n");
                                replies += 1;
                                bytes += payload.len() as u64;
                            }
                        }
                        Ok(Frame::Ping) => out.extend_from_slice(b"PONG\r\n"),
                        _ => {}
                    }
                }
                if !out.is_empty() {
                    if conn.wr.write_all(&out).await.is_err() {
                        break;
                    }
                    out.clear();
                }
            }
            _ = stop.changed() => break,
        }
    }
    ClientStats {
        role: "rep".into(),
        id,
        msgs: replies,
        bytes,
        secs: start.elapsed().as_secs_f64(),
    }
}

struct ReqResult {
    stats: ClientStats,
    hist: Histogram,
    sent: u64,
    start: Instant,
    end: Instant,
    note: Option<String>,
}

#[allow(clippy::too_many_arguments)]
async fn requester(
    mut conn: Conn,
    id: usize,
    subject: String,
    size: usize,
    inflight: usize,
    count: u64,
    deadline: Option<Instant>,
    wait: Duration,
    progress: Arc<Counters>,
) -> ReqResult {
    let inbox = format!("_INBOX.bench.{:016x}", rand::random::<u64>());
    let payload = vec![b'r'; size];
    let mut hist = new_histogram();
    let mut sent_at: Vec<u64> = Vec::new();
    let mut note = None;
    let (mut sent, mut received, mut bytes) = (0u64, 0u64, 0u64);
    let mut out: Vec<u8> = Vec::with_capacity(64 * 1024);
    let start = Instant::now();
    let result: Result<(), String> = async {
        conn.subscribe(&format!("{inbox}.*"), None, 1)
            .await
            .map_err(e2s)?;
        let more = |sent: u64| sent < count && deadline.is_none_or(|d| Instant::now() < d);
        let issue = |out: &mut Vec<u8>, sent_at: &mut Vec<u64>, sent: &mut u64, n: usize| {
            for _ in 0..n {
                if !more(*sent) {
                    break;
                }
                out.extend_from_slice(
                    format!("PUB {subject} {inbox}.{} {size}\r\n", *sent).as_bytes(),
                );
                out.extend_from_slice(&payload);
                out.extend_from_slice(b"\r\n");
                sent_at.push(0);
                *sent += 1;
            }
        };
        issue(&mut out, &mut sent_at, &mut sent, inflight);
        let mut stamped = 0usize;
        loop {
            if !out.is_empty() {
                let ts = now_ns();
                for s in &mut sent_at[stamped..] {
                    *s = ts;
                }
                stamped = sent_at.len();
                conn.wr.write_all(&out).await.map_err(e2s)?;
                out.clear();
            }
            if received >= sent {
                break;
            }
            let n = tokio::time::timeout(
                wait.max(Duration::from_secs(5)),
                conn.frames.fill(&mut conn.rd),
            )
            .await
            .map_err(|_| format!("{} of {sent} requests unanswered", sent - received))?
            .map_err(e2s)?;
            if n == 0 {
                return Err("connection closed by the server".into());
            }
            let now = now_ns();
            let mut replies = 0usize;
            while let Some(f) = conn.frames.next_frame() {
                match f {
                    Ok(Frame::Msg { line, payload }) => {
                        let subj = msg_subject(line);
                        let token = subj.rsplit(|b| *b == b'.').next().unwrap_or_default();
                        let idx: Option<usize> =
                            std::str::from_utf8(token).ok().and_then(|t| t.parse().ok());
                        if let Some(at) = idx.and_then(|i| sent_at.get(i)) {
                            hist.saturating_record(now.saturating_sub(*at));
                            received += 1;
                            replies += 1;
                            bytes += payload.len() as u64;
                        }
                    }
                    Ok(Frame::Ping) => out.extend_from_slice(b"PONG\r\n"),
                    Ok(Frame::Err(e)) => return Err(format!("-ERR{}", String::from_utf8_lossy(e))),
                    Ok(_) => {}
                    Err(e) => return Err(e),
                }
            }
            progress.done.fetch_add(replies as u64, Ordering::Relaxed);
            issue(&mut out, &mut sent_at, &mut sent, replies);
        }
        Ok(())
    }
    .await;
    if let Err(e) = result {
        note = Some(format!("requester {id}: {e}"));
    }
    let end = Instant::now();
    ReqResult {
        stats: ClientStats {
            role: "req".into(),
            id,
            msgs: received,
            bytes,
            secs: (end - start).as_secs_f64(),
        },
        hist,
        sent,
        start,
        end,
        note,
    }
}

async fn reqrep(cfg: &Config, t: &Target, counters: &Arc<Counters>) -> Result<Report, String> {
    let buf = READ_BUF.max(cfg.size * 4 + 4096);
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut label = String::new();
    let mut reps = Vec::new();
    for i in 0..cfg.subs {
        let mut c = connect(
            t.sub_addr,
            &t.sub_creds,
            None,
            &format!("bench-rep-{i}"),
            buf,
            false,
        )
        .await
        .map_err(|e| format!("responder {i}: {e}"))?;
        c.subscribe(&cfg.subject, Some("bench.rr"), 1)
            .await
            .map_err(|e| format!("responder {i}: {e}"))?;
        label = server_label(&c.info);
        reps.push(tokio::spawn(responder(c, i, stop_rx.clone())));
    }
    let mut reqs = Vec::new();
    for i in 0..cfg.pubs {
        let c = connect(
            t.pub_addr,
            &t.pub_creds,
            None,
            &format!("bench-req-{i}"),
            buf,
            false,
        )
        .await
        .map_err(|e| format!("requester {i}: {e}"))?;
        reqs.push(c);
    }
    if t.pub_addr != t.sub_addr {
        tokio::time::sleep(CLUSTER_SETTLE).await;
    }
    let count_mode = cfg.duration.is_none();
    if count_mode {
        counters.total.store(cfg.msgs, Ordering::Relaxed);
    }
    let t0 = Instant::now();
    let deadline = cfg.duration.map(|d| t0 + d);
    let tasks: Vec<_> = reqs
        .into_iter()
        .enumerate()
        .map(|(i, c)| {
            tokio::spawn(requester(
                c,
                i,
                cfg.subject.clone(),
                cfg.size,
                cfg.inflight,
                if count_mode {
                    split_count(cfg.msgs, cfg.pubs, i)
                } else {
                    u64::MAX
                },
                deadline,
                cfg.wait,
                counters.clone(),
            ))
        })
        .collect();
    let mut results = Vec::new();
    let mut notes = Vec::new();
    for h in tasks {
        match h.await {
            Ok(r) => results.push(r),
            Err(e) => notes.push(format!("requester: {e}")),
        }
    }
    let _ = stop_tx.send(true);
    let mut clients: Vec<ClientStats> = Vec::new();
    for h in reps {
        if let Ok(s) = h.await {
            clients.push(s);
        }
    }
    let mut hist = new_histogram();
    for r in &results {
        let _ = hist.add(&r.hist);
        notes.extend(r.note.clone());
    }
    let sent: u64 = results.iter().map(|r| r.sent).sum();
    let received: u64 = results.iter().map(|r| r.stats.msgs).sum();
    let start = results.iter().map(|r| r.start).min().unwrap_or(t0);
    let end = results.iter().map(|r| r.end).max().unwrap_or(t0);
    let req_stats: Vec<ClientStats> = results.iter().map(|r| r.stats.clone()).collect();
    let group = Group::new(&req_stats, (end - start).as_secs_f64());
    let latency = Latency::of(&hist);
    let mut metrics = Vec::new();
    if let Some(l) = &latency {
        metrics.push(Metric::lower("p50 µs", l.p50_us));
        metrics.push(Metric::lower("p99 µs", l.p99_us));
    }
    metrics.push(Metric::higher("req/s", group.msgs_per_s));
    clients.splice(0..0, req_stats);
    Ok(Report {
        label,
        sent,
        expected: sent,
        received,
        dropped: sent.saturating_sub(received),
        pub_group: Some(group),
        latency,
        elapsed_secs: t0.elapsed().as_secs_f64(),
        clients,
        notes,
        metrics,
        ..Report::default()
    })
}

// ---------------------------------------------------------------------------------------------
// Idle connections

async fn varz(cfg: &Config) -> Result<serde_json::Value, String> {
    let m = cfg
        .monitor
        .as_deref()
        .ok_or("conns needs the server's monitoring URL: --monitor http://HOST:PORT")?;
    http_get_json(m, "/varz").await
}

fn varz_u64(v: &serde_json::Value, k: &str) -> u64 {
    v.get(k).and_then(|x| x.as_u64()).unwrap_or(0)
}

async fn conns(cfg: &Config, t: &Target, counters: &Arc<Counters>) -> Result<Report, String> {
    crate::limits::raise_nofile_limit();
    let before = varz(cfg).await?;
    let base_conns = varz_u64(&before, "connections");
    counters.total.store(cfg.conns as u64, Ordering::Relaxed);
    let sources: Vec<Option<IpAddr>> = match t.pub_addr.ip() {
        IpAddr::V4(ip) if ip.is_loopback() => (1..=cfg.sources)
            .map(|k| Some(IpAddr::V4(Ipv4Addr::new(127, 0, 0, k as u8))))
            .collect(),
        _ => vec![None],
    };
    let sem = Arc::new(tokio::sync::Semaphore::new(256));
    let t0 = Instant::now();
    let mut tasks = Vec::with_capacity(cfg.conns);
    for i in 0..cfg.conns {
        let permit = sem
            .clone()
            .acquire_owned()
            .await
            .map_err(|e| e.to_string())?;
        let (addr, creds, local) = (t.pub_addr, t.pub_creds.clone(), sources[i % sources.len()]);
        let progress = counters.clone();
        tasks.push(tokio::spawn(async move {
            // Reset on close, so repeated runs do not exhaust source ports with TIME_WAIT.
            let c = connect(addr, &creds, local, "bench-idle", 256, true).await;
            drop(permit);
            progress.done.fetch_add(1, Ordering::Relaxed);
            // Keep only the socket: an idle client holds no buffers.
            c.map(|c| (c.rd, c.wr))
        }));
    }
    let mut open = Vec::with_capacity(cfg.conns);
    let mut failures = 0usize;
    let mut first_err = None;
    for h in tasks {
        match h.await {
            Ok(Ok(s)) => open.push(s),
            Ok(Err(e)) => {
                failures += 1;
                first_err.get_or_insert(e.to_string());
            }
            Err(e) => {
                failures += 1;
                first_err.get_or_insert(e.to_string());
            }
        }
    }
    let open_secs = t0.elapsed().as_secs_f64();
    // Let the server settle (buffers shrink, allocator state) before sampling.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let after = varz(cfg).await?;
    let (rss_before, rss_after) = (varz_u64(&before, "mem"), varz_u64(&after, "mem"));
    let n = open.len();
    let rss_per_conn = if n > 0 {
        (rss_after.saturating_sub(rss_before)) as f64 / n as f64
    } else {
        0.0
    };
    let mut notes = Vec::new();
    if failures > 0 {
        notes.push(format!(
            "{failures} of {} connections failed; first error: {}",
            cfg.conns,
            first_err.unwrap_or_default()
        ));
    }
    let label = server_label(&after);
    drop(open);
    Ok(Report {
        label,
        sent: n as u64,
        conns: Some(ConnsStats {
            conns: n,
            server_connections: varz_u64(&after, "connections").saturating_sub(base_conns),
            rss_before,
            rss_after,
            rss_per_conn,
            open_secs,
        }),
        notes,
        metrics: vec![
            Metric::lower("RSS B/conn", rss_per_conn),
            Metric::higher("conns/s", super::report::rate(n as f64, open_secs)),
        ],
        ..Report::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_split_evenly() {
        let parts: Vec<u64> = (0..3).map(|i| split_count(10, 3, i)).collect();
        assert_eq!(parts, [4, 3, 3]);
        assert_eq!(split_count(2, 4, 3), 0);
    }

    #[test]
    fn merged_bitmaps_count_distinct_and_cross_duplicates() {
        let sub = |seen: Vec<u64>| SubResult {
            stats: ClientStats::default(),
            first: None,
            last: None,
            hist: new_histogram(),
            seen,
            duplicates: 0,
            note: None,
        };
        let (distinct, dups) =
            merge_seen(&[sub(vec![0b1011]), sub(vec![0b0100, 1]), sub(vec![0b0001])]);
        assert_eq!(distinct, 5);
        assert_eq!(dups, 1);
    }
}
