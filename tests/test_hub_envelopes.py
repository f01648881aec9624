"""Tests for trio_ws.hub.envelopes: the hub's wire format between processes (builders and parser)."""

from __future__ import annotations

import json
from typing import Any

import pytest

import trio_ws.hub
import trio_ws.hub.backend
from trio_ws import PreparedMessage
from trio_ws.hub import HubEnvelope
from trio_ws.hub.envelopes import (
    AllMessage,
    CloseRoom,
    Disconnect,
    MemberMessage,
    Presence,
    RoomMessage,
    all_envelope,
    close_room_envelope,
    decode_payload,
    disconnect_envelope,
    encode_payload,
    member_envelope,
    parse_envelope,
    presence_envelope,
    room_envelope,
)


def over_the_wire(envelope: HubEnvelope) -> dict[str, Any]:
    """The envelope as another process reads it: through JSON, with a backend field added."""
    decoded: dict[str, Any] = json.loads(json.dumps({**envelope, "seq": 7}))
    return decoded


@pytest.mark.parametrize("data", ["héllo", "", b"\x00\xff binary", b""])
def test_payloads_round_trip(data: str | bytes) -> None:
    message = decode_payload(over_the_wire(encode_payload(PreparedMessage(data))))
    assert message.data == data
    assert message.is_text == isinstance(data, str)


def test_every_kind_round_trips_through_json() -> None:
    text, binary = PreparedMessage("hi"), PreparedMessage(b"\x01\x02")
    cases: list[tuple[HubEnvelope, object]] = [
        (room_envelope("p1", "lobby", text, ["b", "a", "b"]), RoomMessage("lobby", text, frozenset({"a", "b"}))),
        (room_envelope("p1", "lobby", binary, "a"), RoomMessage("lobby", binary, frozenset({"a"}))),
        (room_envelope("p1", "lobby", text), RoomMessage("lobby", text, frozenset())),
        (room_envelope("p1", "lobby", text, None, "vip"), RoomMessage("lobby", text, frozenset(), "vip")),
        (all_envelope("p1", binary, None), AllMessage(binary, frozenset())),
        (all_envelope("p1", text, {"x"}), AllMessage(text, frozenset({"x"}))),
        (member_envelope("p1", "m7", binary), MemberMessage("m7", binary)),
        (disconnect_envelope("p1", "m7", 4002, "bye"), Disconnect("m7", 4002, "bye")),
        (close_room_envelope("p1", "lobby"), CloseRoom("lobby")),
        (presence_envelope("p1", "lobby", "m7", "join"), Presence("lobby", "m7", "join")),
        (presence_envelope("p1", "lobby", "m7", "leave"), Presence("lobby", "m7", "leave")),
    ]
    for envelope, expected in cases:
        assert envelope["origin"] == "p1"
        parsed = parse_envelope(over_the_wire(envelope))
        assert type(parsed) is type(expected)
        for field, value in vars(expected).items():
            got = getattr(parsed, field)
            if isinstance(value, PreparedMessage):
                assert (got.data, got.is_text) == (value.data, value.is_text)
            else:
                assert got == value, field


def test_exclusions_travel_sorted_and_once() -> None:
    envelope = room_envelope("p", "r", PreparedMessage("x"), ("c", "a", "c", "b"))
    assert envelope["exclude"] == ["a", "b", "c"]
    assert all_envelope("p", PreparedMessage("x"), "solo")["exclude"] == ["solo"]


def test_a_disconnect_without_reason_has_an_empty_one() -> None:
    assert parse_envelope({"kind": "disconnect", "id": "m", "code": 1000}) == Disconnect("m", 1000, "")


