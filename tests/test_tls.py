"""Tests of trio_ws.tls and TLS on both sides: mutual TLS, peer certificates, TLS errors.

Certificates come from trustme: one CA signs the server's certificate
(``localhost``/``127.0.0.1``) and the client's (``ann.clients.example``).
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

import pytest
import trio
import trio.testing
import trustme

import trio_ws
from trio_ws import App, HandshakeError, TLSHandshakeError, WebSocketRequest, WebSocketServer
from trio_ws.tls import peer_certificate

TIMEOUT = 10.0
QUIET = {"ping_interval": None}
CLIENT_NAME = "ann.clients.example"


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


def mutual_server_context(ca: trustme.CA) -> ssl.SSLContext:
    """A server context that requires a client certificate signed by ``ca``."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost", "127.0.0.1").configure_cert(context)
    context.verify_mode = ssl.CERT_REQUIRED
    ca.configure_trust(context)
    return context


def client_context(ca: trustme.CA, *, with_certificate: bool) -> ssl.SSLContext:
    context = ssl.create_default_context()
    ca.configure_trust(context)
    if with_certificate:
        ca.issue_cert(CLIENT_NAME).configure_cert(context)
    return context


def names(certificate: dict[str, Any] | None) -> list[str]:
    assert certificate is not None
    return [value for kind, value in certificate.get("subjectAltName", ()) if kind == "DNS"]


@asynccontextmanager
async def serving(
    handler: Callable[[WebSocketRequest], Awaitable[None]], context: ssl.SSLContext | None, **kwargs: Any
) -> AsyncIterator[int]:
    async with trio.open_nursery() as nursery:
        server: WebSocketServer = await nursery.start(
            partial(trio_ws.serve_websocket, handler, "127.0.0.1", 0, context, **QUIET, **kwargs)
        )
        yield server.port
        nursery.cancel_scope.cancel()


async def test_mutual_tls_shows_the_client_certificate_to_process_request_and_the_handler(ca: trustme.CA) -> None:
    seen: dict[str, Any] = {}

    async def process_request(request: WebSocketRequest) -> None:
        seen["process_request"] = request.peer_certificate

    async def handler(request: WebSocketRequest) -> None:
        seen["request"] = request.peer_certificate
        ws = await request.accept()
        seen["connection"] = ws.peer_certificate
        await ws.send_message("hello " + names(ws.peer_certificate)[0])
        await ws.wait_closed()

    async with serving(handler, mutual_server_context(ca), process_request=process_request) as port:
        with trio.fail_after(TIMEOUT):
            async with trio_ws.open_websocket_url(
                f"wss://127.0.0.1:{port}/", client_context(ca, with_certificate=True), **QUIET
            ) as ws:
                assert await ws.get_message() == f"hello {CLIENT_NAME}"
                assert "localhost" in names(ws.peer_certificate), "the client sees the server's certificate"
    assert names(seen["process_request"]) == [CLIENT_NAME]
    assert seen["request"] == seen["connection"] == seen["process_request"]


async def test_a_refused_client_certificate_is_a_tls_handshake_error(ca: trustme.CA) -> None:
    served = []

    async def handler(request: WebSocketRequest) -> None:
        ws = await request.accept()
        served.append(ws.peer_certificate)
        await ws.aclose()

    async with serving(handler, mutual_server_context(ca)) as port:
        with trio.fail_after(TIMEOUT), pytest.raises(TLSHandshakeError) as caught:
            async with trio_ws.open_websocket_url(
                f"wss://127.0.0.1:{port}/", client_context(ca, with_certificate=False), **QUIET
            ):
                pytest.fail("connected without a client certificate")  # pragma: no cover
        assert isinstance(caught.value, HandshakeError)
        assert not caught.value.verification_failed, "our side did not refuse anything"
        assert "client certificate" in str(caught.value)
        # The server survived the failed handshake and serves the next client.
        with trio.fail_after(TIMEOUT):
            async with trio_ws.open_websocket_url(
                f"wss://127.0.0.1:{port}/", client_context(ca, with_certificate=True), **QUIET
            ) as ws:
                await ws.wait_closed()
    assert len(served) == 1 and names(served[0]) == [CLIENT_NAME]


