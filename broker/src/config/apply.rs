//! Applying a parsed config file to [`Options`]: which nats-server keys nats-mini honours,
//! which it accepts with a warning, and which it refuses.
//!
//! - Keys nats-server does not know are errors (`unknown field "x"`), as in nats-server.
//! - Keys of nats-server features nats-mini lacks and whose silent omission would drop data
//!   guarantees or open access (JetStream, accounts, operator mode, mappings, and for now
//!   multi-user authorization and TLS) are refused with a message naming the key.
//! - Listener blocks for protocols nats-mini does not serve (websocket, mqtt, gateway,
//!   leafnodes) are accepted with a warning naming them: the official clients' test harnesses
//!   put them in every config they generate.
//!
//! Every error and warning carries file, line, column and key.

use super::{ConfigError, Entry, Item, Map, Value, Warning};
use crate::options::{LogLevel, Options, parse_host_port};
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
    ("tls", "TLS is not supported yet by nats-mini"),
    (
        "no_auth_user",
        "no_auth_user needs authorization users, not supported yet by nats-mini",
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
            "https" | "https_port" => {
                return Err(err(
                    v,
                    k,
                    format!("{k}: monitoring over TLS is not supported yet by nats-mini"),
                ));
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
                return Err(ConfigError::for_key(
                    &e.key_pos,
                    k,
                    format!("unknown field \"{}\"", e.key),
                ));
            }
        }
    }
    if http_host.is_some() || http_port.is_some() {
        let host = http_host.unwrap_or_else(|| opts.host.clone());
        opts.http = Some((host, http_port.unwrap_or(8222)));
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
    for e in map.iter() {
        let k = e.key.to_ascii_lowercase();
        let k = k.as_str();
        let v = &e.value;
        match k {
            "token" => opts.auth_token = Some(secret_text(v, k)?),
            "user" | "username" => opts.auth_user = Some(secret_text(v, k)?),
            "password" | "pass" => opts.auth_pass = Some(secret_text(v, k)?),
            "timeout" => {
                opts.auth_timeout = match &v.value {
                    Value::Integer(n) => Duration::from_secs(u64::try_from(*n).unwrap_or(0)),
                    Value::Float(f) if *f >= 0.0 => Duration::from_secs_f64(*f),
                    _ => duration_of(v, k, warnings)?,
                }
            }
            "users" | "permissions" | "default_permissions" => {
                return Err(ConfigError::for_key(
                    &e.key_pos,
                    k,
                    format!(
                        "authorization.{k}: users and permissions are not supported yet by nats-mini"
                    ),
                ));
            }
            _ if e.used_as_variable => {}
            _ => {
                return Err(ConfigError::for_key(
                    &e.key_pos,
                    k,
                    format!("unknown field \"{}\"", e.key),
                ));
            }
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
                            return Err(ConfigError::for_key(
                                &a.key_pos,
                                &ak,
                                format!("unknown field \"{}\"", a.key),
                            ));
                        }
                    }
                }
            }
            "tls" => {
                return Err(ConfigError::for_key(
                    &e.key_pos,
                    k,
                    "cluster.tls: TLS is not supported yet by nats-mini",
                ));
            }
            "pool_size" | "compression" | "accounts" | "ping_interval" | "ping_max"
            | "write_deadline" | "write_timeout" | "connect_backoff" | "permissions" => {
                warnings.push(warn(
                    e,
                    format!("cluster.{k}: not used by nats-mini; ignored"),
                ));
            }
            _ if e.used_as_variable => {}
            _ => {
                return Err(ConfigError::for_key(
                    &e.key_pos,
                    k,
                    format!("unknown field \"{}\"", e.key),
                ));
            }
        }
    }
    opts.cluster = Some((host, port.unwrap_or(6222)));
    Ok(())
}
