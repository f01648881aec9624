"""A Redis backend for the hub: rooms shared by several processes over pub/sub.

Theory of operation. :meth:`RedisBackend.run` (started by ``async with hub:``)
supervises *generations*. A generation is one fresh coredis client and one fresh
pub/sub connection: it subscribes to this process's channel, the global channel
and the channel of every room with local members, writes this process's
membership, reports ``up``, then relays until the link fails. A failure of any
kind ends the generation: an error out of coredis, a failed write, a heartbeat
that times out, or a *probe* that never comes back. Every heartbeat publishes a
probe on this process's own channel and expects to read it back, so a
subscription that went quiet without an error (coredis's ``async for`` did
that during restarts) is detected within two heartbeats: the process can never
stay deaf. The supervisor then reports ``down`` once, retries with an
exponential backoff that starts over after each successful reconnection, and
rebuilds everything from the hub's state (:meth:`BackendSink.subscribed_rooms`,
:meth:`BackendSink.local_member_ids`) in the next generation. coredis's own
retries are off: its retry delay never resets and each dead pub/sub connection
kept a pool slot.

Delivery between processes is at most once. While the link is down, publishing
returns False at once; what is published then is lost. Each envelope carries
``seq``, numbered per (origin, channel) and counted even for envelopes that
could not be sent, so a receiver that sees a number jump reports a ``gap``
event with how many it missed. Envelopes from this process are skipped on
receipt (the hub delivered them locally already). The subscriber hands
envelopes to the hub through a bounded channel; when it is full they are
counted and dropped (and the receiver's sequence check reports the gap), so a
flood cannot grow memory without limit.

Names (``P`` is the prefix). Channels: ``P:room:{ROOM}``, ``P:proc:{PID}``,
``P:all``. Keys: ``P:members:{ROOM}:PID`` (a set of PID's members in ROOM,
TTL ``member_ttl``), ``P:procs:{ROOM}`` (the set of process ids that have
members in ROOM, an index for readers, TTL ``member_ttl``), and
``P:member:{ID}`` (the process id holding member ID, TTL ``member_ttl``).
The braces are Redis Cluster hash tags: a room's channel and keys hash to one
slot, so a room's pub/sub can move to sharded pub/sub (SSUBSCRIBE/SPUBLISH)
and its keys can be read in one pipeline or script. The heartbeat refreshes the
TTLs every ``heartbeat_interval``; the members of a process that died vanish
from :meth:`RedisBackend.room_members` at most ``member_ttl`` later.

The class is split by concept: this module holds the supervision, the
subscriptions and the names; :mod:`trio_ws.hub.redis_membership` the
membership keys; :mod:`trio_ws.hub.redis_publishing` the publishing queue and
its batches; :mod:`trio_ws.hub.redis_receiving` the subscriber's decoding,
hand-off and gap detection; :mod:`trio_ws.hub.redis_streams` the shared
history; :mod:`trio_ws.hub.redis_parking` parked values;
:mod:`trio_ws.hub.redis_cluster` the Redis Cluster transport.
"""

from __future__ import annotations

import json
import logging
import math
import random
import sys
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

import trio

from ..scopes import leaves
from .backend import BackendEvent, BackendSink
from .envelopes import HubEnvelope
from .redis_membership import RedisMembership
from .redis_parking import RedisParking
from .redis_publishing import RedisPublishing
from .redis_receiving import PROBE, RedisReceiving
from .redis_streams import RedisStreams, _Append

try:
    import coredis
    from coredis.exceptions import ConnectionError as RedisConnectionError
    from coredis.patterns.pipeline import ClusterPipeline, Pipeline
    from coredis.patterns.pubsub import PubSub, ShardedPubSub
    from coredis.retry import NoRetryPolicy
except ImportError as err:  # pragma: no cover - depends on the installation
    raise ImportError("trio_ws.hub.redis needs coredis: pip install 'trio-ws[redis]'") from err

if sys.version_info < (3, 11):  # pragma: no cover
    from exceptiongroup import BaseExceptionGroup

__all__ = ["RedisBackend", "RedisBackendStats"]

logger = logging.getLogger("trio_ws.hub.redis")

AnyClient = coredis.Redis[str] | coredis.RedisCluster[str]
AnyPipeline = Pipeline[str] | ClusterPipeline[str]
AnyPubSub = PubSub[str] | ShardedPubSub[str]


