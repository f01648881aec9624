"""An echo client: ``python examples/echo_client.py URL MESSAGE...``."""

from __future__ import annotations

import sys

import trio

import trio_ws


async def main(url: str, messages: list[str]) -> None:
    """Send each message and print the echo."""
    async with trio_ws.open_websocket_url(url) as ws:
        for message in messages:
            await ws.send_message(message)
            print(f"< {await ws.get_message()}", flush=True)


if __name__ == "__main__":
    trio.run(main, sys.argv[1], sys.argv[2:] or ["hello"])
