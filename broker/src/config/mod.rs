//! The nats-server configuration file format: reading it into a value tree with positions.
//!
//! nats-mini is a drop-in for nats-server, so it has to read the files people already have,
//! written for nats-server's own loose format (a superset of JSON). This module owns that
//! format and nothing else: it turns text into a [`Map`] of [`Item`]s and offers typed
//! accessors ([`Item::as_size`], [`Item::as_duration`], ...). Which keys exist, what they
//! default to and how they are validated is the options layer's business, not this module's.
//! It does no I/O beyond reading the files named by `include`.
//!
//! # Grammar (as nats-server 2.15.1 reads it)
//!
//! - A file is a sequence of entries `key value`, `key: value` or `key = value`, ended by a
//!   new line, `;` or `,`. The whole file may be wrapped in `{ … }`, so JSON files parse.
//! - Keys are bare (up to whitespace, `:`, `=`, a bracket, `,` or `;`), `"double"` or
//!   `'single'` quoted (no escapes in keys). They keep their spelling; [`Map::get`] matches
//!   case-insensitively because option names are case-insensitive. Variable names are
//!   case-sensitive. Whitespace, new lines included, may separate a key from its separator.
//! - Values: maps `{ … }` (entries separated by new lines, `,` or `;`), arrays `[ … ]`
//!   (elements separated by `,` or new lines, a trailing `,` allowed), `"strings"` with the
//!   escapes `\t \n \r \" \\ \xHH` (and `\uXXXX`, for JSON), `'raw strings'`, block strings
//!   `( … )` that end at a line holding only `)`, and bare tokens. A bare token ends at a
//!   space, tab, new line, `,`, `;`, `]` or `}` and is:
//!   - a boolean: `true false yes no on off`, any case (a quoted `"true"` stays a string);
//!   - an integer, optionally negative, with an optional size suffix: `k m g t p e` are powers
//!     of 1000, `kb ki kib mb mi mib …` powers of 1024, any case (`1M` = 1 000 000,
//!     `1MB` = 1 048 576);
//!   - a float `1.5`, or an ISO-8601 Zulu datetime `2016-05-04T18:53:41Z`;
//!   - a variable `$NAME`: the value of key `NAME` defined earlier in the same or an
//!     enclosing map, else the environment variable `NAME`, whose text is parsed as a value
//!     (so `PORT=4222` is an integer). A bcrypt hash `$2a$…` is kept as a string.
//!   - otherwise a string, with backslash escapes processed: `127.0.0.1:4222`, `2s`,
//!     `nats-route://u:p@h:6222`, `10.0.0.1`, `1m30s`.
//! - `#` and `//` start comments wherever a key or a value terminator is expected (where a
//!   value starts, `#` is text, as in nats-server).
//! - `include path` (bare or quoted, relative to the including file's directory) merges the
//!   top-level entries of another file at that point. Include cycles are refused.
//!
//! # Where this differs from nats-server 2.15.1
//!
//! Every file nats-server reads sensibly reads the same here. Where nats-server misreads or
//! refuses text for no good reason, this module reads it as meant; where nats-server accepts
//! a mistake, this module reports it. Each case is pinned by a test.
//!
//! - Read as meant: a number right before `]` (`[1, 2]` is a parse error in nats-server, and
//!   `[1k]` the string `"1k"`); `./nats.pid`, `it's`, `-foo`, `-1s`, `1.5x` (errors there,
//!   strings here); `$2b$`/`$2y$` bcrypt hashes (only `$2a$` there); `\uXXXX` escapes; a `)`
//!   closing a block string on the last line; absolute include paths (nats-server joins them
//!   to the including file's directory).
//! - Reported: integer overflow with a suffix (wraps silently there); an unknown suffix such as
//!   `1kbb` (the key silently vanishes there; a string here); a missing value (`a: ,`,
//!   `a { b }`, `a:` at the end of the file); a `}` with no `{`; an unclosed `{` wrapping the
//!   file; an environment variable holding more than one value (`x\ny: 2`); include cycles
//!   (a stack overflow there).
//!
//! # Why errors carry positions
//!
//! A config error is only useful if it says where: every [`Item`] and [`Entry`] key keeps its
//! [`Pos`] (file, line, column; the file is the included one for included entries), and every
//! [`ConfigError`] and [`Warning`] prints as `FILE:LINE:COL: message` like nats-server's
//! `unk.conf:2:1: unknown field "foo_unknown"`. Columns are 1-based and count characters
//! (nats-server's are 0-based on line 1 only).

use std::fmt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

pub mod apply;
mod lexer;
mod parser;
mod value;

#[cfg(test)]
mod tests;

pub use parser::{parse_file, parse_str};
pub use value::{Entry, Item, Map, Value};

/// Where something starts in a config file.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Pos {
    /// The file as it was named (the including file's directory joined with the include
    /// path for included files), not canonicalized.
    pub file: Arc<Path>,
    /// 1-based line.
    pub line: u32,
    /// 1-based column, in characters.
    pub col: u32,
}

impl fmt::Display for Pos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file.display(), self.line, self.col)
    }
}

