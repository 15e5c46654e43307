"""HTTP monitoring (issue 4): nats-mini's /varz /connz /subsz /routez /healthz
compared with nats-server 2.15.1's under the same workload, plus /metrics.

Every test here starts its own servers with monitoring on (harness.Server
monitor=True), so it is independent of the other suites.  Differential tests
compare nats-server ("ref") with nats-mini ("sut"); in reference mode
(--server-only / DIFF_REFERENCE_ONLY=1) the "sut" is a second nats-server, so
the comparisons check the test itself.  Property tests run against each
server; /metrics exists on nats-mini only.

Not covered here: `http_base_path` (needs a config file for nats-mini),
/healthz before ready (a broker unit test: monitor::tests) and during lame duck
(tests/tests/lame_duck_reload.rs), slow consumers against
nats-server (its fast-producer stall makes provoking one take ~30 s; the
/metrics test provokes one on nats-mini only).

JSON type rules (the Go field type decides; see GO_TYPES below):
  int       Go int/int32/int64/uint32/uint64: a JSON integer (no fraction, no
            exponent: `2.0` is NOT an int)
  number    Go float64 (cpu, auth_timeout, tls_timeout, cache_hit_rate,
            avg_fanout): any JSON number; Go writes 2.0 as `2`, so a float64
            may look like an int
  dur_ns    Go time.Duration (ping_interval, write_deadline): integer
            nanoseconds
  time      Go time.Time: RFC 3339 UTC with up to 9 fraction digits and no
            trailing zeros (RFC3339Nano), e.g. 2026-11-23T16:07:28.9008924Z
  uptime    nats-server's own format: ^(\\d+y)?(\\d+d)?(\\d+h)?(\\d+m)?\\d+s$
  go_dur    Go Duration.String(), e.g. 601µs, 1.5ms, 0s (connz rtt)
  string / bool / object / list: as named
"""

from __future__ import annotations

import http.client
import json
import re
import socket
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable

import pytest

import harness
from conftest import binary_for, reference_only

pytestmark = pytest.mark.timeout(60)

REF = "nats-server"

# Both servers get the same limits so /varz config values can be compared
# (the defaults differ: ping 2m/2 vs 60s/3, max_pending 64 MiB vs 128 MiB,
# write_deadline 10s vs 2s, max_payload 1 MiB vs 2 MiB).
COMMON_OPTIONS: dict[str, Any] = {
    **harness.BASELINE_OPTIONS,
    "ping_interval": 120,
    "ping_max": 2,
    "max_pending": 67108864,
    "write_deadline": 10,
}

# ---------------------------------------------------------------------------
# HTTP
# ---------------------------------------------------------------------------


@dataclass
class Resp:
    status: int
    headers: dict[str, str]  # lower-case names
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


def http_get(srv: harness.Server, path: str) -> Resp:
    conn = http.client.HTTPConnection("127.0.0.1", srv.http_port, timeout=5)
    try:
        conn.request("GET", path)
        r = conn.getresponse()
        body = r.read()
        return Resp(r.status, {k.lower(): v for k, v in r.getheaders()}, body)
    finally:
        conn.close()


def get_json(srv: harness.Server, path: str) -> Any:
    r = http_get(srv, path)
    assert r.status == 200, f"{srv.kind} GET {path}: {r.status} {r.text!r}"
    return r.json()


def poll(pred: Callable[[], Any], timeout: float = 5.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.02)


# ---------------------------------------------------------------------------
# Formats and types
# ---------------------------------------------------------------------------

RFC3339_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{0,8}[1-9])?Z$")
UPTIME_RE = re.compile(r"^(\d+y)?(\d+d)?(\d+h)?(\d+m)?\d+s$")
GO_DUR_RE = re.compile(r"^(0s|(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+)$")
_GO_UNITS = {"ns": 1, "us": 1_000, "µs": 1_000, "ms": 1_000_000, "s": 10**9, "m": 60 * 10**9, "h": 3600 * 10**9}


