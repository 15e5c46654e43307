//! The route-protocol parser: what cluster peers send over a route connection.
//!
//! Routes speak nats-server's pre-pooling dialect (see `shared/reference/nats-server-behaviour.md`
//! §2): `INFO`/`CONNECT` handshakes, `RS+`/`RS-` interest (with queue weights), `RMSG`/`HMSG`
//! routed messages carrying the account, an optional reply and the queue groups picked on the
//! receiving node, `PING`/`PONG`, `+OK`, `-ERR`. Peers are trusted servers, so this parser is
//! line-oriented (memchr per control line) rather than byte-validating like the client parser,
//! but it keeps the same zero-copy shape: whole ops are handed out as slices of the read
//! buffer, ops split across reads are copied once into reused scratch buffers, and the control
//! line is bounded so a broken peer cannot grow memory.

use memchr::memchr;

/// Why a route connection must be closed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteProtoError {
    UnknownOp(String),
    BadArgs(String),
    ControlLineTooLong,
    BadPayloadTerminator,
    /// A routed message larger than any server may be configured to carry.
    PayloadTooLarge(usize),
}

/// The largest payload a routed message may announce: nats-server's own ceiling for
/// `max_payload` (64 MB). Peers are servers, but the route port is reachable by anyone until
/// CONNECT is checked, and the size comes from the wire.
pub const MAX_ROUTED_PAYLOAD: usize = 64 * 1024 * 1024;

impl std::fmt::Display for RouteProtoError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RouteProtoError::UnknownOp(op) => write!(f, "unknown route protocol operation {op:?}"),
            RouteProtoError::BadArgs(a) => write!(f, "malformed route protocol arguments {a:?}"),
            RouteProtoError::ControlLineTooLong => f.write_str("route control line too long"),
            RouteProtoError::BadPayloadTerminator => {
                f.write_str("routed message not terminated by CRLF")
            }
            RouteProtoError::PayloadTooLarge(n) => {
                write!(
                    f,
                    "routed message of {n} bytes exceeds {MAX_ROUTED_PAYLOAD}"
                )
            }
        }
    }
}

/// A routed message (`RMSG`/`HMSG`) as it arrived.
#[derive(Debug, Clone, Copy)]
pub struct RoutedMsg<'a> {
    pub account: &'a [u8],
    pub subject: &'a [u8],
    /// Empty when there is none.
    pub reply: &'a [u8],
    /// The queue groups the sender picked on this node, space separated (see [`queues`]).
    pub queues: &'a [u8],
    pub hdr_len: usize,
    pub data: &'a [u8],
    /// The size fields as the sender wrote them (passed on to clients verbatim).
    pub hdr_text: &'a [u8],
    pub size_text: &'a [u8],
}

impl<'a> RoutedMsg<'a> {
    /// The message as local delivery sees it (a client publish has the same shape).
    pub fn as_msg(&self) -> crate::proto::Msg<'a> {
        crate::proto::Msg {
            subject: self.subject,
            reply: self.reply,
            hdr_len: self.hdr_len,
            data: self.data,
            hdr_text: self.hdr_text,
            size_text: self.size_text,
        }
    }
}

