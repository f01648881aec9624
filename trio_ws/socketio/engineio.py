"""Engine.IO v4 packets: one packet per WebSocket frame, or several joined for HTTP long-polling.

Wire format (engine.io-protocol v4, "Packet encoding"):

* a text packet is its type digit followed by its data: ``4hello`` is a
  message, ``2`` a ping, ``3probe`` the pong of an upgrade probe;
* over WebSocket a binary message is the frame's bytes as they are, with no
  type prefix (v4 only has binary *message* packets);
* over long-polling several packets travel in one HTTP body joined by the
  record separator ``\\x1e``, and a binary message is written as ``b``
  followed by its base64 text (v4 always uses base64 there).

A message packet may also be a :class:`~trio_ws.PreparedMessage` that
already holds its WebSocket encoding (text ``4<data>``, or the bytes of a
binary message): the layer above encodes a broadcast once, every WebSocket
session sends the frame it shares with the others, and long-polling
sessions put its text in their payloads (:data:`OutgoingPacket`).

Everything here is sans-IO: plain functions from packets to ``str``/``bytes``
and back, raising :class:`~trio_ws.socketio.InvalidPacket` for malformed input.
"""

from __future__ import annotations

import base64
import binascii
import enum
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from ..prepared import PreparedMessage
from .errors import InvalidPacket, PayloadTooLarge

__all__ = [
    "RECORD_SEPARATOR",
    "EngineType",
    "EnginePacket",
    "OutgoingPacket",
    "Handshake",
    "encode_packet",
    "websocket_frame",
    "decode_packet",
    "encode_payload",
    "decode_payload",
]

#: Joins the packets of a long-polling payload (ASCII "record separator").
RECORD_SEPARATOR = "\x1e"


class EngineType(enum.IntEnum):
    """Engine.IO packet types; the value is the digit written on the wire."""

    OPEN = 0
    CLOSE = 1
    PING = 2
    PONG = 3
    MESSAGE = 4
    UPGRADE = 5
    NOOP = 6


_TYPE_BY_CHAR = {str(int(t)): t for t in EngineType}


@dataclass(frozen=True)
class EnginePacket:
    """One Engine.IO packet.

    ``data`` is text for every type; only a :attr:`EngineType.MESSAGE` may
    carry ``bytes`` (Engine.IO v4 has no other binary packet).

    Raises:
        TypeError: for data that is neither ``str`` nor ``bytes``.
        ValueError: for binary data on a packet that is not a message.
    """

    type: EngineType
    data: str | bytes = ""

    def __post_init__(self) -> None:
        if not isinstance(self.type, EngineType):
            object.__setattr__(self, "type", EngineType(self.type))
        if isinstance(self.data, (bytearray, memoryview)):
            object.__setattr__(self, "data", bytes(self.data))
        if not isinstance(self.data, (str, bytes)):
            raise TypeError(f"packet data must be str or bytes, not {type(self.data).__name__}")
        if isinstance(self.data, bytes) and self.type is not EngineType.MESSAGE:
            raise ValueError(f"only message packets carry binary data, not {self.type.name.lower()} packets")

    @property
    def binary(self) -> bool:
        """Whether the packet carries bytes (sent as a binary frame, or base64 over polling)."""
        return isinstance(self.data, bytes)


#: What a session sends: a packet, or a message packet already encoded for
#: WebSocket (text ``4<data>``, or binary) and shared by many sessions.
OutgoingPacket = EnginePacket | PreparedMessage


def websocket_frame(packet: OutgoingPacket) -> str | bytes | PreparedMessage:
    """What a WebSocket transport sends for ``packet``: its encoding, or the prepared message itself."""
    return packet if isinstance(packet, PreparedMessage) else encode_packet(packet)


def encode_packet(packet: EnginePacket) -> str | bytes:
    """Encode ``packet`` for one WebSocket frame: text, or the raw bytes of a binary message."""
    if isinstance(packet.data, bytes):
        return packet.data
    return f"{int(packet.type)}{packet.data}"


def decode_packet(frame: str | bytes) -> EnginePacket:
    """Decode one WebSocket frame (or one packet of a polling payload).

    A bytes frame is a binary message. A text packet starting with ``b`` is a
    base64 binary message (the long-polling form, accepted everywhere).

    Raises:
        InvalidPacket: empty text, an unknown type character, or bad base64.
    """
    if isinstance(frame, (bytes, bytearray, memoryview)):
        return EnginePacket(EngineType.MESSAGE, bytes(frame))
    if not frame:
        raise InvalidPacket("empty Engine.IO packet (a packet starts with its type digit 0-6)")
    head = frame[0]
    if head == "b":
        try:
            return EnginePacket(EngineType.MESSAGE, base64.b64decode(frame[1:], validate=True))
        except (binascii.Error, ValueError) as err:
            raise InvalidPacket(f"binary Engine.IO packet is not valid base64: {_preview(frame)}") from err
    packet_type = _TYPE_BY_CHAR.get(head)
    if packet_type is None:
        raise InvalidPacket(f"unknown Engine.IO packet type {head!r} in {_preview(frame)} (expected 0-6 or 'b')")
    return EnginePacket(packet_type, frame[1:])


