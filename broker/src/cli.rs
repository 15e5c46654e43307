//! Command-line flags and `NATS_*` environment variables → [`Options`].
//!
//! Precedence: a flag wins over its environment variable, which wins over the default. Flags
//! are read the way Go's `flag` package reads them (so nats-server habits work): `-x` and `--x`
//! are the same flag, a value may follow as the next argument or after `=`, and boolean flags
//! stand alone (`-D`) or take `=true`/`=false`.
//!
//! A bad value is a [`CliError`] naming the flag or variable and the value; the binary prints
//! it and exits with status 2.

use crate::options::{LogLevel, Options, parse_duration, parse_host_port, parse_size};
use std::fmt;

/// What the command line asks for.
#[derive(Debug)]
pub enum Command {
    /// Run a server with these options; `notes` are warnings to log once logging is up.
    Run(Box<Options>, Vec<String>),
    /// `-t`: check the configuration, print the verdict, exit 0 or 1 without starting.
    TestConfig(Box<Options>, Vec<String>),
    /// `-sl CMD[=PID|PIDFILE]`: signal a running server.
    Signal {
        command: String,
        target: Option<String>,
    },
    Help,
    Version,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CliError(pub String);

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for CliError {}

/// One option settable by flag and environment variable.
struct Spec {
    /// Flag names without dashes; the first is the canonical one.
    names: &'static [&'static str],
    env: Option<&'static str>,
    boolean: bool,
    help: &'static str,
    apply: fn(&mut Options, &str) -> Result<(), String>,
}

fn set_listen(o: &mut Options, v: &str) -> Result<(), String> {
    let (h, p) = parse_host_port(v, o.port)?;
    o.host = h;
    o.port = p;
    Ok(())
}

fn set_optional_addr(v: &str, default_port: u16) -> Result<Option<(String, u16)>, String> {
    let t = v.trim();
    if t.is_empty() || t.eq_ignore_ascii_case("off") || t == "0" {
        return Ok(None);
    }
    parse_host_port(t, default_port).map(Some)
}

fn positive_usize(v: &str) -> Result<usize, String> {
    let n = parse_size(v)?;
    if n == 0 {
        return Err("must be greater than 0".into());
    }
    usize::try_from(n).map_err(|_| "too large".to_string())
}

fn bool_value(v: &str) -> Result<bool, String> {
    match v.to_ascii_lowercase().as_str() {
        "" | "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" => Ok(false),
        _ => Err("expected true or false".into()),
    }
}

