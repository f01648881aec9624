"""Tests of the client side: open_websocket*, connect_websocket*, wrap_*_stream.

Servers are either trio_ws's own (serve_websocket, serve_websocket_unix) or raw
servers written here, over TCP or memory streams, that misbehave on purpose.
"""

from __future__ import annotations

import math
import socket
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing
from support import rawhttp
from support.rawframes import accept_for
from support.sockets import flatten, reset_on_close, unix_socket_path

import trio_ws
from trio_ws import (
    ConnectionClosed,
    ConnectionRejected,
    ConnectionTimeout,
    DisconnectionTimeout,
    HandshakeError,
    InvalidURL,
    WebSocketRequest,
    WebSocketServer,
)

#: Hang guard for one test. Timing checks below compare against timeouts and
#: holds that are far longer (10-30 s) than their bound (5 s), so that a loaded
#: machine cannot break them and a wait for the wrong timeout still fails.
TIMEOUT = 30.0
#: A close or timeout counts as prompt within this (they take milliseconds).
PROMPT = 5.0
HOST = "127.0.0.1"

RawHandler = Callable[[trio.SocketStream], Awaitable[None]]


# -- helpers -----------------------------------------------------------------


async def echo_handler(request: WebSocketRequest) -> None:
    ws = await request.accept()
    async for message in ws:
        await ws.send_message(message)


@asynccontextmanager
async def serving(handler: Callable[[WebSocketRequest], Awaitable[None]], **options: Any) -> AsyncIterator[int]:
    async with trio.open_nursery() as nursery:
        server: WebSocketServer = await nursery.start(
            partial(trio_ws.serve_websocket, handler, "127.0.0.1", 0, None, **options)
        )
        yield server.port
        nursery.cancel_scope.cancel()


@asynccontextmanager
async def raw_server(handler: RawHandler) -> AsyncIterator[int]:
    """A plain TCP server on 127.0.0.1 running ``handler`` per connection; yields its port."""
    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(partial(trio.serve_tcp, handler, 0, host="127.0.0.1"))
        yield listeners[0].socket.getsockname()[1]
        nursery.cancel_scope.cancel()


