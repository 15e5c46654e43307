//! `nats-mini bench` arguments, parsed by hand (the broker has no argument-parsing dependency):
//! `--flag value`, `--flag=value` and `-flag value` are the same; boolean flags stand alone.

use crate::options::{parse_duration, parse_size};
use std::time::Duration;

/// What a bench run measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scenario {
    /// Publishers only: how fast the server takes messages in.
    Pub,
    /// Subscribers only, counting what an outside publisher (another `bench pub`) sends.
    Sub,
    /// P publishers → S subscribers on one subject.
    PubSub,
    /// One publisher → many subscribers (pubsub with 8 subscribers by default).
    Fanout,
    /// Publishers → a queue group of S members; checks exactly-once delivery.
    Queue,
    /// Request/reply latency with S responders, sequential or with N requests in flight.
    ReqRep,
    /// C idle connections; the server's resident memory per connection.
    Conns,
}

impl Scenario {
    pub const ALL: [Scenario; 7] = [
        Scenario::Pub,
        Scenario::Sub,
        Scenario::PubSub,
        Scenario::Fanout,
        Scenario::Queue,
        Scenario::ReqRep,
        Scenario::Conns,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Scenario::Pub => "pub",
            Scenario::Sub => "sub",
            Scenario::PubSub => "pubsub",
            Scenario::Fanout => "fanout",
            Scenario::Queue => "queue",
            Scenario::ReqRep => "reqrep",
            Scenario::Conns => "conns",
        }
    }

    pub fn from_name(s: &str) -> Option<Scenario> {
        Scenario::ALL.into_iter().find(|sc| sc.name() == s)
    }
}

/// A server to connect to, from `nats://[user:pass@|token@]host[:port]` or `host:port`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerUrl {
    pub host: String,
    pub port: u16,
    /// `tls://`: the connection is upgraded to TLS after INFO.
    pub tls: bool,
    pub user: Option<String>,
    pub pass: Option<String>,
    pub token: Option<String>,
}

impl ServerUrl {
    pub fn parse(s: &str) -> Result<ServerUrl, String> {
        let t = s.trim();
        let mut tls = false;
        let rest = if let Some((scheme, rest)) = t.split_once("://") {
            match scheme {
                "nats" | "tcp" => rest,
                "tls" => {
                    tls = true;
                    rest
                }
                other => return Err(format!("{s:?}: unsupported scheme {other:?}")),
            }
        } else {
            t
        };
        let rest = rest.trim_end_matches('/');
        let (cred, hostport) = match rest.rsplit_once('@') {
            Some((c, h)) => (Some(c), h),
            None => (None, rest),
        };
        let (user, pass, token) = match cred {
            None => (None, None, None),
            Some(c) => match c.split_once(':') {
                Some((u, p)) => (Some(u.to_string()), Some(p.to_string()), None),
                None => (None, None, Some(c.to_string())),
            },
        };
        let (host, port) = if let Some(h) = hostport.strip_prefix('[') {
            // [v6]:port or [v6]
            let (h, after) = h
                .split_once(']')
                .ok_or_else(|| format!("{s:?}: unclosed '['"))?;
            let port = match after.strip_prefix(':') {
                Some(p) => p.parse().map_err(|_| format!("{s:?}: invalid port"))?,
                None if after.is_empty() => 4222,
                None => return Err(format!("{s:?}: invalid address")),
            };
            (h.to_string(), port)
        } else {
            match hostport.rsplit_once(':') {
                Some((h, p)) => (
                    h.to_string(),
                    p.parse()
                        .map_err(|_| format!("{s:?}: invalid port {p:?}"))?,
                ),
                None => (hostport.to_string(), 4222),
            }
        };
        if host.is_empty() {
            return Err(format!("{s:?}: missing host"));
        }
        Ok(ServerUrl {
            host,
            port,
            tls,
            user,
            pass,
            token,
        })
    }

