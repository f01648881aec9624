"""Tests of the server side: serve_websocket, WebSocketServer, WebSocketRequest.

Tests talk over real sockets on 127.0.0.1 (or a Unix socket), either with raw
bytes from trio.open_tcp_stream or with trio_ws's own client; a transport that
fails in a way no socket does is a memory stream handed to a listener.
"""

from __future__ import annotations

import base64
import errno
import logging
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing
import trustme
from support.sockets import flatten, unix_socket_path

import trio_ws
from trio_ws import (
    ConnectionClosed,
    ConnectionRejected,
    Endpoint,
    HandshakeError,
    WebSocketConnection,
    WebSocketRequest,
    WebSocketServer,
)

#: Hang guard for one test.
TIMEOUT = 30.0
#: A timeout's effect counts as prompt within this on the real clock: far under
#: the 10 s default (or the 30 s a test sets) it must not have waited for, with
#: room for a loaded machine.
PROMPT = 5.0
HOST = "127.0.0.1"
KEY = base64.b64encode(b"0123456789abcdef").decode()

Handler = Callable[[WebSocketRequest], Awaitable[None]]


# -- helpers -----------------------------------------------------------------


async def echo_handler(request: WebSocketRequest) -> None:
    ws = await request.accept()
    async for message in ws:
        await ws.send_message(message)


@asynccontextmanager
async def serving(handler: Handler, **options: Any) -> AsyncIterator[WebSocketServer]:
    """Run serve_websocket on 127.0.0.1:0 for the duration of the block."""
    async with trio.open_nursery() as nursery:
        server = await nursery.start(partial(trio_ws.serve_websocket, handler, "127.0.0.1", 0, None, **options))
        yield server
        nursery.cancel_scope.cancel()


