"""Tests for trio_ws.compression: settings, negotiation (also over a stream, with odd headers) and the codec."""

from __future__ import annotations

import os
import random
import tracemalloc
import zlib
from typing import Any

import pytest
import trio
import trio.testing
from support.rawhttp import client_given_answer, extension_header, read_head, upgrade_request
from wsproto.frame_protocol import CloseReason as WsprotoCloseReason
from wsproto.frame_protocol import FrameProtocol, Opcode, RsvBits

import trio_ws
from trio_ws import Deflate, HandshakeError
from trio_ws.compression import (
    DeflateExtension,
    ExtensionNegotiationError,
    client_finalize,
    client_offer,
    parse_extension_header,
    server_accept,
)

TAIL = b"\x00\x00\xff\xff"
TIMEOUT = 10.0
DEFAULT = Deflate()


def negotiate(
    client: Deflate = DEFAULT, server: Deflate = DEFAULT, max_message_size: int | None = None
) -> tuple[DeflateExtension, DeflateExtension]:
    """Run a whole negotiation; return (client codec, server codec)."""
    [(name, params)] = parse_extension_header(client_offer(client))
    assert name == "permessage-deflate"
    response, server_ext = server_accept(server, params, max_message_size)
    [(name, answer)] = parse_extension_header(response)
    assert name == "permessage-deflate"
    client_ext = client_finalize(client, answer, max_message_size)
    return client_ext, server_ext


def text_corpus(seed: int, count: int) -> list[bytes]:
    rng = random.Random(seed)
    words = ["alpha", "beta", "gamma", "delta", "websocket", "trio", "zlib", "frame", "é", "日本", "🎉"]
    messages = []
    for _ in range(count):
        n = rng.choice([0, 1, 5, 50, 500, 3000])
        messages.append(" ".join(rng.choice(words) for _ in range(n)).encode())
    return messages


# -- Deflate settings -------------------------------------------------------------


def test_deflate_defaults() -> None:
    settings = Deflate()
    assert settings.server_max_window_bits is None
    assert settings.client_max_window_bits is None
    assert not settings.server_no_context_takeover
    assert not settings.client_no_context_takeover
    assert settings.compress_level == 6
    assert settings.mem_level == 5


@pytest.mark.parametrize("bits", [9, 12, 15])
def test_deflate_valid_window_bits(bits: int) -> None:
    settings = Deflate(server_max_window_bits=bits, client_max_window_bits=bits)
    assert settings.server_max_window_bits == bits


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"server_max_window_bits": 8}, "server_max_window_bits"),
        ({"server_max_window_bits": 16}, "server_max_window_bits"),
        ({"client_max_window_bits": 8}, "client_max_window_bits"),
        ({"client_max_window_bits": 0}, "client_max_window_bits"),
        ({"compress_level": -1}, "compress_level"),
        ({"compress_level": 10}, "compress_level"),
        ({"mem_level": 0}, "mem_level"),
        ({"mem_level": 10}, "mem_level"),
    ],
)
def test_deflate_invalid(kwargs: dict[str, Any], name: str) -> None:
    with pytest.raises(ValueError, match=name):
        Deflate(**kwargs)


def test_deflate_frozen_and_hashable() -> None:
    settings = Deflate(compress_level=1)
    assert settings == Deflate(compress_level=1)
    assert hash(settings) == hash(Deflate(compress_level=1))
    with pytest.raises(AttributeError):
        settings.compress_level = 2  # type: ignore[misc]


# -- parse_extension_header ---------------------------------------------------------


def test_parse_extension_header() -> None:
    assert parse_extension_header(
        'permessage-deflate; client_max_window_bits; server_max_window_bits="10", x-foo, Permessage-Deflate'
    ) == [
        ("permessage-deflate", {"client_max_window_bits": None, "server_max_window_bits": "10"}),
        ("x-foo", {}),
        ("permessage-deflate", {}),
    ]
    assert parse_extension_header("") == []
    with pytest.raises(ExtensionNegotiationError):
        parse_extension_header("permessage-deflate; a=1; a=2")
    with pytest.raises(ExtensionNegotiationError):
        parse_extension_header("; a=1")


# -- client_offer ---------------------------------------------------------------------


def test_client_offer_default() -> None:
    assert client_offer(Deflate()) == "permessage-deflate; client_max_window_bits"