impl<'a> MsgLine<'a> {
    fn routed(&self, data: &'a [u8]) -> RoutedMsg<'a> {
        RoutedMsg {
            account: self.account,
            subject: self.subject,
            reply: self.reply,
            queues: self.queues,
            hdr_len: self.hdr,
            data,
            hdr_text: self.hdr_text,
            size_text: self.size_text,
        }
    }
}

/// Iterates the queue names of a [`RoutedMsg`].
pub fn queues(list: &[u8]) -> impl Iterator<Item = &[u8]> {
    list.split(|b| *b == b' ' || *b == b'\t')
        .filter(|q| !q.is_empty())
}

/// What a route connection does with each op.
pub trait RouteHandler {
    type Error;
    fn on_info(&mut self, json: &[u8]) -> Result<(), Self::Error>;
    fn on_connect(&mut self, json: &[u8]) -> Result<(), Self::Error>;
    fn on_ping(&mut self) -> Result<(), Self::Error>;
    fn on_pong(&mut self) -> Result<(), Self::Error>;
    fn on_err(&mut self, text: &[u8]) -> Result<(), Self::Error>;
    /// `RS+ account subject [queue weight]`.
    fn on_sub(
        &mut self,
        account: &[u8],
        subject: &[u8],
        queue: Option<(&[u8], u32)>,
    ) -> Result<(), Self::Error>;
    /// `RS- account subject [queue]`.
    fn on_unsub(
        &mut self,
        account: &[u8],
        subject: &[u8],
        queue: Option<&[u8]>,
    ) -> Result<(), Self::Error>;
    fn on_msg(&mut self, msg: &RoutedMsg<'_>) -> Result<(), Self::Error>;
}

#[derive(Debug)]
pub enum RouteStop<E> {
    Proto(RouteProtoError),
    Handler(E),
}

/// A message whose payload is still arriving.
#[derive(Debug, Default)]
struct Pending {
    /// The control line, re-parsed when the payload is complete.
    line: Vec<u8>,
    size: usize,
    data: Vec<u8>,
}

/// Resumable parser state for one route connection.
#[derive(Debug)]
pub struct RouteParser {
    line: Vec<u8>,
    pending: Option<Pending>,
    max_control_line: usize,
}

/// The blank-separated tokens of an argument list, without allocating.
fn tokens(args: &[u8]) -> impl DoubleEndedIterator<Item = &[u8]> {
    args.split(|b| matches!(b, b' ' | b'\t'))
        .filter(|t| !t.is_empty())
}

fn size_of(t: &[u8]) -> Option<usize> {
    let n = crate::proto::parser::parse_size(t);
    (n >= 0).then_some(n as usize)
}

/// The parsed control line of a routed message.
#[derive(Debug, Clone, Copy)]
struct MsgLine<'a> {
    account: &'a [u8],
    subject: &'a [u8],
    reply: &'a [u8],
    queues: &'a [u8],
    hdr: usize,
    size: usize,
    hdr_text: &'a [u8],
    size_text: &'a [u8],
}

/// Parses the arguments of `RMSG` (`headers` false) or `HMSG` (true): account and subject
/// from the front, the size(s) from the back, and between them nothing, a reply, `+ reply
/// queues…` or `| queues…`. No allocation: this runs for every routed message.
fn msg_line(args: &[u8], headers: bool) -> Result<MsgLine<'_>, RouteProtoError> {
    let bad = || RouteProtoError::BadArgs(String::from_utf8_lossy(args).into_owned());
    let mut t = tokens(args);
    let (Some(account), Some(subject)) = (t.next(), t.next()) else {
        return Err(bad());
    };
    let size_text = t.next_back().ok_or_else(bad)?;
    let size = size_of(size_text).ok_or_else(bad)?;
    let (hdr, hdr_text) = if headers {
        let h = t.next_back().ok_or_else(bad)?;
        (size_of(h).ok_or_else(bad)?, h)
    } else {
        (0, &b""[..])
    };
    if hdr > size {
        return Err(bad());
    }
    let (reply, queues): (&[u8], &[u8]) = match t.next() {
        None => (b"", b""),
        Some(ind) if ind == b"+" => {
            let reply = t.next().ok_or_else(bad)?;
            let first = t.next().ok_or_else(bad)?;
            let last = t.next_back().unwrap_or(first);
            (reply, span(args, first, last))
        }
        Some(ind) if ind == b"|" => {
            let first = t.next().ok_or_else(bad)?;
            let last = t.next_back().unwrap_or(first);
            (b"", span(args, first, last))
        }
        Some(reply) => {
            if t.next().is_some() {
                return Err(bad());
            }
            (reply, b"")
        }
    };
    Ok(MsgLine {
        account,
        subject,
        reply,
        queues,
        hdr,
        size,
        hdr_text,
        size_text,
    })
}

