"""Engine.IO v4 packets and long-polling payloads (trio_ws.socketio.engineio)."""

from __future__ import annotations

import json

import pytest

from trio_ws import PreparedMessage
from trio_ws.socketio import (
    RECORD_SEPARATOR,
    EnginePacket,
    EngineType,
    Handshake,
    InvalidPacket,
    PayloadTooLarge,
    decode_packet,
    decode_payload,
    encode_packet,
    encode_payload,
)
from trio_ws.socketio.engineio import websocket_frame


@pytest.mark.parametrize(
    ("packet", "wire"),
    [
        (EnginePacket(EngineType.OPEN, '{"sid":"x"}'), '0{"sid":"x"}'),
        (EnginePacket(EngineType.CLOSE), "1"),
        (EnginePacket(EngineType.PING), "2"),
        (EnginePacket(EngineType.PING, "probe"), "2probe"),
        (EnginePacket(EngineType.PONG, "probe"), "3probe"),
        (EnginePacket(EngineType.MESSAGE, "hello"), "4hello"),
        (EnginePacket(EngineType.MESSAGE, "€ ünïcode"), "4€ ünïcode"),
        (EnginePacket(EngineType.UPGRADE), "5"),
        (EnginePacket(EngineType.NOOP), "6"),
        (EnginePacket(EngineType.MESSAGE, b"\x01\x02\x03\x04"), b"\x01\x02\x03\x04"),
    ],
)
def test_websocket_frames_match_the_spec_examples(packet: EnginePacket, wire: str | bytes) -> None:
    assert encode_packet(packet) == wire
    assert decode_packet(wire) == packet


def test_binary_frame_is_a_message_whatever_its_first_byte() -> None:
    # v4 sends binary as is: the first byte is data, not a type.
    assert decode_packet(b"2") == EnginePacket(EngineType.MESSAGE, b"2")
    assert decode_packet(bytearray(b"\x00")) == EnginePacket(EngineType.MESSAGE, b"\x00")
    assert decode_packet(memoryview(b"")) == EnginePacket(EngineType.MESSAGE, b"")


def test_base64_packet_is_accepted_as_a_text_frame() -> None:
    assert decode_packet("bAQIDBA==") == EnginePacket(EngineType.MESSAGE, b"\x01\x02\x03\x04")


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        ("", "empty Engine.IO packet"),
        ("abc", "unknown Engine.IO packet type 'a'"),
        ("7", "unknown Engine.IO packet type '7'"),
        ("x" * 100, "(100 characters)"),
        ("b!!!", "not valid base64"),
        ("bAQI", "not valid base64"),
    ],
)
def test_malformed_packets_are_rejected_with_the_reason(frame: str, message: str) -> None:
    with pytest.raises(InvalidPacket, match=message.replace("(", r"\(").replace(")", r"\)")):
        decode_packet(frame)


def test_packet_validates_its_fields() -> None:
    assert EnginePacket(4, "x").type is EngineType.MESSAGE  # type: ignore[arg-type]
    assert EnginePacket(EngineType.MESSAGE, bytearray(b"ab")).data == b"ab"
    assert EnginePacket(EngineType.MESSAGE, b"").binary
    assert not EnginePacket(EngineType.MESSAGE, "").binary
    with pytest.raises(ValueError, match="only message packets carry binary data, not ping packets"):
        EnginePacket(EngineType.PING, b"x")
    with pytest.raises(TypeError, match="str or bytes, not int"):
        EnginePacket(EngineType.MESSAGE, 3)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="9 is not a valid EngineType"):
        EnginePacket(9, "")  # type: ignore[arg-type]


def test_payload_examples_from_the_spec() -> None:
    packets = [
        EnginePacket(EngineType.MESSAGE, "hello"),
        EnginePacket(EngineType.PING),
        EnginePacket(EngineType.MESSAGE, "world"),
    ]
    assert encode_payload(packets) == "4hello\x1e2\x1e4world"
    assert decode_payload("4hello\x1e2\x1e4world", max_payload=None) == packets
    mixed = [EnginePacket(EngineType.MESSAGE, "hello"), EnginePacket(EngineType.MESSAGE, b"\x01\x02\x03\x04")]
    assert encode_payload(mixed) == "4hello\x1ebAQIDBA=="
    assert decode_payload(b"4hello\x1ebAQIDBA==", max_payload=1000) == mixed


def test_payload_of_one_packet_has_no_separator() -> None:
    assert encode_payload([EnginePacket(EngineType.NOOP)]) == "6"
    assert RECORD_SEPARATOR == "\x1e"


def test_encode_payload_refuses_what_the_peer_could_not_split() -> None:
    with pytest.raises(ValueError, match="record separator"):
        encode_payload([EnginePacket(EngineType.MESSAGE, "a\x1eb")])
    with pytest.raises(ValueError, match="at least one packet"):
        encode_payload([])


