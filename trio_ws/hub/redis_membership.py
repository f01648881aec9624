"""This process's membership in Redis: the keys of the Redis backend, written, refreshed and read.

Part of :class:`~trio_ws.hub.redis.RedisBackend` (a mixin of it; the names
and their meaning are described there). The backend keeps its membership in
memory (``_rooms``, ``_members``) so that it can write all of it again after
a reconnection; every write bumps ``_version`` so that a rewrite racing a
change is redone, and a write that fails or is skipped while the link is
down marks the state ``_dirty`` for the next heartbeat to rewrite.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Awaitable, Callable
from functools import partial
from typing import TYPE_CHECKING, Any

import trio

from .backend import BackendSink
from .redis_link import RedisLink

if TYPE_CHECKING:
    from .redis import AnyClient, AnyPipeline

__all__ = ["RedisMembership"]

logger = logging.getLogger("trio_ws.hub.redis")

# Deletes KEYS[1] only while it still names this process (ids may move).
_DELETE_IF_OURS = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0"
# Drops a process from a room's index once its member set is gone (expired).
_FORGET_IF_GONE = "if redis.call('exists', KEYS[2]) == 0 then return redis.call('srem', KEYS[1], ARGV[1]) end return 0"


class RedisMembership(RedisLink):
    """The membership half of :class:`~trio_ws.hub.redis.RedisBackend` (not used on its own)."""

    _prefix: str
    _rooms: dict[str, set[str]]
    _members: set[str]
    _version: int
    _dirty: bool
    _ttl_ms: int
    _generation_number: int
    _ops: deque[tuple[int, str, Callable[[], Awaitable[Any]], trio.Event]]
    _ops_queued: trio.Event
    _op_running: trio.Event | None

    def _members_key(self, room: str, process_id: str) -> str:
        return f"{self._prefix}:members:{{{room}}}:{process_id}"

    def _procs_key(self, room: str) -> str:
        return f"{self._prefix}:procs:{{{room}}}"

    def _member_key(self, member_id: str) -> str:
        return f"{self._prefix}:member:{{{member_id}}}"


    def _reconcile(self, sink: BackendSink) -> tuple[list[str], list[str]]:
        """Align with the hub, the authority on who is here; returns the members and rooms dropped.

        A removal the hub started but could not finish (cancelled) would
        otherwise keep a member alive in Redis for as long as we refresh it.
        """
        local, rooms = sink.local_member_ids(), sink.subscribed_rooms()
        gone_members = sorted(self._members - local)
        if local - self._members or gone_members:
            self._members = set(local)
            self._dirty = True
        gone_rooms = []
        for room, ids in list(self._rooms.items()):
            before = len(ids)
            ids &= local
            if not ids or room not in rooms:
                del self._rooms[room]
                gone_rooms.append(room)
            elif len(ids) != before:
                self._dirty = True
        if gone_members or gone_rooms:
            self._version += 1
        return gone_members, gone_rooms

    def _delete_stale(self, members: list[str], rooms: list[str], pipe: AnyPipeline) -> list[Any]:
        for room in rooms:
            pipe.delete([self._members_key(room, self.process_id)])
            pipe.srem(self._procs_key(room), [self.process_id])
        for member_id in members:
            pipe.eval(_DELETE_IF_OURS, [self._member_key(member_id)], [self.process_id])
        return []

    # The rewrite of a process's membership runs as one transaction (a reader
    # never sees a set half rewritten); a cluster cannot, its rooms span slots.
    _atomic_rewrite = True

    def _bulk_timeout(self) -> float:
        # A full rewrite sends one command per member and five per room.
        commands = len(self._members) + sum(len(ids) + 5 for ids in self._rooms.values())
        return self._timeout * (1 + commands / 10_000)

    async def _register_all(self, client: AnyClient) -> None:
        """Rewrite this process's membership (after a reconnect or a failed write)."""
        for _ in range(3):
            version = self._version
            rooms = {room: sorted(ids) for room, ids in self._rooms.items()}
            members = sorted(self._members)
            if rooms or members:
                await self._pipeline(
                    partial(self._write_all, rooms, members),
                    transaction=self._atomic_rewrite,
                    budget=self._bulk_timeout(),
                )
            if version == self._version:
                self._dirty = False
                return
        self._dirty = True

    def _write_all(self, rooms: dict[str, list[str]], members: list[str], pipe: AnyPipeline) -> list[Any]:
        for room, ids in rooms.items():
            key = self._members_key(room, self.process_id)
            pipe.delete([key])
            if not ids:
                pipe.srem(self._procs_key(room), [self.process_id])
                continue
            pipe.sadd(key, ids)
            pipe.pexpire(key, self._ttl_ms)
            pipe.sadd(self._procs_key(room), [self.process_id])
            pipe.pexpire(self._procs_key(room), self._ttl_ms)
        for member_id in members:
            pipe.set(self._member_key(member_id), self.process_id, px=self._ttl_ms)
        return []

    async def _refresh(self, client: AnyClient, sink: BackendSink) -> None:
        gone_members, gone_rooms = self._reconcile(sink)
        if gone_members or gone_rooms:
            await self._pipeline(partial(self._delete_stale, gone_members, gone_rooms))
        if self._dirty:
            await self._register_all(client)
            return
        rooms, members = list(self._rooms), list(self._members)

        def build(pipe: AnyPipeline) -> list[Any]:
            checks = []
            for room in rooms:
                checks.append(pipe.pexpire(self._members_key(room, self.process_id), self._ttl_ms))
                pipe.sadd(self._procs_key(room), [self.process_id])
                pipe.pexpire(self._procs_key(room), self._ttl_ms)
            checks.extend(pipe.pexpire(self._member_key(member_id), self._ttl_ms) for member_id in members)
            return checks

        if (rooms or members) and not all(await self._pipeline(build)):
            # A key vanished (Redis restarted or was flushed): write it all again.
            await self._register_all(client)

    # -- the writer: membership writes and subscription changes, in order --------
    async def _run_op(self, what: str, op: Callable[[], Awaitable[Any]]) -> None:
        """Run ``op`` in the writer task, after the ones queued before, and wait until it is done or the link is down.

        While the link is up the caller waits for its own operation, however
        slow Redis is to answer: when this returns with the link still up, the
        write (or subscription) is in Redis, so what the caller does next
        (another process's publish, a membership read) sees it. The wait ends
        early only when the link is declared down (an error, or a command of
        the link, this one included, unanswered for ``command_timeout``):
        then a paused Redis holds a caller up for at most ``command_timeout``,
        the hub receives ``down``, and the next connection writes the
        membership again and resubscribes from the hub's state before it
        reports ``up``. Skipped at once while the link is down (same rewrite).
        An error reply from Redis (not a transport failure) also ends the
        wait; the next heartbeat writes the membership again. Cancelling the
        wait is safe (the operation still runs).
        """
        if not self._up:
            self._dirty = True
            return
        done = trio.Event()
        self._ops.append((self._generation_number, what, op, done))
        self._ops_queued.set()
        await done.wait()

    def _release_writes(self) -> None:
        """The link is down: the callers waiting for the writer stop waiting (the next generation rewrites all)."""
        for _, _, _, done in self._ops:
            done.set()
        if self._op_running is not None:
            self._op_running.set()

    async def _writer(self) -> None:
        """Run the queued operations in order (one Redis round trip each), for as long as the backend runs."""
        while True:
            await self._ops_queued.wait()
            self._ops_queued = trio.Event()
            while self._ops:
                generation, what, op, done = self._ops.popleft()
                if not self._up or generation != self._generation_number:
                    # Queued before the link was lost: the new generation rewrote the
                    # state after this change, and running it late could undo a later one.
                    self._dirty = True
                    done.set()
                    continue
                self._op_running = done
                try:
                    await op()
                except Exception as exc:
                    self._dirty = True
                    self._failed(what, exc)
                finally:
                    self._op_running = None
                    done.set()

    async def _write(self, what: str, build: Callable[[AnyPipeline], list[Any]]) -> None:
        # A write that fails marks the state dirty: the next heartbeat writes it all again.
        self._version += 1
        await self._run_op(what, partial(self._pipeline, build))

    async def add_member(self, member_id: str, room: str | None) -> None:
        """Record a local member (``room`` None) or its joining ``room``.

        Never raises; a write that fails is redone by the next heartbeat.
        Returns once the write is in Redis, or once the link is declared down
        (at most ``command_timeout`` after Redis stops answering; the next
        connection writes it). Cancelling is safe (the member is recorded
        and its write queued before the first checkpoint); concurrent calls
        are allowed and written in order.
        """
        self._members.add(member_id)
        if room is None:
            key = self._member_key(member_id)
            await self._write("add member", lambda pipe: [pipe.set(key, self.process_id, px=self._ttl_ms)])
            return
        self._rooms.setdefault(room, set()).add(member_id)
        members_key, procs_key = self._members_key(room, self.process_id), self._procs_key(room)

        def build(pipe: AnyPipeline) -> list[Any]:
            pipe.sadd(members_key, [member_id])
            pipe.pexpire(members_key, self._ttl_ms)
            pipe.sadd(procs_key, [self.process_id])
            pipe.pexpire(procs_key, self._ttl_ms)
            return []

        await self._write("join", build)

    async def remove_member(self, member_id: str, room: str | None) -> None:
        """Record that a local member left ``room``, or is gone (``room`` None).

        Never raises; what a failed write leaves behind expires within
        ``member_ttl``. Waits, and may be cancelled or called concurrently, as
        :meth:`add_member`.
        """
        if room is None:
            self._members.discard(member_id)
            for name, ids in list(self._rooms.items()):  # normally empty: the hub left each room first
                ids.discard(member_id)
                if not ids:
                    del self._rooms[name]
            key = self._member_key(member_id)
            await self._write("remove member", lambda pipe: [pipe.eval(_DELETE_IF_OURS, [key], [self.process_id])])
            return
        ids = self._rooms.get(room, set())
        ids.discard(member_id)
        if ids:
            key = self._members_key(room, self.process_id)
            await self._write("leave", lambda pipe: [pipe.srem(key, [member_id])])
        else:
            self._rooms.pop(room, None)
            await self._forget_room(room)

    async def _forget_room(self, room: str) -> None:
        members_key, procs_key = self._members_key(room, self.process_id), self._procs_key(room)

        def build(pipe: AnyPipeline) -> list[Any]:
            pipe.delete([members_key])
            pipe.srem(procs_key, [self.process_id])
            return []

        await self._write("leave room", build)

    async def room_members(self, room: str) -> set[str] | None:
        """Every process's members of ``room``, or None while the link is down.

        Another process's members are listed until its keys expire (at most
        ``member_ttl`` after it died). Never raises. Cancelling is safe: a
        read in progress finishes first (shielded, within ``command_timeout``:
        coredis drops a connection whose command is cancelled), then the call
        ends. Concurrent calls are allowed.
        """
        client = self._client
        if client is None or not self._up:
            return None
        found = set(self._rooms.get(room, ()))
        try:
            with trio.CancelScope(shield=True), trio.fail_after(self._timeout):  # see _pipeline
                others = [pid for pid in await client.smembers(self._procs_key(room)) if pid != self.process_id]
            sets = await self._pipeline(lambda pipe: [pipe.smembers(self._members_key(room, p)) for p in others])
        except Exception as exc:
            self._failed("room members", exc)
            return None
        gone = []
        for process_id, members in zip(others, sets, strict=True):
            found.update(members)
            if not members:
                gone.append(process_id)
        if gone:
            keys = {p: [self._procs_key(room), self._members_key(room, p)] for p in gone}
            try:
                await self._pipeline(lambda pipe: [pipe.eval(_FORGET_IF_GONE, keys[p], [p]) for p in gone])
            except Exception as exc:
                self._failed("index cleanup", exc)
        return found

    async def _unregister(self) -> None:
        rooms, members = list(self._rooms), list(self._members)
        if not (rooms or members):
            return
        try:
            async with self._client_factory() as client, client.pipeline(transaction=False) as pipe:
                self._delete_stale(members, rooms, pipe)
        except Exception as exc:
            logger.info("could not remove the membership of %s: %s: %s", self.process_id, type(exc).__name__, exc)
