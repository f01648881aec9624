"""Rooms with history on a real local Redis Cluster (three masters): each room's stream lives on the
master of its hash tag, every process reads it (one reader per room on a cluster), and a client
resumes in another process; a master killed with SIGKILL and restarted empty starts its rooms'
streams over (a new epoch) while the other masters' rooms lose nothing."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
import trio
from local_cluster import LocalCluster

pytest.importorskip("coredis", reason="coredis is not installed (test extra)")

from hub_node import NodeClient
from node_support import FAST, Node, connected, next_event, serving_node
from test_redis_cluster import rooms_on_every_master

from trio_ws.hub import HistoryPolicy
from trio_ws.hub.redis_cluster import RedisClusterBackend

POLICY = HistoryPolicy(max_messages=1000, max_bytes=None, max_age=None)


@asynccontextmanager
async def cluster_stream_node(cluster: LocalCluster, prefix: str, process_id: str) -> AsyncIterator[Node]:
    backend = RedisClusterBackend(startup_nodes=cluster.startup_nodes, prefix=prefix, process_id=process_id, **FAST)
    async with serving_node(backend, history=POLICY) as node:
        assert backend.connected
        yield node


def in_room(client: NodeClient, room: str) -> list[tuple[Any, Any, Any]]:
    return [(m["from"], m["n"], m["offset"]) for m in client.messages if m.get("room") == room and "n" in m]


async def test_streams_on_every_master_and_resume_elsewhere(redis_cluster: LocalCluster) -> None:
    prefix = f"cs{uuid.uuid4().hex[:10]}"
    with trio.fail_after(60):
        async with (
            cluster_stream_node(redis_cluster, prefix, "A") as a,
            cluster_stream_node(redis_cluster, prefix, "B") as b,
            connected(a, "a1") as a1,
            connected(b, "b1") as b1,
        ):
            rooms = rooms_on_every_master(redis_cluster, a.backend)
            for room in rooms:
                for client in (a1, b1):
                    assert (await client.call("join", room=room))["position"] is not None
            for n in range(5):
                for room in rooms:
                    await a1.call("broadcast", room=room, n=n)
                    await b1.call("broadcast", room=room, n=100 + n)
            for client in (a1, b1):
                await client.wait_for(lambda m, c=client: all(len(in_room(c, r)) >= 10 for r in rooms))
            await trio.sleep(0.3)
            for index, room in enumerate(rooms):
                # Each room's stream is on its own master, and both processes deliver it in one order.
                port = redis_cluster.nodes[index].port
                assert redis_cluster.cli_call(port, "TYPE", a.backend.stream_key(room)).strip("+\r\n") == "stream"
                assert in_room(a1, room) == in_room(b1, room)
                assert sorted(n for _, n, _ in in_room(a1, room)) == [*range(5), *range(100, 105)]
            # Resume in the other process from the third message of the last room.
            room = rooms[-1]
            seen = [m for m in a1.messages if m.get("room") == room and "n" in m][2]
            async with connected(b, "b2") as b2:
                reply = await b2.call("join", room=room, since=[seen["epoch"], seen["offset"]])
                assert (reply["recovered"], reply["replayed"]) == (True, 7), reply
                await b2.wait_for(lambda m: len(in_room(b2, room)) >= 7)
                assert in_room(b2, room) == in_room(a1, room)[3:]


def room_numbers(client: NodeClient, room: str) -> list[Any]:
    return [n for _, n, _ in in_room(client, room)]


def room_epochs(client: NodeClient, room: str) -> list[Any]:
    return [m["epoch"] for m in client.messages if m.get("room") == room and "n" in m]


async def test_a_killed_master_starts_its_streams_over(redis_cluster: LocalCluster) -> None:
    """SIGKILL of the master holding one streamed room, restarted empty: that room gets a new epoch,
    the other masters' rooms lose nothing and repeat nothing."""
    prefix = f"ck{uuid.uuid4().hex[:10]}"
    victim = 1
    with trio.fail_after(90):
        async with (
            cluster_stream_node(redis_cluster, prefix, "A") as a,
            cluster_stream_node(redis_cluster, prefix, "B") as b,
            connected(a, "a1") as a1,
            connected(b, "b1") as b1,
            a.hub.backend_events() as events_a,
            b.hub.backend_events() as events_b,
        ):
            rooms = rooms_on_every_master(redis_cluster, a.backend)
            lost, kept = rooms[victim], [room for index, room in enumerate(rooms) if index != victim]
            for room in rooms:
                for client in (a1, b1):
                    await client.call("join", room=room)
            for n in range(3):
                for room in rooms:
                    await a1.call("broadcast", room=room, n=n)
            for client in (a1, b1):
                await client.wait_for(lambda m, c=client: all(len(in_room(c, r)) == 3 for r in rooms))
            # Per room, the position of its first and of its last message so far.
            before = {room: [[room_epochs(b1, room)[i], in_room(b1, room)[i][2]] for i in (0, -1)] for room in rooms}
            old_epoch = room_epochs(b1, lost)[-1]
            try:
                redis_cluster.kill(victim)
                await next_event(events_a, "down")
                await next_event(events_b, "down")
                # Broadcasts while the cluster is down are queued in the sending process, not refused.
                for n in range(3, 6):
                    for room in rooms:
                        assert (await a1.call("broadcast", room=room, n=n))["published"] is True
                # A local member would have its copy before the ack: a stream room's copies come from Redis.
                assert all(len(in_room(c, r)) == 3 for c in (a1, b1) for r in rooms)
            finally:
                await trio.to_thread.run_sync(redis_cluster.restart, victim)
            await next_event(events_a, "up")
            await next_event(events_b, "up")
            for events in (events_a, events_b):
                gap = await next_event(events, "gap")
                assert gap.room == lost and "lost" in gap.detail, gap
            for n in range(6, 9):
                for room in rooms:
                    await a1.call("broadcast", room=room, n=n)
                    await b1.call("broadcast", room=room, n=100 + n)
            expected = [*range(9), *range(106, 109)]
            for client in (a1, b1):
                await client.wait_for(lambda m, c=client: all(len(in_room(c, r)) >= len(expected) for r in rooms))
            await trio.sleep(0.5)  # nothing more arrives: no duplicate
            for room in rooms:
                # Every message once, in one order, in both processes; the queued ones before the later ones.
                assert in_room(a1, room) == in_room(b1, room), room
                got = room_numbers(b1, room)
                assert sorted(got) == expected, (room, got)
                assert [n for n in got if n < 100] == list(range(9)), (room, got)
            for room in kept:  # the other masters' streams kept their epoch throughout
                assert len(set(room_epochs(a1, room))) == 1 and len(set(room_epochs(b1, room))) == 1
            epochs = room_epochs(b1, lost)
            assert epochs[:3] == [old_epoch] * 3 and set(epochs[3:]) == {epochs[-1]} != {old_epoch}
            assert a.backend.stats.gaps == b.backend.stats.gaps == 1
            # A member resuming in the restarted room is told its history is gone; elsewhere it recovers.
            async with connected(b, "b2") as b2:
                reply = await b2.call("join", room=lost, since=before[lost][1])
                assert (reply["recovered"], reply["reason"]) == (False, "epoch"), reply
                assert reply["position"][0] == epochs[-1]
                for room in kept:
                    reply = await b2.call("join", room=room, since=before[room][0])
                    assert (reply["recovered"], reply["replayed"]) == (True, len(expected) - 1), reply
                    await b2.wait_for(lambda m, r=room: len(in_room(b2, r)) >= len(expected) - 1)
                    assert in_room(b2, room) == in_room(b1, room)[1:]
