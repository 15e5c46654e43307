//! Applying a parsed config file to [`Options`]: which nats-server keys nats-mini honours,
//! which it accepts with a warning, and which it refuses.
//!
//! - Keys nats-server does not know are errors (`unknown field "x"`), as in nats-server.
//! - Keys of nats-server features nats-mini lacks and whose silent omission would drop data
//!   guarantees or open access (JetStream, accounts, operator mode, mappings, nkey users) are
//!   refused with a message naming the key.
//! - Listener blocks for protocols nats-mini does not serve (websocket, mqtt, gateway,
//!   leafnodes) are accepted with a warning naming them: the official clients' test harnesses
//!   put them in every config they generate.
//!
//! Every error and warning carries file, line, column and key.

use super::{ConfigError, Entry, Item, Map, Value, Warning};
use crate::auth::User;
use crate::options::{LogLevel, Options, parse_host_port};
use crate::permissions::{Permissions, PubPerms, ResponsePerms, SubEntry, SubPerms};
use std::sync::Arc;
use std::time::Duration;

/// nats-server refuses a lame-duck duration below this.
const MIN_LAME_DUCK_DURATION: Duration = Duration::from_secs(30);

/// Keys refused because nats-mini does not implement them (yet) and ignoring them is unsafe.
const REFUSED: &[(&str, &str)] = &[
    (
        "jetstream",
        "JetStream is not supported by nats-mini (it is a core NATS server)",
    ),
    (
        "accounts",
        "multiple accounts are not supported by nats-mini",
    ),
    (
        "operator",
        "operator mode (JWT) is not supported by nats-mini",
    ),
    (
        "trusted",
        "operator mode (JWT) is not supported by nats-mini",
    ),
    (
        "trusted_keys",
        "operator mode (JWT) is not supported by nats-mini",
    ),
    (
        "resolver",
        "operator mode (JWT) is not supported by nats-mini",
    ),
    (
        "resolver_preload",
        "operator mode (JWT) is not supported by nats-mini",
    ),
    (
        "system_account",
        "a system account is not supported by nats-mini",
    ),
    (
        "mappings",
        "subject mappings are not supported by nats-mini",
    ),
];

/// Listener blocks accepted with a warning.
const IGNORED_LISTENERS: &[&str] = &["websocket", "mqtt", "gateway", "leafnodes", "leaf"];

/// Keys nats-server knows that nats-mini accepts without acting on them.
const ACCEPTED_NOOP: &[&str] = &[
    "server_tags",
    "syslog",
    "remote_syslog",
    "logtime_utc",
    "trace_verbose",
    "log_size_limit",
    "logfile_max_num",
    "max_traced_msg_len",
    "connect_error_reports",
    "reconnect_error_reports",
    "prof_port",
    "no_header_support",
    "disable_sublist_cache",
    "no_sublist_cache",
    "max_sub_tokens",
    "write_timeout",
    "no_fast_producer_stall",
    "store_dir",
];

/// nats-server's error for a key it does not know, at the key.
fn unknown_field(e: &Entry) -> ConfigError {
    ConfigError::for_key(
        &e.key_pos,
        &e.key.to_ascii_lowercase(),
        format!("unknown field \"{}\"", e.key),
    )
}

/// A timeout given as seconds (integer or float) or as a duration string.
fn seconds_or_duration(
    v: &Item,
    k: &str,
    warnings: &mut Vec<Warning>,
) -> Result<Duration, ConfigError> {
    match &v.value {
        Value::Integer(n) => Ok(Duration::from_secs(u64::try_from(*n).unwrap_or(0))),
        Value::Float(f) if *f >= 0.0 => Ok(Duration::from_secs_f64(*f)),
        _ => duration_of(v, k, warnings),
    }
}

fn err(item: &Item, key: &str, msg: impl Into<String>) -> ConfigError {
    ConfigError::for_key(&item.pos, key, msg)
}

fn warn(e: &Entry, msg: impl Into<String>) -> Warning {
    Warning {
        pos: e.key_pos.clone(),
        key: e.key.clone(),
        msg: msg.into(),
    }
}

