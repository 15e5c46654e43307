//! Protocol benchmarks: the per-message work of the publish path outside the index.
//!
//! - `parse`: one 32 KiB read buffer (the size the server reads under load) full of `PUB`s, as
//!   a publisher sends them, through the client parser into a handler that only counts; the
//!   same bytes in 1460-byte segments (messages split across reads take the scratch path); and
//!   `HPUB`s with a header block.
//! - `encode`: the `MSG` line plus payload a delivery appends to a receiver's queue.
//!
//! Throughput is in messages; the per-message cost is what the pub-only case of
//! `scripts/bench-compare` spends between its reads.
//!
//! Run: `cargo bench -p nats-mini --bench parser` (about 20 s).

use std::hint::black_box;

mod common;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use nats_mini::proto::{Handler, Msg, Parser, wire};

/// Counts what the parser hands over, touching every field so nothing is optimised away.
#[derive(Default)]
struct Counting {
    msgs: u64,
    bytes: u64,
}

impl Handler for Counting {
    type Error = ();
    fn on_connect(&mut self, _json: &[u8]) -> Result<bool, ()> {
        Ok(true)
    }
    fn on_pub_line(&mut self, subject: &[u8]) -> Result<(), ()> {
        self.bytes += subject.len() as u64;
        Ok(())
    }
    fn on_msg(&mut self, m: &Msg<'_>) -> Result<(), ()> {
        self.msgs += 1;
        self.bytes += (m.subject.len() + m.reply.len() + m.data.len()) as u64;
        Ok(())
    }
    fn on_sub(&mut self, _s: &[u8], _q: Option<&[u8]>, _sid: &[u8]) -> Result<(), ()> {
        Ok(())
    }
    fn on_unsub(&mut self, _sid: &[u8], _max: i64) -> Result<(), ()> {
        Ok(())
    }
    fn on_ping(&mut self) -> Result<(), ()> {
        Ok(())
    }
    fn on_pong(&mut self) -> Result<(), ()> {
        Ok(())
    }
    fn on_err(&mut self, _text: &[u8]) -> Result<(), ()> {
        Ok(())
    }
}

/// Whole messages `one` repeated to fill about 32 KiB; returns the buffer and the count.
fn buffer_of(one: &[u8]) -> (Vec<u8>, u64) {
    let n = 32 * 1024 / one.len();
    (one.repeat(n), n as u64)
}

fn connected() -> Parser {
    let mut p = Parser::new(4096, 1 << 20);
    p.parse(b"CONNECT {\"headers\":true}\r\n", &mut Counting::default())
        .unwrap();
    p
}

fn parse(c: &mut Criterion) {
    let mut g = c.benchmark_group("parse_32KiB");
    let cases: [(&str, Vec<u8>); 3] = [
        ("pub_16B", b"PUB bench.subject 16\r\n0123456789abcdef\r\n".to_vec()),
        ("pub_128B_reply", {
            let mut m = b"PUB bench.subject _INBOX.abcdefgh.1 128\r\n".to_vec();
            m.extend_from_slice(&[b'x'; 128]);
            m.extend_from_slice(b"\r\n");
            m
        }),
        (
            "hpub_16B",
            b"HPUB bench.subject 34 50\r\nNATS/1.0\r\nTrace-Id: 0123456789\r\n\r\n0123456789abcdef\r\n"
                .to_vec(),
        ),
    ];
    for (name, one) in &cases {
        let (buf, n) = buffer_of(one);
        g.throughput(Throughput::Elements(n));
        g.bench_function(*name, |b| {
            let mut p = connected();
            let mut h = Counting::default();
            b.iter(|| {
                p.parse(black_box(&buf), &mut h).unwrap();
            });
            assert_eq!(h.msgs % n, 0);
        });
    }
    // Segments of a TCP packet's payload: most reads end mid-message.
    let (buf, n) = buffer_of(&cases[0].1);
    g.throughput(Throughput::Elements(n));
    g.bench_function("pub_16B_in_1460B_segments", |b| {
        let mut p = connected();
        let mut h = Counting::default();
        b.iter(|| {
            for seg in buf.chunks(1460) {
                p.parse(black_box(seg), &mut h).unwrap();
            }
        });
        assert_eq!(h.msgs % n, 0);
    });
    g.finish();
}

fn encode(c: &mut Criterion) {
    let mut g = c.benchmark_group("encode_msg");
    g.throughput(Throughput::Elements(1));
    let payload = [b'x'; 16];
    let m = Msg {
        subject: b"bench.subject",
        reply: b"",
        hdr_len: 0,
        data: &payload,
        size_text: b"16",
        hdr_text: b"",
    };
    g.bench_function("msg_16B", |b| {
        let mut out = Vec::with_capacity(64 * 1024);
        b.iter(|| {
            if out.len() > 60 * 1024 {
                out.clear();
            }
            wire::msg(&mut out, black_box(&m), b"1", true);
        });
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = common::config();
    targets = parse, encode
}
criterion_main!(benches);
