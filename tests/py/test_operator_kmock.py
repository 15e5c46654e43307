"""The real operator binary (`nats-mini-operator run`) against a stateful fake Kubernetes API:
kmock's emulator with the gaps filled in `kmock_apiserver.py` (each test names the gaps it
relies on). No cluster: the test plays the StatefulSet controller and the kubelet itself
(pod objects, StatefulSet status) and serves the brokers' `/routez` from a local HTTP server,
so the operator's verdicts (Ready only on a full mesh) are checked end to end over HTTP.

The binary is built with cargo if `NATS_MINI_OPERATOR_BIN` does not name one; a failed build
fails the tests (never a skip).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import aiohttp
import aiohttp.web
import pytest

from kmock_apiserver import (  # noqa: F401
    LABEL_SELECTOR,
    METADATA,
    PUT,
    SSA_UPSERT,
    Apiserver,
    ServiceMonitorCRD,
)

REPO = Path(__file__).resolve().parents[2]
NS = "ns"
OP_NS = "nats-mini-system"
NM = "/apis/nats-mini.io/v1alpha1/namespaces/ns/natsminis"
SELECTOR = {
    "app.kubernetes.io/component": "broker",
    "app.kubernetes.io/instance": "demo",
    "app.kubernetes.io/name": "nats-mini",
}


@pytest.fixture(scope="session")
def operator_bin() -> str:
    explicit = os.environ.get("NATS_MINI_OPERATOR_BIN")
    if explicit:
        assert os.access(explicit, os.X_OK), f"NATS_MINI_OPERATOR_BIN={explicit} is not executable"
        return explicit
    out = subprocess.run(
        ["cargo", "build", "-q", "-p", "nats-mini-operator", "--bin", "nats-mini-operator",
         "--message-format=json"],
        cwd=REPO, capture_output=True, text=True, check=False,
    )
    assert out.returncode == 0, f"cannot build the operator:\n{out.stderr}"
    for line in out.stdout.splitlines():
        msg = json.loads(line)
        if msg.get("reason") == "compiler-artifact" and msg.get("executable"):
            if msg["target"]["name"] == "nats-mini-operator":
                return msg["executable"]
    raise AssertionError("cargo built no nats-mini-operator executable")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Operator:
    """One `nats-mini-operator run` process."""

    def __init__(self, binary: str, url: str, identity: str, workdir: Path):
        self.identity = identity
        self.metrics_port = free_port()
        kubeconfig = workdir / "kubeconfig"
        kubeconfig.write_text(json.dumps({
            "apiVersion": "v1", "kind": "Config",
            "clusters": [{"name": "kmock", "cluster": {"server": url}}],
            "users": [{"name": "kmock", "user": {}}],
            "contexts": [{"name": "kmock", "context": {"cluster": "kmock", "user": "kmock"}}],
            "current-context": "kmock",
        }))
        self.log = workdir / f"{identity}.log"
        env = dict(
            os.environ,
            KUBECONFIG=str(kubeconfig),
            POD_NAME=identity,
            POD_NAMESPACE=OP_NS,
            LEASE_NAME="nats-mini-operator",
            LEASE_DURATION_SECONDS="3",
            LEASE_GRACE_SECONDS="1",
            METRICS_ADDR=f"127.0.0.1:{self.metrics_port}",
            RUST_LOG="info,kube_lease_manager=debug",
        )
        self.proc = subprocess.Popen(
            [binary, "run"], env=env, stdout=subprocess.DEVNULL, stderr=self.log.open("w"),
        )

    def logs(self) -> str:
        return self.log.read_text()

    async def serving(self) -> bool:
        return await self.metric("nats_mini_operator_leader") is not None

    async def metric(self, name: str) -> float | None:
        try:
            async with aiohttp.ClientSession() as s:
                async with s.get(f"http://127.0.0.1:{self.metrics_port}/metrics") as r:
                    text = await r.text()
        except aiohttp.ClientError:
            return None
        for line in text.splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
        return None

    async def stop(self) -> int:
        """SIGTERM, then wait without blocking the event loop (kmock serves from it, and the
        operator talks to kmock while it shuts down)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + 15
            while self.proc.poll() is None and time.monotonic() < deadline:
                await asyncio.sleep(0.1)
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


