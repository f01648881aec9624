"""RFC 6455 framing rules: what trio_ws does when its peer breaks them.

Each test talks raw bytes over real 127.0.0.1 TCP to trio_ws, acting as the
client (``ws-server`` ids: trio_ws is the server) or as the server (``ws-client``
ids). The checks, done by ``Pair.assert_fails_with``: trio_ws writes a close
frame with the right code within a second; a trio_ws server then closes TCP
first; the application sees a plain ConnectionClosed with that code; and a
trio_ws server goes on serving new connections.
"""

from __future__ import annotations

import pytest
from support import rawframes as rf
from wsharness import open_pair

PROTOCOL_ERROR = 1002

CONTROL = [rf.PING, rf.PONG, rf.CLOSE]
CONTROL_IDS = ["ping", "pong", "close"]


def control_payload(opcode: int, size: int) -> bytes:
    """A payload of ``size`` bytes that is otherwise valid for ``opcode``."""
    if opcode == rf.CLOSE:
        return rf.close_payload(1000, b"r" * (size - 2))
    return bytes(i % 256 for i in range(size))


@pytest.mark.parametrize("bit", ["rsv1", "rsv2", "rsv3"])
@pytest.mark.parametrize("opcode", [rf.TEXT, rf.BINARY, rf.PING], ids=["text", "binary", "ping"])
async def test_reserved_bit_without_extension(side: str, bit: str, opcode: int) -> None:
    # The raw client never offers an extension; the raw server declines any the
    # trio_ws client offers (permessage-deflate is on by default), so no RSV
    # bit has a meaning on this connection.
    async with open_pair(side) as pair:
        await pair.assert_fails_with(PROTOCOL_ERROR, pair.raw.frame(opcode, b"hi", **{bit: True}))


@pytest.mark.parametrize("opcode", rf.RESERVED_OPCODES, ids=lambda op: f"op{op:#x}")
async def test_reserved_opcode(side: str, opcode: int) -> None:
    async with open_pair(side) as pair:
        await pair.assert_fails_with(PROTOCOL_ERROR, pair.raw.frame(opcode, b"?"))


@pytest.mark.parametrize("opcode", rf.RESERVED_OPCODES[:1] + rf.RESERVED_OPCODES[-1:], ids=["op0x3", "op0xf"])
async def test_reserved_opcode_inside_fragmented_message(side: str, opcode: int) -> None:
    async with open_pair(side) as pair:
        await pair.assert_fails_with(
            PROTOCOL_ERROR,
            [pair.raw.frame(rf.TEXT, b"part", fin=False), pair.raw.frame(opcode, b"")],
        )


@pytest.mark.parametrize("opcode", CONTROL, ids=CONTROL_IDS)
async def test_fragmented_control_frame(side: str, opcode: int) -> None:
    async with open_pair(side) as pair:
        first = pair.raw.frame(opcode, control_payload(opcode, 4), fin=False)
        # The "rest" a fragmenting sender would write; it must never be needed.
        rest = pair.raw.frame(rf.CONT, b"more")
        await pair.assert_fails_with(PROTOCOL_ERROR, [first, rest])


@pytest.mark.parametrize("opcode", CONTROL, ids=CONTROL_IDS)
async def test_control_payload_126_bytes(side: str, opcode: int) -> None:
    async with open_pair(side) as pair:
        frame = pair.raw.frame(opcode, control_payload(opcode, 126))
        assert frame[1] & 0x7F == 126  # 16-bit length form, as a sender would use
        await pair.assert_fails_with(PROTOCOL_ERROR, frame)


async def test_ping_payload_125_bytes_is_fine(side: str) -> None:
    async with open_pair(side) as pair:
        payload = bytes(range(125))
        await pair.raw.send_frame(rf.PING, payload)
        await pair.expect_pong(payload)
        await pair.assert_echo("after a big ping")


@pytest.mark.parametrize("fin", [True, False], ids=["fin", "no-fin"])
async def test_continuation_without_start(side: str, fin: bool) -> None:
    async with open_pair(side) as pair:
        await pair.assert_fails_with(PROTOCOL_ERROR, pair.raw.frame(rf.CONT, b"orphan", fin=fin))


