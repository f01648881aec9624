"""Unit tests for trio_ws.protocol.ProtocolCore (sans-IO, two cores back to back)."""

from __future__ import annotations

import base64
import itertools
import os
import struct
import zlib

import pytest

from trio_ws import Deflate, PreparedMessage
from trio_ws.compression import DeflateExtension, client_finalize, client_offer, parse_extension_header, server_accept
from trio_ws.framing import (
    OP_BINARY,
    OP_CLOSE,
    OP_CONTINUATION,
    OP_PING,
    OP_PONG,
    OP_TEXT,
    parse_header,
)
from trio_ws.masking import apply_mask
from trio_ws.protocol import (
    DIRECT_READ_MIN_FRAME,
    DIRECT_READ_SHARE,
    FAST_PATH_MAX_FRAME,
    CloseReceived,
    Event,
    MessageChunk,
    PingReceived,
    PongReceived,
    ProtocolCore,
    ProtocolFailure,
)

LARGE = 5 * 2**20


# -- helpers -------------------------------------------------------------------------------


def negotiate(
    settings: Deflate | None, max_message_size: int | None
) -> tuple[DeflateExtension | None, DeflateExtension | None]:
    if settings is None:
        return None, None
    [(_, params)] = parse_extension_header(client_offer(settings))
    response, server_ext = server_accept(settings, params, max_message_size)
    [(_, answer)] = parse_extension_header(response)
    return client_finalize(settings, answer, max_message_size), server_ext


def make_pair(
    *, compression: Deflate | None = None, max_message_size: int | None = None
) -> tuple[ProtocolCore, ProtocolCore]:
    client_ext, server_ext = negotiate(compression, max_message_size)
    client = ProtocolCore(is_client=True, extension=client_ext, max_message_size=max_message_size)
    server = ProtocolCore(is_client=False, extension=server_ext, max_message_size=max_message_size)
    return client, server


def sides(client: ProtocolCore, server: ProtocolCore, direction: str) -> tuple[ProtocolCore, ProtocolCore]:
    return (client, server) if direction == "c2s" else (server, client)


def messages_of(events: list[Event]) -> list[str | bytes]:
    """Join message chunks into whole messages; fail on any other event."""
    out: list[str | bytes] = []
    parts: list[str | bytes] = []
    kind: bool | None = None
    for event in events:
        assert isinstance(event, MessageChunk), event
        if kind is not None:
            assert event.is_text is kind
        kind = event.is_text
        parts.append(event.data)
        if event.final:
            out.append("".join(parts) if kind else b"".join(parts))  # type: ignore[arg-type]
            parts = []
            kind = None
    assert not parts, "unfinished message"
    return out


def frame(
    opcode: int,
    payload: bytes,
    *,
    fin: bool = True,
    rsv: int = 0,
    masked: bool = True,
    length: int | None = None,
) -> bytes:
    """Build any frame, valid or not (length may lie about the payload)."""
    n = len(payload) if length is None else length
    first = (0x80 if fin else 0) | (rsv << 4) | opcode
    mask_bit = 0x80 if masked else 0
    if n < 126:
        head = bytes((first, mask_bit | n))
    elif n < 65536:
        head = bytes((first, mask_bit | 126)) + struct.pack("!H", n)
    else:
        head = bytes((first, mask_bit | 127)) + struct.pack("!Q", n)
    if masked:
        key = os.urandom(4)
        return head + key + apply_mask(payload, key)
    return head + payload


def to_server(opcode: int, payload: bytes, **kwargs: object) -> bytes:
    return frame(opcode, payload, masked=True, **kwargs)  # type: ignore[arg-type]


def failure(events: list[Event]) -> ProtocolFailure:
    assert events, "no events"
    assert isinstance(events[-1], ProtocolFailure), events
    return events[-1]


COMPRESSION = [pytest.param(None, id="plain"), pytest.param(Deflate(), id="deflate")]
DIRECTIONS = ["c2s", "s2c"]


# -- round trips ---------------------------------------------------------------------------


@pytest.mark.parametrize("compression", COMPRESSION)
@pytest.mark.parametrize("direction", DIRECTIONS)
@pytest.mark.parametrize(
    "message",
    [
        "hello",
        "",
        b"",
        b"\x00\x01\x02",
        "é日本🎉",
        "x" * 125,
        "x" * 126,
        b"y" * 65535,
        b"y" * 65536,
        os.urandom(100_000),
    ],
    ids=lambda m: f"{type(m).__name__}{len(m)}",
)
def test_round_trip(compression: Deflate | None, direction: str, message: str | bytes) -> None:
    client, server = make_pair(compression=compression, max_message_size=2**20)
    sender, receiver = sides(client, server, direction)
    data = sender.encode_message(message)
    header = parse_header(data, 0)
    assert header is not None
    assert (header.masking_key is not None) is sender.is_client
    assert header.rsv == (4 if compression else 0)
    events = receiver.receive_data(data)
    assert events == [MessageChunk(message, isinstance(message, str), True)]


