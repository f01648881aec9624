"""examples/scale_out.py: two processes share a room through a real redis-server."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import trio

import trio_ws

RedisServer = Any  # the redis_server fixture's type (tests/hub_redis/conftest.py)

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "scale_out.py"


async def _node(redis: RedisServer, *, task_status: trio.TaskStatus[tuple[trio.Process, str]]) -> None:
    process = await trio.lowlevel.open_process(
        [sys.executable, "-u", str(EXAMPLE), "--redis", redis.url, "--port", "0"], stdout=subprocess.PIPE
    )
    try:
        assert process.stdout is not None
        line = b""
        while not line.endswith(b"\n"):
            chunk = await process.stdout.receive_some(1)
            assert chunk, "the node exited before printing its URL"
            line += chunk
        task_status.started((process, line.decode().split()[2]))
        await process.wait()
    finally:
        process.kill()  # only the process we started, by its handle


async def _call(ws: trio_ws.WebSocketConnection, call_id: int, event: str, data: Any) -> Any:
    await ws.send_message(json.dumps({"type": "event", "event": event, "data": data, "id": call_id}))
    while True:
        envelope = json.loads(await ws.get_message())
        if envelope.get("type") == "ack" and envelope.get("id") == call_id:
            assert "error" not in envelope, envelope
            return envelope["data"]


async def _next_said(ws: trio_ws.WebSocketConnection, text: str) -> Any:
    """The next ``said`` event with ``text`` (a sender also gets its own, before or after its ack)."""
    while True:
        envelope = json.loads(await ws.get_message())
        if envelope.get("event") == "said" and envelope["data"]["text"] == text:
            return envelope["data"]


async def test_two_processes_share_a_room(redis_server: RedisServer) -> None:
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            one, url_one = await nursery.start(_node, redis_server)
            two, url_two = await nursery.start(_node, redis_server)
            async with trio_ws.open_websocket_url(url_one) as alice, trio_ws.open_websocket_url(url_two) as bob:
                assert await _call(alice, 1, "join", "lobby") == 1
                assert await _call(bob, 1, "join", "lobby") == 2  # counted across both processes
                await _call(alice, 2, "say", "hello from one")
                one_said = await _next_said(bob, "hello from one")  # crossed from process one to two
                await _call(bob, 2, "say", "hello from two")
                two_said = await _next_said(alice, "hello from two")  # and back
                assert one_said["from"] != two_said["from"]
            one.kill()
            two.kill()