fn usize_of(item: &Item, key: &str) -> Result<usize, ConfigError> {
    let n = item.as_size(key)?;
    usize::try_from(n).map_err(|_| err(item, key, format!("{key}: value too large")))
}

fn duration_of(
    item: &Item,
    key: &str,
    warnings: &mut Vec<Warning>,
) -> Result<Duration, ConfigError> {
    let (d, w) = item.as_duration(key)?;
    warnings.extend(w);
    Ok(d)
}

fn port_of(item: &Item, key: &str) -> Result<u16, ConfigError> {
    let n = item.as_int(key)?;
    if n == -1 {
        return Ok(0);
    }
    u16::try_from(n).map_err(|_| err(item, key, format!("{key}: invalid port {n}")))
}

fn host_port_of(item: &Item, key: &str, default_port: u16) -> Result<(String, u16), ConfigError> {
    match &item.value {
        Value::Integer(_) => Ok(("0.0.0.0".into(), port_of(item, key)?)),
        Value::String(s) => {
            parse_host_port(s, default_port).map_err(|e| err(item, key, format!("{key}: {e}")))
        }
        _ => Err(err(
            item,
            key,
            format!("{key}: expected HOST:PORT or a port"),
        )),
    }
}

/// Applies every key of `map` to `opts`. Returns the warnings to print (fatal under `-t`).
pub fn apply(map: &Map, opts: &mut Options) -> Result<Vec<Warning>, ConfigError> {
    let mut warnings = Vec::new();
    let mut http_host: Option<String> = None;
    let mut http_port: Option<u16> = None;
    let mut https_port: Option<Option<u16>> = None;
    for e in map.iter() {
        let key = e.key.to_ascii_lowercase();
        let v = &e.value;
        let k = key.as_str();
        match k {
            "listen" => {
                let (h, p) = host_port_of(v, k, opts.port)?;
                opts.host = h;
                opts.port = p;
            }
            "host" | "net" => opts.host = v.as_str(k)?.to_string(),
            "port" => opts.port = port_of(v, k)?,
            "http" | "monitor" => {
                let (h, p) = host_port_of(v, k, 8222)?;
                http_host = Some(h);
                http_port = Some(p);
            }
            "http_port" | "monitor_port" => http_port = Some(port_of(v, k)?),
            // As in nats-server, `https` and `http` share the host; the port says which.
            "https" => {
                let (h, p) = host_port_of(v, k, 8222)?;
                http_host = Some(h);
                https_port = Some(Some(p));
            }
            // `0` turns HTTPS monitoring off, `-1` picks a free port (nats-server's meaning).
            "https_port" => {
                https_port = Some(match v.as_int(k)? {
                    0 => None,
                    _ => Some(port_of(v, k)?),
                })
            }
            "http_base_path" => opts.http_base_path = v.as_str(k)?.to_string(),
            "server_name" => {
                let name = v.as_str(k)?;
                if name.contains(char::is_whitespace) {
                    return Err(err(v, k, "server_name cannot contain spaces"));
                }
                opts.server_name = Some(name.to_string());
            }
            "client_advertise" => opts.client_advertise = Some(v.as_str(k)?.to_string()),
            "ports_file_dir" => opts.ports_file_dir = Some(v.as_str(k)?.into()),
            "max_connections" | "max_conn" => {
                // nats-server: 0 in a config file means "reject everyone".
                let n = v.as_int(k)?;
                opts.max_conns = usize::try_from(n.max(0)).unwrap_or(0);
            }
            "max_control_line" => opts.max_control_line = usize_of(v, k)?,
            "max_payload" => opts.max_payload = usize_of(v, k)?,
            // `max_pending_size` is the classic gnatsd spelling, still in sample configs;
            // nats-server 2.15 refuses it, nats-mini takes it as an alias.
            "max_pending" | "max_pending_size" => opts.max_pending = usize_of(v, k)?,
            "max_subscriptions" | "max_subs" => opts.max_subscriptions = usize_of(v, k)?,
            "ping_interval" => opts.ping_interval = duration_of(v, k, &mut warnings)?,
            "ping_max" => {
                let n = v.as_int(k)?;
                opts.ping_max =
                    u32::try_from(n).map_err(|_| err(v, k, format!("{k}: invalid value {n}")))?;
            }
            "write_deadline" => opts.write_deadline = duration_of(v, k, &mut warnings)?,
            // nats-mini's own: see crate::conn::busy_poll.
            "busy_poll" => opts.busy_poll = duration_of(v, k, &mut warnings)?,
            "authorization" => apply_authorization(v.as_map(k)?, opts, &mut warnings)?,
            "cluster" => apply_cluster(v.as_map(k)?, opts, &mut warnings)?,
            "lame_duck_duration" => {
                let d = parse_lame_duck(v, k)?;
                if d < MIN_LAME_DUCK_DURATION {
                    return Err(err(
                        v,
                        k,
                        format!("invalid lame_duck_duration of {d:?}, minimum is 30 seconds"),
                    ));
                }
                opts.lame_duck_duration = d;
            }
            "lame_duck_grace_period" => opts.lame_duck_grace_period = parse_lame_duck(v, k)?,
            "debug" => {
                if v.as_bool(k)? && opts.log_level < LogLevel::Debug {
                    opts.log_level = LogLevel::Debug;
                }
            }
            "trace" => {
                if v.as_bool(k)? {
                    opts.log_level = LogLevel::Trace;
                }
            }
            "logtime" => opts.logtime = v.as_bool(k)?,
            "log_file" | "logfile" => opts.log_file = Some(v.as_str(k)?.into()),
            "pid_file" | "pidfile" => opts.pid_file = Some(v.as_str(k)?.into()),
            "no_auth_user" => opts.no_auth_user = Some(v.as_str(k)?.to_string()),
            "tls" => opts.tls = Some(parse_tls(v.as_map(k)?, &mut warnings)?),
            _ if IGNORED_LISTENERS.contains(&k) => {
                warnings.push(warn(
                    e,
                    format!("{k}: nats-mini does not serve this listener; the block is ignored"),
                ));
            }
            _ if ACCEPTED_NOOP.contains(&k) => {}
            _ => {
                if let Some((_, why)) = REFUSED.iter().find(|(r, _)| *r == k) {
                    return Err(ConfigError::for_key(&e.key_pos, k, format!("{k}: {why}")));
                }
                if e.used_as_variable {
                    continue;
                }
                return Err(unknown_field(e));
            }
        }
    }
    // `https: HOST:PORT` sets the shared host only; plain HTTP needs a port of its own.
    if http_port.is_some() {
        let host = http_host.clone().unwrap_or_else(|| opts.host.clone());
        opts.http = Some((host, http_port.unwrap_or(8222)));
        opts.http_explicit = true;
    }
    if let Some(p) = https_port {
        opts.https = p.map(|p| (http_host.unwrap_or_else(|| opts.host.clone()), p));
    }
    Ok(warnings)
}

