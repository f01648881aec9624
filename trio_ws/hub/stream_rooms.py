"""Rooms with history on a hub with a backend: the hub's side of streamed rooms.

Part of :class:`~trio_ws.hub.Hub` (a mixin of it). With a backend that keeps
streams (:class:`StreamingBackend`, for example
:class:`~trio_ws.hub.redis.RedisBackend`) a room with history lives in the
backend, not in this process: a broadcast is appended to the room's stream,
and every process, this one included, delivers the room's messages as it
reads them back, with their positions. So every member of the room, in
every process, receives the room's messages in one order, and a client can
resume from its position in any process.

Theory of operation of a join. The member is added to the room at once but
*held*: what the reader delivers to the room meanwhile is kept aside for
it, with its position. The hub then asks the backend where its reader
stands in the room (position ``P``: every entry after ``P`` reaches the room
later), reads the entries after the member's position up to ``P`` from the
stream, and, with no checkpoint in between, queues them, then the entries
kept aside that come after ``P``, and releases the hold. The replay ends
exactly where the rest begins: nothing is missed or received twice at the
seam, even while other processes broadcast and whatever the reader
delivered while the join waited for Redis.

An entry sent ``within`` a room (or to one member id: see
:meth:`Hub.broadcast <trio_ws.hub.Hub.broadcast>`) reaches only the members
of the streamed room that are also in that room, or have that id, both live
and in a replay; a replay also skips it for the members it excluded. So one
stream can carry the messages of many rooms in one order (the Socket.IO
connection-state recovery log of a namespace does).
"""

from __future__ import annotations

import logging
from abc import abstractmethod
from collections.abc import Callable, Collection, Iterable
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from .backend import HubBackend
from .delivery import addressed
from .envelopes import HubEnvelope, RoomMessage, parse_stream_entry
from .history import Histories, HistoryLost, HistoryPolicy, JoinResult, StreamPosition
from .member import DeliveryReport, HubStats, Member, MessageSource, _prepare
from .outbox import Outcome
from .positioned import PositionedJSON, PositionedVariants
from .publisher import Publisher
from .variants import Frames, HubMessage, MessageVariants

if TYPE_CHECKING:
    from .redis_streams import StreamCursor

__all__ = ["StreamingBackend", "StreamRooms"]

logger = logging.getLogger("trio_ws.hub")


@runtime_checkable
class StreamingBackend(HubBackend, Protocol):
    """A backend that keeps the streams of rooms with history (see :mod:`trio_ws.hub.redis_streams`)."""

    async def append_stream(self, room: str, envelope: HubEnvelope, policy: HistoryPolicy) -> bool:
        """Queue an envelope for ``room``'s stream; False if it is lost."""

    async def open_stream(self, room: str) -> StreamPosition | None:
        """Start reading ``room``'s stream; the position the live entries follow (None if unknown)."""

    def close_stream(self, room: str) -> None:
        """Stop reading ``room``'s stream."""

    def stream_cursor(self, room: str) -> StreamCursor | None:
        """Where this process reads ``room``'s stream (None when it does not)."""

    async def read_stream(
        self, room: str, since: StreamPosition, until: StreamPosition, limit: int
    ) -> list[tuple[StreamPosition, HubEnvelope]]:
        """The entries after ``since`` up to ``until`` (at most ``limit + 1``); raises HistoryLost."""


