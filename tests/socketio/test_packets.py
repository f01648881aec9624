"""Socket.IO v5 packets and binary attachments (trio_ws.socketio.packets)."""

from __future__ import annotations

from typing import Any

import pytest

from trio_ws.socketio import (
    MAX_ACK_ID,
    InvalidPacket,
    Packet,
    PacketDecoder,
    PacketType,
    deconstruct,
    encode_socketio_packet,
    has_binary,
    reconstruct,
)

T = PacketType
PLACEHOLDER_0 = {"_placeholder": True, "num": 0}
PLACEHOLDER_1 = {"_placeholder": True, "num": 1}


def decode_all(messages: list[str | bytes], **options: Any) -> list[Packet]:
    decoder = PacketDecoder(**options)
    packets = [decoder.feed(message) for message in messages]
    return [p for p in packets if p is not None]


# The encodings given as examples by socket.io-protocol v5.
SPEC_EXAMPLES = [
    (Packet(T.CONNECT), ["0"]),
    (Packet(T.CONNECT, "/admin", {"sid": "oSO0OpakMV_3jnilAAAA"}), ['0/admin,{"sid":"oSO0OpakMV_3jnilAAAA"}']),
    (Packet(T.CONNECT_ERROR, "/", {"message": "Not authorized"}), ['4{"message":"Not authorized"}']),
    (Packet(T.EVENT, "/", ["foo"]), ['2["foo"]']),
    (Packet(T.EVENT, "/admin", ["bar"]), ['2/admin,["bar"]']),
    (Packet(T.EVENT, "/", ["foo"], 12), ['212["foo"]']),
    (Packet(T.ACK, "/admin", ["bar"], 13), ['3/admin,13["bar"]']),
    (Packet(T.DISCONNECT), ["1"]),
    (Packet(T.DISCONNECT, "/admin"), ["1/admin,"]),
    (
        Packet(T.BINARY_EVENT, "/", ["baz", b"\x01\x02\x03\x04"]),
        ['51-["baz",{"_placeholder":true,"num":0}]', b"\x01\x02\x03\x04"],
    ),
    (
        Packet(T.BINARY_EVENT, "/admin", ["baz", b"\x01\x02", b"\x03\x04"]),
        ['52-/admin,["baz",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]', b"\x01\x02", b"\x03\x04"],
    ),
    (
        Packet(T.BINARY_ACK, "/", ["bar", b"\x01\x02\x03\x04"], 15),
        ['61-15["bar",{"_placeholder":true,"num":0}]', b"\x01\x02\x03\x04"],
    ),
]


@pytest.mark.parametrize(("packet", "wire"), SPEC_EXAMPLES)
def test_spec_examples_encode_and_decode(packet: Packet, wire: list[str | bytes]) -> None:
    assert encode_socketio_packet(packet) == wire
    assert decode_all(wire) == [packet]


def test_event_with_bytes_is_sent_as_a_binary_event() -> None:
    assert encode_socketio_packet(Packet(T.EVENT, "/", ["up", {"file": bytearray(b"ab")}])) == [
        '51-["up",{"file":{"_placeholder":true,"num":0}}]',
        b"ab",
    ]
    assert encode_socketio_packet(Packet(T.ACK, "/", [memoryview(b"z")], 3)) == [
        '61-3[{"_placeholder":true,"num":0}]',
        b"z",
    ]


def test_binary_packet_without_bytes_announces_zero_attachments() -> None:
    assert encode_socketio_packet(Packet(T.BINARY_EVENT, "/", ["x"])) == ['50-["x"]']
    assert decode_all(['50-["x"]']) == [Packet(T.BINARY_EVENT, "/", ["x"])]


def test_text_is_compact_json_without_ascii_escapes() -> None:
    assert encode_socketio_packet(Packet(T.EVENT, "/", ["é", {"a": 1.5, "b": [True, None]}])) == [
        '2["é",{"a":1.5,"b":[true,null]}]'
    ]


def test_encode_names_what_json_cannot_hold() -> None:
    with pytest.raises(TypeError, match="not JSON serializable"):
        encode_socketio_packet(Packet(T.EVENT, "/", ["x", {1, 2}]))
    with pytest.raises(ValueError, match="cannot be encoded as JSON"):
        encode_socketio_packet(Packet(T.EVENT, "/", ["x", float("nan")]))