@pytest.mark.parametrize("compression", COMPRESSION)
@pytest.mark.parametrize("direction", DIRECTIONS)
@pytest.mark.parametrize("is_text", [True, False])
def test_large_message_through_wsproto(compression: Deflate | None, direction: str, is_text: bool) -> None:
    assert LARGE > FAST_PATH_MAX_FRAME
    client, server = make_pair(compression=compression, max_message_size=None)
    sender, receiver = sides(client, server, direction)
    if is_text:
        # base64 text compresses to ~3/4, so make it big enough to stay over the fast path
        raw: str | bytes = base64.b64encode(os.urandom(LARGE if compression else LARGE * 3 // 4)).decode()
    else:
        raw = os.urandom(LARGE)
    assert len(raw) >= LARGE
    data = sender.encode_message(raw)
    header = parse_header(data, 0)
    assert header is not None
    assert header.length > FAST_PATH_MAX_FRAME
    events = []
    for i in range(0, len(data), 2**16):
        events += receiver.receive_data(data[i : i + 2**16])
    assert len(events) > 1  # streamed in chunks, not buffered whole
    assert all(not e.final for e in events[:-1])  # type: ignore[union-attr]
    assert messages_of(events) == [raw]
    # the fast path still works afterwards
    assert receiver.receive_data(sender.encode_message("after")) == [MessageChunk("after", True, True)]


def test_large_message_one_feed() -> None:
    client, server = make_pair(max_message_size=None)
    raw = "é" * (LARGE // 2 + 1)
    assert messages_of(server.receive_data(client.encode_message(raw))) == [raw]


def test_fast_path_max_frame_boundary() -> None:
    client, server = make_pair(max_message_size=None)
    raw = os.urandom(FAST_PATH_MAX_FRAME)
    assert server.receive_data(client.encode_message(raw)) == [MessageChunk(raw, False, True)]
    raw += b"!"
    assert messages_of(server.receive_data(client.encode_message(raw))) == [raw]


def mixed_stream(client: ProtocolCore) -> tuple[bytes, list[Event]]:
    """A client byte stream of many kinds of frames and the events it should give."""
    data = bytearray()
    expected: list[Event] = []
    for message in ["a", b"b", "", b"", "é🎉" * 100, os.urandom(70_000)]:
        data += client.encode_message(message)
        expected.append(MessageChunk(message, isinstance(message, str), True))
    data += client.encode_ping(b"ping!")
    expected.append(PingReceived(b"ping!"))
    data += client.encode_fragment(b"frag", is_text=False, first=True, fin=False)
    data += client.encode_pong(b"")
    data += client.encode_fragment(b"ment", is_text=False, first=False, fin=True)
    expected.append(PongReceived(b""))
    expected.append(MessageChunk(b"fragment", False, True))
    data += client.encode_message("last")
    expected.append(MessageChunk("last", True, True))
    data += client.encode_close(1000, "done")
    expected.append(CloseReceived(1000, "done"))
    return bytes(data), expected


def normalise(events: list[Event]) -> list[Event]:
    """Merge consecutive chunks of one message (byte-at-a-time feeding splits them)."""
    out: list[Event] = []
    pending: list[MessageChunk] = []
    for event in events:
        if isinstance(event, MessageChunk):
            pending.append(event)
            if event.final:
                data: str | bytes = (
                    "".join(p.data for p in pending)  # type: ignore[misc]
                    if event.is_text
                    else b"".join(p.data for p in pending)  # type: ignore[misc]
                )
                out.append(MessageChunk(data, event.is_text, True))
                pending = []
        else:
            out.append(event)
    assert not pending
    return out


@pytest.mark.parametrize("compression", COMPRESSION)
def test_many_messages_in_one_feed(compression: Deflate | None) -> None:
    client, server = make_pair(compression=compression)
    data, expected = mixed_stream(client)
    assert normalise(server.receive_data(data)) == expected
    assert server.receive_data(client.encode_ping(b"x") if client.can_send_data else b"\x89\x00") == []


@pytest.mark.parametrize("compression", COMPRESSION)
def test_bytes_fed_one_at_a_time(compression: Deflate | None) -> None:
    client, server = make_pair(compression=compression)
    data, expected = mixed_stream(client)
    events: list[Event] = []
    for i in range(len(data)):
        events += server.receive_data(data[i : i + 1])
    assert normalise(events) == expected


def test_bytes_fed_one_at_a_time_server_to_client() -> None:
    client, server = make_pair(compression=Deflate())
    messages: list[str | bytes] = ["one", b"two", "", "é" * 300, os.urandom(1000)]
    data = b"".join(server.encode_message(m) for m in messages)
    events: list[Event] = []
    for byte in data:
        events += client.receive_data(bytes([byte]))
    assert messages_of(events) == messages


def test_empty_feed() -> None:
    _, server = make_pair()
    assert server.receive_data(b"") == []


def test_compress_false_sends_plain_frame() -> None:
    client, server = make_pair(compression=Deflate())
    data = client.encode_message(b"abc" * 100, compress=False)
    header = parse_header(data, 0)
    assert header is not None
    assert header.rsv == 0
    assert header.length == 300
    assert server.receive_data(data) == [MessageChunk(b"abc" * 100, False, True)]


@pytest.mark.parametrize("compression", COMPRESSION)
@pytest.mark.parametrize("direction", DIRECTIONS)
@pytest.mark.parametrize("is_text", [True, False])
def test_fragmented_message(compression: Deflate | None, direction: str, is_text: bool) -> None:
    client, server = make_pair(compression=compression)
    sender, receiver = sides(client, server, direction)
    text = "fragmented é日本🎉 message " * 50
    raw = text.encode()
    cuts = [0, 1, 2, 17, 100, 101, len(raw) - 1, len(raw)]  # some cuts split UTF-8 sequences
    pieces = [raw[a:b] for a, b in itertools.pairwise(cuts)]
    data = b"".join(
        sender.encode_fragment(piece, is_text=is_text, first=i == 0, fin=i == len(pieces) - 1)
        for i, piece in enumerate(pieces)
    )
    assert messages_of(receiver.receive_data(data)) == [text if is_text else raw]


# -- control frames and closing ----------------------------------------------------------------


@pytest.mark.parametrize("direction", DIRECTIONS)
def test_ping_pong(direction: str) -> None:
    client, server = make_pair()
    sender, receiver = sides(client, server, direction)
    assert receiver.receive_data(sender.encode_ping(b"hello")) == [PingReceived(b"hello")]
    assert sender.receive_data(receiver.encode_pong(b"hello")) == [PongReceived(b"hello")]
    assert receiver.receive_data(sender.encode_ping(b"")) == [PingReceived(b"")]
    assert receiver.receive_data(sender.encode_pong(b"x" * 125)) == [PongReceived(b"x" * 125)]


@pytest.mark.parametrize("direction", DIRECTIONS)
def test_close_handshake(direction: str) -> None:
    client, server = make_pair()
    closer, other = sides(client, server, direction)
    assert closer.can_send_data
    assert closer.can_send_close
    assert not closer.close_sent
    data = closer.encode_close(1000, "bye")
    assert closer.close_sent
    assert not closer.can_send_data
    assert not closer.can_send_close
    assert other.receive_data(data) == [CloseReceived(1000, "bye")]
    assert not other.can_send_data
    assert other.can_send_close
    assert not other.close_sent
    # the other side may still get data after the close frame: it is ignored
    assert other.receive_data(closer.encode_ping(b"x") if closer.can_send_data else b"\x81\x00") == []
    reply = other.encode_close(1000, "bye")
    assert other.close_sent
    assert not other.can_send_close
    assert closer.receive_data(reply) == [CloseReceived(1000, "bye")]


def test_close_without_code() -> None:
    client, server = make_pair()
    data = client.encode_close(None, None)
    header = parse_header(data, 0)
    assert header is not None
    assert header.opcode == OP_CLOSE
    assert header.length == 0
    assert server.receive_data(data) == [CloseReceived(1005, "")]


@pytest.mark.parametrize("code", [1000, 1001, 1011, 3000, 4999])
def test_close_codes_round_trip(code: int) -> None:
    client, server = make_pair()
    assert client.receive_data(server.encode_close(code, "r")) == [CloseReceived(code, "r")]


def test_close_reason_truncated_to_fit() -> None:
    client, server = make_pair()
    data = client.encode_close(1000, "é" * 200)
    header = parse_header(data, 0)
    assert header is not None
    assert header.length <= 125
    [event] = server.receive_data(data)
    assert isinstance(event, CloseReceived)
    assert event.code == 1000
    assert "é" * 10 in event.reason


def test_message_received_while_closing() -> None:
    client, server = make_pair()
    close = client.encode_close(1000, None)
    pending = server.encode_message("still here") + server.encode_message(b"\x01" * 1000)
    events = server.receive_data(close)
    assert events == [CloseReceived(1000, "")]
    # the client sent close first; messages the server sent before its close still arrive
    assert messages_of(client.receive_data(pending)) == ["still here", b"\x01" * 1000]
    assert client.receive_data(server.encode_close(1000, None)) == [CloseReceived(1000, "")]


def test_encode_close_twice_raises() -> None:
    client, _ = make_pair()
    client.encode_close(1000, None)
    with pytest.raises(RuntimeError):
        client.encode_close(1000, None)


def test_encode_message_after_close_sent_raises() -> None:
    client, _server = make_pair()
    client.encode_close(1000, None)
    with pytest.raises(RuntimeError):
        client.encode_message("late")
    with pytest.raises(RuntimeError):
        client.encode_message(b"late")
    with pytest.raises(RuntimeError):
        client.encode_fragment(b"late", is_text=False, first=True, fin=True)


def test_encode_message_after_close_received_raises() -> None:
    client, server = make_pair()
    server.receive_data(client.encode_close(1000, None))
    with pytest.raises(RuntimeError):
        server.encode_message("late")
    with pytest.raises(RuntimeError):
        server.encode_fragment(b"late", is_text=True, first=True, fin=True)


def test_events_after_close_are_ignored() -> None:
    client, server = make_pair()
    data = client.encode_message("before") + client.encode_close(1000, None)
    events = server.receive_data(data + b"garbage that is not a frame")
    assert events == [MessageChunk("before", True, True), CloseReceived(1000, "")]
    assert server.receive_data(b"more garbage") == []


# -- limits --------------------------------------------------------------------------------


@pytest.mark.parametrize("direction", DIRECTIONS)
@pytest.mark.parametrize("size", [1001, 70_000, FAST_PATH_MAX_FRAME + 1])
def test_single_frame_too_big_refused_at_header(direction: str, size: int) -> None:
    client, server = make_pair(max_message_size=1000)
    sender, receiver = sides(client, server, direction)
    data = sender.encode_message(b"z" * size)
    header = parse_header(data, 0)
    assert header is not None
    events = receiver.receive_data(data[: header.size + 10])
    assert failure(events).code == 1009
    assert receiver.receive_data(data[header.size + 10 :]) == []


def test_declared_length_alone_triggers_1009() -> None:
    _, server = make_pair(max_message_size=2**20)
    # a header announcing 2**62 bytes, with no payload at all
    head = bytes((0x82, 0x80 | 127)) + struct.pack("!Q", 2**62) + b"abcd"
    assert failure(server.receive_data(head)).code == 1009


def test_exact_limit_accepted() -> None:
    client, server = make_pair(max_message_size=1000)
    assert server.receive_data(client.encode_message(b"z" * 1000)) == [MessageChunk(b"z" * 1000, False, True)]
    assert messages_of(server.receive_data(client.encode_message("é" * 500))) == ["é" * 500]


def test_fragments_too_big_refused_before_payload() -> None:
    client, server = make_pair(max_message_size=1000)
    first = client.encode_fragment(b"a" * 600, is_text=False, first=True, fin=False)
    second = client.encode_fragment(b"b" * 600, is_text=False, first=False, fin=True)
    events = server.receive_data(first)
    assert all(isinstance(e, MessageChunk) for e in events)
    header = parse_header(second, 0)
    assert header is not None
    events = server.receive_data(second[: header.size + 5])
    assert failure(events).code == 1009


def test_many_small_fragments_too_big() -> None:
    client, server = make_pair(max_message_size=1000)
    events: list[Event] = []
    for i in range(4):
        events += server.receive_data(client.encode_fragment(b"q" * 300, is_text=True, first=i == 0, fin=False))
    assert failure(events).code == 1009
    assert sum(len(e.data) for e in events if isinstance(e, MessageChunk)) <= 1000


def test_fragments_within_limit_then_new_message() -> None:
    client, server = make_pair(max_message_size=1000)
    data = b"".join(client.encode_fragment(b"q" * 250, is_text=False, first=i == 0, fin=i == 3) for i in range(4))
    data += client.encode_message(b"r" * 1000)
    assert messages_of(server.receive_data(data)) == [b"q" * 1000, b"r" * 1000]


def test_compressed_message_too_big() -> None:
    client, server = make_pair(compression=Deflate(), max_message_size=1000)
    data = client.encode_message(b"\x00" * 100_000)
    assert len(data) < 1000  # the frame itself is small
    assert failure(server.receive_data(data)).code == 1009


def test_compressed_fragments_too_big() -> None:
    client, server = make_pair(compression=Deflate(), max_message_size=1000)
    data = b"".join(client.encode_fragment(b"\x00" * 600, is_text=False, first=i == 0, fin=i == 2) for i in range(3))
    assert failure(server.receive_data(data)).code == 1009


def test_compressed_bomb_refused() -> None:
    _, server = make_pair(compression=Deflate(), max_message_size=2**16)
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    payload = compressor.compress(b"\x00" * 32 * 2**20) + compressor.flush(zlib.Z_SYNC_FLUSH)
    data = to_server(OP_BINARY, payload[:-4], rsv=4)
    assert failure(server.receive_data(data)).code == 1009


def test_compressed_exact_limit_accepted() -> None:
    client, server = make_pair(compression=Deflate(), max_message_size=1000)
    assert server.receive_data(client.encode_message("a" * 1000)) == [MessageChunk("a" * 1000, True, True)]


def test_compressed_fragmented_incompressible_message_within_limit() -> None:
    # max_message_size counts bytes after decompression. 1000 random bytes sent
    # as a compressed fragmented message have a compressed continuation frame a
    # little over 1000 bytes; the message itself is within the limit.
    client, server = make_pair(compression=Deflate(), max_message_size=1000)
    raw = os.urandom(1000)
    data = client.encode_fragment(b"", is_text=False, first=True, fin=False)
    data += client.encode_fragment(raw, is_text=False, first=False, fin=True)
    assert messages_of(server.receive_data(data)) == [raw]


def test_no_limit() -> None:
    client, server = make_pair(max_message_size=None)
    raw = os.urandom(3 * 2**20)
    assert server.receive_data(client.encode_message(raw)) == [MessageChunk(raw, False, True)]


# -- protocol errors ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "payload",
    [b"\xff", b"abc\xc3", b"\xc0\xaf", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"ok\x80ok", b"\xf8\x88\x80\x80\x80"],
)
def test_invalid_utf8_fast_path(payload: bytes) -> None:
    _, server = make_pair()
    assert failure(server.receive_data(to_server(OP_TEXT, payload))).code == 1007


def test_invalid_utf8_fast_path_client_side() -> None:
    client, _ = make_pair()
    assert failure(client.receive_data(frame(OP_TEXT, b"\xfe", masked=False))).code == 1007


@pytest.mark.parametrize("split", [0, 1, 2, 3])
def test_invalid_utf8_fragmented(split: int) -> None:
    _, server = make_pair()
    bad = "ab€".encode()[:-1] + b"X"  # a truncated euro sign followed by ASCII
    data = to_server(OP_TEXT, bad[:split], fin=False) + to_server(OP_CONTINUATION, bad[split:])
    events = server.receive_data(data)
    assert failure(events).code == 1007


def test_invalid_utf8_fragment_reported_before_message_end() -> None:
    _, server = make_pair()
    events = server.receive_data(to_server(OP_TEXT, b"ok\xff", fin=False))
    assert failure(events).code == 1007


def test_truncated_utf8_at_message_end_fragmented() -> None:
    _, server = make_pair()
    data = to_server(OP_TEXT, b"abc", fin=False) + to_server(OP_CONTINUATION, b"\xe2\x82")
    assert failure(server.receive_data(data)).code == 1007


def test_invalid_utf8_large_frame_wsproto_path() -> None:
    _, server = make_pair(max_message_size=None)
    payload = b"a" * (FAST_PATH_MAX_FRAME + 10) + b"\xff"
    assert failure(server.receive_data(to_server(OP_TEXT, payload))).code == 1007


def test_invalid_utf8_compressed() -> None:
    client, server = make_pair(compression=Deflate())
    ext = client.extension
    assert ext is not None
    data = to_server(OP_TEXT, ext.compress_message(b"bad \xff text"), rsv=4)
    assert failure(server.receive_data(data)).code == 1007


def test_valid_utf8_split_across_fragments() -> None:
    _, server = make_pair()
    raw = "€🎉".encode()
    data = b"".join(
        to_server(OP_TEXT if i == 0 else OP_CONTINUATION, raw[i : i + 1], fin=i == len(raw) - 1)
        for i in range(len(raw))
    )
    assert messages_of(server.receive_data(data)) == ["€🎉"]


@pytest.mark.parametrize("rsv", [1, 2, 4, 7])
@pytest.mark.parametrize("opcode", [OP_TEXT, OP_BINARY, OP_PING])
def test_rsv_bits_without_extension(rsv: int, opcode: int) -> None:
    _, server = make_pair()
    assert failure(server.receive_data(to_server(opcode, b"abc", rsv=rsv))).code == 1002


@pytest.mark.parametrize("rsv", [1, 2, 3])
def test_rsv2_rsv3_with_extension(rsv: int) -> None:
    _, server = make_pair(compression=Deflate())
    assert failure(server.receive_data(to_server(OP_TEXT, b"abc", rsv=rsv))).code == 1002


def test_rsv1_on_control_frame_with_extension() -> None:
    _, server = make_pair(compression=Deflate())
    assert failure(server.receive_data(to_server(OP_PING, b"", rsv=4))).code == 1002


def test_rsv1_on_continuation_with_extension() -> None:
    client, server = make_pair(compression=Deflate())
    data = client.encode_fragment(b"abc", is_text=False, first=True, fin=False)
    data += to_server(OP_CONTINUATION, b"\x00", rsv=4)
    assert failure(server.receive_data(data)).code == 1002


def test_rsv_bits_on_second_message_without_extension() -> None:
    client, server = make_pair()
    events = server.receive_data(client.encode_message("ok") + to_server(OP_TEXT, b"x", rsv=4))
    assert events[0] == MessageChunk("ok", True, True)
    assert failure(events).code == 1002


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(to_server(3, b"x"), id="reserved-data-opcode"),
        pytest.param(to_server(11, b""), id="reserved-control-opcode"),
        pytest.param(to_server(OP_PING, b"x", fin=False), id="fragmented-ping"),
        pytest.param(to_server(OP_CLOSE, struct.pack("!H", 1000), fin=False), id="fragmented-close"),
        pytest.param(to_server(OP_PING, b"x" * 126), id="ping-126"),
        pytest.param(to_server(OP_PONG, b"x" * 200), id="pong-200"),
        pytest.param(to_server(OP_CONTINUATION, b"x"), id="continuation-without-start"),
        pytest.param(to_server(OP_TEXT, b"a", fin=False) + to_server(OP_TEXT, b"b"), id="text-inside-fragmented"),
        pytest.param(
            to_server(OP_BINARY, b"a", fin=False) + to_server(OP_BINARY, b"b", fin=False),
            id="binary-inside-fragmented",
        ),
        pytest.param(frame(OP_TEXT, b"hello", masked=False), id="unmasked-client-frame"),
        pytest.param(frame(OP_PING, b"", masked=False), id="unmasked-client-ping"),
        pytest.param(to_server(OP_CLOSE, b"\x03"), id="one-byte-close"),
        pytest.param(to_server(OP_CLOSE, struct.pack("!H", 999)), id="close-999"),
        pytest.param(to_server(OP_CLOSE, struct.pack("!H", 1004)), id="close-1004"),
        pytest.param(to_server(OP_CLOSE, struct.pack("!H", 1005)), id="close-1005"),
        pytest.param(to_server(OP_CLOSE, struct.pack("!H", 1006)), id="close-1006"),
        pytest.param(to_server(OP_CLOSE, struct.pack("!H", 1015)), id="close-1015"),
        pytest.param(to_server(OP_CLOSE, struct.pack("!H", 5000)), id="close-5000"),
    ],
)
def test_protocol_errors_1002(data: bytes) -> None:
    _, server = make_pair()
    assert failure(server.receive_data(data)).code == 1002


