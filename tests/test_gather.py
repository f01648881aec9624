"""Tests for trio_ws.gather: frames written without joining them, and send_many on top of it.

Transports are real: socket pairs (TCP-like Unix sockets and TCP on
127.0.0.1) with small kernel buffers so writes stop half-way, TLS (trustme)
over memory streams, and Trio's memory streams.
"""

from __future__ import annotations

import base64
import os
import socket
import ssl
import tracemalloc
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

import pytest
import trio
import trio.testing
import trustme
from support.pairs import ws_pair

import trio_ws
from trio_ws import ConnectionClosed, PreparedMessage, WebSocketConnection
from trio_ws.gather import COALESCE_BYTES, MAX_BUFFERS, coalesce, gather_socket, send_frames

TIMEOUT = 10
#: Options of both ends of a pair: no compression, no keepalive pings.
NO_EXTRAS: dict[str, object] = {"compression": None, "ping_interval": None}
SMALL_BUFFER = 65536


def numbered_frames(count: int) -> list[bytes]:
    """Frames of uneven sizes (so partial writes stop inside frames), each with its own content."""
    sizes = (1, 7, 130, 1024, 4099, 20_001)
    return [i.to_bytes(4, "big") * (sizes[i % len(sizes)] // 4 + 1) for i in range(count)]


async def read_exactly(stream: trio.abc.ReceiveStream, size: int) -> bytes:
    data = bytearray()
    while len(data) < size:
        chunk = await stream.receive_some(size - len(data))
        assert chunk, f"end of stream after {len(data)} of {size} bytes"
        data += chunk
    return bytes(data)


def small_buffers(sock: trio.socket.SocketType) -> None:
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SMALL_BUFFER)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SMALL_BUFFER)


@asynccontextmanager
async def socket_stream_pair(family: str) -> AsyncIterator[tuple[trio.SocketStream, trio.SocketStream]]:
    """Two connected SocketStreams with small kernel buffers: a Unix socket pair or TCP on 127.0.0.1."""
    if family == "unix":
        left, right = trio.socket.socketpair()
    else:
        listener = trio.socket.socket()
        await listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        left = trio.socket.socket()
        small_buffers(left)
        await left.connect(listener.getsockname())
        right, _ = await listener.accept()
        listener.close()
    for sock in (left, right):
        small_buffers(sock)
        if family == "tcp":
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    streams = trio.SocketStream(left), trio.SocketStream(right)
    try:
        yield streams
    finally:
        for stream in streams:
            await stream.aclose()


def tls_contexts() -> tuple[ssl.SSLContext, ssl.SSLContext]:
    ca = trustme.CA()
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost").configure_cert(server_ctx)
    client_ctx = ssl.create_default_context()
    ca.configure_trust(client_ctx)
    return server_ctx, client_ctx


def tls_stream_pair() -> tuple[trio.SSLStream[trio.abc.Stream], trio.SSLStream[trio.abc.Stream]]:
    """(client, server) TLS streams over Trio memory streams."""
    server_ctx, client_ctx = tls_contexts()
    client_raw, server_raw = trio.testing.memory_stream_pair()
    client = trio.SSLStream(client_raw, client_ctx, server_hostname="localhost")
    server = trio.SSLStream(server_raw, server_ctx, server_side=True)
    return client, server


# -- coalescing (streams without gather writes) --------------------------------------


def test_coalesce_joins_runs_of_small_frames_and_passes_large_frames_uncopied() -> None:
    small = [bytes([i]) * 1000 for i in range(40)]
    large = b"L" * COALESCE_BYTES
    frames = [*small[:20], large, *small[20:]]
    chunks = list(coalesce(frames, COALESCE_BYTES))
    assert b"".join(chunks) == b"".join(frames)
    assert all(len(chunk) <= COALESCE_BYTES for chunk in chunks)
    assert any(chunk is large for chunk in chunks), "a large frame was copied"
    # 40 small frames of 1000 bytes need at least 3 chunks of <= 16 KiB, and no more than 4 here.
    assert len(chunks) == 2 + 1 + 2


