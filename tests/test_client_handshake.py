"""The client's opening handshake: the request written without h11, a plain 101 read without h11.

Each fast path is checked against h11 (what it accepts, h11 reads the same
way) and, over a stream, against heads it must leave to h11: split across
reads, folded or bare-LF lines, duplicate or extra fields, a wrong
Sec-WebSocket-Accept, a head over the size limit.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable

import h11
import pytest
import trio
import trio.testing
from support import rawhttp

import trio_ws
from trio_ws import ConnectionRejected, HandshakeError
from trio_ws.client_handshake import encode_client_request, parse_switching_response
from trio_ws.compression import Deflate
from trio_ws.handshake import accept_key, build_client_request

TIMEOUT = 10.0
LIMIT = 8192 * 129


def h11_reads(head: bytes) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    """What h11's client state reads from ``head``: status, header fields and the bytes after the head."""
    request, _ = build_client_request("localhost", "/", subprotocols=None, extra_headers=None, compression=None)
    conn = h11.Connection(h11.CLIENT)
    conn.send(request)
    conn.receive_data(head)
    event = conn.next_event()
    assert isinstance(event, (h11.InformationalResponse, h11.Response)), event
    trailing = conn.trailing_data[0] if event.status_code == 101 else b""
    return event.status_code, list(event.headers), bytes(trailing)


PLAIN_101 = [
    b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: x\r\n\r\n",
    b"HTTP/1.1 101\r\nupgrade: websocket\r\n\r\n",  # no reason phrase (h11 allows it)
    b"HTTP/1.1 101 \r\nUPGRADE:websocket  \r\nX-Empty:\r\n\r\n",  # empty reason, no OWS, trailing OWS, empty value
    b"HTTP/1.1 101 OK\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\nX-Value: a  b\t c\r\n\r\n",  # duplicates, inner spaces
    b"HTTP/1.1 101 Switching\r\n\r\n",  # no fields at all
    b"HTTP/1.1 101 caf\xc3\xa9\r\nX-Latin: \xe9t\xe9\r\n\r\n",  # obs-text
]


@pytest.mark.parametrize("head", PLAIN_101)
def test_a_plain_101_reads_as_h11_reads_it(head: bytes) -> None:
    assert parse_switching_response(head) == h11_reads(head)[1]


UNUSUAL = [
    b"HTTP/1.1 101 Switching Protocols\nUpgrade: websocket\n\n",  # bare LF
    b"HTTP/1.1 101 Switching Protocols\r\nX-Folded: a\r\n b\r\n\r\n",  # obs-fold
    b"HTTP/1.0 101 Switching Protocols\r\n\r\n",
    b"HTTP/1.1 100 Continue\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
    b"HTTP/1.1 1010 Odd\r\n\r\n",
    b"HTTP/1.1 101 Switching Protocols\r\nContent-Length: 0\r\n\r\n",
    b"HTTP/1.1 101 Switching Protocols\r\nTransfer-Encoding: chunked\r\n\r\n",
    b"HTTP/1.1 101 Switching Protocols\r\nBad Name: x\r\n\r\n",
    b"HTTP/1.1 101 Switching Protocols\r\nX-Ctl: a\x01b\r\n\r\n",
    b"HTTP/1.1 101 Switching Protocols\r\nNo-Colon\r\n\r\n",
    b"HTTP/1.1 101 Switching Protocols\r\n",  # not a whole head
]


@pytest.mark.parametrize("head", UNUSUAL)
def test_an_unusual_head_is_left_to_h11(head: bytes) -> None:
    assert parse_switching_response(head) is None


@pytest.mark.parametrize(
    ("subprotocols", "compression"), [(None, None), (["chat", "superchat"], None), (None, Deflate())]
)
def test_the_direct_request_is_byte_for_byte_h11s(subprotocols: list[str] | None, compression: Deflate | None) -> None:
    request = encode_client_request(
        "example.com:8080",
        "/chat?room=1",
        subprotocols=subprotocols,
        extra_headers=None,
        compression=compression,
        max_incomplete_event_size=LIMIT,
    )
    assert request._h11 is None  # written directly
    h11_request = h11.Request(method="GET", target="/chat?room=1", headers=request.headers)
    assert request.data == h11.Connection(h11.CLIENT).send(h11_request)
    assert (b"Sec-WebSocket-Key", request.key) in request.headers


