"""Interop: trio_ws against websockets' Trio implementation, in one Trio run.

``websockets.trio`` (websockets >= 17) is an independent implementation of
RFC 6455 / RFC 7692 that runs on Trio, so both ends live in the test's own Trio
run and the test drives both connection objects directly over a real
127.0.0.1 TCP connection.

Most tests run in both directions: ``role="client"`` means trio_ws is the
client and websockets the server, ``role="server"`` the opposite.
"""

from __future__ import annotations

import functools
import math
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import pytest
import trio
from support.interop import (
    BIG_LIMIT,
    SHUTDOWN_GRACE,
    TIMEOUT,
    CountingProxy,
    MiB,
    big_binary,
    big_text,
    compressible_payload,
    counting_proxy,
    extension_names,
    header_values,
    single_exceptions,
)
from websockets.exceptions import ConnectionClosed as WsConnectionClosed
from websockets.exceptions import InvalidHandshake, InvalidStatus
from websockets.extensions.permessage_deflate import ClientPerMessageDeflateFactory
from websockets.trio.client import connect as ws_connect
from websockets.trio.server import serve as ws_serve

import trio_ws

ROLES = pytest.mark.parametrize("role", ["client", "server"])
COMPRESSIONS = pytest.mark.parametrize("compression", ["deflate", None])

SMALL_MESSAGES = [
    "hello, websockets",
    "unicode: h\u00e9llo w\u00f6rld \u2603 \U0001f600",
    b"\x00\x01\x02 binary \xff\xfe",
    "",
    b"",
]

CLOSE_CASES = [
    pytest.param(1000, "", id="1000"),
    pytest.param(1001, "", id="1001"),
    pytest.param(1000, "all done", id="1000-reason"),
    pytest.param(4000, "custom reason \u2713", id="4000-reason"),
]

#: websockets options used everywhere: no automatic keepalive pings, so the
#: tests control every control frame; a short closing timeout.
WS_DEFAULTS: dict[str, Any] = {"ping_interval": None, "close_timeout": 5}


@dataclass
class Pair:
    """Both ends of one WebSocket connection."""

    ws: trio_ws.WebSocketConnection  # the trio_ws end
    peer: Any  # the websockets end (ClientConnection or ServerConnection)
    request: trio_ws.WebSocketRequest | None  # set when trio_ws is the server
    #: Stop whichever side is the server; returns the seconds it took to stop
    #: (``math.inf`` if it did not stop within SHUTDOWN_GRACE).
    shutdown_server: Callable[[], Awaitable[float]]
    proxy: CountingProxy | None


@asynccontextmanager
async def connected(
    role: str,
    *,
    trio_ws_options: dict[str, Any] | None = None,
    websockets_options: dict[str, Any] | None = None,
    choose_subprotocol: Callable[[trio_ws.WebSocketRequest], str | None] | None = None,
    via_proxy: bool = False,
) -> AsyncIterator[Pair]:
    """Open a trio_ws <-> websockets connection with trio_ws in ``role``."""
    trio_ws_options = trio_ws_options or {}
    websockets_options = {**WS_DEFAULTS, **(websockets_options or {})}
    send, receive = trio.open_memory_channel[Any](1)

    with single_exceptions():
        async with trio.open_nursery() as nursery:
            try:
                if role == "client":
                    async with (
                        _websockets_server(nursery, send, websockets_options) as (port, shutdown),
                        _maybe_proxy(port, via_proxy) as (target_port, proxy),
                        trio_ws.open_websocket(
                            "127.0.0.1", target_port, "/interop", use_ssl=False, **trio_ws_options
                        ) as ws,
                    ):
                        peer = await receive.receive()
                        yield Pair(ws, peer, None, shutdown, proxy)
                else:
                    async with (
                        _trio_ws_server(nursery, send, trio_ws_options, choose_subprotocol) as (
                            port,
                            shutdown,
                        ),
                        _maybe_proxy(port, via_proxy) as (target_port, proxy),
                        ws_connect(f"ws://127.0.0.1:{target_port}/interop", **websockets_options) as peer,
                    ):
                        request, ws = await receive.receive()
                        yield Pair(ws, peer, request, shutdown, proxy)
            finally:
                nursery.cancel_scope.cancel()