def test_coalesce_single_frame_is_not_copied() -> None:
    frame = b"x" * 10
    assert [chunk is frame for chunk in coalesce([frame], COALESCE_BYTES)] == [True]
    assert list(coalesce([], COALESCE_BYTES)) == []


async def test_gather_socket_is_used_only_for_plain_socket_streams() -> None:
    async with socket_stream_pair("unix") as (left, _):
        assert gather_socket(left) is left.socket
    client, _ = tls_stream_pair()
    assert gather_socket(client) is None
    assert gather_socket(trio.testing.memory_stream_pair()[0]) is None


# -- gather writes on sockets ---------------------------------------------------------


@pytest.mark.parametrize("family", ["unix", "tcp"])
async def test_frames_arrive_intact_and_in_order_across_partial_writes(family: str) -> None:
    # More frames than one sendmsg call takes, and far more bytes than the
    # kernel buffers hold: the writer stops inside frames and resumes there.
    frames = numbered_frames(MAX_BUFFERS * 2 + 37)
    expected = b"".join(frames)
    assert len(expected) > 20 * SMALL_BUFFER
    with trio.fail_after(TIMEOUT):
        async with socket_stream_pair(family) as (writer, reader), trio.open_nursery() as nursery:
            done = trio.Event()

            async def write() -> None:
                await send_frames(writer, gather_socket(writer), frames)
                done.set()

            nursery.start_soon(write)
            await trio.testing.wait_all_tasks_blocked()
            assert not done.is_set(), "the writer should be blocked on a full socket buffer"
            assert await read_exactly(reader, len(expected)) == expected
            await done.wait()


async def test_gather_write_does_not_copy_the_frames() -> None:
    frames = [bytes([i % 256]) * 1024 for i in range(100)]
    async with socket_stream_pair("unix") as (writer, reader):
        for sock in (writer.socket, reader.socket):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        tracemalloc.start()
        try:
            tracemalloc.reset_peak()
            base = tracemalloc.get_traced_memory()[0]
            await send_frames(writer, gather_socket(writer), frames)
            peak = tracemalloc.get_traced_memory()[1] - base
        finally:
            tracemalloc.stop()
        assert await read_exactly(reader, 100 * 1024) == b"".join(frames)
    # Joining would allocate the whole 100 KiB batch.
    assert peak < 16 * 1024, f"sending 100 KiB of frames allocated {peak} bytes"


# -- streams without gather writes ----------------------------------------------------


async def test_frames_arrive_intact_over_tls() -> None:
    frames = numbered_frames(300)
    expected = b"".join(frames)
    client, server = tls_stream_pair()
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(send_frames, server, gather_socket(server), frames)
            assert await read_exactly(client, len(expected)) == expected


async def test_frames_arrive_intact_over_memory_streams() -> None:
    frames = numbered_frames(300)
    expected = b"".join(frames)
    send_stream, receive_stream = trio.testing.memory_stream_one_way_pair()
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(send_frames, send_stream, None, frames)
            assert await read_exactly(receive_stream, len(expected)) == expected


# -- send_many on a connection --------------------------------------------------------


def mixed_batch(count: int) -> list[str | bytes | PreparedMessage]:
    batch: list[str | bytes | PreparedMessage] = []
    for i in range(count):
        if i % 3 == 0:
            batch.append(PreparedMessage(i.to_bytes(4, "big") * (i % 50 * 300 + 1)))
        elif i % 3 == 1:
            batch.append(f"text {i} " + "é" * (i % 7))
        else:
            batch.append(i.to_bytes(4, "big") * 20_000)  # 80 KB: more than the coalescing chunk
    return batch


def expected_data(batch: list[str | bytes | PreparedMessage]) -> list[str | bytes]:
    return [item.data if isinstance(item, PreparedMessage) else item for item in batch]


