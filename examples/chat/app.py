"""A chat with rooms and presence, served with its browser page.

Run it and open the printed URL in two browser tabs::

    python examples/chat/app.py --port 8000

The page (``static/index.html``) talks to the ``/ws`` event route through the
browser client the package ships at ``/trio_ws.js``. The events:

* ``join {"name", "room"}``: enter a room (leaving the previous one); the
  answer is ``{"room", "members"}``, and the others in the room get
  ``joined {"name", "members"}``;
* ``say "text"``: everyone in the room, the sender included, gets
  ``message {"name", "text"}``;
* ``leave``, or closing the connection: the room gets ``left {"name", "members"}``.

``members`` is the sorted list of the names in the room, so a page can show
who is present from any one of these events.
"""

from __future__ import annotations

import argparse
import contextlib
from pathlib import Path

import trio

from trio_ws.app import App, EventConnection, EventError

STATIC = Path(__file__).resolve().parent / "static"
MAX_NAME = 40
MAX_TEXT = 2000


def create_app() -> App:
    """A fresh chat app (one per server, so tests do not share rooms)."""
    app = App()
    app.static("/", STATIC)
    rooms: dict[str, dict[str, str]] = {}  # room -> {connection id: name}

    def members(room: str) -> list[str]:
        return sorted(rooms.get(room, {}).values())

    async def leave(conn: EventConnection) -> None:
        room = conn.session.pop("room", None)
        if room is None:
            return
        people = rooms.get(room, {})
        people.pop(conn.id, None)
        if not people:
            rooms.pop(room, None)
        if not conn.websocket.closed:
            await conn.leave_room(room)
        await app.emit("left", {"name": conn.session["name"], "members": members(room)}, to=room)

    @app.on("join")
    async def join(conn: EventConnection, data: dict) -> dict:
        name, room = _field(data, "name"), _field(data, "room")
        await leave(conn)
        conn.session.update(name=name, room=room)
        rooms.setdefault(room, {})[conn.id] = name
        await conn.join_room(room)
        await app.emit("joined", {"name": name, "members": members(room)}, to=room, exclude=conn.id)
        return {"room": room, "members": members(room)}

    @app.on("say")
    async def say(conn: EventConnection, text: str) -> None:
        room = conn.session.get("room")
        if room is None:
            raise EventError("NotInRoom", "join a room first")
        if not text.strip() or len(text) > MAX_TEXT:
            raise EventError("BadRequest", f"a message has 1 to {MAX_TEXT} characters")
        await app.emit("message", {"name": conn.session["name"], "text": text}, to=room)

    @app.on("leave")
    async def leave_event(conn: EventConnection, data: object) -> None:
        await leave(conn)

    @app.on("disconnect")
    async def disconnected(conn: EventConnection) -> None:
        await leave(conn)

    return app


def _field(data: dict, key: str) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_NAME:
        raise EventError("BadRequest", f"{key} must be a string of 1 to {MAX_NAME} characters")
    return value.strip()


async def main(host: str, port: int) -> None:
    """Serve the chat until Ctrl-C."""
    app = create_app()
    async with trio.open_nursery() as nursery:
        server = await nursery.start(app.serve, host, port)
        print(f"chat running at http://{host}:{server.port}/ (Ctrl-C to stop)", flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000, help="0 picks a free port")
    args = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C stops the server quietly
        trio.run(main, args.host, args.port)
