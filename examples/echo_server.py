"""An echo server: ``python examples/echo_server.py [PORT]``."""

from __future__ import annotations

import sys

import trio

import trio_ws
from trio_ws.cli import run_main


async def echo(request: trio_ws.WebSocketRequest) -> None:
    """Accept every connection and send each message back."""
    ws = await request.accept()
    async for message in ws:
        await ws.send_message(message)


async def main(port: int) -> None:
    """Serve until interrupted."""
    async with trio.open_nursery() as nursery:
        server = await nursery.start(trio_ws.serve_websocket, echo, "127.0.0.1", port, None)
        print(f"echo server listening on ws://127.0.0.1:{server.port}/", flush=True)


if __name__ == "__main__":
    sys.exit(run_main(main, int(sys.argv[1]) if len(sys.argv) > 1 else 8765))  # Ctrl-C stops it quietly
