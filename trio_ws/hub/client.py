"""Publish into a hub's rooms from a process that serves no connections.

A worker (a job queue consumer, a cron task, a web view in another framework)
that wants to tell WebSocket clients something uses a :class:`HubClient` over
the same backend as the servers: Flask-SocketIO calls this its write-only
mode. It has no members of its own, so it delivers nothing locally and
subscribes to no room.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from typing import Any

import trio

from ..close import NORMAL_CLOSURE
from ..prepared import PreparedMessage
from ..scopes import background_tasks
from .backend import BackendEvent, Envelope, HubBackend, encode_payload
from .watchers import Watchers

__all__ = ["HubClient"]


class HubClient:
    """A publish-only member of a hub's bus.

    Use it as ``async with HubClient(RedisBackend(...)) as client:``; the
    block runs the backend's connection (with its reconnections and events).
    Every method returns at once when the backend is down (delivery between
    processes is at most once) and none raises for a transport failure.

    Args:
        backend: the backend the servers' hubs use (same prefix).
    """

    def __init__(self, backend: HubBackend) -> None:
        self._backend = backend
        self._event_watchers: Watchers[BackendEvent] = Watchers()

    @asynccontextmanager
    async def _run(self) -> AsyncIterator[HubClient]:
        async with background_tasks() as nursery:
            await nursery.start(self._backend.run, self)
            yield self

    async def __aenter__(self) -> HubClient:
        self._context = self._run()
        return await self._context.__aenter__()

    async def __aexit__(self, *exc_info: Any) -> bool | None:
        return await self._context.__aexit__(*exc_info)

    @property
    def process_id(self) -> str:
        """This client's id on the bus (the ``origin`` of what it publishes)."""
        return self._backend.process_id

    def _envelope(self, kind: str, **fields: Any) -> Envelope:
        return {"kind": kind, "origin": self._backend.process_id, **fields}

    async def broadcast(
        self, room: str, message: str | bytes | PreparedMessage, *, exclude: str | Iterable[str] | None = None
    ) -> bool:
        """Send a message to every member of ``room``, in every process.

        Args:
            room: the room.
            message: ``str`` (text), ``bytes`` (binary) or a PreparedMessage.
            exclude: a member id, or several, to skip.

        Returns:
            True when the backend took it (the Redis backend queues it while
            its link is up and sends it at the latest when the block ends);
            False when the backend is down or could not take it (then it is
            lost). Cancelling is safe (it may or may not have been
            published); concurrent calls are allowed.
        """
        envelope = self._envelope("room", room=room, exclude=_sorted(exclude), **encode_payload(_prepare(message)))
        return await self._backend.publish_room(room, envelope)

    async def broadcast_json(self, room: str, value: Any, *, exclude: str | Iterable[str] | None = None) -> bool:
        """Encode ``value`` as JSON and broadcast it as a text message (see :meth:`broadcast`)."""
        text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
        return await self.broadcast(room, text, exclude=exclude)

    async def send_all(
        self, message: str | bytes | PreparedMessage, *, exclude: str | Iterable[str] | None = None
    ) -> bool:
        """Send a message to every member of every process; False if not published."""
        envelope = self._envelope("all", exclude=_sorted(exclude), **encode_payload(_prepare(message)))
        return await self._backend.publish_all(envelope)

    async def unicast(self, member_id: str, message: str | bytes | PreparedMessage) -> bool:
        """Send a message to one member, wherever it is.

        Returns:
            True when the member's process received it; False when the id is
            unknown or gone, or the backend is down.
        """
        envelope = self._envelope("member", id=member_id, **encode_payload(_prepare(message)))
        return await self._backend.publish_to_member(member_id, envelope)

    async def disconnect(self, member_id: str, code: int = NORMAL_CLOSURE, reason: str = "") -> bool:
        """Close a member's connection, wherever it is; False when it could not be asked."""
        envelope = self._envelope("disconnect", id=member_id, code=code, reason=reason)
        return await self._backend.publish_to_member(member_id, envelope)

    async def close_room(self, room: str) -> bool:
        """Remove every member from ``room`` in every process; False if not published."""
        return await self._backend.publish_room(room, self._envelope("close_room", room=room))

    async def members(self, room: str) -> frozenset[str] | None:
        """Every member of ``room`` across processes, or None while the backend is down."""
        found = await self._backend.room_members(room)
        return None if found is None else frozenset(found)

    async def member_count(self, room: str) -> int | None:
        """How many members ``room`` has, or None while the backend is down."""
        found = await self.members(room)
        return None if found is None else len(found)

    @asynccontextmanager
    async def backend_events(self) -> AsyncIterator[trio.MemoryReceiveChannel[BackendEvent]]:
        """Observe the backend's state changes (down, up); events that find the buffer full are dropped."""
        async with self._event_watchers.watch() as receive:
            yield receive

    # -- BackendSink: nothing arrives for a client without members --------------
    def deliver_remote(self, envelope: Envelope) -> None:
        """Ignore an envelope (a client has no members to deliver to)."""

    def backend_event(self, event: BackendEvent) -> None:
        """Forward a backend state change to :meth:`backend_events` watchers."""
        self._event_watchers.notify(event)

    def subscribed_rooms(self) -> set[str]:
        """No rooms: a client subscribes to none."""
        return set()

    def local_member_ids(self) -> set[str]:
        """No members."""
        return set()


def _prepare(message: str | bytes | PreparedMessage) -> PreparedMessage:
    return message if isinstance(message, PreparedMessage) else PreparedMessage(message)


def _sorted(value: str | Iterable[str] | None) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    return sorted(set(value))
