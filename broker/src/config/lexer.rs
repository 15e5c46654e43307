//! Character-level scanning: a position-tracking cursor, comments, keys, the four kinds of
//! string, and the classification of bare tokens into booleans, numbers, datetimes, variables
//! and strings.
//!
//! nats-server's lexer is a state machine whose token rules depend on context (a key ends at
//! whitespace or a separator, a bare value at whitespace, `,`, `;`, `]` or `}`); here each
//! context is a small function on [`Cursor`] and the parser picks the one it needs.

use std::path::Path;
use std::sync::Arc;

use super::{ConfigError, Pos, Value};

/// A read position in one source text, with its line and column.
#[derive(Clone)]
pub(crate) struct Cursor<'a> {
    src: &'a str,
    off: usize,
    line: u32,
    col: u32,
    file: Arc<Path>,
}

impl<'a> Cursor<'a> {
    /// A cursor at the start of `src`, past a UTF-8 byte-order mark if there is one.
    pub(crate) fn new(src: &'a str, file: Arc<Path>) -> Cursor<'a> {
        let off = if src.starts_with('\u{feff}') {
            '\u{feff}'.len_utf8()
        } else {
            0
        };
        Cursor {
            src,
            off,
            line: 1,
            col: 1,
            file,
        }
    }

    pub(crate) fn peek(&self) -> Option<char> {
        self.src[self.off..].chars().next()
    }

    /// The character after the next one.
    pub(crate) fn peek2(&self) -> Option<char> {
        let mut it = self.src[self.off..].chars();
        it.next();
        it.next()
    }

    pub(crate) fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.off += c.len_utf8();
        if c == '\n' {
            self.line = self.line.saturating_add(1);
            self.col = 1;
        } else {
            self.col = self.col.saturating_add(1);
        }
        Some(c)
    }

    pub(crate) fn is_eof(&self) -> bool {
        self.off >= self.src.len()
    }

    pub(crate) fn pos(&self) -> Pos {
        Pos {
            file: Arc::clone(&self.file),
            line: self.line,
            col: self.col,
        }
    }

    /// An error at the current position.
    pub(crate) fn error(&self, msg: impl Into<String>) -> ConfigError {
        ConfigError::at(&self.pos(), msg)
    }

    /// Skips spaces and tabs (what separates a value from what follows on its line).
    pub(crate) fn skip_blanks(&mut self) {
        while matches!(self.peek(), Some(' ' | '\t')) {
            self.bump();
        }
    }

