"""Rooms with history on the Redis backend: each is a Redis Stream, read by every process that serves it.

Part of :class:`~trio_ws.hub.redis.RedisBackend` (a mixin of it).

Theory of operation. A broadcast to a room with history is *appended* to the
room's stream by a script that runs atomically in Redis: it creates the
room's epoch if there is none (``SET NX``: a random id that lives as long as
Redis keeps the room's data), gives the entry the next id, links it to the
previous entry's id (field ``p``), and trims the oldest entries beyond the
room's :class:`~trio_ws.hub.history.HistoryPolicy` (count, bytes, age). The
entry id ``MS-SEQ`` is this room's *offset* ``MS * 1024 + SEQ`` (SEQ stays
below 1024, so an offset is an integer that JavaScript holds exactly until
the year 2248). Appends wait in a queue of their own while the link is
down and are sent, in order, when it returns; each carries a sequence number
per (room, backend instance), and the script skips one it has already
applied, so a retry after a failure never appends twice.

Every process reads the streams of the rooms it has members in: one
*reader* task per generation of the link, on a connection of its own, sends
``XREAD BLOCK`` for all of them at once, each from the id it delivered last
(its *cursor*), and hands each entry to the hub with its position. The
process that published a message receives it this way too, so every member
of a room, in every process, sees the room's messages in the stream's order.
A cursor outlives the generation: after an outage the next reader goes on
from it, so nothing appended meanwhile is missed or delivered twice. Before
it reads, the reader checks each room's epoch: a different one means Redis
lost the room's data (restarted empty); the cursor then starts at the new
stream's beginning and the hub is told (a ``gap`` event). An entry whose
``p`` is not the cursor's id shows that entries were trimmed before this
process read them (it was away longer than the history lasts): also a
``gap`` event. A new room for the reader wakes it with an entry on this
process's own *wake* stream, which every ``XREAD`` includes.

Names (``P`` is the prefix; ``{ROOM}`` is a hash tag, as for the other keys
of a room): ``P:stream:{ROOM}`` (the stream; fields ``e`` epoch, ``p``
previous id, ``d`` the envelope as JSON), ``P:epoch:{ROOM}`` (the epoch),
``P:meta:{ROOM}`` (a hash: ``last`` id, ``bytes`` kept, ``s:INSTANCE`` the
last sequence number applied per backend instance) and ``P:wake:{PID}``.
"""

from __future__ import annotations

import json
import logging
import secrets
from abc import abstractmethod
from collections import deque
from contextlib import AsyncExitStack
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

import trio

from .backend import BackendEvent, BackendSink
from .envelopes import HubEnvelope
from .history import HistoryLost, HistoryPolicy, StreamPosition
from .redis_link import RedisLink

if TYPE_CHECKING:
    from .redis import AnyClient, AnyPipeline, RedisBackendStats

__all__ = ["RedisStreams", "StreamCursor", "offset_of", "entry_id"]

logger = logging.getLogger("trio_ws.hub.redis")

#: An offset is ``MS * SEQ_SPAN + SEQ`` for the entry id ``MS-SEQ``.
SEQ_SPAN = 1024
# Entries one XREAD returns per stream, and appends sent in one pipeline.
_READ_COUNT = 512
_APPEND_BATCH = 512

# KEYS: stream, epoch, meta. ARGV: new epoch, data, instance, seq, max count,
# max bytes, max age (ms), ttl (ms) ('' = no bound). Returns {epoch, id}
# ({epoch, ''} for an append already applied).
_APPEND = """
if redis.replicate_commands then redis.replicate_commands() end
local epoch = redis.call('GET', KEYS[2])
if not epoch then
  epoch = ARGV[1]
  redis.call('SET', KEYS[2], epoch, 'NX')
end
local field = 's:' .. ARGV[3]
local seq = tonumber(ARGV[4])
if seq <= tonumber(redis.call('HGET', KEYS[3], field) or '0') then return {epoch, ''} end
local prev = redis.call('HGET', KEYS[3], 'last') or '0-0'
local dash = string.find(prev, '-', 1, true)
local ms = tonumber(string.sub(prev, 1, dash - 1))
local sq = tonumber(string.sub(prev, dash + 1))
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if now > ms then ms, sq = now, 0 elseif sq < 1023 then sq = sq + 1 else ms, sq = ms + 1, 0 end
local id = string.format('%d-%d', ms, sq)
redis.call('XADD', KEYS[1], id, 'e', epoch, 'p', prev, 'd', ARGV[2])
local bytes = tonumber(redis.call('HINCRBY', KEYS[3], 'bytes', string.len(ARGV[2])))
redis.call('HSET', KEYS[3], 'last', id, field, seq)
local count = redis.call('XLEN', KEYS[1])
local max_count = tonumber(ARGV[5])
local max_bytes = tonumber(ARGV[6])
local horizon = nil
if ARGV[7] ~= '' then horizon = now - tonumber(ARGV[7]) end
while count > 0 do
  local oldest = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', 1)[1]
  local od = string.find(oldest[1], '-', 1, true)
  local old_ms = tonumber(string.sub(oldest[1], 1, od - 1))
  local over = (max_count and count > max_count) or (max_bytes and bytes > max_bytes)
  if not (over or (horizon and old_ms <= horizon)) then break end
  local size = 0
  for i = 1, #oldest[2], 2 do
    if oldest[2][i] == 'd' then size = string.len(oldest[2][i + 1]) end
  end
  redis.call('XDEL', KEYS[1], oldest[1])
  bytes = tonumber(redis.call('HINCRBY', KEYS[3], 'bytes', -size))
  count = count - 1
end
if ARGV[8] ~= '' then
  for k = 1, 3 do redis.call('PEXPIRE', KEYS[k], ARGV[8]) end
end
return {epoch, id}
"""

