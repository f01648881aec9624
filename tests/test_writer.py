"""Tests of trio_ws.writer: how often sending yields to the scheduler.

The counts are task steps seen by a trio Instrument (deterministic, not
timed): a step is one run of a task between two yields.
"""

from __future__ import annotations

import os
import socket as stdlib_socket
from collections import Counter
from collections.abc import Awaitable, Callable

import pytest
import trio
import trio.testing
from support.pairs import ws_pair

import trio_ws.writer
from trio_ws import WebSocketConnection
from trio_ws.writer import SPLIT_FRAME_MIN

pytestmark = pytest.mark.skipif(os.name != "posix", reason="plain socket writes are POSIX-only")

ECHOES = 200


class StepCounter(trio.abc.Instrument):
    """Task steps per task name while ``counting`` is True."""

    def __init__(self) -> None:
        self.counting = False
        self.steps: Counter[str] = Counter()

    def before_task_step(self, task: trio.lowlevel.Task) -> None:
        if self.counting:
            self.steps[task.name] += 1


def socket_streams() -> tuple[trio.SocketStream, trio.SocketStream]:
    a, b = stdlib_socket.socketpair()
    return trio.SocketStream(trio.socket.from_stdlib_socket(a)), trio.SocketStream(trio.socket.from_stdlib_socket(b))


async def echo(ws: WebSocketConnection) -> None:
    async for message in ws:
        await ws.send_message(message)


async def test_an_echo_costs_one_step_per_task_on_each_side() -> None:
    # Per round trip: each side's reader task runs once (reads the frame,
    # wakes the receiver, waits for the next bytes) and the receiving task
    # runs once (gets the message, sends the answer without a second yield,
    # waits in get_message again). A raw trio TCP echo costs the same
    # number of steps; before this, sending yielded once more on each side.
    counter = StepCounter()
    async with trio.open_nursery() as nursery:
        client, server = await ws_pair(nursery, streams=socket_streams())
        nursery.start_soon(echo, server, name="echo")
        for _ in range(20):  # warm up: every lazy part made
            await client.send_message(b"x" * 32)
            await client.get_message()
        trio.lowlevel.add_instrument(counter)
        counter.counting = True
        for _ in range(ECHOES):
            await client.send_message(b"x" * 32)
            assert await client.get_message() == b"x" * 32
        counter.counting = False
        trio.lowlevel.remove_instrument(counter)
        await client.aclose()
    steps = counter.steps
    readers = sum(count for name, count in steps.items() if name.startswith("trio_ws reader"))
    assert readers == 2 * ECHOES, steps
    assert steps["echo"] == ECHOES, steps
    assert steps[trio.lowlevel.current_task().name] == ECHOES, steps
    assert sum(steps.values()) == 4 * ECHOES, steps


async def test_sends_that_do_not_follow_a_receive_yield() -> None:
    async with trio.open_nursery() as nursery:
        client, server = await ws_pair(nursery, streams=socket_streams())
        for _ in range(3):  # a sending loop lets other tasks run at every send
            with trio.testing.assert_checkpoints():
                await client.send_message("a")
        await server.send_message("b")
        assert await client.get_message() == "b"
        await client.send_message("c")  # the reply: the receive just yielded
        with trio.testing.assert_checkpoints():
            await client.send_message("d")  # a second send yields again
        assert [await server.get_message() for _ in range(5)] == ["a", "a", "a", "c", "d"]

        async def other_task() -> None:
            # Another task's send is not excused by the first task's receive.
            with trio.testing.assert_checkpoints():
                await client.send_message("e")

        async with trio.open_nursery() as inner:
            await server.send_message("f")
            assert await client.get_message() == "f"
            inner.start_soon(other_task)
        assert await server.get_message() == "e"
        await client.aclose()


async def yields(send: Callable[[], Awaitable[None]]) -> bool:
    """Whether ``send()`` let the scheduler run another step of the current task (it yielded)."""
    counter = StepCounter()
    me = trio.lowlevel.current_task().name
    trio.lowlevel.add_instrument(counter)
    counter.counting = True
    try:
        await send()
    finally:
        counter.counting = False
        trio.lowlevel.remove_instrument(counter)
    return counter.steps[me] > 0


async def test_send_many_without_schedule_skips_only_the_yield_after_a_write() -> None:
    async with trio.open_nursery() as nursery:
        client, server = await ws_pair(nursery, streams=socket_streams())
        assert await yields(lambda: server.send_many(["a"]))  # the default: every call yields
        assert not await yields(lambda: server.send_many(["b"], schedule=False))  # taken at once
        assert await yields(lambda: server.send_many(["c", "d"], schedule=False))  # a gather write yields
        with trio.CancelScope() as scope:
            scope.cancel()
            await server.send_many(["never"], schedule=False)  # still notices a cancellation first
        assert scope.cancelled_caught
        await server.send_message("e")
        assert [await client.get_message() for _ in range(5)] == ["a", "b", "c", "d", "e"]
        await client.aclose()


async def test_a_reply_in_a_cancelled_scope_sends_nothing() -> None:
    async with trio.open_nursery() as nursery:
        client, server = await ws_pair(nursery, streams=socket_streams())
        await server.send_message("ping?")
        assert await client.get_message() == "ping?"
        with trio.CancelScope() as scope:
            scope.cancel()
            await client.send_message("never")
        assert scope.cancelled_caught
        await client.send_message("after")
        assert await server.get_message() == "after"  # "never" was not sent
        await client.aclose()


@pytest.mark.parametrize("side", ["server", "client"])
async def test_a_large_message_is_not_copied_after_its_header(side: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # The frame goes out as two buffers in one gather write: its header and
    # its body. A server's body is the caller's bytes object itself; a
    # client's is the masked copy (the one copy masking needs).
    written: list[list[bytes]] = []
    send_frames = trio_ws.writer.send_frames

    async def recording_send_frames(
        stream: trio.abc.Stream, socket: trio.socket.SocketType | None, frames: list[bytes]
    ) -> None:
        written.append(list(frames))
        await send_frames(stream, socket, frames)

    monkeypatch.setattr(trio_ws.writer, "send_frames", recording_send_frames)
    options = {"compression": None}
    async with trio.open_nursery() as nursery:
        client, server = await ws_pair(nursery, streams=socket_streams(), client=options, server=options)
        sender, receiver = (server, client) if side == "server" else (client, server)
        payload = os.urandom(SPLIT_FRAME_MIN)
        async with trio.open_nursery() as sending:
            sending.start_soon(sender.send_message, payload)
            assert await receiver.get_message() == payload
        [[header, body]] = written
        assert len(header) == (14 if side == "client" else 10)  # 64-bit length (+ masking key)
        if side == "server":
            assert body is payload
        else:
            assert len(body) == len(payload) and body != payload
        written.clear()
        await sender.send_message(payload[:-1])  # one byte shorter: one frame, one buffer
        assert written == []
        assert await receiver.get_message() == payload[:-1]
        await client.aclose()