    /// `host:port` for connecting.
    pub fn addr(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// Everything a bench run needs. [`Config::new`] gives each scenario's defaults.
#[derive(Debug, Clone)]
pub struct Config {
    pub scenario: Scenario,
    /// Messages to publish in total, split among the publishers (requests for `reqrep`,
    /// messages each subscriber waits for in `sub`). Ignored when `duration` is set.
    pub msgs: u64,
    /// Publish for this long instead of a count.
    pub duration: Option<Duration>,
    /// Payload bytes per message.
    pub size: usize,
    /// Publishers (requesters for `reqrep`).
    pub pubs: usize,
    /// Subscribers (queue members for `queue`, responders for `reqrep`).
    pub subs: usize,
    pub subject: String,
    /// Publishers connect to the first, subscribers to the second (or the first again).
    pub servers: Vec<ServerUrl>,
    pub user: Option<String>,
    pub pass: Option<String>,
    pub token: Option<String>,
    /// The CA that signed the servers' certificates (`tls://` URLs), and an optional client
    /// certificate and key for servers that verify clients.
    pub tls_ca: Option<std::path::PathBuf>,
    pub tls_cert: Option<std::path::PathBuf>,
    pub tls_key: Option<std::path::PathBuf>,
    /// Requests in flight per requester (`reqrep`); 1 is sequential.
    pub inflight: usize,
    /// Idle connections to open (`conns`).
    pub conns: usize,
    /// Source addresses 127.0.0.1 … 127.0.0.K to spread `conns` over (loopback servers).
    pub sources: usize,
    /// The server's monitoring base URL (`http://host:port`), for `/varz` memory.
    pub monitor: Option<String>,
    /// Bytes per publisher write.
    pub batch: usize,
    /// How long subscribers wait for stragglers once publishers are done.
    pub wait: Duration,
    /// Read the server process's CPU time from `/proc/PID/stat` around the run.
    pub server_pid: Option<u32>,
    /// Labels carried into the JSON report (for `bench compare`).
    pub label: Option<String>,
    pub name: Option<String>,
    pub json: bool,
    pub progress: bool,
}

impl Config {
    pub fn new(scenario: Scenario) -> Config {
        let (msgs, subs, size) = match scenario {
            Scenario::Pub => (1_000_000, 0, 128),
            Scenario::Sub | Scenario::PubSub => (1_000_000, 1, 128),
            Scenario::Fanout => (250_000, 8, 128),
            Scenario::Queue => (1_000_000, 4, 128),
            Scenario::ReqRep => (20_000, 1, 128),
            Scenario::Conns => (0, 0, 0),
        };
        Config {
            scenario,
            msgs,
            duration: None,
            size,
            pubs: if scenario == Scenario::Sub { 0 } else { 1 },
            subs,
            subject: "bench".into(),
            servers: vec![ServerUrl::parse("127.0.0.1:4222").expect("default url")],
            user: None,
            pass: None,
            token: None,
            tls_ca: None,
            tls_cert: None,
            tls_key: None,
            inflight: 1,
            conns: 1000,
            sources: 4,
            monitor: None,
            batch: 64 * 1024,
            wait: Duration::from_secs(2),
            server_pid: None,
            label: None,
            name: None,
            json: false,
            progress: true,
        }
    }

    /// Where publishers (and requesters) connect.
    pub fn pub_server(&self) -> &ServerUrl {
        &self.servers[0]
    }

    /// Where subscribers (and responders) connect: the second server when there is one.
    pub fn sub_server(&self) -> &ServerUrl {
        self.servers.get(1).unwrap_or(&self.servers[0])
    }

    fn validate(&self) -> Result<(), String> {
        let needs_pubs = !matches!(self.scenario, Scenario::Sub | Scenario::Conns);
        if needs_pubs && self.pubs == 0 {
            return Err("--pubs must be at least 1".into());
        }
        let needs_subs = !matches!(self.scenario, Scenario::Pub | Scenario::Conns);
        if needs_subs && self.subs == 0 {
            return Err("--subs must be at least 1".into());
        }
        if self.duration.is_none() && self.msgs == 0 && self.scenario != Scenario::Conns {
            return Err("--msgs must be at least 1 (or give --duration)".into());
        }
        if self.scenario == Scenario::Queue && self.size < 8 {
            return Err("queue numbers its payloads: --size must be at least 8".into());
        }
        if self.inflight == 0 {
            return Err("--inflight must be at least 1".into());
        }
        if self.scenario == Scenario::Conns && self.conns == 0 {
            return Err("--conns must be at least 1".into());
        }
        if self.sources == 0 || self.sources > 254 {
            return Err("--sources must be between 1 and 254".into());
        }
        if self.servers.iter().any(|s| s.tls) && self.tls_ca.is_none() {
            return Err(
                "tls:// servers need --tlsca (the CA that signed their certificates)".into(),
            );
        }
        if self.tls_cert.is_some() != self.tls_key.is_some() {
            return Err("--tlscert and --tlskey go together".into());
        }
        if self.subject.is_empty() || self.subject.contains(char::is_whitespace) {
            return Err(format!("invalid subject {:?}", self.subject));
        }
        Ok(())
    }
}

/// `bench compare`: medians and ratios over JSON reports of several servers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompareConfig {
    /// Files of JSON reports, one per line (`bench … --json` output).
    pub inputs: Vec<String>,
    /// The label the ratios are taken of (`nats-mini` by default).
    pub baseline: String,
    pub svg: Option<String>,
    pub markdown: Option<String>,
    pub json: bool,
}

/// What the arguments after `bench` ask for.
#[derive(Debug)]
pub enum Command {
    Run(Box<Config>),
    Compare(CompareConfig),
    Help,
}

pub fn usage() -> &'static str {
    "Usage: nats-mini bench SCENARIO [options]\n\
     \x20      nats-mini bench compare [--svg FILE] [--markdown FILE] [--baseline LABEL] FILE...\n\n\
     Scenarios (any NATS server):\n\
     \x20 pub      publishers only\n\
     \x20 sub      subscribers only, counting what another `bench pub` sends\n\
     \x20 pubsub   P publishers -> S subscribers on one subject\n\
     \x20 fanout   1 publisher -> 8 subscribers (change with --pubs/--subs)\n\
     \x20 queue    publishers -> a queue group of S members, checking exactly-once delivery\n\
     \x20 reqrep   request/reply latency; S responders, --inflight N requests in flight\n\
     \x20 conns    C idle connections; server memory per connection from /varz (needs --monitor)\n\n\
     Options:\n\
     \x20 --msgs N          messages to publish in total (requests for reqrep)\n\
     \x20 --duration D      publish for D (5s, 500ms) instead of a count\n\
     \x20 --size N          payload bytes (16, 128, 64KiB)\n\
     \x20 --pubs N          publishers (requesters)\n\
     \x20 --subs N          subscribers (queue members, responders)\n\
     \x20 --subject S       subject (default bench)\n\
     \x20 --server URL      nats://[user:pass@]host:port; repeat or comma-separate: publishers\n\
     \x20                   use the first, subscribers the second (cluster runs)\n\
     \x20 --user U --pass P / --token T   credentials\n\
     \x20 --tlsca FILE     CA of tls:// servers (--tlscert/--tlskey: a client certificate)\n\
     \x20 --inflight N      reqrep: requests in flight per requester (default 1: sequential)\n\
     \x20 --conns C         conns: connections to open (default 1000)\n\
     \x20 --sources K       conns: spread over source addresses 127.0.0.1..K (default 4)\n\
     \x20 --monitor URL     server monitoring base URL (http://127.0.0.1:8222) for /varz mem\n\
     \x20 --server-pid PID  report the server's CPU time per million messages\n\
     \x20 --batch BYTES     bytes per publisher write (default 64KiB)\n\
     \x20 --wait D          how long subscribers wait for stragglers (default 2s)\n\
     \x20 --label L --name N  labels carried into --json output (for compare)\n\
     \x20 --json            one JSON report on stdout instead of the table\n\
     \x20 --no-progress     no progress bar (it shows only when stderr is a terminal)\n\n\
     compare reads JSON reports (one per line) of several servers and rounds, and prints per\n\
     case the median of each server and the ratio baseline / server; --svg draws a chart.\n"
}

