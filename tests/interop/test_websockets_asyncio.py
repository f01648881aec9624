"""Interop: trio_ws against websockets' asyncio implementation (child process).

The websockets side runs ``websockets_asyncio_peer.py`` in a separate Python
process: it echoes data messages, obeys ``!{json}`` commands (ping, close) and
reports what it observed as JSON lines, which the tests read and check.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
import trio
from support.interop import (
    BIG_LIMIT,
    PROCESS_TIMEOUT,
    SHUTDOWN_GRACE,
    MiB,
    big_binary,
    big_text,
    client,
    command,
    compressible_payload,
    counting_proxy,
    exchange,
    extension_names,
    header_values,
    peer_server,
    run_peer,
    trio_ws_server,
)

import trio_ws

#: The peer's close_timeout is 30 s: a closing handshake that takes longer than
#: this means one side did not finish it and websockets had to time out. (It
#: takes milliseconds; the margin is for a loaded CI machine.)
CLOSE_PROMPTLY = 10.0

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


# --------------------------------------------------------------------------
# trio_ws client -> websockets (asyncio) server
# --------------------------------------------------------------------------


@COMPRESSIONS
async def test_client_small_messages(compression: str | None) -> None:
    with trio.fail_after(PROCESS_TIMEOUT):
        async with peer_server(compression=compression) as (peer, port), client(port, compression=compression) as ws:
            opened = await peer.next_event("open")
            assert opened["path"] == "/interop"
            assert ws.subprotocol is None
            for message in SMALL_MESSAGES:
                await exchange(ws, peer, message)


@COMPRESSIONS
async def test_client_one_mib_messages(compression: str | None) -> None:
    with trio.fail_after(PROCESS_TIMEOUT):
        async with (
            peer_server(compression=compression, max_size=BIG_LIMIT) as (peer, port),
            client(port, compression=compression, max_message_size=BIG_LIMIT) as ws,
        ):
            await exchange(ws, peer, big_binary())
            await exchange(ws, peer, big_text())


async def test_client_ping_answered_by_websockets() -> None:
    with trio.fail_after(PROCESS_TIMEOUT):
        async with peer_server() as (peer, port), client(port) as ws:
            await peer.next_event("open")
            # ping() only returns once the matching pong has arrived.
            await ws.ping(b"trio_ws ping")
            await ws.ping()
            # The connection is still usable afterwards.
            await exchange(ws, peer, "after ping")


async def test_client_answers_websockets_ping() -> None:
    payload = b"from websockets".hex()
    with trio.fail_after(PROCESS_TIMEOUT):
        async with peer_server() as (peer, port), client(port) as ws:
            await ws.send_message(command("ping", data=payload))
            reply = json.loads(await ws.get_message())
            assert reply == {"reply": "pong", "data": payload}
            assert (await peer.next_event("pong"))["data"] == payload


@pytest.mark.parametrize(("code", "reason"), CLOSE_CASES)
async def test_client_closes(code: int, reason: str) -> None:
    with trio.fail_after(PROCESS_TIMEOUT):
        async with peer_server() as (peer, port):
            async with client(port) as ws:
                await peer.next_event("open")
                start = trio.current_time()
                await ws.aclose(code, reason or None)
                assert ws.closed is not None
                with pytest.raises(trio_ws.ConnectionClosed):
                    await ws.get_message()
            closed = await peer.next_event("closed")
            assert trio.current_time() - start < CLOSE_PROMPTLY
            assert closed["rcvd"] == [code, reason]
            # websockets echoes the close frame it received.
            assert closed["sent"] == [code, reason]


@pytest.mark.parametrize(("code", "reason"), CLOSE_CASES)
async def test_websockets_server_closes(code: int, reason: str) -> None:
    with trio.fail_after(PROCESS_TIMEOUT):
        async with peer_server() as (peer, port):
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
            # websockets reports the closure once the TCP connection is gone; it
            # must not have needed its 30 s close_timeout to get rid of trio_ws.
            assert trio.current_time() - start < CLOSE_PROMPTLY
            assert closed["sent"] == [code, reason]
            # trio_ws answered the close frame, echoing the code (RFC 6455 5.5.1).
            assert closed["rcvd"] is not None
            assert closed["rcvd"][0] == code


@pytest.mark.parametrize(
    ("code", "clean"), [(1000, True), (1001, True), (4000, False), (1011, False)]
)
async def test_client_iteration_stops_on_close(code: int, clean: bool) -> None:
    with trio.fail_after(PROCESS_TIMEOUT):
        async with peer_server() as (_peer, port), client(port) as ws:
            await ws.send_message("one")
            await ws.send_message(command("close", code=code, reason="bye"))
            received = []

            async def consume() -> None:
                async for message in ws:
                    received.append(message)

            if clean:
                await consume()
            else:
                with pytest.raises(trio_ws.ConnectionClosed) as exc_info:
                    await consume()
                assert exc_info.value.reason.code == code
            assert received == ["one"]


async def test_client_subprotocol_negotiated() -> None:
    with trio.fail_after(PROCESS_TIMEOUT):
        async with (
            peer_server(subprotocols=["chat.v1", "chat.v2"]) as (peer, port),
            client(port, subprotocols=["chat.v2", "chat.v1"]) as ws,
        ):
            opened = await peer.next_event("open")
            # websockets picks the first of *its* list that the client offered.
            assert opened["subprotocol"] == "chat.v1"
            assert ws.subprotocol == "chat.v1"
            offered = [p.strip() for p in opened["request_protocols"].split(",")]
            assert offered == ["chat.v2", "chat.v1"]


async def test_client_subprotocol_mismatch_is_rejected() -> None:
    with trio.fail_after(PROCESS_TIMEOUT):
        async with peer_server(subprotocols=["only.this"]) as (_peer, port):
            with pytest.raises(trio_ws.ConnectionRejected) as exc_info:
                async with client(port, subprotocols=["something.else"]):
                    pass
            assert exc_info.value.status_code == 400


@pytest.mark.parametrize("client_compression", ["deflate", None])
@pytest.mark.parametrize("server_compression", ["deflate", None])
async def test_client_compression_negotiation(
    client_compression: str | None, server_compression: str | None
) -> None:
    negotiated = client_compression is not None and server_compression is not None
    with trio.fail_after(PROCESS_TIMEOUT):
        async with (
            peer_server(compression=server_compression) as (peer, port),
            client(port, compression=client_compression) as ws,
        ):
            opened = await peer.next_event("open")
            offered = extension_names(opened["request_extensions"])
            assert ("permessage-deflate" in offered) == (client_compression is not None)
            accepted = extension_names(opened["response_extensions"])
            assert accepted == (["permessage-deflate"] if negotiated else [])
            seen = header_values(ws.handshake_headers, "Sec-WebSocket-Extensions")
            assert extension_names(", ".join(seen)) == accepted
            await exchange(ws, peer, "compress me " * 50)
            await exchange(ws, peer, b"\x00" * 1000)


@COMPRESSIONS
async def test_client_compressed_big_message_on_the_wire(compression: str | None) -> None:
    payload = compressible_payload(MiB)
    with trio.fail_after(PROCESS_TIMEOUT):
        async with (
            peer_server(compression=compression, max_size=BIG_LIMIT) as (peer, port),
            counting_proxy(port) as proxy,
            client(proxy.port, compression=compression, max_message_size=BIG_LIMIT) as ws,
        ):
            before_up, before_down = proxy.upstream, proxy.downstream
            await exchange(ws, peer, payload)
            up = proxy.upstream - before_up
            down = proxy.downstream - before_down
    if compression is None:
        assert up > MiB and down > MiB
    else:
        # 1 MiB of repeated text deflates to a few KiB each way.
        assert up < 64 * 1024
        assert down < 64 * 1024


# --------------------------------------------------------------------------
# websockets (asyncio) client -> trio_ws server
# --------------------------------------------------------------------------


@COMPRESSIONS
async def test_server_small_messages(compression: str | None) -> None:
    with trio.fail_after(PROCESS_TIMEOUT):
        async with (
            trio_ws_server(compression=compression) as server,
            run_peer("client", uri=server.uri(), compression=compression) as peer,
        ):
            request, ws = await server.next_connection()
            assert request.path == "/interop"
            assert ws.path == "/interop"
            assert ws.subprotocol is None
            await peer.next_event("open")
            for message in SMALL_MESSAGES:
                await exchange(ws, peer, message)


@COMPRESSIONS
async def test_server_one_mib_messages(compression: str | None) -> None:
    with trio.fail_after(PROCESS_TIMEOUT):
        async with trio_ws_server(compression=compression, max_message_size=BIG_LIMIT) as server, run_peer(
            "client", uri=server.uri(), compression=compression, max_size=BIG_LIMIT
        ) as peer:
            _, ws = await server.next_connection()
            await exchange(ws, peer, big_binary())
            await exchange(ws, peer, big_text())


async def test_server_ping_answered_by_websockets() -> None:
    with trio.fail_after(PROCESS_TIMEOUT):
        async with trio_ws_server() as server, run_peer("client", uri=server.uri()) as peer:
            _, ws = await server.next_connection()
            await peer.next_event("open")
            await ws.ping(b"server ping")
            await ws.ping()
            await exchange(ws, peer, b"after ping")


async def test_server_answers_websockets_ping() -> None:
    payload = b"\x00client ping\xff".hex()
    with trio.fail_after(PROCESS_TIMEOUT):
        async with trio_ws_server() as server, run_peer("client", uri=server.uri()) as peer:
            _, ws = await server.next_connection()
            await ws.send_message(command("ping", data=payload))
            reply = json.loads(await ws.get_message())
            assert reply == {"reply": "pong", "data": payload}
            assert (await peer.next_event("pong"))["data"] == payload


@pytest.mark.parametrize(("code", "reason"), CLOSE_CASES)
async def test_server_closes(code: int, reason: str) -> None:
    with trio.fail_after(PROCESS_TIMEOUT):
        async with trio_ws_server() as server, run_peer("client", uri=server.uri()) as peer:
            _, ws = await server.next_connection()
            await peer.next_event("open")
            start = trio.current_time()
            await ws.aclose(code, reason or None)
            assert ws.closed is not None
            closed = await peer.next_event("closed")
            assert trio.current_time() - start < CLOSE_PROMPTLY
            assert closed["rcvd"] == [code, reason]
            assert closed["sent"] == [code, reason]


@pytest.mark.parametrize(("code", "reason"), CLOSE_CASES)
async def test_websockets_client_closes(code: int, reason: str) -> None:
    with trio.fail_after(PROCESS_TIMEOUT):
        async with trio_ws_server() as server, run_peer("client", uri=server.uri()) as peer:
            _, ws = await server.next_connection()
            start = trio.current_time()
            await ws.send_message(command("close", code=code, reason=reason))
            with pytest.raises(trio_ws.ConnectionClosed) as exc_info:
                await ws.get_message()
            assert exc_info.value.reason.code == code
            assert (exc_info.value.reason.reason or "") == reason
            closed = await peer.next_event("closed")
            assert trio.current_time() - start < CLOSE_PROMPTLY
            assert closed["sent"] == [code, reason]
            assert closed["rcvd"] is not None
            assert closed["rcvd"][0] == code


async def test_server_shutdown_sends_going_away() -> None:
    with trio.fail_after(PROCESS_TIMEOUT):
        async with trio_ws_server() as server, run_peer("client", uri=server.uri()) as peer:
            _, ws = await server.next_connection()
            await exchange(ws, peer, "before shutdown")
            took = await server.shutdown()
            closed = await peer.next_event("closed")
            assert closed["rcvd"] is not None, "connection dropped without a close frame"
            assert closed["rcvd"][0] == 1001
            # websockets answers the close at once: no disconnect_timeout wait.
            assert took < SHUTDOWN_GRACE


@pytest.mark.parametrize(
    ("pick", "expected"),
    [
        pytest.param(lambda offered: offered[-1], "chat.v2", id="last-offered"),
        pytest.param(lambda offered: None, None, id="none"),
    ],
)
async def test_server_subprotocol_negotiated(
    pick: Callable[[list[str]], str | None], expected: str | None
) -> None:
    seen: list[list[str]] = []

    def choose(request: trio_ws.WebSocketRequest) -> str | None:
        seen.append(list(request.proposed_subprotocols))
        return pick(list(request.proposed_subprotocols))

    with trio.fail_after(PROCESS_TIMEOUT):
        async with trio_ws_server(choose) as server, run_peer(
            "client", uri=server.uri(), subprotocols=["chat.v1", "chat.v2"]
        ) as peer:
            _, ws = await server.next_connection()
            opened = await peer.next_event("open")
            assert seen == [["chat.v1", "chat.v2"]]
            assert ws.subprotocol == expected
            assert opened["subprotocol"] == expected
            await exchange(ws, peer, "negotiated")


@pytest.mark.parametrize("client_compression", ["deflate", None])
@pytest.mark.parametrize("server_compression", ["deflate", None])
async def test_server_compression_negotiation(
    client_compression: str | None, server_compression: str | None
) -> None:
    negotiated = client_compression is not None and server_compression is not None
    with trio.fail_after(PROCESS_TIMEOUT):
        async with (
            trio_ws_server(compression=server_compression) as server,
            run_peer("client", uri=server.uri(), compression=client_compression) as peer,
        ):
            request, ws = await server.next_connection()
            opened = await peer.next_event("open")
            offered = header_values(request.headers, "Sec-WebSocket-Extensions")
            assert ("permessage-deflate" in extension_names(", ".join(offered))) == (
                client_compression is not None
            )
            accepted = extension_names(opened["response_extensions"])
            assert accepted == (["permessage-deflate"] if negotiated else [])
            await exchange(ws, peer, "compress me " * 50)
            await exchange(ws, peer, b"\x00" * 1000)


@COMPRESSIONS
async def test_server_compressed_big_message_on_the_wire(compression: str | None) -> None:
    payload = compressible_payload(MiB)
    with trio.fail_after(PROCESS_TIMEOUT):
        async with (
            trio_ws_server(compression=compression, max_message_size=BIG_LIMIT) as server,
            counting_proxy(server.port) as proxy,
            run_peer(
                "client",
                uri=f"ws://127.0.0.1:{proxy.port}/interop",
                compression=compression,
                max_size=BIG_LIMIT,
            ) as peer,
        ):
            _, ws = await server.next_connection()
            await peer.next_event("open")
            before_up, before_down = proxy.upstream, proxy.downstream
            await exchange(ws, peer, payload)
            # Here trio_ws is the server: it sends downstream.
            sent = proxy.downstream - before_down
            received = proxy.upstream - before_up
    if compression is None:
        assert sent > MiB and received > MiB
    else:
        assert sent < 64 * 1024
        assert received < 64 * 1024