def test_masked_server_frame_1002() -> None:
    client, _ = make_pair()
    assert failure(client.receive_data(frame(OP_TEXT, b"hello", masked=True))).code == 1002
    client, _ = make_pair()
    assert failure(client.receive_data(frame(OP_BINARY, b"x" * 1000, masked=True))).code == 1002


def test_close_reason_invalid_utf8_1007() -> None:
    _, server = make_pair()
    data = to_server(OP_CLOSE, struct.pack("!H", 1000) + b"\xff\xfe")
    assert failure(server.receive_data(data)).code == 1007


def test_failure_after_good_messages_keeps_order() -> None:
    client, server = make_pair()
    data = client.encode_message("one") + client.encode_ping(b"p") + to_server(OP_CONTINUATION, b"bad")
    events = server.receive_data(data + client.encode_message("never"))
    assert events[:2] == [MessageChunk("one", True, True), PingReceived(b"p")]
    assert failure(events).code == 1002
    assert len(events) == 3
    assert server.receive_data(client.encode_message("never")) == []


def test_failure_reason_is_text() -> None:
    _, server = make_pair(max_message_size=10)
    event = failure(server.receive_data(to_server(OP_BINARY, b"x" * 11)))
    assert event.code == 1009
    assert isinstance(event.reason, str)
    assert event.reason


