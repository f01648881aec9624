"""Property tests (hypothesis) for the sans-IO core: ProtocolCore, framing and wsproto parity."""

from __future__ import annotations

import itertools
import os

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from wsproto.connection import Connection, ConnectionType
from wsproto.events import BytesMessage, CloseConnection, Message, Ping, Pong, TextMessage
from wsproto.events import Event as WsprotoEvent
from wsproto.extensions import PerMessageDeflate

from trio_ws import Deflate
from trio_ws.compression import (
    DeflateExtension,
    client_finalize,
    client_offer,
    parse_extension_header,
    server_accept,
)
from trio_ws.framing import encode_frame, parse_header
from trio_ws.masking import apply_mask, python_apply_mask
from trio_ws.protocol import (
    CloseReceived,
    Event,
    MessageChunk,
    PingReceived,
    PongReceived,
    ProtocolCore,
    ProtocolFailure,
)

SETTINGS = settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
FEW = settings(SETTINGS, max_examples=50)

COMPRESSIONS = [
    None,
    Deflate(),
    Deflate(server_no_context_takeover=True, client_no_context_takeover=True),
    Deflate(server_max_window_bits=9, client_max_window_bits=9, compress_level=1),
    Deflate(server_max_window_bits=15, compress_level=9, mem_level=9),
]

# text with a good share of multi-byte and non-BMP characters
text_messages = st.text(
    alphabet=st.one_of(
        st.characters(codec="utf-8"),
        st.characters(min_codepoint=0x80, max_codepoint=0x7FF),
        st.characters(min_codepoint=0x10000, max_codepoint=0x10FFFF, codec="utf-8"),
    ),
    max_size=1500,
)
binary_messages = st.binary(max_size=4096)
messages_strategy = st.lists(st.one_of(text_messages, binary_messages), max_size=8)
compressions = st.sampled_from(COMPRESSIONS)
directions = st.sampled_from(["c2s", "s2c"])


# -- helpers -------------------------------------------------------------------------------


def make_pair(compression: Deflate | None, max_message_size: int | None = None) -> tuple[ProtocolCore, ProtocolCore]:
    client_ext = server_ext = None
    if compression is not None:
        [(_, params)] = parse_extension_header(client_offer(compression))
        response, server_ext = server_accept(compression, params, max_message_size)
        [(_, answer)] = parse_extension_header(response)
        client_ext = client_finalize(compression, answer, max_message_size)
    return (
        ProtocolCore(is_client=True, extension=client_ext, max_message_size=max_message_size),
        ProtocolCore(is_client=False, extension=server_ext, max_message_size=max_message_size),
    )


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({min(max(c, 0), len(data)) for c in cuts} | {0, len(data)})
    return [data[a:b] for a, b in itertools.pairwise(points)]


def feed(core: ProtocolCore, chunks: list[bytes]) -> list[Event]:
    events: list[Event] = []
    for chunk in chunks:
        events += core.receive_data(chunk)
    return events


def normalise(events: list[Event]) -> list[Event]:
    """Merge consecutive chunks of one message, so any chunking compares equal."""
    out: list[Event] = []
    pending: list[MessageChunk] = []
    for event in events:
        if isinstance(event, MessageChunk):
            if pending:
                assert pending[0].is_text is event.is_text
            pending.append(event)
            if event.final:
                if event.is_text:
                    data: str | bytes = "".join(str(p.data) for p in pending)
                else:
                    data = b"".join(bytes(p.data) for p in pending)  # type: ignore[arg-type]
                out.append(MessageChunk(data, event.is_text, True))
                pending = []
        else:
            out.append(event)
    if pending:  # an unfinished message stays visible as such
        out.extend(pending)
    return out


def as_events(messages: list[str | bytes]) -> list[Event]:
    return [MessageChunk(m, isinstance(m, str), True) for m in messages]


def from_wsproto(events: list[WsprotoEvent]) -> list[Event]:
    out: list[Event] = []
    for event in events:
        if isinstance(event, TextMessage):
            out.append(MessageChunk(event.data, True, event.message_finished))
        elif isinstance(event, BytesMessage):
            out.append(MessageChunk(bytes(event.data), False, event.message_finished))
        elif isinstance(event, Ping):
            out.append(PingReceived(bytes(event.payload)))
        elif isinstance(event, Pong):
            out.append(PongReceived(bytes(event.payload)))
        elif isinstance(event, CloseConnection):
            out.append(CloseReceived(int(event.code), event.reason or ""))
        else:  # pragma: no cover
            raise AssertionError(event)
    return out


