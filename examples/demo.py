"""The quick-start demo: ``python3 examples/demo.py``.

Sets up ``.venv`` on first use, then starts an echo server and a client in
one process: the client sends a few messages (text, binary, a compressed
100 KiB one, a fragmented one), prints the echoes, pings and closes.
"""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

if __name__ == "__main__":
    _bootstrap = runpy.run_path(str(ROOT / ".ci" / "bootstrap.py"))
    if not _bootstrap["in_environment"]():
        _bootstrap["reexec"]("", Path(__file__), sys.argv[1:])

import trio  # noqa: E402

import trio_ws  # noqa: E402


async def echo(request: trio_ws.WebSocketRequest) -> None:
    """Accept and echo every message."""
    ws = await request.accept()
    async for message in ws:
        await ws.send_message(message)


async def demo() -> None:
    """Run a server and a client that exchange messages."""
    async with trio.open_nursery() as nursery:
        server = await nursery.start(trio_ws.serve_websocket, echo, "127.0.0.1", 0, None)
        url = f"ws://127.0.0.1:{server.port}/demo"
        print(f"server listening on {url}")
        async with trio_ws.open_websocket_url(url) as ws:
            print(f"client connected (compression negotiated: {ws.compression})")
            for message in ["hello, trio_ws", b"\x00\x01binary", "x" * 100_000, ["frag", "mented"]]:
                await ws.send_message(message)  # type: ignore[arg-type]
                reply = await ws.get_message()
                shown = repr(reply) if len(reply) < 40 else f"{reply[:12]!r}... ({len(reply):,} chars)"
                print(f"> sent {type(message).__name__:<5} < got {shown}")
            await ws.ping()
            print(f"ping round trip: {ws.latency * 1000:.2f} ms" if ws.latency is not None else "no ping")
        print(f"client closed: {ws.closed}")
        nursery.cancel_scope.cancel()
    print("server stopped")


if __name__ == "__main__":
    trio.run(demo)
