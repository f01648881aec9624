"""Unit tests for trio_ws.hub.outbox.Outbox: sizes, overflow policies, waiting, closing, counters."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from trio_ws import PreparedMessage
from trio_ws.hub.outbox import Outbox, OutboxStats, Outcome

TIMEOUT = 5


def messages(count: int) -> list[PreparedMessage]:
    return [PreparedMessage(f"m{i}") for i in range(count)]


def drain_now(outbox: Outbox) -> list[str]:
    """What the outbox holds, in order (reads the deque without consuming it)."""
    return [str(message.data) for message in outbox._items]


# -- arguments ----------------------------------------------------------------------


@pytest.mark.parametrize("size", [0, -1, -100])
def test_size_below_one_is_rejected(size: int) -> None:
    with pytest.raises(ValueError, match="queue size"):
        Outbox(size, "close")


@pytest.mark.parametrize("policy", ["drop", "block", "", "CLOSE", "drop-newest"])
def test_unknown_policy_is_rejected(policy: str) -> None:
    with pytest.raises(ValueError, match="overflow policy"):
        Outbox(4, policy)  # type: ignore[arg-type]


@pytest.mark.parametrize("policy", ["close", "drop_newest", "drop_oldest"])
def test_a_fresh_outbox(policy: str) -> None:
    outbox = Outbox(1, policy)  # type: ignore[arg-type]
    assert len(outbox) == 0
    assert outbox.stats == OutboxStats()
    assert not outbox.closed
    assert not outbox.overflowed


# -- putting ------------------------------------------------------------------------


@pytest.mark.parametrize("policy", ["close", "drop_newest", "drop_oldest"])
def test_put_up_to_size_queues_everything(policy: str) -> None:
    outbox = Outbox(3, policy)  # type: ignore[arg-type]
    for message in messages(3):
        assert outbox.put(message) is Outcome.QUEUED
    assert len(outbox) == 3
    assert outbox.stats.queued == 3
    assert outbox.stats.dropped == 0
    assert outbox.stats.high_water == 3
    assert drain_now(outbox) == ["m0", "m1", "m2"]


def test_drop_newest_refuses_the_new_message() -> None:
    outbox = Outbox(2, "drop_newest")
    outcomes = [outbox.put(message) for message in messages(5)]
    assert outcomes == [Outcome.QUEUED, Outcome.QUEUED, Outcome.DROPPED, Outcome.DROPPED, Outcome.DROPPED]
    assert drain_now(outbox) == ["m0", "m1"]
    assert outbox.stats.queued == 2
    assert outbox.stats.dropped == 3
    assert outbox.stats.high_water == 2
    assert not outbox.overflowed
    assert not outbox.closed


def test_drop_oldest_evicts_the_oldest_message() -> None:
    outbox = Outbox(2, "drop_oldest")
    outcomes = [outbox.put(message) for message in messages(5)]
    assert outcomes == [Outcome.QUEUED] * 5
    assert drain_now(outbox) == ["m3", "m4"]
    assert outbox.stats.queued == 5
    assert outbox.stats.dropped == 3
    assert outbox.stats.high_water == 2
    assert not outbox.overflowed


def test_close_policy_marks_overflow_and_refuses_later_messages() -> None:
    outbox = Outbox(2, "close")
    outcomes = [outbox.put(message) for message in messages(5)]
    assert outcomes == [Outcome.QUEUED, Outcome.QUEUED, Outcome.DROPPED, Outcome.CLOSED, Outcome.CLOSED]
    assert outbox.overflowed
    assert not outbox.closed
    assert outbox.stats.queued == 2
    assert outbox.stats.dropped == 1  # only the message that found the queue full
    assert outbox.stats.high_water == 2


def test_high_water_tracks_the_peak() -> None:
    outbox = Outbox(10, "close")
    for message in messages(4):
        outbox.put(message)
    outbox._items.popleft()
    outbox._items.popleft()
    outbox.put(PreparedMessage("again"))
    assert len(outbox) == 3
    assert outbox.stats.high_water == 4


# -- getting ------------------------------------------------------------------------


async def test_get_returns_messages_in_order() -> None:
    outbox = Outbox(8, "close")
    sent = messages(5)
    for message in sent:
        outbox.put(message)
    with trio.fail_after(TIMEOUT):
        got = [await outbox.get() for _ in range(5)]
    assert got == sent
    assert len(outbox) == 0


async def test_get_waits_for_a_put() -> None:
    outbox = Outbox(4, "close")
    got: list[PreparedMessage | None] = []

    async def getter() -> None:
        got.append(await outbox.get())

    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(getter)
            await trio.testing.wait_all_tasks_blocked()
            assert got == [], "get() must wait while the outbox is empty"
            message = PreparedMessage("late")
            outbox.put(message)
    assert got == [message]


async def test_waited_tells_whether_the_last_get_yielded() -> None:
    outbox = Outbox(4, "close")
    outbox.put(PreparedMessage("queued"))
    with trio.testing.assert_no_checkpoints():
        batch = await outbox.get_batch(1024)  # something was queued: taken without yielding
    assert [str(message.data) for message in batch] == ["queued"]  # type: ignore[union-attr]
    assert not outbox.waited
    got: list[str] = []

    async def getter() -> None:
        got.extend(str(message.data) for message in await outbox.get_batch(1024))  # type: ignore[union-attr]

    async with trio.open_nursery() as nursery:
        nursery.start_soon(getter)
        await trio.testing.wait_all_tasks_blocked()
        outbox.put(PreparedMessage("later"))
    assert got == ["later"]
    assert outbox.waited


async def test_several_waiting_gets_each_get_one_message() -> None:
    outbox = Outbox(4, "close")
    got: list[str] = []

    async def getter() -> None:
        message = await outbox.get()
        assert message is not None
        got.append(str(message.data))

    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            for _ in range(3):
                nursery.start_soon(getter)
            await trio.testing.wait_all_tasks_blocked()
            for message in messages(3):
                outbox.put(message)
    assert sorted(got) == ["m0", "m1", "m2"]


async def test_get_is_cancellable_and_loses_nothing() -> None:
    outbox = Outbox(4, "close")
    with trio.fail_after(TIMEOUT):
        with trio.move_on_after(0.05) as scope:
            await outbox.get()
        assert scope.cancelled_caught
        outbox.put(PreparedMessage("kept"))
        message = await outbox.get()
    assert message is not None
    assert message.data == "kept"


async def test_get_returns_none_after_overflow_even_with_messages_queued() -> None:
    outbox = Outbox(1, "close")
    outbox.put(PreparedMessage("a"))
    outbox.put(PreparedMessage("b"))  # overflow
    with trio.fail_after(TIMEOUT):
        assert await outbox.get() is None


async def test_overflow_wakes_a_waiting_get() -> None:
    outbox = Outbox(1, "close")
    results: list[PreparedMessage | None] = []

    async def getter() -> None:
        results.append(await outbox.get())
        results.append(await outbox.get())

    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(getter)
            await trio.testing.wait_all_tasks_blocked()
            first = PreparedMessage("first")
            outbox.put(first)
            await trio.testing.wait_all_tasks_blocked()
            # The getter took "first" and waits again; fill the queue, then overflow it.
            outbox.put(PreparedMessage("second"))
            outbox.put(PreparedMessage("third"))
    assert results[0] is first
    assert results[1] is None


# -- closing ------------------------------------------------------------------------


async def test_close_wakes_a_waiting_get_with_none() -> None:
    outbox = Outbox(4, "drop_oldest")
    results: list[PreparedMessage | None] = []

    async def getter() -> None:
        results.append(await outbox.get())

    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(getter)
            await trio.testing.wait_all_tasks_blocked()
            outbox.close()
    assert results == [None]
    assert outbox.closed


@pytest.mark.parametrize("policy", ["close", "drop_newest", "drop_oldest"])
async def test_close_discards_queued_messages_and_refuses_new_ones(policy: str) -> None:
    outbox = Outbox(4, policy)  # type: ignore[arg-type]
    for message in messages(3):
        outbox.put(message)
    outbox.close()
    assert len(outbox) == 0
    assert outbox.put(PreparedMessage("after")) is Outcome.CLOSED
    assert outbox.stats.queued == 3
    assert outbox.stats.dropped == 0
    with trio.fail_after(TIMEOUT):
        assert await outbox.get() is None
        assert await outbox.get() is None  # stays closed
    outbox.close()  # idempotent
    assert outbox.closed
