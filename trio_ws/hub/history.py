"""Room history: a bounded log of a room's messages, each at an offset in an epoch.

No I/O and no clock of its own: every call that trims by age takes the current
time (``trio.current_time()`` in the hub, any number in tests).

Theory of operation. A room with history numbers every message broadcast to
it: the first gets offset 1, the next 2, and so on; offset 0 means "nothing
yet". The numbers are only meaningful within an *epoch*, a random id drawn
when the history is created. When a history is lost (the process restarted,
or an idle room's history was dropped) the new one has a new epoch, so a
client holding an old position can tell that it cannot be served rather than
being handed the wrong messages.

The log keeps the newest messages within three bounds (count, payload bytes,
age); older ones are trimmed at each append and each lookup. A lookup from a
position ``(epoch, n)`` returns every retained message with an offset above
``n``, or raises :class:`HistoryLost` when that would leave a gap: another
epoch, an offset beyond the newest, or messages after ``n`` already trimmed.
"""

from __future__ import annotations

import math
import secrets
from collections import deque
from collections.abc import Container, Iterator
from dataclasses import dataclass
from itertools import islice
from typing import Literal

from ..options import unlimited
from .variants import HubMessage

__all__ = ["HistoryPolicy", "StreamPosition", "HistoryLost", "JoinResult", "RoomHistory", "Histories"]


@dataclass(frozen=True)
class HistoryPolicy:
    """How much of a room's past to keep. ``None`` (or ``math.inf``) disables one bound.

    Args:
        max_messages: the most messages kept. Default 100.
        max_bytes: the most payload bytes kept (the sum of the messages'
            sizes; each kept message also holds its cached frame, about as
            much again). Default 256 KiB.
        max_age: seconds a message is kept. Default 300.

    At least one of ``max_messages`` and ``max_bytes`` must be set, so that a
    room's history has a size bound whatever the traffic.

    Raises:
        ValueError: for a bound that is not positive, or when both size
            bounds are disabled.
    """

    max_messages: float | None = 100
    max_bytes: float | None = 256 * 1024
    max_age: float | None = 300.0

    def __post_init__(self) -> None:
        for name in ("max_messages", "max_bytes", "max_age"):
            value = getattr(self, name)
            if unlimited(value):
                object.__setattr__(self, name, None)
            elif value is not None and (isinstance(value, bool) or not value > 0):
                raise ValueError(f"{name} must be positive or None, not {value!r}")
        if self.max_messages is None and self.max_bytes is None:
            raise ValueError("a history needs max_messages or max_bytes (or both): else it could grow without bound")


@dataclass(frozen=True)
class StreamPosition:
    """A place in a room's stream: the offset of the last message seen, in an epoch.

    ``offset`` 0 is the position before the first message.
    """

    epoch: str
    offset: int

    @classmethod
    def parse(cls, value: StreamPosition | tuple[str, int]) -> StreamPosition:
        """Accept a position or an ``(epoch, offset)`` pair.

        Raises:
            ValueError: when the epoch is not a non-empty string or the offset
                not an integer >= 0.
        """
        if isinstance(value, StreamPosition):
            return value
        try:
            epoch, offset = value
        except (TypeError, ValueError):
            raise ValueError(f"a stream position is an (epoch, offset) pair, not {value!r}") from None
        if not isinstance(epoch, str) or not epoch:
            raise ValueError(f"a stream position's epoch must be a non-empty string, not {epoch!r}")
        if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
            raise ValueError(f"a stream position's offset must be an integer >= 0, not {offset!r}")
        return cls(epoch, offset)


LostReason = Literal["epoch", "trimmed", "ahead", "no_history", "unavailable"]


