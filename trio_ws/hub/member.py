"""A hub member (a registered connection) and the values fan-out reports.

:class:`Member` is the handle a server handler gets from ``hub.connect``; its
methods delegate to the hub. :class:`DeliveryReport`, :class:`PresenceEvent`
and :class:`HubStats` are what the hub tells its caller and watchers.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol

import trio

from ..close import NORMAL_CLOSURE, CloseReason
from ..errors import ConnectionClosed
from ..prepared import PreparedMessage
from .history import JoinResult, StreamPosition
from .outbox import Outbox, OutboxStats, Outcome
from .variants import HubMessage, MessageVariants

if TYPE_CHECKING:
    from .hub import Hub

__all__ = [
    "INTERNAL_ROOM_PREFIX",
    "MemberConnection",
    "Member",
    "DeliveryReport",
    "PresenceEvent",
    "HubStats",
    "MessageLike",
    "MessageSource",
]

#: Rooms whose names start with this (ASCII unit separator) are internal to
#: the layers above the hub (the app's per-namespace rooms): they work as any
#: room, but ``Member.rooms`` and ``Hub.rooms()`` do not list them.
INTERNAL_ROOM_PREFIX = "\x1f"

#: A message for the hub: plain (the default wire format's), or one variant per wire format.
MessageLike = str | bytes | PreparedMessage | MessageVariants
#: A message, or a function that builds it from the offset it gets in the
#: room's history (None for a room without history).
MessageSource = MessageLike | Callable[[StreamPosition | None], MessageLike]


class MemberConnection(Protocol):
    """What the hub (and the app layer above it) uses of a member's connection.

    :class:`~trio_ws.WebSocketConnection` has it; so has a Socket.IO
    client's Engine.IO session on the App
    (:class:`~trio_ws.app.socketio_link.EngineLink`, whichever transport it
    runs on). The hub's sender writes the member's queued messages with
    :meth:`send_many`, its watcher waits in :meth:`wait_closed`, and an
    overflow or ``hub.disconnect`` ends in :meth:`aclose`.
    """

    @property
    def closed(self) -> CloseReason | None:
        """Why the connection is closed or closing; None while it is open."""

    def closed_error(self) -> ConnectionClosed:
        """The exception the connection's calls raise once it is closed (for code built on it)."""

    async def send_many(self, messages: Sequence[str | bytes | PreparedMessage], *, schedule: bool = True) -> None:
        """Send whole messages, in order (a :class:`~trio_ws.PreparedMessage` keeps its shared frame).

        With ``schedule=False`` (the sender has just waited for these
        messages), a write that goes out at once need not yield again; see
        :meth:`WebSocketConnection.send_many <trio_ws.WebSocketConnection.send_many>`.

        Raises:
            ConnectionClosed: when the connection is closed or closing.

        Concurrent calls are allowed; each batch goes out whole. Cancelling
        is safe before the first byte is written; after, the connection ends.
        """

    async def aclose(self, code: int = NORMAL_CLOSURE, reason: str | None = None) -> None:
        """Close the connection with ``code``. Idempotent; concurrent calls are allowed."""

    async def wait_closed(self) -> None:
        """Wait until the connection is closed. Cancelling is safe; any number of tasks may wait."""


@dataclass(frozen=True)
class DeliveryReport:
    """What one fan-out did locally: messages queued, dropped, or refused as closed.

    ``published`` tells whether the message was also handed to the backend
    for other processes (always False without a backend). ``position`` is
    the message's place in the room's history (None without history).
    """

    queued: int = 0
    dropped: int = 0
    closed: int = 0
    published: bool = False
    position: StreamPosition | None = None

    @property
    def recipients(self) -> int:
        """Local members the message was offered to."""
        return self.queued + self.dropped + self.closed


@dataclass(frozen=True)
class PresenceEvent:
    """A member joined or left a room; ``count`` is the room's local member count after it."""

    kind: Literal["join", "leave"]
    room: str
    member_id: str
    count: int
    remote: bool = False


@dataclass
class HubStats:
    """Counters of a hub, since it was created."""

    fanouts: int = 0
    queued: int = 0
    delivered: int = 0
    dropped: int = 0
    overflow_closes: int = 0
    remote_received: int = 0
    remote_malformed: int = 0
    backend_down: int = 0
    backend_up: int = 0
    gaps: int = 0


class Member:
    """A connection registered with a hub.

    Attributes:
        id: a stable id, unique in the hub (a random hex string by default).
        data: whatever the application attached (user name, session...).
        connection: the member's connection (a :class:`~trio_ws.WebSocketConnection`,
            or anything else with the :class:`MemberConnection` protocol).
        wire_format: the member's wire format (None: the default one); see
            :class:`~trio_ws.hub.MessageVariants`.
        active: True until the member is removed from the hub.

    Its methods may be called from any task, concurrently; :meth:`send` and
    the properties never wait.
    """

    def __init__(
        self,
        hub: Hub,
        connection: MemberConnection,
        member_id: str,
        data: Any,
        outbox: Outbox,
        wire_format: str | None = None,
    ) -> None:
        self.id = member_id
        self.data = data
        self.connection = connection
        self.wire_format = wire_format
        self._hub = hub
        self._outbox = outbox
        self._rooms: set[str] = set()
        self._close_request: tuple[int, str] | None = None
        self._send_scope: trio.CancelScope | None = None
        self.active = True

    @property
    def rooms(self) -> frozenset[str]:
        """The rooms this member is in (internal rooms, see :data:`INTERNAL_ROOM_PREFIX`, excluded)."""
        return frozenset(room for room in self._rooms if not room.startswith(INTERNAL_ROOM_PREFIX))

    @property
    def stats(self) -> OutboxStats:
        """This member's outbox counters (queued, delivered, dropped, high water)."""
        return self._outbox.stats

    @property
    def queued(self) -> int:
        """Messages waiting in the outbox now."""
        return len(self._outbox)

    @property
    def closing(self) -> bool:
        """True once the hub is closing this member (its outbox overflowed, or ``hub.disconnect``): :meth:`send`
        refuses messages from then on."""
        return self._outbox.closed or self._outbox.overflowed

    def send(self, message: MessageLike) -> Outcome:
        """Queue a message for this member only, without waiting.

        Returns:
            what happened to it: queued, dropped (outbox full), or refused
            because the connection is closed.

        Raises:
            TypeError: when the message is not str, bytes, a PreparedMessage or a MessageVariants.

        A :class:`~trio_ws.hub.MessageVariants` without a variant for the
        member's wire format is not queued (the outcome is ``DROPPED``).
        """
        return self._hub._offer_message(self, _prepare(message))

    async def join(self, room: str, *, since: StreamPosition | tuple[str, int] | None = None) -> JoinResult:
        """Join ``room``: same as ``hub.join(member.id, room, since=since)``.

        Raises, and behaves when cancelled or called concurrently, as
        :meth:`Hub.join <trio_ws.hub.Hub.join>`: a cancelled join has joined.
        """
        return await self._hub.join(self.id, room, since=since)

    async def leave(self, room: str) -> None:
        """Leave ``room``: same as ``hub.leave(member.id, room)``.

        Raises, and behaves when cancelled or called concurrently, as
        :meth:`Hub.leave <trio_ws.hub.Hub.leave>`: a cancelled leave has left.
        """
        await self._hub.leave(self.id, room)

    def __repr__(self) -> str:
        return f"<Member {self.id} rooms={sorted(self._rooms)}>"


def _prepare(message: MessageLike) -> HubMessage:
    return message if isinstance(message, (PreparedMessage, MessageVariants)) else PreparedMessage(message)
