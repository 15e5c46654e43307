//! Per-user publish and subscribe permissions, with nats-server's semantics.
//!
//! - Each of `publish` and `subscribe` has an optional allow list and a deny list of subject
//!   patterns. Deny wins; a present allow list means "only these".
//! - Subscribe entries may name a queue (`"foo.* v1"`): such an entry governs queue
//!   subscriptions only, so `allow = ["foo v1"]` permits `SUB foo v1 1` but not `SUB foo 1`.
//! - A subscription's subject is matched against the patterns token by token, its own `*` and
//!   `>` taken literally (nats-server matches it through a sublist of the patterns), so a
//!   wildcard subscription is allowed by an allow pattern that covers it.
//! - A wildcard or queue subscription that overlaps a deny pattern is allowed, but messages on
//!   denied subjects are filtered out at delivery ([`Permissions::delivery_denies`]).
//! - `allow_responses` lets a user publish to the reply subjects of requests it received, at
//!   most `max` times within `expires`, even when its publish allow list would not.

use crate::subject;
use parking_lot::Mutex;
use rustc_hash::FxHashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// One subscribe-permission entry: a subject pattern and, optionally, a queue pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubEntry {
    pub subject: Box<[u8]>,
    pub queue: Option<Box<[u8]>>,
}

impl SubEntry {
    /// Parses `"subject"` or `"subject queue"`.
    pub fn parse(s: &str) -> SubEntry {
        let mut parts = s.split_whitespace();
        let subject = parts.next().unwrap_or("").as_bytes().into();
        let queue = parts.next().map(|q| q.as_bytes().into());
        SubEntry { subject, queue }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PubPerms {
    pub allow: Option<Vec<Box<[u8]>>>,
    pub deny: Vec<Box<[u8]>>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SubPerms {
    pub allow: Option<Vec<SubEntry>>,
    pub deny: Vec<SubEntry>,
}

/// `allow_responses`: how many replies per request, and for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResponsePerms {
    pub max: u32,
    pub expires: Duration,
}

impl Default for ResponsePerms {
    fn default() -> Self {
        ResponsePerms {
            max: 1,
            expires: Duration::from_secs(120),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Permissions {
    pub publish: PubPerms,
    pub subscribe: SubPerms,
    pub allow_responses: Option<ResponsePerms>,
}

/// A queue name matches a permission's queue pattern literally or as a wildcard pattern.
fn queue_matches(queue: &[u8], pattern: &[u8]) -> bool {
    queue == pattern || subject::matches(pattern, queue)
}

impl Permissions {
    /// Whether publishing to the literal `subject` is allowed by the lists (not counting
    /// `allow_responses`, which the connection checks separately).
    pub fn can_publish(&self, subject_: &[u8]) -> bool {
        if let Some(allow) = &self.publish.allow
            && !allow.iter().any(|p| subject::matches(p, subject_))
        {
            return false;
        }
        !self
            .publish
            .deny
            .iter()
            .any(|p| subject::matches(p, subject_))
    }

    /// Whether `SUB subject [queue]` is allowed.
    pub fn can_subscribe(&self, subject_: &[u8], queue: Option<&[u8]>) -> bool {
        fn matching<'a>(entries: &'a [SubEntry], subject_: &[u8]) -> (bool, Vec<&'a [u8]>) {
            let mut plain = false;
            let mut queues = Vec::new();
            for e in entries {
                if subject::matches(&e.subject, subject_) {
                    match &e.queue {
                        None => plain = true,
                        Some(q) => queues.push(&q[..]),
                    }
                }
            }
            (plain, queues)
        }
        let mut allowed = true;
        if let Some(allow) = &self.subscribe.allow {
            let (plain, queues) = matching(allow, subject_);
            allowed = plain;
            if let Some(q) = queue
                && !queues.is_empty()
            {
                allowed = queues.iter().any(|p| queue_matches(q, p));
            }
        }
        if allowed && !self.subscribe.deny.is_empty() {
            let (plain, queues) = matching(&self.subscribe.deny, subject_);
            allowed = !plain;
            if allowed
                && let Some(q) = queue
                && !queues.is_empty()
            {
                allowed = !queues.iter().any(|p| queue_matches(q, p));
            }
        }
        allowed
    }

    /// For an allowed wildcard or queue subscription that overlaps subscribe denies: the deny
    /// patterns to check each delivered message's subject against.
    pub fn delivery_denies(&self, subject_: &[u8], queue: bool) -> Option<Arc<[Box<[u8]>]>> {
        if self.subscribe.deny.is_empty() || !(queue || subject::has_wildcard(subject_)) {
            return None;
        }
        let overlapping: Vec<Box<[u8]>> = self
            .subscribe
            .deny
            .iter()
            .filter(|d| d.queue.is_none() && subjects_collide(&d.subject, subject_))
            .map(|d| d.subject.clone())
            .collect();
        (!overlapping.is_empty()).then(|| overlapping.into())
    }
}

/// Whether two patterns can match a common subject.
pub fn subjects_collide(a: &[u8], b: &[u8]) -> bool {
    let ta: Vec<&[u8]> = subject::tokens(a).collect();
    let tb: Vec<&[u8]> = subject::tokens(b).collect();
    let mut i = 0;
    loop {
        match (ta.get(i), tb.get(i)) {
            (Some(&x), _) if x == b">" => return tb.len() > i,
            (_, Some(&y)) if y == b">" => return ta.len() > i,
            (Some(&x), Some(&y)) => {
                if x != b"*" && y != b"*" && x != y {
                    return false;
                }
            }
            (None, None) => return true,
            _ => return false,
        }
        i += 1;
    }
}

/// Responses already sent to one reply subject, and when its request arrived.
type ReplyUse = (u32, Instant);

/// Reply subjects a connection may answer under `allow_responses` (nats-server's `replies`).
#[derive(Debug)]
pub struct ResponseTracker {
    perms: ResponsePerms,
    replies: Mutex<FxHashMap<Box<[u8]>, ReplyUse>>,
}

/// Bound on remembered reply subjects; the oldest are dropped past it.
const MAX_TRACKED_REPLIES: usize = 16_384;

impl ResponseTracker {
    pub fn new(perms: ResponsePerms) -> Self {
        ResponseTracker {
            perms,
            replies: Mutex::new(FxHashMap::default()),
        }
    }

    /// A request with this reply subject was delivered to the connection.
    pub fn record(&self, reply: &[u8]) {
        let mut r = self.replies.lock();
        if r.len() >= MAX_TRACKED_REPLIES {
            let now = Instant::now();
            let expires = self.perms.expires;
            r.retain(|_, (_, t)| now.duration_since(*t) < expires);
            if r.len() >= MAX_TRACKED_REPLIES {
                r.clear();
            }
        }
        r.insert(reply.into(), (0, Instant::now()));
    }

    /// Whether the connection may publish to `subject` as a response (and counts it).
    pub fn allow(&self, subject_: &[u8]) -> bool {
        let mut r = self.replies.lock();
        let Some((n, t)) = r.get_mut(subject_) else {
            return false;
        };
        *n += 1;
        let expired = !self.perms.expires.is_zero() && t.elapsed() > self.perms.expires;
        let over = self.perms.max > 0 && *n > self.perms.max;
        if expired || over {
            r.remove(subject_);
            return false;
        }
        if self.perms.max > 0 && *n == self.perms.max {
            r.remove(subject_);
        }
        true
    }
}

/// Quotes a subject as Go's `%q` does, for permission error texts.
pub fn go_quote(s: &[u8]) -> String {
    let mut out = String::from("\"");
    for c in String::from_utf8_lossy(s).chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(s: &str) -> Box<[u8]> {
        s.as_bytes().into()
    }

    fn perms(
        pub_allow: Option<&[&str]>,
        pub_deny: &[&str],
        sub_allow: Option<&[&str]>,
        sub_deny: &[&str],
    ) -> Permissions {
        Permissions {
            publish: PubPerms {
                allow: pub_allow.map(|l| l.iter().map(|s| b(s)).collect()),
                deny: pub_deny.iter().map(|s| b(s)).collect(),
            },
            subscribe: SubPerms {
                allow: sub_allow.map(|l| l.iter().map(|s| SubEntry::parse(s)).collect()),
                deny: sub_deny.iter().map(|s| SubEntry::parse(s)).collect(),
            },
            allow_responses: None,
        }
    }

    #[test]
    fn publish_allow_and_deny() {
        let p = perms(Some(&["foo.*", "bar.>"]), &["bar.secret"], None, &[]);
        assert!(p.can_publish(b"foo.x"));
        assert!(!p.can_publish(b"foo.x.y"));
        assert!(p.can_publish(b"bar.a.b"));
        assert!(!p.can_publish(b"bar.secret"));
        assert!(!p.can_publish(b"baz"));
        let deny_only = perms(None, &["admin.>"], None, &[]);
        assert!(deny_only.can_publish(b"anything"));
        assert!(!deny_only.can_publish(b"admin.x"));
    }

    #[test]
    fn subscribe_with_queues() {
        // allow = ["foo v1"]: only queue subscriptions with queue v1.
        let p = perms(None, &[], Some(&["foo v1"]), &[]);
        assert!(!p.can_subscribe(b"foo", None));
        assert!(p.can_subscribe(b"foo", Some(b"v1")));
        assert!(!p.can_subscribe(b"foo", Some(b"v2")));
        // allow = ["foo", "foo v1"]: plain subs on foo, but queue subs only with v1.
        let p = perms(None, &[], Some(&["foo", "foo v1"]), &[]);
        assert!(p.can_subscribe(b"foo", None));
        assert!(p.can_subscribe(b"foo", Some(b"v1")));
        assert!(!p.can_subscribe(b"foo", Some(b"v2")));
        // allow = ["foo"]: any queue.
        let p = perms(None, &[], Some(&["foo"]), &[]);
        assert!(p.can_subscribe(b"foo", Some(b"any")));
    }

    #[test]
    fn wildcard_subscriptions_and_delivery_denies() {
        let p = perms(None, &[], Some(&["foo.>"]), &["foo.secret"]);
        assert!(p.can_subscribe(b"foo.*", None));
        assert!(p.can_subscribe(b"foo.>", None));
        assert!(!p.can_subscribe(b"bar.*", None));
        assert!(!p.can_subscribe(b"foo.secret", None));
        let d = p.delivery_denies(b"foo.*", false).unwrap();
        assert_eq!(&*d, &[b("foo.secret")]);
        assert!(p.delivery_denies(b"foo.public", false).is_none());
    }

    #[test]
    fn collisions() {
        assert!(subjects_collide(b"foo.*", b"foo.bar"));
        assert!(subjects_collide(b"foo.>", b"foo.a.b"));
        assert!(!subjects_collide(b"foo.>", b"foo"));
        assert!(!subjects_collide(b"foo.bar", b"foo.baz"));
        assert!(subjects_collide(b"*.bar", b"foo.*"));
    }

    #[test]
    fn responses_are_limited() {
        let t = ResponseTracker::new(ResponsePerms {
            max: 2,
            expires: Duration::from_secs(60),
        });
        assert!(!t.allow(b"_INBOX.1"));
        t.record(b"_INBOX.1");
        assert!(t.allow(b"_INBOX.1"));
        assert!(t.allow(b"_INBOX.1"));
        assert!(!t.allow(b"_INBOX.1"));
    }

    #[test]
    fn quoting_like_go() {
        assert_eq!(go_quote(b"foo.bar"), "\"foo.bar\"");
        assert_eq!(go_quote(b"a\"b"), "\"a\\\"b\"");
    }
}
