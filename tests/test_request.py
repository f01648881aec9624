"""Tests for trio_ws.request: WebSocketRequest's properties, guards and failure paths.

A raw client writes its request into an in-memory stream pair (or a TCP
socket where a reset matters) and reads the server's answer as bytes.
"""

from __future__ import annotations

import pytest
import trio
import trio.testing
from support.rawhttp import read_until_eof, status_of, upgrade_request
from support.sockets import reset_on_close

import trio_ws
from trio_ws import HandshakeError, WebSocketRequest
from trio_ws.log import ConnectionLogger, next_connection_id, server_logger
from trio_ws.options import ConnectionOptions
from trio_ws.request import read_request

TIMEOUT = 10.0
UPGRADE = upgrade_request(path="/chat")
PLAIN_GET = b"GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n"


async def request_over_memory(nursery: trio.Nursery, request: bytes) -> tuple[WebSocketRequest, trio.abc.Stream]:
    """Send ``request`` from a raw client; return the server's request and the client's stream."""
    client_stream, server_stream = trio.testing.memory_stream_pair()
    await client_stream.send_all(request)
    return await trio_ws.wrap_server_stream(nursery, server_stream, ping_interval=None), client_stream


# -- properties -------------------------------------------------------------------
@pytest.mark.parametrize(
    ("raw", "method", "is_websocket"),
    [
        (UPGRADE, "GET", True),
        (b"POST /form HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\n\r\n", "POST", False),
        (b"DELETE /x HTTP/1.1\r\nHost: localhost\r\n\r\n", "DELETE", False),
    ],
    ids=["upgrade", "post", "delete"],
)
async def test_method_is_the_request_method(nursery: trio.Nursery, raw: bytes, method: str, is_websocket: bool) -> None:
    with trio.fail_after(TIMEOUT):
        request, _ = await request_over_memory(nursery, raw)
    assert request.method == method
    assert request.is_websocket is is_websocket


# -- accept ------------------------------------------------------------------------
async def test_accept_or_reject_after_accept_is_handshake_error(nursery: trio.Nursery) -> None:
    with trio.fail_after(TIMEOUT):
        request, client = await request_over_memory(nursery, UPGRADE)
        ws = await request.accept()
        with pytest.raises(HandshakeError, match="already accepted or rejected"):
            await request.accept()
        with pytest.raises(HandshakeError, match="already accepted or rejected"):
            await request.reject(403)
        assert request.connection is ws
        head = await client.receive_some(65536)
    assert status_of(head) == 101  # only the first answer went out


async def test_accepting_a_plain_http_request_answers_426(nursery: trio.Nursery) -> None:
    with trio.fail_after(TIMEOUT):
        request, client = await request_over_memory(nursery, PLAIN_GET)
        with pytest.raises(HandshakeError, match="not a WebSocket upgrade"):
            await request.accept()
        response = await read_until_eof(client)
    assert request.answered
    assert request.connection is None
    assert status_of(response) == 426
    assert b"only speaks WebSocket" in response


async def test_accept_of_an_unbound_request_is_runtime_error_and_leaves_it_open() -> None:
    """read_request returns a request not yet bound to a nursery: it cannot be accepted."""
    client_stream, server_stream = trio.testing.memory_stream_pair()
    await client_stream.send_all(UPGRADE)
    logger = ConnectionLogger(server_logger, next_connection_id())
    with trio.fail_after(TIMEOUT):
        request = await read_request(server_stream, ConnectionOptions.from_kwargs(), logger)
        assert request is not None
        with pytest.raises(RuntimeError, match="not bound to a nursery"):
            await request.accept()
        assert not request.answered  # still answerable
        await request.reject(503, body=b"try later")
        response = await read_until_eof(client_stream)
    assert status_of(response) == 503
    assert response.endswith(b"try later")


async def test_accept_with_an_invalid_header_is_value_error_and_closes(nursery: trio.Nursery) -> None:
    with trio.fail_after(TIMEOUT):
        request, client = await request_over_memory(nursery, UPGRADE)
        with pytest.raises(ValueError, match="invalid response header"):
            await request.accept(extra_headers=[("Bad Header Name", "x")])
        assert await read_until_eof(client) == b""  # closed without a half-made answer
    assert request.connection is None


