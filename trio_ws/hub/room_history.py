"""The hub's history API: which rooms keep a history, and where a room's history stands.

Part of :class:`~trio_ws.hub.Hub` (a mixin of it). In an in-memory hub a
room's history is a :class:`~trio_ws.hub.history.RoomHistory` in this
process; with a backend that keeps streams it is the room's stream
(:mod:`trio_ws.hub.stream_rooms`). These methods are synchronous: they never
wait, and may be called from any task.
"""

from __future__ import annotations

from abc import abstractmethod

from .backend import HubBackend
from .history import Histories, HistoryPolicy, StreamPosition
from .stream_rooms import StreamingBackend

__all__ = ["HistoryControl"]


class HistoryControl:
    """The history methods of :class:`~trio_ws.hub.Hub` (not used on its own)."""

    _backend: HubBackend | None
    _histories: Histories

    @property
    @abstractmethod
    def _streams(self) -> StreamingBackend | None:
        """The backend when it keeps the streams of rooms with history."""

    @abstractmethod
    def _stream_position(self, room: str) -> StreamPosition | None:
        """Where this process reads ``room``'s stream."""

    @staticmethod
    def _check_history(backend: HubBackend | None) -> None:
        if backend is not None and not isinstance(backend, StreamingBackend):
            raise ValueError(f"room history needs an in-memory hub or a backend that keeps streams, not {backend!r}")

    def enable_history(self, room: str, policy: HistoryPolicy | None = None) -> None:
        """Keep a history for ``room`` with ``policy`` (default: ``HistoryPolicy()``).

        Overrides the hub's policy for this room; ``disable_history`` turns it
        off. Messages already broadcast are not in it. With a backend, every
        process must give the room the same policy.

        Raises:
            ValueError: when the hub has a backend that keeps no streams.
        """
        self._check_history(self._backend)
        self._histories.enable(room, policy if policy is not None else HistoryPolicy())

    def disable_history(self, room: str) -> None:
        """Keep no history for ``room`` (whatever the hub's policy) and forget it. Raises nothing."""
        self._histories.enable(room, None)

    def discard_history(self, room: str) -> bool:
        """Forget ``room``'s messages; its next message starts a new epoch.

        Returns:
            whether the room had a history. Raises nothing.
        """
        return self._histories.discard(room)

    def history_position(self, room: str) -> StreamPosition | None:
        """The position after ``room``'s newest message, or None without history.

        A room whose policy asks for history gets one (and its epoch) here.
        With a backend, the position of the last message this process
        delivered to the room (None when it has no member there). Raises nothing.
        """
        if self._streams is not None:
            return self._stream_position(room)
        history = self._histories.open(room)
        return None if history is None else history.position
