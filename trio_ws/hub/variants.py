"""One message in several wire formats: each member receives the variant of its own.

A hub member has a *wire format*: ``None`` for the default one (whatever the
application sends on its WebSockets), or a name such as ``"socketio"`` for a
member whose client speaks another protocol over the same connection. The
layer above builds a :class:`MessageVariants` once per emit, with one
encoding per wire format; fan-out hands each member the variant of its
format (one shared :class:`~trio_ws.PreparedMessage` per frame, framed once
for every connection whose framing allows it), and skips members whose
format has no variant. A variant may span several WebSocket messages (a
Socket.IO packet with binary attachments is 1 + N frames): they are queued
as one item, so an overflow policy drops or keeps them together.

A plain message (``str``, ``bytes``, PreparedMessage) is the default
format's: fan-out does not offer it to members of another format.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence

from ..prepared import PreparedMessage

__all__ = ["MessageVariants", "Frames", "HubMessage", "frames_size"]

#: What a member's outbox holds for one message: one frame, or several sent back to back.
Frames = PreparedMessage | tuple[PreparedMessage, ...]


def _frames(parts: str | bytes | PreparedMessage | Sequence[str | bytes | PreparedMessage]) -> Frames:
    if isinstance(parts, PreparedMessage):
        return parts
    if isinstance(parts, (str, bytes, bytearray, memoryview)):
        return PreparedMessage(parts)
    prepared = tuple(part if isinstance(part, PreparedMessage) else PreparedMessage(part) for part in parts)
    if not prepared:
        raise ValueError("a message variant needs at least one frame")
    return prepared[0] if len(prepared) == 1 else prepared


def frames_size(frames: Frames) -> int:
    """Payload bytes of one outbox item."""
    if isinstance(frames, PreparedMessage):
        return len(frames)
    return sum(len(frame) for frame in frames)


class MessageVariants:
    """A message encoded once per wire format.

    Args:
        variants: by wire format (``None`` for the default one), the message:
            one ``str``/``bytes``/PreparedMessage, or a sequence of them sent
            back to back as one unit.

    Raises:
        TypeError: for a part that is not str, bytes or a PreparedMessage.
        ValueError: for a variant without frames, or no variant at all.
    """

    __slots__ = ("_variants",)

    def __init__(
        self,
        variants: Mapping[str | None, str | bytes | PreparedMessage | Sequence[str | bytes | PreparedMessage]],
    ) -> None:
        if not variants:
            raise ValueError("MessageVariants needs at least one variant")
        self._variants: dict[str | None, Frames] = {fmt: _frames(parts) for fmt, parts in variants.items()}

    def variant(self, wire_format: str | None) -> Frames | None:
        """The frames for members of ``wire_format``, or None when it has no variant."""
        return self._variants.get(wire_format)

    @property
    def formats(self) -> frozenset[str | None]:
        """The wire formats this message has a variant for."""
        return frozenset(self._variants)

    def items(self) -> Iterator[tuple[str | None, tuple[PreparedMessage, ...]]]:
        """Each wire format with its frames, as a tuple."""
        for fmt, frames in self._variants.items():
            yield fmt, (frames,) if isinstance(frames, PreparedMessage) else frames

    def __len__(self) -> int:
        """Payload bytes of every variant together (what a history keeps)."""
        return sum(frames_size(frames) for frames in self._variants.values())

    def __repr__(self) -> str:
        formats = ", ".join(repr(fmt) for fmt in self._variants)
        return f"<MessageVariants {formats}>"


#: What the hub fans out and keeps in a room's history.
HubMessage = PreparedMessage | MessageVariants
