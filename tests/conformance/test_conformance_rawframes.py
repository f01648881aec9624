"""Self-tests of the raw frame builder, checked against wsproto's parser.

If these fail, the conformance tests cannot be trusted: they would send
something else than they claim.
"""

from __future__ import annotations

import base64
import struct
from typing import Any

import pytest
from support import rawframes as rf
from wsproto.frame_protocol import FrameProtocol, Opcode, ParseFailed

LENGTHS = [0, 1, 125, 126, 127, 1000, 0xFFFF, 0x10000, 70000]


def wsproto_frames(data: bytes, *, receiver_is_client: bool) -> list[Any]:
    proto = FrameProtocol(client=receiver_is_client, extensions=[])
    proto.receive_bytes(data)
    return list(proto.received_frames())


def test_rfc_handshake_example() -> None:
    # The worked example of RFC 6455 §1.3.
    assert rf.accept_for(b"dGhlIHNhbXBsZSBub25jZQ==") == b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo="


def test_new_key_is_16_random_bytes() -> None:
    keys = {rf.new_key() for _ in range(8)}
    assert len(keys) == 8
    assert all(len(base64.b64decode(k, validate=True)) == 16 for k in keys)


def test_rfc_masked_hello_example() -> None:
    # RFC 6455 §5.7: a masked single-frame "Hello" from a client.
    frame = rf.build_frame(rf.TEXT, b"Hello", mask=bytes([0x37, 0xFA, 0x21, 0x3D]))
    assert frame == bytes.fromhex("818537fa213d7f9f4d5158")
    # And unmasked from a server.
    assert rf.build_frame(rf.TEXT, b"Hello") == bytes.fromhex("810548656c6c6f")


@pytest.mark.parametrize("length", LENGTHS)
def test_length_forms(length: int) -> None:
    frame = rf.build_frame(rf.BINARY, b"x" * length)
    if length <= 125:
        assert frame[1] == length and len(frame) == 2 + length
    elif length <= 0xFFFF:
        assert frame[1] == 126
        assert struct.unpack("!H", frame[2:4]) == (length,)
        assert len(frame) == 4 + length
    else:
        assert frame[1] == 127
        assert struct.unpack("!Q", frame[2:10]) == (length,)
        assert len(frame) == 10 + length


def test_forced_length_width() -> None:
    assert rf.build_frame(rf.BINARY, b"ab", length_width=16)[:4] == bytes([0x82, 126, 0, 2])
    assert rf.build_frame(rf.BINARY, b"ab", length_width=64)[:10] == bytes([0x82, 127, 0, 0, 0, 0, 0, 0, 0, 2])
    with pytest.raises(ValueError):
        rf.build_frame(rf.BINARY, b"x" * 126, length_width=7)
    # wsproto rejects the non-minimal form: proof the bytes really are that form.
    with pytest.raises(ParseFailed):
        wsproto_frames(rf.build_frame(rf.BINARY, b"ab", length_width=16), receiver_is_client=True)


@pytest.mark.parametrize("length", LENGTHS)
@pytest.mark.parametrize("masked", [True, False], ids=["client-masked", "server-unmasked"])
def test_wsproto_reads_our_data_frames(length: int, masked: bool) -> None:
    payload = bytes(i % 251 for i in range(length))
    frame = rf.build_frame(rf.BINARY, payload, mask=rf.random_mask() if masked else None)
    frames = wsproto_frames(frame, receiver_is_client=not masked)
    assert b"".join(f.payload for f in frames) == payload
    assert all(f.opcode is Opcode.BINARY for f in frames)
    assert frames[-1].message_finished


def test_wsproto_reads_our_fragments_and_controls() -> None:
    mask = rf.random_mask
    data = (
        rf.build_frame(rf.TEXT, "h\u00e9".encode()[:2], fin=False, mask=mask())
        + rf.build_frame(rf.PING, b"ping!", mask=mask())
        + rf.build_frame(rf.CONT, "h\u00e9".encode()[2:] + b"llo", mask=mask())
        + rf.build_frame(rf.CLOSE, rf.close_payload(4001, "bye"), mask=mask())
    )
    frames = wsproto_frames(data, receiver_is_client=False)
    kinds = [f.opcode for f in frames]
    assert kinds == [Opcode.TEXT, Opcode.PING, Opcode.TEXT, Opcode.CLOSE]
    assert frames[0].payload + frames[2].payload == "h\u00e9llo"
    assert not frames[0].message_finished and frames[2].message_finished
    assert frames[1].payload == b"ping!"
    assert frames[3].payload == (4001, "bye")