    /// Skips all whitespace, new lines included, but not comments.
    pub(crate) fn skip_whitespace(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.bump();
        }
    }

    pub(crate) fn at_comment(&self) -> bool {
        match self.peek() {
            Some('#') => true,
            Some('/') => self.peek2() == Some('/'),
            _ => false,
        }
    }

    /// Skips a comment up to (not including) the end of its line.
    pub(crate) fn skip_comment(&mut self) {
        while !matches!(self.peek(), None | Some('\n' | '\r')) {
            self.bump();
        }
    }

    /// Skips whitespace, new lines and comments: what may come before a key or an element.
    pub(crate) fn skip_trivia(&mut self) {
        loop {
            self.skip_whitespace();
            if !self.at_comment() {
                return;
            }
            self.skip_comment();
        }
    }

    /// A key: quoted (raw, no escapes) or bare up to whitespace, `:`, `=`, a bracket, `,` or
    /// `;`. The cursor must be on the key's first character.
    pub(crate) fn key(&mut self) -> Result<Key, ConfigError> {
        let pos = self.pos();
        if let Some(q @ ('"' | '\'')) = self.peek() {
            self.bump();
            let start = self.off;
            loop {
                match self.peek() {
                    None => {
                        return Err(self.error(format!(
                            "unexpected end of file in the quoted key that starts at line {}, \
                             column {}",
                            pos.line, pos.col
                        )));
                    }
                    Some(c) if c == q => break,
                    Some(_) => {
                        self.bump();
                    }
                }
            }
            let text = self.src[start..self.off].to_owned();
            self.bump();
            return Ok(Key {
                text,
                pos,
                quoted: true,
            });
        }
        let start = self.off;
        while let Some(c) = self.peek() {
            if c.is_whitespace() || matches!(c, ':' | '=' | '{' | '[' | '}' | ']' | ',' | ';') {
                break;
            }
            self.bump();
        }
        Ok(Key {
            text: self.src[start..self.off].to_owned(),
            pos,
            quoted: false,
        })
    }

    /// A `"double-quoted"` string with escapes; the cursor must be on the opening quote.
    pub(crate) fn double_quoted(&mut self) -> Result<String, ConfigError> {
        let open = self.pos();
        self.bump();
        let mut buf = Vec::new();
        loop {
            match self.peek() {
                None => {
                    return Err(self.error(format!(
                        "unexpected end of file in the string that starts at line {}, column {}",
                        open.line, open.col
                    )));
                }
                Some('"') => {
                    self.bump();
                    break;
                }
                Some('\\') => self.escape(&mut buf)?,
                Some(c) => {
                    push_char(&mut buf, c);
                    self.bump();
                }
            }
        }
        into_string(buf, &open)
    }

    /// A `'single-quoted'` string, taken verbatim; the cursor must be on the opening quote.
    pub(crate) fn single_quoted(&mut self) -> Result<String, ConfigError> {
        let open = self.pos();
        self.bump();
        let start = self.off;
        loop {
            match self.peek() {
                None => {
                    return Err(self.error(format!(
                        "unexpected end of file in the string that starts at line {}, column {}",
                        open.line, open.col
                    )));
                }
                Some('\'') => break,
                Some(_) => {
                    self.bump();
                }
            }
        }
        let text = self.src[start..self.off].to_owned();
        self.bump();
        Ok(text)
    }

    /// A block string: everything after `(` up to a line holding only `)`, verbatim (the new
    /// line before the `)` included, as nats-server keeps it). The cursor must be on `(`.
    pub(crate) fn block(&mut self) -> Result<String, ConfigError> {
        let open = self.pos();
        self.bump();
        let start = self.off;
        let mut prev = '(';
        loop {
            match self.peek() {
                None => {
                    return Err(self.error(format!(
                        "unexpected end of file in the block string that starts at line {}, \
                         column {} (it ends at a line holding only ')')",
                        open.line, open.col
                    )));
                }
                Some(')') if prev == '\n' && matches!(self.peek2(), None | Some('\n' | '\r')) => {
                    let text = self.src[start..self.off].to_owned();
                    self.bump();
                    return Ok(text);
                }
                Some(c) => {
                    prev = c;
                    self.bump();
                }
            }
        }
    }

    /// A bare token, up to a space, tab, new line, `,`, `;`, `]` or `}`, with backslash escapes
    /// processed (nats-server does so in bare strings too).
    pub(crate) fn bare(&mut self) -> Result<Bare, ConfigError> {
        let pos = self.pos();
        let mut buf = Vec::new();
        let mut escaped = false;
        while let Some(c) = self.peek() {
            if is_bare_end(c) {
                break;
            }
            if c == '\\' {
                escaped = true;
                self.escape(&mut buf)?;
            } else {
                push_char(&mut buf, c);
                self.bump();
            }
        }
        Ok(Bare {
            text: into_string(buf, &pos)?,
            escaped,
            pos,
        })
    }

    /// The file name after `include`: quoted (raw) or bare, without escapes.
    pub(crate) fn include_path(&mut self) -> Result<String, ConfigError> {
        match self.peek() {
            Some('"') => {
                let open = self.pos();
                self.bump();
                let start = self.off;
                while self.peek().is_some_and(|c| c != '"') {
                    self.bump();
                }
                if self.is_eof() {
                    return Err(self.error(format!(
                        "unexpected end of file in the include file name that starts at line \
                         {}, column {}",
                        open.line, open.col
                    )));
                }
                let text = self.src[start..self.off].to_owned();
                self.bump();
                Ok(text)
            }
            Some('\'') => self.single_quoted(),
            None | Some('\n' | '\r') => Err(self.error("expected a file name after include")),
            Some(c @ ('[' | '{' | '(' | ']' | '}' | ',' | ';')) => Err(self.error(format!(
                "expected a file name after include, found '{}'",
                c.escape_default()
            ))),
            Some(_) => {
                let start = self.off;
                while self.peek().is_some_and(|c| !is_bare_end(c)) {
                    self.bump();
                }
                Ok(self.src[start..self.off].to_owned())
            }
        }
    }

    /// One escape sequence; the cursor must be on the backslash.
    fn escape(&mut self, buf: &mut Vec<u8>) -> Result<(), ConfigError> {
        let at = self.pos();
        self.bump();
        let c = self.peek();
        let simple = match c {
            Some('t') => Some(b'\t'),
            Some('n') => Some(b'\n'),
            Some('r') => Some(b'\r'),
            Some('"') => Some(b'"'),
            Some('\\') => Some(b'\\'),
            _ => None,
        };
        if let Some(b) = simple {
            self.bump();
            buf.push(b);
            return Ok(());
        }
        match c {
            Some('x') => {
                self.bump();
                let byte = self.hex_digits(2, &at)?;
                buf.push(byte as u8);
                Ok(())
            }
            Some('u') => {
                self.bump();
                let unit = self.hex_digits(4, &at)?;
                let code = if (0xd800..0xdc00).contains(&unit)
                    && self.peek() == Some('\\')
                    && self.peek2() == Some('u')
                {
                    self.bump();
                    self.bump();
                    let low = self.hex_digits(4, &at)?;
                    if !(0xdc00..0xe000).contains(&low) {
                        return Err(ConfigError::at(&at, "invalid \\u surrogate pair"));
                    }
                    0x10000 + ((unit - 0xd800) << 10) + (low - 0xdc00)
                } else {
                    unit
                };
                let ch = char::from_u32(code).ok_or_else(|| {
                    ConfigError::at(&at, format!("\\u{code:04x} is not a valid character"))
                })?;
                push_char(buf, ch);
                Ok(())
            }
            None => Err(ConfigError::at(&at, "unexpected end of file after '\\'")),
            Some(other) => Err(ConfigError::at(
                &at,
                format!(
                    "invalid escape character '{}'; only \\xHH, \\t, \\n, \\r, \\\", \\\\ (and \
                     \\uXXXX) are allowed",
                    other.escape_default()
                ),
            )),
        }
    }

    fn hex_digits(&mut self, n: usize, at: &Pos) -> Result<u32, ConfigError> {
        let mut value = 0u32;
        for _ in 0..n {
            match self.peek() {
                Some(c) if c.is_ascii_hexdigit() => {
                    value = value * 16 + c.to_digit(16).unwrap_or(0);
                    self.bump();
                }
                None | Some('\n' | '\r') => {
                    return Err(ConfigError::at(
                        at,
                        format!(
                            "expected {n} hexadecimal digits in the escape, but hit end of line"
                        ),
                    ));
                }
                Some(c) => {
                    return Err(ConfigError::at(
                        at,
                        format!(
                            "expected {n} hexadecimal digits in the escape, but got '{}'",
                            c.escape_default()
                        ),
                    ));
                }
            }
        }
        Ok(value)
    }
}

