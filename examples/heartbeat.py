"""Keepalive: the built-in options, and the ``heartbeat()`` helper in both modes.

Run it::

    python examples/heartbeat.py --interval 0.5 --count 4

A server and a client in one process:

* the server keeps connections alive with the built-in keepalive
  (``ping_interval`` / ``ping_timeout``, passed to ``app.serve``): a client
  that stops answering pings is closed with 1011 after ``ping_timeout``. Its
  handler also runs ``heartbeat(..., mode="pong")`` as a connection task: an
  unsolicited pong that keeps proxies from cutting an idle connection and
  expects no answer;
* the client turns the built-in keepalive off (``ping_interval=None``) and
  runs ``heartbeat(..., mode="ping")`` in its own nursery instead, then prints
  the round-trip time each ping measured (``ws.latency``).
"""

from __future__ import annotations

import argparse
import sys
from functools import partial

import trio

from trio_ws import heartbeat, open_websocket_url
from trio_ws.app import App, WebSocket
from trio_ws.cli import EXIT_INTERRUPTED, run_main


def create_app(interval: float) -> App:
    """An app whose ``/`` route only keeps the connection open, with a pong heartbeat."""
    app = App()

    @app.websocket("/")
    async def idle(ws: WebSocket) -> None:
        await ws.accept()
        ws.start_soon(partial(heartbeat, ws.connection, interval=interval, mode="pong"))
        async for _ in ws:
            pass

    return app


async def main(interval: float, count: int) -> None:
    """Serve, connect, print ``count`` round-trip times, stop."""
    async with trio.open_nursery() as nursery:
        serve = partial(create_app(interval).serve, ping_interval=10, ping_timeout=5)
        server = await nursery.start(serve, "127.0.0.1", 0)
        url = f"ws://127.0.0.1:{server.port}/"
        async with open_websocket_url(url, ping_interval=None) as ws, trio.open_nursery() as beats:
            beats.start_soon(partial(heartbeat, ws, interval=interval, timeout=2 * interval))
            await trio.sleep(interval / 2)  # print half-way between two pings
            for n in range(1, count + 1):
                await trio.sleep(interval)
                shown = "no answer yet" if ws.latency is None else f"{ws.latency * 1000:.2f} ms"
                print(f"heartbeat {n}: round trip {shown}", flush=True)
            beats.cancel_scope.cancel()
        while server.connections:  # noqa: ASYNC110 - let the server finish closing first
            await trio.sleep(0.01)
        nursery.cancel_scope.cancel()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between heartbeats")
    parser.add_argument("--count", type=int, default=5, help="how many round trips to print")
    args = parser.parse_args()
    sys.exit(run_main(main, args.interval, args.count, interrupted=EXIT_INTERRUPTED))