@asynccontextmanager
async def _trio_ws_server(
    nursery: trio.Nursery,
    send: trio.MemorySendChannel[Any],
    options: dict[str, Any],
    choose_subprotocol: Callable[[trio_ws.WebSocketRequest], str | None] | None,
) -> AsyncIterator[tuple[int, Callable[[], Awaitable[float]]]]:
    """trio_ws server whose handler hands each connection to the test.

    The handler keeps its connection open until the test is over or the
    server is shut down.
    """
    finished = trio.Event()
    stopped = trio.Event()
    scope = trio.CancelScope()

    async def handler(request: trio_ws.WebSocketRequest) -> None:
        subprotocol = choose_subprotocol(request) if choose_subprotocol else None
        ws = await request.accept(subprotocol=subprotocol)
        await send.send((request, ws))
        await finished.wait()

    async def run(task_status: trio.TaskStatus[Any]) -> None:
        try:
            with scope:
                await trio_ws.serve_websocket(handler, "127.0.0.1", 0, None, task_status=task_status, **options)
        finally:
            stopped.set()

    async def shutdown() -> float:
        # Per the spec, cancelling the server closes each connection with 1001.
        start = trio.current_time()
        scope.cancel()
        with trio.move_on_after(SHUTDOWN_GRACE):
            await stopped.wait()
        return trio.current_time() - start if stopped.is_set() else math.inf

    server = await nursery.start(run)
    try:
        yield server.port, shutdown
    finally:
        finished.set()


@asynccontextmanager
async def _websockets_server(
    nursery: trio.Nursery, send: trio.MemorySendChannel[Any], options: dict[str, Any]
) -> AsyncIterator[tuple[int, Callable[[], Awaitable[float]]]]:
    """websockets.trio server handing each connection to the test."""

    async def ws_handler(connection: Any) -> None:
        await send.send(connection)
        await connection.wait_closed()

    server = await nursery.start(functools.partial(ws_serve, ws_handler, 0, host="127.0.0.1", **options))

    async def shutdown() -> float:
        start = trio.current_time()
        with trio.move_on_after(SHUTDOWN_GRACE):
            await server.aclose()
            return trio.current_time() - start
        return math.inf

    try:
        yield server.listeners[0].socket.getsockname()[1], shutdown
    finally:
        # Server.aclose() is idempotent; it closes open connections with 1001.
        await server.aclose()


@asynccontextmanager
async def _maybe_proxy(port: int, enabled: bool) -> AsyncIterator[tuple[int, CountingProxy | None]]:
    if not enabled:
        yield port, None
        return
    async with counting_proxy(port) as proxy:
        yield proxy.port, proxy


def both(compression: str | None, **extra: Any) -> dict[str, Any]:
    """Options for ``connected``: same compression setting on both ends."""
    return {
        "trio_ws_options": {"compression": compression, **extra.get("trio_ws", {})},
        "websockets_options": {"compression": compression, **extra.get("websockets", {})},
    }


async def round_trip(pair: Pair, message: str | bytes) -> None:
    """trio_ws -> websockets, then websockets -> trio_ws, checking type and value."""
    await pair.ws.send_message(message)
    received = await pair.peer.recv()
    assert type(received) is type(message)
    assert received == message
    await pair.peer.send(received)
    echoed = await pair.ws.get_message()
    assert type(echoed) is type(message)
    assert echoed == message


async def peer_close_exception(peer: Any) -> WsConnectionClosed:
    """The ConnectionClosed websockets raises once the connection is closed."""
    with pytest.raises(WsConnectionClosed) as exc_info:
        await peer.recv()
    return exc_info.value


# --------------------------------------------------------------------------
# Data messages
# --------------------------------------------------------------------------