/// The slice of `whole` from `first` to the end of `last` (both sub-slices of `whole`).
fn span<'a>(whole: &'a [u8], first: &'a [u8], last: &'a [u8]) -> &'a [u8] {
    let base = whole.as_ptr() as usize;
    let start = first.as_ptr() as usize - base;
    let end = last.as_ptr() as usize - base + last.len();
    &whole[start..end]
}

impl RouteParser {
    /// Routes allow 16 times the client control-line limit, as nats-server does.
    pub fn new(max_control_line: usize) -> Self {
        RouteParser {
            line: Vec::new(),
            pending: None,
            max_control_line: max_control_line.saturating_mul(16),
        }
    }

    pub fn parse<H: RouteHandler>(
        &mut self,
        buf: &[u8],
        h: &mut H,
    ) -> Result<(), RouteStop<H::Error>> {
        let mut i = 0;
        while i < buf.len() {
            if let Some(p) = &mut self.pending {
                let need = p.size + 2 - p.data.len();
                let take = need.min(buf.len() - i);
                p.data.extend_from_slice(&buf[i..i + take]);
                i += take;
                if p.data.len() < p.size + 2 {
                    return Ok(());
                }
                let Some(p) = self.pending.take() else {
                    return Ok(());
                };
                if &p.data[p.size..] != b"\r\n" {
                    return Err(RouteStop::Proto(RouteProtoError::BadPayloadTerminator));
                }
                let headers = p
                    .line
                    .first()
                    .is_some_and(|b| b.eq_ignore_ascii_case(&b'h'));
                let args = split_op(&p.line).1;
                let l = msg_line(args, headers).map_err(RouteStop::Proto)?;
                h.on_msg(&l.routed(&p.data[..p.size]))
                    .map_err(RouteStop::Handler)?;
                continue;
            }
            let Some(nl) = memchr(b'\n', &buf[i..]).map(|o| i + o) else {
                self.line.extend_from_slice(&buf[i..]);
                // One byte of slack: the line's `\r` may be here while its `\n` is not, and a
                // complete line is measured without it (found by the `route` fuzz target).
                if self.line.len() > self.max_control_line + 1 {
                    return Err(RouteStop::Proto(RouteProtoError::ControlLineTooLong));
                }
                return Ok(());
            };
            let owned;
            let line: &[u8] = if self.line.is_empty() {
                &buf[i..nl]
            } else {
                self.line.extend_from_slice(&buf[i..nl]);
                owned = std::mem::take(&mut self.line);
                &owned
            };
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if line.len() > self.max_control_line {
                return Err(RouteStop::Proto(RouteProtoError::ControlLineTooLong));
            }
            i = nl + 1;
            let (op, args) = split_op(line);
            let mut upper = [0u8; 8];
            let op_upper = match upper.get_mut(..op.len()) {
                Some(u) => {
                    u.copy_from_slice(op);
                    u.make_ascii_uppercase();
                    &*u
                }
                None => op,
            };
            match op_upper {
                b"PING" => h.on_ping().map_err(RouteStop::Handler)?,
                b"PONG" => h.on_pong().map_err(RouteStop::Handler)?,
                b"+OK" => {}
                b"-ERR" => h.on_err(args).map_err(RouteStop::Handler)?,
                b"INFO" => h.on_info(args).map_err(RouteStop::Handler)?,
                b"CONNECT" => h.on_connect(args).map_err(RouteStop::Handler)?,
                b"RS+" | b"LS+" => {
                    let mut t = tokens(args);
                    let t = [t.next(), t.next(), t.next(), t.next(), t.next()];
                    let res = match t {
                        [Some(acc), Some(subj), None, ..] => h.on_sub(acc, subj, None),
                        [Some(acc), Some(subj), Some(q), None, _] => {
                            h.on_sub(acc, subj, Some((q, 1)))
                        }
                        [Some(acc), Some(subj), Some(q), Some(w), None] => {
                            let w = size_of(w).unwrap_or(1).max(1) as u32;
                            h.on_sub(acc, subj, Some((q, w)))
                        }
                        _ => return Err(RouteStop::Proto(bad_args(args))),
                    };
                    res.map_err(RouteStop::Handler)?;
                }
                b"RS-" | b"LS-" => {
                    let mut t = tokens(args);
                    let res = match [t.next(), t.next(), t.next()] {
                        [Some(acc), Some(subj), None] => h.on_unsub(acc, subj, None),
                        [Some(acc), Some(subj), Some(q)] => h.on_unsub(acc, subj, Some(q)),
                        _ => return Err(RouteStop::Proto(bad_args(args))),
                    };
                    res.map_err(RouteStop::Handler)?;
                }
                b"RMSG" | b"HMSG" => {
                    let headers = op_upper[0] == b'H';
                    let l = msg_line(args, headers).map_err(RouteStop::Proto)?;
                    let size = l.size;
                    if size > MAX_ROUTED_PAYLOAD {
                        return Err(RouteStop::Proto(RouteProtoError::PayloadTooLarge(size)));
                    }
                    if buf.len() - i >= size + 2 {
                        if &buf[i + size..i + size + 2] != b"\r\n" {
                            return Err(RouteStop::Proto(RouteProtoError::BadPayloadTerminator));
                        }
                        h.on_msg(&l.routed(&buf[i..i + size]))
                            .map_err(RouteStop::Handler)?;
                        i += size + 2;
                    } else {
                        // Sized by what arrived, not by what the line announces: memory follows
                        // the bytes actually received (found by the `route` fuzz target).
                        let mut p = Pending {
                            line: line.to_vec(),
                            size,
                            data: Vec::with_capacity((buf.len() - i).min(size + 2)),
                        };
                        p.data.extend_from_slice(&buf[i..]);
                        self.pending = Some(p);
                        return Ok(());
                    }
                }
                _ => {
                    return Err(RouteStop::Proto(RouteProtoError::UnknownOp(
                        String::from_utf8_lossy(op).into_owned(),
                    )));
                }
            }
        }
        Ok(())
    }
}

