//! The client-protocol parser: a resumable state machine over the bytes a client sends.
//!
//! It follows nats-server's `parser.go` in behaviour, because clients and tests depend on the
//! exact moment and text of every error:
//! - op names are matched byte by byte, case-insensitively, so a bad byte is rejected as soon as
//!   it arrives (`-ERR 'Unknown Protocol Operation'`), even before the line ends;
//! - arguments are separated by any run of spaces or tabs and end at `\n` (a trailing `\r` is
//!   dropped); `PING`, `PONG` and `+OK` ignore anything up to the newline;
//! - the control-line limit applies to the argument part and is checked on partial lines too,
//!   so a client that never sends a newline cannot grow our memory;
//! - `max_payload` is checked as soon as a `PUB`/`HPUB` line is complete, before its payload.
//!
//! Zero copy: on the common path (a whole op inside one read) every argument and the payload are
//! slices of the read buffer. Only an op split across reads is copied, once, into the parser's
//! own scratch buffers, whose capacity is reused. The state lives in [`Parser`], so a read may
//! end at any byte, a byte at a time included.

use memchr::memchr;

/// Why the parser stopped a connection. Each maps to nats-server's wire text and close reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProtoError {
    /// A byte that no op allows here, or a payload not terminated by `\r\n`.
    UnknownOp,
    /// The argument part of a control line is longer than `max_control_line`.
    MaxControlLine,
    /// A `PUB`/`HPUB` announced more bytes than `max_payload`.
    MaxPayload,
    /// An op other than `CONNECT` arrived first while authentication is required.
    AuthViolation,
    /// Malformed arguments (wrong count, bad sizes): nats-server closes without any `-ERR`.
    BadArgs,
    /// `HPUB` from a client that did not announce `headers: true`: closed without `-ERR`.
    HeadersNotSupported,
}

/// Why parsing stopped: a protocol error found by the parser, or a stop asked for by the handler.
#[derive(Debug)]
pub enum ParseStop<E> {
    Proto(ProtoError),
    Handler(E),
}

impl<E> From<ProtoError> for ParseStop<E> {
    fn from(e: ProtoError) -> Self {
        ParseStop::Proto(e)
    }
}

/// What a connection does with each complete op. Arguments borrow the read buffer (or the
/// parser's scratch space) and are only valid during the call.
pub trait Handler {
    type Error;
    /// `CONNECT <json>`. Returns whether the client may send headers (`HPUB`).
    fn on_connect(&mut self, json: &[u8]) -> Result<bool, Self::Error>;
    /// A `PUB`/`HPUB` line is complete (payload not yet read): the place for checks that
    /// nats-server makes before the payload, such as pedantic subject validation.
    fn on_pub_line(&mut self, subject: &[u8]) -> Result<(), Self::Error>;
    /// A complete message. An empty `subject` marks the odd `HMSG` a client may send, which
    /// nats-server accepts and drops.
    fn on_msg(&mut self, msg: &Msg<'_>) -> Result<(), Self::Error>;
    fn on_sub(
        &mut self,
        subject: &[u8],
        queue: Option<&[u8]>,
        sid: &[u8],
    ) -> Result<(), Self::Error>;
    /// `UNSUB <sid> [max]`; `max` is -1 when absent or unparsable (nats-server then
    /// unsubscribes at once).
    fn on_unsub(&mut self, sid: &[u8], max: i64) -> Result<(), Self::Error>;
    fn on_ping(&mut self) -> Result<(), Self::Error>;
    fn on_pong(&mut self) -> Result<(), Self::Error>;
    /// `-ERR` from a client: nats-server logs it and closes.
    fn on_err(&mut self, text: &[u8]) -> Result<(), Self::Error>;
    /// `INFO` from a client is parsed and ignored.
    fn on_info(&mut self, _json: &[u8]) -> Result<(), Self::Error> {
        Ok(())
    }
}

/// A published message as it arrived, borrowed from the read buffer (or the parser's scratch
/// space when it was split across reads).
#[derive(Debug, Clone, Copy)]
pub struct Msg<'a> {
    pub subject: &'a [u8],
    /// Empty when the message has no reply subject.
    pub reply: &'a [u8],
    /// Length of the header block (0 for `PUB`); `data` holds headers then payload.
    pub hdr_len: usize,
    pub data: &'a [u8],
    /// The size fields exactly as the publisher wrote them: nats-server copies them into the
    /// `MSG`/`HMSG` lines it delivers (`PUB foo 02` is delivered as `MSG foo 1 02`).
    pub hdr_text: &'a [u8],
    pub size_text: &'a [u8],
}