def test_encode_frames_are_parseable() -> None:
    client, server = make_pair()
    for data, opcode in [
        (client.encode_ping(b"a"), OP_PING),
        (client.encode_pong(b"a"), OP_PONG),
        (client.encode_message("a"), OP_TEXT),
        (client.encode_message(b"a"), OP_BINARY),
    ]:
        header = parse_header(data, 0)
        assert header is not None
        assert header.opcode == opcode
        assert header.masking_key is not None
    header = parse_header(server.encode_message(bytearray(b"abc")), 0)  # type: ignore[arg-type]
    assert header is not None
    assert header.masking_key is None
    assert header.opcode == OP_BINARY


@pytest.mark.parametrize("compress", [True, False])
@pytest.mark.parametrize("control", ["ping", "pong"])
@pytest.mark.parametrize("payload", [b"", b"keepalive"])
def test_control_frame_inside_compressed_fragmented_message(compress: bool, control: str, payload: bytes) -> None:
    # RFC 6455 §5.4: control frames may be injected between fragments. With
    # permessage-deflate the control frame's payload is not compressed and must
    # not disturb the inflation of the message around it.
    client, server = make_pair(compression=Deflate())
    data = client.encode_fragment(b"frag", is_text=False, first=True, fin=False, compress=compress)
    data += client.encode_ping(payload) if control == "ping" else client.encode_pong(payload)
    data += client.encode_fragment(b"ment", is_text=False, first=False, fin=True)
    data += client.encode_message("next")
    events = server.receive_data(data)
    expected_control = PingReceived(payload) if control == "ping" else PongReceived(payload)
    assert [e for e in events if not isinstance(e, MessageChunk)] == [expected_control]
    assert messages_of([e for e in events if isinstance(e, MessageChunk)]) == [b"fragment", "next"]


