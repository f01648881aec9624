"""Socket.IO peers of the tests: the official client in Node, python-socketio's client, raw frames.

The client scripts live in ``tests/socketio/``; each prints what it saw as
JSON lines (records), which the tests compare with what the server saw.
The official client is installed once with npm into ``.cache/node-socketio``
(for Node, and its browser bundle for Chromium). The "full" scenario is the
one the standalone SocketIOServer runs with every client and transport.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import trio

import trio_ws
from support.node_ws import NPM_INSTALL_TIMEOUT, PROJECT_ROOT, NodeWs
from trio_ws.socketio.server import Socket, SocketIOServer

SCRIPTS = Path(__file__).resolve().parents[1] / "socketio"
#: The official client driving a standalone SocketIOServer's scenarios.
SIO_CLIENT = SCRIPTS / "sio_client.cjs"
#: The official client driving an App's scenarios (rooms, calls, kicks).
SIO_APP_CLIENT = SCRIPTS / "sio_app_client.cjs"
#: python-socketio's client running the "full" scenario.
PYTHON_SIO_PEER = SCRIPTS / "python_sio_peer.py"
#: Upper bound for one client process (Node starts slowly on a loaded machine).
PEER_TIMEOUT = 30
#: Where npm installs ``socket.io-client@4`` once for the Node and browser tests.
NODE_SIO_DIR = PROJECT_ROOT / ".cache" / "node-socketio"
SIO_PACKAGE_JSON = NODE_SIO_DIR / "node_modules" / "socket.io-client" / "package.json"
#: The browser bundle the package ships.
SIO_BUNDLE = NODE_SIO_DIR / "node_modules" / "socket.io-client" / "dist" / "socket.io.min.js"


def install_socketio_client(npm: str) -> None:
    """``npm install socket.io-client@4`` into NODE_SIO_DIR (blocking; fails the test if npm does)."""
    NODE_SIO_DIR.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(
        [npm, "install", "--prefix", str(NODE_SIO_DIR), "socket.io-client@4", "--no-audit", "--no-fund"],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=NPM_INSTALL_TIMEOUT * 2,
        check=False,
    )
    if result.returncode != 0:
        pytest.fail(f"npm install socket.io-client@4 failed:\n{result.stderr.decode(errors='replace')}")


def parse_records(stdout: bytes) -> list[dict[str, Any]]:
    """The JSON lines a client script printed."""
    return [json.loads(line) for line in stdout.decode().splitlines() if line.strip()]


async def _run(command: list[str], env: dict[str, str] | None = None) -> list[dict[str, Any]]:
    with trio.fail_after(PEER_TIMEOUT):
        result = await trio.run_process(
            command, env=env, stdin=subprocess.DEVNULL, capture_stdout=True, capture_stderr=True, check=False
        )
    records = parse_records(result.stdout)
    assert result.returncode == 0, (records, result.stderr.decode(errors="replace"))
    return records


async def run_node(
    node: NodeWs, script: Path, url: str, scenario: str, transports: str | None = None
) -> list[dict[str, Any]]:
    """Run a Node client ``script`` against ``url`` until it exits; return its records.

    ``transports`` (for SIO_CLIENT): "websocket" (its default), "polling", or
    "default" (the client's own: long-polling first, then the upgrade).
    """
    return await _run([node.node, str(script), url, scenario, *([transports] if transports else [])], node.env)


async def run_python_peer(port: int, transport: str = "websocket", scenario: str = "full") -> list[dict[str, Any]]:
    """Run python-socketio's client's ``scenario`` against 127.0.0.1:``port`` over ``transport``; return its records."""
    return await _run([sys.executable, str(PYTHON_SIO_PEER), f"http://127.0.0.1:{port}", transport, scenario])


def open_raw(port: int, query: str = "EIO=4&transport=websocket", path: str = "/socket.io/") -> Any:
    """A plain WebSocket to the Socket.IO endpoint on 127.0.0.1 (an async context manager), for raw frames."""
    return trio_ws.open_websocket_url(f"ws://127.0.0.1:{port}{path}?{query}")


FULL_SCENARIO_RECORDS = [
    {"event": "echo-ack", "echoed": ["hi", {"n": 1}, [True, None]]},
    {"event": "reverse-ack", "hex": "fa030201", "rest": {"keep": "text"}},
    {"event": "nothing-ack", "count": 0},
    {"event": "bytes", "label": "payload", "hex": "00ff", "nested": "1020"},
    {"event": "done", "value": [5, "sum"]},
]


def serve_full_scenario(sio: SocketIOServer) -> tuple[dict[str, Any], trio.Event]:
    """The handlers both client implementations talk to; returns what they saw and a disconnect event."""
    seen: dict[str, Any] = {}
    disconnected = trio.Event()

    @sio.on_connect()
    async def connect(socket: Socket, auth: Any) -> None:
        seen["auth"] = auth
        seen["sid"] = socket.sid

    @sio.on("echo")
    async def echo(socket: Socket, *args: Any) -> tuple[Any, ...]:
        return args

    @sio.on("reverse")
    async def reverse(socket: Socket, data: bytes, extra: Any) -> tuple[Any, ...]:
        seen["received_bytes"] = data
        return bytes(reversed(data)), extra

    @sio.on("nothing")
    async def nothing(socket: Socket) -> None:
        return None

    @sio.on("no-ack")
    async def no_ack(socket: Socket, text: str) -> str:
        seen["no-ack"] = text
        return "nobody asked"

    @sio.on("trigger")
    async def trigger(socket: Socket, a: int, b: int) -> None:
        answer = await socket.call("add", a, b, timeout=5)
        await socket.emit("bytes", "payload", b"\x00\xff", {"inner": [1, b"\x10\x20"]})
        await socket.emit("done", answer)

    @sio.on_disconnect()
    async def on_disconnect(socket: Socket, reason: str) -> None:
        seen["reason"] = reason
        disconnected.set()

    return seen, disconnected


async def check_full_scenario(
    records: list[dict[str, Any]], seen: dict[str, Any], disconnected: trio.Event, reason: str
) -> str | None:
    """Check what the client and the server saw; returns the transport the client ended on, if it said."""
    transports = [r["name"] for r in records if r["event"] == "transport"]
    records = [r for r in records if r["event"] != "transport"]
    assert records == [{"event": "connect", "id": seen["sid"]}, *FULL_SCENARIO_RECORDS]
    assert seen["auth"] == {"token": "abc"}
    assert seen["received_bytes"] == b"\x01\x02\x03\xfa"
    assert seen["no-ack"] == "fire and forget"
    with trio.fail_after(5):
        await disconnected.wait()
    assert seen["reason"] == reason
    return transports[0] if transports else None