async def test_accept_after_the_client_left_is_handshake_error(nursery: trio.Nursery) -> None:
    with trio.fail_after(TIMEOUT):
        request, client = await request_over_memory(nursery, UPGRADE)
        await client.aclose()
        with pytest.raises(HandshakeError, match="client went away during the handshake"):
            await request.accept()
    assert request.connection is None


async def test_accept_cancelled_while_answering_closes_the_transport(nursery: trio.Nursery) -> None:
    with trio.fail_after(TIMEOUT):
        request, client = await request_over_memory(nursery, UPGRADE)
        with trio.CancelScope() as scope:
            scope.cancel()
            await request.accept()
        assert scope.cancelled_caught
        assert await read_until_eof(client) == b""  # no 101, and EOF
    assert request.connection is None


async def test_reject_invalid_leaves_a_valid_upgrade_alone(nursery: trio.Nursery) -> None:
    with trio.fail_after(TIMEOUT):
        request, client = await request_over_memory(nursery, UPGRADE)
        await request.reject_invalid()
        assert not request.answered
        ws = await request.accept()
        assert status_of(await client.receive_some(65536)) == 101
    assert ws.path == "/chat"


# -- reject ------------------------------------------------------------------------
async def test_reject_checks_its_arguments_before_answering(nursery: trio.Nursery) -> None:
    with trio.fail_after(TIMEOUT):
        request, client = await request_over_memory(nursery, UPGRADE)
        for status in (199, 600, 101):
            with pytest.raises(ValueError, match="between 200 and 599"):
                await request.reject(status)
        with pytest.raises(ValueError, match="exceeds 1,048,576 bytes"):
            await request.reject(413, body=b"x" * (2**20 + 1))
        assert not request.answered
        await request.reject(413, body=b"x" * 2**20)  # exactly the limit is fine
        response = await read_until_eof(client)
    assert status_of(response) == 413
    assert response.endswith(b"x" * 2**20)


async def test_reject_with_an_invalid_header_is_value_error_and_closes(nursery: trio.Nursery) -> None:
    with trio.fail_after(TIMEOUT):
        request, client = await request_over_memory(nursery, UPGRADE)
        with pytest.raises(ValueError, match="invalid response"):
            await request.reject(401, extra_headers=[("WWW Authenticate", "Basic")])
        assert await read_until_eof(client) == b""


async def test_reject_after_the_client_left_is_quiet(nursery: trio.Nursery) -> None:
    with trio.fail_after(TIMEOUT):
        request, client = await request_over_memory(nursery, UPGRADE)
        await client.aclose()
        await request.reject(403, body=b"nobody listens")  # no exception
    assert request.answered


# -- reading the request -----------------------------------------------------------
async def test_client_reset_before_its_request_is_handshake_error(nursery: trio.Nursery) -> None:
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    async with listeners[0]:
        port = listeners[0].socket.getsockname()[1]
        with trio.fail_after(TIMEOUT):
            client = await trio.open_tcp_stream("127.0.0.1", port)
            server_stream = await listeners[0].accept()
            reset_on_close(client)
            await client.aclose()  # a TCP reset, not a FIN
            with pytest.raises(HandshakeError, match="invalid request or went away"):
                await trio_ws.wrap_server_stream(nursery, server_stream)


async def test_tls_client_hello_on_a_plain_port_is_refused_at_once(nursery: trio.Nursery) -> None:
    client_stream, server_stream = trio.testing.memory_stream_pair()
    await client_stream.send_all(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")  # the start of a ClientHello
    with trio.fail_after(TIMEOUT):
        with pytest.raises(HandshakeError):
            await trio_ws.wrap_server_stream(nursery, server_stream)
        response = await read_until_eof(client_stream)
    assert status_of(response) == 400
    assert response.endswith(b"TLS handshake received on a plain-text (ws://) port")
