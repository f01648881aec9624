"""The hub: members, rooms, fan-out, presence.

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
from collections.abc import AsyncIterator, Collection, Iterable
from contextlib import asynccontextmanager
from typing import Any, Literal, cast

import trio

from ..close import NORMAL_CLOSURE, POLICY_VIOLATION
from ..connection import WebSocketConnection
from ..errors import ConnectionClosed
from ..prepared import PreparedMessage
from ..scopes import background_tasks
from .backend import BackendEvent, HubBackend
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
from .history import Histories, HistoryPolicy, JoinResult, StreamPosition
from .member import (
    INTERNAL_ROOM_PREFIX,
    DeliveryReport,
    HubStats,
    Member,
    MessageLike,
    MessageSource,
    PresenceEvent,
    _prepare,
)
from .outbox import Outbox, Outcome, OverflowPolicy
from .publisher import Publisher
from .stream_rooms import StreamingBackend, StreamRooms
from .variants import Frames, HubMessage, MessageVariants
from .watchers import Watchers

__all__ = ["Hub", "Member", "DeliveryReport", "PresenceEvent", "HubStats", "MessageLike", "INTERNAL_ROOM_PREFIX"]

logger = logging.getLogger("trio_ws.hub")

#: Seconds a member being closed (overflow, disconnect) gets to finish the
#: write in progress and the closing handshake before its connection is
#: dropped: a client that stopped reading would otherwise hold them forever.
SLOW_CLOSE_GRACE = 1.0
#: The most bytes of queued messages a member's sender writes at once.
BATCH_BYTES = 256 * 1024


class Hub(StreamRooms):
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
        self._context = self._run()
        return await self._context.__aenter__()

    async def __aexit__(self, *exc_info: Any) -> bool | None:
        return await self._context.__aexit__(*exc_info)

    @property
    def process_id(self) -> str | None:
        """This process's id on the backend, or None without one."""
        return None if self._backend is None else self._backend.process_id

    # -- members ---------------------------------------------------------------
    @asynccontextmanager
    async def connect(
        self,
        connection: WebSocketConnection,
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
            connection: an open connection (usually from ``request.accept()``).
            member_id: the id to use (default: a random one).
            data: anything to attach to the member.
            wire_format: the member's wire format (None, the default: the
                application's own); it receives only the variant of that
                format of a :class:`~trio_ws.hub.MessageVariants`, and no
                plain message sent to a room or to everyone.

        Yields:
            the member.

        Raises:
            ValueError: when ``member_id`` is already in use.
            RuntimeError: when the hub has a backend and is not running.
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
        connection = member.connection
        outbox = member._outbox
        while True:
            # Everything queued goes out in one write: a burst of broadcasts
            # costs each member one system call and one trip through the
            # scheduler, not one per message. The shared frames are handed to
            # the socket as they are (send_many never joins them), so the
            # burst is not copied once per member.
            batch = await outbox.get_batch(BATCH_BYTES)
            if not batch:
                break
            frames = _flatten(batch)
            with trio.CancelScope() as member._send_scope:
                try:
                    await connection.send_many(frames)
                except ConnectionClosed:
                    break
            member._send_scope = None
            if connection.closed is not None:
                break  # the send was cut short (see _interrupt_send): the connection is aborted
            outbox.stats.delivered += len(batch)
            self.stats.delivered += len(batch)
        member._send_scope = None
        if outbox.overflowed:
            logger.info("member %s is too slow (outbox full): closing with 1008", member.id)
            await self._close_member(connection, POLICY_VIOLATION, "outbound queue overflow")
        elif member._close_request is not None:
            await self._close_member(connection, *member._close_request)
        await self._remove(member)

    @staticmethod
    async def _close_member(connection: WebSocketConnection, code: int, reason: str) -> None:
        # A client that stopped reading cannot take a close frame either: give
        # the closing handshake a short grace, then drop the connection.
        with trio.move_on_after(SLOW_CLOSE_GRACE):
            await connection.aclose(code, reason)

    @staticmethod
    def _interrupt_send(member: Member) -> None:
        """Bound a send in progress: a stalled write is abandoned after a grace period."""
        scope = member._send_scope
        if scope is not None:
            scope.deadline = min(scope.deadline, trio.current_time() + SLOW_CLOSE_GRACE)

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
        """The local member with this id, or None."""
        return self._members.get(member_id)

    @property
    def local_members(self) -> frozenset[str]:
        """The ids of this process's members."""
        return frozenset(self._members)

    # -- history ---------------------------------------------------------------
    @staticmethod
    def _check_history(backend: HubBackend | None) -> None:
        if backend is not None and not isinstance(backend, StreamingBackend):
            raise ValueError(f"room history needs an in-memory hub or a backend that keeps streams, not {backend!r}")

    def enable_history(self, room: str, policy: HistoryPolicy | None = None) -> None:
        """Keep a history for ``room`` with ``policy`` (default: ``HistoryPolicy()``).

        Overrides the hub's policy for this room; ``disable_history`` turns it
        off. Messages already broadcast are not in it. With a backend, every
        process must give the room the same policy.

        Raises:
            ValueError: when the hub has a backend that keeps no streams.
        """
        self._check_history(self._backend)
        self._histories.enable(room, policy if policy is not None else HistoryPolicy())

    def disable_history(self, room: str) -> None:
        """Keep no history for ``room`` (whatever the hub's policy) and forget it."""
        self._histories.enable(room, None)

    def discard_history(self, room: str) -> bool:
        """Forget ``room``'s messages; its next message starts a new epoch.

        Returns:
            whether the room had a history.
        """
        return self._histories.discard(room)

    def history_position(self, room: str) -> StreamPosition | None:
        """The position after ``room``'s newest message, or None without history.

        A room whose policy asks for history gets one (and its epoch) here.
        With a backend, the position of the last message this process
        delivered to the room (None when it has no member there).
        """
        if self._streams is not None:
            return self._stream_position(room)
        history = self._histories.open(room)
        return None if history is None else history.position

    # -- rooms -----------------------------------------------------------------
    async def join(
        self, member_id: str, room: str, *, since: StreamPosition | tuple[str, int] | None = None
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

        Returns:
            a :class:`~trio_ws.hub.history.JoinResult` with the room's position.

        Raises:
            KeyError: when ``member_id`` is not a member of this process.
            ValueError: when ``since`` is not an (epoch, offset) pair.
        """
        member = self._local(member_id)
        if room in member._rooms:
            history = self._histories.get(room)
            position = self._stream_position(room) if history is None else history.position
            return JoinResult(position, reason=None if since is None else "already_joined")
        first_local = room not in self._rooms
        if self._streamed_policy(room) is not None:
            start = None if since is None else StreamPosition.parse(since)
            result = await self._stream_join(member, room, start)
            if room not in member._rooms:
                return result  # left (or closed) while the join waited for the backend
        else:
            result, missed = self._histories.replay(room, since, member._outbox.space, trio.current_time())
            for message in missed:
                self._offer_message(member, message)
            member._rooms.add(room)
            self._rooms.setdefault(room, {})[member_id] = member
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
        if self._backend is not None:
            with trio.move_on_after(1):
                await self._backend.remove_member(member.id, room)
                if room not in self._rooms:
                    await self._backend.unsubscribe(room)
        await self._presence("leave", room, member.id)

    def rooms(self, member_id: str) -> frozenset[str]:
        """The rooms of a local member (empty for an unknown id); internal rooms are not listed."""
        member = self._members.get(member_id)
        return member.rooms if member is not None else frozenset()

    def local_room_members(self, room: str) -> frozenset[str]:
        """This process's members of ``room``."""
        return frozenset(self._rooms.get(room, ()))

    async def members(self, room: str) -> frozenset[str]:
        """Every member of ``room``: across processes with a backend, else local.

        When the backend cannot answer (it is down), the local members.
        """
        if self._backend is not None:
            found = await self._backend.room_members(room)
            if found is not None:
                return frozenset(found) | self.local_room_members(room)
        return self.local_room_members(room)

    async def member_count(self, room: str) -> int:
        """How many members ``room`` has (see :meth:`members`)."""
        return len(await self.members(room))

    async def close_room(self, room: str) -> None:
        """Remove every member from ``room``, in every process."""
        for member in list(self._rooms.get(room, {}).values()):
            await self._leave_room(member, room)
        if self._publisher is not None:
            await self._publisher.close_room(room)

    # -- fan-out ---------------------------------------------------------------
    async def broadcast(
        self, room: str, message: MessageSource, *, exclude: str | Iterable[str] | None = None
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

        Returns:
            what happened locally, whether it was published to other
            processes, and the message's position in the room's history.

        Raises:
            TypeError: when the message is not one of those.
                Whatever ``message`` raises, when it is a function, comes out
                unchanged and nothing is sent.
        """
        skip = _as_set(exclude)
        policy = self._streamed_policy(room)
        if policy is not None:
            return await self._stream_broadcast(room, policy, message, skip)
        history = self._histories.open(room)
        position = None if history is None else StreamPosition(history.epoch, history.position.offset + 1)
        prepared = _prepare(message(position) if callable(message) else message)
        if history is not None:
            now = trio.current_time()
            history.append(prepared, now)
            self._histories.sweep(now, self._rooms)
        report = self._fan_out(self._rooms.get(room, {}).values(), prepared, skip)
        published = False
        if self._publisher is not None:
            published = await self._publisher.room(room, prepared, skip)
        return _with_published(report, published, position)

    async def broadcast_json(
        self, room: str, value: Any, *, exclude: str | Iterable[str] | None = None
    ) -> DeliveryReport:
        """Encode ``value`` as JSON once and broadcast it as a text message."""
        return await self.broadcast(room, _json(value), exclude=exclude)

    async def send_all(self, message: MessageLike, *, exclude: str | Iterable[str] | None = None) -> DeliveryReport:
        """Send a message to every member of the hub, in every process."""
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
        """
        prepared = _prepare(message)
        member = self._members.get(member_id)
        if member is not None:
            return self._offer_message(member, prepared) is Outcome.QUEUED
        if self._publisher is None:
            return False
        return await self._publisher.member(member_id, prepared)

    async def send_to(self, room: str, member_id: str, message: MessageLike) -> bool:
        """Send to one member, only if it is in ``room`` (nameko's "send to one in a room")."""
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
        """
        member = self._members.get(member_id)
        if member is not None:
            self._request_close(member, code, reason)
            return True
        if self._publisher is None:
            return False
        return await self._publisher.disconnect(member_id, code, reason)

    def _fan_out(self, members: Iterable[Member], message: HubMessage, skip: Collection[str]) -> DeliveryReport:
        queued = dropped = closed = 0
        variants = message if isinstance(message, MessageVariants) else None
        plain = message if isinstance(message, PreparedMessage) else None
        for member in list(members):
            if member.id in skip:
                continue
            frames: Frames | None
            if variants is not None:
                frames = variants.variant(member.wire_format)
            else:
                # A plain message is the default wire format's.
                frames = plain if member.wire_format is None else None
            if frames is None:
                continue
            outcome = self._offer(member, frames)
            if outcome is Outcome.QUEUED:
                queued += 1
            elif outcome is Outcome.DROPPED:
                dropped += 1
            else:
                closed += 1
        self.stats.fanouts += 1
        return DeliveryReport(queued, dropped, closed)

    def _offer_message(self, member: Member, message: HubMessage) -> Outcome:
        """Offer one member a message sent to it alone (a plain one whatever its wire format)."""
        if isinstance(message, MessageVariants):
            frames = message.variant(member.wire_format)
            if frames is None:
                return Outcome.DROPPED
            return self._offer(member, frames)
        return self._offer(member, message)

    def _offer(self, member: Member, message: Frames) -> Outcome:
        if member.connection.closed is not None:
            return Outcome.CLOSED
        outbox = member._outbox
        dropped_before = outbox.stats.dropped
        outcome = outbox.put(message)
        if outcome is Outcome.QUEUED:
            self.stats.queued += 1
        # drop_oldest evicts a queued message and still queues this one.
        self.stats.dropped += outbox.stats.dropped - dropped_before
        if outbox.overflowed and outcome is Outcome.DROPPED:
            self.stats.overflow_closes += 1  # counted now: the sender may be cancelled before it closes
            self._interrupt_send(member)
        return outcome

    # -- presence --------------------------------------------------------------
    @asynccontextmanager
    async def watch(self, room: str) -> AsyncIterator[trio.MemoryReceiveChannel[PresenceEvent]]:
        """Observe joins and leaves of ``room`` (local, and remote with a backend).

        Yields:
            a channel of :class:`PresenceEvent`. Events that find its buffer
            (256) full are dropped, so a slow watcher cannot hold up the hub.
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
        """Observe the backend's state changes (down, up, gap) to resync after an outage."""
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

    # -- the backend's side (BackendSink) --------------------------------------
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
            self._fan_out(self._rooms.get(envelope.room, {}).values(), envelope.message, envelope.exclude)
        elif isinstance(envelope, AllMessage):
            self._fan_out(self._members.values(), envelope.message, envelope.exclude)
        elif isinstance(envelope, MemberMessage):
            member = self._members.get(envelope.member_id)
            if member is not None:
                self._offer_message(member, envelope.message)
        elif isinstance(envelope, Disconnect):
            member = self._members.get(envelope.member_id)
            if member is not None:
                self._request_close(member, envelope.code, envelope.reason)
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

    def _local(self, member_id: str) -> Member:
        member = self._members.get(member_id)
        if member is None:
            raise KeyError(f"no local member with id {member_id!r}")
        return member

    def _request_close(self, member: Member, code: int, reason: str) -> None:
        member._close_request = (code, reason)
        member._outbox.close()
        self._interrupt_send(member)


def _flatten(batch: list[Frames]) -> list[PreparedMessage]:
    """The frames of an outbox batch, in order (a multi-frame item is sent back to back)."""
    if not any(isinstance(item, tuple) for item in batch):
        return cast("list[PreparedMessage]", batch)
    frames: list[PreparedMessage] = []
    for item in batch:
        if isinstance(item, PreparedMessage):
            frames.append(item)
        else:
            frames.extend(item)
    return frames


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
