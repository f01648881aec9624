"""Section 4 (ordering) and section 6 (floods): events of one connection in
arrival order by default; opt-in bounded concurrency with results as they
complete; ``max_in_flight`` overflow answered with TooManyRequests while other
connections carry on (in memory, on Trio's autojump clock)."""

from __future__ import annotations

import random
from functools import partial
from typing import Any

import pytest
import trio
import trio.testing
from apphelpers import TIMEOUT, wait_until

from trio_ws import CallError
from trio_ws.app import App, EventConnection
from trio_ws.testing import TestClient

N_EVENTS = 200


def ordering_app(seen: list[int], **options: Any) -> App:
    app = App(**options)
    rng = random.Random(1234)

    @app.on("append")
    async def append(conn: EventConnection, i: int) -> int:
        await trio.sleep(rng.random() / 1000)  # up to 1 ms
        if rng.random() < 0.5:
            await trio.lowlevel.checkpoint()
        seen.append(i)
        return i

    return app


async def test_events_are_handled_in_arrival_order(autojump_clock: trio.testing.MockClock) -> None:
    seen: list[int] = []
    with trio.fail_after(TIMEOUT):
        # max_in_flight large enough for the whole burst: only ordering is tested here
        async with TestClient(ordering_app(seen, max_in_flight=N_EVENTS)) as client, client.connect("/ws") as conn:
            for i in range(N_EVENTS):
                await conn.emit("append", i)
            await wait_until(lambda: len(seen) == N_EVENTS)
            assert await conn.get_received() == []  # no error answers
    assert seen == list(range(N_EVENTS))


