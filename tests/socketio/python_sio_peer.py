"""python-socketio's asyncio client as a second, independent Socket.IO peer (run in a subprocess).

Usage: python python_sio_peer.py URL [TRANSPORT [SCENARIO]]: TRANSPORT is
``websocket`` (the default) or ``polling``. SCENARIO "full" (the default)
prints the same JSON records as the "full" scenario of sio_client.cjs, one
per line; "app" (an App's handlers, see test_app_socketio.py) a refused
namespace, two clients in a room with broadcasts that exclude the sender,
a second namespace on the same connection, and (over WebSocket) a
reconnection after the client's WebSocket drops; "serverend" a client that
the server ends twice (``upgrade`` as TRANSPORT: long-polling, then the
upgrade), reconnecting after the first end only. Then it exits.
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


async def app_scenario(url: str, transport: str) -> None:
    # A namespace the App refuses: connect_error gets its message and data, connect() raises.
    refused = socketio.AsyncClient(reconnection=False)
    errors: list[Any] = []

    @refused.on("connect_error", namespace="/private")
    async def refused_error(data: Any) -> None:
        errors.append(data)

    try:
        await refused.connect(url, namespaces=["/private"], transports=[transport], auth={"token": "wrong"})
    except socketio.exceptions.ConnectionError as err:
        out({"event": "refused", "error": str(err), "data": errors})

    # Two clients join "tea"; what each says reaches the other only.
    heard: dict[str, list[Any]] = {"a": [], "b": []}
    a = socketio.AsyncClient(reconnection=False)
    b = socketio.AsyncClient(reconnection=True, reconnection_delay=0.1, reconnection_delay_max=0.1)
    b_sids: list[str] = []
    b_again = asyncio.Event()
    for name, client in (("a", a), ("b", b)):

        @client.on("said")
        async def said(data: Any, name: str = name) -> None:
            heard[name].append(data)

    @b.on("connect")
    async def b_connected() -> None:
        b_sids.append(b.get_sid())
        if len(b_sids) == 2:
            b_again.set()

    await a.connect(url, namespaces=["/", "/chat"], transports=[transport], auth={"name": "a"}, wait_timeout=5)
    await b.connect(url, transports=[transport], auth={"name": "b"}, wait_timeout=5)
    out({"event": "joined", "a": await a.call("join", "tea", timeout=5), "b": await b.call("join", "tea", timeout=5)})
    out({"event": "say-ack", "answer": await a.call("say", "from a", timeout=5)})
    out({"event": "say-ack", "answer": await b.call("say", "from b", timeout=5)})
    out({"event": "where", "answer": await a.call("where", namespace="/chat", timeout=5)})
    # The broadcasts went out before the acks; one more round trip to each lets them land.
    await a.call("join", "tea", timeout=5)
    await b.call("join", "tea", timeout=5)
    out({"event": "heard", **heard})

    if transport == "websocket":
        # b's WebSocket drops (closed under the client, without a goodbye): the client
        # reconnects by itself, as a new session. (Over long-polling python-socketio
        # reconnects after no server close; there is no socket of its own to drop.)
        await b.eio.ws.close()
        await asyncio.wait_for(b_again.wait(), 10)
        out({"event": "reconnected", "new_sid": b_sids[1] != b_sids[0], "whoami": await b.call("whoami", timeout=5)})
    await a.disconnect()
    await b.disconnect()


async def server_end_scenario(url: str, transport: str) -> None:
    # Over "websocket" only, or (for "upgrade") long-polling first and then the upgrade,
    # which python-socketio completes before connect() returns. On each connect the
    # client says "ready" (with its transport); the server ends the first session
    # from its side, and disconnects the second one deliberately. The client reconnects
    # after the first end only; wait() returns once it has given up for good.
    transports = ["polling", "websocket"] if transport == "upgrade" else [transport]
    client = socketio.AsyncClient(
        reconnection=True, reconnection_delay=0.1, reconnection_delay_max=0.1, randomization_factor=0
    )

    @client.on("connect")
    async def connected() -> None:
        out({"event": "connect", "transport": client.transport()})
        await client.emit("ready")

    @client.on("disconnect")
    async def disconnected(reason: str) -> None:
        out({"event": "disconnect", "reason": reason})

    await client.connect(url, transports=transports, wait_timeout=5)
    await client.wait()
    out({"event": "ended"})


if __name__ == "__main__":
    url = sys.argv[1]
    transport = sys.argv[2] if len(sys.argv) > 2 else "websocket"
    scenario = sys.argv[3] if len(sys.argv) > 3 else "full"
    scenarios = {"app": app_scenario, "serverend": server_end_scenario}
    asyncio.run(asyncio.wait_for(scenarios.get(scenario, main)(url, transport), 20))