class HistoryLost(Exception):
    """The messages after a position cannot be replayed; the client must resync.

    Attributes:
        reason: ``"epoch"`` (another epoch: the history was lost since),
            ``"trimmed"`` (messages after the position were already dropped),
            ``"ahead"`` (an offset beyond the newest message),
            ``"no_history"`` (the room keeps no history) or ``"unavailable"``
            (the room's stream is in Redis and Redis did not answer).
        position: the room's current position (None without history): resync
            from there.
    """

    def __init__(self, reason: LostReason, message: str, position: StreamPosition | None) -> None:
        super().__init__(message)
        self.reason: LostReason = reason
        self.position = position


@dataclass(frozen=True)
class JoinResult:
    """What :meth:`Hub.join <trio_ws.hub.Hub.join>` did.

    Attributes:
        position: the room's position when the member joined (None for a room
            without history). The member receives every message after it.
        recovered: True when a ``since`` position was given and every
            message after it was queued for the member (possibly none).
        replayed: how many missed messages were queued.
        reason: why a ``since`` position was not recovered: a
            :class:`HistoryLost` reason, ``"queue_full"`` (more missed
            messages than the member's outbox has room for) or
            ``"already_joined"``; None otherwise.
    """

    position: StreamPosition | None
    recovered: bool = False
    replayed: int = 0
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class _Entry:
    offset: int
    time: float
    message: HubMessage


class RoomHistory:
    """One room's bounded log.

    Args:
        policy: the bounds.
        epoch: the epoch id (default: 16 random hex digits).
    """

    def __init__(self, policy: HistoryPolicy, epoch: str | None = None) -> None:
        self.policy = policy
        self.epoch = epoch if epoch is not None else secrets.token_hex(8)
        self._entries: deque[_Entry] = deque()
        self._bytes = 0
        self._last = 0

    def __len__(self) -> int:
        return len(self._entries)

    def __iter__(self) -> Iterator[tuple[int, HubMessage]]:
        return ((entry.offset, entry.message) for entry in self._entries)

    @property
    def size(self) -> int:
        """Payload bytes kept now."""
        return self._bytes

    @property
    def position(self) -> StreamPosition:
        """The position after the newest message (offset 0 before the first)."""
        return StreamPosition(self.epoch, self._last)

    @property
    def first_offset(self) -> int:
        """The offset of the oldest message kept (``position.offset + 1`` when empty)."""
        return self._entries[0].offset if self._entries else self._last + 1

    def append(self, message: HubMessage, now: float) -> StreamPosition:
        """Record a message at the next offset, then trim. Returns its position.

        A message larger than ``max_bytes`` still gets its offset but is not
        kept (a lookup from before it reports ``"trimmed"``).
        """
        self._last += 1
        self._entries.append(_Entry(self._last, now, message))
        self._bytes += len(message)
        self.trim(now)
        return StreamPosition(self.epoch, self._last)

    def trim(self, now: float) -> None:
        """Drop messages beyond the bounds: the oldest first."""
        entries = self._entries
        policy = self.policy
        max_messages = policy.max_messages
        max_bytes = policy.max_bytes
        while max_messages is not None and len(entries) > max_messages:
            self._drop()
        while max_bytes is not None and entries and self._bytes > max_bytes:
            self._drop()
        if policy.max_age is not None:
            horizon = now - policy.max_age
            while entries and entries[0].time <= horizon:
                self._drop()

    def _drop(self) -> None:
        entry = self._entries.popleft()
        self._bytes -= len(entry.message)

    def since(self, position: StreamPosition, now: float) -> list[tuple[int, HubMessage]]:
        """The messages after ``position``, oldest first (empty when it is current).

        Raises:
            HistoryLost: for another epoch, an offset beyond the newest, or
                when messages after the position were trimmed.
        """
        self.trim(now)
        if position.epoch != self.epoch:
            message = f"epoch {position.epoch!r} is not the room's epoch {self.epoch!r}"
            raise HistoryLost("epoch", message, self.position)
        if position.offset > self._last:
            message = f"offset {position.offset} is beyond the newest offset {self._last}"
            raise HistoryLost("ahead", message, self.position)
        if position.offset + 1 < self.first_offset:
            raise HistoryLost(
                "trimmed",
                f"messages after offset {position.offset} were trimmed (oldest kept: {self.first_offset})",
                self.position,
            )
        skip = position.offset + 1 - self.first_offset
        return [(entry.offset, entry.message) for entry in islice(self._entries, skip, None)]


