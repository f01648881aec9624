"""Gap tests for trio_ws/connection.py: closing corner cases, prepared messages,
keepalive during a close, failures while answering pings, and properties.

A trio_ws connection talks over an in-memory stream pair to a *raw peer* (a
few lines of RFC 6455 framing, independent of trio_ws) wherever exact bytes
or timing matter; TCP on 127.0.0.1 is used only where a reset is needed.
Timing uses Trio's autojump clock on memory streams and short real timeouts
on sockets.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import re
import socket
import struct
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, NamedTuple

import pytest
import trio
import trio.testing

import trio_ws
from trio_ws import ConnectionClosed, ConnectionClosedError, PreparedMessage, WebSocketConnection
from trio_ws.compression import Deflate

TIMEOUT = 30  # virtual seconds under the autojump clock
REAL_TIMEOUT = 10.0
OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x1, 0x2, 0x8, 0x9, 0xA
_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
NO_KEEPALIVE: dict[str, Any] = {"ping_interval": None}


# -- a raw peer --------------------------------------------------------------------
def _mask(data: bytes, key: bytes) -> bytes:
    return bytes(byte ^ key[i % 4] for i, byte in enumerate(data))


def frame_bytes(opcode: int, payload: bytes = b"", *, mask: bool, fin: bool = True, rsv1: bool = False) -> bytes:
    first = (0x80 if fin else 0) | (0x40 if rsv1 else 0) | opcode
    n = len(payload)
    if n < 126:
        header = bytes([first, (0x80 if mask else 0) | n])
    elif n < 2**16:
        header = bytes([first, (0x80 if mask else 0) | 126]) + struct.pack("!H", n)
    else:
        header = bytes([first, (0x80 if mask else 0) | 127]) + struct.pack("!Q", n)
    if not mask:
        return header + payload
    key = os.urandom(4)
    return header + key + _mask(payload, key)


def close_payload(code: int, reason: bytes = b"") -> bytes:
    return struct.pack("!H", code) + reason


class Frame(NamedTuple):
    fin: bool
    rsv1: bool
    opcode: int
    payload: bytes

    @property
    def close_code(self) -> int:
        assert self.opcode == OP_CLOSE
        return int(struct.unpack("!H", self.payload[:2])[0])


class RawPeer:
    def __init__(self, stream: trio.abc.Stream, *, client: bool) -> None:
        self.stream = stream
        self.client = client
        self.buffer = bytearray()

    async def _fill(self) -> bool:
        try:
            data = await self.stream.receive_some(65536)
        except trio.BrokenResourceError:
            return False
        self.buffer += data
        return bool(data)

    async def read_head(self) -> bytes:
        while b"\r\n\r\n" not in self.buffer:
            if not await self._fill():
                raise EOFError
        end = self.buffer.index(b"\r\n\r\n") + 4
        head = bytes(self.buffer[:end])
        del self.buffer[:end]
        return head

    async def _exactly(self, n: int) -> bytes:
        while len(self.buffer) < n:
            if not await self._fill():
                raise EOFError
        data = bytes(self.buffer[:n])
        del self.buffer[:n]
        return data

    async def read_frame(self) -> Frame | None:
        try:
            b0, b1 = await self._exactly(2)
            n = b1 & 0x7F
            if n == 126:
                (n,) = struct.unpack("!H", await self._exactly(2))
            elif n == 127:
                (n,) = struct.unpack("!Q", await self._exactly(8))
            key = await self._exactly(4) if b1 & 0x80 else None
            payload = await self._exactly(n)
        except EOFError:
            return None
        return Frame(bool(b0 & 0x80), bool(b0 & 0x40), b0 & 0x0F, _mask(payload, key) if key else payload)

    async def frames_until_eof(self) -> list[Frame]:
        frames = []
        while (frame := await self.read_frame()) is not None:
            frames.append(frame)
        return frames

    async def send_frame(self, opcode: int, payload: bytes = b"", **kwargs: Any) -> None:
        await self.stream.send_all(frame_bytes(opcode, payload, mask=self.client, **kwargs))


def upgrade_request(extensions: bytes | None = None) -> bytes:
    key = base64.b64encode(os.urandom(16))
    request = (
        b"GET /raw HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: " + key + b"\r\nSec-WebSocket-Version: 13\r\n"
    )
    if extensions is not None:
        request += b"Sec-WebSocket-Extensions: " + extensions + b"\r\n"
    return request + b"\r\n"


async def server_with_raw_client(
    nursery: trio.Nursery,
    streams: tuple[trio.abc.Stream, trio.abc.Stream] | None = None,
    extensions: bytes | None = None,
    **options: Any,
) -> tuple[WebSocketConnection, RawPeer]:
    """A trio_ws server connection whose client is a RawPeer (tasks in ``nursery``)."""
    client_stream, server_stream = streams or trio.testing.memory_stream_pair()
    raw = RawPeer(client_stream, client=True)
    await client_stream.send_all(upgrade_request(extensions))
    request = await trio_ws.wrap_server_stream(nursery, server_stream, **{**NO_KEEPALIVE, **options})
    ws = await request.accept()
    head = await raw.read_head()
    assert head.startswith(b"HTTP/1.1 101 "), head
    return ws, raw


async def client_with_raw_server(
    nursery: trio.Nursery, streams: tuple[trio.abc.Stream, trio.abc.Stream] | None = None, **options: Any
) -> tuple[WebSocketConnection, RawPeer]:
    """A trio_ws client connection whose server is a RawPeer."""
    client_stream, server_stream = streams or trio.testing.memory_stream_pair()
    raw = RawPeer(server_stream, client=False)

    async def answer() -> None:
        head = await raw.read_head()
        match = re.search(rb"(?im)^sec-websocket-key:[ \t]*(\S+)", head)
        assert match is not None
        accept = base64.b64encode(hashlib.sha1(match.group(1) + _GUID).digest())
        await server_stream.send_all(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Accept: " + accept + b"\r\n\r\n"
        )

    async with trio.open_nursery() as handshake:
        handshake.start_soon(answer)
        ws = await trio_ws.wrap_client_stream(nursery, client_stream, "localhost", "/", **{**NO_KEEPALIVE, **options})
    return ws, raw


@dataclass
class Pair:
    client: WebSocketConnection
    server: WebSocketConnection


async def open_pair(
    nursery: trio.Nursery, client: dict[str, Any] | None = None, server: dict[str, Any] | None = None
) -> Pair:
    client_stream, server_stream = trio.testing.memory_stream_pair()
    result: dict[str, WebSocketConnection] = {}

    async def server_side() -> None:
        request = await trio_ws.wrap_server_stream(nursery, server_stream, **{**NO_KEEPALIVE, **(server or {})})
        result["server"] = await request.accept()

    async def client_side() -> None:
        result["client"] = await trio_ws.wrap_client_stream(
            nursery, client_stream, "localhost", "/", **{**NO_KEEPALIVE, **(client or {})}
        )

    async with trio.open_nursery() as handshake:
        handshake.start_soon(server_side)
        handshake.start_soon(client_side)
    return Pair(result["client"], result["server"])


@asynccontextmanager
async def tcp_stream_pair() -> AsyncIterator[tuple[trio.SocketStream, trio.SocketStream]]:
    """A connected (client, server) pair of TCP streams on 127.0.0.1."""
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    async with listeners[0]:
        port = listeners[0].socket.getsockname()[1]
        client = await trio.open_tcp_stream("127.0.0.1", port)
        server = await listeners[0].accept()
    assert isinstance(server, trio.SocketStream)
    yield client, server


def reset_on_close(stream: trio.SocketStream) -> None:
    """Make closing ``stream`` send a TCP RST instead of a FIN."""
    stream.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


def errors_logged(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [record for record in caplog.records if record.levelno >= logging.ERROR]


# -- properties --------------------------------------------------------------------
async def test_connection_id_and_repr(nursery: trio.Nursery) -> None:
    with trio.fail_after(TIMEOUT):
        pair = await open_pair(nursery)
        assert pair.client.connection_id != pair.server.connection_id
        assert repr(pair.client) == f"<WebSocketConnection #{pair.client.connection_id} client '/' open>"
        assert repr(pair.server) == f"<WebSocketConnection #{pair.server.connection_id} server '/' open>"
        await pair.client.aclose(4001, "done")
        await pair.server.wait_closed()
    assert repr(pair.client).endswith("client '/' closed 4001>")
    assert repr(pair.server).endswith("server '/' closed 4001>")


async def test_wait_closed_returns_once_the_transport_is_released(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    with trio.fail_after(TIMEOUT):
        pair = await open_pair(nursery)
        waited: list[float] = []

        async def waiter() -> None:
            await pair.server.wait_closed()
            waited.append(trio.current_time())

        nursery.start_soon(waiter)
        await trio.sleep(5)
        assert waited == []  # still open
        await pair.client.aclose()
        await pair.client.wait_closed()  # returns at once when already closed
        await pair.server.wait_closed()
        await trio.testing.wait_all_tasks_blocked()
    assert waited == [pytest.approx(5)]
    assert pair.server.closed is not None and pair.server.closed.code == 1000


# -- prepared messages -------------------------------------------------------------
async def test_prepared_message_is_framed_once_for_plain_server_connections(nursery: trio.Nursery) -> None:
    message = PreparedMessage("to everyone")
    with trio.fail_after(TIMEOUT):
        pairs = [await open_pair(nursery, server={"compression": None}) for _ in range(3)]
        for pair in pairs:
            assert pair.server.shares_frames
            await pair.server.send_message(message)
        for pair in pairs:
            assert await pair.client.get_message() == "to everyone"
    assert message.frames_built == 1


async def test_prepared_message_from_a_client_is_masked_per_connection(nursery: trio.Nursery) -> None:
    message = PreparedMessage(b"\x00\x01binary")
    with trio.fail_after(TIMEOUT):
        ws, raw = await client_with_raw_server(nursery)
        assert not ws.shares_frames
        await ws.send_message(message)
        frame = await raw.read_frame()
    assert frame == Frame(True, False, OP_BINARY, b"\x00\x01binary")
    assert message.frames_built == 0  # a client frame is never shared


@pytest.mark.parametrize(
    ("settings", "compress", "shares_frames", "shared", "rsv1"),
    [
        (Deflate(), True, False, False, True),  # context takeover: per-connection compressor
        (Deflate(server_no_context_takeover=True), True, True, True, True),
        (Deflate(), False, False, True, False),  # uncompressed: the plain shared frame
    ],
    ids=["takeover", "no-takeover", "compress-false"],
)
async def test_prepared_message_with_compression(
    nursery: trio.Nursery, settings: Deflate, compress: bool, shares_frames: bool, shared: bool, rsv1: bool
) -> None:
    text = "compress me " * 50
    message = PreparedMessage(text)
    with trio.fail_after(TIMEOUT):
        pairs = [await open_pair(nursery, server={"compression": settings}) for _ in range(2)]
        for pair in pairs:
            assert pair.server.compression
            assert pair.server.shares_frames is shares_frames
            await pair.server.send_message(message, compress=compress)
            await pair.server.send_message(message, compress=compress)  # twice: history must stay in sync
        for pair in pairs:
            assert await pair.client.get_message() == text
            assert await pair.client.get_message() == text
        # what goes on the wire: a raw client sees whether the frame is compressed
        ws, raw = await server_with_raw_client(
            nursery, extensions=b"permessage-deflate; client_max_window_bits", compression=settings
        )
        await ws.send_message(message, compress=compress)
        frame = await raw.read_frame()
    assert frame is not None and frame.rsv1 is rsv1 and frame.opcode == OP_TEXT
    assert message.frames_built == (1 if shared else 0)


async def test_prepared_message_after_close_is_connection_closed(nursery: trio.Nursery) -> None:
    with trio.fail_after(TIMEOUT):
        pair = await open_pair(nursery)
        await pair.client.aclose()
        with pytest.raises(ConnectionClosed):
            await pair.server.send_message(PreparedMessage("late"))
        with pytest.raises(ConnectionClosed):
            await pair.client.send_message(PreparedMessage("late"))


# -- closing after our reader was cancelled ---------------------------------------
async def server_with_cancelled_reader(
    streams: tuple[trio.abc.Stream, trio.abc.Stream] | None = None, **options: Any
) -> tuple[WebSocketConnection, RawPeer]:
    """A server connection whose owner's scope was cancelled (as on server shutdown).

    Its reader task is gone but the transport is open, so aclose() must read
    the peer's close frame itself.
    """
    async with trio.open_nursery() as owner:
        ws, raw = await server_with_raw_client(owner, streams, **options)
        owner.cancel_scope.cancel()
    return ws, raw


async def test_close_after_reader_cancelled_skips_data_until_the_peer_close(
    autojump_clock: trio.testing.MockClock,
) -> None:
    with trio.fail_after(TIMEOUT):
        ws, raw = await server_with_cancelled_reader(disconnect_timeout=10)

        async def peer() -> None:
            frame = await raw.read_frame()
            assert frame is not None and frame.close_code == 1000
            await raw.send_frame(OP_TEXT, b"late data")
            await raw.send_frame(OP_PING, b"late ping")
            await trio.sleep(2)
            await raw.send_frame(OP_CLOSE, close_payload(1000))

        start = trio.current_time()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(peer)
            await ws.aclose()
        elapsed = trio.current_time() - start
        assert await raw.read_frame() is None  # the server dropped TCP after the handshake
    assert elapsed == pytest.approx(2)  # ended by the peer's close frame, not by data or the timeout
    assert ws.closed is not None and ws.closed.code == 1000


async def test_close_after_reader_cancelled_ends_at_peer_eof(autojump_clock: trio.testing.MockClock) -> None:
    with trio.fail_after(TIMEOUT):
        ws, raw = await server_with_cancelled_reader(disconnect_timeout=10)

        async def peer() -> None:
            frame = await raw.read_frame()
            assert frame is not None and frame.opcode == OP_CLOSE
            await trio.sleep(1)
            await raw.stream.aclose()  # goes away without a close frame

        start = trio.current_time()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(peer)
            await ws.aclose()
    assert trio.current_time() - start == pytest.approx(1)
    assert ws.closed is not None and ws.closed.code == 1000


async def test_close_after_reader_cancelled_ends_at_peer_reset() -> None:
    with trio.fail_after(REAL_TIMEOUT):
        async with tcp_stream_pair() as (client, server):
            ws, raw = await server_with_cancelled_reader((client, server), disconnect_timeout=5)

            async def peer() -> None:
                frame = await raw.read_frame()
                assert frame is not None and frame.opcode == OP_CLOSE
                reset_on_close(client)
                await client.aclose()

            start = trio.current_time()
            async with trio.open_nursery() as nursery:
                nursery.start_soon(peer)
                await ws.aclose()  # the reset must not escape from aclose()
    assert trio.current_time() - start < 2
    assert ws.closed is not None and ws.closed.code == 1000


# -- failing while closing ---------------------------------------------------------
async def test_protocol_error_during_our_close_drops_the_connection_at_once(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    with trio.fail_after(TIMEOUT):
        ws, raw = await server_with_raw_client(nursery, disconnect_timeout=10)

        async def peer() -> list[Frame]:
            frame = await raw.read_frame()
            assert frame is not None and frame.close_code == 4000
            await raw.stream.send_all(frame_bytes(0x3, b"reserved opcode", mask=True))
            return await raw.frames_until_eof()

        after: list[list[Frame]] = []
        start = trio.current_time()
        async with trio.open_nursery() as inner:
            inner.start_soon(lambda: _collect(peer, after))
            await ws.aclose(4000, "bye")
    assert trio.current_time() - start < 1  # not the 10 s disconnect_timeout
    assert after == [[]]  # no second close frame: ours was already sent
    assert ws.closed is not None and ws.closed.code == 4000  # the first reason stays


async def _collect(fn: Any, into: list[Any]) -> None:
    into.append(await fn())


# -- answering a ping on a dead transport ------------------------------------------
async def test_ping_from_a_peer_that_left_ends_the_connection_quietly(
    nursery: trio.Nursery, caplog: pytest.LogCaptureFixture
) -> None:
    with trio.fail_after(TIMEOUT):
        ws, raw = await server_with_raw_client(nursery)
        await raw.send_frame(OP_PING, b"are you there")
        await raw.stream.aclose()  # gone before our pong can be written
        with pytest.raises(ConnectionClosedError) as info:
            await ws.get_message()
    assert info.value.reason.code == 1006
    assert errors_logged(caplog) == []


# -- queue full, then the transport dies -------------------------------------------
async def test_reader_blocked_on_a_full_queue_stops_when_the_transport_dies(nursery: trio.Nursery) -> None:
    """The reader is parked (queue full, so it reads nothing more) when a write finds the peer gone."""
    with trio.fail_after(TIMEOUT):
        ws, raw = await server_with_raw_client(nursery, message_queue_size=1)
        for i in range(4):  # one at a time: the reader parks once two are queued
            await raw.send_frame(OP_TEXT, b"message %d" % i)
            await trio.testing.wait_all_tasks_blocked()
        await raw.stream.aclose()  # unseen by the parked reader
        with pytest.raises(ConnectionClosedError):
            await ws.send_message("into the void")  # the write fails: the transport is dropped
        received = [await ws.get_message(), await ws.get_message()]
        with pytest.raises(ConnectionClosedError) as info:
            await ws.get_message()
        await ws.wait_closed()
    assert received == ["message 0", "message 1"]  # what was queued is still delivered, nothing more
    assert info.value.reason.code == 1006


async def test_cancelled_close_with_a_full_queue_keeps_what_was_queued(nursery: trio.Nursery) -> None:
    with trio.fail_after(TIMEOUT):
        ws, raw = await server_with_raw_client(nursery, message_queue_size=1)
        for i in range(4):
            await raw.send_frame(OP_TEXT, b"message %d" % i)
            await trio.testing.wait_all_tasks_blocked()
        with trio.CancelScope() as scope:
            scope.cancel()
            await ws.aclose()  # cancelled at once: the transport is dropped
        received = [await ws.get_message(), await ws.get_message()]
        with pytest.raises(ConnectionClosed):
            await ws.get_message()
        await ws.wait_closed()
    assert received == ["message 0", "message 1"]
    assert ws.closed is not None and ws.closed.code == 1000


# -- a client draining after the close handshake ------------------------------------
async def test_client_waits_for_server_eof_through_trailing_bytes(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    with trio.fail_after(TIMEOUT):
        ws, raw = await client_with_raw_server(nursery, disconnect_timeout=10)
        start = trio.current_time()
        await raw.send_frame(OP_CLOSE, close_payload(4002, b"server says bye"))
        echo = await raw.read_frame()
        assert echo is not None and echo.close_code == 4002
        await raw.stream.send_all(b"junk after the close")  # the client must keep draining
        await trio.sleep(3)
        await raw.stream.aclose()
        await ws.wait_closed()
    assert trio.current_time() - start == pytest.approx(3)
    assert ws.closed is not None and ws.closed.code == 4002


async def test_client_draining_after_close_survives_a_reset(caplog: pytest.LogCaptureFixture) -> None:
    with trio.fail_after(REAL_TIMEOUT):
        async with trio.open_nursery() as nursery, tcp_stream_pair() as (client, server):
            ws, raw = await client_with_raw_server(nursery, (client, server), disconnect_timeout=5)
            start = trio.current_time()
            await raw.send_frame(OP_CLOSE, close_payload(4003))
            echo = await raw.read_frame()
            assert echo is not None and echo.close_code == 4003
            reset_on_close(server)
            await server.aclose()
            await ws.wait_closed()
    assert trio.current_time() - start < 2
    assert ws.closed is not None and ws.closed.code == 4003
    assert errors_logged(caplog) == []


# -- keepalive while closing --------------------------------------------------------
async def test_no_keepalive_ping_during_a_closing_handshake(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    with trio.fail_after(TIMEOUT):
        ws, raw = await server_with_raw_client(nursery, ping_interval=1, ping_timeout=1, disconnect_timeout=5)
        await ws.aclose()  # the raw client never answers: waits 5 s, several ping intervals
        frames = await raw.frames_until_eof()
    assert [frame.opcode for frame in frames] == [OP_CLOSE]
    assert ws.closed is not None and ws.closed.code == 1000


async def test_keepalive_ping_pending_when_the_peer_closes_is_not_a_timeout(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    with trio.fail_after(2 * TIMEOUT):
        ws, raw = await server_with_raw_client(nursery, ping_interval=1, ping_timeout=20)
        ping = await raw.read_frame()  # at t=1; never answered
        assert ping is not None and ping.opcode == OP_PING
        await trio.sleep(2)
        await raw.send_frame(OP_CLOSE, close_payload(4004))
        frames = await raw.frames_until_eof()
        await trio.sleep(30)  # well past ping_timeout: the keepalive must not fire a 1011 later
    assert [(frame.opcode, frame.close_code) for frame in frames] == [(OP_CLOSE, 4004)]
    assert ws.closed is not None and ws.closed.code == 4004


# -- an unexpected error in the reader ----------------------------------------------
class ExplodingStream(trio.abc.Stream):
    """A transport that raises an error no transport should once ``armed``."""

    def __init__(self, inner: trio.abc.Stream) -> None:
        self.inner = inner
        self.armed = False

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        await self.inner.send_all(data)

    async def wait_send_all_might_not_block(self) -> None:
        await self.inner.wait_send_all_might_not_block()

    async def receive_some(self, max_bytes: int | None = None) -> bytes | bytearray:
        data = await self.inner.receive_some(max_bytes)
        if self.armed:
            raise RuntimeError("a transport bug")
        return data

    async def aclose(self) -> None:
        await self.inner.aclose()


async def test_unexpected_reader_error_fails_the_connection_with_1011(
    nursery: trio.Nursery, caplog: pytest.LogCaptureFixture
) -> None:
    client_stream, server_stream = trio.testing.memory_stream_pair()
    exploding = ExplodingStream(client_stream)
    with trio.fail_after(TIMEOUT):
        ws, raw = await client_with_raw_server(nursery, (exploding, server_stream))
        exploding.armed = True
        await raw.send_frame(OP_TEXT, b"boom")
        close = await raw.read_frame()
        with pytest.raises(ConnectionClosedError) as info:
            await ws.get_message()
    assert close is not None and close.close_code == 1011
    assert info.value.reason.code == 1011
    assert [record.message.split("] ", 1)[1] for record in errors_logged(caplog)] == [
        "unexpected error in the connection's reader"
    ]
