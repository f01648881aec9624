"""A trio_ws server with a Redis-backed hub, and the client side of its protocol.

Run as a child process by the multi-process tests::

    python hub_node.py --redis-url redis://127.0.0.1:PORT/0 --process-id node-1 [--cluster]

(``--cluster``: the URL names one node of a Redis Cluster, and the hub uses
:class:`~trio_ws.hub.redis_cluster.RedisClusterBackend`.)

It prints ``PORT <n>`` once it listens and serves until SIGTERM/SIGINT (or
SIGKILL, for the crash tests), or, with ``--stdin-lifeline``, until its stdin
closes (the test process that started it died). The in-process tests import :func:`handler`
and :class:`NodeClient` to run the same protocol in one trio run.

Protocol: a client connects to ``/?id=MEMBER_ID`` and sends JSON commands
``{"op": ..., "req": n, ...}``; the server answers each with ``{"ack": n, ...}``
through the member's outbox (so an ack comes after every hub message queued
before it). Hub messages are JSON objects without ``ack``.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import trio

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the checkout, when run as a script

import trio_ws
from trio_ws.hub import HistoryPolicy, Hub, Member
from trio_ws.hub.positioned import PositionedJSON
from trio_ws.hub.redis import RedisBackend
from trio_ws.hub.redis_cluster import RedisClusterBackend


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


async def _forward_presence(hub: Hub, member: Member, room: str, task_status: trio.TaskStatus[None]) -> None:
    async with hub.watch(room) as events:
        task_status.started()
        async for event in events:
            member.send(_dumps({"presence": {**asdict(event)}}))


async def _forward_events(hub: Hub, member: Member, task_status: trio.TaskStatus[None]) -> None:
    async with hub.backend_events() as events:
        task_status.started()
        async for event in events:
            member.send(_dumps({"event": asdict(event)}))


async def _command(hub: Hub, member: Member, nursery: trio.Nursery, cmd: dict[str, Any]) -> dict[str, Any]:
    op = cmd["op"]
    reply: dict[str, Any] = {"ack": cmd.get("req")}
    room = cmd.get("room", "")
    if op == "join":
        since = cmd.get("since")
        result = await member.join(room, since=None if since is None else tuple(since))
        position = result.position
        reply.update(recovered=result.recovered, replayed=result.replayed, reason=result.reason)
        reply["position"] = None if position is None else [position.epoch, position.offset]
    elif op == "leave":
        await member.leave(room)
    elif op == "broadcast":
        # In a room with history the message also carries its epoch and offset.
        body = PositionedJSON({"from": member.id, "room": room, "n": cmd.get("n"), "data": cmd.get("data")})
        report = await hub.broadcast(room, body, exclude=cmd.get("exclude"))
        reply.update(queued=report.queued, published=report.published)
    elif op == "send_all":
        report = await hub.send_all(_dumps({"from": member.id, "all": cmd.get("data")}))
        reply.update(queued=report.queued, published=report.published)
    elif op == "unicast":
        reply["ok"] = await hub.unicast(cmd["to"], _dumps({"from": member.id, "direct": cmd.get("data")}))
    elif op == "disconnect":
        reply["ok"] = await hub.disconnect(cmd["id"], cmd.get("code", 1000), cmd.get("reason", ""))
    elif op == "members":
        reply["members"] = sorted(await hub.members(room))
        reply["count"] = await hub.member_count(room)
    elif op == "close_room":
        await hub.close_room(room)
    elif op == "watch":
        await nursery.start(_forward_presence, hub, member, room)
    elif op == "events":
        await nursery.start(_forward_events, hub, member)
    elif op == "stats":
        backend = hub._backend
        reply["hub"] = asdict(hub.stats)
        reply["backend"] = asdict(backend.stats) if isinstance(backend, RedisBackend) else None
        reply["process_id"] = hub.process_id
    else:
        reply["error"] = f"unknown op {op!r}"
    return reply


async def handler(hub: Hub, request: trio_ws.WebSocketRequest) -> None:
    """Serve one client: register it with the hub and run its commands."""
    query = parse_qs(urlsplit(request.path).query)
    ws = await request.accept()
    async with hub.connect(ws, member_id=query.get("id", [None])[0]) as member, trio.open_nursery() as nursery:
        try:
            while True:
                cmd = json.loads(await ws.get_message())
                member.send(_dumps(await _command(hub, member, nursery, cmd)))
        except trio_ws.ConnectionClosed:
            pass
        finally:
            nursery.cancel_scope.cancel()


class NodeClient:
    """The test side of one connection: commands with acks, and the hub messages received."""

    def __init__(self, ws: trio_ws.WebSocketConnection, member_id: str) -> None:
        self.ws = ws
        self.id = member_id
        self.messages: list[dict[str, Any]] = []
        self._acks: dict[int, dict[str, Any]] = {}
        self._waiters: dict[int, trio.Event] = {}
        self._next = 0
        self._changed = trio.Event()

    async def read(self) -> None:
        """Read until the connection closes (run it in a nursery)."""
        try:
            async for raw in self.ws:
                message = json.loads(raw)
                if "ack" in message:
                    self._acks[message["ack"]] = message
                    waiter = self._waiters.pop(message["ack"], None)
                    if waiter is not None:
                        waiter.set()
                else:
                    self.messages.append(message)
                self._changed.set()
                self._changed = trio.Event()
        except trio_ws.ConnectionClosed:
            pass
        finally:
            self._changed.set()

    async def call(self, op: str, **fields: Any) -> dict[str, Any]:
        """Send a command and wait for its ack."""
        self._next += 1
        req = self._next
        self._waiters[req] = event = trio.Event()
        await self.ws.send_message(_dumps({"op": op, "req": req, **fields}))
        await event.wait()
        return self._acks.pop(req)

    async def wait_for(self, predicate: Callable[[list[dict[str, Any]]], bool]) -> list[dict[str, Any]]:
        """Wait until ``predicate(messages)`` holds (bound it with trio.fail_after)."""
        while not predicate(self.messages):
            await self._changed.wait()
        return self.messages

    def received(self, key: str) -> list[dict[str, Any]]:
        """The hub messages that have ``key``."""
        return [message for message in self.messages if key in message]


async def _exit_when_stdin_closes(scope: trio.CancelScope) -> None:
    stdin = trio.lowlevel.FdStream(sys.stdin.fileno())
    while await stdin.receive_some():
        pass
    scope.cancel()


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--redis-url", required=True)
    parser.add_argument("--process-id", required=True)
    parser.add_argument("--prefix", default="trio_ws")
    parser.add_argument("--heartbeat", type=float, default=0.25)
    parser.add_argument("--ttl", type=float, default=1.0)
    parser.add_argument("--cluster", action="store_true")
    parser.add_argument("--stdin-lifeline", action="store_true")
    parser.add_argument("--history", action="store_true", help="every room keeps history (a Redis stream)")
    args = parser.parse_args()
    backend = (RedisClusterBackend if args.cluster else RedisBackend)(
        args.redis_url,
        prefix=args.prefix,
        process_id=args.process_id,
        heartbeat_interval=args.heartbeat,
        member_ttl=args.ttl,
    )
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        history = HistoryPolicy(max_messages=10_000, max_bytes=None) if args.history else None
        async with Hub(backend=backend, queue_size=4096, history=history) as hub, trio.open_nursery() as nursery:
            server = await nursery.start(trio_ws.serve_websocket, lambda r: handler(hub, r), "127.0.0.1", 0, None)
            print(f"PORT {server.port}", flush=True)
            if args.stdin_lifeline:
                nursery.start_soon(_exit_when_stdin_closes, nursery.cancel_scope)
            async for _ in signals:
                nursery.cancel_scope.cancel()
                break


if __name__ == "__main__":
    trio.run(main)
