"""In-memory worker of the hub benchmark: N room members in ONE process, no sockets.

Usage (normally started by ``bench_hub.py``, in a fresh process per
measurement so that RSS readings are independent)::

    python benchmarks/bench_hub_memory.py VARIANT --members 10000

Each member is a ``trio.testing.memory_stream_pair``: the server end goes
through ``wrap_server_stream`` + ``accept()``, the client end through
``wrap_client_stream``, and a client task counts received messages. Variants:

* ``trio_ws-hub``: each server end registers with ``hub.connect()`` and joins
  one room; fan-out is one ``await hub.broadcast(room, message)``;
* ``trio_ws-loop``: trio_ws without the hub; fan-out is ``await
  ws.send_message(message)`` for each server end;
* ``trio-websocket-loop``: the same loop with trio-websocket.

Prints one JSON line: the process's RSS growth per member (both ends of each
connection, plus the hub's member state and tasks, live in this process), the
time to set the members up, and for one 100-byte message the time of the
fan-out call and the time until every member received it. Compression and
keepalive pings are off.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import time
from collections.abc import Awaitable, Callable
from typing import Any

import trio
import trio.testing
from bench_hub_common import ROOM, rss_kib

VARIANTS = ("trio_ws-hub", "trio_ws-loop", "trio-websocket-loop")
WARMUP_MEMBERS = 20
SETUP_BATCH = 100


class Group:
    """Members of one room: their server ends (loop variants) and receipt counts."""

    def __init__(self, room: str) -> None:
        self.room = room
        self.server_ends: list[Any] = []
        self.joined = 0
        self.expected_joins = 0
        self.all_joined = trio.Event()
        self.received = 0
        self.target = 0
        self.all_received = trio.Event()

    def member_joined(self) -> None:
        """Count a member whose server end is ready (in the room, or in the list)."""
        self.joined += 1
        if self.joined == self.expected_joins:
            self.all_joined.set()

    def expect(self, count: int) -> None:
        """Arm the event for ``count`` more receipts."""
        self.target = self.received + count
        self.all_received = trio.Event()


async def run(variant: str, members: int, size: int) -> None:
    """Build the members, measure memory, time one fan-out, print, and exit."""
    if variant == "trio-websocket-loop":
        import trio_websocket as module

        server_options: dict[str, Any] = {}
        client_options: dict[str, Any] = {}
    else:
        import trio_ws as module

        server_options = {"compression": None, "ping_interval": None}
        client_options = dict(server_options)
    hub = None
    if variant == "trio_ws-hub":
        from trio_ws.hub import Hub

        hub = Hub()

    async def serve_member(nursery: trio.Nursery, stream: trio.abc.Stream, group: Group) -> None:
        request = await module.wrap_server_stream(nursery, stream, **server_options)
        ws = await request.accept()
        if hub is not None:
            async with hub.connect(ws) as member:
                await member.join(group.room)
                group.member_joined()
                await ws.wait_closed()
        else:
            group.server_ends.append(ws)
            group.member_joined()
            await trio.sleep_forever()

    async def receive(ws: Any, group: Group) -> None:
        while True:
            await ws.get_message()
            group.received += 1
            if group.received == group.target:
                group.all_received.set()

    async def add_member(nursery: trio.Nursery, group: Group) -> None:
        client_end, server_end = trio.testing.memory_stream_pair()
        nursery.start_soon(serve_member, nursery, server_end, group)
        ws = await module.wrap_client_stream(nursery, client_end, "localhost", "/", **client_options)
        nursery.start_soon(receive, ws, group)

    async def add_members(nursery: trio.Nursery, group: Group, count: int) -> None:
        # Handshakes run SETUP_BATCH at a time: one at a time costs a pass of
        # the scheduler per step of each handshake, and setup is not measured.
        group.expected_joins = group.joined + count
        for first in range(0, count, SETUP_BATCH):
            async with trio.open_nursery() as batch:
                for _ in range(min(SETUP_BATCH, count - first)):
                    batch.start_soon(add_member, nursery, group)
        await group.all_joined.wait()

    def fan_out(group: Group) -> Callable[[bytes], Awaitable[None]]:
        async def hub_broadcast(message: bytes) -> None:
            assert hub is not None
            await hub.broadcast(group.room, message)

        async def loop(message: bytes) -> None:
            for ws in group.server_ends:
                await ws.send_message(message)

        return hub_broadcast if hub is not None else loop

    async def one_message(group: Group, count: int) -> tuple[float, float]:
        send = fan_out(group)
        group.expect(count)
        start = time.perf_counter()
        await send(bytes(size))
        call = time.perf_counter() - start
        await group.all_received.wait()
        return call, time.perf_counter() - start

    async with trio.open_nursery() as nursery:
        # Warm up the code paths (lazy imports, first allocations) in another room.
        warmup = Group("warmup")
        await add_members(nursery, warmup, WARMUP_MEMBERS)
        await one_message(warmup, WARMUP_MEMBERS)
        gc.collect()
        before = rss_kib()

        group = Group(ROOM)
        # The collector is paused while the members are set up: every full
        # collection rescans all the members made so far, which made the setup
        # of 10,000 take over 30 s. It is back on (after a full collection)
        # before anything is measured.
        gc.disable()
        start = time.perf_counter()
        await add_members(nursery, group, members)
        setup = time.perf_counter() - start
        gc.enable()
        gc.collect()
        after = rss_kib()

        await one_message(group, members)  # untimed: first use of the room
        gc.collect()
        call, elapsed = await one_message(group, members)
        result = {
            "variant": variant,
            "members": members,
            "size": size,
            "rss_before_kib": before,
            "rss_after_kib": after,
            "kib_per_member": (after - before) / members,
            "setup_seconds": setup,
            "call_seconds": call,
            "elapsed_seconds": elapsed,
        }
        print(json.dumps(result), flush=True)
        # Skip tearing down the members (slow, and measures nothing): the
        # process is thrown away.
        os._exit(0)


def main(argv: list[str] | None = None) -> None:
    """Run one measurement and print it as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("variant", choices=VARIANTS)
    parser.add_argument("--members", type=int, default=10_000)
    parser.add_argument("--size", type=int, default=100)
    args = parser.parse_args(argv)
    trio.run(run, args.variant, args.members, args.size)


if __name__ == "__main__":
    main()
