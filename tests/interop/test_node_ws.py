"""Interop: trio_ws against Node's ``ws`` package (v8), as client and as server.

The Node side runs ``node_ws_peer.mjs`` in a child process: it echoes data
messages, obeys ``!{json}`` commands (ping, close, send) and reports what it
observed as JSON lines, which the tests read with ``support.interop.PeerProcess``.

``ws@8`` is installed once with npm into ``.cache/node-ws`` at the project root
(the ``node_ws`` fixture); the tests skip when node (or, with nothing cached
yet, npm) is not installed.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import trio
from support.interop import (
    BIG_LIMIT,
    PROCESS_TIMEOUT,
    SHUTDOWN_GRACE,
    MiB,
    PeerProcess,
    big_binary,
    big_text,
    client,
    command,
    compressible_payload,
    counting_proxy,
    describe,
    exchange,
    extension_names,
    header_values,
    observed,
    spawn_peer,
    trio_ws_server,
)
from support.node_ws import NodeWs

import trio_ws

PEER_SCRIPT = Path(__file__).with_name("node_ws_peer.mjs")
#: Upper bound for the one-time ``npm install``.

#: ws's closeTimeout is 30 s: a closing handshake that takes longer than this
#: means one side did not finish it. (It takes milliseconds; the margin is for
#: a loaded CI machine.)
CLOSE_PROMPTLY = 10.0
#: Size of the compressible message used to see on the wire whether it was deflated.
WIRE_PAYLOAD = 64 * 1024

COMPRESSIONS = pytest.mark.parametrize("deflate", [True, False], ids=["deflate", "no-deflate"])

SMALL_MESSAGES = [
    "hello, ws",
    "unicode: h\u00e9llo w\u00f6rld \u2603 \U0001f600",
    b"\x00\x01\x02 binary \xff\xfe",
    "",
    b"",
]

CLOSE_CASES = [
    pytest.param(1000, "", id="1000"),
    pytest.param(1001, "", id="1001"),
    pytest.param(4000, "custom reason \u2713", id="4000-reason"),
]


# --------------------------------------------------------------------------
# Node / ws setup
# --------------------------------------------------------------------------


@asynccontextmanager
async def run_node_peer(node_ws: NodeWs, *args: str, **options: Any) -> AsyncIterator[PeerProcess]:
    """Start ``node_ws_peer.mjs``; always kill it on the way out."""
    async with spawn_peer([node_ws.node, str(PEER_SCRIPT), *args, json.dumps(options)], env=node_ws.env) as peer:
        yield peer


@asynccontextmanager
async def node_server(node_ws: NodeWs, **options: Any) -> AsyncIterator[tuple[PeerProcess, int]]:
    """Start a ws WebSocketServer on 127.0.0.1; yield it with its port."""
    async with run_node_peer(node_ws, "server", **options) as peer:
        listening = await peer.next_event("listening")
        yield peer, listening["port"]


def node_client(node_ws: NodeWs, uri: str, **options: Any):
    return run_node_peer(node_ws, "client", uri, **options)


# --------------------------------------------------------------------------
# Messages
# --------------------------------------------------------------------------


def negotiated_extensions(headers: Any) -> list[str]:
    return extension_names(", ".join(header_values(headers, "Sec-WebSocket-Extensions")))


# --------------------------------------------------------------------------
# trio_ws client -> ws server
# --------------------------------------------------------------------------


@COMPRESSIONS
async def test_client_small_messages(node_ws: NodeWs, deflate: bool) -> None:
    with trio.fail_after(PROCESS_TIMEOUT):
        async with node_server(node_ws, perMessageDeflate=deflate) as (peer, port), client(port) as ws:
            opened = await peer.next_event("open")
            assert opened["path"] == "/interop"
            assert ws.subprotocol is None
            for message in SMALL_MESSAGES:
                await exchange(ws, peer, message)


@COMPRESSIONS
async def test_client_one_mib_messages(node_ws: NodeWs, deflate: bool) -> None:
    with trio.fail_after(PROCESS_TIMEOUT):
        async with (
            node_server(node_ws, perMessageDeflate=deflate) as (peer, port),
            client(port, max_message_size=BIG_LIMIT) as ws,
        ):
            await exchange(ws, peer, big_binary())
            await exchange(ws, peer, big_text())
            await exchange(ws, peer, compressible_payload(MiB))


async def test_client_ping_answered_by_ws(node_ws: NodeWs) -> None:
    with trio.fail_after(PROCESS_TIMEOUT):
        async with node_server(node_ws) as (peer, port), client(port) as ws:
            await peer.next_event("open")
            # ping() only returns once the matching pong has arrived.
            await ws.ping(b"trio_ws ping")
            assert (await peer.next_event("ping"))["data"] == b"trio_ws ping".hex()
            await ws.ping()
            # ping(None) sends a random 4-byte payload (as trio-websocket does).
            assert len(bytes.fromhex((await peer.next_event("ping"))["data"])) == 4
            await exchange(ws, peer, "after ping")


async def test_client_answers_ws_ping(node_ws: NodeWs) -> None:
    payload = b"\x00from ws\xff".hex()
    with trio.fail_after(PROCESS_TIMEOUT):
        async with node_server(node_ws) as (peer, port), client(port) as ws:
            await ws.send_message(command("ping", data=payload))
            reply = json.loads(await ws.get_message())
            assert reply == {"reply": "pong", "data": payload}
            assert (await peer.next_event("pong"))["data"] == payload


@pytest.mark.parametrize(("code", "reason"), CLOSE_CASES)
async def test_client_closes(node_ws: NodeWs, code: int, reason: str) -> None:
    with trio.fail_after(PROCESS_TIMEOUT):
        async with node_server(node_ws) as (peer, port):
            async with client(port) as ws:
                await peer.next_event("open")
                start = trio.current_time()
                await ws.aclose(code, reason or None)
                assert ws.closed is not None
                assert ws.closed.code == code
                with pytest.raises(trio_ws.ConnectionClosed):
                    await ws.get_message()
            closed = await peer.next_event("closed")
            # ws reports the closure once the TCP connection is gone.
            assert trio.current_time() - start < CLOSE_PROMPTLY
            assert closed == {"event": "closed", "code": code, "reason": reason, "initiated": False}


@pytest.mark.parametrize(("code", "reason"), CLOSE_CASES)
async def test_ws_server_closes(node_ws: NodeWs, code: int, reason: str) -> None:
    with trio.fail_after(PROCESS_TIMEOUT):
        async with node_server(node_ws) as (peer, port):
            async with client(port) as ws:
                start = trio.current_time()
                await ws.send_message(command("close", code=code, reason=reason))
                with pytest.raises(trio_ws.ConnectionClosed) as exc_info:
                    await ws.get_message()
                assert exc_info.value.reason.code == code
                assert (exc_info.value.reason.reason or "") == reason
                assert ws.closed is not None
                assert ws.closed.code == code
            closed = await peer.next_event("closed")
            assert trio.current_time() - start < CLOSE_PROMPTLY
            assert closed["initiated"] is True
            # What ws received: trio_ws answered the close frame echoing the code.
            assert closed["code"] == code


@pytest.mark.parametrize(
    ("server_protocols", "expected"),
    [
        pytest.param(["chat.v1", "chat.v2"], "chat.v1", id="server-preference"),
        pytest.param(None, "chat.v2", id="ws-default-first-offered"),
        pytest.param(["other"], None, id="none-in-common"),
    ],
)
async def test_client_subprotocol_negotiated(
    node_ws: NodeWs, server_protocols: list[str] | None, expected: str | None
) -> None:
    with trio.fail_after(PROCESS_TIMEOUT):
        async with (
            node_server(node_ws, subprotocols=server_protocols) as (peer, port),
            client(port, subprotocols=["chat.v2", "chat.v1"]) as ws,
        ):
            opened = await peer.next_event("open")
            offered = [p.strip() for p in opened["request_protocols"].split(",")]
            assert offered == ["chat.v2", "chat.v1"]
            assert opened["subprotocol"] == expected
            assert ws.subprotocol == expected
            await exchange(ws, peer, "negotiated")


@pytest.mark.parametrize("client_compression", ["deflate", None])
@COMPRESSIONS
async def test_client_compression_negotiation(node_ws: NodeWs, deflate: bool, client_compression: str | None) -> None:
    negotiated = deflate and client_compression is not None
    with trio.fail_after(PROCESS_TIMEOUT):
        async with (
            node_server(node_ws, perMessageDeflate=deflate) as (peer, port),
            client(port, compression=client_compression) as ws,
        ):
            opened = await peer.next_event("open")
            offered = extension_names(opened["request_extensions"])
            assert ("permessage-deflate" in offered) == (client_compression is not None)
            expected = ["permessage-deflate"] if negotiated else []
            assert extension_names(opened["response_extensions"]) == expected
            assert extension_names(opened["extensions"]) == expected
            assert negotiated_extensions(ws.handshake_headers) == expected
            assert ws.compression is negotiated
            await exchange(ws, peer, "compress me " * 500)
            await exchange(ws, peer, b"\x00" * 5000)


@pytest.mark.parametrize("compress", [True, False], ids=["compress", "no-compress"])
async def test_client_per_message_compress_flag(node_ws: NodeWs, compress: bool) -> None:
    """trio_ws's send_message(..., compress=False) on a deflate connection."""
    payload = compressible_payload(WIRE_PAYLOAD)
    with trio.fail_after(PROCESS_TIMEOUT):
        async with (
            node_server(node_ws, perMessageDeflate=True) as (peer, port),
            counting_proxy(port) as proxy,
            client(proxy.port) as ws,
        ):
            opened = await peer.next_event("open")
            assert extension_names(opened["extensions"]) == ["permessage-deflate"]
            before = proxy.upstream
            await exchange(ws, peer, payload, compress=compress)
            # Then a compressed one on the same connection: the deflate context
            # is still in step with ws's.
            await exchange(ws, peer, payload[::-1])
            await exchange(ws, peer, b"after", compress=compress)
            up = proxy.upstream - before
    if compress:
        assert up < WIRE_PAYLOAD // 4
    else:
        assert up > WIRE_PAYLOAD


