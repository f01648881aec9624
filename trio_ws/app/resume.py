"""Resuming rooms with history across reconnections (the event layer's side; no I/O).

An event emitted to a room with history carries the room's name and the
message's ``epoch`` and ``offset`` in its envelope. A client that reconnects
puts the last position it saw in each room in the ``trio_ws_resume`` query
parameter of its new connection::

    ?trio_ws_resume={"/": {"tea": ["3f0c91d2a4b7e8f1", 42]}}

(JSON, URL-encoded: namespace, then room, then ``[epoch, offset]``). When the
server later joins that connection to such a room
(:meth:`EventConnection.join_room <trio_ws.app.EventConnection.join_room>`),
it joins from that position: the missed events come first, then a
``joined`` envelope with ``recovered`` true or false, then live events.
"""

from __future__ import annotations

import json
from typing import Any

from ..hub import JoinResult, StreamPosition
from ..hub.positioned import PositionedJSON
from .envelope import encode

__all__ = ["RESUME_PARAM", "parse_resume", "stream_event", "joined_envelope"]

#: The query parameter in which a reconnecting client sends its positions.
RESUME_PARAM = "trio_ws_resume"
#: At most this many rooms are resumed from one query parameter.
MAX_RESUME_ROOMS = 256


def parse_resume(value: str | None) -> tuple[dict[tuple[str, str], StreamPosition], str | None]:
    """Read the positions a reconnecting client sent.

    Returns:
        the positions by ``(namespace, room)``, and a message describing
        what was wrong with ``value`` (None when it was valid or absent).
        Invalid entries are left out; the rest are kept.
    """
    if not value:
        return {}, None
    try:
        spaces = json.loads(value)
    except json.JSONDecodeError as err:
        return {}, f"{RESUME_PARAM} is not valid JSON: {err}"
    if not isinstance(spaces, dict):
        return {}, f"{RESUME_PARAM} must be a JSON object of namespaces"
    found: dict[tuple[str, str], StreamPosition] = {}
    problem = None
    for namespace, rooms in spaces.items():
        if not namespace.startswith("/") or not isinstance(rooms, dict):
            problem = f"{RESUME_PARAM}: {namespace!r} is not a namespace with an object of rooms"
            continue
        for room, position in rooms.items():
            if len(found) >= MAX_RESUME_ROOMS:
                return found, f"{RESUME_PARAM}: more than {MAX_RESUME_ROOMS} rooms"
            try:
                found[(namespace, room)] = StreamPosition.parse(
                    tuple(position) if isinstance(position, list) else position
                )
            except ValueError as err:
                problem = f"{RESUME_PARAM}: room {room!r}: {err}"
    return found, problem


def stream_event(event: str, data: Any, namespace: str, room: str) -> PositionedJSON:
    """A message for ``hub.broadcast``: the event's envelope, with the room's position when it has one.

    It is a :class:`~trio_ws.hub.positioned.PositionedJSON`, so it also
    crosses processes in a room streamed through Redis.

    Raises (when called, or broadcast to a streamed room):
        TypeError: when ``data`` cannot be encoded as JSON.
    """
    return PositionedJSON({"type": "event", "event": event, "namespace": namespace, "data": data}, {"room": room})


def joined_envelope(namespace: str, room: str, result: JoinResult) -> str:
    """The ``joined`` envelope that tells the client where a room with history stands."""
    assert result.position is not None
    value: dict[str, Any] = {
        "type": "joined",
        "namespace": namespace,
        "room": room,
        "epoch": result.position.epoch,
        "offset": result.position.offset,
        "recovered": result.recovered,
    }
    if result.reason is not None:
        value["reason"] = result.reason
    return encode(value)