/// `lame_duck_*` accept duration strings only, as in nats-server.
fn parse_lame_duck(v: &Item, k: &str) -> Result<Duration, ConfigError> {
    let s = v.as_str(k)?;
    super::parse_go_duration(s).map_err(|e| err(v, k, format!("error parsing {k}: {e}")))
}

/// A secret or user name as text. `$VAR` values from the environment are parsed as config
/// values, so a numeric token such as `12345` arrives as an integer: take it as its digits.
fn secret_text(v: &Item, k: &str) -> Result<String, ConfigError> {
    match &v.value {
        Value::Integer(n) => Ok(n.to_string()),
        _ => v.as_str(k).map(str::to_string),
    }
}

fn apply_authorization(
    map: &Map,
    opts: &mut Options,
    warnings: &mut Vec<Warning>,
) -> Result<(), ConfigError> {
    let mut users: Option<&Item> = None;
    let mut default_perms: Option<Permissions> = None;
    for e in map.iter() {
        let k = e.key.to_ascii_lowercase();
        let k = k.as_str();
        let v = &e.value;
        match k {
            "token" => opts.auth_token = Some(secret_text(v, k)?),
            "user" | "username" => opts.auth_user = Some(secret_text(v, k)?),
            "password" | "pass" => opts.auth_pass = Some(secret_text(v, k)?),
            "timeout" => opts.auth_timeout = seconds_or_duration(v, k, warnings)?,
            "users" => users = Some(v),
            "permissions" | "default_permissions" => default_perms = Some(parse_permissions(v, k)?),
            _ if e.used_as_variable => {}
            _ => {
                return Err(unknown_field(e));
            }
        }
    }
    if let Some(list) = users {
        if opts.auth_token.is_some() {
            return Err(err(
                list,
                "users",
                "authorization: Can not have a token and a users array",
            ));
        }
        if opts.auth_user.is_some() {
            return Err(err(
                list,
                "users",
                "authorization: Can not have a single user/pass and a users array",
            ));
        }
        let default = default_perms.map(Arc::new);
        opts.users.clear();
        for u in list.as_array("users")? {
            let m = u.as_map("users")?;
            let mut name = None;
            let mut password = String::new();
            let mut perms = None;
            for e in m.iter() {
                let k = e.key.to_ascii_lowercase();
                match k.as_str() {
                    "user" | "username" => name = Some(secret_text(&e.value, &k)?),
                    "password" | "pass" => password = secret_text(&e.value, &k)?,
                    "permissions" | "permission" => {
                        perms = Some(Arc::new(parse_permissions(&e.value, &k)?))
                    }
                    "nkey" => {
                        return Err(ConfigError::for_key(
                            &e.key_pos,
                            &k,
                            "nkey users are not supported yet by nats-mini",
                        ));
                    }
                    "allowed_connection_types" | "account" => {}
                    _ if e.used_as_variable => {}
                    _ => {
                        return Err(unknown_field(e));
                    }
                }
            }
            let Some(name) = name else {
                return Err(err(
                    u,
                    "users",
                    "authorization.users: every user needs a user name",
                ));
            };
            if opts.users.iter().any(|x| x.name == name) {
                return Err(err(u, "users", format!("Duplicate user {name:?}")));
            }
            opts.users.push(User {
                name,
                password,
                permissions: perms.or_else(|| default.clone()),
            });
        }
    }
    if opts.auth_token.is_some() && (opts.auth_user.is_some() || opts.auth_pass.is_some()) {
        return Err(ConfigError {
            pos: None,
            key: Some("authorization".into()),
            msg: "authorization: Cannot have a user/pass and token".into(),
        });
    }
    Ok(())
}

