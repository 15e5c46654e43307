//! Encoders for what the server writes to clients: INFO, MSG/HMSG, +OK, -ERR, PING/PONG.
//!
//! Encoders append to a caller-owned buffer (the connection's outbound queue) so that the hot
//! path never allocates: a message is the control line built from borrowed parts plus one copy
//! of the payload.

use crate::proto::parser::Msg;
use serde::Serialize;

pub const PING: &[u8] = b"PING\r\n";
pub const PONG: &[u8] = b"PONG\r\n";
pub const OK: &[u8] = b"+OK\r\n";
pub const CRLF: &[u8] = b"\r\n";

/// Appends `-ERR '<text>'\r\n`.
pub fn err(out: &mut Vec<u8>, text: &str) {
    out.extend_from_slice(b"-ERR '");
    out.extend_from_slice(text.as_bytes());
    out.extend_from_slice(b"'\r\n");
}

/// Appends a decimal number without allocating.
#[inline]
pub fn push_usize(out: &mut Vec<u8>, n: usize) {
    out.extend_from_slice(itoa_buf(n).as_slice());
}

struct SmallNum {
    buf: [u8; 20],
    start: usize,
}

impl SmallNum {
    fn as_slice(&self) -> &[u8] {
        &self.buf[self.start..]
    }
}

#[inline]
fn itoa_buf(mut n: usize) -> SmallNum {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    SmallNum { buf, start: i }
}

/// Ends a `MSG`/`RMSG` line: the size field(s) as the publisher wrote them (a computed size when
/// headers were stripped), CRLF, the payload, CRLF.
#[inline]
fn sizes_and_payload(out: &mut Vec<u8>, m: &Msg<'_>, with_headers: bool, payload: &[u8]) {
    if with_headers {
        out.extend_from_slice(m.hdr_text);
        out.push(b' ');
        out.extend_from_slice(m.size_text);
    } else if m.hdr_len == 0 {
        out.extend_from_slice(m.size_text);
    } else {
        push_usize(out, payload.len());
    }
    out.extend_from_slice(CRLF);
    out.extend_from_slice(payload);
    out.extend_from_slice(CRLF);
}

/// Appends one delivery: `MSG`/`HMSG` with the receiver's sid, then the payload and CRLF.
///
/// The size fields are copied as the publisher wrote them, as nats-server does. When the message
/// carries headers but the receiver did not announce headers support, the header block is
/// stripped and a plain `MSG` with the payload alone (and a computed size) is sent.
#[inline]
pub fn msg(out: &mut Vec<u8>, m: &Msg<'_>, sid: &[u8], receiver_headers: bool) {
    let with_headers = m.hdr_len > 0 && receiver_headers;
    let payload = if with_headers || m.hdr_len == 0 {
        m.data
    } else {
        &m.data[m.hdr_len..]
    };
    out.reserve(m.subject.len() + sid.len() + m.reply.len() + payload.len() + 40);
    out.extend_from_slice(if with_headers { b"HMSG " } else { b"MSG " });
    out.extend_from_slice(m.subject);
    out.push(b' ');
    out.extend_from_slice(sid);
    out.push(b' ');
    if !m.reply.is_empty() {
        out.extend_from_slice(m.reply);
        out.push(b' ');
    }
    sizes_and_payload(out, m, with_headers, payload);
}

/// Appends `RS+ <account> <subject>[ <queue> <weight>]\r\n`: interest announced to a route.
pub fn route_sub(out: &mut Vec<u8>, account: &[u8], subject: &[u8], queue: Option<(&[u8], u32)>) {
    out.extend_from_slice(b"RS+ ");
    out.extend_from_slice(account);
    out.push(b' ');
    out.extend_from_slice(subject);
    if let Some((q, weight)) = queue {
        out.push(b' ');
        out.extend_from_slice(q);
        out.push(b' ');
        push_usize(out, weight as usize);
    }
    out.extend_from_slice(CRLF);
}

/// Appends `RS- <account> <subject>[ <queue>]\r\n`: interest withdrawn from a route.
pub fn route_unsub(out: &mut Vec<u8>, account: &[u8], subject: &[u8], queue: Option<&[u8]>) {
    out.extend_from_slice(b"RS- ");
    out.extend_from_slice(account);
    out.push(b' ');
    out.extend_from_slice(subject);
    if let Some(q) = queue {
        out.push(b' ');
        out.extend_from_slice(q);
    }
    out.extend_from_slice(CRLF);
}

