"""The hub: rooms, unicast and frame-once fan-out over trio_ws connections."""

from __future__ import annotations

from .backend import BackendEvent, BackendSink, Envelope, HubBackend
from .client import HubClient
from .history import HistoryLost, HistoryPolicy, JoinResult, StreamPosition
from .hub import Hub
from .member import INTERNAL_ROOM_PREFIX, DeliveryReport, HubStats, Member, MessageLike, MessageSource, PresenceEvent
from .outbox import OutboxStats, Outcome, OverflowPolicy

__all__ = [
    "INTERNAL_ROOM_PREFIX",
    "BackendEvent",
    "BackendSink",
    "DeliveryReport",
    "Envelope",
    "HistoryLost",
    "HistoryPolicy",
    "Hub",
    "HubBackend",
    "HubClient",
    "HubStats",
    "JoinResult",
    "Member",
    "MessageLike",
    "MessageSource",
    "Outcome",
    "OutboxStats",
    "OverflowPolicy",
    "PresenceEvent",
    "StreamPosition",
]