class Api:
    """Plain HTTP to the fake apiserver, as kubectl would talk to a real one."""

    def __init__(self, session: aiohttp.ClientSession, url: str):
        self.s, self.url = session, url.rstrip("/")

    async def get(self, path: str) -> dict | None:
        async with self.s.get(self.url + path) as r:
            return await r.json() if r.status == 200 else None

    async def post(self, path: str, body: dict) -> dict:
        async with self.s.post(self.url + path, json=body) as r:
            assert r.status in (200, 201), await r.text()
            return await r.json()

    async def merge(self, path: str, body: dict) -> dict:
        async with self.s.patch(
            self.url + path, data=json.dumps(body),
            headers={"Content-Type": "application/merge-patch+json"},
        ) as r:
            assert r.status == 200, await r.text()
            return await r.json()


async def eventually(check, what: str, timeout: float = 20.0, ops: list[Operator] = ()):
    """Polls `check` (async, returns a truthy value when done) until it holds."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = await check()
        if last:
            return last
        await asyncio.sleep(0.2)
    logs = "\n".join(f"--- {o.identity}\n{o.logs()[-4000:]}" for o in ops)
    raise AssertionError(f"timed out waiting for {what} (last: {last!r})\n{logs}")


def condition(obj: dict, type_: str) -> dict:
    for c in (obj.get("status") or {}).get("conditions") or []:
        if c["type"] == type_:
            return c
    return {}


async def routez_server(routes: dict) -> tuple[aiohttp.web.AppRunner, int]:
    """Serves `/routez` with `{"num_routes": routes["n"]}` (the brokers' answer)."""
    async def handler(_request):
        return aiohttp.web.json_response({"num_routes": routes["n"], "routes": []})
    app = aiohttp.web.Application()
    app.router.add_get("/routez", handler)
    runner = aiohttp.web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await aiohttp.web.TCPSite(runner, "127.0.0.1", port).start()
    return runner, port


async def start_pods(api: Api, count: int, first: int = 0):
    """Plays the StatefulSet controller and kubelet: ready pods demo-i on 127.0.0.1."""
    for i in range(first, count):
        await api.post(f"/api/v1/namespaces/{NS}/pods", {
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": f"demo-{i}", "namespace": NS, "labels": dict(SELECTOR)},
            "status": {"podIP": "127.0.0.1",
                       "conditions": [{"type": "Ready", "status": "True"}]},
        })
    await api.merge(f"/apis/apps/v1/namespaces/{NS}/statefulsets/demo/status",
                    {"status": {"replicas": count, "readyReplicas": count}})


@pytest.mark.kmock(cls=Apiserver)
async def test_create_then_scale_applies_owned_children_and_verifies_the_mesh(kmock, operator_bin):
    """Relies on: SSA_UPSERT (children are created by apply), METADATA (uid for owner
    references, generation for observedGeneration), LABEL_SELECTOR (the pod list and the
    owned-object watches)."""
    routes = {"n": 2}
    runner, routez_port = await routez_server(routes)
    # A pod of another cluster in the namespace: the selector must keep it out.
    with tempfile.TemporaryDirectory() as tmp:
        op = Operator(operator_bin, str(kmock.url), "op-a", Path(tmp))
        try:
            async with aiohttp.ClientSession() as session:
                api = Api(session, str(kmock.url))
                await api.post(f"/api/v1/namespaces/{NS}/pods", {
                    "apiVersion": "v1", "kind": "Pod",
                    "metadata": {"name": "other-0", "namespace": NS,
                                 "labels": {**SELECTOR, "app.kubernetes.io/instance": "other"}},
                    "status": {"podIP": "127.0.0.2",
                               "conditions": [{"type": "Ready", "status": "True"}]},
                })
                nm = await api.post(NM, {
                    "apiVersion": "nats-mini.io/v1alpha1", "kind": "NatsMini",
                    "metadata": {"name": "demo", "namespace": NS},
                    "spec": {"replicas": 3, "monitoring": {"port": routez_port}},
                })
                uid = nm["metadata"]["uid"]

                sts_path = f"/apis/apps/v1/namespaces/{NS}/statefulsets/demo"
                sts = await eventually(lambda: api.get(sts_path), "the StatefulSet", ops=[op])
                cm = await eventually(
                    lambda: api.get(f"/api/v1/namespaces/{NS}/configmaps/demo-config"),
                    "the ConfigMap", ops=[op])
                for path in (f"/api/v1/namespaces/{NS}/services/demo",
                             f"/api/v1/namespaces/{NS}/services/demo-headless",
                             f"/apis/policy/v1/namespaces/{NS}/poddisruptionbudgets/demo",
                             sts_path, f"/api/v1/namespaces/{NS}/configmaps/demo-config"):
                    obj = await eventually(lambda p=path: api.get(p), path, ops=[op])
                    assert obj["metadata"]["ownerReferences"] == [{
                        "apiVersion": "nats-mini.io/v1alpha1", "kind": "NatsMini",
                        "name": "demo", "uid": uid,
                        "controller": True, "blockOwnerDeletion": True,
                    }], path
                assert sts["spec"]["replicas"] == 3
                assert sts["spec"]["podManagementPolicy"] == "Parallel"
                conf = cm["data"]["nats-mini.conf"]
                for i in range(3):
                    assert f"demo-{i}.demo-headless.ns.svc.cluster.local" in conf
                assert "demo-3." not in conf

                # No pods yet: status written, not Ready.
                nm_path = f"{NM}/demo"
                got = await eventually(
                    lambda: _with(api.get(nm_path), lambda o: condition(o, "Ready").get("reason")),
                    "a status", ops=[op])
                assert condition(got, "Ready")["status"] == "False"
                assert condition(got, "Progressing")["status"] == "True"
                assert got["status"]["observedGeneration"] == 1
                assert got["status"]["clientURL"] == "nats://demo.ns.svc.cluster.local:4222"

                # Three ready brokers, each seeing two routes: Ready.
                await start_pods(api, 3)
                got = await eventually(
                    lambda: _with(api.get(nm_path),
                                  lambda o: condition(o, "Ready").get("status") == "True"),
                    "Ready=True", ops=[op])
                assert got["status"]["readyReplicas"] == 3
                assert [r["pod"] for r in got["status"]["routes"]] == ["demo-0", "demo-1", "demo-2"]
                assert all(r["routes"] == 2 for r in got["status"]["routes"])
                assert condition(got, "Ready")["reason"] == "Meshed"

                # Scale to 5 (what `kubectl scale` does through the scale subresource).
                await api.merge(nm_path, {"spec": {"replicas": 5}})
                sts = await eventually(
                    lambda: _with(api.get(sts_path), lambda o: o["spec"]["replicas"] == 5),
                    "the StatefulSet scaled to 5", ops=[op])
                cm = await api.get(f"/api/v1/namespaces/{NS}/configmaps/demo-config")
                assert "demo-4.demo-headless.ns.svc.cluster.local" in cm["data"]["nats-mini.conf"]
                got = await eventually(
                    lambda: _with(api.get(nm_path),
                                  lambda o: o["status"].get("observedGeneration") == 2),
                    "observedGeneration 2", ops=[op])
                # The old brokers still see only 2 routes and two pods are missing.
                assert condition(got, "Ready")["status"] == "False"
                assert "3 of 5 broker(s) ready" in condition(got, "Ready")["message"]

                # The new pods come up and the mesh grows to 4 routes per broker: Ready again.
                routes["n"] = 4
                await start_pods(api, 5, first=3)
                got = await eventually(
                    lambda: _with(api.get(nm_path),
                                  lambda o: condition(o, "Ready").get("status") == "True"),
                    "Ready=True at 5", ops=[op])
                assert len(got["status"]["routes"]) == 5
                assert await op.metric("nats_mini_operator_reconciles_total") >= 3
                assert await op.metric("nats_mini_operator_leader") == 1
        finally:
            code = await op.stop()
            await runner.cleanup()
        assert code == 0, op.logs()[-4000:]
        # JSON log lines.
        first = op.logs().splitlines()[0]
        assert json.loads(first)["level"] in ("INFO", "DEBUG"), first


async def _with(fut, pred):
    obj = await fut
    return obj if obj is not None and pred(obj) else None


@pytest.mark.kmock(cls=Apiserver)
async def test_two_operators_elect_one_leader_and_hand_over_when_it_exits(kmock, operator_bin):
    """Relies on: SSA_UPSERT and METADATA (kube-lease-manager applies the Lease and reads
    its resourceVersion), LABEL_SELECTOR (owned watches). kmock has no apply conflicts, so
    the two are started a moment apart rather than racing for an empty Lease."""
    lease_path = f"/apis/coordination.k8s.io/v1/namespaces/{OP_NS}/leases/nats-mini-operator"
    with tempfile.TemporaryDirectory() as tmp:
        a = Operator(operator_bin, str(kmock.url), "op-a", Path(tmp))
        b = None
        try:
            async with aiohttp.ClientSession() as session:
                api = Api(session, str(kmock.url))
                holder = lambda: _with(api.get(lease_path),  # noqa: E731
                                       lambda o: (o.get("spec") or {}).get("holderIdentity"))
                lease = await eventually(holder, "a Lease holder", ops=[a])
                assert lease["spec"]["holderIdentity"] == "op-a"
                b = Operator(operator_bin, str(kmock.url), "op-b", Path(tmp))
                await eventually(b.serving, "op-b serving metrics", ops=[a, b])
                # b stays a standby while a renews (lease 3s, renewed 1s before expiry).
                await asyncio.sleep(4)
                lease = await api.get(lease_path)
                assert lease["spec"]["holderIdentity"] == "op-a"
                assert await a.metric("nats_mini_operator_leader") == 1
                assert await b.metric("nats_mini_operator_leader") == 0

                # a only reconciles while leading: prove the leader works, then hand over.
                await api.post(NM, {
                    "apiVersion": "nats-mini.io/v1alpha1", "kind": "NatsMini",
                    "metadata": {"name": "demo", "namespace": NS}, "spec": {"replicas": 1},
                })
                sts_path = f"/apis/apps/v1/namespaces/{NS}/statefulsets/demo"
                await eventually(lambda: api.get(sts_path), "the StatefulSet", ops=[a, b])
                assert await b.metric("nats_mini_operator_reconciles_total") == 0

                assert await a.stop() == 0, a.logs()[-4000:]
                assert "released the leader Lease" in a.logs()
                lease = await eventually(
                    lambda: _with(api.get(lease_path),
                                  lambda o: (o.get("spec") or {}).get("holderIdentity") == "op-b"),
                    "op-b to take the Lease", timeout=15, ops=[a, b])
                assert await b.metric("nats_mini_operator_leader") == 1

                # The new leader reconciles: a replica change reaches the StatefulSet.
                await api.merge(f"{NM}/demo", {"spec": {"replicas": 2}})
                await eventually(
                    lambda: _with(api.get(sts_path), lambda o: o["spec"]["replicas"] == 2),
                    "op-b to scale the StatefulSet", ops=[a, b])
        finally:
            await a.stop()
            code = await b.stop() if b is not None else 0
        assert code == 0, b.logs()[-4000:]


SM_PATH = f"/apis/monitoring.coreos.com/v1/namespaces/{NS}/servicemonitors/demo"


async def _natsmini_with_service_monitor(api: Api) -> dict:
    return await api.post(NM, {
        "apiVersion": "nats-mini.io/v1alpha1", "kind": "NatsMini",
        "metadata": {"name": "demo", "namespace": NS},
        "spec": {"replicas": 1, "monitoring": {"serviceMonitor": {"enabled": True}}},
    })


@pytest.mark.kmock(cls=Apiserver)
async def test_a_service_monitor_without_its_crd_is_skipped_not_degraded(kmock, operator_bin):
    """Relies on: SSA_UPSERT and METADATA (children, status). kmock answers the discovery of
    the undeclared monitoring.coreos.com/v1 with a 404, as a cluster without the CRD does."""
    with tempfile.TemporaryDirectory() as tmp:
        op = Operator(operator_bin, str(kmock.url), "op-a", Path(tmp))
        try:
            async with aiohttp.ClientSession() as session:
                api = Api(session, str(kmock.url))
                await _natsmini_with_service_monitor(api)
                got = await eventually(
                    lambda: _with(api.get(f"{NM}/demo"),
                                  lambda o: condition(o, "ServiceMonitor").get("reason")),
                    "the ServiceMonitor condition", ops=[op])
                sm = condition(got, "ServiceMonitor")
                assert sm["status"] == "False"
                assert sm["reason"] == "CRDNotInstalled"
                assert "monitoring.coreos.com/v1" in sm["message"]
                assert condition(got, "Degraded")["status"] == "False"
                # The rest was applied all the same.
                assert await api.get(f"/apis/apps/v1/namespaces/{NS}/statefulsets/demo")
                events = await api.get(f"/apis/events.k8s.io/v1/namespaces/{NS}/events")
                skipped = [e for e in events["items"] if e.get("reason") == "ServiceMonitorSkipped"]
                assert len(skipped) == 1, events
                assert skipped[0]["type"] == "Warning"
                assert "reconcile failed" not in op.logs()
        finally:
            code = await op.stop()
        assert code == 0, op.logs()[-4000:]


@pytest.mark.kmock(cls=ServiceMonitorCRD)
async def test_a_service_monitor_is_applied_then_deleted_when_turned_off(kmock, operator_bin):
    """Relies on: SSA_UPSERT (the ServiceMonitor is created by apply), METADATA (its uid for
    the owner check and the delete precondition; generation). kmock ignores the delete's
    uid precondition: that it is sent is pinned by the tower-test scenario."""
    with tempfile.TemporaryDirectory() as tmp:
        op = Operator(operator_bin, str(kmock.url), "op-a", Path(tmp))
        try:
            async with aiohttp.ClientSession() as session:
                api = Api(session, str(kmock.url))
                nm = await _natsmini_with_service_monitor(api)
                sm = await eventually(lambda: api.get(SM_PATH), "the ServiceMonitor", ops=[op])
                assert sm["metadata"]["ownerReferences"][0]["uid"] == nm["metadata"]["uid"]
                assert sm["spec"]["endpoints"][0]["port"] == "monitor"
                await eventually(
                    lambda: _with(api.get(f"{NM}/demo"),
                                  lambda o: condition(o, "ServiceMonitor").get("reason") == "Applied"),
                    "ServiceMonitor=Applied", ops=[op])

                await api.merge(f"{NM}/demo",
                                {"spec": {"monitoring": {"serviceMonitor": {"enabled": False}}}})

                async def gone():
                    return await api.get(SM_PATH) is None
                await eventually(gone, "the ServiceMonitor deleted", ops=[op])
                got = await eventually(
                    lambda: _with(api.get(f"{NM}/demo"),
                                  lambda o: o["status"].get("observedGeneration") == 2),
                    "observedGeneration 2", ops=[op])
                assert condition(got, "ServiceMonitor") == {}
                assert condition(got, "Degraded")["status"] == "False"
        finally:
            code = await op.stop()
        assert code == 0, op.logs()[-4000:]
