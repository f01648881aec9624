"""Frame headers and frame serialisation (RFC 6455 §5.2), for the fast path.

wsproto parses and builds frames too, but it copies every payload several
times and masks in pure Python. trio_ws uses these functions for the common
case (whole data messages) and hands everything else to wsproto; see
:mod:`trio_ws.protocol` for how the two are combined.
"""

from __future__ import annotations

import os
import struct
from typing import NamedTuple

from .masking import apply_mask

__all__ = [
    "OP_CONTINUATION",
    "OP_TEXT",
    "OP_BINARY",
    "OP_CLOSE",
    "OP_PING",
    "OP_PONG",
    "FrameHeader",
    "parse_header",
    "length_error",
    "encode_frame",
    "encode_frame_parts",
]

OP_CONTINUATION = 0x0
OP_TEXT = 0x1
OP_BINARY = 0x2
OP_CLOSE = 0x8
OP_PING = 0x9
OP_PONG = 0xA

_LEN16 = struct.Struct("!H")
_LEN64 = struct.Struct("!Q")


class FrameHeader(NamedTuple):
    """A parsed frame header.

    ``rsv`` holds the three reserved bits as an int (RSV1 = 4, RSV2 = 2,
    RSV3 = 1). ``size`` is the header's length in bytes, masking key included.
    """

    fin: bool
    rsv: int
    opcode: int
    masking_key: bytes | None
    length: int
    size: int


def parse_header(buffer: bytes | bytearray, start: int) -> FrameHeader | None:
    """Parse the frame header at ``buffer[start:]``, or None if incomplete.

    No validation is done here: the caller decides what it can handle and
    passes the rest to wsproto, which reports protocol errors.
    """
    available = len(buffer) - start
    if available < 2:
        return None
    first = buffer[start]
    second = buffer[start + 1]
    length = second & 0x7F
    size = 2
    if length == 126:
        if available < 4:
            return None
        (length,) = _LEN16.unpack_from(buffer, start + 2)
        size = 4
    elif length == 127:
        if available < 10:
            return None
        (length,) = _LEN64.unpack_from(buffer, start + 2)
        size = 10
    key: bytes | None = None
    if second & 0x80:
        if available < size + 4:
            return None
        key = bytes(buffer[start + size : start + size + 4])
        size += 4
    return FrameHeader(bool(first & 0x80), (first >> 4) & 0x7, first & 0x0F, key, length, size)


def length_error(header: FrameHeader) -> str | None:
    """Why the header's payload length is malformed, or None if it is fine.

    RFC 6455 §5.2: the length uses the shortest of the three forms, and a
    64-bit length has its most significant bit clear. wsproto fails such a
    frame with 1002; the fast path must not be more lenient.
    """
    form = header.size - (4 if header.masking_key is not None else 0)
    length = header.length
    if form == 10 and length >= 1 << 63:
        return "64-bit payload length has its most significant bit set"
    if (form == 4 and length < 126) or (form == 10 and length < 65536):
        return f"payload length {length:,} is not minimally encoded"
    return None


def encode_frame(
    opcode: int,
    payload: bytes,
    *,
    fin: bool = True,
    rsv1: bool = False,
    mask: bool,
) -> bytes:
    """Serialise one frame.

    Args:
        opcode: the frame's opcode.
        payload: the (already compressed, if RSV1 is set) payload.
        fin: whether this is the last frame of the message.
        rsv1: set the RSV1 bit (a compressed message's first frame).
        mask: mask the payload with a fresh random key (client frames, §5.3).

    Returns:
        the frame's bytes.
    """
    header = _header(opcode, len(payload), fin, rsv1, mask)
    if mask:
        # §5.3: a fresh, unpredictable key for every frame.
        key = os.urandom(4)
        return header + key + apply_mask(payload, key)
    return header + payload


def encode_frame_parts(
    opcode: int,
    payload: bytes,
    *,
    fin: bool = True,
    rsv1: bool = False,
    mask: bool,
) -> list[bytes]:
    """Serialise one frame as two buffers: its header (with the masking key) and its body.

    Takes the arguments of :func:`encode_frame`. Unmasked, the body is
    ``payload`` itself: written with a gather write, a large frame's payload
    is never copied in user space.
    """
    header = _header(opcode, len(payload), fin, rsv1, mask)
    if mask:
        # §5.3: a fresh, unpredictable key for every frame.
        key = os.urandom(4)
        return [header + key, apply_mask(payload, key)]
    return [header, payload]


def _header(opcode: int, length: int, fin: bool, rsv1: bool, mask: bool) -> bytes:
    """A frame header up to (not including) the masking key."""
    first = opcode | (0x80 if fin else 0) | (0x40 if rsv1 else 0)
    mask_bit = 0x80 if mask else 0
    if length < 126:
        return bytes((first, mask_bit | length))
    if length < 65536:
        return bytes((first, mask_bit | 126)) + _LEN16.pack(length)
    return bytes((first, mask_bit | 127)) + _LEN64.pack(length)