def wsproto_feed(conn: Connection, chunks: list[bytes]) -> list[Event]:
    events: list[WsprotoEvent] = []
    for chunk in chunks:
        conn.receive_data(chunk)
        events += conn.events()
    return from_wsproto(events)


def wsproto_peer_of_our_client(compression: Deflate | None) -> tuple[ProtocolCore, Connection]:
    """Negotiate our client with a wsproto server."""
    if compression is None:
        return ProtocolCore(is_client=True, extension=None, max_message_size=None), Connection(ConnectionType.SERVER)
    pmd = PerMessageDeflate()
    response = pmd.accept(client_offer(compression))
    assert isinstance(response, str)
    [(_, answer)] = parse_extension_header("permessage-deflate; " + response)
    ours = ProtocolCore(is_client=True, extension=client_finalize(compression, answer, None), max_message_size=None)
    return ours, Connection(ConnectionType.SERVER, extensions=[pmd])


def wsproto_peer_of_our_server(compression: Deflate | None) -> tuple[ProtocolCore, Connection]:
    """Negotiate our server with a wsproto client."""
    if compression is None:
        return ProtocolCore(is_client=False, extension=None, max_message_size=None), Connection(ConnectionType.CLIENT)
    pmd = PerMessageDeflate()
    offer = pmd.offer()
    assert isinstance(offer, str)
    [(_, params)] = parse_extension_header("permessage-deflate; " + offer)
    response, ext = server_accept(compression, params, None)
    pmd.finalize(response)
    ours = ProtocolCore(is_client=False, extension=ext, max_message_size=None)
    return ours, Connection(ConnectionType.CLIENT, extensions=[pmd])


def mirror_receiver(sender: ProtocolCore) -> ProtocolCore:
    """Our own receiver for ``sender``'s frames, able to inflate any window and context."""
    ext = None
    if sender.extension is not None:
        ext = DeflateExtension(
            is_client=not sender.is_client,
            compress_bits=15,
            decompress_bits=15,
            reset_compressor=False,
            reset_decompressor=False,
            settings=Deflate(),
            max_message_size=None,
        )
    return ProtocolCore(is_client=not sender.is_client, extension=ext, max_message_size=None)


# -- properties ----------------------------------------------------------------------------


@SETTINGS
@given(messages=messages_strategy, compression=compressions, direction=directions, data=st.data())
@example(messages=[b"\x00" * 70_000, "🎉" * 20_000, b"", ""], compression=None, direction="c2s", data=None)
@example(messages=[os.urandom(200_000), "é" * 40_000], compression=COMPRESSIONS[1], direction="s2c", data=None)
def test_stream_round_trip(
    messages: list[str | bytes], compression: Deflate | None, direction: str, data: st.DataObject | None
) -> None:
    client, server = make_pair(compression, max_message_size=2**20)
    sender, receiver = (client, server) if direction == "c2s" else (server, client)
    stream = b"".join(sender.encode_message(m) for m in messages)
    cuts = [] if data is None else data.draw(st.lists(st.integers(0, len(stream)), max_size=30), label="cuts")
    events = feed(receiver, split(stream, cuts))
    assert all(isinstance(e, MessageChunk) for e in events), events
    assert normalise(events) == as_events(messages)


@SETTINGS
@given(messages=st.lists(st.one_of(text_messages, binary_messages), min_size=1, max_size=4), data=st.data())
def test_stream_round_trip_byte_by_byte_small(messages: list[str | bytes], data: st.DataObject) -> None:
    compression = data.draw(compressions, label="compression")
    client, server = make_pair(compression)
    stream = b"".join(client.encode_message(m[:200]) for m in messages)
    events = feed(server, [stream[i : i + 1] for i in range(len(stream))])
    assert normalise(events) == as_events([m[:200] for m in messages])


@st.composite
def fragmented(draw: st.DrawFn) -> tuple[str | bytes, list[bytes]]:
    message = draw(st.one_of(text_messages, binary_messages))
    raw = message.encode() if isinstance(message, str) else message
    cuts = draw(st.lists(st.integers(0, len(raw)), max_size=10))
    points = sorted(set(cuts))
    # empty fragments are allowed too
    if draw(st.booleans()):
        points = sorted(cuts)
    pieces = [raw[a:b] for a, b in zip([0, *points], [*points, len(raw)], strict=False)]
    return message, pieces


