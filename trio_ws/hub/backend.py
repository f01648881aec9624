"""The seam between a :class:`~trio_ws.hub.Hub` and other processes.

A hub on its own is in-memory: it knows only its process's members. A
*backend* connects hubs in several processes (for example through Redis
pub/sub, :mod:`trio_ws.hub.redis`). The hub calls the backend to publish
what other processes must see and to query the shared membership; the backend
calls the hub's :class:`BackendSink` methods with what arrives from others.

Envelopes are plain dicts of JSON values (binary payloads travel base64
encoded); nothing is ever pickled. Fields: ``kind`` (``"room"``, ``"all"``,
``"member"``, ``"disconnect"``, ``"close_room"``, ``"presence"``),
``origin`` (the publishing process id), and per kind ``room``, ``id``,
``exclude``, ``text`` / ``b64`` (the payload), ``code`` / ``reason``,
``event`` / ``count``. Delivery between processes is at most once: what is
published while the transport is down is lost, and the backend reports the
outage through :meth:`BackendSink.backend_event`.
"""

from __future__ import annotations

import base64
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import trio

from ..prepared import PreparedMessage

__all__ = ["HubBackend", "BackendSink", "BackendEvent", "Envelope", "encode_payload", "decode_payload"]

Envelope = dict[str, Any]


@dataclass(frozen=True)
class BackendEvent:
    """A change of the backend's state, reported to the application.

    ``kind`` is ``"down"`` (the transport to other processes is lost; local
    delivery goes on), ``"up"`` (connected again and re-subscribed; anything
    published in between was lost), or ``"gap"`` (a room's sequence numbers
    jumped: messages from ``origin`` to ``room`` were lost).
    """

    kind: Literal["down", "up", "gap"]
    detail: str = ""
    room: str | None = None
    origin: str | None = None
    missed: int = 0


class BackendSink(Protocol):
    """What a backend calls on its hub."""

    def deliver_remote(self, envelope: Envelope) -> None:
        """Handle an envelope published by another process (never our own)."""

    def backend_event(self, event: BackendEvent) -> None:
        """Report a state change of the backend (down, up, gap)."""

    def subscribed_rooms(self) -> set[str]:
        """The rooms that have local members (re-subscribed after a reconnect)."""

    def local_member_ids(self) -> set[str]:
        """The ids of this process's members (re-registered after a reconnect)."""


class HubBackend(Protocol):
    """What a hub needs from a cross-process backend."""

    process_id: str

    async def run(self, sink: BackendSink, *, task_status: trio.TaskStatus[None] = ...) -> None:
        """Connect, then relay messages and keep membership alive until cancelled.

        Reports readiness with ``task_status.started()``; never raises for a
        transport failure (it reports ``down``/``up`` events and retries).
        """

    def subscribe(self, room: str) -> Awaitable[None]:
        """Start receiving ``room``'s envelopes (the first local member joined)."""

    def unsubscribe(self, room: str) -> Awaitable[None]:
        """Stop receiving ``room``'s envelopes (the last local member left)."""

    def publish_room(self, room: str, envelope: Envelope) -> Awaitable[bool]:
        """Publish to the processes subscribed to ``room``; False if not sent."""

    def publish_all(self, envelope: Envelope) -> Awaitable[bool]:
        """Publish to every process; False if not sent."""

    def publish_to_member(self, member_id: str, envelope: Envelope) -> Awaitable[bool]:
        """Publish to the process that holds ``member_id``; False if unknown or not sent."""

    def add_member(self, member_id: str, room: str | None) -> Awaitable[None]:
        """Record that a local member exists (``room`` None) or joined ``room``."""

    def remove_member(self, member_id: str, room: str | None) -> Awaitable[None]:
        """Record that a local member left ``room``, or is gone (``room`` None)."""

    def room_members(self, room: str) -> Awaitable[set[str] | None]:
        """Every process's members of ``room``, or None when unknown (backend down)."""


def encode_payload(message: PreparedMessage) -> dict[str, str]:
    """The payload fields of an envelope: ``text`` or base64 ``b64``."""
    if message.is_text:
        assert isinstance(message.data, str)
        return {"text": message.data}
    return {"b64": base64.b64encode(message.payload).decode("ascii")}


def decode_payload(envelope: Envelope) -> PreparedMessage:
    """Rebuild the message of an envelope.

    Raises:
        ValueError: when the envelope has no valid payload.
    """
    if isinstance(envelope.get("text"), str):
        return PreparedMessage(envelope["text"])
    if isinstance(envelope.get("b64"), str):
        return PreparedMessage(base64.b64decode(envelope["b64"], validate=True))
    raise ValueError("envelope has no text or b64 payload")
