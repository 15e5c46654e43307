//! Sizes (`"2mb"`, `"1MiB"`, `1048576`) and durations (`"2s"`, `"1m30s"`) as a NatsMini spec
//! holds them, with the schema the CRD publishes and the parsers the renderer uses.
//!
//! The spec keeps what the user wrote (so `kubectl get -o yaml` shows `"2mb"`, not a number),
//! and the renderer writes the parsed value into the broker's config: sizes as plain byte
//! counts, durations as quoted Go duration strings. Parsing follows nats-server's rules exactly
//! (nats-server-behaviour.md §3.2), because a spec is read by people who know that format:
//! a bare suffix `k m g t p e` is a power of 1000, `kb`/`ki`/`kib` and friends a power of 1024,
//! any case.
//!
//! Deserializing never fails on a bad *value* (only on a wrong JSON type): an object with
//! `maxPayload: "lots"` must still reach the controller so it can report a Degraded condition
//! instead of failing the watch. The CRD's `pattern` rejects such values at the apiserver;
//! [`Size::bytes`] and [`GoDuration::parse`] reject them again at render time.
//!
//! Pure: no I/O, no Kubernetes client.

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::fmt;
use std::time::Duration;

/// The pattern every size string must match (published in the CRD and used by tests).
pub const SIZE_PATTERN: &str = "^[0-9]+([KkMmGgTtPpEe]([Ii]?[Bb]|[Ii])?)?$";

/// The pattern every duration string must match: Go's `time.ParseDuration` syntax (units
/// `ns us µs μs ms s m h`, a bare `0`) without signs and without a number that starts or ends
/// with its decimal point (`.5s`, `1.s`).
pub const DURATION_PATTERN: &str = "^(0|([0-9]+(\\.[0-9]+)?(ns|us|\u{b5}s|\u{3bc}s|ms|s|m|h))+)$";

/// Why a size or duration cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnitError {
    #[error("{0:?} is not a size (examples: 1048576, \"64kb\", \"2MiB\", \"1m\")")]
    BadSize(String),
    #[error("{0:?} is too large for a size")]
    SizeOverflow(String),
    #[error("{0:?} is not a duration (examples: \"500ms\", \"2s\", \"1m30s\")")]
    BadDuration(String),
}

/// A byte size: a non-negative integer or a string such as `"2mb"`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Size {
    Bytes(u64),
    Text(String),
}

impl Size {
    /// The size in bytes, by nats-server's rules.
    pub fn bytes(&self) -> Result<u64, UnitError> {
        match self {
            Size::Bytes(n) => Ok(*n),
            Size::Text(s) => parse_size(s),
        }
    }
}

impl fmt::Display for Size {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Size::Bytes(n) => write!(f, "{n}"),
            Size::Text(s) => f.write_str(s),
        }
    }
}

impl From<u64> for Size {
    fn from(n: u64) -> Self {
        Size::Bytes(n)
    }
}

impl From<&str> for Size {
    fn from(s: &str) -> Self {
        Size::Text(s.to_string())
    }
}

impl JsonSchema for Size {
    fn schema_name() -> Cow<'static, str> {
        "Size".into()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        // int-or-string with the pattern beside it: JSON Schema applies `pattern` to strings
        // only, so integers pass and strings must look like a size. This is the shape
        // controller-gen emits for patterned IntOrString fields, which the apiserver accepts
        // as structural.
        json_schema!({
            "x-kubernetes-int-or-string": true,
            "pattern": SIZE_PATTERN,
            "minimum": 0,
        })
    }
}

/// Parses a size the way nats-server does: digits, then an optional suffix.
pub fn parse_size(text: &str) -> Result<u64, UnitError> {
    let bad = || UnitError::BadSize(text.to_string());
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, suffix) = t.split_at(split);
    if digits.is_empty() {
        return Err(bad());
    }
    let n: u64 = digits
        .parse()
        .map_err(|_| UnitError::SizeOverflow(text.to_string()))?;
    let suffix = suffix.to_ascii_lowercase();
    let mut chars = suffix.chars();
    let multiplier: u128 = match chars.next() {
        None => 1,
        Some(c) => {
            let exp = match c {
                'k' => 1,
                'm' => 2,
                'g' => 3,
                't' => 4,
                'p' => 5,
                'e' => 6,
                _ => return Err(bad()),
            };
            let base: u128 = match chars.as_str() {
                "" => 1000,
                "b" | "i" | "ib" => 1024,
                _ => return Err(bad()),
            };
            base.pow(exp)
        }
    };
    u64::try_from(u128::from(n) * multiplier).map_err(|_| UnitError::SizeOverflow(text.to_string()))
}