def test_uncompressed_fragments_after_compressed_fragments_still_limited() -> None:
    client, server = make_pair(compression=Deflate(), max_message_size=1000)
    data = b"".join(client.encode_fragment(b"\x00" * 400, is_text=False, first=i == 0, fin=i == 1) for i in range(2))
    assert messages_of(server.receive_data(data)) == [b"\x00" * 800]
    first = client.encode_fragment(b"a" * 600, is_text=False, first=True, fin=False, compress=False)
    second = client.encode_fragment(b"b" * 600, is_text=False, first=False, fin=True)
    header = parse_header(second, 0)
    assert header is not None
    assert header.rsv == 0
    assert header.length == 600  # not compressed: the first frame decides
    events = server.receive_data(first + second[: header.size + 1])
    assert failure(events).code == 1009


@pytest.mark.parametrize("compression", COMPRESSION)
@pytest.mark.parametrize("kind", [bytearray, memoryview])
def test_encode_message_accepts_buffers(compression: Deflate | None, kind: type) -> None:
    client, server = make_pair(compression=compression)
    raw = os.urandom(300)
    data = client.encode_message(kind(raw))
    assert type(data) is bytes
    assert server.receive_data(data) == [MessageChunk(raw, False, True)]
    assert client.receive_data(server.encode_message(kind(raw))) == [MessageChunk(raw, False, True)]