@pytest.mark.parametrize("compress", [True, False], ids=["compress", "no-compress"])
async def test_client_receives_ws_per_message_compress_flag(node_ws: NodeWs, compress: bool) -> None:
    """ws's send(data, {compress: false}) on a deflate connection, read by trio_ws."""
    unit = b"ws says hello to trio_ws. "
    repeat = WIRE_PAYLOAD // len(unit)
    size = len(unit) * repeat
    with trio.fail_after(PROCESS_TIMEOUT):
        async with (
            node_server(node_ws, perMessageDeflate=True) as (peer, port),
            counting_proxy(port) as proxy,
            client(proxy.port) as ws,
        ):
            assert negotiated_extensions(ws.handshake_headers) == ["permessage-deflate"]
            before = proxy.downstream
            for binary in (True, False):
                await ws.send_message(command("send", hex=unit.hex(), repeat=repeat, binary=binary, compress=compress))
                message = await ws.get_message()
                assert message == (unit * repeat if binary else (unit * repeat).decode())
            down = proxy.downstream - before
            await exchange(ws, peer, "still in step " * 100)
    if compress:
        assert down < WIRE_PAYLOAD // 4
    else:
        assert down > 2 * size


# --------------------------------------------------------------------------
# ws client -> trio_ws server
# --------------------------------------------------------------------------


