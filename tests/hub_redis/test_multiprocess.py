"""Three hub_node.py server processes sharing rooms through a real redis-server.

120 trio_ws clients in this process are spread over the three servers: every
broadcast reaches every member exactly once and in order per sender, unicast
and presence cross processes, a publish-only HubClient (this process) reaches
them all, and the members of a server killed with SIGKILL leave the shared
membership within ``member_ttl``.
"""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import trio
from conftest import RedisServer

import trio_ws
from trio_ws.hub.client import HubClient

pytest.importorskip("coredis", reason="coredis is not installed (test extra)")

from hub_node import NodeClient

from trio_ws.hub.redis import RedisBackend

HUB_NODE = Path(__file__).resolve().parent / "hub_node.py"
NODES = 3
CLIENTS = 120
ROOMS = 3
MESSAGES = 10
HEARTBEAT = 0.25
MEMBER_TTL = 1.0


@asynccontextmanager
async def hub_nodes(url: str, prefix: str, *extra: str) -> AsyncIterator[list[tuple[trio.Process, int]]]:
    """Start the server processes (hub_node.py ``*extra``); yield (process, port) pairs; stop each by its handle."""
    processes: list[trio.Process] = []
    try:
        for index in range(NODES):  # all at once: each takes a second to import
            command = [sys.executable, str(HUB_NODE), "--redis-url", url, "--prefix", prefix, *extra]
            command += ["--process-id", f"node{index}", "--heartbeat", str(HEARTBEAT), "--ttl", str(MEMBER_TTL)]
            command.append("--stdin-lifeline")
            # Its stdin is a pipe from this process: if this process dies, the node exits too.
            processes.append(await trio.lowlevel.open_process(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE))
        nodes = [(process, await read_port(process)) for process in processes]
        yield nodes
    finally:
        with trio.CancelScope(shield=True):
            for process in processes:
                if process.returncode is None:
                    process.terminate()
            for process in processes:
                with trio.move_on_after(10):
                    await process.wait()
                if process.returncode is None:
                    process.kill()
                    await process.wait()
                for pipe in (process.stdin, process.stdout):
                    if pipe is not None:
                        await pipe.aclose()


async def read_port(process: trio.Process) -> int:
    """The port a hub_node prints on its first line."""
    assert process.stdout is not None
    line = b""
    with trio.fail_after(20):
        while not line.endswith(b"\n"):
            chunk = await process.stdout.receive_some(1)
            assert chunk, f"hub_node {process.args!r} exited before printing its port"
            line += chunk
    assert line.startswith(b"PORT "), line
    return int(line.split()[1])


@asynccontextmanager
async def clients(ports: list[int], nursery: trio.Nursery) -> AsyncIterator[list[NodeClient]]:
    """Connect CLIENTS clients round-robin over the servers (client i on server i % NODES)."""
    async with AsyncExitStack() as stack:
        result = []
        for index in range(CLIENTS):
            member_id = f"c{index:03d}"
            ws = await stack.enter_async_context(
                trio_ws.open_websocket("127.0.0.1", ports[index % NODES], f"/?id={member_id}", use_ssl=False)
            )
            client = NodeClient(ws, member_id)
            nursery.start_soon(client.read)
            result.append(client)
        yield result


def room_of(index: int) -> str:
    """Client i is on server i % 3 and in room (i // 3) % 3: every room spans every server."""
    return f"room{(index // NODES) % ROOMS}"


def from_sender(client: NodeClient, sender: str) -> list[Any]:
    return [m["n"] for m in client.messages if m.get("from") == sender and "n" in m]


