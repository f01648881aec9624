"""Tests of trio_ws.locks: the FIFO lock and the lazily made parking lot and event."""

from __future__ import annotations

import trio
import trio.testing

from trio_ws.locks import FifoLock, LazyEvent, LazyParkingLot


async def test_lazy_parking_lot_parks_and_wakes_in_order() -> None:
    lot = LazyParkingLot()
    assert not lot
    lot.unpark()  # nobody there: nothing happens
    lot.unpark_all()
    woken: list[int] = []

    async def waiter(i: int) -> None:
        await lot.park()
        woken.append(i)

    async with trio.open_nursery() as nursery:
        for i in range(3):
            nursery.start_soon(waiter, i)
            await trio.testing.wait_all_tasks_blocked()
        assert lot
        lot.unpark()
        await trio.testing.wait_all_tasks_blocked()
        assert woken == [0]
        lot.unpark_all()
    assert sorted(woken) == [0, 1, 2]  # woken together: Trio picks the order they run in
    assert not lot


async def test_lazy_event_behaves_as_an_event() -> None:
    event = LazyEvent()
    assert not event.is_set()
    woken = []

    async def waiter() -> None:
        await event.wait()
        woken.append(True)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(waiter)
        nursery.start_soon(waiter)
        await trio.testing.wait_all_tasks_blocked()
        assert woken == []
        event.set()
    assert woken == [True, True]
    assert event.is_set()
    with trio.testing.assert_checkpoints():
        await event.wait()  # already set: returns at once, still a checkpoint
    event.set()  # idempotent


async def test_fifo_lock_hands_over_in_arrival_order() -> None:
    lock = FifoLock()
    order: list[int] = []
    with trio.testing.assert_no_checkpoints():
        await lock.acquire()  # uncontended: no yield

    async def taker(i: int) -> None:
        await lock.acquire()
        order.append(i)
        lock.release()

    async with trio.open_nursery() as nursery:
        for i in range(3):
            nursery.start_soon(taker, i)
            await trio.testing.wait_all_tasks_blocked()
        lock.release()
    assert order == [0, 1, 2]
    with trio.testing.assert_no_checkpoints():
        await lock.acquire()
    lock.release()
