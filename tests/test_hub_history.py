"""Tests for trio_ws.hub.history (sans-IO) and the hub's rooms with history.

The log is driven with plain numbers for the clock; the hub with real
trio_ws connections over memory streams (``hub_peers`` from test_hub) and
Trio's MockClock where age matters.
"""

from __future__ import annotations

import json
import math
import random
from typing import Any

import pytest
import trio
import trio.lowlevel
import trio.testing
from test_hub import Peer, hub_peers

from trio_ws import Hub, PreparedMessage
from trio_ws.hub import INTERNAL_ROOM_PREFIX, HistoryLost, HistoryPolicy, HubClient, JoinResult, StreamPosition
from trio_ws.hub.history import Histories, RoomHistory
from trio_ws.hub.redis import RedisBackend

#: Bound on one test: generous, since a loaded machine can pause a process
#: for seconds (a 10 s bound once expired on a busy CI box mid-suite).
TIMEOUT = 30


def message(text: str) -> PreparedMessage:
    return PreparedMessage(text)


def offsets(found: list[tuple[int, PreparedMessage]]) -> list[int]:
    return [offset for offset, _ in found]


def lost_reason(history: RoomHistory, position: StreamPosition, now: float = 0.0) -> str:
    with pytest.raises(HistoryLost) as caught:
        history.since(position, now)
    assert caught.value.position == history.position
    return caught.value.reason


