"""The hub's wire format between processes: envelopes, their builders and their parser.

What one hub tells the hubs of other processes travels as an *envelope*: a
JSON object, built here and read back here, and nowhere else. A backend
carries envelopes without looking inside them (it may add fields of its own,
such as the Redis backend's ``seq``, and read ``origin`` to skip its own
process's envelopes); what an envelope means is decided by the hub that
receives it (:meth:`~trio_ws.hub.Hub.deliver_remote`).

Fields. Every envelope has ``kind`` and ``origin`` (the publishing process's
id). Per kind:

============== ================================================= ==========================
``kind``       fields                                            built by
============== ================================================= ==========================
``room``       ``room``, ``exclude``, ``within``, payload        :func:`room_envelope`
``all``        ``exclude``, payload                              :func:`all_envelope`
``member``     ``id``, payload                                   :func:`member_envelope`
``disconnect`` ``id``, ``code``, ``reason``                      :func:`disconnect_envelope`
``close_room`` ``room``                                          :func:`close_room_envelope`
``presence``   ``room``, ``id``, ``event`` (``join``/``leave``)  :func:`presence_envelope`
============== ================================================= ==========================

The payload is ``text`` (a text message) or ``b64`` (a binary one, base64
encoded), or ``variants`` for a :class:`~trio_ws.hub.MessageVariants`: a
list of ``[wire format, [{"text"|"b64": ...}, ...]]`` pairs; ``exclude`` is
a sorted list of member ids; ``within`` (optional) narrows a ``room``
message to the members that are also in the room ``within``, or to the
member whose id it is. Nothing is ever pickled.

An entry of a room's stream (a room with history on a backend that keeps
streams) is a ``room`` envelope built by :func:`stream_envelope`; its payload
may also be ``json`` and ``json_extra`` (a
:class:`~trio_ws.hub.positioned.PositionedJSON`: each receiver renders it at
the entry's position), or ``variants`` with a ``marker`` (a
:class:`~trio_ws.hub.positioned.PositionedVariants`, rendered the same way). :func:`parse_stream_entry` reads it.
:func:`parse_envelope` turns an envelope into one of the typed values below
and ignores fields it does not know, so a backend's own fields and fields
added by a later version pass through harmlessly.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from ..prepared import PreparedMessage
from .history import StreamPosition
from .positioned import PositionedJSON, PositionedVariants
from .variants import HubMessage, MessageVariants

__all__ = [
    "HubEnvelope",
    "EnvelopeKind",
    "RoomMessage",
    "AllMessage",
    "MemberMessage",
    "Disconnect",
    "CloseRoom",
    "Presence",
    "ParsedEnvelope",
    "parse_envelope",
    "room_envelope",
    "all_envelope",
    "member_envelope",
    "disconnect_envelope",
    "close_room_envelope",
    "presence_envelope",
    "encode_payload",
    "decode_payload",
    "stream_envelope",
    "parse_stream_entry",
]

#: An envelope as it travels between processes: a JSON object (see the module's docs).
HubEnvelope = dict[str, Any]
#: The kinds of envelope the hub publishes.
EnvelopeKind = Literal["room", "all", "member", "disconnect", "close_room", "presence"]


@dataclass(frozen=True)
class RoomMessage:
    """A message for the local members of ``room``, except those in ``exclude``.

    With ``within``, only for those also in the room ``within``, or whose id it is.
    """

    room: str
    message: HubMessage
    exclude: frozenset[str]
    within: str | None = None


@dataclass(frozen=True)
class AllMessage:
    """A message for every local member, except those in ``exclude``."""

    message: HubMessage
    exclude: frozenset[str]


@dataclass(frozen=True)
class MemberMessage:
    """A message for one member, if it is local."""

    member_id: str
    message: HubMessage


@dataclass(frozen=True)
class Disconnect:
    """Close one member's connection with ``code`` and ``reason``, if it is local."""

    member_id: str
    code: int
    reason: str


@dataclass(frozen=True)
class CloseRoom:
    """Every local member leaves ``room``."""

    room: str


@dataclass(frozen=True)
class Presence:
    """A member of another process joined or left ``room``."""

    room: str
    member_id: str
    event: Literal["join", "leave"]


#: What :func:`parse_envelope` returns.
ParsedEnvelope = RoomMessage | AllMessage | MemberMessage | Disconnect | CloseRoom | Presence


