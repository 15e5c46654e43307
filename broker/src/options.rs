//! Server options: the embedded defaults, their validation, and the value syntaxes (sizes,
//! durations, listen addresses) shared by flags, environment variables and config files.
//!
//! Defaults are nats-mini's own, not nats-server's: they are tuned for today's payloads and
//! failure detection (2 MiB payloads, 128 MiB pending, 2 s write deadline, 60 s pings).

use std::time::Duration;

pub const DEFAULT_HOST: &str = "0.0.0.0";
pub const DEFAULT_PORT: u16 = 4222;
pub const DEFAULT_HTTP: &str = "0.0.0.0:8222";
pub const DEFAULT_MAX_CONNS: usize = 65536;
pub const DEFAULT_WRITE_DEADLINE: Duration = Duration::from_secs(2);
/// How long a worker keeps polling after interactive traffic (see [`crate::conn::busy_poll`]).
pub const DEFAULT_BUSY_POLL: Duration = Duration::from_micros(50);
pub const DEFAULT_MAX_PAYLOAD: usize = 2 * 1024 * 1024;
pub const DEFAULT_MAX_PENDING: usize = 128 * 1024 * 1024;
pub const DEFAULT_MAX_CONTROL_LINE: usize = 4096;
pub const DEFAULT_PING_INTERVAL: Duration = Duration::from_secs(60);
pub const DEFAULT_PING_MAX: u32 = 3;
pub const DEFAULT_LAME_DUCK_DURATION: Duration = Duration::from_secs(30);
pub const DEFAULT_LAME_DUCK_GRACE_PERIOD: Duration = Duration::from_secs(10);
pub const DEFAULT_MAX_CLOSED_CLIENTS: usize = 10_000;
pub const DEFAULT_AUTH_TIMEOUT: Duration = Duration::from_secs(2);
/// The first server PING comes soon after CONNECT (nats-server: min(ping_interval, 2 s)), so
/// the RTT is known early and dead peers are found quickly.
pub const FIRST_PING_DELAY: Duration = Duration::from_secs(2);

/// The nats-server release whose client-visible behaviour nats-mini matches. Clients gate
/// features on INFO `version`, so this is what INFO and `/varz` report; nats-mini's own name
/// and version go in the `go` field and the startup log.
pub const COMPAT_VERSION: &str = "2.15.1";

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    Error,
    Warn,
    Info,
    Debug,
    Trace,
}

impl LogLevel {
    pub fn parse(s: &str) -> Option<LogLevel> {
        Some(match s.to_ascii_lowercase().as_str() {
            "error" => LogLevel::Error,
            "warn" | "warning" => LogLevel::Warn,
            "info" => LogLevel::Info,
            "debug" => LogLevel::Debug,
            "trace" => LogLevel::Trace,
            _ => return None,
        })
    }
    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Error => "error",
            LogLevel::Warn => "warn",
            LogLevel::Info => "info",
            LogLevel::Debug => "debug",
            LogLevel::Trace => "trace",
        }
    }
}