fn bad_args(args: &[u8]) -> RouteProtoError {
    RouteProtoError::BadArgs(String::from_utf8_lossy(args).into_owned())
}

/// A control line's op and its argument part (after the op and its blanks).
fn split_op(line: &[u8]) -> (&[u8], &[u8]) {
    let op_end = line
        .iter()
        .position(|b| *b == b' ' || *b == b'\t')
        .unwrap_or(line.len());
    let rest = &line[op_end..];
    let start = rest
        .iter()
        .position(|b| *b != b' ' && *b != b'\t')
        .unwrap_or(rest.len());
    (&line[..op_end], &rest[start..])
}

/// A handler that records every op (with the invariants every routed message must satisfy),
/// for the unit tests here and the `route` fuzz target.
#[cfg(any(test, fuzzing))]
pub mod recording {
    use super::*;
    use crate::proto::parser::parse_size;

    #[derive(Debug, PartialEq, Eq, Clone)]
    pub enum Seen {
        Info(Vec<u8>),
        Connect(Vec<u8>),
        Ping,
        Pong,
        Err(Vec<u8>),
        Sub(Vec<u8>, Vec<u8>, Option<(Vec<u8>, u32)>),
        Unsub(Vec<u8>, Vec<u8>, Option<Vec<u8>>),
        Msg(Vec<u8>, Vec<u8>, Vec<u8>, Vec<Vec<u8>>, usize, Vec<u8>),
    }

    #[derive(Default)]
    pub struct Rec(pub Vec<Seen>);