/// Appends one routed message: `RMSG`/`HMSG <account> <subject> [reply | + reply queues… |
/// \| queues…] [hdr] size`, then the payload. `queues` names the groups whose member was picked
/// on the peer. Headers are stripped (plain `RMSG`) when the peer did not announce headers.
pub fn route_msg<'q>(
    out: &mut Vec<u8>,
    account: &[u8],
    m: &Msg<'_>,
    queues: impl Iterator<Item = &'q [u8]>,
    peer_headers: bool,
) {
    let with_headers = m.hdr_len > 0 && peer_headers;
    let payload = if with_headers || m.hdr_len == 0 {
        m.data
    } else {
        &m.data[m.hdr_len..]
    };
    out.reserve(account.len() + m.subject.len() + m.reply.len() + payload.len() + 48);
    out.extend_from_slice(if with_headers { b"HMSG " } else { b"RMSG " });
    out.extend_from_slice(account);
    out.push(b' ');
    out.extend_from_slice(m.subject);
    out.push(b' ');
    let mut queues = queues.peekable();
    if queues.peek().is_some() {
        if m.reply.is_empty() {
            out.extend_from_slice(b"| ");
        } else {
            out.extend_from_slice(b"+ ");
            out.extend_from_slice(m.reply);
            out.push(b' ');
        }
        for q in queues {
            out.extend_from_slice(q);
            out.push(b' ');
        }
    } else if !m.reply.is_empty() {
        out.extend_from_slice(m.reply);
        out.push(b' ');
    }
    sizes_and_payload(out, m, with_headers, payload);
}

/// Appends the status-only message a `no_responders` requester gets when nobody is subscribed:
/// since nats-server 2.12 it names the original subject in a `Nats-Subject` header.
pub fn no_responders(out: &mut Vec<u8>, reply: &[u8], sid: &[u8], subject: &[u8]) {
    let mut hdr = Vec::with_capacity(32 + subject.len());
    hdr.extend_from_slice(b"NATS/1.0 503\r\nNats-Subject: ");
    hdr.extend_from_slice(subject);
    hdr.extend_from_slice(b"\r\n\r\n");
    let len = hdr.len().to_string();
    let m = Msg {
        subject: reply,
        reply: b"",
        hdr_len: hdr.len(),
        data: &hdr,
        hdr_text: len.as_bytes(),
        size_text: len.as_bytes(),
    };
    msg(out, &m, sid, true);
}

/// The INFO a server sends, with nats-server's field names and order (clients parse it and gate
/// features on `version` and `proto`).
#[derive(Debug, Clone, Serialize, Default)]
pub struct Info {
    pub server_id: String,
    pub server_name: String,
    pub version: String,
    pub proto: u8,
    pub go: String,
    pub host: String,
    pub port: u16,
    pub headers: bool,
    #[serde(skip_serializing_if = "is_false")]
    pub auth_required: bool,
    #[serde(skip_serializing_if = "is_false")]
    pub tls_required: bool,
    #[serde(skip_serializing_if = "is_false")]
    pub tls_verify: bool,
    #[serde(skip_serializing_if = "is_false")]
    pub tls_available: bool,
    pub max_payload: usize,
    #[serde(skip_serializing_if = "is_zero")]
    pub client_id: u64,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub client_ip: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub cluster: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub connect_urls: Vec<String>,
    #[serde(skip_serializing_if = "is_false")]
    pub ldm: bool,
    #[serde(skip_serializing_if = "is_false")]
    pub connect_info: bool,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub remote_account: String,
}

