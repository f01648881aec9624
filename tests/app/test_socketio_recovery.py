"""trio_ws.app.socketio_recovery: the log of events for Socket.IO clients and the parked states (no I/O)."""

from __future__ import annotations

import pytest

from trio_ws.app.socketio_recovery import (
    ParkedState,
    RecoveryLog,
    default_policy,
    format_offset,
    parse_offset,
    personal_room,
)
from trio_ws.hub import HistoryPolicy, MessageVariants, StreamPosition


def event(n: int) -> MessageVariants:
    return MessageVariants({"socketio": f"42[{n}]"})


def texts(messages: list[MessageVariants] | None) -> list[str] | None:
    if messages is None:
        return None
    found = []
    for message in messages:
        frames = message.variant("socketio")
        assert frames is not None and not isinstance(frames, tuple)
        found.append(str(frames.data))
    return found


def test_offsets_round_trip_and_bad_ones_are_none() -> None:
    position = StreamPosition("ab12", 7)
    assert format_offset(position) == "ab12:7"
    assert parse_offset("ab12:7") == position
    for bad in (None, 7, "", "ab12", ":7", "ab12:x", "ab12:-1", "e:" + "9" * 19):
        assert parse_offset(bad) is None


def test_missed_events_are_those_after_the_offset_to_the_rooms_or_the_sid_of_the_namespace() -> None:
    log = RecoveryLog(HistoryPolicy(max_messages=100))
    start = log.position
    assert log.next_offset() == format_offset(StreamPosition(start.epoch, 1))
    log.record("/", "tea", (), event(1), 0.0)
    log.record("/", "coffee", (), event(2), 0.0)  # not one of its rooms
    log.record("/", "tea", ("me",), event(3), 0.0)  # excluded
    log.record("/chat", "tea", (), event(4), 0.0)  # another namespace
    log.record("/", personal_room("me"), (), event(5), 0.0)
    log.record("/", personal_room("other"), (), event(6), 0.0)
    rooms = frozenset({"tea"})
    assert texts(log.missed("/", start, rooms, "me", 0.0)) == ["42[1]", "42[5]"]
    assert texts(log.missed("/", StreamPosition(start.epoch, 1), rooms, "me", 0.0)) == ["42[5]"]
    assert texts(log.missed("/", log.position, rooms, "me", 0.0)) == []
    # Another epoch, an offset ahead: the log cannot tell.
    assert log.missed("/", StreamPosition("other", 0), rooms, "me", 0.0) is None
    assert log.missed("/", StreamPosition(start.epoch, 99), rooms, "me", 0.0) is None


def test_a_trimmed_log_cannot_serve_an_old_offset_and_forgets_its_targets() -> None:
    log = RecoveryLog(HistoryPolicy(max_messages=2))
    start = log.position
    for n in range(5):
        log.record("/", "tea", (), event(n), 0.0)
    assert log.missed("/", start, frozenset({"tea"}), "me", 0.0) is None
    assert texts(log.missed("/", StreamPosition(start.epoch, 3), frozenset({"tea"}), "me", 0.0)) == ["42[3]", "42[4]"]
    assert sorted(log._targets) == [4, 5]


def test_parked_states_are_taken_once_and_expire() -> None:
    log = RecoveryLog(default_policy(10), max_disconnection_duration=10)
    state = ParkedState("sid", {"/": frozenset({"tea"})}, {"name": "x"}, deadline=10.0, positions={})
    log.park("pid", state, now=0.0)
    assert log.parked == 1
    assert log.take("pid", now=5.0) is state
    assert log.take("pid", now=5.0) is None
    log.park("pid", state, now=0.0)
    assert log.take("pid", now=10.0) is None  # expired
    assert log.parked == 0


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="max_disconnection_duration"):
        RecoveryLog(HistoryPolicy(), max_disconnection_duration=0)
    policy = default_policy(60)
    assert (policy.max_messages, policy.max_bytes, policy.max_age) == (10_000, 8 * 1024 * 1024, 60)
