"""Unit tests for trio_ws.framing: header parsing and frame encoding."""

from __future__ import annotations

import os
import struct

import pytest
from wsproto.frame_protocol import FrameProtocol, Opcode

from trio_ws.framing import (
    OP_BINARY,
    OP_CLOSE,
    OP_CONTINUATION,
    OP_PING,
    OP_PONG,
    OP_TEXT,
    FrameHeader,
    encode_frame,
    encode_frame_parts,
    length_error,
    parse_header,
)
from trio_ws.masking import apply_mask

KEY = b"\x12\x34\x56\x78"


def raw_header(
    length: int, *, opcode: int = OP_BINARY, fin: bool = True, rsv: int = 0, key: bytes | None = None
) -> bytes:
    first = (0x80 if fin else 0) | (rsv << 4) | opcode
    mask_bit = 0x80 if key is not None else 0
    if length < 126:
        head = bytes((first, mask_bit | length))
    elif length < 65536:
        head = bytes((first, mask_bit | 126)) + struct.pack("!H", length)
    else:
        head = bytes((first, mask_bit | 127)) + struct.pack("!Q", length)
    return head + (key or b"")


def test_opcodes() -> None:
    assert (OP_CONTINUATION, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG) == (0, 1, 2, 8, 9, 10)


@pytest.mark.parametrize(
    ("length", "size"),
    [(0, 2), (1, 2), (125, 2), (126, 4), (127, 4), (65535, 4), (65536, 10), (2**32, 10), (2**63 - 1, 10)],
)
@pytest.mark.parametrize("masked", [False, True])
def test_parse_lengths(length: int, size: int, masked: bool) -> None:
    key = KEY if masked else None
    header = raw_header(length, key=key)
    parsed = parse_header(header, 0)
    assert parsed == FrameHeader(True, 0, OP_BINARY, key, length, size + (4 if masked else 0))
    assert parsed is not None
    assert parsed.size == len(header)


@pytest.mark.parametrize("length", [0, 5, 125, 126, 300, 65535, 65536, 70000])
@pytest.mark.parametrize("masked", [False, True])
def test_incomplete_headers_return_none(length: int, masked: bool) -> None:
    header = raw_header(length, key=KEY if masked else None)
    for cut in range(len(header)):
        assert parse_header(header[:cut], 0) is None, cut
        # also with an offset into a larger buffer
        assert parse_header(b"junk" + header[:cut], 4) is None, cut
    assert parse_header(header, 0) is not None


def test_parse_at_offset_and_with_trailing_data() -> None:
    header = raw_header(300, opcode=OP_TEXT, key=KEY)
    buffer = bytearray(b"\x00" * 7 + header + b"payload...")
    parsed = parse_header(buffer, 7)
    assert parsed == FrameHeader(True, 0, OP_TEXT, KEY, 300, 8)
    assert parse_header(buffer, len(buffer)) is None
    assert parse_header(buffer, len(buffer) - 1) is None  # one byte left


def test_parse_start_beyond_end() -> None:
    assert parse_header(b"\x81\x00", 2) is None
    assert parse_header(b"\x81\x00", 5) is None


@pytest.mark.parametrize("rsv", range(8))
@pytest.mark.parametrize("fin", [False, True])
@pytest.mark.parametrize("opcode", [0, 1, 2, 3, 7, 8, 9, 10, 11, 15])
def test_parse_flags(rsv: int, fin: bool, opcode: int) -> None:
    parsed = parse_header(raw_header(3, opcode=opcode, fin=fin, rsv=rsv), 0)
    assert parsed is not None
    assert parsed.fin is fin
    assert parsed.rsv == rsv
    assert parsed.opcode == opcode
    assert parsed.masking_key is None
    assert parsed.length == 3


def test_parse_does_not_validate() -> None:
    # a control frame with a 16-bit length is still parsed (validation is wsproto's)
    parsed = parse_header(raw_header(200, opcode=OP_PING), 0)
    assert parsed is not None
    assert parsed.length == 200


def test_parse_key_is_bytes_from_bytearray() -> None:
    parsed = parse_header(bytearray(raw_header(1, key=KEY)), 0)
    assert parsed is not None
    assert type(parsed.masking_key) is bytes


@pytest.mark.parametrize("length", [0, 1, 125, 126, 127, 1000, 65535, 65536, 100_000])
@pytest.mark.parametrize("opcode", [OP_TEXT, OP_BINARY, OP_CONTINUATION])
@pytest.mark.parametrize("fin", [True, False])
@pytest.mark.parametrize("rsv1", [True, False])
def test_encode_unmasked_round_trip(length: int, opcode: int, fin: bool, rsv1: bool) -> None:
    payload = os.urandom(length)
    frame = encode_frame(opcode, payload, fin=fin, rsv1=rsv1, mask=False)
    header = parse_header(frame, 0)
    assert header is not None
    assert header.fin is fin
    assert header.rsv == (4 if rsv1 else 0)
    assert header.opcode == opcode
    assert header.masking_key is None
    assert header.length == length
    assert len(frame) == header.size + length
    assert frame[header.size :] == payload
    # minimal length encoding (RFC 6455 §5.2)
    assert header.size == (2 if length < 126 else 4 if length < 65536 else 10)


