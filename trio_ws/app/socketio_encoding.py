"""How app events and answers are encoded for Socket.IO clients.

An app value maps to Socket.IO arguments (None to none, a tuple to its
items, anything else to one argument) and back; a packet becomes the
WebSocket messages that carry it (the Engine.IO message ``4<text>``, then
one binary message per attachment). An event sent to rooms is encoded once
per wire format (:class:`~trio_ws.hub.MessageVariants`): the envelope for
``trio_ws.js`` clients, unless its data holds bytes, and Socket.IO.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from ..hub import MessageVariants, StreamPosition
from ..socketio.packets import Packet, PacketType, has_binary
from ..socketio.packets import encode_packet as encode_sio
from ..socketio.server import RESERVED_EVENTS
from .envelope import DEFAULT_NAMESPACE, event_envelope

__all__ = [
    "SOCKETIO",
    "data_to_arguments",
    "arguments_to_data",
    "packet_frames",
    "socketio_event_frames",
    "event_variants",
    "positioned_variants",
    "socketio_only",
]

#: The hub wire format of Socket.IO members.
SOCKETIO = "socketio"


def data_to_arguments(data: Any) -> list[Any]:
    """The Socket.IO arguments of an app value: None none, a tuple its items, else one."""
    if data is None:
        return []
    if isinstance(data, tuple):
        return list(data)
    return [data]


def arguments_to_data(arguments: Sequence[Any]) -> Any:
    """The app value of Socket.IO arguments: none None, one itself, several a list."""
    if not arguments:
        return None
    if len(arguments) == 1:
        return arguments[0]
    return list(arguments)


def packet_frames(packet: Packet) -> list[str | bytes]:
    """The WebSocket messages of ``packet``: the Engine.IO message ``4<text>``, then its attachments."""
    text, *attachments = encode_sio(packet)
    return ["4" + str(text), *attachments]


def socketio_event_frames(
    event: str, data: Any, namespace: str = DEFAULT_NAMESPACE, call_id: int | None = None, *, offset: str | None = None
) -> list[str | bytes]:
    """The WebSocket messages that carry an app event to a Socket.IO client.

    With ``offset`` (connection-state recovery), it is the event's last argument.

    Raises:
        ValueError: ``event`` is a name the Socket.IO clients reserve
            (``"connect"``, ``"disconnect"``...), or data JSON cannot encode.
        TypeError: data JSON cannot encode (bytes aside).
    """
    if event in RESERVED_EVENTS:
        raise ValueError(f"{event!r} is reserved by Socket.IO clients and cannot be emitted")
    arguments = data_to_arguments(data)
    if offset is not None:
        arguments.append(offset)
    return packet_frames(Packet(PacketType.EVENT, namespace, [event, *arguments], call_id))


def event_variants(event: str, data: Any, namespace: str, offset: str | None = None) -> MessageVariants:
    """An app event encoded once per wire format: the envelope (unless ``data`` holds bytes) and Socket.IO.

    Raises:
        TypeError, ValueError: as :func:`socketio_event_frames`.
    """
    frames = socketio_event_frames(event, data, namespace, offset=offset)
    if has_binary(data):
        return MessageVariants({SOCKETIO: frames})
    return MessageVariants({None: event_envelope(event, data, namespace), SOCKETIO: frames})


def positioned_variants(
    message: MessageVariants, envelope: Callable[[StreamPosition | None], str]
) -> Callable[[StreamPosition | None], MessageVariants]:
    """A message builder for a room with history: the Socket.IO variant of ``message``, and the
    envelope built at the room's position (only when ``message`` has an envelope variant)."""
    socketio_frames = message.variant(SOCKETIO)
    has_envelope = message.variant(None) is not None

    def build(position: StreamPosition | None) -> MessageVariants:
        variants: dict[str | None, Any] = {SOCKETIO: socketio_frames}
        if has_envelope:
            variants[None] = envelope(position)
        return MessageVariants(variants)

    return build


def socketio_only(frames: list[str | bytes]) -> MessageVariants:
    """A message for Socket.IO members only (its frames as they are)."""
    return MessageVariants({SOCKETIO: frames})
