"""Rooms with history across real server processes (hub_node.py --history): a publisher killed
mid-burst, a consumer process stopped (SIGSTOP) and continued.

Every room of these nodes keeps history, so every room is a Redis Stream.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import trio
from conftest import RedisServer

import trio_ws

pytest.importorskip("coredis", reason="coredis is not installed (test extra)")

from hub_node import NodeClient
from test_multiprocess import read_port

HUB_NODE = Path(__file__).resolve().parent / "hub_node.py"


@asynccontextmanager
async def stream_nodes(url: str, count: int) -> AsyncIterator[list[tuple[trio.Process, int]]]:
    """``count`` hub_node.py processes with history on every room; (process, port) pairs; stopped by handle."""
    prefix = f"sp{uuid.uuid4().hex[:10]}"
    processes: list[trio.Process] = []
    try:
        for index in range(count):
            command = [sys.executable, str(HUB_NODE), "--redis-url", url, "--prefix", prefix, "--history"]
            command += ["--process-id", f"node{index}", "--stdin-lifeline"]
            processes.append(await trio.lowlevel.open_process(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE))
        yield [(process, await read_port(process)) for process in processes]
    finally:
        with trio.CancelScope(shield=True):
            for process in processes:
                if process.returncode is None:
                    process.send_signal(signal.SIGCONT)
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


@asynccontextmanager
async def client(port: int, member_id: str) -> AsyncIterator[NodeClient]:
    async with trio_ws.open_websocket("127.0.0.1", port, f"/?id={member_id}", use_ssl=False) as ws:
        node_client = NodeClient(ws, member_id)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(node_client.read)
            await node_client.call("stats")
            yield node_client
            nursery.cancel_scope.cancel()


def numbered(node_client: NodeClient) -> list[Any]:
    return [m["n"] for m in node_client.messages if "n" in m]


async def test_a_publisher_killed_mid_burst(redis_server: RedisServer) -> None:
    """What the killed process appended reaches every member, in order, once; a resume replays the same."""
    with trio.fail_after(60):
        async with stream_nodes(redis_server.url, 2) as nodes:
            (publisher, port0), (_, port1) = nodes
            async with client(port1, "watcher") as watcher, client(port0, "sender") as sender:
                start = (await watcher.call("join", room="r"))["position"]
                await sender.call("join", room="r")
                # Fire broadcasts without waiting for their acks, and kill the publisher mid-burst.
                for n in range(2000):
                    await sender.ws.send_message(f'{{"op":"broadcast","room":"r","n":{n},"req":{10_000 + n}}}')
                    if n == 1000:
                        await watcher.wait_for(lambda m: len(m) >= 10)
                        publisher.kill()
                        await publisher.wait()
                        break
                # Everything appended arrives; then the stream stays still.
                while True:
                    before = len(numbered(watcher))
                    await trio.sleep(0.5)
                    if len(numbered(watcher)) == before:
                        break
                got = numbered(watcher)
                assert got == list(range(len(got))), "a gap, a duplicate or a reordering"
                assert 10 <= len(got) <= 1001
                print(f"\n{len(got)} of 1,001 broadcasts reached the other process before the kill")
            async with client(port1, "late") as late:
                reply = await late.call("join", room="r", since=start)
                assert (reply["recovered"], reply["replayed"]) == (True, len(got)), reply
                await late.wait_for(lambda m: len(numbered(late)) >= len(got))
                assert numbered(late) == got


async def test_a_stopped_consumer_process_catches_up(redis_server: RedisServer) -> None:
    """SIGSTOP one server for a while, broadcast meanwhile, SIGCONT: its members get everything, once, in order."""
    with trio.fail_after(60):
        async with stream_nodes(redis_server.url, 2) as nodes:
            (_, port0), (consumer, port1) = nodes
            async with client(port0, "sender") as sender, client(port1, "slow") as slow:
                for member in (sender, slow):
                    await member.call("join", room="r")
                consumer.send_signal(signal.SIGSTOP)
                try:
                    for n in range(300):
                        await sender.call("broadcast", room="r", n=n)
                    await sender.wait_for(lambda m: len(numbered(sender)) >= 300)
                    await trio.sleep(1.0)  # longer than the consumer's heartbeat: it finds its link stale
                finally:
                    consumer.send_signal(signal.SIGCONT)
                await slow.wait_for(lambda m: len(numbered(slow)) >= 300)
                await trio.sleep(0.3)
                assert numbered(slow) == list(range(300))
                stats = await slow.call("stats")
                assert stats["backend"]["gaps"] == 0