async def test_a_refused_client_certificate_under_tls_1_2_fails_the_tls_handshake_itself(ca: trustme.CA) -> None:
    async def handler(request: WebSocketRequest) -> None:  # pragma: no cover - never reached
        await request.accept()

    context = mutual_server_context(ca)
    context.maximum_version = ssl.TLSVersion.TLSv1_2  # the server checks the client before its Finished
    async with serving(handler, context) as port:
        with trio.fail_after(TIMEOUT), pytest.raises(TLSHandshakeError, match="TLS handshake with") as caught:
            async with trio_ws.open_websocket_url(
                f"wss://127.0.0.1:{port}/", client_context(ca, with_certificate=False), **QUIET
            ):
                pytest.fail("connected without a client certificate")  # pragma: no cover
    assert not caught.value.verification_failed


async def test_an_untrusted_server_certificate_is_a_verification_failure(ca: trustme.CA) -> None:
    other = trustme.CA()

    async def handler(request: WebSocketRequest) -> None:  # pragma: no cover - never reached
        await request.accept()

    async with serving(handler, mutual_server_context(ca)) as port:
        with trio.fail_after(TIMEOUT), pytest.raises(TLSHandshakeError, match="TLS handshake with") as caught:
            async with trio_ws.open_websocket_url(
                f"wss://127.0.0.1:{port}/", client_context(other, with_certificate=True), **QUIET
            ):
                pytest.fail("connected")  # pragma: no cover
    assert caught.value.verification_failed
    assert isinstance(caught.value.__cause__, trio.BrokenResourceError)


async def test_no_peer_certificate_without_tls_or_without_a_request_for_one(ca: trustme.CA) -> None:
    seen = []

    async def handler(request: WebSocketRequest) -> None:
        ws = await request.accept()
        seen.append((request.peer_certificate, ws.peer_certificate))
        await ws.aclose()

    server_only = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_only)  # verify_mode stays CERT_NONE
    async with serving(handler, None) as plain, serving(handler, server_only) as secure:
        with trio.fail_after(TIMEOUT):
            async with trio_ws.open_websocket_url(f"ws://127.0.0.1:{plain}/", **QUIET) as ws:
                await ws.wait_closed()
                assert ws.peer_certificate is None
            async with trio_ws.open_websocket_url(
                f"wss://127.0.0.1:{secure}/", client_context(ca, with_certificate=True), **QUIET
            ) as ws:
                await ws.wait_closed()
    assert seen == [(None, None), (None, None)]


async def test_peer_certificate_of_streams_without_tls_or_before_the_handshake(ca: trustme.CA) -> None:
    client, _server = trio.testing.memory_stream_pair()
    assert peer_certificate(client) is None
    tls = trio.SSLStream(client, client_context(ca, with_certificate=False), server_hostname="localhost")
    assert peer_certificate(tls) is None


async def test_the_app_websocket_has_the_client_certificate(ca: trustme.CA) -> None:
    app = App()

    @app.websocket("/whoami")
    async def whoami(ws: trio_ws.WebSocket) -> None:
        await ws.accept()
        await ws.send_json(names(ws.peer_certificate))

    async with trio.open_nursery() as nursery:
        server: WebSocketServer = await nursery.start(
            partial(app.serve, "127.0.0.1", 0, ssl_context=mutual_server_context(ca), **QUIET)
        )
        with trio.fail_after(TIMEOUT):
            async with trio_ws.open_websocket_url(
                f"wss://127.0.0.1:{server.port}/whoami", client_context(ca, with_certificate=True), **QUIET
            ) as ws:
                assert await ws.get_message() == f'["{CLIENT_NAME}"]'
        nursery.cancel_scope.cancel()
