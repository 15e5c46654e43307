//! The grammar: documents, entries, maps and arrays, plus the two things that reach outside
//! the text being parsed, `include` and `$variables`.
//!
//! A recursive-descent parser over [`Cursor`]. The maps being built are kept on a scope stack
//! because a variable resolves against keys defined earlier in the current or an enclosing
//! map, exactly what that stack holds at the moment the reference is read. Included files and
//! environment values are parsed by fresh parsers that share one [`Session`], which remembers
//! the files and environment variables being expanded so that cycles are refused instead of
//! recursing forever (nats-server overflows its stack on an include cycle).

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::lexer::{self, BareKind, Cursor};
use super::{ConfigError, Entry, Item, Map, Pos, Value};

/// How deeply maps and arrays may nest; deeper input is refused rather than risking the stack.
const MAX_NESTING: usize = 128;
/// How deeply includes may nest (cycles are caught separately).
const MAX_INCLUDE_DEPTH: usize = 32;
/// How deeply environment variables may refer to one another.
const MAX_ENV_DEPTH: usize = 32;

/// Reads and parses a config file, following its includes. `env` looks up environment
/// variables for `$NAME` references that no key defines (pass `&|k| std::env::var(k).ok()`).
pub fn parse_file(path: &Path, env: &dyn Fn(&str) -> Option<String>) -> Result<Map, ConfigError> {
    let bytes = fs::read(path).map_err(|e| ConfigError {
        pos: None,
        key: None,
        msg: format!("error opening config file: {}: {e}", path.display()),
    })?;
    let file: Arc<Path> = Arc::from(path);
    let text = utf8(bytes, &file)?;
    Session::new(env, &file).parse_document(&text, file)
}

/// Parses config text. `origin` names it in positions and is the base for relative includes;
/// it need not exist.
pub fn parse_str(
    text: &str,
    origin: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Map, ConfigError> {
    let file: Arc<Path> = Arc::from(origin);
    Session::new(env, &file).parse_document(text, file)
}

struct OpenFile {
    canonical: PathBuf,
    shown: Arc<Path>,
}

/// State shared by the parsers of one config: the files being read (outermost first), the
/// environment variables being expanded, and how deeply maps and arrays are nested across all
/// of them (each level is a few stack frames, so the limit must hold for the whole session).
struct Session<'e> {
    env: &'e dyn Fn(&str) -> Option<String>,
    files: Vec<OpenFile>,
    env_refs: Vec<String>,
    depth: usize,
}