@ROLES
@COMPRESSIONS
async def test_small_messages(role: str, compression: str | None) -> None:
    with trio.fail_after(TIMEOUT):
        async with connected(role, **both(compression)) as pair:
            assert pair.ws.subprotocol is None
            assert pair.ws.is_client == (role == "client")
            assert pair.ws.is_server == (role == "server")
            for message in SMALL_MESSAGES:
                await round_trip(pair, message)


@ROLES
@COMPRESSIONS
async def test_one_mib_messages(role: str, compression: str | None) -> None:
    limits = {"trio_ws": {"max_message_size": BIG_LIMIT}, "websockets": {"max_size": BIG_LIMIT}}
    with trio.fail_after(TIMEOUT):
        async with connected(role, **both(compression, **limits)) as pair:
            await round_trip(pair, big_binary())
            await round_trip(pair, big_text())


@ROLES
async def test_exactly_default_max_message_size_is_accepted(role: str) -> None:
    # MAX_MESSAGE_SIZE is 1 MiB; a message of exactly that size must pass.
    payload = random.Random(1).randbytes(trio_ws.MAX_MESSAGE_SIZE)
    with trio.fail_after(TIMEOUT):
        async with connected(role, websockets_options={"max_size": BIG_LIMIT}) as pair:
            await pair.peer.send(payload)
            assert await pair.ws.get_message() == payload


@ROLES
async def test_message_over_max_size_closes_with_1009(role: str) -> None:
    with trio.fail_after(TIMEOUT):
        async with connected(role, trio_ws_options={"max_message_size": 1000}) as pair:
            await pair.peer.send(b"x" * 1001)
            with pytest.raises(trio_ws.ConnectionClosed) as exc_info:
                await pair.ws.get_message()
            assert exc_info.value.reason.code == 1009
            closed = await peer_close_exception(pair.peer)
            assert closed.rcvd is not None
            assert closed.rcvd.code == 1009


# --------------------------------------------------------------------------
# Ping / pong
# --------------------------------------------------------------------------


@ROLES
async def test_trio_ws_ping_answered_by_websockets(role: str) -> None:
    with trio.fail_after(TIMEOUT):
        async with connected(role) as pair:
            # ping() returns only once the matching pong came back.
            await pair.ws.ping(b"trio_ws ping")
            await pair.ws.ping()
            await round_trip(pair, "still open")


@ROLES
async def test_websockets_ping_answered_by_trio_ws(role: str) -> None:
    with trio.fail_after(TIMEOUT):
        async with connected(role) as pair:
            for payload in (b"websockets ping", b"", None):
                pong_received = await pair.peer.ping(payload)
                await pong_received.wait()
            await round_trip(pair, b"still open")


@ROLES
async def test_unsolicited_pong_is_harmless(role: str) -> None:
    with trio.fail_after(TIMEOUT):
        async with connected(role) as pair:
            await pair.ws.pong(b"heartbeat")
            await pair.peer.pong(b"heartbeat")
            await round_trip(pair, "after pongs")


# --------------------------------------------------------------------------
# Closing handshake
# --------------------------------------------------------------------------


@ROLES
@pytest.mark.parametrize(("code", "reason"), CLOSE_CASES)
async def test_trio_ws_closes(role: str, code: int, reason: str) -> None:
    with trio.fail_after(TIMEOUT):
        async with connected(role) as pair:
            await pair.ws.aclose(code, reason or None)
            assert pair.ws.closed is not None
            closed = await peer_close_exception(pair.peer)
            assert closed.rcvd is not None
            assert (closed.rcvd.code, closed.rcvd.reason) == (code, reason)
            # websockets echoes the close frame it received.
            assert closed.sent is not None
            assert (closed.sent.code, closed.sent.reason) == (code, reason)
            with pytest.raises(trio_ws.ConnectionClosed):
                await pair.ws.send_message("too late")