async def test_events_are_handled_in_arrival_order_with_default_options(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """The defaults (max_concurrency=1, max_in_flight=32): a burst of events is
    handled in order, none refused — App documents max_in_flight as the limit
    of waiting events "with max_concurrency > 1"."""
    seen: list[int] = []
    with trio.fail_after(TIMEOUT):
        async with TestClient(ordering_app(seen)) as client, client.connect("/ws") as conn:
            for i in range(N_EVENTS):
                await conn.emit("append", i)
            errors = await conn.get_received()
            await wait_until(lambda: len(seen) + len(errors) >= N_EVENTS)
    assert errors == []
    assert seen == list(range(N_EVENTS))


async def test_acks_in_order_by_default() -> None:
    seen: list[int] = []
    answered: list[int] = []
    with trio.fail_after(TIMEOUT):
        async with (
            TestClient(ordering_app(seen)) as client,
            client.connect("/ws") as conn,
            trio.open_nursery() as nursery,
        ):

            async def ask(i: int) -> None:
                answered.append(await conn.emit("append", i, ack=True))

            for i in range(20):
                nursery.start_soon(ask, i)
                await trio.testing.wait_all_tasks_blocked()  # sends go out in this order
    assert seen == list(range(20))
    assert sorted(answered) == list(range(20))


def concurrent_app(state: dict[str, Any], **options: Any) -> App:
    app = App(**options)
    state.update(active=0, peak=0)

    @app.on("work")
    async def work(conn: EventConnection, spec: dict) -> int:
        state["active"] += 1
        state["peak"] = max(state["peak"], state["active"])
        try:
            await trio.sleep(spec["delay"])
        finally:
            state["active"] -= 1
        return int(spec["i"])

    @app.on("ping")
    async def ping(conn: EventConnection, data: Any) -> str:
        return "pong"

    return app


async def test_default_handles_one_event_at_a_time(autojump_clock: trio.testing.MockClock) -> None:
    state: dict[str, Any] = {}
    with trio.fail_after(TIMEOUT):
        async with (
            TestClient(concurrent_app(state)) as client,
            client.connect("/ws") as conn,
            trio.open_nursery() as nursery,
        ):
            for i in range(6):
                nursery.start_soon(partial(conn.emit, "work", {"i": i, "delay": 0.01}, ack=True))
    assert state["peak"] == 1


@pytest.mark.parametrize("limit", [2, 4])
async def test_max_concurrency_runs_events_side_by_side_bounded(
    limit: int, autojump_clock: trio.testing.MockClock
) -> None:
    state: dict[str, Any] = {}
    results: list[int] = []
    with trio.fail_after(TIMEOUT):
        app = concurrent_app(state, max_concurrency=limit, max_in_flight=64)
        async with TestClient(app) as client, client.connect("/ws") as conn:
            start = trio.current_time()
            async with trio.open_nursery() as nursery:

                async def ask(i: int) -> None:
                    results.append(await conn.emit("work", {"i": i, "delay": 0.05}, ack=True))

                for i in range(12):
                    nursery.start_soon(ask, i)
            elapsed = trio.current_time() - start
    assert sorted(results) == list(range(12))
    assert state["peak"] == limit  # overlap, and never more than the limit
    assert elapsed < 12 * 0.05  # faster than one at a time


async def test_results_are_returned_as_they_complete(autojump_clock: trio.testing.MockClock) -> None:
    state: dict[str, Any] = {}
    completed: list[int] = []
    delays = [0.4, 0.3, 0.2, 0.1]
    with trio.fail_after(TIMEOUT):
        app = concurrent_app(state, max_concurrency=4)
        async with TestClient(app) as client, client.connect("/ws") as conn, trio.open_nursery() as nursery:

            async def ask(i: int) -> None:
                completed.append(await conn.emit("work", {"i": i, "delay": delays[i]}, ack=True))

            for i in range(len(delays)):
                nursery.start_soon(ask, i)
                await trio.testing.wait_all_tasks_blocked()
    assert completed == [3, 2, 1, 0]


async def test_max_in_flight_overflow_is_refused_while_others_carry_on(autojump_clock: trio.testing.MockClock) -> None:
    gate = trio.Event()
    started: list[int] = []
    app = App(max_concurrency=2, max_in_flight=3, flood_timeout=0.2)

    @app.on("slow")
    async def slow(conn: EventConnection, i: int) -> int:
        started.append(i)
        await gate.wait()
        return i

    @app.on("ping")
    async def ping(conn: EventConnection, data: Any) -> str:
        return "pong"

    answers: dict[int, Any] = {}
    with trio.fail_after(TIMEOUT):
        async with TestClient(app) as client, client.connect("/ws") as flood, client.connect("/ws") as other:
            async with trio.open_nursery() as nursery:
                refusals_in = trio.Event()

                async def ask(i: int) -> None:
                    try:
                        answers[i] = await flood.emit("slow", i, ack=True)
                    except CallError as err:
                        answers[i] = (err.error_type, err.message)
                    if len(answers) >= 10 - 2 - 3:
                        refusals_in.set()

                for i in range(10):
                    nursery.start_soon(ask, i)
                # The reader waits flood_timeout (0.2 s) for room before refusing each extra event.
                await refusals_in.wait()
                refused = {i: a for i, a in answers.items() if isinstance(a, tuple)}
                assert len(refused) >= 1
                assert all(a[0] == "TooManyRequests" for a in refused.values())
                assert len(started) == 2  # the two workers are busy
                assert flood.is_connected
                # another connection is served meanwhile
                assert await other.emit("ping", ack=True) == "pong"
                # the flooding connection too, once there is room
                gate.set()
            accepted = {i: a for i, a in answers.items() if not isinstance(a, tuple)}
            assert len(accepted) + len(refused) == 10
            assert 2 <= len(accepted) <= 2 + 3  # the busy workers plus max_in_flight waiting
            assert all(accepted[i] == i for i in accepted)
            assert await flood.emit("ping", ack=True) == "pong"


def test_invalid_limits() -> None:
    with pytest.raises(ValueError):
        App(max_concurrency=0)
    with pytest.raises(ValueError):
        App(max_in_flight=0)
