//! Route URLs: `nats-route://user:pass@host:port`, `nats://host:port` or bare `host:port`.
//!
//! The host stays a name: it is resolved at every connect attempt, so a seed such as a
//! StatefulSet peer's DNS name that does not exist yet is simply retried.

use std::fmt;

/// Route port when a URL names none.
pub const DEFAULT_ROUTE_PORT: u16 = 6222;

#[derive(Clone, PartialEq, Eq)]
pub struct RouteUrl {
    pub host: String,
    pub port: u16,
    pub user: Option<String>,
    pub pass: Option<String>,
}

impl fmt::Debug for RouteUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print the password.
        write!(f, "RouteUrl({self})")
    }
}

impl fmt::Display for RouteUrl {
    /// `nats-route://[user@]host:port` (the password is never shown).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("nats-route://")?;
        if let Some(u) = &self.user {
            write!(f, "{u}@")?;
        }
        write!(f, "{}", self.host_port())
    }
}

impl RouteUrl {
    /// `host:port`, with brackets around an IPv6 literal.
    pub fn host_port(&self) -> String {
        join_host_port(&self.host, self.port)
    }

    pub fn parse(s: &str) -> Result<RouteUrl, String> {
        let raw = s.trim();
        let rest = match raw.split_once("://") {
            Some((scheme, rest)) => {
                if !matches!(
                    scheme.to_ascii_lowercase().as_str(),
                    "nats-route" | "nats" | "route" | "tls"
                ) {
                    return Err(format!("route URL {raw:?}: unsupported scheme {scheme:?}"));
                }
                rest
            }
            None => raw,
        };
        let rest = rest.trim_end_matches('/');
        let (userinfo, hostport) = match rest.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, rest),
        };
        let (user, pass) = match userinfo {
            Some(u) => match u.split_once(':') {
                Some((a, b)) => (Some(percent_decode(a)), Some(percent_decode(b))),
                None => (Some(percent_decode(u)), None),
            },
            None => (None, None),
        };
        let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
            let (h, after) = v6
                .split_once(']')
                .ok_or_else(|| format!("route URL {raw:?}: unterminated IPv6 address"))?;
            let port = match after.strip_prefix(':') {
                Some(p) => parse_port(raw, p)?,
                None => DEFAULT_ROUTE_PORT,
            };
            (h.to_string(), port)
        } else {
            match hostport.rsplit_once(':') {
                Some((h, p)) => (h.to_string(), parse_port(raw, p)?),
                None => (hostport.to_string(), DEFAULT_ROUTE_PORT),
            }
        };
        if host.is_empty() {
            return Err(format!("route URL {raw:?}: no host"));
        }
        Ok(RouteUrl {
            host,
            port,
            user,
            pass,
        })
    }
}

/// `host:port`, with brackets around an IPv6 literal (a name or IP text, unlike
/// [`crate::server::host_port`] which takes a parsed address).
pub fn join_host_port(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

fn parse_port(raw: &str, p: &str) -> Result<u16, String> {
    p.parse::<u16>()
        .ok()
        .filter(|p| *p > 0)
        .ok_or_else(|| format!("route URL {raw:?}: invalid port {p:?}"))
}

/// `%XX` escapes in user names and passwords (`p%40ss` is `p@ss`).
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let (Some(hi), Some(lo)) = (hex(b[i + 1]), hex(b[i + 2]))
        {
            out.push(hi << 4 | lo);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(c: u8) -> Option<u8> {
    (c as char).to_digit(16).map(|d| d as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms() {
        let u = RouteUrl::parse("nats-route://ruser:p%40ss@nm-0.nm-headless.ns.svc:6222").unwrap();
        assert_eq!(u.host, "nm-0.nm-headless.ns.svc");
        assert_eq!(u.port, 6222);
        assert_eq!(u.user.as_deref(), Some("ruser"));
        assert_eq!(u.pass.as_deref(), Some("p@ss"));
        assert_eq!(
            u.to_string(),
            "nats-route://ruser@nm-0.nm-headless.ns.svc:6222"
        );
        assert!(!format!("{u:?}").contains("p@ss"));
        let u = RouteUrl::parse("nats://127.0.0.1:7001/").unwrap();
        assert_eq!((u.host.as_str(), u.port, u.user), ("127.0.0.1", 7001, None));
        let u = RouteUrl::parse("10.0.0.1").unwrap();
        assert_eq!(u.port, DEFAULT_ROUTE_PORT);
        let u = RouteUrl::parse("nats-route://[::1]:7000").unwrap();
        assert_eq!((u.host.as_str(), u.port), ("::1", 7000));
        assert_eq!(u.host_port(), "[::1]:7000");
        assert!(RouteUrl::parse("http://x:1").is_err());
        assert!(RouteUrl::parse("nats://x:0").is_err());
        assert!(RouteUrl::parse("nats://x:abc").is_err());
        assert!(RouteUrl::parse("nats://:4222").is_err());
    }
}
