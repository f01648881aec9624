"""Presence: who is in a room, and watching joins, leaves and backend events.

Part of :class:`~trio_ws.hub.Hub` (a mixin of it): the membership queries
(:meth:`~trio_ws.hub.Hub.rooms`, :meth:`~trio_ws.hub.Hub.members` and
friends) and the watchers of presence and backend events. A join or leave
is told to the room's local watchers at once and, with a backend, published
to the other processes (for at most a second).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Literal

import trio

from .backend import BackendEvent, HubBackend
from .member import Member, PresenceEvent
from .publisher import Publisher
from .watchers import Watchers

__all__ = ["Presence"]


class Presence:
    """The membership and presence half of :class:`~trio_ws.hub.Hub` (not used on its own)."""

    _backend: HubBackend | None
    _publisher: Publisher | None
    _members: dict[str, Member]
    _rooms: dict[str, dict[str, Member]]
    _watchers: dict[str, Watchers[PresenceEvent]]
    _event_watchers: Watchers[BackendEvent]

    def rooms(self, member_id: str) -> frozenset[str]:
        """The rooms of a local member (empty for an unknown id); internal rooms are not listed. Raises nothing."""
        member = self._members.get(member_id)
        return member.rooms if member is not None else frozenset()

    def local_room_members(self, room: str) -> frozenset[str]:
        """This process's members of ``room``."""
        return frozenset(self._rooms.get(room, ()))

    async def members(self, room: str) -> frozenset[str]:
        """Every member of ``room``: across processes with a backend, else local.

        When the backend cannot answer (it is down), the local members.
        Raises what the backend raises (the Redis backend: nothing);
        cancelling is safe (nothing changes); concurrent calls are allowed.
        """
        if self._backend is not None:
            found = await self._backend.room_members(room)
            if found is not None:
                return frozenset(found) | self.local_room_members(room)
        return self.local_room_members(room)

    async def member_count(self, room: str) -> int:
        """How many members ``room`` has (see :meth:`members`)."""
        return len(await self.members(room))

    @asynccontextmanager
    async def watch(self, room: str) -> AsyncIterator[trio.MemoryReceiveChannel[PresenceEvent]]:
        """Observe joins and leaves of ``room`` (local, and remote with a backend).

        Yields:
            a channel of :class:`PresenceEvent`. Events that find its buffer
            (256) full are dropped, so a slow watcher cannot hold up the hub.

        Raises nothing; several watchers of one room may be open at once,
        each seeing every event.
        """
        watchers = self._watchers.setdefault(room, Watchers())
        try:
            async with watchers.watch() as receive:
                yield receive
        finally:
            if not watchers and self._watchers.get(room) is watchers:
                del self._watchers[room]

    @asynccontextmanager
    async def backend_events(self) -> AsyncIterator[trio.MemoryReceiveChannel[BackendEvent]]:
        """Observe the backend's state changes (down, up, gap) to resync after an outage.

        Yields a channel of :class:`~trio_ws.hub.BackendEvent`, dropping
        events that find its buffer (256) full. Raises nothing; several
        watchers may be open at once, each seeing every event.
        """
        async with self._event_watchers.watch() as receive:
            yield receive

    async def _presence(self, kind: Literal["join", "leave"], room: str, member_id: str) -> None:
        count = len(self._rooms.get(room, ()))
        self._notify(PresenceEvent(kind, room, member_id, count))
        if self._publisher is not None:
            with trio.move_on_after(1):
                await self._publisher.presence(room, member_id, kind)

    def _notify(self, event: PresenceEvent) -> None:
        watchers = self._watchers.get(event.room)
        if watchers is not None:
            watchers.notify(event)
