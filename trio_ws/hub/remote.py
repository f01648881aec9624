"""The hub's side of its backend: what other processes publish, applied to this process's members.

Part of :class:`~trio_ws.hub.Hub` (a mixin of it): the
:class:`~trio_ws.hub.backend.BackendSink` methods a backend calls. An
envelope is read with :func:`~trio_ws.hub.envelopes.parse_envelope` and
applied to the local members; the backend never learns what it meant. A
``close_room`` from another process takes the local members out of the room
at once (nothing more reaches them), then tells the backend from a task, as
:meth:`~trio_ws.hub.Hub.leave` would.
"""

from __future__ import annotations

import logging
from abc import abstractmethod

import trio

from .backend import BackendEvent, HubBackend
from .delivery import addressed, fan_out, offer_message, request_close
from .envelopes import (
    AllMessage,
    CloseRoom,
    Disconnect,
    HubEnvelope,
    MemberMessage,
    ParsedEnvelope,
    RoomMessage,
    parse_envelope,
)
from .member import HubStats, Member, PresenceEvent
from .stream_rooms import StreamingBackend
from .watchers import Watchers

__all__ = ["RemoteSide"]

logger = logging.getLogger("trio_ws.hub")


class RemoteSide:
    """The backend-facing half of :class:`~trio_ws.hub.Hub` (not used on its own)."""

    stats: HubStats
    _backend: HubBackend | None
    _nursery: trio.Nursery | None
    _members: dict[str, Member]
    _rooms: dict[str, dict[str, Member]]
    _event_watchers: Watchers[BackendEvent]

    @property
    @abstractmethod
    def _streams(self) -> StreamingBackend | None:
        """The backend when it keeps the streams of rooms with history."""

    @abstractmethod
    def _notify(self, event: PresenceEvent) -> None:
        """Hand a presence event to the room's watchers."""

    def deliver_remote(self, envelope: HubEnvelope) -> None:
        """Deliver an envelope another process published (called by the backend).

        A malformed envelope is counted (``stats.remote_malformed``), logged
        and ignored; nothing is raised.
        """
        self.stats.remote_received += 1
        try:
            parsed = parse_envelope(envelope)
        except ValueError as err:
            self.stats.remote_malformed += 1
            logger.warning("ignored a malformed hub envelope: %s", err)
            return
        self._apply_remote(parsed)

    def _apply_remote(self, envelope: ParsedEnvelope) -> None:
        if isinstance(envelope, RoomMessage):
            members = addressed(self._rooms.get(envelope.room, {}).values(), envelope.within)
            fan_out(members, envelope.message, envelope.exclude, self.stats)
        elif isinstance(envelope, AllMessage):
            fan_out(self._members.values(), envelope.message, envelope.exclude, self.stats)
        elif isinstance(envelope, MemberMessage):
            member = self._members.get(envelope.member_id)
            if member is not None:
                offer_message(member, envelope.message, self.stats)
        elif isinstance(envelope, Disconnect):
            member = self._members.get(envelope.member_id)
            if member is not None:
                request_close(member, envelope.code, envelope.reason)
        elif isinstance(envelope, CloseRoom):
            self._closed_remotely(envelope.room)
        else:
            count = len(self._rooms.get(envelope.room, ()))
            self._notify(PresenceEvent(envelope.event, envelope.room, envelope.member_id, count, remote=True))

    def _closed_remotely(self, room: str) -> None:
        # Another process closed the room: our members leave it now (in
        # memory, so that nothing more is delivered to them), and the backend
        # learns it from a task, as it would from leave().
        members = list(self._rooms.pop(room, {}).values())
        if self._streams is not None:
            self._streams.close_stream(room)
        for member in members:
            member._rooms.discard(room)
            self._notify(PresenceEvent("leave", room, member.id, 0, remote=True))
        if members and self._nursery is not None:
            self._nursery.start_soon(self._forget_remotely_closed, room, [member.id for member in members])

    async def _forget_remotely_closed(self, room: str, member_ids: list[str]) -> None:
        # Each backend call is bounded by the backend; the hub's nursery ends the task when the hub stops.
        assert self._backend is not None
        for member_id in member_ids:
            if member_id not in self._rooms.get(room, {}):  # unless it joined again meanwhile
                await self._backend.remove_member(member_id, room)
        if room not in self._rooms:
            await self._backend.unsubscribe(room)

    def backend_event(self, event: BackendEvent) -> None:
        """Record and forward a backend state change (called by the backend)."""
        if event.kind == "down":
            self.stats.backend_down += 1
            logger.warning("hub backend down: %s", event.detail)
        elif event.kind == "up":
            self.stats.backend_up += 1
            logger.info("hub backend up: %s", event.detail)
        else:
            self.stats.gaps += 1
            logger.warning("hub gap in room %s from %s: %d missed", event.room, event.origin, event.missed)
        self._event_watchers.notify(event)

    def subscribed_rooms(self) -> set[str]:
        """Rooms with local members (the backend re-subscribes them after a reconnect)."""
        return set(self._rooms)

    def local_member_ids(self) -> set[str]:
        """This process's member ids (the backend re-registers them after a reconnect)."""
        return set(self._members)