@pytest.mark.parametrize(
    ("envelope", "message"),
    [
        ({}, "unknown envelope kind None"),
        ({"kind": "probe"}, "unknown envelope kind 'probe'"),
        ({"kind": "room", "text": "x"}, "'room' must be a string"),
        ({"kind": "room", "room": 5, "text": "x"}, "'room' must be a string"),
        ({"kind": "room", "room": "r"}, "no text or b64 payload"),
        ({"kind": "room", "room": "r", "text": 5}, "no text or b64 payload"),
        ({"kind": "room", "room": "r", "b64": "*not base64*"}, "not valid base64"),
        ({"kind": "room", "room": "r", "text": "x", "exclude": "a"}, "'exclude' must be a list of strings"),
        ({"kind": "all", "text": "x", "exclude": [1]}, "'exclude' must be a list of strings"),
        ({"kind": "member", "text": "x"}, "'id' must be a string"),
        ({"kind": "disconnect", "id": "m"}, "'code' must be an integer"),
        ({"kind": "disconnect", "id": "m", "code": "1000"}, "'code' must be an integer"),
        ({"kind": "disconnect", "id": "m", "code": True}, "'code' must be an integer"),
        ({"kind": "disconnect", "id": "m", "code": 1000, "reason": 3}, "'reason' must be a string"),
        ({"kind": "close_room"}, "'room' must be a string"),
        ({"kind": "presence", "room": "r", "id": "m", "event": "wave"}, "unknown presence event 'wave'"),
        ({"kind": "presence", "room": "r", "event": "join"}, "'id' must be a string"),
    ],
)
def test_malformed_envelopes_are_refused_with_a_message_naming_the_problem(
    envelope: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        parse_envelope(envelope)


@pytest.mark.parametrize(
    ("module", "name", "new_name", "value"),
    [
        (trio_ws.hub, "Envelope", "trio_ws.hub.HubEnvelope", HubEnvelope),
        (trio_ws.hub.backend, "Envelope", "trio_ws.hub.HubEnvelope", HubEnvelope),
        (trio_ws.hub.backend, "encode_payload", "trio_ws.hub.envelopes.encode_payload", encode_payload),
        (trio_ws.hub.backend, "decode_payload", "trio_ws.hub.envelopes.decode_payload", decode_payload),
    ],
)
def test_old_names_are_deprecated_aliases(module: Any, name: str, new_name: str, value: object) -> None:
    with pytest.warns(DeprecationWarning, match=rf"{module.__name__}\.{name} is deprecated; use {new_name}"):
        assert getattr(module, name) is value
    assert name not in module.__all__


def test_a_stream_entry_carries_a_positioned_json_and_is_rendered_at_its_position() -> None:
    from trio_ws.hub import PositionedJSON, StreamPosition
    from trio_ws.hub.envelopes import parse_stream_entry, stream_envelope

    message = PositionedJSON({"a": 1}, {"room": "r"})
    envelope = json.loads(json.dumps(stream_envelope("p1", "r", message, exclude="m1")))
    entry = parse_stream_entry(envelope, StreamPosition("e", 3))
    assert (entry.room, entry.exclude) == ("r", frozenset({"m1"}))
    assert entry.message.data == message(StreamPosition("e", 3))
    # A plain message travels as an ordinary room payload, whatever the position.
    plain = json.loads(json.dumps(stream_envelope("p1", "r", PreparedMessage(b"\x00bin"))))
    assert parse_stream_entry(plain, StreamPosition("e", 4)).message.payload == b"\x00bin"
    with pytest.raises(TypeError):  # refused in the sender, not in the receivers
        stream_envelope("p1", "r", PositionedJSON({"x": object()}))
    with pytest.raises(ValueError, match="must be objects"):
        parse_stream_entry({**envelope, "json": [1]}, StreamPosition("e", 1))
    with pytest.raises(ValueError, match="must be a room envelope"):
        parse_stream_entry(presence_envelope("p1", "r", "m", "join"), StreamPosition("e", 1))


def test_a_stream_entry_carries_positioned_variants_and_a_within() -> None:
    from trio_ws.hub import MessageVariants, StreamPosition
    from trio_ws.hub.envelopes import parse_stream_entry, stream_envelope
    from trio_ws.hub.positioned import PositionedVariants

    message = PositionedVariants(MessageVariants({"sio": ['42["ev","@@"]', b"\x01"], None: "plain"}), "@@")
    envelope = json.loads(json.dumps(stream_envelope("p1", "ns", message, exclude="m1", within="tea")))
    entry = parse_stream_entry(envelope, StreamPosition("e", 9))
    assert (entry.room, entry.exclude, entry.within) == ("ns", frozenset({"m1"}), "tea")
    assert isinstance(entry.message, MessageVariants)
    text, binary = entry.message.variant("sio")  # type: ignore[misc]
    assert (text.data, binary.data) == ('42["ev","e:9"]', b"\x01")
    unaddressed = json.loads(json.dumps(stream_envelope("p1", "ns", message)))
    assert parse_stream_entry(unaddressed, StreamPosition("e", 1)).within is None
    with pytest.raises(ValueError, match="marker"):
        parse_stream_entry({**envelope, "marker": 5}, StreamPosition("e", 1))
    with pytest.raises(ValueError, match="within"):
        parse_stream_entry({**envelope, "within": ["tea"]}, StreamPosition("e", 1))
    with pytest.raises(ValueError, match="within"):
        parse_envelope({**room_envelope("p1", "r", PreparedMessage("x")), "within": 3})