@pytest.mark.parametrize(
    ("kwargs", "first_byte"),
    [
        ({"rsv1": True}, 0xC2),
        ({"rsv2": True}, 0xA2),
        ({"rsv3": True}, 0x92),
        ({"fin": False}, 0x02),
    ],
)
def test_header_bits(kwargs: dict[str, Any], first_byte: int) -> None:
    frame = rf.build_frame(rf.BINARY, b"abc", **kwargs)
    assert frame[0] == first_byte
    parsed, used = rf.parse_frame(frame)
    assert used == len(frame)
    for name, value in kwargs.items():
        assert getattr(parsed, name) is value
    if "fin" not in kwargs:
        with pytest.raises(ParseFailed, match="Reserved bit"):
            wsproto_frames(frame, receiver_is_client=True)


@pytest.mark.parametrize("opcode", rf.RESERVED_OPCODES)
def test_reserved_opcodes_reach_the_wire(opcode: int) -> None:
    frame = rf.build_frame(opcode, b"", mask=rf.random_mask())
    assert frame[0] & 0x0F == opcode
    with pytest.raises(ParseFailed, match="Invalid opcode"):
        wsproto_frames(frame, receiver_is_client=False)


def test_wsproto_rejects_what_it_must() -> None:
    # Sanity of the negative frames the conformance tests send.
    cases = [
        rf.build_frame(rf.PING, b"x", fin=False, mask=rf.random_mask()),
        rf.build_frame(rf.PING, b"x" * 126, mask=rf.random_mask()),
        rf.build_frame(rf.CONT, b"x", mask=rf.random_mask()),
        rf.build_frame(rf.CLOSE, b"\x03", mask=rf.random_mask()),
        rf.build_frame(rf.TEXT, b"x"),  # unmasked, to a server
    ]
    for data in cases:
        with pytest.raises(ParseFailed) as info:
            wsproto_frames(data, receiver_is_client=False)
        assert info.value.code == 1002
    with pytest.raises(ParseFailed) as info:
        wsproto_frames(rf.build_frame(rf.TEXT, b"\xff", mask=rf.random_mask()), receiver_is_client=False)
    assert info.value.code == 1007
    with pytest.raises(ParseFailed) as info:  # masked, to a client
        wsproto_frames(rf.build_frame(rf.TEXT, b"x", mask=rf.random_mask()), receiver_is_client=True)
    assert info.value.code == 1002


@pytest.mark.parametrize("client", [True, False], ids=["from-client", "from-server"])
@pytest.mark.parametrize("length", LENGTHS)
def test_we_parse_wsproto_frames(client: bool, length: int) -> None:
    proto = FrameProtocol(client=client, extensions=[])
    payload = bytes(i % 256 for i in range(length))
    data = (
        bytes(proto.send_data(payload, fin=False))
        + bytes(proto.ping(b"p"))
        + bytes(proto.send_data(b"end", fin=True))
        + bytes(proto.close(1001, "gone"))
    )
    frames = []
    while data:
        frame, used = rf.parse_frame(data)
        frames.append(frame)
        data = data[used:]
    assert [f.opcode for f in frames] == [rf.BINARY, rf.PING, rf.CONT, rf.CLOSE]
    assert [f.fin for f in frames] == [False, True, True, True]
    assert all(f.masked is client for f in frames)
    assert frames[0].payload == payload
    assert frames[0].length_width == (7 if length <= 125 else 16 if length <= 0xFFFF else 64)
    assert frames[1].payload == b"p"
    assert frames[3].close_code == 1001 and frames[3].close_reason == b"gone"


def test_parse_frame_needs_whole_frame() -> None:
    frame = rf.build_frame(rf.BINARY, b"y" * 300, mask=rf.random_mask())
    for cut in range(len(frame)):
        with pytest.raises(rf.IncompleteFrame):
            rf.parse_frame(frame[:cut])
    parsed, used = rf.parse_frame(frame + b"extra")
    assert used == len(frame) and parsed.payload == b"y" * 300


def test_mask_roundtrip_and_close_payload() -> None:
    key = b"\x01\x02\x03\x04"
    assert rf.apply_mask(key, b"\x00" * 6) == b"\x01\x02\x03\x04\x01\x02"
    assert rf.apply_mask(key, rf.apply_mask(key, b"abcdefg")) == b"abcdefg"
    assert rf.close_payload(1000, "ok") == b"\x03\xe8ok"
    assert rf.close_payload() == b""
    assert rf.parse_close_payload(b"\x0f\xa0x") == (4000, b"x")
    with pytest.raises(ValueError):
        rf.parse_close_payload(b"\x03")


def test_http_heads() -> None:
    key = rf.new_key()
    start, headers = rf.parse_http_head(rf.client_request("127.0.0.1", 9, "/a?b", key)[:-4])
    assert start == "GET /a?b HTTP/1.1"
    assert headers["sec-websocket-key"] == [key.decode()]
    assert rf.header_tokens(headers, "connection") == {"upgrade"}
    start, headers = rf.parse_http_head(rf.server_response(key)[:-4])
    assert start.startswith("HTTP/1.1 101")
    assert headers["sec-websocket-accept"] == [rf.accept_for(key).decode()]
