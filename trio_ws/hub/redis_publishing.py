"""Publishing for the Redis backend: one queue, one shielded publisher task, batches.

Part of :class:`~trio_ws.hub.redis.RedisBackend` (a mixin of it). Publishing
only queues an envelope (with its sequence number) and never waits for Redis;
the publisher task sends what is queued, many envelopes per round trip, on a
client of its own renewed with each generation of the link. Envelopes queued
in a generation that was lost are dropped, never sent late.
"""

from __future__ import annotations

import json
import logging
from abc import abstractmethod
from contextlib import AsyncExitStack
from typing import TYPE_CHECKING, Any

import trio

from .envelopes import HubEnvelope
from .redis_link import RedisLink

if TYPE_CHECKING:
    from .redis import AnyClient, AnyPipeline, RedisBackendStats

__all__ = ["RedisPublishing"]

logger = logging.getLogger("trio_ws.hub.redis")

MAX_SEQ_ENTRIES = 65_536
# One PUBLISH carries at most this many envelopes, or about this many characters.
_MAX_BATCH = 256
_MAX_BATCH_CHARS = 256 * 1024
# The publisher sends at most this many envelopes in one pipeline.
_MAX_PIPELINE = 4096


class RedisPublishing(RedisLink):
    """The publishing half of :class:`~trio_ws.hub.redis.RedisBackend` (not used on its own)."""

    stats: RedisBackendStats
    _stopping: bool
    _generation_number: int
    _send_seq: dict[str, int]
    _outgoing: trio.MemorySendChannel[tuple[int, str, str]] | None
    _publisher_scope: trio.CancelScope | None

    @abstractmethod
    def _publish_command(self, target: AnyClient | AnyPipeline, channel: str, data: str) -> Any:
        """Queue or send one PUBLISH (SPUBLISH on a cluster); returns its request."""

    @abstractmethod
    def room_channel(self, room: str) -> str:
        """The pub/sub channel of ``room``."""

    @abstractmethod
    def process_channel(self, process_id: str) -> str:
        """The pub/sub channel of one process."""

    @property
    @abstractmethod
    def global_channel(self) -> str:
        """The pub/sub channel every process listens to."""

    @abstractmethod
    def _member_key(self, member_id: str) -> str:
        """The key naming the process of ``member_id``."""

    def _publish(self, channel: str, envelope: HubEnvelope) -> bool:
        """Queue an envelope with the next sequence number; False if it is lost.

        Never waits for Redis: the publisher task sends what is queued, in
        order, many envelopes per round trip.
        """
        seq = self._send_seq.get(channel, 0) + 1
        if seq == 1 and len(self._send_seq) >= MAX_SEQ_ENTRIES:
            self._send_seq.clear()
        self._send_seq[channel] = seq  # counted even if lost: receivers see the gap
        outgoing = self._outgoing
        if outgoing is None or not self._up:
            self.stats.publish_failed += 1
            return False
        data = json.dumps({**envelope, "seq": seq}, separators=(",", ":"), ensure_ascii=False)
        try:
            outgoing.send_nowait((self._generation_number, channel, data))
        except (trio.WouldBlock, trio.BrokenResourceError, trio.ClosedResourceError):
            self.stats.publish_failed += 1
            return False
        return True

    async def _publisher(self, receive: trio.MemoryReceiveChannel[tuple[int, str, str]]) -> None:
        """Send the queued envelopes: one pipeline per round trip, one PUBLISH per run of a channel.

        While a pipeline is in flight new envelopes queue up and go in the
        next one, so the batch grows with the load and an envelope waits at
        most for the round trip ahead of it (nothing waits on an idle link).
        Consecutive envelopes to one channel travel as one JSON array, so the
        order of everything this process publishes is kept. It has a client
        of its own, renewed with each generation, and is shielded: when the
        backend stops, it sends what is queued (within ``command_timeout``)
        before it ends, so a publish-only client that exits at once loses
        nothing.
        """
        with trio.CancelScope(shield=True) as self._publisher_scope:
            async with AsyncExitStack() as stack:
                client: AnyClient | None = None
                client_generation = -1
                async for first in receive:
                    batch = [first, *self._take(receive)]
                    current = [(channel, data) for number, channel, data in batch if number == self._generation_number]
                    self.stats.publish_failed += len(batch) - len(current)  # queued before the link was lost
                    if not current or not (self._up or self._stopping):
                        self.stats.publish_failed += len(current)
                        continue
                    if client is None or client_generation != self._generation_number:
                        client = None
                        try:
                            await stack.aclose()
                            # Not under a timeout: the client's task group must outlive this
                            # statement (connect_timeout bounds the connection).
                            opened: AnyClient = await stack.enter_async_context(self._client_factory())
                        except Exception as exc:
                            self.stats.publish_failed += len(current)
                            self._failed("publisher connection", exc)
                            continue
                        client, client_generation = opened, self._generation_number
                    await self._send_batch(client, current)
                    await trio.lowlevel.checkpoint()

    async def _stop_publisher_when_cancelled(self, outgoing: trio.MemorySendChannel[tuple[int, str, str]]) -> None:
        try:
            await trio.sleep_forever()
        finally:
            # The publisher drains the queue and ends; command_timeout bounds it.
            self._stopping = True
            outgoing.close()
            if self._publisher_scope is not None:
                self._publisher_scope.deadline = trio.current_time() + self._timeout

    @staticmethod
    def _take(receive: trio.MemoryReceiveChannel[tuple[int, str, str]]) -> list[tuple[int, str, str]]:
        taken: list[tuple[int, str, str]] = []
        while len(taken) < _MAX_PIPELINE:
            try:
                taken.append(receive.receive_nowait())
            except (trio.WouldBlock, trio.EndOfChannel):
                break
        return taken

    async def _send_batch(self, client: AnyClient, batch: list[tuple[str, str]]) -> None:
        runs: list[tuple[str, list[str]]] = []
        size = 0
        for channel, data in batch:
            if runs and runs[-1][0] == channel and len(runs[-1][1]) < _MAX_BATCH and size < _MAX_BATCH_CHARS:
                runs[-1][1].append(data)
                size += len(data)
            else:
                runs.append((channel, [data]))
                size = len(data)

        def build(pipe: AnyPipeline) -> list[Any]:
            return [
                self._publish_command(pipe, channel, datas[0] if len(datas) == 1 else f"[{','.join(datas)}]")
                for channel, datas in runs
            ]

        try:
            await self._pipeline(build, client=client)
        except Exception as exc:
            self.stats.publish_failed += len(batch)
            self._failed(f"publish of {len(batch)} envelope(s)", exc)
            return
        self.stats.published += len(batch)

    async def publish_room(self, room: str, envelope: HubEnvelope) -> bool:
        """Publish to the processes subscribed to ``room``.

        Never waits for Redis: the envelope is queued and sent in order by
        the publisher task, batched with the others (local delivery is never
        held up by a slow or paused Redis).

        Returns:
            True when it was queued while the link was up; False when the
            link is down or the queue (``publish_queue_size``) is full: the
            envelope is lost. One queued but not sent because the link failed
            meanwhile is lost too, and counted in ``stats.publish_failed``;
            receivers see the gap. Never raises and never yields to other
            tasks (a burst of broadcasts is queued whole, and the members'
            senders then write it in one go); cancelling it is safe;
            concurrent calls are allowed and keep their order.
        """
        return self._publish(self.room_channel(room), envelope)

    async def publish_all(self, envelope: HubEnvelope) -> bool:
        """Publish to every process; False if not queued.

        Never raises, never yields, cancelling is safe and concurrent calls
        are allowed, as for :meth:`publish_room`.
        """
        return self._publish(self.global_channel, envelope)

    async def publish_to_member(self, member_id: str, envelope: HubEnvelope) -> bool:
        """Publish to the process holding ``member_id``.

        Looks the member up in Redis (this waits for Redis, at most
        ``command_timeout``), then queues the envelope like :meth:`publish_room`.

        Returns:
            True when the member's process was found and the envelope queued
            for it; False when the id is unknown, the link is down or the
            command failed. Never raises. Cancelling is safe: the lookup in
            progress finishes (shielded, within ``command_timeout``) and the
            envelope is queued as if the call had not been cancelled.
            Concurrent calls are allowed.
        """
        client = self._client
        if client is None or not self._up:
            self.stats.publish_failed += 1
            return False
        try:
            # Shielded: coredis drops a connection whose command is cancelled (see _pipeline).
            with trio.CancelScope(shield=True), trio.fail_after(self._timeout):
                process_id = await client.get(self._member_key(member_id))
        except Exception as exc:
            self.stats.publish_failed += 1
            self._failed("member lookup", exc)
            return False
        if process_id is None or process_id == self.process_id:
            return False
        return self._publish(self.process_channel(process_id), envelope)
