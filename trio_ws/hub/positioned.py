"""A JSON message that carries its own position in a room's history, and can cross processes.

A message builder given to :meth:`Hub.broadcast <trio_ws.hub.Hub.broadcast>`
(a function of the message's :class:`~trio_ws.hub.history.StreamPosition`)
works in one process, where the hub knows the position before it sends. A
room streamed through Redis learns its position only in Redis, and a
function cannot travel there; a :class:`PositionedJSON` can: it travels as
its JSON value (:func:`~trio_ws.hub.envelopes.stream_envelope`), and each
process that delivers it adds the position once, for all its members.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .history import StreamPosition

__all__ = ["PositionedJSON"]


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
