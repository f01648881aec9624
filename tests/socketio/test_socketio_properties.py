"""Property tests (hypothesis): Engine.IO and Socket.IO encodings round-trip, and decoders only raise InvalidPacket."""

from __future__ import annotations

import contextlib
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from trio_ws.socketio import (
    RECORD_SEPARATOR,
    EnginePacket,
    EngineType,
    Handshake,
    InvalidPacket,
    Packet,
    PacketDecoder,
    PacketType,
    decode_packet,
    decode_payload,
    deconstruct,
    encode_packet,
    encode_payload,
    encode_socketio_packet,
    has_binary,
    reconstruct,
)

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

text_packets = st.builds(EnginePacket, st.sampled_from(list(EngineType)), st.text())
binary_packets = st.builds(EnginePacket, st.just(EngineType.MESSAGE), st.binary())
engine_packets = text_packets | binary_packets
polling_packets = (
    st.builds(EnginePacket, st.sampled_from(list(EngineType)), st.text().filter(lambda s: RECORD_SEPARATOR not in s))
    | binary_packets
)

json_leaves = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
json_values = st.recursive(
    json_leaves,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)
values_with_bytes = st.recursive(
    json_leaves | st.binary(max_size=16),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)
namespaces = st.just("/") | st.text(
    alphabet=st.characters(blacklist_characters=",", blacklist_categories=["Cc", "Cs"]), max_size=30
).map(lambda s: "/" + s)
ack_ids = st.integers(min_value=0, max_value=2**53 - 1)


@st.composite
def socketio_packets(draw: st.DrawFn) -> Packet:
    kind = draw(st.sampled_from(list(PacketType)))
    namespace = draw(namespaces)
    if kind is PacketType.CONNECT:
        return Packet(kind, namespace, draw(st.none() | st.dictionaries(st.text(max_size=8), json_values)))
    if kind is PacketType.DISCONNECT:
        return Packet(kind, namespace)
    if kind is PacketType.CONNECT_ERROR:
        return Packet(kind, namespace, draw(st.text() | st.dictionaries(st.text(max_size=8), json_values)))
    args = draw(st.lists(values_with_bytes, max_size=5))
    if kind in (PacketType.EVENT, PacketType.BINARY_EVENT):
        return Packet(kind, namespace, [draw(st.text(max_size=10)), *args], draw(st.none() | ack_ids))
    return Packet(kind, namespace, args, draw(ack_ids))


@SETTINGS
@given(engine_packets)
def test_engine_packet_round_trips_over_websocket(packet: EnginePacket) -> None:
    assert decode_packet(encode_packet(packet)) == packet


@SETTINGS
@given(st.lists(polling_packets, min_size=1, max_size=8))
def test_engine_payload_round_trips_over_polling(packets: list[EnginePacket]) -> None:
    body = encode_payload(packets)
    assert decode_payload(body, max_payload=None) == packets
    assert decode_payload(body.encode(), max_payload=len(body.encode())) == packets


@SETTINGS
@given(st.text() | st.binary())
def test_engine_decoders_accept_or_raise_invalid_packet(data: str | bytes) -> None:
    with contextlib.suppress(InvalidPacket):
        packet = decode_packet(data)
        assert decode_packet(encode_packet(packet)) == packet
    with contextlib.suppress(InvalidPacket):
        packets = decode_payload(data, max_payload=64)
        assert decode_payload(encode_payload(packets), max_payload=None) == packets


@SETTINGS
@given(
    st.text(min_size=1),
    st.lists(st.sampled_from(["websocket", "polling"]), max_size=2),
    st.integers(1, 10**7),
    st.integers(1, 10**7),
    st.integers(1, 10**9),
)
def test_handshake_round_trips(sid: str, upgrades: list[str], interval: int, timeout: int, max_payload: int) -> None:
    handshake = Handshake(sid, tuple(upgrades), interval / 1000, timeout / 1000, max_payload)
    assert Handshake.from_packet(decode_packet(encode_packet(handshake.to_packet()))) == handshake


def expected_after_decoding(packet: Packet) -> Packet:
    """What the peer decodes: EVENT/ACK with bytes travel as their BINARY_ variants."""
    kind = packet.type
    if kind is PacketType.EVENT and has_binary(packet.data):
        kind = PacketType.BINARY_EVENT
    elif kind is PacketType.ACK and has_binary(packet.data):
        kind = PacketType.BINARY_ACK
    return Packet(kind, packet.namespace, packet.data, packet.id)


@SETTINGS
@given(socketio_packets())
def test_socketio_packet_round_trips(packet: Packet) -> None:
    messages = encode_socketio_packet(packet)
    decoder = PacketDecoder(max_attachments=1000)
    results = [decoder.feed(message) for message in messages]
    assert results[:-1] == [None] * (len(messages) - 1)
    assert results[-1] == expected_after_decoding(packet)
    assert decoder.awaiting_attachments == 0


@SETTINGS
@given(socketio_packets())
def test_socketio_packets_survive_the_engineio_polling_payload(packet: Packet) -> None:
    engine = [EnginePacket(EngineType.MESSAGE, message) for message in encode_socketio_packet(packet)]
    decoder = PacketDecoder(max_attachments=1000)
    results = [decoder.feed(p.data) for p in decode_payload(encode_payload(engine), max_payload=None)]
    assert results[-1] == expected_after_decoding(packet)


@SETTINGS
@given(values_with_bytes)
def test_deconstruct_then_reconstruct_is_identity(data: Any) -> None:
    plain, attachments = deconstruct(data)
    assert not has_binary(plain)
    assert len(attachments) == sum(1 for _ in _binary_leaves(data))
    assert reconstruct(plain, attachments) == data


def _binary_leaves(value: Any) -> Any:
    if isinstance(value, bytes):
        yield value
    elif isinstance(value, list):
        for item in value:
            yield from _binary_leaves(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from _binary_leaves(item)


@SETTINGS
@given(st.lists(st.text(max_size=60) | st.binary(max_size=8), max_size=6))
def test_socketio_decoder_accepts_or_raises_invalid_packet(messages: list[str | bytes]) -> None:
    decoder = PacketDecoder(max_attachments=4)
    for message in messages:
        with contextlib.suppress(InvalidPacket):
            packet = decoder.feed(message)
            if packet is not None:
                assert_reencodes(packet)


@SETTINGS
@given(
    st.sampled_from("0123456"),
    st.sampled_from(["", "1-", "0-", "/nsp,", "1-/nsp,"]),
    st.sampled_from(["", "7", "abc"]),
    st.sampled_from(["", "[]", '["e"]', '["e",{"_placeholder":true,"num":0}]', "{}", '"s"', "[", "x"]),
)
def test_socketio_decoder_on_near_valid_text(kind: str, prefix: str, ack: str, body: str) -> None:
    decoder = PacketDecoder()
    with contextlib.suppress(InvalidPacket):
        packet = decoder.feed(kind + prefix + ack + body)
        if packet is None:
            packet = decoder.feed(b"attachment")
        assert packet is not None
        assert_reencodes(packet)


def assert_reencodes(packet: Packet) -> None:
    """A decoded packet encodes to messages that decode back to it."""
    decoder = PacketDecoder(max_attachments=1000)
    results = [decoder.feed(message) for message in encode_socketio_packet(packet)]
    assert results[-1] == expected_after_decoding(packet)