fn positive(v: &str, flag: &str) -> Result<u64, String> {
    parse_size(v).map_err(|e| format!("invalid value {v:?} for --{flag}: {e}"))
}

fn count(v: &str, flag: &str) -> Result<usize, String> {
    usize::try_from(positive(v, flag)?).map_err(|_| format!("--{flag} is too large"))
}

fn duration(v: &str, flag: &str) -> Result<Duration, String> {
    parse_duration(v).map_err(|e| format!("invalid value {v:?} for --{flag}: {e}"))
}

/// Splits `args` into (flag name, value) pairs with `boolean` flags taking no value, plus
/// positional arguments.
#[allow(clippy::type_complexity)]
fn split(
    args: &[String],
    boolean: &[&str],
) -> Result<(Vec<(String, Option<String>)>, Vec<String>), String> {
    let mut flags = Vec::new();
    let mut positional = Vec::new();
    let mut i = 0;
    while i < args.len() {
        let a = &args[i];
        i += 1;
        if !a.starts_with('-') || a == "-" {
            positional.push(a.clone());
            continue;
        }
        let body = a.trim_start_matches('-');
        let (name, inline) = match body.split_once('=') {
            Some((n, v)) => (n.to_string(), Some(v.to_string())),
            None => (body.to_string(), None),
        };
        if boolean.contains(&name.as_str()) {
            flags.push((name, inline));
            continue;
        }
        let value = match inline {
            Some(v) => v,
            None => {
                let v = args
                    .get(i)
                    .cloned()
                    .ok_or_else(|| format!("--{name} needs a value"))?;
                i += 1;
                v
            }
        };
        flags.push((name, Some(value)));
    }
    Ok((flags, positional))
}

