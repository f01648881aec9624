"""Engine.IO v4 and Socket.IO v5: the foundation of the Socket.IO support.

The sans-IO modules encode and decode both protocols' packets, run an
Engine.IO session's state machine (handshake, heartbeat, upgrade, close)
and hold the rules for its HTTP requests, without sockets;
:mod:`~trio_ws.socketio.transport` runs a session over WebSocket and HTTP
long-polling in Trio; :class:`SocketIOServer` serves Socket.IO clients with
their default transports as a standalone :func:`~trio_ws.serve_websocket`
handler and ``process_request`` hook.
"""

from __future__ import annotations

from .engineio import (
    RECORD_SEPARATOR,
    EnginePacket,
    EngineType,
    Handshake,
    decode_packet,
    decode_payload,
    encode_packet,
    encode_payload,
)
from .errors import InvalidPacket, PayloadTooLarge, SessionClosed, SocketIOError
from .packets import (
    MAX_ACK_ID,
    MAX_ATTACHMENTS,
    Packet,
    PacketDecoder,
    PacketType,
    deconstruct,
    has_binary,
    reconstruct,
)
from .packets import encode_packet as encode_socketio_packet
from .requests import EngineRequestError, check_request
from .server import RESERVED_EVENTS, ConnectRefused, Socket, SocketIOServer
from .session import (
    EngineConfig,
    EngineEvent,
    EngineSession,
    MessageReceived,
    ProbeAnswer,
    SessionEnded,
    SessionState,
    Transport,
    UpgradeAborted,
    UpgradeCompleted,
    new_sid,
)

__all__ = [
    # Engine.IO packets
    "RECORD_SEPARATOR",
    "EnginePacket",
    "EngineType",
    "Handshake",
    "decode_packet",
    "decode_payload",
    "encode_packet",
    "encode_payload",
    # Socket.IO packets
    "MAX_ACK_ID",
    "MAX_ATTACHMENTS",
    "Packet",
    "PacketDecoder",
    "PacketType",
    "deconstruct",
    "encode_socketio_packet",
    "has_binary",
    "reconstruct",
    # Engine.IO session
    "EngineConfig",
    "EngineEvent",
    "EngineSession",
    "MessageReceived",
    "ProbeAnswer",
    "SessionEnded",
    "SessionState",
    "Transport",
    "UpgradeAborted",
    "UpgradeCompleted",
    "new_sid",
    # Server
    "SocketIOServer",
    "Socket",
    "ConnectRefused",
    "EngineRequestError",
    "check_request",
    "RESERVED_EVENTS",
    # Errors
    "InvalidPacket",
    "PayloadTooLarge",
    "SessionClosed",
    "SocketIOError",
]
