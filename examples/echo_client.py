"""An echo client: ``python examples/echo_client.py URL [MESSAGE...]``."""

from __future__ import annotations

import argparse
import sys

import trio_ws
from trio_ws.cli import EXIT_INTERRUPTED, run_main


async def main(url: str, messages: list[str]) -> None:
    """Send each message and print the echo."""
    async with trio_ws.open_websocket_url(url) as ws:
        for message in messages:
            await ws.send_message(message)
            print(f"< {await ws.get_message()}", flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Send each MESSAGE to a WebSocket echo server and print the echo.")
    parser.add_argument("url", metavar="URL", help="the server, for example ws://127.0.0.1:8765/")
    parser.add_argument("messages", metavar="MESSAGE", nargs="*", default=["hello"], help="default: hello")
    args = parser.parse_args()
    sys.exit(run_main(main, args.url, args.messages, interrupted=EXIT_INTERRUPTED))
