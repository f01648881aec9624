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


def test_positioned_variants_put_the_position_in_place_of_the_last_marker() -> None:
    from trio_ws.hub import MessageVariants
    from trio_ws.hub.positioned import PositionedVariants

    marker = "~at~"
    message = PositionedVariants(
        MessageVariants({None: "~at~ stays, ~at~ goes", "sio": ['42["ev","~at~"]', b"~at~ binary stays"]}), marker
    )
    rendered = message(StreamPosition("e1", 7))
    assert rendered.variant(None).data == "~at~ stays, e1:7 goes"  # type: ignore[union-attr]
    text, binary = rendered.variant("sio")  # type: ignore[misc]
    assert (text.data, binary.data) == ('42["ev","e1:7"]', b"~at~ binary stays")
    assert message(None).variant(None).data == "~at~ stays,  goes"  # type: ignore[union-attr]
    unmarked = PositionedVariants(MessageVariants({None: "no marker"}), marker)(StreamPosition("e", 1))
    assert unmarked.variant(None).data == "no marker"  # type: ignore[union-attr]
    with pytest.raises(ValueError, match="marker"):
        PositionedVariants(MessageVariants({None: "x"}), "")