@COMPRESSIONS
async def test_server_small_messages(node_ws: NodeWs, deflate: bool) -> None:
    with trio.fail_after(PROCESS_TIMEOUT):
        async with (
            trio_ws_server() as server,
            node_client(node_ws, server.uri(), perMessageDeflate=deflate) as peer,
        ):
            request, ws = await server.next_connection()
            assert request.path == "/interop"
            assert ws.path == "/interop"
            assert ws.subprotocol is None
            opened = await peer.next_event("open")
            assert extension_names(opened["extensions"]) == (["permessage-deflate"] if deflate else [])
            for message in SMALL_MESSAGES:
                await exchange(ws, peer, message)


@COMPRESSIONS
async def test_server_one_mib_messages(node_ws: NodeWs, deflate: bool) -> None:
    with trio.fail_after(PROCESS_TIMEOUT):
        async with (
            trio_ws_server(max_message_size=BIG_LIMIT) as server,
            node_client(node_ws, server.uri(), perMessageDeflate=deflate) as peer,
        ):
            _, ws = await server.next_connection()
            await exchange(ws, peer, big_binary())
            await exchange(ws, peer, big_text())
            await exchange(ws, peer, compressible_payload(MiB))


async def test_server_ping_answered_by_ws(node_ws: NodeWs) -> None:
    with trio.fail_after(PROCESS_TIMEOUT):
        async with trio_ws_server() as server, node_client(node_ws, server.uri()) as peer:
            _, ws = await server.next_connection()
            await peer.next_event("open")
            await ws.ping(b"server ping")
            assert (await peer.next_event("ping"))["data"] == b"server ping".hex()
            await ws.ping()
            # ping(None) sends a random 4-byte payload (as trio-websocket does).
            assert len(bytes.fromhex((await peer.next_event("ping"))["data"])) == 4
            await exchange(ws, peer, b"after ping")


