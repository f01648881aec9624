"""Engine.IO v4 and Socket.IO v5, sans-IO: the foundation of the coming Socket.IO support.

Nothing here is wired into :class:`~trio_ws.App` yet. The modules encode and
decode both protocols' packets and run an Engine.IO session's state machine
(handshake, heartbeat, upgrade, close) without sockets, so that transports
and the App can be built on tested parts.
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
    # Errors
    "InvalidPacket",
    "PayloadTooLarge",
    "SessionClosed",
    "SocketIOError",
]
