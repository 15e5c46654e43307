//! Client authentication: a token (which a client may present as `auth_token`, as nats-server
//! requires, or as the password, as our docs promise for clients that only have a user/password
//! field), a single user/password, or a list of users with permissions and an optional
//! `no_auth_user`. Passwords may be bcrypt hashes (`$2a$…`). Secrets are compared in constant
//! time and never logged.

/// Credentials a client sent in CONNECT.
#[derive(Debug, Default, Clone, Copy)]
pub struct Credentials<'a> {
    pub user: Option<&'a str>,
    pub pass: Option<&'a str>,
    pub token: Option<&'a str>,
}

/// One configured user.
#[derive(Clone, Debug)]
pub struct User {
    pub name: String,
    /// Plain text or a bcrypt hash (`$2a$…`, `$2b$…`, `$2y$…`).
    pub password: String,
    pub permissions: Option<std::sync::Arc<crate::permissions::Permissions>>,
}

/// Who a client authenticated as.
#[derive(Debug, Clone, Default)]
pub struct Authorized {
    pub user: Option<String>,
    pub permissions: Option<std::sync::Arc<crate::permissions::Permissions>>,
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
    /// `authorization { users = [...] }`, optionally with `no_auth_user`.
    Users {
        users: Vec<User>,
        no_auth_user: Option<String>,
    },
}

fn is_bcrypt(s: &str) -> bool {
    ["$2a$", "$2b$", "$2x$", "$2y$"]
        .iter()
        .any(|p| s.starts_with(p))
}

/// A password check: bcrypt when the stored secret is a hash, else constant-time equality.
pub fn password_ok(given: &str, stored: &str) -> bool {
    if is_bcrypt(stored) {
        bcrypt::verify(given, stored).unwrap_or(false)
    } else {
        constant_time_eq(given.as_bytes(), stored.as_bytes())
    }
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Authenticator::None => f.write_str("None"),
            Authenticator::Token(_) => f.write_str("Token([REDACTED])"),
            Authenticator::UserPass { user, .. } => write!(f, "UserPass({user}, [REDACTED])"),
            Authenticator::Users { users, .. } => write!(f, "Users({} users)", users.len()),
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

    /// From the options: a token wins; else a users list; else a user and password.
    pub fn from_options(o: &crate::Options) -> Self {
        if let Some(t) = o.auth_token.as_deref().filter(|t| !t.is_empty()) {
            return Authenticator::Token(t.to_string());
        }
        if !o.users.is_empty() {
            return Authenticator::Users {
                users: o.users.clone(),
                no_auth_user: o.no_auth_user.clone(),
            };
        }
        match (&o.auth_user, &o.auth_pass) {
            (Some(user), Some(pass)) => Authenticator::UserPass {
                user: user.clone(),
                pass: pass.clone(),
            },
            _ => Authenticator::None,
        }
    }

    /// Whether clients must authenticate (INFO `auth_required`). With `no_auth_user` they
    /// need not: a CONNECT without credentials binds to that user.
    pub fn required(&self) -> bool {
        match self {
            Authenticator::None => false,
            Authenticator::Users { no_auth_user, .. } => no_auth_user.is_none(),
            _ => true,
        }
    }

    /// Authenticates a client; `None` means an authorization violation.
    pub fn authorize(&self, c: &Credentials<'_>) -> Option<Authorized> {
        match self {
            Authenticator::Users {
                users,
                no_auth_user,
            } => {
                let (name, pass) = match (c.user, c.pass, c.token) {
                    (None, None, None) => {
                        let u = no_auth_user.as_deref()?;
                        let user = users.iter().find(|x| x.name == u)?;
                        return Some(Authorized {
                            user: Some(user.name.clone()),
                            permissions: user.permissions.clone(),
                        });
                    }
                    (Some(n), p, _) => (n, p.unwrap_or("")),
                    _ => return None,
                };
                let user = users
                    .iter()
                    .find(|x| constant_time_eq(x.name.as_bytes(), name.as_bytes()))?;
                password_ok(pass, &user.password).then(|| Authorized {
                    user: Some(user.name.clone()),
                    permissions: user.permissions.clone(),
                })
            }
            other => other.check(c).then(|| Authorized {
                user: c.user.map(str::to_string),
                permissions: None,
            }),
        }
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
                let p = c.pass.is_some_and(|s| password_ok(s, pass));
                u & p
            }
            Authenticator::Users { .. } => self.authorize(c).is_some(),
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
    fn users_with_bcrypt_and_no_auth_user() {
        let hash = bcrypt::hash("s3cret", 4).unwrap();
        let users = vec![
            User {
                name: "alice".into(),
                password: hash,
                permissions: None,
            },
            User {
                name: "bob".into(),
                password: "plain".into(),
                permissions: Some(std::sync::Arc::new(Default::default())),
            },
        ];
        let a = Authenticator::Users {
            users: users.clone(),
            no_auth_user: None,
        };
        assert!(a.required());
        let c = |user, pass| Credentials {
            user,
            pass,
            token: None,
        };
        assert_eq!(
            a.authorize(&c(Some("alice"), Some("s3cret")))
                .and_then(|x| x.user),
            Some("alice".into())
        );
        assert!(a.authorize(&c(Some("alice"), Some("wrong"))).is_none());
        assert!(
            a.authorize(&c(Some("bob"), Some("plain")))
                .unwrap()
                .permissions
                .is_some()
        );
        assert!(a.authorize(&c(None, None)).is_none());
        let a = Authenticator::Users {
            users,
            no_auth_user: Some("bob".into()),
        };
        assert!(!a.required());
        assert_eq!(
            a.authorize(&c(None, None)).and_then(|x| x.user),
            Some("bob".into())
        );
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
