"""The events :class:`~trio_ws.protocol.ProtocolCore` reports for the bytes it is given.

The I/O layer (:mod:`trio_ws.reader`) acts on each: data goes to the
receive queue, a ping is answered, a close frame or a protocol failure
starts the closing handshake. They are re-exported by :mod:`trio_ws.protocol`.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["MessageChunk", "PingReceived", "PongReceived", "CloseReceived", "ProtocolFailure", "Event"]


@dataclass(slots=True)
class MessageChunk:
    """A piece of a data message (the whole message when ``final`` and first)."""

    data: bytes | str
    is_text: bool
    final: bool


@dataclass(slots=True)
class PingReceived:
    """The peer sent a ping; it must be answered with a pong of this payload."""

    payload: bytes


@dataclass(slots=True)
class PongReceived:
    """The peer sent a pong."""

    payload: bytes


@dataclass(slots=True)
class CloseReceived:
    """The peer sent a close frame with this code (1005 for none) and reason."""

    code: int
    reason: str


@dataclass(slots=True)
class ProtocolFailure:
    """The peer broke the protocol; fail the connection with this close code."""

    code: int
    reason: str


Event = MessageChunk | PingReceived | PongReceived | CloseReceived | ProtocolFailure