async def read_head(stream: trio.abc.Stream) -> tuple[bytes, bytes]:
    """Read an HTTP request head; return it and the bytes after it."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = await stream.receive_some(4096)
        if not chunk:
            raise AssertionError(f"client closed before finishing its request: {data!r}")
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    return head, rest


def request_key(head: bytes) -> bytes:
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"sec-websocket-key":
            return value.strip()
    raise AssertionError(f"no Sec-WebSocket-Key in {head!r}")


def switching_protocols(accept: bytes) -> bytes:
    return (
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Accept: " + accept + b"\r\n\r\n"
    )


async def drain(stream: trio.abc.Stream) -> bytes:
    data = bytearray()
    while True:
        try:
            chunk = await stream.receive_some(4096)
        except trio.BrokenResourceError:
            break
        if not chunk:
            break
        data += chunk
    return bytes(data)


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- URLs and connecting -------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/",
        "ftp://example.com/",
        "not a url",
        "ws://",
        "ws:///path",
        "ws://127.0.0.1:99999/",
        "ws://127.0.0.1:port/",
    ],
)
async def test_bad_url_raises_invalid_url(url: str) -> None:
    with trio.fail_after(TIMEOUT):
        with pytest.raises(InvalidURL) as info:
            async with trio_ws.open_websocket_url(url):
                pytest.fail("connected to a bad URL")
        assert isinstance(info.value, ValueError)
        async with trio.open_nursery() as nursery:
            with pytest.raises(InvalidURL):
                await trio_ws.connect_websocket_url(nursery, url)


async def test_connection_refused_is_handshake_error_from_oserror() -> None:
    # As in trio-websocket: open_websocket* report a failed TCP connection as
    # HandshakeError (chained from the OSError); connect_websocket raises the OSError.
    port = free_port()
    with trio.fail_after(TIMEOUT):
        with pytest.raises(trio_ws.HandshakeError) as info:
            async with trio_ws.open_websocket_url(f"ws://127.0.0.1:{port}/"):
                pytest.fail("connected to a closed port")
        assert isinstance(info.value.__cause__, OSError)
        with pytest.raises(trio_ws.HandshakeError) as info:
            async with trio_ws.open_websocket("127.0.0.1", port, "/", use_ssl=False):
                pytest.fail("connected to a closed port")
        assert isinstance(info.value.__cause__, OSError)
        async with trio.open_nursery() as nursery:
            with pytest.raises(OSError):
                await trio_ws.connect_websocket(nursery, "127.0.0.1", port, "/", use_ssl=False)


async def test_refused_address_literal_fails_as_a_refused_host_name() -> None:
    # An IP address is connected to directly, a host name through
    # trio.open_tcp_stream: a refusal must read the same either way.
    port = free_port()
    messages = []
    with trio.fail_after(TIMEOUT):
        for host in ("127.0.0.1", "localhost"):
            async with trio.open_nursery() as nursery:
                with pytest.raises(OSError) as info:
                    await trio_ws.connect_websocket(nursery, host, port, "/", use_ssl=False, proxy=None)
            messages.append(str(info.value).replace(host, "HOST"))
            with pytest.raises(trio_ws.HandshakeError, match="Connection refused"):
                async with trio_ws.open_websocket(host, port, "/", use_ssl=False, proxy=None):
                    pytest.fail("connected to a closed port")  # pragma: no cover
    assert messages == [f"all attempts to connect to HOST:{port} failed"] * 2


async def test_ipv6_address_literal(nursery: trio.Nursery) -> None:
    async def echo(request: trio_ws.WebSocketRequest) -> None:
        ws = await request.accept()
        await ws.send_message(await ws.get_message())

    with trio.fail_after(TIMEOUT):
        try:
            server = await nursery.start(partial(trio_ws.serve_websocket, echo, "::1", 0, None))
        except OSError as err:  # pragma: no cover - a host without IPv6 loopback
            pytest.skip(f"no IPv6 loopback: {err}")
        async with trio_ws.open_websocket_url(f"ws://[::1]:{server.port}/", proxy=None) as ws:
            await ws.send_message("over IPv6")
            assert await ws.get_message() == "over IPv6"
            assert ws.remote == trio_ws.Endpoint("::1", server.port, False)
        closed = free_port()
        with pytest.raises(OSError, match=rf"^all attempts to connect to \[::1\]:{closed} failed$"):
            await trio_ws.connect_websocket(nursery, "::1", closed, "/", use_ssl=False, proxy=None)


async def test_silent_server_raises_connection_timeout() -> None:
    got_request = trio.Event()

    async def silent(stream: trio.SocketStream) -> None:
        await read_head(stream)
        got_request.set()
        await drain(stream)

    with trio.fail_after(TIMEOUT):
        async with raw_server(silent) as port:
            start = trio.current_time()
            with pytest.raises(ConnectionTimeout):
                async with trio_ws.open_websocket_url(f"ws://127.0.0.1:{port}/", connect_timeout=0.3):
                    pytest.fail("connected to a silent server")
            elapsed = trio.current_time() - start
            assert got_request.is_set()
            assert 0.25 <= elapsed < PROMPT  # the 0.3 s timeout, not the 10 s default
            assert isinstance(ConnectionTimeout("x"), HandshakeError)


async def test_silent_server_connect_websocket_times_out() -> None:
    async def silent(stream: trio.SocketStream) -> None:
        await drain(stream)

    with trio.fail_after(TIMEOUT):
        async with raw_server(silent) as port, trio.open_nursery() as nursery:
            with pytest.raises(ConnectionTimeout):
                await trio_ws.connect_websocket(nursery, "127.0.0.1", port, "/", use_ssl=False, connect_timeout=0.3)


async def test_rejection_with_status_headers_and_body() -> None:
    async def not_found(stream: trio.SocketStream) -> None:
        await read_head(stream)
        await stream.send_all(
            b"HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\nX-Reason: nope\r\n"
            b"Content-Length: 9\r\n\r\nnot here!"
        )
        await drain(stream)

    with trio.fail_after(TIMEOUT):
        async with raw_server(not_found) as port:
            with pytest.raises(ConnectionRejected) as info:
                async with trio_ws.open_websocket_url(f"ws://127.0.0.1:{port}/missing"):
                    pytest.fail("connected despite a 404")
    err = info.value
    assert err.status_code == 404
    assert (b"x-reason", b"nope") in err.headers
    assert (b"content-type", b"text/plain") in err.headers
    assert err.body == b"not here!"
    assert isinstance(err, HandshakeError)


async def test_rejection_body_read_until_close() -> None:
    async def forbidden(stream: trio.SocketStream) -> None:
        await read_head(stream)
        await stream.send_all(b"HTTP/1.1 403 Forbidden\r\nConnection: close\r\n\r\ngo away")
        await stream.aclose()

    with trio.fail_after(TIMEOUT):
        async with raw_server(forbidden) as port:
            with pytest.raises(ConnectionRejected) as info:
                async with trio_ws.open_websocket_url(f"ws://127.0.0.1:{port}/"):
                    pytest.fail("connected despite a 403")
    assert info.value.status_code == 403
    assert info.value.body == b"go away"


async def test_wrong_accept_key_raises_handshake_error() -> None:
    async def liar(stream: trio.SocketStream) -> None:
        await read_head(stream)
        await stream.send_all(switching_protocols(accept_for(b"some other key==")))
        await drain(stream)

    with trio.fail_after(TIMEOUT):
        async with raw_server(liar) as port:
            with pytest.raises(HandshakeError) as info:
                async with trio_ws.open_websocket_url(f"ws://127.0.0.1:{port}/"):
                    pytest.fail("accepted a wrong Sec-WebSocket-Accept")
    assert not isinstance(info.value, (ConnectionRejected, ConnectionTimeout))


async def test_server_closing_during_handshake_raises_handshake_error() -> None:
    async def hang_up(stream: trio.SocketStream) -> None:
        await read_head(stream)
        await stream.aclose()

    with trio.fail_after(TIMEOUT):
        async with raw_server(hang_up) as port:
            with pytest.raises(HandshakeError) as info:
                async with trio_ws.open_websocket_url(f"ws://127.0.0.1:{port}/", connect_timeout=3):
                    pytest.fail("connected to a server that hung up")
    assert not isinstance(info.value, ConnectionTimeout)


async def test_frame_in_same_packet_as_101_is_received() -> None:
    async def eager(stream: trio.SocketStream) -> None:
        head, _ = await read_head(stream)
        # The 101 and an unmasked text frame "hi" in one write.
        await stream.send_all(switching_protocols(accept_for(request_key(head))) + b"\x81\x02hi")
        await drain(stream)

    with trio.fail_after(TIMEOUT):
        async with raw_server(eager) as port, trio.open_nursery() as nursery:
            ws = await trio_ws.connect_websocket_url(
                nursery, f"ws://127.0.0.1:{port}/", compression=None, disconnect_timeout=0.3
            )
            assert await ws.get_message() == "hi"
            nursery.cancel_scope.cancel()


# -- negotiation and headers ------------------------------------------------------------


async def test_subprotocol_negotiation() -> None:
    seen: dict[str, Any] = {}

    async def handler(request: WebSocketRequest) -> None:
        seen["proposed"] = request.proposed_subprotocols
        with pytest.raises(ValueError):
            await request.accept(subprotocol="not-offered")
        ws = await request.accept(subprotocol="chat.v1")
        seen["server_subprotocol"] = ws.subprotocol
        await ws.send_message("hello")

    with trio.fail_after(TIMEOUT):
        async with (
            serving(handler) as port,
            trio_ws.open_websocket_url(f"ws://127.0.0.1:{port}/", subprotocols=["chat.v2", "chat.v1"]) as ws,
        ):
            assert ws.subprotocol == "chat.v1"
            assert await ws.get_message() == "hello"
    assert tuple(seen["proposed"]) == ("chat.v2", "chat.v1")
    assert seen["server_subprotocol"] == "chat.v1"


async def test_no_subprotocol_when_server_picks_none() -> None:
    seen: dict[str, Any] = {}

    async def handler(request: WebSocketRequest) -> None:
        seen["proposed"] = tuple(request.proposed_subprotocols)
        ws = await request.accept()
        seen["server_subprotocol"] = ws.subprotocol
        await ws.send_message("hello")

    with trio.fail_after(TIMEOUT):
        async with serving(handler) as port:
            async with trio_ws.open_websocket_url(f"ws://127.0.0.1:{port}/", subprotocols=["chat"]) as ws:
                assert await ws.get_message() == "hello"
                assert ws.subprotocol is None
            async with trio_ws.open_websocket_url(f"ws://127.0.0.1:{port}/") as ws:
                assert await ws.get_message() == "hello"
    assert seen["proposed"] == ()
    assert seen["server_subprotocol"] is None


async def test_extra_headers_reach_the_server() -> None:
    seen: dict[str, Any] = {}

    async def handler(request: WebSocketRequest) -> None:
        seen["headers"] = request.headers
        ws = await request.accept(extra_headers=[("X-Server", "yes")])
        seen["handshake_headers"] = ws.handshake_headers
        await ws.send_message("done")

    with trio.fail_after(TIMEOUT):
        async with (
            serving(handler) as port,
            trio_ws.open_websocket_url(
                f"ws://127.0.0.1:{port}/", extra_headers=[("X-Token", "abc123"), (b"X-Bytes", b"raw")]
            ) as ws,
        ):
            assert await ws.get_message() == "done"
            assert (b"x-server", b"yes") in ws.handshake_headers
    headers = seen["headers"]
    assert all(isinstance(name, bytes) and isinstance(value, bytes) for name, value in headers)
    assert (b"x-token", b"abc123") in headers
    assert (b"x-bytes", b"raw") in headers
    assert (b"x-token", b"abc123") in seen["handshake_headers"]


# -- exceptions and closing ----------------------------------------------------------------


async def test_exception_in_block_propagates_unwrapped_and_server_sees_1000() -> None:
    server_saw: list[int] = []
    server_done = trio.Event()

    async def handler(request: WebSocketRequest) -> None:
        ws = await request.accept()
        try:
            await ws.get_message()
        except ConnectionClosed as err:
            server_saw.append(err.reason.code)
        finally:
            server_done.set()

    class Boom(Exception):
        pass

    with trio.fail_after(TIMEOUT):
        async with serving(handler) as port:
            with pytest.raises(Boom) as info:
                async with trio_ws.open_websocket_url(f"ws://127.0.0.1:{port}/"):
                    raise Boom("from the block")
            assert type(info.value) is Boom
            assert str(info.value) == "from the block"
            await server_done.wait()
    assert server_saw == [1000]


async def test_cancellation_in_block_propagates_and_closes_promptly() -> None:
    server_saw: list[int] = []
    server_done = trio.Event()

    async def handler(request: WebSocketRequest) -> None:
        ws = await request.accept()
        try:
            await ws.get_message()
        except ConnectionClosed as err:
            server_saw.append(err.reason.code)
        finally:
            server_done.set()

    with trio.fail_after(TIMEOUT):
        async with serving(handler) as port:
            with trio.CancelScope() as scope:
                async with trio_ws.open_websocket_url(f"ws://127.0.0.1:{port}/", disconnect_timeout=20) as ws:
                    start = trio.current_time()
                    scope.cancel()
                    await trio.sleep_forever()
            elapsed = trio.current_time() - start
            assert scope.cancelled_caught
            assert ws.closed is not None
            await server_done.wait()
    # The server answers the close frame at once, so closing after a
    # cancellation need not wait for disconnect_timeout, and the server sees
    # a proper close rather than a dropped connection (1006).
    assert server_saw == [1000]
    assert elapsed < PROMPT


OPEN_APIS = ["host-port", "url", "unix"]


@asynccontextmanager
async def echo_opener(api: str, tmp_path: Any) -> AsyncIterator[Callable[..., Any]]:
    """An echo server, and a function that opens it with one of the open_websocket* managers."""
    async with trio.open_nursery() as nursery:
        if api == "unix":
            path = str(tmp_path / "ws.sock")
            await nursery.start(partial(trio_ws.serve_websocket_unix, echo_handler, path))
            yield partial(trio_ws.open_websocket_unix, path, "/")
        else:
            server = await nursery.start(partial(trio_ws.serve_websocket, echo_handler, "127.0.0.1", 0, None))
            if api == "url":
                yield partial(trio_ws.open_websocket_url, f"ws://127.0.0.1:{server.port}/")
            else:
                yield partial(trio_ws.open_websocket, "127.0.0.1", server.port, "/", use_ssl=False)
        nursery.cancel_scope.cancel()


@pytest.mark.parametrize("api", OPEN_APIS)
async def test_exception_raised_while_block_is_cancelled_is_not_lost(api: str, tmp_path: Any) -> None:
    # trio issue #1559's pattern: an outer scope cancels the block, which
    # raises its own exception from a finally clause. That exception must come
    # out; it must not be replaced by a Cancelled that the scope then swallows.
    class Boom(Exception):
        pass

    with trio.fail_after(TIMEOUT):
        async with echo_opener(api, tmp_path) as open_ws:
            with pytest.raises(Boom) as info, trio.move_on_after(0.05):
                async with open_ws() as ws:
                    try:
                        await trio.sleep_forever()
                    finally:
                        raise Boom("from finally")
            assert isinstance(info.value.__context__, trio.Cancelled)
            assert ws.closed is not None and ws.closed.code == 1000


@pytest.mark.parametrize("api", ["host-port", "url"])
async def test_exception_raised_while_block_is_cancelled_with_autojump_clock(
    api: str, tmp_path: Any, autojump_clock: trio.testing.MockClock
) -> None:
    # The same with the virtual clock trio-websocket's own test uses (the Unix
    # server's set-up runs in a thread, which that clock would skip over).
    with trio.fail_after(TIMEOUT):
        async with echo_opener(api, tmp_path) as open_ws:
            with pytest.raises(ValueError), trio.move_on_after(1):
                async with open_ws():
                    try:
                        await trio.sleep_forever()
                    finally:
                        raise ValueError


async def test_normal_exit_closes_with_1000() -> None:
    with trio.fail_after(TIMEOUT):
        async with serving(echo_handler) as port:
            async with trio_ws.open_websocket_url(f"ws://127.0.0.1:{port}/") as ws:
                await ws.send_message("x")
                assert await ws.get_message() == "x"
            assert ws.closed is not None
            assert ws.closed.code == 1000
            with pytest.raises(ConnectionClosed):
                await ws.send_message("after close")


async def test_disconnection_timeout_when_server_ignores_close() -> None:
    received: list[bytes] = []
    server_saw_eof = trio.Event()

    async def deaf(stream: trio.SocketStream) -> None:
        head, rest = await read_head(stream)
        await stream.send_all(switching_protocols(accept_for(request_key(head))))
        received.append(rest + await drain(stream))  # never answers the close frame
        server_saw_eof.set()

    with trio.fail_after(TIMEOUT):
        async with raw_server(deaf) as port:
            start = trio.current_time()
            with pytest.raises(DisconnectionTimeout):
                async with trio_ws.open_websocket_url(
                    f"ws://127.0.0.1:{port}/", disconnect_timeout=0.3, compression=None
                ) as ws:
                    start = trio.current_time()
            elapsed = trio.current_time() - start
            assert 0.25 <= elapsed < PROMPT  # the 0.3 s timeout, not the 10 s default
            # The transport was closed: the raw server sees EOF.
            with trio.fail_after(1):
                await server_saw_eof.wait()
    data = received[0]
    assert data[:1] == b"\x88"  # the client did send its close frame (masked)
    assert ws.closed is not None


class LingeringServer:
    """A raw server that answers the client's close frame, then keeps TCP open for ``hold`` seconds.

    RFC 6455 §7.1.1 asks the server to close TCP first, so a client waits for
    that EOF after the close frames; this server makes the wait long. With
    ``answer=False`` it never answers the close frame at all.
    """

    def __init__(self, hold: float, *, answer: bool = True) -> None:
        self.hold = hold
        self.answer = answer
        self.close_frames: list[bytes] = []
        self.answered = trio.Event()
        self.answered_at = math.inf
        self.close_seen = trio.Event()
        self.close_seen_at = math.inf

    async def __call__(self, stream: trio.SocketStream) -> None:
        head, data = await read_head(stream)
        await stream.send_all(switching_protocols(accept_for(request_key(head))))
        while len(data) < 8:  # the client's masked close frame: 2 + 4 (key) + 2 (code)
            chunk = await stream.receive_some(4096)
            if not chunk:
                return
            data += chunk
        assert data[0] == 0x88, data
        self.close_frames.append(data)
        self.close_seen_at = trio.current_time()
        self.close_seen.set()
        if self.answer:
            await stream.send_all(b"\x88\x02\x03\xe8")  # close, 1000, unmasked
            self.answered_at = trio.current_time()
            self.answered.set()
        with trio.move_on_after(self.hold):
            await drain(stream)


async def test_cancel_while_waiting_for_the_servers_eof_returns_promptly() -> None:
    # The block ended, the close frames were exchanged and the client waits
    # for the server to close TCP; cancelling now must not wait that out.
    server = LingeringServer(hold=20.0)
    with trio.fail_after(TIMEOUT):
        async with raw_server(server) as port, trio.open_nursery() as nursery:
            with trio.CancelScope() as scope:

                async def cancel_when_answered() -> None:
                    await server.answered.wait()
                    # Once every task is blocked the client has read the
                    # server's close frame and waits for EOF (not a guess in time).
                    await trio.testing.wait_all_tasks_blocked()
                    scope.cancel()

                nursery.start_soon(cancel_when_answered)
                async with trio_ws.open_websocket_url(
                    f"ws://127.0.0.1:{port}/", disconnect_timeout=20, compression=None
                ) as ws:
                    pass
            assert scope.cancelled_caught
            waited = trio.current_time() - server.answered_at
    assert waited < PROMPT, f"returned {waited:.2f} s after the close frames (the server holds TCP 20 s)"
    assert ws.closed is not None and ws.closed.code == 1000


@pytest.mark.parametrize("disconnect_timeout", [20.0, None])
async def test_block_cancelled_closes_without_waiting_for_the_servers_eof(disconnect_timeout: float | None) -> None:
    # Cancelled inside the block: the close frames are still exchanged (the
    # server sees 1000), but the wait for the server's EOF is skipped.
    server = LingeringServer(hold=20.0)
    with trio.fail_after(TIMEOUT):
        async with raw_server(server) as port:
            with trio.move_on_after(0.05):
                async with trio_ws.open_websocket_url(
                    f"ws://127.0.0.1:{port}/", disconnect_timeout=disconnect_timeout, compression=None
                ) as ws:
                    await trio.sleep_forever()
            waited = trio.current_time() - server.answered_at
    assert waited < PROMPT, f"returned {waited:.2f} s after the close frames (the server holds TCP 20 s)"
    assert ws.closed is not None and ws.closed.code == 1000
    assert server.close_frames[0][:2] == b"\x88\x82"  # masked close frame with a 2-byte code


async def test_close_without_deadline_is_cancellable() -> None:
    # disconnect_timeout=None and a server that never answers the close frame:
    # the wait has no limit of its own, but cancelling it ends it at once.
    server = LingeringServer(hold=TIMEOUT, answer=False)
    with trio.fail_after(TIMEOUT):
        async with raw_server(server) as port, trio.open_nursery() as nursery:
            with trio.CancelScope() as scope:

                async def cancel_when_close_seen() -> None:
                    await server.close_seen.wait()
                    scope.cancel()

                nursery.start_soon(cancel_when_close_seen)
                async with trio_ws.open_websocket_url(
                    f"ws://127.0.0.1:{port}/", disconnect_timeout=None, compression=None
                ) as ws:
                    pass
            assert scope.cancelled_caught
            waited = trio.current_time() - server.close_seen_at
    assert waited < PROMPT
    assert ws.closed is not None


async def test_cancelled_block_close_without_deadline_ends_after_the_grace_period() -> None:
    # Cancelled inside the block, the close runs shielded (so the close frame
    # still goes out); with disconnect_timeout=None it is bounded by
    # CANCELLED_CLOSE_GRACE instead of waiting forever.
    from trio_ws.connection import CANCELLED_CLOSE_GRACE

    server = LingeringServer(hold=TIMEOUT, answer=False)
    with trio.fail_after(TIMEOUT):
        async with raw_server(server) as port:
            with trio.move_on_after(0.05) as scope:
                async with trio_ws.open_websocket_url(
                    f"ws://127.0.0.1:{port}/", disconnect_timeout=None, compression=None
                ) as ws:
                    await trio.sleep_forever()
            assert scope.cancelled_caught
            waited = trio.current_time() - server.close_seen_at
    assert CANCELLED_CLOSE_GRACE - 0.2 <= waited < CANCELLED_CLOSE_GRACE + PROMPT
    assert ws.closed is not None


# -- connect_websocket and wrapped streams ------------------------------------------------------


async def test_connect_websocket_runs_in_callers_nursery() -> None:
    with trio.fail_after(TIMEOUT):
        async with serving(echo_handler) as port, trio.open_nursery() as nursery:
            ws = await trio_ws.connect_websocket(nursery, "127.0.0.1", port, "/path?q=1", use_ssl=False)
            assert ws.path == "/path?q=1"
            assert ws.is_client
            await ws.send_message(b"bytes")
            assert await ws.get_message() == b"bytes"
            await ws.aclose()
            assert ws.closed is not None
            assert ws.closed.code == 1000
        # The nursery exited on its own: the connection's tasks ended with aclose.


async def test_connect_websocket_url() -> None:
    with trio.fail_after(TIMEOUT):
        async with serving(echo_handler) as port, trio.open_nursery() as nursery:
            ws = await trio_ws.connect_websocket_url(nursery, f"ws://127.0.0.1:{port}/u")
            await ws.send_message("via url")
            assert await ws.get_message() == "via url"
            await ws.aclose()


async def test_wrap_streams_over_memory_stream_pair() -> None:
    seen: dict[str, Any] = {}
    client_stream, server_stream = trio.testing.memory_stream_pair()

    async def server_side(nursery: trio.Nursery) -> None:
        request = await trio_ws.wrap_server_stream(nursery, server_stream)
        assert isinstance(request, WebSocketRequest)
        seen["path"] = request.path
        seen["proposed"] = tuple(request.proposed_subprotocols)
        ws = await request.accept(subprotocol="mem")
        seen["is_server"] = ws.is_server
        async for message in ws:
            await ws.send_message(message)
        seen["server_closed"] = ws.closed.code if ws.closed else None

    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(server_side, nursery)
            ws = await trio_ws.wrap_client_stream(nursery, client_stream, "localhost", "/mem", subprotocols=["mem"])
            assert ws.subprotocol == "mem"
            await ws.send_message("in memory")
            assert await ws.get_message() == "in memory"
            await ws.send_message(b"\xff" * 1000)
            assert await ws.get_message() == b"\xff" * 1000
            assert isinstance(ws.local, str)
            assert isinstance(ws.remote, str)
            await ws.aclose()
            assert ws.closed is not None
            assert ws.closed.code == 1000
    assert seen["path"] == "/mem"
    assert seen["proposed"] == ("mem",)
    assert seen["is_server"] is True
    assert seen["server_closed"] == 1000


async def test_wrap_server_stream_garbage_raises_handshake_error() -> None:
    client_stream, server_stream = trio.testing.memory_stream_pair()
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            await client_stream.send_all(b"garbage garbage\r\n\r\n")
            with pytest.raises(HandshakeError):
                await trio_ws.wrap_server_stream(nursery, server_stream)
            response = await drain(client_stream)
            assert response.startswith(b"HTTP/1.1 400")


async def test_wrap_server_stream_silent_client_times_out() -> None:
    _client_stream, server_stream = trio.testing.memory_stream_pair()
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            start = trio.current_time()
            with pytest.raises(ConnectionTimeout):
                await trio_ws.wrap_server_stream(nursery, server_stream, connect_timeout=0.3)
            assert 0.25 <= trio.current_time() - start < PROMPT  # not the 10 s default


async def test_wrap_client_stream_silent_server_times_out() -> None:
    client_stream, _server_stream = trio.testing.memory_stream_pair()
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            with pytest.raises(ConnectionTimeout):
                await trio_ws.wrap_client_stream(nursery, client_stream, "localhost", "/", connect_timeout=0.3)


async def test_informational_status_as_the_only_answer_is_rejected() -> None:
    # A 1xx before the 101 is skipped (see test_gaps_client), but a server
    # whose only answer is a 1xx refused the upgrade: ConnectionRejected with
    # that status and body=None (a 1xx has none), as trio-websocket raises.
    async def continue_then_close(stream: trio.SocketStream) -> None:
        await read_head(stream)
        await stream.send_all(b"HTTP/1.1 100 Continue\r\nX-Info: yes\r\n\r\n")

    with trio.fail_after(TIMEOUT):
        async with raw_server(continue_then_close) as port:
            with pytest.raises(ConnectionRejected) as info:
                async with trio_ws.open_websocket("127.0.0.1", port, "/", use_ssl=False):
                    pass
    assert info.value.status_code == 100
    assert info.value.body is None
    assert info.value.headers == ((b"x-info", b"yes"),)
    assert repr(info.value) == "ConnectionRejected<status_code=100>"


async def test_servers_extra_headers_come_first_in_handshake_headers() -> None:
    # The order trio-websocket gives: the application's headers, then the protocol's.
    async def handler(request: WebSocketRequest) -> None:
        ws = await request.accept(extra_headers=[(b"X-Test-Header", b"one"), ("X-Other", "two")])
        await ws.get_message()

    with trio.fail_after(TIMEOUT):
        async with serving(handler) as port, trio_ws.open_websocket("127.0.0.1", port, "/", use_ssl=False) as ws:
            assert ws.handshake_headers[:2] == [(b"x-test-header", b"one"), (b"x-other", b"two")]
            names = [name for name, _ in ws.handshake_headers]
            assert b"sec-websocket-accept" in names[2:]


async def test_ssl_context_with_a_ws_url_is_value_error() -> None:
    # A TLS context for a plain-text URL is a mistake, reported as
    # trio-websocket reports it, before any connection is attempted.
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    url = f"ws://127.0.0.1:{free_port()}/"
    with pytest.raises(ValueError, match=r"^SSL context must be None for ws: URL scheme$"):
        async with trio_ws.open_websocket_url(url, ssl_context=context):
            pass
    async with trio.open_nursery() as nursery:
        with pytest.raises(ValueError, match=r"^SSL context must be None for ws: URL scheme$"):
            await trio_ws.connect_websocket_url(nursery, url, ssl_context=context)


# -- arguments, odd responses, rejection bodies, Unix sockets ---------------------------------
async def client_against_raw_server(
    raw_server: Callable[[trio.abc.Stream], Awaitable[None]], nursery: trio.Nursery, **options: Any
) -> trio_ws.WebSocketConnection:
    """Run wrap_client_stream against ``raw_server`` over a memory stream pair."""
    client_stream, server_stream = trio.testing.memory_stream_pair()
    nursery.start_soon(raw_server, server_stream)
    return await trio_ws.wrap_client_stream(nursery, client_stream, "localhost", "/", ping_interval=None, **options)


async def reject_403(request: WebSocketRequest) -> None:
    await request.reject(403, body=b"go away")


# -- arguments -------------------------------------------------------------------
@pytest.mark.parametrize("use_ssl", ["yes", 1, None])
async def test_use_ssl_of_another_type_is_type_error(nursery: trio.Nursery, use_ssl: Any) -> None:
    with trio.fail_after(TIMEOUT):
        # trio-websocket's message, which its users may match on.
        with pytest.raises(TypeError, match=r"^`use_ssl` argument must be bool or ssl\.SSLContext, not "):
            await trio_ws.connect_websocket(nursery, HOST, 9, "/", use_ssl=use_ssl)


# -- connection failures -------------------------------------------------------------
@pytest.mark.parametrize("port", [-1, 0, 65536, 70000])
async def test_out_of_range_port_is_refused_before_connecting(port: int) -> None:
    """A port outside 1-65535 is a ValueError naming it (it used to wrap around silently)."""
    with trio.fail_after(TIMEOUT):
        with pytest.raises(ValueError, match=f"not {port}"):
            async with trio_ws.open_websocket(HOST, port, "/", use_ssl=False):
                pytest.fail("connected")  # pragma: no cover


# -- TLS ---------------------------------------------------------------------------
async def test_tls_handshake_cut_by_connect_timeout_closes_the_socket(nursery: trio.Nursery) -> None:
    """A server that never answers the TLS ClientHello: ConnectionTimeout, and the socket is closed."""
    received = bytearray()
    saw_eof = trio.Event()

    async def silent_tls_server(stream: trio.SocketStream) -> None:
        while chunk := await stream.receive_some(65536):
            received.extend(chunk)
        saw_eof.set()

    listeners = await nursery.start(partial(trio.serve_tcp, silent_tls_server, 0, host=HOST))
    port = listeners[0].socket.getsockname()[1]
    with trio.fail_after(TIMEOUT):
        with pytest.raises(ConnectionTimeout):
            async with trio_ws.open_websocket(HOST, port, "/", use_ssl=True, connect_timeout=0.3):
                pytest.fail("connected to a silent TLS server")  # pragma: no cover
        await saw_eof.wait()  # the client closed its end: no leaked socket
    assert received[:1] == b"\x16", "the client started a TLS handshake"


# -- the handshake response ------------------------------------------------------
async def test_malformed_response_is_handshake_error(nursery: trio.Nursery) -> None:
    async def raw_server(stream: trio.abc.Stream) -> None:
        await rawhttp.read_head(stream)
        await stream.send_all(b"THIS IS NOT HTTP\r\n\r\n")

    with trio.fail_after(TIMEOUT):
        with pytest.raises(HandshakeError, match="invalid handshake response"):
            await client_against_raw_server(raw_server, nursery)


async def test_100_continue_before_the_101_is_skipped(nursery: trio.Nursery) -> None:
    async def raw_server(stream: trio.abc.Stream) -> None:
        head = await rawhttp.read_head(stream)
        text_frame = b"\x81\x05hello"  # unmasked server frame
        await stream.send_all(b"HTTP/1.1 100 Continue\r\n\r\n" + rawhttp.switching_protocols(head) + text_frame)
        await trio.sleep_forever()

    with trio.fail_after(TIMEOUT):
        ws = await client_against_raw_server(raw_server, nursery)
        assert await ws.get_message() == "hello"


async def test_transport_failure_during_handshake_is_handshake_error(nursery: trio.Nursery) -> None:
    client_stream, server_stream = trio.testing.memory_stream_pair()
    await server_stream.aclose()  # the server is gone before the request goes out
    with trio.fail_after(TIMEOUT):
        with pytest.raises(HandshakeError, match="connection failed during the handshake") as info:
            await trio_ws.wrap_client_stream(nursery, client_stream, "localhost", "/")
    assert isinstance(info.value.__cause__, trio.BrokenResourceError)


# -- rejection bodies --------------------------------------------------------------
async def test_rejection_body_is_capped_at_64_kib(nursery: trio.Nursery) -> None:
    body = bytes(range(256)) * 400  # 102,400 bytes

    async def raw_server(stream: trio.abc.Stream) -> None:
        await rawhttp.read_head(stream)
        await stream.send_all(b"HTTP/1.1 403 Forbidden\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
        await trio.sleep_forever()

    with trio.fail_after(TIMEOUT):
        with pytest.raises(ConnectionRejected) as info:
            await client_against_raw_server(raw_server, nursery)
    assert info.value.status_code == 403
    assert info.value.body == body[: 2**16]


async def test_malformed_rejection_body_keeps_the_valid_part(nursery: trio.Nursery) -> None:
    async def raw_server(stream: trio.abc.Stream) -> None:
        await rawhttp.read_head(stream)
        await stream.send_all(
            b"HTTP/1.1 403 Forbidden\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nNOT-A-CHUNK-SIZE\r\n"
        )
        await trio.sleep_forever()

    with trio.fail_after(TIMEOUT):
        with pytest.raises(ConnectionRejected) as info:
            await client_against_raw_server(raw_server, nursery)
    assert info.value.status_code == 403
    assert info.value.body == b"hello"


async def test_rejection_body_cut_by_eof_keeps_what_arrived(nursery: trio.Nursery) -> None:
    async def raw_server(stream: trio.abc.Stream) -> None:
        await rawhttp.read_head(stream)
        await stream.send_all(b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 100\r\n\r\n0123456789")
        await stream.aclose()

    with trio.fail_after(TIMEOUT):
        with pytest.raises(ConnectionRejected) as info:
            await client_against_raw_server(raw_server, nursery)
    assert info.value.status_code == 401
    assert info.value.body == b"0123456789"


async def test_rejection_body_cut_by_a_reset_keeps_what_arrived(nursery: trio.Nursery) -> None:
    async def raw_server(stream: trio.SocketStream) -> None:
        await rawhttp.read_head(stream)
        await stream.send_all(b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 100\r\n\r\n0123456789")
        # Reset only once the client has read that: it is then blocked waiting
        # for the rest of the body, like every other task.
        await trio.testing.wait_all_tasks_blocked()
        reset_on_close(stream)
        await stream.aclose()

    listeners = await nursery.start(partial(trio.serve_tcp, raw_server, 0, host=HOST))
    port = listeners[0].socket.getsockname()[1]
    with trio.fail_after(TIMEOUT):
        with pytest.raises(ConnectionRejected) as info:
            await trio_ws.connect_websocket(nursery, HOST, port, "/", use_ssl=False)
    assert info.value.status_code == 401
    assert info.value.body == b"0123456789"


# -- Unix sockets ------------------------------------------------------------------
async def test_connect_websocket_unix_round_trip(nursery: trio.Nursery, tmp_path: Path) -> None:
    path = unix_socket_path(tmp_path)
    with trio.fail_after(TIMEOUT):
        await nursery.start(partial(trio_ws.serve_websocket_unix, echo_handler, path))
        ws = await trio_ws.connect_websocket_unix(nursery, path, "/room", ping_interval=None)
        assert ws.path == "/room"
        assert ws.remote == path
        await ws.send_message("over unix")
        assert await ws.get_message() == "over unix"
        await ws.aclose()
        assert ws.closed is not None and ws.closed.code == 1000


async def test_connect_websocket_unix_rejected(nursery: trio.Nursery, tmp_path: Path) -> None:
    path = unix_socket_path(tmp_path)
    with trio.fail_after(TIMEOUT):
        await nursery.start(partial(trio_ws.serve_websocket_unix, reject_403, path))
        with pytest.raises(ConnectionRejected) as info:
            await trio_ws.connect_websocket_unix(nursery, path)
    assert info.value.status_code == 403
    assert info.value.body == b"go away"


def silent_unix_listener(path: str) -> socket.socket:
    """A Unix socket that accepts connections (in its backlog) and never answers."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(path)
    sock.listen(8)
    return sock