const SPECS: &[Spec] = &[
    Spec {
        names: &["listen"],
        env: Some("NATS_LISTEN"),
        boolean: false,
        help: "client listen address HOST:PORT (default 0.0.0.0:4222)",
        apply: set_listen,
    },
    Spec {
        names: &["a", "addr", "net"],
        env: None,
        boolean: false,
        help: "client listen host",
        apply: |o, v| {
            if v.trim().is_empty() {
                return Err("empty host".into());
            }
            o.host = v
                .trim()
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_string();
            Ok(())
        },
    },
    Spec {
        names: &["p", "port"],
        env: None,
        boolean: false,
        help: "client port (-1 for a random port)",
        apply: |o, v| {
            o.port = if v.trim() == "-1" {
                0
            } else {
                v.trim().parse().map_err(|_| "invalid port".to_string())?
            };
            Ok(())
        },
    },
    Spec {
        names: &["http"],
        env: Some("NATS_HTTP"),
        boolean: false,
        help: "monitoring address HOST:PORT, :PORT for every interface, off to disable (default 0.0.0.0:8222)",
        apply: |o, v| {
            o.http = set_optional_addr(v, 8222)?;
            o.http_explicit = true;
            Ok(())
        },
    },
    Spec {
        names: &["cluster"],
        env: Some("NATS_CLUSTER"),
        boolean: false,
        help: "route listen address HOST:PORT for clustering (default off)",
        apply: |o, v| {
            o.cluster = set_optional_addr(v, 6222)?;
            Ok(())
        },
    },
    Spec {
        names: &["routes"],
        env: Some("NATS_ROUTES"),
        boolean: false,
        help: "comma-separated seed route URLs, e.g. nats://n1:6222,nats://n2:6222",
        apply: |o, v| {
            o.routes = v
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect();
            Ok(())
        },
    },
    Spec {
        names: &["auth"],
        env: Some("NATS_AUTH"),
        boolean: false,
        help: "token clients must present (auth_token, or as the password)",
        apply: |o, v| {
            o.auth_token = (!v.is_empty()).then(|| v.to_string());
            Ok(())
        },
    },
    Spec {
        names: &["max_conns", "max_connections"],
        env: Some("NATS_MAX_CONNS"),
        boolean: false,
        help: "maximum client connections (default 65536)",
        apply: |o, v| {
            o.max_conns = positive_usize(v)?;
            Ok(())
        },
    },
    Spec {
        names: &["write_deadline"],
        env: Some("NATS_WRITE_DEADLINE"),
        boolean: false,
        help: "write deadline before a client is a slow consumer, seconds or a duration (default 2s)",
        apply: |o, v| {
            let d = parse_duration(v)?;
            if d.is_zero() {
                return Err("must be greater than 0".into());
            }
            o.write_deadline = d;
            Ok(())
        },
    },
    Spec {
        names: &["busy_poll"],
        env: Some("NATS_BUSY_POLL"),
        boolean: false,
        help: "keep a worker polling this long after interactive traffic, for lower request/reply latency at some CPU cost; 0 turns it off (default 50us)",
        apply: |o, v| {
            o.busy_poll = parse_duration(v)?;
            Ok(())
        },
    },
    Spec {
        names: &["log"],
        env: Some("NATS_LOG"),
        boolean: false,
        help: "log level: trace, debug, info, warn, error (default info); any other value is a log FILE (nats-server's --log)",
        apply: |o, v| {
            match LogLevel::parse(v.trim()) {
                Some(level) => o.log_level = level,
                // nats-server's `--log FILE`: Go flags make `-log` and `--log` one flag, so a
                // value that is not a level name is a file path.
                None if looks_like_path(v) => o.log_file = Some(v.into()),
                None => {
                    return Err(
                        "expected trace, debug, info, warn or error (or a log file path)".into(),
                    );
                }
            }
            Ok(())
        },
    },
    Spec {
        names: &["max_payload"],
        env: Some("NATS_MAX_PAYLOAD"),
        boolean: false,
        help: "maximum message size, e.g. 2mb (default 2 MiB)",
        apply: |o, v| {
            o.max_payload = positive_usize(v)?;
            Ok(())
        },
    },
    Spec {
        names: &["max_pending"],
        env: Some("NATS_MAX_PENDING"),
        boolean: false,
        help: "maximum pending outbound bytes per client (default 128 MiB)",
        apply: |o, v| {
            o.max_pending = positive_usize(v)?;
            Ok(())
        },
    },
    Spec {
        names: &["max_control_line"],
        env: Some("NATS_MAX_CONTROL_LINE"),
        boolean: false,
        help: "maximum protocol control line length (default 4096)",
        apply: |o, v| {
            o.max_control_line = positive_usize(v)?;
            Ok(())
        },
    },
    Spec {
        names: &["ping_interval"],
        env: Some("NATS_PING_INTERVAL"),
        boolean: false,
        help: "interval between server PINGs, seconds or a duration (default 60s)",
        apply: |o, v| {
            let d = parse_duration(v)?;
            if d.is_zero() {
                return Err("must be greater than 0".into());
            }
            o.ping_interval = d;
            Ok(())
        },
    },
    Spec {
        names: &["ping_max"],
        env: Some("NATS_PING_MAX"),
        boolean: false,
        help: "unanswered PINGs before a connection is stale (default 3)",
        apply: |o, v| {
            o.ping_max = v
                .trim()
                .parse()
                .map_err(|_| "expected a number".to_string())?;
            Ok(())
        },
    },
    Spec {
        names: &["auth_timeout"],
        env: Some("NATS_AUTH_TIMEOUT"),
        boolean: false,
        help: "time a client has to send CONNECT when auth is required (default 2s)",
        apply: |o, v| {
            o.auth_timeout = parse_duration(v)?;
            Ok(())
        },
    },
    Spec {
        names: &["n", "name", "server_name"],
        env: Some("NATS_SERVER_NAME"),
        boolean: false,
        help: "server name (default: the server id)",
        apply: |o, v| {
            if v.contains(char::is_whitespace) {
                return Err("server name cannot contain spaces".into());
            }
            o.server_name = (!v.is_empty()).then(|| v.to_string());
            Ok(())
        },
    },
    Spec {
        names: &["self_check"],
        env: Some("NATS_SELF_CHECK"),
        boolean: true,
        help: "round-trip a message through the server before reporting ready (default true)",
        apply: |o, v| {
            o.self_check = bool_value(v)?;
            Ok(())
        },
    },
    Spec {
        names: &["D", "debug"],
        env: None,
        boolean: true,
        help: "enable debug logging",
        apply: |o, v| {
            if bool_value(v)? && o.log_level < LogLevel::Debug {
                o.log_level = LogLevel::Debug;
            }
            Ok(())
        },
    },
    Spec {
        names: &["V", "trace", "VV", "DV", "DVV"],
        env: None,
        boolean: true,
        help: "enable protocol tracing (trace logging; -DV, -VV, -DVV too)",
        apply: |o, v| {
            if bool_value(v)? {
                o.log_level = LogLevel::Trace;
            }
            Ok(())
        },
    },
    Spec {
        names: &["l"],
        env: None,
        boolean: false,
        help: "also write logs to FILE",
        apply: |o, v| {
            o.log_file = Some(v.into());
            Ok(())
        },
    },
    Spec {
        names: &["T", "logtime"],
        env: None,
        boolean: true,
        help: "timestamp log lines (default true; -T=false to disable)",
        apply: |o, v| {
            o.logtime = bool_value(v)?;
            Ok(())
        },
    },
    Spec {
        names: &["logtime_utc"],
        env: None,
        boolean: true,
        help: "log timestamps in UTC (they always are)",
        apply: |_, v| bool_value(v).map(|_| ()),
    },
    Spec {
        names: &["log_format"],
        env: Some("NATS_LOG_FORMAT"),
        boolean: false,
        help: "log line format: text (nats-server's) or json",
        apply: |o, v| {
            o.log_json = match v.to_ascii_lowercase().as_str() {
                "json" => true,
                "text" | "" => false,
                _ => return Err("expected text or json".into()),
            };
            Ok(())
        },
    },
    Spec {
        names: &["P", "pid"],
        env: None,
        boolean: false,
        help: "write the process id to FILE (removed at exit)",
        apply: |o, v| {
            o.pid_file = Some(v.into());
            Ok(())
        },
    },
    Spec {
        names: &["lame_duck_duration"],
        env: Some("NATS_LAME_DUCK_DURATION"),
        boolean: false,
        help: "lame duck: time to drain clients (default 30s)",
        apply: |o, v| {
            o.lame_duck_duration = parse_duration(v)?;
            Ok(())
        },
    },
    Spec {
        names: &["lame_duck_grace_period"],
        env: Some("NATS_LAME_DUCK_GRACE_PERIOD"),
        boolean: false,
        help: "lame duck: wait before closing the first client (default 10s)",
        apply: |o, v| {
            o.lame_duck_grace_period = parse_duration(v)?;
            Ok(())
        },
    },
    Spec {
        names: &["m", "http_port"],
        env: None,
        boolean: false,
        help: "monitoring port on the client host (nats-server's -m; 0 disables, -1 picks a free port)",
        apply: |o, v| {
            o.http = match v.trim() {
                "0" => None,
                p => Some((o.host.clone(), parse_port(p)?)),
            };
            o.http_explicit = true;
            Ok(())
        },
    },
    Spec {
        names: &["ms", "https_port"],
        env: None,
        boolean: false,
        help: "monitoring port over TLS on the client host, with the tls certificate (nats-server's -ms; 0 disables, -1 picks a free port)",
        apply: |o, v| {
            o.https = match v.trim() {
                "0" => None,
                p => Some((o.host.clone(), parse_port(p)?)),
            };
            Ok(())
        },
    },
    Spec {
        names: &["http_base_path"],
        env: None,
        boolean: false,
        help: "prefix of every monitoring path",
        apply: |o, v| {
            o.http_base_path = v.to_string();
            Ok(())
        },
    },
    Spec {
        names: &["user"],
        env: Some("NATS_USER"),
        boolean: false,
        help: "user clients must present (with -pass)",
        apply: |o, v| {
            o.auth_user = (!v.is_empty()).then(|| v.to_string());
            Ok(())
        },
    },
    Spec {
        names: &["pass"],
        env: Some("NATS_PASS"),
        boolean: false,
        help: "password clients must present (with -user)",
        apply: |o, v| {
            o.auth_pass = (!v.is_empty()).then(|| v.to_string());
            Ok(())
        },
    },
    Spec {
        names: &["no_auth_user"],
        env: None,
        boolean: false,
        help: "bind clients without credentials to this user (from the config's users)",
        apply: |o, v| {
            o.no_auth_user = (!v.is_empty()).then(|| v.to_string());
            Ok(())
        },
    },
    Spec {
        names: &["client_advertise"],
        env: None,
        boolean: false,
        help: "HOST:PORT advertised to clients",
        apply: |o, v| {
            o.client_advertise = Some(v.to_string());
            Ok(())
        },
    },
    Spec {
        names: &["ports_file_dir"],
        env: None,
        boolean: false,
        help: "write <exe>_<pid>.ports (JSON with the listen URLs) into DIR",
        apply: |o, v| {
            o.ports_file_dir = Some(v.into());
            Ok(())
        },
    },
    Spec {
        names: &["cluster_listen"],
        env: None,
        boolean: false,
        help: "route listen URL (same as -cluster)",
        apply: |o, v| {
            o.cluster = set_optional_addr(v, 6222)?;
            Ok(())
        },
    },
    Spec {
        names: &["cluster_name"],
        env: Some("NATS_CLUSTER_NAME"),
        boolean: false,
        help: "cluster name",
        apply: |o, v| {
            o.cluster_name = (!v.is_empty()).then(|| v.to_string());
            Ok(())
        },
    },
    Spec {
        names: &["cluster_advertise"],
        env: None,
        boolean: false,
        help: "HOST:PORT advertised to other cluster members",
        apply: |o, v| {
            o.cluster_advertise = Some(v.to_string());
            Ok(())
        },
    },
    Spec {
        names: &["no_advertise"],
        env: None,
        boolean: true,
        help: "do not advertise cluster members' client URLs to clients",
        apply: |o, v| {
            o.no_advertise = bool_value(v)?;
            Ok(())
        },
    },
    Spec {
        names: &["connect_retries"],
        env: None,
        boolean: false,
        help: "connect attempts for discovered routes",
        apply: |o, v| {
            o.connect_retries = v
                .trim()
                .parse()
                .map_err(|_| "expected a number".to_string())?;
            Ok(())
        },
    },
    Spec {
        names: &["config_watch"],
        env: Some("NATS_CONFIG_WATCH"),
        boolean: true,
        help: "reload when the config file changes (default true; -config_watch=false to disable)",
        apply: |o, v| {
            o.config_watch = bool_value(v)?;
            Ok(())
        },
    },
    Spec {
        names: &["s", "syslog"],
        env: None,
        boolean: true,
        help: "syslog (accepted; nats-mini logs to stderr and -l)",
        apply: |_, v| bool_value(v).map(|_| ()),
    },
    Spec {
        names: &["r", "remote_syslog"],
        env: None,
        boolean: false,
        help: "remote syslog URL (accepted; nats-mini logs to stderr and -l)",
        apply: |_, _| Ok(()),
    },
];

