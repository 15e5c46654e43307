//! Subject syntax: validation, tokenizing and the reference wildcard matcher.
//!
//! A subject is a byte string of tokens separated by `.`. This module owns the rules nats-server
//! applies to them, so that the parser, the permission checks and the subscription index all agree:
//!
//! - every token is non-empty (no leading or trailing `.`, no `..`);
//! - `*` and `>` are wildcards only as a *whole* token (`fo*` and `a>b` are ordinary bytes);
//! - `>` must be the last token and matches one or more tokens (`foo.>` does not match `foo`);
//!   `*` matches exactly one token;
//! - whitespace (`' '`, `\t`, `\r`, `\n`, and `\f` as nats-server also rejects it) never occurs,
//!   because it separates protocol arguments; every other byte, UTF-8 or not, is allowed and
//!   compared exactly (case-sensitive).
//!
//! [`matches()`] is deliberately naive: it is the specification the trie in
//! [`sublist`](crate::sublist) is tested against, and the fallback for one-off checks such as
//! permissions. It never allocates.
//!
//! Pure: no I/O, no locks, no dependencies.

/// The token separator.
const SEP: u8 = b'.';
/// Partial wildcard: matches exactly one token.
const PWC: &[u8] = b"*";
/// Full wildcard: matches one or more trailing tokens.
const FWC: &[u8] = b">";

/// Splits a subject into its tokens on `.`.
///
/// Empty tokens are yielded as empty slices, so callers can reject them; the empty subject yields
/// one empty token.
pub fn tokens(s: &[u8]) -> impl Iterator<Item = &[u8]> {
    s.split(|&b| b == SEP)
}

/// Whether `s` may be subscribed to: non-empty, no empty token, `>` only as the last token, no
/// whitespace. Wildcards are allowed. Mirrors nats-server's `IsValidSubject`.
pub fn is_valid_subject(s: &[u8]) -> bool {
    if s.is_empty() {
        return false;
    }
    let mut after_fwc = false;
    for tok in tokens(s) {
        if tok.is_empty() || after_fwc || tok.iter().any(|&b| is_space(b)) {
            return false;
        }
        after_fwc = tok == FWC;
    }
    true
}

/// Whether `s` is valid and has no wildcard token: the pedantic check on a PUB subject.
pub fn is_valid_literal_subject(s: &[u8]) -> bool {
    is_valid_subject(s) && !has_wildcard(s)
}

/// Whether any whole token of `s` is `*` or `>`. Does not validate `s`.
pub fn has_wildcard(s: &[u8]) -> bool {
    tokens(s).any(is_wildcard)
}

/// Whether the subscription `pattern` matches the published `subject`.
///
/// `subject` is taken literally, token by token: a non-pedantic client may publish to `foo.*`,
/// and that `*` is an ordinary token which only the pattern's wildcards (`foo.*`, `foo.>`) match,
/// never a literal pattern token such as `foo.bar`. This is exactly what the trie does, since it
/// stores wildcard tokens apart from literal ones.
///
/// Returns false when either side has an empty token or `pattern` has `>` before its end: such
/// strings are never in the index, so they must not match here either.
pub fn matches(pattern: &[u8], subject: &[u8]) -> bool {
    let mut pat = tokens(pattern);
    let mut sub = tokens(subject);
    loop {
        match (pat.next(), sub.next()) {
            (None, None) => return true,
            (Some(p), Some(s)) if p.is_empty() || s.is_empty() => return false,
            (Some(FWC), Some(_)) => return pat.next().is_none() && sub.all(|s| !s.is_empty()),
            (Some(PWC), Some(_)) => {}
            (Some(p), Some(s)) if p == s => {}
            _ => return false,
        }
    }
}

fn is_wildcard(tok: &[u8]) -> bool {
    tok == PWC || tok == FWC
}

fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n' | b'\x0c')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_split_on_dots_and_keep_empty_tokens() {
        let t: Vec<&[u8]> = tokens(b"foo.bar.>").collect();
        assert_eq!(t, [&b"foo"[..], b"bar", b">"]);
        let t: Vec<&[u8]> = tokens(b".a..").collect();
        assert_eq!(t, [&b""[..], b"a", b"", b""]);
        assert_eq!(tokens(b"").count(), 1);
        assert_eq!(tokens(b"single").count(), 1);
    }

    #[test]
    fn valid_subjects() {
        for s in [
            &b"foo"[..],
            b"foo.bar",
            b"*",
            b">",
            b"foo.*",
            b"foo.>",
            b"*.*.>",
            b"foo.*.bar",
            b"fo*.b>r",
            b"foo.>bar",
            b"$SYS.REQ",
            b"_INBOX.abc123",
            "ünï.cödé".as_bytes(),
            b"\x00\xff.x",
            b"a-b_c:d/e",
        ] {
            assert!(is_valid_subject(s), "{:?}", String::from_utf8_lossy(s));
        }
    }

    #[test]
    fn invalid_subjects() {
        for s in [
            &b""[..],
            b".",
            b"..",
            b".foo",
            b"foo.",
            b"foo..bar",
            b">.foo",
            b"foo.>.bar",
            b"foo.>.>",
            b"foo bar",
            b"foo\tbar",
            b"foo\rbar",
            b"foo\nbar",
            b"foo\x0cbar",
            b" ",
            b"foo. ",
            b"foo.* ",
        ] {
            assert!(!is_valid_subject(s), "{:?}", String::from_utf8_lossy(s));
        }
    }

    #[test]
    fn literal_subjects_have_no_wildcard_tokens() {
        assert!(is_valid_literal_subject(b"foo.bar"));
        assert!(is_valid_literal_subject(b"fo*.b>r"));
        assert!(!is_valid_literal_subject(b"foo.*"));
        assert!(!is_valid_literal_subject(b">"));
        assert!(!is_valid_literal_subject(b"foo..bar"));
        assert!(!is_valid_literal_subject(b""));
    }

    #[test]
    fn wildcards_count_only_as_whole_tokens() {
        assert!(has_wildcard(b"*"));
        assert!(has_wildcard(b">"));
        assert!(has_wildcard(b"a.*.b"));
        assert!(has_wildcard(b"a.>"));
        assert!(!has_wildcard(b"a*.b"));
        assert!(!has_wildcard(b"a.>b"));
        assert!(!has_wildcard(b"**.>>"));
        assert!(!has_wildcard(b""));
    }

    #[test]
    fn literal_patterns_match_exactly() {
        assert!(matches(b"foo", b"foo"));
        assert!(matches(b"foo.bar", b"foo.bar"));
        assert!(!matches(b"foo.bar", b"foo"));
        assert!(!matches(b"foo", b"foo.bar"));
        assert!(!matches(b"foo.bar", b"foo.baz"));
        assert!(!matches(b"Foo", b"foo"));
        assert!(matches(b"fo*", b"fo*"));
        assert!(!matches(b"fo*", b"foo"));
    }

    #[test]
    fn star_matches_exactly_one_token() {
        assert!(matches(b"*", b"foo"));
        assert!(!matches(b"*", b"foo.bar"));
        assert!(matches(b"foo.*", b"foo.bar"));
        assert!(!matches(b"foo.*", b"foo"));
        assert!(!matches(b"foo.*", b"foo.bar.baz"));
        assert!(matches(b"*.bar", b"foo.bar"));
        assert!(matches(b"foo.*.baz", b"foo.bar.baz"));
        assert!(!matches(b"foo.*.baz", b"foo.bar.qux"));
        assert!(matches(b"*.*.*", b"a.b.c"));
    }

    #[test]
    fn gt_matches_one_or_more_trailing_tokens() {
        assert!(matches(b">", b"foo"));
        assert!(matches(b">", b"foo.bar.baz"));
        assert!(matches(b"foo.>", b"foo.bar"));
        assert!(matches(b"foo.>", b"foo.bar.baz"));
        assert!(!matches(b"foo.>", b"foo"));
        assert!(!matches(b"foo.>", b"bar.baz"));
        assert!(matches(b"*.>", b"a.b"));
        assert!(!matches(b"*.>", b"a"));
        assert!(!matches(b"foo.>bar", b"foo.x"));
    }

    #[test]
    fn wildcard_tokens_in_a_published_subject_are_literal() {
        // PUB foo.* (non-pedantic) reaches foo.* and foo.>, not foo.bar.
        assert!(matches(b"foo.*", b"foo.*"));
        assert!(matches(b"foo.>", b"foo.*"));
        assert!(!matches(b"foo.bar", b"foo.*"));
        assert!(matches(b"foo.*", b"foo.>"));
        assert!(!matches(b"foo.bar", b"foo.>"));
        // A `>` in the subject is one token, not "the rest".
        assert!(!matches(b"foo.*", b"foo.>.bar"));
        assert!(matches(b"foo.*.bar", b"foo.>.bar"));
    }

    #[test]
    fn malformed_inputs_never_match() {
        assert!(!matches(b"", b""));
        assert!(!matches(b"foo", b""));
        assert!(!matches(b"*", b""));
        assert!(!matches(b">", b""));
        assert!(!matches(b"foo..bar", b"foo..bar"));
        assert!(!matches(b"foo.*", b"foo."));
        assert!(!matches(b">", b"foo..bar"));
        assert!(!matches(b"foo.>", b"foo.bar."));
        assert!(!matches(b"foo.>.bar", b"foo.x.bar"));
    }
}