@ROLES
@pytest.mark.parametrize(("code", "reason"), CLOSE_CASES)
async def test_websockets_closes(role: str, code: int, reason: str) -> None:
    # The whole-test bound outlasts the peer's close_timeout, so that a close
    # that needed it fails the assertion below, not the bound.
    with trio.fail_after(TIMEOUT + 30):
        async with connected(role, websockets_options={"close_timeout": 30}) as pair:
            start = trio.current_time()
            await pair.peer.aclose(code, reason)
            # websockets' aclose() waits for the closing handshake *and* the end
            # of the TCP connection; it must not need its 30 s close_timeout
            # (it takes milliseconds; the margin is for a loaded machine).
            assert trio.current_time() - start < 10
            closed = await peer_close_exception(pair.peer)
            assert closed.sent is not None
            assert (closed.sent.code, closed.sent.reason) == (code, reason)
            # trio_ws answered with a close frame echoing the code.
            assert closed.rcvd is not None
            assert closed.rcvd.code == code
            with pytest.raises(trio_ws.ConnectionClosed) as exc_info:
                await pair.ws.get_message()
            assert exc_info.value.reason.code == code
            assert (exc_info.value.reason.reason or "") == reason
            assert pair.ws.closed is not None
            assert pair.ws.closed.code == code


@ROLES
@pytest.mark.parametrize(
    ("code", "clean"), [(1000, True), (1001, True), (4000, False), (1011, False)]
)
async def test_iteration_stops_on_close(role: str, code: int, clean: bool) -> None:
    with trio.fail_after(TIMEOUT):
        async with connected(role) as pair:
            await pair.peer.send("one")
            await pair.peer.send(b"two")
            received: list[str | bytes] = []

            async def consume() -> None:
                async for message in pair.ws:
                    received.append(message)

            async with trio.open_nursery() as nursery:
                nursery.start_soon(pair.peer.aclose, code, "bye")
                if clean:
                    await consume()
                else:
                    with pytest.raises(trio_ws.ConnectionClosed) as exc_info:
                        await consume()
                    assert exc_info.value.reason.code == code
            assert received == ["one", b"two"]


async def test_websockets_server_shutdown_gives_1001() -> None:
    with trio.fail_after(TIMEOUT):
        async with connected("client") as pair:
            await round_trip(pair, "before shutdown")
            received = []
            async with trio.open_nursery() as nursery:
                nursery.start_soon(pair.shutdown_server)
                # 1001 is a normal end for iteration: no exception.
                async for message in pair.ws:
                    received.append(message)
            assert received == []
            assert pair.ws.closed is not None
            assert pair.ws.closed.code == 1001
            with pytest.raises(trio_ws.ConnectionClosed) as exc_info:
                await pair.ws.get_message()
            assert exc_info.value.reason.code == 1001


@pytest.mark.parametrize("traffic", ["idle", "after-send", "after-receive"])
async def test_trio_ws_server_shutdown_gives_1001(traffic: str) -> None:
    # Extra time: a shutdown stuck in trio_ws' shielded close would outlive
    # TIMEOUT and hide the assertions below behind a TooSlowError.
    with trio.fail_after(TIMEOUT + 15):
        async with connected("server") as pair:
            if traffic == "after-send":
                await pair.ws.send_message("from trio_ws")
                assert await pair.peer.recv() == "from trio_ws"
            elif traffic == "after-receive":
                await pair.peer.send("from websockets")
                assert await pair.ws.get_message() == "from websockets"
            took = await pair.shutdown_server()
            closed = await peer_close_exception(pair.peer)
            assert closed.rcvd is not None, "connection dropped without a close frame"
            assert closed.rcvd.code == 1001
            # websockets answered at once, so no waiting for disconnect_timeout.
            assert took < SHUTDOWN_GRACE