def test_client_offer_everything() -> None:
    settings = Deflate(
        server_max_window_bits=10,
        client_max_window_bits=11,
        server_no_context_takeover=True,
        client_no_context_takeover=True,
    )
    offer = client_offer(settings)
    [(name, params)] = parse_extension_header(offer)
    assert name == "permessage-deflate"
    assert params == {
        "server_no_context_takeover": None,
        "client_no_context_takeover": None,
        "server_max_window_bits": "10",
        "client_max_window_bits": "11",
    }


# -- server_accept ----------------------------------------------------------------------


def accept(params: dict[str, str | None], settings: Deflate = DEFAULT) -> tuple[dict[str, str | None], Any]:
    response, codec = server_accept(settings, params, None)
    [(name, answer)] = parse_extension_header(response)
    assert name == "permessage-deflate"
    return answer, codec


def test_server_accept_bare_offer() -> None:
    answer, codec = accept({})
    assert answer == {"server_max_window_bits": "12"}
    assert not codec.is_client
    assert codec.compress_bits == 12
    assert codec.decompress_bits == 15
    assert not codec.reset_compressor
    assert not codec.reset_decompressor


def test_server_accept_with_server_bits_15_says_nothing() -> None:
    answer, codec = accept({}, Deflate(server_max_window_bits=15))
    assert answer == {}
    assert codec.compress_bits == 15


@pytest.mark.parametrize(("offered", "used"), [("9", 9), ("10", 10), ("12", 12), ("14", 12), ("15", 12)])
def test_server_accept_server_max_window_bits(offered: str, used: int) -> None:
    answer, codec = accept({"server_max_window_bits": offered})
    assert answer == {"server_max_window_bits": str(used)}
    assert codec.compress_bits == used


def test_server_accept_server_max_window_bits_with_large_setting() -> None:
    answer, codec = accept({"server_max_window_bits": "15"}, Deflate(server_max_window_bits=15))
    assert answer == {"server_max_window_bits": "15"}
    assert codec.compress_bits == 15


def test_server_accept_declines_server_max_window_bits_8() -> None:
    with pytest.raises(ExtensionNegotiationError):
        server_accept(Deflate(), {"server_max_window_bits": "8"}, None)


def test_server_accept_client_bits_bare() -> None:
    answer, codec = accept({"client_max_window_bits": None})
    assert answer == {"server_max_window_bits": "12", "client_max_window_bits": "12"}
    assert codec.decompress_bits == 12


def test_server_accept_client_bits_bare_with_setting() -> None:
    answer, codec = accept({"client_max_window_bits": None}, Deflate(client_max_window_bits=14))
    assert answer["client_max_window_bits"] == "14"
    assert codec.decompress_bits == 14


@pytest.mark.parametrize(("offered", "used"), [("8", 8), ("9", 9), ("10", 10), ("12", 12), ("15", 12)])
def test_server_accept_client_bits_valued(offered: str, used: int) -> None:
    answer, codec = accept({"client_max_window_bits": offered})
    assert answer["client_max_window_bits"] == str(used)
    assert codec.decompress_bits == max(used, 9)


def test_server_accept_without_client_bits_decompresses_with_15() -> None:
    answer, codec = accept({}, Deflate(client_max_window_bits=10))
    assert "client_max_window_bits" not in answer
    assert codec.decompress_bits == 15


def test_server_accept_no_context_takeover_flags() -> None:
    answer, codec = accept({"server_no_context_takeover": None, "client_no_context_takeover": None})
    assert "server_no_context_takeover" in answer
    assert "client_no_context_takeover" in answer
    assert answer["server_no_context_takeover"] is None
    assert codec.reset_compressor
    assert codec.reset_decompressor


def test_server_accept_no_context_takeover_from_settings() -> None:
    answer, codec = accept({}, Deflate(server_no_context_takeover=True, client_no_context_takeover=True))
    assert "server_no_context_takeover" in answer
    assert "client_no_context_takeover" in answer
    assert codec.reset_compressor
    assert codec.reset_decompressor


@pytest.mark.parametrize(
    "params",
    [
        {"unknown": None},
        {"server_max_window_bits": None},
        {"server_max_window_bits": "16"},
        {"server_max_window_bits": "7"},
        {"server_max_window_bits": "ten"},
        {"server_max_window_bits": "-9"},
        {"client_max_window_bits": "16"},
        {"client_max_window_bits": "x"},
        {"server_no_context_takeover": "1"},
        {"client_no_context_takeover": "yes"},
    ],
)
def test_server_accept_invalid_offers(params: dict[str, str | None]) -> None:
    with pytest.raises(ExtensionNegotiationError):
        server_accept(Deflate(), params, None)


