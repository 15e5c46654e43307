//! Subscription index benchmarks: the publish hot path (match) and subscription churn.
//!
//! Workload: 1000 subscriptions shaped like service traffic over 50 services: 900 literal
//! (`app.<svc>.node<i>.evt`), 50 `app.<svc>.*.evt`, 40 `app.<svc>.>` and 10 queue subscriptions
//! (`app.<svc>.*.evt`, group `workers`); published subjects hit 2–4 of them. Numbers per call are quoted in `src/sublist.rs`'s module docs.
//!
//! Run: `cargo bench -p nats-mini --bench sublist` (about 30 s; sample sizes are kept small).

use std::hint::black_box;
use std::sync::Arc;

mod common;

use criterion::{Criterion, criterion_group, criterion_main};
use nats_mini::subject;
use nats_mini::sublist::{MatchResult, QueueGroup, Sublist, Subscriber};

const SUBS: usize = 1000;
const SERVICES: usize = 50;

struct BenchSub {
    subject: Vec<u8>,
    queue: Option<Vec<u8>>,
}

impl Subscriber for BenchSub {
    fn subject(&self) -> &[u8] {
        &self.subject
    }
    fn queue(&self) -> Option<&[u8]> {
        self.queue.as_deref()
    }
}

fn bench_sub(subject: String, queue: Option<&str>) -> Arc<BenchSub> {
    Arc::new(BenchSub {
        subject: subject.into_bytes(),
        queue: queue.map(|q| q.as_bytes().to_vec()),
    })
}

fn workload() -> Vec<Arc<BenchSub>> {
    let literal = (0..900).map(|i| bench_sub(format!("app.{}.node{i}.evt", i % SERVICES), None));
    let star = (0..50).map(|k| bench_sub(format!("app.{k}.*.evt"), None));
    let gt = (0..40).map(|k| bench_sub(format!("app.{k}.>"), None));
    let queue = (0..10).map(|k| bench_sub(format!("app.{k}.*.evt"), Some("workers")));
    let subs: Vec<_> = literal.chain(star).chain(gt).chain(queue).collect();
    assert_eq!(subs.len(), SUBS);
    subs
}

/// 100 subjects that each hit one literal and one to three wildcard subscriptions.
fn hot_subjects() -> Vec<Vec<u8>> {
    (0..900)
        .step_by(9)
        .map(|i| format!("app.{}.node{i}.evt", i % SERVICES).into_bytes())
        .collect()
}

fn filled(cache: bool, subs: &[Arc<BenchSub>]) -> Sublist<BenchSub> {
    let sl = Sublist::with_cache(cache);
    for s in subs {
        // The workload is valid by construction; a failure would show as wrong fan-out below.
        let _ = sl.insert(Arc::clone(s));
    }
    sl
}

/// The baseline: test every subscription against the subject, grouping queues as the index does.
fn naive_match(subs: &[Arc<BenchSub>], subject_: &[u8]) -> MatchResult<BenchSub> {
    let mut out = MatchResult {
        plain: Vec::new(),
        queues: Vec::new(),
    };
    for s in subs
        .iter()
        .filter(|s| subject::matches(&s.subject, subject_))
    {
        match s.queue() {
            None => out.plain.push(Arc::clone(s)),
            Some(q) => match out.queues.iter_mut().find(|g| g.name == q) {
                Some(g) => g.members.push(Arc::clone(s)),
                None => out.queues.push(QueueGroup {
                    name: bytes::Bytes::copy_from_slice(q),
                    members: vec![Arc::clone(s)],
                }),
            },
        }
    }
    out
}

fn matching(c: &mut Criterion) {
    let subs = workload();
    let hot = hot_subjects();
    let cached = filled(true, &subs);
    let uncached = filled(false, &subs);
    assert_eq!(cached.match_subject(&hot[0]).fanout(), 4);

    let mut g = c.benchmark_group("match_1000_subs");
    let mut i = 0;
    g.bench_function("cache_hit", |b| {
        b.iter(|| {
            i = (i + 1) % hot.len();
            black_box(cached.match_subject(black_box(&hot[i])))
        })
    });
    let cold: Vec<Vec<u8>> = (0..100).map(|i| format!("zzz.{i}").into_bytes()).collect();
    g.bench_function("cache_hit_no_interest", |b| {
        b.iter(|| {
            i = (i + 1) % cold.len();
            black_box(cached.match_subject(black_box(&cold[i])))
        })
    });
    // 8192 distinct subjects cycle through a cache trimmed at 1024: nearly every call misses,
    // walks the trie, allocates the result and stores it (paying the periodic trim).
    let unique: Vec<Vec<u8>> = (0..8192)
        .map(|i| format!("app.{}.x{i}.evt", i % SERVICES).into_bytes())
        .collect();
    g.bench_function("cache_miss", |b| {
        b.iter(|| {
            i = (i + 1) % unique.len();
            black_box(cached.match_subject(black_box(&unique[i])))
        })
    });
    g.bench_function("no_cache", |b| {
        b.iter(|| {
            i = (i + 1) % hot.len();
            black_box(uncached.match_subject(black_box(&hot[i])))
        })
    });
    g.bench_function("naive_linear", |b| {
        b.iter(|| {
            i = (i + 1) % hot.len();
            black_box(naive_match(&subs, black_box(&hot[i])))
        })
    });
    g.finish();
}

fn churn(c: &mut Criterion) {
    let subs = workload();
    let hot = hot_subjects();
    let sl = filled(true, &subs);
    let warm = |sl: &Sublist<BenchSub>| {
        for s in &hot {
            sl.match_subject(s);
        }
    };
    warm(&sl);

    let mut g = c.benchmark_group("churn_1000_subs");
    let literal = bench_sub("app.7.node57.evt".into(), None);
    g.bench_function("insert_remove_literal", |b| {
        b.iter(|| {
            let _ = sl.insert(Arc::clone(&literal));
            let _ = sl.remove(&literal);
        })
    });
    // A wildcard insert scans every cached subject (here ~100) and patches those it matches;
    // its remove drops them, so re-warm to keep each iteration alike.
    let wildcard = bench_sub("app.7.*.evt".into(), None);
    g.bench_function("insert_remove_wildcard_warm_cache", |b| {
        b.iter(|| {
            let _ = sl.insert(Arc::clone(&wildcard));
            let _ = sl.remove(&wildcard);
            warm(&sl);
        })
    });
    g.bench_function("rewarm_only", |b| b.iter(|| warm(&sl)));
    g.finish();
}

criterion_group! {
    name = benches;
    config = common::config();
    targets = matching, churn
}
criterion_main!(benches);