# -- builders ------------------------------------------------------------------


def _header(kind: EnvelopeKind, origin: str | None) -> HubEnvelope:
    return {"kind": kind, "origin": origin}


def _exclusion(exclude: str | Iterable[str] | None) -> list[str]:
    if exclude is None:
        return []
    if isinstance(exclude, str):
        return [exclude]
    return sorted(set(exclude))


def room_envelope(
    origin: str | None,
    room: str,
    message: HubMessage,
    exclude: str | Iterable[str] | None = None,
    within: str | None = None,
) -> HubEnvelope:
    """An envelope delivering ``message`` to the members of ``room`` but ``exclude`` (``within``: see RoomMessage)."""
    envelope = {**_header("room", origin), "room": room, "exclude": _exclusion(exclude), **encode_payload(message)}
    if within is not None:
        envelope["within"] = within
    return envelope


def all_envelope(
    origin: str | None, message: HubMessage, exclude: str | Iterable[str] | None = None
) -> HubEnvelope:
    """An envelope delivering ``message`` to every member but ``exclude``."""
    return {**_header("all", origin), "exclude": _exclusion(exclude), **encode_payload(message)}


def member_envelope(origin: str | None, member_id: str, message: HubMessage) -> HubEnvelope:
    """An envelope delivering ``message`` to the member ``member_id``."""
    return {**_header("member", origin), "id": member_id, **encode_payload(message)}


def disconnect_envelope(origin: str | None, member_id: str, code: int, reason: str) -> HubEnvelope:
    """An envelope closing the connection of the member ``member_id``."""
    return {**_header("disconnect", origin), "id": member_id, "code": code, "reason": reason}


def close_room_envelope(origin: str | None, room: str) -> HubEnvelope:
    """An envelope removing every member from ``room``."""
    return {**_header("close_room", origin), "room": room}


def presence_envelope(origin: str | None, room: str, member_id: str, event: Literal["join", "leave"]) -> HubEnvelope:
    """An envelope telling that ``member_id`` joined or left ``room``."""
    return {**_header("presence", origin), "room": room, "id": member_id, "event": event}


def stream_envelope(
    origin: str | None,
    room: str,
    message: HubMessage | PositionedJSON | PositionedVariants,
    exclude: str | Iterable[str] | None = None,
    within: str | None = None,
) -> HubEnvelope:
    """An entry of ``room``'s stream: a ``room`` envelope whose message may be positioned.

    Raises:
        TypeError: when a PositionedJSON holds something JSON cannot encode
            (checked here, so that it fails in the sender, not in the receivers).
    """
    if isinstance(message, PositionedJSON):
        payload: dict[str, Any] = {"json": dict(message.value), "json_extra": dict(message.extra)}
        json.dumps(payload)
    elif isinstance(message, PositionedVariants):
        payload = {**encode_payload(message.message), "marker": message.marker}
    else:
        payload = encode_payload(message)
    if within is not None:
        payload["within"] = within
    return {**_header("room", origin), "room": room, "exclude": _exclusion(exclude), **payload}


def _encode_frame(message: PreparedMessage) -> dict[str, str]:
    if message.is_text:
        assert isinstance(message.data, str)
        return {"text": message.data}
    return {"b64": base64.b64encode(message.payload).decode("ascii")}


def encode_payload(message: HubMessage) -> dict[str, Any]:
    """The payload fields of an envelope: ``text``, or base64 ``b64`` for binary; ``variants`` for a MessageVariants."""
    if isinstance(message, MessageVariants):
        return {"variants": [[fmt, [_encode_frame(frame) for frame in frames]] for fmt, frames in message.items()]}
    return _encode_frame(message)


# -- parser --------------------------------------------------------------------


def decode_payload(envelope: Mapping[str, Any]) -> HubMessage:
    """Rebuild the message of an envelope.

    Raises:
        ValueError: when the envelope has no valid ``text``, ``b64`` or ``variants`` payload.
    """
    variants = envelope.get("variants")
    if variants is None:
        return _decode_frame(envelope)
    if not isinstance(variants, list) or not all(
        isinstance(pair, list) and len(pair) == 2 and (pair[0] is None or isinstance(pair[0], str)) for pair in variants
    ):
        raise ValueError("envelope variants must be [wire format, frames] pairs")
    decoded: dict[str | None, list[PreparedMessage]] = {}
    for fmt, frames in variants:
        if not isinstance(frames, list) or not frames:
            raise ValueError(f"envelope variant {fmt!r} has no frames")
        decoded[fmt] = [_decode_frame(frame) for frame in frames]
    return MessageVariants(decoded)


