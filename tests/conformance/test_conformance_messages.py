"""Message size limits, fragmentation and ping/pong (RFC 6455 §5.4, §5.5.2-3, §10.4)."""

from __future__ import annotations

import pytest
from support import rawframes as rf
from wsharness import PROMPT, Pair, open_pair, within

MESSAGE_TOO_BIG = 1009
LIMIT = 1024


def fragments(pair: Pair, opcode: int, payload: bytes, size: int) -> list[bytes]:
    """``payload`` as one message of fragments of at most ``size`` bytes."""
    chunks = [payload[i : i + size] for i in range(0, len(payload), size)] or [b""]
    return [
        pair.raw.frame(opcode if i == 0 else rf.CONT, chunk, fin=i == len(chunks) - 1) for i, chunk in enumerate(chunks)
    ]


@pytest.mark.parametrize("opcode", [rf.TEXT, rf.BINARY], ids=["text", "binary"])
@pytest.mark.parametrize("size", [LIMIT + 1, 70000], ids=["limit+1", "64-bit-length"])
async def test_too_big_single_frame(side: str, opcode: int, size: int) -> None:
    async with open_pair(side, max_message_size=LIMIT) as pair:
        await pair.assert_fails_with(MESSAGE_TOO_BIG, pair.raw.frame(opcode, b"a" * size))


@pytest.mark.parametrize("opcode", [rf.TEXT, rf.BINARY], ids=["text", "binary"])
@pytest.mark.parametrize("sizes", [[300] * 4, [LIMIT, 1], [1, LIMIT]], ids=["4x300", "limit+1-at-end", "1+limit"])
async def test_too_big_fragmented(side: str, opcode: int, sizes: list[int]) -> None:
    async with open_pair(side, max_message_size=LIMIT) as pair:
        frames = [
            pair.raw.frame(opcode if i == 0 else rf.CONT, b"b" * n, fin=i == len(sizes) - 1)
            for i, n in enumerate(sizes)
        ]
        await pair.assert_fails_with(MESSAGE_TOO_BIG, frames)


@pytest.mark.parametrize("fragment", [LIMIT, 100, 1], ids=["one-frame", "100-byte-frags", "1-byte-frags"])
async def test_message_at_limit_is_accepted(side: str, fragment: int) -> None:
    payload = bytes(i % 256 for i in range(LIMIT))
    async with open_pair(side, max_message_size=LIMIT) as pair:
        await pair.send_message_frames(fragments(pair, rf.BINARY, payload, fragment))
        assert await within(PROMPT, "echo", pair.recv_message) == payload
        # The size counter starts again with each message.
        await pair.send_message_frames(fragments(pair, rf.BINARY, payload, fragment))
        assert await within(PROMPT, "echo", pair.recv_message) == payload


async def test_default_limit_is_one_mebibyte(side: str) -> None:
    mib = 2**20
    async with open_pair(side) as pair:
        await pair.send_message_frames(fragments(pair, rf.BINARY, b"m" * mib, 65536))
        assert await within(5 * PROMPT, "1 MiB echo", pair.recv_message) == b"m" * mib
        await pair.assert_fails_with(MESSAGE_TOO_BIG, fragments(pair, rf.BINARY, b"m" * (mib + 1), 65536))


@pytest.mark.parametrize(
    "payload", [b"", b"hello", bytes(range(125)), b"\xff\x00\xfe"], ids=["empty", "hello", "125", "binary"]
)
async def test_ping_answered_with_same_payload(side: str, payload: bytes) -> None:
    async with open_pair(side) as pair:
        await pair.raw.send_frame(rf.PING, payload)
        await pair.expect_pong(payload)
        await pair.assert_echo("still fine")


async def test_several_pings(side: str) -> None:
    # §5.5.3 allows answering only the latest of several pending pings, so:
    # every pong matches some ping, in order, and the last ping is answered.
    payloads = [f"ping {i}".encode() for i in range(10)]
    async with open_pair(side) as pair:
        await pair.raw.send(b"".join(pair.raw.frame(rf.PING, p) for p in payloads))
        seen: list[bytes] = []
        while not seen or seen[-1] != payloads[-1]:
            frame = await within(PROMPT, "pongs", pair.raw.recv_frame)
            assert frame.opcode == rf.PONG, frame
            seen.append(frame.payload)
        positions = [payloads.index(p) for p in seen]
        assert positions == sorted(set(positions)), seen


async def test_unsolicited_pong_is_ignored(side: str) -> None:
    async with open_pair(side) as pair:
        await pair.raw.send_frame(rf.PONG, b"nobody asked")
        await pair.assert_echo("after a stray pong")
        assert pair.user.error is None


@pytest.mark.parametrize("opcode", [rf.TEXT, rf.BINARY], ids=["text", "binary"])
async def test_ping_between_fragments(side: str, opcode: int) -> None:
    async with open_pair(side) as pair:
        await pair.send_message_frames(
            [
                pair.raw.frame(opcode, b"Hel", fin=False),
                pair.raw.frame(rf.PING, b"mid-1"),
                pair.raw.frame(rf.CONT, b"lo", fin=False),
                pair.raw.frame(rf.PING, b"mid-2"),
                pair.raw.frame(rf.PONG, b"unasked"),
                pair.raw.frame(rf.CONT, b", world"),
            ]
        )
        pongs: list[bytes] = []
        message = None

        async def collect() -> None:
            nonlocal message
            while message is None or not pongs or pongs[-1] != b"mid-2":
                frame = await pair.raw.recv_frame()
                if frame.opcode == rf.PONG:
                    pongs.append(frame.payload)
                    continue
                assert frame.opcode in (rf.TEXT, rf.BINARY), frame
                assert frame.fin, "the echo of a small message comes in one frame"
                message = frame.payload

        await within(PROMPT, "pongs and the echo", collect)
        # §5.5.3: a pong may answer only the latest of pending pings.
        assert pongs in ([b"mid-1", b"mid-2"], [b"mid-2"]), pongs
        assert message == b"Hello, world"
        expected = "Hello, world" if opcode == rf.TEXT else b"Hello, world"
        assert pair.user.messages == [expected]


async def test_many_fragments_with_pings(side: str) -> None:
    payload = bytes(range(256)) * 8
    async with open_pair(side) as pair:
        frames = fragments(pair, rf.BINARY, payload, 64)
        mixed = []
        for i, frame in enumerate(frames):
            mixed.append(frame)
            if i % 5 == 0 and i < len(frames) - 1:
                mixed.append(pair.raw.frame(rf.PING, str(i).encode()))
        await pair.send_message_frames(mixed)
        pongs: list[bytes] = []

        async def collect() -> bytes:
            while True:
                frame = await pair.raw.recv_frame()
                if frame.opcode == rf.PONG:
                    pongs.append(frame.payload)
                    continue
                # Reassemble the (possibly fragmented) echo.
                parts = [frame.payload]
                while not frame.fin:
                    frame = await pair.raw.recv_frame()
                    if frame.opcode == rf.PONG:
                        pongs.append(frame.payload)
                        continue
                    assert frame.opcode == rf.CONT, frame
                    parts.append(frame.payload)
                return b"".join(parts)

        assert await within(PROMPT, "echo", collect) == payload
        assert pair.user.messages == [payload]
        sent = [str(i).encode() for i in range(0, len(frames) - 1, 5)]
        assert pongs and set(pongs) <= set(sent), pongs
