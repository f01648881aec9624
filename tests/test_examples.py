"""The examples run and do what they say."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import trio

import trio_ws

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"


async def test_demo_serves_the_chat_on_the_in_memory_hub() -> None:
    """The README's main command: the chat demo prints its URL and chats."""
    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            demo = await nursery.start(_start_process, [sys.executable, "-u", str(EXAMPLES / "demo.py"), "--port", "0"])
            try:
                line = await _read_line(demo.stdout)
                assert line.startswith("trio_ws chat demo running: open http://127.0.0.1:"), line
                http_url = line.split()[5]
                ws_url = http_url.replace("http://", "ws://") + "ws"
                async with trio_ws.open_websocket_url(ws_url) as alice, trio_ws.open_websocket_url(ws_url) as bob:
                    await _call(alice, 1, "join", {"name": "alice", "room": "demo"})
                    answer = await _call(bob, 1, "join", {"name": "bob", "room": "demo"})
                    assert answer["data"]["members"] == ["alice", "bob"]
                    await _call(alice, 2, "say", "hello")
                    event = json.loads(await bob.get_message())
                    assert event["event"] == "message"
                    assert event["data"] == {"name": "alice", "text": "hello"}
            finally:
                demo.kill()  # the process we started, by its handle


async def _call(ws: trio_ws.WebSocketConnection, call_id: int, event: str, data: object) -> dict[str, Any]:
    await ws.send_message(json.dumps({"type": "event", "event": event, "data": data, "id": call_id}))
    while True:
        envelope: dict[str, Any] = json.loads(await ws.get_message())
        if envelope.get("type") == "ack" and envelope.get("id") == call_id:
            return envelope


async def test_echo_server_and_client() -> None:
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            server = await nursery.start(_start_process, [sys.executable, "-u", str(EXAMPLES / "echo_server.py"), "0"])
            try:
                line = await _read_line(server.stdout)
                assert line.startswith("echo server listening on ws://127.0.0.1:")
                url = line.rsplit(" ", 1)[1]
                client = await trio.run_process(
                    [sys.executable, str(EXAMPLES / "echo_client.py"), url, "one", "two"],
                    capture_stdout=True,
                    capture_stderr=True,
                )
                assert client.stdout.decode().splitlines() == ["< one", "< two"]
            finally:
                server.kill()  # the server process we started, by its handle


async def _start_process(command: list[str], *, task_status: trio.TaskStatus[trio.Process]) -> None:
    process = await trio.lowlevel.open_process(command, stdout=subprocess.PIPE)
    task_status.started(process)
    await process.wait()


async def _read_line(stream: trio.abc.ReceiveStream | None) -> str:
    assert stream is not None
    data = b""
    while not data.endswith(b"\n"):
        chunk = await stream.receive_some(1)
        if not chunk:
            break
        data += chunk
    return data.decode().strip()