def _decode_frame(envelope: Any) -> PreparedMessage:
    if not isinstance(envelope, Mapping):
        raise ValueError("envelope has no text or b64 payload")
    text = envelope.get("text")
    if isinstance(text, str):
        return PreparedMessage(text)
    data = envelope.get("b64")
    if isinstance(data, str):
        try:
            return PreparedMessage(base64.b64decode(data, validate=True))
        except binascii.Error as err:
            raise ValueError(f"envelope payload b64 is not valid base64: {err}") from err
    raise ValueError("envelope has no text or b64 payload")


def _string(envelope: Mapping[str, Any], field: str) -> str:
    value = envelope.get(field)
    if not isinstance(value, str):
        raise ValueError(f"envelope field {field!r} must be a string, not {value!r}")
    return value


def _excluded(envelope: Mapping[str, Any]) -> frozenset[str]:
    value = envelope.get("exclude") or []
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ValueError(f"envelope field 'exclude' must be a list of strings, not {value!r}")
    return frozenset(value)


def _within(envelope: Mapping[str, Any]) -> str | None:
    value = envelope.get("within")
    if value is not None and not isinstance(value, str):
        raise ValueError(f"envelope field 'within' must be a string, not {value!r}")
    return value


def parse_stream_entry(envelope: Mapping[str, Any], position: StreamPosition) -> RoomMessage:
    """Read an entry of a room's stream, delivered at ``position``.

    Raises:
        ValueError: when it is not a valid ``room`` envelope (the message names
            the field), or its ``json``/``json_extra`` fields are not objects.
    """
    if envelope.get("kind") != "room":
        raise ValueError(f"a stream entry must be a room envelope, not {envelope.get('kind')!r}")
    value, extra = envelope.get("json"), envelope.get("json_extra") or {}
    marker = envelope.get("marker")
    message: HubMessage
    if marker is not None:
        variants = decode_payload(envelope)
        if not isinstance(marker, str) or not marker or not isinstance(variants, MessageVariants):
            raise ValueError("envelope field marker must be a non-empty string, with variants")
        message = PositionedVariants(variants, marker)(position)
    elif value is None:
        message = decode_payload(envelope)
    elif isinstance(value, dict) and isinstance(extra, dict):
        message = PreparedMessage(PositionedJSON(value, extra)(position))
    else:
        raise ValueError("envelope fields json and json_extra must be objects")
    return RoomMessage(_string(envelope, "room"), message, _excluded(envelope), _within(envelope))


def parse_envelope(envelope: Mapping[str, Any]) -> ParsedEnvelope:
    """Read an envelope another process published.

    Fields that the kind does not use are ignored.

    Raises:
        ValueError: when the envelope is malformed: an unknown ``kind``, a
            missing or mistyped field, or a bad payload (the message names it).
    """
    kind = envelope.get("kind")
    if kind == "room":
        return RoomMessage(_string(envelope, "room"), decode_payload(envelope), _excluded(envelope), _within(envelope))
    if kind == "all":
        return AllMessage(decode_payload(envelope), _excluded(envelope))
    if kind == "member":
        return MemberMessage(_string(envelope, "id"), decode_payload(envelope))
    if kind == "disconnect":
        code = envelope.get("code")
        if not isinstance(code, int) or isinstance(code, bool):
            raise ValueError(f"envelope field 'code' must be an integer, not {code!r}")
        reason = envelope.get("reason") or ""
        if not isinstance(reason, str):
            raise ValueError(f"envelope field 'reason' must be a string, not {reason!r}")
        return Disconnect(_string(envelope, "id"), code, reason)
    if kind == "close_room":
        return CloseRoom(_string(envelope, "room"))
    if kind == "presence":
        event = envelope.get("event")
        if event != "join" and event != "leave":
            raise ValueError(f"unknown presence event {event!r}")
        return Presence(_string(envelope, "room"), _string(envelope, "id"), event)
    raise ValueError(f"unknown envelope kind {kind!r}")
