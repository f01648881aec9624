"""A bot for the chat demo: ``python examples/chat_bot.py ws://127.0.0.1:8000/ws [--room lobby]``.

It joins a room of the chat (``examples/demo.py`` or ``trio-ws serve chat``)
with :class:`trio_ws.EventClient` and answers commands said in the room:

* ``!ping`` -> ``pong, NAME``
* ``!roll`` -> ``NAME rolled 1..6``
* ``!who``  -> the names in the room

When the server restarts, the client reconnects by itself; rooms are not
resumed (``recovered`` is False), so the ``connect`` handler joins again.
"""

from __future__ import annotations

import argparse
import random
import sys
from typing import Any

import trio

import trio_ws
from trio_ws.cli import EXIT_INTERRUPTED, run_main


def answer(command: str, sender: str, members: list[str]) -> str | None:
    """The bot's reply to one chat line, or None when it is not a command."""
    word = command.strip().split(" ", 1)[0].lower()
    if word == "!ping":
        return f"pong, {sender}"
    if word == "!roll":
        return f"{sender} rolled {random.randint(1, 6)}"
    if word == "!who":
        return "here: " + ", ".join(members)
    return None


async def main(url: str, name: str, room: str) -> None:
    """Join ``room`` as ``name`` and answer commands until interrupted."""
    client = trio_ws.EventClient(url)
    members: list[str] = []

    async def join() -> None:
        joined = await client.call("join", {"name": name, "room": room})
        members[:] = joined["members"]
        print(f"{name} joined {room}: {', '.join(members)}", flush=True)

    @client.on("connect")  # after a reconnection: the room was not kept
    async def rejoin(report: dict[str, Any]) -> None:
        print(f"reconnected (recovered={report['recovered']}); joining {room} again", flush=True)
        await join()

    @client.on("joined")
    @client.on("left")
    def presence(data: dict[str, Any]) -> None:
        members[:] = data["members"]

    @client.on("message")
    async def message(data: dict[str, Any]) -> None:
        if data["name"] == name:
            return  # our own words come back to us too
        reply = answer(data["text"], data["name"], members)
        if reply is not None:
            await client.emit("say", reply)

    async with client:
        await join()
        await trio.sleep_forever()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Join a chat room and answer !ping, !roll and !who.")
    parser.add_argument("url", metavar="URL", help="the chat's event route, for example ws://127.0.0.1:8000/ws")
    parser.add_argument("--name", default="bot", help="the bot's name in the room (default: bot)")
    parser.add_argument("--room", default="lobby", help="the room to join (default: lobby)")
    args = parser.parse_args()
    sys.exit(run_main(main, args.url, args.name, args.room, interrupted=EXIT_INTERRUPTED))