/// A config file that cannot be read or a value of the wrong kind.
///
/// `Display` is `FILE:LINE:COL: msg` (just `msg` without a position). `msg` is complete on its
/// own and names the key where one is involved; `key` repeats it for callers that want it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub struct ConfigError {
    pub pos: Option<Pos>,
    pub key: Option<String>,
    pub msg: String,
}

impl ConfigError {
    /// An error at a position, not tied to a key.
    pub fn at(pos: &Pos, msg: impl Into<String>) -> ConfigError {
        ConfigError {
            pos: Some(pos.clone()),
            key: None,
            msg: msg.into(),
        }
    }

    /// An error about the value of `key` at `pos`; `msg` should name the key.
    pub fn for_key(pos: &Pos, key: &str, msg: impl Into<String>) -> ConfigError {
        ConfigError {
            pos: Some(pos.clone()),
            key: Some(key.to_owned()),
            msg: msg.into(),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.pos {
            Some(pos) => write!(f, "{pos}: {}", self.msg),
            None => f.write_str(&self.msg),
        }
    }
}

/// Something accepted but worth fixing, such as a duration written as a bare number of
/// seconds. nats-server prints warnings and starts; under `-t` they are fatal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    pub pos: Pos,
    pub key: String,
    pub msg: String,
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.pos, self.msg)
    }
}

/// Typed access to a value. Each method takes the key the value belongs to so the error can
/// name it; errors point at the value.
impl Item {
    /// A string value.
    pub fn as_str(&self, key: &str) -> Result<&str, ConfigError> {
        match &self.value {
            Value::String(s) => Ok(s),
            _ => Err(self.type_error(key, "a string", "")),
        }
    }

    /// A boolean (`true false yes no on off`, unquoted).
    pub fn as_bool(&self, key: &str) -> Result<bool, ConfigError> {
        match &self.value {
            Value::Bool(b) => Ok(*b),
            Value::String(s) if lexer::bool_word(s).is_some() => Err(self.type_error(
                key,
                "a boolean",
                " (a quoted value is a string: write it without quotes)",
            )),
            _ => Err(self.type_error(key, "a boolean (true/false, yes/no, on/off)", "")),
        }
    }

    /// An integer (size suffixes already applied).
    pub fn as_int(&self, key: &str) -> Result<i64, ConfigError> {
        match &self.value {
            Value::Integer(n) => Ok(*n),
            Value::String(s) if lexer::sized_integer(s).is_some() => Err(self.type_error(
                key,
                "an integer",
                " (a quoted value is a string: write it without quotes)",
            )),
            _ => Err(self.type_error(key, "an integer", "")),
        }
    }

    /// A number, integer or float, as `f64` (e.g. `authorization.timeout: 0.5`).
    pub fn as_f64(&self, key: &str) -> Result<f64, ConfigError> {
        match &self.value {
            Value::Integer(n) => Ok(*n as f64),
            Value::Float(x) => Ok(*x),
            _ => Err(self.type_error(key, "a number", "")),
        }
    }

    /// A byte size: an integer (`65536`, `1MB`; suffixes applied by the lexer) or a string
    /// with the same syntax (`"2mb"`). Negative sizes are refused.
    pub fn as_size(&self, key: &str) -> Result<u64, ConfigError> {
        let n = match &self.value {
            Value::Integer(n) => *n,
            Value::String(s) => match lexer::sized_integer(s.trim()) {
                Some(Ok(n)) => n,
                Some(Err(())) => {
                    return Err(ConfigError::for_key(
                        &self.pos,
                        key,
                        format!("{key}: size {s:?} is out of range"),
                    ));
                }
                None => {
                    return Err(ConfigError::for_key(
                        &self.pos,
                        key,
                        format!(
                            "{key}: expected a size such as 65536, 64KB or 1MB, got the string {s:?}"
                        ),
                    ));
                }
            },
            _ => return Err(self.type_error(key, "a size such as 65536, 64KB or 1MB", "")),
        };
        u64::try_from(n).map_err(|_| {
            ConfigError::for_key(
                &self.pos,
                key,
                format!("{key}: size must not be negative ({n})"),
            )
        })
    }

    /// A duration: a string in Go's syntax (`"2s"`, `"1m30s"`, `"500ms"`, or bare `2s`). An
    /// integer is read as seconds with the warning `<key> should be converted to a duration`,
    /// as nats-server does; note that a bare `1m` is the integer 1 000 000, so it means
    /// 1 000 000 seconds here too.
    pub fn as_duration(&self, key: &str) -> Result<(Duration, Option<Warning>), ConfigError> {
        match &self.value {
            Value::String(s) => match parse_go_duration(s) {
                Ok(d) => Ok((d, None)),
                Err(GoDurationError::Negative) => Err(ConfigError::for_key(
                    &self.pos,
                    key,
                    format!("error parsing {key}: negative duration {s:?}"),
                )),
                Err(GoDurationError::Syntax(e)) => Err(ConfigError::for_key(
                    &self.pos,
                    key,
                    format!("error parsing {key}: {e}"),
                )),
            },
            Value::Integer(n) => {
                let secs = u64::try_from(*n).map_err(|_| {
                    ConfigError::for_key(
                        &self.pos,
                        key,
                        format!("error parsing {key}: negative duration {n}"),
                    )
                })?;
                let warning = Warning {
                    pos: self.pos.clone(),
                    key: key.to_owned(),
                    msg: format!("{key} should be converted to a duration"),
                };
                Ok((Duration::from_secs(secs), Some(warning)))
            }
            _ => Err(self.type_error(key, "a duration such as \"2s\" or \"1m30s\"", "")),
        }
    }