/// Everything a [`crate::Server`] needs to run. Build it with [`Options::default`] and adjust
/// fields, or from the command line and environment with [`crate::cli`].
#[derive(Debug, Clone)]
pub struct Options {
    /// Client listener host (an IP literal or hostname).
    pub host: String,
    /// Client listener port; 0 picks a free port.
    pub port: u16,
    /// Monitoring listener `host:port`; `None` disables it.
    pub http: Option<(String, u16)>,
    /// Whether `http` was asked for explicitly. The default monitoring address may be taken
    /// (several servers on one host, as test harnesses run them): then the server starts
    /// without monitoring and warns, instead of failing.
    pub http_explicit: bool,
    /// Monitoring over TLS (nats-server's `https_port` / `-ms` / `https`): `host:port`, served
    /// with the `tls` block's certificate. Replaces plain-HTTP monitoring: the default `http`
    /// listener is not started, and an explicit `http` as well is an error (as in nats-server).
    pub https: Option<(String, u16)>,
    /// Route listener `host:port` (clustering).
    pub cluster: Option<(String, u16)>,
    /// Seed route URLs.
    pub routes: Vec<String>,
    /// Token clients must present (as `auth_token`, or as the password).
    pub auth_token: Option<String>,
    pub server_name: Option<String>,
    pub max_conns: usize,
    pub max_payload: usize,
    pub max_pending: usize,
    pub max_control_line: usize,
    pub write_deadline: Duration,
    /// The busy-poll window after interactive traffic; zero turns it off.
    pub busy_poll: Duration,
    pub ping_interval: Duration,
    pub ping_max: u32,
    pub auth_timeout: Duration,
    pub log_level: LogLevel,
    /// Connect to ourselves and round-trip a message before reporting ready.
    pub self_check: bool,
    /// How many closed connections `/connz?state=closed` remembers.
    pub max_closed_clients: usize,
    /// Prefix of every monitoring path (nats-server's `http_base_path`).
    pub http_base_path: String,
    /// Lame duck: total time to drain clients after SIGUSR2 / `--signal ldm`.
    pub lame_duck_duration: Duration,
    /// Lame duck: wait this long before closing the first client.
    pub lame_duck_grace_period: Duration,
    /// Write the process id here at start; removed at exit.
    pub pid_file: Option<std::path::PathBuf>,
    /// Also write logs to this file.
    pub log_file: Option<std::path::PathBuf>,
    /// Prefix log lines with the time (nats-server's `logtime`, default on).
    pub logtime: bool,
    /// Logs as JSON lines, for Kubernetes log pipelines.
    pub log_json: bool,
    /// Users (`authorization.users`) with optional permissions.
    pub users: Vec<crate::auth::User>,
    /// The user a client without credentials is bound to.
    pub no_auth_user: Option<String>,
    /// User and password clients must present (nats-server's single-user authorization).
    pub auth_user: Option<String>,
    pub auth_pass: Option<String>,
    /// Per-connection subscription limit (0 = unlimited).
    pub max_subscriptions: usize,
    /// `host:port` advertised to clients instead of the bind address.
    pub client_advertise: Option<String>,
    /// Directory for the `<exe>_<pid>.ports` file test harnesses wait for.
    pub ports_file_dir: Option<std::path::PathBuf>,
    pub cluster_name: Option<String>,
    pub cluster_advertise: Option<String>,
    pub cluster_user: Option<String>,
    pub cluster_pass: Option<String>,
    pub no_advertise: bool,
    pub connect_retries: u32,
    /// TLS for routes (`cluster.tls`): mutual, verified against its `ca_file`.
    pub cluster_tls: Option<crate::tls::TlsSettings>,
    /// The config file the options were read from (`-c`).
    pub config_file: Option<std::path::PathBuf>,
    /// Reload by itself when the config file's content changes (default on with `-c`).
    pub config_watch: bool,
    /// TLS for client connections.
    pub tls: Option<crate::tls::TlsSettings>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            host: DEFAULT_HOST.to_string(),
            port: DEFAULT_PORT,
            http: parse_host_port(DEFAULT_HTTP, 8222).ok(),
            http_explicit: false,
            https: None,
            cluster: None,
            routes: Vec::new(),
            auth_token: None,
            server_name: None,
            max_conns: DEFAULT_MAX_CONNS,
            max_payload: DEFAULT_MAX_PAYLOAD,
            max_pending: DEFAULT_MAX_PENDING,
            max_control_line: DEFAULT_MAX_CONTROL_LINE,
            write_deadline: DEFAULT_WRITE_DEADLINE,
            busy_poll: DEFAULT_BUSY_POLL,
            ping_interval: DEFAULT_PING_INTERVAL,
            ping_max: DEFAULT_PING_MAX,
            auth_timeout: DEFAULT_AUTH_TIMEOUT,
            log_level: LogLevel::Info,
            self_check: true,
            max_closed_clients: DEFAULT_MAX_CLOSED_CLIENTS,
            http_base_path: String::new(),
            lame_duck_duration: DEFAULT_LAME_DUCK_DURATION,
            lame_duck_grace_period: DEFAULT_LAME_DUCK_GRACE_PERIOD,
            pid_file: None,
            log_file: None,
            logtime: true,
            log_json: false,
            users: Vec::new(),
            no_auth_user: None,
            auth_user: None,
            auth_pass: None,
            max_subscriptions: 0,
            client_advertise: None,
            ports_file_dir: None,
            cluster_name: None,
            cluster_advertise: None,
            cluster_user: None,
            cluster_pass: None,
            no_advertise: false,
            connect_retries: 0,
            cluster_tls: None,
            config_file: None,
            config_watch: true,
            tls: None,
        }
    }
}

