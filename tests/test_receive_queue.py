"""The receive queue between a connection's reader and its receivers (trio_ws.receive_queue), without sockets."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from trio_ws.close import CloseReason
from trio_ws.errors import ConcurrencyError, ConnectionClosed, ConnectionClosedOK
from trio_ws.protocol import MessageChunk
from trio_ws.receive_queue import ReceiveQueue


def closed() -> ConnectionClosed:
    return ConnectionClosed.for_reason(CloseReason(1000, None))


async def test_whole_messages_come_out_in_order() -> None:
    queue = ReceiveQueue(None, closed)
    queue.put(MessageChunk("one", True, True))
    queue.put(MessageChunk(b"two", False, True))
    assert await queue.get_message() == "one"
    assert await queue.get_message() == b"two"


async def test_a_fragmented_message_is_joined() -> None:
    queue = ReceiveQueue(None, closed)
    for part, final in (("a", False), ("b", False), ("c", True)):
        queue.put(MessageChunk(part, True, final))
    assert await queue.get_message() == "abc"


async def test_a_receive_cancelled_half_way_through_a_message_loses_nothing(
    autojump_clock: trio.testing.MockClock,
) -> None:
    queue = ReceiveQueue(None, closed)
    queue.put(MessageChunk(b"he", False, False))
    with trio.move_on_after(1) as scope:  # the rest never comes in time
        await queue.get_message()
    assert scope.cancelled_caught
    queue.put(MessageChunk(b"llo", False, True))
    assert await queue.get_message() == b"hello"


async def test_full_above_the_limit_and_a_receiver_wakes_the_reader() -> None:
    queue = ReceiveQueue(1, closed)
    queue.put(MessageChunk("1", True, True))
    assert not queue.full
    queue.put(MessageChunk("2", True, True))
    assert queue.full
    woken = trio.Event()

    async def reader() -> None:
        await queue.wait_for_room()
        woken.set()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(reader)
        await trio.testing.wait_all_tasks_blocked()
        assert not woken.is_set()
        assert await queue.get_message() == "1"
    assert woken.is_set() and not queue.full


async def test_wake_reader_releases_a_waiting_reader() -> None:
    queue = ReceiveQueue(0, closed)
    queue.put(MessageChunk("x", True, True))
    async with trio.open_nursery() as nursery:
        nursery.start_soon(queue.wait_for_room)
        await trio.testing.wait_all_tasks_blocked()
        queue.wake_reader()


async def test_after_the_end_receivers_drain_then_get_the_closed_error() -> None:
    queue = ReceiveQueue(None, closed)
    queue.put(MessageChunk("last", True, True))
    queue.end()
    assert await queue.get_message() == "last"
    with pytest.raises(ConnectionClosedOK):
        await queue.get_message()


async def test_the_end_wakes_a_waiting_receiver() -> None:
    queue = ReceiveQueue(None, closed)
    async with trio.open_nursery() as nursery:

        async def receive() -> None:
            with pytest.raises(ConnectionClosed):
                await queue.get_message()

        nursery.start_soon(receive)
        await trio.testing.wait_all_tasks_blocked()
        queue.end()


async def test_chunks_stream_one_message_and_an_abandoned_rest_is_skipped() -> None:
    queue = ReceiveQueue(None, closed)
    queue.put(MessageChunk(b"a", False, False))
    queue.put(MessageChunk(b"b", False, False))
    queue.put(MessageChunk(b"c", False, True))
    queue.put(MessageChunk(b"next", False, True))
    stream = queue.chunks()
    assert await stream.__anext__() == b"a"  # then abandoned
    assert await queue.get_message() == b"next"
    queue.put(MessageChunk("x", True, False))
    queue.put(MessageChunk("y", True, True))
    assert [chunk async for chunk in queue.chunks()] == ["x", "y"]


async def test_a_stream_whose_message_another_receive_took_raises_concurrency_error() -> None:
    queue = ReceiveQueue(None, closed)
    for part, final in (("a", False), ("b", False), ("c", True), ("next", True)):
        queue.put(MessageChunk(part, True, final))
    stream = queue.chunks()
    assert await stream.__anext__() == "a"
    assert await queue.get_message() == "next"  # another task's receive: "b" and "c" are discarded
    with pytest.raises(ConcurrencyError, match="another receive took the rest of this message"):
        await stream.__anext__()
    queue.put(MessageChunk("later", True, True))
    with pytest.raises(ConcurrencyError):  # never a chunk of a later message
        await stream.__anext__()
    assert await queue.get_message() == "later"


async def test_a_stream_that_keeps_its_message_is_not_disturbed(autojump_clock: trio.testing.MockClock) -> None:
    queue = ReceiveQueue(None, closed)
    stream = queue.chunks()
    with trio.move_on_after(1):  # cancelled before its first chunk: not yet mid-message
        await stream.__anext__()
    queue.put(MessageChunk("a", True, False))
    queue.put(MessageChunk("b", True, True))
    assert [chunk async for chunk in stream] == ["a", "b"]


# -- a sink (the Engine.IO transport's fast path) -------------------------------------------------


async def test_a_sink_takes_whole_messages_only_while_the_receiver_waits_on_an_empty_queue() -> None:
    queue = ReceiveQueue(None, closed)
    taken: list[str | bytes] = []

    def sink(message: str | bytes) -> bool:
        if message == "declined":
            return False
        taken.append(message)
        return True

    queue.set_sink(sink)
    queue.put(MessageChunk("queued: no receiver waits", True, True))
    got: list[str | bytes] = []

    async def receiver() -> None:
        while True:
            got.append(await queue.get_message())

    async with trio.open_nursery() as nursery:
        nursery.start_soon(receiver)
        await trio.testing.wait_all_tasks_blocked()  # it took the first and waits for the next
        queue.put(MessageChunk("to the sink", True, True))
        queue.put(MessageChunk("declined", True, True))  # queued, and the receiver is woken for it
        queue.put(MessageChunk("behind the declined one", True, True))  # something is queued: not offered
        await trio.testing.wait_all_tasks_blocked()
        queue.put(MessageChunk("fragm", True, False))  # a fragmented message is never offered,
        queue.put(MessageChunk("ented", True, True))  # nor the end of one
        await trio.testing.wait_all_tasks_blocked()
        queue.put(MessageChunk("to the sink again", True, True))
        await trio.testing.wait_all_tasks_blocked()
        nursery.cancel_scope.cancel()
    assert taken == ["to the sink", "to the sink again"]
    assert got == ["queued: no receiver waits", "declined", "behind the declined one", "fragmented"]
    queue.set_sink(None)
    queue.put(MessageChunk("after", True, True))
    assert await queue.get_message() == "after"