async def test_connect_websocket_unix_times_out(nursery: trio.Nursery, tmp_path: Path) -> None:
    path = unix_socket_path(tmp_path)
    with silent_unix_listener(path), trio.fail_after(TIMEOUT):
        start = trio.current_time()
        with pytest.raises(ConnectionTimeout, match=r"took longer than 0\.2 s"):
            await trio_ws.connect_websocket_unix(nursery, path, connect_timeout=0.2)
        assert trio.current_time() - start < 5


async def test_connect_websocket_unix_missing_socket_is_os_error(nursery: trio.Nursery, tmp_path: Path) -> None:
    with trio.fail_after(TIMEOUT):
        with pytest.raises(FileNotFoundError):  # unwrapped, as documented for connect_websocket_unix
            await trio_ws.connect_websocket_unix(nursery, unix_socket_path(tmp_path))


async def test_open_websocket_unix_missing_socket_is_handshake_error(tmp_path: Path) -> None:
    path = unix_socket_path(tmp_path)
    with trio.fail_after(TIMEOUT):
        with pytest.raises(HandshakeError, match="could not connect to") as info:
            async with trio_ws.open_websocket_unix(path):
                pytest.fail("connected to a missing socket")  # pragma: no cover
    assert isinstance(info.value.__cause__, OSError)