@pytest.mark.parametrize("length", [0, 1, 4, 5, 125, 126, 65535, 65536, 100_000])
def test_encode_masked_round_trip(length: int) -> None:
    payload = os.urandom(length)
    frame = encode_frame(OP_BINARY, payload, mask=True)
    header = parse_header(frame, 0)
    assert header is not None
    assert header.masking_key is not None
    assert len(header.masking_key) == 4
    assert header.length == length
    assert header.size == (6 if length < 126 else 8 if length < 65536 else 14)
    body = frame[header.size :]
    assert len(body) == length
    assert apply_mask(body, header.masking_key) == payload


def test_masking_keys_are_fresh() -> None:
    keys = set()
    for _ in range(50):
        header = parse_header(encode_frame(OP_TEXT, b"hello", mask=True), 0)
        assert header is not None
        keys.add(header.masking_key)
    assert len(keys) > 40


def test_encode_exact_bytes() -> None:
    assert encode_frame(OP_TEXT, b"Hello", mask=False) == b"\x81\x05Hello"
    assert encode_frame(OP_BINARY, b"", mask=False) == b"\x82\x00"
    assert encode_frame(OP_TEXT, b"x", fin=False, mask=False) == b"\x01\x01x"
    assert encode_frame(OP_CONTINUATION, b"x", mask=False) == b"\x80\x01x"
    assert encode_frame(OP_TEXT, b"x", rsv1=True, mask=False) == b"\xc1\x01x"
    assert encode_frame(OP_BINARY, b"a" * 126, mask=False)[:4] == b"\x82\x7e\x00\x7e"
    assert encode_frame(OP_BINARY, b"a" * 65536, mask=False)[:10] == b"\x82\x7f" + (65536).to_bytes(8, "big")


@pytest.mark.parametrize("length", [0, 10, 125, 126, 65536])
@pytest.mark.parametrize("opcode", [Opcode.TEXT, Opcode.BINARY])
def test_wsproto_parses_our_frames(length: int, opcode: Opcode) -> None:
    # a masked frame from a client, read by wsproto's server-side parser
    payload = b"a" * length
    proto = FrameProtocol(client=False, extensions=[])
    proto.receive_bytes(encode_frame(int(opcode), payload, mask=True))
    frames = list(proto.received_frames())
    assert len(frames) == 1
    frame = frames[0]
    assert frame.opcode is opcode
    assert frame.message_finished
    expected: object = payload.decode() if opcode is Opcode.TEXT else payload
    assert frame.payload == expected


@pytest.mark.parametrize("length", [0, 10, 125, 126, 65535, 65536])
@pytest.mark.parametrize("masked", [False, True])
def test_we_parse_wsproto_frames(length: int, masked: bool) -> None:
    proto = FrameProtocol(client=masked, extensions=[])
    payload = os.urandom(length)
    frame = proto.send_data(payload, fin=True)
    header = parse_header(frame, 0)
    assert header is not None
    assert header.opcode == OP_BINARY
    assert header.fin
    assert header.length == length
    assert (header.masking_key is not None) is masked
    body = frame[header.size :]
    if header.masking_key is not None:
        body = apply_mask(body, header.masking_key)
    assert body == payload


@pytest.mark.parametrize("length", [0, 125, 126, 65535, 65536, 2**63 - 1])
def test_length_error_accepts_minimal_forms(length: int) -> None:
    header = parse_header(raw_header(length), 0)
    assert header is not None
    assert length_error(header) is None


@pytest.mark.parametrize(
    ("field", "extended", "length"),
    [
        (126, struct.pack("!H", 0), 0),
        (126, struct.pack("!H", 125), 125),
        (127, struct.pack("!Q", 2), 2),
        (127, struct.pack("!Q", 65535), 65535),
    ],
)
@pytest.mark.parametrize("masked", [False, True])
def test_length_error_names_non_minimal_forms(field: int, extended: bytes, length: int, masked: bool) -> None:
    # RFC 6455 §5.2: the minimal number of bytes must encode the length.
    data = bytes((0x82, (0x80 if masked else 0) | field)) + extended + (KEY if masked else b"")
    header = parse_header(data, 0)
    assert header is not None and header.length == length
    assert length_error(header) == f"payload length {length:,} is not minimally encoded"


def test_length_error_names_64_bit_length_with_top_bit() -> None:
    header = parse_header(bytes((0x82, 127)) + struct.pack("!Q", 2**63 + 7), 0)
    assert header is not None
    assert length_error(header) == "64-bit payload length has its most significant bit set"


@pytest.mark.parametrize("mask", [False, True])
@pytest.mark.parametrize("length", [0, 125, 126, 65535, 65536])
def test_frame_parts_are_the_frame(mask: bool, length: int) -> None:
    payload = os.urandom(length)
    header, body = encode_frame_parts(OP_BINARY, payload, fin=False, rsv1=True, mask=mask)
    parsed = parse_header(header + body, 0)
    assert parsed is not None
    expected = (False, 4, OP_BINARY, length, len(header))
    assert (parsed.fin, parsed.rsv, parsed.opcode, parsed.length, parsed.size) == expected
    if mask:
        assert parsed.masking_key is not None
        assert apply_mask(body, parsed.masking_key) == payload
    else:
        assert body is payload