async def test_trio_ws_server_shutdown_closes_every_connection() -> None:
    connections = 6
    outcomes: list[WsConnectionClosed] = []
    welcomed = trio.Semaphore(0)
    stopped = trio.Event()

    async def handler(request: trio_ws.WebSocketRequest) -> None:
        ws = await request.accept()
        await ws.send_message("welcome")
        await trio.sleep_forever()

    async def one_client(port: int) -> None:
        async with ws_connect(f"ws://127.0.0.1:{port}/", **{**WS_DEFAULTS, "close_timeout": 1}) as peer:
            assert await peer.recv() == "welcome"
            welcomed.release()
            outcomes.append(await peer_close_exception(peer))

    # A shutdown stuck in trio_ws' shielded close would outlive TIMEOUT; allow
    # for it so that the assertions below report what happened.
    with trio.fail_after(TIMEOUT + 15), single_exceptions():
        async with trio.open_nursery() as nursery:
            server_scope = trio.CancelScope()

            async def run(task_status: trio.TaskStatus[Any]) -> None:
                try:
                    with server_scope:
                        await trio_ws.serve_websocket(handler, "127.0.0.1", 0, None, task_status=task_status)
                finally:
                    stopped.set()

            server = await nursery.start(run)
            async with trio.open_nursery() as clients:
                for _ in range(connections):
                    clients.start_soon(one_client, server.port)
                for _ in range(connections):
                    await welcomed.acquire()
                start = trio.current_time()
                server_scope.cancel()
                with trio.move_on_after(SHUTDOWN_GRACE):
                    await stopped.wait()
                took = trio.current_time() - start if stopped.is_set() else math.inf
    rcvd = [None if exc.rcvd is None else exc.rcvd.code for exc in outcomes]
    assert rcvd == [1001] * connections
    assert took < SHUTDOWN_GRACE


async def test_trio_ws_handler_exception_gives_1011() -> None:
    async def handler(request: trio_ws.WebSocketRequest) -> None:
        ws = await request.accept()
        await ws.send_message("about to fail")
        raise RuntimeError("handler failure (expected by the test)")

    with trio.fail_after(TIMEOUT), single_exceptions():
        async with trio.open_nursery() as nursery:
            server = await nursery.start(
                functools.partial(trio_ws.serve_websocket, handler, "127.0.0.1", 0, None)
            )
            async with ws_connect(f"ws://127.0.0.1:{server.port}/", **WS_DEFAULTS) as peer:
                assert await peer.recv() == "about to fail"
                closed = await peer_close_exception(peer)
                assert closed.rcvd is not None
                assert closed.rcvd.code == 1011
            # The server survives and accepts the next connection.
            async with ws_connect(f"ws://127.0.0.1:{server.port}/", **WS_DEFAULTS) as peer:
                assert await peer.recv() == "about to fail"
            nursery.cancel_scope.cancel()


# --------------------------------------------------------------------------
# Subprotocols
# --------------------------------------------------------------------------


async def test_subprotocol_trio_ws_client() -> None:
    with trio.fail_after(TIMEOUT):
        async with connected(
            "client",
            trio_ws_options={"subprotocols": ["chat.v2", "chat.v1"]},
            websockets_options={"subprotocols": ["chat.v1", "chat.v2"]},
        ) as pair:
            # websockets picks the first of its own list the client offered.
            assert pair.peer.subprotocol == "chat.v1"
            assert pair.ws.subprotocol == "chat.v1"
            offered = pair.peer.request.headers.get_all("Sec-WebSocket-Protocol")
            assert [p.strip() for p in ",".join(offered).split(",")] == ["chat.v2", "chat.v1"]
            await round_trip(pair, "negotiated")


async def test_subprotocol_trio_ws_client_mismatch_rejected() -> None:
    with trio.fail_after(TIMEOUT):
        with pytest.raises(trio_ws.ConnectionRejected) as exc_info:
            async with connected(
                "client",
                trio_ws_options={"subprotocols": ["something.else"]},
                websockets_options={"subprotocols": ["only.this"]},
            ):
                pass
        assert exc_info.value.status_code == 400


