"""A member's outbound queue: bounded, with an overflow policy and counters.

Fan-out never waits for a peer: :meth:`Outbox.put` only appends to a deque and
wakes the member's sender task, which drains it into the connection. When the
queue is full the policy decides: ``"close"`` (the default) marks the member
for closing with 1008, protecting the server's memory from a client that does
not read; ``"drop_newest"`` refuses the new message; ``"drop_oldest"`` evicts
the oldest queued one. Every outcome is counted.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from enum import Enum
from typing import Literal

import trio

from .variants import Frames, frames_size

__all__ = ["Outbox", "Outcome", "OverflowPolicy", "OutboxStats"]

OverflowPolicy = Literal["close", "drop_newest", "drop_oldest"]


class Outcome(Enum):
    """What happened to one message handed to an outbox."""

    QUEUED = "queued"
    DROPPED = "dropped"
    CLOSED = "closed"


@dataclass
class OutboxStats:
    """Counters of one member's outbox."""

    queued: int = 0
    delivered: int = 0
    dropped: int = 0
    high_water: int = 0


class Outbox:
    """The bounded queue between fan-out and one member's sender task.

    Args:
        size: how many messages may wait; at least 1.
        policy: what to do when it is full (see the module docstring).
    """

    def __init__(self, size: int, policy: OverflowPolicy) -> None:
        if size < 1:
            raise ValueError(f"queue size must be >= 1, not {size}")
        if policy not in ("close", "drop_newest", "drop_oldest"):
            raise ValueError(f"unknown overflow policy {policy!r}")
        self._size = size
        self._policy = policy
        self._items: deque[Frames] = deque()
        self._lot = trio.lowlevel.ParkingLot()
        self.stats = OutboxStats()
        self.overflowed = False
        self.closed = False
        #: Whether the last :meth:`get` (or :meth:`get_batch`) had to wait,
        #: i.e. yielded to the scheduler before it returned.
        self.waited = False

    def __len__(self) -> int:
        return len(self._items)

    @property
    def space(self) -> int:
        """How many more messages fit before the overflow policy applies."""
        return max(0, self._size - len(self._items))

    def put(self, message: Frames) -> Outcome:
        """Queue a message (one frame, or several kept together) without waiting; apply the policy when full."""
        if self.closed or self.overflowed:
            return Outcome.CLOSED
        if len(self._items) >= self._size:
            if self._policy == "drop_newest":
                self.stats.dropped += 1
                return Outcome.DROPPED
            if self._policy == "drop_oldest":
                self._items.popleft()
                self.stats.dropped += 1
            else:
                # The message that found the queue full is dropped and the
                # member is closed; later messages are refused as CLOSED.
                self.overflowed = True
                self.stats.dropped += 1
                self._lot.unpark_all()
                return Outcome.DROPPED
        self._items.append(message)
        self.stats.queued += 1
        self.stats.high_water = max(self.stats.high_water, len(self._items))
        self._lot.unpark()
        return Outcome.QUEUED

    async def get(self) -> Frames | None:
        """Wait for the next message; None once the outbox overflowed or closed.

        Checkpoints only when it waits (see :attr:`waited`): the sender
        yields in the write that follows instead.
        """
        self.waited = False
        while not self._items:
            if self.closed or self.overflowed:
                return None
            self.waited = True
            await self._lot.park()
        if self.overflowed:
            return None
        return self._items.popleft()

    async def get_batch(self, max_bytes: int) -> list[Frames]:
        """Wait for messages and take every queued one, up to about ``max_bytes``.

        Returns an empty list once the outbox overflowed or closed. The first
        message is always taken, whatever its size.
        """
        first = await self.get()
        if first is None:
            return []
        batch = [first]
        size = frames_size(first)
        items = self._items
        while items and size + frames_size(items[0]) <= max_bytes:
            message = items.popleft()
            batch.append(message)
            size += frames_size(message)
        return batch

    def close(self) -> None:
        """Refuse further messages and wake the sender so it can stop."""
        self.closed = True
        self._items.clear()
        self._lot.unpark_all()