@SETTINGS
@given(
    messages=st.lists(fragmented(), min_size=1, max_size=4),
    compression=compressions,
    direction=directions,
    compress=st.booleans(),
    data=st.data(),
)
@example(
    messages=[(b"x" * 100_000, [b"x" * 30_000, b"x" * 70_000])],
    compression=COMPRESSIONS[1],
    direction="c2s",
    compress=True,
    data=None,
)
def test_fragmented_messages_arrive_whole(
    messages: list[tuple[str | bytes, list[bytes]]],
    compression: Deflate | None,
    direction: str,
    compress: bool,
    data: st.DataObject | None,
) -> None:
    client, server = make_pair(compression, max_message_size=2**20)
    sender, receiver = (client, server) if direction == "c2s" else (server, client)
    stream = bytearray()
    for message, pieces in messages:
        is_text = isinstance(message, str)
        for i, piece in enumerate(pieces):
            stream += sender.encode_fragment(
                piece, is_text=is_text, first=i == 0, fin=i == len(pieces) - 1, compress=compress
            )
        stream += sender.encode_message(b"sep")  # a whole message in between
    cuts = [] if data is None else data.draw(st.lists(st.integers(0, len(stream)), max_size=10), label="cuts")
    events = feed(receiver, split(bytes(stream), cuts))
    expected: list[str | bytes] = []
    for message, _ in messages:
        expected += [message, b"sep"]
    assert all(isinstance(e, MessageChunk) for e in events), events
    assert normalise(events) == as_events(expected)


@st.composite
def interleaved(draw: st.DrawFn) -> tuple[str | bytes, list[bytes], str, bytes, int]:
    """A fragmented message with a ping or pong between two of its frames (RFC 6455 §5.4)."""
    message, pieces = draw(fragmented())
    if len(pieces) < 2:
        pieces = [*pieces, b""]
    kind = draw(st.sampled_from(["ping", "pong"]))
    payload = draw(st.binary(max_size=125))
    position = draw(st.integers(0, len(pieces) - 2))  # the control frame follows this fragment
    return message, pieces, kind, payload, position


# one step of a conversation: a whole message, a fragmented message (possibly with a
# control frame in the middle), a ping or a pong
steps = st.one_of(
    st.tuples(st.just("message"), st.one_of(text_messages, binary_messages)),
    st.tuples(st.just("fragments"), fragmented()),
    st.tuples(st.just("interleaved"), interleaved()),
    st.tuples(st.just("ping"), st.binary(max_size=125)),
    st.tuples(st.just("pong"), st.binary(max_size=125)),
)


def encode_control(sender: ProtocolCore, kind: str, payload: bytes) -> bytes:
    return sender.encode_ping(payload) if kind == "ping" else sender.encode_pong(payload)


def encode_steps(sender: ProtocolCore, script: list[tuple[str, object]], close: tuple[int, str] | None) -> bytes:
    out = bytearray()
    for kind, value in script:
        if kind == "message":
            out += sender.encode_message(value)  # type: ignore[arg-type]
        elif kind in ("fragments", "interleaved"):
            message, pieces, *control = value  # type: ignore[misc]
            for i, piece in enumerate(pieces):
                out += sender.encode_fragment(
                    piece, is_text=isinstance(message, str), first=i == 0, fin=i == len(pieces) - 1
                )
                if control and i == control[2]:
                    out += encode_control(sender, control[0], control[1])
        elif kind == "ping":
            out += sender.encode_ping(value)  # type: ignore[arg-type]
        else:
            out += sender.encode_pong(value)  # type: ignore[arg-type]
    if close is not None:
        out += sender.encode_close(*close)
    return bytes(out)


def expected_events(script: list[tuple[str, object]], close: tuple[int, str] | None) -> list[Event]:
    out: list[Event] = []
    for kind, value in script:
        if kind == "message":
            out += as_events([value])  # type: ignore[list-item]
        elif kind == "fragments":
            out += as_events([value[0]])  # type: ignore[index]
        elif kind == "interleaved":
            message, _, control, payload, _ = value  # type: ignore[misc]
            out.append(PingReceived(payload) if control == "ping" else PongReceived(payload))
            out += as_events([message])
        elif kind == "ping":
            out.append(PingReceived(value))  # type: ignore[arg-type]
        else:
            out.append(PongReceived(value))  # type: ignore[arg-type]
    if close is not None:
        out.append(CloseReceived(*close))
    return out