def test_server_accept_passes_max_message_size() -> None:
    _, codec = server_accept(Deflate(), {}, 1234)
    assert codec.max_message_size == 1234


# -- client_finalize ----------------------------------------------------------------------


def test_client_finalize_plain_answer() -> None:
    codec = client_finalize(Deflate(), {}, 99)
    assert codec.is_client
    assert codec.compress_bits == 15
    assert codec.decompress_bits == 15
    assert not codec.reset_compressor
    assert not codec.reset_decompressor
    assert codec.max_message_size == 99


def test_client_finalize_window_bits() -> None:
    codec = client_finalize(Deflate(), {"server_max_window_bits": "10", "client_max_window_bits": "11"}, None)
    assert codec.decompress_bits == 10
    assert codec.compress_bits == 11


def test_client_finalize_own_client_bits_lower_than_answer() -> None:
    codec = client_finalize(Deflate(client_max_window_bits=9), {"client_max_window_bits": "13"}, None)
    assert codec.compress_bits == 9


def test_client_finalize_no_context_takeover() -> None:
    codec = client_finalize(Deflate(), {"server_no_context_takeover": None, "client_no_context_takeover": None}, None)
    assert codec.reset_compressor
    assert codec.reset_decompressor


def test_client_finalize_own_client_no_context_takeover() -> None:
    codec = client_finalize(Deflate(client_no_context_takeover=True), {}, None)
    assert codec.reset_compressor


@pytest.mark.parametrize(
    "params",
    [
        {"unknown": "1"},
        {"x-foo": None},
        {"client_max_window_bits": None},  # the server must give a value
        {"server_max_window_bits": None},
        {"server_max_window_bits": "16"},
        {"client_max_window_bits": "7"},
        {"server_no_context_takeover": "1"},
    ],
)
def test_client_finalize_rejects_invalid_answers(params: dict[str, str | None]) -> None:
    with pytest.raises(ExtensionNegotiationError):
        client_finalize(Deflate(), params, None)


@pytest.mark.parametrize("params", [{}, {"server_max_window_bits": "11"}, {"server_max_window_bits": "15"}])
def test_client_finalize_rejects_ignored_server_bits(params: dict[str, str | None]) -> None:
    with pytest.raises(ExtensionNegotiationError, match="server_max_window_bits"):
        client_finalize(Deflate(server_max_window_bits=10), params, None)


@pytest.mark.parametrize("bits", ["9", "10"])
def test_client_finalize_accepts_honoured_server_bits(bits: str) -> None:
    codec = client_finalize(Deflate(server_max_window_bits=10), {"server_max_window_bits": bits}, None)
    assert codec.decompress_bits == int(bits)


def test_client_finalize_rejects_ignored_server_no_context_takeover() -> None:
    with pytest.raises(ExtensionNegotiationError, match="server_no_context_takeover"):
        client_finalize(Deflate(server_no_context_takeover=True), {}, None)
    codec = client_finalize(Deflate(server_no_context_takeover=True), {"server_no_context_takeover": None}, None)
    assert codec.reset_decompressor


def test_client_window_bits_8_output_inflates_with_8_bit_window() -> None:
    # the server may ask for client_max_window_bits=8 (RFC 7692 §7.1.2.2)
    codec = client_finalize(Deflate(), {"client_max_window_bits": "8"}, None)
    block = random.Random(3).randbytes(400)
    inflater = zlib.decompressobj(-8)
    for _ in range(3):
        payload = codec.compress_message(block * 2)
        assert inflater.decompress(payload + TAIL) == block * 2


# -- DeflateExtension codec ------------------------------------------------------------------


def test_extension_name_and_enabled() -> None:
    client_ext, server_ext = negotiate()
    assert client_ext.name == "permessage-deflate"
    assert client_ext.enabled()
    assert server_ext.enabled()
    assert client_ext.offer() == client_offer(Deflate())


