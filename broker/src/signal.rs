//! Talking to a running server from the command line (`--signal CMD[=PID|PIDFILE]`, as
//! nats-server's `-sl`), and the ports file test harnesses wait for.

use crate::Server;
use std::path::{Path, PathBuf};

/// The signal each `--signal` command sends, as in nats-server.
fn signal_of(command: &str) -> Option<libc::c_int> {
    Some(match command {
        "ldm" => libc::SIGUSR2,
        "reload" => libc::SIGHUP,
        "reopen" => libc::SIGUSR1,
        "quit" => libc::SIGINT,
        "term" => libc::SIGTERM,
        "stop" | "kill" => libc::SIGKILL,
        _ => return None,
    })
}

/// Finds the target: a pid, a pid file, or (without one) the single running nats-mini or
/// nats-server process other than ourselves.
fn resolve(target: Option<&str>) -> Result<i32, String> {
    if let Some(t) = target {
        let path = Path::new(t);
        let text = if path.is_file() {
            std::fs::read_to_string(path).map_err(|e| format!("cannot read pid file {t}: {e}"))?
        } else {
            t.to_string()
        };
        return text
            .trim()
            .parse::<i32>()
            .map_err(|_| format!("invalid pid or pid file {t:?}"));
    }
    let me = std::process::id() as i32;
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").map_err(|e| format!("cannot list processes: {e}"))? {
        let Ok(entry) = entry else { continue };
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        if pid == me {
            continue;
        }
        let comm = std::fs::read_to_string(entry.path().join("comm")).unwrap_or_default();
        if matches!(comm.trim(), "nats-mini" | "nats-server") {
            found.push(pid);
        }
    }
    match found.as_slice() {
        [pid] => Ok(*pid),
        [] => Err("no nats-mini or nats-server process found".into()),
        many => Err(format!(
            "multiple nats-mini/nats-server processes running ({many:?}): name one with CMD=PID"
        )),
    }
}

/// Sends `command`'s signal to the target; returns the pid signalled.
pub fn send(command: &str, target: Option<&str>) -> Result<i32, String> {
    let sig = signal_of(command).ok_or_else(|| {
        format!("unknown signal {command:?} (use ldm, reload, reopen, quit, term or stop)")
    })?;
    let pid = resolve(target)?;
    // SAFETY: kill has no memory-safety preconditions.
    if unsafe { libc::kill(pid, sig) } != 0 {
        return Err(format!(
            "cannot signal process {pid}: {}",
            std::io::Error::last_os_error()
        ));
    }
    Ok(pid)
}

/// Writes `<dir>/<exe>_<pid>.ports` with the server's URLs (what the nats.js harness waits
/// for). Returns the file's path.
pub fn write_ports_file(dir: &Path, exe: &str, server: &Server) -> Result<PathBuf, String> {
    let mut ports = serde_json::json!({ "nats": [server.client_url()] });
    if let Some(m) = server.monitor_url() {
        ports["monitoring"] = serde_json::json!([m]);
    }
    if let Some(c) = server.cluster_url() {
        ports["cluster"] = serde_json::json!([c]);
    }
    let path = dir.join(format!("{exe}_{}.ports", std::process::id()));
    std::fs::write(&path, ports.to_string())
        .map_err(|e| format!("cannot write ports file {}: {e}", path.display()))?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    #[test]
    fn commands_map_to_nats_server_signals() {
        assert_eq!(super::signal_of("ldm"), Some(libc::SIGUSR2));
        assert_eq!(super::signal_of("reload"), Some(libc::SIGHUP));
        assert_eq!(super::signal_of("term"), Some(libc::SIGTERM));
        assert_eq!(super::signal_of("bogus"), None);
    }

    #[test]
    fn explicit_pid_and_pid_file() {
        assert_eq!(super::resolve(Some("1234")), Ok(1234));
        let dir = std::env::temp_dir().join(format!("nm-pid-{}", std::process::id()));
        std::fs::write(&dir, "4321\n").unwrap();
        assert_eq!(super::resolve(Some(dir.to_str().unwrap())), Ok(4321));
        std::fs::remove_file(&dir).unwrap();
        assert!(super::resolve(Some("not-a-pid")).is_err());
    }
}
