"""Tests of WebSocketConnection: messages, prepared messages, streaming, closing
(also after the reader was cancelled, and failures while closing), pings,
keepalive, backpressure, limits, compression, cancellation and error types.

Most tests run a trio_ws client and a trio_ws server over an in-memory stream
pair (no sockets) and use Trio's autojump clock for anything timed. A *raw
peer* (tests/support/rawframes.py, independent of trio_ws) stands in for the
other side where a test needs exact control of the bytes on the wire.
Real TCP is used only where TCP itself matters: backpressure, resets and the
``open_websocket`` entry point.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import sys
import tracemalloc
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

import pytest
import trio
import trio.lowlevel
import trio.testing
from support import rawframes as rf
from support.pairs import ws_pair
from support.rawframes import Frame, RawPeer, build_frame, close_payload, random_mask
from support.sockets import reset_on_close, tcp_stream_pair

import trio_ws
from trio_ws import (
    CloseReason,
    ConnectionClosed,
    ConnectionClosedError,
    ConnectionClosedOK,
    PreparedMessage,
    WebSocketConnection,
)
from trio_ws.compression import Deflate
from trio_ws.connection import CANCELLED_CLOSE_GRACE

if sys.version_info < (3, 11):
    from exceptiongroup import BaseExceptionGroup

#: Hard bound on one test (virtual seconds under the autojump clock).
TEST_TIMEOUT = 30
#: Hard bound on a test over real sockets.
REAL_TIMEOUT = 60.0
#: "Promptly" on real sockets and the real clock: far under the 20 s
#: disconnect_timeout those tests set, with room for a loaded machine.
REAL_PROMPT = 5.0
#: "Promptly": well under any of the library's timeouts (connect/disconnect 10 s).
PROMPT = 1.0
HOST = "127.0.0.1"
NO_KEEPALIVE: dict[str, Any] = {"ping_interval": None}

OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = rf.CONT, rf.TEXT, rf.BINARY, rf.CLOSE, rf.PING, rf.PONG


# -- connection helpers ---------------------------------------------------------
@dataclass
class Pair:
    client: WebSocketConnection
    server: WebSocketConnection
    client_stream: trio.abc.Stream
    server_stream: trio.abc.Stream


async def open_pair(
    nursery: trio.Nursery,
    client: dict[str, Any] | None = None,
    server: dict[str, Any] | None = None,
    streams: tuple[trio.abc.Stream, trio.abc.Stream] | None = None,
) -> Pair:
    """A trio_ws client and server connected over memory streams (tasks in ``nursery``)."""
    client_stream, server_stream = streams or trio.testing.memory_stream_pair()
    ws_client, ws_server = await ws_pair(nursery, client=client, server=server, streams=(client_stream, server_stream))
    return Pair(ws_client, ws_server, client_stream, server_stream)


async def client_with_raw_server(
    nursery: trio.Nursery, streams: tuple[trio.abc.Stream, trio.abc.Stream] | None = None, **options: Any
) -> tuple[WebSocketConnection, RawPeer]:
    """A trio_ws client whose server is a RawPeer (no compression negotiated), over ``streams`` or memory."""
    client_stream, server_stream = streams or trio.testing.memory_stream_pair()
    raw = RawPeer(server_stream, is_client=False)
    async with trio.open_nursery() as handshake:
        handshake.start_soon(raw.server_handshake)
        ws = await trio_ws.wrap_client_stream(nursery, client_stream, "localhost", "/", **options)
    return ws, raw


async def server_with_raw_client(
    nursery: trio.Nursery,
    extensions: bytes | None = None,
    streams: tuple[trio.abc.Stream, trio.abc.Stream] | None = None,
    **options: Any,
) -> tuple[WebSocketConnection, RawPeer, bytes]:
    """A trio_ws server whose client is a RawPeer, over ``streams`` or memory; also returns the 101 response head."""
    client_stream, server_stream = streams or trio.testing.memory_stream_pair()
    raw = RawPeer(client_stream, is_client=True)
    result: dict[str, Any] = {}

    async def server_side() -> None:
        request = await trio_ws.wrap_server_stream(nursery, server_stream, **options)
        result["ws"] = await request.accept()

    async with trio.open_nursery() as handshake:
        handshake.start_soon(server_side)
        result["head"] = await raw.client_handshake(extensions=extensions)
    return result["ws"], raw, result["head"]


async def real_pair(
    nursery: trio.Nursery, client: dict[str, Any] | None = None, server: dict[str, Any] | None = None
) -> tuple[WebSocketConnection, WebSocketConnection]:
    """A trio_ws client and server over TCP on 127.0.0.1."""
    send, receive = trio.open_memory_channel[WebSocketConnection](1)

    async def handler(request: trio_ws.WebSocketRequest) -> None:
        ws = await request.accept()
        await send.send(ws)
        await trio.sleep_forever()

    server_options = {"ping_interval": None, "disconnect_timeout": 2, **(server or {})}
    ws_server = await nursery.start(partial(trio_ws.serve_websocket, handler, HOST, 0, None, **server_options))
    ws_client = await trio_ws.connect_websocket(
        nursery, HOST, ws_server.port, "/", use_ssl=False, **{"ping_interval": None, **(client or {})}
    )
    return ws_client, await receive.receive()


async def raw_tcp_server(nursery: trio.Nursery, handler: Callable[[trio.SocketStream], Awaitable[None]]) -> int:
    """Serve ``handler`` (given a raw TCP stream) on 127.0.0.1; return the port."""
    listeners = await nursery.start(partial(trio.serve_tcp, handler, 0, host=HOST))
    return int(listeners[0].socket.getsockname()[1])


class CountingStream(trio.abc.Stream):
    """Wraps a stream and counts the bytes sent through it."""

    def __init__(self, inner: trio.abc.Stream) -> None:
        self.inner = inner
        self.sent = 0

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        self.sent += len(data)
        await self.inner.send_all(data)

    async def wait_send_all_might_not_block(self) -> None:
        await self.inner.wait_send_all_might_not_block()

    async def receive_some(self, max_bytes: int | None = None) -> bytes | bytearray:
        return await self.inner.receive_some(max_bytes)

    async def aclose(self) -> None:
        await self.inner.aclose()


async def expect_closed(ws: WebSocketConnection) -> ConnectionClosed:
    """Read until get_message raises ConnectionClosed; return it."""
    with pytest.raises(ConnectionClosed) as info:
        while True:
            await ws.get_message()
    assert_plain(info.value)
    return info.value


def assert_plain(exc: BaseException) -> None:
    assert not isinstance(exc, BaseExceptionGroup), f"got an exception group: {exc!r}"


async def agen(*items: Any, pause: bool = True) -> AsyncIterator[Any]:
    for item in items:
        if pause:
            await trio.lowlevel.checkpoint()
        yield item


# -- round trips ------------------------------------------------------------------
@pytest.mark.parametrize("compression", [None, "deflate"])
@pytest.mark.parametrize(
    "message",
    ["hello", "", "héllo wörld ✓ 🎉", b"\x00\x01\xff", b"", "x" * 70_000, os.urandom(200_000)],
    ids=["text", "empty-text", "unicode", "binary", "empty-binary", "text-70k", "binary-200k"],
)
async def test_round_trip(nursery: trio.Nursery, compression: str | None, message: str | bytes) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        opts = {"compression": compression, **NO_KEEPALIVE}
        pair = await open_pair(nursery, opts, opts)
        assert pair.client.compression is (compression is not None)
        assert pair.server.compression is (compression is not None)
        await pair.client.send_message(message)
        received = await pair.server.get_message()
        assert type(received) is type(message)
        assert received == message
        await pair.server.send_message(message)
        received = await pair.client.get_message()
        assert type(received) is type(message)
        assert received == message


@pytest.mark.parametrize("wrap", [bytearray, memoryview], ids=["bytearray", "memoryview"])
async def test_bytes_like_messages_are_binary(nursery: trio.Nursery, wrap: Callable[[bytes], Any]) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        pair = await open_pair(nursery, NO_KEEPALIVE, NO_KEEPALIVE)
        await pair.client.send_message(wrap(b"\x00abc\xff"))
        received = await pair.server.get_message()
        assert type(received) is bytes
        assert received == b"\x00abc\xff"


async def test_unsupported_message_type_is_type_error(nursery: trio.Nursery) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        pair = await open_pair(nursery, NO_KEEPALIVE, NO_KEEPALIVE)
        for bad in (42, 1.5, None, {"a": 1}.items(), object()):
            with pytest.raises(TypeError, match="must be str"):
                await pair.client.send_message(bad)  # type: ignore[arg-type]
            # trio-websocket raises ValueError here: code written for it catches that.
            with pytest.raises(ValueError):
                await pair.client.send_message(bad)  # type: ignore[arg-type]
        # The connection is still fine.
        await pair.client.send_message("after")
        assert await pair.server.get_message() == "after"


# -- iterables: one fragmented message ------------------------------------------------
def _sync_gen(items: list[Any]) -> Any:
    yield from items


@pytest.mark.parametrize("compression", [None, "deflate"])
@pytest.mark.parametrize(
    ("chunks", "expected"),
    [
        (["ab", "cd", "é✓"], "abcdé✓"),
        ([b"ab", bytearray(b"cd"), memoryview(b"\x00\xff")], b"abcd\x00\xff"),
        (["only"], "only"),
        ([b"x" * 100_000, b"y" * 100_000], b"x" * 100_000 + b"y" * 100_000),
    ],
    ids=["str", "bytes-like", "single-str", "big-bytes"],
)
@pytest.mark.parametrize("kind", ["list", "sync-generator", "async-generator"])
async def test_iterable_arrives_as_one_message(
    nursery: trio.Nursery, compression: str | None, chunks: list[Any], expected: Any, kind: str
) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        opts = {"compression": compression, **NO_KEEPALIVE}
        pair = await open_pair(nursery, opts, opts)
        source: Any = {
            "list": lambda: list(chunks),
            "sync-generator": lambda: _sync_gen(chunks),
            "async-generator": lambda: agen(*chunks),
        }[kind]()
        await pair.client.send_message(source)
        await pair.client.send_message("next")
        received = await pair.server.get_message()
        assert type(received) is type(expected)
        assert received == expected
        assert await pair.server.get_message() == "next"


async def test_empty_iterable_sends_nothing(nursery: trio.Nursery) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        pair = await open_pair(nursery, NO_KEEPALIVE, NO_KEEPALIVE)
        await pair.client.send_message([])
        await pair.client.send_message(agen())
        await pair.client.send_message("next")
        assert await pair.server.get_message() == "next"


@pytest.mark.parametrize("compression", [None, "deflate"])
@pytest.mark.parametrize("chunks", [["a", b"b"], [b"a", "b"]], ids=["str-then-bytes", "bytes-then-str"])
async def test_mixed_chunk_types_before_anything_sent(
    nursery: trio.Nursery, compression: str | None, chunks: list[Any]
) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        opts = {"compression": compression, **NO_KEEPALIVE}
        pair = await open_pair(nursery, opts, opts)
        with pytest.raises(TypeError):
            await pair.client.send_message(chunks)
        with pytest.raises(TypeError):
            await pair.client.send_message(agen(*chunks))
        # Nothing of the bad message reached the peer: the next message (if the
        # connection is still open) arrives whole and alone.
        try:
            await pair.client.send_message("next")
        except ConnectionClosed:
            await expect_closed(pair.server)
        else:
            assert await pair.server.get_message() == "next"


@pytest.mark.parametrize("compression", [None, "deflate"])
async def test_mixed_chunk_types_after_a_fragment_was_sent_closes_1011(
    nursery: trio.Nursery, compression: str | None
) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        opts = {"compression": compression, **NO_KEEPALIVE}
        pair = await open_pair(nursery, opts, opts)
        with pytest.raises(TypeError):
            await pair.client.send_message(["a", "b", b"c"])
        closed = await expect_closed(pair.server)
        assert type(closed) is ConnectionClosedError
        assert closed.reason.code == 1011
        assert pair.client.closed is not None
        assert pair.client.closed.code == 1011
        with pytest.raises(ConnectionClosed):
            await pair.client.send_message("more")


async def test_non_bytes_chunk_is_type_error(nursery: trio.Nursery) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        pair = await open_pair(nursery, NO_KEEPALIVE, NO_KEEPALIVE)
        with pytest.raises(TypeError):
            await pair.client.send_message([1, 2])


@pytest.mark.parametrize("failure", ["exception", "cancel"])
async def test_iterable_failing_mid_message_does_not_corrupt_the_stream(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock, failure: str
) -> None:
    """An async iterable that raises (or a send cancelled while the iterable
    waits) after a fragment went out leaves a message that can never be
    finished. The next frame must not be a new data frame inside it: either
    the connection is closed, or the next message arrives whole. The peer
    must never see a protocol error (1002) caused by us."""
    with trio.fail_after(TEST_TIMEOUT):
        pair = await open_pair(nursery, NO_KEEPALIVE, NO_KEEPALIVE)

        async def broken() -> AsyncIterator[str]:
            yield "part1"
            yield "part2"
            if failure == "exception":
                raise RuntimeError("source failed")
            await trio.sleep_forever()
            yield "never"  # pragma: no cover

        if failure == "exception":
            with pytest.raises(RuntimeError):
                await pair.client.send_message(broken())
        else:
            with trio.move_on_after(1) as scope:
                await pair.client.send_message(broken())
            assert scope.cancelled_caught
        try:
            await pair.client.send_message("next")
        except ConnectionClosed:
            sent_next = False
        else:
            sent_next = True
        if sent_next:
            # Either "next" arrives whole or the connection was closed on purpose.
            try:
                message = await pair.server.get_message()
            except ConnectionClosed as exc:
                assert exc.reason.code != 1002, f"peer saw a protocol error: {exc.reason}"
            else:
                assert message == "next"
        else:
            closed = await expect_closed(pair.server)
            assert closed.reason.code != 1002, f"peer saw a protocol error: {closed.reason}"


# -- receive_stream -----------------------------------------------------------------
async def test_receive_stream_yields_fragments_in_order(nursery: trio.Nursery) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        opts = {"compression": None, **NO_KEEPALIVE}
        pair = await open_pair(nursery, opts, opts)
        await pair.client.send_message(["one", "two", "three"])
        chunks = [chunk async for chunk in pair.server.receive_stream()]
        assert chunks == ["one", "two", "three"]


@pytest.mark.parametrize("compression", [None, "deflate"])
async def test_receive_stream_join_equals_message(nursery: trio.Nursery, compression: str | None) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        opts = {"compression": compression, "max_message_size": None, **NO_KEEPALIVE}
        pair = await open_pair(nursery, opts, opts)
        parts = [os.urandom(50_000) for _ in range(6)]
        await pair.client.send_message(parts)
        await pair.client.send_message(b"second")
        chunks = [chunk async for chunk in pair.server.receive_stream()]
        assert all(type(chunk) is bytes for chunk in chunks)
        assert len(chunks) >= 2
        assert b"".join(chunks) == b"".join(parts)
        # A whole message is one chunk.
        assert [chunk async for chunk in pair.server.receive_stream()] == [b"second"]


async def test_receive_stream_of_text_yields_str(nursery: trio.Nursery) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        pair = await open_pair(nursery, NO_KEEPALIVE, NO_KEEPALIVE)
        await pair.client.send_message(["é", "✓", "🎉"])
        chunks = [chunk async for chunk in pair.server.receive_stream()]
        assert all(type(chunk) is str for chunk in chunks)
        assert "".join(chunks) == "é✓🎉"


@pytest.mark.parametrize("then", ["get_message", "receive_stream"])
async def test_abandoned_receive_stream_then_next_message(nursery: trio.Nursery, then: str) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        opts = {"compression": None, **NO_KEEPALIVE}
        pair = await open_pair(nursery, opts, opts)
        await pair.client.send_message(["one", "two", "three"])
        await pair.client.send_message(["nx", "t"])
        async for chunk in pair.server.receive_stream():
            assert chunk == "one"
            break
        if then == "get_message":
            assert await pair.server.get_message() == "nxt"
        else:
            assert "".join([chunk async for chunk in pair.server.receive_stream()]) == "nxt"


async def test_abandoned_receive_stream_before_rest_arrived(nursery: trio.Nursery) -> None:
    """The rest of the abandoned message arrives only after the next receive started."""
    with trio.fail_after(TEST_TIMEOUT):
        opts = {"compression": None, **NO_KEEPALIVE}
        pair = await open_pair(nursery, opts, opts)
        gate = trio.Event()

        async def slow() -> AsyncIterator[str]:
            yield "one"
            yield "two"
            await gate.wait()
            yield "three"

        nursery.start_soon(pair.client.send_message, slow())
        stream = pair.server.receive_stream()
        assert await stream.__anext__() == "one"
        del stream
        got: list[str | bytes] = []
        received = trio.Event()

        async def receive() -> None:
            got.append(await pair.server.get_message())
            received.set()

        nursery.start_soon(receive)
        await trio.testing.wait_all_tasks_blocked()
        gate.set()
        await pair.client.send_message("next")
        await received.wait()
        assert got == ["next"]


@pytest.mark.parametrize("other", ["get_message", "receive_stream"])
async def test_a_stream_whose_message_another_task_took_raises_concurrency_error(
    nursery: trio.Nursery, other: str
) -> None:
    """Two tasks receiving at once never split a message silently: the stream learns it lost it."""
    with trio.fail_after(TEST_TIMEOUT):
        opts = {"compression": None, **NO_KEEPALIVE}
        pair = await open_pair(nursery, opts, opts)
        await pair.client.send_message(["one", "two", "three"])
        await pair.client.send_message(["nx", "t"])
        stream = pair.server.receive_stream()
        assert await stream.__anext__() == "one"
        got: list[str | bytes] = []

        async def other_task() -> None:
            if other == "get_message":
                got.append(await pair.server.get_message())
            else:
                got.extend([chunk async for chunk in pair.server.receive_stream()])

        async with trio.open_nursery() as tasks:
            tasks.start_soon(other_task)
        assert "".join(map(str, got)) == "nxt"  # the rest of "one two three" was discarded
        with pytest.raises(trio_ws.ConcurrencyError, match="another receive took the rest of this message"):
            await stream.__anext__()
        # Still the same answer (not chunks of whatever comes next).
        await pair.client.send_message(["later", "!"])
        with pytest.raises(trio_ws.ConcurrencyError):
            await stream.__anext__()
        assert await pair.server.get_message() == "later!"


async def test_a_stream_cancelled_before_its_first_chunk_goes_on_without_concurrency_error(
    nursery: trio.Nursery,
) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        opts = {"compression": None, **NO_KEEPALIVE}
        pair = await open_pair(nursery, opts, opts)
        stream = pair.server.receive_stream()
        with trio.move_on_after(0.01):
            await stream.__anext__()
        await pair.client.send_message(["one", "two"])
        assert [chunk async for chunk in stream] == ["one", "two"]


async def test_receive_stream_raises_when_closed_mid_message(nursery: trio.Nursery) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        opts = {"compression": None, **NO_KEEPALIVE}
        pair = await open_pair(nursery, opts, opts)
        gate = trio.Event()

        async def never_finished() -> AsyncIterator[str]:
            yield "one"
            yield "two"
            await gate.wait()

        nursery.start_soon(pair.client.send_message, never_finished())
        chunks = []
        with pytest.raises(ConnectionClosed) as info:
            async for chunk in pair.server.receive_stream():
                chunks.append(chunk)
                if chunk == "one":
                    await trio.aclose_forcefully(pair.client_stream)
        assert chunks == ["one"]
        assert info.value.reason.code == 1006


# -- iteration and close codes -------------------------------------------------------
@pytest.mark.parametrize("code", [1000, 1001])
async def test_iteration_ends_quietly_on_normal_close(nursery: trio.Nursery, code: int) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        pair = await open_pair(nursery, NO_KEEPALIVE, NO_KEEPALIVE)
        for message in ("a", b"b", "c"):
            await pair.server.send_message(message)
        await pair.server.aclose(code, "bye")
        received = [message async for message in pair.client]
        assert received == ["a", b"b", "c"]
        assert pair.client.closed == CloseReason(code, "bye")


async def test_iteration_ends_quietly_on_close_without_code(nursery: trio.Nursery) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        ws, raw = await client_with_raw_server(nursery, **NO_KEEPALIVE)
        await raw.send_frame(OP_TEXT, b"before")
        await raw.send_frame(OP_CLOSE, b"")

        async def finish_server() -> None:
            frame = await raw.read_frame()
            assert frame is not None
            assert frame.opcode == OP_CLOSE
            assert frame.payload == b""  # 1005 is echoed as an empty close frame
            await raw.stream.aclose()

        nursery.start_soon(finish_server)
        received = [message async for message in ws]
        assert received == ["before"]
        assert ws.closed is not None
        assert ws.closed.code == 1005
        assert ws.closed.name == "NO_STATUS_RCVD"


@pytest.mark.parametrize("code", [4000, 3000, 1008, 1011, 1003])
async def test_iteration_raises_on_error_close(nursery: trio.Nursery, code: int) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        pair = await open_pair(nursery, NO_KEEPALIVE, NO_KEEPALIVE)
        await pair.server.send_message("a")
        await pair.server.aclose(code, "nope")
        received = []
        with pytest.raises(ConnectionClosedError) as info:
            async for message in pair.client:
                received.append(message)
        assert type(info.value) is ConnectionClosedError
        assert received == ["a"]
        assert info.value.reason.code == code
        assert info.value.reason.reason == "nope"


async def test_iteration_raises_when_peer_vanishes(nursery: trio.Nursery) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        pair = await open_pair(nursery, NO_KEEPALIVE, NO_KEEPALIVE)
        await pair.server.send_message("a")
        await trio.aclose_forcefully(pair.server_stream)
        with pytest.raises(ConnectionClosedError) as info:
            async for message in pair.client:
                assert message == "a"
        assert info.value.reason.code == 1006


async def test_queued_messages_are_returned_before_connection_closed(nursery: trio.Nursery) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        pair = await open_pair(nursery, NO_KEEPALIVE, NO_KEEPALIVE)
        for i in range(5):
            await pair.server.send_message(f"m{i}")
        await pair.server.aclose(1000, "done")
        assert pair.client.closed is not None  # the reader saw the close already
        for i in range(5):
            assert await pair.client.get_message() == f"m{i}"
        with pytest.raises(ConnectionClosedOK) as info:
            await pair.client.get_message()
        assert info.value.reason == CloseReason(1000, "done")
        # And it keeps saying so.
        with pytest.raises(ConnectionClosedOK):
            await pair.client.get_message()


async def test_peer_close_with_full_queue_still_delivers_everything(nursery: trio.Nursery) -> None:
    """With a small queue the reader stops reading; the peer's close frame is
    found once the application drains the queue."""
    with trio.fail_after(TEST_TIMEOUT):
        pair = await open_pair(nursery, {"message_queue_size": 1, **NO_KEEPALIVE}, NO_KEEPALIVE)
        for i in range(6):
            await pair.server.send_message(f"m{i}")
        nursery.start_soon(pair.server.aclose)
        received = [message async for message in pair.client]
        assert received == [f"m{i}" for i in range(6)]
        assert pair.client.closed is not None
        assert pair.client.closed.code == 1000


async def test_local_aclose_with_full_queue_keeps_received_messages(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        pair = await open_pair(nursery, {"message_queue_size": 1, **NO_KEEPALIVE}, NO_KEEPALIVE)
        for i in range(6):
            await pair.server.send_message(f"m{i}")
        await trio.testing.wait_all_tasks_blocked()
        start = trio.current_time()
        await pair.client.aclose()
        assert trio.current_time() - start < PROMPT  # the reader read on to find the server's close
        received = []
        with pytest.raises(ConnectionClosedOK):
            while True:
                received.append(await pair.client.get_message())
        assert received  # at least what was queued before the close
        assert received == [f"m{i}" for i in range(len(received))]


# -- closed / aclose -----------------------------------------------------------------
async def test_closed_is_none_while_open_then_close_reason(nursery: trio.Nursery) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        pair = await open_pair(nursery, NO_KEEPALIVE, NO_KEEPALIVE)
        assert pair.client.closed is None
        assert pair.server.closed is None
        assert pair.client.is_client and not pair.client.is_server
        assert pair.server.is_server and not pair.server.is_client
        await pair.client.aclose(4001, "finished")
        assert pair.client.closed == CloseReason(4001, "finished")
        assert pair.client.closed.name == "PRIVATE_RESERVED"
        closed = await expect_closed(pair.server)
        assert type(closed) is ConnectionClosedError
        assert closed.reason == CloseReason(4001, "finished")
        assert pair.server.closed == CloseReason(4001, "finished")


async def test_send_after_close_raises_connection_closed(nursery: trio.Nursery) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        pair = await open_pair(nursery, NO_KEEPALIVE, NO_KEEPALIVE)
        await pair.client.aclose()
        for call in (
            partial(pair.client.send_message, "x"),
            partial(pair.client.send_message, ["x", "y"]),
            pair.client.ping,
            pair.client.pong,
            pair.client.get_message,
        ):
            with pytest.raises(ConnectionClosedOK) as info:
                await call()
            assert type(info.value) is ConnectionClosedOK
            assert info.value.reason.code == 1000


async def test_aclose_is_idempotent(nursery: trio.Nursery, autojump_clock: trio.testing.MockClock) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        pair = await open_pair(nursery, NO_KEEPALIVE, NO_KEEPALIVE)
        await pair.client.aclose()
        start = trio.current_time()
        await pair.client.aclose()
        await pair.client.aclose(4000, "again")
        assert trio.current_time() - start < PROMPT
        assert pair.client.closed == CloseReason(1000, None)
        await expect_closed(pair.server)
        await pair.server.aclose()  # closing the side that was closed by the peer is fine too


@pytest.mark.parametrize("side", ["client", "server"])
async def test_concurrent_acloses_all_return(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock, side: str
) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        pair = await open_pair(nursery, NO_KEEPALIVE, NO_KEEPALIVE)
        ws = getattr(pair, side)
        done = []
        start = trio.current_time()

        async def close(code: int) -> None:
            await ws.aclose(code)
            done.append(code)

        async with trio.open_nursery() as inner:
            for code in (1000, 4000, 1001):
                inner.start_soon(close, code)
        assert sorted(done) == [1000, 1001, 4000]
        assert trio.current_time() - start < PROMPT
        assert ws.closed is not None


async def test_both_sides_close_at_once(nursery: trio.Nursery, autojump_clock: trio.testing.MockClock) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        pair = await open_pair(nursery, NO_KEEPALIVE, NO_KEEPALIVE)
        start = trio.current_time()
        async with trio.open_nursery() as inner:
            inner.start_soon(pair.client.aclose, 4001)
            inner.start_soon(pair.server.aclose, 4002)
        assert trio.current_time() - start < PROMPT
        assert pair.client.closed is not None and pair.server.closed is not None


@pytest.mark.parametrize("code", [999, 1004, 1005, 1006, 1015, 2999, 5000, 0, -1])
async def test_aclose_with_invalid_code_is_value_error(nursery: trio.Nursery, code: int) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        pair = await open_pair(nursery, NO_KEEPALIVE, NO_KEEPALIVE)
        with pytest.raises(ValueError):
            await pair.client.aclose(code)
        assert pair.client.closed is None  # nothing happened
        await pair.client.send_message("still open")
        assert await pair.server.get_message() == "still open"


@pytest.mark.parametrize("code", [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 3000, 4999])
async def test_aclose_with_valid_code_reaches_peer(nursery: trio.Nursery, code: int) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        pair = await open_pair(nursery, NO_KEEPALIVE, NO_KEEPALIVE)
        await pair.client.aclose(code)
        closed = await expect_closed(pair.server)
        assert closed.reason.code == code
        assert isinstance(closed, ConnectionClosedOK) is (code in (1000, 1001))


@pytest.mark.parametrize(
    "reason", ["x" * 200, "é" * 100, "✓" * 60, "a" + "🎉" * 40], ids=["ascii", "2-byte", "3-byte", "4-byte"]
)
async def test_long_close_reason_is_truncated(nursery: trio.Nursery, reason: str) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        pair = await open_pair(nursery, NO_KEEPALIVE, NO_KEEPALIVE)
        assert len(reason.encode()) > 123
        await pair.client.aclose(4000, reason)
        closed = await expect_closed(pair.server)
        assert closed.reason.code == 4000  # not 1007: the cut is at a character boundary
        received = closed.reason.reason
        assert received is not None
        assert reason.startswith(received)
        assert 123 - 4 < len(received.encode()) <= 123


async def test_close_reason_of_exactly_123_bytes_is_kept(nursery: trio.Nursery) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        pair = await open_pair(nursery, NO_KEEPALIVE, NO_KEEPALIVE)
        await pair.client.aclose(4000, "r" * 123)
        closed = await expect_closed(pair.server)
        assert closed.reason.reason == "r" * 123


async def test_aclose_returns_promptly_when_peer_vanishes_during_close(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    """The peer reads our close frame and drops TCP without answering: there is
    nothing left to wait for, so aclose should not sit out disconnect_timeout."""
    with trio.fail_after(TEST_TIMEOUT):
        ws, raw = await client_with_raw_server(nursery, disconnect_timeout=10, **NO_KEEPALIVE)

        async def vanish() -> None:
            frame = await raw.read_frame()
            assert frame is not None and frame.opcode == OP_CLOSE
            await trio.aclose_forcefully(raw.stream)

        nursery.start_soon(vanish)
        start = trio.current_time()
        await ws.aclose()
        elapsed = trio.current_time() - start
        assert ws.closed is not None
        assert elapsed < PROMPT, f"aclose took {elapsed} s after the transport was gone"


async def test_aclose_waits_at_most_disconnect_timeout(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        ws, _raw = await client_with_raw_server(nursery, disconnect_timeout=3, **NO_KEEPALIVE)
        start = trio.current_time()
        await ws.aclose()  # the raw server never answers
        assert 3 <= trio.current_time() - start < 3 + PROMPT
        with pytest.raises(ConnectionClosed):
            await ws.get_message()


async def test_close_timed_out_tells_a_timed_out_close_from_a_completed_one(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        ws, _raw = await client_with_raw_server(nursery, disconnect_timeout=3, **NO_KEEPALIVE)
        assert not ws.close_timed_out
        await ws.aclose()  # the raw server never answers
        assert ws.close_timed_out
        pair = await open_pair(nursery, client=NO_KEEPALIVE, server=NO_KEEPALIVE)
        await pair.client.aclose()  # the trio_ws server answers
        assert not pair.client.close_timed_out


async def test_aclose_shielded_still_exchanges_close_frames_in_a_cancelled_scope(nursery: trio.Nursery) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        pair = await open_pair(nursery, client=NO_KEEPALIVE, server=NO_KEEPALIVE)
        with trio.CancelScope() as scope:
            scope.cancel()
            await pair.server.aclose_shielded(4001, "bye")  # a plain aclose would drop TCP at once (1006)
        await pair.client.wait_closed()
    assert pair.server.closed == CloseReason(4001, "bye")
    assert pair.client.closed == CloseReason(4001, "bye")
    with pytest.raises(ValueError, match="close code 1006 may not be sent"):
        await pair.server.aclose_shielded(1006)


async def test_aclose_shielded_is_bounded_by_the_grace_when_disconnect_timeout_is_none(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        ws, raw = await client_with_raw_server(nursery, disconnect_timeout=None, **NO_KEEPALIVE)
        start = trio.current_time()
        with trio.CancelScope() as scope:
            scope.cancel()
            await ws.aclose_shielded()  # the raw server never answers
        assert CANCELLED_CLOSE_GRACE <= trio.current_time() - start < CANCELLED_CLOSE_GRACE + PROMPT
        frames = await raw.read_frames_until_eof()
    assert [(frame.opcode, frame.close_code) for frame in frames] == [(OP_CLOSE, 1000)]
    assert ws.closed is not None


async def test_fail_sends_a_close_frame_and_drops_tcp_without_waiting(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        ws, raw, _ = await server_with_raw_client(nursery, disconnect_timeout=20, **NO_KEEPALIVE)
        start = trio.current_time()
        await ws.fail(4001, "broke the rules")  # the raw client never answers
        assert trio.current_time() - start < PROMPT
        frames = await raw.read_frames_until_eof()
    assert [(frame.opcode, frame.close_code) for frame in frames] == [(OP_CLOSE, 4001)]
    assert ws.closed == CloseReason(4001, "broke the rules")
    with pytest.raises(ConnectionClosedError):
        await ws.get_message()
    await ws.fail()  # nothing more to send; the first code stays
    await ws.aclose()
    assert ws.closed == CloseReason(4001, "broke the rules")


@pytest.mark.parametrize(("code", "kind"), [(1000, trio_ws.ConnectionClosedOK), (4001, ConnectionClosedError)])
async def test_closed_error_is_what_the_connections_own_calls_raise(
    nursery: trio.Nursery, code: int, kind: type[ConnectionClosed]
) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        pair = await open_pair(nursery, NO_KEEPALIVE, NO_KEEPALIVE)
        before = pair.server.closed_error()  # nothing recorded yet: an abnormal closure
        assert type(before) is ConnectionClosedError and before.reason == CloseReason(1006, None)
        await pair.client.aclose(code, "bye")
        with pytest.raises(ConnectionClosed) as raised:
            await pair.server.get_message()
    made = pair.server.closed_error()
    assert type(made) is type(raised.value) is kind
    assert made.reason == raised.value.reason == CloseReason(code, "bye")


async def test_fail_defaults_to_1011(nursery: trio.Nursery, autojump_clock: trio.testing.MockClock) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        pair = await open_pair(nursery, NO_KEEPALIVE, NO_KEEPALIVE)
        await pair.client.fail()
        with pytest.raises(ConnectionClosedError) as caught:
            await pair.server.get_message()
    assert caught.value.reason.code == 1011
    assert pair.client.closed == CloseReason(1011, None)


class StallingStream(CountingStream):
    """A transport whose writes never complete once ``stalled`` (a peer that stopped
    reading), or take ``delay`` seconds."""

    stalled = False
    delay = 0.0

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        if self.stalled:
            await trio.sleep_forever()
        await trio.sleep(self.delay)
        await super().send_all(data)


async def test_a_frame_read_while_failing_does_not_cut_off_the_close_frame(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    # The reader wakes (a ping arrives) while fail() is still writing its
    # close frame: it must leave closing TCP to fail(), after the frame.
    with trio.fail_after(TEST_TIMEOUT):
        client_stream, server_stream = trio.testing.memory_stream_pair()
        slow = StallingStream(server_stream)
        ws, raw, _ = await server_with_raw_client(nursery, streams=(client_stream, slow), **NO_KEEPALIVE)
        slow.delay = 0.5
        async with trio.open_nursery() as inner:
            inner.start_soon(ws.fail, 4001, "bad")
            await trio.testing.wait_all_tasks_blocked()
            await raw.send_frame(OP_PING, b"now")
        frames = await raw.read_frames_until_eof()
    assert [(frame.opcode, frame.close_code) for frame in frames] == [(OP_CLOSE, 4001)]


async def stalled_server(nursery: trio.Nursery) -> tuple[WebSocketConnection, RawPeer, StallingStream]:
    client_stream, server_stream = trio.testing.memory_stream_pair()
    stalling = StallingStream(server_stream)
    ws, raw, _ = await server_with_raw_client(
        nursery, streams=(client_stream, stalling), disconnect_timeout=20, **NO_KEEPALIVE
    )
    stalling.stalled = True
    return ws, raw, stalling


async def test_fail_gives_the_close_frame_at_most_one_second(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    # The peer reads nothing, so the close frame cannot go out: fail() gives
    # up after one second (disconnect_timeout is longer) and drops TCP.
    with trio.fail_after(TEST_TIMEOUT):
        ws, raw, _ = await stalled_server(nursery)
        start = trio.current_time()
        await ws.fail(4002, "stuck")
        assert trio.current_time() - start == pytest.approx(1)
        assert await raw.read_frame() is None  # the transport is closed, no frame
    assert ws.closed == CloseReason(4002, "stuck")


async def test_cancelling_fail_still_closes_the_transport(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        ws, raw, _ = await stalled_server(nursery)
        with trio.move_on_after(0.5) as scope:
            await ws.fail(4003, "cancelled")
        assert scope.cancelled_caught
        await ws.wait_closed()
        assert await raw.read_frame() is None
    assert ws.closed == CloseReason(4003, "cancelled")


@pytest.mark.parametrize("code", [1005, 1006, 999, 5000])
async def test_fail_with_a_code_that_cannot_be_sent_is_value_error(nursery: trio.Nursery, code: int) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        pair = await open_pair(nursery, NO_KEEPALIVE, NO_KEEPALIVE)
        with pytest.raises(ValueError, match=f"close code {code}"):
            await pair.client.fail(code)
        assert pair.client.closed is None
        await pair.client.aclose()


async def test_aclose_after_the_reader_was_cancelled_waiting_for_eof_returns_at_the_eof(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """The client's reader answered the server's close and was waiting for its
    EOF (RFC 6455 §7.1.1) when its owner was cancelled. aclose() must read that
    EOF itself, not sit out disconnect_timeout (it used to wait all of it)."""
    with trio.fail_after(TEST_TIMEOUT):
        async with trio.open_nursery() as owner:
            ws, raw = await client_with_raw_server(owner, disconnect_timeout=20, **NO_KEEPALIVE)
            await raw.send_frame(OP_CLOSE, close_payload(1001, b"bye"))
            answer = await raw.read_frame()
            assert answer is not None and answer.close_code == 1001
            await trio.testing.wait_all_tasks_blocked()  # the reader waits for the EOF
            owner.cancel_scope.cancel()
        await raw.stream.aclose()
        start = trio.current_time()
        await ws.aclose()
        elapsed = trio.current_time() - start
    assert elapsed < PROMPT, f"aclose took {elapsed} s after the server had closed TCP"
    assert ws.closed == CloseReason(1001, "bye")


# -- ping / pong ---------------------------------------------------------------------
async def test_ping_returns_on_pong_and_sets_latency(nursery: trio.Nursery) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        pair = await open_pair(nursery, NO_KEEPALIVE, NO_KEEPALIVE)
        assert pair.client.latency is None
        await pair.client.ping()
        assert isinstance(pair.client.latency, float)
        assert 0 <= pair.client.latency < TEST_TIMEOUT
        await pair.server.ping(b"explicit payload")
        assert isinstance(pair.server.latency, float)
        await pair.client.ping(b"p" * 125)  # the largest allowed payload
        await pair.client.ping(b"")


async def test_ping_latency_measures_round_trip(nursery: trio.Nursery, autojump_clock: trio.testing.MockClock) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        ws, raw = await client_with_raw_server(nursery, **NO_KEEPALIVE)

        async def slow_pong() -> None:
            frame = await raw.read_frame()
            assert frame is not None and frame.opcode == OP_PING
            await trio.sleep(2.5)
            await raw.send_frame(OP_PONG, frame.payload)

        nursery.start_soon(slow_pong)
        await ws.ping(b"abc")
        assert ws.latency == pytest.approx(2.5, abs=0.01)


async def test_ping_payload_too_long_is_value_error(nursery: trio.Nursery) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        pair = await open_pair(nursery, NO_KEEPALIVE, NO_KEEPALIVE)
        with pytest.raises(ValueError):
            await pair.client.ping(b"x" * 126)
        with pytest.raises(ValueError):
            await pair.client.pong(b"x" * 126)
        assert pair.client.closed is None
        await pair.client.ping()  # still usable


async def test_ping_with_duplicate_pending_payload_is_value_error(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        ws, raw = await client_with_raw_server(nursery, **NO_KEEPALIVE)
        done = trio.Event()

        async def first() -> None:
            await ws.ping(b"dup")
            done.set()

        nursery.start_soon(first)
        frame = await raw.read_frame()
        assert frame == Frame(True, False, OP_PING, b"dup")
        with pytest.raises(ValueError):
            await ws.ping(b"dup")
        assert not done.is_set()
        await raw.send_frame(OP_PONG, b"dup")
        await done.wait()
        # The payload is free again once answered.
        nursery.start_soon(ws.ping, b"dup")
        assert await raw.read_frame() == Frame(True, False, OP_PING, b"dup")
        await raw.send_frame(OP_PONG, b"dup")


async def test_concurrent_pings_all_return(nursery: trio.Nursery) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        pair = await open_pair(nursery, NO_KEEPALIVE, NO_KEEPALIVE)
        done = []

        async def ping(payload: bytes | None) -> None:
            await pair.client.ping(payload)
            done.append(payload)

        async with trio.open_nursery() as inner:
            for i in range(10):
                inner.start_soon(ping, None)
                inner.start_soon(ping, f"p{i}".encode())
            inner.start_soon(pair.server.ping)
        assert len(done) == 20


async def test_pong_for_later_ping_releases_earlier_ones(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        ws, raw = await client_with_raw_server(nursery, **NO_KEEPALIVE)
        done: list[bytes] = []

        async def ping(payload: bytes) -> None:
            await ws.ping(payload)
            done.append(payload)

        for payload in (b"1", b"2", b"3"):
            nursery.start_soon(ping, payload)
            frame = await raw.read_frame()  # in order: each ping is on the wire before the next starts
            assert frame == Frame(True, False, OP_PING, payload)
        await raw.send_frame(OP_PONG, b"unknown")  # an unsolicited pong releases nothing
        await trio.testing.wait_all_tasks_blocked()
        assert done == []
        await raw.send_frame(OP_PONG, b"2")
        await trio.testing.wait_all_tasks_blocked()
        assert sorted(done) == [b"1", b"2"]
        await raw.send_frame(OP_PONG, b"3")
        await trio.testing.wait_all_tasks_blocked()
        assert sorted(done) == [b"1", b"2", b"3"]
        assert ws.closed is None


async def test_cancelled_ping_is_forgotten(nursery: trio.Nursery, autojump_clock: trio.testing.MockClock) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        ws, raw = await client_with_raw_server(nursery, **NO_KEEPALIVE)
        with trio.move_on_after(1) as scope:
            await ws.ping(b"late")
        assert scope.cancelled_caught
        assert ws.closed is None
        assert await raw.read_frame() == Frame(True, False, OP_PING, b"late")
        await raw.send_frame(OP_PONG, b"late")  # arrives after the cancel: ignored
        nursery.start_soon(ws.ping, b"late")  # the payload can be used again
        assert await raw.read_frame() == Frame(True, False, OP_PING, b"late")
        await raw.send_frame(OP_PONG, b"late")
        await raw.send_frame(OP_TEXT, b"ok")
        assert await ws.get_message() == "ok"


async def test_pending_ping_raises_promptly_when_peer_vanishes(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        ws, raw = await client_with_raw_server(nursery, ping_timeout=None, **NO_KEEPALIVE)
        errors: list[BaseException] = []
        finished_at: list[float] = []

        async def ping() -> None:
            try:
                await ws.ping()
            except BaseException as exc:
                errors.append(exc)
                raise
            finally:
                finished_at.append(trio.current_time())

        async with trio.open_nursery() as inner:
            inner.start_soon(partial(_swallow, ConnectionClosed, ping))
            frame = await raw.read_frame()
            assert frame is not None and frame.opcode == OP_PING
            start = trio.current_time()
            await trio.aclose_forcefully(raw.stream)
        assert len(errors) == 1
        assert type(errors[0]) is ConnectionClosedError
        assert errors[0].reason.code == 1006  # type: ignore[attr-defined]
        assert finished_at[0] - start < PROMPT


async def _swallow(exc_type: type[BaseException], fn: Callable[[], Awaitable[object]]) -> None:
    with contextlib.suppress(exc_type):
        await fn()


@pytest.mark.parametrize("peer_closes_tcp", [True, False], ids=["then-tcp-close", "tcp-left-open"])
async def test_pending_ping_and_get_message_raise_promptly_on_peer_close_frame(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock, peer_closes_tcp: bool
) -> None:
    """After the peer's close frame no pong and no message can come: waiting
    callers should get ConnectionClosed at once, not after disconnect_timeout
    (10 s) spent waiting for the server to drop TCP."""
    with trio.fail_after(TEST_TIMEOUT):
        ws, raw = await client_with_raw_server(nursery, **NO_KEEPALIVE)
        outcomes: dict[str, tuple[float, BaseException | None]] = {}

        async def run(name: str, fn: Callable[[], Awaitable[object]]) -> None:
            try:
                await fn()
            except ConnectionClosed as exc:
                outcomes[name] = (trio.current_time(), exc)
            else:
                outcomes[name] = (trio.current_time(), None)

        async with trio.open_nursery() as inner:
            inner.start_soon(run, "ping", ws.ping)
            inner.start_soon(run, "get_message", ws.get_message)
            frame = await raw.read_frame()
            assert frame is not None and frame.opcode == OP_PING
            await trio.testing.wait_all_tasks_blocked()
            start = trio.current_time()
            await raw.send_frame(OP_CLOSE, close_payload(4002, b"server going"))
            echo = await raw.read_frame()
            assert echo is not None and echo.close_code == 4002
            if peer_closes_tcp:
                await raw.stream.aclose()
        for name, (when, exc) in outcomes.items():
            assert type(exc) is ConnectionClosedError, name
            assert exc.reason.code == 4002, name
            assert when - start < PROMPT, f"{name} raised after {when - start} s"


async def test_pending_ping_during_local_aclose(nursery: trio.Nursery, autojump_clock: trio.testing.MockClock) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        ws, raw = await client_with_raw_server(nursery, **NO_KEEPALIVE)
        result: list[BaseException | None] = []

        async def ping() -> None:
            try:
                await ws.ping()
            except ConnectionClosed as exc:
                result.append(exc)
            else:
                result.append(None)

        nursery.start_soon(ping)
        assert (await raw.read_frame()).opcode == OP_PING  # type: ignore[union-attr]

        async def server() -> None:
            frame = await raw.read_frame()
            assert frame is not None and frame.close_code == 1000
            await raw.send_frame(OP_CLOSE, frame.payload)
            await raw.stream.aclose()

        nursery.start_soon(server)
        start = trio.current_time()
        await ws.aclose()
        assert trio.current_time() - start < PROMPT
        await trio.testing.wait_all_tasks_blocked()
        assert len(result) == 1
        assert type(result[0]) is ConnectionClosedOK


async def test_unsolicited_pong_is_accepted_silently(nursery: trio.Nursery) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        pair = await open_pair(nursery, NO_KEEPALIVE, NO_KEEPALIVE)
        await pair.client.pong()
        await pair.client.pong(b"heartbeat")
        await pair.server.pong(b"x" * 125)
        await pair.client.send_message("after pongs")
        assert await pair.server.get_message() == "after pongs"
        await pair.server.send_message("back")
        assert await pair.client.get_message() == "back"
        assert pair.client.closed is None and pair.server.closed is None


@pytest.mark.parametrize("compression", [None, "deflate"])
@pytest.mark.parametrize("control", ["ping-from-receiver", "ping-from-sender", "unsolicited-pong"])
async def test_control_frames_between_fragments(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock, compression: str | None, control: str
) -> None:
    """Control frames may go out between the fragments of a streamed message
    (RFC 6455 5.4), in both directions, and must not disturb it. With
    permessage-deflate, a control frame's payload is never compressed, so the
    receiver must not feed it to the message's decompressor (RFC 7692 6.1)."""
    with trio.fail_after(TEST_TIMEOUT):
        opts = {"compression": compression, **NO_KEEPALIVE}
        pair = await open_pair(nursery, opts, opts)
        gate = trio.Event()

        async def slow() -> AsyncIterator[str]:
            yield "a" * 100
            yield "b" * 100
            await gate.wait()
            yield "c"

        nursery.start_soon(pair.client.send_message, slow())
        await trio.testing.wait_all_tasks_blocked()
        with trio.fail_after(PROMPT):
            if control == "ping-from-receiver":
                await pair.server.ping(b"hello from the receiver")  # answered between fragments
            elif control == "ping-from-sender":
                await pair.client.ping(b"hello from the sender")  # arrives between fragments
            else:
                await pair.client.pong(b"hello, unsolicited")
        gate.set()
        assert await pair.server.get_message() == "a" * 100 + "b" * 100 + "c"
        await pair.client.send_message("after")
        assert await pair.server.get_message() == "after"
        assert pair.server.closed is None