impl Options {
    /// The plain-HTTP monitoring listener to start: `http`, unless HTTPS monitoring replaces
    /// the default one.
    pub fn http_listener(&self) -> Option<&(String, u16)> {
        if self.https.is_some() && !self.http_explicit {
            return None;
        }
        self.http.as_ref()
    }

    /// Options for tests and embedding: loopback, a free port, no monitoring.
    pub fn ephemeral() -> Self {
        Options {
            host: "127.0.0.1".into(),
            port: 0,
            http: None,
            ..Options::default()
        }
    }

    /// Cross-field checks, with messages that name the options involved.
    pub fn validate(&self) -> Result<(), String> {
        if self.max_payload > self.max_pending {
            return Err(format!(
                "max_payload ({}) cannot be larger than max_pending ({})",
                self.max_payload, self.max_pending
            ));
        }
        if self.max_control_line == 0 {
            return Err("max_control_line must be greater than 0".into());
        }
        if self.write_deadline.is_zero() {
            return Err("write_deadline must be greater than 0".into());
        }
        if self.ping_interval.is_zero() {
            return Err("ping_interval must be greater than 0".into());
        }
        if let Some((_, https_port)) = &self.https {
            if self.tls.is_none() {
                return Err(
                    "https_port: TLS cert and key required for HTTPS (monitoring over TLS uses the tls block's certificate)"
                        .into(),
                );
            }
            if self.http_explicit
                && let Some((_, http_port)) = &self.http
            {
                return Err(format!(
                    "http_port/https_port: can't specify both HTTP ({http_port}) and HTTPs ({https_port}) ports"
                ));
            }
        }
        if let Some(u) = &self.no_auth_user
            && !self.users.iter().any(|x| &x.name == u)
        {
            return Err(format!(
                "no_auth_user: user {u:?} is not in authorization users"
            ));
        }
        if self.lame_duck_grace_period >= self.lame_duck_duration {
            return Err(format!(
                "lame_duck_grace_period ({:?}) must be less than lame_duck_duration ({:?})",
                self.lame_duck_grace_period, self.lame_duck_duration
            ));
        }
        Ok(())
    }
}

/// Parses a size as nats-server does: `k/m/g/t` are powers of 1000, `kb/ki/kib` (and the
/// m, g, t forms) powers of 1024; case-insensitive.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let digits_end = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    if digits_end == 0 {
        return Err(format!("invalid size {s:?}"));
    }
    let n: u64 = t[..digits_end]
        .parse()
        .map_err(|_| format!("invalid size {s:?}"))?;
    let mult: u64 = match t[digits_end..].trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" => 1_000,
        "m" => 1_000_000,
        "g" => 1_000_000_000,
        "t" => 1_000_000_000_000,
        "kb" | "ki" | "kib" => 1 << 10,
        "mb" | "mi" | "mib" => 1 << 20,
        "gb" | "gi" | "gib" => 1 << 30,
        "tb" | "ti" | "tib" => 1 << 40,
        _ => return Err(format!("invalid size {s:?}")),
    };
    n.checked_mul(mult)
        .ok_or_else(|| format!("size {s:?} is too large"))
}

/// Parses a Go-style duration (`2s`, `1m30s`, `500ms`, `1h`); a bare number means seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    if t.is_empty() {
        return Err("empty duration".into());
    }
    if let Ok(secs) = t.parse::<f64>() {
        if secs < 0.0 || !secs.is_finite() {
            return Err(format!("invalid duration {s:?}"));
        }
        return Ok(Duration::from_secs_f64(secs));
    }
    let mut total = Duration::ZERO;
    let mut rest = t;
    while !rest.is_empty() {
        let num_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(|| format!("invalid duration {s:?}: missing unit"))?;
        if num_end == 0 {
            return Err(format!("invalid duration {s:?}"));
        }
        let n: f64 = rest[..num_end]
            .parse()
            .map_err(|_| format!("invalid duration {s:?}"))?;
        rest = &rest[num_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = match &rest[..unit_end] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            u => return Err(format!("invalid duration {s:?}: unknown unit {u:?}")),
        };
        total += Duration::from_secs_f64(n * unit);
        rest = &rest[unit_end..];
    }
    Ok(total)
}

