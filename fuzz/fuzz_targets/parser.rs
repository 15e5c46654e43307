//! Fuzzes the client-protocol parser (`nats_mini::proto::Parser`) and the CONNECT options
//! (decoded into `ConnectOpts` as the server does).
//!
//! Input layout:
//! - byte 0, flags: bit 0 `awaiting_connect`, bit 1 `headers`, bit 2 strict handler (stops on
//!   a bad CONNECT and on a PUB subject that is not a valid literal subject, as the server
//!   does), bits 3-4 pick `max_control_line`, bits 5-6 pick `max_payload`;
//! - byte 1: `n` = count of chunk lengths (low 4 bits);
//! - the next `n` bytes: chunk lengths (0 = an empty read), used cyclically to split the rest;
//! - the rest: the bytes a client sends.
//!
//! The stream is parsed three ways — in one read, in the fuzzed reads, a byte at a time — and
//! every way must deliver the same ops and stop with the same error. Further invariants:
//! - no panic, no unbounded allocation (the runner sets `-rss_limit_mb` and `-malloc_limit_mb`,
//!   see `alloc_limit.rs`);
//! - no message larger than `max_payload`, `hdr_len <= data.len()`, the size fields as written
//!   (`size_text`, `hdr_text`, echoed in `MSG`) agree with what was delivered, and encoding the
//!   delivery with `wire::msg` for either kind of receiver does not panic;
//! - every delivered argument fits `max_control_line`;
//! - `MaxControlLine` only when the argument part of the current line really exceeds the limit
//!   (checked exactly on the byte-at-a-time run, where the failing byte is known).
#![no_main]

mod alloc_limit;

use libfuzzer_sys::fuzz_target;
use nats_mini::conn::client::ConnectOpts;
use nats_mini::proto::parser::parse_size;
use nats_mini::proto::{Handler, Msg, ParseStop, Parser, ProtoError, wire};
use nats_mini::subject;

const MAX_CONTROL_LINE: [usize; 4] = [256, 4096, 8, 1024];
const MAX_PAYLOAD: [usize; 4] = [1024, 1024 * 1024, 0, 64];

/// Owned bytes that print as an escaped byte string in assertion messages.
#[derive(Clone, PartialEq, Eq)]
struct B(Vec<u8>);

impl B {
    fn of(s: &[u8]) -> Self {
        B(s.to_vec())
    }
}

impl std::fmt::Debug for B {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "b\"{}\"", self.0.escape_ascii())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Op {
    Connect {
        json: B,
        parsed: bool,
        headers: bool,
    },
    Info(B),
    PubLine(B),
    Msg {
        subject: B,
        reply: B,
        hdr_len: usize,
        data: B,
        hdr_text: B,
        size_text: B,
    },
    Sub {
        subject: B,
        queue: Option<B>,
        sid: B,
    },
    Unsub {
        sid: B,
        max: i64,
    },
    Ping,
    Pong,
    Err(B),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Ok,
    Proto(ProtoError),
    Handler(Stop),
}

/// Why the recording handler stopped the parse (strict mode only).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    BadConnect,
    BadPubSubject,
    ClientErr,
}

struct Recorder {
    ops: Vec<Op>,
    strict: bool,
    /// The `headers` flag the parser started with: kept when a CONNECT does not parse.
    headers_default: bool,
    max_control_line: usize,
    max_payload: usize,
}

impl Recorder {
    fn new(cfg: &Config) -> Self {
        Recorder {
            ops: Vec::new(),
            strict: cfg.strict,
            headers_default: cfg.headers,
            max_control_line: cfg.max_control_line,
            max_payload: cfg.max_payload,
        }
    }

    fn arg_fits(&self, what: &str, len: usize) {
        assert!(
            len <= self.max_control_line,
            "{what}: {len} argument bytes delivered, max_control_line is {}",
            self.max_control_line
        );
    }
}

impl Handler for Recorder {
    type Error = Stop;

    fn on_connect(&mut self, json: &[u8]) -> Result<bool, Stop> {
        self.arg_fits("CONNECT", json.len());
        let (parsed, headers) = match decode_connect(json) {
            Ok(o) => (true, o.headers),
            Err(_) => (false, self.headers_default),
        };
        self.ops.push(Op::Connect {
            json: B::of(json),
            parsed,
            headers,
        });
        if self.strict && !parsed {
            return Err(Stop::BadConnect);
        }
        Ok(headers)
    }

    fn on_pub_line(&mut self, subject: &[u8]) -> Result<(), Stop> {
        self.arg_fits("PUB subject", subject.len());
        assert!(!subject.is_empty(), "on_pub_line with an empty subject");
        self.ops.push(Op::PubLine(B::of(subject)));
        if self.strict && !subject::is_valid_literal_subject(subject) {
            return Err(Stop::BadPubSubject);
        }
        Ok(())
    }

