"""Hand-rolled RFC 6455 frames and handshakes for the conformance tests.

Nothing here uses trio_ws or wsproto: the conformance and connection tests
need a peer that can write frames no well-behaved library would produce
(reserved bits, unknown opcodes, fragmented control frames, bad masking) and
that can check, byte by byte, what trio_ws writes back.

Frame layout (RFC 6455 §5.2)::

    byte 0: FIN | RSV1 | RSV2 | RSV3 | opcode (4 bits)
    byte 1: MASK | payload length (7 bits: 0-125, 126 = 16-bit, 127 = 64-bit)
    [2 or 8 bytes of extended length, network order]
    [4 bytes of masking key if MASK]
    payload (XORed with the key, cycling every 4 bytes, if MASK)
"""

from __future__ import annotations

import base64
import hashlib
import os
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field

import trio

# Opcodes (RFC 6455 §5.2).
CONT = 0x0
TEXT = 0x1
BINARY = 0x2
CLOSE = 0x8
PING = 0x9
PONG = 0xA

DATA_OPCODES = frozenset({CONT, TEXT, BINARY})
CONTROL_OPCODES = frozenset({CLOSE, PING, PONG})
RESERVED_OPCODES = tuple(range(0x3, 0x8)) + tuple(range(0xB, 0x10))

#: Appended to Sec-WebSocket-Key before hashing (RFC 6455 §1.3).
WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

#: Biggest payload a control frame may carry (RFC 6455 §5.5).
MAX_CONTROL_PAYLOAD = 125


# --------------------------------------------------------------------------
# Building frames
# --------------------------------------------------------------------------