async def test_continuation_after_finished_message(side: str) -> None:
    async with open_pair(side) as pair:
        await pair.assert_echo("complete")
        await pair.assert_fails_with(PROTOCOL_ERROR, pair.raw.frame(rf.CONT, b"late"))


@pytest.mark.parametrize("first", [rf.TEXT, rf.BINARY], ids=["text", "binary"])
@pytest.mark.parametrize("second", [rf.TEXT, rf.BINARY], ids=["then-text", "then-binary"])
@pytest.mark.parametrize("fin", [True, False], ids=["fin", "no-fin"])
async def test_new_data_frame_inside_fragmented_message(side: str, first: int, second: int, fin: bool) -> None:
    async with open_pair(side) as pair:
        await pair.assert_fails_with(
            PROTOCOL_ERROR,
            [pair.raw.frame(first, b"open", fin=False), pair.raw.frame(second, b"new", fin=fin)],
        )


@pytest.mark.parametrize("opcode", [rf.TEXT, rf.PING, rf.CLOSE], ids=["text", "ping", "close"])
async def test_unmasked_client_frame(opcode: int) -> None:
    async with open_pair("server") as pair:
        payload = rf.close_payload(1000) if opcode == rf.CLOSE else b"bare"
        await pair.assert_fails_with(PROTOCOL_ERROR, pair.raw.frame(opcode, payload, mask=None))


@pytest.mark.parametrize("opcode", [rf.TEXT, rf.PING, rf.CLOSE], ids=["text", "ping", "close"])
async def test_masked_server_frame(opcode: int) -> None:
    async with open_pair("client") as pair:
        payload = rf.close_payload(1000) if opcode == rf.CLOSE else b"veiled"
        await pair.assert_fails_with(PROTOCOL_ERROR, pair.raw.frame(opcode, payload, mask=rf.random_mask()))


async def test_connect_websocket_client_fails_cleanly() -> None:
    # Same failure path with the nursery-based client API.
    async with open_pair("client", client_api="connect") as pair:
        await pair.assert_fails_with(PROTOCOL_ERROR, pair.raw.frame(0x5, b""))


async def test_violation_after_good_traffic(side: str) -> None:
    # A failure in the middle of a healthy conversation, not just at its start.
    async with open_pair(side) as pair:
        for i in range(3):
            await pair.assert_echo(f"message {i}")
            await pair.assert_echo(bytes([i]) * 200)
        await pair.assert_fails_with(PROTOCOL_ERROR, pair.raw.frame(rf.TEXT, b"x", rsv2=True))


NON_MINIMAL = [
    (rf.TEXT, 0, 16),
    (rf.BINARY, 125, 16),
    (rf.TEXT, 2, 64),
    (rf.BINARY, 126, 64),
    (rf.BINARY, 0xFFFF, 64),
    (rf.PING, 4, 16),
    (rf.PING, 125, 64),
]


@pytest.mark.parametrize(
    ("opcode", "length", "width"),
    NON_MINIMAL,
    ids=[f"op{op}-{length}-as-{width}" for op, length, width in NON_MINIMAL],
)
async def test_non_minimal_payload_length(side: str, opcode: int, length: int, width: int) -> None:
    # RFC 6455 §5.2: "the minimal number of bytes MUST be used to encode the
    # length"; wsproto fails such a frame with 1002 and so must the fast path.
    async with open_pair(side) as pair:
        frame = pair.raw.frame(opcode, b"a" * length, length_width=width)
        await pair.assert_fails_with(PROTOCOL_ERROR, frame)


@pytest.mark.parametrize("opcode", [rf.TEXT, rf.BINARY, rf.PING], ids=["text", "binary", "ping"])
async def test_64_bit_length_with_top_bit_set(side: str, opcode: int) -> None:
    # RFC 6455 §5.2: "the most significant bit MUST be 0". Such a frame is
    # malformed (1002), not merely too big (1009).
    async with open_pair(side) as pair:
        mask_bit = 0x80 if pair.raw.is_client else 0
        header = bytes([0x80 | opcode, mask_bit | 127]) + (1 << 63 | 5).to_bytes(8, "big")
        if pair.raw.is_client:
            header += rf.random_mask()
        await pair.assert_fails_with(PROTOCOL_ERROR, header + b"hello")