    fn on_msg(&mut self, m: &Msg<'_>) -> Result<(), Stop> {
        let (subject, reply, hdr_len, data) = (m.subject, m.reply, m.hdr_len, m.data);
        assert!(
            data.len() <= self.max_payload,
            "message of {} bytes delivered, max_payload is {}",
            data.len(),
            self.max_payload
        );
        assert!(
            hdr_len <= data.len(),
            "hdr_len {hdr_len} > message size {}",
            data.len()
        );
        self.arg_fits(
            "PUB subject+reply+sizes",
            subject.len() + reply.len() + m.hdr_text.len() + m.size_text.len(),
        );
        // The size fields as written must say what was delivered (they are echoed in MSG).
        assert_eq!(
            parse_size(m.size_text),
            data.len() as i64,
            "size_text {:?} vs {} bytes",
            m.size_text,
            data.len()
        );
        if m.hdr_text.is_empty() {
            assert_eq!(hdr_len, 0, "hdr_len {hdr_len} without hdr_text");
        } else {
            assert_eq!(
                parse_size(m.hdr_text),
                hdr_len as i64,
                "hdr_text {:?} vs hdr_len {hdr_len}",
                m.hdr_text
            );
        }
        if subject.is_empty() {
            // A client's HMSG: consumed as an empty message.
            assert!(
                reply.is_empty() && hdr_len == 0 && data.is_empty(),
                "odd HMSG not empty"
            );
        } else {
            // Encoding the delivery for either kind of receiver must not panic, and must end
            // with the payload the receiver is due.
            for receiver_headers in [false, true] {
                let mut out = Vec::new();
                wire::msg(&mut out, m, b"1", receiver_headers);
                let payload = if hdr_len > 0 && !receiver_headers {
                    &data[hdr_len..]
                } else {
                    data
                };
                assert!(
                    out.ends_with(b"\r\n") && out[..out.len() - 2].ends_with(payload),
                    "bad MSG encoding"
                );
            }
        }
        self.ops.push(Op::Msg {
            subject: B::of(subject),
            reply: B::of(reply),
            hdr_len,
            data: B::of(data),
            hdr_text: B::of(m.hdr_text),
            size_text: B::of(m.size_text),
        });
        Ok(())
    }

    fn on_sub(&mut self, subject: &[u8], queue: Option<&[u8]>, sid: &[u8]) -> Result<(), Stop> {
        let qlen = queue.map_or(0, <[u8]>::len);
        self.arg_fits("SUB", subject.len() + qlen + sid.len());
        assert!(!subject.is_empty() && !sid.is_empty() && queue.is_none_or(|q| !q.is_empty()));
        self.ops.push(Op::Sub {
            subject: B::of(subject),
            queue: queue.map(B::of),
            sid: B::of(sid),
        });
        Ok(())
    }

    fn on_unsub(&mut self, sid: &[u8], max: i64) -> Result<(), Stop> {
        self.arg_fits("UNSUB", sid.len());
        assert!(!sid.is_empty() && (-1..=999_999_999).contains(&max));
        self.ops.push(Op::Unsub {
            sid: B::of(sid),
            max,
        });
        Ok(())
    }

    fn on_ping(&mut self) -> Result<(), Stop> {
        self.ops.push(Op::Ping);
        Ok(())
    }

    fn on_pong(&mut self) -> Result<(), Stop> {
        self.ops.push(Op::Pong);
        Ok(())
    }

    fn on_err(&mut self, text: &[u8]) -> Result<(), Stop> {
        self.arg_fits("-ERR", text.len());
        self.ops.push(Op::Err(B::of(text)));
        if self.strict {
            return Err(Stop::ClientErr);
        }
        Ok(())
    }

    fn on_info(&mut self, json: &[u8]) -> Result<(), Stop> {
        self.arg_fits("INFO", json.len());
        self.ops.push(Op::Info(B::of(json)));
        Ok(())
    }
}

/// CONNECT JSON as the server decodes it (`parse_json_object` in conn/client.rs): `null` means
/// the defaults, anything but an object is an error.
fn decode_connect(json: &[u8]) -> Result<ConnectOpts, ()> {
    let trimmed = json.trim_ascii();
    if trimmed == b"null" {
        return Ok(ConnectOpts::default());
    }
    if trimmed.first() != Some(&b'{') {
        return Err(());
    }
    serde_json::from_slice(trimmed).map_err(|_| ())
}

struct Config {
    awaiting_connect: bool,
    headers: bool,
    strict: bool,
    max_control_line: usize,
    max_payload: usize,
}

impl Config {
    fn parser(&self) -> Parser {
        let mut p = Parser::new(self.max_control_line, self.max_payload);
        p.awaiting_connect = self.awaiting_connect;
        p.headers = self.headers;
        p
    }
}

struct Run {
    ops: Vec<Op>,
    outcome: Outcome,
    /// Index of the read (chunk) whose parse returned the error, if any.
    failed_chunk: Option<usize>,
    /// After each read: whether the parser was between ops.
    idle_after: Vec<bool>,
}

