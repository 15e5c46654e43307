//! Query-string decoding with nats-server's (Go's strconv) value syntax and error messages.

pub struct Query {
    pairs: Vec<(String, String)>,
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                let hex = std::str::from_utf8(&b[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(v) => {
                        out.push(v);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl Query {
    pub fn parse(q: &str) -> Query {
        let pairs = q
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|p| match p.split_once('=') {
                Some((k, v)) => (percent_decode(k), percent_decode(v)),
                None => (percent_decode(p), String::new()),
            })
            .collect();
        Query { pairs }
    }

    /// The first value of `key`, or "" (Go's `Query().Get`).
    pub fn get(&self, key: &str) -> &str {
        self.pairs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .unwrap_or("")
    }

    /// Go's `strconv.ParseBool`; absent or empty is false.
    pub fn bool(&self, key: &str) -> Result<bool, String> {
        match self.get(key) {
            "" => Ok(false),
            "1" | "t" | "T" | "TRUE" | "true" | "True" => Ok(true),
            "0" | "f" | "F" | "FALSE" | "false" | "False" => Ok(false),
            v => Err(format!(
                "Error decoding boolean for '{key}': strconv.ParseBool: parsing \"{v}\": invalid syntax"
            )),
        }
    }

    /// Go's `strconv.Atoi` (sign allowed) and its error texts.
    pub fn int(&self, key: &str) -> Result<i64, String> {
        let v = self.get(key);
        if v.is_empty() {
            return Ok(0);
        }
        let digits = v.strip_prefix(['+', '-']).unwrap_or(v);
        let why = if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            "invalid syntax"
        } else {
            match v.parse::<i64>() {
                Ok(n) => return Ok(n),
                Err(_) => "value out of range",
            }
        };
        Err(format!(
            "Error decoding int for '{key}': strconv.Atoi: parsing \"{v}\": {why}"
        ))
    }

    /// Go's `strconv.ParseUint` (no sign) and its error texts.
    pub fn uint(&self, key: &str) -> Result<u64, String> {
        let v = self.get(key);
        if v.is_empty() {
            return Ok(0);
        }
        let why = if !v.bytes().all(|b| b.is_ascii_digit()) {
            "invalid syntax"
        } else {
            match v.parse::<u64>() {
                Ok(n) => return Ok(n),
                Err(_) => "value out of range",
            }
        };
        Err(format!(
            "Error decoding uint64 for '{key}': strconv.ParseUint: parsing \"{v}\": {why}"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_like_go() {
        let q = Query::parse("subs=detail&limit=5&x=%41+b&flag");
        assert_eq!(q.get("subs"), "detail");
        assert_eq!(q.int("limit"), Ok(5));
        assert_eq!(q.get("x"), "A b");
        assert_eq!(q.get("flag"), "");
        assert_eq!(q.get("missing"), "");
        assert_eq!(Query::parse("a=T").bool("a"), Ok(true));
        assert_eq!(
            Query::parse("a=yes").bool("a"),
            Err("Error decoding boolean for 'a': strconv.ParseBool: parsing \"yes\": invalid syntax".into())
        );
        assert!(Query::parse("limit=x").int("limit").is_err());
        assert!(Query::parse("cid=-1").uint("cid").is_err());
        assert!(Query::parse("cid=%2B5").uint("cid").is_err());
        assert_eq!(Query::parse("offset=-3").int("offset"), Ok(-3));
        assert!(
            Query::parse("limit=99999999999999999999")
                .int("limit")
                .unwrap_err()
                .ends_with("value out of range")
        );
        assert!(Query::parse("cid=%2B5").uint("cid").is_err());
        assert_eq!(Query::parse("offset=-3").int("offset"), Ok(-3));
        assert!(
            Query::parse("limit=99999999999999999999")
                .int("limit")
                .unwrap_err()
                .ends_with("value out of range")
        );
        assert_eq!(Query::parse("p=%zz%").get("p"), "%zz%");
    }
}
