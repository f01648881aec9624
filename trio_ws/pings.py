"""The pings of one connection that await their pong, and the latency they measure.

RFC 6455 §5.5.3 lets a peer answer only the latest of several pings, so a
pong answers its own ping and every earlier one. A pong that matches no
pending ping is unsolicited (a unidirectional heartbeat) and ignored.
"""

from __future__ import annotations

import os
from collections import OrderedDict

import trio

__all__ = ["PendingPing", "PingTracker"]


class PendingPing:
    """One ping awaiting its pong: ``event`` is set when answered or abandoned."""

    __slots__ = ("answered", "event", "sent_at")

    def __init__(self, sent_at: float) -> None:
        self.event = trio.Event()
        self.sent_at = sent_at
        self.answered = False


#: The table of a tracker that never sent a ping: shared, never written to
#: (:meth:`PingTracker.add` makes a tracker its own), so an idle connection
#: holds no table of its own.
_NO_PINGS: OrderedDict[bytes, PendingPing] = OrderedDict()


class PingTracker:
    """Pending pings by payload, oldest first."""

    __slots__ = ("_pending", "latency")

    def __init__(self) -> None:
        self._pending = _NO_PINGS
        #: The round trip of the last answered ping in seconds, or None yet.
        self.latency: float | None = None

    def payload_for(self, payload: bytes | None) -> bytes:
        """The payload of a new ping: ``payload``, or a random 4 bytes no pending ping uses.

        Raises:
            ValueError: when ``payload`` is already in use by a pending ping,
                or is longer than 125 bytes.
        """
        if payload is None:
            payload = os.urandom(4)
            while payload in self._pending:
                payload = os.urandom(4)
        elif payload in self._pending:
            raise ValueError(f"payload {payload!r} is already used by a pending ping")
        if len(payload) > 125:
            raise ValueError(f"ping payload of {len(payload)} bytes exceeds 125 bytes")
        return payload

    def add(self, payload: bytes) -> PendingPing:
        """Remember a ping sent now."""
        pending = PendingPing(trio.current_time())
        if self._pending is _NO_PINGS:
            self._pending = OrderedDict()
        self._pending[payload] = pending
        return pending

    def discard(self, payload: bytes) -> None:
        """Forget a ping (answered, abandoned or cancelled)."""
        self._pending.pop(payload, None)

    def pong_received(self, payload: bytes) -> None:
        """Answer the ping with this payload and every earlier one; note the latency."""
        pending = self._pending.get(payload)
        if pending is None:
            return  # unsolicited pong: a unidirectional heartbeat
        now = trio.current_time()
        while self._pending:
            key, earlier = self._pending.popitem(last=False)
            earlier.answered = True
            earlier.event.set()
            if key == payload:
                break
        self.latency = now - pending.sent_at

    def abandon_all(self) -> None:
        """No pong will come (the connection is closing): wake every waiting ping unanswered."""
        for pending in self._pending.values():
            pending.event.set()