@pytest.mark.parametrize(
    ("pick", "expected"),
    [
        pytest.param(lambda offered: offered[-1], "chat.v2", id="last-offered"),
        pytest.param(lambda offered: offered[0], "chat.v1", id="first-offered"),
        pytest.param(lambda offered: None, None, id="none"),
    ],
)
async def test_subprotocol_trio_ws_server(
    pick: Callable[[list[str]], str | None], expected: str | None
) -> None:
    with trio.fail_after(TIMEOUT):
        async with connected(
            "server",
            websockets_options={"subprotocols": ["chat.v1", "chat.v2"]},
            choose_subprotocol=lambda request: pick(list(request.proposed_subprotocols)),
        ) as pair:
            assert pair.request is not None
            assert list(pair.request.proposed_subprotocols) == ["chat.v1", "chat.v2"]
            assert pair.ws.subprotocol == expected
            assert pair.peer.subprotocol == expected
            await round_trip(pair, "negotiated")


async def test_trio_ws_server_picking_unoffered_subprotocol_fails_websockets() -> None:
    # A server answering with a subprotocol the client never offered is a
    # handshake error for the client (RFC 6455 4.1); websockets enforces it.
    with trio.fail_after(TIMEOUT):
        with pytest.raises(InvalidHandshake):
            async with connected(
                "server",
                websockets_options={"subprotocols": ["chat.v1"]},
                choose_subprotocol=lambda request: "not.offered",
            ):
                pass


# --------------------------------------------------------------------------
# Compression (permessage-deflate, RFC 7692)
# --------------------------------------------------------------------------


@pytest.mark.parametrize("websockets_compression", ["deflate", None])
@pytest.mark.parametrize("trio_ws_compression", ["deflate", None])
async def test_compression_negotiation_trio_ws_client(
    trio_ws_compression: str | None, websockets_compression: str | None
) -> None:
    negotiated = trio_ws_compression is not None and websockets_compression is not None
    with trio.fail_after(TIMEOUT):
        async with connected(
            "client",
            trio_ws_options={"compression": trio_ws_compression},
            websockets_options={"compression": websockets_compression},
        ) as pair:
            offered = extension_names(pair.peer.request.headers.get("Sec-WebSocket-Extensions"))
            assert ("permessage-deflate" in offered) == (trio_ws_compression is not None)
            accepted = extension_names(pair.peer.response.headers.get("Sec-WebSocket-Extensions"))
            assert accepted == (["permessage-deflate"] if negotiated else [])
            seen = header_values(pair.ws.handshake_headers, "Sec-WebSocket-Extensions")
            assert extension_names(", ".join(seen)) == accepted
            await round_trip(pair, "compress me " * 50)
            await round_trip(pair, b"\x00" * 1000)


@pytest.mark.parametrize("websockets_compression", ["deflate", None])
@pytest.mark.parametrize("trio_ws_compression", ["deflate", None])
async def test_compression_negotiation_trio_ws_server(
    trio_ws_compression: str | None, websockets_compression: str | None
) -> None:
    negotiated = trio_ws_compression is not None and websockets_compression is not None
    with trio.fail_after(TIMEOUT):
        async with connected(
            "server",
            trio_ws_options={"compression": trio_ws_compression},
            websockets_options={"compression": websockets_compression},
        ) as pair:
            assert pair.request is not None
            offered = header_values(pair.request.headers, "Sec-WebSocket-Extensions")
            assert ("permessage-deflate" in extension_names(", ".join(offered))) == (
                websockets_compression is not None
            )
            accepted = extension_names(pair.peer.response.headers.get("Sec-WebSocket-Extensions"))
            assert accepted == (["permessage-deflate"] if negotiated else [])
            await round_trip(pair, "compress me " * 50)
            await round_trip(pair, b"\x00" * 1000)


def deflate_params(header: str | None) -> dict[str, str | None]:
    """Parameters of the permessage-deflate entry of a Sec-WebSocket-Extensions value."""
    assert header is not None
    name, *params = [part.strip() for part in header.split(";")]
    assert name.lower() == "permessage-deflate"
    result: dict[str, str | None] = {}
    for param in params:
        key, _, value = param.partition("=")
        result[key.strip().lower()] = value.strip().strip('"') or None
    return result