@pytest.mark.parametrize("size", [10, FAST_PATH_MAX_FRAME + 1])
def test_binary_chunks_are_bytes(size: int) -> None:
    client, server = make_pair(max_message_size=None)
    events = server.receive_data(client.encode_fragment(b"x" * size, is_text=False, first=True, fin=False))
    events += server.receive_data(client.encode_fragment(b"y", is_text=False, first=False, fin=True))
    events += server.receive_data(client.encode_message(b"z" * size))
    assert events
    for event in events:
        assert isinstance(event, MessageChunk)
        assert type(event.data) is bytes


def test_ping_payload_is_bytes() -> None:
    client, server = make_pair()
    [event] = server.receive_data(client.encode_ping(b"abc"))
    assert type(event.payload) is bytes  # type: ignore[union-attr]


# -- prepared messages (shared framing) ----------------------------------------------------
def test_shared_framing_key_depends_on_side_compression_and_context_takeover() -> None:
    plain_client, plain_server = make_pair()
    assert plain_client.shared_framing_key() == (False, None)  # client frames are masked per frame
    assert plain_server.shared_framing_key() == (True, None)

    _, takeover = make_pair(compression=Deflate())
    assert takeover.shared_framing_key() == (False, None)  # its compressor has history
    assert takeover.shared_framing_key(compress=False) == (True, None)

    _, fresh = make_pair(compression=Deflate(server_no_context_takeover=True, compress_level=3, mem_level=7))
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
    client, server = make_pair(compression=settings)
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


# -- inflation failures ------------------------------------------------------------------
def test_invalid_compressed_data_fails_with_1007() -> None:
    _, server = make_pair(compression=Deflate())
    events = server.receive_data(to_server(0x1, b"\xff\xff\xff\xff not deflate", rsv=4))
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

    _, server = make_pair(compression=Deflate(), max_message_size=3)
    events = server.receive_data(to_server(0x2, payload, rsv=4))
    assert events == [ProtocolFailure(1009, "compressed message inflates past max_message_size")]

    _, roomy = make_pair(compression=Deflate(), max_message_size=4)  # exactly the limit is fine
    assert roomy.receive_data(to_server(0x2, payload, rsv=4)) == [MessageChunk(b"\x00\x00\xff\xff", False, True)]