def test_decoder_collects_attachments_in_order() -> None:
    decoder = PacketDecoder()
    assert decoder.awaiting_attachments == 0
    assert decoder.feed('452-["message",{"_placeholder":true,"num":1},{"_placeholder":true,"num":0}]'[1:]) is None
    assert decoder.awaiting_attachments == 2
    assert decoder.feed(b"\x01\x02\x03") is None
    assert decoder.awaiting_attachments == 1
    packet = decoder.feed(bytearray(b"\x04\x05\x06"))
    assert packet == Packet(T.BINARY_EVENT, "/", ["message", b"\x04\x05\x06", b"\x01\x02\x03"])
    assert decoder.awaiting_attachments == 0
    # The decoder is ready for the next packet.
    assert decoder.feed('2["next"]') == Packet(T.EVENT, "/", ["next"])


def test_binary_ack_from_the_protocol_test_suite() -> None:
    packet = decode_all(
        ['62-789[{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]', b"\x01\x02\x03", b"\x04\x05\x06"]
    )
    assert packet == [Packet(T.BINARY_ACK, "/", [b"\x01\x02\x03", b"\x04\x05\x06"], 789)]


def test_connect_with_auth_payload_and_custom_namespace() -> None:
    assert decode_all(['0{"token":"123"}']) == [Packet(T.CONNECT, "/", {"token": "123"})]
    assert decode_all(['0/custom,{"token":"abc"}']) == [Packet(T.CONNECT, "/custom", {"token": "abc"})]
    # The namespace may end the packet with or without its comma.
    assert decode_all(["0/random"]) == [Packet(T.CONNECT, "/random")]
    assert decode_all(["1/custom"]) == [Packet(T.DISCONNECT, "/custom")]
    assert decode_all(['2/,["x"]']) == [Packet(T.EVENT, "/", ["x"])]


def test_connect_error_may_be_a_string() -> None:
    assert decode_all(['4"nope"']) == [Packet(T.CONNECT_ERROR, "/", "nope")]


def test_ack_with_empty_array_and_largest_id() -> None:
    assert decode_all([f"3{MAX_ACK_ID}[]"]) == [Packet(T.ACK, "/", [], MAX_ACK_ID)]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty Socket.IO packet"),
        ("abc", "unknown Socket.IO packet type 'a'"),
        ("7", "unknown Socket.IO packet type '7'"),
        ("2{}", "invalid EVENT payload {}: expected a non-empty JSON array"),
        ("2[]", "invalid EVENT payload \\[\\]: expected a non-empty JSON array"),
        ("2", "invalid EVENT payload None"),
        ("2[1]", "the event name must be a string, not 1"),
        ('2abc["message-with-ack",1]', "invalid ack id 'abc': an ack id is made of digits"),
        ('2["x"', "EVENT payload is not valid JSON"),
        ('2["x",NaN]', "NaN is not valid JSON"),
        ("2" + "[" * 100_000 + "]" * 100_000, "nested too deeply"),
        ("2abc", "invalid payload 'abc' in a EVENT packet: expected a JSON array or object"),
        ("0abc", "invalid payload 'abc' in a CONNECT packet"),
        ("0[1]", "invalid CONNECT payload \\[1\\]: expected a JSON object or nothing"),
        ("05{}", "invalid ack id 5: a CONNECT packet carries no ack id"),
        ("1/a,{}", "invalid DISCONNECT payload {}: a DISCONNECT packet carries none"),
        ("4[1]", "invalid CONNECT_ERROR payload \\[1\\]"),
        ("4", "invalid CONNECT_ERROR payload None"),
        ('3["x"]', "invalid ack id: a ACK packet needs the id of the event it answers"),
        ("31{}", "invalid ACK payload {}: expected a JSON array"),
        ("3" + "9" * 17 + "[]", "invalid ack id '99999999999999999': larger than 9007199254740991"),
        (f"3{MAX_ACK_ID + 1}[]", "invalid ack id '9007199254740992'"),
        ("5[]", "invalid attachment count"),
        ("5x-[]", "invalid attachment count"),
        ("5-[]", "invalid attachment count"),
        ("51[]", "invalid attachment count"),
        ("5257-[]", "packet announces 257 attachments, more than max_attachments=256"),
        ('50-["x",{"_placeholder":true,"num":0}]', "invalid attachment placeholder num=0 \\(the packet has 0"),
        ('2/a\x00b,["x"]', "invalid namespace '/a\\\\x00b': no ',' or control characters"),
        ("2/" + "n" * 300 + ',["x"]', "longer than 256 characters"),
    ],
)
def test_malformed_text_is_rejected_with_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(InvalidPacket, match=message):
        PacketDecoder().feed(text)


def test_bad_placeholders_are_rejected() -> None:
    for num in ("2", "-1", "true", '"0"', "1.0"):
        decoder = PacketDecoder()
        decoder.feed(f'51-["x",{{"_placeholder":true,"num":{num}}}]')
        with pytest.raises(InvalidPacket, match="invalid attachment placeholder num="):
            decoder.feed(b"data")


