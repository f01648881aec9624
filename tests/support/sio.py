"""Socket.IO peers of the tests: the official client in Node, python-socketio's client, raw frames.

The client scripts live in ``tests/socketio/``; each prints what it saw as
JSON lines (records), which the tests compare with what the server saw.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import trio

import trio_ws
from support.node_ws import NodeWs

SCRIPTS = Path(__file__).resolve().parents[1] / "socketio"
#: The official client driving a standalone SocketIOServer's scenarios.
SIO_CLIENT = SCRIPTS / "sio_client.cjs"
#: The official client driving an App's scenarios (rooms, calls, kicks).
SIO_APP_CLIENT = SCRIPTS / "sio_app_client.cjs"
#: python-socketio's client running the "full" scenario.
PYTHON_SIO_PEER = SCRIPTS / "python_sio_peer.py"
#: Upper bound for one client process (Node starts slowly on a loaded machine).
PEER_TIMEOUT = 30


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


async def run_node(node: NodeWs, script: Path, url: str, scenario: str) -> list[dict[str, Any]]:
    """Run a Node client ``script`` against ``url`` until it exits; return its records."""
    return await _run([node.node, str(script), url, scenario], node.env)


async def run_python_peer(port: int) -> list[dict[str, Any]]:
    """Run python-socketio's client against 127.0.0.1:``port`` until it exits; return its records."""
    return await _run([sys.executable, str(PYTHON_SIO_PEER), f"http://127.0.0.1:{port}"])


def open_raw(port: int, query: str = "EIO=4&transport=websocket", path: str = "/socket.io/") -> Any:
    """A plain WebSocket to the Socket.IO endpoint on 127.0.0.1 (an async context manager), for raw frames."""
    return trio_ws.open_websocket_url(f"ws://127.0.0.1:{port}{path}?{query}")