@dataclass
class RedisBackendStats:
    """Counters of a :class:`RedisBackend`, since it was created.

    Attributes:
        published: envelopes published to Redis.
        publish_failed: envelopes not published (link down, error or timeout): lost.
        received: envelopes from other processes read from Redis.
        dropped: received envelopes dropped because the hand-off to the hub was full.
        malformed: messages that were not valid envelopes.
        skipped_own: envelopes of this process read back and skipped.
        gaps: gap events reported; ``missed`` adds up their counts.
        missed: envelopes other processes sent that this one never saw.
        disconnects: times the link was lost (``down`` events).
        reconnects: times it came back (``up`` events).
    """

    published: int = 0
    publish_failed: int = 0
    received: int = 0
    dropped: int = 0
    malformed: int = 0
    skipped_own: int = 0
    gaps: int = 0
    missed: int = 0
    disconnects: int = 0
    reconnects: int = 0


class _LinkLost(Exception):
    """Raised inside a generation to end it (the reason is the message)."""


def _check_name(kind: str, value: str) -> str:
    if not value or "{" in value or "}" in value:
        raise ValueError(f"{kind} must be non-empty and without braces (used in hash tags), not {value!r}")
    return value


def _describe(exc: BaseException) -> str:
    found = leaves(exc)
    if len(found) == 1:
        exc = found[0]
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