def apply_mask(key: bytes, data: bytes) -> bytes:
    """XOR ``data`` with the 4-byte ``key``; masking and unmasking are the same."""
    if len(key) != 4:
        raise ValueError("a masking key is exactly 4 bytes")
    if not data:
        return b""
    # Whole-buffer XOR through big integers: fast enough for megabyte payloads.
    repeated = (key * (len(data) // 4 + 1))[: len(data)]
    mixed = int.from_bytes(data, "big") ^ int.from_bytes(repeated, "big")
    return mixed.to_bytes(len(data), "big")


def encode_length(length: int, *, width: int | None = None) -> tuple[int, bytes]:
    """Return (7-bit length field, extended length bytes) for ``length``.

    ``width`` forces the 7-bit (7), 16-bit (16) or 64-bit (64) form; by default
    the shortest form is used, as the RFC requires.
    """
    if length < 0:
        raise ValueError("negative length")
    if width is None:
        width = 7 if length <= 125 else 16 if length <= 0xFFFF else 64
    if width == 7:
        if length > 125:
            raise ValueError(f"{length} does not fit the 7-bit length field")
        return length, b""
    if width == 16:
        if length > 0xFFFF:
            raise ValueError(f"{length} does not fit a 16-bit length")
        return 126, struct.pack("!H", length)
    if width == 64:
        if length >= 1 << 63:
            raise ValueError("the most significant bit of a 64-bit length must be 0")
        return 127, struct.pack("!Q", length)
    raise ValueError(f"unknown length width {width!r}")


def build_frame(
    opcode: int,
    payload: bytes = b"",
    *,
    fin: bool = True,
    rsv1: bool = False,
    rsv2: bool = False,
    rsv3: bool = False,
    mask: bytes | None = None,
    length_width: int | None = None,
) -> bytes:
    """Serialise one frame.

    ``mask`` is the 4-byte masking key (None: unmasked frame). ``opcode`` is
    taken as is, so reserved opcodes can be written; only its low 4 bits fit.
    """
    if not 0 <= opcode <= 0xF:
        raise ValueError(f"opcode {opcode!r} does not fit in 4 bits")
    first = (0x80 if fin else 0) | (0x40 if rsv1 else 0) | (0x20 if rsv2 else 0) | (0x10 if rsv3 else 0) | opcode
    short_len, extended = encode_length(len(payload), width=length_width)
    second = short_len | (0x80 if mask is not None else 0)
    header = bytes([first, second]) + extended
    if mask is None:
        return header + bytes(payload)
    return header + mask + apply_mask(mask, bytes(payload))


def random_mask() -> bytes:
    return os.urandom(4)


def close_payload(code: int | None = None, reason: bytes | str = b"") -> bytes:
    """Body of a close frame: 2-byte code then the (raw) reason bytes."""
    if isinstance(reason, str):
        reason = reason.encode("utf-8")
    if code is None:
        if reason:
            raise ValueError("a close reason needs a code")
        return b""
    return struct.pack("!H", code) + reason


# --------------------------------------------------------------------------
# Parsing frames
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class Frame:
    """One parsed frame.

    Two frames are equal when their bits, opcode and payload are: how the
    payload was masked and its length written are left out, so a test can
    compare what it read with ``Frame(True, False, PING, b"x")``.
    """

    fin: bool
    rsv1: bool
    opcode: int
    #: The payload, already unmasked.
    payload: bytes
    rsv2: bool = False
    rsv3: bool = False
    masked: bool = field(default=False, compare=False)
    mask: bytes | None = field(default=None, compare=False)
    #: The length form the sender used: 7, 16 or 64.
    length_width: int = field(default=7, compare=False)

    @property
    def is_control(self) -> bool:
        return self.opcode >= 0x8

    @property
    def any_rsv(self) -> bool:
        return self.rsv1 or self.rsv2 or self.rsv3

    @property
    def close_code(self) -> int | None:
        """The code of a close frame (None when its payload is empty)."""
        assert self.opcode == CLOSE, self
        return parse_close_payload(self.payload)[0]

    @property
    def close_reason(self) -> bytes:
        assert self.opcode == CLOSE, self
        return parse_close_payload(self.payload)[1]


class IncompleteFrame(Exception):
    """Raised by :func:`parse_frame` when ``data`` holds less than one frame."""


def parse_frame(data: bytes | bytearray) -> tuple[Frame, int]:
    """Parse the frame at the start of ``data``.

    Returns (frame, number of bytes it took). Raises IncompleteFrame when more
    bytes are needed. No protocol rule is checked here: the caller asserts.
    """
    if len(data) < 2:
        raise IncompleteFrame
    first, second = data[0], data[1]
    short_len = second & 0x7F
    pos = 2
    if short_len == 126:
        width = 16
        if len(data) < pos + 2:
            raise IncompleteFrame
        (length,) = struct.unpack_from("!H", data, pos)
        pos += 2
    elif short_len == 127:
        width = 64
        if len(data) < pos + 8:
            raise IncompleteFrame
        (length,) = struct.unpack_from("!Q", data, pos)
        pos += 8
    else:
        width = 7
        length = short_len
    masked = bool(second & 0x80)
    mask = None
    if masked:
        if len(data) < pos + 4:
            raise IncompleteFrame
        mask = bytes(data[pos : pos + 4])
        pos += 4
    if len(data) < pos + length:
        raise IncompleteFrame
    payload = bytes(data[pos : pos + length])
    if mask is not None:
        payload = apply_mask(mask, payload)
    frame = Frame(
        fin=bool(first & 0x80),
        rsv1=bool(first & 0x40),
        rsv2=bool(first & 0x20),
        rsv3=bool(first & 0x10),
        opcode=first & 0x0F,
        masked=masked,
        mask=mask,
        payload=payload,
        length_width=width,
    )
    return frame, pos + length


def parse_close_payload(payload: bytes) -> tuple[int | None, bytes]:
    """(code, reason bytes) of a close frame body; code None when empty."""
    if not payload:
        return None, b""
    if len(payload) == 1:
        raise ValueError("a close payload of 1 byte is malformed")
    (code,) = struct.unpack("!H", payload[:2])
    return code, payload[2:]


# --------------------------------------------------------------------------
# Opening handshake (RFC 6455 §4)
# --------------------------------------------------------------------------


def new_key() -> bytes:
    """A fresh Sec-WebSocket-Key: base64 of 16 random bytes."""
    return base64.b64encode(os.urandom(16))


def accept_for(key: bytes) -> bytes:
    """The Sec-WebSocket-Accept value a server must answer ``key`` with."""
    return base64.b64encode(hashlib.sha1(key + WS_GUID).digest())


def client_request(host: str, port: int | None, path: str, key: bytes, extra: Sequence[tuple[str, str]] = ()) -> bytes:
    lines = [
        f"GET {path} HTTP/1.1",
        f"Host: {host}" if port is None else f"Host: {host}:{port}",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Key: {key.decode('ascii')}",
        "Sec-WebSocket-Version: 13",
    ]
    lines += [f"{name}: {value}" for name, value in extra]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def server_response(key: bytes, extra: Sequence[tuple[str, str]] = ()) -> bytes:
    lines = [
        "HTTP/1.1 101 Switching Protocols",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Accept: {accept_for(key).decode('ascii')}",
    ]
    lines += [f"{name}: {value}" for name, value in extra]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def parse_http_head(head: bytes) -> tuple[str, dict[str, list[str]]]:
    """(start line, {lower-case header name: [values]}) of an HTTP/1.1 head."""
    text = head.decode("latin-1")
    start, *rest = text.split("\r\n")
    headers: dict[str, list[str]] = {}
    for line in rest:
        if not line:
            continue
        name, sep, value = line.partition(":")
        if not sep:
            raise ValueError(f"malformed header line {line!r}")
        headers.setdefault(name.strip().lower(), []).append(value.strip())
    return start, headers


def header_tokens(headers: dict[str, list[str]], name: str) -> set[str]:
    """Comma-separated tokens of header ``name``, lower-cased."""
    tokens: set[str] = set()
    for value in headers.get(name, []):
        tokens.update(tok.strip().lower() for tok in value.split(",") if tok.strip())
    return tokens


# --------------------------------------------------------------------------
# A raw peer over a trio stream
# --------------------------------------------------------------------------


class PeerClosed(Exception):
    """The other side closed (or reset) the TCP connection."""


class RawPeer:
    """One end of a WebSocket connection driven by hand.

    ``is_client`` says which role *this* raw peer plays: a raw client masks what
    it sends and expects unmasked frames; a raw server the other way round.
    :meth:`recv_frame` checks every frame against that rule and against "no RSV
    bit without an extension" (the conformance tests); :meth:`read_frame`
    takes frames as they come, compressed ones too, and returns None at the
    end of the stream (the connection tests).
    """

    def __init__(self, stream: trio.abc.Stream, *, is_client: bool) -> None:
        self.stream = stream
        self.is_client = is_client
        self.buffer = bytearray()
        self.eof = False
        #: True when the connection ended with a reset instead of a FIN.
        self.reset = False
        #: Request headers the raw server received (server role only).
        self.request_headers: dict[str, list[str]] = {}
        self.response_headers: dict[str, list[str]] = {}

    # -- bytes ---------------------------------------------------------------

    async def _fill(self) -> None:
        if self.eof:
            raise PeerClosed("connection already at EOF")
        try:
            chunk = await self.stream.receive_some(65536)
        except trio.BrokenResourceError:
            self.eof = True
            self.reset = True
            raise PeerClosed("connection reset") from None
        if not chunk:
            self.eof = True
            raise PeerClosed("EOF")
        self.buffer += chunk

    async def read_until(self, marker: bytes, limit: int = 65536) -> bytes:
        while True:
            idx = self.buffer.find(marker)
            if idx >= 0:
                end = idx + len(marker)
                out = bytes(self.buffer[:end])
                del self.buffer[:end]
                return out
            if len(self.buffer) > limit:
                raise AssertionError(f"no {marker!r} within {limit} bytes")
            await self._fill()

    async def send(self, data: bytes) -> bool:
        """Send raw bytes; False if the other side is already gone."""
        try:
            await self.stream.send_all(data)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            return False
        return True

    async def aclose(self) -> None:
        await self.stream.aclose()

    # -- frames --------------------------------------------------------------

    def frame(self, opcode: int, payload: bytes = b"", **kwargs: object) -> bytes:
        """Build a frame, masked with a random key if this peer is a client.

        Pass ``mask=None`` explicitly to write an unmasked client frame, or a
        4-byte ``mask`` to write a masked server frame.
        """
        if "mask" not in kwargs:
            kwargs["mask"] = random_mask() if self.is_client else None
        return build_frame(opcode, payload, **kwargs)  # type: ignore[arg-type]

    async def send_frame(self, opcode: int, payload: bytes = b"", **kwargs: object) -> bool:
        return await self.send(self.frame(opcode, payload, **kwargs))

    async def recv_frame(self) -> Frame:
        """Next frame from the trio_ws side, checked for masking and RSV bits."""
        while True:
            try:
                frame, used = parse_frame(self.buffer)
            except IncompleteFrame:
                await self._fill()
                continue
            del self.buffer[:used]
            break
        if self.is_client:
            assert not frame.masked, f"a server sent a masked frame: {frame}"
        else:
            assert frame.masked, f"a client sent an unmasked frame: {frame}"
        assert not frame.any_rsv, f"RSV bit set with no extension negotiated: {frame}"
        assert frame.opcode in DATA_OPCODES | CONTROL_OPCODES, f"reserved opcode: {frame}"
        if frame.is_control:
            assert frame.fin, f"fragmented control frame: {frame}"
            assert len(frame.payload) <= MAX_CONTROL_PAYLOAD, f"control frame too long: {frame}"
        return frame

    async def read_frame(self) -> Frame | None:
        """Next frame as it is, unchecked; None once the other side closed or reset TCP."""
        while True:
            try:
                frame, used = parse_frame(self.buffer)
            except IncompleteFrame:
                try:
                    await self._fill()
                except PeerClosed:
                    return None
                continue
            del self.buffer[:used]
            return frame

    async def read_frames_until_eof(self) -> list[Frame]:
        """Every frame up to the end of the stream."""
        frames = []
        while (frame := await self.read_frame()) is not None:
            frames.append(frame)
        return frames

    async def recv_until_close(self) -> tuple[Frame, list[Frame]]:
        """Read frames up to a close frame: (close frame, frames before it)."""
        before: list[Frame] = []
        while True:
            frame = await self.recv_frame()
            if frame.opcode == CLOSE:
                return frame, before
            before.append(frame)

    async def recv_until_eof(self) -> bytes:
        """Read until the other side closes TCP; return the bytes seen meanwhile."""
        seen = bytes(self.buffer)
        self.buffer.clear()
        while True:
            try:
                await self._fill()
            except PeerClosed:
                return seen
            seen += bytes(self.buffer)
            self.buffer.clear()

    # -- handshakes ----------------------------------------------------------

    async def client_handshake(
        self,
        host: str = "localhost",
        port: int | None = None,
        path: str = "/",
        extra: Sequence[tuple[str, str]] = (),
        *,
        extensions: bytes | None = None,
    ) -> bytes:
        """Send an upgrade request (offering ``extensions`` if given), check the 101; return its head."""
        key = new_key()
        if extensions is not None:
            extra = [*extra, ("Sec-WebSocket-Extensions", extensions.decode("latin-1"))]
        await self.stream.send_all(client_request(host, port, path, key, extra))
        head = await self.read_until(b"\r\n\r\n")
        start, headers = parse_http_head(head)
        self.response_headers = headers
        assert start.startswith("HTTP/1.1 101"), f"handshake refused: {start!r}"
        assert header_tokens(headers, "upgrade") == {"websocket"}, headers
        assert "upgrade" in header_tokens(headers, "connection"), headers
        assert headers.get("sec-websocket-accept") == [accept_for(key).decode()], headers
        if extensions is None:
            assert "sec-websocket-extensions" not in headers, (
                f"server negotiated an extension nobody asked for: {headers}"
            )
        return head

    async def server_handshake(self, extra: Sequence[tuple[str, str]] = ()) -> None:
        head = await self.read_until(b"\r\n\r\n")
        start, headers = parse_http_head(head)
        self.request_headers = headers
        method, _, rest = start.partition(" ")
        assert method == "GET" and rest.endswith(" HTTP/1.1"), start
        assert "websocket" in header_tokens(headers, "upgrade"), headers
        assert "upgrade" in header_tokens(headers, "connection"), headers
        assert headers.get("sec-websocket-version") == ["13"], headers
        (key,) = headers["sec-websocket-key"]
        assert len(base64.b64decode(key, validate=True)) == 16, key
        # Extensions the client may offer (permessage-deflate) are declined by
        # leaving Sec-WebSocket-Extensions out of the answer.
        await self.stream.send_all(server_response(key.encode("ascii"), extra))
