"""Receiving for the Redis backend: decode what pub/sub delivers, hand it to the hub, spot gaps.

Part of :class:`~trio_ws.hub.redis.RedisBackend` (a mixin of it). The
subscriber reads with a ``get_message`` loop, decodes each message (one
envelope or a JSON array of them), skips this process's own envelopes and
takes back its probes, and hands the rest to the hub through a bounded
channel: when it is full an envelope is counted as dropped instead of
growing memory. A dispatcher task delivers what waits in one go, after
checking each envelope's ``seq`` against the last one seen from its origin on
its channel: a jump is reported to the hub as a ``gap`` event with the count
of envelopes missed.
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING

import trio

from .backend import BackendEvent, BackendSink
from .envelopes import HubEnvelope
from .redis_link import RedisLink
from .redis_publishing import MAX_SEQ_ENTRIES

if TYPE_CHECKING:
    from .redis import AnyPubSub, RedisBackendStats

__all__ = ["PROBE", "RedisReceiving"]

logger = logging.getLogger("trio_ws.hub.redis")

#: The field of the backend's own probe message (a name the hub's envelopes never use).
PROBE = "probe"


class RedisReceiving(RedisLink):
    """The receiving half of :class:`~trio_ws.hub.redis.RedisBackend` (not used on its own)."""

    stats: RedisBackendStats
    heartbeat_interval: float
    _prefix: str
    _handoff_size: int
    _handoff: trio.MemorySendChannel[tuple[str, HubEnvelope]] | None
    _probes: dict[int, float]
    _recv_seq: dict[tuple[str, str], int]

    async def _listen(self, pubsub: AnyPubSub) -> None:
        # A get_message loop, never `async for`: the latter ended silently
        # during reconnections in coredis 6.9 (the probe catches any silence).
        while True:
            message = await pubsub.get_message(timeout=self.heartbeat_interval)
            if message is not None and message["type"] == "message":
                self._on_message(str(message["channel"]), str(message["data"]))

    def _on_message(self, channel: str, data: str) -> None:
        # One message holds an envelope, or a batch of them (a JSON array).
        try:
            decoded = json.loads(data)
        except (ValueError, RecursionError):
            decoded = None
        for envelope in decoded if isinstance(decoded, list) else [decoded]:
            if isinstance(envelope, dict):
                self._on_envelope(channel, envelope)
            else:
                self.stats.malformed += 1

    def _on_envelope(self, channel: str, envelope: HubEnvelope) -> None:
        # The envelope is opaque here but for ``origin`` (ours are skipped) and
        # ``seq``; a probe is the backend's own message, ``{"probe": n, "origin": ...}``.
        if envelope.get("origin") == self.process_id:
            number = envelope.get(PROBE)
            if isinstance(number, int):
                for sent in [n for n in self._probes if n <= number]:
                    del self._probes[sent]
            else:
                self.stats.skipped_own += 1
            return
        self.stats.received += 1
        handoff = self._handoff
        try:
            if handoff is None:
                raise trio.WouldBlock
            handoff.send_nowait((channel, envelope))
        except (trio.WouldBlock, trio.BrokenResourceError, trio.ClosedResourceError):
            self.stats.dropped += 1

    async def _dispatch(self, sink: BackendSink, receive: trio.MemoryReceiveChannel[tuple[str, HubEnvelope]]) -> None:
        # Everything waiting is handed to the hub without yielding in between, so the
        # members' senders wake once per burst and write it in one go, as they do for
        # a burst of local broadcasts.
        async for first in receive:
            self._deliver(sink, *first)
            for _ in range(self._handoff_size):
                try:
                    channel, envelope = receive.receive_nowait()
                except (trio.WouldBlock, trio.EndOfChannel):
                    break
                self._deliver(sink, channel, envelope)

    def _deliver(self, sink: BackendSink, channel: str, envelope: HubEnvelope) -> None:
        self._check_sequence(sink, channel, envelope)
        try:
            sink.deliver_remote(envelope)
        except Exception:
            self.stats.malformed += 1
            logger.exception("the hub failed on an envelope from %s", envelope.get("origin"))

    def _room_of(self, channel: str) -> str | None:
        """The room whose channel this is, or None for another channel."""
        head, tail = f"{self._prefix}:room:{{", "}"
        if channel.startswith(head) and channel.endswith(tail):
            return channel[len(head) : -len(tail)]
        return None

    def _check_sequence(self, sink: BackendSink, channel: str, envelope: HubEnvelope) -> None:
        seq, origin = envelope.get("seq"), envelope.get("origin")
        if not isinstance(seq, int) or not isinstance(origin, str):
            return
        key = (origin, channel)
        last = self._recv_seq.get(key)
        if last is None and len(self._recv_seq) >= MAX_SEQ_ENTRIES:
            self._recv_seq.clear()
        self._recv_seq[key] = seq
        if last is not None and seq > last + 1:
            missed = seq - last - 1
            self.stats.gaps += 1
            self.stats.missed += missed
            room = self._room_of(channel)
            detail = f"{missed} envelope(s) from {origin} on {channel} were lost"
            sink.backend_event(BackendEvent("gap", detail=detail, room=room, origin=origin, missed=missed))