fn is_false(b: &bool) -> bool {
    !*b
}
fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl Info {
    /// Appends `INFO {json} \r\n` (nats-server puts a space before the CRLF).
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"INFO ");
        // Serializing plain strings, numbers and bools into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut *out, self);
        out.extend_from_slice(b" \r\n");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m<'a>(
        subject: &'a [u8],
        reply: &'a [u8],
        hdr_len: usize,
        data: &'a [u8],
        (hdr_text, size_text): (&'a [u8], &'a [u8]),
    ) -> Msg<'a> {
        Msg {
            subject,
            reply,
            hdr_len,
            data,
            hdr_text,
            size_text,
        }
    }

    #[test]
    fn msg_without_reply_echoes_the_size_text() {
        let mut out = Vec::new();
        msg(
            &mut out,
            &m(b"foo", b"", 0, b"hello", (b"", b"5")),
            b"1",
            false,
        );
        assert_eq!(out, b"MSG foo 1 5\r\nhello\r\n");
        let mut out = Vec::new();
        msg(
            &mut out,
            &m(b"foo", b"", 0, b"hi", (b"", b"02")),
            b"1",
            true,
        );
        assert_eq!(out, b"MSG foo 1 02\r\nhi\r\n");
    }

    #[test]
    fn msg_with_reply_and_headers() {
        let mut out = Vec::new();
        let data = b"NATS/1.0\r\n\r\nhi";
        msg(
            &mut out,
            &m(b"foo", b"r.1", 12, data, (b"012", b"14")),
            b"22",
            true,
        );
        assert_eq!(out, b"HMSG foo 22 r.1 012 14\r\nNATS/1.0\r\n\r\nhi\r\n");
    }

    #[test]
    fn headers_stripped_for_receivers_without_support() {
        let mut out = Vec::new();
        let data = b"NATS/1.0\r\n\r\nhi";
        msg(
            &mut out,
            &m(b"foo", b"", 12, data, (b"12", b"014")),
            b"1",
            false,
        );
        assert_eq!(out, b"MSG foo 1 2\r\nhi\r\n");
    }

    #[test]
    fn no_responders_matches_current_release() {
        let mut out = Vec::new();
        no_responders(&mut out, b"_INBOX.x", b"1", b"svc");
        assert_eq!(
            out,
            b"HMSG _INBOX.x 1 35 35\r\nNATS/1.0 503\r\nNats-Subject: svc\r\n\r\n\r\n"
        );
    }

    #[test]
    fn route_protocol_forms_match_nats_server() {
        let mut out = Vec::new();
        route_sub(&mut out, b"$G", b"foo.*", None);
        route_sub(&mut out, b"$G", b"bar", Some((b"q1", 2)));
        route_unsub(&mut out, b"$G", b"bar", Some(b"q1"));
        route_unsub(&mut out, b"$G", b"foo.*", None);
        assert_eq!(
            out,
            b"RS+ $G foo.*\r\nRS+ $G bar q1 2\r\nRS- $G bar q1\r\nRS- $G foo.*\r\n"
        );
        let q: [&[u8]; 2] = [b"g1", b"g2"];
        /// (message, queue groups picked, peer headers, expected bytes)
        type Case<'a> = (Msg<'a>, &'a [&'a [u8]], bool, &'a [u8]);
        let cases: [Case<'_>; 5] = [
            (
                m(b"s", b"", 0, b"abc", (b"", b"3")),
                &[],
                true,
                b"RMSG $G s 3\r\nabc\r\n",
            ),
            (
                m(b"s", b"r.1", 0, b"ab", (b"", b"02")),
                &[],
                true,
                b"RMSG $G s r.1 02\r\nab\r\n",
            ),
            (
                m(b"s", b"r.1", 0, b"yo", (b"", b"2")),
                &q,
                true,
                b"RMSG $G s + r.1 g1 g2 2\r\nyo\r\n",
            ),
            (
                m(b"s", b"", 0, b"yo", (b"", b"2")),
                &q[..1],
                true,
                b"RMSG $G s | g1 2\r\nyo\r\n",
            ),
            (
                m(b"s", b"", 12, b"NATS/1.0\r\n\r\nhi", (b"12", b"14")),
                &[],
                true,
                b"HMSG $G s 12 14\r\nNATS/1.0\r\n\r\nhi\r\n",
            ),
        ];
        for (msg, queues, headers, want) in cases {
            let mut out = Vec::new();
            route_msg(&mut out, b"$G", &msg, queues.iter().copied(), headers);
            assert_eq!(out, want, "{}", String::from_utf8_lossy(want));
        }
        let mut out = Vec::new();
        let hm = m(b"s", b"", 12, b"NATS/1.0\r\n\r\nhi", (b"12", b"14"));
        route_msg(&mut out, b"$G", &hm, [].into_iter(), false);
        assert_eq!(out, b"RMSG $G s 2\r\nhi\r\n");
    }

    #[test]
    fn numbers() {
        for n in [0usize, 7, 10, 99, 12345, usize::MAX] {
            let mut out = Vec::new();
            push_usize(&mut out, n);
            assert_eq!(out, n.to_string().as_bytes());
        }
    }

    #[test]
    fn info_has_space_before_crlf_and_omits_false() {
        let mut out = Vec::new();
        Info {
            server_id: "X".into(),
            proto: 1,
            headers: true,
            max_payload: 10,
            ..Default::default()
        }
        .encode(&mut out);
        let s = String::from_utf8(out).unwrap();
        assert!(s.starts_with("INFO {\"server_id\":\"X\""));
        assert!(s.ends_with("} \r\n"));
        assert!(!s.contains("auth_required"));
        assert!(!s.contains("client_id"));
    }
}
