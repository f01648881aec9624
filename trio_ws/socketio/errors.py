"""The exceptions of the Socket.IO protocol layer.

Every decoder in :mod:`trio_ws.socketio` raises :class:`InvalidPacket` (or its
subclass :class:`PayloadTooLarge`) for input it cannot accept, with a message
that names the field and the value at fault.
"""

from __future__ import annotations

from ..errors import WebSocketError

__all__ = ["SocketIOError", "InvalidPacket", "PayloadTooLarge", "SessionClosed"]


class SocketIOError(WebSocketError):
    """Base class of the Engine.IO and Socket.IO protocol errors."""


class InvalidPacket(SocketIOError, ValueError):
    """Input that is not a valid Engine.IO or Socket.IO packet.

    The message says what is wrong (unknown packet type, invalid ack id, bad
    namespace, bad JSON, ...). A server that receives one closes the session:
    both protocols treat a malformed packet as fatal.
    """


class PayloadTooLarge(InvalidPacket):
    """A packet or payload is larger than the negotiated ``maxPayload``.

    Attributes:
        size: the size in bytes of what was received.
        limit: the limit it exceeds.
    """

    def __init__(self, what: str, size: int, limit: int) -> None:
        super().__init__(f"{what} of {size:,} bytes exceeds max_payload={limit:,}")
        self.size = size
        self.limit = limit


class SessionClosed(SocketIOError):
    """The Engine.IO session is closed, so nothing more can be sent on it."""