SETTINGS = [
    pytest.param(Deflate(), id="default"),
    pytest.param(Deflate(server_no_context_takeover=True, client_no_context_takeover=True), id="no-takeover"),
    pytest.param(Deflate(server_max_window_bits=9, client_max_window_bits=9), id="bits9"),
    pytest.param(Deflate(server_max_window_bits=15, client_max_window_bits=15, compress_level=9), id="bits15"),
    pytest.param(Deflate(compress_level=0, mem_level=1), id="level0"),
    pytest.param(Deflate(client_no_context_takeover=True), id="client-no-takeover"),
]


@pytest.mark.parametrize("settings", SETTINGS)
def test_round_trip_many_messages(settings: Deflate) -> None:
    client_ext, server_ext = negotiate(settings, settings)
    messages = [*text_corpus(1, 60), os.urandom(5000), b"", b"\x00" * 70000, os.urandom(1)]
    for i, message in enumerate(messages):
        sender, receiver = (client_ext, server_ext) if i % 2 else (server_ext, client_ext)
        payload = sender.compress_message(message)
        assert payload  # never empty: an empty message is one 0x00 byte
        assert not payload.endswith(TAIL)
        assert receiver.decompress_message(payload) == message


def test_empty_message_encoding() -> None:
    client_ext, server_ext = negotiate()
    assert client_ext.compress_message(b"") == b"\x00"
    assert server_ext.decompress_message(b"\x00") == b""
    # Also after other messages, in the middle of a context-takeover stream.
    assert server_ext.decompress_message(client_ext.compress_message(b"hello")) == b"hello"
    assert client_ext.compress_message(b"") == b"\x00"
    assert client_ext.compress_fragment(b"", first=True, fin=True, compress=True) == (True, b"\x00")
    assert server_ext.decompress_message(b"\x00") == b""
    assert server_ext.decompress_message(client_ext.compress_message(b"hello")) == b"hello"


def test_context_takeover_shrinks_repeated_messages() -> None:
    client_ext, server_ext = negotiate()
    message = os.urandom(1000)
    first = client_ext.compress_message(message)
    second = client_ext.compress_message(message)
    assert len(second) < len(first) // 10
    assert server_ext.decompress_message(first) == message
    assert server_ext.decompress_message(second) == message


def test_no_context_takeover_resets() -> None:
    settings = Deflate(client_no_context_takeover=True, server_no_context_takeover=True)
    client_ext, server_ext = negotiate(settings, settings)
    message = os.urandom(1000)
    first = client_ext.compress_message(message)
    second = client_ext.compress_message(message)
    assert first == second
    assert server_ext.decompress_message(second) == message
    # a fresh decompressor can read every message on its own
    assert zlib.decompressobj(-15).decompress(second + TAIL) == message


def test_decompressor_resets_without_takeover() -> None:
    settings = Deflate(client_no_context_takeover=True)
    _, server_ext = negotiate(settings, settings)
    assert server_ext.reset_decompressor
    # messages compressed independently (as a no-context-takeover peer sends them)
    for message in text_corpus(5, 20):
        compressor = zlib.compressobj(6, zlib.DEFLATED, -15)
        payload = (compressor.compress(message) + compressor.flush(zlib.Z_SYNC_FLUSH))[:-4]
        assert server_ext.decompress_message(payload) == message


def test_decompress_message_after_bfinal_block() -> None:
    # RFC 7692 §7.2.3.5: a sender may end a message with a DEFLATE block that has
    # BFINAL set. Every such message must decode, not just the first one.
    _, server_ext = negotiate()
    for i in range(3):
        message = f"message number {i}".encode()
        compressor = zlib.compressobj(6, zlib.DEFLATED, -15)
        payload = compressor.compress(message) + compressor.flush(zlib.Z_FINISH)
        assert server_ext.decompress_message(payload) == message


def test_compress_fragment_concatenation_decompresses() -> None:
    client_ext, server_ext = negotiate()
    message = b"".join(text_corpus(7, 10))
    pieces = [message[i : i + 777] for i in range(0, len(message), 777)] + [b""]
    for _ in range(3):  # several messages: context is kept across them
        payloads = []
        for i, piece in enumerate(pieces):
            rsv1, payload = client_ext.compress_fragment(piece, first=i == 0, fin=i == len(pieces) - 1, compress=True)
            assert rsv1 is (i == 0)
            payloads.append(payload)
        assert server_ext.decompress_message(b"".join(payloads)) == message


