//! The value tree a config file parses into, and its pretty-printer.
//!
//! Maps keep their entries in file order (so errors come out in the order a reader sees them)
//! and keep each key's spelling; lookups ignore case because nats-server matches option names
//! case-insensitively. The printer writes text this module parses back to the same tree, which
//! lets tooling show an effective config and lets the tests check the parser against it.

use std::fmt::{self, Write as _};

use super::Pos;

/// A config value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Map(Map),
    Array(Vec<Item>),
    String(String),
    Integer(i64),
    Float(f64),
    Bool(bool),
    /// An ISO-8601 Zulu datetime, as written (`2016-05-04T18:53:41Z`).
    Datetime(String),
}

/// A value and where it starts. A value that came from a variable reference starts at the
/// reference.
#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    pub value: Value,
    pub pos: Pos,
}

/// One `key value` pair of a map.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// The key as spelled in the file.
    pub key: String,
    pub key_pos: Pos,
    pub value: Item,
    /// The key was referenced as a `$variable`. nats-server does not report such a key as
    /// unknown (it may exist only to be referenced), and neither should the options layer.
    pub used_as_variable: bool,
}

/// An ordered map. A key defined twice with the same spelling keeps only the later value (in
/// the later place), as in nats-server; keys differing only in case are kept apart, and
/// [`Map::get`] then finds the later one.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Map {
    entries: Vec<Entry>,
}

impl Map {
    pub fn new() -> Map {
        Map::default()
    }

    /// The entry for `key`, matched case-insensitively; the last one defined wins.
    pub fn get(&self, key: &str) -> Option<&Entry> {
        self.entries
            .iter()
            .rev()
            .find(|e| e.key.eq_ignore_ascii_case(key))
    }

    /// The value for `key`, matched case-insensitively.
    pub fn value(&self, key: &str) -> Option<&Item> {
        self.get(key).map(|e| &e.value)
    }

    /// Whether the entry for `key` (case-insensitive) was referenced as a variable. The
    /// options layer uses this to let an otherwise unknown key through, as nats-server does.
    pub fn is_used_as_variable(&self, key: &str) -> bool {
        self.get(key).is_some_and(|e| e.used_as_variable)
    }

    /// Adds an entry at the end, first removing an entry with exactly the same key.
    pub fn insert(&mut self, entry: Entry) {
        self.entries.retain(|e| e.key != entry.key);
        self.entries.push(entry);
    }

    /// The entries in file order.
    pub fn iter(&self) -> std::slice::Iter<'_, Entry> {
        self.entries.iter()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The most recent entry with exactly this key (variable names are case-sensitive).
    pub(crate) fn get_exact_mut(&mut self, key: &str) -> Option<&mut Entry> {
        self.entries.iter_mut().rev().find(|e| e.key == key)
    }

    pub(crate) fn iter_mut(&mut self) -> std::slice::IterMut<'_, Entry> {
        self.entries.iter_mut()
    }

    pub(crate) fn into_entries(self) -> Vec<Entry> {
        self.entries
    }
}

impl<'a> IntoIterator for &'a Map {
    type Item = &'a Entry;
    type IntoIter = std::slice::Iter<'a, Entry>;
    fn into_iter(self) -> Self::IntoIter {
        self.entries.iter()
    }
}

/// Prints a map as a config file: one `key: value` per line, nested maps and arrays indented.
/// Strings are always double-quoted. Keys are bare when they are plain words, otherwise quoted;
/// the format has no escapes in keys, so a key holding both `"` and `'` cannot be written back
/// exactly. Non-finite floats have no syntax and print as strings.
impl fmt::Display for Map {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = String::new();
        write_entries(&mut out, self, 0)?;
        f.write_str(&out)
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = String::new();
        write_value(&mut out, self, 0)?;
        f.write_str(&out)
    }
}

fn indent(out: &mut String, depth: usize) {
    for _ in 0..depth {
        out.push_str("  ");
    }
}

fn write_entries(out: &mut String, map: &Map, depth: usize) -> fmt::Result {
    for entry in map {
        indent(out, depth);
        write_key(out, &entry.key);
        out.push_str(": ");
        write_value(out, &entry.value.value, depth)?;
        out.push('\n');
    }
    Ok(())
}

fn write_key(out: &mut String, key: &str) {
    let plain = !key.is_empty()
        && !key.eq_ignore_ascii_case("include")
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '$'));
    if plain {
        out.push_str(key);
    } else if !key.contains('"') {
        out.push('"');
        out.push_str(key);
        out.push('"');
    } else {
        out.push('\'');
        out.push_str(key);
        out.push('\'');
    }
}

fn write_value(out: &mut String, value: &Value, depth: usize) -> fmt::Result {
    match value {
        Value::Map(map) if map.is_empty() => out.push_str("{}"),
        Value::Map(map) => {
            out.push_str("{\n");
            write_entries(out, map, depth + 1)?;
            indent(out, depth);
            out.push('}');
        }
        Value::Array(items) if items.is_empty() => out.push_str("[]"),
        Value::Array(items) => {
            out.push_str("[\n");
            for item in items {
                indent(out, depth + 1);
                write_value(out, &item.value, depth + 1)?;
                out.push('\n');
            }
            indent(out, depth);
            out.push(']');
        }
        Value::String(s) => write_string(out, s)?,
        Value::Integer(n) => write!(out, "{n}")?,
        Value::Float(x) if x.is_finite() => {
            // Rust prints floats without an exponent; the format needs a '.' to see a float.
            let text = x.to_string();
            out.push_str(&text);
            if !text.contains('.') {
                out.push_str(".0");
            }
        }
        Value::Float(x) => write_string(out, &x.to_string())?,
        Value::Bool(b) => write!(out, "{b}")?,
        Value::Datetime(d) => out.push_str(d),
    }
    Ok(())
}

fn write_string(out: &mut String, s: &str) -> fmt::Result {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_ascii_control() => write!(out, "\\x{:02x}", u32::from(c))?,
            c => out.push(c),
        }
    }
    out.push('"');
    Ok(())
}