class RedisBackend(RedisMembership, RedisPublishing, RedisReceiving, RedisStreams, RedisParking):
    """Share a hub's rooms between processes through Redis pub/sub (coredis).

    Pass it to ``Hub(backend=...)`` in every process (or to
    :class:`~trio_ws.hub.HubClient` in a process without connections). It
    works on Trio through coredis's anyio support.

    Args:
        url: a ``redis://``, ``rediss://`` or ``unix://`` URL; when given,
            ``host``, ``port``, ``db`` and ``password`` are ignored.
        host: the Redis host. Default ``"localhost"``.
        port: the Redis port. Default 6379.
        db: the database number. Default 0.
        password: the password, or None.
        prefix: the first part of every channel and key name. Default ``"trio_ws"``.
        process_id: this process's id on the bus; default a random hex string.
            It must be unique among the processes sharing ``prefix``.
        heartbeat_interval: seconds between heartbeats (TTL refresh and probe).
            Default 2.0.
        member_ttl: seconds after which a silent process's members expire.
            Default 6.0; it must exceed ``heartbeat_interval`` (three times it
            leaves room for two late heartbeats).
        reconnect_backoff: (first, maximum) delay in seconds between connection
            attempts; it doubles, with jitter, and starts over after each
            successful reconnection. Default (0.05, 2.0).
        handoff_size: envelopes that may wait between the subscriber and the
            hub; beyond it they are dropped and counted. Default 1024.
        command_timeout: seconds any single Redis command may take before the
            link counts as down. Default 3.0: a process busy fanning out to
            thousands of clients can take over a second to run a command, and
            1 s made such a process flap down/up and lose envelopes. It is
            also the longest a join waits for a Redis that does not answer.
        publish_queue_size: envelopes that may wait to be sent to Redis;
            beyond it publishing returns False (the envelope is lost and
            counted). Default 10,000.

    Raises:
        ValueError: for an invalid argument (the message names it).
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        host: str = "localhost",
        port: int = 6379,
        db: int = 0,
        password: str | None = None,
        prefix: str = "trio_ws",
        process_id: str | None = None,
        heartbeat_interval: float = 2.0,
        member_ttl: float = 6.0,
        reconnect_backoff: tuple[float, float] = (0.05, 2.0),
        handoff_size: int = 1024,
        command_timeout: float = 3.0,
        publish_queue_size: int = 10_000,
    ) -> None:
        if not heartbeat_interval > 0:
            raise ValueError(f"heartbeat_interval must be > 0, not {heartbeat_interval}")
        if not member_ttl > heartbeat_interval:
            raise ValueError(f"member_ttl={member_ttl} must exceed heartbeat_interval={heartbeat_interval}")
        first, maximum = reconnect_backoff
        if not 0 < first <= maximum:
            raise ValueError(f"reconnect_backoff must be (first, max) with 0 < first <= max, not {reconnect_backoff}")
        if handoff_size < 1:
            raise ValueError(f"handoff_size must be >= 1, not {handoff_size}")
        if not command_timeout > 0:
            raise ValueError(f"command_timeout must be > 0, not {command_timeout}")
        if publish_queue_size < 1:
            raise ValueError(f"publish_queue_size must be >= 1, not {publish_queue_size}")
        self._url = url
        self._host = host
        self._port = port
        self._db = db
        self._password = password
        self._prefix = _check_name("prefix", prefix)
        self.process_id: str = _check_name("process_id", process_id or uuid.uuid4().hex)
        self.heartbeat_interval = heartbeat_interval
        self.member_ttl = member_ttl
        self._ttl_ms = max(1, round(member_ttl * 1000))
        self._backoff = (first, maximum)
        self._handoff_size = handoff_size
        self._timeout = command_timeout
        self._publish_queue_size = publish_queue_size
        self.stats = RedisBackendStats()
        # The current generation (None while down).
        self._client: AnyClient | None = None
        self._pubsub: AnyPubSub | None = None
        self._scope: trio.CancelScope | None = None
        self._lost_reason: str | None = None
        self._up = False
        self._went_up = False
        self._down_reported = False
        self._down_since = 0.0
        self._probes: dict[int, float] = {}
        self._probe_count = 0
        # This process's membership, kept while down so it can be rewritten.
        self._rooms: dict[str, set[str]] = {}
        self._members: set[str] = set()
        self._version = 0
        self._dirty = False
        self._send_seq: dict[str, int] = {}
        self._recv_seq: dict[tuple[str, str], int] = {}
        # Envelopes waiting for the publisher: (generation, channel, JSON text).
        self._outgoing: trio.MemorySendChannel[tuple[int, str, str]] | None = None
        self._publisher_scope: trio.CancelScope | None = None
        self._stopping = False
        self._generation_number = 0
        self._handoff: trio.MemorySendChannel[tuple[str, HubEnvelope]] | None = None
        self._sink: BackendSink | None = None
        self._init_streams()
        self._ops = deque()
        self._ops_queued = trio.Event()
        self._op_running: trio.Event | None = None

    # -- names -----------------------------------------------------------------
    def room_channel(self, room: str) -> str:
        """The pub/sub channel of ``room``."""
        return f"{self._prefix}:room:{{{room}}}"

    def process_channel(self, process_id: str) -> str:
        """The pub/sub channel of one process (unicast, disconnect, probes)."""
        return f"{self._prefix}:proc:{{{process_id}}}"

    @property
    def global_channel(self) -> str:
        """The pub/sub channel every process listens to (``send_all``)."""
        return f"{self._prefix}:all"

    @property
    def connected(self) -> bool:
        """Whether the link to Redis is up (subscribed and registered)."""
        return self._up

    # -- supervision -----------------------------------------------------------
    async def run(self, sink: BackendSink, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Connect, relay and keep membership alive until cancelled.

        Reports readiness once the first connection attempt has succeeded or
        failed (a hub starts even while Redis is unreachable, and reports
        ``down``). Never raises for a transport failure. Cancelling it is the
        way to stop it; it then deletes this process's membership keys (best
        effort, within ``command_timeout``). Run it once at a time.
        """
        send, receive = trio.open_memory_channel[tuple[str, HubEnvelope]](self._handoff_size)
        outgoing, to_publish = trio.open_memory_channel[tuple[int, str, str]](self._publish_queue_size)
        appends, to_append = trio.open_memory_channel[_Append](self._publish_queue_size)
        self._handoff, self._outgoing, self._sink, self._appends = send, outgoing, sink, appends
        self._stopping = False
        ready = trio.Event()
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._dispatch, sink, receive)
                nursery.start_soon(self._publisher, to_publish)
                nursery.start_soon(self._stop_publisher_when_cancelled, outgoing)
                nursery.start_soon(self._appender, to_append)
                nursery.start_soon(self._writer)
                nursery.start_soon(self._stop_appender)
                nursery.start_soon(self._supervise, sink, ready)
                await ready.wait()
                task_status.started()
        finally:
            self._handoff = self._outgoing = self._appends = None
            with trio.CancelScope(shield=True), trio.move_on_after(self._timeout):
                await self._unregister()

    async def _supervise(self, sink: BackendSink, ready: trio.Event) -> None:
        delay = self._backoff[0]
        while True:
            self._lost_reason = None
            self._went_up = False
            try:
                await self._generation(sink, ready)
                reason = self._lost_reason or "setup timed out"
            except Exception as exc:
                reason = self._lost_reason or _describe(exc)
            except BaseExceptionGroup as group:
                # A transport error raced a cancellation from outside: the next
                # checkpoint raises a plain Cancelled.
                if not all(isinstance(leaf, (trio.Cancelled, Exception)) for leaf in leaves(group)):
                    raise
                await trio.lowlevel.checkpoint()
                reason = _describe(group)
            finally:
                self._up = False
                self._streams_down()
                self._release_writes()
                self._client = self._pubsub = self._scope = None
            # Cancelled from outside, coredis may have turned it into a ConnectionError:
            # then we are stopping, not disconnected.
            await trio.lowlevel.checkpoint_if_cancelled()
            if self._went_up:
                delay = self._backoff[0]
            if (self._went_up or not ready.is_set()) and not self._down_reported:
                self._down_reported = True
                self._down_since = trio.current_time()
                self.stats.disconnects += 1
                sink.backend_event(BackendEvent("down", detail=reason))
            logger.info("redis link of %s lost or not established: %s", self.process_id, reason)
            ready.set()
            await trio.sleep(delay * random.uniform(0.5, 1.0))
            delay = min(delay * 2, self._backoff[1])

    def _client_factory(self) -> AnyClient:
        if self._url is not None:
            return coredis.Redis.from_url(
                self._url, decode_responses=True, retry_policy=NoRetryPolicy(), connect_timeout=self._timeout
            )
        return coredis.Redis(
            host=self._host,
            port=self._port,
            db=self._db,
            password=self._password,
            decode_responses=True,
            retry_policy=NoRetryPolicy(),
            connect_timeout=self._timeout,
        )

    def _open_pubsub(self, client: AnyClient) -> AnyPubSub:
        """The subscriber of a generation (an async context manager)."""
        assert isinstance(client, coredis.Redis)
        return client.pubsub(
            ignore_subscribe_messages=True, retry_policy=NoRetryPolicy(), subscription_timeout=self._timeout
        )

    def _publish_command(self, target: AnyClient | AnyPipeline, channel: str, data: str) -> Any:
        """Queue or send one PUBLISH (SPUBLISH on a cluster); returns its request."""
        return target.publish(channel, data)

    async def _generation(self, sink: BackendSink, ready: trio.Event) -> None:
        """One fresh client and pub/sub; returns only once the link is lost."""
        with trio.CancelScope(deadline=trio.current_time() + 2 * self._timeout + 2 * self._bulk_timeout()) as scope:
            self._scope = scope
            async with self._client_factory() as client:
                await client.ping()
                async with self._open_pubsub(client) as pubsub:
                    await pubsub.subscribe(self.process_channel(self.process_id), self.global_channel)
                    # From here on subscribe() and add_member() use this generation,
                    # so the snapshots below cannot miss a room or a member.
                    self._client, self._pubsub = client, pubsub
                    rooms = sink.subscribed_rooms()
                    if rooms:
                        await pubsub.subscribe(*(self.room_channel(room) for room in rooms))
                    gone_members, gone_rooms = self._reconcile(sink)
                    if gone_members or gone_rooms:
                        await self._pipeline(partial(self._delete_stale, gone_members, gone_rooms))
                    await self._register_all(client)
                    scope.deadline = math.inf
                    self._probes.clear()
                    self._generation_number += 1  # envelopes queued before are stale: never sent late
                    self._up = self._went_up = True
                    self._streams_up()
                    if self._down_reported:
                        self._down_reported = False
                        self.stats.reconnects += 1
                        downtime = trio.current_time() - self._down_since
                        sink.backend_event(BackendEvent("up", detail=f"reconnected after {downtime:.2f} s"))
                    logger.info("redis link of %s up", self.process_id)
                    ready.set()
                    async with trio.open_nursery() as nursery:
                        nursery.start_soon(self._heartbeat, client, sink)
                        nursery.start_soon(self._stream_reader, sink)
                        await self._listen(pubsub)

    def _lose(self, reason: str) -> None:
        """End the current generation (from any task)."""
        if self._scope is not None and self._lost_reason is None:
            self._lost_reason = reason
            self._up = False
            self._streams_down()
            self._generation_number += 1  # what is queued is lost: never sent late
            self._release_writes()
            self._scope.cancel()

    def _failed(self, what: str, exc: BaseException) -> None:
        # A lost connection ends the generation; other errors only fail the call.
        if isinstance(exc, (RedisConnectionError, OSError, trio.TooSlowError, _LinkLost)):
            self._lose(f"{what}: {_describe(exc)}")
        else:
            logger.log(logging.WARNING if self._up else logging.DEBUG, "redis %s failed: %s", what, _describe(exc))

    async def _heartbeat(self, client: AnyClient, sink: BackendSink) -> None:
        probe_timeout = 2 * self.heartbeat_interval
        while True:
            await trio.sleep(self.heartbeat_interval)
            now = trio.current_time()
            if self._probes and now - min(self._probes.values()) > probe_timeout:
                self._lose(f"deaf: a probe did not come back within {probe_timeout:.1f} s")
                return
            self._probe_count += 1
            self._probes[self._probe_count] = now
            probe = json.dumps({PROBE: self._probe_count, "origin": self.process_id})
            try:
                with trio.fail_after(max(self._timeout, self.heartbeat_interval)):
                    if await self._publish_command(client, self.process_channel(self.process_id), probe) == 0:
                        raise _LinkLost("our own channel has no subscriber")
                    await self._refresh(client, sink)
            except Exception as exc:
                self._failed("heartbeat", exc)
                return

    # -- Redis commands ----------------------------------------------------------
    async def _pipeline(
        self,
        build: Callable[[AnyPipeline], list[Any]],
        *,
        transaction: bool = False,
        budget: float | None = None,
        client: AnyClient | None = None,
    ) -> list[Any]:
        client = client or self._client
        if client is None:
            raise _LinkLost("not connected")
        # coredis drops the whole connection when a pipeline is cancelled, failing
        # every other command multiplexed on it: so a caller's cancellation waits
        # for the pipeline (at most command_timeout), and only a timeout cuts it.
        results: list[Any] = []
        with trio.CancelScope(shield=True), trio.fail_after(budget or self._timeout):
            async with client.pipeline(transaction=transaction) as pipe:
                requests = build(pipe)
            results = [await request for request in requests]
        return results

    # -- subscriptions -----------------------------------------------------------
    async def subscribe(self, room: str) -> None:
        """Receive ``room``'s envelopes (the first local member joined).

        The writer task subscribes, in order with the other changes. This
        returns once Redis has confirmed the subscription (a message published
        from then on is received), however long Redis takes while the link is
        up; or, without it, once the link is declared down (at most
        ``command_timeout`` after Redis stops answering): the next connection
        subscribes the hub's rooms before it reports ``up``, and what is
        published meanwhile is lost (at most once). Never raises. Cancelling
        is safe (the subscription is queued before the first checkpoint and
        made anyway); concurrent calls are allowed.
        """
        await self._run_op(f"subscribe to {room!r}", partial(self._subscribe, room))

    async def _subscribe(self, room: str) -> None:
        pubsub = self._pubsub
        if pubsub is None or (self._sink is not None and room not in self._sink.subscribed_rooms()):
            return
        try:
            with trio.fail_after(self._timeout):
                await pubsub.subscribe(self.room_channel(room))
        except Exception as exc:
            # Resubscribing everything is the only way not to stay deaf to it.
            self._lose(f"subscribe to {room!r}: {_describe(exc)}")

    async def unsubscribe(self, room: str) -> None:
        """Stop receiving ``room``'s envelopes (the last local member left).

        The writer task unsubscribes; this returns once it is done or the
        link is declared down, as :meth:`subscribe`. Never raises;
        cancelling is safe (as for :meth:`subscribe`); concurrent calls are
        allowed.
        """
        channel = self.room_channel(room)
        for key in [key for key in self._recv_seq if key[1] == channel]:
            del self._recv_seq[key]
        await self._run_op(f"unsubscribe from {room!r}", partial(self._unsubscribe, room))

    async def _unsubscribe(self, room: str) -> None:
        channel = self.room_channel(room)
        pubsub = self._pubsub
        if pubsub is None or (self._sink is not None and room in self._sink.subscribed_rooms()):
            return
        try:
            with trio.fail_after(self._timeout):
                await pubsub.unsubscribe(channel)
        except Exception as exc:
            if isinstance(exc, (RedisConnectionError, OSError, trio.TooSlowError)):
                self._lose(f"unsubscribe from {room!r}: {_describe(exc)}")  # unanswered: the link is down
            else:  # harmless: the hub ignores envelopes of rooms it does not have
                logger.debug("unsubscribe from %s failed: %s", channel, _describe(exc))
