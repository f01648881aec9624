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
from ..scopes import background_tasks
from .backend import BackendEvent, HubBackend
from .envelopes import HubEnvelope
from .history import Histories, HistoryPolicy, StreamPosition
from .member import INTERNAL_ROOM_PREFIX, MessageLike, _prepare
from .positioned import PositionedJSON, PositionedVariants
from .publisher import Publisher
from .stream_rooms import StreamingBackend
from .variants import MessageVariants
from .watchers import Watchers

__all__ = ["HubClient"]


class HubClient:
    """A publish-only member of a hub's bus.

    Use it as ``async with HubClient(RedisBackend(...)) as client:``; the
    block runs the backend's connection (with its reconnections and events).
    Every method returns at once when the backend is down (delivery between
    processes is at most once) and none raises for a transport failure.

    Unless a method says otherwise: cancelling it is safe (what it publishes
    may or may not have been handed to the backend, never half of it), and
    concurrent calls are allowed (one task's envelopes keep their order).

    Args:
        backend: the backend the servers' hubs use (same prefix).
        history: the :class:`~trio_ws.hub.history.HistoryPolicy` the
            servers give every room, if any (see also :meth:`enable_history`):
            a broadcast to a room with history is appended to the room's
            stream, as the servers' own broadcasts are, so it keeps the
            room's order and can be replayed. Give the client the servers'
            policies.

    Raises:
        ValueError: for history with a backend that keeps no streams.
    """

    def __init__(self, backend: HubBackend, *, history: HistoryPolicy | None = None) -> None:
        if history is not None and not isinstance(backend, StreamingBackend):
            raise ValueError(f"room history needs a backend that keeps streams, not {backend!r}")
        self._backend = backend
        self._publisher = Publisher(backend)
        self._histories = Histories(history, exempt=INTERNAL_ROOM_PREFIX)
        self._event_watchers: Watchers[BackendEvent] = Watchers()
        self._running = False

    def enable_history(self, room: str, policy: HistoryPolicy | None = None) -> None:
        """Treat ``room`` as a room with history (``policy``, default ``HistoryPolicy()``), as the servers do.

        Raises:
            ValueError: when the backend keeps no streams.
        """
        if not isinstance(self._backend, StreamingBackend):
            raise ValueError(f"room history needs a backend that keeps streams, not {self._backend!r}")
        self._histories.enable(room, policy if policy is not None else HistoryPolicy())

    def disable_history(self, room: str) -> None:
        """Treat ``room`` as a room without history (whatever the client's policy)."""
        self._histories.enable(room, None)

    @asynccontextmanager
    async def _run(self) -> AsyncIterator[HubClient]:
        async with background_tasks() as nursery:
            await nursery.start(self._backend.run, self)
            self._running = True
            try:
                yield self
            finally:
                self._running = False

    async def __aenter__(self) -> HubClient:
        """Start the backend; it is ready, or has reported ``down``, when this returns.

        The Redis backend raises nothing here (it reports ``down`` and retries).
        """
        self._context = self._run()
        return await self._context.__aenter__()

    async def __aexit__(self, *exc_info: Any) -> bool | None:
        """Stop the backend (the Redis backend first sends what is queued, within its command timeout)."""
        return await self._context.__aexit__(*exc_info)

    @property
    def running(self) -> bool:
        """Whether the client's ``async with`` block runs its backend (it publishes only then)."""
        return self._running

    @property
    def process_id(self) -> str:
        """This client's id on the bus (the ``origin`` of what it publishes)."""
        return self._backend.process_id

    async def broadcast(
        self,
        room: str,
        message: MessageLike | PositionedJSON | PositionedVariants,
        *,
        exclude: str | Iterable[str] | None = None,
        within: str | None = None,
    ) -> bool:
        """Send a message to every member of ``room``, in every process.

        Args:
            room: the room.
            message: ``str`` (text), ``bytes`` (binary), a PreparedMessage, or
                a :class:`~trio_ws.hub.MessageVariants` (each member gets the
                variant of its wire format); or a
                :class:`~trio_ws.hub.positioned.PositionedJSON` or
                :class:`~trio_ws.hub.positioned.PositionedVariants`, which in a
                room with history (see ``history``) carries its position
                (each process adds it) and elsewhere goes without.
            exclude: a member id, or several, to skip.
            within: only the members of ``room`` that are also in the room
                ``within``, or the member whose id it is (as
                :meth:`Hub.broadcast <trio_ws.hub.Hub.broadcast>`).

        Returns:
            True when the backend took it (the Redis backend queues it while
            its link is up and sends it at the latest when the block ends);
            False when the backend is down or could not take it (then it is
            lost).

        Raises:
            TypeError: when the message is not str, bytes, a PreparedMessage or a MessageVariants
                (nothing is published).

        Cancelling is safe (it may or may not have been published);
        concurrent calls are allowed.
        """
        backend = self._backend
        policy = self._histories.policy(room) if isinstance(backend, StreamingBackend) else None
        if policy is not None and isinstance(backend, StreamingBackend):
            positioned = (PositionedJSON, PositionedVariants, MessageVariants)
            prepared = message if isinstance(message, positioned) else _prepare(message)
            return await self._publisher.stream(backend, room, prepared, exclude, policy, within)
        if isinstance(message, (PositionedJSON, PositionedVariants)):
            message = message(None)
        return await self._publisher.room(room, _prepare(message), exclude, within)

    async def broadcast_json(self, room: str, value: Any, *, exclude: str | Iterable[str] | None = None) -> bool:
        """Encode ``value`` as JSON and broadcast it as a text message (see :meth:`broadcast`).

        Raises:
            TypeError: when ``value`` is not JSON serializable (nothing is published).
        """
        text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
        return await self.broadcast(room, text, exclude=exclude)

    async def send_all(self, message: MessageLike, *, exclude: str | Iterable[str] | None = None) -> bool:
        """Send a message to every member of every process; False if not published.

        Raises:
            TypeError: when the message is not str, bytes, a PreparedMessage or a MessageVariants.
        """
        return await self._publisher.all(_prepare(message), exclude)

    async def unicast(self, member_id: str, message: MessageLike) -> bool:
        """Send a message to one member, wherever it is.

        With the Redis backend this waits for one lookup of the member's
        process (at most its ``command_timeout``).

        Returns:
            True when it was published to the member's process; False when
            the id is unknown or gone, or the backend is down.

        Raises:
            TypeError: when the message is not str, bytes, a PreparedMessage or a MessageVariants.
        """
        return await self._publisher.member(member_id, _prepare(message))

    async def disconnect(self, member_id: str, code: int = NORMAL_CLOSURE, reason: str = "") -> bool:
        """Close a member's connection, wherever it is; False when it could not be asked.

        Waits like :meth:`unicast`; raises nothing.
        """
        return await self._publisher.disconnect(member_id, code, reason)

    async def close_room(self, room: str) -> bool:
        """Remove every member from ``room`` in every process; False if not published.

        The members stay connected. Raises nothing.
        """
        return await self._publisher.close_room(room)

    async def members(self, room: str) -> frozenset[str] | None:
        """Every member of ``room`` across processes, or None while the backend is down.

        Raises nothing; cancelling is safe (nothing changes); concurrent calls are allowed.
        """
        found = await self._backend.room_members(room)
        return None if found is None else frozenset(found)

    async def member_count(self, room: str) -> int | None:
        """How many members ``room`` has, or None while the backend is down (see :meth:`members`)."""
        found = await self.members(room)
        return None if found is None else len(found)

    @asynccontextmanager
    async def backend_events(self) -> AsyncIterator[trio.MemoryReceiveChannel[BackendEvent]]:
        """Observe the backend's state changes (down, up); events that find the buffer full are dropped.

        Several watchers may be open at once; each sees every event.
        """
        async with self._event_watchers.watch() as receive:
            yield receive

    # -- BackendSink: nothing arrives for a client without members --------------
    def deliver_remote(self, envelope: HubEnvelope) -> None:
        """Ignore an envelope (a client has no members to deliver to)."""

    def deliver_stream(self, room: str, position: StreamPosition, envelope: HubEnvelope) -> None:
        """Ignore a stream entry (a client reads no stream)."""

    def backend_event(self, event: BackendEvent) -> None:
        """Forward a backend state change to :meth:`backend_events` watchers."""
        self._event_watchers.notify(event)

    def subscribed_rooms(self) -> set[str]:
        """No rooms: a client subscribes to none."""
        return set()

    def local_member_ids(self) -> set[str]:
        """No members."""
        return set()
