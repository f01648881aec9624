"""Tests for trio_ws.app.resume: the resume parameter, stamped event envelopes, the joined envelope."""

from __future__ import annotations

import json
from typing import Any

import pytest

from trio_ws.app.envelope import event_envelope, parse_envelope
from trio_ws.app.resume import MAX_RESUME_ROOMS, RESUME_PARAM, joined_envelope, parse_resume, stream_event
from trio_ws.hub import JoinResult, StreamPosition


def test_parse_resume_reads_positions_by_namespace_and_room() -> None:
    value = json.dumps({"/": {"tea": ["e1", 3], "cake": ["e2", 0]}, "/chat": {"tea": ["e3", 9]}})
    found, problem = parse_resume(value)
    assert problem is None
    assert found == {
        ("/", "tea"): StreamPosition("e1", 3),
        ("/", "cake"): StreamPosition("e2", 0),
        ("/chat", "tea"): StreamPosition("e3", 9),
    }


@pytest.mark.parametrize("value", [None, ""])
def test_parse_resume_without_a_value(value: str | None) -> None:
    assert parse_resume(value) == ({}, None)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("{not json", "is not valid JSON"),
        ("[1, 2]", "must be a JSON object of namespaces"),
        ('{"chat": {"tea": ["e", 1]}}', "is not a namespace with an object of rooms"),
        ('{"/": ["tea"]}', "is not a namespace with an object of rooms"),
        ('{"/": {"tea": ["e", -1]}}', "room 'tea': a stream position's offset"),
        ('{"/": {"tea": "e:1"}}', "room 'tea': a stream position is an (epoch, offset) pair"),
    ],
)
def test_parse_resume_reports_what_is_wrong(value: str, message: str) -> None:
    found, problem = parse_resume(value)
    assert found == {}
    assert problem is not None and problem.startswith(RESUME_PARAM) and message in problem


def test_parse_resume_keeps_the_valid_entries_and_bounds_the_count() -> None:
    found, problem = parse_resume('{"/": {"bad": ["", 1], "good": ["e", 1]}}')
    assert found == {("/", "good"): StreamPosition("e", 1)}
    assert problem is not None and "'bad'" in problem
    many = json.dumps({"/": {f"room-{i}": ["e", i] for i in range(MAX_RESUME_ROOMS + 5)}})
    found, problem = parse_resume(many)
    assert len(found) == MAX_RESUME_ROOMS
    assert problem == f"{RESUME_PARAM}: more than {MAX_RESUME_ROOMS} rooms"


def test_stream_event_stamps_only_rooms_with_history() -> None:
    build = stream_event("tick", {"n": 1}, "/chat", "tea")
    assert build(None) == event_envelope("tick", {"n": 1}, "/chat")
    stamped: dict[str, Any] = json.loads(build(StreamPosition("e", 7)))
    assert stamped == {
        "type": "event",
        "event": "tick",
        "namespace": "/chat",
        "data": {"n": 1},
        "room": "tea",
        "epoch": "e",
        "offset": 7,
    }
    envelope = parse_envelope(build(StreamPosition("e", 7)))
    assert (envelope.type, envelope.event, envelope.data) == ("event", "tick", {"n": 1})
    with pytest.raises(TypeError):
        stream_event("tick", object(), "/", "tea")(None)


def test_joined_envelope() -> None:
    result = JoinResult(StreamPosition("e", 4), recovered=True, replayed=2)
    assert json.loads(joined_envelope("/", "tea", result)) == {
        "type": "joined",
        "namespace": "/",
        "room": "tea",
        "epoch": "e",
        "offset": 4,
        "recovered": True,
    }
    lost = json.loads(joined_envelope("/", "tea", JoinResult(StreamPosition("e", 4), reason="trimmed")))
    assert (lost["recovered"], lost["reason"]) == (False, "trimmed")
    assert parse_envelope(joined_envelope("/", "tea", result)).type == "joined"