/// The ops a client may send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Connect,
    Info,
    Pub,
    HPub,
    HMsg,
    Sub,
    Unsub,
    Ping,
    Pong,
    Ok,
    Err,
}

impl Op {
    fn name(self) -> &'static [u8] {
        match self {
            Op::Connect => b"CONNECT",
            Op::Info => b"INFO",
            Op::Pub => b"PUB",
            Op::HPub => b"HPUB",
            Op::HMsg => b"HMSG",
            Op::Sub => b"SUB",
            Op::Unsub => b"UNSUB",
            Op::Ping => b"PING",
            Op::Pong => b"PONG",
            Op::Ok => b"+OK",
            Op::Err => b"-ERR",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Expecting the first byte of an op.
    Start,
    /// Seen `P`: `PUB`, `PING` or `PONG`.
    NameP,
    /// Seen `H`: `HPUB` or `HMSG`.
    NameH,
    /// Matching the rest of an op name; `pos` bytes matched so far.
    Name {
        op: Op,
        pos: u8,
    },
    /// Op name complete; for ops with arguments a space or tab must follow.
    AfterName(Op),
    /// Skipping the separator run before the first argument.
    Spaces(Op),
    /// Inside the argument part, up to `\n`. Bytes of earlier reads are in `arg_buf`.
    Arg(Op),
    /// `PING`, `PONG`, `+OK`: everything up to `\n` is ignored.
    SkipLine(Op),
    /// Collecting a payload split across reads into `msg`.
    Payload,
    PayloadEndR,
    PayloadEndN,
}

/// A message whose payload did not fit in the read that carried its control line.
#[derive(Debug, Default)]
struct PendingMsg {
    subject: Vec<u8>,
    reply: Vec<u8>,
    hdr_text: Vec<u8>,
    size_text: Vec<u8>,
    hdr_len: usize,
    size: usize,
    data: Vec<u8>,
}

/// Resumable parser state for one client connection.
#[derive(Debug)]
pub struct Parser {
    state: State,
    /// Argument bytes of a control line split across reads.
    arg_buf: Vec<u8>,
    msg: PendingMsg,
    /// Limit on the argument part of a control line (nats-server's `max_control_line`).
    pub max_control_line: usize,
    /// Limit on a message's size, headers included.
    pub max_payload: usize,
    /// While true the first op must be `CONNECT` (authentication required).
    pub awaiting_connect: bool,
    /// Whether the client announced headers support; `HPUB` is refused otherwise.
    pub headers: bool,
}

/// Scratch buffers above this size are released after use, so one large split message does
/// not pin memory on an otherwise idle connection.
const SCRATCH_KEEP: usize = 64 * 1024;

/// nats-server reads sizes with at most 9 digits (999 MB); longer or non-digit → -1.
pub fn parse_size(d: &[u8]) -> i64 {
    if d.is_empty() || d.len() > 9 {
        return -1;
    }
    let mut n: i64 = 0;
    for &b in d {
        if !b.is_ascii_digit() {
            return -1;
        }
        n = n * 10 + i64::from(b - b'0');
    }
    n
}

/// Splits `arg` into at most `N` fields on runs of bytes for which `is_sep` holds. Returns
/// `None` when there are more than `N` fields. Runs on every control line, so it is a plain
/// index loop the compiler can keep in registers.
#[inline(always)]
fn split_args<'a, const N: usize>(
    arg: &'a [u8],
    is_sep: impl Fn(u8) -> bool,
    out: &mut [&'a [u8]; N],
) -> Option<usize> {
    let mut n = 0;
    let mut i = 0;
    let len = arg.len();
    loop {
        while i < len && is_sep(arg[i]) {
            i += 1;
        }
        if i == len {
            return Some(n);
        }
        let start = i;
        while i < len && !is_sep(arg[i]) {
            i += 1;
        }
        if n == N {
            return None;
        }
        out[n] = &arg[start..i];
        n += 1;
    }
}

/// Separators between `PUB`/`HPUB` arguments.
#[inline(always)]
fn pub_sep(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// Whether `buf[i..]` starts with the op `name` (given in lower case; any case matches) and
/// an argument separator.
#[inline(always)]
fn starts_with_op(buf: &[u8], i: usize, name: &[u8]) -> bool {
    match buf.get(i..i + name.len() + 1) {
        Some(head) => {
            head.iter()
                .zip(name)
                .all(|(&got, &want)| got | 0x20 == want)
                && pub_sep(head[name.len()])
        }
        None => false,
    }
}

/// Separators between `SUB`/`UNSUB` arguments (nats-server also splits those on CR and LF).
#[inline(always)]
fn sub_sep(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

impl Parser {
    pub fn new(max_control_line: usize, max_payload: usize) -> Self {
        Parser {
            state: State::Start,
            arg_buf: Vec::new(),
            msg: PendingMsg::default(),
            max_control_line,
            max_payload,
            awaiting_connect: false,
            headers: false,
        }
    }

    /// True when no op is in progress (the parser is between ops).
    pub fn is_idle(&self) -> bool {
        self.state == State::Start
    }

    /// Feeds one read's worth of bytes. Calls the handler for each complete op, in order.
    /// On error the connection must be closed; the parser state is then unspecified.
    pub fn parse<H: Handler>(&mut self, buf: &[u8], h: &mut H) -> Result<(), ParseStop<H::Error>> {
        let mut i = 0;
        while i < buf.len() {
            let b = buf[i];
            match self.state {
                State::Start => {
                    if self.awaiting_connect && b != b'C' && b != b'c' {
                        return Err(ProtoError::AuthViolation.into());
                    }
                    // `PUB ` / `HPUB ` in one piece, the ops publishers send most: straight to
                    // their arguments, the state the byte-wise path below reaches too.
                    let fast = if starts_with_op(buf, i, b"pub") {
                        Some((Op::Pub, 4))
                    } else if starts_with_op(buf, i, b"hpub") {
                        Some((Op::HPub, 5))
                    } else {
                        None
                    };
                    if let Some((op, len)) = fast {
                        self.state = State::Spaces(op);
                        i += len;
                        continue;
                    }
                    self.state = match b {
                        b'P' | b'p' => State::NameP,
                        b'H' | b'h' => State::NameH,
                        b'S' | b's' => State::Name {
                            op: Op::Sub,
                            pos: 1,
                        },
                        b'U' | b'u' => State::Name {
                            op: Op::Unsub,
                            pos: 1,
                        },
                        b'C' | b'c' => State::Name {
                            op: Op::Connect,
                            pos: 1,
                        },
                        b'I' | b'i' => State::Name {
                            op: Op::Info,
                            pos: 1,
                        },
                        b'+' => State::Name { op: Op::Ok, pos: 1 },
                        b'-' => State::Name {
                            op: Op::Err,
                            pos: 1,
                        },
                        _ => return Err(ProtoError::UnknownOp.into()),
                    };
                    i += 1;
                }
                State::NameP => {
                    self.state = match b {
                        b'U' | b'u' => State::Name {
                            op: Op::Pub,
                            pos: 2,
                        },
                        b'I' | b'i' => State::Name {
                            op: Op::Ping,
                            pos: 2,
                        },
                        b'O' | b'o' => State::Name {
                            op: Op::Pong,
                            pos: 2,
                        },
                        _ => return Err(ProtoError::UnknownOp.into()),
                    };
                    i += 1;
                }
                State::NameH => {
                    self.state = match b {
                        b'P' | b'p' => State::Name {
                            op: Op::HPub,
                            pos: 2,
                        },
                        b'M' | b'm' => State::Name {
                            op: Op::HMsg,
                            pos: 2,
                        },
                        _ => return Err(ProtoError::UnknownOp.into()),
                    };
                    i += 1;
                }
                State::Name { op, pos } => {
                    let name = op.name();
                    if b.to_ascii_uppercase() != name[pos as usize] {
                        return Err(ProtoError::UnknownOp.into());
                    }
                    let pos = pos + 1;
                    self.state = if pos as usize == name.len() {
                        State::AfterName(op)
                    } else {
                        State::Name { op, pos }
                    };
                    i += 1;
                }
                State::AfterName(op) => match op {
                    Op::Ping | Op::Pong | Op::Ok => self.state = State::SkipLine(op),
                    // CONNECT and INFO need no separator: `CONNECT{}` is accepted.
                    Op::Connect | Op::Info => self.state = State::Spaces(op),
                    _ => {
                        if b != b' ' && b != b'\t' {
                            return Err(ProtoError::UnknownOp.into());
                        }
                        self.state = State::Spaces(op);
                        i += 1;
                    }
                },
                State::Spaces(op) => {
                    if b == b' ' || b == b'\t' {
                        i += 1;
                    } else {
                        // The first non-blank byte belongs to the argument even when it is a
                        // newline, exactly as nats-server's state machine treats it.
                        self.state = State::Arg(op);
                        self.arg_buf.clear();
                        i = self.arg(op, buf, i, i + 1, h)?;
                    }
                }
                State::Arg(op) => {
                    i = self.arg(op, buf, i, i, h)?;
                }
                State::SkipLine(op) => match memchr(b'\n', &buf[i..]) {
                    Some(off) => {
                        i += off + 1;
                        self.state = State::Start;
                        let r = match op {
                            Op::Ping => h.on_ping(),
                            Op::Pong => h.on_pong(),
                            _ => Ok(()),
                        };
                        r.map_err(ParseStop::Handler)?;
                    }
                    None => i = buf.len(),
                },
                State::Payload => {
                    let need = self.msg.size - self.msg.data.len();
                    let take = need.min(buf.len() - i);
                    self.msg.data.extend_from_slice(&buf[i..i + take]);
                    i += take;
                    if self.msg.data.len() == self.msg.size {
                        self.state = State::PayloadEndR;
                    }
                }
                State::PayloadEndR => {
                    if b != b'\r' {
                        return Err(ProtoError::UnknownOp.into());
                    }
                    self.state = State::PayloadEndN;
                    i += 1;
                }
                State::PayloadEndN => {
                    if b != b'\n' {
                        return Err(ProtoError::UnknownOp.into());
                    }
                    i += 1;
                    self.state = State::Start;
                    let m = std::mem::take(&mut self.msg);
                    let r = h.on_msg(&Msg {
                        subject: &m.subject,
                        reply: &m.reply,
                        hdr_len: m.hdr_len,
                        data: &m.data,
                        hdr_text: &m.hdr_text,
                        size_text: &m.size_text,
                    });
                    self.recycle_msg(m);
                    r.map_err(ParseStop::Handler)?;
                }
            }
        }
        Ok(())
    }

    /// Keeps the pending message's buffers for reuse unless they grew large.
    fn recycle_msg(&mut self, mut m: PendingMsg) {
        if m.data.capacity() > SCRATCH_KEEP {
            m.data = Vec::new();
        }
        m.data.clear();
        m.subject.clear();
        m.reply.clear();
        m.hdr_text.clear();
        m.size_text.clear();
        self.msg = m;
    }

    /// Handles the argument part of a control line starting at `start` in `buf` (or continuing
    /// in `arg_buf`), looking for the newline from `search`. Returns the next index to parse.
    fn arg<H: Handler>(
        &mut self,
        op: Op,
        buf: &[u8],
        start: usize,
        search: usize,
        h: &mut H,
    ) -> Result<usize, ParseStop<H::Error>> {
        let nl = if search < buf.len() {
            memchr(b'\n', &buf[search..]).map(|o| search + o)
        } else {
            None
        };
        let Some(nl) = nl else {
            // Partial line: keep it, but never more than the limit allows.
            self.arg_buf.extend_from_slice(&buf[start..]);
            let len = strip_cr(&self.arg_buf).len();
            if len > self.max_control_line {
                return Err(ProtoError::MaxControlLine.into());
            }
            return Ok(buf.len());
        };
        let next = nl + 1;
        if self.arg_buf.is_empty() {
            let arg = strip_cr(&buf[start..nl]);
            self.line(op, arg, buf, next, h)
        } else {
            let mut owned = std::mem::take(&mut self.arg_buf);
            owned.extend_from_slice(&buf[start..nl]);
            let r = self.line(op, strip_cr(&owned), buf, next, h);
            owned.clear();
            if owned.capacity() <= SCRATCH_KEEP {
                self.arg_buf = owned;
            }
            r
        }
    }

    /// A complete control line `arg` for `op`; `rest` starts at `next` in `buf`.
    fn line<H: Handler>(
        &mut self,
        op: Op,
        arg: &[u8],
        buf: &[u8],
        next: usize,
        h: &mut H,
    ) -> Result<usize, ParseStop<H::Error>> {
        if arg.len() > self.max_control_line {
            return Err(ProtoError::MaxControlLine.into());
        }
        self.state = State::Start;
        match op {
            Op::Connect => {
                self.headers = h.on_connect(arg).map_err(ParseStop::Handler)?;
                self.awaiting_connect = false;
                Ok(next)
            }
            Op::Info => h.on_info(arg).map_err(ParseStop::Handler).map(|_| next),
            Op::Err => h.on_err(arg).map_err(ParseStop::Handler).map(|_| next),
            Op::Sub => {
                let mut a = [&b""[..]; 3];
                match split_args(arg, sub_sep, &mut a) {
                    Some(2) => h.on_sub(a[0], None, a[1]),
                    Some(3) => h.on_sub(a[0], Some(a[1]), a[2]),
                    _ => return Err(ProtoError::BadArgs.into()),
                }
                .map_err(ParseStop::Handler)?;
                Ok(next)
            }
            Op::Unsub => {
                let mut a = [&b""[..]; 2];
                match split_args(arg, sub_sep, &mut a) {
                    Some(1) => h.on_unsub(a[0], -1),
                    Some(2) => h.on_unsub(a[0], parse_size(a[1])),
                    _ => return Err(ProtoError::BadArgs.into()),
                }
                .map_err(ParseStop::Handler)?;
                Ok(next)
            }
            Op::Pub => {
                let mut a = [&b""[..]; 3];
                let (subject, reply, size_text) = match split_args(arg, pub_sep, &mut a) {
                    Some(2) => (a[0], &b""[..], a[1]),
                    Some(3) => (a[0], a[1], a[2]),
                    _ => return Err(ProtoError::BadArgs.into()),
                };
                let size = parse_size(size_text);
                if size < 0 {
                    return Err(ProtoError::BadArgs.into());
                }
                let line = Line {
                    subject,
                    reply,
                    hdr_len: 0,
                    size: size as usize,
                    hdr_text: b"",
                    size_text,
                };
                self.payload(line, buf, next, h)
            }
            Op::HPub => {
                if !self.headers {
                    return Err(ProtoError::HeadersNotSupported.into());
                }
                let mut a = [&b""[..]; 4];
                let (subject, reply, hdr_text, size_text) = match split_args(arg, pub_sep, &mut a) {
                    Some(3) => (a[0], &b""[..], a[1], a[2]),
                    Some(4) => (a[0], a[1], a[2], a[3]),
                    _ => return Err(ProtoError::BadArgs.into()),
                };
                let (hdr, size) = (parse_size(hdr_text), parse_size(size_text));
                if hdr < 0 || size < 0 || hdr > size {
                    return Err(ProtoError::BadArgs.into());
                }
                let line = Line {
                    subject,
                    reply,
                    hdr_len: hdr as usize,
                    size: size as usize,
                    hdr_text,
                    size_text,
                };
                self.payload(line, buf, next, h)
            }
            // A client's HMSG is consumed as an empty message (nats-server's behaviour).
            Op::HMsg => {
                let line = Line {
                    subject: b"",
                    reply: b"",
                    hdr_len: 0,
                    size: 0,
                    hdr_text: b"",
                    size_text: b"0",
                };
                self.payload(line, buf, next, h)
            }
            Op::Ping | Op::Pong | Op::Ok => Ok(next),
        }
    }

    /// Reads the payload of a message whose control line is complete.
    fn payload<H: Handler>(
        &mut self,
        line: Line<'_>,
        buf: &[u8],
        next: usize,
        h: &mut H,
    ) -> Result<usize, ParseStop<H::Error>> {
        let size = line.size;
        if size > self.max_payload {
            return Err(ProtoError::MaxPayload.into());
        }
        if !line.subject.is_empty() {
            h.on_pub_line(line.subject).map_err(ParseStop::Handler)?;
        }
        let avail = buf.len() - next;
        if avail >= size + 2 {
            // The whole message is in this read: hand out slices, no copy.
            if buf[next + size] != b'\r' || buf[next + size + 1] != b'\n' {
                return Err(ProtoError::UnknownOp.into());
            }
            h.on_msg(&Msg {
                subject: line.subject,
                reply: line.reply,
                hdr_len: line.hdr_len,
                data: &buf[next..next + size],
                hdr_text: line.hdr_text,
                size_text: line.size_text,
            })
            .map_err(ParseStop::Handler)?;
            return Ok(next + size + 2);
        }
        // Split message: copy what we have (once) and continue on the next read.
        let m = &mut self.msg;
        for (dst, src) in [
            (&mut m.subject, line.subject),
            (&mut m.reply, line.reply),
            (&mut m.hdr_text, line.hdr_text),
            (&mut m.size_text, line.size_text),
        ] {
            dst.clear();
            dst.extend_from_slice(src);
        }
        m.hdr_len = line.hdr_len;
        m.size = size;
        m.data.clear();
        m.data.reserve(size);
        let take = avail.min(size);
        m.data.extend_from_slice(&buf[next..next + take]);
        let mut i = next + take;
        self.state = if m.data.len() == size {
            State::PayloadEndR
        } else {
            State::Payload
        };
        // At most one byte of the terminator can be here (avail < size + 2).
        if i < buf.len() {
            if buf[i] != b'\r' {
                return Err(ProtoError::UnknownOp.into());
            }
            self.state = State::PayloadEndN;
            i += 1;
        }
        Ok(i)
    }
}

/// The parsed control line of a `PUB`/`HPUB`.
struct Line<'a> {
    subject: &'a [u8],
    reply: &'a [u8],
    hdr_len: usize,
    size: usize,
    hdr_text: &'a [u8],
    size_text: &'a [u8],
}

fn strip_cr(s: &[u8]) -> &[u8] {
    match s.last() {
        Some(b'\r') => &s[..s.len() - 1],
        _ => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// An op as the handler saw it, owned, for comparisons.
    #[derive(Debug, Clone, PartialEq, Eq)]
    enum Seen {
        Connect(Vec<u8>),
        PubLine(Vec<u8>),
        Msg(Vec<u8>, Vec<u8>, usize, Vec<u8>),
        Sub(Vec<u8>, Option<Vec<u8>>, Vec<u8>),
        Unsub(Vec<u8>, i64),
        Ping,
        Pong,
        Err(Vec<u8>),
        Info(Vec<u8>),
    }

    #[derive(Default)]
    struct Recorder {
        seen: Vec<Seen>,
        headers: bool,
    }

    impl Handler for Recorder {
        type Error = ();
        fn on_connect(&mut self, json: &[u8]) -> Result<bool, ()> {
            self.seen.push(Seen::Connect(json.to_vec()));
            Ok(self.headers)
        }
        fn on_pub_line(&mut self, subject: &[u8]) -> Result<(), ()> {
            self.seen.push(Seen::PubLine(subject.to_vec()));
            Ok(())
        }
        fn on_msg(&mut self, m: &Msg<'_>) -> Result<(), ()> {
            self.seen.push(Seen::Msg(
                m.subject.to_vec(),
                m.reply.to_vec(),
                m.hdr_len,
                m.data.to_vec(),
            ));
            Ok(())
        }
        fn on_sub(&mut self, s: &[u8], q: Option<&[u8]>, sid: &[u8]) -> Result<(), ()> {
            self.seen
                .push(Seen::Sub(s.to_vec(), q.map(<[u8]>::to_vec), sid.to_vec()));
            Ok(())
        }
        fn on_unsub(&mut self, sid: &[u8], max: i64) -> Result<(), ()> {
            self.seen.push(Seen::Unsub(sid.to_vec(), max));
            Ok(())
        }
        fn on_ping(&mut self) -> Result<(), ()> {
            self.seen.push(Seen::Ping);
            Ok(())
        }
        fn on_pong(&mut self) -> Result<(), ()> {
            self.seen.push(Seen::Pong);
            Ok(())
        }
        fn on_err(&mut self, t: &[u8]) -> Result<(), ()> {
            self.seen.push(Seen::Err(t.to_vec()));
            Ok(())
        }
        fn on_info(&mut self, j: &[u8]) -> Result<(), ()> {
            self.seen.push(Seen::Info(j.to_vec()));
            Ok(())
        }
    }

    fn parse_chunks(chunks: &[&[u8]], headers: bool) -> (Vec<Seen>, Option<ProtoError>) {
        let mut p = Parser::new(4096, 1 << 20);
        p.headers = headers;
        let mut r = Recorder {
            headers,
            ..Recorder::default()
        };
        for c in chunks {
            if let Err(e) = p.parse(c, &mut r) {
                let e = match e {
                    ParseStop::Proto(e) => Some(e),
                    ParseStop::Handler(()) => None,
                };
                return (r.seen, e);
            }
        }
        (r.seen, None)
    }

    fn parse_all(input: &[u8]) -> (Vec<Seen>, Option<ProtoError>) {
        parse_chunks(&[input], true)
    }

    fn b(s: &str) -> Vec<u8> {
        s.as_bytes().to_vec()
    }

    #[test]
    fn every_op() {
        let input = b"CONNECT {\"verbose\":false}\r\nSUB foo 1\r\nSUB bar q 2\r\nPUB foo 5\r\nhello\r\n\
PUB foo reply.x 0\r\n\r\nHPUB foo 12 14\r\nNATS/1.0\r\n\r\nhi\r\nHPUB foo r 12 12\r\nNATS/1.0\r\n\r\n\r\n\
UNSUB 1\r\nUNSUB 2 10\r\nPING\r\nPONG\r\n+OK\r\nINFO {}\r\n-ERR 'x'\r\n";
        let (seen, err) = parse_all(input);
        assert_eq!(err, None);
        assert_eq!(
            seen,
            vec![
                Seen::Connect(b("{\"verbose\":false}")),
                Seen::Sub(b("foo"), None, b("1")),
                Seen::Sub(b("bar"), Some(b("q")), b("2")),
                Seen::PubLine(b("foo")),
                Seen::Msg(b("foo"), b(""), 0, b("hello")),
                Seen::PubLine(b("foo")),
                Seen::Msg(b("foo"), b("reply.x"), 0, b("")),
                Seen::PubLine(b("foo")),
                Seen::Msg(b("foo"), b(""), 12, b("NATS/1.0\r\n\r\nhi")),
                Seen::PubLine(b("foo")),
                Seen::Msg(b("foo"), b("r"), 12, b("NATS/1.0\r\n\r\n")),
                Seen::Unsub(b("1"), -1),
                Seen::Unsub(b("2"), 10),
                Seen::Ping,
                Seen::Pong,
                Seen::Info(b("{}")),
                Seen::Err(b("'x'")),
            ]
        );
    }

    #[test]
    fn ops_are_case_insensitive_and_blanks_are_spaces_or_tabs() {
        let (seen, err) =
            parse_all(b"sub\tfoo  \t q 1\r\nPuB foo\t2\r\nok\r\npInG\r\nPINGxyz\r\nCONNECT{}\n");
        assert_eq!(err, None);
        assert_eq!(
            seen,
            vec![
                Seen::Sub(b("foo"), Some(b("q")), b("1")),
                Seen::PubLine(b("foo")),
                Seen::Msg(b("foo"), b(""), 0, b("ok")),
                Seen::Ping,
                Seen::Ping,
                Seen::Connect(b("{}")),
            ]
        );
    }

    #[test]
    fn splitting_at_every_offset_gives_the_same_ops() {
        let input: &[u8] =
            b"CONNECT {\"headers\":true}\r\nSUB foo.* q 7\r\nPUB foo.bar r 11\r\nhello world\r\n\
HPUB a 12 15\r\nNATS/1.0\r\n\r\nabc\r\nPING\r\nUNSUB 7 3\r\n";
        let whole = parse_all(input);
        assert_eq!(whole.1, None);
        for i in 0..=input.len() {
            for j in i..=input.len() {
                let got = parse_chunks(&[&input[..i], &input[i..j], &input[j..]], true);
                assert_eq!(got, whole, "split at {i},{j}");
            }
        }
        let bytes: Vec<&[u8]> = input.chunks(1).collect();
        assert_eq!(parse_chunks(&bytes, true), whole);
    }

    #[test]
    fn unknown_op_is_rejected_at_the_bad_byte() {
        assert_eq!(parse_all(b"FOO").1, Some(ProtoError::UnknownOp));
        assert_eq!(parse_all(b"PUX").1, Some(ProtoError::UnknownOp));
        assert_eq!(parse_all(b" PING\r\n").1, Some(ProtoError::UnknownOp));
        assert_eq!(parse_all(b"MSG foo 1 1\r\n").1, Some(ProtoError::UnknownOp));
        assert_eq!(parse_all(b"PUBfoo 1\r\n").1, Some(ProtoError::UnknownOp));
        assert_eq!(parse_all(b"UNSUB\r\n").1, Some(ProtoError::UnknownOp));
        assert_eq!(parse_all(b"SUB").1, None, "incomplete is not an error");
    }

    #[test]
    fn payload_must_end_with_crlf() {
        assert_eq!(
            parse_all(b"PUB foo 2\r\nabc\r\n").1,
            Some(ProtoError::UnknownOp)
        );
        assert_eq!(
            parse_all(b"PUB foo 2\r\nab\rx").1,
            Some(ProtoError::UnknownOp)
        );
        assert_eq!(
            parse_chunks(&[b"PUB foo 2\r\na", b"bX"], true).1,
            Some(ProtoError::UnknownOp)
        );
    }

    #[test]
    fn malformed_arguments_are_bad_args() {
        for input in [
            &b"PUB foo\r\n"[..],
            b"PUB a b c 1\r\n",
            b"PUB foo x\r\n",
            b"PUB foo -1\r\n",
            b"PUB foo 1234567890\r\n",
            b"SUB foo\r\n",
            b"SUB a b c d\r\n",
            b"UNSUB \r\n",
            b"UNSUB 1 2 3\r\n",
            b"HPUB foo 5 2\r\n",
            b"HPUB foo 2\r\n",
        ] {
            assert_eq!(parse_all(input).1, Some(ProtoError::BadArgs), "{input:?}");
        }
    }

    #[test]
    fn hpub_needs_headers() {
        assert_eq!(
            parse_chunks(&[b"HPUB foo 12 14\r\n"], false).1,
            Some(ProtoError::HeadersNotSupported)
        );
    }

    #[test]
    fn limits() {
        let mut p = Parser::new(10, 5);
        let mut r = Recorder::default();
        assert!(matches!(
            p.parse(b"PUB foo 6\r\n", &mut r),
            Err(ParseStop::Proto(ProtoError::MaxPayload))
        ));
        let mut p = Parser::new(10, 5);
        assert!(
            p.parse(b"SUB 0123456789", &mut r).is_ok(),
            "exactly the limit"
        );
        assert!(matches!(
            p.parse(b"X", &mut r),
            Err(ParseStop::Proto(ProtoError::MaxControlLine))
        ));
        let mut p = Parser::new(10, 5);
        assert!(matches!(
            p.parse(b"SUB 0123456789X\r\n", &mut r),
            Err(ParseStop::Proto(ProtoError::MaxControlLine))
        ));
        // PING ignores everything up to the newline and buffers nothing.
        let mut p = Parser::new(10, 5);
        assert!(p.parse(b"PING", &mut r).is_ok());
        assert!(p.parse(&[b'x'; 10_000], &mut r).is_ok());
    }

    #[test]
    fn auth_requires_connect_first() {
        let mut p = Parser::new(4096, 1024);
        p.awaiting_connect = true;
        let mut r = Recorder::default();
        assert!(matches!(
            p.parse(b"PING\r\n", &mut r),
            Err(ParseStop::Proto(ProtoError::AuthViolation))
        ));
        let mut p = Parser::new(4096, 1024);
        p.awaiting_connect = true;
        assert!(p.parse(b"connect {}\r\nPING\r\n", &mut r).is_ok());
        assert!(!p.awaiting_connect);
    }

    #[test]
    fn client_hmsg_is_an_empty_message() {
        let (seen, err) = parse_all(b"HMSG foo 1 0 0\r\n\r\nPING\r\n");
        assert_eq!(err, None);
        assert_eq!(seen, vec![Seen::Msg(vec![], vec![], 0, vec![]), Seen::Ping]);
        assert_eq!(
            parse_all(b"HMSG foo 1 0 0\r\nPING\r\n").1,
            Some(ProtoError::UnknownOp)
        );
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size(b"0"), 0);
        assert_eq!(parse_size(b"123"), 123);
        assert_eq!(parse_size(b"999999999"), 999_999_999);
        assert_eq!(parse_size(b"1000000000"), -1);
        assert_eq!(parse_size(b""), -1);
        assert_eq!(parse_size(b"1a"), -1);
    }

    fn token() -> impl Strategy<Value = String> {
        "[a-zA-Z0-9_]{1,8}"
    }

    fn op() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            (token(), proptest::option::of(token()), 1u32..1000).prop_map(|(s, q, sid)| {
                match q {
                    Some(q) => format!("SUB {s} {q} {sid}\r\n").into_bytes(),
                    None => format!("sub {s}\t{sid}\r\n").into_bytes(),
                }
            }),
            (
                token(),
                proptest::option::of(token()),
                proptest::collection::vec(any::<u8>(), 0..300)
            )
                .prop_map(|(s, r, payload)| {
                    let mut v = match r {
                        Some(r) => format!("PUB {s} {r} {}\r\n", payload.len()),
                        None => format!("PUB {s} {}\r\n", payload.len()),
                    }
                    .into_bytes();
                    v.extend_from_slice(&payload);
                    v.extend_from_slice(b"\r\n");
                    v
                }),
            (token(), proptest::collection::vec(any::<u8>(), 0..100)).prop_map(|(s, payload)| {
                let hdr = b"NATS/1.0\r\nA: b\r\n\r\n";
                let mut v = format!("HPUB {s} {} {}\r\n", hdr.len(), hdr.len() + payload.len())
                    .into_bytes();
                v.extend_from_slice(hdr);
                v.extend_from_slice(&payload);
                v.extend_from_slice(b"\r\n");
                v
            }),
            (1u32..100, proptest::option::of(0u32..10)).prop_map(|(sid, m)| match m {
                Some(m) => format!("UNSUB {sid} {m}\r\n").into_bytes(),
                None => format!("UNSUB {sid}\r\n").into_bytes(),
            }),
            Just(b"PING\r\n".to_vec()),
            Just(b"PONG\r\n".to_vec()),
            Just(b"CONNECT {\"verbose\":false,\"headers\":true}\r\n".to_vec()),
        ]
    }

    proptest! {
        #[test]
        fn random_splits_of_a_valid_stream_parse_identically(
            ops in proptest::collection::vec(op(), 1..20),
            cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..12),
        ) {
            let input: Vec<u8> = ops.concat();
            let whole = parse_all(&input);
            prop_assert_eq!(&whole.1, &None);
            let mut points: Vec<usize> = cuts.iter().map(|c| c.index(input.len() + 1)).collect();
            points.sort_unstable();
            let mut chunks = Vec::new();
            let mut last = 0;
            for p in points {
                chunks.push(&input[last..p]);
                last = p;
            }
            chunks.push(&input[last..]);
            prop_assert_eq!(parse_chunks(&chunks, true), whole);
        }

        #[test]
        fn arbitrary_input_never_panics(
            input in proptest::collection::vec(any::<u8>(), 0..512),
            cut in any::<prop::sample::Index>(),
        ) {
            let c = cut.index(input.len() + 1);
            let _ = parse_chunks(&[&input[..c], &input[c..]], true);
        }
    }
}