# -- large frames read straight into their own buffer --------------------------------------


@pytest.mark.parametrize("compression", COMPRESSION)
@pytest.mark.parametrize("direction", DIRECTIONS)
@pytest.mark.parametrize("is_text", [True, False])
def test_large_frame_is_read_into_a_buffer_of_its_length(
    compression: Deflate | None, direction: str, is_text: bool
) -> None:
    client, server = make_pair(compression=compression, max_message_size=None)
    sender, receiver = sides(client, server, direction)
    raw: str | bytes = base64.b64encode(os.urandom(300_000)).decode() if is_text else os.urandom(400_000)
    data = sender.encode_message(raw) + sender.encode_message("next")
    header = parse_header(data, 0)
    assert header is not None
    end = header.size + header.length
    assert header.length >= DIRECT_READ_MIN_FRAME
    assert receiver.read_target() is None
    assert receiver.receive_data(data[:1000]) == []
    assert receiver.read_target() is None  # too little of it arrived yet
    quarter = header.size + -(-header.length // DIRECT_READ_SHARE)  # rounded up
    assert receiver.receive_data(data[1000:quarter]) == []
    target = receiver.read_target()
    assert target is not None and len(target) == end - quarter  # the rest of the payload, no more
    events: list[Event] = []
    position = quarter
    while (target := receiver.read_target()) is not None:
        count = min(len(target), 70_000)  # as a socket read would fill it
        target[:count] = data[position : position + count]
        position += count
        events += receiver.received_into(count)
    assert position == end
    assert events == [MessageChunk(raw, is_text, True)]
    assert receiver.receive_data(data[end:]) == [MessageChunk("next", True, True)]


def test_large_frame_rest_fed_as_bytes_with_the_next_frame() -> None:
    # A stream without direct reads (TLS) feeds bytes: the frame's rest is
    # copied into its buffer and the bytes after it are parsed as usual.
    client, server = make_pair(max_message_size=None)
    raw = os.urandom(DIRECT_READ_MIN_FRAME)
    data = client.encode_message(raw) + client.encode_message(b"next") + client.encode_message("x" * 50_000)
    assert server.receive_data(data[: DIRECT_READ_MIN_FRAME // 2]) == []
    assert server.read_target() is not None
    events = server.receive_data(data[DIRECT_READ_MIN_FRAME // 2 : -20])
    assert events == [MessageChunk(raw, False, True), MessageChunk(b"next", False, True)]
    assert server.receive_data(data[-20:]) == [MessageChunk("x" * 50_000, True, True)]
    assert server.read_target() is None


def test_smaller_frames_do_not_get_a_read_target() -> None:
    client, server = make_pair(max_message_size=None)
    data = client.encode_message(os.urandom(DIRECT_READ_MIN_FRAME - 1))
    assert server.receive_data(data[:100]) == []
    assert server.read_target() is None
    assert messages_of(server.receive_data(data[100:])) == [server_payload(data)]


def server_payload(frame_bytes: bytes) -> bytes:
    header = parse_header(frame_bytes, 0)
    assert header is not None and header.masking_key is not None
    return apply_mask(frame_bytes[header.size :], header.masking_key)


def test_invalid_utf8_in_a_large_frame_read_directly() -> None:
    client, server = make_pair(max_message_size=None)
    data = to_server(OP_TEXT, b"a" * DIRECT_READ_MIN_FRAME + b"\xff")
    assert server.receive_data(data[:5000]) == []
    target = server.read_target()
    assert target is not None
    target[:] = data[5000:]
    assert failure(server.received_into(len(target))).code == 1007
    assert server.receive_data(client.encode_message("ignored")) == []


# -- closing without wsproto ---------------------------------------------------------------
# A core that only carried whole data messages writes and reads a plain close
# frame itself; wsproto is made only if a later frame needs it, with the close
# replayed into it. Each case is checked against a reference core whose
# wsproto was made before the close (by a ping), which takes wsproto's path.


def with_wsproto(core: ProtocolCore, *, from_client: bool) -> ProtocolCore:
    """``core`` after a ping made its wsproto (the reference for wsproto's behaviour)."""
    assert core.receive_data(frame(OP_PING, b"p", masked=from_client)) == [PingReceived(b"p")]
    return core


def close_payload(code: int, reason: bytes = b"") -> bytes:
    return struct.pack("!H", code) + reason


CLOSE_FRAMES = [
    pytest.param({"payload": close_payload(1000)}, id="1000"),
    pytest.param({"payload": close_payload(1001, b"going away")}, id="1001-reason"),
    pytest.param({"payload": close_payload(1000, "é日本".encode())}, id="1000-utf8-reason"),
    pytest.param({"payload": close_payload(1000, b"x" * 123)}, id="1000-longest-reason"),
    pytest.param({"payload": close_payload(1002)}, id="1002-wsproto"),
    pytest.param({"payload": close_payload(3000, b"app")}, id="3000-wsproto"),
    pytest.param({"payload": b""}, id="no-code-wsproto"),
    pytest.param({"payload": b"\x03"}, id="one-byte-1002"),
    pytest.param({"payload": close_payload(1000, b"\xff\xfe")}, id="bad-utf8-1007"),
    pytest.param({"payload": close_payload(999)}, id="code-999-1002"),
    pytest.param({"payload": close_payload(1005)}, id="code-1005-1002"),
    pytest.param({"payload": close_payload(1000), "rsv": 4}, id="rsv1-1002"),
    pytest.param({"payload": close_payload(1000), "fin": False}, id="fragmented-1002"),
    pytest.param({"payload": close_payload(1000), "wrong_mask": True}, id="wrong-masking-1002"),
    pytest.param({"payload": close_payload(1000, b"x" * 124)}, id="too-long-1002"),
]


@pytest.mark.parametrize("case", CLOSE_FRAMES)
@pytest.mark.parametrize("direction", DIRECTIONS)
def test_a_close_frame_reads_as_wsproto_reads_it(case: dict[str, object], direction: str) -> None:
    from_client = direction == "c2s"
    masked = from_client != bool(case.get("wrong_mask"))
    data = frame(
        OP_CLOSE,
        case["payload"],  # type: ignore[arg-type]
        fin=bool(case.get("fin", True)),
        rsv=int(case.get("rsv", 0)),  # type: ignore[call-overload]
        masked=masked,
    )
    fresh = ProtocolCore(is_client=not from_client, extension=None, max_message_size=None)
    reference = with_wsproto(
        ProtocolCore(is_client=not from_client, extension=None, max_message_size=None), from_client=from_client
    )
    # Byte by byte too: a plain close split across reads is read whole.
    split = ProtocolCore(is_client=not from_client, extension=None, max_message_size=None)
    split_events = [event for byte in data for event in split.receive_data(bytes([byte]))]
    expected = reference.receive_data(data)
    assert fresh.receive_data(data) == expected
    assert split_events == expected
    for core in (fresh, split):
        assert (core.can_send_data, core.can_send_close) == (reference.can_send_data, reference.can_send_close)


CLOSES_SENT = [
    (1000, None),
    (1000, ""),
    (1001, "bye"),
    (4000, "é" * 61),
    (1000, "é" * 62),
    (1011, "internal error"),
    (None, None),
]


@pytest.mark.parametrize(("code", "reason"), CLOSES_SENT)
@pytest.mark.parametrize("is_client", [False, True])
def test_a_close_frame_is_written_as_wsproto_writes_it(code: int | None, reason: str | None, is_client: bool) -> None:
    fresh = ProtocolCore(is_client=is_client, extension=None, max_message_size=None)
    reference = with_wsproto(
        ProtocolCore(is_client=is_client, extension=None, max_message_size=None), from_client=not is_client
    )
    ours, theirs = fresh.encode_close(code, reason), reference.encode_close(code, reason)
    if is_client:  # masked with different keys: compare what the server reads
        ours_header, theirs_header = parse_header(ours, 0), parse_header(theirs, 0)
        assert ours_header is not None and theirs_header is not None
        assert ours_header._replace(masking_key=None) == theirs_header._replace(masking_key=None)
        assert ours_header.masking_key is not None and theirs_header.masking_key is not None
        ours = apply_mask(ours[ours_header.size :], ours_header.masking_key)
        theirs = apply_mask(theirs[theirs_header.size :], theirs_header.masking_key)
    assert ours == theirs
    assert (fresh.can_send_data, fresh.can_send_close, fresh.close_sent) == (False, False, True)


@pytest.mark.parametrize("close_first", ["ours", "peers"])
def test_a_close_without_wsproto_is_replayed_when_a_later_frame_needs_it(close_first: str) -> None:
    """After plain closes, a ping (then an unusual close) takes wsproto's path with the closes replayed."""

    def run(core: ProtocolCore) -> list[object]:
        seen: list[object] = []
        if close_first == "ours":
            seen.append(core.encode_close(1000, None)[:2])
        else:
            seen.append(core.receive_data(frame(OP_CLOSE, close_payload(1000), masked=True)))
            seen.append(core.receive_close(CloseReceived(1000, "")) is not None)
        seen.append((core.can_send_data, core.can_send_close, core.close_sent))
        seen.append(core.receive_data(frame(OP_PING, b"late", masked=True)))
        seen.append(core.answer_ping(b"late"))
        seen.append(core.receive_data(frame(OP_CLOSE, close_payload(4001, b"odd"), masked=True)))
        seen.append((core.can_send_data, core.can_send_close, core.close_sent))
        return seen

    fresh = ProtocolCore(is_client=False, extension=None, max_message_size=None)
    reference = with_wsproto(ProtocolCore(is_client=False, extension=None, max_message_size=None), from_client=True)
    assert run(fresh) == run(reference)


def _resident_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="reads the resident set size from /proc")
def test_an_announced_frame_takes_memory_only_as_its_payload_arrives() -> None:
    # A header announcing a 4 MiB frame must not make the process hold 4 MiB
    # at once: twenty such headers (and a few KiB of payload each) stay far
    # below the 80 MiB they announce. The frame's own buffer is made once a
    # quarter of it has arrived.
    cores = []
    before = _resident_bytes()
    for _ in range(20):
        client, server = make_pair(max_message_size=None)
        data = client.encode_message(os.urandom(FAST_PATH_MAX_FRAME))
        assert server.receive_data(data[:4096]) == []
        assert server.read_target() is None
        cores.append(server)
    grown = _resident_bytes() - before
    assert grown < 16 * 2**20, f"{grown:,} bytes resident after 20 announced 4 MiB frames"