@pytest.mark.parametrize("transport", ["unix", "tcp", "tls", "memory"])
async def test_send_many_delivers_every_message_in_order(transport: str) -> None:
    batch = mixed_batch(MAX_BUFFERS + 100)
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery, AsyncExitStack() as stack:
            if transport in ("unix", "tcp"):
                client_stream, server_stream = await stack.enter_async_context(socket_stream_pair(transport))
            elif transport == "tls":
                client_stream, server_stream = tls_stream_pair()
            else:
                client_stream, server_stream = trio.testing.memory_stream_pair()
            streams = (client_stream, server_stream)
            client, server = await ws_pair(nursery, client=NO_EXTRAS, server=NO_EXTRAS, streams=streams)
            nursery.start_soon(server.send_many, batch)
            received = [await client.get_message() for _ in batch]
            assert received == expected_data(batch)
            await client.aclose()
            nursery.cancel_scope.cancel()


async def raw_client_handshake(stream: trio.SocketStream) -> None:
    """Upgrade ``stream`` by hand (the test reads the frames itself)."""
    key = base64.b64encode(os.urandom(16))
    await stream.send_all(
        b"GET / HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: " + key + b"\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = await stream.receive_some(1)  # byte by byte: nothing past the response head
        assert chunk, "the server closed during the handshake"
        head += chunk
    assert head.startswith(b"HTTP/1.1 101 "), head


async def raw_server_pair(
    nursery: trio.Nursery, server_stream: trio.SocketStream, client_stream: trio.SocketStream
) -> WebSocketConnection:
    result: dict[str, WebSocketConnection] = {}

    async def server_side() -> None:
        request = await trio_ws.wrap_server_stream(nursery, server_stream, compression=None, ping_interval=None)
        result["server"] = await request.accept()

    async with trio.open_nursery() as handshake:
        handshake.start_soon(server_side)
        handshake.start_soon(raw_client_handshake, client_stream)
    return result["server"]


async def test_send_many_shares_prepared_frames_instead_of_copying_the_batch() -> None:
    # The hub's promise: a burst costs one copy, not one per member.
    batch = [PreparedMessage(bytes([i]) * 1024) for i in range(100)]
    with trio.fail_after(TIMEOUT):
        async with socket_stream_pair("unix") as (server_stream, client_stream), trio.open_nursery() as nursery:
            for sock in (server_stream.socket, client_stream.socket):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
            server = await raw_server_pair(nursery, server_stream, client_stream)
            for message in batch:
                message.frame(None)  # framed once, as fan-out does before the senders run
            tracemalloc.start()
            try:
                tracemalloc.reset_peak()
                base = tracemalloc.get_traced_memory()[0]
                await server.send_many(batch)
                peak = tracemalloc.get_traced_memory()[1] - base
            finally:
                tracemalloc.stop()
            expected = b"".join(message.frame(None) for message in batch)
            assert await read_exactly(client_stream, len(expected)) == expected
            nursery.cancel_scope.cancel()
    assert peak < 16 * 1024, f"send_many of 100 KiB of shared frames allocated {peak} bytes"


async def test_send_many_cancelled_mid_write_aborts_the_connection() -> None:
    # Unchanged semantics: part of a frame may be on the wire, so nothing else may follow.
    batch = [bytes(10_000) for _ in range(100)]
    with trio.fail_after(TIMEOUT):
        async with socket_stream_pair("unix") as (server_stream, client_stream), trio.open_nursery() as nursery:
            server = await raw_server_pair(nursery, server_stream, client_stream)
            with trio.CancelScope() as scope:
                nursery.start_soon(lambda: cancel_when_blocked(scope))
                await server.send_many(batch)
            assert scope.cancelled_caught
            assert server.closed is not None and server.closed.code == 1006
            with pytest.raises(ConnectionClosed):
                await server.send_many([b"after"])
            nursery.cancel_scope.cancel()


async def cancel_when_blocked(scope: trio.CancelScope) -> None:
    await trio.testing.wait_all_tasks_blocked()
    scope.cancel()
