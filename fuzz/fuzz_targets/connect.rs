//! Fuzzes CONNECT option decoding and the subject functions.
//!
//! - the whole input as CONNECT JSON into `ConnectOpts`: no panic;
//! - the input split at a position taken from its first byte into a pattern and a subject:
//!   `is_valid_subject`/`matches` never panic, `matches(s, s)` and `matches(">", s)` hold for
//!   every valid literal subject `s`, and for a valid pattern and a valid subject `matches`
//!   agrees with a small token-list reference matcher.
#![no_main]

mod alloc_limit;

use libfuzzer_sys::fuzz_target;
use nats_mini::conn::client::ConnectOpts;
use nats_mini::subject::{is_valid_literal_subject, is_valid_subject, matches};

/// Reference semantics: `*` matches exactly one token, `>` (last) one or more; any other
/// pattern token matches the identical subject token (a subject's `*`/`>` are literal).
fn reference(pat: &[&[u8]], sub: &[&[u8]]) -> bool {
    match (pat.split_first(), sub.split_first()) {
        (None, None) => true,
        (Some((&p, _)), Some(_)) if p == b">" => true,
        (Some((&p, prest)), Some((&s, srest))) if p == b"*" || p == s => reference(prest, srest),
        _ => false,
    }
}

fn tokens(s: &[u8]) -> Vec<&[u8]> {
    s.split(|&b| b == b'.').collect()
}

fn check_literal(s: &[u8]) {
    if is_valid_literal_subject(s) {
        assert!(
            matches(s, s),
            "matches(s, s) false for literal subject {s:?}"
        );
        assert!(
            matches(b">", s),
            "matches(\">\", s) false for literal subject {s:?}"
        );
    }
}

fuzz_target!(|data: &[u8]| {
    // CONNECT options: any bytes, errors ignored, never a panic.
    if let Ok(opts) = serde_json::from_slice::<ConnectOpts>(data) {
        let _ = (
            opts.headers,
            opts.protocol,
            opts.name.len(),
            opts.user.as_deref(),
        );
    }
    // As the server reads it: trimmed, `null` for the defaults, only an object otherwise.
    let trimmed = data.trim_ascii();
    if trimmed != b"null" && trimmed.first() == Some(&b'{') {
        let _ = serde_json::from_slice::<ConnectOpts>(trimmed);
    }

    // Subjects.
    let Some((&cut, rest)) = data.split_first() else {
        return;
    };
    let at = usize::from(cut) % (rest.len() + 1);
    let (pattern, subj) = rest.split_at(at);
    for s in [rest, pattern, subj] {
        let _ = is_valid_subject(s);
        check_literal(s);
    }
    let m = matches(pattern, subj);
    let _ = matches(subj, pattern);
    if is_valid_subject(pattern) && is_valid_subject(subj) {
        let expect = reference(&tokens(pattern), &tokens(subj));
        assert_eq!(
            m, expect,
            "matches({pattern:?}, {subj:?}) = {m}, reference says {expect}"
        );
    }
    if m {
        // A match implies no empty token on either side.
        assert!(
            tokens(pattern).iter().all(|t| !t.is_empty()),
            "match with empty pattern token"
        );
        assert!(
            tokens(subj).iter().all(|t| !t.is_empty()),
            "match with empty subject token"
        );
    }
});
