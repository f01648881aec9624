"""Tests for trio_ws.request: WebSocketRequest's properties, guards and failure paths.

A raw client writes its request into an in-memory stream pair (or a TCP
socket where a reset matters) and reads the server's answer as bytes.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable

import pytest
import trio
import trio.testing
from support.rawhttp import build_request, http, read_answer, read_until_eof, status_of, upgrade_request
from support.sockets import reset_on_close

import trio_ws
from trio_ws import HandshakeError, RequestBodyError, WebSocketRequest, WebSocketServer, serve_websocket
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


# Plain HTTP requests: read_body, respond, wait_disconnected (on real sockets) --------------

Hook = Callable[[WebSocketRequest], Awaitable[None]]


async def refuse(request: WebSocketRequest) -> None:
    await request.reject(403)


async def start(nursery: trio.Nursery, hook: Hook) -> int:
    server: WebSocketServer = await nursery.start(
        lambda task_status: serve_websocket(refuse, "127.0.0.1", 0, None, process_request=hook, task_status=task_status)
    )
    return server.port


def body_echo(max_size: int | None = 100, timeout: float | None = 5.0) -> Hook:
    """Answers 200 with the body it read, or the RequestBodyError's status and message."""

    async def hook(request: WebSocketRequest) -> None:
        try:
            body = await request.read_body(max_size=max_size, timeout=timeout)
        except RequestBodyError as err:
            await request.respond(err.status_code, body=str(err).encode())
            return
        await request.respond(200, headers=[("Content-Type", "application/octet-stream")], body=body)

    return hook


async def test_read_body_with_content_length_and_chunked(nursery: trio.Nursery) -> None:
    port = await start(nursery, body_echo())
    with trio.fail_after(10):
        answer = await http(port, "POST", "/", body=b"hello")
        assert (answer.status, answer.body) == (200, b"hello")
        assert answer.headers["content-type"] == "application/octet-stream"
        chunked = b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"
        answer = await http(port, "POST", "/", headers={"Transfer-Encoding": "chunked"}, body=chunked)
        assert (answer.status, answer.body) == (200, b"abcde")
        answer = await http(port, "POST", "/", body=b"")
        assert (answer.status, answer.body) == (200, b"")


async def test_read_body_errors_carry_the_status_to_answer(nursery: trio.Nursery) -> None:
    port = await start(nursery, body_echo(max_size=10))
    with trio.fail_after(10):
        answer = await http(port, "POST", "/")
        assert (answer.status, answer.text) == (411, "POST request without Content-Length: its body length is unknown")
        answer = await http(port, "POST", "/", body=b"x" * 11)
        assert (answer.status, answer.text) == (413, "request body of 11 bytes exceeds max_size=10")
        chunked = b"8\r\n12345678\r\n8\r\n12345678\r\n0\r\n\r\n"
        answer = await http(port, "POST", "/", headers={"Transfer-Encoding": "chunked"}, body=chunked)
        assert (answer.status, answer.text) == (413, "request body exceeds max_size=10 bytes")
        answer = await http(port, "POST", "/", headers={"Transfer-Encoding": "chunked"}, body=b"zz\r\nab\r\n")
        assert answer.status == 400
        assert answer.text.startswith("malformed request body:")


async def test_read_body_defaults_are_one_mib_and_ten_seconds(nursery: trio.Nursery) -> None:
    # The security page's row: 1 MiB and 10 s unless the hook says otherwise.
    defaults = inspect.signature(WebSocketRequest.read_body).parameters
    assert (defaults["max_size"].default, defaults["timeout"].default) == (2**20, 10.0)

    async def hook(request: WebSocketRequest) -> None:
        try:
            await request.read_body()
        except RequestBodyError as err:
            await request.respond(err.status_code, body=str(err).encode())

    port = await start(nursery, hook)
    with trio.fail_after(10):
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        async with stream:
            # Declared one byte over 1 MiB: refused before any of the body is sent.
            await stream.send_all(build_request("POST", "/", headers={"Content-Length": str(2**20 + 1)}))
            answer = await read_answer(stream)
    assert (answer.status, answer.text) == (413, "request body of 1,048,577 bytes exceeds max_size=1,048,576")


async def test_read_body_cut_short_is_400(nursery: trio.Nursery) -> None:
    port = await start(nursery, body_echo())
    with trio.fail_after(10):
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        async with stream:
            await stream.send_all(build_request("POST", "/", headers={"Content-Length": "10"}, body=b"abc"))
            await stream.send_eof()
            answer = await read_answer(stream)
    assert answer.status == 400
    assert answer.text.startswith("malformed request body:")