/// A key as written.
pub(crate) struct Key {
    pub(crate) text: String,
    pub(crate) pos: Pos,
    pub(crate) quoted: bool,
}

/// A bare token's text (escapes processed) and where it starts.
pub(crate) struct Bare {
    pub(crate) text: String,
    /// The token had escapes; such a token is always a string.
    pub(crate) escaped: bool,
    pub(crate) pos: Pos,
}

/// What a bare token means.
pub(crate) enum BareKind {
    Value(Value),
    /// `$NAME`, to be resolved by the parser.
    Variable(String),
}

/// Characters that end a bare value.
pub(crate) fn is_bare_end(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r' | ',' | ';' | ']' | '}')
}

/// Classifies a bare token. Errors are for tokens that are clearly malformed numbers.
pub(crate) fn classify(bare: &Bare) -> Result<BareKind, ConfigError> {
    let text = bare.text.as_str();
    if bare.escaped {
        return Ok(BareKind::Value(Value::String(bare.text.clone())));
    }
    if let Some(b) = bool_word(text) {
        return Ok(BareKind::Value(Value::Bool(b)));
    }
    if let Some(name) = text.strip_prefix('$') {
        // A bcrypt hash such as `$2a$11$…` is a password, not a variable.
        if ["2a$", "2b$", "2y$"].iter().any(|p| name.starts_with(p)) {
            return Ok(BareKind::Value(Value::String(text.to_owned())));
        }
        return Ok(BareKind::Variable(name.to_owned()));
    }
    match sized_integer(text) {
        Some(Ok(n)) => return Ok(BareKind::Value(Value::Integer(n))),
        Some(Err(())) => {
            return Err(ConfigError::at(
                &bare.pos,
                format!("integer '{text}' is out of the range"),
            ));
        }
        None => {}
    }
    if is_float(text) {
        return match text.parse::<f64>() {
            Ok(x) if x.is_finite() => Ok(BareKind::Value(Value::Float(x))),
            _ => Err(ConfigError::at(
                &bare.pos,
                format!("float '{text}' is out of the range"),
            )),
        };
    }
    if is_datetime_shape(text) {
        return if valid_datetime(text) {
            Ok(BareKind::Value(Value::Datetime(text.to_owned())))
        } else {
            Err(ConfigError::at(
                &bare.pos,
                format!("expected Zulu formatted DateTime, but got '{text}'"),
            ))
        };
    }
    let (sign, unsigned) = match text.strip_prefix('-') {
        Some(rest) => ("-", rest),
        None => ("", text),
    };
    let after_dot = unsigned.strip_prefix('.');
    if after_dot.is_some_and(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit())) {
        return Err(ConfigError::at(
            &bare.pos,
            format!("floats must start with a digit: write {sign}0{unsigned}"),
        ));
    }
    Ok(BareKind::Value(Value::String(text.to_owned())))
}

