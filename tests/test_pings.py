"""The pings awaiting their pong (trio_ws.pings), without sockets."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from trio_ws.pings import PingTracker


async def test_a_pong_answers_its_ping_and_every_earlier_one_only(autojump_clock: trio.testing.MockClock) -> None:
    pings = PingTracker()
    first, second, third = (pings.add(payload) for payload in (b"1", b"2", b"3"))
    pings.pong_received(b"2")  # RFC 6455 §5.5.3: a peer may answer only the latest
    assert first.answered and first.event.is_set()
    assert second.answered and second.event.is_set()
    assert not third.answered and not third.event.is_set()
    assert pings.latency == 0


async def test_latency_is_the_round_trip_of_the_answered_ping(autojump_clock: trio.testing.MockClock) -> None:
    pings = PingTracker()
    assert pings.latency is None
    pings.add(b"x")
    await trio.sleep(1.5)
    pings.pong_received(b"x")
    assert pings.latency == pytest.approx(1.5)


async def test_an_unsolicited_pong_changes_nothing() -> None:
    pings = PingTracker()
    pending = pings.add(b"mine")
    pings.pong_received(b"theirs")
    assert not pending.event.is_set()
    assert pings.latency is None


async def test_abandoning_wakes_every_ping_unanswered() -> None:
    pings = PingTracker()
    pending = [pings.add(payload) for payload in (b"a", b"b")]
    pings.abandon_all()
    assert all(p.event.is_set() and not p.answered for p in pending)


async def test_payloads_are_unique_and_at_most_125_bytes() -> None:
    pings = PingTracker()
    chosen = pings.payload_for(None)
    assert len(chosen) == 4
    pings.add(chosen)
    assert pings.payload_for(None) != chosen
    with pytest.raises(ValueError, match="already used by a pending ping"):
        pings.payload_for(chosen)
    with pytest.raises(ValueError, match="126 bytes exceeds 125"):
        pings.payload_for(b"x" * 126)
    pings.discard(chosen)
    assert pings.payload_for(chosen) == chosen
    pings.discard(b"never sent")  # forgetting an unknown ping is harmless


async def test_a_tracker_has_its_own_table_only_from_its_first_ping() -> None:
    # Idle connections share one empty table; a ping gives a tracker its own.
    first, second = PingTracker(), PingTracker()
    assert first._pending is second._pending and not first._pending
    first.discard(b"none")  # forgetting an unknown ping writes nothing
    first.pong_received(b"none")
    pending = first.add(b"p1")
    assert first._pending is not second._pending
    assert not second._pending and second.payload_for(b"p1") == b"p1"
    first.pong_received(b"p1")
    assert pending.answered and pending.event.is_set()
