"""The server side of one Engine.IO v4 session, as a sans-IO state machine.

Theory of operation
-------------------
A session starts on one transport, long-polling or WebSocket, and answers
the request that opened it with :meth:`EngineSession.open_packet`. From
then on the I/O layer does three things and nothing else:

* each packet the client sends goes to :meth:`~EngineSession.receive` (or,
  on a WebSocket that is probing for an upgrade, to
  :meth:`~EngineSession.receive_probe`), which returns the events for the
  layer above: messages, an upgrade completed or aborted, the session closed;
* when the clock reaches :meth:`~EngineSession.next_deadline`, it calls
  :meth:`~EngineSession.tick` with the current time; that is where pings
  are queued and where a late pong closes the session (engine.io-protocol
  v4 "Heartbeat": the server pings every ``pingInterval`` and the client has
  ``pingTimeout`` to answer);
* whatever :meth:`~EngineSession.data_to_send` returns goes out on the
  active transport: one frame per packet on a WebSocket, or one response
  body per poll (:meth:`~EngineSession.poll` says what a waiting ``GET``
  should return, ``None`` meaning "keep waiting").

Time is a plain float passed in by the caller (``trio.current_time()`` in
production, any number in tests), so every path runs without sockets.

Upgrade (engine.io-protocol v4 "Upgrade"): a long-polling session learns of
a WebSocket for its sid through :meth:`~EngineSession.start_upgrade`. The
client sends ``2probe`` there and gets ``3probe`` back; from then on a
waiting poll is answered with a ``noop`` (``6``) so the client can pause
polling. The client's ``upgrade`` (``5``) switches the session to the
WebSocket, and packets not yet sent follow on it. A probe that does not
complete within ``upgrade_timeout`` is abandoned; the session carries on
over long-polling.
"""

from __future__ import annotations

import enum
import secrets
from collections import deque
from dataclasses import dataclass
from typing import Literal

from ..prepared import PreparedMessage
from .engineio import EnginePacket, EngineType, Handshake, OutgoingPacket
from .errors import SessionClosed

__all__ = [
    "Transport",
    "SessionState",
    "EngineConfig",
    "EngineSession",
    "EngineEvent",
    "MessageReceived",
    "ProbeAnswer",
    "UpgradeCompleted",
    "UpgradeAborted",
    "SessionEnded",
    "new_sid",
]

Transport = Literal["polling", "websocket"]


def new_sid() -> str:
    """A fresh random session id: 20 URL-safe characters (120 bits)."""
    return secrets.token_urlsafe(15)


class SessionState(enum.Enum):
    """Where an :class:`EngineSession` stands."""

    OPEN = "open"
    UPGRADING = "upgrading"
    CLOSED = "closed"


@dataclass(frozen=True)
class EngineConfig:
    """Engine.IO settings of a server; the defaults are Socket.IO's own.

    Attributes:
        ping_interval: seconds between the server's pings (25 s).
        ping_timeout: seconds the client has to answer a ping (20 s).
        max_payload: the most bytes accepted in one packet or polling body (1,000,000).
        upgrade_timeout: seconds a WebSocket probe has to complete the upgrade (10 s).
        max_buffered: the most message packets waiting for a client that does
            not take them (1,000); one more ends the session. None for no limit.

    Raises:
        ValueError: for a non-positive value.
    """

    ping_interval: float = 25.0
    ping_timeout: float = 20.0
    max_payload: int = 1_000_000
    upgrade_timeout: float = 10.0
    max_buffered: int | None = 1000

    def __post_init__(self) -> None:
        for name in ("ping_interval", "ping_timeout", "max_payload", "upgrade_timeout", "max_buffered"):
            value = getattr(self, name)
            if value is not None and not value > 0:
                raise ValueError(f"{name} must be > 0, not {value!r}")


@dataclass(frozen=True)
class MessageReceived:
    """The client sent a message (text or bytes) for the layer above."""

    data: str | bytes


@dataclass(frozen=True)
class ProbeAnswer:
    """Send ``packet`` on the probing WebSocket (not on the active transport)."""

    packet: EnginePacket