def test_text_while_attachments_are_expected_is_an_error_and_resets() -> None:
    decoder = PacketDecoder()
    decoder.feed('52-["x",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]')
    decoder.feed(b"a")
    with pytest.raises(InvalidPacket, match="expected binary attachment 2 of 2, got a text message"):
        decoder.feed('2["y"]')
    assert decoder.awaiting_attachments == 0
    assert decoder.feed('2["y"]') == Packet(T.EVENT, "/", ["y"])


def test_unannounced_binary_is_an_error() -> None:
    with pytest.raises(InvalidPacket, match="unexpected binary message: no binary packet awaits attachments"):
        PacketDecoder().feed(b"\x00")


def test_max_attachments_is_configurable() -> None:
    decoder = PacketDecoder(max_attachments=1)
    with pytest.raises(InvalidPacket, match="2 attachments, more than max_attachments=1"):
        decoder.feed('52-["x"]')
    assert decoder.feed('51-["x",{"_placeholder":true,"num":0}]') is None
    assert decoder.feed(b"1") == Packet(T.BINARY_EVENT, "/", ["x", b"1"])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"type": 9}, "unknown Socket.IO packet type 9"),
        (
            {"type": T.EVENT, "namespace": "admin", "data": ["x"]},
            "invalid namespace 'admin': a namespace starts with '/'",
        ),
        ({"type": T.EVENT, "namespace": "/a,b", "data": ["x"]}, "no ','"),
        ({"type": T.EVENT, "namespace": None, "data": ["x"]}, "invalid namespace None"),
        ({"type": T.EVENT, "data": ["x"], "id": -1}, "invalid ack id -1: an integer from 0"),
        ({"type": T.EVENT, "data": ["x"], "id": True}, "invalid ack id True"),
        ({"type": T.EVENT, "data": ["x"], "id": MAX_ACK_ID + 1}, "invalid ack id 9007199254740992"),
        ({"type": T.ACK, "data": []}, "needs the id of the event it answers"),
        ({"type": T.DISCONNECT, "id": 1}, "a DISCONNECT packet carries no ack id"),
        ({"type": T.EVENT, "data": "x"}, "expected a non-empty JSON array"),
        ({"type": T.EVENT, "data": [b"x"]}, "the event name must be a string, not b'x'"),
        ({"type": T.ACK, "data": {"a": 1}, "id": 1}, "invalid ACK payload {'a': 1}: expected a JSON array"),
        ({"type": T.CONNECT, "data": ["x" * 50]}, "\\.\\.\\.: expected a JSON object or nothing"),
        ({"type": T.CONNECT, "data": {"k": b"x"}}, "a CONNECT packet cannot carry binary data"),
        ({"type": T.CONNECT_ERROR, "data": {"k": [b"x"]}}, "a CONNECT_ERROR packet cannot carry binary data"),
    ],
)
def test_packet_fields_are_validated_on_construction(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidPacket, match=message):
        Packet(**kwargs)


def test_packet_type_accepts_its_number() -> None:
    assert Packet(2, "/", ["x"]).type is T.EVENT  # type: ignore[arg-type]


def test_deconstruct_and_reconstruct_nested_data() -> None:
    data = {"a": [b"1", {"b": bytearray(b"2")}], "c": (memoryview(b"3"), "text"), "d": None}
    plain, attachments = deconstruct(data)
    assert attachments == [b"1", b"2", b"3"]
    assert plain == {
        "a": [PLACEHOLDER_0, {"b": PLACEHOLDER_1}],
        "c": [{"_placeholder": True, "num": 2}, "text"],
        "d": None,
    }
    assert not has_binary(plain)
    assert has_binary(data)
    assert reconstruct(plain, attachments) == {"a": [b"1", {"b": b"2"}], "c": [b"3", "text"], "d": None}


def test_dict_that_only_looks_like_a_placeholder_is_kept() -> None:
    # Without "_placeholder": true, a dict with "num" is user data.
    assert reconstruct([{"_placeholder": False, "num": 0}, {"num": 0}], [b"x"]) == [
        {"_placeholder": False, "num": 0},
        {"num": 0},
    ]


def test_reference_page_example() -> None:
    # docs/reference/socketio.rst shows these values.
    messages = encode_socketio_packet(Packet(T.EVENT, "/chat", ["upload", b"\x01\x02"], id=7))
    assert messages == ['51-/chat,7["upload",{"_placeholder":true,"num":0}]', b"\x01\x02"]
    decoder = PacketDecoder()
    assert decoder.feed(messages[0]) is None
    assert decoder.feed(messages[1]) == Packet(T.BINARY_EVENT, "/chat", ["upload", b"\x01\x02"], 7)