async def test_open_websocket_unix_rejected(nursery: trio.Nursery, tmp_path: Path) -> None:
    path = unix_socket_path(tmp_path)
    with trio.fail_after(TIMEOUT):
        await nursery.start(partial(trio_ws.serve_websocket_unix, reject_403, path))
        with pytest.raises(ConnectionRejected) as info:
            async with trio_ws.open_websocket_unix(path):
                pytest.fail("a rejected handshake opened a connection")  # pragma: no cover
    assert info.value.status_code == 403


async def test_open_websocket_unix_times_out(tmp_path: Path) -> None:
    path = unix_socket_path(tmp_path)
    with (
        silent_unix_listener(path),
        trio.fail_after(TIMEOUT),
        pytest.raises(ConnectionTimeout, match=r"took longer than 0\.2 s"),
    ):
        async with trio_ws.open_websocket_unix(path, connect_timeout=0.2):
            pytest.fail("connected to a silent server")  # pragma: no cover


# -- open_websocket inside an async generator --------------------------------------
async def test_closing_an_async_generator_around_open_websocket_is_clean(nursery: trio.Nursery) -> None:
    """``aclose()`` of a generator suspended inside ``open_websocket_url`` must end it cleanly.

    The GeneratorExit thrown into the block must leave as itself (the
    documented promise: the block's exception is never wrapped in an
    ExceptionGroup), so that ``aclose()`` returns None.
    """
    closed_with: list[int] = []
    handler_done = trio.Event()

    async def handler(request: WebSocketRequest) -> None:
        ws = await request.accept()
        async for message in ws:
            await ws.send_message(message)
        assert ws.closed is not None
        closed_with.append(ws.closed.code)
        handler_done.set()

    server = await nursery.start(partial(trio_ws.serve_websocket, handler, HOST, 0, None))

    async def messages() -> AsyncIterator[str | bytes]:
        async with trio_ws.open_websocket_url(f"ws://{HOST}:{server.port}/") as ws:
            await ws.send_message("first")
            yield await ws.get_message()
            yield "never reached"  # pragma: no cover

    with trio.fail_after(TIMEOUT):
        generator = messages()
        assert await generator.__anext__() == "first"
        try:
            await generator.aclose()
        except BaseException as exc:
            pytest.fail(f"aclose() raised {exc!r} (leaves: {flatten(exc)!r})")
        await handler_done.wait()
    assert closed_with == [1000]
