"""A JSON message that carries its own position in a room's history, and can cross processes.

A message builder given to :meth:`Hub.broadcast <trio_ws.hub.Hub.broadcast>`
(a function of the message's :class:`~trio_ws.hub.history.StreamPosition`)
works in one process, where the hub knows the position before it sends. A
room streamed through Redis learns its position only in Redis, and a
function cannot travel there; a :class:`PositionedJSON` can: it travels as
its JSON value (:func:`~trio_ws.hub.envelopes.stream_envelope`), and each
process that delivers it adds the position once, for all its members.
:class:`PositionedVariants` does the same for a message encoded once per
wire format (the app's Socket.IO events carry their offset this way).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..prepared import PreparedMessage
from .history import StreamPosition
from .variants import MessageVariants

__all__ = ["PositionedJSON", "PositionedVariants"]


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


@dataclass(frozen=True)
class PositionedJSON:
    """A JSON object sent as a text message; in a room with history it also gets ``epoch`` and ``offset``.

    Args:
        value: the object's fields.
        extra: fields added only with a position (for example the room's name).

    Calling it with a position (or None) gives the text, so it is also an
    ordinary message builder.
    """

    value: Mapping[str, Any]
    extra: Mapping[str, Any] = field(default_factory=dict)

    def __call__(self, position: StreamPosition | None) -> str:
        """The message's text at ``position``.

        Raises:
            TypeError: when a value cannot be encoded as JSON.
        """
        if position is None:
            return _dumps(dict(self.value))
        return _dumps({**self.value, **self.extra, "epoch": position.epoch, "offset": position.offset})


@dataclass(frozen=True)
class PositionedVariants:
    """A :class:`~trio_ws.hub.MessageVariants` whose text frames carry the message's position.

    Each text frame holds ``marker`` (a string its builder chose, unique
    enough not to occur in the data); the last occurrence is replaced by
    the position written ``"<epoch>:<offset>"`` (an empty string without a
    position). In a room streamed through a backend it travels as its
    variants and its marker, and each process that delivers it renders it
    once, at the entry's position, for all its members.

    Args:
        message: the variants, with ``marker`` in their text frames.
        marker: the placeholder (non-empty; JSON leaves it unchanged if it
            is printable ASCII without quotes or backslashes).

    Raises:
        ValueError: for an empty marker.
    """

    message: MessageVariants
    marker: str

    def __post_init__(self) -> None:
        if not self.marker:
            raise ValueError("the marker of a PositionedVariants must not be empty")

    def __call__(self, position: StreamPosition | None) -> MessageVariants:
        """The variants with the position in place of the marker."""
        written = "" if position is None else f"{position.epoch}:{position.offset}"
        rendered: dict[str | None, list[PreparedMessage]] = {}
        for fmt, frames in self.message.items():
            rendered[fmt] = [_render(frame, self.marker, written) for frame in frames]
        return MessageVariants(rendered)


def _render(frame: PreparedMessage, marker: str, written: str) -> PreparedMessage:
    text = frame.data
    if not isinstance(text, str):
        return frame
    head, found, tail = text.rpartition(marker)
    return PreparedMessage(head + written + tail) if found else frame
