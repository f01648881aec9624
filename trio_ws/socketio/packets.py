"""Socket.IO v5 packets: namespaces, ack ids, JSON payloads and binary attachments.

Wire format (socket.io-protocol v5, "Packet encoding"), carried in Engine.IO
message packets::

    <type>[<attachments>-][<namespace>,][<ack id>][<JSON payload>]

followed, for BINARY_EVENT and BINARY_ACK, by one binary message per
attachment. Binary values in the payload are replaced by
``{"_placeholder":true,"num":N}`` where N indexes the attachments.

:func:`encode_packet` turns a :class:`Packet` into its text and attachments;
:class:`PacketDecoder` is the stateful inverse (it collects the attachments
that follow a binary packet). Both are sans-IO. The decoder validates every
field and raises :class:`~trio_ws.socketio.InvalidPacket` with a message naming
what is wrong; a server closes the session on it, as the protocol requires.
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass
from typing import Any

from .errors import InvalidPacket

__all__ = [
    "PacketType",
    "Packet",
    "encode_packet",
    "PacketDecoder",
    "deconstruct",
    "reconstruct",
    "has_binary",
    "MAX_ACK_ID",
    "MAX_ATTACHMENTS",
]

#: The largest ack id accepted: JavaScript's largest safe integer, since the
#: official clients count ids with JS numbers.
MAX_ACK_ID = 2**53 - 1
_MAX_ACK_DIGITS = len(str(MAX_ACK_ID))
#: Default limit on the attachments one packet may announce.
MAX_ATTACHMENTS = 256
_MAX_NAMESPACE = 256
_JSON_STARTS = '[{"'


class PacketType(enum.IntEnum):
    """Socket.IO packet types; the value is the digit written on the wire."""

    CONNECT = 0
    DISCONNECT = 1
    EVENT = 2
    ACK = 3
    CONNECT_ERROR = 4
    BINARY_EVENT = 5
    BINARY_ACK = 6


_BINARY_TYPES = (PacketType.BINARY_EVENT, PacketType.BINARY_ACK)
_NO_ID_TYPES = (PacketType.CONNECT, PacketType.DISCONNECT, PacketType.CONNECT_ERROR)
_ACK_TYPES = (PacketType.ACK, PacketType.BINARY_ACK)
_TYPE_BY_CHAR = {str(int(t)): t for t in PacketType}


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


# One encoder and one decoder for every packet: json.dumps and json.loads
# build a new one on each call that passes options, which cost more than the
# encoding of a short packet itself.
_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False)
_DECODER = json.JSONDecoder(parse_constant=_reject_constant)


@dataclass(frozen=True)
class Packet:
    """One Socket.IO packet.

    Attributes:
        type: the packet type. An EVENT or ACK whose data holds bytes is sent
            as BINARY_EVENT or BINARY_ACK by :func:`encode_packet`.
        namespace: the namespace, ``"/"`` for the main one.
        data: the payload (JSON values, plus ``bytes`` for binary packets), or
            None for none. CONNECT: an object (the client's ``auth``, or the
            server's ``{"sid": ...}``) or None; DISCONNECT: None; EVENT: a
            non-empty list whose first item is the event name; ACK: a list;
            CONNECT_ERROR: an object (``{"message": ...}``) or a string.
        id: the ack id of an EVENT that wants an answer, and of every ACK.

    Raises:
        InvalidPacket: when a field does not fit the type (the decoder and the
            encoder apply the same rules).
    """

    type: PacketType
    namespace: str = "/"
    data: Any = None
    id: int | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.type, PacketType):
            try:
                object.__setattr__(self, "type", PacketType(self.type))
            except ValueError as err:
                raise InvalidPacket(f"unknown Socket.IO packet type {self.type!r} (expected 0-6)") from err
        _check_namespace(self.namespace)
        _check_id(self.type, self.id)
        _check_data(self.type, self.data)


def has_binary(data: Any) -> bool:
    """Whether ``data`` holds ``bytes``, ``bytearray`` or ``memoryview`` at any depth."""
    if isinstance(data, (bytes, bytearray, memoryview)):
        return True
    if isinstance(data, (list, tuple)):
        return any(has_binary(item) for item in data)
    if isinstance(data, dict):
        return any(has_binary(item) for item in data.values())
    return False


def deconstruct(data: Any) -> tuple[Any, list[bytes]]:
    """Replace each binary value in ``data`` by a placeholder; return the new data and the attachments.

    Placeholders are numbered in depth-first order, the order in which the
    attachments must be sent.
    """
    attachments: list[bytes] = []

    def walk(value: Any) -> Any:
        if isinstance(value, (bytes, bytearray, memoryview)):
            attachments.append(bytes(value))
            return {"_placeholder": True, "num": len(attachments) - 1}
        if isinstance(value, (list, tuple)):
            return [walk(item) for item in value]
        if isinstance(value, dict):
            return {key: walk(item) for key, item in value.items()}
        return value

    return walk(data), attachments


def reconstruct(data: Any, attachments: list[bytes]) -> Any:
    """Put the ``attachments`` back where ``data`` holds placeholders.

    Raises:
        InvalidPacket: a placeholder whose ``num`` is not an index of ``attachments``.
    """

    def walk(value: Any) -> Any:
        if isinstance(value, list):
            return [walk(item) for item in value]
        if isinstance(value, dict):
            if value.get("_placeholder") is True and "num" in value:
                num = value["num"]
                if isinstance(num, bool) or not isinstance(num, int) or not 0 <= num < len(attachments):
                    raise InvalidPacket(
                        f"invalid attachment placeholder num={num!r} (the packet has {len(attachments)} attachments)"
                    )
                return attachments[num]
            return {key: walk(item) for key, item in value.items()}
        return value

    return walk(data)


def encode_packet(packet: Packet) -> list[str | bytes]:
    """Encode ``packet``: its text, then one ``bytes`` per binary attachment.

    Each item is sent as one Engine.IO message packet, in order.

    Raises:
        TypeError: data that JSON cannot represent (other than bytes).
        ValueError: NaN or infinite floats, which JSON cannot represent.
    """
    packet_type = packet.type
    data = packet.data
    attachments: list[bytes] = []
    if packet_type in (PacketType.EVENT, PacketType.ACK, *_BINARY_TYPES) and has_binary(data):
        data, attachments = deconstruct(data)
        is_event = packet_type in (PacketType.EVENT, PacketType.BINARY_EVENT)
        packet_type = PacketType.BINARY_EVENT if is_event else PacketType.BINARY_ACK
    parts = [str(int(packet_type))]
    if packet_type in _BINARY_TYPES:
        parts.append(f"{len(attachments)}-")
    if packet.namespace != "/":
        parts.append(packet.namespace + ",")
    if packet.id is not None:
        parts.append(str(packet.id))
    if data is not None:
        try:
            parts.append(_ENCODER.encode(data))
        except TypeError as err:
            raise TypeError(f"Socket.IO packet data is not JSON serializable: {err}") from err
        except ValueError as err:
            raise ValueError(f"Socket.IO packet data cannot be encoded as JSON: {err}") from err
    return ["".join(parts), *attachments]


class PacketDecoder:
    """Decode Socket.IO packets from the Engine.IO messages of one session.

    Feed every message to :meth:`feed`, in order; it returns a
    :class:`Packet` once one is complete (for a binary packet, when its last
    attachment arrives) and None while attachments are still expected.

    Args:
        max_attachments: the most attachments one packet may announce.

    After :meth:`feed` raises, the decoder is reset; the session should be
    closed all the same, since the protocol treats bad input as fatal.
    """

    def __init__(self, *, max_attachments: int = MAX_ATTACHMENTS) -> None:
        self._max_attachments = max_attachments
        self._partial: Packet | None = None
        self._expected = 0
        self._attachments: list[bytes] = []

    @property
    def awaiting_attachments(self) -> int:
        """How many attachments the packet being assembled still needs (0 when none)."""
        return self._expected - len(self._attachments) if self._partial is not None else 0

    def feed(self, message: str | bytes) -> Packet | None:
        """Take one Engine.IO message; return the packet it completes, if any.

        Raises:
            InvalidPacket: a malformed packet, text where an attachment was
                expected, or an attachment nobody announced.
        """
        if isinstance(message, (bytes, bytearray, memoryview)):
            if self._partial is None:
                raise InvalidPacket("unexpected binary message: no binary packet awaits attachments")
            self._attachments.append(bytes(message))
            if len(self._attachments) < self._expected:
                return None
            partial, attachments = self._partial, self._attachments
            self._reset()
            return Packet(partial.type, partial.namespace, reconstruct(partial.data, attachments), partial.id)
        if self._partial is not None:
            got, expected = len(self._attachments), self._expected
            self._reset()
            raise InvalidPacket(f"expected binary attachment {got + 1} of {expected}, got a text message")
        packet_type, count, packet = _decode_text(message, self._max_attachments)
        if packet_type in _BINARY_TYPES and count > 0:
            self._partial, self._expected, self._attachments = packet, count, []
            return None
        if packet_type in _BINARY_TYPES:
            # No attachments announced: placeholders cannot refer to anything.
            return Packet(packet.type, packet.namespace, reconstruct(packet.data, []), packet.id)
        return packet

    def _reset(self) -> None:
        self._partial, self._expected, self._attachments = None, 0, []


def _decode_text(text: str, max_attachments: int) -> tuple[PacketType, int, Packet]:
    """Parse the text part of a packet; return its type, attachment count and the packet with placeholders."""
    if not text:
        raise InvalidPacket("empty Socket.IO packet (a packet starts with its type digit 0-6)")
    packet_type = _TYPE_BY_CHAR.get(text[0])
    if packet_type is None:
        raise InvalidPacket(f"unknown Socket.IO packet type {text[0]!r} in {_preview(text)} (expected 0-6)")
    pos = 1
    count = 0
    if packet_type in _BINARY_TYPES:
        dash = text.find("-", pos, pos + len(str(max_attachments)) + 1)
        digits = text[pos:dash] if dash != -1 else ""
        if not (digits.isascii() and digits.isdigit()):
            raise InvalidPacket(
                f"invalid attachment count in {_preview(text)}: a binary packet's type is followed by digits and '-'"
            )
        count = int(digits)
        if count > max_attachments:
            raise InvalidPacket(f"packet announces {count} attachments, more than max_attachments={max_attachments}")
        pos = dash + 1
    namespace = "/"
    if text.startswith("/", pos):
        comma = text.find(",", pos)
        end = len(text) if comma == -1 else comma
        namespace = text[pos:end]
        pos = end + 1
    start = pos
    while pos < len(text) and "0" <= text[pos] <= "9":
        pos += 1
    ack_id: int | None = None
    if pos > start:
        digits = text[start:pos]
        if len(digits) > _MAX_ACK_DIGITS or int(digits) > MAX_ACK_ID:
            raise InvalidPacket(f"invalid ack id {_preview(digits)}: larger than {MAX_ACK_ID}")
        ack_id = int(digits)
    rest = text[pos:]
    data: Any = None
    if rest:
        if rest[0] not in _JSON_STARTS:
            bracket = rest.find("[")
            if packet_type not in _NO_ID_TYPES and bracket > 0:
                raise InvalidPacket(f"invalid ack id {_preview(rest[:bracket])}: an ack id is made of digits")
            raise InvalidPacket(
                f"invalid payload {_preview(rest)} in a {packet_type.name} packet: expected a JSON array or object"
            )
        data = _parse_json(rest, packet_type)
    return packet_type, count, Packet(packet_type, namespace, data, ack_id)


def _parse_json(text: str, packet_type: PacketType) -> Any:
    try:
        return _DECODER.decode(text)
    except RecursionError as err:
        raise InvalidPacket(f"{packet_type.name} payload is nested too deeply") from err
    except ValueError as err:
        raise InvalidPacket(f"{packet_type.name} payload is not valid JSON ({err}): {_preview(text)}") from err


def _check_namespace(namespace: Any) -> None:
    if namespace == "/":
        return  # the main namespace, in most packets
    if not isinstance(namespace, str) or not namespace.startswith("/"):
        raise InvalidPacket(f"invalid namespace {namespace!r}: a namespace starts with '/'")
    if len(namespace) > _MAX_NAMESPACE:
        raise InvalidPacket(f"invalid namespace {_preview(namespace)}: longer than {_MAX_NAMESPACE} characters")
    if "," in namespace or any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in namespace):
        raise InvalidPacket(f"invalid namespace {namespace!r}: no ',' or control characters allowed")


def _check_id(packet_type: PacketType, ack_id: Any) -> None:
    if ack_id is None:
        if packet_type in _ACK_TYPES:
            raise InvalidPacket(f"invalid ack id: a {packet_type.name} packet needs the id of the event it answers")
        return
    if isinstance(ack_id, bool) or not isinstance(ack_id, int) or not 0 <= ack_id <= MAX_ACK_ID:
        raise InvalidPacket(f"invalid ack id {ack_id!r}: an integer from 0 to {MAX_ACK_ID}")
    if packet_type in _NO_ID_TYPES:
        raise InvalidPacket(f"invalid ack id {ack_id}: a {packet_type.name} packet carries no ack id")


def _check_data(packet_type: PacketType, data: Any) -> None:
    name = packet_type.name
    if packet_type in _NO_ID_TYPES and has_binary(data):
        raise InvalidPacket(f"a {name} packet cannot carry binary data (only EVENT and ACK packets can)")
    if packet_type is PacketType.CONNECT:
        if data is not None and not isinstance(data, dict):
            raise InvalidPacket(f"invalid CONNECT payload {_short(data)}: expected a JSON object or nothing")
    elif packet_type is PacketType.DISCONNECT:
        if data is not None:
            raise InvalidPacket(f"invalid DISCONNECT payload {_short(data)}: a DISCONNECT packet carries none")
    elif packet_type is PacketType.CONNECT_ERROR:
        if not isinstance(data, (dict, str)):
            raise InvalidPacket(f"invalid CONNECT_ERROR payload {_short(data)}: expected a JSON object or string")
    elif packet_type in (PacketType.EVENT, PacketType.BINARY_EVENT):
        if not isinstance(data, (list, tuple)) or not data:
            raise InvalidPacket(f"invalid {name} payload {_short(data)}: expected a non-empty JSON array")
        if not isinstance(data[0], str):
            raise InvalidPacket(f"invalid {name} payload: the event name must be a string, not {_short(data[0])}")
    elif not isinstance(data, (list, tuple)):
        raise InvalidPacket(f"invalid {name} payload {_short(data)}: expected a JSON array")


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:40] + "..."


def _preview(text: str, limit: int = 40) -> str:
    if len(text) <= limit:
        return repr(text)
    return repr(text[:limit]) + f"... ({len(text):,} characters)"