def test_compress_fragment_uncompressed_message() -> None:
    client_ext, server_ext = negotiate()
    assert client_ext.compress_fragment(b"abc", first=True, fin=False, compress=False) == (False, b"abc")
    # later frames follow the first one, whatever ``compress`` says
    assert client_ext.compress_fragment(b"def", first=False, fin=True, compress=True) == (False, b"def")
    # and the next message can be compressed again
    rsv1, payload = client_ext.compress_fragment(b"ghi", first=True, fin=True, compress=True)
    assert rsv1
    assert server_ext.decompress_message(payload) == b"ghi"


def test_wsproto_sends_control_frames_through_the_codec_untouched() -> None:
    """wsproto only ever sends control frames (data frames are ours): no RSV1, no deflate."""
    client_ext, server_ext = negotiate()
    server = FrameProtocol(client=False, extensions=[server_ext])
    assert server.ping(b"abc") == b"\x89\x03abc"
    assert server.pong(b"") == b"\x8a\x00"
    assert server.close(1000, "bye") == b"\x88\x05\x03\xe8bye"
    client = FrameProtocol(client=True, extensions=[client_ext])
    assert client.ping(b"abc")[:2] == b"\x89\x83"  # FIN, ping, masked, 3 bytes: RSV1 clear


def test_fast_and_fragment_paths_share_context() -> None:
    client_ext, server_ext = negotiate()
    message = os.urandom(2000)
    assert server_ext.decompress_message(client_ext.compress_message(message)) == message
    _, payload = client_ext.compress_fragment(message, first=True, fin=True, compress=True)
    assert len(payload) < 100  # back-reference into the previous message
    assert server_ext.decompress_message(payload) == message


@pytest.mark.parametrize("limit", [1, 1000, 65536])
def test_exact_limit(limit: int) -> None:
    client_ext, server_ext = negotiate(max_message_size=limit)
    message = b"a" * limit
    assert server_ext.decompress_message(client_ext.compress_message(message)) == message
    too_big = client_ext.compress_message(b"b" * (limit + 1))
    assert server_ext.decompress_message(too_big) is WsprotoCloseReason.MESSAGE_TOO_BIG


class RecordingDecompressor:
    """Wrap a zlib decompressor and count the bytes it produces."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.produced = 0

    def decompress(self, data: bytes, max_length: int = 0) -> bytes:
        out: bytes = self.inner.decompress(data, max_length)
        self.produced += len(out)
        return out

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def make_bomb(size: int) -> bytes:
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    out = bytearray()
    chunk = b"\x00" * 2**20
    for _ in range(size // len(chunk)):
        out += compressor.compress(chunk)
    out += compressor.flush(zlib.Z_SYNC_FLUSH)
    return bytes(out[:-4])


BOMB = make_bomb(64 * 2**20)  # 64 MiB of zeros in ~64 KiB


@pytest.mark.parametrize("limit", [1, 1000, 2**20])
def test_bomb_bounded_inflation(limit: int) -> None:
    assert len(BOMB) < 100_000
    _, server_ext = negotiate(max_message_size=limit)
    recorder = RecordingDecompressor(zlib.decompressobj(-server_ext.decompress_bits))
    server_ext._decompressor = recorder  # type: ignore[assignment]
    assert server_ext.decompress_message(BOMB) is WsprotoCloseReason.MESSAGE_TOO_BIG
    assert recorder.produced <= limit + 1


def test_bomb_memory_bounded() -> None:
    _, server_ext = negotiate(max_message_size=2**16)
    tracemalloc.start()
    try:
        result = server_ext.decompress_message(BOMB)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert result is WsprotoCloseReason.MESSAGE_TOO_BIG
    assert peak < 2 * 2**20


def test_bomb_in_fragments_bounded() -> None:
    # inflation through wsproto's per-frame hooks is bounded across the message
    _, server_ext = negotiate(max_message_size=10_000)
    recorder = RecordingDecompressor(zlib.decompressobj(-server_ext.decompress_bits))
    server_ext._decompressor = recorder  # type: ignore[assignment]
    rsv = RsvBits(True, False, False)
    assert server_ext.frame_inbound_header(None, Opcode.BINARY, rsv, len(BOMB)) == rsv  # type: ignore[arg-type]
    result: object = b""
    for i in range(0, len(BOMB), 4096):
        result = server_ext.frame_inbound_payload_data(None, BOMB[i : i + 4096])  # type: ignore[arg-type]
        if isinstance(result, WsprotoCloseReason):
            break
    assert result is WsprotoCloseReason.MESSAGE_TOO_BIG
    assert recorder.produced <= 10_001


def test_no_limit_inflates_everything() -> None:
    _, server_ext = negotiate(max_message_size=None)
    small_bomb = make_bomb(4 * 2**20)
    assert server_ext.decompress_message(small_bomb) == b"\x00" * (4 * 2**20)


@pytest.mark.parametrize("payload", [b"\xff\xff\xff\xff", b"\x07", b"\xfe" * 20])
def test_invalid_data(payload: bytes) -> None:
    _, server_ext = negotiate()
    assert server_ext.decompress_message(payload) is WsprotoCloseReason.INVALID_FRAME_PAYLOAD_DATA


def test_invalid_data_with_limit() -> None:
    _, server_ext = negotiate(max_message_size=100)
    assert server_ext.decompress_message(b"\xff\xff\xff\xff") is WsprotoCloseReason.INVALID_FRAME_PAYLOAD_DATA


# -- negotiation over a stream: odd headers written by hand ---------------------------------
async def server_answer_to(nursery: trio.Nursery, extensions: bytes) -> tuple[trio_ws.WebSocketConnection, bytes]:
    """A trio_ws server accepts a raw client's offer; returns it and the 101 head."""
    client_stream, server_stream = trio.testing.memory_stream_pair()
    await client_stream.send_all(upgrade_request(extensions=extensions))
    request = await trio_ws.wrap_server_stream(nursery, server_stream, ping_interval=None)
    ws = await request.accept()
    return ws, await read_head(client_stream)