def wsproto_can_read(script: list[tuple[str, object]], compression: Deflate | None) -> bool:
    """False for what wsproto 1.3 itself mis-reads.

    wsproto's PerMessageDeflate.frame_inbound_complete forgets that a message is
    compressed when a control frame arrives between its fragments, so it hands
    the rest of the message on still compressed. Our receiver gets it right
    (checked against the expected events); wsproto is not the reference there.
    """
    return compression is None or all(kind != "interleaved" for kind, _ in script)


closes = st.one_of(
    st.none(),
    st.tuples(st.sampled_from([1000, 1001, 1002, 1003, 1007, 1008, 1009, 1011, 3000, 4999]), st.text(max_size=20)),
)


@SETTINGS
@given(script=st.lists(steps, max_size=6), close=closes, compression=compressions, data=st.data())
def test_our_client_frames_parse_identically_in_wsproto(
    script: list[tuple[str, object]], close: tuple[int, str] | None, compression: Deflate | None, data: st.DataObject
) -> None:
    ours, wsproto_server = wsproto_peer_of_our_client(compression)
    stream = encode_steps(ours, script, close)
    chunks = split(stream, data.draw(st.lists(st.integers(0, len(stream)), max_size=10), label="cuts"))
    theirs = normalise(wsproto_feed(wsproto_server, chunks))
    mine = normalise(feed(mirror_receiver(ours), chunks))
    if wsproto_can_read(script, compression):
        assert theirs == mine
    assert mine == expected_events(script, close)


@SETTINGS
@given(script=st.lists(steps, max_size=6), close=closes, compression=compressions, data=st.data())
def test_our_server_frames_parse_identically_in_wsproto(
    script: list[tuple[str, object]], close: tuple[int, str] | None, compression: Deflate | None, data: st.DataObject
) -> None:
    ours, wsproto_client = wsproto_peer_of_our_server(compression)
    stream = encode_steps(ours, script, close)
    chunks = split(stream, data.draw(st.lists(st.integers(0, len(stream)), max_size=10), label="cuts"))
    theirs = normalise(wsproto_feed(wsproto_client, chunks))
    mine = normalise(feed(mirror_receiver(ours), chunks))
    if wsproto_can_read(script, compression):
        assert theirs == mine
    assert mine == expected_events(script, close)


def wsproto_encode(conn: Connection, script: list[tuple[str, object]], close: tuple[int, str] | None) -> bytes:
    out = bytearray()
    for kind, value in script:
        if kind == "message":
            out += conn.send(Message(data=value))  # type: ignore[arg-type]
        elif kind in ("fragments", "interleaved"):
            message, pieces, *control = value  # type: ignore[misc]
            if isinstance(message, str):
                # wsproto sends str fragments: split at character boundaries
                text_pieces, start = [], 0
                for piece in pieces:
                    end = start + len(piece.decode("utf-8", "ignore")) if piece else start
                    text_pieces.append(message[start:end])
                    start = end
                text_pieces[-1] += message[start:]
                parts: list[str | bytes] = list(text_pieces)
            else:
                parts = list(pieces)
            for i, part in enumerate(parts):
                out += conn.send(Message(data=part, message_finished=i == len(parts) - 1))
                if control and i == control[2]:
                    event = Ping(payload=control[1]) if control[0] == "ping" else Pong(payload=control[1])
                    out += conn.send(event)
        elif kind == "ping":
            out += conn.send(Ping(payload=value))  # type: ignore[arg-type]
        else:
            out += conn.send(Pong(payload=value))  # type: ignore[arg-type]
    if close is not None:
        out += conn.send(CloseConnection(code=close[0], reason=close[1]))
    return bytes(out)


@SETTINGS
@given(
    script=st.lists(steps, max_size=6),
    close=closes,
    compression=compressions,
    direction=directions,
    data=st.data(),
)
def test_wsproto_frames_parse_in_our_core(
    script: list[tuple[str, object]],
    close: tuple[int, str] | None,
    compression: Deflate | None,
    direction: str,
    data: st.DataObject,
) -> None:
    if direction == "c2s":  # a wsproto client talks to our server
        ours, wsproto_conn = wsproto_peer_of_our_server(compression)
    else:  # a wsproto server talks to our client
        ours, wsproto_conn = wsproto_peer_of_our_client(compression)
    stream = wsproto_encode(wsproto_conn, script, close)
    chunks = split(stream, data.draw(st.lists(st.integers(0, len(stream)), max_size=10), label="cuts"))
    events = feed(ours, chunks)
    assert not any(isinstance(e, ProtocolFailure) for e in events), events
    assert normalise(events) == expected_events(script, close)