def test_extra_headers_go_through_h11() -> None:
    request = encode_client_request(
        "h", "/", subprotocols=None, extra_headers=[("X-Token", "t")], compression=None, max_incomplete_event_size=LIMIT
    )
    assert request._h11 is not None
    assert b"\r\nX-Token: t\r\n" in request.data


@pytest.mark.parametrize(
    ("host", "resource"),
    [("h", "/a b"), ("h", "/\x7f"), ("a\x01b", "/"), ("h ", "/")],
)
def test_an_unusual_target_or_host_is_h11s_to_accept_or_refuse(host: str, resource: str) -> None:
    """Whatever h11 says (a ValueError, or the same bytes) is what the client says."""
    try:
        build_client_request(host, resource, subprotocols=None, extra_headers=None, compression=None)
    except ValueError as err:
        with pytest.raises(ValueError, match=re.escape(str(err))):
            encode_client_request(
                host, resource, subprotocols=None, extra_headers=None, compression=None, max_incomplete_event_size=LIMIT
            )
        return
    request = encode_client_request(
        host, resource, subprotocols=None, extra_headers=None, compression=None, max_incomplete_event_size=LIMIT
    )
    assert request._h11 is not None


# -- over a stream -------------------------------------------------------------------

RawServer = Callable[[trio.abc.Stream], Awaitable[None]]


async def connect_to(raw_server: RawServer, nursery: trio.Nursery) -> trio_ws.WebSocketConnection:
    client_stream, server_stream = trio.testing.memory_stream_pair()
    nursery.start_soon(raw_server, server_stream)
    return await trio_ws.wrap_client_stream(nursery, client_stream, "localhost", "/", ping_interval=None)


def answering(make_answer: Callable[[bytes], list[bytes]]) -> RawServer:
    """A server that answers the request head with the pieces ``make_answer`` returns, one write each."""

    async def raw_server(stream: trio.abc.Stream) -> None:
        head = await rawhttp.read_head(stream)
        for piece in make_answer(head):
            await stream.send_all(piece)
            await trio.testing.wait_all_tasks_blocked()
        await trio.sleep_forever()

    return raw_server


def accept_for_head(head: bytes) -> bytes:
    match = re.search(rb"(?im)^sec-websocket-key:[ \t]*(\S+)", head)
    assert match is not None
    return accept_key(match.group(1))


def answer_101(head: bytes, fields: bytes = b"", eol: bytes = b"\r\n") -> bytes:
    lines = [
        b"HTTP/1.1 101 Switching Protocols",
        b"Upgrade: websocket",
        b"Connection: Upgrade",
        b"Sec-WebSocket-Accept: " + accept_for_head(head),
    ]
    return eol.join(lines) + eol + fields + eol


async def test_a_head_split_byte_by_byte_with_a_frame_behind_it(nursery: trio.Nursery) -> None:
    def pieces(head: bytes) -> list[bytes]:
        data = answer_101(head) + b"\x81\x02hi"
        return [data[i : i + 1] for i in range(len(data))]

    with trio.fail_after(TIMEOUT):
        ws = await connect_to(answering(pieces), nursery)
        assert await ws.get_message() == "hi"
        assert (b"upgrade", b"websocket") in ws.handshake_headers


async def test_a_blank_line_split_between_reads(nursery: trio.Nursery) -> None:
    def pieces(head: bytes) -> list[bytes]:
        data = answer_101(head)
        return [data[:-3], data[-3:-1], data[-1:] + b"\x81\x02ok"]

    with trio.fail_after(TIMEOUT):
        ws = await connect_to(answering(pieces), nursery)
        assert await ws.get_message() == "ok"


