"""RedisClusterBackend on a real local Redis Cluster (three masters, no replicas).

Rooms are chosen so that their channels land on every master; the hubs run in
this process (two hubs, two process ids) or as hub_node.py child processes.
One test kills a master with SIGKILL and starts it again: the hubs report
``down``, then ``up``, and delivery across processes works again.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import pytest
import trio
from local_cluster import LocalCluster, key_slot

import trio_ws

pytest.importorskip("coredis", reason="coredis is not installed (test extra)")

from hub_node import NodeClient
from node_support import FAST, Node, connected, next_event, numbers, serving_node
from test_multiprocess import hub_nodes

from trio_ws.hub.redis_cluster import RedisClusterBackend


def rooms_on_every_master(cluster: LocalCluster, backend: RedisClusterBackend) -> list[str]:
    """One room name per master (index i: its channel's slot is on master i)."""
    found: dict[int, str] = {}
    for number in itertools.count():
        name = f"room{number}"
        found.setdefault(cluster.node_of(backend.room_channel(name)), name)
        if len(found) == len(cluster.nodes):
            return [found[index] for index in range(len(cluster.nodes))]
    raise AssertionError("unreachable")


@asynccontextmanager
async def cluster_node(cluster: LocalCluster, prefix: str, process_id: str) -> AsyncIterator[Node]:
    backend = RedisClusterBackend(startup_nodes=cluster.startup_nodes, prefix=prefix, process_id=process_id, **FAST)
    async with serving_node(backend) as node:
        assert backend.connected
        yield node


@pytest.fixture
def prefix() -> str:
    return f"c{uuid.uuid4().hex[:12]}"


def test_the_local_cluster_spreads_slots(redis_cluster: LocalCluster) -> None:
    owned = sum(last - first + 1 for node in redis_cluster.nodes for first, last in node.slots)
    assert owned == 16384 and all(node.slots for node in redis_cluster.nodes)
    for key in ("a", "trio_ws:room:{lobby}", "x:{}:y", "p:members:{r1}:pid", "{user1000}.following"):
        assert key_slot(key) == int(redis_cluster.cli_call(redis_cluster.nodes[0].port, "CLUSTER", "KEYSLOT", key))


async def test_rooms_on_every_shard_across_two_hubs(redis_cluster: LocalCluster, prefix: str) -> None:
    with trio.fail_after(30):
        async with (
            cluster_node(redis_cluster, prefix, "A") as a,
            cluster_node(redis_cluster, prefix, "B") as b,
            connected(a, "a1") as a1,
            connected(b, "b1") as b1,
        ):
            rooms = rooms_on_every_master(redis_cluster, a.backend)
            for room in rooms:
                await a1.call("join", room=room)
                await b1.call("join", room=room)
            # Each room's channel is a sharded channel on its own master, not a classic one.
            for index, room in enumerate(rooms):
                port = redis_cluster.nodes[index].port
                assert a.backend.room_channel(room) in redis_cluster.cli_call(port, "PUBSUB", "SHARDCHANNELS")
                assert redis_cluster.cli_call(port, "PUBSUB", "CHANNELS").strip() == ""
            for n, room in enumerate(rooms):
                assert (await a1.call("broadcast", room=room, n=n))["published"] is True
                assert (await b1.call("broadcast", room=room, n=n))["published"] is True
            # Three rooms on three shards: no order between them, each message once.
            await b1.wait_for(lambda m: sorted(numbers(b1, "a1")) == [0, 1, 2])
            await a1.wait_for(lambda m: sorted(numbers(a1, "b1")) == [0, 1, 2])
            for room in rooms:
                assert (await b1.call("members", room=room))["members"] == ["a1", "b1"]
            assert (await a1.call("unicast", to="b1", data="a->b"))["ok"] is True
            await b1.wait_for(lambda m: [x.get("direct") for x in m if "direct" in x] == ["a->b"])
            await a1.call("send_all", data="everyone")
            await b1.wait_for(lambda m: [x.get("all") for x in m if "all" in x] == ["everyone"])
            await a1.call("watch", room=rooms[2])
            async with connected(b, "b2") as b2:
                await b2.call("join", room=rooms[2])

                def seen(m: list[dict[str, Any]]) -> list[tuple[str, str, bool]]:
                    return [(p["kind"], p["member_id"], p["remote"]) for x in m if (p := x.get("presence")) is not None]

                await a1.wait_for(lambda m: seen(m) == [("join", "b2", True)])
    assert a.backend.stats.publish_failed == b.backend.stats.publish_failed == 0


async def test_a_killed_master_is_survived(redis_cluster: LocalCluster, prefix: str) -> None:
    victim = 1
    with trio.fail_after(60):
        async with (
            cluster_node(redis_cluster, prefix, "A") as a,
            cluster_node(redis_cluster, prefix, "B") as b,
            connected(a, "a1") as a1,
            connected(b, "b1") as b1,
            a.hub.backend_events() as events_a,
            b.hub.backend_events() as events_b,
        ):
            room = rooms_on_every_master(redis_cluster, a.backend)[victim]
            await a1.call("join", room=room)
            await b1.call("join", room=room)
            try:
                redis_cluster.kill(victim)
                await next_event(events_a, "down")
                await next_event(events_b, "down")
                # Local delivery goes on; the cross-process copy is refused (not queued).
                assert (await a1.call("broadcast", room=room, n="during"))["published"] is False
            finally:
                await trio.to_thread.run_sync(redis_cluster.restart, victim)
            await next_event(events_a, "up")
            await next_event(events_b, "up")
            assert (await a1.call("broadcast", room=room, n="after"))["published"] is True
            await b1.wait_for(lambda m: numbers(b1, "a1") == ["after"])
            await b1.call("broadcast", room=room, n="back")
            await a1.wait_for(lambda m: numbers(a1, "b1") == ["back"])
            # The restarted master lost its keys (no persistence): the membership was written again.
            assert (await a1.call("members", room=room))["members"] == ["a1", "b1"]


async def test_three_processes_on_a_cluster(redis_cluster: LocalCluster, prefix: str) -> None:
    """hub_node.py processes with --cluster: every room (one per master) spans every process."""
    victim = 2
    with trio.fail_after(90):
        async with hub_nodes(redis_cluster.url, prefix, "--cluster") as nodes, trio.open_nursery() as nursery:
            ports = [port for _, port in nodes]
            rooms = rooms_on_every_master(redis_cluster, RedisClusterBackend(prefix=prefix))
            clients: list[NodeClient] = []
            async with AsyncExitStack() as stack:
                w0 = await stack.enter_async_context(
                    trio_ws.open_websocket("127.0.0.1", ports[0], "/?id=w0", use_ssl=False)
                )
                watcher = NodeClient(w0, "w0")
                nursery.start_soon(watcher.read)
                for index, port in enumerate(ports):
                    ws = await stack.enter_async_context(
                        trio_ws.open_websocket("127.0.0.1", port, f"/?id=m{index}", use_ssl=False)
                    )
                    client = NodeClient(ws, f"m{index}")
                    nursery.start_soon(client.read)
                    clients.append(client)
                    await client.call("events")
                    for room in rooms:
                        await client.call("join", room=room)
                for room in rooms:
                    assert (await watcher.call("members", room=room))["members"] == ["m0", "m1", "m2"]
                # Every process broadcasts into every room; each member gets each message once, in order per
                # room (rooms on different shards travel on different connections: no order between them).
                for n in range(5):
                    for client in clients:
                        for room in rooms:
                            assert (await client.call("broadcast", room=room, n=f"{room}:{n}"))["published"] is True
                for receiver in clients:
                    for sender in clients:
                        if sender is not receiver:
                            await receiver.wait_for(lambda m, r=receiver, s=sender.id: len(numbers(r, s)) >= 15)
                            for room in rooms:
                                got = [n for n in numbers(receiver, sender.id) if n.startswith(f"{room}:")]
                                assert got == [f"{room}:{n}" for n in range(5)], (receiver.id, sender.id, got)
                # Unicast and presence across processes.
                assert (await clients[0].call("unicast", to="m2", data="0->2"))["ok"] is True
                await clients[2].wait_for(lambda m: [x.get("direct") for x in m if "direct" in x] == ["0->2"])
                await watcher.call("watch", room=rooms[victim])
                await clients[1].call("leave", room=rooms[victim])
                await watcher.wait_for(
                    lambda m: [(p["kind"], p["member_id"]) for x in m if (p := x.get("presence"))] == [("leave", "m1")]
                )
                # One master killed and restarted: every process goes down, comes back, and delivers again.
                try:
                    redis_cluster.kill(victim)
                    for client in clients:
                        await client.wait_for(lambda m: any(x.get("event", {}).get("kind") == "down" for x in m))
                finally:
                    await trio.to_thread.run_sync(redis_cluster.restart, victim)
                for client in clients:
                    await client.wait_for(lambda m: any(x.get("event", {}).get("kind") == "up" for x in m))
                await clients[0].call("broadcast", room=rooms[victim], n="recovered")
                await clients[2].wait_for(lambda m: "recovered" in numbers(clients[2], "m0"))
                assert (await clients[2].call("unicast", to="m1", data="2->1"))["ok"] is True
                await clients[1].wait_for(lambda m: [x.get("direct") for x in m if "direct" in x] == ["2->1"])
            nursery.cancel_scope.cancel()
