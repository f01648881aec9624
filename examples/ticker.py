"""A broadcast ticker: one background task sends a tick to every subscriber.

Run it, then connect one or more clients::

    python examples/ticker.py --port 8000 --interval 500
    python -m trio_ws connect ws://127.0.0.1:8000/ticker

Each connection to ``/ticker`` joins the hub room ``ticker``. A single task,
started beside the server, broadcasts ``{"seq": N, "time": T}`` to that room
every ``--interval`` milliseconds. ``Hub.broadcast_json`` encodes and frames
the tick once and queues it for every subscriber without waiting for any of
them. The hub is built with ``overflow="drop_oldest"``: a subscriber that
cannot keep up loses its oldest ticks instead of slowing the others down (the
default policy, ``"close"``, would disconnect it with 1008).
"""

from __future__ import annotations

import argparse
import sys
import time

import trio

from trio_ws import Hub
from trio_ws.app import App, WebSocket
from trio_ws.cli import run_main

ROOM = "ticker"


def create_app() -> App:
    """An app whose ``/ticker`` route subscribes connections to the ticker room."""
    app = App(hub=Hub(queue_size=16, overflow="drop_oldest"))

    @app.websocket("/ticker")
    async def subscribe(ws: WebSocket) -> None:
        await ws.accept()
        await ws.join_room(ROOM)
        async for _ in ws:  # ignore what the client sends; the loop ends when it leaves
            pass

    return app


async def broadcast_ticks(hub: Hub, interval_ms: float) -> None:
    """Broadcast a tick every ``interval_ms`` milliseconds, on a fixed schedule (no drift)."""
    deadline = trio.current_time()
    seq = 0
    while True:
        seq += 1
        await hub.broadcast_json(ROOM, {"seq": seq, "time": round(time.time(), 3)})
        deadline += interval_ms / 1000
        await trio.sleep_until(deadline)


async def main(host: str, port: int, interval_ms: float) -> None:
    """Serve the app and run the ticker beside it until Ctrl-C."""
    app = create_app()
    async with trio.open_nursery() as nursery:
        server = await nursery.start(app.serve, host, port)
        nursery.start_soon(broadcast_ticks, app.hub, interval_ms)
        print(f"ticker running at ws://{host}:{server.port}/ticker every {interval_ms:g} ms", flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000, help="0 picks a free port")
    parser.add_argument("--interval", type=float, default=1000, help="milliseconds between ticks")
    args = parser.parse_args()
    if args.interval <= 0:
        parser.error("--interval must be positive")
    sys.exit(run_main(main, args.host, args.port, args.interval))  # Ctrl-C stops the server quietly