# KEYS: epoch, meta. ARGV: new epoch. Returns {epoch, last id} (creating the epoch).
_POSITION = """
local epoch = redis.call('GET', KEYS[1])
if not epoch then
  epoch = ARGV[1]
  redis.call('SET', KEYS[1], epoch, 'NX')
end
return {epoch, redis.call('HGET', KEYS[2], 'last') or '0-0'}
"""


def offset_of(entry: str) -> int:
    """The offset of a stream entry id ``MS-SEQ``.

    Raises:
        ValueError: when ``entry`` is not such an id (SEQ below 1024).
    """
    ms, _, seq = entry.partition("-")
    number = int(seq)
    if not 0 <= number < SEQ_SPAN:
        raise ValueError(f"stream entry id {entry!r} has a sequence number outside 0..{SEQ_SPAN - 1}")
    return int(ms) * SEQ_SPAN + number


def entry_id(offset: int) -> str:
    """The stream entry id of an offset (the inverse of :func:`offset_of`)."""
    return f"{offset // SEQ_SPAN}-{offset % SEQ_SPAN}"


def _bound(value: float | None, scale: float = 1) -> str:
    return "" if value is None else str(max(1, int(value * scale)))


@dataclass
class StreamCursor:
    """Where this process reads a room's stream: the epoch and the id it delivered last.

    ``epoch`` is None until it is known (the room was opened while the link was down).
    """

    epoch: str | None
    last: str

    @property
    def position(self) -> StreamPosition | None:
        """The position of the last entry delivered (None while the epoch is unknown)."""
        return None if self.epoch is None else StreamPosition(self.epoch, offset_of(self.last))


@dataclass
class _Append:
    room: str
    data: str
    seq: int
    policy: HistoryPolicy


