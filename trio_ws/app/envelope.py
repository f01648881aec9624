"""The event envelope: JSON objects in WebSocket text frames (no I/O here).

Version 1 of the format, both directions::

    {"type": "event", "event": NAME, "namespace": "/chat", "data": ANY, "id": INT?}
    {"type": "ack", "id": INT, "data": ANY}                 a successful answer
    {"type": "ack", "id": INT, "error": {"type": T, "message": M}}
    {"type": "connect", "namespace": NS, "data": ANY}       client -> server
    {"type": "connected", "namespace": NS}                  server -> client
    {"type": "connect_error", "namespace": NS, "error": {...}}
    {"type": "disconnect", "namespace": NS}
    {"type": "error", "error": {"type": T, "message": M}}   about an envelope with no id
    {"type": "joined", "namespace": NS, "room": R, "epoch": E, "offset": N,
     "recovered": BOOL, "reason": TEXT?}                    server -> client

An ``event`` emitted to a room with history also has ``room``, ``epoch``
and ``offset`` (see :mod:`trio_ws.app.resume`).

``namespace`` defaults to ``"/"``. An ``event`` with an ``id`` asks for an
answer: the handler's return value comes back as an ``ack`` with that id (or
an ``ack`` with ``error``). The server calls the client the same way. Ids are
integers chosen by the asking side, unique among its pending calls.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from .._deprecated import alias_getattr

__all__ = [
    "EventEnvelope",
    "EnvelopeError",
    "parse_envelope",
    "event_envelope",
    "ack_envelope",
    "error_envelope",
    "connect_envelope",
    "connected_envelope",
    "connect_error_envelope",
    "disconnect_envelope",
    "encode",
    "DEFAULT_NAMESPACE",
    "MAX_EVENT_NAME",
]

DEFAULT_NAMESPACE = "/"
MAX_EVENT_NAME = 128
_TYPES = frozenset({"event", "ack", "connect", "connected", "connect_error", "disconnect", "error", "joined"})


class EnvelopeError(ValueError):
    """A message is not a valid envelope; ``error_type`` names the problem."""

    def __init__(self, message: str, error_type: str = "BadEnvelope", call_id: int | None = None) -> None:
        super().__init__(message)
        self.error_type = error_type
        self.call_id = call_id


@dataclass(frozen=True)
class EventEnvelope:
    """A parsed, validated event envelope (``Envelope`` before; that name is a deprecated alias)."""

    type: str
    namespace: str = DEFAULT_NAMESPACE
    event: str | None = None
    data: Any = None
    id: int | None = None
    error: dict[str, str] | None = None


def parse_envelope(message: str | bytes) -> EventEnvelope:
    """Parse and validate one received message.

    Raises:
        EnvelopeError: for binary frames, invalid JSON, a non-object, an
            unknown type, or fields of the wrong type.
    """
    if isinstance(message, bytes):
        raise EnvelopeError("envelopes travel in text frames, not binary ones")
    try:
        value = json.loads(message)
    except json.JSONDecodeError as err:
        raise EnvelopeError(f"invalid JSON: {err}") from None
    if not isinstance(value, dict):
        raise EnvelopeError("an envelope must be a JSON object")
    call_id = value.get("id")
    if call_id is not None and (isinstance(call_id, bool) or not isinstance(call_id, int)):
        raise EnvelopeError("id must be an integer")
    kind = value.get("type")
    if kind not in _TYPES:
        raise EnvelopeError(f"unknown envelope type {kind!r}", call_id=call_id)
    namespace = value.get("namespace", DEFAULT_NAMESPACE)
    if not isinstance(namespace, str) or not namespace.startswith("/"):
        raise EnvelopeError("namespace must be a string starting with '/'", call_id=call_id)
    event = value.get("event")
    if kind == "event" and (not isinstance(event, str) or not event or len(event) > MAX_EVENT_NAME):
        raise EnvelopeError(f"event must be a non-empty string of at most {MAX_EVENT_NAME} characters", call_id=call_id)
    if kind == "ack" and call_id is None:
        raise EnvelopeError("an ack needs an id")
    error = value.get("error")
    if error is not None and not (
        isinstance(error, dict) and all(isinstance(error.get(k, ""), str) for k in ("type", "message"))
    ):
        raise EnvelopeError("error must be an object with string type and message", call_id=call_id)
    return EventEnvelope(kind, namespace, event, value.get("data"), call_id, error)


def encode(value: dict[str, Any]) -> str:
    """Serialise an envelope compactly.

    Raises:
        TypeError: when ``value`` holds something JSON cannot encode.
    """
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def event_envelope(event: str, data: Any, namespace: str = DEFAULT_NAMESPACE, call_id: int | None = None) -> str:
    """An ``event`` envelope (with an id when an answer is wanted)."""
    value: dict[str, Any] = {"type": "event", "event": event, "namespace": namespace, "data": data}
    if call_id is not None:
        value["id"] = call_id
    return encode(value)


def ack_envelope(call_id: int, data: Any) -> str:
    """A successful answer."""
    return encode({"type": "ack", "id": call_id, "data": data})


def error_envelope(error_type: str, message: str, call_id: int | None = None) -> str:
    """An error answer to a call (``ack`` with ``error``), or a bare ``error``."""
    error = {"type": error_type, "message": message}
    if call_id is None:
        return encode({"type": "error", "error": error})
    return encode({"type": "ack", "id": call_id, "error": error})


def connect_envelope(namespace: str, data: Any = None) -> str:
    """A client's request to join ``namespace`` (answered ``connected`` or ``connect_error``)."""
    return encode({"type": "connect", "namespace": namespace, "data": data})


def connected_envelope(namespace: str) -> str:
    """The server's answer: the connection is now in ``namespace``."""
    return encode({"type": "connected", "namespace": namespace})


def connect_error_envelope(namespace: str, error_type: str, message: str) -> str:
    """The server's answer: the connection may not join ``namespace``."""
    return encode({"type": "connect_error", "namespace": namespace, "error": {"type": error_type, "message": message}})


def disconnect_envelope(namespace: str) -> str:
    """Leaving ``namespace``: sent by a client that leaves, or by the server that takes it out."""
    return encode({"type": "disconnect", "namespace": namespace})


#: ``Envelope`` was this class's name; the hub has its own envelope format.
__getattr__ = alias_getattr(__name__, {"Envelope": ("trio_ws.app.EventEnvelope", EventEnvelope)})
