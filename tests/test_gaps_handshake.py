"""Gap tests for trio_ws/handshake.py: odd request heads and extension headers.

Raw peers write the HTTP heads as bytes over in-memory stream pairs.
"""

from __future__ import annotations

import base64
import hashlib
import re

import pytest
import trio
import trio.testing

import trio_ws
from trio_ws import HandshakeError

TIMEOUT = 10.0
_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
KEY = base64.b64encode(b"0123456789abcdef")
UPGRADE_LINES = (
    b"GET / HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: " + KEY + b"\r\nSec-WebSocket-Version: 13\r\n"
)


async def read_all(stream: trio.abc.Stream) -> bytes:
    data = bytearray()
    while chunk := await stream.receive_some(65536):
        data += chunk
    return bytes(data)


async def read_head(stream: trio.abc.Stream) -> bytes:
    data = bytearray()
    while b"\r\n\r\n" not in data:
        chunk = await stream.receive_some(65536)
        assert chunk, "peer closed before the end of the head"
        data += chunk
    return bytes(data)


async def client_given_extensions(nursery: trio.Nursery, extensions: bytes) -> trio_ws.WebSocketConnection:
    """A compressing trio_ws client whose raw server answers 101 with ``extensions``."""
    client_stream, server_stream = trio.testing.memory_stream_pair()

    async def raw_server() -> None:
        head = await read_head(server_stream)
        match = re.search(rb"(?im)^sec-websocket-key:[ \t]*(\S+)", head)
        assert match is not None
        accept = base64.b64encode(hashlib.sha1(match.group(1) + _GUID).digest())
        await server_stream.send_all(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Accept: " + accept + b"\r\nSec-WebSocket-Extensions: " + extensions + b"\r\n\r\n"
        )

    nursery.start_soon(raw_server)
    return await trio_ws.wrap_client_stream(
        nursery, client_stream, "localhost", "/", compression="deflate", ping_interval=None
    )


# -- the server reading a request head ---------------------------------------------------
async def test_head_ended_by_a_bare_cr_line_is_400_incomplete(nursery: trio.Nursery) -> None:
    """``\\r\\r\\n`` ends the head for the line reader but not for HTTP: answered 400, not left hanging."""
    client_stream, server_stream = trio.testing.memory_stream_pair()
    await client_stream.send_all(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\r\n")
    with trio.fail_after(TIMEOUT):
        with pytest.raises(HandshakeError):
            await trio_ws.wrap_server_stream(nursery, server_stream)
        response = await read_all(client_stream)
    assert response.startswith(b"HTTP/1.1 400 "), response[:100]
    assert response.endswith(b"incomplete request")


async def test_unparsable_extension_header_is_skipped_for_the_next_one(nursery: trio.Nursery) -> None:
    client_stream, server_stream = trio.testing.memory_stream_pair()
    await client_stream.send_all(
        UPGRADE_LINES
        + b"Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover; server_no_context_takeover\r\n"
        + b"Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n"
    )
    with trio.fail_after(TIMEOUT):
        request = await trio_ws.wrap_server_stream(nursery, server_stream, ping_interval=None)
        ws = await request.accept()
        head = await read_head(client_stream)
    assert ws.compression
    answer = re.search(rb"(?im)^sec-websocket-extensions:[ \t]*([^\r\n]*)", head)
    assert answer is not None
    # the answer is to the second header: the first asked for server_no_context_takeover
    assert b"server_no_context_takeover" not in answer.group(1)
    assert b"client_max_window_bits=" in answer.group(1)


# -- the client checking the 101 answer ---------------------------------------------------
async def test_client_refuses_an_unparsable_extension_answer(nursery: trio.Nursery) -> None:
    with trio.fail_after(TIMEOUT):
        with pytest.raises(HandshakeError, match="invalid Sec-WebSocket-Extensions"):
            await client_given_extensions(nursery, b"; server_no_context_takeover")  # no extension name
        with pytest.raises(HandshakeError, match="invalid Sec-WebSocket-Extensions"):
            await client_given_extensions(nursery, b"permessage-deflate; a=1; a=2")


@pytest.mark.parametrize(
    "answer",
    [
        b"permessage-deflate; server_max_window_bits=16",
        b"permessage-deflate; server_max_window_bits",
        b"permessage-deflate; unknown_parameter",
        b"permessage-deflate; server_no_context_takeover=yes",
    ],
    ids=["bits-16", "bits-bare", "unknown", "flag-with-value"],
)
async def test_client_refuses_an_invalid_permessage_deflate_answer(nursery: trio.Nursery, answer: bytes) -> None:
    with trio.fail_after(TIMEOUT):
        with pytest.raises(HandshakeError, match="invalid permessage-deflate answer"):
            await client_given_extensions(nursery, answer)
