"""Socket.IO connection-state recovery across real server processes, with the official client.

Two App processes (tests/hub_redis/sio_recovery_server.py) share one real
redis-server; the official socket.io-client in Node (sio_recovery_client.cjs)
runs "alice" on A with its default transports (long-polling, then the
upgrade) and "bob" on B over WebSocket. Events and acks cross between the
processes; A drops alice's transport and she reconnects to B. While she is
away, a worker (this process, with App.publish) sends to her room too.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import trio
from support.node_ws import NodeWs
from support.processes import Output, stop
from support.sio import NODE_SIO_DIR, PEER_TIMEOUT, SIO_PACKAGE_JSON, install_socketio_client, parse_records

from trio_ws.app import App
from trio_ws.hub import HubClient

pytest.importorskip("coredis", reason="coredis is not installed (test extra)")

from sio_recovery_server import HISTORY

from trio_ws.hub.redis import RedisBackend

HERE = Path(__file__).resolve().parent
SERVER = HERE / "sio_recovery_server.py"
CLIENT = HERE / "sio_recovery_client.cjs"


@pytest.fixture
async def node_socketio(node_tools: tuple[str, str | None]) -> NodeWs:
    """Node with ``socket.io-client@4`` loadable (installed once, as tests/socketio does)."""
    node, npm = node_tools
    if not SIO_PACKAGE_JSON.exists():
        if npm is None:
            pytest.skip(f"npm is not installed and socket.io-client is not cached in {NODE_SIO_DIR}")
        await trio.to_thread.run_sync(install_socketio_client, npm)
    return NodeWs(node, dict(os.environ, NODE_PATH=str(NODE_SIO_DIR / "node_modules")))


@asynccontextmanager
async def app_process(redis_url: str, prefix: str, process_id: str, window: float) -> AsyncIterator[int]:
    """Run sio_recovery_server.py until the block ends (killed by its pid); yields its port."""
    command = [sys.executable, str(SERVER), "--redis-url", redis_url, "--prefix", prefix]
    command += ["--process-id", process_id, "--window", str(window)]
    process = await trio.lowlevel.open_process(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE)
    assert process.stdout is not None
    out = Output()
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(out.drain, process.stdout)
            with trio.fail_after(PEER_TIMEOUT):
                await out.wait_for(b"\n")
            yield int(out.text.split()[1])
            nursery.cancel_scope.cancel()
    finally:
        await stop(process)


async def run_client(
    node: NodeWs,
    port_a: int,
    port_b: int,
    redis_server: Any,
    prefix: str,
    window: float,
    while_away: Callable[[], Awaitable[None]],
) -> Any:
    """Run the client; when alice is away, run ``while_away``, then let her reconnect once her state is
    parked (or has expired)."""
    command = [node.node, str(CLIENT), f"http://127.0.0.1:{port_a}/", f"http://127.0.0.1:{port_b}/"]
    process = await trio.lowlevel.open_process(
        command, env=node.env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert process.stdin is not None and process.stdout is not None and process.stderr is not None
    out, err = Output(), Output()

    def parked_states() -> int:
        reply = redis_server.cli("KEYS", f"{prefix}:parked:*").strip()  # an array's header: "*<count>"
        assert reply.startswith("*"), reply
        return int(reply[1:])

    try:
        with trio.fail_after(PEER_TIMEOUT):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(out.drain, process.stdout)
                nursery.start_soon(err.drain, process.stderr)
                await out.wait_for(b'"transport close"')
                # A parked its state when it dropped her: wait for it in Redis...
                while not parked_states():  # noqa: ASYNC110 - Redis has no event for it
                    await trio.sleep(0.02)
                await out.wait_for(b'"said while away"')
                await while_away()
                if window < 5:  # ...and, for a short window, until Redis has let it expire
                    while parked_states():  # noqa: ASYNC110 - Redis has no event for it
                        await trio.sleep(0.05)
                await process.stdin.send_all(b"go\n")
                await process.wait()
    finally:
        await stop(process)
    records = parse_records(out.text.encode())
    assert process.returncode == 0, (records, err.text)
    return records


def of(records: list[dict[str, Any]], who: str) -> list[dict[str, Any]]:
    return [{k: v for k, v in r.items() if k != "who"} for r in records if r["who"] == who]


@pytest.mark.parametrize(("window", "recovered"), [(30.0, True), (2.0, False)])
async def test_official_client_dropped_on_one_process_recovers_on_another(
    node_socketio: NodeWs, redis_server: Any, window: float, recovered: bool
) -> None:
    prefix = f"t{uuid.uuid4().hex[:12]}"
    # A worker (this process: no connections, a HubClient) with the servers' Socket.IO settings.
    worker = App()
    worker.enable_socketio(max_disconnection_duration=window, recovery_history=HISTORY)

    async def worker_says_while_alice_is_away() -> None:
        async with HubClient(RedisBackend(redis_server.url, prefix=prefix, process_id="W")) as client:
            assert await worker.publish(client, "news", "w1", to="tea")

    async with (
        app_process(redis_server.url, prefix, "A", window) as port_a,
        app_process(redis_server.url, prefix, "B", window) as port_b,
    ):
        records = await run_client(
            node_socketio, port_a, port_b, redis_server, prefix, window, worker_says_while_alice_is_away
        )
    alice = of(records, "alice")
    news = lambda text: {"event": "news", "text": text, "offset_is_string": True}  # noqa: E731
    assert alice[:7] == [
        {"event": "connect", "recovered": False},
        {"event": "joined", "on": ["A"]},
        {"event": "said", "on": ["A"]},
        news("b1"),  # emitted on B, excluding bob
        {"event": "asked", "answer": [5]},  # the server's call, answered by alice's callback
        {"event": "transport", "name": "websocket"},  # upgraded from long-polling
        {"event": "disconnect", "reason": "transport close"},
    ]
    whoami = next(r for r in alice if r["event"] == "whoami")["answer"][0]
    if recovered:
        # Back on B: the same sid, rooms and session; what bob said and the worker sent meanwhile,
        # once, in order, with offsets.
        assert alice[7:] == [
            {"event": "connect", "recovered": True, "same_sid": True},
            news("b2"),
            news("b3"),
            news("w1"),
            {"event": "whoami", "answer": [whoami]},
            news("b4"),
            {"event": "disconnect", "reason": "io client disconnect"},
        ]
        assert whoami[1:] == ["joined on A", ["tea"], True, "B"]
    else:
        # Past the window: a fresh session on B, without the rooms; b2, b3 and w1 are not replayed.
        assert alice[7:] == [
            {"event": "connect", "recovered": False, "same_sid": False},
            {"event": "whoami", "answer": [whoami]},
            {"event": "disconnect", "reason": "io client disconnect"},
        ]
        assert whoami[1:] == [None, [], False, "B"]
    bob = of(records, "bob")
    assert bob[:3] == [{"event": "joined", "on": ["B"]}, news("a1"), {"event": "said", "on": ["B"]}]
