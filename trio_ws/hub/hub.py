"""The hub: members, rooms, fan-out (presence queries and watchers: :mod:`trio_ws.hub.presence`).

Theory of operation. A server handler registers its connection with
``async with hub.connect(ws) as member:``. That starts two tasks for the member
in a nursery that lives exactly as long as the block: a *sender* that drains
the member's bounded :class:`~trio_ws.hub.outbox.Outbox` into the connection,
and a *watcher* that removes the member from every room the moment its
connection closes, however it closes. Fan-out (:meth:`Hub.broadcast` and
friends) never awaits a peer: it builds one
:class:`~trio_ws.PreparedMessage` (framed once for every connection whose
framing allows it) and puts it in each member's outbox, so a slow or dead
client only ever fills its own queue, and the overflow policy deals with it.

With a backend (Redis, for several processes) the hub also publishes what
other processes must deliver and subscribes to a room's channel while it has
local members there. Without one everything is in memory.

A room may keep a bounded history (:mod:`trio_ws.hub.history`): each message
broadcast to it gets an offset, and :meth:`Hub.join` with ``since=`` queues
the missed messages and adds the member to the room with no checkpoint in
between, so no broadcast can fall into the seam (fan-out is synchronous).
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import AsyncIterator, Callable, Collection, Iterable
from contextlib import asynccontextmanager
from typing import Any

import trio

from ..close import NORMAL_CLOSURE
from ..scopes import background_tasks
from .backend import BackendEvent, HubBackend
from .delivery import addressed, fan_out, offer, offer_message, request_close, run_sender
from .history import Histories, HistoryPolicy, JoinResult, StreamPosition
from .member import (
    INTERNAL_ROOM_PREFIX,
    DeliveryReport,
    HubStats,
    Member,
    MemberConnection,
    MessageLike,
    MessageSource,
    PresenceEvent,
    _prepare,
)
from .outbox import Outbox, Outcome, OverflowPolicy
from .positioned import PositionedVariants
from .presence import Presence
from .publisher import Publisher
from .remote import RemoteSide
from .room_history import HistoryControl
from .stream_rooms import StreamRooms
from .variants import Frames, HubMessage
from .watchers import Watchers

__all__ = ["Hub", "Member", "DeliveryReport", "PresenceEvent", "HubStats", "MessageLike", "INTERNAL_ROOM_PREFIX"]

logger = logging.getLogger("trio_ws.hub")

class Hub(Presence, StreamRooms, HistoryControl, RemoteSide):
    """Rooms of WebSocket connections with non-blocking fan-out.

    Use it as ``async with Hub(...) as hub:`` around the server (the block
    runs the backend's tasks, if any); an in-memory hub also works without
    the ``async with``.

    Args:
        backend: a cross-process backend (for example
            :class:`~trio_ws.hub.redis.RedisBackend`); None keeps everything in
            this process.
        queue_size: how many messages may wait for each member. Default 256.
        overflow: what happens when a member's queue is full: ``"close"``
            (default; the member is closed with 1008), ``"drop_newest"`` or
            ``"drop_oldest"``.
        history: a :class:`~trio_ws.hub.history.HistoryPolicy` for every
            room (None, the default: no room keeps history unless
            :meth:`enable_history` says so). With a backend that keeps
            streams (:class:`~trio_ws.hub.redis.RedisBackend`) such a room's
            history is a stream in Redis, shared by every process
            (:mod:`trio_ws.hub.stream_rooms`).

    Raises:
        ValueError: for a bad queue size or policy, or history with a
            backend that keeps no streams.

    Concurrency and cancellation: every method may be called from any task of
    the hub's Trio run, concurrently with the others; the methods that are
    not ``async`` never wait. A fan-out method queues for the local members
    before its first checkpoint, so a cancelled call has still delivered
    locally. A membership change (:meth:`join`, :meth:`leave`,
    :meth:`close_room`, the end of :meth:`connect`) makes its local change
    before its first checkpoint and finishes its backend part shielded from
    cancellation and bounded in time (each backend call within the backend's
    own timeout, presence within a second): a cancelled call has taken
    effect, here and in the backend, and leaves no half state.
    """

    def __init__(
        self,
        *,
        backend: HubBackend | None = None,
        queue_size: int = 256,
        overflow: OverflowPolicy = "close",
        history: HistoryPolicy | None = None,
    ) -> None:
        Outbox(queue_size, overflow)  # validates the arguments
        if history is not None:
            self._check_history(backend)
        self._histories = Histories(history, exempt=INTERNAL_ROOM_PREFIX)
        self._backend = backend
        self._publisher = None if backend is None else Publisher(backend)
        self._nursery: trio.Nursery | None = None
        self._queue_size = queue_size
        self._overflow: OverflowPolicy = overflow
        self._members: dict[str, Member] = {}
        self._rooms: dict[str, dict[str, Member]] = {}
        self._watchers: dict[str, Watchers[PresenceEvent]] = {}
        self._event_watchers: Watchers[BackendEvent] = Watchers()
        self.stats = HubStats()
        self._running = backend is None
        self._init_stream_rooms()

    # -- lifecycle -------------------------------------------------------------
    @asynccontextmanager
    async def _run(self) -> AsyncIterator[Hub]:
        async with background_tasks() as nursery:
            if self._backend is not None:
                await nursery.start(self._backend.run, self)
            self._nursery = nursery
            self._running = True
            try:
                yield self
            finally:
                self._running = False
                self._nursery = None

    async def __aenter__(self) -> Hub:
        """Start the backend's tasks; returns once the backend is ready (or has reported ``down``).

        The Redis backend raises nothing here: while Redis is unreachable the
        hub runs, reports ``down`` to :meth:`backend_events` and retries.
        """
        self._context = self._run()
        return await self._context.__aenter__()

    async def __aexit__(self, *exc_info: Any) -> bool | None:
        """Stop the backend's tasks; an exception from the block comes out unchanged."""
        return await self._context.__aexit__(*exc_info)

    @property
    def backend(self) -> HubBackend | None:
        """The backend shared with other processes, or None for an in-memory hub."""
        return self._backend

    @property
    def process_id(self) -> str | None:
        """This process's id on the backend, or None without one."""
        return None if self._backend is None else self._backend.process_id

    # -- members ---------------------------------------------------------------
    @asynccontextmanager
    async def connect(
        self,
        connection: MemberConnection,
        *,
        member_id: str | None = None,
        data: Any = None,
        wire_format: str | None = None,
    ) -> AsyncIterator[Member]:
        """Register a connection for the duration of the block.

        The member's sender and watcher tasks run for exactly that long; when
        the block ends, or the connection closes, the member leaves every room.
        An exception raised in the block comes out unchanged.

        Args:
            connection: an open connection (usually from ``request.accept()``;
                anything with the :class:`~trio_ws.hub.MemberConnection` protocol).
            member_id: the id to use (default: a random one).
            data: anything to attach to the member.
            wire_format: the member's wire format (None, the default: the
                application's own); it receives only the variant of that
                format of a :class:`~trio_ws.hub.MessageVariants`, and no
                plain message sent to a room or to everyone.

        Yields:
            the member.

        Raises:
            ValueError: when ``member_id`` is empty or already in use.
            RuntimeError: when the hub has a backend and is not running.

        However the block ends (cancelled included), the member's removal
        runs shielded: it leaves every room, here and in the backend.
        Concurrent calls are allowed (each with its own member id).
        """
        if not self._running:
            raise RuntimeError("a hub with a backend must be running: use `async with hub:`")
        if member_id is None:
            member_id = uuid.uuid4().hex
        elif not member_id:
            raise ValueError("member_id must be a non-empty string")
        if member_id in self._members:
            raise ValueError(f"member id {member_id!r} is already in use")
        member = Member(self, connection, member_id, data, Outbox(self._queue_size, self._overflow), wire_format)
        self._members[member_id] = member
        try:
            if self._backend is not None:
                await self._backend.add_member(member_id, None)
            async with background_tasks() as nursery:
                nursery.start_soon(self._sender, member)
                nursery.start_soon(self._watcher, member)
                yield member
        finally:
            with trio.CancelScope(shield=True):
                await self._remove(member)

    async def _sender(self, member: Member) -> None:
        await run_sender(member, self.stats)
        await self._remove(member)

    async def _watcher(self, member: Member) -> None:
        await member.connection.wait_closed()
        member._outbox.close()
        await self._remove(member)

    async def _remove(self, member: Member) -> None:
        if not member.active:
            return
        member.active = False
        member._outbox.close()
        self._members.pop(member.id, None)
        # Shielded: whoever started the removal (sender, watcher, the end of
        # the connect block) may be cancelled meanwhile, and a half-done
        # removal would leave the member in rooms. Backend calls are bounded.
        with trio.CancelScope(shield=True):
            for room in list(member._rooms):
                await self._leave_room(member, room)
            if self._backend is not None:
                with trio.move_on_after(1):
                    await self._backend.remove_member(member.id, None)

    def member(self, member_id: str) -> Member | None:
        """The local member with this id, or None. Raises nothing."""
        return self._members.get(member_id)

    @property
    def local_members(self) -> frozenset[str]:
        """The ids of this process's members."""
        return frozenset(self._members)

    # -- rooms -----------------------------------------------------------------
    async def join(
        self,
        member_id: str,
        room: str,
        *,
        since: StreamPosition | tuple[str, int] | None = None,
        before_replay: Callable[[JoinResult], None] | None = None,
    ) -> JoinResult:
        """Add a local member to ``room`` (no effect if already in it).

        With ``since`` (a position the member's client saw, from a room with
        history), the messages after it are queued for the member first, then
        it receives live ones: none missing, none twice, even while others
        broadcast (the replay and the join happen with no checkpoint between
        them). When that is impossible (another epoch, messages trimmed, an
        offset ahead, no history, more missed messages than the member's
        outbox holds) the member still joins, from the live stream, and the
        result says ``recovered=False`` and why: the client should resync.

        ``before_replay`` is called with the result once it is known, just
        before the replay is queued, with no checkpoint in between: what it
        queues for the member comes before the replayed messages (the
        Socket.IO layer answers the client's CONNECT there). It must not
        raise.

        Returns:
            a :class:`~trio_ws.hub.history.JoinResult` with the room's position.

        Raises:
            KeyError: when ``member_id`` is not a member of this process.
            ValueError: when ``since`` is not an (epoch, offset) pair.

        With a backend, this returns once the backend has the room's
        subscription and the member (Redis confirmed them: another process's
        publish from then on reaches the member), unless the link is declared
        down first (with Redis, at most ``command_timeout`` after Redis stops
        answering; the reconnection subscribes and registers it before ``up``).

        Cancelling is safe: the member is in the room before the first
        checkpoint, and the backend's part (the room's subscription, the
        shared membership, presence) finishes shielded, so a cancelled join
        has joined everywhere, on those terms. The replay is queued before
        the first checkpoint too, except in a room streamed through the backend, where
        a replay still being read when the call is cancelled is not queued.
        Concurrent calls are allowed.
        """
        member = self._local(member_id)
        if room in member._rooms:
            history = self._histories.get(room)
            position = self._stream_position(room) if history is None else history.position
            result = JoinResult(position, reason=None if since is None else "already_joined")
            if before_replay is not None:
                before_replay(result)
            return result
        first_local = room not in self._rooms
        try:
            if self._streamed_policy(room) is not None:
                start = None if since is None else StreamPosition.parse(since)
                # In the room at once, then replays.
                result = await self._stream_join(member, room, start, before_replay)
            else:
                result, missed = self._histories.replay(room, since, member._outbox.space, trio.current_time())
                if before_replay is not None:
                    before_replay(result)
                for message in missed:
                    self._offer_message(member, message)
                member._rooms.add(room)
                self._rooms.setdefault(room, {})[member_id] = member
        finally:
            # Shielded, and even when a stream's replay was cancelled: a member in the
            # room here but not subscribed or registered in the backend would miss other
            # processes' messages (see the class doc). Not if it left meanwhile.
            if room in member._rooms:
                with trio.CancelScope(shield=True):
                    if self._backend is not None:
                        if first_local:
                            await self._backend.subscribe(room)
                        await self._backend.add_member(member_id, room)
                    await self._presence("join", room, member_id)
        return result

    async def leave(self, member_id: str, room: str) -> None:
        """Remove a local member from ``room`` (no effect if not in it).

        Raises:
            KeyError: when ``member_id`` is not a member of this process.

        Cancelling is safe: the member is out of the room before the first
        checkpoint, and the backend's part finishes shielded, so a cancelled
        leave has left everywhere. Unlike :meth:`join`, the removal may reach
        other processes after this returns. Concurrent calls are allowed.
        """
        member = self._local(member_id)
        if room in member._rooms:
            await self._leave_room(member, room)

    async def _leave_room(self, member: Member, room: str) -> None:
        member._rooms.discard(room)
        local = self._rooms.get(room)
        if local is not None:
            local.pop(member.id, None)
            if not local:
                del self._rooms[room]
                if self._streams is not None:
                    self._streams.close_stream(room)
        with trio.CancelScope(shield=True):  # see join()
            if self._backend is not None:
                with trio.move_on_after(1):
                    await self._backend.remove_member(member.id, room)
                    if room not in self._rooms:
                        await self._backend.unsubscribe(room)
            await self._presence("leave", room, member.id)

    async def close_room(self, room: str) -> None:
        """Remove every member from ``room``, in every process; they stay connected.

        Raises what the backend raises (the Redis backend: nothing).
        Cancelling is safe: each local member's leave completes (see
        :meth:`leave`); the request to other processes is published last, so
        a call cancelled before it may not have reached them. Concurrent
        calls are allowed.
        """
        for member in list(self._rooms.get(room, {}).values()):
            await self._leave_room(member, room)
        if self._publisher is not None:
            await self._publisher.close_room(room)

    # -- fan-out ---------------------------------------------------------------
    async def broadcast(
        self,
        room: str,
        message: MessageSource | PositionedVariants,
        *,
        exclude: str | Iterable[str] | None = None,
        within: str | None = None,
    ) -> DeliveryReport:
        """Send a message to every member of ``room`` (in every process).

        Never waits for a peer: the message is framed once and queued for each
        member. Messages from one sender to a room arrive in order everywhere.
        In a room with history the message is also recorded at the next
        offset (excluded members can still replay it later).

        With a backend, a room with history is a stream in the backend: the
        message is queued for it (never waiting for Redis) and reaches the
        members of every process, this one's included, when each process
        reads it back, so all of them see the room's messages in one order.
        The report then counts no local member and has no position (the
        backend assigns it); ``message`` must be a str, bytes,
        PreparedMessage or :class:`~trio_ws.hub.positioned.PositionedJSON`
        (a function cannot travel to the other processes: TypeError).

        Args:
            room: the room.
            message: ``str`` (text), ``bytes`` (binary), a PreparedMessage
                or a :class:`~trio_ws.hub.MessageVariants` (each member gets
                the variant of its wire format); or a function given the message's
                :class:`~trio_ws.hub.history.StreamPosition` (None for a room
                without history) that returns one, to put the offset in it.
            exclude: a member id, or several, to skip (for example the sender).
            within: only the members of ``room`` that are also in the room
                ``within``, or the member whose id it is (in every process).
                A room with history replays such a message only to the
                members it reached (see :meth:`join`); not available for a
                room with history in an in-memory hub.

        Returns:
            what happened locally, whether it was published to other
            processes, and the message's position in the room's history.

        Raises:
            ValueError: ``within`` in a room with history of an in-memory hub.
            TypeError: when the message is not one of those.
                Whatever ``message`` raises, when it is a function, comes out
                unchanged and nothing is sent.

        Cancelling is safe: the local members have the message queued (and
        the history has it) before the first checkpoint; only its
        publication to other processes may be cut short (the Redis backend's
        never waits). Concurrent calls are allowed; the messages of one task
        arrive in order everywhere.
        """
        skip = _as_set(exclude)
        policy = self._streamed_policy(room)
        if policy is not None:
            return await self._stream_broadcast(room, policy, message, skip, within)
        history = self._histories.open(room)
        if history is not None and within is not None:
            raise ValueError(f"within= needs a room without history in an in-memory hub; {room!r} keeps one")
        position = None if history is None else StreamPosition(history.epoch, history.position.offset + 1)
        prepared = _prepare(message(position) if callable(message) else message)
        if history is not None:
            now = trio.current_time()
            history.append(prepared, now)
            self._histories.sweep(now, self._rooms)
        report = self._fan_out(addressed(self._rooms.get(room, {}).values(), within), prepared, skip)
        published = False
        if self._publisher is not None:
            published = await self._publisher.room(room, prepared, skip, within)
        return _with_published(report, published, position)

    async def broadcast_json(
        self, room: str, value: Any, *, exclude: str | Iterable[str] | None = None
    ) -> DeliveryReport:
        """Encode ``value`` as JSON once and broadcast it as a text message (see :meth:`broadcast`).

        Raises:
            TypeError: when ``value`` is not JSON serializable (nothing is sent).
        """
        return await self.broadcast(room, _json(value), exclude=exclude)

    async def send_all(self, message: MessageLike, *, exclude: str | Iterable[str] | None = None) -> DeliveryReport:
        """Send a message to every member of the hub, in every process.

        Raises:
            TypeError: when the message is not str, bytes, a PreparedMessage or a MessageVariants.

        Cancelling and concurrent calls: as for :meth:`broadcast`.
        """
        prepared = _prepare(message)
        skip = _as_set(exclude)
        report = self._fan_out(self._members.values(), prepared, skip)
        published = False
        if self._publisher is not None:
            published = await self._publisher.all(prepared, skip)
        return _with_published(report, published)

    async def unicast(self, member_id: str, message: MessageLike) -> bool:
        """Send a message to one member, wherever it is.

        Returns:
            True when it was queued locally or published to the member's
            process; False when the id is unknown or gone.

        Raises:
            TypeError: when the message is not str, bytes, a PreparedMessage or a MessageVariants.

        Cancelling is safe: a local member has the message queued before the
        first checkpoint; for a member elsewhere the Redis backend first looks
        up its process, and a call cancelled then sends nothing. Concurrent
        calls are allowed.
        """
        prepared = _prepare(message)
        member = self._members.get(member_id)
        if member is not None:
            return self._offer_message(member, prepared) is Outcome.QUEUED
        if self._publisher is None:
            return False
        return await self._publisher.member(member_id, prepared)

    async def send_to(self, room: str, member_id: str, message: MessageLike) -> bool:
        """Send to one member, only if it is in ``room`` (nameko's "send to one in a room").

        Raises, and behaves when cancelled or called concurrently, as :meth:`unicast`.
        """
        if member_id in self._rooms.get(room, {}):
            return await self.unicast(member_id, message)
        if self._backend is not None and member_id not in self._members:
            members = await self._backend.room_members(room)
            if members is not None and member_id in members:
                return await self.unicast(member_id, message)
        return False

    async def disconnect(self, member_id: str, code: int = NORMAL_CLOSURE, reason: str = "") -> bool:
        """Close a member's connection, wherever it is.

        Returns:
            True when the member was found here or the request was published.

        Raises nothing. Cancelling is safe (as for :meth:`unicast`: a local
        member's close is requested before the first checkpoint); concurrent
        calls are allowed (the first request's code wins).
        """
        member = self._members.get(member_id)
        if member is not None:
            request_close(member, code, reason)
            return True
        if self._publisher is None:
            return False
        return await self._publisher.disconnect(member_id, code, reason)

    def _fan_out(self, members: Iterable[Member], message: HubMessage, skip: Collection[str]) -> DeliveryReport:
        return fan_out(members, message, skip, self.stats)

    def _offer_message(self, member: Member, message: HubMessage) -> Outcome:
        return offer_message(member, message, self.stats)

    def _offer(self, member: Member, message: Frames) -> Outcome:
        return offer(member, message, self.stats)

    def _local(self, member_id: str) -> Member:
        member = self._members.get(member_id)
        if member is None:
            raise KeyError(f"no local member with id {member_id!r}")
        return member


def _as_set(value: str | Iterable[str] | None) -> set[str]:
    if value is None:
        return set()
    if isinstance(value, str):
        return {value}
    return set(value)


def _with_published(report: DeliveryReport, published: bool, position: StreamPosition | None = None) -> DeliveryReport:
    return DeliveryReport(report.queued, report.dropped, report.closed, published, position)


def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
