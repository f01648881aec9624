"""The hub: rooms, unicast and frame-once fan-out over trio_ws connections."""

from __future__ import annotations

from .._deprecated import alias_getattr
from .backend import BackendEvent, BackendSink, HubBackend
from .client import HubClient
from .envelopes import HubEnvelope
from .history import HistoryLost, HistoryPolicy, JoinResult, StreamPosition
from .hub import Hub
from .member import (
    INTERNAL_ROOM_PREFIX,
    DeliveryReport,
    HubStats,
    Member,
    MemberConnection,
    MessageLike,
    MessageSource,
    PresenceEvent,
)
from .outbox import OutboxStats, Outcome, OverflowPolicy
from .positioned import PositionedJSON, PositionedVariants
from .stream_rooms import StreamingBackend
from .variants import MessageVariants

__all__ = [
    "INTERNAL_ROOM_PREFIX",
    "BackendEvent",
    "BackendSink",
    "DeliveryReport",
    "HistoryLost",
    "HistoryPolicy",
    "Hub",
    "HubBackend",
    "HubClient",
    "HubEnvelope",
    "HubStats",
    "JoinResult",
    "Member",
    "MemberConnection",
    "MessageLike",
    "MessageSource",
    "MessageVariants",
    "Outcome",
    "OutboxStats",
    "OverflowPolicy",
    "PositionedJSON",
    "PositionedVariants",
    "PresenceEvent",
    "StreamPosition",
    "StreamingBackend",
]

__getattr__ = alias_getattr(__name__, {"Envelope": ("trio_ws.hub.HubEnvelope", HubEnvelope)})