fn find(name: &str) -> Option<&'static Spec> {
    SPECS.iter().find(|s| s.names.contains(&name))
}

fn looks_like_path(v: &str) -> bool {
    v.contains('/') || v.contains('.')
}

fn parse_port(v: &str) -> Result<u16, String> {
    match v.trim() {
        "-1" => Ok(0),
        p => p.parse().map_err(|_| "invalid port".to_string()),
    }
}

/// Builds the options from `args` (without the program name) and an environment lookup.
///
/// Precedence: flags > `NATS_*` environment variables > the config file (`-c`) > defaults.
/// Flags win even when `-c` comes after them.
pub fn parse<I, S>(args: I, env: impl Fn(&str) -> Option<String>) -> Result<Command, CliError>
where
    I: IntoIterator<Item = S>,
    S: Into<String>,
{
    let args: Vec<String> = args.into_iter().map(Into::into).collect();
    let mut flags: Vec<(&'static Spec, String, String)> = Vec::new();
    let mut config: Option<String> = None;
    let mut test_only = false;
    let mut notes = Vec::new();
    let (mut tls_flag, mut tls_verify) = (None::<bool>, None::<bool>);
    let (mut tls_cert, mut tls_key, mut tls_ca) = (None::<String>, None::<String>, None::<String>);
    let mut i = 0;
    while i < args.len() {
        let arg = &args[i];
        i += 1;
        let Some(stripped) = arg.strip_prefix("--").or_else(|| arg.strip_prefix('-')) else {
            return Err(CliError(format!("unexpected argument {arg:?}")));
        };
        let (name, inline) = match stripped.split_once('=') {
            Some((n, v)) => (n, Some(v.to_string())),
            None => (stripped, None),
        };
        let take_value = |i: &mut usize| -> Result<String, CliError> {
            if let Some(v) = inline.clone() {
                return Ok(v);
            }
            if *i < args.len() {
                *i += 1;
                return Ok(args[*i - 1].clone());
            }
            Err(CliError(format!("flag -{name} needs a value")))
        };
        match name {
            "h" | "help" | "help_tls" => return Ok(Command::Help),
            "v" | "version" => return Ok(Command::Version),
            "c" | "config" => {
                config = Some(take_value(&mut i)?);
                continue;
            }
            "t" => {
                test_only = inline
                    .as_deref()
                    .map(bool_value)
                    .transpose()
                    .map_err(CliError)?
                    .unwrap_or(true);
                continue;
            }
            "sl" | "signal" => {
                let v = take_value(&mut i)?;
                let (command, target) = match v.split_once('=') {
                    Some((c, t)) => (c.to_string(), Some(t.to_string())),
                    None => (v, None),
                };
                return Ok(Command::Signal { command, target });
            }
            "js" | "jetstream" => {
                return Err(CliError("JetStream is not supported by nats-mini".into()));
            }
            "sd" | "store_dir" => {
                let v = take_value(&mut i)?;
                notes.push(format!(
                    "--store_dir {v:?} ignored: nats-mini keeps no data on disk (no JetStream)"
                ));
                continue;
            }
            "tls" | "tlsverify" => {
                let on = inline
                    .as_deref()
                    .map(bool_value)
                    .transpose()
                    .map_err(CliError)?
                    .unwrap_or(true);
                if name == "tls" {
                    tls_flag = Some(on);
                } else {
                    tls_verify = Some(on);
                }
                continue;
            }
            "tlscert" | "tlskey" | "tlscacert" => {
                let v = take_value(&mut i)?;
                match name {
                    "tlscert" => tls_cert = Some(v),
                    "tlskey" => tls_key = Some(v),
                    _ => tls_ca = Some(v),
                }
                continue;
            }
            _ => {}
        }
        let spec = find(name).ok_or_else(|| CliError(format!("unknown flag {arg:?}")))?;
        let value = if spec.boolean {
            inline.unwrap_or_default()
        } else {
            take_value(&mut i)?
        };
        flags.push((spec, name.to_string(), value));
    }

    let mut opts = Options::default();
    if let Some(path) = &config {
        let p = std::path::Path::new(path);
        let map = crate::config::parse_file(p, &|k| env(k))
            .map_err(|e| CliError(format!("Parse error: {e}")))?;
        let warnings = crate::config::apply::apply(&map, &mut opts)
            .map_err(|e| CliError(format!("Parse error: {e}")))?;
        notes.extend(warnings.iter().map(|w| w.to_string()));
        opts.config_file = Some(p.to_path_buf());
    }
    for spec in SPECS {
        if let Some(var) = spec.env
            && let Some(v) = env(var)
        {
            (spec.apply)(&mut opts, &v).map_err(|e| {
                CliError(format!(
                    "invalid value {v:?} for environment variable {var}: {e}"
                ))
            })?;
        }
    }
    for (spec, name, value) in &flags {
        (spec.apply)(&mut opts, value)
            .map_err(|e| CliError(format!("invalid value {value:?} for flag -{name}: {e}")))?;
    }
    // `-m PORT` / `-ms PORT` bind monitoring on the client host, whichever order `-a` came in.
    if flags.iter().any(|(_, n, _)| n == "m" || n == "http_port")
        && let Some((h, _)) = opts.http.as_mut()
    {
        *h = opts.host.clone();
    }
    if flags.iter().any(|(_, n, _)| n == "ms" || n == "https_port")
        && let Some((h, _)) = opts.https.as_mut()
    {
        *h = opts.host.clone();
    }
    // nats-server's TLS flags: --tls=false turns config TLS off; --tlscert/--tlskey (with
    // --tls or --tlsverify) turn it on; --tlsverify requires client certificates.
    if tls_flag == Some(false) {
        opts.tls = None;
    } else if tls_cert.is_some()
        || tls_key.is_some()
        || tls_flag == Some(true)
        || tls_verify == Some(true)
    {
        let mut t = opts
            .tls
            .clone()
            .unwrap_or_else(|| crate::tls::TlsSettings::new("", ""));
        if let Some(c) = tls_cert {
            t.cert_file = c.into();
        }
        if let Some(k) = tls_key {
            t.key_file = k.into();
        }
        if let Some(ca) = tls_ca {
            t.ca_file = Some(ca.into());
        }
        if let Some(v) = tls_verify {
            t.verify = v;
        }
        if t.cert_file.as_os_str().is_empty() || t.key_file.as_os_str().is_empty() {
            return Err(CliError("TLS needs --tlscert and --tlskey".into()));
        }
        opts.tls = Some(t);
    }
    opts.validate().map_err(CliError)?;
    if test_only {
        if config.is_none() {
            return Err(CliError("-t needs a configuration file (-c FILE)".into()));
        }
        return Ok(Command::TestConfig(Box::new(opts), notes));
    }
    Ok(Command::Run(Box::new(opts), notes))
}

/// The `--help` text, generated from the same table the parser uses.
pub fn usage() -> String {
    let mut s = String::from(
        "Usage: nats-mini [options]\n\nA memory-only Core NATS server.\n\nOptions (flag wins over environment variable, which wins over the default):\n",
    );
    for spec in SPECS {
        let names: Vec<String> = spec.names.iter().map(|n| format!("-{n}")).collect();
        let env = spec.env.map(|e| format!(" [{e}]")).unwrap_or_default();
        s.push_str(&format!("  {:<28}{}{}\n", names.join(", "), spec.help, env));
    }
    s.push_str("  -h, -help                   show this help\n  -v, -version                show the version\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn run(args: &[&str], env: &[(&str, &str)]) -> Result<Options, CliError> {
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        match parse(args.iter().copied(), |k| {
            env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())
        })? {
            Command::Run(o, _) => Ok(*o),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn no_arguments_gives_defaults() {
        let o = run(&[], &[]).unwrap();
        assert_eq!((o.host.as_str(), o.port), ("0.0.0.0", 4222));
        assert_eq!(o.http, Some(("0.0.0.0".into(), 8222)));
    }

    #[test]
    fn single_and_double_dash_and_equals() {
        let o = run(&["-listen", "127.0.0.1:5000", "--http", ":9000"], &[]).unwrap();
        assert_eq!((o.host.as_str(), o.port), ("127.0.0.1", 5000));
        assert_eq!(o.http, Some(("0.0.0.0".into(), 9000)));
        let o = run(&["--max_conns=10", "-write_deadline=3s"], &[]).unwrap();
        assert_eq!(o.max_conns, 10);
        assert_eq!(o.write_deadline, Duration::from_secs(3));
    }

    #[test]
    fn busy_poll_from_flag_or_env() {
        let o = run(&["-busy_poll", "0"], &[("NATS_BUSY_POLL", "20us")]).unwrap();
        assert!(o.busy_poll.is_zero());
        let o = run(&[], &[("NATS_BUSY_POLL", "20us")]).unwrap();
        assert_eq!(o.busy_poll, Duration::from_micros(20));
        let e = run(&["--busy_poll=soon"], &[]).unwrap_err().0;
        assert!(e.contains("-busy_poll"), "{e}");
    }

    #[test]
    fn flag_wins_over_env_and_env_over_default() {
        let o = run(&["-max_conns", "5"], &[("NATS_MAX_CONNS", "7")]).unwrap();
        assert_eq!(o.max_conns, 5);
        let o = run(
            &[],
            &[("NATS_MAX_CONNS", "7"), ("NATS_WRITE_DEADLINE", "4")],
        )
        .unwrap();
        assert_eq!(o.max_conns, 7);
        assert_eq!(o.write_deadline, Duration::from_secs(4));
    }

    #[test]
    fn http_off_or_empty_disables() {
        assert_eq!(run(&["-http", "off"], &[]).unwrap().http, None);
        assert_eq!(run(&[], &[("NATS_HTTP", "")]).unwrap().http, None);
    }

    #[test]
    fn bad_values_name_the_flag_or_variable_and_value() {
        let e = run(&["-max_conns", "lots"], &[]).unwrap_err().0;
        assert!(e.contains("-max_conns") && e.contains("lots"), "{e}");
        let e = run(&[], &[("NATS_LOG", "loud")]).unwrap_err().0;
        assert!(e.contains("NATS_LOG") && e.contains("loud"), "{e}");
        let e = run(&["-write_deadline", "0"], &[]).unwrap_err().0;
        assert!(e.contains("-write_deadline"), "{e}");
        let e = run(&["-listen", "1.2.3.4:notaport"], &[]).unwrap_err().0;
        assert!(e.contains("-listen"), "{e}");
        assert!(run(&["-bogus", "1"], &[]).is_err());
        assert!(run(&["-auth"], &[]).is_err());
    }

    #[test]
    fn routes_and_token() {
        let o = run(
            &["-routes", "nats://a:6222, nats://b:6222", "-auth", "s3cr3t"],
            &[],
        )
        .unwrap();
        assert_eq!(o.routes, vec!["nats://a:6222", "nats://b:6222"]);
        assert_eq!(o.auth_token.as_deref(), Some("s3cr3t"));
    }

    #[test]
    fn https_port_needs_tls_and_excludes_http_port() {
        let tls = ["--tls", "--tlscert", "c.pem", "--tlskey", "k.pem"];
        let mut args = vec!["-ms", "-1", "-a", "127.0.0.1"];
        args.extend(tls);
        let o = run(&args, &[]).unwrap();
        assert_eq!(o.https, Some(("127.0.0.1".into(), 0)));
        assert_eq!(o.http_listener(), None, "HTTPS replaces default HTTP");
        let e = run(&["--https_port=8443"], &[]).unwrap_err().0;
        assert!(e.contains("https_port") && e.contains("TLS"), "{e}");
        let mut args = vec!["-m", "8222", "-ms", "8443"];
        args.extend(tls);
        let e = run(&args, &[]).unwrap_err().0;
        assert!(
            e.contains("can't specify both HTTP (8222) and HTTPs (8443) ports"),
            "{e}"
        );
        assert_eq!(run(&["-ms", "0"], &[]).unwrap().https, None);
    }

    #[test]
    fn port_minus_one_is_random() {
        assert_eq!(run(&["-p", "-1"], &[]).unwrap().port, 0);
    }
}