async def test_extra_and_duplicate_fields_reach_handshake_headers(nursery: trio.Nursery) -> None:
    fields = b"X-Server: test\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\n"
    with trio.fail_after(TIMEOUT):
        ws = await connect_to(answering(lambda head: [answer_101(head, fields)]), nursery)
    assert [value for name, value in ws.handshake_headers if name == b"set-cookie"] == [b"a=1", b"b=2"]
    assert (b"x-server", b"test") in ws.handshake_headers


@pytest.mark.parametrize(
    "answer",
    [
        lambda head: answer_101(head, eol=b"\n") + b"\x81\x02lf",  # bare LF: h11 reads it
        lambda head: answer_101(head, b"X-Folded: a\r\n b\r\n") + b"\x81\x02lf",  # obs-fold: h11 unfolds it
        lambda head: answer_101(head).replace(b"101 Switching Protocols", b"101 \x01") + b"\x81\x02lf",
    ],
    ids=["bare-lf", "obs-fold", "control-char-in-reason"],
)
async def test_an_unusual_101_is_read_by_h11(nursery: trio.Nursery, answer: Callable[[bytes], bytes]) -> None:
    with trio.fail_after(TIMEOUT):
        ws = await connect_to(answering(lambda head: [answer(head)]), nursery)
        assert await ws.get_message() == "lf"


async def test_a_wrong_accept_is_a_handshake_error(nursery: trio.Nursery) -> None:
    def answer(head: bytes) -> list[bytes]:
        return [answer_101(head).replace(accept_for_head(head), b"d3Jvbmcgd3Jvbmcgd3Jvbmc=")]

    with trio.fail_after(TIMEOUT), pytest.raises(HandshakeError, match="Sec-WebSocket-Accept does not match"):
        await connect_to(answering(answer), nursery)


async def test_a_duplicate_accept_is_a_handshake_error(nursery: trio.Nursery) -> None:
    def answer(head: bytes) -> list[bytes]:
        return [answer_101(head, b"Sec-WebSocket-Accept: " + accept_for_head(head) + b"\r\n")]

    with trio.fail_after(TIMEOUT), pytest.raises(HandshakeError, match="Sec-WebSocket-Accept does not match"):
        await connect_to(answering(answer), nursery)


async def test_a_head_over_the_limit_is_h11s_error(nursery: trio.Nursery) -> None:
    client_stream, server_stream = trio.testing.memory_stream_pair()

    async def endless_head(stream: trio.abc.Stream) -> None:
        await rawhttp.read_head(stream)
        await stream.send_all(b"HTTP/1.1 101 Switching Protocols\r\n")
        while True:
            await stream.send_all(b"X-Filler: " + b"x" * 100 + b"\r\n")

    nursery.start_soon(endless_head, server_stream)
    with trio.fail_after(TIMEOUT), pytest.raises(HandshakeError, match="invalid handshake response"):
        await trio_ws.wrap_client_stream(
            nursery, client_stream, "h", "/", max_handshake_line=200, max_handshake_headers=4
        )


async def test_a_rejection_after_a_partial_read_is_read_by_h11(nursery: trio.Nursery) -> None:
    def pieces(head: bytes) -> list[bytes]:
        data = b"HTTP/1.1 403 Forbidden\r\nContent-Length: 2\r\n\r\nno"
        return [data[:5], data[5:14], data[14:]]  # "HTTP/1.1 " matches a 101's start at first

    with trio.fail_after(TIMEOUT), pytest.raises(ConnectionRejected) as info:
        await connect_to(answering(pieces), nursery)
    assert info.value.status_code == 403
    assert info.value.body == b"no"


async def test_eof_in_the_middle_of_a_101_is_a_handshake_error(nursery: trio.Nursery) -> None:
    async def half_then_close(stream: trio.abc.Stream) -> None:
        await rawhttp.read_head(stream)
        await stream.send_all(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: webs")
        await stream.aclose()

    with trio.fail_after(TIMEOUT), pytest.raises(HandshakeError, match="closed the connection during the handshake"):
        await connect_to(half_then_close, nursery)
