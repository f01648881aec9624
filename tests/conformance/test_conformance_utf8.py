"""UTF-8 validation of text messages and close reasons (RFC 6455 §5.6, §8.1).

A text message is validated as a whole: a multi-byte character may be split
across fragments at any byte and must then be accepted; an invalid sequence
must give 1007 wherever the fragment boundary falls.
"""

from __future__ import annotations

import pytest
from support import rawframes as rf
from wsharness import open_pair

INVALID_PAYLOAD = 1007

VALID_CHARS = {
    "2-byte": "\u00e9",  # é
    "3-byte": "\u20ac",  # €
    "4-byte": "\U0001f600",  # 😀
}

VALID_SPLITS = [(name, k) for name, char in VALID_CHARS.items() for k in range(1, len(char.encode()))]

PREFIX = b"ab"
SUFFIX = b"cd"

#: (id, bad bytes, followed by SUFFIX?)
INVALID_SEQUENCES = [
    ("lone-continuation", b"\x80", True),
    ("byte-ff", b"\xff", True),
    ("overlong-2", b"\xc0\xaf", True),
    ("overlong-3", b"\xe0\x80\xaf", True),
    ("overlong-4", b"\xf0\x80\x80\xaf", True),
    ("surrogate", b"\xed\xa0\x80", True),
    ("above-u10ffff", b"\xf4\x90\x80\x80", True),
    ("five-byte-form", b"\xf8\x88\x80\x80\x80", True),
    ("cut-3-byte-then-ascii", b"\xe2\x82", True),
    ("cut-4-byte-then-ascii", b"\xf0\x9f\x98", True),
    ("cut-4-byte-at-message-end", b"\xf0\x9f\x98", False),
]


def invalid_message(bad: bytes, suffix: bool) -> bytes:
    return PREFIX + bad + (SUFFIX if suffix else b"")


INVALID_SPLITS = [
    pytest.param(bad, suffix, cut, id=f"{name}-cut{cut - len(PREFIX)}")
    for name, bad, suffix in INVALID_SEQUENCES
    # Every boundary from just before the bad sequence to just after it.
    for cut in range(len(PREFIX), len(PREFIX) + len(bad) + 1)
]


@pytest.mark.parametrize(("name", "cut"), VALID_SPLITS, ids=[f"{n}-cut{k}" for n, k in VALID_SPLITS])
async def test_valid_character_split_across_fragments(side: str, name: str, cut: int) -> None:
    char = VALID_CHARS[name]
    encoded = char.encode()
    async with open_pair(side) as pair:
        await pair.send_message_frames(
            [
                pair.raw.frame(rf.TEXT, PREFIX + encoded[:cut], fin=False),
                pair.raw.frame(rf.CONT, encoded[cut:] + SUFFIX),
            ]
        )
        assert await pair.recv_message() == "ab" + char + "cd"
        assert pair.user.messages == ["ab" + char + "cd"]


async def test_valid_text_one_byte_per_fragment(side: str) -> None:
    text = "a\u00e9\u20ac\U0001f600z"
    data = text.encode()
    async with open_pair(side) as pair:
        frames = [pair.raw.frame(rf.TEXT, data[:1], fin=False)]
        frames += [pair.raw.frame(rf.CONT, data[i : i + 1], fin=False) for i in range(1, len(data))]
        frames.append(pair.raw.frame(rf.CONT, b""))  # an empty final fragment is legal
        await pair.send_message_frames(frames)
        assert await pair.recv_message() == text


async def test_valid_text_with_empty_fragments_inside_a_character(side: str) -> None:
    encoded = "\U0001f600".encode()
    async with open_pair(side) as pair:
        await pair.send_message_frames(
            [
                pair.raw.frame(rf.TEXT, b"", fin=False),
                pair.raw.frame(rf.CONT, encoded[:2], fin=False),
                pair.raw.frame(rf.CONT, b"", fin=False),
                pair.raw.frame(rf.CONT, encoded[2:]),
            ]
        )
        assert await pair.recv_message() == "\U0001f600"


@pytest.mark.parametrize(
    ("bad", "suffix"),
    [pytest.param(bad, suffix, id=name) for name, bad, suffix in INVALID_SEQUENCES],
)
async def test_invalid_utf8_single_frame(side: str, bad: bytes, suffix: bool) -> None:
    async with open_pair(side) as pair:
        await pair.assert_fails_with(INVALID_PAYLOAD, pair.raw.frame(rf.TEXT, invalid_message(bad, suffix)))


@pytest.mark.parametrize(("bad", "suffix", "cut"), INVALID_SPLITS)
async def test_invalid_utf8_split_across_fragments(side: str, bad: bytes, suffix: bool, cut: int) -> None:
    message = invalid_message(bad, suffix)
    async with open_pair(side) as pair:
        await pair.assert_fails_with(
            INVALID_PAYLOAD,
            [
                pair.raw.frame(rf.TEXT, message[:cut], fin=False),
                pair.raw.frame(rf.CONT, message[cut:]),
            ],
        )


async def test_invalid_utf8_one_byte_per_fragment(side: str) -> None:
    message = b"ok\xed\xa0\x80ok"
    async with open_pair(side) as pair:
        frames = [pair.raw.frame(rf.TEXT, message[:1], fin=False)]
        frames += [
            pair.raw.frame(rf.CONT, message[i : i + 1], fin=i == len(message) - 1) for i in range(1, len(message))
        ]
        await pair.assert_fails_with(INVALID_PAYLOAD, frames)


async def test_binary_message_is_not_utf8_checked(side: str) -> None:
    async with open_pair(side) as pair:
        await pair.assert_echo(b"\xff\xfe\xed\xa0\x80")


@pytest.mark.parametrize(
    "reason",
    [b"\xff", b"ok\xe2\x82", b"\xed\xa0\x80", b"\xc0\xaf"],
    ids=["byte-ff", "cut-3-byte", "surrogate", "overlong"],
)
async def test_invalid_utf8_in_close_reason(side: str, reason: bytes) -> None:
    async with open_pair(side) as pair:
        await pair.assert_fails_with(INVALID_PAYLOAD, pair.raw.frame(rf.CLOSE, rf.close_payload(1000, reason)))
