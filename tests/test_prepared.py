"""Unit tests for trio_ws.PreparedMessage: types, frames, compressed frames, the frame cache."""

from __future__ import annotations

import zlib

import pytest
from wsproto.extensions import PerMessageDeflate
from wsproto.frame_protocol import Frame, FrameProtocol, Opcode

from trio_ws import PreparedMessage
from trio_ws.framing import OP_BINARY, OP_TEXT, encode_frame, parse_header

TAIL = b"\x00\x00\xff\xff"


def parse_frames(data: bytes, extensions: list[PerMessageDeflate] | None = None) -> list[Frame]:
    """Parse server frames as a wsproto client would (no masking expected)."""
    protocol = FrameProtocol(client=True, extensions=list(extensions or []))
    protocol.receive_bytes(data)
    return list(protocol.received_frames())


def deflate_client(bits: int) -> PerMessageDeflate:
    """A wsproto client extension, as if the server had answered with these parameters."""
    extension = PerMessageDeflate()
    extension.finalize(f"permessage-deflate; server_no_context_takeover; server_max_window_bits={bits}")
    assert extension.enabled()
    return extension


def inflate(frame: bytes) -> bytes:
    """Decompress the payload of one compressed, unmasked frame (raw deflate plus the tail)."""
    header = parse_header(frame, 0)
    assert header is not None
    assert header.rsv & 0x4, "RSV1 must be set on a compressed frame"
    assert header.masking_key is None
    body = frame[header.size :]
    assert len(body) == header.length
    return zlib.decompressobj(-15).decompress(body + TAIL)


# -- construction ---------------------------------------------------------------


def test_text_message() -> None:
    message = PreparedMessage("héllo 🎉")
    assert message.is_text
    assert message.data == "héllo 🎉"
    assert message.payload == "héllo 🎉".encode()
    assert len(message) == len("héllo 🎉".encode())
    assert message.frames_built == 0


@pytest.mark.parametrize("data", [b"\x00\xffbin", bytearray(b"\x00\xffbin"), memoryview(b"\x00\xffbin")])
def test_binary_message(data: bytes | bytearray | memoryview) -> None:
    message = PreparedMessage(data)
    assert not message.is_text
    assert message.payload == b"\x00\xffbin"
    assert type(message.payload) is bytes
    assert message.data == b"\x00\xffbin"
    assert type(message.data) is bytes
    assert len(message) == 5


def test_binary_message_copies_a_mutable_buffer() -> None:
    buffer = bytearray(b"before")
    message = PreparedMessage(buffer)
    buffer[:] = b"after!"
    assert message.payload == b"before"
    assert parse_frames(message.frame(None))[0].payload == b"before"


@pytest.mark.parametrize("data", [42, None, ["a"], {"a": 1}, 1.5])
def test_other_types_raise_type_error(data: object) -> None:
    with pytest.raises(TypeError, match="str or bytes-like"):
        PreparedMessage(data)  # type: ignore[arg-type]


def test_repr_mentions_kind_and_frames() -> None:
    message = PreparedMessage(b"abc")
    assert "binary" in repr(message)
    assert "0 frame" in repr(message)
    message.frame(None)
    assert "1 frame" in repr(message)
    assert "text" in repr(PreparedMessage("x"))


# -- uncompressed frames ----------------------------------------------------------


@pytest.mark.parametrize("size", [0, 1, 125, 126, 65535, 65536, 200_000])
def test_text_frame_equals_encode_frame_and_parses_back(size: int) -> None:
    text = ("abcdé" * (size // 5 + 1))[:size]
    message = PreparedMessage(text)
    frame = message.frame(None)
    assert frame == encode_frame(OP_TEXT, text.encode(), mask=False)
    [parsed] = parse_frames(frame)
    assert parsed.opcode is Opcode.TEXT
    assert parsed.payload == text
    assert parsed.frame_finished
    assert parsed.message_finished


@pytest.mark.parametrize("size", [0, 5, 126, 70_000])
def test_binary_frame_equals_encode_frame_and_parses_back(size: int) -> None:
    data = bytes(range(256)) * (size // 256 + 1)
    data = data[:size]
    message = PreparedMessage(data)
    frame = message.frame(None)
    assert frame == encode_frame(OP_BINARY, data, mask=False)
    [parsed] = parse_frames(frame)
    assert parsed.opcode is Opcode.BINARY
    assert parsed.payload == data
    assert parsed.message_finished


def test_uncompressed_frame_is_built_once() -> None:
    message = PreparedMessage("once")
    first = message.frame(None)
    assert message.frames_built == 1
    for _ in range(10):
        assert message.frame(None) is first
    assert message.frames_built == 1


# -- compressed frames ------------------------------------------------------------


@pytest.mark.parametrize("key", [(15, 6, 8), (12, 6, 5), (9, 1, 1), (15, 9, 9), (10, 0, 5)])
def test_compressed_frame_inflates_to_the_payload(key: tuple[int, int, int]) -> None:
    text = "the quick brown fox jumps over the lazy dog; " * 200 + "é🎉"
    message = PreparedMessage(text)
    frame = message.frame(key)
    assert inflate(frame) == text.encode()
    header = parse_header(frame, 0)
    assert header is not None
    assert header.opcode == OP_TEXT
    assert header.fin
    if key[1] > 0:
        assert len(frame) < len(text.encode()), "a repetitive text must shrink"


def test_compressed_frame_parses_back_with_wsproto_deflate() -> None:
    data = bytes(range(64)) * 500
    message = PreparedMessage(data)
    [parsed] = parse_frames(message.frame((12, 6, 5)), [deflate_client(12)])
    assert parsed.opcode is Opcode.BINARY
    assert parsed.payload == data
    text_message = PreparedMessage("tick tock " * 300)
    [parsed] = parse_frames(text_message.frame((15, 6, 8)), [deflate_client(15)])
    assert parsed.payload == "tick tock " * 300


def test_compressed_empty_message() -> None:
    message = PreparedMessage("")
    frame = message.frame((15, 6, 8))
    assert inflate(frame) == b""
    [parsed] = parse_frames(frame, [deflate_client(15)])
    assert parsed.payload == ""


def test_compressed_frame_matches_a_fresh_raw_deflate() -> None:
    payload = b"abcabcabc" * 100
    compressor = zlib.compressobj(6, zlib.DEFLATED, -12, 5)
    body = compressor.compress(payload) + compressor.flush(zlib.Z_SYNC_FLUSH)
    assert body.endswith(TAIL)
    expected = encode_frame(OP_BINARY, body[:-4], rsv1=True, mask=False)
    assert PreparedMessage(payload).frame((12, 6, 5)) == expected


def test_frames_are_cached_per_key() -> None:
    message = PreparedMessage("cache me " * 50)
    keys: list[tuple[int, int, int] | None] = [None, (15, 6, 8), (12, 6, 5), (12, 9, 5)]
    frames = [message.frame(key) for key in keys]
    assert message.frames_built == len(keys)
    assert frames[0] == encode_frame(OP_TEXT, message.payload, mask=False)
    for key, frame in zip(keys, frames, strict=True):
        assert message.frame(key) is frame
    assert message.frames_built == len(keys)
    for key, frame in zip(keys[1:], frames[1:], strict=True):
        assert key is not None
        bits, level, mem_level = key
        compressor = zlib.compressobj(level, zlib.DEFLATED, -bits, mem_level)
        body = compressor.compress(message.payload) + compressor.flush(zlib.Z_SYNC_FLUSH)
        assert frame == encode_frame(OP_TEXT, body[:-4], rsv1=True, mask=False)
        assert inflate(frame) == message.payload