async def test_many_clients_across_three_processes(redis_server: RedisServer) -> None:
    prefix = f"mp{uuid.uuid4().hex[:10]}"
    with trio.fail_after(90):
        async with hub_nodes(redis_server.url, prefix) as nodes, trio.open_nursery() as nursery:
            ports = [port for _, port in nodes]
            async with clients(ports, nursery) as everyone:
                async with trio.open_nursery() as joins:
                    for index, client in enumerate(everyone):
                        joins.start_soon(partial_call, client, "join", {"room": room_of(index)})
                for room in range(ROOMS):
                    reply = await everyone[room].call("members", room=f"room{room}")
                    expected = {c.id for i, c in enumerate(everyone) if room_of(i) == f"room{room}"}
                    assert set(reply["members"]) == expected
                    assert reply["count"] == len(expected)

                # Broadcast: two senders per room, on different servers, at the same time.
                senders = [everyone[i] for i in (0, 1, 3, 5, 7, 8)]
                async with trio.open_nursery() as sending:
                    for sender in senders:
                        sending.start_soon(send_series, sender, room_of(int(sender.id[1:])))
                expected_senders = {
                    f"room{r}": [s.id for s in senders if room_of(int(s.id[1:])) == f"room{r}"] for r in range(ROOMS)
                }
                for index, client in enumerate(everyone):
                    mine = expected_senders[room_of(index)]
                    with trio.fail_after(20):
                        await client.wait_for(
                            lambda _, c=client, s=mine: all(len(from_sender(c, x)) >= MESSAGES for x in s)
                        )
                # Late duplicates (an own message read back from Redis) would come
                # within moments: settle, then check exactly once and in order.
                await trio.sleep(0.5)
                for index, client in enumerate(everyone):
                    for sender in expected_senders[room_of(index)]:
                        assert from_sender(client, sender) == list(range(MESSAGES)), (client.id, sender)
                    others = {m.get("from") for m in client.messages if "n" in m} - set(
                        expected_senders[room_of(index)]
                    )
                    assert not others, (client.id, others)

                # Unicast across processes, both ways.
                assert (await everyone[0].call("unicast", to="c001", data="0->1"))["ok"] is True
                assert (await everyone[2].call("unicast", to="c000", data="2->0"))["ok"] is True
                assert (await everyone[1].call("unicast", to="c999", data="lost"))["ok"] is False
                with trio.fail_after(10):
                    await everyone[1].wait_for(lambda m: [x["direct"] for x in m if "direct" in x] == ["0->1"])
                    await everyone[0].wait_for(lambda m: [x["direct"] for x in m if "direct" in x] == ["2->0"])

                # Presence across processes: a watcher on server 0, a newcomer on server 1.
                watcher, newcomer = everyone[0], everyone[4]  # c000: room0, server 0; c004: room1, server 1
                await watcher.call("watch", room="room0")
                await newcomer.call("join", room="room0")
                await newcomer.call("leave", room="room0")

                def seen(m: list[dict[str, Any]]) -> list[tuple[str, str, bool]]:
                    return [(p["kind"], p["member_id"], p["remote"]) for x in m if (p := x.get("presence")) is not None]

                with trio.fail_after(10):
                    await watcher.wait_for(lambda m: seen(m) == [("join", "c004", True), ("leave", "c004", True)])

                # A publish-only client in this process.
                backend = RedisBackend(
                    redis_server.url, prefix=prefix, heartbeat_interval=HEARTBEAT, member_ttl=MEMBER_TTL
                )
                async with HubClient(backend) as worker:
                    assert await worker.member_count("room1") == sum(room_of(i) == "room1" for i in range(CLIENTS))
                    assert await worker.broadcast_json("room1", {"from": "worker", "n": "w"})
                for index, client in enumerate(everyone):
                    if room_of(index) == "room1":
                        with trio.fail_after(10):
                            await client.wait_for(lambda _, c=client: from_sender(c, "worker") == ["w"])

                # Kill server 1 (SIGKILL): its members leave the shared membership within member_ttl.
                killed = {c.id for i, c in enumerate(everyone) if i % NODES == 1 and room_of(i) == "room0"}
                assert killed
                nodes[1][0].kill()
                started = trio.current_time()
                with trio.fail_after(MEMBER_TTL + 2 * HEARTBEAT + 1.0):
                    while True:
                        members = set((await watcher.call("members", room="room0"))["members"])
                        if not members & killed:
                            break
                        await trio.sleep(0.05)
                elapsed = trio.current_time() - started
                print(f"\nmembers of the killed process gone after {elapsed:.2f} s (member_ttl={MEMBER_TTL} s)")
                assert members == {c.id for i, c in enumerate(everyone) if i % NODES != 1 and room_of(i) == "room0"}
                assert (await watcher.call("unicast", to=next(iter(killed)), data="x"))["ok"] is False
                nursery.cancel_scope.cancel()


async def partial_call(client: NodeClient, op: str, fields: dict[str, Any]) -> None:
    await client.call(op, **fields)


async def send_series(sender: NodeClient, room: str) -> None:
    for n in range(MESSAGES):
        reply = await sender.call("broadcast", room=room, n=n)
        assert reply["published"] is True