fn apply_cluster(
    map: &Map,
    opts: &mut Options,
    warnings: &mut Vec<Warning>,
) -> Result<(), ConfigError> {
    let mut host = "0.0.0.0".to_string();
    let mut port: Option<u16> = None;
    for e in map.iter() {
        let k = e.key.to_ascii_lowercase();
        let k = k.as_str();
        let v = &e.value;
        match k {
            "name" => opts.cluster_name = Some(v.as_str(k)?.to_string()),
            "host" | "net" => host = v.as_str(k)?.to_string(),
            "port" => port = Some(port_of(v, k)?),
            "listen" => {
                let (h, p) = host_port_of(v, k, 6222)?;
                host = h;
                port = Some(p);
            }
            "advertise" | "cluster_advertise" => {
                opts.cluster_advertise = Some(v.as_str(k)?.to_string())
            }
            "routes" => {
                opts.routes = v
                    .as_array(k)?
                    .iter()
                    .map(|r| r.as_str(k).map(str::to_string))
                    .collect::<Result<_, _>>()?;
            }
            "no_advertise" => opts.no_advertise = v.as_bool(k)?,
            "connect_retries" => {
                opts.connect_retries = u32::try_from(v.as_int(k)?).unwrap_or(0);
            }
            "authorization" => {
                let m = v.as_map(k)?;
                for a in m.iter() {
                    let ak = a.key.to_ascii_lowercase();
                    match ak.as_str() {
                        "user" | "username" => {
                            opts.cluster_user = Some(a.value.as_str(&ak)?.to_string())
                        }
                        "password" | "pass" => {
                            opts.cluster_pass = Some(a.value.as_str(&ak)?.to_string())
                        }
                        "timeout" => {}
                        "token" | "users" => {
                            return Err(ConfigError::for_key(
                                &a.key_pos,
                                &ak,
                                format!(
                                    "cluster.authorization.{ak}: routes accept user and password only"
                                ),
                            ));
                        }
                        _ => {
                            return Err(unknown_field(a));
                        }
                    }
                }
            }
            "tls" => opts.cluster_tls = Some(parse_tls(v.as_map(k)?, warnings)?),
            "pool_size" | "compression" | "accounts" | "ping_interval" | "ping_max"
            | "write_deadline" | "write_timeout" | "connect_backoff" | "permissions" => {
                warnings.push(warn(
                    e,
                    format!("cluster.{k}: not used by nats-mini; ignored"),
                ));
            }
            _ if e.used_as_variable => {}
            _ => {
                return Err(unknown_field(e));
            }
        }
    }
    opts.cluster = Some((host, port.unwrap_or(6222)));
    Ok(())
}

