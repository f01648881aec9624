"""Gap tests for trio_ws/compression.py: unusual permessage-deflate parameters.

Offers and answers are written as raw header bytes by a raw peer over an
in-memory stream pair, and the trio_ws side's handshake outcome is checked.
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
from trio_ws.compression import parse_extension_header

TIMEOUT = 10.0
_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
KEY = base64.b64encode(b"0123456789abcdef")


def upgrade_request(extensions: bytes) -> bytes:
    return (
        b"GET / HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: " + KEY + b"\r\nSec-WebSocket-Version: 13\r\n"
        b"Sec-WebSocket-Extensions: " + extensions + b"\r\n\r\n"
    )


async def read_head(stream: trio.abc.Stream) -> bytes:
    data = bytearray()
    while b"\r\n\r\n" not in data:
        chunk = await stream.receive_some(65536)
        assert chunk, "peer closed before the end of the head"
        data += chunk
    return bytes(data)


async def server_answer_to(nursery: trio.Nursery, extensions: bytes) -> tuple[trio_ws.WebSocketConnection, bytes]:
    """A trio_ws server accepts a raw client's offer; returns it and the 101 head."""
    client_stream, server_stream = trio.testing.memory_stream_pair()
    await client_stream.send_all(upgrade_request(extensions))
    request = await trio_ws.wrap_server_stream(nursery, server_stream, ping_interval=None)
    ws = await request.accept()
    return ws, await read_head(client_stream)


async def client_given_answer(nursery: trio.Nursery, extensions: bytes) -> trio_ws.WebSocketConnection:
    """A trio_ws client (offering compression) whose raw server answers with ``extensions``."""
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


def extension_header(head: bytes) -> bytes | None:
    match = re.search(rb"(?im)^sec-websocket-extensions:[ \t]*([^\r\n]*)", head)
    return match.group(1) if match else None


# -- empty parameters -----------------------------------------------------------------
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


# -- window bits that are digits to str.isdigit() but not to int() ---------------------
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
