"""python-socketio's asyncio client as a second, independent Socket.IO peer (run in a subprocess).

Usage: python python_sio_peer.py URL [TRANSPORT] (``websocket``, the default,
or ``polling``). Prints the same JSON records as the
"full" scenario of sio_client.cjs, one per line, then exits.
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

import socketio


def out(record: dict[str, Any]) -> None:
    print(json.dumps(record), flush=True)


async def main(url: str, transport: str) -> None:
    client = socketio.AsyncClient(reconnection=False)
    done = asyncio.Event()

    @client.on("add")
    async def add(a: int, b: int) -> tuple[int, str]:
        return a + b, "sum"

    @client.on("bytes")
    async def on_bytes(label: str, data: bytes, nested: dict[str, Any]) -> None:
        out({"event": "bytes", "label": label, "hex": data.hex(), "nested": nested["inner"][1].hex()})

    @client.on("done")
    async def on_done(value: Any) -> None:
        out({"event": "done", "value": value})
        done.set()

    await client.connect(url, transports=[transport], auth={"token": "abc"}, wait_timeout=5)
    out({"event": "connect", "id": client.get_sid()})
    echoed = await client.call("echo", ("hi", {"n": 1}, [True, None]), timeout=5)
    out({"event": "echo-ack", "echoed": list(echoed)})
    data, rest = await client.call("reverse", (bytes([1, 2, 3, 250]), {"keep": "text"}), timeout=5)
    out({"event": "reverse-ack", "hex": data.hex(), "rest": rest})
    empty = await client.call("nothing", timeout=5)
    out({"event": "nothing-ack", "count": 0 if empty is None else 1})
    await client.emit("no-ack", "fire and forget")
    await client.emit("trigger", (2, 3))
    await asyncio.wait_for(done.wait(), 10)
    out({"event": "transport", "name": client.transport()})
    await client.disconnect()


if __name__ == "__main__":
    asyncio.run(asyncio.wait_for(main(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else "websocket"), 20))