def upgrade_request(*, target: str = "/", method: str = "GET", extra: list[str] | None = None) -> bytes:
    lines = [
        f"{method} {target} HTTP/1.1",
        "Host: 127.0.0.1",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Key: {KEY}",
        "Sec-WebSocket-Version: 13",
        *(extra or []),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


async def read_until_eof(stream: trio.abc.Stream, limit: int = 2**20) -> bytes:
    """Everything the peer sends until it closes (a reset counts as a close)."""
    data = bytearray()
    while len(data) < limit:
        try:
            chunk = await stream.receive_some(65536)
        except trio.BrokenResourceError:
            break
        if not chunk:
            break
        data += chunk
    return bytes(data)


async def raw_exchange(port: int, data: bytes, *, eof: bool = False) -> bytes:
    """Send ``data`` (then EOF if asked) and return the whole answer."""
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    async with stream:
        await stream.send_all(data)
        if eof:
            await stream.send_eof()
        return await read_until_eof(stream)


def parse_response(response: bytes) -> tuple[int, dict[bytes, bytes], bytes]:
    head, _, body = response.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    assert lines[0].startswith(b"HTTP/1.1 "), response[:200]
    status = int(lines[0].split(b" ")[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        headers[name.strip().lower()] = value.strip()
    return status, headers, body


async def assert_echo_works(port: int) -> None:
    async with trio_ws.open_websocket_url(f"ws://127.0.0.1:{port}/") as ws:
        await ws.send_message("ping?")
        assert await ws.get_message() == "ping?"
        await ws.send_message(b"\x00\x01")
        assert await ws.get_message() == b"\x00\x01"


async def until_no_connections(server: WebSocketServer) -> None:
    """Wait until the server has dropped its connections (when their tasks end)."""
    while server.connections:  # noqa: ASYNC110 - the server has no event for this
        await trio.sleep(0.01)


# -- echo / basics -----------------------------------------------------------------


async def test_echo_and_request_properties() -> None:
    seen: dict[str, Any] = {}

    async def handler(request: WebSocketRequest) -> None:
        seen["path"] = request.path
        seen["local"] = request.local
        seen["remote"] = request.remote
        ws = await request.accept()
        seen["is_server"] = ws.is_server
        seen["ws_path"] = ws.path
        await ws.send_message(await ws.get_message())

    with trio.fail_after(TIMEOUT):
        async with serving(handler) as server:
            port = server.port
            async with trio_ws.open_websocket_url(f"ws://127.0.0.1:{port}/room?x=1") as ws:
                await ws.send_message("hello")
                assert await ws.get_message() == "hello"
                assert ws.is_client
                assert ws.remote == Endpoint("127.0.0.1", port, False)
    assert seen["path"] == "/room?x=1"
    assert seen["ws_path"] == "/room?x=1"
    assert seen["is_server"] is True
    assert seen["local"] == Endpoint("127.0.0.1", port, False)
    assert isinstance(seen["remote"], Endpoint)
    assert seen["remote"].address == "127.0.0.1"


# -- bad handshakes ----------------------------------------------------------------------


async def test_garbage_gets_400_and_server_keeps_serving() -> None:
    with trio.fail_after(TIMEOUT):
        async with serving(echo_handler) as server:
            response = await raw_exchange(server.port, b"\x00\xffthis is not http\x01\r\n\r\n")
            status, _, _ = parse_response(response)
            assert status == 400
            await assert_echo_works(server.port)


async def test_truncated_request_then_eof_gets_400() -> None:
    called = False

    async def handler(request: WebSocketRequest) -> None:
        nonlocal called
        called = True
        await echo_handler(request)

    with trio.fail_after(TIMEOUT):
        async with serving(handler) as server:
            response = await raw_exchange(server.port, upgrade_request()[:40], eof=True)
            status, _, _ = parse_response(response)
            assert status == 400
    assert not called


async def test_eof_before_any_byte_closes_quietly() -> None:
    with trio.fail_after(TIMEOUT):
        async with serving(echo_handler) as server:
            assert await raw_exchange(server.port, b"", eof=True) == b""
            await assert_echo_works(server.port)


async def test_plain_get_without_upgrade_gets_426() -> None:
    with trio.fail_after(TIMEOUT):
        async with serving(echo_handler) as server:
            response = await raw_exchange(server.port, b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            status, headers, _ = parse_response(response)
            assert status == 426
            assert headers.get(b"upgrade", b"").lower() == b"websocket"


async def test_post_upgrade_gets_405() -> None:
    with trio.fail_after(TIMEOUT):
        async with serving(echo_handler) as server:
            response = await raw_exchange(server.port, upgrade_request(method="POST", extra=["Content-Length: 0"]))
            status, headers, _ = parse_response(response)
            assert status == 405
            assert headers.get(b"allow") == b"GET"


async def test_bad_websocket_version_gets_426_with_supported_version() -> None:
    request = upgrade_request().replace(b"Sec-WebSocket-Version: 13", b"Sec-WebSocket-Version: 8")
    with trio.fail_after(TIMEOUT):
        async with serving(echo_handler) as server:
            status, headers, _ = parse_response(await raw_exchange(server.port, request))
            assert status == 426
            assert headers.get(b"sec-websocket-version") == b"13"


async def test_bad_key_gets_400() -> None:
    request = upgrade_request().replace(KEY.encode(), b"short")
    with trio.fail_after(TIMEOUT):
        async with serving(echo_handler) as server:
            status, _, _ = parse_response(await raw_exchange(server.port, request))
            assert status == 400


async def test_too_long_header_line_gets_431() -> None:
    request = upgrade_request(extra=["X-Big: " + "a" * 1000])
    with trio.fail_after(TIMEOUT):
        async with serving(echo_handler, max_handshake_line=256) as server:
            status, _, _ = parse_response(await raw_exchange(server.port, request))
            assert status == 431
            await assert_echo_works(server.port)


async def test_too_many_headers_gets_431() -> None:
    request = upgrade_request(extra=[f"X-H{i}: v" for i in range(10)])
    with trio.fail_after(TIMEOUT):
        async with serving(echo_handler, max_handshake_headers=8) as server:
            status, _, _ = parse_response(await raw_exchange(server.port, request))
            assert status == 431
            # A request with fewer headers is still fine.
            await assert_echo_works(server.port)


async def test_too_long_request_line_gets_414() -> None:
    request = upgrade_request(target="/" + "p" * 1000)
    with trio.fail_after(TIMEOUT):
        async with serving(echo_handler, max_handshake_line=256) as server:
            status, _, _ = parse_response(await raw_exchange(server.port, request))
            assert status == 414


async def test_default_limits_refuse_huge_header_line() -> None:
    request = upgrade_request(extra=["X-Big: " + "a" * 10000])
    with trio.fail_after(TIMEOUT):
        async with serving(echo_handler) as server:
            status, _, _ = parse_response(await raw_exchange(server.port, request))
            assert status == 431


@pytest.mark.parametrize("trickle", [False, True], ids=["stall", "trickle"])
async def test_slowloris_is_closed_after_connect_timeout(trickle: bool) -> None:
    called = False

    async def handler(request: WebSocketRequest) -> None:
        nonlocal called
        called = True
        await echo_handler(request)

    async def trickler(stream: trio.SocketStream) -> None:
        # One header byte every 50 ms: the request never completes in time.
        try:
            while True:
                await trio.sleep(0.05)
                await stream.send_all(b"x")
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass

    with trio.fail_after(TIMEOUT):
        async with serving(handler, connect_timeout=0.5) as server:
            stream = await trio.open_tcp_stream("127.0.0.1", server.port)
            async with stream, trio.open_nursery() as nursery:
                await stream.send_all(upgrade_request()[:60] + b"\r\nX-Slow: ")
                if trickle:
                    nursery.start_soon(trickler, stream)
                start = trio.current_time()
                await read_until_eof(stream)
                elapsed = trio.current_time() - start
                nursery.cancel_scope.cancel()
            assert 0.3 <= elapsed < PROMPT  # the 0.5 s connect_timeout, not the 10 s default
            assert not called
            # The server still serves clients that do finish their handshake.
            await assert_echo_works(server.port)
            assert called


# -- origins ---------------------------------------------------------------------------


async def test_origins_refuses_other_origin_with_403() -> None:
    with trio.fail_after(TIMEOUT):
        async with serving(echo_handler, origins=["https://ok.example"]) as server:
            url = f"ws://127.0.0.1:{server.port}/"
            with pytest.raises(ConnectionRejected) as info:
                async with trio_ws.open_websocket_url(url, extra_headers=[("Origin", "https://evil.example")]):
                    pytest.fail("connected despite a refused origin")
            assert info.value.status_code == 403
            # No Origin at all is refused too, since None is not in the list.
            with pytest.raises(ConnectionRejected) as info:
                async with trio_ws.open_websocket_url(url):
                    pytest.fail("connected without an Origin")
            assert info.value.status_code == 403
            async with trio_ws.open_websocket_url(url, extra_headers=[("Origin", "https://ok.example")]) as ws:
                await ws.send_message("allowed")
                assert await ws.get_message() == "allowed"


async def test_origins_with_none_allows_missing_origin() -> None:
    with trio.fail_after(TIMEOUT):
        async with serving(echo_handler, origins=["https://ok.example", None]) as server:
            await assert_echo_works(server.port)


# -- process_request ---------------------------------------------------------------------


async def test_process_request_rejects_with_401() -> None:
    called = False

    async def handler(request: WebSocketRequest) -> None:
        nonlocal called
        called = True
        await request.accept()

    async def authenticate(request: WebSocketRequest) -> None:
        if (b"authorization", b"Bearer good") not in request.headers:
            await request.reject(401, extra_headers=[("WWW-Authenticate", "Bearer")], body=b"who are you?")

    with trio.fail_after(TIMEOUT):
        async with serving(handler, process_request=authenticate) as server:
            url = f"ws://127.0.0.1:{server.port}/"
            with pytest.raises(ConnectionRejected) as info:
                async with trio_ws.open_websocket_url(url):
                    pytest.fail("connected without credentials")
            assert info.value.status_code == 401
            assert info.value.body == b"who are you?"
            assert (b"www-authenticate", b"Bearer") in info.value.headers
            assert not called
            async with trio_ws.open_websocket_url(url, extra_headers=[("Authorization", "Bearer good")]):
                pass
            assert called


async def test_process_request_answers_health_check() -> None:
    async def health(request: WebSocketRequest) -> None:
        if request.path == "/health":
            assert not request.is_websocket
            await request.reject(200, body=b"ok")

    with trio.fail_after(TIMEOUT):
        async with serving(echo_handler, process_request=health) as server:
            response = await raw_exchange(server.port, b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            status, headers, body = parse_response(response)
            assert status == 200
            assert body == b"ok"
            assert headers.get(b"content-length") == b"2"
            # A plain request process_request leaves alone still gets 426.
            response = await raw_exchange(server.port, b"GET /other HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            assert parse_response(response)[0] == 426
            # And WebSocket requests go through to the handler.
            await assert_echo_works(server.port)


async def test_process_request_that_raises_gets_500() -> None:
    async def broken(request: WebSocketRequest) -> None:
        raise RuntimeError("boom")

    with trio.fail_after(TIMEOUT):
        async with serving(echo_handler, process_request=broken) as server:
            with pytest.raises(ConnectionRejected) as info:
                async with trio_ws.open_websocket_url(f"ws://127.0.0.1:{server.port}/"):
                    pytest.fail("connected although process_request raised")
            assert info.value.status_code == 500
            # The server survives.
            with pytest.raises(ConnectionRejected):
                async with trio_ws.open_websocket_url(f"ws://127.0.0.1:{server.port}/"):
                    pass


# -- handler outcomes ----------------------------------------------------------------------


async def test_handler_that_raises_closes_with_1011_and_server_keeps_serving() -> None:
    async def handler(request: WebSocketRequest) -> None:
        ws = await request.accept()
        if request.path == "/boom":
            await ws.get_message()
            raise RuntimeError("handler bug")
        await echo_handler_on(ws)

    async def echo_handler_on(ws: trio_ws.WebSocketConnection) -> None:
        async for message in ws:
            await ws.send_message(message)

    with trio.fail_after(TIMEOUT):
        async with serving(handler) as server:
            async with trio_ws.open_websocket_url(f"ws://127.0.0.1:{server.port}/boom") as ws:
                await ws.send_message("trigger")
                with pytest.raises(ConnectionClosed) as info:
                    await ws.get_message()
                assert info.value.reason.code == 1011
                assert ws.closed is not None
                assert ws.closed.code == 1011
            await assert_echo_works(server.port)


async def test_handler_returning_without_accepting_gets_403() -> None:
    async def handler(request: WebSocketRequest) -> None:
        return None

    with trio.fail_after(TIMEOUT):
        async with serving(handler) as server:
            with pytest.raises(ConnectionRejected) as info:
                async with trio_ws.open_websocket_url(f"ws://127.0.0.1:{server.port}/"):
                    pytest.fail("connected although the handler did not accept")
            assert info.value.status_code == 403


async def test_handler_reject_with_body() -> None:
    async def handler(request: WebSocketRequest) -> None:
        await request.reject(404, body=b"no such room")

    with trio.fail_after(TIMEOUT):
        async with serving(handler) as server:
            with pytest.raises(ConnectionRejected) as info:
                async with trio_ws.open_websocket_url(f"ws://127.0.0.1:{server.port}/x"):
                    pytest.fail("connected although rejected")
            assert info.value.status_code == 404
            assert info.value.body == b"no such room"


async def test_handler_returning_after_accept_closes_with_1000() -> None:
    async def handler(request: WebSocketRequest) -> None:
        ws = await request.accept()
        await ws.send_message("bye")

    with trio.fail_after(TIMEOUT):
        async with serving(handler) as server:
            url = f"ws://127.0.0.1:{server.port}/"
            async with trio_ws.open_websocket_url(url) as ws:
                assert await ws.get_message() == "bye"
                with pytest.raises(ConnectionClosed) as info:
                    await ws.get_message()
                assert info.value.reason.code == 1000
                assert isinstance(info.value, trio_ws.ConnectionClosedOK)


# -- shutdown ------------------------------------------------------------------------------


async def _serve_then_cancel(n_clients: int, disconnect_timeout: float) -> tuple[list[Any], float]:
    """Connect ``n_clients`` echo clients, cancel the server; return them and how long it took to stop."""
    connected = 0
    all_connected = trio.Event()

    async def handler(request: WebSocketRequest) -> None:
        nonlocal connected
        ws = await request.accept()
        connected += 1
        if connected == n_clients:
            all_connected.set()
        async for message in ws:
            await ws.send_message(message)

    async with trio.open_nursery() as client_nursery:
        async with trio.open_nursery() as server_nursery:
            server = await server_nursery.start(
                partial(trio_ws.serve_websocket, handler, "127.0.0.1", 0, None, disconnect_timeout=disconnect_timeout)
            )
            url = f"ws://127.0.0.1:{server.port}/"
            clients = [await trio_ws.connect_websocket_url(client_nursery, url) for _ in range(n_clients)]
            await all_connected.wait()
            start = trio.current_time()
            server_nursery.cancel_scope.cancel()
        # Reaching this line means every server task has ended.
        stopped_after = trio.current_time() - start
        for ws in clients:
            with pytest.raises(ConnectionClosed):
                await ws.get_message()
    # The client nursery exited too: the client connections' tasks have ended.
    return clients, stopped_after


async def test_cancelling_server_closes_connections_with_1001() -> None:
    with trio.fail_after(TIMEOUT):
        clients, stopped_after = await _serve_then_cancel(3, disconnect_timeout=1.0)
    codes = [ws.closed.code for ws in clients]
    assert codes == [1001, 1001, 1001]
    assert stopped_after < 1.0 + 0.5


async def test_cancelling_server_with_responsive_clients_is_prompt() -> None:
    # The clients answer the close frame at once, so the server has no reason
    # to wait for disconnect_timeout before it stops.
    with trio.fail_after(TIMEOUT):
        clients, stopped_after = await _serve_then_cancel(1, disconnect_timeout=2.0)
    assert clients[0].closed.code == 1001
    assert stopped_after < 1.0


async def test_cancelling_server_with_unresponsive_client_within_disconnect_timeout() -> None:
    from trio_ws.connection import CANCELLED_CLOSE_GRACE

    accepted = trio.Event()

    async def handler(request: WebSocketRequest) -> None:
        ws = await request.accept()
        accepted.set()
        await ws.get_message()

    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as server_nursery:
            server = await server_nursery.start(
                partial(trio_ws.serve_websocket, handler, "127.0.0.1", 0, None, disconnect_timeout=0.1)
            )
            raw = await trio.open_tcp_stream("127.0.0.1", server.port)
            await raw.send_all(upgrade_request())
            # Read the 101 response, then go silent (never answer the close).
            response = b""
            while b"\r\n\r\n" not in response:
                response += await raw.receive_some(4096)
            assert response.startswith(b"HTTP/1.1 101")
            await accepted.wait()
            start = trio.current_time()
            server_nursery.cancel_scope.cancel()
        elapsed = trio.current_time() - start
        # Ended by disconnect_timeout (0.1 s), not the shielded close's longer grace.
        assert elapsed < CANCELLED_CLOSE_GRACE
        # The server sent a close frame with 1001 before dropping the connection.
        rest = response.partition(b"\r\n\r\n")[2] + await read_until_eof(raw)
        await raw.aclose()
        assert rest[:1] == b"\x88", rest
        assert rest[2:4] == (1001).to_bytes(2, "big")


# -- handler_nursery -----------------------------------------------------------------------


async def test_handler_nursery_runs_handlers_there() -> None:
    parents: list[Any] = []

    async def handler(request: WebSocketRequest) -> None:
        parents.append(trio.lowlevel.current_task().parent_nursery)
        await echo_handler(request)

    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as handler_nursery:
            async with trio.open_nursery() as client_nursery:
                async with trio.open_nursery() as server_nursery:
                    server = await server_nursery.start(
                        partial(trio_ws.serve_websocket, handler, "127.0.0.1", 0, None, handler_nursery=handler_nursery)
                    )
                    port = server.port
                    ws = await trio_ws.connect_websocket_url(client_nursery, f"ws://127.0.0.1:{port}/")
                    await ws.send_message("one")
                    assert await ws.get_message() == "one"
                    assert parents == [handler_nursery]
                    server_nursery.cancel_scope.cancel()
                # The server has stopped listening...
                with pytest.raises(OSError):
                    await trio.open_tcp_stream("127.0.0.1", port)
                # ...but the handler running in handler_nursery carries on.
                await ws.send_message("two")
                assert await ws.get_message() == "two"
                await ws.aclose()
                assert ws.closed is not None
                assert ws.closed.code == 1000
            handler_nursery.cancel_scope.cancel()


# -- WebSocketServer -----------------------------------------------------------------------


async def test_websocket_server_port_and_listeners() -> None:
    with trio.fail_after(TIMEOUT):
        async with serving(echo_handler) as server:
            assert isinstance(server, WebSocketServer)
            # trio-websocket's shape: an Endpoint per TCP listener.
            assert server.listeners == [Endpoint("127.0.0.1", server.port, False)]
            assert server.port != 0
            await assert_echo_works(server.port)


async def test_listeners_of_other_kinds_and_port_with_several_listeners(tmp_path: Path) -> None:
    path = unix_socket_path(tmp_path)
    with trio.fail_after(TIMEOUT):
        tcp = await trio.open_tcp_listeners(0, host="127.0.0.1")
        port = tcp[0].socket.getsockname()[1]
        unix_socket = trio.socket.socket(trio.socket.AF_UNIX, trio.socket.SOCK_STREAM)
        await unix_socket.bind(path)
        unix_socket.listen()
        unix = trio.SocketListener(unix_socket)
        server = WebSocketServer(echo_handler, [*tcp, unix])
        async with trio.open_nursery() as nursery:
            await nursery.start(server.run)
            # A Unix listener is its path, as for a connection's local/remote.
            assert server.listeners == [Endpoint("127.0.0.1", port, False), path]
            # Several listeners on different ports (or not on TCP): no single port.
            with pytest.raises(RuntimeError, match="2 listeners"):
                server.port  # noqa: B018
            await assert_echo_works(port)
            nursery.cancel_scope.cancel()
        unix_socket = trio.socket.socket(trio.socket.AF_UNIX, trio.socket.SOCK_STREAM)
        await unix_socket.bind(path + "2")
        unix_socket.listen()
        only_unix = WebSocketServer(echo_handler, [trio.SocketListener(unix_socket)])
        assert only_unix.listeners == [path + "2"]
        with pytest.raises(RuntimeError, match="no TCP port"):
            only_unix.port  # noqa: B018
        unix_socket.close()


async def test_listener_without_socket_is_its_repr() -> None:
    class Custom(trio.abc.Listener[trio.abc.Stream]):
        async def accept(self) -> trio.abc.Stream:
            await trio.sleep_forever()
            raise AssertionError

        async def aclose(self) -> None:
            pass

        def __repr__(self) -> str:
            return "Custom(listener)"

    server = WebSocketServer(echo_handler, [Custom()])
    assert server.listeners == ["Custom(listener)"]
    with pytest.raises(RuntimeError):
        server.port  # noqa: B018


async def test_port_of_two_tcp_listeners_on_one_port() -> None:
    # Dual-stack listeners share a port: .port names it (trio-websocket raises
    # for any second listener; a common port is still one answer).
    first = await trio.open_tcp_listeners(0, host="127.0.0.1")
    port = first[0].socket.getsockname()[1]
    try:
        second = await trio.open_tcp_listeners(port, host="::1")
    except OSError:
        pytest.skip("no IPv6 loopback here")
    server = WebSocketServer(echo_handler, [*first, *second])
    assert server.port == port
    assert [listener.port for listener in server.listeners if isinstance(listener, Endpoint)] == [port, port]
    for listener in [*first, *second]:
        await listener.aclose()


async def test_websocket_server_from_listeners() -> None:
    with trio.fail_after(TIMEOUT):
        listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
        server = WebSocketServer(echo_handler, listeners, connect_timeout=2)
        async with trio.open_nursery() as nursery:
            started = await nursery.start(server.run)
            assert started is server
            assert server.port == listeners[0].socket.getsockname()[1]
            await assert_echo_works(server.port)
            nursery.cancel_scope.cancel()


def test_websocket_server_needs_a_listener() -> None:
    with pytest.raises(ValueError):
        WebSocketServer(echo_handler, [])


# -- Unix sockets --------------------------------------------------------------------------


async def test_unix_socket_server_and_client(tmp_path: Path) -> None:
    path = unix_socket_path(tmp_path)
    seen: dict[str, Any] = {}

    async def handler(request: WebSocketRequest) -> None:
        seen["request_local"] = request.local
        seen["request_remote"] = request.remote
        ws = await request.accept()
        seen["ws_local"] = ws.local
        seen["ws_remote"] = ws.remote
        async for message in ws:
            await ws.send_message(message)

    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            server = await nursery.start(partial(trio_ws.serve_websocket_unix, handler, path))
            with pytest.raises(RuntimeError):
                _ = server.port
            async with trio_ws.open_websocket_unix(path, "/unix") as ws:
                await ws.send_message("over unix")
                assert await ws.get_message() == "over unix"
                assert isinstance(ws.local, str)
                assert isinstance(ws.remote, str)
                assert ws.remote == path
            nursery.cancel_scope.cancel()
    for name in ("request_local", "request_remote", "ws_local", "ws_remote"):
        assert isinstance(seen[name], str), (name, seen[name])
    assert seen["request_local"] == path
    assert seen["ws_local"] == path
    assert not await trio.Path(path).exists()  # removed when the server stopped


# -- TLS -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tls_contexts() -> tuple[ssl.SSLContext, ssl.SSLContext]:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(server_ctx)
    client_ctx = ssl.create_default_context()
    ca.configure_trust(client_ctx)
    return server_ctx, client_ctx


async def test_tls_echo_and_endpoints(tls_contexts: tuple[ssl.SSLContext, ssl.SSLContext]) -> None:
    server_ctx, client_ctx = tls_contexts
    seen: dict[str, Any] = {}

    async def handler(request: WebSocketRequest) -> None:
        seen["request_local"] = request.local
        ws = await request.accept()
        seen["ws_local"] = ws.local
        seen["ws_remote"] = ws.remote
        async for message in ws:
            await ws.send_message(message)

    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            server = await nursery.start(partial(trio_ws.serve_websocket, handler, "127.0.0.1", 0, server_ctx))
            assert server.port != 0
            async with trio_ws.open_websocket_url(f"wss://127.0.0.1:{server.port}/", ssl_context=client_ctx) as ws:
                await ws.send_message("secret")
                assert await ws.get_message() == "secret"
                assert isinstance(ws.local, Endpoint)
                assert isinstance(ws.remote, Endpoint)
                assert ws.local.is_ssl
                assert ws.remote.is_ssl
                assert ws.remote.port == server.port
                assert ws.remote.url == f"wss://127.0.0.1:{server.port}"
            nursery.cancel_scope.cancel()
    for name in ("request_local", "ws_local", "ws_remote"):
        assert isinstance(seen[name], Endpoint), name
        assert seen[name].is_ssl, name


async def test_tls_untrusted_certificate_fails_with_handshake_error(
    tls_contexts: tuple[ssl.SSLContext, ssl.SSLContext],
) -> None:
    server_ctx, _ = tls_contexts
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            server = await nursery.start(partial(trio_ws.serve_websocket, echo_handler, "127.0.0.1", 0, server_ctx))
            start = trio.current_time()
            with pytest.raises(HandshakeError) as info:
                async with trio_ws.open_websocket_url(f"wss://127.0.0.1:{server.port}/", connect_timeout=30):
                    pytest.fail("connected to an untrusted server")
            assert not isinstance(info.value, trio_ws.ConnectionTimeout)
            assert trio.current_time() - start < PROMPT
            nursery.cancel_scope.cancel()


@pytest.mark.parametrize("accepted", [True, False], ids=["accepted", "not-answered"])
async def test_shutdown_with_unanswered_close_and_no_disconnect_timeout_is_bounded(accepted: bool) -> None:
    # disconnect_timeout=None and a client that never answers (nor reads):
    # the shutdown's shielded close still ends after CANCELLED_CLOSE_GRACE.
    from trio_ws.connection import CANCELLED_CLOSE_GRACE

    handler_waiting = trio.Event()

    async def handler(request: WebSocketRequest) -> None:
        if accepted:
            await request.accept()
        handler_waiting.set()
        await trio.sleep_forever()

    with trio.fail_after(CANCELLED_CLOSE_GRACE + TIMEOUT):
        async with trio.open_nursery() as nursery:
            server = await nursery.start(
                partial(trio_ws.serve_websocket, handler, "127.0.0.1", 0, None, disconnect_timeout=None)
            )
            client = await trio.open_tcp_stream("127.0.0.1", server.port)
            await client.send_all(upgrade_request())
            await handler_waiting.wait()
            started = trio.current_time()
            nursery.cancel_scope.cancel()
        waited = trio.current_time() - started
        await client.aclose()
    assert waited < CANCELLED_CLOSE_GRACE + PROMPT


# -- properties of a running server ---------------------------------------------------
async def test_connections_and_options_reflect_the_server() -> None:
    accepted: list[WebSocketConnection] = []
    handler_done = trio.Event()

    async def handler(request: WebSocketRequest) -> None:
        accepted.append(await request.accept())
        async for message in accepted[0]:
            await accepted[0].send_message(message)
        handler_done.set()

    with trio.fail_after(TIMEOUT):
        async with serving(handler, max_message_size=1234, ping_interval=None) as server:
            assert server.options.max_message_size == 1234
            assert server.options.ping_interval is None
            assert server.connections == frozenset()
            async with trio_ws.open_websocket_url(f"ws://{HOST}:{server.port}/") as ws:
                await ws.send_message("hi")
                assert await ws.get_message() == "hi"
                assert server.connections == frozenset(accepted)
                assert len(accepted) == 1
            await handler_done.wait()
            await until_no_connections(server)


# -- process_request that answers, then raises ------------------------------------------
async def test_process_request_that_answers_then_raises_keeps_its_answer(caplog: pytest.LogCaptureFixture) -> None:
    handler_runs: list[str] = []

    async def handler(request: WebSocketRequest) -> None:
        handler_runs.append(request.path)  # pragma: no cover - must not run
        await echo_handler(request)  # pragma: no cover

    hook_done = trio.Event()

    async def hook(request: WebSocketRequest) -> None:
        await request.reject(401, body=b"who are you")
        hook_done.set()
        raise RuntimeError("bug after answering")

    with trio.fail_after(TIMEOUT):
        async with serving(handler, process_request=hook) as server:
            with pytest.raises(ConnectionRejected) as info:
                async with trio_ws.open_websocket_url(f"ws://{HOST}:{server.port}/"):
                    pytest.fail("hook rejected the request")  # pragma: no cover
            await hook_done.wait()  # the server logs before its next checkpoint
    assert info.value.status_code == 401  # not replaced by a 500
    assert info.value.body == b"who are you"
    assert handler_runs == []
    assert any(record.message.endswith("process_request raised") for record in caplog.records)


# -- handler endings and shutdown -------------------------------------------------------
async def test_handler_ended_by_the_peer_closing_is_not_an_error(caplog: pytest.LogCaptureFixture) -> None:
    ended = trio.Event()

    async def handler(request: WebSocketRequest) -> None:
        ws = await request.accept()
        try:
            while True:
                await ws.get_message()  # raises ConnectionClosed once the client closes
        finally:
            ended.set()

    caplog.set_level(logging.DEBUG, logger="trio_ws")
    with trio.fail_after(TIMEOUT):
        async with serving(handler) as server:
            async with trio_ws.open_websocket_url(f"ws://{HOST}:{server.port}/") as ws:
                await ws.send_message("bye")
            await ended.wait()
            await until_no_connections(server)
    assert ws.closed is not None and ws.closed.code == 1000
    assert not [record for record in caplog.records if record.levelno >= logging.ERROR]
    assert any("handler ended by a closed connection" in record.message for record in caplog.records)


@pytest.mark.parametrize("exc_type", [SystemExit, KeyboardInterrupt])
async def test_handler_system_exit_or_keyboard_interrupt_stops_the_server(exc_type: type[BaseException]) -> None:
    async def handler(request: WebSocketRequest) -> None:
        await request.accept()
        raise exc_type

    caught: BaseException | None = None
    with trio.fail_after(TIMEOUT):
        try:
            async with trio.open_nursery() as nursery:
                server = await nursery.start(partial(trio_ws.serve_websocket, handler, HOST, 0, None))
                stream = await trio.open_tcp_stream(HOST, server.port)
                await stream.send_all(upgrade_request())
                await trio.sleep_forever()
        except BaseException as exc:
            caught = exc
    assert caught is not None
    assert [type(leaf) for leaf in flatten(caught)] == [exc_type]


async def test_server_shutdown_before_the_handler_answers_gets_503() -> None:
    handler_started = trio.Event()

    async def handler(request: WebSocketRequest) -> None:
        handler_started.set()
        await trio.sleep_forever()  # never accepts nor rejects

    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            server = await nursery.start(partial(trio_ws.serve_websocket, handler, HOST, 0, None))
            stream = await trio.open_tcp_stream(HOST, server.port)
            await stream.send_all(upgrade_request())
            await handler_started.wait()
            nursery.cancel_scope.cancel()
        response = await read_until_eof(stream)
    assert response.startswith(b"HTTP/1.1 503 "), response[:100]


# -- a Unix socket path already taken ----------------------------------------------------
async def test_unix_server_on_an_existing_path_fails_and_keeps_the_file(tmp_path: Path) -> None:
    path = unix_socket_path(tmp_path)
    await trio.Path(path).write_bytes(b"someone else's file")
    with trio.fail_after(TIMEOUT):
        with pytest.raises(OSError):
            await trio_ws.serve_websocket_unix(echo_handler, path)
    assert await trio.Path(path).read_bytes() == b"someone else's file"


# -- a transport that fails in an unexpected way -----------------------------------
class MemoryListener(trio.abc.Listener[trio.abc.Stream]):
    """A listener whose accepted streams are handed to it by the test."""

    def __init__(self) -> None:
        self.incoming, self._accept = trio.open_memory_channel[trio.abc.Stream](8)

    async def accept(self) -> trio.abc.Stream:
        return await self._accept.receive()

    async def aclose(self) -> None:
        await self._accept.aclose()


class ExplodingStream(trio.abc.Stream):
    """A transport whose receive fails with an error no transport should raise."""

    def __init__(self, inner: trio.abc.Stream) -> None:
        self.inner = inner

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        await self.inner.send_all(data)

    async def wait_send_all_might_not_block(self) -> None:
        await self.inner.wait_send_all_might_not_block()

    async def receive_some(self, max_bytes: int | None = None) -> bytes | bytearray:
        await trio.lowlevel.checkpoint()
        raise RuntimeError("a transport bug")

    async def aclose(self) -> None:
        await self.inner.aclose()


async def test_unexpected_transport_error_is_logged_and_the_server_serves_on(
    nursery: trio.Nursery, caplog: pytest.LogCaptureFixture
) -> None:
    listener = MemoryListener()
    server = WebSocketServer(echo_handler, [listener], ping_interval=None)
    with trio.fail_after(TIMEOUT):
        await nursery.start(server.run)
        bad_client, bad_server = trio.testing.memory_stream_pair()
        await listener.incoming.send(ExplodingStream(bad_server))
        assert await read_until_eof(bad_client) == b""  # its transport was closed

        good_client, good_server = trio.testing.memory_stream_pair()
        await listener.incoming.send(good_server)
        ws = await trio_ws.wrap_client_stream(nursery, good_client, "localhost", "/", ping_interval=None)
        await ws.send_message("still serving")
        assert await ws.get_message() == "still serving"
        await ws.aclose()
    errors = [record for record in caplog.records if record.levelno >= logging.ERROR]
    assert len(errors) == 1
    assert "unexpected error while serving a connection" in errors[0].message
    assert errors[0].exc_info is not None and isinstance(errors[0].exc_info[1], RuntimeError)


class FailingListener(MemoryListener):
    """A MemoryListener whose first accepts raise the given errors."""

    def __init__(self, *errors: OSError) -> None:
        super().__init__()
        self.errors = list(errors)

    async def accept(self) -> trio.abc.Stream:
        if self.errors:
            await trio.lowlevel.checkpoint()
            raise self.errors.pop(0)
        return await super().accept()


async def test_accept_out_of_descriptors_is_logged_and_retried(
    nursery: trio.Nursery, caplog: pytest.LogCaptureFixture
) -> None:
    """The server's own accept loop keeps trio.serve_listeners' policy: EMFILE and kin are waited out."""
    listener = FailingListener(OSError(errno.EMFILE, "Too many open files"), OSError(errno.ENOBUFS, "No buffers"))
    server = WebSocketServer(echo_handler, [listener], ping_interval=None)
    with trio.fail_after(TIMEOUT):
        await nursery.start(server.run)
        client_stream, server_stream = trio.testing.memory_stream_pair()
        await listener.incoming.send(server_stream)
        ws = await trio_ws.wrap_client_stream(nursery, client_stream, "localhost", "/", ping_interval=None)
        await ws.send_message("served after the retries")
        assert await ws.get_message() == "served after the retries"
        await ws.aclose()
    retries = [record for record in caplog.records if "accept returned" in record.message]
    assert [record.message.split()[2] for record in retries] == ["EMFILE", "ENOBUFS"]
    assert all(record.levelno == logging.ERROR and record.name == "trio_ws.server" for record in retries)


async def test_another_accept_error_stops_the_server() -> None:
    listener = FailingListener(OSError(errno.EBADF, "Bad file descriptor"))
    server = WebSocketServer(echo_handler, [listener], ping_interval=None)
    with trio.fail_after(TIMEOUT), pytest.raises(OSError) as info:  # itself, not in an exception group
        await server.run()
    assert info.value.errno == errno.EBADF


async def test_another_accept_error_closes_open_connections_with_1001_then_raises() -> None:
    """An accept failure stops the server as a cancellation does: open connections end with 1001."""
    listener = FailingListener()
    server = WebSocketServer(echo_handler, [listener], ping_interval=None)
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            client_stream, server_stream = trio.testing.memory_stream_pair()
            await listener.incoming.send(server_stream)

            async def serve() -> None:
                with pytest.raises(OSError) as info:
                    await server.run()
                assert info.value.errno == errno.EBADF

            nursery.start_soon(serve)
            ws = await trio_ws.wrap_client_stream(nursery, client_stream, "localhost", "/", ping_interval=None)
            await ws.send_message("open")
            assert await ws.get_message() == "open"
            listener.errors.append(OSError(errno.EBADF, "Bad file descriptor"))
            await listener.incoming.send(trio.testing.memory_stream_pair()[1])  # wakes the accept
            with pytest.raises(trio_ws.ConnectionClosed) as closed:
                await ws.get_message()
            assert closed.value.reason.code == 1001


async def test_server_shutdown_while_the_handler_runs_its_own_nursery_closes_with_1001(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The handler's nursery turns the shutdown into a group of Cancelled: still a shutdown, not a crash."""
    handler_ready = trio.Event()

    async def handler(request: WebSocketRequest) -> None:
        await request.accept()
        async with trio.open_nursery() as tasks:
            tasks.start_soon(trio.sleep_forever)
            handler_ready.set()
            await trio.sleep_forever()

    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as client_nursery:
            async with trio.open_nursery() as server_nursery:
                server = await server_nursery.start(partial(trio_ws.serve_websocket, handler, HOST, 0, None))
                ws = await trio_ws.connect_websocket(
                    client_nursery, HOST, server.port, "/", use_ssl=False, ping_interval=None
                )
                await handler_ready.wait()
                server_nursery.cancel_scope.cancel()
            await ws.wait_closed()
    assert ws.closed is not None
    assert (ws.closed.code, ws.closed.reason) == (1001, "server shutting down")
    assert not [record for record in caplog.records if record.levelno >= logging.ERROR]


# -- the 101 response ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("subprotocol", "compression", "extra_headers"),
    [
        (None, None, None),
        ("chat", "deflate", None),
        ("chat", "deflate", [("X-Server", "trio_ws"), (b"Set-Cookie", b"a=1")]),
    ],
)
async def test_accept_response_is_what_h11_writes(
    subprotocol: str | None, compression: str | None, extra_headers: list[tuple[Any, Any]] | None
) -> None:
    # The 101 response is serialised directly when only our own headers are
    # in it (h11 validates the application's): the bytes must not differ.
    import h11

    from trio_ws.handshake import accept_key

    async def handler(request: WebSocketRequest) -> None:
        await request.accept(subprotocol=subprotocol, extra_headers=extra_headers)

    offer = ["Sec-WebSocket-Protocol: chat, other", "Sec-WebSocket-Extensions: permessage-deflate"]
    head = b""
    with trio.fail_after(TIMEOUT):
        async with serving(handler, compression=compression) as server:
            stream = await trio.open_tcp_stream("127.0.0.1", server.port)
            async with stream:
                await stream.send_all(upgrade_request(extra=offer))
                while b"\r\n\r\n" not in head:
                    head += await stream.receive_some(65536)
    head = head[: head.index(b"\r\n\r\n") + 4]
    expected_headers = [(name, value) for name, value in extra_headers or []]
    expected_headers += [
        ("Upgrade", "websocket"),
        ("Connection", "Upgrade"),
        ("Sec-WebSocket-Accept", accept_key(KEY.encode())),
    ]
    if subprotocol is not None:
        expected_headers.append(("Sec-WebSocket-Protocol", subprotocol))
    if compression is not None:
        # The negotiated parameters are compression's business: take them as sent.
        (answer,) = [line for line in head.split(b"\r\n") if line.startswith(b"Sec-WebSocket-Extensions: ")]
        assert answer.startswith(b"Sec-WebSocket-Extensions: permessage-deflate")
        expected_headers.append(("Sec-WebSocket-Extensions", answer.partition(b": ")[2].decode()))
    h11_server = h11.Connection(h11.SERVER)
    h11_server.receive_data(upgrade_request(extra=offer))
    assert isinstance(h11_server.next_event(), h11.Request)
    assert head == h11_server.send(h11.InformationalResponse(status_code=101, headers=expected_headers))


@pytest.mark.parametrize("own_nursery", [False, True])
async def test_a_connection_has_no_nursery_of_its_own(own_nursery: bool) -> None:
    # performance.rst: in the server's own nursery, the reader runs next to the handler's task (a
    # nursery per connection would be held by every idle connection). A caller's handler_nursery
    # gets one task per connection, as trio-websocket's does.
    seen: list[tuple[trio.Nursery | None, list[str]]] = []

    async def handler(request: WebSocketRequest) -> None:
        ws = await request.accept()
        nursery = trio.lowlevel.current_task().parent_nursery
        names = [] if nursery is None else [task.name for task in nursery.child_tasks]
        seen.append((nursery, names))
        await ws.send_message("ok")

    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            options: dict[str, Any] = {"handler_nursery": nursery} if own_nursery else {}
            server = await nursery.start(partial(trio_ws.serve_websocket, handler, "127.0.0.1", 0, None, **options))
            async with trio_ws.open_websocket("127.0.0.1", server.port, "/", use_ssl=False) as ws:
                assert await ws.get_message() == "ok"
            nursery.cancel_scope.cancel()
    [(parent, names)] = seen
    assert parent is not None
    readers = sum(name.startswith("trio_ws reader") for name in names)
    keepalives = sum(name.startswith("trio_ws keepalive") for name in names)
    if own_nursery:
        assert parent is nursery and (readers, keepalives) == (0, 0), names
    else:
        # The reader is a sibling of the handler's task (keepalive is on by default: so is its task).
        assert (readers, keepalives) == (1, 1), names
