"""Gap tests for trio_ws/protocol.py: prepared-message framing and inflation failures.

ProtocolCore is sans-IO, so these drive two cores back to back, or feed one
core bytes framed by hand (RFC 6455 §5.2), and check the events it reports.
"""

from __future__ import annotations

import os
import struct
import zlib

import pytest

from trio_ws import Deflate, PreparedMessage
from trio_ws.compression import DeflateExtension, client_finalize, client_offer, parse_extension_header, server_accept
from trio_ws.protocol import CloseReceived, MessageChunk, ProtocolCore, ProtocolFailure


def negotiate(settings: Deflate, max_message_size: int | None = None) -> tuple[DeflateExtension, DeflateExtension]:
    [(_, params)] = parse_extension_header(client_offer(settings))
    response, server_ext = server_accept(settings, params, max_message_size)
    [(_, answer)] = parse_extension_header(response)
    return client_finalize(settings, answer, max_message_size), server_ext


def make_pair(
    settings: Deflate | None = None, max_message_size: int | None = None
) -> tuple[ProtocolCore, ProtocolCore]:
    client_ext, server_ext = negotiate(settings, max_message_size) if settings is not None else (None, None)
    client = ProtocolCore(is_client=True, extension=client_ext, max_message_size=max_message_size)
    server = ProtocolCore(is_client=False, extension=server_ext, max_message_size=max_message_size)
    return client, server


def masked_frame(opcode: int, payload: bytes, *, rsv1: bool = False) -> bytes:
    """A client (masked) frame built by hand."""
    assert len(payload) < 126
    key = os.urandom(4)
    masked = bytes(byte ^ key[i % 4] for i, byte in enumerate(payload))
    return bytes([0x80 | (0x40 if rsv1 else 0) | opcode, 0x80 | len(payload)]) + key + masked


# -- shared framing ------------------------------------------------------------------
def test_shared_framing_key_depends_on_side_compression_and_context_takeover() -> None:
    plain_client, plain_server = make_pair()
    assert plain_client.shared_framing_key() == (False, None)  # client frames are masked per frame
    assert plain_server.shared_framing_key() == (True, None)

    _, takeover = make_pair(Deflate())
    assert takeover.shared_framing_key() == (False, None)  # its compressor has history
    assert takeover.shared_framing_key(compress=False) == (True, None)

    _, fresh = make_pair(Deflate(server_no_context_takeover=True, compress_level=3, mem_level=7))
    assert fresh.extension is not None
    assert fresh.shared_framing_key() == (True, (fresh.extension.compress_bits, 3, 7))


@pytest.mark.parametrize(
    "settings",
    [None, Deflate(), Deflate(server_no_context_takeover=True)],
    ids=["plain", "takeover", "no-takeover"],
)
@pytest.mark.parametrize("data", ["héllo " * 40, b"\x00\xff" * 100], ids=["text", "binary"])
def test_encode_prepared_round_trips_both_ways(settings: Deflate | None, data: str | bytes) -> None:
    message = PreparedMessage(data)
    client, server = make_pair(settings)
    for _ in range(2):  # twice: compression history must stay in step with the peer
        assert client.receive_data(server.encode_prepared(message)) == [MessageChunk(data, isinstance(data, str), True)]
        assert server.receive_data(client.encode_prepared(message)) == [MessageChunk(data, isinstance(data, str), True)]


def test_encode_prepared_reuses_the_shared_frame() -> None:
    message = PreparedMessage(b"same bytes for all")
    _, first = make_pair()
    _, second = make_pair()
    assert first.encode_prepared(message) is second.encode_prepared(message)
    assert message.frames_built == 1


def test_encode_prepared_after_a_close_is_runtime_error() -> None:
    _, server = make_pair()
    server.encode_close(1000, None)  # we sent our close frame
    with pytest.raises(RuntimeError, match="closing"):
        server.encode_prepared(PreparedMessage("late"))

    client, server = make_pair()
    assert server.receive_data(client.encode_close(4000, None)) == [CloseReceived(4000, "")]  # the peer sent its
    with pytest.raises(RuntimeError, match="closing"):
        server.encode_prepared(PreparedMessage("late"))


# -- inflation failures -------------------------------------------------------------------
def test_invalid_compressed_data_fails_with_1007() -> None:
    _, server = make_pair(Deflate())
    events = server.receive_data(masked_frame(0x1, b"\xff\xff\xff\xff not deflate", rsv1=True))
    assert events == [ProtocolFailure(1007, "invalid compressed data")]


def test_message_inflating_past_the_limit_in_its_tail_fails_with_1009() -> None:
    """The frame alone inflates to nothing; the implied 00 00 ff ff tail adds 4 bytes.

    The payload ends inside a stored block header announcing 4 bytes, so the
    tail the receiver appends (RFC 7692 §7.2.2) *is* that block's content.
    """
    payload = b"\x00" + struct.pack("<HH", 4, 0xFFFF ^ 4)
    decompressor = zlib.decompressobj(-15)
    assert decompressor.decompress(payload) == b""
    assert decompressor.decompress(b"\x00\x00\xff\xff") == b"\x00\x00\xff\xff"

    _, server = make_pair(Deflate(), max_message_size=3)
    events = server.receive_data(masked_frame(0x2, payload, rsv1=True))
    assert events == [ProtocolFailure(1009, "compressed message inflates past max_message_size")]

    _, roomy = make_pair(Deflate(), max_message_size=4)  # exactly the limit is fine
    assert roomy.receive_data(masked_frame(0x2, payload, rsv1=True)) == [MessageChunk(b"\x00\x00\xff\xff", False, True)]
