"""Rooms with history on a real local Redis Cluster (three masters): each room's stream lives on the
master of its hash tag, every process reads it (one reader per room on a cluster), and a client
resumes in another process."""

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
from node_support import FAST, Node, connected, serving_node
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
