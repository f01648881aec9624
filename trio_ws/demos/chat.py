"""A chat with rooms and presence, served with its browser page.

The page (``static/chat/index.html`` in this package) talks to the ``/ws``
event route through the browser client the package ships at ``/trio_ws.js``.
The events:

* ``join {"name", "room"}``: enter a room (leaving the previous one); the
  answer is ``{"room", "members"}``, and the others in the room get
  ``joined {"name", "members"}``;
* ``say "text"``: everyone in the room, the sender included, gets
  ``message {"name", "text"}``;
* ``leave``, or closing the connection: the room gets ``left {"name", "members"}``.

``members`` is the sorted list of the names in the room, so a page can show
who is present from any one of these events. A name is unique within a room
(compared case-insensitively): ``join`` with a name someone else in the room
already has fails with the error ``NameTaken`` and leaves the caller where it
was. With a hub that has a Redis backend, messages and join/leave notices
reach the room in every process; ``members`` lists the people connected to the
same process, and names are unique among them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..app import App, EventConnection, EventError
from ..hub import Hub

__all__ = ["MAX_NAME", "MAX_TEXT", "STATIC", "create_app"]

#: The directory of the chat page, served at ``/``.
STATIC = Path(__file__).resolve().parent / "static" / "chat"
#: The longest name or room name, in characters.
MAX_NAME = 40
#: The longest message, in characters.
MAX_TEXT = 2000


def create_app(hub: Hub | None = None) -> App:
    """A fresh chat app (one per server, so tests do not share rooms).

    Args:
        hub: the hub of the app's rooms (default: a new in-memory hub).
    """
    app = App(hub=hub)
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

    # The bare ``dict`` annotation is what the app checks the data against.
    @app.on("join")
    async def join(conn: EventConnection, data: dict) -> dict[str, Any]:  # type: ignore[type-arg]
        name, room = _field(data, "name"), _field(data, "room")
        taken = {other.casefold() for conn_id, other in rooms.get(room, {}).items() if conn_id != conn.id}
        if name.casefold() in taken:
            raise EventError("NameTaken", f"someone in {room} is already called {name}; pick another name")
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


def _field(data: dict[str, Any], key: str) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_NAME:
        raise EventError("BadRequest", f"{key} must be a string of 1 to {MAX_NAME} characters")
    return value.strip()