fn bool_flag(name: &str, v: Option<&str>) -> Result<bool, String> {
    match v.map(str::to_ascii_lowercase).as_deref() {
        None | Some("true") | Some("1") | Some("yes") => Ok(true),
        Some("false") | Some("0") | Some("no") => Ok(false),
        Some(other) => Err(format!("invalid value {other:?} for --{name}")),
    }
}

/// Parses the arguments after `bench`.
pub fn parse(args: &[String]) -> Result<Command, String> {
    let Some(first) = args.first() else {
        return Err("missing scenario".into());
    };
    match first.as_str() {
        "-h" | "--help" | "-help" | "help" => return Ok(Command::Help),
        "compare" => return parse_compare(&args[1..]),
        _ => {}
    }
    let scenario =
        Scenario::from_name(first).ok_or_else(|| format!("unknown scenario {first:?}"))?;
    let mut c = Config::new(scenario);
    let (flags, positional) = split(&args[1..], &["json", "no-progress", "help", "h"])?;
    if let Some(p) = positional.first() {
        return Err(format!("unexpected argument {p:?}"));
    }
    let mut servers: Vec<ServerUrl> = Vec::new();
    let mut subs_given = false;
    for (name, value) in flags {
        let v = value.as_deref().unwrap_or("");
        match name.as_str() {
            "help" | "h" => return Ok(Command::Help),
            "json" => c.json = bool_flag(&name, value.as_deref())?,
            "no-progress" => c.progress = !bool_flag(&name, value.as_deref())?,
            "msgs" | "n" => c.msgs = positive(v, &name)?,
            "duration" | "d" => c.duration = Some(duration(v, &name)?),
            "size" => c.size = count(v, &name)?,
            "pubs" => c.pubs = count(v, &name)?,
            "subs" => {
                c.subs = count(v, &name)?;
                subs_given = true;
            }
            "subject" => c.subject = v.to_string(),
            "server" | "s" => {
                for part in v.split(',').filter(|p| !p.trim().is_empty()) {
                    servers.push(ServerUrl::parse(part)?);
                }
            }
            "user" => c.user = Some(v.to_string()),
            "pass" | "password" => c.pass = Some(v.to_string()),
            "token" => c.token = Some(v.to_string()),
            "tlsca" => c.tls_ca = Some(v.into()),
            "tlscert" => c.tls_cert = Some(v.into()),
            "tlskey" => c.tls_key = Some(v.into()),
            "inflight" => c.inflight = count(v, &name)?,
            "conns" => c.conns = count(v, &name)?,
            "sources" => c.sources = count(v, &name)?,
            "monitor" => c.monitor = Some(v.trim_end_matches('/').to_string()),
            "batch" => c.batch = count(v, &name)?.max(1),
            "wait" => c.wait = duration(v, &name)?,
            "server-pid" => {
                c.server_pid = Some(
                    v.parse()
                        .map_err(|_| format!("invalid value {v:?} for --server-pid"))?,
                )
            }
            "label" => c.label = Some(v.to_string()),
            "name" => c.name = Some(v.to_string()),
            "svg" => return Err("--svg belongs to `bench compare`".into()),
            other => return Err(format!("unknown flag --{other}")),
        }
    }
    if !servers.is_empty() {
        c.servers = servers;
    }
    if scenario == Scenario::Sub && !subs_given {
        c.subs = 1;
    }
    c.validate()?;
    Ok(Command::Run(Box::new(c)))
}