impl<'e> Session<'e> {
    /// A session reading `root` (which need not exist on disk).
    fn new(env: &'e dyn Fn(&str) -> Option<String>, root: &Arc<Path>) -> Session<'e> {
        let canonical = fs::canonicalize(root).unwrap_or_else(|_| root.to_path_buf());
        Session {
            env,
            files: vec![OpenFile {
                canonical,
                shown: Arc::clone(root),
            }],
            env_refs: Vec::new(),
            depth: 0,
        }
    }

    fn parse_document(&mut self, text: &str, file: Arc<Path>) -> Result<Map, ConfigError> {
        let dir = base_dir(&file);
        Parser {
            session: self,
            cur: Cursor::new(text, file),
            dir,
            scopes: Vec::new(),
        }
        .document()
    }

    /// Reads the file an `include` at `at` names, refusing cycles.
    fn include(&mut self, dir: &Path, name: &str, at: &Pos) -> Result<Map, ConfigError> {
        let named = Path::new(name);
        let full = if named.is_absolute() {
            named.to_path_buf()
        } else {
            dir.join(named)
        };
        let shown: Arc<Path> = Arc::from(full.as_path());
        let canonical = fs::canonicalize(&full).map_err(|e| {
            ConfigError::at(
                at,
                format!(
                    "error opening include file '{name}': {}: {e}",
                    full.display()
                ),
            )
        })?;
        if let Some(i) = self.files.iter().position(|f| f.canonical == canonical) {
            let chain: Vec<String> = self.files[i..]
                .iter()
                .map(|f| f.shown.display().to_string())
                .chain(std::iter::once(full.display().to_string()))
                .collect();
            return Err(ConfigError::at(
                at,
                format!("include cycle: {}", chain.join(" -> ")),
            ));
        }
        if self.files.len() >= MAX_INCLUDE_DEPTH {
            return Err(ConfigError::at(
                at,
                format!("includes nested too deeply (more than {MAX_INCLUDE_DEPTH} files)"),
            ));
        }
        let bytes = fs::read(&full).map_err(|e| {
            ConfigError::at(
                at,
                format!(
                    "error opening include file '{name}': {}: {e}",
                    full.display()
                ),
            )
        })?;
        let text = utf8(bytes, &shown)?;
        self.files.push(OpenFile {
            canonical,
            shown: Arc::clone(&shown),
        });
        let result = self.parse_document(&text, shown);
        self.files.pop();
        result
    }

    /// Parses an environment variable's text as a single value.
    fn env_value(&mut self, name: &str, text: &str, dir: &Path) -> Result<Item, ConfigError> {
        let file: Arc<Path> = Arc::from(Path::new(&format!("${name}")));
        let mut p = Parser {
            session: self,
            cur: Cursor::new(text, file),
            dir: dir.to_path_buf(),
            scopes: Vec::new(),
        };
        if text.trim().is_empty() {
            // nats-server reads an empty variable as an empty string.
            return Ok(Item {
                value: Value::String(String::new()),
                pos: p.cur.pos(),
            });
        }
        p.cur.skip_blanks();
        let item = p.value(name)?;
        p.value_end(Some(name), Ctx::Top)?;
        p.cur.skip_trivia();
        if let Some(c) = p.cur.peek() {
            return Err(p.cur.error(format!(
                "unexpected '{}' after the value; an environment variable holds one value",
                c.escape_default()
            )));
        }
        Ok(item)
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Ctx {
    /// The top level of a document (also inside `{ … }` wrapping a whole file).
    Top,
    /// Inside a map value.
    Map,
}

struct Parser<'s, 'e, 'src> {
    session: &'s mut Session<'e>,
    cur: Cursor<'src>,
    /// The directory relative includes are resolved against.
    dir: PathBuf,
    /// The maps being built, outermost first; variables resolve against them.
    scopes: Vec<Map>,
}

impl Parser<'_, '_, '_> {
    fn document(mut self) -> Result<Map, ConfigError> {
        self.scopes.push(Map::new());
        // `{` at the top level wraps (part of) the file, as in JSON; it adds no nesting.
        let mut wrappers: Vec<Pos> = Vec::new();
        loop {
            self.cur.skip_trivia();
            match self.cur.peek() {
                None => break,
                Some('{') => {
                    wrappers.push(self.cur.pos());
                    self.cur.bump();
                }
                Some('}') => {
                    if wrappers.pop().is_none() {
                        return Err(self.cur.error("unexpected '}' with no '{' to close"));
                    }
                    self.cur.bump();
                }
                Some(_) => self.entry(Ctx::Top)?,
            }
        }
        if let Some(open) = wrappers.last() {
            return Err(self.cur.error(format!(
                "unexpected end of file: the '{{' at line {}, column {} is not closed",
                open.line, open.col
            )));
        }
        Ok(self.scopes.pop().unwrap_or_default())
    }

    /// One `key value` (or `include file`) entry of the current map, including what ends it.
    fn entry(&mut self, ctx: Ctx) -> Result<(), ConfigError> {
        match self.cur.peek() {
            Some(c @ (':' | '=')) => {
                return Err(self
                    .cur
                    .error(format!("unexpected key separator '{c}': a key is missing")));
            }
            Some(c @ ('[' | ']' | '{' | '}' | ',' | ';')) => {
                return Err(self.cur.error(format!("expected a key, found '{c}'")));
            }
            _ => {}
        }
        let key = self.cur.key()?;
        if !key.quoted && key.text.eq_ignore_ascii_case("include") {
            match self.cur.peek() {
                Some(' ' | '\t') => return self.include(ctx),
                Some('\n' | '\r') => {
                    return Err(self.cur.error("expected a file name after include"));
                }
                _ => {}
            }
        }
        // Whitespace, new lines included, may come between a key and its separator.
        self.cur.skip_whitespace();
        if matches!(self.cur.peek(), Some(':' | '=')) {
            self.cur.bump();
        }
        if ctx == Ctx::Top {
            self.cur.skip_blanks();
        } else {
            self.cur.skip_whitespace();
        }
        let value = self.value(&key.text)?;
        self.value_end(Some(&key.text), ctx)?;
        self.scope().insert(Entry {
            key: key.text,
            key_pos: key.pos,
            value,
            used_as_variable: false,
        });
        Ok(())
    }

    fn include(&mut self, ctx: Ctx) -> Result<(), ConfigError> {
        self.cur.skip_blanks();
        let at = self.cur.pos();
        let name = self.cur.include_path()?;
        if name.is_empty() {
            return Err(ConfigError::at(&at, "include needs a file name"));
        }
        let map = self.session.include(&self.dir, &name, &at)?;
        let scope = self.scope();
        for entry in map.into_entries() {
            scope.insert(entry);
        }
        self.value_end(None, ctx)
    }

    /// After a value (of `key`; `None` after an include): blanks, an optional comment, then
    /// what may end an entry here.
    fn value_end(&mut self, key: Option<&str>, ctx: Ctx) -> Result<(), ConfigError> {
        self.cur.skip_blanks();
        if self.cur.at_comment() {
            self.cur.skip_comment();
        }
        match self.cur.peek() {
            None | Some('\n' | '\r' | '}') => Ok(()),
            Some(';' | ',') => {
                self.cur.bump();
                Ok(())
            }
            Some(c) => {
                let what = match key {
                    Some(key) => format!("the value of '{key}'"),
                    None => "the include file name".to_owned(),
                };
                let msg = format!(
                    "expected a new line, ',' or ';' after {what}{}, found '{}'",
                    if ctx == Ctx::Map {
                        " (or '}' to end the map)"
                    } else {
                        ""
                    },
                    c.escape_default()
                );
                let pos = self.cur.pos();
                Err(match key {
                    Some(key) => ConfigError::for_key(&pos, key, msg),
                    None => ConfigError::at(&pos, msg),
                })
            }
        }
    }

    /// A value; the cursor is on its first character.
    fn value(&mut self, key: &str) -> Result<Item, ConfigError> {
        let pos = self.cur.pos();
        let value = match self.cur.peek() {
            None => {
                return Err(ConfigError::for_key(
                    &pos,
                    key,
                    format!("expected a value for '{key}', found the end of the file"),
                ));
            }
            Some('\n' | '\r') => {
                return Err(ConfigError::for_key(
                    &pos,
                    key,
                    format!("expected a value for '{key}', found a new line"),
                ));
            }
            Some(c @ (',' | ';' | ']' | '}')) => {
                return Err(ConfigError::for_key(
                    &pos,
                    key,
                    format!("expected a value for '{key}', found '{c}'"),
                ));
            }
            Some('[') => self.array(key)?,
            Some('{') => self.map(key)?,
            Some('"') => Value::String(self.cur.double_quoted()?),
            Some('\'') => Value::String(self.cur.single_quoted()?),
            Some('(') => Value::String(self.cur.block()?),
            Some(_) => {
                let bare = self.cur.bare()?;
                match lexer::classify(&bare)? {
                    BareKind::Value(v) => v,
                    BareKind::Variable(name) => return self.variable(&name, pos, key),
                }
            }
        };
        Ok(Item { value, pos })
    }

    fn nest(&mut self, key: &str) -> Result<(), ConfigError> {
        self.session.depth += 1;
        if self.session.depth > MAX_NESTING {
            return Err(ConfigError::for_key(
                &self.cur.pos(),
                key,
                format!("maps and arrays nested too deeply (more than {MAX_NESTING} levels)"),
            ));
        }
        Ok(())
    }

    fn array(&mut self, key: &str) -> Result<Value, ConfigError> {
        self.nest(key)?;
        let open = self.cur.pos();
        self.cur.bump();
        let mut items = Vec::new();
        loop {
            self.cur.skip_trivia();
            match self.cur.peek() {
                None => return Err(self.unclosed("array", key, &open)),
                Some(']') => {
                    self.cur.bump();
                    break;
                }
                Some(',') => {
                    return Err(ConfigError::for_key(
                        &self.cur.pos(),
                        key,
                        format!("unexpected ',' in the array '{key}': an element is missing"),
                    ));
                }
                Some(_) => {}
            }
            items.push(self.value(key)?);
            self.cur.skip_blanks();
            if self.cur.at_comment() {
                self.cur.skip_comment();
            }
            match self.cur.peek() {
                None => return Err(self.unclosed("array", key, &open)),
                Some(']') => {
                    self.cur.bump();
                    break;
                }
                Some(',' | '\n' | '\r') => {
                    self.cur.bump();
                }
                Some(c) => {
                    return Err(ConfigError::for_key(
                        &self.cur.pos(),
                        key,
                        format!(
                            "expected ',', a new line or ']' after an element of the array \
                             '{key}', found '{}'",
                            c.escape_default()
                        ),
                    ));
                }
            }
        }
        self.session.depth -= 1;
        Ok(Value::Array(items))
    }

    fn map(&mut self, key: &str) -> Result<Value, ConfigError> {
        self.nest(key)?;
        let open = self.cur.pos();
        self.cur.bump();
        self.scopes.push(Map::new());
        loop {
            self.cur.skip_trivia();
            match self.cur.peek() {
                None => return Err(self.unclosed("map", key, &open)),
                Some('}') => {
                    self.cur.bump();
                    break;
                }
                Some(_) => self.entry(Ctx::Map)?,
            }
        }
        self.session.depth -= 1;
        Ok(Value::Map(self.scopes.pop().unwrap_or_default()))
    }

    fn unclosed(&self, what: &str, key: &str, open: &Pos) -> ConfigError {
        ConfigError::for_key(
            &self.cur.pos(),
            key,
            format!(
                "unexpected end of file in the {what} '{key}' that starts at line {}, column {}",
                open.line, open.col
            ),
        )
    }

    /// The map entries are being added to.
    fn scope(&mut self) -> &mut Map {
        if self.scopes.is_empty() {
            self.scopes.push(Map::new());
        }
        let last = self.scopes.len() - 1;
        &mut self.scopes[last]
    }

    /// Resolves `$name` read at `pos` (the value of `key`): a key defined earlier in this or
    /// an enclosing map, else an environment variable parsed as a value.
    fn variable(&mut self, name: &str, pos: Pos, key: &str) -> Result<Item, ConfigError> {
        for scope in self.scopes.iter_mut().rev() {
            if let Some(entry) = scope.get_exact_mut(name) {
                entry.used_as_variable = true;
                return Ok(Item {
                    value: entry.value.value.clone(),
                    pos,
                });
            }
        }
        let outermost = self.session.env_refs.is_empty();
        if let Some(i) = self.session.env_refs.iter().position(|r| r == name) {
            let chain: Vec<String> = self.session.env_refs[i..]
                .iter()
                .chain(std::iter::once(&name.to_owned()))
                .map(|r| format!("${r}"))
                .collect();
            return Err(ConfigError::for_key(
                &pos,
                key,
                format!("variable reference cycle: {}", chain.join(" -> ")),
            ));
        }
        let Some(text) = (self.session.env)(name) else {
            return Err(ConfigError::for_key(
                &pos,
                key,
                format!(
                    "variable reference for '{name}' on line {} can not be found",
                    pos.line
                ),
            ));
        };
        if self.session.env_refs.len() >= MAX_ENV_DEPTH {
            return Err(ConfigError::for_key(
                &pos,
                key,
                format!("environment variables refer to each other too deeply (at ${name})"),
            ));
        }
        self.session.env_refs.push(name.to_owned());
        let result = self.session.env_value(name, &text, &self.dir);
        self.session.env_refs.pop();
        match result {
            Ok(mut item) => {
                relocate(&mut item, &pos);
                Ok(item)
            }
            Err(inner) if outermost => Err(ConfigError::for_key(
                &pos,
                key,
                format!(
                    "variable reference for '{name}' on line {} could not be parsed: {inner}",
                    pos.line
                ),
            )),
            Err(inner) => Err(inner),
        }
    }
}

/// Points a value read from an environment variable, and everything inside it, at the
/// reference: the variable's text has no place in any file.
fn relocate(item: &mut Item, pos: &Pos) {
    item.pos = pos.clone();
    match &mut item.value {
        Value::Array(items) => items.iter_mut().for_each(|i| relocate(i, pos)),
        Value::Map(map) => {
            for entry in map.iter_mut() {
                entry.key_pos = pos.clone();
                relocate(&mut entry.value, pos);
            }
        }
        _ => {}
    }
}

fn base_dir(file: &Path) -> PathBuf {
    match file.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// The file's text, or an error at the first byte that is not UTF-8.
fn utf8(bytes: Vec<u8>, file: &Arc<Path>) -> Result<String, ConfigError> {
    String::from_utf8(bytes).map_err(|e| {
        let valid = &e.as_bytes()[..e.utf8_error().valid_up_to()];
        let valid = std::str::from_utf8(valid).unwrap_or_default();
        let line = valid.matches('\n').count() + 1;
        let col = valid.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        let pos = Pos {
            file: Arc::clone(file),
            line: u32::try_from(line).unwrap_or(u32::MAX),
            col: u32::try_from(col).unwrap_or(u32::MAX),
        };
        ConfigError::at(&pos, "the file is not valid UTF-8")
    })
}