@dataclass(frozen=True)
class UpgradeCompleted:
    """The session now runs over the WebSocket; polling requests for it get HTTP 400 from now on."""


@dataclass(frozen=True)
class UpgradeAborted:
    """The probe failed: close the probing WebSocket; the session stays on long-polling."""

    reason: str


@dataclass(frozen=True)
class SessionEnded:
    """The session is closed: send what :meth:`EngineSession.data_to_send` still holds, then close.

    ``reason`` is one of ``"client close"``, ``"server close"``,
    ``"ping timeout"``, ``"transport close"`` or ``"parse error"``; ``detail``
    explains the last two. (:class:`~trio_ws.socketio.SocketIOServer` also
    reports ``"buffer full"`` when :attr:`EngineSession.overflowed`,
    ``"transport error"`` for a long-polling client breaking the transport's
    rules (overlapping requests, a body too large or too slow) and
    ``"server shutting down"``.)
    """

    reason: str
    detail: str = ""


EngineEvent = MessageReceived | ProbeAnswer | UpgradeCompleted | UpgradeAborted | SessionEnded


class EngineSession:
    """One Engine.IO session on the server, without I/O.

    Args:
        sid: the session id (see :func:`new_sid`).
        transport: the transport of the request that opened the session.
        now: the current time, in seconds.
        config: the server's settings.

    Not thread-safe; one task drives it.
    """

    def __init__(self, sid: str, transport: Transport, now: float, config: EngineConfig | None = None) -> None:
        if transport not in ("polling", "websocket"):
            raise ValueError(f'transport must be "polling" or "websocket", not {transport!r}')
        self.config = config or EngineConfig()
        self.sid = sid
        self._transport: Transport = transport
        self._state = SessionState.OPEN
        self._outbox: deque[OutgoingPacket] = deque()
        self._next_ping: float | None = now + self.config.ping_interval
        self._pong_deadline: float | None = None
        self._upgrade_deadline: float | None = None
        self._probed = False
        self._closed_by_client = False
        self._overflowed = False

    @property
    def state(self) -> SessionState:
        """OPEN, UPGRADING (a WebSocket probe is under way) or CLOSED."""
        return self._state

    @property
    def transport(self) -> Transport:
        """The active transport: ``"polling"``, or ``"websocket"`` from the start or after an upgrade."""
        return self._transport

    @property
    def handshake(self) -> Handshake:
        """The values announced in the open packet."""
        upgrades = ("websocket",) if self._transport == "polling" else ()
        config = self.config
        return Handshake(self.sid, upgrades, config.ping_interval, config.ping_timeout, config.max_payload)

    def open_packet(self) -> EnginePacket:
        """The ``open`` packet that answers the request which created the session."""
        return self.handshake.to_packet()

    # Sending -----------------------------------------------------------

    def send(self, data: str | bytes) -> None:
        """Queue a message packet for the client.

        Raises:
            SessionClosed: the session is closed, or this packet would exceed
                ``max_buffered``: the session is then closed (the client is not
                taking what it is sent) and :attr:`overflowed` is True.
        """
        self._queue_message(EnginePacket(EngineType.MESSAGE, data))

    def send_prepared(self, message: PreparedMessage) -> None:
        """Queue a message packet already encoded for WebSocket: text ``4<data>``, or a binary message.

        The WebSocket transport sends ``message`` as it is (its frame shared
        with every other connection that sends it); long-polling puts its
        text in the payload.

        Raises:
            ValueError: for text that is not a message packet (``4`` first).
            SessionClosed: as :meth:`send`.
        """
        if message.is_text and not message.payload.startswith(b"4"):
            raise ValueError(f"not an Engine.IO message packet: {message.payload[:20]!r}")
        self._queue_message(message)

    def _queue_message(self, packet: OutgoingPacket) -> None:
        if self._state is SessionState.CLOSED:
            raise SessionClosed(f"Engine.IO session {self.sid} is closed")
        limit = self.config.max_buffered
        if limit is not None and len(self._outbox) >= limit:
            self._outbox.clear()
            self._end()
            self._overflowed = True
            raise SessionClosed(
                f"Engine.IO session {self.sid} closed: {limit:,} packets unread by the client (max_buffered={limit:,})"
            )
        self._outbox.append(packet)

    @property
    def overflowed(self) -> bool:
        """Whether :meth:`send` closed the session because ``max_buffered`` packets were waiting."""
        return self._overflowed

    @property
    def queued(self) -> int:
        """How many packets wait for the active transport to take them."""
        return len(self._outbox)

    def data_to_send(self) -> list[OutgoingPacket]:
        """Take every queued packet, in order, for the active transport.

        A message queued with :meth:`send_prepared` comes out as its
        :class:`~trio_ws.PreparedMessage` (see
        :data:`~trio_ws.socketio.engineio.OutgoingPacket`).
        """
        packets = list(self._outbox)
        self._outbox.clear()
        return packets

    def poll(self) -> list[OutgoingPacket] | None:
        """What a waiting long-polling ``GET`` should answer now, or None to keep waiting.

        Queued packets first; else a ``noop`` once an upgrade probe succeeded
        or the session moved to the WebSocket (so the client's last poll
        returns), or after the client closed the session; else a ``close``
        when the server ended it (ping timeout, parse error). Call it again
        whenever an event returned by this session may have changed the answer.
        """
        if self._outbox:
            return self.data_to_send()
        if self._state is SessionState.CLOSED and not self._closed_by_client:
            return [EnginePacket(EngineType.CLOSE)]
        if self._probed or self._transport != "polling" or self._closed_by_client:
            return [EnginePacket(EngineType.NOOP)]
        return None

    def close(self) -> SessionEnded:
        """Close the session from the server's side, after the packets already queued.

        On long-polling a ``close`` packet is queued last: a poll is the only
        way to tell the client. On a WebSocket nothing is added: closing the
        WebSocket tells the client, as the reference server does (its
        WebSocket transport closes without a close packet): python-socketio's
        client takes a ``close`` packet as a deliberate end and does not
        reconnect, whereas it reconnects after a WebSocket that just closed.

        Idempotent: closing a closed session returns the event again and queues nothing.
        """
        if self._state is not SessionState.CLOSED:
            if self._transport == "polling":
                self._outbox.append(EnginePacket(EngineType.CLOSE))
            self._end()
        return SessionEnded("server close")

    def transport_closed(self, detail: str = "") -> list[EngineEvent]:
        """The active transport ended without a close packet (socket dropped, protocol error)."""
        if self._state is SessionState.CLOSED:
            return []
        self._end()
        return [SessionEnded("transport close", detail)]

    # Receiving ---------------------------------------------------------

    def receive(self, packet: EnginePacket, now: float) -> list[EngineEvent]:
        """Handle a packet the client sent on the active transport.

        Packets received after the session closed are ignored.
        """
        if self._state is SessionState.CLOSED:
            return []
        kind = packet.type
        if kind is EngineType.MESSAGE:
            return [MessageReceived(packet.data)]
        if kind is EngineType.PONG:
            if self._pong_deadline is not None:
                self._pong_deadline = None
                self._next_ping = now + self.config.ping_interval
            return []
        if kind is EngineType.PING:
            # v4 clients do not ping; answering is harmless and keeps older peers alive.
            self._outbox.append(EnginePacket(EngineType.PONG, packet.data))
            return []
        if kind is EngineType.CLOSE:
            self._closed_by_client = True
            self._outbox.clear()
            self._end()
            return [SessionEnded("client close")]
        if kind is EngineType.NOOP:
            return []
        return self._fail(f"unexpected {kind.name.lower()} packet from the client on the {self._transport} transport")

    def start_upgrade(self, now: float) -> None:
        """A WebSocket asks to take over this long-polling session (same ``sid``).

        Raises:
            SessionClosed: the session is closed.
            ValueError: the session is not on long-polling, or a probe is already
                under way (engine.io-protocol v4: one WebSocket per session);
                the new WebSocket must be closed.
        """
        if self._state is SessionState.CLOSED:
            raise SessionClosed(f"Engine.IO session {self.sid} is closed")
        if self._state is SessionState.UPGRADING:
            raise ValueError(f"Engine.IO session {self.sid} is already being upgraded")
        if self._transport != "polling":
            raise ValueError(f"Engine.IO session {self.sid} already runs over {self._transport}")
        self._state = SessionState.UPGRADING
        self._probed = False
        self._upgrade_deadline = now + self.config.upgrade_timeout

    def receive_probe(self, packet: EnginePacket, now: float) -> list[EngineEvent]:
        """Handle a packet the client sent on the probing WebSocket.

        ``2probe`` is answered with ``3probe`` (a :class:`ProbeAnswer`);
        ``5`` after it completes the upgrade. Anything else aborts the probe.
        """
        if self._state is not SessionState.UPGRADING:
            return [UpgradeAborted("no upgrade is under way for this session")]
        if packet.type is EngineType.PING and packet.data == "probe" and not self._probed:
            self._probed = True
            return [ProbeAnswer(EnginePacket(EngineType.PONG, "probe"))]
        if packet.type is EngineType.UPGRADE and self._probed:
            self._transport = "websocket"
            self._state = SessionState.OPEN
            self._upgrade_deadline = None
            self._probed = False
            return [UpgradeCompleted()]
        if packet.type is EngineType.UPGRADE:
            return self._abort_upgrade("upgrade packet before the probe (2probe)")
        return self._abort_upgrade(f"unexpected {_describe(packet)} on the probing WebSocket")

    def probe_closed(self) -> list[EngineEvent]:
        """The probing WebSocket went away before the upgrade completed."""
        if self._state is not SessionState.UPGRADING:
            return []
        return self._abort_upgrade("the probing WebSocket closed")

    # Clock ---------------------------------------------------------------

    def next_deadline(self) -> float | None:
        """When :meth:`tick` must next be called, or None for never (closed)."""
        if self._state is SessionState.CLOSED:
            return None
        times = [t for t in (self._next_ping, self._pong_deadline, self._upgrade_deadline) if t is not None]
        return min(times) if times else None

    def tick(self, now: float) -> list[EngineEvent]:
        """Advance the clock to ``now``: queue a due ping, end a session whose pong is late, abandon a stale probe."""
        if self._state is SessionState.CLOSED:
            return []
        if self._pong_deadline is not None and now >= self._pong_deadline:
            self._outbox.clear()
            self._end()
            return [SessionEnded("ping timeout", f"no pong within ping_timeout={self.config.ping_timeout:g} s")]
        events: list[EngineEvent] = []
        if self._upgrade_deadline is not None and now >= self._upgrade_deadline:
            limit = self.config.upgrade_timeout
            events += self._abort_upgrade(f"upgrade not completed within upgrade_timeout={limit:g} s")
        if self._next_ping is not None and now >= self._next_ping:
            self._outbox.append(EnginePacket(EngineType.PING))
            self._next_ping = None
            self._pong_deadline = now + self.config.ping_timeout
        return events

    # Internals -----------------------------------------------------------

    def _abort_upgrade(self, reason: str) -> list[EngineEvent]:
        self._state = SessionState.OPEN
        self._upgrade_deadline = None
        self._probed = False
        return [UpgradeAborted(reason)]

    def _fail(self, detail: str) -> list[EngineEvent]:
        self._outbox.clear()
        self._end()
        return [SessionEnded("parse error", detail)]

    def _end(self) -> None:
        self._state = SessionState.CLOSED
        self._next_ping = self._pong_deadline = self._upgrade_deadline = None


def _describe(packet: EnginePacket) -> str:
    if isinstance(packet.data, bytes):
        return f"binary message of {len(packet.data)} bytes"
    data = packet.data if len(packet.data) <= 20 else packet.data[:20] + "..."
    return f"{packet.type.name.lower()} packet {data!r}" if data else f"{packet.type.name.lower()} packet"