/// `tls { cert_file, key_file, ca_file, verify, timeout, handshake_first }`.
fn parse_tls(m: &Map, warnings: &mut Vec<Warning>) -> Result<crate::tls::TlsSettings, ConfigError> {
    let mut cert = None;
    let mut key = None;
    let mut t = crate::tls::TlsSettings::new("", "");
    for e in m.iter() {
        let k = e.key.to_ascii_lowercase();
        let v = &e.value;
        match k.as_str() {
            "cert_file" => cert = Some(v.as_str(&k)?.to_string()),
            "key_file" => key = Some(v.as_str(&k)?.to_string()),
            "ca_file" => t.ca_file = Some(v.as_str(&k)?.into()),
            "verify" => t.verify = v.as_bool(&k)?,
            "timeout" => t.timeout = seconds_or_duration(v, &k, warnings)?,
            "handshake_first" | "first" | "immediate" => {
                t.handshake_first = match &v.value {
                    Value::Bool(b) => *b,
                    // A duration selects nats-server's "auto" fallback; nats-mini treats it as on.
                    _ => true,
                }
            }
            "cipher_suites"
            | "curve_preferences"
            | "min_version"
            | "insecure"
            | "pinned_certs"
            | "verify_and_map"
            | "verify_cert_and_check_known_urls"
            | "connection_rate_limit"
            | "ocsp_peer"
            | "cert_store"
            | "cert_match"
            | "cert_match_by" => {
                warnings.push(warn(
                    e,
                    format!("tls.{k}: not supported by nats-mini; ignored"),
                ));
            }
            _ if e.used_as_variable => {}
            _ => {
                return Err(unknown_field(e));
            }
        }
    }
    match (cert, key) {
        (Some(c), Some(k)) => {
            t.cert_file = c.into();
            t.key_file = k.into();
            Ok(t)
        }
        _ => Err(ConfigError {
            pos: None,
            key: Some("tls".into()),
            msg: "tls: missing 'cert_file' or 'key_file' in TLS configuration".into(),
        }),
    }
}

/// A subject list: one string or an array of strings.
fn subject_list(v: &Item, k: &str) -> Result<Vec<String>, ConfigError> {
    match &v.value {
        Value::String(s) => Ok(vec![s.clone()]),
        Value::Array(items) => items
            .iter()
            .map(|i| i.as_str(k).map(str::to_string))
            .collect(),
        _ => Err(err(
            v,
            k,
            format!("{k}: expected a subject or a list of subjects"),
        )),
    }
}

/// `publish`/`subscribe`: a list (= allow) or `{ allow: [...], deny: [...] }`.
fn allow_deny(v: &Item, k: &str) -> Result<(Option<Vec<String>>, Vec<String>), ConfigError> {
    match &v.value {
        Value::Map(m) => {
            let mut allow = None;
            let mut deny = Vec::new();
            for e in m.iter() {
                let ek = e.key.to_ascii_lowercase();
                match ek.as_str() {
                    "allow" => allow = Some(subject_list(&e.value, &ek)?),
                    "deny" => deny = subject_list(&e.value, &ek)?,
                    _ => {
                        return Err(unknown_field(e));
                    }
                }
            }
            Ok((allow, deny))
        }
        _ => Ok((Some(subject_list(v, k)?), Vec::new())),
    }
}

