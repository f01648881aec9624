"""The closing handshake (RFC 6455 §5.5.1, §7.1, §7.4)."""

from __future__ import annotations

import pytest
from support import rawframes as rf
from wsharness import CLOSE_COMMAND, PROMPT, Pair, open_pair, within

PROTOCOL_ERROR = 1002

INVALID_CODES = [0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65535]
VALID_CODES = [1000, 1001, 1003, 1011, 3000, 4999]


async def test_close_payload_of_one_byte(side: str) -> None:
    async with open_pair(side) as pair:
        await pair.assert_fails_with(PROTOCOL_ERROR, pair.raw.frame(rf.CLOSE, b"\x03"))


@pytest.mark.parametrize("code", INVALID_CODES)
async def test_invalid_close_code(side: str, code: int) -> None:
    async with open_pair(side) as pair:
        await pair.assert_fails_with(PROTOCOL_ERROR, pair.raw.frame(rf.CLOSE, rf.close_payload(code, "why")))


@pytest.mark.parametrize("code", VALID_CODES)
async def test_valid_close_code_is_echoed(side: str, code: int) -> None:
    async with open_pair(side) as pair:
        await pair.raw.send_frame(rf.CLOSE, rf.close_payload(code, "bye"))
        close = await pair.expect_close(code)
        # We started the close, so the echo ends the handshake: no reply.
        await pair.finish_close(close, reply=False)
        user = await pair.wait_user()
        user.assert_closed_with(code)
        assert user.close_reason_text == "bye"
        if side == "server":
            await pair.assert_serves_again()


@pytest.mark.parametrize("reason", ["caf\u00e9 \u2713 \U0001f600", "r" * 123], ids=["multibyte", "123-bytes"])
async def test_valid_close_reason_reaches_application(side: str, reason: str) -> None:
    async with open_pair(side) as pair:
        await pair.raw.send_frame(rf.CLOSE, rf.close_payload(4000, reason))
        close = await pair.expect_close(4000)
        await pair.finish_close(close, reply=False)
        user = await pair.wait_user()
        user.assert_closed_with(4000)
        assert user.close_reason_text == reason


async def test_close_without_status_code(side: str) -> None:
    async with open_pair(side) as pair:
        await pair.raw.send_frame(rf.CLOSE, b"")
        close, _ = await within(PROMPT, "close echo", pair.raw.recv_until_close)
        # §5.5.1: the echo usually repeats the status code; there is none, so
        # an empty body or a plain 1000 are both fine.
        assert close.close_code in (None, 1000), close
        await pair.finish_close(close, reply=False)
        user = await pair.wait_user()
        # §7.1.5: no status code in the close frame means 1005 locally.
        user.assert_closed_with(1005)


async def test_close_fragmented_message_then_close(side: str) -> None:
    # A close may arrive in the middle of a fragmented message (§5.4: control
    # frames may be injected); the unfinished message is just dropped.
    async with open_pair(side) as pair:
        await pair.raw.send(
            pair.raw.frame(rf.TEXT, b"never finished", fin=False)
            + pair.raw.frame(rf.CLOSE, rf.close_payload(1000, "bye"))
        )
        close = await pair.expect_close(1000)
        await pair.finish_close(close, reply=False)
        user = await pair.wait_user()
        user.assert_closed_with(1000)
        assert user.messages == []


async def _start_application_close(pair: Pair, code: int) -> rf.Frame:
    await pair.raw.send_frame(rf.TEXT, f"{CLOSE_COMMAND}{code}".encode())
    return await pair.expect_close(code)


async def _finish_application_close(pair: Pair, code: int, close: rf.Frame) -> None:
    """Answer the application's close and check everything ends cleanly."""
    await pair.raw.send_frame(rf.CLOSE, close.payload)
    if pair.raw_is_client:
        after = await within(PROMPT, "TCP close by the trio_ws server", pair.raw.recv_until_eof)
        # After its close frame the server may still answer a ping, nothing else.
        while after:
            frame, used = rf.parse_frame(after)
            assert frame.opcode == rf.PONG and not frame.masked, frame
            after = after[used:]
    else:
        await pair.raw.aclose()
    user = await pair.wait_user()
    assert user.aclose_done, f"ws.aclose() did not return: {user}"
    assert user.aclose_error is None, f"ws.aclose() raised {user.aclose_error!r}"
    assert user.error is None and user.escaped is None, (user.error, user.escaped)
    assert user.ws.closed is not None and user.ws.closed.code == code, user.ws.closed
    if pair.side == "server":
        await pair.assert_serves_again()


@pytest.mark.parametrize("code", [1000, 4000])
async def test_application_close(side: str, code: int) -> None:
    async with open_pair(side) as pair:
        close = await _start_application_close(pair, code)
        assert close.close_reason == b"bye"
        await _finish_application_close(pair, code, close)


@pytest.mark.parametrize("payload", [b"", b"late ping"], ids=["empty", "payload"])
async def test_ping_after_close_was_sent(side: str, payload: bytes) -> None:
    # The peer's ping crosses trio_ws's close frame on the wire. trio_ws may
    # answer it or not, but must not crash, hang or send data.
    async with open_pair(side) as pair:
        close = await _start_application_close(pair, 1000)
        await pair.raw.send_frame(rf.PING, payload)
        await _finish_application_close(pair, 1000, close)


async def test_data_after_close_was_sent(side: str) -> None:
    # Likewise for a data message already in flight when trio_ws closed.
    async with open_pair(side) as pair:
        close = await _start_application_close(pair, 1000)
        await pair.raw.send(pair.raw.frame(rf.TEXT, b"in flight") + pair.raw.frame(rf.BINARY, b"\x00" * 300))
        await _finish_application_close(pair, 1000, close)


async def test_peer_vanishes_without_close(side: str) -> None:
    # TCP closed with no close frame: the application sees 1006 (§7.1.5),
    # which is never written on the wire.
    async with open_pair(side) as pair:
        await pair.assert_echo("hello")
        await pair.raw.aclose()
        user = await pair.wait_user()
        user.assert_closed_with(1006)
        if side == "server":
            await pair.assert_serves_again()
