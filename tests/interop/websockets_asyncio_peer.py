"""Out-of-process peer built on websockets' asyncio implementation.

The asyncio flavour of websockets cannot share a Trio run, so the interop tests
start this script as a child process and talk to it over 127.0.0.1.

Usage::

    python websockets_asyncio_peer.py server '<json options>'
    python websockets_asyncio_peer.py client '<json options>'

Options (JSON object): ``compression`` ("deflate" or null), ``max_size``,
``subprotocols`` (list or null) and, for the client, ``uri``.

Everything the peer observes is written to stdout as one JSON object per line:

* ``{"event": "listening", "port": N}`` (server only, first line)
* ``{"event": "open", ...}`` with the negotiated subprotocol and extensions
* ``{"event": "message", "type": "text"|"binary", "length": N, "sha256": H}``
* ``{"event": "pong", "data": HEX}`` when a ping it sent was answered
* ``{"event": "closed", "rcvd": [code, reason] | null, "sent": [...] | null}``
* ``{"event": "error", "type": NAME, "message": TEXT}``

Behaviour on each connection: every data message is echoed back unchanged,
except text messages starting with ``!``, which are JSON commands:

* ``!{"op": "ping", "data": HEX}``: send a ping, wait for its pong, then reply
  with the text message ``{"reply": "pong", "data": HEX}``.
* ``!{"op": "close", "code": N, "reason": TEXT}``: start the closing handshake.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import sys

from websockets.asyncio.client import connect
from websockets.asyncio.server import serve
from websockets.exceptions import ConnectionClosed

PONG_TIMEOUT = 10


def emit(**fields: object) -> None:
    sys.stdout.write(json.dumps(fields) + "\n")
    sys.stdout.flush()


def frame_info(frame: object) -> list[object] | None:
    if frame is None:
        return None
    return [frame.code, frame.reason]  # type: ignore[attr-defined]


def header(headers: object, name: str) -> str | None:
    return headers.get(name)  # type: ignore[attr-defined]


async def run_connection(ws) -> None:
    emit(
        event="open",
        subprotocol=ws.subprotocol,
        request_extensions=header(ws.request.headers, "Sec-WebSocket-Extensions"),
        response_extensions=header(ws.response.headers, "Sec-WebSocket-Extensions"),
        request_protocols=header(ws.request.headers, "Sec-WebSocket-Protocol"),
        path=ws.request.path,
    )
    try:
        while True:
            message = await ws.recv()
            if isinstance(message, str) and message.startswith("!"):
                command = json.loads(message[1:])
                if command["op"] == "ping":
                    data = bytes.fromhex(command["data"])
                    waiter = await ws.ping(data)
                    await asyncio.wait_for(waiter, PONG_TIMEOUT)
                    emit(event="pong", data=data.hex())
                    await ws.send(json.dumps({"reply": "pong", "data": data.hex()}))
                elif command["op"] == "close":
                    await ws.close(command["code"], command.get("reason", ""))
                else:
                    emit(event="error", type="UnknownCommand", message=message)
                continue
            raw = message.encode() if isinstance(message, str) else message
            emit(
                event="message",
                type="text" if isinstance(message, str) else "binary",
                length=len(raw),
                sha256=hashlib.sha256(raw).hexdigest(),
            )
            await ws.send(message)
    except ConnectionClosed as exc:
        emit(event="closed", rcvd=frame_info(exc.rcvd), sent=frame_info(exc.sent))


def common_kwargs(options: dict) -> dict:
    return {
        "compression": options.get("compression", "deflate"),
        "max_size": options.get("max_size", 2**20),
        "subprotocols": options.get("subprotocols"),
        # No automatic keepalive pings: the tests control every control frame.
        "ping_interval": None,
        # Far above the tests' CLOSE_PROMPTLY: a closing handshake that needed
        # it stands out even when a loaded machine slows the prompt ones down.
        "close_timeout": 30,
    }


async def run_server(options: dict) -> None:
    async with serve(run_connection, "127.0.0.1", 0, **common_kwargs(options)) as server:
        port = server.sockets[0].getsockname()[1]
        emit(event="listening", port=port)
        await server.serve_forever()


async def run_client(options: dict) -> None:
    try:
        ws = await connect(options["uri"], open_timeout=10, **common_kwargs(options))
    except Exception as exc:  # report any handshake failure to the test
        emit(event="error", type=type(exc).__name__, message=str(exc))
        raise SystemExit(1) from None
    async with ws:
        await run_connection(ws)


def main() -> None:
    role, options = sys.argv[1], json.loads(sys.argv[2])
    runner = {"server": run_server, "client": run_client}[role]
    asyncio.run(runner(options))


if __name__ == "__main__":
    main()