async def test_server_answers_ws_ping(node_ws: NodeWs) -> None:
    payload = b"\x00client ping\xff".hex()
    with trio.fail_after(PROCESS_TIMEOUT):
        async with trio_ws_server() as server, node_client(node_ws, server.uri()) as peer:
            _, ws = await server.next_connection()
            await ws.send_message(command("ping", data=payload))
            reply = json.loads(await ws.get_message())
            assert reply == {"reply": "pong", "data": payload}
            assert (await peer.next_event("pong"))["data"] == payload


@pytest.mark.parametrize(("code", "reason"), CLOSE_CASES)
async def test_server_closes(node_ws: NodeWs, code: int, reason: str) -> None:
    with trio.fail_after(PROCESS_TIMEOUT):
        async with trio_ws_server() as server, node_client(node_ws, server.uri()) as peer:
            _, ws = await server.next_connection()
            await peer.next_event("open")
            start = trio.current_time()
            await ws.aclose(code, reason or None)
            assert ws.closed is not None
            assert ws.closed.code == code
            closed = await peer.next_event("closed")
            assert trio.current_time() - start < CLOSE_PROMPTLY
            assert closed == {"event": "closed", "code": code, "reason": reason, "initiated": False}


@pytest.mark.parametrize(("code", "reason"), CLOSE_CASES)
async def test_ws_client_closes(node_ws: NodeWs, code: int, reason: str) -> None:
    with trio.fail_after(PROCESS_TIMEOUT):
        async with trio_ws_server() as server, node_client(node_ws, server.uri()) as peer:
            _, ws = await server.next_connection()
            start = trio.current_time()
            await ws.send_message(command("close", code=code, reason=reason))
            with pytest.raises(trio_ws.ConnectionClosed) as exc_info:
                await ws.get_message()
            assert exc_info.value.reason.code == code
            assert (exc_info.value.reason.reason or "") == reason
            closed = await peer.next_event("closed")
            assert trio.current_time() - start < CLOSE_PROMPTLY
            assert closed["initiated"] is True
            assert closed["code"] == code


async def test_server_shutdown_sends_going_away(node_ws: NodeWs) -> None:
    with trio.fail_after(PROCESS_TIMEOUT):
        async with trio_ws_server() as server, node_client(node_ws, server.uri()) as peer:
            _, ws = await server.next_connection()
            await exchange(ws, peer, "before shutdown")
            took = await server.shutdown()
            closed = await peer.next_event("closed")
            assert closed["code"] == 1001, "expected a Going Away close frame"
            assert closed["initiated"] is False
            assert took < SHUTDOWN_GRACE


@pytest.mark.parametrize(
    ("pick", "expected"),
    [
        pytest.param(lambda offered: offered[-1], "chat.v2", id="last-offered"),
        pytest.param(lambda offered: offered[0], "chat.v1", id="first-offered"),
    ],
)
async def test_server_subprotocol_negotiated(
    node_ws: NodeWs, pick: Callable[[list[str]], str | None], expected: str
) -> None:
    seen: list[list[str]] = []

    def choose(request: trio_ws.WebSocketRequest) -> str | None:
        seen.append(list(request.proposed_subprotocols))
        return pick(list(request.proposed_subprotocols))

    with trio.fail_after(PROCESS_TIMEOUT):
        async with (
            trio_ws_server(choose) as server,
            node_client(node_ws, server.uri(), subprotocols=["chat.v1", "chat.v2"]) as peer,
        ):
            _, ws = await server.next_connection()
            opened = await peer.next_event("open")
            assert seen == [["chat.v1", "chat.v2"]]
            assert ws.subprotocol == expected
            assert opened["subprotocol"] == expected
            await exchange(ws, peer, "negotiated")