class StreamRooms:
    """The streamed rooms of a :class:`~trio_ws.hub.Hub` (not used on its own)."""

    _backend: HubBackend | None
    _histories: Histories
    _rooms: dict[str, dict[str, Member]]
    _publisher: Publisher | None
    stats: HubStats

    def _init_stream_rooms(self) -> None:
        # Members joining: room -> member id -> the messages kept aside, with their positions.
        self._held: dict[str, dict[str, list[tuple[StreamPosition, HubMessage]]]] = {}

    @abstractmethod
    def _offer(self, member: Member, message: Frames) -> Outcome:
        """Queue a message for one member."""

    @abstractmethod
    def _fan_out(self, members: Iterable[Member], message: HubMessage, skip: Collection[str]) -> DeliveryReport:
        """Queue a message for several members."""


    @property
    def _streams(self) -> StreamingBackend | None:
        backend = self._backend
        return backend if isinstance(backend, StreamingBackend) else None

    def _streamed_policy(self, room: str) -> HistoryPolicy | None:
        """The room's policy when the room is streamed through the backend (None otherwise)."""
        return self._histories.policy(room) if self._streams is not None else None

    async def _stream_broadcast(
        self,
        room: str,
        policy: HistoryPolicy,
        message: MessageSource | PositionedVariants,
        skip: set[str],
        within: str | None = None,
    ) -> DeliveryReport:
        streams, publisher = self._streams, self._publisher
        assert streams is not None and publisher is not None
        if not isinstance(message, (PositionedJSON, PositionedVariants)) and callable(message):
            raise TypeError(
                "a message builder cannot travel to other processes: in a room streamed through the backend, "
                "broadcast a str, bytes, PreparedMessage, MessageVariants or PositionedJSON"
            )
        prepared = (
            message if isinstance(message, (PositionedJSON, PositionedVariants, MessageVariants)) else _prepare(message)
        )
        published = await publisher.stream(streams, room, prepared, skip, policy, within)
        return DeliveryReport(published=published)

    def deliver_stream(self, room: str, position: StreamPosition, envelope: HubEnvelope) -> None:
        """Deliver an entry of ``room``'s stream to the local members (called by the backend).

        Every process delivers every entry, its own included; members joining
        from a position keep it aside until their replay is queued.
        """
        self.stats.remote_received += 1
        try:
            entry = parse_stream_entry(envelope, position)
        except (TypeError, ValueError) as err:
            self.stats.remote_malformed += 1
            logger.warning("ignored a malformed stream entry of %s: %s", room, err)
            return
        message, skip = entry.message, set(entry.exclude)
        members = self._rooms.get(room, {})
        held = self._held.get(room)
        if held:
            for member_id, kept in held.items():
                member = members.get(member_id)
                if member_id not in skip and member is not None and _reaches(entry, member):
                    kept.append((position, message))
            skip = skip | held.keys()
        self._fan_out(addressed(members.values(), entry.within), message, skip)

    async def _stream_join(
        self,
        member: Member,
        room: str,
        since: StreamPosition | None,
        before_replay: Callable[[JoinResult], None] | None = None,
    ) -> JoinResult:
        """Add ``member`` to the streamed ``room`` (from ``since`` when given); see the module's docstring."""
        streams = self._streams
        assert streams is not None
        held = self._held.setdefault(room, {})
        kept: list[tuple[StreamPosition, HubMessage]] = []
        held[member.id] = kept
        position: StreamPosition | None = None
        member._rooms.add(room)
        self._rooms.setdefault(room, {})[member.id] = member
        result = JoinResult(None)
        missed: list[HubMessage] = []
        try:
            position = await streams.open_stream(room)
            if since is None:
                result = JoinResult(position)
            elif position is None:
                result = JoinResult(None, reason="unavailable")
            else:
                space = member._outbox.space
                try:
                    entries = await streams.read_stream(room, since, position, space)
                except HistoryLost as lost:
                    result = JoinResult(position, reason=lost.reason)
                else:
                    if len(entries) > space:
                        result = JoinResult(position, reason="queue_full")
                    else:
                        missed = self._parse_entries(entries, member)
                        result = JoinResult(position, recovered=True, replayed=len(missed))
        finally:
            # No checkpoint from here on: the replay (up to ``position``), then what arrived
            # after ``position`` meanwhile, then live. The reader may have delivered entries
            # up to ``position`` while the join waited: those are in the replay, not again.
            if held.get(member.id) is kept:
                del held[member.id]
                if not held:
                    self._held.pop(room, None)
            if before_replay is not None:
                before_replay(result)
            if room in member._rooms:
                for message in missed:
                    self._offer_room_message(member, message)
                for at, message in kept:
                    if position is None or at.epoch != position.epoch or at.offset > position.offset:
                        self._offer_room_message(member, message)
        return result

    def _offer_room_message(self, member: Member, message: HubMessage) -> None:
        # As a fan-out would: a plain message is the default wire format's.
        if isinstance(message, MessageVariants):
            frames = message.variant(member.wire_format)
        else:
            frames = message if member.wire_format is None else None
        if frames is not None:
            self._offer(member, frames)

    def _parse_entries(self, entries: list[tuple[StreamPosition, HubEnvelope]], member: Member) -> list[HubMessage]:
        """The messages of ``entries`` to replay to ``member`` (an entry sent ``within``: only if it reached it)."""
        messages = []
        for position, envelope in entries:
            try:
                entry = parse_stream_entry(envelope, position)
            except (TypeError, ValueError) as err:
                self.stats.remote_malformed += 1
                logger.warning("ignored a malformed stream entry: %s", err)
                continue
            if entry.within is None or (member.id not in entry.exclude and _reaches(entry, member)):
                messages.append(entry.message)
        return messages

    def _stream_position(self, room: str) -> StreamPosition | None:
        streams = self._streams
        cursor = None if streams is None else streams.stream_cursor(room)
        return None if cursor is None else cursor.position


def _reaches(entry: RoomMessage, member: Member) -> bool:
    """Whether an entry of a streamed room is for ``member`` (see ``within``)."""
    within = entry.within
    return within is None or member.id == within or within in member._rooms