/// `true false yes no on off`, any case.
pub(crate) fn bool_word(s: &str) -> Option<bool> {
    match s.to_ascii_lowercase().as_str() {
        "true" | "yes" | "on" => Some(true),
        "false" | "no" | "off" => Some(false),
        _ => None,
    }
}

/// An optionally negative decimal integer with an optional size suffix: `k m g t p e` are
/// powers of 1000; the same letter followed by `b`, `i` or `ib` a power of 1024 (any case).
/// `None` if `s` has another shape, `Some(Err)` if it overflows an `i64`.
pub(crate) fn sized_integer(s: &str) -> Option<Result<i64, ()>> {
    let unsigned = s.strip_prefix('-').unwrap_or(s);
    let digits = unsigned.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
        return None;
    }
    let (num, suffix) = unsigned.split_at(digits);
    let suffix = suffix.to_ascii_lowercase();
    let multiplier: i128 = if suffix.is_empty() {
        1
    } else {
        let mut chars = suffix.chars();
        let exp = match chars.next()? {
            'k' => 1,
            'm' => 2,
            'g' => 3,
            't' => 4,
            'p' => 5,
            'e' => 6,
            _ => return None,
        };
        match chars.as_str() {
            "" => 1000i128.pow(exp),
            "b" | "i" | "ib" => 1024i128.pow(exp),
            _ => return None,
        }
    };
    let Ok(n) = num.parse::<i128>() else {
        return Some(Err(()));
    };
    let n = if s.starts_with('-') { -n } else { n };
    Some(
        n.checked_mul(multiplier)
            .and_then(|v| i64::try_from(v).ok())
            .ok_or(()),
    )
}

/// `-?digits.digits`
fn is_float(s: &str) -> bool {
    let s = s.strip_prefix('-').unwrap_or(s);
    match s.split_once('.') {
        Some((int, frac)) => {
            !int.is_empty()
                && !frac.is_empty()
                && int.bytes().all(|b| b.is_ascii_digit())
                && frac.bytes().all(|b| b.is_ascii_digit())
        }
        None => false,
    }
}

/// `YYYY-MM-DDTHH:MM:SSZ`, digits where digits go.
fn is_datetime_shape(s: &str) -> bool {
    const SHAPE: &[u8] = b"0000-00-00T00:00:00Z";
    s.len() == SHAPE.len()
        && s.bytes().zip(SHAPE).all(|(b, &f)| {
            if f == b'0' {
                b.is_ascii_digit()
            } else {
                b == f
            }
        })
}

fn valid_datetime(s: &str) -> bool {
    let num =
        |r: std::ops::Range<usize>| s.get(r).and_then(|t| t.parse::<u32>().ok()).unwrap_or(99);
    let (year, month, day) = (num(0..4), num(5..7), num(8..10));
    let (hour, minute, second) = (num(11..13), num(14..16), num(17..19));
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let days = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return false,
    };
    (1..=days).contains(&day) && hour < 24 && minute < 60 && second < 60
}

fn push_char(buf: &mut Vec<u8>, c: char) {
    let mut tmp = [0u8; 4];
    buf.extend_from_slice(c.encode_utf8(&mut tmp).as_bytes());
}

/// `\xHH` escapes can produce any bytes; the result must still be UTF-8.
fn into_string(buf: Vec<u8>, start: &Pos) -> Result<String, ConfigError> {
    String::from_utf8(buf).map_err(|_| {
        ConfigError::at(
            start,
            "the \\xHH escapes in this string do not form valid UTF-8",
        )
    })
}