async def test_server_declining_subprotocol_fails_ws_handshake(node_ws: NodeWs) -> None:
    """RFC 6455 4.1: a client that offered subprotocols fails a response without one."""
    with trio.fail_after(PROCESS_TIMEOUT):
        async with trio_ws_server() as server, node_client(node_ws, server.uri(), subprotocols=["chat.v1"]) as peer:
            error = await peer.next_event()
            assert error["event"] == "error"
            assert "no subprotocol" in error["message"]


@pytest.mark.parametrize("server_compression", ["deflate", None])
@COMPRESSIONS
async def test_server_compression_negotiation(node_ws: NodeWs, deflate: bool, server_compression: str | None) -> None:
    negotiated = deflate and server_compression is not None
    with trio.fail_after(PROCESS_TIMEOUT):
        async with (
            trio_ws_server(compression=server_compression) as server,
            node_client(node_ws, server.uri(), perMessageDeflate=deflate) as peer,
        ):
            request, ws = await server.next_connection()
            opened = await peer.next_event("open")
            assert ("permessage-deflate" in negotiated_extensions(request.headers)) == deflate
            expected = ["permessage-deflate"] if negotiated else []
            assert extension_names(opened["response_extensions"]) == expected
            assert extension_names(opened["extensions"]) == expected
            # On the server side handshake_headers are the client's request headers.
            assert negotiated_extensions(ws.handshake_headers) == negotiated_extensions(request.headers)
            assert ws.compression is negotiated
            await exchange(ws, peer, "compress me " * 500)
            await exchange(ws, peer, b"\x00" * 5000)


@pytest.mark.parametrize("compress", [True, False], ids=["compress", "no-compress"])
async def test_server_per_message_compress_flag(node_ws: NodeWs, compress: bool) -> None:
    """trio_ws server's send_message(..., compress=False), read by a ws client."""
    payload = compressible_payload(WIRE_PAYLOAD)
    with trio.fail_after(PROCESS_TIMEOUT):
        async with (
            trio_ws_server() as server,
            counting_proxy(server.port) as proxy,
            node_client(node_ws, server.uri(proxy.port), perMessageDeflate=True) as peer,
        ):
            _, ws = await server.next_connection()
            opened = await peer.next_event("open")
            assert extension_names(opened["extensions"]) == ["permessage-deflate"]
            before = proxy.downstream
            # Here trio_ws is the server: it sends downstream.
            await ws.send_message(payload, compress=compress)
            event = await peer.next_event("message")
            assert observed(event) == describe(payload)
            sent = proxy.downstream - before
            assert await ws.get_message() == payload
            await exchange(ws, peer, payload[::-1])
            await exchange(ws, peer, "after", compress=compress)
    if compress:
        assert sent < WIRE_PAYLOAD // 4
    else:
        assert sent > WIRE_PAYLOAD


@pytest.mark.parametrize("compress", [True, False], ids=["compress", "no-compress"])
async def test_server_receives_ws_per_message_compress_flag(node_ws: NodeWs, compress: bool) -> None:
    """ws client's send(data, {compress: false}), read by the trio_ws server."""
    unit = b"ws client says hello to trio_ws. "
    repeat = WIRE_PAYLOAD // len(unit)
    size = len(unit) * repeat
    with trio.fail_after(PROCESS_TIMEOUT):
        async with (
            trio_ws_server() as server,
            counting_proxy(server.port) as proxy,
            node_client(node_ws, server.uri(proxy.port), perMessageDeflate=True) as peer,
        ):
            _, ws = await server.next_connection()
            assert ws.compression is True
            await peer.next_event("open")
            before = proxy.upstream
            for binary in (True, False):
                await ws.send_message(command("send", hex=unit.hex(), repeat=repeat, binary=binary, compress=compress))
                message = await ws.get_message()
                assert message == (unit * repeat if binary else (unit * repeat).decode())
            received = proxy.upstream - before
            await exchange(ws, peer, "still in step " * 100)
    if compress:
        assert received < WIRE_PAYLOAD // 4
    else:
        assert received > 2 * size