    /// An array's elements.
    pub fn as_array(&self, key: &str) -> Result<&[Item], ConfigError> {
        match &self.value {
            Value::Array(items) => Ok(items),
            _ => Err(self.type_error(key, "an array", "")),
        }
    }

    /// A map.
    pub fn as_map(&self, key: &str) -> Result<&Map, ConfigError> {
        match &self.value {
            Value::Map(map) => Ok(map),
            _ => Err(self.type_error(key, "a map", "")),
        }
    }

    fn type_error(&self, key: &str, want: &str, hint: &str) -> ConfigError {
        let got = match &self.value {
            Value::String(s) => format!("the string {s:?}"),
            Value::Integer(n) => format!("the integer {n}"),
            Value::Float(x) => format!("the float {x}"),
            Value::Bool(b) => format!("the boolean {b}"),
            Value::Datetime(d) => format!("the datetime {d}"),
            Value::Map(_) => "a map".to_owned(),
            Value::Array(_) => "an array".to_owned(),
        };
        ConfigError::for_key(
            &self.pos,
            key,
            format!("{key}: expected {want}, got {got}{hint}"),
        )
    }
}

/// Why a Go duration string was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GoDurationError {
    /// Go's own message, e.g. `time: invalid duration "abc"`.
    Syntax(String),
    /// Valid Go syntax, but negative; a [`Duration`] cannot hold it.
    Negative,
}

impl fmt::Display for GoDurationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GoDurationError::Syntax(m) => f.write_str(m),
            GoDurationError::Negative => f.write_str("a negative duration is not allowed"),
        }
    }
}

/// Parses Go's `time.ParseDuration` syntax: an optional sign, then one or more decimal numbers
/// (fraction allowed) each followed by a unit `ns us µs μs ms s m h`; `"0"` alone is allowed.
/// Like Go, the total must fit in an `i64` of nanoseconds (about 292 years).
pub fn parse_go_duration(text: &str) -> Result<Duration, GoDurationError> {
    let invalid = || GoDurationError::Syntax(format!("time: invalid duration {text:?}"));
    let mut s = text;
    let mut negative = false;
    if let Some(rest) = s.strip_prefix('-') {
        negative = true;
        s = rest;
    } else if let Some(rest) = s.strip_prefix('+') {
        s = rest;
    }
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    if s.is_empty() {
        return Err(invalid());
    }
    const MAX_NANOS: u128 = i64::MAX as u128;
    let mut total: u128 = 0;
    while !s.is_empty() {
        let int_len = s.bytes().take_while(u8::is_ascii_digit).count();
        let (int_digits, rest) = s.split_at(int_len);
        let (frac_digits, rest) = match rest.strip_prefix('.') {
            Some(after) => {
                let n = after.bytes().take_while(u8::is_ascii_digit).count();
                after.split_at(n)
            }
            None => ("", rest),
        };
        if int_digits.is_empty() && frac_digits.is_empty() {
            return Err(invalid());
        }
        let unit_len = rest
            .find(|c: char| c == '.' || c.is_ascii_digit())
            .unwrap_or(rest.len());
        let (unit, rest) = rest.split_at(unit_len);
        if unit.is_empty() {
            return Err(GoDurationError::Syntax(format!(
                "time: missing unit in duration {text:?}"
            )));
        }
        let unit_nanos: u128 = match unit {
            "ns" => 1,
            "us" | "\u{b5}s" | "\u{3bc}s" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            _ => {
                return Err(GoDurationError::Syntax(format!(
                    "time: unknown unit {unit:?} in duration {text:?}"
                )));
            }
        };
        let mut whole: u128 = 0;
        for d in int_digits.bytes() {
            whole = whole * 10 + u128::from(d - b'0');
            if whole > MAX_NANOS {
                return Err(invalid());
            }
        }
        let mut nanos = whole * unit_nanos;
        // The fraction contributes floor(frac * unit); digits past nanosecond precision
        // cannot change it, so at most 19 are looked at (10^19 fits a u128 easily).
        let mut frac: u128 = 0;
        let mut scale: u128 = 1;
        for d in frac_digits.bytes().take(19) {
            frac = frac * 10 + u128::from(d - b'0');
            scale *= 10;
        }
        nanos += frac * unit_nanos / scale;
        total += nanos;
        if total > MAX_NANOS {
            return Err(invalid());
        }
        s = rest;
    }
    if negative && total != 0 {
        return Err(GoDurationError::Negative);
    }
    let secs = (total / 1_000_000_000) as u64;
    let sub = (total % 1_000_000_000) as u32;
    Ok(Duration::new(secs, sub))
}