/// A duration in Go's syntax (`"500ms"`, `"2s"`, `"1m30s"`, `"50us"`, `"0"`), as nats-server
/// reads it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct GoDuration(pub String);

impl GoDuration {
    /// Parses the duration; signs, a missing unit (other than in a bare `0`) and unknown units
    /// are errors.
    pub fn parse(&self) -> Result<Duration, UnitError> {
        parse_duration(&self.0)
    }
}

impl fmt::Display for GoDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for GoDuration {
    fn from(s: &str) -> Self {
        GoDuration(s.to_string())
    }
}

impl JsonSchema for GoDuration {
    fn schema_name() -> Cow<'static, str> {
        "GoDuration".into()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "pattern": DURATION_PATTERN,
        })
    }
}

/// Parses `[0-9]+(\.[0-9]+)?UNIT` repeated, units `ns us µs μs ms s m h` (Go spells a
/// microsecond all three ways), or a bare `0` (the CRD's pattern).
pub fn parse_duration(text: &str) -> Result<Duration, UnitError> {
    let bad = || UnitError::BadDuration(text.to_string());
    // Go's one unitless duration (nats-mini's `busy_poll: "0"` turns busy polling off).
    if text == "0" {
        return Ok(Duration::ZERO);
    }
    let mut rest = text;
    if rest.is_empty() {
        return Err(bad());
    }
    let mut total_nanos: u128 = 0;
    while !rest.is_empty() {
        let int_end = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if int_end == 0 {
            return Err(bad());
        }
        let int_part: u128 = rest[..int_end].parse().map_err(|_| bad())?;
        rest = &rest[int_end..];
        let mut frac_digits = "";
        if let Some(after_dot) = rest.strip_prefix('.') {
            let frac_end = after_dot
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(after_dot.len());
            if frac_end == 0 {
                return Err(bad());
            }
            frac_digits = &after_dot[..frac_end];
            rest = &after_dot[frac_end..];
        }
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let unit: u128 = match &rest[..unit_end] {
            "ns" => 1,
            // U+00B5 MICRO SIGN and U+03BC GREEK SMALL LETTER MU, as Go accepts them.
            "us" | "\u{b5}s" | "\u{3bc}s" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            _ => return Err(bad()),
        };
        rest = &rest[unit_end..];
        let mut part = int_part.checked_mul(unit).ok_or_else(bad)?;
        // Fractions: at most 18 digits matter below a nanosecond-hour; Go truncates too.
        let mut scale = unit;
        for d in frac_digits.chars().take(18) {
            scale /= 10;
            part += u128::from(d.to_digit(10).unwrap_or(0)) * scale;
        }
        total_nanos = total_nanos.checked_add(part).ok_or_else(bad)?;
    }
    let secs = u64::try_from(total_nanos / 1_000_000_000).map_err(|_| bad())?;
    // The remainder is below 10^9, so it fits in u32.
    let nanos = u32::try_from(total_nanos % 1_000_000_000).map_err(|_| bad())?;
    Ok(Duration::new(secs, nanos))
}