# -- the policy and positions ------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"max_messages": 0}, "max_messages must be positive"),
        ({"max_bytes": -1}, "max_bytes must be positive"),
        ({"max_age": 0}, "max_age must be positive"),
        ({"max_messages": True}, "max_messages must be positive"),
        ({"max_messages": None, "max_bytes": None}, "needs max_messages or max_bytes"),
        ({"max_messages": math.inf, "max_bytes": None}, "needs max_messages or max_bytes"),
    ],
)
def test_policy_rejects_bad_bounds(options: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        HistoryPolicy(**options)


def test_policy_defaults_and_inf_means_no_bound() -> None:
    assert HistoryPolicy() == HistoryPolicy(max_messages=100, max_bytes=256 * 1024, max_age=300.0)
    policy = HistoryPolicy(max_bytes=math.inf, max_age=math.inf)
    assert policy.max_bytes is None
    assert policy.max_age is None


@pytest.mark.parametrize(
    "value",
    [("", 1), ("e", -1), ("e", 1.5), ("e", True), (3, 1), "e", ("e", 1, 2), None],
)
def test_stream_position_parse_rejects_bad_pairs(value: Any) -> None:
    with pytest.raises(ValueError, match="stream position"):
        StreamPosition.parse(value)


def test_stream_position_parse_accepts_pairs_and_positions() -> None:
    assert StreamPosition.parse(("abc", 0)) == StreamPosition("abc", 0)
    position = StreamPosition("abc", 7)
    assert StreamPosition.parse(position) is position


# -- the log -----------------------------------------------------------------------


def test_offsets_increase_from_one_within_a_random_epoch() -> None:
    history = RoomHistory(HistoryPolicy())
    assert history.position.offset == 0
    positions = [history.append(message(str(i)), 0.0) for i in range(5)]
    assert [p.offset for p in positions] == [1, 2, 3, 4, 5]
    assert {p.epoch for p in positions} == {history.epoch}
    assert history.position == positions[-1]
    assert [m.data for _, m in history] == ["0", "1", "2", "3", "4"]
    assert len({RoomHistory(HistoryPolicy()).epoch for _ in range(20)}) == 20
    assert RoomHistory(HistoryPolicy(), epoch="fixed").epoch == "fixed"


def test_lookup_from_a_position_returns_what_follows_in_order() -> None:
    history = RoomHistory(HistoryPolicy())
    epoch = history.epoch
    for i in range(5):
        history.append(message(str(i)), 0.0)
    assert offsets(history.since(StreamPosition(epoch, 0), 0.0)) == [1, 2, 3, 4, 5]
    assert [m.data for _, m in history.since(StreamPosition(epoch, 3), 0.0)] == ["3", "4"]
    assert history.since(StreamPosition(epoch, 5), 0.0) == []


def test_empty_history_lookup_from_zero_is_empty() -> None:
    history = RoomHistory(HistoryPolicy())
    assert history.since(StreamPosition(history.epoch, 0), 0.0) == []
    assert history.first_offset == 1


def test_bound_by_count() -> None:
    history = RoomHistory(HistoryPolicy(max_messages=3, max_bytes=None, max_age=None))
    for i in range(5):
        history.append(message(str(i)), 0.0)
    assert len(history) == 3
    assert history.first_offset == 3
    assert offsets(history.since(StreamPosition(history.epoch, 2), 0.0)) == [3, 4, 5]
    assert lost_reason(history, StreamPosition(history.epoch, 1)) == "trimmed"
    assert lost_reason(history, StreamPosition(history.epoch, 0)) == "trimmed"


def test_bound_by_bytes_counts_payload_bytes() -> None:
    history = RoomHistory(HistoryPolicy(max_messages=None, max_bytes=10, max_age=None))
    for text in ("aaaa", "bbbb", "cccc"):
        history.append(message(text), 0.0)
    assert history.size == 8
    assert offsets(history.since(StreamPosition(history.epoch, 1), 0.0)) == [2, 3]
    assert lost_reason(history, StreamPosition(history.epoch, 0)) == "trimmed"
    history.append(message("é" * 3), 0.0)  # 6 bytes of UTF-8: 4 + 6 fits, 8 + 6 does not
    assert offsets(history.since(StreamPosition(history.epoch, 2), 0.0)) == [3, 4]
    assert history.size == 10


def test_a_message_larger_than_max_bytes_gets_an_offset_but_is_not_kept() -> None:
    history = RoomHistory(HistoryPolicy(max_messages=None, max_bytes=10, max_age=None))
    history.append(message("small"), 0.0)
    position = history.append(message("x" * 11), 0.0)
    assert position.offset == 2
    assert len(history) == 0
    assert history.size == 0
    assert lost_reason(history, StreamPosition(history.epoch, 1)) == "trimmed"
    assert history.since(position, 0.0) == []
    assert history.append(message("next"), 0.0).offset == 3
    assert offsets(history.since(position, 0.0)) == [3]


def test_bound_by_age_with_the_clock_passed_in() -> None:
    history = RoomHistory(HistoryPolicy(max_age=10.0))
    history.append(message("at 0"), 0.0)
    history.append(message("at 5"), 5.0)
    assert offsets(history.since(StreamPosition(history.epoch, 0), 9.9)) == [1, 2]
    # At 10 the first message is exactly max_age old: it is gone.
    assert lost_reason(history, StreamPosition(history.epoch, 0), 10.0) == "trimmed"
    assert offsets(history.since(StreamPosition(history.epoch, 1), 10.0)) == [2]
    # Everything expired: a client that saw the newest message missed nothing.
    assert history.since(StreamPosition(history.epoch, 2), 20.0) == []
    assert len(history) == 0
    assert lost_reason(history, StreamPosition(history.epoch, 1), 20.0) == "trimmed"


def test_other_epoch_and_future_offsets_are_refused() -> None:
    history = RoomHistory(HistoryPolicy())
    history.append(message("m"), 0.0)
    assert lost_reason(history, StreamPosition("another-epoch", 0)) == "epoch"
    assert lost_reason(history, StreamPosition(history.epoch, 2)) == "ahead"


# -- the hub's collection ------------------------------------------------------------


def test_histories_follow_the_default_and_per_room_policies() -> None:
    histories = Histories(None)
    assert histories.open("room") is None
    assert histories.get("room") is None
    histories.enable("room", HistoryPolicy(max_messages=2))
    history = histories.open("room")
    assert history is not None and histories.get("room") is history
    assert histories.open("room") is history
    histories.enable("room", HistoryPolicy(max_messages=1))
    assert history.policy.max_messages == 1  # same epoch, new bound
    histories.enable("room", None)
    assert histories.open("room") is None

    everywhere = Histories(HistoryPolicy())
    assert everywhere.open("any") is not None
    everywhere.enable("quiet", None)
    assert everywhere.open("quiet") is None
    assert len(everywhere) == 1


def test_rooms_with_the_exempt_prefix_get_history_only_when_enabled() -> None:
    histories = Histories(HistoryPolicy(), exempt="\x1f")
    assert histories.open("\x1finternal") is None
    assert histories.open("public") is not None
    histories.enable("\x1finternal", HistoryPolicy())
    assert histories.open("\x1finternal") is not None


async def test_the_hub_policy_skips_internal_rooms() -> None:
    hub = Hub(history=HistoryPolicy())
    assert hub.history_position(INTERNAL_ROOM_PREFIX + "namespace") is None
    assert (await hub.broadcast(INTERNAL_ROOM_PREFIX + "namespace", "m")).position is None


def test_discard_starts_a_new_epoch() -> None:
    histories = Histories(HistoryPolicy())
    first = histories.open("room")
    assert first is not None
    assert histories.discard("room") is True
    assert histories.discard("room") is False
    second = histories.open("room")
    assert second is not None and second.epoch != first.epoch


def test_sweep_drops_only_expired_histories_of_rooms_without_members_at_most_once_per_max_age() -> None:
    histories = Histories(HistoryPolicy(max_age=10.0))
    for room in ("idle", "busy", "recent"):
        history = histories.open(room)
        assert history is not None
        history.append(message(room), 0.0)
    histories.enable("forever", HistoryPolicy(max_age=None))
    forever = histories.open("forever")
    assert forever is not None
    forever.append(message("kept"), 0.0)
    assert histories.sweep(5.0, set()) == 0  # nothing expired yet; the next sweep is due at 15
    recent = histories.get("recent")
    assert recent is not None
    recent.append(message("again"), 12.0)
    assert histories.sweep(12.0, set()) == 0  # too soon after the last sweep
    assert histories.sweep(15.0, {"busy"}) == 1
    assert histories.get("idle") is None
    assert histories.get("busy") is not None
    assert histories.get("recent") is not None
    assert histories.get("forever") is not None


def test_replay_results() -> None:
    histories = Histories(HistoryPolicy())
    history = histories.open("room")
    assert history is not None
    for i in range(3):
        history.append(message(str(i)), 0.0)
    result, missed = histories.replay("room", (history.epoch, 1), 10, 0.0)
    assert result == JoinResult(history.position, recovered=True, replayed=2)
    assert [m.data for m in missed] == ["1", "2"]
    assert histories.replay("room", (history.epoch, 0), 2, 0.0) == (
        JoinResult(history.position, reason="queue_full"),
        [],
    )
    assert histories.replay("room", ("old", 1), 10, 0.0) == (JoinResult(history.position, reason="epoch"), [])
    assert histories.replay("room", None, 10, 0.0) == (JoinResult(history.position), [])
    assert Histories(None).replay("room", ("e", 0), 10, 0.0) == (JoinResult(None, reason="no_history"), [])
    assert Histories(None).replay("room", None, 10, 0.0) == (JoinResult(None), [])
    with pytest.raises(ValueError, match="stream position"):
        histories.replay("room", ("", 0), 10, 0.0)


# -- through the hub -----------------------------------------------------------------


def stamped(position: StreamPosition | None, body: Any = None) -> str:
    """A message that carries its own position, as the event layer's envelope does."""
    assert position is not None
    return json.dumps({"epoch": position.epoch, "offset": position.offset, "body": body})


async def received_offsets(peer: Peer, until: int) -> list[int]:
    """Offsets the client receives, up to and including ``until``."""
    found: list[int] = []
    while not found or found[-1] < until:
        found.append(json.loads(await peer.client.get_message())["offset"])
    return found


async def test_broadcast_reports_positions_and_builds_messages_from_them() -> None:
    hub = Hub(history=HistoryPolicy())
    with trio.fail_after(TIMEOUT):
        async with hub_peers(hub, 1, room="r") as [peer]:
            epoch = hub.history_position("r")
            assert epoch is not None and epoch.offset == 0
            first = await hub.broadcast("r", "plain")
            second = await hub.broadcast("r", stamped)
            assert first.position == StreamPosition(epoch.epoch, 1)
            assert second.position == StreamPosition(epoch.epoch, 2)
            assert first.queued == second.queued == 1
            assert await peer.client.get_message() == "plain"
            assert json.loads(await peer.client.get_message()) == {"epoch": epoch.epoch, "offset": 2, "body": None}
            assert hub.history_position("r") == second.position


async def test_a_room_without_history_gets_no_position() -> None:
    hub = Hub()
    seen: list[StreamPosition | None] = []

    def build(position: StreamPosition | None) -> str:
        seen.append(position)
        return "built"

    with trio.fail_after(TIMEOUT):
        async with hub_peers(hub, 1, room="r") as [peer]:
            report = await hub.broadcast("r", build)
            assert report.position is None and report.queued == 1
            assert seen == [None]
            assert await peer.client.get_message() == "built"
            assert hub.history_position("r") is None
            assert len(hub._histories) == 0


async def test_a_failing_message_builder_raises_unchanged_and_takes_no_offset() -> None:
    hub = Hub(history=HistoryPolicy())

    def broken(position: StreamPosition | None) -> str:
        raise LookupError("from the builder")

    with trio.fail_after(TIMEOUT):
        async with hub_peers(hub, 1, room="r") as [peer]:
            with pytest.raises(LookupError, match="from the builder"):
                await hub.broadcast("r", broken)
            assert (await hub.broadcast("r", stamped)).position.offset == 1  # type: ignore[union-attr]
            assert json.loads(await peer.client.get_message())["offset"] == 1


async def test_join_since_replays_the_missed_messages_then_live_ones() -> None:
    hub = Hub(history=HistoryPolicy())
    with trio.fail_after(TIMEOUT):
        async with hub_peers(hub, 1) as [peer]:
            for _ in range(5):
                await hub.broadcast("r", stamped)
            epoch = hub.history_position("r").epoch  # type: ignore[union-attr]
            result = await peer.member.join("r", since=(epoch, 2))
            assert result == JoinResult(StreamPosition(epoch, 5), recovered=True, replayed=3)
            await hub.broadcast("r", stamped)
            assert await received_offsets(peer, 6) == [3, 4, 5, 6]


async def test_excluded_members_can_still_replay_the_message() -> None:
    hub = Hub(history=HistoryPolicy())
    with trio.fail_after(TIMEOUT):
        async with hub_peers(hub, 1, room="r") as [peer]:
            report = await hub.broadcast("r", stamped, exclude=peer.id)
            assert report.queued == 0
            await hub.leave(peer.id, "r")
            assert report.position is not None
            result = await hub.join(peer.id, "r", since=(report.position.epoch, 0))
            assert result.replayed == 1
            assert await received_offsets(peer, 1) == [1]


async def test_join_since_while_broadcasts_run_concurrently_has_no_gap_and_no_duplicate() -> None:
    """Three broadcasters and five late joiners interleave at every checkpoint."""
    per_sender, senders = 150, 3
    total = per_sender * senders
    policy = HistoryPolicy(max_messages=total, max_bytes=None, max_age=None)
    hub = Hub(history=policy, queue_size=2 * total)
    rng = random.Random(20261206)
    with trio.fail_after(TIMEOUT * 3):
        async with hub_peers(hub, 5) as joiners:
            epoch = hub.history_position("r").epoch  # type: ignore[union-attr]
            results: dict[str, JoinResult] = {}
            starts: dict[str, int] = {}

            async def broadcaster() -> None:
                for _ in range(per_sender):
                    await hub.broadcast("r", stamped)
                    await trio.lowlevel.checkpoint()

            async def joiner(peer: Peer, wait: int) -> None:
                for _ in range(wait):
                    await trio.lowlevel.checkpoint()
                current = hub.history_position("r")
                assert current is not None
                # A client that saw everything up to some earlier offset comes back.
                starts[peer.id] = rng.randrange(0, current.offset + 1)
                results[peer.id] = await peer.member.join("r", since=(epoch, starts[peer.id]))

            async with trio.open_nursery() as nursery:
                for _ in range(senders):
                    nursery.start_soon(broadcaster)
                for index, peer in enumerate(joiners):
                    nursery.start_soon(joiner, peer, 1 + index * 70)
            for peer in joiners:
                assert results[peer.id].recovered
                got = await received_offsets(peer, total)
                assert got == list(range(starts[peer.id] + 1, total + 1))


async def test_join_from_another_epoch_joins_live_and_says_why() -> None:
    hub = Hub(history=HistoryPolicy())
    with trio.fail_after(TIMEOUT):
        async with hub_peers(hub, 1) as [peer]:
            await hub.broadcast("r", stamped)
            result = await hub.join(peer.id, "r", since=("stale-epoch", 1))
            assert result.recovered is False and result.reason == "epoch" and result.replayed == 0
            assert result.position == hub.history_position("r")
            assert "r" in peer.member.rooms
            await hub.broadcast("r", stamped)
            assert await received_offsets(peer, 2) == [2]


async def test_join_after_the_history_aged_out_is_not_recovered(mock_clock: trio.testing.MockClock) -> None:
    hub = Hub(history=HistoryPolicy(max_age=30.0))
    with trio.fail_after(TIMEOUT + 31):  # the mock clock jumps 31 s
        async with hub_peers(hub, 2) as [early, late]:
            first = (await hub.broadcast("r", stamped)).position
            assert first is not None
            mock_clock.jump(31)
            await hub.broadcast("r", stamped)
            assert (await hub.join(early.id, "r", since=(first.epoch, 0))).reason == "trimmed"
            result = await hub.join(late.id, "r", since=(first.epoch, 1))
            assert result.recovered and result.replayed == 1
            assert await received_offsets(late, 2) == [2]


async def test_join_with_more_missed_than_the_outbox_holds_replays_nothing() -> None:
    hub = Hub(history=HistoryPolicy(), queue_size=3)
    with trio.fail_after(TIMEOUT):
        async with hub_peers(hub, 1) as [peer]:
            for _ in range(4):
                await hub.broadcast("r", stamped)
            epoch = hub.history_position("r").epoch  # type: ignore[union-attr]
            result = await hub.join(peer.id, "r", since=(epoch, 0))
            assert (result.recovered, result.reason, result.replayed) == (False, "queue_full", 0)
            assert peer.member.queued == 0
            assert (await hub.join(peer.id, "r", since=(epoch, 1))).reason == "already_joined"
            await hub.leave(peer.id, "r")
            assert (await hub.join(peer.id, "r", since=(epoch, 1))).replayed == 3


async def test_join_without_since_reports_the_position_and_replays_nothing() -> None:
    hub = Hub()
    hub.enable_history("r", HistoryPolicy(max_messages=5))
    with trio.fail_after(TIMEOUT):
        async with hub_peers(hub, 1) as [peer]:
            await hub.broadcast("r", stamped)
            result = await peer.member.join("r")
            assert result == JoinResult(hub.history_position("r"))
            assert (await peer.member.join("r")) == result  # already joined, no since: no effect
            assert (await hub.join(peer.id, "plain")) == JoinResult(None)
            assert (await hub.join(peer.id, "other", since=("e", 0))).reason == "no_history"
            await hub.broadcast("r", stamped)
            assert await received_offsets(peer, 2) == [2]


async def test_enable_disable_and_discard_history() -> None:
    hub = Hub(history=HistoryPolicy())
    hub.disable_history("quiet")
    assert hub.history_position("quiet") is None
    assert (await hub.broadcast("quiet", "m")).position is None
    hub.enable_history("quiet")
    position = hub.history_position("quiet")
    assert position is not None and position.offset == 0
    await hub.broadcast("quiet", "m")
    assert hub.discard_history("quiet") is True
    renewed = hub.history_position("quiet")
    assert renewed is not None and renewed.epoch != position.epoch and renewed.offset == 0


async def test_idle_histories_are_dropped_by_later_broadcasts(mock_clock: trio.testing.MockClock) -> None:
    hub = Hub(history=HistoryPolicy(max_age=10.0))
    with trio.fail_after(TIMEOUT + 11):  # the mock clock jumps 11 s
        async with hub_peers(hub, 1, room="busy") as _:
            old_idle = (await hub.broadcast("idle", "m")).position
            old_busy = (await hub.broadcast("busy", "m")).position
            mock_clock.jump(11)
            await hub.broadcast("other", "m")
            new_idle = hub.history_position("idle")
            assert new_idle is not None and old_idle is not None and new_idle.epoch != old_idle.epoch
            assert old_busy is not None and hub.history_position("busy") == old_busy


async def test_a_new_hub_has_a_new_epoch_and_refuses_old_positions() -> None:
    old = Hub(history=HistoryPolicy())
    await old.broadcast("r", "m")
    position = old.history_position("r")
    restarted = Hub(history=HistoryPolicy())
    assert position is not None and restarted.history_position("r") != position
    with trio.fail_after(TIMEOUT):
        async with hub_peers(restarted, 1) as [peer]:
            result = await peer.member.join("r", since=position)
            assert (result.recovered, result.reason) == (False, "epoch")
            await peer.member.leave("r")
            current = restarted.history_position("r")
            assert current is not None
            result = await peer.member.join("r", since=(current.epoch, 5))
            assert (result.recovered, result.reason) == (False, "ahead")


class _PubSubOnly:
    """A backend with the pub/sub methods only (the HubBackend protocol), no streams."""

    process_id = "p"

    async def run(self, sink: object, *, task_status: object = None) -> None:
        raise NotImplementedError

    async def subscribe(self, room: str) -> None: ...
    async def unsubscribe(self, room: str) -> None: ...
    async def publish_room(self, room: str, envelope: object) -> bool: ...
    async def publish_all(self, envelope: object) -> bool: ...
    async def publish_to_member(self, member_id: str, envelope: object) -> bool: ...
    async def add_member(self, member_id: str, room: str | None) -> None: ...
    async def remove_member(self, member_id: str, room: str | None) -> None: ...
    async def room_members(self, room: str) -> set[str] | None: ...


def test_history_needs_a_backend_that_keeps_streams() -> None:
    with pytest.raises(ValueError, match="backend that keeps streams"):
        Hub(backend=_PubSubOnly(), history=HistoryPolicy())  # type: ignore[arg-type]
    hub = Hub(backend=_PubSubOnly())  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="backend that keeps streams"):
        hub.enable_history("room")
    with pytest.raises(ValueError, match="backend that keeps streams"):
        HubClient(_PubSubOnly(), history=HistoryPolicy())  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="backend that keeps streams"):
        HubClient(_PubSubOnly()).enable_history("room")  # type: ignore[arg-type]
    # The Redis backend keeps streams: history is accepted there.
    Hub(backend=RedisBackend(), history=HistoryPolicy()).enable_history("room")


async def test_before_replay_queues_its_message_ahead_of_the_replay() -> None:
    hub = Hub(history=HistoryPolicy())
    seen: list[JoinResult] = []
    with trio.fail_after(TIMEOUT):
        async with hub_peers(hub, 1) as [peer]:
            for _ in range(2):
                await hub.broadcast("r", stamped)
            epoch = hub.history_position("r").epoch  # type: ignore[union-attr]

            def first(result: JoinResult) -> None:
                seen.append(result)
                peer.member.send("answer first")

            result = await hub.join(peer.id, "r", since=(epoch, 0), before_replay=first)
            assert seen == [result] and result.replayed == 2
            assert await peer.client.get_message() == "answer first"
            assert await received_offsets(peer, 2) == [1, 2]
            # Already in the room: called too, with the result.
            again = await hub.join(peer.id, "r", before_replay=seen.append)
            assert seen[-1] is again
