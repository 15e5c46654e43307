//! Client authentication. Today: a single token, which a client may present as `auth_token`
//! (what nats-server requires) or as the password (what our docs promise, for clients that only
//! have a user/password field). Secrets are compared in constant time and never logged.

/// Credentials a client sent in CONNECT.
#[derive(Debug, Default, Clone, Copy)]
pub struct Credentials<'a> {
    pub user: Option<&'a str>,
    pub pass: Option<&'a str>,
    pub token: Option<&'a str>,
}

/// How this server authenticates clients.
#[derive(Clone, Default)]
pub enum Authenticator {
    #[default]
    None,
    Token(String),
    /// nats-server's single `user`/`password` authorization.
    UserPass {
        user: String,
        pass: String,
    },
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Authenticator::None => f.write_str("None"),
            Authenticator::Token(_) => f.write_str("Token([REDACTED])"),
            Authenticator::UserPass { user, .. } => write!(f, "UserPass({user}, [REDACTED])"),
        }
    }
}

impl Authenticator {
    pub fn from_token(token: Option<&str>) -> Self {
        match token {
            Some(t) if !t.is_empty() => Authenticator::Token(t.to_string()),
            _ => Authenticator::None,
        }
    }

    /// From the options: a token wins; else a user and password.
    pub fn from_options(o: &crate::Options) -> Self {
        if let Some(t) = o.auth_token.as_deref().filter(|t| !t.is_empty()) {
            return Authenticator::Token(t.to_string());
        }
        match (&o.auth_user, &o.auth_pass) {
            (Some(user), Some(pass)) => Authenticator::UserPass {
                user: user.clone(),
                pass: pass.clone(),
            },
            _ => Authenticator::None,
        }
    }

    pub fn required(&self) -> bool {
        !matches!(self, Authenticator::None)
    }

    pub fn check(&self, c: &Credentials<'_>) -> bool {
        match self {
            Authenticator::None => true,
            Authenticator::Token(t) => {
                // Evaluate both comparisons so timing does not reveal which field matched.
                let by_token = c
                    .token
                    .is_some_and(|s| constant_time_eq(s.as_bytes(), t.as_bytes()));
                let by_pass = c
                    .pass
                    .is_some_and(|s| constant_time_eq(s.as_bytes(), t.as_bytes()));
                by_token | by_pass
            }
            Authenticator::UserPass { user, pass } => {
                let u = c
                    .user
                    .is_some_and(|s| constant_time_eq(s.as_bytes(), user.as_bytes()));
                let p = c
                    .pass
                    .is_some_and(|s| constant_time_eq(s.as_bytes(), pass.as_bytes()));
                u & p
            }
        }
    }
}

/// Compares two secrets in time that depends only on their lengths.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = (a.len() ^ b.len()) as u8 | u8::from(a.len() != b.len());
    for i in 0..a.len().max(b.len()) {
        let x = a.get(i).copied().unwrap_or(0);
        let y = b.get(i).copied().unwrap_or(0);
        diff |= x ^ y;
    }
    std::hint::black_box(diff) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_as_auth_token_or_password() {
        let a = Authenticator::from_token(Some("s3cr3t"));
        assert!(a.required());
        let ok = |token, pass| {
            a.check(&Credentials {
                user: None,
                pass,
                token,
            })
        };
        assert!(ok(Some("s3cr3t"), None));
        assert!(ok(None, Some("s3cr3t")));
        assert!(!ok(Some("wrong"), None));
        assert!(!ok(None, None));
        assert!(!ok(Some("s3cr3"), None));
        assert!(!ok(Some("s3cr3tt"), None));
    }

    #[test]
    fn user_and_password() {
        let a = Authenticator::UserPass {
            user: "derek".into(),
            pass: "T0pS3cr3t".into(),
        };
        let c = |user, pass| Credentials {
            user,
            pass,
            token: None,
        };
        assert!(a.check(&c(Some("derek"), Some("T0pS3cr3t"))));
        assert!(!a.check(&c(Some("derek"), Some("wrong"))));
        assert!(!a.check(&c(Some("other"), Some("T0pS3cr3t"))));
        assert!(!a.check(&c(None, None)));
        assert!(!format!("{a:?}").contains("T0pS3cr3t"));
    }

    #[test]
    fn no_auth_accepts_everyone_and_debug_hides_secret() {
        assert!(Authenticator::None.check(&Credentials::default()));
        assert!(!format!("{:?}", Authenticator::from_token(Some("xyz"))).contains("xyz"));
    }

    #[test]
    fn constant_time_eq_basics() {
        assert!(constant_time_eq(b"", b""));
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b""));
        assert!(!constant_time_eq(&[0], b""));
    }
}
