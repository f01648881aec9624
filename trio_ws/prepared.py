"""Messages serialised once and sent on many connections (frame-once fan-out).

A :class:`PreparedMessage` caches the frame bytes per *framing key*: what a
server connection's framing depends on. Without compression every server
connection frames a message identically (server frames are not masked, RFC
6455 §5.1). With permessage-deflate and ``server_no_context_takeover`` the
compressor starts fresh for every message (RFC 7692 §7.1.1.1), so connections
with the same window bits and zlib settings produce the same bytes too. With
context takeover each connection's compressor has its own history, and client
connections mask every frame with a fresh key: those are framed per
connection.
"""

from __future__ import annotations

from .compression import deflate, new_compressor
from .framing import OP_BINARY, OP_TEXT, encode_frame

__all__ = ["PreparedMessage", "FramingKey"]

#: ``None`` for uncompressed server framing, else (window bits, level, memory level).
FramingKey = tuple[int, int, int] | None


class PreparedMessage:
    """A text or binary message to send on many connections.

    Pass it to :meth:`~trio_ws.WebSocketConnection.send_message` on each one;
    the frame is built at most once per framing key and reused.

    Args:
        data: ``str`` for a text message, bytes-like for a binary one.

    Raises:
        TypeError: for any other type.
    """

    __slots__ = ("_frames", "data", "is_text", "payload")

    def __init__(self, data: str | bytes | bytearray | memoryview) -> None:
        if isinstance(data, str):
            self.is_text = True
            self.payload = data.encode("utf-8")
        elif isinstance(data, (bytes, bytearray, memoryview)):
            self.is_text = False
            self.payload = bytes(data)
        else:
            raise TypeError(f"a prepared message must be str or bytes-like, not {type(data).__name__}")
        self.data: str | bytes = data if isinstance(data, str) else self.payload
        self._frames: dict[FramingKey, bytes] = {}

    @property
    def frames_built(self) -> int:
        """How many distinct frames have been built so far (1 for a plain fan-out)."""
        return len(self._frames)

    def frame(self, key: FramingKey) -> bytes:
        """The server frame for ``key``, built on first use."""
        frame = self._frames.get(key)
        if frame is None:
            opcode = OP_TEXT if self.is_text else OP_BINARY
            if key is None:
                frame = encode_frame(opcode, self.payload, mask=False)
            else:
                # RFC 7692 §7.1.1.1: with no context takeover every message
                # starts from a fresh compressor, so the frame can be shared.
                frame = encode_frame(opcode, deflate(new_compressor(*key), self.payload), rsv1=True, mask=False)
            self._frames[key] = frame
        return frame

    def __len__(self) -> int:
        return len(self.payload)

    def __repr__(self) -> str:
        kind = "text" if self.is_text else "binary"
        return f"<PreparedMessage {kind} {len(self.payload)} bytes, {len(self._frames)} frame(s)>"