async def test_read_body_from_a_client_that_resets_is_400(nursery: trio.Nursery) -> None:
    errors: list[RequestBodyError] = []
    failed = trio.Event()

    async def hook(request: WebSocketRequest) -> None:
        try:
            await request.read_body()
        except RequestBodyError as err:
            errors.append(err)
            failed.set()
            await request.respond(err.status_code)

    port = await start(nursery, hook)
    with trio.fail_after(10):
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        await stream.send_all(build_request("POST", "/", headers={"Content-Length": "10"}, body=b"abc"))
        await trio.testing.wait_all_tasks_blocked()
        reset_on_close(stream)
        await stream.aclose()
        await failed.wait()
    assert errors[0].status_code == 400
    assert str(errors[0]).startswith("the client went away while sending the body:")


async def test_read_body_timeout_is_408(nursery: trio.Nursery) -> None:
    port = await start(nursery, body_echo(timeout=0.2))
    with trio.fail_after(10):
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        async with stream:
            await stream.send_all(build_request("POST", "/", headers={"Content-Length": "10"}, body=b"abc"))
            answer = await read_answer(stream)
    assert (answer.status, answer.text) == (408, "the request body did not arrive within timeout=0.2 s")


async def test_read_body_without_limits(nursery: trio.Nursery) -> None:
    port = await start(nursery, body_echo(max_size=None, timeout=None))
    with trio.fail_after(10):
        answer = await http(port, "POST", "/", body=b"y" * 200_000)
    assert (answer.status, len(answer.body)) == (200, 200_000)


async def test_read_body_twice_or_after_answering_raises(nursery: trio.Nursery) -> None:
    errors: list[str] = []
    finished = trio.Event()

    async def hook(request: WebSocketRequest) -> None:
        await request.read_body()
        with pytest.raises(HandshakeError, match="already answered or its body already read") as info:
            await request.read_body()
        errors.append(str(info.value))
        await request.respond(204)
        with pytest.raises(HandshakeError, match="already answered"):
            await request.respond(200)
        with pytest.raises(HandshakeError, match="already answered"):
            await request.read_body()
        errors.append("done")
        finished.set()

    port = await start(nursery, hook)
    with trio.fail_after(10):
        answer = await http(port, "POST", "/", body=b"x")
        await finished.wait()
    assert answer.status == 204
    assert len(errors) == 2


async def test_respond_has_no_body_limit_and_checks_the_status(nursery: trio.Nursery) -> None:
    big = b"z" * (2**20 + 10)

    async def hook(request: WebSocketRequest) -> None:
        with pytest.raises(ValueError, match="status_code must be between 200 and 599, not 99"):
            await request.respond(99)
        with pytest.raises(ValueError, match="exceeds"):
            await request.reject(200, body=big)  # reject keeps its 1 MiB bound
        await request.respond(200, body=big)

    port = await start(nursery, hook)
    with trio.fail_after(10):
        answer = await http(port, "GET", "/")
    assert (answer.status, len(answer.body)) == (200, len(big))
    assert answer.headers["content-type"] == "text/plain; charset=utf-8"
    assert answer.headers["connection"] == "close"


async def test_wait_disconnected_notices_a_client_that_leaves(nursery: trio.Nursery) -> None:
    noticed = trio.Event()

    async def hook(request: WebSocketRequest) -> None:
        await request.wait_disconnected()
        noticed.set()

    port = await start(nursery, hook)
    with trio.fail_after(10):
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        await stream.send_all(build_request("GET", "/"))
        await trio.testing.wait_all_tasks_blocked()
        assert not noticed.is_set()
        await stream.send_all(b"pipelined bytes are discarded")
        await stream.aclose()
        await noticed.wait()


async def test_wait_disconnected_returns_once_answered_from_another_task(nursery: trio.Nursery) -> None:
    returned = trio.Event()

    async def hook(request: WebSocketRequest) -> None:
        async with trio.open_nursery() as inner:

            async def watch() -> None:
                await request.wait_disconnected()
                returned.set()

            inner.start_soon(watch)
            await trio.testing.wait_all_tasks_blocked()
            await request.respond(200, body=b"held, then answered")
        await request.wait_disconnected()  # answered: returns at once

    port = await start(nursery, hook)
    with trio.fail_after(10):
        answer = await http(port, "GET", "/")
        await returned.wait()
    assert answer.text == "held, then answered"


async def test_wait_disconnected_refuses_an_accepted_websocket(nursery: trio.Nursery) -> None:
    from trio_ws import open_websocket_url

    seen: list[str] = []

    async def handler(request: WebSocketRequest) -> None:
        await request.accept()
        with pytest.raises(HandshakeError, match="belongs to its connection") as info:
            await request.wait_disconnected()
        seen.append(str(info.value))

    server = await nursery.start(serve_websocket, handler, "127.0.0.1", 0, None)
    with trio.fail_after(10):
        async with open_websocket_url(f"ws://127.0.0.1:{server.port}/") as ws:
            await ws.wait_closed()
    assert seen == ["an accepted WebSocket request's transport belongs to its connection"]