fn run<'a>(cfg: &Config, chunks: impl IntoIterator<Item = &'a [u8]>) -> Run {
    let mut p = cfg.parser();
    let mut h = Recorder::new(cfg);
    let mut idle_after = Vec::new();
    for (k, chunk) in chunks.into_iter().enumerate() {
        if let Err(e) = p.parse(chunk, &mut h) {
            let outcome = match e {
                ParseStop::Proto(e) => Outcome::Proto(e),
                ParseStop::Handler(s) => Outcome::Handler(s),
            };
            return Run {
                ops: h.ops,
                outcome,
                failed_chunk: Some(k),
                idle_after,
            };
        }
        idle_after.push(p.is_idle());
    }
    Run {
        ops: h.ops,
        outcome: Outcome::Ok,
        failed_chunk: None,
        idle_after,
    }
}

fn strip_cr(s: &[u8]) -> &[u8] {
    match s.last() {
        Some(b'\r') => &s[..s.len() - 1],
        _ => s,
    }
}

/// Length of the op name that starts `line`, for the ops whose argument is limited.
fn op_name_len(line: &[u8]) -> Option<usize> {
    const NAMES: [&[u8]; 8] = [
        b"CONNECT", b"INFO", b"PUB", b"HPUB", b"HMSG", b"SUB", b"UNSUB", b"-ERR",
    ];
    NAMES
        .iter()
        .find(|n| line.len() >= n.len() && line[..n.len()].eq_ignore_ascii_case(n))
        .map(|n| n.len())
}

/// The byte-at-a-time run stopped with `MaxControlLine` at byte `p`: the argument part of the
/// line being read must really be longer than the limit.
fn check_max_control_line(input: &[u8], bytewise: &Run, p: usize, limit: usize) {
    // The line starts right after the last byte at which the parser was between ops.
    let ls = bytewise.idle_after[..p]
        .iter()
        .rposition(|&idle| idle)
        .map_or(0, |q| q + 1);
    let line = &input[ls..=p];
    let name = op_name_len(line).unwrap_or_else(|| {
        panic!(
            "MaxControlLine on a line that starts with no limited op: {:?}",
            String::from_utf8_lossy(line)
        )
    });
    let blanks = line[name..]
        .iter()
        .take_while(|&&b| b == b' ' || b == b'\t')
        .count();
    let arg_start = ls + name + blanks;
    assert!(
        arg_start <= p,
        "MaxControlLine before any argument byte (line {line:?})"
    );
    // The newline that completes a line is not part of its argument, except as the first
    // argument byte (nats-server's state machine takes that one into the argument).
    let arg = if input[p] == b'\n' && p > arg_start {
        &input[arg_start..p]
    } else {
        &input[arg_start..=p]
    };
    let len = strip_cr(arg).len();
    assert!(
        len > limit,
        "MaxControlLine with an argument of {len} bytes, limit {limit} (line {:?})",
        String::from_utf8_lossy(line)
    );
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let flags = data[0];
    let cfg = Config {
        awaiting_connect: flags & 1 != 0,
        headers: flags & 2 != 0,
        strict: flags & 4 != 0,
        max_control_line: MAX_CONTROL_LINE[usize::from((flags >> 3) & 3)],
        max_payload: MAX_PAYLOAD[usize::from((flags >> 5) & 3)],
    };
    let n = usize::from(data[1] & 15);
    if data.len() < 2 + n {
        return;
    }
    let lens = &data[2..2 + n];
    let input = &data[2 + n..];

    // The fuzzed reads: lengths used cyclically; all-zero lengths mean one read.
    let mut chunks: Vec<&[u8]> = Vec::new();
    if lens.iter().any(|&l| l != 0) {
        let mut off = 0;
        for &l in lens.iter().cycle() {
            if off >= input.len() {
                break;
            }
            let end = (off + usize::from(l)).min(input.len());
            chunks.push(&input[off..end]);
            off = end;
        }
    } else {
        chunks.push(input);
    }

    let whole = run(&cfg, [input]);
    let split = run(&cfg, chunks.iter().copied());
    let bytewise = run(&cfg, input.chunks(1));

    assert_eq!(
        whole.ops, split.ops,
        "ops differ: one read vs fuzzed reads {:?}",
        lens
    );
    assert_eq!(
        whole.outcome, split.outcome,
        "outcome differs: one read vs fuzzed reads {:?}",
        lens
    );
    assert_eq!(
        whole.ops, bytewise.ops,
        "ops differ: one read vs byte at a time"
    );
    assert_eq!(
        whole.outcome, bytewise.outcome,
        "outcome differs: one read vs byte at a time"
    );
    if whole.outcome == Outcome::Ok {
        // Between ops or not after all the input, whatever the reads.
        let idle = whole.idle_after.last().copied().unwrap_or(true);
        assert_eq!(
            split.idle_after.last().copied().unwrap_or(true),
            idle,
            "idle differs (fuzzed reads)"
        );
        assert_eq!(
            bytewise.idle_after.last().copied().unwrap_or(true),
            idle,
            "idle differs (byte at a time)"
        );
    }
    if bytewise.outcome == Outcome::Proto(ProtoError::MaxControlLine) {
        let p = bytewise.failed_chunk.expect("error without a failing read");
        check_max_control_line(input, &bytewise, p, cfg.max_control_line);
    }
});
