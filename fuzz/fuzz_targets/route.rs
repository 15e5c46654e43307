//! Fuzzes the route-protocol parser (`nats_mini::proto::route::RouteParser`): what a cluster
//! peer — or anything that connects to the route port — sends.
//!
//! Input layout:
//! - byte 0: bits 0-1 pick `max_control_line` (the parser allows 16 times it);
//! - byte 1: `n` = count of chunk lengths (low 4 bits);
//! - the next `n` bytes: chunk lengths (0 = an empty read), used cyclically to split the rest;
//! - the rest: the bytes a peer sends.
//!
//! The stream is parsed three ways — in one read, in the fuzzed reads, a byte at a time — and
//! every way must deliver the same ops and stop with the same error. Further invariants (checked
//! by the recorder, `proto::route::recording`, built with `--cfg fuzzing`): no panic, no
//! unbounded allocation (see `alloc_limit.rs`), `hdr_len <= data.len()`, the size fields as
//! written agree with what was delivered, queue names are non-empty, and encoding a routed
//! message again (`RMSG`/`HMSG`, and `MSG` to a client) does not panic.
#![no_main]

mod alloc_limit;

use libfuzzer_sys::fuzz_target;
use nats_mini::proto::route::recording::{Rec, Seen};
use nats_mini::proto::route::{RouteParser, RouteStop};

const MAX_CONTROL_LINE: [usize; 4] = [64, 4096, 1, 512];

/// Parses `chunks` in order; returns the ops and how it stopped (None: all input consumed).
fn run<'a>(max: usize, chunks: impl Iterator<Item = &'a [u8]>) -> (Vec<Seen>, Option<String>) {
    let mut p = RouteParser::new(max);
    let mut r = Rec::default();
    for c in chunks {
        if let Err(e) = p.parse(c, &mut r) {
            let e = match e {
                RouteStop::Proto(e) => format!("{e:?}"),
                RouteStop::Handler(()) => "handler".into(),
            };
            return (r.0, Some(e));
        }
    }
    (r.0, None)
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let max = MAX_CONTROL_LINE[(data[0] & 3) as usize];
    let n = (data[1] & 0x0f) as usize;
    if data.len() < 2 + n {
        return;
    }
    let lens: Vec<usize> = data[2..2 + n].iter().map(|b| *b as usize).collect();
    let stream = &data[2 + n..];

    let whole = run(max, std::iter::once(stream));
    let mut chunks = Vec::new();
    let (mut i, mut k) = (0, 0);
    while i < stream.len() {
        let len = if lens.is_empty() { stream.len() } else { lens[k % lens.len()] };
        k += 1;
        let end = (i + len).min(stream.len());
        chunks.push(&stream[i..end]);
        i = end;
        if k > 100_000 {
            break;
        }
    }
    if i == stream.len() {
        let split = run(max, chunks.into_iter());
        assert_eq!(whole, split, "split reads parse differently");
    }
    let bytes = run(max, stream.chunks(1));
    assert_eq!(whole, bytes, "byte-at-a-time parses differently");
});
