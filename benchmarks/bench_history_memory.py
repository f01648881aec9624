"""Memory cost of room history in the hub, measured with tracemalloc (one process).

Usage::

    python benchmarks/bench_history_memory.py [--rooms 1000] [--messages 1000] [--size 100]

Members are real trio_ws connections over ``trio.testing.memory_stream_pair``
(server end registered with ``hub.connect()``, client end reading). The
connections are made before the first snapshot, so only the hub's
bookkeeping is measured:

* ``join``: each of ``--rooms`` members joins its own room; bytes per
  (room, member), for a hub without history, the same hub while other rooms
  have history (``enable_history``), and a hub with a history policy for
  every room (an empty history per room);
* ``messages``: ``--messages`` messages of ``--size`` bytes broadcast to one
  room whose member reads them all; bytes kept per message once every member
  received them (0 without history: nothing is kept).

Prints a JSON line per scenario and a Markdown table.
"""

from __future__ import annotations

import argparse
import gc
import json
import tracemalloc
from collections.abc import Callable
from typing import Any

import trio
import trio.testing

import trio_ws
from trio_ws.hub import HistoryPolicy, Hub

OPTIONS: dict[str, Any] = {"compression": None, "ping_interval": None}


class Members:
    """``count`` members of ``hub``, each with a client that counts what it receives."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self.ids: list[str] = []
        self.received = 0
        self.changed = trio.Event()

    async def add(self, nursery: trio.Nursery, count: int) -> None:
        for _ in range(count):
            client_end, server_end = trio.testing.memory_stream_pair()
            ready = trio.Event()
            nursery.start_soon(self._serve, nursery, server_end, ready)
            ws = await trio_ws.wrap_client_stream(nursery, client_end, "localhost", "/", **OPTIONS)
            nursery.start_soon(self._read, ws)
            await ready.wait()

    async def _serve(self, nursery: trio.Nursery, stream: trio.abc.Stream, ready: trio.Event) -> None:
        request = await trio_ws.wrap_server_stream(nursery, stream, **OPTIONS)
        ws = await request.accept()
        async with self.hub.connect(ws) as member:
            self.ids.append(member.id)
            ready.set()
            await ws.wait_closed()

    async def _read(self, ws: trio_ws.WebSocketConnection) -> None:
        while True:
            await ws.get_message()
            self.received += 1
            self.changed.set()

    async def wait_received(self, count: int) -> None:
        while self.received < count:
            self.changed = trio.Event()
            await self.changed.wait()


def traced() -> int:
    gc.collect()
    return tracemalloc.get_traced_memory()[0]


async def measure_joins(make_hub: Callable[[], Hub], rooms: int) -> float:
    hub = make_hub()
    async with trio.open_nursery() as nursery:
        members = Members(hub)
        await members.add(nursery, rooms)
        for index, member_id in enumerate(members.ids):
            await hub.join(member_id, f"warm-up-{index}")
        before = traced()
        for index, member_id in enumerate(members.ids):
            await hub.join(member_id, f"room-{index}")
        after = traced()
        nursery.cancel_scope.cancel()
    return (after - before) / rooms


async def measure_messages(make_hub: Callable[[], Hub], messages: int, size: int) -> float:
    hub = make_hub()
    async with trio.open_nursery() as nursery:
        members = Members(hub)
        await members.add(nursery, 1)
        # Warm up the code paths and buffers with as many messages in another room.
        for room in ("warm-up", "room"):
            await hub.join(members.ids[0], room)
            await trio.testing.wait_all_tasks_blocked()
            before = traced()
            target = members.received + messages
            for index in range(messages):
                await hub.broadcast(room, index.to_bytes(4, "big") + bytes(size - 4))
                await trio.lowlevel.checkpoint()
            await members.wait_received(target)
            await trio.testing.wait_all_tasks_blocked()
            after = traced()
        nursery.cancel_scope.cancel()
    return (after - before) / messages


def with_history_elsewhere() -> Hub:
    hub = Hub()
    for index in range(100):
        hub.enable_history(f"other-{index}")
    return hub


async def run(rooms: int, messages: int, size: int) -> list[dict[str, Any]]:
    policy = HistoryPolicy(max_messages=messages, max_bytes=None, max_age=None)
    tracemalloc.start()
    results = []
    hubs: list[tuple[str, Callable[[], Hub]]] = [
        ("no history", Hub),
        ("history on 100 other rooms", with_history_elsewhere),
        ("history on every room", lambda: Hub(history=policy)),
    ]
    for name, make_hub in hubs:
        results.append({"scenario": "join", "hub": name, "bytes_per_room_member": await measure_joins(make_hub, rooms)})
    for name, make_hub in (hubs[0], hubs[2]):
        per_message = await measure_messages(make_hub, messages, size)
        results.append({"scenario": "messages", "hub": name, "size": size, "bytes_per_message": per_message})
    tracemalloc.stop()
    return results


def main(argv: list[str] | None = None) -> None:
    """Run the measurements and print them."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rooms", type=int, default=1000)
    parser.add_argument("--messages", type=int, default=1000)
    parser.add_argument("--size", type=int, default=100)
    args = parser.parse_args(argv)
    results = trio.run(run, args.rooms, args.messages, args.size)
    failures = check(results)
    for result in results:
        print(json.dumps(result))
    print()
    print("| scenario | hub | bytes |")
    print("| --- | --- | ---: |")
    for result in results:
        value = result.get("bytes_per_room_member", result.get("bytes_per_message"))
        what = "per (room, member)" if result["scenario"] == "join" else f"per kept {args.size}-byte message"
        print(f"| {result['scenario']} | {result['hub']} | {value:,.0f} {what} |")
    for failure in failures:
        print(f"FAIL: {failure}")
    if failures:
        raise SystemExit(1)


#: Allocation noise allowed when comparing per-room figures (bytes).
NOISE = 16


def check(results: list[dict[str, Any]]) -> list[str]:
    """The documented promise: a room without history costs nothing extra."""
    joins = {r["hub"]: r["bytes_per_room_member"] for r in results if r["scenario"] == "join"}
    kept = {r["hub"]: r["bytes_per_message"] for r in results if r["scenario"] == "messages"}
    failures = []
    if abs(joins["history on 100 other rooms"] - joins["no history"]) > NOISE:
        failures.append("a room without history costs more when other rooms have history")
    if kept["no history"] > NOISE:
        failures.append(f"a room without history keeps {kept['no history']:.0f} bytes per delivered message")
    return failures


if __name__ == "__main__":
    main()
