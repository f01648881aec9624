"""In-process hub nodes for the Redis backend tests, shared by the single-server and cluster suites.

A *node* is a :class:`~trio_ws.Hub` with a Redis backend and a WebSocket
server running ``hub_node.handler`` on a free loopback port; a
:class:`~hub_node.NodeClient` talks to it over a real connection.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import partial
from typing import Any

import trio
from hub_node import NodeClient, handler

import trio_ws
from trio_ws.hub import BackendEvent, HistoryPolicy, Hub, HubBackend

#: Short heartbeats and TTLs, so that failures show within a test's time.
FAST = {"heartbeat_interval": 0.25, "member_ttl": 1.0}


@dataclass
class Node:
    """A running hub, its backend, and the port of its WebSocket server."""

    hub: Hub
    backend: Any
    port: int


@asynccontextmanager
async def serving_node(
    backend: HubBackend, history: HistoryPolicy | None = None, queue_size: int = 4096
) -> AsyncIterator[Node]:
    """Run a hub over ``backend`` (with ``history`` for every room) and a WebSocket server in front of it."""
    async with Hub(backend=backend, queue_size=queue_size, history=history) as hub, trio.open_nursery() as nursery:
        server = await nursery.start(partial(trio_ws.serve_websocket, partial(handler, hub), "127.0.0.1", 0, None))
        yield Node(hub, backend, server.port)
        nursery.cancel_scope.cancel()


@asynccontextmanager
async def connected(node: Node, member_id: str) -> AsyncIterator[NodeClient]:
    """A client of ``node`` registered as ``member_id`` (acked before the block runs)."""
    async with trio_ws.open_websocket("127.0.0.1", node.port, f"/?id={member_id}", use_ssl=False) as ws:
        client = NodeClient(ws, member_id)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(client.read)
            await client.call("stats")  # acked: the handler registered the member
            yield client
            nursery.cancel_scope.cancel()


async def next_event(events: trio.MemoryReceiveChannel[BackendEvent], kind: str) -> BackendEvent:
    """The next backend event of ``kind`` (others are skipped)."""
    async for event in events:
        if event.kind == kind:
            return event
    raise AssertionError("event channel closed")


def numbers(client: NodeClient, sender: str) -> list[Any]:
    """The numbered messages ``client`` received from ``sender``, in arrival order."""
    return [m["n"] for m in client.messages if m.get("from") == sender and "n" in m]