/// `permissions { publish, subscribe, allow_responses }` (also `pub`/`import`,
/// `sub`/`export`).
fn parse_permissions(v: &Item, k: &str) -> Result<Permissions, ConfigError> {
    let m = v.as_map(k)?;
    let mut p = Permissions::default();
    for e in m.iter() {
        let ek = e.key.to_ascii_lowercase();
        match ek.as_str() {
            "publish" | "pub" | "import" => {
                let (allow, deny) = allow_deny(&e.value, &ek)?;
                p.publish = PubPerms {
                    allow: allow.map(|l| l.into_iter().map(|s| s.into_bytes().into()).collect()),
                    deny: deny.into_iter().map(|s| s.into_bytes().into()).collect(),
                };
            }
            "subscribe" | "sub" | "export" => {
                let (allow, deny) = allow_deny(&e.value, &ek)?;
                p.subscribe = SubPerms {
                    allow: allow.map(|l| l.iter().map(|s| SubEntry::parse(s)).collect()),
                    deny: deny.iter().map(|s| SubEntry::parse(s)).collect(),
                };
            }
            "allow_responses" | "allow_response" => {
                p.allow_responses = match &e.value.value {
                    Value::Bool(true) => Some(ResponsePerms::default()),
                    Value::Bool(false) => None,
                    Value::Map(rm) => {
                        let mut r = ResponsePerms::default();
                        for re in rm.iter() {
                            let rk = re.key.to_ascii_lowercase();
                            match rk.as_str() {
                                "max" => r.max = u32::try_from(re.value.as_int(&rk)?).unwrap_or(0),
                                "expires" | "ttl" => r.expires = re.value.as_duration(&rk)?.0,
                                _ => {
                                    return Err(unknown_field(re));
                                }
                            }
                        }
                        Some(r)
                    }
                    _ => {
                        return Err(err(
                            &e.value,
                            &ek,
                            "allow_responses: expected true/false or { max, expires }",
                        ));
                    }
                };
            }
            _ => {
                return Err(unknown_field(e));
            }
        }
    }
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn load(text: &str) -> Result<(Options, Vec<Warning>), ConfigError> {
        let map = crate::config::parse_str(text, Path::new("test.conf"), &|_| None)?;
        let mut o = Options::default();
        let w = apply(&map, &mut o)?;
        Ok((o, w))
    }

    #[test]
    fn classic_sample_takes_effect() {
        let text = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/nats-server-sample.conf"),
        )
        .unwrap();
        let (o, _) = load(&text).unwrap();
        assert_eq!(o.port, 4242);
        assert_eq!(o.max_conns, 100);
        assert_eq!(o.max_control_line, 512);
        assert_eq!(o.max_payload, 65536);
        assert_eq!(o.max_pending, 10_000_000);
        assert!(o.auth_user.is_some() && o.auth_pass.is_some());
        assert!(!o.routes.is_empty());
        assert!(o.cluster.is_some());
        assert!(o.pid_file.is_some() && o.log_file.is_some());
    }

    #[test]
    fn busy_poll_is_a_duration_and_zero_turns_it_off() {
        assert_eq!(
            Options::default().busy_poll,
            crate::options::DEFAULT_BUSY_POLL
        );
        let (o, _) = load("busy_poll: \"20us\"").unwrap();
        assert_eq!(o.busy_poll, std::time::Duration::from_micros(20));
        let (o, _) = load("busy_poll: \"0\"").unwrap();
        assert!(o.busy_poll.is_zero());
        let e = load("\nbusy_poll: \"fast\"").unwrap_err();
        assert_eq!(
            e.to_string(),
            "test.conf:2:12: error parsing busy_poll: time: invalid duration \"fast\""
        );
    }

    #[test]
    fn cluster_block_with_tls_and_route_authorization() {
        let (o, _) = load(
            r#"
            cluster {
              name: east
              listen: 0.0.0.0:7244
              authorization { user: ruser, password: rpass, timeout: 1 }
              tls { cert_file: "/certs/route.pem", key_file: "/certs/route-key.pem", ca_file: "/certs/ca.pem", timeout: 3 }
              routes: [ nats-route://ruser:rpass@peer-0:7244, nats://peer-1:7244 ]
              no_advertise: true
              connect_retries: 4
            }
            "#,
        )
        .unwrap();
        assert_eq!(o.cluster, Some(("0.0.0.0".to_string(), 7244)));
        assert_eq!(o.cluster_name.as_deref(), Some("east"));
        assert_eq!(
            (o.cluster_user.as_deref(), o.cluster_pass.as_deref()),
            (Some("ruser"), Some("rpass"))
        );
        let t = o.cluster_tls.expect("cluster.tls");
        assert_eq!(t.ca_file.as_deref(), Some(Path::new("/certs/ca.pem")));
        assert_eq!(t.timeout, std::time::Duration::from_secs(3));
        assert_eq!(o.routes.len(), 2);
        assert!(o.no_advertise);
        assert_eq!(o.connect_retries, 4);
    }

    #[test]
    fn users_with_permissions() {
        let (o, _) = load(
            r#"
            authorization {
              default_permissions = { publish = "pub.>" }
              users = [
                {user: alice, password: "a", permissions: {
                   publish: { allow: ["req.>"], deny: ["req.secret"] }
                   subscribe: ["_INBOX.>", "jobs.* workers"]
                   allow_responses: { max: 2, expires: "1m" } }}
                {user: bob, password: "b"}
              ]
            }
            no_auth_user: bob
            "#,
        )
        .unwrap();
        assert_eq!(o.users.len(), 2);
        assert_eq!(o.no_auth_user.as_deref(), Some("bob"));
        let alice = o.users[0].permissions.as_ref().unwrap();
        assert!(alice.can_publish(b"req.x"));
        assert!(!alice.can_publish(b"req.secret"));
        assert!(alice.can_subscribe(b"jobs.a", Some(b"workers")));
        assert!(!alice.can_subscribe(b"jobs.a", None));
        assert_eq!(alice.allow_responses.unwrap().max, 2);
        // bob gets the default permissions.
        let bob = o.users[1].permissions.as_ref().unwrap();
        assert!(bob.can_publish(b"pub.x") && !bob.can_publish(b"other"));
        assert!(o.validate().is_ok());
    }

    #[test]
    fn https_monitoring_keys() {
        let tls = "tls { cert_file: c.pem, key_file: k.pem }\n";
        let (o, _) = load(&format!("https: \"127.0.0.2:8443\"\n{tls}")).unwrap();
        assert_eq!(o.https, Some(("127.0.0.2".into(), 8443)));
        assert!(!o.http_explicit, "`https` does not turn plain HTTP on");
        assert_eq!(o.http_listener(), None, "and replaces the default one");
        assert!(o.validate().is_ok());
        // `https_port` takes the client host, as `http_port` does; -1 is a free port.
        let (o, _) = load(&format!("listen: 10.0.0.1:4222\nhttps_port: -1\n{tls}")).unwrap();
        assert_eq!(o.https, Some(("10.0.0.1".into(), 0)));
        let (o, _) = load("https_port: 0\n").unwrap();
        assert_eq!(o.https, None);
        // Without TLS, or together with plain HTTP, as nats-server refuses at start.
        let (o, _) = load("https_port: 8443\n").unwrap();
        let e = o.validate().unwrap_err();
        assert!(e.contains("https_port") && e.contains("TLS"), "{e}");
        let (o, _) = load(&format!("http_port: 8222\nhttps_port: 8443\n{tls}")).unwrap();
        let e = o.validate().unwrap_err();
        assert!(
            e.contains("can't specify both HTTP (8222) and HTTPs (8443) ports"),
            "{e}"
        );
    }

    #[test]
    fn refusals_and_warnings_name_the_key() {
        let e = load("port: 4222\nfoo_unknown: 1\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "test.conf:2:1: unknown field \"foo_unknown\""
        );
        let e = load("jetstream {}\n").unwrap_err();
        assert!(e.to_string().contains("jetstream"), "{e}");
        let (_, w) = load("websocket { port: -1 }\nping_interval: 5\n").unwrap();
        assert_eq!(w.len(), 2, "{w:?}");
        let e = load("authorization { token: x, users: [{user: a, password: b}] }").unwrap_err();
        assert!(e.to_string().contains("token and a users array"), "{e}");
        let e = load("lame_duck_duration: \"10s\"\n").unwrap_err();
        assert!(e.to_string().contains("minimum is 30 seconds"), "{e}");
    }
}