/// Formats a duration the way Go prints it for whole seconds and milliseconds, which is all
/// the renderer needs (`"30s"`, `"1m30s"`, `"1h0m0s"`, `"500ms"`).
pub fn format_duration(d: Duration) -> String {
    let nanos = d.as_nanos();
    if nanos == 0 {
        return "0s".to_string();
    }
    if nanos < 1_000_000_000 {
        if nanos.is_multiple_of(1_000_000) {
            return format!("{}ms", nanos / 1_000_000);
        }
        if nanos.is_multiple_of(1_000) {
            return format!("{}us", nanos / 1_000);
        }
        return format!("{nanos}ns");
    }
    let secs = d.as_secs();
    let frac = d.subsec_nanos();
    let mut s_part = format!("{}", secs % 60);
    if frac != 0 {
        let digits = format!("{frac:09}");
        s_part.push('.');
        s_part.push_str(digits.trim_end_matches('0'));
    }
    let (h, m) = (secs / 3600, (secs / 60) % 60);
    if h > 0 {
        format!("{h}h{m}m{s_part}s")
    } else if m > 0 {
        format!("{m}m{s_part}s")
    } else {
        format!("{s_part}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_follow_nats_server_suffix_rules() {
        let cases: &[(&str, u64)] = &[
            ("0", 0),
            ("1048576", 1_048_576),
            ("1k", 1_000),
            ("1K", 1_000),
            ("1kb", 1_024),
            ("1KiB", 1_024),
            ("1ki", 1_024),
            ("2mb", 2 * 1_048_576),
            ("1MiB", 1_048_576),
            ("1m", 1_000_000),
            ("1M", 1_000_000),
            ("1g", 1_000_000_000),
            ("1GB", 1 << 30),
            ("1t", 1_000_000_000_000),
            ("1p", 1_000_000_000_000_000),
            ("2e", 2_000_000_000_000_000_000),
            ("16eb", 0),
        ];
        for (text, want) in cases {
            if *text == "16eb" {
                assert_eq!(
                    parse_size(text),
                    Err(UnitError::SizeOverflow("16eb".into()))
                );
                continue;
            }
            assert_eq!(parse_size(text), Ok(*want), "{text}");
        }
    }

    #[test]
    fn bad_sizes_are_errors() {
        for text in [
            "",
            "mb",
            "1.5mb",
            "-1",
            "1kbb",
            "1 kb",
            "1x",
            "1bi",
            "99999999999999999999",
        ] {
            assert!(parse_size(text).is_err(), "{text}");
        }
    }

    #[test]
    fn durations_parse_like_go() {
        let cases: &[(&str, Duration)] = &[
            ("2s", Duration::from_secs(2)),
            ("1m30s", Duration::from_secs(90)),
            ("500ms", Duration::from_millis(500)),
            ("1.5s", Duration::from_millis(1500)),
            ("1h", Duration::from_secs(3600)),
            ("10us", Duration::from_micros(10)),
            ("7ns", Duration::from_nanos(7)),
            ("0s", Duration::ZERO),
            ("0", Duration::ZERO),
            ("1h2m3s4ms", Duration::new(3723, 4_000_000)),
            ("50us", Duration::from_micros(50)),
            ("50\u{b5}s", Duration::from_micros(50)),
            ("50\u{3bc}s", Duration::from_micros(50)),
            ("1.5\u{b5}s", Duration::from_nanos(1500)),
            ("1ms250\u{b5}s", Duration::from_micros(1250)),
        ];
        for (text, want) in cases {
            assert_eq!(parse_duration(text), Ok(*want), "{text}");
        }
        for text in [
            "",
            "2",
            "s",
            "-2s",
            "2d",
            "1.s",
            ".5s",
            "2 s",
            "1m-1s",
            "00",
            "0.0",
            "+0",
            "-0",
            "0 ",
            "\u{b5}s",
            "50\u{b5}",
            "50u",
            "50\u{b5}ss",
        ] {
            assert!(parse_duration(text).is_err(), "{text}");
        }
    }

    #[test]
    fn durations_format_like_go() {
        for (d, want) in [
            (Duration::from_secs(30), "30s"),
            (Duration::from_secs(90), "1m30s"),
            (Duration::from_secs(3600), "1h0m0s"),
            (Duration::from_millis(500), "500ms"),
            (Duration::from_millis(1500), "1.5s"),
            (Duration::ZERO, "0s"),
        ] {
            assert_eq!(format_duration(d), want);
            assert_eq!(parse_duration(want), Ok(d));
        }
    }

    #[test]
    fn size_deserializes_from_int_or_string_and_keeps_spelling() {
        let s: Size = serde_json::from_str("1048576").unwrap();
        assert_eq!(s, Size::Bytes(1_048_576));
        let s: Size = serde_json::from_str("\"2mb\"").unwrap();
        assert_eq!(serde_json::to_string(&s).unwrap(), "\"2mb\"");
        // A bad value still deserializes; render rejects it with a message.
        let s: Size = serde_json::from_str("\"lots\"").unwrap();
        assert!(s.bytes().is_err());
    }
}