class Histories:
    """The histories of a hub's rooms: which rooms keep one, with which policy.

    Args:
        default: the policy for every room, or None to keep history only for
            rooms given one with :meth:`enable`.
        exempt: rooms whose names start with this get the default policy
            only through :meth:`enable` (the layers above keep internal
            rooms there).
    """

    def __init__(self, default: HistoryPolicy | None, exempt: str = "") -> None:
        self.default = default
        self._exempt = exempt
        self._policies: dict[str, HistoryPolicy | None] = {}
        self._rooms: dict[str, RoomHistory] = {}
        self._last_sweep = -math.inf

    def __len__(self) -> int:
        return len(self._rooms)

    def enable(self, room: str, policy: HistoryPolicy | None) -> None:
        """Give ``room`` its own policy (None: no history for it, whatever the default).

        A change of policy keeps the room's epoch and messages; a smaller
        bound applies at the next append or lookup.
        """
        self._policies[room] = policy
        if policy is None:
            self._rooms.pop(room, None)
        elif room in self._rooms:
            self._rooms[room].policy = policy

    def policy(self, room: str) -> HistoryPolicy | None:
        """The policy that applies to ``room`` (None: no history)."""
        default = None if self._exempt and room.startswith(self._exempt) else self.default
        return self._policies.get(room, default)

    def get(self, room: str) -> RoomHistory | None:
        """The room's history if it has one now (without creating it)."""
        return self._rooms.get(room)

    def open(self, room: str) -> RoomHistory | None:
        """The room's history, created (with a new epoch) if its policy asks for one."""
        history = self._rooms.get(room)
        if history is None:
            policy = self.policy(room)
            if policy is None:
                return None
            history = self._rooms[room] = RoomHistory(policy)
        return history

    def replay(
        self, room: str, since: StreamPosition | tuple[str, int] | None, space: int, now: float
    ) -> tuple[JoinResult, list[HubMessage]]:
        """What a member joining ``room`` from ``since`` must be sent first.

        Args:
            room: the room.
            since: the member's last position, or None to join from now.
            space: how many messages the member's queue can take.
            now: the current time.

        Returns:
            the join's result and the missed messages, oldest first (none
            unless ``recovered``).

        Raises:
            ValueError: when ``since`` is not an (epoch, offset) pair.
        """
        start = None if since is None else StreamPosition.parse(since)
        history = self.open(room)
        if history is None:
            return JoinResult(None, reason=None if start is None else "no_history"), []
        if start is None:
            return JoinResult(history.position), []
        try:
            missed = history.since(start, now)
        except HistoryLost as lost:
            return JoinResult(history.position, reason=lost.reason), []
        if len(missed) > space:
            return JoinResult(history.position, reason="queue_full"), []
        return JoinResult(history.position, recovered=True, replayed=len(missed)), [m for _, m in missed]

    def discard(self, room: str) -> bool:
        """Forget the room's messages; its next message starts a new epoch."""
        return self._rooms.pop(room, None) is not None

    def sweep(self, now: float, busy: Container[str]) -> int:
        """Drop the histories that age emptied, of rooms not in ``busy``.

        Runs at most once per ``max_age`` of the default policy (or per 60 s)
        so that a hub with many idle rooms does not keep a history for each
        forever; returns how many were dropped.
        """
        interval = (self.default.max_age if self.default is not None else None) or 60.0
        if now - self._last_sweep < interval:
            return 0
        self._last_sweep = now
        dropped = 0
        for room, history in list(self._rooms.items()):
            if room in busy or history.policy.max_age is None:
                continue
            history.trim(now)
            if not history:
                del self._rooms[room]
                dropped += 1
        return dropped