def window_stressing_payloads() -> list[bytes]:
    """Messages whose repeats lie 3000 bytes back (past a 2**10 window), sent twice
    (a second identical message is where a kept context would be used)."""
    block = random.Random(9).randbytes(3000)
    message = block * 20
    return [message, message, block[:100] * 50]


@pytest.mark.parametrize(
    ("deflate_kwargs", "expected"),
    [
        pytest.param({"client_no_context_takeover": True}, {"client_no_context_takeover": None}, id="client-no-ctx"),
        pytest.param({"server_no_context_takeover": True}, {"server_no_context_takeover": None}, id="server-no-ctx"),
        pytest.param({"server_max_window_bits": 10}, {"server_max_window_bits": "10"}, id="server-wbits-10"),
        pytest.param({"client_max_window_bits": 10}, {"client_max_window_bits": "10"}, id="client-wbits-10"),
        pytest.param(
            {
                "server_max_window_bits": 9,
                "client_max_window_bits": 9,
                "server_no_context_takeover": True,
                "client_no_context_takeover": True,
            },
            {
                "server_max_window_bits": "9",
                "client_max_window_bits": "9",
                "server_no_context_takeover": None,
                "client_no_context_takeover": None,
            },
            id="all",
        ),
    ],
)
async def test_deflate_parameters_trio_ws_client(deflate_kwargs: dict[str, Any], expected: dict[str, Any]) -> None:
    with trio.fail_after(TIMEOUT):
        async with connected(
            "client", trio_ws_options={"compression": trio_ws.Deflate(**deflate_kwargs)}
        ) as pair:
            response = deflate_params(pair.peer.response.headers.get("Sec-WebSocket-Extensions"))
            for key, value in expected.items():
                assert key in response
                assert response[key] == value
            seen = header_values(pair.ws.handshake_headers, "Sec-WebSocket-Extensions")
            assert len(seen) == 1
            assert deflate_params(seen[0]) == response
            for message in window_stressing_payloads():
                await round_trip(pair, message)


@pytest.mark.parametrize(
    ("factory_kwargs", "required"),
    [
        pytest.param({"server_no_context_takeover": True}, {"server_no_context_takeover"}, id="server-no-ctx"),
        pytest.param({"client_no_context_takeover": True}, set(), id="client-no-ctx"),
        pytest.param({"server_max_window_bits": 10}, {"server_max_window_bits"}, id="server-wbits-10"),
        pytest.param({"client_max_window_bits": 10}, set(), id="client-wbits-10"),
        pytest.param(
            {
                "server_max_window_bits": 9,
                "client_max_window_bits": 9,
                "server_no_context_takeover": True,
                "client_no_context_takeover": True,
            },
            {"server_max_window_bits", "server_no_context_takeover"},
            id="all",
        ),
    ],
)
async def test_deflate_parameters_trio_ws_server(factory_kwargs: dict[str, Any], required: set[str]) -> None:
    extension = ClientPerMessageDeflateFactory(**factory_kwargs)
    with trio.fail_after(TIMEOUT):
        async with connected(
            "server",
            trio_ws_options={"compression": "deflate"},
            websockets_options={"compression": None, "extensions": [extension]},
        ) as pair:
            response = deflate_params(pair.peer.response.headers.get("Sec-WebSocket-Extensions"))
            # RFC 7692 7.1.1.1 / 7.1.2.1: a server accepting these must echo them,
            # with a window no larger than the one requested.
            assert required <= set(response)
            if "server_max_window_bits" in required:
                assert int(response["server_max_window_bits"] or 0) <= factory_kwargs["server_max_window_bits"]
            if "client_max_window_bits" in response:
                assert int(response["client_max_window_bits"] or 0) <= factory_kwargs.get("client_max_window_bits", 15)
            for message in window_stressing_payloads():
                await round_trip(pair, message)