def test_payload_over_max_payload_is_rejected_with_size_and_limit() -> None:
    body = "4" + "x" * 99  # 100 bytes
    assert len(decode_payload(body.encode(), max_payload=100)) == 1
    with pytest.raises(PayloadTooLarge, match="payload of 101 bytes exceeds max_payload=100") as info:
        decode_payload(body.encode() + b"x", max_payload=100)
    assert (info.value.size, info.value.limit) == (101, 100)
    assert isinstance(info.value, InvalidPacket)


def test_text_payload_is_measured_in_utf8_bytes() -> None:
    # 34 characters, 100 bytes: "4" + 33 three-byte characters.
    body = "4" + "€" * 33
    assert len(decode_payload(body, max_payload=100)) == 1
    with pytest.raises(PayloadTooLarge, match="payload of 103 bytes exceeds max_payload=100"):
        decode_payload(body + "€", max_payload=100)
    # Short text is never measured: it cannot exceed the limit.
    assert decode_payload("4hi", max_payload=1000) == [EnginePacket(EngineType.MESSAGE, "hi")]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "empty long-polling payload"),
        ("", "empty long-polling payload"),
        (b"4ok\xff", "not valid UTF-8 \\(byte 3\\)"),
        ("4ok\x1eabc", "unknown Engine.IO packet type 'a'"),
        ("4ok\x1e", "empty Engine.IO packet"),
        ("4ok\x1eb@@", "not valid base64"),
    ],
)
def test_malformed_payloads_are_rejected(body: str | bytes, message: str) -> None:
    with pytest.raises(InvalidPacket, match=message):
        decode_payload(body, max_payload=None)


def test_handshake_open_packet_round_trip() -> None:
    handshake = Handshake("lv_VI97HAXpY6yYWAAAC", ("websocket",), 25.0, 20.0, 1_000_000)
    packet = handshake.to_packet()
    assert packet.type is EngineType.OPEN
    assert json.loads(str(packet.data)) == {
        "sid": "lv_VI97HAXpY6yYWAAAC",
        "upgrades": ["websocket"],
        "pingInterval": 25000,
        "pingTimeout": 20000,
        "maxPayload": 1000000,
    }
    assert Handshake.from_packet(decode_packet(encode_packet(packet))) == handshake


def test_handshake_defaults_are_socketio_defaults() -> None:
    handshake = Handshake("s")
    assert (handshake.upgrades, handshake.ping_interval, handshake.ping_timeout, handshake.max_payload) == (
        (),
        25.0,
        20.0,
        1_000_000,
    )


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ("{", "not valid JSON"),
        ("[]", "must be a JSON object"),
        ('{"upgrades":[]}', "'sid' must be a non-empty string, not None"),
        ('{"sid":"a","upgrades":[1]}', "'upgrades' must be a list of strings"),
        ('{"sid":"a","upgrades":[],"pingInterval":0}', "'pingInterval' must be a positive integer, not 0"),
        ('{"sid":"a","upgrades":[],"pingInterval":1,"pingTimeout":true}', "'pingTimeout' must be a positive"),
        ('{"sid":"a","upgrades":[],"pingInterval":1,"pingTimeout":1}', "'maxPayload' must be a positive"),
    ],
)
def test_handshake_from_packet_names_the_bad_field(data: str, message: str) -> None:
    with pytest.raises(InvalidPacket, match=message):
        Handshake.from_packet(EnginePacket(EngineType.OPEN, data))


def test_handshake_from_packet_needs_an_open_packet() -> None:
    with pytest.raises(InvalidPacket, match=r"expected an Engine\.IO open packet, got a message packet"):
        Handshake.from_packet(EnginePacket(EngineType.MESSAGE, "{}"))


def test_a_prepared_message_is_the_message_packet_it_encodes() -> None:
    text, binary = PreparedMessage('4["news",1]'), PreparedMessage(b"\x00\xff")
    packets = [EnginePacket(EngineType.PING), text, binary]
    body = encode_payload(packets)
    assert body == '2\x1e4["news",1]\x1ebAP8='
    assert decode_payload(body, max_payload=None) == [
        EnginePacket(EngineType.PING),
        EnginePacket(EngineType.MESSAGE, '["news",1]'),
        EnginePacket(EngineType.MESSAGE, b"\x00\xff"),
    ]
    # On a WebSocket it is sent as it is (its frame shared), a packet as its encoding.
    assert websocket_frame(text) is text
    assert websocket_frame(EnginePacket(EngineType.PING)) == "2"
    with pytest.raises(ValueError, match="record separator"):
        encode_payload([PreparedMessage("4a\x1eb")])