fn parse_compare(args: &[String]) -> Result<Command, String> {
    let (flags, inputs) = split(args, &["json", "help", "h"])?;
    let mut c = CompareConfig {
        inputs,
        baseline: "nats-mini".into(),
        svg: None,
        markdown: None,
        json: false,
    };
    for (name, value) in flags {
        let v = value.clone().unwrap_or_default();
        match name.as_str() {
            "help" | "h" => return Ok(Command::Help),
            "json" => c.json = bool_flag(&name, value.as_deref())?,
            "svg" => c.svg = Some(v),
            "markdown" | "md" => c.markdown = Some(v),
            "baseline" => c.baseline = v,
            other => return Err(format!("unknown flag --{other} for compare")),
        }
    }
    if c.inputs.is_empty() {
        return Err("compare needs at least one file of JSON reports".into());
    }
    Ok(Command::Compare(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    fn run(a: &[&str]) -> Config {
        match parse(&args(a)).unwrap() {
            Command::Run(c) => *c,
            other => panic!("expected a run, got {other:?}"),
        }
    }

    #[test]
    fn scenario_defaults() {
        let c = run(&["pubsub"]);
        assert_eq!((c.pubs, c.subs, c.size, c.msgs), (1, 1, 128, 1_000_000));
        assert_eq!(c.servers[0].addr(), "127.0.0.1:4222");
        assert!(c.progress && !c.json);
        assert_eq!(run(&["fanout"]).subs, 8);
        assert_eq!(run(&["queue"]).subs, 4);
        assert_eq!(run(&["pub"]).subs, 0);
        let s = run(&["sub"]);
        assert_eq!((s.pubs, s.subs), (0, 1));
        assert_eq!(run(&["reqrep"]).inflight, 1);
    }

    #[test]
    fn flags_in_every_spelling() {
        let c = run(&[
            "pubsub",
            "--msgs",
            "10k",
            "-size=16",
            "--pubs",
            "2",
            "--subs=3",
            "--subject",
            "foo.bar",
            "--json",
            "--no-progress",
            "--duration",
            "1.5s",
            "--wait=500ms",
            "--server-pid",
            "42",
        ]);
        assert_eq!(c.msgs, 10_000);
        assert_eq!(c.size, 16);
        assert_eq!((c.pubs, c.subs), (2, 3));
        assert_eq!(c.subject, "foo.bar");
        assert!(c.json && !c.progress);
        assert_eq!(c.duration, Some(Duration::from_millis(1500)));
        assert_eq!(c.wait, Duration::from_millis(500));
        assert_eq!(c.server_pid, Some(42));
        assert_eq!(run(&["pub", "--size", "64KiB"]).size, 65536);
        assert!(!run(&["pub", "--no-progress=true"]).progress);
        assert!(!run(&["pub", "--json=false"]).json);
    }

    #[test]
    fn servers_repeat_or_comma_separate() {
        let c = run(&[
            "pubsub",
            "--server",
            "nats://a:1,nats://b:2",
            "--server",
            "c",
        ]);
        let addrs: Vec<String> = c.servers.iter().map(ServerUrl::addr).collect();
        assert_eq!(addrs, ["a:1", "b:2", "c:4222"]);
        assert_eq!(c.pub_server().addr(), "a:1");
        assert_eq!(c.sub_server().addr(), "b:2");
        let one = run(&["pubsub", "--server", "x:5"]);
        assert_eq!(one.sub_server().addr(), "x:5");
    }

    #[test]
    fn urls() {
        let u = ServerUrl::parse("nats://bob:s3cret@127.0.0.1:4333").unwrap();
        assert_eq!(u.user.as_deref(), Some("bob"));
        assert_eq!(u.pass.as_deref(), Some("s3cret"));
        assert_eq!(u.addr(), "127.0.0.1:4333");
        let t = ServerUrl::parse("nats://tok@host").unwrap();
        assert_eq!((t.token.as_deref(), t.port), (Some("tok"), 4222));
        assert_eq!(ServerUrl::parse("[::1]:5").unwrap().addr(), "[::1]:5");
        let t = ServerUrl::parse("tls://h:1").unwrap();
        assert!(t.tls && !ServerUrl::parse("nats://h:1").unwrap().tls);
        assert!(ServerUrl::parse("http://h:1").is_err());
        let e = parse(&args(&["pubsub", "--server", "tls://h:1"])).unwrap_err();
        assert!(e.contains("--tlsca"), "{e}");
        let c = run(&["pubsub", "--server", "tls://h:1", "--tlsca", "/ca.pem"]);
        assert_eq!(c.tls_ca.as_deref(), Some(std::path::Path::new("/ca.pem")));
        assert!(ServerUrl::parse("nats://h:x").is_err());
        assert!(ServerUrl::parse("nats://:4222").is_err());
    }

    #[test]
    fn errors_name_the_flag() {
        let e = |a: &[&str]| parse(&args(a)).unwrap_err();
        assert!(e(&[]).contains("missing scenario"));
        assert!(e(&["nope"]).contains("nope"));
        assert!(e(&["pub", "--msgs", "lots"]).contains("--msgs"));
        assert!(e(&["pub", "--msgs"]).contains("needs a value"));
        assert!(e(&["pub", "--bogus", "1"]).contains("--bogus"));
        assert!(e(&["pubsub", "--subs", "0"]).contains("--subs"));
        assert!(e(&["queue", "--size", "4"]).contains("--size"));
        assert!(e(&["pub", "extra"]).contains("extra"));
        assert!(e(&["pub", "--svg", "x.svg"]).contains("compare"));
    }

    #[test]
    fn compare_and_help() {
        match parse(&args(&["compare", "a.jsonl", "--svg", "c.svg", "b.jsonl"])).unwrap() {
            Command::Compare(c) => {
                assert_eq!(c.inputs, ["a.jsonl", "b.jsonl"]);
                assert_eq!(c.svg.as_deref(), Some("c.svg"));
                assert_eq!(c.baseline, "nats-mini");
            }
            other => panic!("{other:?}"),
        }
        assert!(parse(&args(&["compare"])).is_err());
        assert!(matches!(parse(&args(&["--help"])).unwrap(), Command::Help));
        assert!(matches!(
            parse(&args(&["pub", "-h"])).unwrap(),
            Command::Help
        ));
    }
}
