"""Engine.IO v4 and Socket.IO v5: the foundation of the coming Socket.IO support.

Nothing here is wired into :class:`~trio_ws.App` yet. The sans-IO modules
encode and decode both protocols' packets and run an Engine.IO session's
state machine (handshake, heartbeat, upgrade, close) without sockets;
:class:`SocketIOServer` serves Socket.IO clients over the WebSocket transport
as a standalone :func:`~trio_ws.serve_websocket` handler.
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
from .server import RESERVED_EVENTS, ConnectRefused, EngineRequestError, Socket, SocketIOServer, check_request
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
    # WebSocket transport server
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