class RedisStreams(RedisLink):
    """The streams half of :class:`~trio_ws.hub.redis.RedisBackend` (not used on its own)."""

    stats: RedisBackendStats
    _prefix: str
    _stopping: bool
    _publish_queue_size: int
    heartbeat_interval: float

    @abstractmethod
    def _lose(self, reason: str) -> None:
        """End the current generation."""

    def _init_streams(self) -> None:
        self._cursors: dict[str, StreamCursor] = {}
        self._opening: dict[str, trio.Event] = {}
        self._append_seq: dict[str, int] = {}
        self._instance = secrets.token_hex(8)
        self._link_up = trio.Event()
        self._rooms_changed = trio.Event()
        self._appends: trio.MemorySendChannel[_Append] | None = None
        self._appender_scope: trio.CancelScope | None = None

    # -- names -----------------------------------------------------------------
    def stream_key(self, room: str) -> str:
        """The Redis Stream of ``room`` (a room with history)."""
        return f"{self._prefix}:stream:{{{room}}}"

    def _epoch_key(self, room: str) -> str:
        return f"{self._prefix}:epoch:{{{room}}}"

    def _meta_key(self, room: str) -> str:
        return f"{self._prefix}:meta:{{{room}}}"

    def _wake_key(self) -> str:
        return f"{self._prefix}:wake:{{{self.process_id}}}"

    # -- the link's state ---------------------------------------------------------
    def _streams_up(self) -> None:
        self._link_up.set()

    def _streams_down(self) -> None:
        if self._link_up.is_set():
            self._link_up = trio.Event()
        self._rooms_changed = trio.Event()

    # -- appending ---------------------------------------------------------------
    async def append_stream(self, room: str, envelope: HubEnvelope, policy: HistoryPolicy) -> bool:
        """Append an envelope to ``room``'s stream, trimmed to ``policy``.

        Never waits for Redis: the append is queued and sent in order by the
        appender task. While the link is down it waits in the queue and is
        sent when the link returns (at least once; the script skips a retry
        it already applied).

        Returns:
            True when queued; False when the queue (``publish_queue_size``)
            is full or the backend is not running: the message is lost and
            counted in ``stats.publish_failed``. Never raises; cancelling it
            is safe; concurrent calls are allowed and keep their order.
        """
        appends = self._appends
        seq = self._append_seq.get(room, 0) + 1
        self._append_seq[room] = seq
        data = json.dumps(envelope, separators=(",", ":"), ensure_ascii=False)
        try:
            if appends is None:
                raise trio.ClosedResourceError
            appends.send_nowait(_Append(room, data, seq, policy))
        except (trio.WouldBlock, trio.BrokenResourceError, trio.ClosedResourceError):
            self.stats.publish_failed += 1
            return False
        return True

    async def _appender(self, receive: trio.MemoryReceiveChannel[_Append]) -> None:
        """Send the queued appends, many per round trip; keep them across outages until sent."""
        pending: deque[_Append] = deque()
        with trio.CancelScope(shield=True) as self._appender_scope:
            async with AsyncExitStack() as stack:
                client: AnyClient | None = None
                client_link: trio.Event | None = None
                while True:
                    if not pending:
                        try:
                            pending.append(await receive.receive())
                        except trio.EndOfChannel:
                            return
                    while len(pending) < _APPEND_BATCH:
                        try:
                            pending.append(receive.receive_nowait())
                        except (trio.WouldBlock, trio.EndOfChannel):
                            break
                    link = self._link_up
                    if not link.is_set():
                        if self._stopping:
                            self.stats.publish_failed += len(pending)
                            return
                        await link.wait()
                        continue
                    if client is None or client_link is not link:
                        client = None
                        try:
                            await stack.aclose()
                            client = await stack.enter_async_context(self._client_factory())
                            client_link = link
                        except Exception as exc:
                            self._failed("stream appender connection", exc)
                            await trio.sleep(self.heartbeat_interval)
                            continue
                    batch = list(pending)[:_APPEND_BATCH]
                    try:
                        await self._pipeline(partial(self._append_all, batch), client=client)
                    except Exception as exc:
                        self._failed(f"append of {len(batch)} stream entries", exc)
                        if self._link_up is link:  # not a link failure: the entries were refused
                            logger.warning("dropped %d stream entries Redis refused", len(batch))
                            self.stats.publish_failed += len(batch)
                            for _ in batch:
                                pending.popleft()
                        continue
                    for _ in batch:
                        pending.popleft()
                    self.stats.published += len(batch)

    def _append_all(self, batch: list[_Append], pipe: AnyPipeline) -> list[Any]:
        return [self._append(pipe, append) for append in batch]

    def _append(self, pipe: AnyPipeline, append: _Append) -> Any:
        room, policy = append.room, append.policy
        ttl = None if policy.max_age is None else 2 * policy.max_age + 60
        args = [
            secrets.token_hex(8),
            append.data,
            self._instance,
            str(append.seq),
            _bound(policy.max_messages),
            _bound(policy.max_bytes),
            _bound(policy.max_age, 1000),
            _bound(ttl, 1000),
        ]
        return pipe.eval(_APPEND, [self.stream_key(room), self._epoch_key(room), self._meta_key(room)], args)

    async def _stop_appender(self) -> None:
        try:
            await trio.sleep_forever()
        finally:
            if self._appends is not None:
                self._appends.close()
            if self._appender_scope is not None:
                self._appender_scope.deadline = trio.current_time() + self._timeout

    # -- which rooms this process reads ---------------------------------------------
    def stream_cursor(self, room: str) -> StreamCursor | None:
        """Where this process reads ``room``'s stream, or None when it does not read it."""
        return self._cursors.get(room)

    async def open_stream(self, room: str) -> StreamPosition | None:
        """Start reading ``room``'s stream; the position from which its entries will be delivered.

        When this process reads the room already, its cursor's position (no
        Redis command). Otherwise the stream's newest position, read from
        Redis within ``command_timeout``. While the link is down (or the
        read fails) the reader starts at the stream's end when the link
        returns, and this returns None. Never raises; cancelling it is safe
        (the room is then read anyway, until :meth:`close_stream`);
        concurrent calls are allowed.
        """
        while room in self._opening:
            await self._opening[room].wait()
        cursor = self._cursors.get(room)
        if cursor is not None:
            return cursor.position
        cursor = self._cursors[room] = StreamCursor(None, "0-0")
        client = self._client
        if client is None or not self._up:
            return None
        done = self._opening[room] = trio.Event()
        try:
            with trio.CancelScope(shield=True), trio.fail_after(self._timeout):
                keys = [self._epoch_key(room), self._meta_key(room)]
                answer: Any = await client.eval(_POSITION, keys, [secrets.token_hex(8)])
                epoch, last = answer
            if self._cursors.get(room) is cursor and cursor.epoch is None:
                cursor.epoch, cursor.last = str(epoch), str(last)
            await self._wake_reader(client)
        except Exception as exc:
            self._failed(f"opening the stream of {room!r}", exc)
        finally:
            del self._opening[room]
            done.set()
        return cursor.position

    def close_stream(self, room: str) -> None:
        """Stop reading ``room``'s stream (the last local member left). Never raises."""
        if self._cursors.pop(room, None) is not None:
            self._rooms_changed.set()

    async def _wake_reader(self, client: AnyClient) -> None:
        """Make the reader read a room it did not (its XREAD includes this process's wake stream)."""
        self._rooms_changed.set()
        if not self._per_room_readers:
            with trio.CancelScope(shield=True), trio.move_on_after(self._timeout):
                await client.xadd(self._wake_key(), {"w": "1"}, trim_strategy="MAXLEN", threshold=1)  # type: ignore[arg-type]

    async def read_stream(
        self, room: str, since: StreamPosition, until: StreamPosition, limit: int
    ) -> list[tuple[StreamPosition, HubEnvelope]]:
        """The entries of ``room`` after ``since`` up to ``until``, oldest first.

        Args:
            room: the room.
            since: the position a client saw last.
            until: the position from which the reader delivers (the end of the range).
            limit: the most entries wanted: at most ``limit + 1`` are
                returned, so that the caller can tell there were more.

        Raises:
            HistoryLost: for another epoch (``"epoch"``), a position beyond
                ``until`` (``"ahead"``), entries after ``since`` already trimmed
                (``"trimmed"``), or Redis not answering within
                ``command_timeout`` (``"unavailable"``).

        Cancelling it is safe; concurrent calls are allowed.
        """
        if since.epoch != until.epoch:
            raise HistoryLost("epoch", f"epoch {since.epoch!r} is not the room's epoch {until.epoch!r}", until)
        if since.offset > until.offset:
            raise HistoryLost("ahead", f"offset {since.offset} is beyond the newest offset {until.offset}", until)
        if since.offset == until.offset:
            return []
        client = self._client
        if client is None or not self._up:
            raise HistoryLost("unavailable", "the link to Redis is down", until)
        start = entry_id(since.offset)
        try:
            with trio.CancelScope(shield=True), trio.fail_after(self._timeout):
                key = self.stream_key(room)
                entries = await client.xrange(key, f"({start}", entry_id(until.offset), count=limit + 1)
        except Exception as exc:
            self._failed(f"reading the stream of {room!r}", exc)
            raise HistoryLost("unavailable", f"reading the stream failed: {exc}", until) from None
        if not entries or entries[0].field_values.get("p") != start:
            raise HistoryLost("trimmed", f"entries after offset {since.offset} were trimmed", until)
        found = []
        for entry in entries:
            envelope = self._decode_entry(entry.field_values)
            if envelope is not None:
                found.append((StreamPosition(since.epoch, offset_of(str(entry.identifier))), envelope))
        return found

    def _decode_entry(self, fields: Any) -> HubEnvelope | None:
        try:
            envelope = json.loads(fields["d"])
        except (KeyError, TypeError, ValueError, RecursionError):
            envelope = None
        if not isinstance(envelope, dict):
            self.stats.malformed += 1
            return None
        return envelope

    # -- the reader ---------------------------------------------------------------
    #: One reader (and connection) per room instead of one for all: on a
    #: cluster a multi-key XREAD must stay within one hash slot.
    _per_room_readers = False

    async def _stream_reader(self, sink: BackendSink) -> None:
        """Read the streams of the rooms with local members, from their cursors; until the link fails."""
        if self._per_room_readers:
            await self._room_readers(sink)
            return
        try:
            async with self._client_factory() as client:
                await self._resync_cursors(client, sink)
                wake = "$"
                block = max(1, int(self.heartbeat_interval * 1000))
                while True:
                    rooms = {self.stream_key(room): room for room in self._cursors if self._cursors[room].epoch}
                    streams = {self._wake_key(): wake, **{key: self._cursors[room].last for key, room in rooms.items()}}
                    with trio.fail_after(self.heartbeat_interval + self._timeout):
                        reply = await client.xread(streams, count=_READ_COUNT, block=block)
                    for key, entries in (reply or {}).items():
                        if key == self._wake_key():
                            wake = str(entries[-1].identifier)
                            continue
                        room = rooms.get(str(key))
                        if room is not None:
                            self._deliver_entries(sink, room, entries)
                    if any(cursor.epoch is None for cursor in self._cursors.values()):
                        await self._resync_cursors(client, sink)
        except Exception as exc:
            # Any failure ends the generation: a reader that stopped would leave the rooms deaf.
            self._lose(f"stream reader: {type(exc).__name__}: {exc}")

    async def _room_readers(self, sink: BackendSink) -> None:
        """Run one :meth:`_room_reader` per room read, started and stopped as rooms come and go."""
        try:
            async with self._client_factory() as client, trio.open_nursery() as nursery:
                running: dict[str, trio.CancelScope] = {}
                while True:
                    self._rooms_changed = trio.Event()
                    if any(cursor.epoch is None for cursor in self._cursors.values()) or not running:
                        await self._resync_cursors(client, sink)
                    for room in [room for room in running if room not in self._cursors]:
                        running.pop(room).cancel()
                    for room, cursor in list(self._cursors.items()):
                        if room not in running and cursor.epoch is not None:
                            running[room] = await nursery.start(self._room_reader, sink, room)
                    with trio.move_on_after(self.heartbeat_interval):
                        await self._rooms_changed.wait()
        except Exception as exc:
            self._lose(f"stream readers: {type(exc).__name__}: {exc}")

    async def _room_reader(self, sink: BackendSink, room: str, task_status: trio.TaskStatus[trio.CancelScope]) -> None:
        """Read one room's stream on a connection of its own, until cancelled or the link fails."""
        with trio.CancelScope() as scope:
            task_status.started(scope)
            key = self.stream_key(room)
            block = max(1, int(self.heartbeat_interval * 1000))
            try:
                async with self._client_factory() as client:
                    while (cursor := self._cursors.get(room)) is not None:
                        with trio.fail_after(self.heartbeat_interval + self._timeout):
                            reply = await client.xread({key: cursor.last}, count=_READ_COUNT, block=block)
                        for entries in (reply or {}).values():
                            self._deliver_entries(sink, room, entries)
            except Exception as exc:
                self._lose(f"stream reader of {room!r}: {type(exc).__name__}: {exc}")

    async def _resync_cursors(self, client: AnyClient, sink: BackendSink) -> None:
        """Check every cursor's epoch against Redis; learn the position of rooms opened while down."""
        rooms = list(self._cursors)
        if not rooms:
            return
        answers = await self._pipeline(
            lambda pipe: [
                pipe.eval(_POSITION, [self._epoch_key(r), self._meta_key(r)], [secrets.token_hex(8)]) for r in rooms
            ],
            client=client,
        )
        for room, (epoch, last) in zip(rooms, answers, strict=True):
            cursor = self._cursors.get(room)
            if cursor is None:
                continue
            if cursor.epoch is None:
                cursor.epoch, cursor.last = str(epoch), str(last)
            elif cursor.epoch != epoch:
                detail = f"the history of {room!r} was lost in Redis (epoch {cursor.epoch} is now {epoch})"
                self._report_gap(sink, room, detail)
                cursor.epoch, cursor.last = str(epoch), "0-0"

    def _deliver_entries(self, sink: BackendSink, room: str, entries: Any) -> None:
        for entry in entries:
            cursor = self._cursors.get(room)
            if cursor is None:
                return
            fields = entry.field_values
            identifier = str(entry.identifier)
            epoch, previous = fields.get("e"), fields.get("p")
            if epoch != cursor.epoch:
                self._report_gap(sink, room, f"the history of {room!r} started over (epoch {epoch})")
                cursor.epoch = epoch = str(epoch)
            elif previous != cursor.last:
                detail = f"entries of {room!r} after {cursor.last} were trimmed before they were read"
                self._report_gap(sink, room, detail)
            cursor.last = identifier
            envelope = self._decode_entry(fields)
            if envelope is None:
                continue
            self.stats.received += 1
            try:
                sink.deliver_stream(room, StreamPosition(str(epoch), offset_of(identifier)), envelope)
            except Exception:
                self.stats.malformed += 1
                logger.exception("the hub failed on a stream entry of %s", room)

    def _report_gap(self, sink: BackendSink, room: str, detail: str) -> None:
        self.stats.gaps += 1
        sink.backend_event(BackendEvent("gap", detail=detail, room=room))
