"""The hub: rooms, unicast and frame-once fan-out over trio_ws connections."""

from __future__ import annotations

from .backend import BackendEvent, BackendSink, Envelope, HubBackend
from .client import HubClient
from .hub import INTERNAL_ROOM_PREFIX, DeliveryReport, Hub, HubStats, Member, MessageLike, PresenceEvent
from .outbox import OutboxStats, Outcome, OverflowPolicy

__all__ = [
    "INTERNAL_ROOM_PREFIX",
    "BackendEvent",
    "BackendSink",
    "DeliveryReport",
    "Envelope",
    "Hub",
    "HubBackend",
    "HubClient",
    "HubStats",
    "Member",
    "MessageLike",
    "Outcome",
    "OutboxStats",
    "OverflowPolicy",
    "PresenceEvent",
]
