"""Socket.IO connection-state recovery on an App, in one process (no I/O here).

With a hub backend, :mod:`trio_ws.app.socketio_recovery_redis` keeps the
log and the parked states in Redis instead, so a client may come back to
another process.

Socket.IO 4.6 clients remember a private id (``pid``) from the CONNECT
answer and the offset that ends every event they receive; when their
connection drops they reconnect with both in the CONNECT's ``auth``. If the
server still holds their state, they get back their ``sid``, rooms and
``session``, then every event they missed, in order, none twice; the
official client reports ``socket.recovered``.

Theory of operation. :class:`RecoveryLog` keeps every event the app emits to
Socket.IO clients (to a room, to a namespace, to one connection) in a
bounded :class:`~trio_ws.hub.history.RoomHistory` (the hub's history:
bounded in count, bytes and age, with an epoch), with the room it went to,
its namespace and the connections it excluded. The event's offset is its
position in that log, written ``"<epoch>:<offset>"`` as its last argument.
A connection whose transport ends without a goodbye (no Engine.IO close,
no DISCONNECT) is *parked* under its pid for ``max_disconnection_duration``
seconds: its sid, its rooms in each namespace and its session dict. A
CONNECT that brings back a parked pid and a valid offset takes that state
back and receives the log's entries after the offset that went to the
connection's rooms of that namespace, or to it; the log and the fan-out are
synchronous, so nothing can fall between the replay and the live stream.
Everything else (an unknown or expired pid, an offset of another epoch, an
offset the log no longer holds) is a fresh session, and the client's
``socket.recovered`` is false.
"""

from __future__ import annotations

import secrets
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ..hub import HistoryLost, HistoryPolicy, MessageVariants, StreamPosition
from ..hub.history import RoomHistory

__all__ = [
    "RecoveryLog",
    "ParkedState",
    "personal_room",
    "new_pid",
    "format_offset",
    "parse_offset",
    "default_policy",
    "MAX_DISCONNECTION_DURATION",
]

#: Socket.IO's default: two minutes.
MAX_DISCONNECTION_DURATION = 120.0
_PERSONAL = "\x1fsid\x1f"


def default_policy(max_disconnection_duration: float) -> HistoryPolicy:
    """The log's default bounds: 10,000 events, 8 MiB, kept as long as a state is."""
    return HistoryPolicy(max_messages=10_000, max_bytes=8 * 1024 * 1024, max_age=max_disconnection_duration)


def personal_room(sid: str) -> str:
    """The log's name for events sent to the connection ``sid`` itself."""
    return _PERSONAL + sid


def new_pid() -> str:
    """A fresh private id: 20 URL-safe characters (120 bits), never shown to other clients."""
    return secrets.token_urlsafe(15)


@dataclass
class ParkedState:
    """What a dropped connection gets back: its sid, rooms by namespace, session dict."""

    sid: str
    rooms: dict[str, frozenset[str]]
    session: dict[str, Any]
    deadline: float
    #: By namespace, the log's position when the namespace was connected
    #: (where a client that received no event since resumes from).
    positions: dict[str, StreamPosition]


@dataclass(frozen=True)
class _Target:
    namespace: str
    room: str
    exclude: frozenset[str]


class RecoveryLog:
    """The events sent to Socket.IO clients, and the parked states of dropped connections.

    Args:
        policy: the log's bounds (:class:`~trio_ws.hub.HistoryPolicy`:
            messages, bytes, age).
        max_disconnection_duration: seconds a dropped connection's state is kept.

    Raises:
        ValueError: for a non-positive duration.
    """

    def __init__(self, policy: HistoryPolicy, max_disconnection_duration: float = MAX_DISCONNECTION_DURATION) -> None:
        if not max_disconnection_duration > 0:
            raise ValueError(f"max_disconnection_duration must be > 0, not {max_disconnection_duration!r}")
        self.policy = policy
        self.max_disconnection_duration = max_disconnection_duration
        self.history = RoomHistory(policy)
        self._targets: dict[int, _Target] = {}
        self._order: deque[int] = deque()
        self._parked: dict[str, ParkedState] = {}

    # -- the log -------------------------------------------------------------------
    @property
    def position(self) -> StreamPosition:
        """The position after the newest event."""
        return self.history.position

    def next_offset(self) -> str:
        """The offset the next recorded event will have, as clients see it."""
        position = self.history.position
        return format_offset(StreamPosition(position.epoch, position.offset + 1))

    def record(self, namespace: str, room: str, exclude: Iterable[str], message: MessageVariants, now: float) -> None:
        """Keep an event (built with :meth:`next_offset`) sent to ``room`` of ``namespace``, except ``exclude``."""
        position = self.history.append(message, now)
        self._targets[position.offset] = _Target(namespace, room, frozenset(exclude))
        self._order.append(position.offset)
        first = self.history.first_offset
        while self._order and self._order[0] < first:
            self._targets.pop(self._order.popleft(), None)

    def missed(
        self, namespace: str, since: StreamPosition, rooms: frozenset[str], sid: str, now: float
    ) -> list[MessageVariants] | None:
        """The events after ``since`` for ``sid`` in ``namespace`` (to ``rooms`` or to it), oldest first.

        Returns None when the log cannot tell (another epoch, trimmed, ahead).
        """
        try:
            entries = self.history.since(since, now)
        except HistoryLost:
            return None
        personal = personal_room(sid)
        found = []
        for offset, message in entries:
            target = self._targets.get(offset)
            if target is None or target.namespace != namespace or sid in target.exclude:
                continue
            if target.room in rooms or target.room == personal:
                assert isinstance(message, MessageVariants)
                found.append(message)
        return found

    # -- parked states -------------------------------------------------------------
    def park(self, pid: str, state: ParkedState, now: float) -> None:
        """Keep ``state`` under ``pid`` until its deadline."""
        self._expire(now)
        self._parked[pid] = state

    def take(self, pid: str, now: float) -> ParkedState | None:
        """The state parked under ``pid`` (removed), or None when unknown or expired."""
        self._expire(now)
        return self._parked.pop(pid, None)

    @property
    def parked(self) -> int:
        """How many dropped connections' states are kept now."""
        return len(self._parked)

    def _expire(self, now: float) -> None:
        for pid in [pid for pid, state in self._parked.items() if state.deadline <= now]:
            del self._parked[pid]


def format_offset(position: StreamPosition) -> str:
    """An offset as clients see it: ``"<epoch>:<offset>"``."""
    return f"{position.epoch}:{position.offset}"


def parse_offset(value: Any) -> StreamPosition | None:
    """The position a client's offset names, or None when it is not one."""
    if not isinstance(value, str):
        return None
    epoch, _, offset = value.rpartition(":")
    if not epoch or not offset.isdigit() or len(offset) > 18:
        return None
    return StreamPosition(epoch, int(offset))