/// Parses `host:port`, `[v6]:port`, `:port` (every interface) or a bare `port`.
pub fn parse_host_port(s: &str, default_port: u16) -> Result<(String, u16), String> {
    let t = s.trim();
    let t = t
        .strip_prefix("nats://")
        .or_else(|| t.strip_prefix("http://"))
        .unwrap_or(t);
    if t.is_empty() {
        return Err("empty address".into());
    }
    let port_of = |p: &str| -> Result<u16, String> {
        if p == "-1" {
            return Ok(0);
        }
        p.parse::<u16>()
            .map_err(|_| format!("invalid port {p:?} in {s:?}"))
    };
    if let Some(v6) = t.strip_prefix('[') {
        let (host, rest) = v6
            .split_once(']')
            .ok_or_else(|| format!("invalid address {s:?}"))?;
        let port = match rest.strip_prefix(':') {
            Some(p) => port_of(p)?,
            None if rest.is_empty() => default_port,
            None => return Err(format!("invalid address {s:?}")),
        };
        return Ok((host.to_string(), port));
    }
    if t.chars().all(|c| c.is_ascii_digit()) || t == "-1" {
        return Ok((DEFAULT_HOST.to_string(), port_of(t)?));
    }
    match t.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') => {
            let host = if host.is_empty() { DEFAULT_HOST } else { host };
            Ok((host.to_string(), port_of(port)?))
        }
        // A bare IPv6 address without a port.
        Some(_) => Ok((t.to_string(), default_port)),
        None => Ok((t.to_string(), default_port)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_as_nats_server_reads_them() {
        assert_eq!(parse_size("1024").unwrap(), 1024);
        assert_eq!(parse_size("1k").unwrap(), 1000);
        assert_eq!(parse_size("1K").unwrap(), 1000);
        assert_eq!(parse_size("1kb").unwrap(), 1024);
        assert_eq!(parse_size("2mb").unwrap(), 2 * 1024 * 1024);
        assert_eq!(parse_size("2MiB").unwrap(), 2 * 1024 * 1024);
        assert_eq!(parse_size("1m").unwrap(), 1_000_000);
        assert!(parse_size("x").is_err());
        assert!(parse_size("1x").is_err());
        assert!(parse_size("").is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("2").unwrap(), Duration::from_secs(2));
        assert_eq!(parse_duration("2s").unwrap(), Duration::from_secs(2));
        assert_eq!(parse_duration("1m30s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("1h").unwrap(), Duration::from_secs(3600));
        assert_eq!(parse_duration("0.5").unwrap(), Duration::from_millis(500));
        assert!(parse_duration("2x").is_err());
        assert!(parse_duration("s").is_err());
        assert!(parse_duration("-1").is_err());
    }

    #[test]
    fn host_ports() {
        assert_eq!(
            parse_host_port("0.0.0.0:4222", 1).unwrap(),
            ("0.0.0.0".into(), 4222)
        );
        assert_eq!(
            parse_host_port(":8222", 1).unwrap(),
            ("0.0.0.0".into(), 8222)
        );
        assert_eq!(
            parse_host_port("8222", 1).unwrap(),
            ("0.0.0.0".into(), 8222)
        );
        assert_eq!(
            parse_host_port("[::1]:4222", 1).unwrap(),
            ("::1".into(), 4222)
        );
        assert_eq!(
            parse_host_port("localhost", 7).unwrap(),
            ("localhost".into(), 7)
        );
        assert_eq!(
            parse_host_port("127.0.0.1:-1", 7).unwrap(),
            ("127.0.0.1".into(), 0)
        );
        assert!(parse_host_port("h:99999", 1).is_err());
        assert!(parse_host_port("h:abc", 1).is_err());
    }

    #[test]
    fn defaults_are_ours() {
        let o = Options::default();
        assert_eq!(o.port, 4222);
        assert_eq!(o.max_conns, 65536);
        assert_eq!(o.max_payload, 2 * 1024 * 1024);
        assert_eq!(o.max_pending, 128 * 1024 * 1024);
        assert_eq!(o.write_deadline, Duration::from_secs(2));
        assert_eq!(o.ping_interval, Duration::from_secs(60));
        assert_eq!(o.ping_max, 3);
        assert_eq!(o.http, Some(("0.0.0.0".into(), 8222)));
        assert!(o.validate().is_ok());
    }
}
