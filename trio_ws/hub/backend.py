"""The seam between a :class:`~trio_ws.hub.Hub` and other processes.

A hub on its own is in-memory: it knows only its process's members. A
*backend* connects hubs in several processes (for example through Redis
pub/sub, :mod:`trio_ws.hub.redis`). The hub calls the backend to publish
what other processes must see and to query the shared membership; the backend
calls the hub's :class:`BackendSink` methods with what arrives from others.

A backend carries *envelopes* (JSON objects, :data:`~trio_ws.hub.envelopes.HubEnvelope`)
without knowing what they mean: their format and meaning belong to
:mod:`trio_ws.hub.envelopes` and to the hub that receives them. A backend
may add fields of its own (names the envelope format does not use) and reads
``origin`` to skip its own process's envelopes. Delivery between processes is
at most once: what is published while the transport is down is lost, and the
backend reports the outage through :meth:`BackendSink.backend_event`.
"""

from __future__ import annotations

from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Literal, Protocol

import trio

from .._deprecated import alias_getattr
from . import envelopes
from .envelopes import HubEnvelope
from .history import StreamPosition

__all__ = ["HubBackend", "BackendSink", "BackendEvent"]


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

    def deliver_remote(self, envelope: HubEnvelope) -> None:
        """Handle an envelope published by another process (never our own)."""

    def deliver_stream(self, room: str, position: StreamPosition, envelope: HubEnvelope) -> None:
        """Handle an entry of ``room``'s stream at ``position`` (every process's, ours included)."""

    def backend_event(self, event: BackendEvent) -> None:
        """Report a state change of the backend (down, up, gap)."""

    def subscribed_rooms(self) -> set[str]:
        """The rooms that have local members (re-subscribed after a reconnect)."""

    def local_member_ids(self) -> set[str]:
        """The ids of this process's members (re-registered after a reconnect)."""


class HubBackend(Protocol):
    """What a hub needs from a cross-process backend.

    What an implementation must guarantee: no method raises for a transport
    failure (report it through :meth:`BackendSink.backend_event` and return
    False, None or nothing); every method allows concurrent calls (the hub
    calls them from many tasks at once); and :meth:`subscribe`,
    :meth:`unsubscribe`, :meth:`add_member` and :meth:`remove_member`
    return within a bounded time, because the hub calls them shielded from
    cancellation so that a cancelled join or leave leaves no half state.
    """

    process_id: str

    async def run(self, sink: BackendSink, *, task_status: trio.TaskStatus[None] = ...) -> None:
        """Connect, then relay messages and keep membership alive until cancelled.

        Reports readiness with ``task_status.started()``; never raises for a
        transport failure (it reports ``down``/``up`` events and retries).
        The hub runs it once, and cancels it to stop it.
        """

    def subscribe(self, room: str) -> Awaitable[None]:
        """Start receiving ``room``'s envelopes (the first local member joined); bounded in time."""

    def unsubscribe(self, room: str) -> Awaitable[None]:
        """Stop receiving ``room``'s envelopes (the last local member left); bounded in time."""

    def publish_room(self, room: str, envelope: HubEnvelope) -> Awaitable[bool]:
        """Publish to the processes subscribed to ``room``; False if not sent.

        The hub awaits it inside ``broadcast``: it should not wait for the transport.
        """

    def publish_all(self, envelope: HubEnvelope) -> Awaitable[bool]:
        """Publish to every process; False if not sent."""

    def publish_to_member(self, member_id: str, envelope: HubEnvelope) -> Awaitable[bool]:
        """Publish to the process that holds ``member_id``; False if unknown or not sent."""

    def add_member(self, member_id: str, room: str | None) -> Awaitable[None]:
        """Record that a local member exists (``room`` None) or joined ``room``; bounded in time."""

    def remove_member(self, member_id: str, room: str | None) -> Awaitable[None]:
        """Record that a local member left ``room``, or is gone (``room`` None); bounded in time."""

    def room_members(self, room: str) -> Awaitable[set[str] | None]:
        """Every process's members of ``room``, or None when unknown (backend down)."""


__getattr__ = alias_getattr(
    __name__,
    {
        "Envelope": ("trio_ws.hub.HubEnvelope", HubEnvelope),
        "encode_payload": ("trio_ws.hub.envelopes.encode_payload", envelopes.encode_payload),
        "decode_payload": ("trio_ws.hub.envelopes.decode_payload", envelopes.decode_payload),
    },
)
