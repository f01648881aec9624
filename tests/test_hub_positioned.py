"""PositionedJSON: a JSON message that gets its room position, in one process or across processes."""

from __future__ import annotations

import json

import pytest

from trio_ws.hub import PositionedJSON, StreamPosition


def test_without_a_position_it_is_the_value() -> None:
    message = PositionedJSON({"type": "event", "data": [1, "é"]}, {"room": "r"})
    assert json.loads(message(None)) == {"type": "event", "data": [1, "é"]}
    assert "é" in message(None)  # not escaped


def test_with_a_position_it_gets_the_extra_fields_and_the_position() -> None:
    message = PositionedJSON({"type": "event"}, {"room": "r"})
    assert json.loads(message(StreamPosition("e1", 7))) == {"type": "event", "room": "r", "epoch": "e1", "offset": 7}


def test_bad_values_are_refused() -> None:
    with pytest.raises(TypeError):
        PositionedJSON({"x": {1, 2}})(None)
