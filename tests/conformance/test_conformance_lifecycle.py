"""Close codes trio_ws chooses itself: shutdown (1001), application error and
keepalive timeout (1011), as seen on the wire by a raw peer (RFC 6455 §7.4.1)."""

from __future__ import annotations

import pytest
import trio
from support import rawframes as rf
from wsharness import CLOSE_COMMAND, PROMPT, RAISE_COMMAND, impl, open_pair, within

GOING_AWAY = 1001
INTERNAL_ERROR = 1011


async def test_server_shutdown_closes_with_1001() -> None:
    async with open_pair("server") as pair:
        await pair.assert_echo("before shutdown")
        t0 = trio.current_time()
        pair.trio_side.cancel()
        close = await pair.expect_close(GOING_AWAY, t0)
        await pair.finish_close(close, reply=True)
        await within(PROMPT, "serve_websocket returning", pair.trio_side_done.wait)


async def test_server_shutdown_after_peer_vanished() -> None:
    # The client drops TCP with pongs still owed; shutting down must not wait
    # for a closing handshake that can no longer happen.
    async with open_pair("server") as pair:
        await pair.raw.send(b"".join(pair.raw.frame(rf.PING, b"%d" % i) for i in range(20)))
        await pair.raw.aclose()
        pair.trio_side.cancel()
        await within(PROMPT, "serve_websocket returning", pair.trio_side_done.wait)


async def test_handler_exception_closes_with_1011() -> None:
    async with open_pair("server") as pair:
        await pair.raw.send_frame(rf.TEXT, RAISE_COMMAND.encode())
        close = await pair.expect_close(INTERNAL_ERROR)
        # An ordinary closing handshake started by the server: answer it.
        await pair.finish_close(close, reply=True)
        await within(PROMPT, "handler end", pair.user.done.wait)
        assert not pair.trio_side_done.is_set(), "the server stopped because a handler raised"
        await pair.assert_serves_again()


async def test_keepalive_timeout_closes_with_1011(side: str) -> None:
    # The raw peer never answers the keepalive pings.
    async with open_pair(side, ping_interval=0.05, ping_timeout=0.1) as pair:
        close = await pair.expect_close(INTERNAL_ERROR)
        await pair.finish_close(close, reply=not pair.raw_is_client)
        (await pair.wait_user()).assert_closed_with(INTERNAL_ERROR)


async def test_keepalive_pings_answered_keep_connection_open(side: str) -> None:
    # ping_timeout only needs to outlast the raw peer's answer, even on a loaded machine.
    async with open_pair(side, ping_interval=0.02, ping_timeout=10.0) as pair:
        payloads: list[bytes] = []
        while len(payloads) < 5:
            frame = await within(PROMPT, "keepalive ping", pair.raw.recv_frame)
            assert frame.opcode == rf.PING, frame
            payloads.append(frame.payload)
            await pair.raw.send_frame(rf.PONG, frame.payload)
        await pair.assert_echo("alive after 5 keepalive rounds")
        assert pair.user.error is None


@pytest.mark.parametrize(
    ("side", "answer_close"),
    [("server", False), ("client", False), ("client", True)],
    ids=["ws-server-silent-peer", "ws-client-silent-peer", "ws-client-no-tcp-close"],
)
async def test_closing_handshake_gives_up_after_disconnect_timeout(side: str, answer_close: bool) -> None:
    # The application closes; the peer then goes silent, either without its
    # close frame or (raw server) answering it but never closing TCP. trio_ws
    # must drop TCP itself once disconnect_timeout has passed.
    async with open_pair(side, disconnect_timeout=0.1) as pair:
        await pair.raw.send_frame(rf.TEXT, f"{CLOSE_COMMAND}4000".encode())
        close = await pair.expect_close(4000)
        if answer_close:
            await pair.raw.send_frame(rf.CLOSE, close.payload)
        after = await within(PROMPT, "TCP close after disconnect_timeout", pair.raw.recv_until_eof)
        assert after == b"", f"bytes written after the close frame: {after!r}"
        user = await pair.wait_user()
        assert user.aclose_done, f"ws.aclose() did not return: {user}"
        lib = impl()
        for exc in (user.aclose_error, user.escaped, user.error):
            assert exc is None or isinstance(exc, lib.DisconnectionTimeout), repr(exc)
        assert user.ws.closed is not None
