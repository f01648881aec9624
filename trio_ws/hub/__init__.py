"""The hub: rooms, unicast and frame-once fan-out over trio_ws connections."""

from __future__ import annotations

from .backend import BackendEvent, BackendSink, Envelope, HubBackend
from .hub import DeliveryReport, Hub, HubStats, Member, MessageLike, PresenceEvent
from .outbox import OutboxStats, Outcome, OverflowPolicy

__all__ = [
    "BackendEvent",
    "BackendSink",
    "DeliveryReport",
    "Envelope",
    "Hub",
    "HubBackend",
    "HubStats",
    "Member",
    "MessageLike",
    "Outcome",
    "OutboxStats",
    "OverflowPolicy",
    "PresenceEvent",
]
