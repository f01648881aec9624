"""The Redis backend on a Redis Cluster: sharded pub/sub, keys hash-tagged per room.

Theory of operation. :class:`RedisClusterBackend` is :class:`RedisBackend`
with a different transport; names, envelopes, supervision and membership are
the same. Each generation opens a coredis ``RedisCluster`` client (it reads
the slot layout from any reachable node) and a *sharded* subscriber
(``SSUBSCRIBE``, Redis 7), which holds one connection per master and sends
each channel's subscription to the master that owns its slot. Publishing uses
``SPUBLISH``: a message travels only within its shard, where classic
``PUBLISH`` is copied to every node of the cluster.

A room's channel and keys share the hash tag ``{ROOM}``, so one room lives on
one shard: its publishes, subscription and membership reads go to one master.
The process channels (``{PID}``) spread over the shards; the global channel
sits on one. A failure of any shard connection (a master killed, a slot
moved, a node unreachable) ends the generation like any link failure; the
next generation reads the layout again and resubscribes everything. While a
master is down without a replica to take over, the cluster refuses commands
(``CLUSTERDOWN``) and the backend stays ``down`` until it is back.

The rewrite of a process's membership after a reconnection spans rooms, hence
slots: it is sent as a plain pipeline (grouped per master), not as one
transaction.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .redis import AnyClient, AnyPipeline, AnyPubSub, RedisBackend

try:
    import coredis
    from coredis.connection import TCPLocation
    from coredis.patterns.pubsub import ShardedPubSub
    from coredis.retry import NoRetryPolicy
except ImportError as err:  # pragma: no cover - depends on the installation
    raise ImportError("trio_ws.hub.redis_cluster needs coredis: pip install 'trio-ws[redis]'") from err

__all__ = ["RedisClusterBackend"]


class RedisClusterBackend(RedisBackend):
    """Share a hub's rooms between processes through a Redis Cluster (Redis 7+).

    Use it where :class:`~trio_ws.hub.redis.RedisBackend` would be used:
    ``Hub(backend=RedisClusterBackend(...))`` in every process. Rooms use
    sharded pub/sub, so the cluster spreads rooms over its masters.

    Args:
        url: a ``redis://`` or ``rediss://`` URL of one node; the others are
            discovered. When given, ``startup_nodes`` and ``password`` are ignored.
        startup_nodes: ``(host, port)`` pairs of some nodes (any one reachable
            is enough). Default ``[("localhost", 6379)]``.
        password: the password, or None.
        **options: the other keyword arguments of
            :class:`~trio_ws.hub.redis.RedisBackend` (``prefix``,
            ``process_id``, ``heartbeat_interval``, ``member_ttl``,
            ``reconnect_backoff``, ``handoff_size``, ``command_timeout``,
            ``publish_queue_size``), with the same meaning and defaults.

    Raises:
        ValueError: for an invalid argument (the message names it).
    """

    _atomic_rewrite = False
    _per_room_readers = True

    def __init__(
        self,
        url: str | None = None,
        *,
        startup_nodes: Iterable[tuple[str, int]] = (("localhost", 6379),),
        password: str | None = None,
        **options: Any,
    ) -> None:
        for name in ("host", "port", "db"):
            if name in options:
                raise ValueError(f"{name} is not an option of RedisClusterBackend: use url or startup_nodes")
        super().__init__(url, password=password, **options)
        self._startup_nodes = [TCPLocation(host, int(port)) for host, port in startup_nodes]
        if not self._startup_nodes and url is None:
            raise ValueError("startup_nodes must name at least one node (or give url)")

    def _client_factory(self) -> AnyClient:
        if self._url is not None:
            return coredis.RedisCluster.from_url(
                self._url, decode_responses=True, retry_policy=NoRetryPolicy(), connect_timeout=self._timeout
            )
        return coredis.RedisCluster(
            startup_nodes=self._startup_nodes,
            password=self._password,
            decode_responses=True,
            retry_policy=NoRetryPolicy(),
            connect_timeout=self._timeout,
        )

    def _open_pubsub(self, client: AnyClient) -> AnyPubSub:
        assert isinstance(client, coredis.RedisCluster)
        pubsub: ShardedPubSub[str] = client.sharded_pubsub(
            ignore_subscribe_messages=True, retry_policy=NoRetryPolicy(), subscription_timeout=self._timeout
        )
        return pubsub

    def _publish_command(self, target: AnyClient | AnyPipeline, channel: str, data: str) -> Any:
        return target.spublish(channel, data)
