"""Smoke test with the real nats-py client.

Every test runs against nats-server (proves the test itself is right) and
against nats-mini (default mode; in reference mode only nats-server).
"""

from __future__ import annotations

import asyncio

import nats
import pytest
from nats.errors import NoRespondersError

import harness
from conftest import binary_for, server_kinds

pytestmark = pytest.mark.timeout(60)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "server" in metafunc.fixturenames:
        metafunc.parametrize("server", server_kinds(metafunc.config), indirect=True, scope="module")


@pytest.fixture(scope="module")
def server(request: pytest.FixtureRequest):
    kind = request.param
    srv = harness.Server(kind, {}, binary_for(kind)).start()  # default options
    yield srv
    srv.stop()


async def connect(server: harness.Server, **kw):
    return await nats.connect(server.url, allow_reconnect=False, connect_timeout=3, **kw)


async def settle(nc) -> None:
    """Make sure the server has processed everything sent on `nc` so far.

    nats-py 2.16.0's flush() writes its PING straight to the transport while
    SUB/PUB commands wait in the pending buffer for the flusher task, so the
    PONG can come back before a just-made SUB reached the server (seen as ~5%
    NoRespondersError / lost messages against nats-server 2.15.1 itself).
    After the first PONG the flusher has run; the second PING follows the SUB.
    """
    await nc.flush()
    await nc.flush()


async def test_pub_sub(server: harness.Server) -> None:
    nc = await connect(server)
    try:
        sub = await nc.subscribe("smoke.pubsub")
        for i in range(20):
            await nc.publish("smoke.pubsub", f"m{i}".encode())
        await settle(nc)
        got = [(await sub.next_msg(timeout=2)).data for _ in range(20)]
        assert got == [f"m{i}".encode() for i in range(20)]
        # wildcard subscriber on a second connection
        nc2 = await connect(server)
        try:
            wsub = await nc2.subscribe("smoke.>")
            await settle(nc2)
            await nc.publish("smoke.a.b", b"deep")
            msg = await wsub.next_msg(timeout=2)
            assert (msg.subject, msg.data) == ("smoke.a.b", b"deep")
        finally:
            await nc2.close()
    finally:
        await nc.close()


async def test_request_reply(server: harness.Server) -> None:
    responder = await connect(server)
    requester = await connect(server)
    try:

        async def handler(msg):
            await msg.respond(b"re:" + msg.data)

        await responder.subscribe("smoke.svc", cb=handler)
        await settle(responder)
        for i in range(5):
            reply = await requester.request("smoke.svc", f"q{i}".encode(), timeout=2)
            assert reply.data == f"re:q{i}".encode()
    finally:
        await requester.close()
        await responder.close()


async def test_queue_group_each_message_once(server: harness.Server) -> None:
    n = 300
    members = [await connect(server) for _ in range(3)]
    publisher = await connect(server)
    received: list[list[int]] = [[] for _ in members]
    done = asyncio.Event()

    def make_cb(idx: int):
        async def cb(msg):
            received[idx].append(int(msg.data))
            if sum(len(r) for r in received) >= n:
                done.set()

        return cb

    try:
        for i, nc in enumerate(members):
            await nc.subscribe("smoke.work", queue="workers", cb=make_cb(i))
            await settle(nc)
        for i in range(n):
            await publisher.publish("smoke.work", str(i).encode())
        await settle(publisher)
        await asyncio.wait_for(done.wait(), timeout=10)
        await asyncio.sleep(0.2)  # any duplicate would show up now
        everything = sorted(x for r in received for x in r)
        assert everything == list(range(n)), "each message must be delivered exactly once"
        assert all(len(r) > 0 for r in received), f"distribution: {[len(r) for r in received]}"
    finally:
        for nc in members + [publisher]:
            await nc.close()


async def test_headers_round_trip(server: harness.Server) -> None:
    nc = await connect(server)
    try:
        sub = await nc.subscribe("smoke.hdr")
        await settle(nc)
        await nc.publish("smoke.hdr", b"body", headers={"X-Trace": "abc-123", "Content-Type": "text/plain"})
        msg = await sub.next_msg(timeout=2)
        assert msg.data == b"body"
        assert msg.headers == {"X-Trace": "abc-123", "Content-Type": "text/plain"}

        async def echo(m):
            ask = (m.headers or {}).get("Ask", "")
            await nc.publish(m.reply, m.data, headers={"Echo": ask})

        await nc.subscribe("smoke.hdr.svc", cb=echo)
        await settle(nc)
        reply = await nc.request("smoke.hdr.svc", b"ping", headers={"Ask": "yes"}, timeout=2)
        assert reply.data == b"ping"
        assert reply.headers == {"Echo": "yes"}
    finally:
        await nc.close()


async def test_no_responders(server: harness.Server) -> None:
    nc = await connect(server)
    try:
        assert nc._server_info.get("headers") is True
        with pytest.raises(NoRespondersError):
            await nc.request("smoke.nobody.home", b"anyone?", timeout=2)
    finally:
        await nc.close()