# -- keepalive ---------------------------------------------------------------------
async def _raw_reader(raw: RawPeer, frames: list[Frame], *, answer_pings: bool) -> None:
    while (frame := await raw.read_frame()) is not None:
        frames.append(frame)
        if frame.opcode == OP_PING and answer_pings:
            await raw.send_frame(OP_PONG, frame.payload)
        if frame.opcode == OP_CLOSE:
            return


async def test_keepalive_closes_1011_when_peer_never_reads(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        ws, raw = await client_with_raw_server(nursery, ping_interval=1, ping_timeout=1)
        start = trio.current_time()
        with pytest.raises(ConnectionClosedError) as info:
            await ws.get_message()
        elapsed = trio.current_time() - start
        assert type(info.value) is ConnectionClosedError
        assert info.value.reason.code == 1011
        assert 1 <= elapsed <= 2 + 0.01
        assert ws.closed is not None and ws.closed.code == 1011
        # What went on the wire (the raw peer reads it only now): ping, then close 1011.
        frames = await raw.read_frames_until_eof()
        assert [frame.opcode for frame in frames] == [OP_PING, OP_CLOSE]
        assert frames[-1].close_code == 1011


async def test_keepalive_closes_1011_when_peer_reader_is_blocked(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    """The peer is trio_ws, but its application does not read and its queue is
    full, so its reader stops reading and our pings go unanswered."""
    with trio.fail_after(TEST_TIMEOUT):
        pair = await open_pair(
            nursery,
            {"ping_interval": 1, "ping_timeout": 1},
            {"message_queue_size": 0, **NO_KEEPALIVE},
        )
        for i in range(3):
            await pair.client.send_message(f"flood {i}")
        start = trio.current_time()
        with pytest.raises(ConnectionClosedError) as info:
            await pair.client.get_message()
        assert info.value.reason.code == 1011
        assert trio.current_time() - start <= 2 + 0.01


async def test_keepalive_keeps_healthy_connection_open(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    with trio.fail_after(TEST_TIMEOUT * 10):
        opts = {"ping_interval": 1, "ping_timeout": 1}
        pair = await open_pair(nursery, opts, opts)
        await trio.sleep(100)
        assert pair.client.closed is None and pair.server.closed is None
        assert isinstance(pair.client.latency, float)
        assert isinstance(pair.server.latency, float)
        await pair.client.send_message("still here")
        assert await pair.server.get_message() == "still here"


@pytest.mark.parametrize("interval", [None, 1.0, 7.0])
async def test_keepalive_ping_count(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock, interval: float | None
) -> None:
    with trio.fail_after(TEST_TIMEOUT * 10):
        ws, raw = await client_with_raw_server(nursery, ping_interval=interval, ping_timeout=5)
        frames: list[Frame] = []
        nursery.start_soon(partial(_raw_reader, raw, frames, answer_pings=True))
        await trio.sleep(100.5)
        pings = [frame for frame in frames if frame.opcode == OP_PING]
        if interval is None:
            assert pings == []
        else:
            assert abs(len(pings) - 100 / interval) <= 1
        assert ws.closed is None


async def test_keepalive_ping_timeout_none_waits_forever(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    with trio.fail_after(TEST_TIMEOUT * 10):
        ws, raw = await client_with_raw_server(nursery, ping_interval=1, ping_timeout=None)
        frames: list[Frame] = []
        nursery.start_soon(partial(_raw_reader, raw, frames, answer_pings=False))
        await trio.sleep(100)
        assert ws.closed is None
        assert [frame.opcode for frame in frames] == [OP_PING]  # one ping, still waiting


# -- backpressure (real TCP) ------------------------------------------------------------
async def test_backpressure_blocks_sender_until_receiver_reads(nursery: trio.Nursery) -> None:
    with trio.fail_after(120):
        chunk = os.urandom(64 * 1024)
        count = 200 * 2**20 // len(chunk)  # 200 MiB in all
        client, server = await real_pair(nursery, {"compression": None}, {"compression": None, "message_queue_size": 1})
        progress = {"sent": 0}
        sent_all = trio.Event()

        async def sender() -> None:
            for _ in range(count):
                await client.send_message(chunk)
                progress["sent"] += 1
            sent_all.set()

        nursery.start_soon(sender)
        # Wait until the sender stops: every task blocked (the sender on the
        # socket, the server's reader on its full queue) and no progress for
        # 0.1 s, since the kernel still frees send buffer space as it
        # acknowledges what the receiving socket took in.
        while not sent_all.is_set():
            before = progress["sent"]
            await trio.testing.wait_all_tasks_blocked(cushion=0.1)
            if progress["sent"] == before:
                break
        assert not sent_all.is_set(), "200 MiB went out although nobody read them"
        stalled_at = progress["sent"]
        assert stalled_at * len(chunk) < 64 * 2**20  # socket buffers and the queue hold far less
        # The receiver starts reading: everything arrives, intact and in order.
        received = 0
        while received < count:
            message = await server.get_message()
            assert message == chunk
            received += 1
        await sent_all.wait()
        assert client.closed is None
        await client.aclose()


async def test_send_cancelled_while_blocked_aborts_connection(nursery: trio.Nursery) -> None:
    """A send blocked by backpressure and cancelled mid-frame aborts the
    connection: the peer sees whole messages, then 1006, never a half frame
    followed by other frames."""
    with trio.fail_after(60):
        chunk = os.urandom(2**20)
        client, server = await real_pair(
            nursery,
            {"compression": None},
            {"compression": None, "message_queue_size": 1, "max_message_size": None},
        )
        sent = 0
        with trio.move_on_after(2) as scope:
            for _ in range(200):
                await client.send_message(chunk)
                sent += 1
        assert scope.cancelled_caught, "the sender was never blocked"
        assert client.closed is not None
        assert client.closed.code == 1006
        with pytest.raises(ConnectionClosedError) as info:
            await client.send_message("more")
        assert info.value.reason.code == 1006
        await client.aclose()  # fine on an aborted connection
        received = 0
        with pytest.raises(ConnectionClosedError) as info:
            while True:
                message = await server.get_message()
                assert message == chunk
                received += 1
        assert info.value.reason.code == 1006
        assert sent <= received <= sent + 1


# -- limits ----------------------------------------------------------------------------
@pytest.mark.parametrize("compression", [None, "deflate"])
@pytest.mark.parametrize("shape", ["whole", "fragmented", "random-whole"])
async def test_message_over_max_size_closes_1009(nursery: trio.Nursery, compression: str | None, shape: str) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        pair = await open_pair(
            nursery,
            {"compression": compression, "max_message_size": None, **NO_KEEPALIVE},
            {"compression": compression, "max_message_size": 2**20, **NO_KEEPALIVE},
        )
        size = 2**20 + 1
        message: Any
        if shape == "whole":
            message = b"a" * size
        elif shape == "random-whole":
            message = os.urandom(size)
        else:
            message = [b"a" * 2**17] * 8 + [b"a"]
        server_saw: list[BaseException] = []

        async def server_app() -> None:
            # The server's application reads (a fragmented message queues its
            # chunks; with nobody reading, backpressure would stop the reader).
            try:
                message = await pair.server.get_message()
            except ConnectionClosed as exc:
                server_saw.append(exc)
            else:
                raise AssertionError(f"the server got a message of {len(message)} bytes")

        nursery.start_soon(server_app)
        await pair.client.send_message(message)
        closed = await expect_closed(pair.client)  # the sender's view
        assert type(closed) is ConnectionClosedError
        assert closed.reason.code == 1009
        assert pair.server.closed is not None and pair.server.closed.code == 1009
        await trio.testing.wait_all_tasks_blocked()
        assert len(server_saw) == 1
        assert type(server_saw[0]) is ConnectionClosedError
        assert server_saw[0].reason.code == 1009  # type: ignore[attr-defined]


@pytest.mark.parametrize("compression", [None, "deflate"])
async def test_message_of_exactly_max_size_is_accepted(nursery: trio.Nursery, compression: str | None) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        opts = {"compression": compression, "max_message_size": 2**20, **NO_KEEPALIVE}
        pair = await open_pair(nursery, opts, opts)
        await pair.client.send_message(b"\x00" * 2**20)
        assert await pair.server.get_message() == b"\x00" * 2**20
        await pair.client.send_message(["é" * 2**18, "x" * 2**19])  # 2**20 bytes of UTF-8
        assert await pair.server.get_message() == "é" * 2**18 + "x" * 2**19


async def test_max_message_size_none_takes_big_messages(nursery: trio.Nursery) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        opts = {"max_message_size": None, **NO_KEEPALIVE}
        pair = await open_pair(nursery, opts, {**opts, "max_message_size": math.inf})
        message = os.urandom(6 * 2**20)  # bigger than the fast path's frame limit
        await pair.client.send_message(message)
        assert await pair.server.get_message() == message


# -- compression -------------------------------------------------------------------------
async def test_compressed_megabyte_of_zeros_arrives_intact(nursery: trio.Nursery) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        client_stream, server_stream = trio.testing.memory_stream_pair()
        counter = CountingStream(client_stream)
        pair = await open_pair(nursery, NO_KEEPALIVE, NO_KEEPALIVE, streams=(counter, server_stream))
        assert pair.client.compression and pair.server.compression
        before = counter.sent
        await pair.client.send_message(b"\0" * 2**20)
        assert await pair.server.get_message() == b"\0" * 2**20
        compressed = counter.sent - before
        assert compressed < 64 * 1024
        before = counter.sent
        await pair.client.send_message(b"\0" * 2**20, compress=False)
        assert await pair.server.get_message() == b"\0" * 2**20
        uncompressed = counter.sent - before
        assert uncompressed >= 2**20
        # Compression goes on after an uncompressed message (shared context stays in sync).
        before = counter.sent
        await pair.client.send_message("z" * 100_000)
        assert await pair.server.get_message() == "z" * 100_000
        assert counter.sent - before < 10_000


async def test_compress_false_for_fragmented_message(nursery: trio.Nursery) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        client_stream, server_stream = trio.testing.memory_stream_pair()
        counter = CountingStream(client_stream)
        pair = await open_pair(nursery, NO_KEEPALIVE, NO_KEEPALIVE, streams=(counter, server_stream))
        before = counter.sent
        await pair.client.send_message([b"\0" * 100_000] * 3, compress=False)
        assert await pair.server.get_message() == b"\0" * 300_000
        assert counter.sent - before >= 300_000
        before = counter.sent
        await pair.client.send_message([b"\0" * 100_000] * 3)
        assert await pair.server.get_message() == b"\0" * 300_000
        assert counter.sent - before < 10_000
        await pair.server.send_message(agen("a" * 50_000, "b" * 50_000), compress=False)
        assert await pair.client.get_message() == "a" * 50_000 + "b" * 50_000


async def test_compression_off_when_either_side_disables_it(nursery: trio.Nursery) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        pair = await open_pair(nursery, {"compression": None, **NO_KEEPALIVE}, NO_KEEPALIVE)
        assert not pair.client.compression and not pair.server.compression
        pair = await open_pair(nursery, NO_KEEPALIVE, {"compression": None, **NO_KEEPALIVE})
        assert not pair.client.compression and not pair.server.compression
        await pair.client.send_message(b"\0" * 1000, compress=True)  # compress=True without deflate is fine
        assert await pair.server.get_message() == b"\0" * 1000


async def test_compressed_bomb_from_trio_ws_client_closes_1009(nursery: trio.Nursery) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        pair = await open_pair(
            nursery,
            {"max_message_size": None, **NO_KEEPALIVE},
            {"max_message_size": 2**20, **NO_KEEPALIVE},
        )
        assert pair.client.compression
        await pair.client.send_message(b"\0" * (20 * 2**20))
        closed = await expect_closed(pair.client)
        assert closed.reason.code == 1009
        assert pair.server.closed is not None and pair.server.closed.code == 1009


def _deflate_bomb(size: int) -> bytes:
    """A raw-deflate stream of ``size`` zero bytes, sync-flushed, tail stripped (RFC 7692)."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    piece = b"\0" * 2**20
    parts = [compressor.compress(piece) for _ in range(size // len(piece))]
    parts.append(compressor.flush(zlib.Z_SYNC_FLUSH))
    data = b"".join(parts)
    assert data.endswith(b"\x00\x00\xff\xff")
    return data[:-4]


@pytest.mark.parametrize("fragmented", [False, True], ids=["one-frame", "fragmented"])
async def test_decompression_bomb_is_refused_without_inflating_it(nursery: trio.Nursery, fragmented: bool) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        bomb = _deflate_bomb(100 * 2**20)
        assert len(bomb) < 2**20  # a small frame...
        ws, raw, head = await server_with_raw_client(
            nursery, extensions=b"permessage-deflate", max_message_size=2**20, **NO_KEEPALIVE
        )
        assert b"permessage-deflate" in head.lower()
        assert ws.compression
        if fragmented:
            third = len(bomb) // 3
            pieces = [bomb[:third], bomb[third : 2 * third], bomb[2 * third :]]
            frames = [
                build_frame(OP_BINARY, pieces[0], fin=False, rsv1=True, mask=random_mask()),
                build_frame(OP_CONT, pieces[1], fin=False, mask=random_mask()),
                build_frame(OP_CONT, pieces[2], fin=True, mask=random_mask()),
            ]
        else:
            frames = [build_frame(OP_BINARY, bomb, rsv1=True, mask=random_mask())]
        tracemalloc.start()
        try:
            tracemalloc.reset_peak()
            for frame_bytes in frames:
                try:
                    await raw.stream.send_all(frame_bytes)
                except trio.BrokenResourceError:
                    break
            reply = await raw.read_frame()
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert reply is not None and reply.opcode == OP_CLOSE
        assert reply.close_code == 1009
        assert ws.closed is not None and ws.closed.code == 1009
        assert peak < 8 * 2**20, f"peak traced memory {peak:,} bytes while refusing the bomb"


# -- cancellation ------------------------------------------------------------------------
async def test_cancelled_get_message_leaves_connection_usable(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        pair = await open_pair(nursery, NO_KEEPALIVE, NO_KEEPALIVE)
        with trio.move_on_after(1) as scope:
            await pair.server.get_message()
        assert scope.cancelled_caught
        await pair.client.send_message("first")
        await pair.client.send_message("second")
        await trio.testing.wait_all_tasks_blocked()
        with trio.CancelScope() as cancelled:
            cancelled.cancel()
            await pair.server.get_message()  # cancelled before it takes anything
        assert await pair.server.get_message() == "first"
        assert await pair.server.get_message() == "second"


async def test_get_message_cancelled_mid_fragmented_message_loses_nothing(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    """A get_message cancelled after the first fragments arrived must not eat
    them: the next get_message returns the whole message, not its tail."""
    with trio.fail_after(TEST_TIMEOUT):
        opts = {"compression": None, **NO_KEEPALIVE}
        pair = await open_pair(nursery, opts, opts)
        gate = trio.Event()

        async def slow() -> AsyncIterator[str]:
            yield "part1-"
            yield "part2-"  # part1 goes out now
            await gate.wait()
            yield "part3"

        nursery.start_soon(pair.client.send_message, slow())
        with trio.move_on_after(1) as scope:
            await pair.server.get_message()
        assert scope.cancelled_caught
        gate.set()
        assert await pair.server.get_message() == "part1-part2-part3"


async def test_cancelled_receive_stream_chunk_is_not_lost(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        opts = {"compression": None, **NO_KEEPALIVE}
        pair = await open_pair(nursery, opts, opts)
        gate = trio.Event()

        async def slow() -> AsyncIterator[str]:
            yield "a"
            yield "b"
            await gate.wait()
            yield "c"

        nursery.start_soon(pair.client.send_message, slow())
        stream = pair.server.receive_stream()
        chunks = [await stream.__anext__()]
        with trio.move_on_after(1) as scope:
            chunks.append(await stream.__anext__())
        assert scope.cancelled_caught
        gate.set()
        chunks.extend([chunk async for chunk in stream])
        assert "".join(chunks) == "abc"  # type: ignore[arg-type]


async def test_concurrent_send_messages_are_not_interleaved(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        pair = await open_pair(nursery, NO_KEEPALIVE, NO_KEEPALIVE)
        started = trio.Event()

        async def fragmented(tag: str) -> AsyncIterator[str]:
            for i in range(5):
                if i == 2:
                    started.set()
                await trio.sleep(0.1)
                yield f"{tag}{i}"

        expected = {"".join(f"A{i}" for i in range(5)), "".join(f"C{i}" for i in range(5)), "B", "D" * 100_000}
        async with trio.open_nursery() as inner:
            inner.start_soon(pair.client.send_message, fragmented("A"))
            await started.wait()
            inner.start_soon(pair.client.send_message, "B")
            inner.start_soon(pair.client.send_message, fragmented("C"))
            inner.start_soon(pair.client.send_message, "D" * 100_000)
        received = {await pair.server.get_message() for _ in range(4)}
        assert received == expected


async def test_concurrent_get_messages_each_get_whole_messages(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        opts = {"compression": None, **NO_KEEPALIVE}
        pair = await open_pair(nursery, opts, opts)
        results: list[str | bytes] = []

        async def receive() -> None:
            results.append(await pair.server.get_message())

        async with trio.open_nursery() as inner:
            inner.start_soon(receive)
            inner.start_soon(receive)
            await trio.testing.wait_all_tasks_blocked()
            await pair.client.send_message(agen("x1", "x2", "x3"))
            await pair.client.send_message(agen(b"y1", b"y2"))
        assert sorted(results, key=repr) == sorted(["x1x2x3", b"y1y2"], key=repr)


# -- the peer vanishes -----------------------------------------------------------------
async def test_peer_vanishes_pending_get_message_raises_1006(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        pair = await open_pair(nursery, NO_KEEPALIVE, NO_KEEPALIVE)
        outcome: list[tuple[float, BaseException]] = []

        async def receive() -> None:
            try:
                await pair.client.get_message()
            except ConnectionClosed as exc:
                outcome.append((trio.current_time(), exc))

        async with trio.open_nursery() as inner:
            inner.start_soon(receive)
            await trio.testing.wait_all_tasks_blocked()
            start = trio.current_time()
            await trio.aclose_forcefully(pair.server_stream)
        when, exc = outcome[0]
        assert type(exc) is ConnectionClosedError
        assert exc.reason.code == 1006
        assert exc.reason.name == "ABNORMAL_CLOSURE"
        assert when - start < PROMPT
        assert pair.client.closed is not None and pair.client.closed.code == 1006
        with pytest.raises(ConnectionClosedError):
            await pair.client.send_message("x")
        await pair.client.aclose()  # no error


async def test_peer_resets_tcp_pending_get_message_raises_1006(nursery: trio.Nursery) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        ready = trio.Event()
        reset = trio.Event()

        async def raw_server(stream: trio.SocketStream) -> None:
            raw = RawPeer(stream, is_client=False)
            await raw.server_handshake()
            await raw.send_frame(OP_TEXT, b"hello")
            ready.set()
            await reset.wait()
            reset_on_close(stream)
            await stream.aclose()

        port = await raw_tcp_server(nursery, raw_server)
        ws = await trio_ws.connect_websocket(nursery, HOST, port, "/", use_ssl=False, **NO_KEEPALIVE)
        await ready.wait()
        assert await ws.get_message() == "hello"
        reset.set()
        start = trio.current_time()
        with pytest.raises(ConnectionClosedError) as info:
            await ws.get_message()
        assert trio.current_time() - start < REAL_PROMPT
        assert type(info.value) is ConnectionClosedError
        assert info.value.reason.code == 1006
        with pytest.raises(ConnectionClosedError):
            await ws.send_message("x")


async def test_send_to_vanished_peer_raises_connection_closed(nursery: trio.Nursery) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        pair = await open_pair(nursery, NO_KEEPALIVE, NO_KEEPALIVE)
        await trio.aclose_forcefully(pair.server_stream)
        with pytest.raises(ConnectionClosedError) as info:
            for _ in range(10):
                await pair.client.send_message(b"x" * 1000)
                await trio.lowlevel.checkpoint()
        assert type(info.value) is ConnectionClosedError
        assert info.value.reason.code == 1006


# -- no public call raises an ExceptionGroup -------------------------------------------------
async def _serve_handler(nursery: trio.Nursery, handler: Any, **options: Any) -> int:
    server = await nursery.start(partial(trio_ws.serve_websocket, handler, HOST, 0, None, **options))
    return int(server.port)


async def test_open_websocket_user_exception_escapes_as_itself(nursery: trio.Nursery) -> None:
    async def handler(request: trio_ws.WebSocketRequest) -> None:
        ws = await request.accept()
        async for message in ws:
            await ws.send_message(message)

    with trio.fail_after(TEST_TIMEOUT):
        port = await _serve_handler(nursery, handler)

        class Boom(Exception):
            pass

        with pytest.raises(Boom) as info:
            async with trio_ws.open_websocket(HOST, port, "/", use_ssl=False) as ws:
                await ws.send_message("hi")
                assert await ws.get_message() == "hi"
                raise Boom
        assert type(info.value) is Boom


@pytest.mark.parametrize("how", ["close-4000", "handler-raises", "server-reset"])
async def test_open_websocket_connection_closed_is_plain(nursery: trio.Nursery, how: str) -> None:
    async def handler(request: trio_ws.WebSocketRequest) -> None:
        ws = await request.accept()
        await ws.get_message()
        if how == "close-4000":
            await ws.aclose(4000, "bye")
        else:
            raise RuntimeError("handler failed")

    async def resetting(stream: trio.SocketStream) -> None:
        raw = RawPeer(stream, is_client=False)
        await raw.server_handshake()
        await raw.read_frame()
        reset_on_close(stream)
        await stream.aclose()

    expected_code = {"close-4000": 4000, "handler-raises": 1011, "server-reset": 1006}[how]
    with trio.fail_after(TEST_TIMEOUT):
        if how == "server-reset":
            port = await raw_tcp_server(nursery, resetting)
        else:
            port = await _serve_handler(nursery, handler)
        with pytest.raises(ConnectionClosedError) as info:
            async with trio_ws.open_websocket(HOST, port, "/", use_ssl=False) as ws:
                await ws.send_message("go")
                await ws.get_message()
        assert type(info.value) is ConnectionClosedError
        assert info.value.reason.code == expected_code


async def test_open_websocket_keepalive_timeout_is_plain(nursery: trio.Nursery) -> None:
    async def silent(stream: trio.SocketStream) -> None:
        raw = RawPeer(stream, is_client=False)
        await raw.server_handshake()
        await trio.sleep_forever()

    with trio.fail_after(TEST_TIMEOUT):
        port = await raw_tcp_server(nursery, silent)
        with pytest.raises(ConnectionClosedError) as info:
            async with trio_ws.open_websocket(
                HOST, port, "/", use_ssl=False, ping_interval=0.2, ping_timeout=0.2, disconnect_timeout=0.5
            ) as ws:
                await ws.get_message()
        assert type(info.value) is ConnectionClosedError
        assert info.value.reason.code == 1011


async def test_open_websocket_rejected_and_refused_are_plain(nursery: trio.Nursery) -> None:
    async def handler(request: trio_ws.WebSocketRequest) -> None:
        await request.reject(403, body=b"go away")

    with trio.fail_after(TEST_TIMEOUT):
        port = await _serve_handler(nursery, handler)
        with pytest.raises(trio_ws.ConnectionRejected) as info:
            async with trio_ws.open_websocket(HOST, port, "/", use_ssl=False):
                pass  # pragma: no cover
        assert type(info.value) is trio_ws.ConnectionRejected
        assert info.value.status_code == 403
        # A closed port.
        sock = trio.socket.socket()
        await sock.bind((HOST, 0))
        free_port = sock.getsockname()[1]
        sock.close()
        # trio-websocket reports this as HandshakeError; OSError is fine too. Never a group.
        with pytest.raises((OSError, trio_ws.HandshakeError)) as refused:
            async with trio_ws.open_websocket(HOST, free_port, "/", use_ssl=False):
                pass  # pragma: no cover
        assert_plain(refused.value)


async def test_open_websocket_cancelled_from_outside_is_quiet_and_prompt(nursery: trio.Nursery) -> None:
    """Cancelling the block closes the connection without an error and without
    sitting out disconnect_timeout: the server answers the close at once.
    Repeated, because the outcome may depend on the order in which the
    cancelled tasks run."""

    async def handler(request: trio_ws.WebSocketRequest) -> None:
        ws = await request.accept()
        async for _ in ws:
            pass

    with trio.fail_after(60):
        port = await _serve_handler(nursery, handler)
        for attempt in range(8):
            with trio.CancelScope() as scope:
                async with trio_ws.open_websocket(HOST, port, "/", use_ssl=False, disconnect_timeout=20) as ws:
                    # The deadline starts once the connection is open, so a slow
                    # handshake on a loaded machine cannot move the cancel into it.
                    scope.deadline = trio.current_time() + 0.05
                    await ws.get_message()
            elapsed = trio.current_time() - scope.deadline
            assert scope.cancelled_caught
            assert ws.closed is not None
            # Prompt means well before disconnect_timeout (20 s) would have ended it.
            assert elapsed < 5, f"attempt {attempt}: closing took {elapsed:.2f} s after the cancel"


async def test_connection_errors_are_plain_on_memory_pair(nursery: trio.Nursery) -> None:
    """Every call on a closed connection raises the exact ConnectionClosed subclass."""
    with trio.fail_after(TEST_TIMEOUT):
        pair = await open_pair(nursery, NO_KEEPALIVE, NO_KEEPALIVE)
        await pair.server.aclose(4003)
        calls: list[Callable[[], Awaitable[object]]] = [
            pair.client.get_message,
            partial(pair.client.send_message, "x"),
            partial(pair.client.send_message, agen("a", "b")),
            pair.client.ping,
            pair.client.pong,
        ]
        for call in calls:
            with pytest.raises(ConnectionClosed) as info:
                await call()
            assert type(info.value) is ConnectionClosedError
            assert info.value.reason.code == 4003
        with pytest.raises(ConnectionClosedError) as info:
            async for _ in pair.client.receive_stream():
                pass  # pragma: no cover
        assert type(info.value) is ConnectionClosedError


# -- trio-websocket's defect: a ping that arrives while we are closing -------------------------
@pytest.mark.parametrize("extra", ["ping", "ping-pong-text", "ping-delayed"])
async def test_ping_during_closing_handshake_does_not_leak_cancelled(nursery: trio.Nursery, extra: str) -> None:
    """The server answers our close frame with a ping (and more) before its own
    close frame. open_websocket must exit cleanly: no trio.Cancelled, no error."""
    seen: list[Frame] = []

    async def raw_server(stream: trio.SocketStream) -> None:
        raw = RawPeer(stream, is_client=False)
        await raw.server_handshake()
        while (frame := await raw.read_frame()) is not None:
            seen.append(frame)
            if frame.opcode == OP_TEXT:
                await raw.send_frame(OP_TEXT, frame.payload)
            elif frame.opcode == OP_CLOSE:
                await raw.send_frame(OP_PING, b"are you there")
                if extra == "ping-pong-text":
                    await raw.send_frame(OP_PONG, b"unsolicited")
                    await raw.send_frame(OP_TEXT, b"late message")
                if extra == "ping-delayed":
                    await trio.sleep(0.1)
                await raw.send_frame(OP_CLOSE, frame.payload)
                await stream.aclose()
                return

    with trio.fail_after(TEST_TIMEOUT):
        port = await raw_tcp_server(nursery, raw_server)
        escaped: BaseException | None = None
        try:
            async with trio_ws.open_websocket(HOST, port, "/", use_ssl=False, **NO_KEEPALIVE) as ws:
                await ws.send_message("hello")
                assert await ws.get_message() == "hello"
        except BaseException as exc:
            escaped = exc
        assert escaped is None, f"open_websocket raised {escaped!r}"
        await trio.lowlevel.checkpoint()  # we are not cancelled either
        assert ws.closed == CloseReason(1000, None)
        assert [frame.opcode for frame in seen] == [OP_TEXT, OP_CLOSE]  # no pong after our close


async def test_ping_during_closing_handshake_memory(nursery: trio.Nursery) -> None:
    """Same as above on a memory stream, with aclose instead of open_websocket."""
    with trio.fail_after(TEST_TIMEOUT):
        ws, raw = await client_with_raw_server(nursery, **NO_KEEPALIVE)

        async def server() -> None:
            frame = await raw.read_frame()
            assert frame is not None and frame.opcode == OP_CLOSE
            await raw.send_frame(OP_PING, b"x")
            await raw.send_frame(OP_CLOSE, frame.payload)
            await raw.stream.aclose()

        nursery.start_soon(server)
        await ws.aclose(4000, "closing")
        assert ws.closed == CloseReason(4000, "closing")


SEND_CALLS: dict[str, Callable[[WebSocketConnection], Awaitable[None]]] = {
    "send_message": lambda ws: ws.send_message("lost"),
    "send_message-bytes": lambda ws: ws.send_message(b"lost"),
    "send_message-fragments": lambda ws: ws.send_message(["lo", "st"]),
    "send_many": lambda ws: ws.send_many(["lost", b"lost"]),
    "ping": lambda ws: ws.ping(b"lost"),
    "pong": lambda ws: ws.pong(b"lost"),
}


@pytest.mark.parametrize("call", list(SEND_CALLS))
@pytest.mark.parametrize("transport", ["memory", "tcp"])
async def test_send_cancelled_before_writing_keeps_connection_open(
    nursery: trio.Nursery, call: str, transport: str
) -> None:
    # Called inside an already-cancelled scope: nothing reached the transport,
    # so there is nothing to take back and no reason to abort (1006).
    with trio.fail_after(TEST_TIMEOUT):
        if transport == "tcp":
            client, server = await real_pair(nursery)
        else:
            pair = await open_pair(nursery, {"ping_interval": None}, {"ping_interval": None})
            client, server = pair.client, pair.server
        with trio.CancelScope() as scope:
            scope.cancel()
            await SEND_CALLS[call](client)
        assert scope.cancelled_caught
        assert client.closed is None
        await client.send_message("after")
        assert await server.get_message() == "after"
        await client.ping(b"still answered")
        await client.aclose()
        assert client.closed is not None and client.closed.code == 1000


async def test_str_local_and_remote_as_trio_websocket_gives_them(nursery: trio.Nursery) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        pair = await open_pair(nursery, NO_KEEPALIVE, NO_KEEPALIVE)
        assert str(pair.client) == f"client-{pair.client.connection_id}"
        assert str(pair.server) == f"server-{pair.server.connection_id}"
        assert repr(pair.client).startswith("<WebSocketConnection #")
        # Over streams without a socket, local and remote are the stream's repr().
        assert pair.client.local == pair.client.remote == repr(pair.client_stream)
        assert pair.server.local == repr(pair.server_stream)
        await pair.client.aclose()


@pytest.mark.parametrize("together", [True, False], ids=["one-write", "two-writes"])
async def test_close_behind_a_full_queue_waits_for_the_reader_either_way(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock, together: bool
) -> None:
    # message_queue_size=0: one queued message fills the queue. A close frame
    # behind it is answered only once the application takes the message,
    # whether or not both frames arrived in the same read (trio-websocket's
    # behaviour, and a deterministic one).
    with trio.fail_after(TEST_TIMEOUT):
        server, raw, _ = await server_with_raw_client(nursery, message_queue_size=0, **NO_KEEPALIVE)
        message = build_frame(OP_TEXT, b"hi", mask=random_mask())
        close = build_frame(OP_CLOSE, close_payload(1000), mask=random_mask())
        if together:
            await raw.stream.send_all(message + close)
        else:
            await raw.stream.send_all(message)
            await trio.testing.wait_all_tasks_blocked()
            await raw.stream.send_all(close)
        with trio.move_on_after(5) as waited:
            await raw.read_frame()
        assert waited.cancelled_caught, "the close was answered while the queue was full"
        assert server.closed is None
        assert await server.get_message() == "hi"
        answer = await raw.read_frame()
        assert answer is not None and answer.opcode == OP_CLOSE and answer.close_code == 1000


def errors_logged(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [record for record in caplog.records if record.levelno >= logging.ERROR]


# -- properties --------------------------------------------------------------------
async def test_connection_id_and_repr(nursery: trio.Nursery) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        pair = await open_pair(nursery, client=NO_KEEPALIVE, server=NO_KEEPALIVE)
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
    with trio.fail_after(TEST_TIMEOUT):
        pair = await open_pair(nursery, client=NO_KEEPALIVE, server=NO_KEEPALIVE)
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
    with trio.fail_after(TEST_TIMEOUT):
        pairs = [
            await open_pair(nursery, client=NO_KEEPALIVE, server={**NO_KEEPALIVE, "compression": None})
            for _ in range(3)
        ]
        for pair in pairs:
            assert pair.server.shares_frames
            await pair.server.send_message(message)
        for pair in pairs:
            assert await pair.client.get_message() == "to everyone"
    assert message.frames_built == 1


async def test_prepared_message_from_a_client_is_masked_per_connection(nursery: trio.Nursery) -> None:
    message = PreparedMessage(b"\x00\x01binary")
    with trio.fail_after(TEST_TIMEOUT):
        ws, raw = await client_with_raw_server(nursery, **NO_KEEPALIVE)
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
    with trio.fail_after(TEST_TIMEOUT):
        pairs = [
            await open_pair(nursery, client=NO_KEEPALIVE, server={**NO_KEEPALIVE, "compression": settings})
            for _ in range(2)
        ]
        for pair in pairs:
            assert pair.server.compression
            assert pair.server.shares_frames is shares_frames
            await pair.server.send_message(message, compress=compress)
            await pair.server.send_message(message, compress=compress)  # twice: history must stay in sync
        for pair in pairs:
            assert await pair.client.get_message() == text
            assert await pair.client.get_message() == text
        # what goes on the wire: a raw client sees whether the frame is compressed
        ws, raw, _ = await server_with_raw_client(
            nursery, **NO_KEEPALIVE, extensions=b"permessage-deflate; client_max_window_bits", compression=settings
        )
        await ws.send_message(message, compress=compress)
        frame = await raw.read_frame()
    assert frame is not None and frame.rsv1 is rsv1 and frame.opcode == OP_TEXT
    assert message.frames_built == (1 if shared else 0)


async def test_prepared_message_after_close_is_connection_closed(nursery: trio.Nursery) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        pair = await open_pair(nursery, client=NO_KEEPALIVE, server=NO_KEEPALIVE)
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
        ws, raw, _ = await server_with_raw_client(owner, streams=streams, **{**NO_KEEPALIVE, **options})
        owner.cancel_scope.cancel()
    return ws, raw


async def test_close_after_reader_cancelled_skips_data_until_the_peer_close(
    autojump_clock: trio.testing.MockClock,
) -> None:
    with trio.fail_after(TEST_TIMEOUT):
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
    with trio.fail_after(TEST_TIMEOUT):
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
            ws, raw = await server_with_cancelled_reader((client, server), disconnect_timeout=20)

            async def peer() -> None:
                frame = await raw.read_frame()
                assert frame is not None and frame.opcode == OP_CLOSE
                reset_on_close(client)
                await client.aclose()

            start = trio.current_time()
            async with trio.open_nursery() as nursery:
                nursery.start_soon(peer)
                await ws.aclose()  # the reset must not escape from aclose()
    assert trio.current_time() - start < REAL_PROMPT
    assert ws.closed is not None and ws.closed.code == 1000


# -- failing while closing ---------------------------------------------------------
async def test_protocol_error_during_our_close_drops_the_connection_at_once(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        ws, raw, _ = await server_with_raw_client(nursery, **NO_KEEPALIVE, disconnect_timeout=10)

        async def peer() -> list[Frame]:
            frame = await raw.read_frame()
            assert frame is not None and frame.close_code == 4000
            await raw.stream.send_all(build_frame(0x3, b"reserved opcode", mask=random_mask()))
            return await raw.read_frames_until_eof()

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
    with trio.fail_after(TEST_TIMEOUT):
        ws, raw, _ = await server_with_raw_client(nursery, **NO_KEEPALIVE)
        await raw.send_frame(OP_PING, b"are you there")
        await raw.stream.aclose()  # gone before our pong can be written
        with pytest.raises(ConnectionClosedError) as info:
            await ws.get_message()
    assert info.value.reason.code == 1006
    assert errors_logged(caplog) == []


# -- queue full, then the transport dies -------------------------------------------
async def test_reader_blocked_on_a_full_queue_stops_when_the_transport_dies(nursery: trio.Nursery) -> None:
    """The reader is parked (queue full, so it reads nothing more) when a write finds the peer gone."""
    with trio.fail_after(TEST_TIMEOUT):
        ws, raw, _ = await server_with_raw_client(nursery, **NO_KEEPALIVE, message_queue_size=1)
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
    with trio.fail_after(TEST_TIMEOUT):
        ws, raw, _ = await server_with_raw_client(nursery, **NO_KEEPALIVE, message_queue_size=1)
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
    with trio.fail_after(TEST_TIMEOUT):
        ws, raw = await client_with_raw_server(nursery, **NO_KEEPALIVE, disconnect_timeout=10)
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
            ws, raw = await client_with_raw_server(
                nursery, streams=(client, server), **NO_KEEPALIVE, disconnect_timeout=20
            )
            start = trio.current_time()
            await raw.send_frame(OP_CLOSE, close_payload(4003))
            echo = await raw.read_frame()
            assert echo is not None and echo.close_code == 4003
            reset_on_close(server)
            await server.aclose()
            await ws.wait_closed()
    assert trio.current_time() - start < REAL_PROMPT
    assert ws.closed is not None and ws.closed.code == 4003
    assert errors_logged(caplog) == []


# -- keepalive while closing --------------------------------------------------------
async def test_no_keepalive_ping_during_a_closing_handshake(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        ws, raw, _ = await server_with_raw_client(nursery, ping_interval=1, ping_timeout=1, disconnect_timeout=5)
        await ws.aclose()  # the raw client never answers: waits 5 s, several ping intervals
        frames = await raw.read_frames_until_eof()
    assert [frame.opcode for frame in frames] == [OP_CLOSE]
    assert ws.closed is not None and ws.closed.code == 1000


async def test_keepalive_ping_pending_when_the_peer_closes_is_not_a_timeout(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    with trio.fail_after(2 * TEST_TIMEOUT):
        ws, raw, _ = await server_with_raw_client(nursery, ping_interval=1, ping_timeout=20)
        ping = await raw.read_frame()  # at t=1; never answered
        assert ping is not None and ping.opcode == OP_PING
        await trio.sleep(2)
        await raw.send_frame(OP_CLOSE, close_payload(4004))
        frames = await raw.read_frames_until_eof()
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
    with trio.fail_after(TEST_TIMEOUT):
        ws, raw = await client_with_raw_server(nursery, streams=(exploding, server_stream), **NO_KEEPALIVE)
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