@ROLES
async def test_compression_with_context_takeover_over_many_messages(role: str) -> None:
    # Repeated similar messages exercise the shared LZ77 window both ways.
    with trio.fail_after(TIMEOUT):
        async with connected(role, **both("deflate")) as pair:
            for i in range(50):
                await round_trip(pair, f"message number {i} " + "abc" * i)
                await round_trip(pair, bytes([i]) * (i * 37))


@ROLES
async def test_uncompressed_message_on_compressed_connection(role: str) -> None:
    # trio_ws may send with compress=False; websockets may send uncompressed
    # frames too (it skips compression for tiny messages). Both must decode.
    with trio.fail_after(TIMEOUT):
        async with connected(role, **both("deflate")) as pair:
            await pair.ws.send_message("not compressed " * 20, compress=False)
            assert await pair.peer.recv() == "not compressed " * 20
            await pair.ws.send_message(b"\x01" * 5000, compress=False)
            assert await pair.peer.recv() == b"\x01" * 5000
            await round_trip(pair, "x")


@ROLES
@COMPRESSIONS
async def test_compressed_big_message_on_the_wire(role: str, compression: str | None) -> None:
    payload = compressible_payload(MiB)
    limits = {"trio_ws": {"max_message_size": BIG_LIMIT}, "websockets": {"max_size": BIG_LIMIT}}
    with trio.fail_after(TIMEOUT):
        async with connected(role, via_proxy=True, **both(compression, **limits)) as pair:
            assert pair.proxy is not None
            before = (pair.proxy.upstream, pair.proxy.downstream)
            await pair.ws.send_message(payload)
            assert await pair.peer.recv() == payload
            middle = (pair.proxy.upstream, pair.proxy.downstream)
            await pair.peer.send(payload)
            assert await pair.ws.get_message() == payload
            after = (pair.proxy.upstream, pair.proxy.downstream)
    # Bytes that went from trio_ws to websockets, then the other way round.
    trio_ws_dir = 0 if role == "client" else 1
    trio_ws_sent = middle[trio_ws_dir] - before[trio_ws_dir]
    websockets_sent = after[1 - trio_ws_dir] - middle[1 - trio_ws_dir]
    if compression is None:
        assert trio_ws_sent > MiB
        assert websockets_sent > MiB
    else:
        assert trio_ws_sent < 64 * 1024
        assert websockets_sent < 64 * 1024


async def test_compression_rejected_by_server_has_no_extension_header() -> None:
    # websockets server without compression: trio_ws must not believe that
    # compression was negotiated, so its compressed-by-default sends still work.
    with trio.fail_after(TIMEOUT):
        async with connected(
            "client",
            trio_ws_options={"compression": "deflate"},
            websockets_options={"compression": None},
        ) as pair:
            assert header_values(pair.ws.handshake_headers, "Sec-WebSocket-Extensions") == []
            await round_trip(pair, compressible_payload(10_000))


async def test_websockets_server_http_error_is_connection_rejected() -> None:
    async def process_request(connection: Any, request: Any) -> Any:
        return connection.respond(403, "Forbidden by the interop test\n")

    with trio.fail_after(TIMEOUT):
        with pytest.raises(trio_ws.ConnectionRejected) as exc_info:
            async with connected("client", websockets_options={"process_request": process_request}):
                pass
    assert exc_info.value.status_code == 403


async def test_trio_ws_reject_seen_by_websockets() -> None:
    async def handler(request: trio_ws.WebSocketRequest) -> None:
        await request.reject(401, extra_headers=[(b"X-Reason", b"interop")], body=b"nope")

    with trio.fail_after(TIMEOUT), single_exceptions():
        async with trio.open_nursery() as nursery:
            server = await nursery.start(
                functools.partial(trio_ws.serve_websocket, handler, "127.0.0.1", 0, None)
            )
            with pytest.raises(InvalidStatus) as exc_info:
                async with ws_connect(f"ws://127.0.0.1:{server.port}/", **WS_DEFAULTS):
                    pass
            response = exc_info.value.response
            assert response.status_code == 401
            assert response.headers.get("X-Reason") == "interop"
            assert response.body == b"nope"
            nursery.cancel_scope.cancel()