def encode_payload(packets: Iterable[OutgoingPacket]) -> str:
    """Join ``packets`` into one long-polling body (binary messages as ``b`` + base64).

    A :class:`~trio_ws.PreparedMessage` counts as the message packet it encodes.

    Raises:
        ValueError: when there is no packet, or a text packet contains the record
            separator ``\\x1e``, which the peer would split on (the protocol
            assumes data never contains it).
    """
    parts: list[str] = []
    for packet in packets:
        if isinstance(packet, PreparedMessage):
            data = packet.data
            if isinstance(data, bytes):
                parts.append("b" + base64.b64encode(data).decode("ascii"))
                continue
            if RECORD_SEPARATOR in data:
                raise ValueError(
                    "a text packet containing the record separator \\x1e cannot be sent over long-polling"
                )
            parts.append(data)
            continue
        if isinstance(packet.data, bytes):
            parts.append("b" + base64.b64encode(packet.data).decode("ascii"))
            continue
        if RECORD_SEPARATOR in packet.data:
            raise ValueError("a text packet containing the record separator \\x1e cannot be sent over long-polling")
        parts.append(f"{int(packet.type)}{packet.data}")
    if not parts:
        raise ValueError("a long-polling payload holds at least one packet")
    return RECORD_SEPARATOR.join(parts)


def decode_payload(body: str | bytes, *, max_payload: int | None) -> list[EnginePacket]:
    """Split and decode a long-polling body into its packets.

    Args:
        body: the HTTP body, as received (bytes are decoded as UTF-8).
        max_payload: the most bytes the body may have, or None for no limit.

    Raises:
        PayloadTooLarge: when the body exceeds ``max_payload`` bytes.
        InvalidPacket: an empty body, invalid UTF-8, or any invalid packet.
    """
    if isinstance(body, (bytes, bytearray, memoryview)):
        raw = bytes(body)
        if max_payload is not None and len(raw) > max_payload:
            raise PayloadTooLarge("long-polling payload", len(raw), max_payload)
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as err:
            raise InvalidPacket(f"long-polling payload is not valid UTF-8 (byte {err.start})") from err
    else:
        text = body
        if max_payload is not None and len(text) > max_payload // 4:
            size = len(text.encode("utf-8", "surrogatepass"))
            if size > max_payload:
                raise PayloadTooLarge("long-polling payload", size, max_payload)
    if not text:
        raise InvalidPacket("empty long-polling payload")
    return [decode_packet(part) for part in text.split(RECORD_SEPARATOR)]


@dataclass(frozen=True)
class Handshake:
    """The values of the ``open`` packet that starts every Engine.IO session.

    Times are in seconds here and in milliseconds on the wire.

    Attributes:
        sid: the session id the client repeats in every later request.
        upgrades: the transports the client may upgrade to (``["websocket"]``
            for a long-polling session, empty for a WebSocket one).
        ping_interval: seconds between the server's pings.
        ping_timeout: seconds the client has to answer a ping.
        max_payload: the most bytes the server accepts in one packet or payload.
    """

    sid: str
    upgrades: Sequence[str] = field(default_factory=tuple)
    ping_interval: float = 25.0
    ping_timeout: float = 20.0
    max_payload: int = 1_000_000

    def to_packet(self) -> EnginePacket:
        """The ``open`` packet announcing these values."""
        body = {
            "sid": self.sid,
            "upgrades": list(self.upgrades),
            "pingInterval": round(self.ping_interval * 1000),
            "pingTimeout": round(self.ping_timeout * 1000),
            "maxPayload": self.max_payload,
        }
        return EnginePacket(EngineType.OPEN, json.dumps(body, separators=(",", ":")))

    @classmethod
    def from_packet(cls, packet: EnginePacket) -> Handshake:
        """Read the values of an ``open`` packet (the client's side of the handshake).

        Raises:
            InvalidPacket: not an open packet, bad JSON, or a missing or mistyped key.
        """
        if packet.type is not EngineType.OPEN or not isinstance(packet.data, str):
            raise InvalidPacket(f"expected an Engine.IO open packet, got a {packet.type.name.lower()} packet")
        try:
            body = json.loads(packet.data)
        except ValueError as err:
            raise InvalidPacket(f"open packet data is not valid JSON: {_preview(packet.data)}") from err
        if not isinstance(body, dict):
            raise InvalidPacket("open packet data must be a JSON object")
        sid = body.get("sid")
        upgrades = body.get("upgrades")
        if not isinstance(sid, str) or not sid:
            raise InvalidPacket(f"open packet: 'sid' must be a non-empty string, not {sid!r}")
        if not isinstance(upgrades, list) or not all(isinstance(u, str) for u in upgrades):
            raise InvalidPacket(f"open packet: 'upgrades' must be a list of strings, not {upgrades!r}")
        numbers: dict[str, int] = {}
        for key in ("pingInterval", "pingTimeout", "maxPayload"):
            value = body.get(key)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise InvalidPacket(f"open packet: {key!r} must be a positive integer, not {value!r}")
            numbers[key] = value
        return cls(
            sid=sid,
            upgrades=tuple(upgrades),
            ping_interval=numbers["pingInterval"] / 1000,
            ping_timeout=numbers["pingTimeout"] / 1000,
            max_payload=numbers["maxPayload"],
        )


def _preview(text: str, limit: int = 40) -> str:
    """``text`` as a repr, cut to ``limit`` characters for error messages."""
    if len(text) <= limit:
        return repr(text)
    return repr(text[:limit]) + f"... ({len(text):,} characters)"