    impl RouteHandler for Rec {
        type Error = ();
        fn on_info(&mut self, j: &[u8]) -> Result<(), ()> {
            self.0.push(Seen::Info(j.to_vec()));
            Ok(())
        }
        fn on_connect(&mut self, j: &[u8]) -> Result<(), ()> {
            self.0.push(Seen::Connect(j.to_vec()));
            Ok(())
        }
        fn on_ping(&mut self) -> Result<(), ()> {
            self.0.push(Seen::Ping);
            Ok(())
        }
        fn on_pong(&mut self) -> Result<(), ()> {
            self.0.push(Seen::Pong);
            Ok(())
        }
        fn on_err(&mut self, t: &[u8]) -> Result<(), ()> {
            self.0.push(Seen::Err(t.to_vec()));
            Ok(())
        }
        fn on_sub(&mut self, a: &[u8], s: &[u8], q: Option<(&[u8], u32)>) -> Result<(), ()> {
            assert!(q.is_none_or(|(q, w)| !q.is_empty() && w >= 1));
            self.0.push(Seen::Sub(
                a.to_vec(),
                s.to_vec(),
                q.map(|(q, w)| (q.to_vec(), w)),
            ));
            Ok(())
        }
        fn on_unsub(&mut self, a: &[u8], s: &[u8], q: Option<&[u8]>) -> Result<(), ()> {
            self.0
                .push(Seen::Unsub(a.to_vec(), s.to_vec(), q.map(<[u8]>::to_vec)));
            Ok(())
        }
        fn on_msg(&mut self, m: &RoutedMsg<'_>) -> Result<(), ()> {
            // What every routed message must satisfy, and must survive being encoded again.
            assert!(m.hdr_len <= m.data.len());
            assert_eq!(parse_size(m.size_text), m.data.len() as i64);
            if !m.hdr_text.is_empty() {
                assert_eq!(parse_size(m.hdr_text), m.hdr_len as i64);
            }
            assert!(queues(m.queues).all(|q| !q.is_empty()));
            let msg = m.as_msg();
            let mut out = Vec::new();
            for headers in [true, false] {
                crate::proto::wire::route_msg(&mut out, m.account, &msg, queues(m.queues), headers);
                crate::proto::wire::msg(&mut out, &msg, b"1", headers);
            }
            self.0.push(Seen::Msg(
                m.account.to_vec(),
                m.subject.to_vec(),
                m.reply.to_vec(),
                queues(m.queues).map(<[u8]>::to_vec).collect(),
                m.hdr_len,
                m.data.to_vec(),
            ));
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use super::recording::{Rec, Seen};

    fn v(s: &str) -> Vec<u8> {
        s.as_bytes().to_vec()
    }

    /// The wire forms observed from nats-server 2.15.1 (reference §2.2, §2.3, appendix).
    const STREAM: &[u8] =
        b"INFO {\"server_id\":\"A\"}\r\nCONNECT {\"name\":\"A\"}\r\nPING\r\nPONG\r\n\
RS+ $G foo\r\nRS+ $G bar q1 2\r\nRS- $G bar q1\r\nRS- $G foo\r\nRMSG $G bar | q1 3\r\nabc\r\n\
RMSG $G qq + reply.1 g1 g2 2\r\nyo\r\nRMSG $G plain 0\r\n\r\nRMSG $G r reply.2 1\r\nx\r\n\
HMSG $G baz 12 14\r\nNATS/1.0\r\n\r\nhi\r\n-ERR 'oops'\r\n";

    fn expected() -> Vec<Seen> {
        vec![
            Seen::Info(v("{\"server_id\":\"A\"}")),
            Seen::Connect(v("{\"name\":\"A\"}")),
            Seen::Ping,
            Seen::Pong,
            Seen::Sub(v("$G"), v("foo"), None),
            Seen::Sub(v("$G"), v("bar"), Some((v("q1"), 2))),
            Seen::Unsub(v("$G"), v("bar"), Some(v("q1"))),
            Seen::Unsub(v("$G"), v("foo"), None),
            Seen::Msg(v("$G"), v("bar"), v(""), vec![v("q1")], 0, v("abc")),
            Seen::Msg(
                v("$G"),
                v("qq"),
                v("reply.1"),
                vec![v("g1"), v("g2")],
                0,
                v("yo"),
            ),
            Seen::Msg(v("$G"), v("plain"), v(""), vec![], 0, v("")),
            Seen::Msg(v("$G"), v("r"), v("reply.2"), vec![], 0, v("x")),
            Seen::Msg(
                v("$G"),
                v("baz"),
                v(""),
                vec![],
                12,
                v("NATS/1.0\r\n\r\nhi"),
            ),
            Seen::Err(v("'oops'")),
        ]
    }

    #[test]
    fn parses_nats_server_wire_forms() {
        let mut p = RouteParser::new(4096);
        let mut r = Rec::default();
        p.parse(STREAM, &mut r).unwrap();
        assert_eq!(r.0, expected());
    }

    #[test]
    fn any_split_parses_the_same() {
        for cut in 0..=STREAM.len() {
            let mut p = RouteParser::new(4096);
            let mut r = Rec::default();
            p.parse(&STREAM[..cut], &mut r).unwrap();
            p.parse(&STREAM[cut..], &mut r).unwrap();
            assert_eq!(r.0, expected(), "split at {cut}");
        }
        let mut p = RouteParser::new(4096);
        let mut r = Rec::default();
        for b in STREAM.chunks(1) {
            p.parse(b, &mut r).unwrap();
        }
        assert_eq!(r.0, expected());
    }

    #[test]
    fn errors() {
        let mut r = Rec::default();
        assert!(matches!(
            RouteParser::new(4096).parse(b"BOGUS x\r\n", &mut r),
            Err(RouteStop::Proto(RouteProtoError::UnknownOp(_)))
        ));
        assert!(matches!(
            RouteParser::new(4096).parse(b"RMSG $G foo 2\r\nabX\n", &mut r),
            Err(RouteStop::Proto(RouteProtoError::BadPayloadTerminator))
        ));
        assert!(matches!(
            RouteParser::new(4096).parse(b"RMSG $G foo x\r\n", &mut r),
            Err(RouteStop::Proto(RouteProtoError::BadArgs(_)))
        ));
        assert!(matches!(
            RouteParser::new(1).parse(&[b'A'; 100], &mut r),
            Err(RouteStop::Proto(RouteProtoError::ControlLineTooLong))
        ));
        // An announced size is not trusted: nothing is reserved beyond what arrived, and sizes
        // above nats-server's 64 MB ceiling are refused.
        let mut p = RouteParser::new(4096);
        p.parse(b"RMSG $G foo 60000000\r\nabc", &mut r).unwrap();
        assert!(p.pending.as_ref().unwrap().data.capacity() < 1024);
        assert!(matches!(
            RouteParser::new(4096).parse(b"RMSG $G foo 99999999\r\n", &mut r),
            Err(RouteStop::Proto(RouteProtoError::PayloadTooLarge(_)))
        ));
        // A line exactly at the limit parses the same whether its `\r\n` arrives with it or
        // a byte at a time (the limit is 16 x max_control_line).
        let line = b"RMSG $G s r\t\0* 5\r\n";
        let whole = RouteParser::new(1).parse(line, &mut r);
        let mut p = RouteParser::new(1);
        let bytes = line
            .chunks(1)
            .map(|b| p.parse(b, &mut r))
            .find(|r| r.is_err());
        assert!(matches!(
            whole,
            Err(RouteStop::Proto(RouteProtoError::BadArgs(_)))
        ));
        assert!(matches!(
            bytes,
            Some(Err(RouteStop::Proto(RouteProtoError::BadArgs(_))))
        ));
    }
}