# empty parameters
def test_empty_parameters_are_skipped_when_parsing() -> None:
    assert parse_extension_header("permessage-deflate;; client_max_window_bits ;") == [
        ("permessage-deflate", {"client_max_window_bits": None})
    ]


async def test_offer_with_an_empty_parameter_is_accepted(nursery: trio.Nursery) -> None:
    with trio.fail_after(TIMEOUT):
        ws, head = await server_answer_to(nursery, b"permessage-deflate;; client_max_window_bits")
    assert ws.compression
    answer = extension_header(head)
    assert answer is not None and answer.startswith(b"permessage-deflate")
    assert b"client_max_window_bits=" in answer  # the bare offer was seen and answered


# window bits that are digits to str.isdigit() but not to int()
# "\xb2" is SUPERSCRIPT TWO in latin-1: str.isdigit() is True, int() raises ValueError.
async def test_server_declines_an_offer_with_a_superscript_digit(nursery: trio.Nursery) -> None:
    """An invalid offer is declined like any other (101 without compression).

    Observed: ``request.accept()`` raises ValueError ("invalid literal for int()")
    out of compression._bits, so a client's malformed header makes the
    server handler fail.
    """
    with trio.fail_after(TIMEOUT):
        ws, head = await server_answer_to(nursery, b"permessage-deflate; client_max_window_bits=1\xb2")
    assert not ws.compression
    assert extension_header(head) is None


async def test_client_refuses_an_answer_with_a_superscript_digit(nursery: trio.Nursery) -> None:
    """An invalid answer is a HandshakeError, as documented for wrap_client_stream.

    Observed: a bare ValueError ("invalid literal for int()") escapes instead.
    """
    with trio.fail_after(TIMEOUT):
        with pytest.raises(HandshakeError, match="invalid permessage-deflate answer"):
            await client_given_answer(nursery, b"permessage-deflate; server_max_window_bits=1\xb2")


def _traced_bytes_per_codec(make: Any, count: int = 50) -> float:
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        kept = [make() for _ in range(count)]
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert len(kept) == count
    return held / count


def test_zlib_objects_are_made_with_the_first_compressed_message() -> None:
    # compression.rst and performance.rst: negotiated but idle, a codec holds no zlib stream.
    client_ext, _ = negotiate()
    payload = client_ext.compress_message(b"hello " * 100)

    def idle() -> DeflateExtension:
        return negotiate()[1]

    def after_traffic() -> DeflateExtension:
        codec = negotiate()[1]
        codec.compress_message(b"hello " * 100)
        assert codec.decompress_message(payload) == b"hello " * 100
        return codec

    assert _traced_bytes_per_codec(idle) < 2048
    # A 4 KiB window and mem_level 5 on each side: tens of KiB, made by the first message each way.
    assert _traced_bytes_per_codec(after_traffic) > 20 * 1024
    codec = idle()
    assert codec._compressor is None and codec._decompressor is None