def rfc3339_ns(s: str) -> int:
    m = re.match(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?Z$", s)
    assert m, f"not RFC 3339: {s!r}"
    secs = datetime.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S").replace(tzinfo=timezone.utc).timestamp()
    frac = (m.group(2) or "").ljust(9, "0")
    return int(secs) * 10**9 + int(frac)


def go_dur_ns(s: str) -> float:
    assert GO_DUR_RE.match(s), f"not a Go duration: {s!r}"
    return sum(float(n) * _GO_UNITS[u] for n, u in re.findall(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)", s))


def json_kind(v: Any) -> str:
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int):
        return "int"
    if isinstance(v, float):
        return "float"
    if isinstance(v, str):
        return "string"
    if isinstance(v, dict):
        return "object"
    if isinstance(v, list):
        return "list"
    return "null"


def type_ok(rule: str, v: Any) -> bool:
    k = json_kind(v)
    if rule in ("int", "dur_ns"):
        return k == "int"
    if rule == "number":
        return k in ("int", "float")
    if rule == "time":
        return k == "string" and bool(RFC3339_RE.match(v))
    if rule == "uptime":
        return k == "string" and bool(UPTIME_RE.match(v))
    if rule == "go_dur":
        return k == "string" and bool(GO_DUR_RE.match(v))
    return k == rule


def comparable_kind(rule: str | None, v: Any) -> str:
    """The JSON kind two servers must agree on (float64 fields: 'number')."""
    if rule == "number" and json_kind(v) in ("int", "float"):
        return "number"
    return json_kind(v)


# Go types of the fields nats-mini serves (monitor.go, 2.15.1).
GO_TYPES: dict[str, dict[str, str]] = {
    "varz": {
        "server_id": "string", "server_name": "string", "version": "string", "proto": "int",
        "git_commit": "string", "go": "string", "host": "string", "port": "int",
        "auth_required": "bool", "connect_urls": "list", "max_connections": "int",
        "max_subscriptions": "int", "ping_interval": "dur_ns", "ping_max": "int",
        "http_host": "string", "http_port": "int", "http_base_path": "string",
        "https_port": "int", "auth_timeout": "number", "max_control_line": "int",
        "max_payload": "int", "max_pending": "int", "cluster": "object", "gateway": "object",
        "leaf": "object", "mqtt": "object", "websocket": "object", "jetstream": "object",
        "tls_timeout": "number", "write_deadline": "dur_ns", "start": "time", "now": "time",
        "uptime": "uptime", "mem": "int", "cores": "int", "gomaxprocs": "int", "cpu": "number",
        "connections": "int", "total_connections": "int", "routes": "int", "remotes": "int",
        "leafnodes": "int", "in_msgs": "int", "in_bytes": "int", "in_client_msgs": "int",
        "in_client_bytes": "int", "out_msgs": "int", "out_bytes": "int",
        "out_client_msgs": "int", "out_client_bytes": "int", "slow_consumers": "int",
        "stale_connections": "int", "stalled_clients": "int", "subscriptions": "int",
        "http_req_stats": "object", "config_load_time": "time", "config_digest": "string",
        "system_account": "string", "slow_consumer_stats": "object",
        "stale_connection_stats": "object",
    },
    "varz.kind_stats": {"clients": "int", "routes": "int", "gateways": "int", "leafs": "int"},
    "connz": {
        "server_id": "string", "now": "time", "num_connections": "int", "total": "int",
        "offset": "int", "limit": "int", "connections": "list",
    },
    "connz.conn": {
        "cid": "int", "kind": "string", "type": "string", "ip": "string", "port": "int",
        "start": "time", "last_activity": "time", "stop": "time", "reason": "string",
        "rtt": "go_dur", "uptime": "uptime", "idle": "uptime", "pending_bytes": "int",
        "in_msgs": "int", "out_msgs": "int", "in_bytes": "int", "out_bytes": "int",
        "subscriptions": "int", "name": "string", "lang": "string", "version": "string",
        "authorized_user": "string", "account": "string", "name_tag": "string",
        "subscriptions_list": "list", "subscriptions_list_detail": "list",
    },
    "subdetail": {
        "account": "string", "account_tag": "string", "subject": "string", "qgroup": "string",
        "sid": "string", "msgs": "int", "max": "int", "cid": "int",
    },
    "subsz": {
        "server_id": "string", "now": "time", "num_subscriptions": "int", "num_cache": "int",
        "num_inserts": "int", "num_removes": "int", "num_matches": "int",
        "cache_hit_rate": "number", "max_fanout": "int", "avg_fanout": "number",
        "total": "int", "offset": "int", "limit": "int", "subscriptions_list": "list",
    },
    "routez": {
        "server_id": "string", "server_name": "string", "now": "time", "num_routes": "int",
        "routes": "list",
    },
    "healthz": {"status": "string", "error": "string"},
}

# Fields that must be present in both servers' output (issue 4's list plus
# what our features make meaningful); each must satisfy its GO_TYPES rule.
REQUIRED: dict[str, list[str]] = {
    "varz": [
        "server_id", "server_name", "version", "proto", "go", "host", "port",
        "max_connections", "ping_interval", "ping_max", "http_host", "http_port",
        "http_base_path", "https_port", "auth_timeout", "max_control_line", "max_payload",
        "max_pending", "cluster", "gateway", "leaf", "mqtt", "websocket", "jetstream",
        "tls_timeout", "write_deadline", "start", "now", "uptime", "mem", "cores",
        "gomaxprocs", "cpu", "connections", "total_connections", "routes", "remotes",
        "leafnodes", "in_msgs", "in_bytes", "in_client_msgs", "in_client_bytes", "out_msgs",
        "out_bytes", "out_client_msgs", "out_client_bytes", "slow_consumers",
        "stale_connections", "stalled_clients", "subscriptions", "http_req_stats",
        "config_load_time", "config_digest", "system_account", "slow_consumer_stats",
        "stale_connection_stats",
    ],
    "connz": ["server_id", "now", "num_connections", "total", "offset", "limit", "connections"],
    "connz.conn": [
        "cid", "kind", "type", "ip", "port", "start", "last_activity", "rtt", "uptime", "idle",
        "pending_bytes", "in_msgs", "out_msgs", "in_bytes", "out_bytes", "subscriptions",
        "name", "lang", "version",
    ],
    "connz.closed": ["stop", "reason"],
    "subsz": [
        "server_id", "now", "num_subscriptions", "num_cache", "num_inserts", "num_removes",
        "num_matches", "cache_hit_rate", "max_fanout", "avg_fanout", "total", "offset", "limit",
    ],
    "routez": ["server_id", "server_name", "now", "num_routes", "routes"],
    "healthz": ["status"],
}

# nats-server fields nats-mini may leave out, and why.
NOT_MEANINGFUL: dict[str, set[str]] = {
    "varz": {
        "git_commit",  # a Go build stamp
        "feature_flags",  # JetStream feature switches
        "disk_io_wait_stats",  # JetStream file-store I/O
        "tags", "metadata", "gomemlimit", "write_timeout",  # not set / Go runtime
    },
}


def check_fields(where: str, table: str, obj: dict, required: list[str]) -> list[str]:
    errs = []
    for k in required:
        if k not in obj:
            errs.append(f"{where}: missing field {k!r}")
        elif not type_ok(GO_TYPES[table][k], obj[k]):
            errs.append(f"{where}: {k}={obj[k]!r} is not a {GO_TYPES[table][k]}")
    for k, v in obj.items():
        rule = GO_TYPES[table].get(k)
        if rule and not type_ok(rule, v):
            errs.append(f"{where}: {k}={v!r} is not a {rule}")
    return errs


def compare_kinds(where: str, table: str, ref: dict, sut: dict) -> list[str]:
    """Every field both servers report has the same JSON kind."""
    errs = []
    for k in ref.keys() & sut.keys():
        rule = GO_TYPES.get(table, {}).get(k)
        a, b = comparable_kind(rule, ref[k]), comparable_kind(rule, sut[k])
        if a != b:
            errs.append(f"{where}: {k}: nats-server {ref[k]!r} ({a}) vs {sut[k]!r} ({b})")
    return errs


# ---------------------------------------------------------------------------
# Clients
# ---------------------------------------------------------------------------

LANG, VERSION = "python-raw", "1.2.3"


def client(srv: harness.Server, name: str) -> harness.RawConn:
    c = harness.RawConn(srv.port)
    c.wait_first_line()
    connect = {
        "verbose": False, "pedantic": False, "headers": True, "protocol": 1,
        "name": name, "lang": LANG, "version": VERSION,
    }
    c.send(b"CONNECT " + json.dumps(connect).encode() + b"\r\n")
    c.sync(3)
    assert c.pong_count() >= 1 and not c.closed, f"{srv.kind}: CONNECT of {name} failed: {bytes(c.buf)!r}"
    return c


def msg_count(c: harness.RawConn) -> int:
    with c.cond:
        buf = bytes(c.buf)
    return sum(1 for f in harness.parse_frames(buf) if f.kind in ("MSG", "HMSG"))


def wait_msgs(c: harness.RawConn, n: int, who: str) -> None:
    ok = c.wait(lambda: msg_count(c) >= n, 3.0)
    assert ok, f"{who}: expected {n} MSGs, got {msg_count(c)}"


def close_cleanly(c: harness.RawConn) -> None:
    """Half-close, read until the server's EOF, then close: the server sees a
    plain EOF ("Client Closed"), never a reset ("Read Error")."""
    c.sock.shutdown(socket.SHUT_WR)
    assert c.wait(lambda: c.closed, 3.0), "server did not close after our EOF"
    c.close()


def wait_idle(srv: harness.Server) -> dict:
    """Wait until the readiness probes' connections are gone; return /varz."""
    return poll(lambda: (v := get_json(srv, "/varz"))["connections"] == 0 and v, what="0 connections")


def start_server(kind: str, options: dict[str, Any] | None = None) -> harness.Server:
    opts = dict(COMMON_OPTIONS)
    opts.update(options or {})
    return harness.Server(kind, opts, binary_for(kind), monitor=True).start()


def sut_kind(config: pytest.Config) -> str:
    return REF if reference_only(config) else "nats-mini"


# ---------------------------------------------------------------------------
# The main workload
# ---------------------------------------------------------------------------

# Per connection (name -> counters) after the workload, computed by hand:
#   gone: PUB gone.x "bye!"(4) -> sub2 '>'
#   pub:  foo.bar "hello"(5)   -> sub1 foo.* + foo.bar(q1), sub2 foo.bar + '>', gone foo.bar
#         (gone closes)
#         foo.baz "abc"(3)     -> sub1 foo.*, sub2 '>'
#         bar ""(0)            -> sub1 bar, sub2 '>'
#         HPUB foo.bar 12+5=17 -> sub1 x2, sub2 foo.bar + '>' (5th: '>' auto-unsubscribes)
#         x.y.z (10)           -> nobody
#         foo.bar (100)        -> sub1 x2, sub2 foo.bar
EXPECT_OPEN = {
    "mon-pub": dict(in_msgs=6, in_bytes=135, out_msgs=0, out_bytes=0, subscriptions=0),
    "mon-sub1": dict(in_msgs=0, in_bytes=0, out_msgs=8, out_bytes=247, subscriptions=3),
    "mon-sub2": dict(in_msgs=0, in_bytes=0, out_msgs=8, out_bytes=151, subscriptions=2),
}
EXPECT_CLOSED = {
    "mon-gone": dict(in_msgs=1, in_bytes=4, out_msgs=1, out_bytes=5, subscriptions=1, reason="Client Closed"),
    "mon-maxpay": dict(in_msgs=0, in_bytes=0, out_msgs=0, out_bytes=0, subscriptions=0,
                       reason="Maximum Message Payload Exceeded"),
    "mon-parse": dict(in_msgs=0, in_bytes=0, out_msgs=0, out_bytes=0, subscriptions=0, reason="Protocol Violation"),
    "mon-ctrl": dict(in_msgs=0, in_bytes=0, out_msgs=0, out_bytes=0, subscriptions=0,
                     reason="Maximum Control Line Exceeded"),
}
# (subject, qgroup, sid, msgs, max) per connection, after the workload
EXPECT_SUBS = {
    "mon-sub1": {("foo.*", None, "1", 4, None), ("foo.bar", "q1", "2", 3, None), ("bar", None, "3", 1, None)},
    "mon-sub2": {("foo.bar", None, "7", 3, None), ("never", None, "9", 0, 10)},
    "mon-gone": {("foo.bar", None, "1", 1, None)},
}
# varz deltas over the workload
EXPECT_VARZ_DELTA = dict(
    in_msgs=7, in_bytes=139, out_msgs=17, out_bytes=403, total_connections=7,
    in_client_msgs=7, in_client_bytes=139, out_client_msgs=17, out_client_bytes=403,
    subscriptions=5, slow_consumers=0,
)
# inserts: sub1 3 + sub2 3 + gone 1; removes: sid 8 (max reached) + gone's on close
EXPECT_SUBSZ_DELTA = dict(num_subscriptions=5, num_inserts=7, num_removes=2)

SNAPSHOT_PATHS = [
    "/varz", "/connz", "/connz?subs=1", "/connz?subs=detail", "/connz?auth=1",
    "/connz?state=closed", "/connz?state=closed&subs=detail", "/connz?state=any",
    "/subsz", "/subsz?subs=1", "/routez", "/routez?subs=1", "/healthz",
]


@dataclass
class Side:
    label: str
    srv: harness.Server
    varz0: dict = field(default_factory=dict)
    subsz0: dict = field(default_factory=dict)
    snap: dict[str, Resp] = field(default_factory=dict)
    conns: dict[str, harness.RawConn] = field(default_factory=dict)
    t_last_pub_ns: int = 0  # wall clock just before the last PUB

    @property
    def kind(self) -> str:
        return self.srv.kind

    def j(self, path: str) -> Any:
        r = self.snap[path]
        assert r.status == 200, f"{self.label} {path}: {r.status} {r.text!r}"
        return r.json()

    def by_name(self, path: str) -> dict[str, dict]:
        return {c["name"]: c for c in self.j(path)["connections"] if c.get("name", "").startswith("mon-")}


def run_main_workload(side: Side) -> None:
    srv = side.srv
    side.varz0 = wait_idle(srv)
    side.subsz0 = get_json(srv, "/subsz")
    c = side.conns
    for n in ("mon-pub", "mon-sub1", "mon-sub2", "mon-gone"):
        c[n] = client(srv, n)
    pub, sub1, sub2, gone = c["mon-pub"], c["mon-sub1"], c["mon-sub2"], c["mon-gone"]
    sub1.send(b"SUB foo.* 1\r\nSUB foo.bar q1 2\r\nSUB bar 3\r\n")
    sub1.sync(3)
    sub2.send(b"SUB foo.bar 7\r\nSUB > 8\r\nUNSUB 8 5\r\nSUB never 9\r\nUNSUB 9 10\r\n")
    sub2.sync(3)
    gone.send(b"SUB foo.bar 1\r\nPUB gone.x 4\r\nbye!\r\n")
    gone.sync(3)
    wait_msgs(sub2, 1, f"{side.label} mon-sub2")
    pub.send(b"PUB foo.bar 5\r\nhello\r\n")
    pub.sync(3)
    wait_msgs(sub1, 2, f"{side.label} mon-sub1")
    wait_msgs(sub2, 3, f"{side.label} mon-sub2")
    wait_msgs(gone, 1, f"{side.label} mon-gone")
    close_cleanly(gone)
    poll(lambda: get_json(srv, "/varz")["connections"] == 3, what=f"{side.label}: mon-gone closed")
    pub.send(
        b"PUB foo.baz 3\r\nabc\r\nPUB bar 0\r\n\r\n"
        b"HPUB foo.bar 12 17\r\nNATS/1.0\r\n\r\nhello\r\n"
        b"PUB x.y.z 10\r\n0123456789\r\n"
    )
    pub.sync(3)
    wait_msgs(sub1, 6, f"{side.label} mon-sub1")
    wait_msgs(sub2, 7, f"{side.label} mon-sub2")
    # The subscribers' own last activity is now >= 50 ms old; delivering the
    # last message must move their last_activity (nats-server: flushClients).
    time.sleep(0.05)
    side.t_last_pub_ns = time.time_ns()
    pub.send(b"PUB foo.bar 100\r\n" + b"x" * 100 + b"\r\n")
    pub.sync(3)
    wait_msgs(sub1, 8, f"{side.label} mon-sub1")
    wait_msgs(sub2, 8, f"{side.label} mon-sub2")
    # Connections the server closes, each with its own reason.
    for name, bad in (
        ("mon-maxpay", b"PUB foo 2000000\r\n"),
        ("mon-parse", b"XYZZY\r\n"),
        ("mon-ctrl", b"SUB " + b"a" * 5000 + b" 1\r\n"),
    ):
        bc = client(srv, name)
        bc.send(bad)
        assert bc.wait(lambda: bc.closed, 3.0), f"{side.label}: {name} not closed"
        bc.close()
    poll(
        lambda: {"mon-gone", "mon-maxpay", "mon-parse", "mon-ctrl"}
        <= {x.get("name") for x in get_json(srv, "/connz?state=closed")["connections"]},
        what=f"{side.label}: closed connections listed",
    )
    poll(lambda: get_json(srv, "/varz")["connections"] == 3, what=f"{side.label}: 3 open connections")
    for p in SNAPSHOT_PATHS:
        side.snap[p] = http_get(srv, p)


@pytest.fixture(scope="module")
def wl(pytestconfig: pytest.Config):
    """Both servers, the same workload run on each, endpoint snapshots taken."""
    sides = [Side("nats-server", start_server(REF))]
    try:
        sut = sut_kind(pytestconfig)
        sides.append(Side(sut if sut != REF else "nats-server#2", start_server(sut)))
        errors: list[BaseException] = []

        def run(s: Side) -> None:
            try:
                run_main_workload(s)
            except BaseException as e:  # noqa: BLE001 - re-raised below
                errors.append(e)

        threads = [threading.Thread(target=run, args=(s,)) for s in sides]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        if errors:
            raise errors[0]
        yield sides
    finally:
        for s in sides:
            for c in s.conns.values():
                c.close()
            s.srv.stop()


# ---------------------------------------------------------------------------
# 1. Each endpoint: fields, types, counters, formats
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("path", [p for p in SNAPSHOT_PATHS if p != "/healthz"])
def test_pretty_json_and_headers(wl, path: str) -> None:
    """All JSON endpoints but /healthz: 200, Content-Type and CORS headers as
    nats-server's, and the body is JSON indented with 2 spaces (Go's
    json.MarshalIndent; Go escapes < > & as \\u003c \\u003e \\u0026)."""
    ref = wl[0].snap[path]
    for s in wl:
        r = s.snap[path]
        assert r.status == 200, (s.label, r.status, r.text)
        assert r.headers.get("content-type") == ref.headers.get("content-type") == "application/json", s.label
        assert r.headers.get("access-control-allow-origin") == "*", s.label
        text = r.text
        for esc, ch in (("\\u003c", "<"), ("\\u003e", ">"), ("\\u0026", "&")):
            text = text.replace(esc, ch)
        want = json.dumps(r.json(), indent=2, ensure_ascii=False)
        assert text == want, f"{s.label} {path}: not 2-space pretty-printed JSON"


def test_healthz_ok_compact(wl) -> None:
    for s in wl:
        r = s.snap["/healthz"]
        assert (r.status, r.body) == (200, b'{"status":"ok"}'), (s.label, r.status, r.body)
        assert r.headers.get("content-type") == "application/json", s.label
        assert r.headers.get("access-control-allow-origin") == "*", s.label


def test_varz_fields_and_types(wl) -> None:
    ref, sut = wl[0].j("/varz"), wl[1].j("/varz")
    errs = check_fields(wl[0].label, "varz", ref, REQUIRED["varz"])
    errs += check_fields(wl[1].label, "varz", sut, REQUIRED["varz"])
    for sub in ("slow_consumer_stats", "stale_connection_stats"):
        for label, v in ((wl[0].label, ref), (wl[1].label, sut)):
            errs += check_fields(f"{label} {sub}", "varz.kind_stats", v[sub], list(GO_TYPES["varz.kind_stats"]))
    errs += compare_kinds("/varz", "varz", ref, sut)
    missing = set(ref) - set(sut) - NOT_MEANINGFUL["varz"]
    errs += [f"/varz: nats-server reports {k!r}, {wl[1].label} does not" for k in sorted(missing)]
    assert not errs, "\n".join(errs)


def test_varz_config_values_agree(wl) -> None:
    """Same options -> same configuration values in /varz."""
    ref, sut = wl[0].j("/varz"), wl[1].j("/varz")
    keys = [
        "version", "proto", "host", "max_connections", "ping_interval", "ping_max",
        "http_host", "http_base_path", "https_port", "auth_timeout", "max_control_line",
        "max_payload", "max_pending", "tls_timeout", "write_deadline", "cores", "gomaxprocs",
        "routes", "remotes", "leafnodes", "cluster", "gateway", "leaf", "mqtt", "websocket",
        "jetstream",
    ]
    # (config_digest is not compared: nats-server gets a config file here,
    # nats-mini flags; it only has to be a string.)
    diff = {k: (ref.get(k), sut.get(k)) for k in keys if ref.get(k) != sut.get(k)}
    assert not diff, f"nats-server vs {wl[1].label}: {diff}"
    assert ref["ping_interval"] == 120 * 10**9 and ref["write_deadline"] == 10 * 10**9
    for s, v in zip(wl, (ref, sut)):
        assert v["port"] == s.srv.port and v["http_port"] == s.srv.http_port, s.label


def test_varz_times_and_uptime(wl) -> None:
    for s in wl:
        v = s.j("/varz")
        start, now, loaded = rfc3339_ns(v["start"]), rfc3339_ns(v["now"]), rfc3339_ns(v["config_load_time"])
        assert start <= now and start <= loaded + 10**9 and loaded <= now, (s.label, v["start"], v["now"])
        assert abs(now - time.time_ns()) < 60 * 10**9, (s.label, v["now"])
        assert UPTIME_RE.match(v["uptime"]), (s.label, v["uptime"])


def test_varz_counters_agree(wl) -> None:
    """Message/byte/connection/subscription counters over the workload.
    nats-server counts its internal $SYS subscriptions in `subscriptions`,
    so that one is compared as a delta."""
    errs = []
    for s in wl:
        v0, v = s.varz0, s.j("/varz")
        got = {k: v[k] - v0[k] for k in EXPECT_VARZ_DELTA}
        if got != EXPECT_VARZ_DELTA:
            errs.append(f"{s.label}: deltas {got} != {EXPECT_VARZ_DELTA}")
        if v["connections"] != 3:
            errs.append(f"{s.label}: connections {v['connections']} != 3")
        if v["slow_consumer_stats"]["clients"] != v["slow_consumers"]:
            errs.append(f"{s.label}: slow_consumer_stats.clients != slow_consumers")
        if not (v["http_req_stats"].get("/varz", 0) >= 1):
            errs.append(f"{s.label}: http_req_stats {v['http_req_stats']}")
    assert not errs, "\n".join(errs)


@pytest.mark.parametrize("path", ["/connz", "/connz?subs=1", "/connz?subs=detail", "/connz?auth=1", "/connz?state=any"])
def test_connz_fields_and_types(wl, path: str) -> None:
    errs = []
    tops = [s.j(path) for s in wl]
    for s, top in zip(wl, tops):
        errs += check_fields(f"{s.label} {path}", "connz", top, REQUIRED["connz"])
    errs += compare_kinds(path, "connz", tops[0], tops[1])
    ref, sut = wl[0].by_name(path), wl[1].by_name(path)
    assert set(ref) == set(sut), (set(ref), set(sut))
    for name in sorted(ref):
        for s, c in ((wl[0], ref[name]), (wl[1], sut[name])):
            req = REQUIRED["connz.conn"] + (REQUIRED["connz.closed"] if "stop" in c or name in EXPECT_CLOSED else [])
            errs += check_fields(f"{s.label} {path} {name}", "connz.conn", c, req)
            for d in c.get("subscriptions_list_detail", []):
                errs += check_fields(f"{s.label} {path} {name} sub", "subdetail", d, ["subject", "sid", "msgs", "cid"])
        errs += compare_kinds(f"{path} {name}", "connz.conn", ref[name], sut[name])
        # every field nats-server reports for this connection is there
        # (the ?auth=1 fields are test_connz_auth_fields')
        missing = set(ref[name]) - set(sut[name]) - {"authorized_user", "account", "name_tag"}
        errs += [f"{path} {name}: nats-server reports {k!r}={ref[name][k]!r}, {wl[1].label} does not" for k in sorted(missing)]
    assert not errs, "\n".join(errs)


def test_connz_counters_agree(wl) -> None:
    errs = []
    keys = ["in_msgs", "in_bytes", "out_msgs", "out_bytes", "subscriptions", "lang", "version", "kind", "type", "ip"]
    for s in wl:
        open_ = s.by_name("/connz")
        closed = s.by_name("/connz?state=closed")
        if set(open_) != set(EXPECT_OPEN):
            errs.append(f"{s.label}: open {sorted(open_)}")
        if set(closed) != set(EXPECT_CLOSED):
            errs.append(f"{s.label}: closed {sorted(closed)}")
        for name, want in list(EXPECT_OPEN.items()) + list(EXPECT_CLOSED.items()):
            c = open_.get(name) or closed.get(name)
            if c is None:
                continue
            got = {k: c.get(k) for k in want}
            if got != want:
                errs.append(f"{s.label} {name}: {got} != {want}")
            # (pending_bytes of a closed connection is whatever was left unsent)
            fixed = {k: c.get(k) for k in ("lang", "version", "kind", "type", "ip")}
            if name in open_:
                fixed["pending_bytes"] = c.get("pending_bytes")
            want_fixed = dict(lang=LANG, version=VERSION, kind="Client", type="nats", ip="127.0.0.1")
            if name in open_:
                want_fixed["pending_bytes"] = 0
            if fixed != want_fixed:
                errs.append(f"{s.label} {name}: {fixed} != {want_fixed}")
    for path in ("/connz", "/connz?state=closed"):
        a, b = wl[0].by_name(path), wl[1].by_name(path)
        for name in a.keys() & b.keys():
            da = {k: a[name].get(k) for k in keys + ["reason"]}
            db = {k: b[name].get(k) for k in keys + ["reason"]}
            if da != db:
                errs.append(f"{path} {name}: nats-server {da} vs {wl[1].label} {db}")
    assert not errs, "\n".join(errs)


def test_connz_num_total_offset_limit(wl) -> None:
    for s in wl:
        for path, n in (("/connz", 3), ("/connz?state=any", None)):
            top = s.j(path)
            assert top["num_connections"] == len(top["connections"]) == top["total"], (s.label, path, top["total"])
            assert (top["offset"], top["limit"]) == (0, 1024), (s.label, path)
            if n is not None:
                assert top["total"] == n, (s.label, path)
        closed = s.j("/connz?state=closed")["total"]
        assert s.j("/connz?state=any")["total"] == 3 + closed, s.label


def test_connz_formats(wl) -> None:
    """start/last_activity/stop RFC 3339 ns; uptime/idle nats-server style;
    rtt a Go duration; stop >= start for closed connections."""
    errs = []
    for s in wl:
        for path in ("/connz", "/connz?state=closed"):
            for name, c in s.by_name(path).items():
                for k in ("start", "last_activity") + (("stop",) if "closed" in path else ()):
                    if not RFC3339_RE.match(c.get(k, "")):
                        errs.append(f"{s.label} {name} {k}={c.get(k)!r}")
                for k in ("uptime", "idle"):
                    if not UPTIME_RE.match(c.get(k, "")):
                        errs.append(f"{s.label} {name} {k}={c.get(k)!r}")
                if "rtt" in c and not GO_DUR_RE.match(c["rtt"]):
                    errs.append(f"{s.label} {name} rtt={c['rtt']!r}")
                if "closed" in path and rfc3339_ns(c["stop"]) < rfc3339_ns(c["start"]):
                    errs.append(f"{s.label} {name} stop < start")
    assert not errs, "\n".join(errs)


def test_connz_rtt_truncated_like_go(wl) -> None:
    """nats-server's getRTT(): an RTT between 1µs and 1ms is truncated to
    whole microseconds (`601µs`, never `234.29µs`)."""
    errs = []
    for s in wl:
        for name, c in s.by_name("/connz").items():
            rtt = c.get("rtt", "")
            ns = go_dur_ns(rtt) if GO_DUR_RE.match(rtt) else -1
            if 1_000 < ns < 1_000_000 and not re.match(r"^\d+µs$", rtt):
                errs.append(f"{s.label} {name}: rtt {rtt!r} (nats-server would print {int(ns // 1000)}µs)")
    assert not errs, "\n".join(errs)


def test_connz_last_activity_moves_on_delivery(wl) -> None:
    """nats-server sets a subscriber's last_activity when it delivers a
    message to it (client.go flushClients: "Update last activity for message
    delivery"), so sort=last and idle reflect traffic in both directions."""
    errs = []
    for s in wl:
        conns = s.by_name("/connz")
        for name in ("mon-sub1", "mon-sub2"):
            last = rfc3339_ns(conns[name]["last_activity"])
            if last < s.t_last_pub_ns - 5_000_000:
                errs.append(
                    f"{s.label} {name}: last_activity {conns[name]['last_activity']} is before the last "
                    f"message delivered to it (published at {s.t_last_pub_ns / 1e9:.6f})"
                )
    assert not errs, "\n".join(errs)


def _subs_of(c: dict) -> set:
    return {(d["subject"], d.get("qgroup"), d["sid"], d["msgs"], d.get("max")) for d in c.get("subscriptions_list_detail", [])}


def test_connz_subscription_lists(wl) -> None:
    errs = []
    for s in wl:
        plain = s.by_name("/connz?subs=1")
        detail = s.by_name("/connz?subs=detail")
        closed = s.by_name("/connz?state=closed&subs=detail")
        for name, want in EXPECT_SUBS.items():
            c = closed[name] if name in EXPECT_CLOSED else detail[name]
            if _subs_of(c) != want:
                errs.append(f"{s.label} {name}: detail {_subs_of(c)} != {want}")
            if any(d["cid"] != c["cid"] for d in c.get("subscriptions_list_detail", [])):
                errs.append(f"{s.label} {name}: detail cid != connection cid")
            if name in plain and sorted(plain[name].get("subscriptions_list", [])) != sorted(w[0] for w in want):
                errs.append(f"{s.label} {name}: subscriptions_list {plain[name].get('subscriptions_list')}")
            if c["subscriptions"] != len(want):
                errs.append(f"{s.label} {name}: subscriptions {c['subscriptions']} != {len(want)}")
        # no list at all for a connection without subscriptions (omitempty)
        for path in ("/connz?subs=1", "/connz?subs=detail"):
            pc = s.by_name(path)["mon-pub"]
            if "subscriptions_list" in pc or "subscriptions_list_detail" in pc:
                errs.append(f"{s.label} {path}: mon-pub has an empty subscription list key")
        # plain /connz carries no lists
        for name, c in s.by_name("/connz").items():
            if "subscriptions_list" in c or "subscriptions_list_detail" in c:
                errs.append(f"{s.label} /connz {name}: lists without subs=")
    assert not errs, "\n".join(errs)


def test_connz_subs_detail_keys_match(wl) -> None:
    """The keys of each subscriptions_list_detail entry are nats-server's:
    for open connections nats-server uses newClientSubDetail (no account /
    account_tag); for closed ones it keeps newSubDetail (with them)."""
    errs = []
    for path in ("/connz?subs=detail", "/connz?state=closed&subs=detail"):
        a, b = wl[0].by_name(path), wl[1].by_name(path)
        for name in sorted(a.keys() & b.keys()):
            ka = sorted({tuple(sorted(d)) for d in a[name].get("subscriptions_list_detail", [])})
            kb = sorted({tuple(sorted(d)) for d in b[name].get("subscriptions_list_detail", [])})
            if ka != kb:
                errs.append(f"{path} {name}: nats-server keys {ka} vs {wl[1].label} {kb}")
    assert not errs, "\n".join(errs)


def test_connz_auth_fields(wl) -> None:
    """/connz?auth=1 without auth configured: nats-server adds `name_tag`
    ("$G") and leaves `account` out for the global account (monitor.go:
    `if name := client.acc.GetName(); name != globalAccountName`)."""
    errs = []
    a, b = wl[0].by_name("/connz?auth=1"), wl[1].by_name("/connz?auth=1")
    for name in sorted(a.keys() & b.keys()):
        for k in ("authorized_user", "account", "name_tag"):
            if (k in a[name], a[name].get(k)) != (k in b[name], b[name].get(k)):
                errs.append(
                    f"/connz?auth=1 {name} {k}: nats-server "
                    f"{a[name].get(k, '<absent>')!r} vs {wl[1].label} {b[name].get(k, '<absent>')!r}"
                )
    assert not errs, "\n".join(errs)


def test_subsz_fields_and_counters(wl) -> None:
    errs = []
    for path in ("/subsz", "/subsz?subs=1"):
        tops = [s.j(path) for s in wl]
        for s, top in zip(wl, tops):
            errs += check_fields(f"{s.label} {path}", "subsz", top, REQUIRED["subsz"])
            for d in top.get("subscriptions_list", []):
                errs += check_fields(f"{s.label} {path} sub", "subdetail", d, ["account", "subject", "sid", "msgs", "cid"])
        errs += compare_kinds(path, "subsz", tops[0], tops[1])
        if set(tops[0]) != set(tops[1]):
            errs.append(f"{path}: keys nats-server {sorted(tops[0])} vs {wl[1].label} {sorted(tops[1])}")
    for s in wl:
        v, v0 = s.j("/subsz"), s.subsz0
        got = {k: v[k] - v0[k] for k in EXPECT_SUBSZ_DELTA}
        if got != EXPECT_SUBSZ_DELTA:
            errs.append(f"{s.label}: subsz deltas {got} != {EXPECT_SUBSZ_DELTA}")
        if v["num_subscriptions"] != s.j("/varz")["subscriptions"]:
            errs.append(f"{s.label}: subsz num_subscriptions != varz subscriptions")
        if (v["total"], v["offset"], v["limit"]) != (0, 0, 1024):
            errs.append(f"{s.label}: /subsz total/offset/limit {(v['total'], v['offset'], v['limit'])}")
        full = s.j("/subsz?subs=1")
        if full["total"] != full["num_subscriptions"] or len(full["subscriptions_list"]) != full["total"]:
            errs.append(f"{s.label}: /subsz?subs=1 total {full['total']} list {len(full['subscriptions_list'])}")
    assert not errs, "\n".join(errs)


def _named_subs(side: Side, subsz: dict) -> set:
    """subsz entries of the workload's connections as (conn name, subject,
    qgroup, sid, msgs, max), dropping nats-server's internal subscriptions."""
    names = {c["cid"]: c["name"] for c in side.j("/connz?state=any")["connections"] if c.get("name")}
    return {
        (names[d["cid"]], d["subject"], d.get("qgroup"), d["sid"], d["msgs"], d.get("max"))
        for d in subsz.get("subscriptions_list", [])
        if d["cid"] in names
    }


def test_subsz_list_agrees(wl) -> None:
    want = {(n, *t) for n, subs in EXPECT_SUBS.items() if n in EXPECT_OPEN for t in subs}
    for s in wl:
        got = _named_subs(s, s.j("/subsz?subs=1"))
        assert got == want, f"{s.label}: {got ^ want}"
        for d in s.j("/subsz?subs=1")["subscriptions_list"]:
            if d["cid"] in {c["cid"] for c in s.j("/connz")["connections"]}:
                assert (d.get("account"), d.get("account_tag")) == ("$G", "$G"), (s.label, d)


@pytest.mark.parametrize(
    "subject,expect",
    [
        ("foo.bar", {("mon-sub1", "foo.*"), ("mon-sub1", "foo.bar"), ("mon-sub2", "foo.bar")}),
        ("foo.baz", {("mon-sub1", "foo.*")}),
        ("bar", {("mon-sub1", "bar")}),
        ("nothing.here", set()),
    ],
)
def test_subsz_test_subject(wl, subject: str, expect: set) -> None:
    """?subs=1&test=SUBJECT lists exactly the subscriptions that would receive
    a message published to SUBJECT; the response has nats-server's keys
    (no subscriptions_list when nothing matches: omitempty)."""
    errs = []
    keysets = []
    for s in wl:
        top = get_json(s.srv, f"/subsz?subs=1&test={subject}")
        keysets.append(sorted(top))
        got = {(n, subj) for n, subj, *_ in _named_subs(s, top)}
        if got != expect:
            errs.append(f"{s.label} test={subject}: {sorted(got)} != {sorted(expect)}")
        if top["total"] != len(top.get("subscriptions_list", [])):
            errs.append(f"{s.label} test={subject}: total {top['total']}")
    if keysets[0] != keysets[1]:
        errs.append(f"test={subject}: keys nats-server {keysets[0]} vs {wl[1].label} {keysets[1]}")
    assert not errs, "\n".join(errs)


def test_subsz_paging(wl) -> None:
    """offset/limit page the list; total counts every match. (nats-server's
    order comes from map iteration and changes between requests, so only the
    page size and membership are checked.)"""
    for s in wl:
        full = get_json(s.srv, "/subsz?subs=1")["subscriptions_list"]
        page = get_json(s.srv, "/subsz?subs=1&offset=1&limit=2")
        assert (page["offset"], page["limit"]) == (1, 2), s.label
        assert len(page["subscriptions_list"]) == 2, s.label
        assert all(d in full for d in page["subscriptions_list"]), s.label
        assert page["total"] == len(full), (s.label, page["total"], len(full))
        past = get_json(s.srv, f"/subsz?subs=1&offset={len(full)}")
        assert past["total"] == len(full) and not past.get("subscriptions_list"), s.label


@pytest.mark.parametrize("path", ["/routez", "/routez?subs=1"])
def test_routez(wl, path: str) -> None:
    errs = []
    tops = [s.j(path) for s in wl]
    for s, top in zip(wl, tops):
        errs += check_fields(f"{s.label} {path}", "routez", top, REQUIRED["routez"])
        if (top["num_routes"], top["routes"]) != (0, []):
            errs.append(f"{s.label}: routes {top['num_routes']} {top['routes']}")
        if top["server_id"] != s.j("/varz")["server_id"] or top["server_name"] != s.j("/varz")["server_name"]:
            errs.append(f"{s.label}: routez server_id/name differ from varz")
    errs += compare_kinds(path, "routez", tops[0], tops[1])
    if set(tops[0]) != set(tops[1]):
        errs.append(f"{path}: keys nats-server {sorted(tops[0])} vs {wl[1].label} {sorted(tops[1])}")
    assert not errs, "\n".join(errs)


# Fields of one /routez route entry (monitor.go RouteInfo) and their Go types.
ROUTE_FIELDS: dict[str, str] = {
    "rid": "int", "remote_id": "string", "remote_name": "string", "did_solicit": "bool",
    "is_configured": "bool", "ip": "string", "port": "int", "start": "time",
    "last_activity": "time", "rtt": "go_dur", "uptime": "uptime", "idle": "uptime",
    "pending_size": "int", "in_msgs": "int", "out_msgs": "int", "in_bytes": "int",
    "out_bytes": "int", "subscriptions": "int", "subscriptions_list": "list",
}


def _two_node_cluster(kind: str) -> tuple[harness.Server, harness.Server]:
    """Two servers of `kind` routed to each other, started with the same flags (nats-mini
    takes nats-server's -cluster, --cluster_name and -routes)."""
    binary = harness.nats_server_bin() if kind == REF else binary_for(kind)
    c1, c2 = harness.free_port(), harness.free_port()

    def flags(own: int, peer: int) -> list[str]:
        return ["-cluster", f"nats://127.0.0.1:{own}", "--cluster_name", "mon",
                "-routes", f"nats://127.0.0.1:{peer}"]

    a = harness.Server(kind, COMMON_OPTIONS, binary, monitor=True, extra_args=flags(c1, c2)).start()
    try:
        b = harness.Server(kind, COMMON_OPTIONS, binary, monitor=True, extra_args=flags(c2, c1)).start()
    except BaseException:
        a.stop()
        raise
    return a, b


def _route_to(a: harness.Server, b_id: str, subject: str, timeout: float = 10.0) -> dict:
    """a's /routez?subs=1 entry for the route to b that carries b's interest in `subject`
    (nats-server 2.10+ opens a pool of routes per peer; the account's route carries it)."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = get_json(a, "/routez?subs=1")
        for r in last.get("routes") or []:
            if r.get("remote_id") == b_id and subject in (r.get("subscriptions_list") or []):
                return r
        time.sleep(0.1)
    raise AssertionError(f"no route to {b_id} carrying {subject}: {last}")


def test_routez_and_varz_cluster_of_a_two_node_cluster(pytestconfig: pytest.Config) -> None:
    """A route's /routez entry and /varz cluster fields, nats-server vs nats-mini: the same
    fields with the same JSON kinds, and counters that follow the traffic (3 messages of 5
    bytes forwarded from a to b's subscriber)."""
    entries, varzs = {}, {}
    for kind in (REF, sut_kind(pytestconfig)):
        a, b = _two_node_cluster(kind)
        try:
            b_id = get_json(b, "/varz")["server_id"]
            sub = harness.RawConn(b.port)
            sub.wait_first_line()
            sub.send(b'CONNECT {"verbose":false}\r\nSUB mon.x 1\r\nPING\r\n')
            pub = harness.RawConn(a.port)
            pub.wait_first_line()
            _route_to(a, b_id, "mon.x")
            pub.send(b'CONNECT {"verbose":false}\r\n' + b"PUB mon.x 5\r\nhello\r\n" * 3 + b"PING\r\n")
            assert sub.wait(lambda: bytes(sub.buf).count(b"MSG mon.x 1 5") == 3, 10), kind
            deadline = time.monotonic() + 5
            while True:
                r = _route_to(a, b_id, "mon.x")
                if r["out_msgs"] >= 3 or time.monotonic() > deadline:
                    break
                time.sleep(0.1)
            entries[kind], varzs[kind] = r, get_json(a, "/varz")
            sub.close()
            pub.close()
        finally:
            a.stop()
            b.stop()
    errs = []
    for kind, r in entries.items():
        for k, rule in ROUTE_FIELDS.items():
            if k not in r:
                errs.append(f"{kind}: route entry lacks {k!r}: {r}")
            elif not type_ok(rule, r[k]):
                errs.append(f"{kind}: route {k}={r[k]!r} is not a {rule}")
        if (r.get("out_msgs"), r.get("out_bytes")) != (3, 15):
            errs.append(f"{kind}: route out_msgs/out_bytes {r.get('out_msgs')}/{r.get('out_bytes')}, want 3/15")
        cl = varzs[kind]["cluster"]
        for k in ("name", "addr", "cluster_port", "urls"):
            if k not in cl:
                errs.append(f"{kind}: varz cluster lacks {k!r}: {cl}")
        if cl.get("name") != "mon" or varzs[kind]["routes"] < 1:
            errs.append(f"{kind}: varz cluster {cl}, routes {varzs[kind]['routes']}")
    kinds = list(entries)
    for k in set(entries[kinds[0]]) & set(entries[kinds[1]]):
        a, b = json_kind(entries[kinds[0]][k]), json_kind(entries[kinds[1]][k])
        if a != b:
            errs.append(f"route {k}: {kinds[0]} {a} vs {kinds[1]} {b}")
    assert not errs, "\n".join(errs)


def test_server_id_consistent(wl) -> None:
    for s in wl:
        sid = s.j("/varz")["server_id"]
        for p in ("/connz", "/subsz", "/routez"):
            assert s.j(p)["server_id"] == sid, (s.label, p)


# ---------------------------------------------------------------------------
# 2. /connz closed connections, cid, closed-state sorting
# ---------------------------------------------------------------------------


def test_connz_closed_reasons(wl) -> None:
    for s in wl:
        closed = s.by_name("/connz?state=closed")
        got = {n: c.get("reason") for n, c in closed.items()}
        assert got == {n: e["reason"] for n, e in EXPECT_CLOSED.items()}, s.label
    a, b = wl[0].by_name("/connz?state=closed"), wl[1].by_name("/connz?state=closed")
    assert {n: c["reason"] for n, c in a.items()} == {n: c["reason"] for n, c in b.items()}


def test_connz_state_any(wl) -> None:
    for s in wl:
        names = set(s.by_name("/connz?state=any"))
        assert names == set(EXPECT_OPEN) | set(EXPECT_CLOSED), (s.label, names)


def test_connz_cid_open_and_closed(wl) -> None:
    for s in wl:
        for name, state in (("mon-sub1", ""), ("mon-sub1", "&state=any"), ("mon-gone", "&state=closed"),
                            ("mon-maxpay", "&state=any")):
            cid = s.by_name("/connz?state=any")[name]["cid"]
            top = get_json(s.srv, f"/connz?cid={cid}{state}")
            assert [c["cid"] for c in top["connections"]] == [cid], (s.label, name, state, top["connections"])
            assert top["connections"][0]["name"] == name
            assert (top["num_connections"], top["limit"]) == (1, 1), (s.label, name, state)
        cid_closed = s.by_name("/connz?state=any")["mon-gone"]["cid"]
        assert get_json(s.srv, f"/connz?cid={cid_closed}")["connections"] == [], s.label  # open only


def test_connz_cid_total(wl) -> None:
    """nats-server's `total` with ?cid= is the number of connections in the
    requested state (the cid filter only narrows the page, limit=1)."""
    errs = []
    for s in wl:
        cid = s.by_name("/connz")["mon-sub1"]["cid"]
        for state in ("", "&state=any"):
            want = s.j("/connz" + (state.replace("&", "?") if state else ""))["total"]
            got = get_json(s.srv, f"/connz?cid={cid}{state}")["total"]
            if got != want:
                errs.append(f"{s.label} /connz?cid={cid}{state}: total {got}, expected {want} (as nats-server)")
    assert not errs, "\n".join(errs)


def test_connz_closed_sort_stop_and_reason(wl) -> None:
    for s in wl:
        stop = get_json(s.srv, "/connz?state=closed&sort=stop")["connections"]
        stops = [rfc3339_ns(c["stop"]) for c in stop]
        assert stops == sorted(stops, reverse=True), (s.label, "sort=stop not descending")
        reason = get_json(s.srv, "/connz?state=closed&sort=reason")["connections"]
        reasons = [c["reason"] for c in reason]
        assert reasons == sorted(reasons), (s.label, reasons)


# ---------------------------------------------------------------------------
# 2b. /connz paging and sorting over many connections
# ---------------------------------------------------------------------------

N_SORT = 8
SORT_EXTRA_SUBS = [3, 7, 1, 5, 0, 6, 2, 4]  # subscriptions = 1 + this
SORT_ECHO_MSGS = [5, 2, 7, 0, 4, 1, 6, 3]  # published to its own subject: out = in
SORT_ECHO_SIZE = [10, 40, 3, 25, 1, 17, 8, 30]
SORT_NOSUB_MSGS = [4, 2, 5, 6, 6, 2, 2, 8]  # published where nobody listens
SORT_NOSUB_SIZE = [6, 2, 11, 1, 20, 3, 9, 5]


def sort_expect() -> dict[str, dict[str, int]]:
    out = {}
    for i in range(N_SORT):
        echo = SORT_ECHO_MSGS[i] * SORT_ECHO_SIZE[i]
        out[f"srt-{i}"] = {
            "subscriptions": SORT_EXTRA_SUBS[i] + 1,
            "out_msgs": SORT_ECHO_MSGS[i],
            "out_bytes": echo,
            "in_msgs": SORT_ECHO_MSGS[i] + SORT_NOSUB_MSGS[i],
            "in_bytes": echo + SORT_NOSUB_MSGS[i] * SORT_NOSUB_SIZE[i],
        }
    return out


SORT_KEYS = {"subs": "subscriptions", "msgs_to": "out_msgs", "msgs_from": "in_msgs",
             "bytes_to": "out_bytes", "bytes_from": "in_bytes"}


@dataclass
class SortSide:
    label: str
    srv: harness.Server
    conns: list[harness.RawConn]


def run_sort_workload(srv: harness.Server) -> list[harness.RawConn]:
    wait_idle(srv)
    conns = []
    for i in range(N_SORT):
        c = client(srv, f"srt-{i}")
        cmds = [f"SUB to.{i} 1\r\n".encode()]
        cmds += [f"SUB extra.{i}.{k} {k + 2}\r\n".encode() for k in range(SORT_EXTRA_SUBS[i])]
        cmds += [f"PUB to.{i} {SORT_ECHO_SIZE[i]}\r\n".encode() + b"e" * SORT_ECHO_SIZE[i] + b"\r\n"] * SORT_ECHO_MSGS[i]
        cmds += [f"PUB nosub.{i} {SORT_NOSUB_SIZE[i]}\r\n".encode() + b"n" * SORT_NOSUB_SIZE[i] + b"\r\n"] * SORT_NOSUB_MSGS[i]
        c.send(b"".join(cmds))
        c.sync(3)
        wait_msgs(c, SORT_ECHO_MSGS[i], f"{srv.kind} srt-{i}")
        conns.append(c)
    return conns


@pytest.fixture(scope="module")
def many(pytestconfig: pytest.Config):
    sides: list[SortSide] = []
    try:
        for kind, label in ((REF, "nats-server"), (sut_kind(pytestconfig), None)):
            srv = start_server(kind)
            side = SortSide(label or (kind if kind != REF else "nats-server#2"), srv, [])
            sides.append(side)
            side.conns = run_sort_workload(srv)
        yield sides
    finally:
        for s in sides:
            for c in s.conns:
                c.close()
            s.srv.stop()


def names(top: dict) -> list[str]:
    return [c.get("name") for c in top["connections"]]


def test_connz_many_counters(many) -> None:
    want = sort_expect()
    for s in many:
        got = {c["name"]: {k: c[k] for k in want["srt-0"]} for c in get_json(s.srv, "/connz")["connections"]}
        assert got == want, s.label


@pytest.mark.parametrize("sort", ["", "cid", "start"])
def test_connz_sort_cid_ascending(many, sort: str) -> None:
    for s in many:
        top = get_json(s.srv, f"/connz?sort={sort}" if sort else "/connz")
        cids = [c["cid"] for c in top["connections"]]
        assert cids == sorted(cids), (s.label, sort, cids)
        assert names(top) == [f"srt-{i}" for i in range(N_SORT)], (s.label, sort)


@pytest.mark.parametrize("sort", sorted(SORT_KEYS))
def test_connz_sort_descending(many, sort: str) -> None:
    field_ = SORT_KEYS[sort]
    want_vals = sort_expect()
    expect = sorted(want_vals, key=lambda n: -want_vals[n][field_])
    for s in many:
        top = get_json(s.srv, f"/connz?sort={sort}")
        vals = [c[field_] for c in top["connections"]]
        assert vals == sorted(vals, reverse=True), (s.label, sort, vals)
        assert names(top) == expect, (s.label, sort)


def test_connz_sort_pending(many) -> None:
    for s in many:
        top = get_json(s.srv, "/connz?sort=pending")
        vals = [c["pending_bytes"] for c in top["connections"]]
        assert vals == sorted(vals, reverse=True), s.label
        assert sorted(names(top)) == sorted(f"srt-{i}" for i in range(N_SORT)), s.label


def test_connz_sort_last_idle_rtt(many) -> None:
    """last: most recent activity first; idle: longest idle first; rtt:
    longest first (checked against each server's own reported values)."""
    for s in many:
        last = [rfc3339_ns(c["last_activity"]) for c in get_json(s.srv, "/connz?sort=last")["connections"]]
        assert last == sorted(last, reverse=True), (s.label, "last")
        idle = [rfc3339_ns(c["last_activity"]) for c in get_json(s.srv, "/connz?sort=idle")["connections"]]
        assert idle == sorted(idle), (s.label, "idle")
        rtt = [go_dur_ns(c["rtt"]) for c in get_json(s.srv, "/connz?sort=rtt")["connections"]]
        assert rtt == sorted(rtt, reverse=True), (s.label, "rtt")


def test_connz_sort_uptime(many) -> None:
    """nats-server 2.15.1 sorts ?sort=uptime with sort.Sort(byUptime) and no
    Reverse: shortest uptime (newest connection) first."""
    errs = []
    for s in many:
        got = names(get_json(s.srv, "/connz?sort=uptime"))
        want = [f"srt-{i}" for i in reversed(range(N_SORT))]
        if got != want:
            errs.append(f"{s.label}: sort=uptime {got}, nats-server order {want}")
    assert not errs, "\n".join(errs)


@pytest.mark.parametrize(
    "query,sl",
    [
        ("offset=2&limit=3", slice(2, 5)),
        ("offset=0&limit=1", slice(0, 1)),
        ("offset=6&limit=5", slice(6, 8)),
        ("offset=100", slice(8, 8)),
        ("limit=0", slice(0, 8)),
        ("limit=-1&offset=-3", slice(0, 8)),
    ],
)
def test_connz_paging(many, query: str, sl: slice) -> None:
    full = [f"srt-{i}" for i in range(N_SORT)]
    for s in many:
        top = get_json(s.srv, f"/connz?{query}")
        assert names(top) == full[sl], (s.label, query)
        assert top["num_connections"] == len(full[sl]), (s.label, query)
        assert top["total"] == N_SORT, (s.label, query)
    a = get_json(many[0].srv, f"/connz?{query}")
    b = get_json(many[1].srv, f"/connz?{query}")
    assert (a["offset"], a["limit"]) == (b["offset"], b["limit"]), query


def test_connz_paging_with_sort(many) -> None:
    v = sort_expect()
    expect = sorted(v, key=lambda n: -v[n]["out_bytes"])[3:6]
    for s in many:
        assert names(get_json(s.srv, "/connz?sort=bytes_to&offset=3&limit=3")) == expect, s.label


# ---------------------------------------------------------------------------
# Malformed and unknown query parameters, unknown paths
# ---------------------------------------------------------------------------

BAD_QUERIES = [
    "/connz?sort=bogus",
    "/connz?sort=stop",
    "/connz?sort=reason",
    "/connz?sort=stop&state=any",
    "/connz?sort=STOP&state=closed",
    "/connz?limit=x",
    "/connz?offset=x",
    "/connz?limit=1e3",
    "/connz?limit=%201",
    "/connz?limit=99999999999999999999",
    "/connz?cid=x",
    "/connz?cid=-1",
    "/connz?cid=%2B5",
    "/connz?cid=99999999999999999999999",
    "/connz?subs=x",
    "/connz?auth=x",
    "/connz?state=bogus",
    "/subsz?test=foo.*",
    "/subsz?test=foo.%3E",
    "/subsz?test=foo..bar",
    "/subsz?subs=x",
    "/subsz?subs=detail",
    "/subsz?limit=x",
    "/subsz?offset=x",
    "/routez?subs=x",
    "/healthz?js-enabled-only=bad",
    "/healthz?js-server-only=bad",
    "/healthz?js-meta-only=bad",
    "/healthz?js-enabled=bad",
    "/healthz?details=bad",
    "/nope",
    "/varz/",
    "/connz/x",
]


@pytest.fixture(scope="module")
def idle_pair(pytestconfig: pytest.Config):
    """Two idle servers for the query tests."""
    servers: list[harness.Server] = []
    try:
        for kind in (REF, sut_kind(pytestconfig)):
            servers.append(start_server(kind))
        yield servers
    finally:
        for s in servers:
            s.stop()


@pytest.mark.parametrize("path", BAD_QUERIES)
def test_bad_query_matches_nats_server(idle_pair, path: str) -> None:
    """Same status, Content-Type and body text as nats-server."""
    ref, sut = (http_get(s, path) for s in idle_pair)
    assert ref.status in (400, 404), (path, ref.status, ref.text)
    got = (sut.status, sut.text, sut.headers.get("content-type"))
    want = (ref.status, ref.text, ref.headers.get("content-type"))
    assert got == want, f"{path}: nats-server {want!r} vs {idle_pair[1].kind} {got!r}"


def test_bad_query_known_texts(idle_pair) -> None:
    """The messages issue 4 names, checked literally on both servers."""
    cases = {
        "/connz?sort=bogus": "invalid sorting option: bogus",
        "/connz?sort=stop": "sort by stop only valid on closed connections",
        "/connz?limit=x": "Error decoding int for 'limit': strconv.Atoi: parsing \"x\": invalid syntax",
        "/subsz?test=foo.*": "invalid test subject, must be valid publish subject: foo.*",
        "/healthz?js-enabled-only=bad":
            "Error decoding boolean for 'js-enabled-only': strconv.ParseBool: parsing \"bad\": invalid syntax",
    }
    for srv in idle_pair:
        for path, text in cases.items():
            r = http_get(srv, path)
            assert (r.status, r.text) == (400, text), (srv.kind, path, r.status, r.text)


OK_QUERIES = [
    "/varz?foo=bar",
    "/connz?foo=bar",
    "/connz?subs=DETAIL",
    "/connz?subs=true&auth=T",
    "/connz?limit=%2B1",
    "/connz?state=CLOSED",
    "/connz?state=all",
    "/connz?sort=stop&state=closed",
    "/connz?sort=reason&state=closed",
    "/connz?user=bob&mqtt_client=x",
    "/connz?cid=0",
    "/subsz?foo=bar",
    "/subsz?test=",
    "/subsz?subs=0&test=foo.bar",
    "/subscriptionsz",
    "/routez?subs=detail",
    "/routez?foo=bar",
    "/healthz?foo=bar",
    "/healthz?js-enabled-only=true",
    "/healthz?js-server-only=true",
    "/healthz?js-meta-only=1",
    "/healthz?js-enabled-only=false&js-server-only=0",
]


@pytest.mark.parametrize("path", OK_QUERIES)
def test_ignored_and_valid_params(idle_pair, path: str) -> None:
    """Unknown parameters are ignored; valid spellings accepted: 200 on both,
    same keys; /healthz answers {"status":"ok"} without JetStream."""
    ref, sut = (http_get(s, path) for s in idle_pair)
    assert ref.status == 200, (path, ref.status, ref.text)
    assert sut.status == 200, (path, sut.status, sut.text)
    if path.startswith("/healthz"):
        assert ref.body == sut.body == b'{"status":"ok"}', (path, ref.body, sut.body)
    else:
        endpoint = path[1:].split("?")[0]
        missing = set(ref.json()) - set(sut.json()) - NOT_MEANINGFUL.get(endpoint, set())
        extra = set(sut.json()) - set(ref.json())
        if endpoint == "varz":
            extra -= {"max_open_files", "lame_duck_mode"}  # nats-mini's own additions
        assert not missing and not extra, (path, sorted(missing), sorted(extra))


def test_connz_rtt_zero_is_0s(idle_pair) -> None:
    """A connection without a measured RTT (no CONNECT yet) still has `rtt`:
    nats-server always writes Duration.String(), i.e. "0s" (ConnInfo.RTT has
    omitempty, but "0s" is not empty); prometheus-nats-exporter parses it."""
    errs = []
    for srv in idle_pair:
        sock = socket.create_connection(("127.0.0.1", srv.port), timeout=5)
        try:
            sock.recv(4096)  # INFO; no CONNECT
            conns = poll(lambda: get_json(srv, "/connz")["connections"], what="the connection listed")
            for c in conns:
                if c.get("rtt") != "0s":
                    errs.append(f"{srv.kind}: cid {c['cid']} without CONNECT: rtt {c.get('rtt', '<absent>')!r}, want '0s'")
        finally:
            sock.close()
        poll(lambda: get_json(srv, "/varz")["connections"] == 0, what="connection gone")
    assert not errs, "\n".join(errs)


def test_root_index(idle_pair) -> None:
    for s in idle_pair:
        r = http_get(s, "/")
        assert r.status == 200 and r.headers.get("content-type", "").startswith("text/html"), s.kind
        for e in ("varz", "connz", "subsz", "routez", "healthz"):
            assert e in r.text, (s.kind, e)


# ---------------------------------------------------------------------------
# /metrics (nats-mini only)
# ---------------------------------------------------------------------------


def _metric_samples(text: str) -> dict[str, Any]:
    from prometheus_client.parser import text_string_to_metric_families

    # A list, not a dict by family name: the parser strips `_total` from
    # counter names, so names are looked up per sample.
    return list(text_string_to_metric_families(text))


def _value(fams: list, sample_name: str, labels: dict | None = None) -> float:
    for fam in fams:
        for smp in fam.samples:
            if smp.name == sample_name and (labels is None or all(smp.labels.get(k) == v for k, v in labels.items())):
                return smp.value
    raise AssertionError(f"no sample {sample_name} {labels or ''}")


def _provoke_slow_consumer(srv: harness.Server) -> None:
    """A subscriber that never reads, with a tiny receive buffer, and 4 MiB
    published at it: nats-mini closes it as a slow consumer (pending bytes)."""
    def until_pong(sock: socket.socket) -> None:
        buf = b""
        while b"PONG" not in buf:
            chunk = sock.recv(65536)
            assert chunk, f"server closed: {buf[-200:]!r}"
            buf += chunk

    slow = socket.socket()
    slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    slow.settimeout(5)
    slow.connect(("127.0.0.1", srv.port))
    slow.recv(4096)
    slow.sendall(b'CONNECT {"verbose":false,"name":"mon-slow"}\r\nSUB big 1\r\nPING\r\n')
    until_pong(slow)
    pub = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
    pub.recv(4096)
    payload = b"x" * 16384
    pub.sendall(b'CONNECT {"verbose":false,"name":"mon-bigpub"}\r\n' + (b"PUB big 16384\r\n" + payload + b"\r\n") * 256)
    try:
        poll(lambda: get_json(srv, "/varz")["slow_consumers"] >= 1, timeout=10, what="a slow consumer")
        closed = poll(lambda: {c.get("name"): c for c in get_json(srv, "/connz?state=closed")["connections"]}.get("mon-slow"),
                      what="mon-slow closed")
        assert closed["reason"].startswith("Slow Consumer ("), closed["reason"]
        pub.sendall(b"PING\r\n")
        until_pong(pub)
    finally:
        pub.close()
        slow.close()


@pytest.fixture
def mini_metrics(pytestconfig: pytest.Config):
    if reference_only(pytestconfig):
        pytest.skip("/metrics is nats-mini's own endpoint (reference mode: nats-server only)")
    srv = start_server("nats-mini", {"max_payload": 32768, "max_pending": 262144})
    yield srv
    srv.stop()


def test_metrics_counters_equal_varz(mini_metrics: harness.Server) -> None:
    srv = mini_metrics
    side = Side("nats-mini", srv)
    try:
        a, b = client(srv, "mon-a"), client(srv, "mon-b")
        side.conns.update({"a": a, "b": b})
        b.send(b"SUB m.> 1\r\nSUB m.x q 2\r\n")
        b.sync(3)
        a.send(b"PUB m.x 3\r\nabc\r\nPUB m.y 5\r\nhello\r\nPUB none 2\r\nzz\r\n")
        a.sync(3)
        wait_msgs(b, 3, "mon-b")
        _provoke_slow_consumer(srv)
        poll(lambda: get_json(srv, "/varz")["connections"] == 2, what="slow/bigpub gone")

        r = http_get(srv, "/metrics")
        v = get_json(srv, "/varz")
        assert r.status == 200, r.text
        assert r.headers.get("content-type", "").startswith("text/plain; version=0.0.4"), r.headers
        fams = _metric_samples(r.text)
        pairs = {
            "nats_mini_in_msgs_total": v["in_msgs"],
            "nats_mini_in_bytes_total": v["in_bytes"],
            "nats_mini_out_msgs_total": v["out_msgs"],
            "nats_mini_out_bytes_total": v["out_bytes"],
            "nats_mini_accepted_connections_total": v["total_connections"],
            "nats_mini_slow_consumers_total": v["slow_consumers"],
            "nats_mini_stale_connections_total": v["stale_connections"],
            "nats_mini_connections": v["connections"],
            "nats_mini_subscriptions": v["subscriptions"],
            "nats_mini_routes": v["routes"],
        }
        got = {k: _value(fams, k) for k in pairs}
        assert got == {k: float(x) for k, x in pairs.items()}, f"/metrics {got} vs /varz {pairs}"
        assert v["slow_consumers"] >= 1 and v["in_msgs"] >= 3 + 256 and v["subscriptions"] == 2
        assert _value(fams, "nats_mini_lame_duck") == 0.0
        assert _value(fams, "nats_mini_info", {"server_id": v["server_id"]}) == 1.0
        assert _value(fams, "process_resident_memory_bytes") > 0

        # the flush-latency histogram
        fam = next((f for f in fams if f.name == "nats_mini_flush_duration_seconds"), None)
        assert fam is not None and fam.type == "histogram", [f.name for f in fams]
        buckets = [(s.labels["le"], s.value) for s in fam.samples if s.name.endswith("_bucket")]
        count = _value(fams, "nats_mini_flush_duration_seconds_count")
        total = _value(fams, "nats_mini_flush_duration_seconds_sum")
        assert buckets and buckets[-1][0] == "+Inf" and buckets[-1][1] == count, buckets
        assert [b for _, b in buckets] == sorted(b for _, b in buckets), "buckets not cumulative"
        assert count >= 1 and total >= 0, (count, total)
    finally:
        for c in side.conns.values():
            c.close()


def test_metrics_is_not_json_and_404_elsewhere(mini_metrics: harness.Server) -> None:
    r = http_get(mini_metrics, "/metrics")
    assert r.status == 200 and not r.text.lstrip().startswith("{")
    assert http_get(mini_metrics, "/metricsz").status == 404
