//! `nats-mini tune`: the host tuning a busy broker wants, written by the broker image itself
//! (the operator and chart run it in a privileged init container, so no shell or extra image
//! is needed): the listen backlog limit `net.core.somaxconn` and, optionally, the node-wide
//! open-file ceiling `fs.file-max`. It reports what it set, and fails with the sysctl's name
//! when it cannot write it.

use std::path::Path;

const SOMAXCONN: &str = "/proc/sys/net/core/somaxconn";
const FILE_MAX: &str = "/proc/sys/fs/file-max";

/// What `tune` was asked to do.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Tune {
    pub somaxconn: Option<u64>,
    pub file_max: Option<u64>,
}

pub fn usage() -> &'static str {
    "Usage: nats-mini tune [--somaxconn N] [--file-max N]\n\n\
     Writes net.core.somaxconn and fs.file-max (node-wide) and reports the values in force.\n\
     Needs privileges (a privileged init container on Kubernetes).\n"
}

/// Parses the arguments after `tune`.
pub fn parse(args: &[String]) -> Result<Tune, String> {
    let mut t = Tune::default();
    let mut i = 0;
    while i < args.len() {
        let a = args[i].trim_start_matches('-');
        let (name, inline) = match a.split_once('=') {
            Some((n, v)) => (n, Some(v.to_string())),
            None => (a, None),
        };
        let value = match inline {
            Some(v) => v,
            None => {
                i += 1;
                args.get(i)
                    .cloned()
                    .ok_or_else(|| format!("--{name} needs a value"))?
            }
        };
        let n: u64 = value
            .parse()
            .map_err(|_| format!("invalid value {value:?} for --{name}: expected a number"))?;
        match name {
            "somaxconn" => t.somaxconn = Some(n),
            "file-max" | "file_max" => t.file_max = Some(n),
            _ => return Err(format!("unknown flag --{name}")),
        }
        i += 1;
    }
    if t.somaxconn.is_none() && t.file_max.is_none() {
        return Err("nothing to do: give --somaxconn and/or --file-max".into());
    }
    Ok(t)
}

fn write_sysctl(path: &Path, name: &str, value: u64) -> Result<u64, String> {
    std::fs::write(path, format!("{value}\n"))
        .map_err(|e| format!("cannot set {name}={value}: {e}"))?;
    read_sysctl(path, name)
}

fn read_sysctl(path: &Path, name: &str) -> Result<u64, String> {
    std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {name}: {e}"))?
        .trim()
        .parse()
        .map_err(|_| format!("cannot parse {name}"))
}

/// Applies `t` under `root` (`/` in production; a temporary directory in tests). Returns one
/// report line per setting.
pub fn apply(t: &Tune, root: &Path) -> Result<Vec<String>, String> {
    let mut report = Vec::new();
    for (want, rel, name) in [
        (t.somaxconn, SOMAXCONN, "net.core.somaxconn"),
        (t.file_max, FILE_MAX, "fs.file-max"),
    ] {
        let Some(v) = want else { continue };
        let path = root.join(rel.trim_start_matches('/'));
        let now = write_sysctl(&path, name, v)?;
        report.push(format!("{name} = {now}"));
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn parses_flags() {
        assert_eq!(
            parse(&args(&["--somaxconn", "8192", "--file-max=100000"])).unwrap(),
            Tune {
                somaxconn: Some(8192),
                file_max: Some(100000)
            }
        );
        assert!(parse(&args(&[])).is_err());
        assert!(
            parse(&args(&["--somaxconn", "lots"]))
                .unwrap_err()
                .contains("lots")
        );
        assert!(parse(&args(&["--bogus", "1"])).is_err());
    }

    #[test]
    fn writes_and_reports_under_a_root() {
        let root = std::env::temp_dir().join(format!("nm-tune-{}", std::process::id()));
        std::fs::create_dir_all(root.join("proc/sys/net/core")).unwrap();
        std::fs::create_dir_all(root.join("proc/sys/fs")).unwrap();
        let t = Tune {
            somaxconn: Some(8192),
            file_max: Some(500000),
        };
        let report = apply(&t, &root).unwrap();
        assert_eq!(
            report,
            vec!["net.core.somaxconn = 8192", "fs.file-max = 500000"]
        );
        assert_eq!(
            std::fs::read_to_string(root.join("proc/sys/net/core/somaxconn")).unwrap(),
            "8192\n"
        );
        std::fs::remove_dir_all(&root).unwrap();
        let err = apply(&t, Path::new("/nonexistent-root")).unwrap_err();
        assert!(err.contains("net.core.somaxconn"), "{err}");
    }
}