@FEW
@given(
    payload=st.binary(max_size=70_000),
    opcode=st.sampled_from([0, 1, 2]),
    fin=st.booleans(),
    rsv1=st.booleans(),
    mask=st.booleans(),
)
def test_encode_parse_round_trip(payload: bytes, opcode: int, fin: bool, rsv1: bool, mask: bool) -> None:
    data = encode_frame(opcode, payload, fin=fin, rsv1=rsv1, mask=mask)
    header = parse_header(data, 0)
    assert header is not None
    assert (header.fin, header.rsv, header.opcode, header.length) == (fin, 4 if rsv1 else 0, opcode, len(payload))
    assert header.size + header.length == len(data)
    body = data[header.size :]
    if mask:
        assert header.masking_key is not None
        body = apply_mask(body, header.masking_key)
    assert body == payload
    for cut in range(header.size):
        assert parse_header(data[:cut], 0) is None


@SETTINGS
@given(data=st.binary(max_size=300), key=st.binary(min_size=4, max_size=4), offset=st.integers(0, 7))
def test_masking_implementations_agree(data: bytes, key: bytes, offset: int) -> None:
    view = memoryview(bytes(offset) + data)[offset:]
    expected = bytes(b ^ key[i % 4] for i, b in enumerate(data))
    assert apply_mask(view, key) == python_apply_mask(view, key) == expected
    assert apply_mask(apply_mask(data, key), key) == data


@SETTINGS
@given(
    sizes=st.lists(st.integers(0, 2000), min_size=1, max_size=4),
    limit=st.integers(1, 1500),
    compression=compressions,
    fragments=st.integers(1, 4),
    compress=st.booleans(),
    is_text=st.booleans(),
    compressible=st.booleans(),
)
def test_max_message_size_enforced_exactly(
    sizes: list[int],
    limit: int,
    compression: Deflate | None,
    fragments: int,
    compress: bool,
    is_text: bool,
    compressible: bool,
) -> None:
    client, server = make_pair(compression, max_message_size=limit)
    events: list[Event] = []
    sent: list[str | bytes] = []
    for size in sizes:
        if compressible:
            message: str | bytes = "a" * size if is_text else bytes(size)
        else:
            message = os.urandom(size).hex()[:size] if is_text else os.urandom(size)
        payload = message.encode() if isinstance(message, str) else message
        step = max(1, -(-len(payload) // fragments))
        pieces = [payload[i : i + step] for i in range(0, len(payload), step)] or [b""]
        for i, piece in enumerate(pieces):
            data = client.encode_fragment(
                piece, is_text=is_text, first=i == 0, fin=i == len(pieces) - 1, compress=compress
            )
            events += server.receive_data(data)
        sent.append(message)
        if size > limit:
            break
    received = normalise(events)
    complete = [e for e in received if isinstance(e, MessageChunk) and e.final]
    partial = [e for e in received if isinstance(e, MessageChunk) and not e.final]
    failures = [e for e in received if isinstance(e, ProtocolFailure)]
    within = [m for m in sent if len(m.encode() if isinstance(m, str) else m) <= limit]
    if len(within) == len(sent):
        assert received == as_events(sent)
    else:
        assert complete == as_events(within)
        assert [f.code for f in failures] == [1009]
        assert isinstance(events[-1], ProtocolFailure)
        # what was handed on of the refused message stays within the limit
        assert sum(len(p.data) for p in partial) <= limit


valid_prefix = st.lists(st.one_of(text_messages, binary_messages), max_size=3)


@SETTINGS
@given(prefix=valid_prefix, garbage=st.binary(min_size=1, max_size=300), compression=compressions, data=st.data())
def test_garbage_never_raises(
    prefix: list[str | bytes], garbage: bytes, compression: Deflate | None, data: st.DataObject
) -> None:
    client, server = make_pair(compression, max_message_size=2**16)
    receiver = data.draw(st.sampled_from([client, server]), label="receiver")
    sender = server if receiver is client else client
    stream = b"".join(sender.encode_message(m) for m in prefix) + garbage
    chunks = split(stream, data.draw(st.lists(st.integers(0, len(stream)), max_size=5), label="cuts"))
    events = feed(receiver, chunks)
    ends = [i for i, e in enumerate(events) if isinstance(e, (ProtocolFailure, CloseReceived))]
    assert len(ends) <= 1
    if ends:
        assert ends[0] == len(events) - 1
        end = events[-1]
        if isinstance(end, ProtocolFailure):
            assert end.code in (1002, 1007, 1009)
        assert receiver.receive_data(b"\x81\x00") == []
    assert normalise(events)[: len(prefix)] == as_events(prefix)
