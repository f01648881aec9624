"""Socket.IO connection-state recovery across processes, through the hub's Redis backend.

The in-process version (:mod:`trio_ws.app.socketio_recovery`) keeps its log
and the dropped connections' states in memory; here both live in Redis, so
that a client whose transport drops on process A may come back to process
B and still get its ``sid``, rooms, ``session`` and the events it missed.

Theory of operation.

*The log.* Each namespace has one *recovery room*, an internal hub room with
history, hence a Redis Stream (:mod:`trio_ws.hub.redis_streams`) that every
Socket.IO connection of the namespace joins. Every event the app sends to
Socket.IO clients of the namespace (to a room, to all, to one sid; from a
worker too, with :meth:`App.publish <trio_ws.app.App.publish>`) is
appended to that stream once, with the room it was sent to as ``within``
and its exclusions (:meth:`Hub.broadcast <trio_ws.hub.Hub.broadcast>`);
every process reads the stream and hands each entry to its own members that
are in that room (or have that sid). Live delivery therefore *is* the log:
every client sees the namespace's events in the stream's order, whichever
process emitted them, and the offset each event ends with (``"<epoch>:<offset>"``,
the stream entry's position, put in by each reading process through a
:class:`~trio_ws.hub.positioned.PositionedVariants`) says exactly what the
client has seen. The Socket.IO encoding never travels through the rooms'
ordinary pub/sub channels (envelope clients still get theirs there).

*Parking.* A connection whose transport ends without a goodbye has its
state (sid, rooms by namespace, session dict, and for each namespace the
stream position where it connected) written as JSON under its pid with
``SET ... PX max_disconnection_duration``; Redis forgets it when the window
closes. A CONNECT that brings back a pid takes it with ``GETDEL``, so one
process at most recovers it.

*The seam.* A recovered connection rejoins its rooms, then the namespace's
recovery room *from its offset* (:meth:`Hub.join <trio_ws.hub.Hub.join>`
with ``since``): the hub holds what its reader delivers meanwhile, reads
the missed entries up to where its reader stands, and, without a checkpoint,
queues the CONNECT answer (its pid only when the replay is complete, so the
client's ``socket.recovered`` tells the truth), the replay (only the
entries that were for this sid), then what it held that came later. Nothing
is lost or received twice between the replay and the live stream.

*Failures.* An unknown or expired pid, a state Redis could not store or
return (link down, no answer within ``command_timeout``), an offset of
another epoch (Redis restarted without the data), entries trimmed since the
offset, or more missed events than the connection's outbox holds: the
client gets a fresh session (``socket.recovered`` false), never an error.
The session dict must be JSON-serialisable to be parked; otherwise the
state is not parked (logged at ERROR) and the client comes back fresh.
"""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import Iterable
from typing import Protocol, runtime_checkable

from ..hub import DeliveryReport, HistoryPolicy, Hub, MessageVariants, StreamPosition
from ..hub.member import INTERNAL_ROOM_PREFIX
from ..hub.positioned import PositionedVariants
from .namespaces import hub_room, is_connection_id, namespace_room
from .socketio_recovery import ParkedState

__all__ = ["ParkingBackend", "StreamedRecovery", "recovery_room", "encode_state", "decode_state"]

logger = logging.getLogger("trio_ws.app.socketio")


@runtime_checkable
class ParkingBackend(Protocol):
    """A hub backend that parks values for a while (:class:`~trio_ws.hub.redis.RedisBackend` does)."""

    async def park(self, name: str, value: str, ttl: float) -> bool:
        """Keep ``value`` under ``name`` for ``ttl`` seconds; False when it could not."""

    async def take_parked(self, name: str) -> str | None:
        """The value under ``name``, removed; None when there is none or Redis fails."""


def recovery_room(namespace: str) -> str:
    """The internal hub room whose stream is ``namespace``'s recovery log."""
    return f"{INTERNAL_ROOM_PREFIX}sio-recovery{INTERNAL_ROOM_PREFIX}{namespace}"


def encode_state(state: ParkedState) -> str:
    """A parked state as JSON.

    Raises:
        TypeError, ValueError: the session holds something JSON cannot encode.
    """
    return json.dumps(
        {
            "sid": state.sid,
            "rooms": {namespace: sorted(rooms) for namespace, rooms in state.rooms.items()},
            "session": state.session,
            "positions": {ns: [position.epoch, position.offset] for ns, position in state.positions.items()},
        },
        separators=(",", ":"),
        ensure_ascii=False,
    )


def decode_state(text: str) -> ParkedState | None:
    """The state :func:`encode_state` wrote, or None when ``text`` is not one."""
    try:
        value = json.loads(text)
        sid, rooms, session, positions = value["sid"], value["rooms"], value["session"], value["positions"]
        assert isinstance(sid, str) and isinstance(session, dict)
        parked_rooms = {str(ns): frozenset(str(room) for room in names) for ns, names in rooms.items()}
        parked_positions = {str(ns): StreamPosition(str(e), int(offset)) for ns, (e, offset) in positions.items()}
    except (ValueError, TypeError, KeyError, AttributeError, AssertionError, RecursionError):
        return None
    return ParkedState(sid, parked_rooms, session, 0.0, parked_positions)


class StreamedRecovery:
    """The recovery log (one Redis Stream per namespace) and the parked states (Redis keys with a TTL).

    Args:
        hub: the app's hub; its backend must keep streams and park values.
        policy: the bounds of each namespace's log (count, bytes, age).
        max_disconnection_duration: seconds a dropped connection's state is kept.

    Raises:
        ValueError: for a non-positive duration, or a backend that cannot park.
    """

    def __init__(self, hub: Hub, policy: HistoryPolicy, max_disconnection_duration: float) -> None:
        if not max_disconnection_duration > 0:
            raise ValueError(f"max_disconnection_duration must be > 0, not {max_disconnection_duration!r}")
        backend = hub.backend
        if not isinstance(backend, ParkingBackend):
            raise ValueError(
                f"Socket.IO connection-state recovery across processes needs a backend that parks states "
                f"and keeps streams (RedisBackend), not {backend!r}"
            )
        self.hub: Hub = hub
        self.backend: ParkingBackend = backend
        self.policy: HistoryPolicy = policy
        self.max_disconnection_duration: float = max_disconnection_duration
        self._rooms: dict[str, str] = {}

    def room(self, namespace: str) -> str:
        """``namespace``'s recovery room (its history turned on at first use)."""
        room = self._rooms.get(namespace)
        if room is None:
            room = self._rooms[namespace] = recovery_room(namespace)
            self.hub.enable_history(room, self.policy)
        return room

    @staticmethod
    def marker() -> str:
        """A fresh placeholder for an event's offset (random: it cannot be guessed by data)."""
        return f"~offset~{secrets.token_hex(12)}~"

    async def send(
        self, namespace: str, within: str, frames: MessageVariants, marker: str, exclude: set[str]
    ) -> bool:
        """Append an event (its Socket.IO frames ending with ``marker``) to ``namespace``'s log, for ``within``.

        Returns:
            whether it was queued for the stream (False: lost, counted by
            the backend). Never waits for Redis; raises nothing.
        """
        report = await self.hub.broadcast(
            self.room(namespace), PositionedVariants(frames, marker), exclude=exclude, within=within
        )
        return bool(report.published)

    async def emit(
        self,
        frames: MessageVariants,
        marker: str,
        envelope: MessageVariants | None,
        *,
        to: str | None,
        exclude: str | Iterable[str] | None,
        namespace: str,
    ) -> DeliveryReport | bool:
        """What :meth:`App.emit <trio_ws.app.App.emit>` does with recovery through Redis.

        The Socket.IO ``frames`` (ending with ``marker``) go through the
        namespace's log; the ``envelope`` (None when the data holds bytes)
        to the envelope clients as usual. Returns what ``App.emit`` returns.
        """
        excluded = {exclude} if isinstance(exclude, str) else set(exclude or ())
        hub = self.hub
        if to is None:
            published = await self.send(namespace, namespace_room(namespace), frames, marker, excluded)
            if envelope is None:
                return DeliveryReport(published=published)
            return await hub.broadcast(namespace_room(namespace), envelope, exclude=excluded)
        member = hub.member(to)
        if member is not None or is_connection_id(to):
            published = await self.send(namespace, to, frames, marker, excluded)
            if envelope is None or (member is not None and envelope.variant(member.wire_format) is None):
                return published
            return await hub.unicast(to, envelope)
        room = hub_room(namespace, to)
        published = await self.send(namespace, room, frames, marker, excluded)
        if envelope is None:
            return DeliveryReport(published=published)
        report = await hub.broadcast(room, envelope, exclude=excluded)
        return DeliveryReport(report.queued, report.dropped, report.closed, report.published or published)

    async def park(self, pid: str, state: ParkedState) -> bool:
        """Park ``state`` under ``pid`` for ``max_disconnection_duration``; False when it was not.

        Never raises: a session JSON cannot encode is logged at ERROR.
        """
        try:
            text = encode_state(state)
        except (TypeError, ValueError) as err:
            logger.error(
                "Socket.IO connection %s: its state cannot be parked for recovery (the session must be "
                "JSON-serialisable): %s",
                state.sid,
                err,
            )
            return False
        return await self.backend.park(_name(pid), text, self.max_disconnection_duration)

    async def take(self, pid: str) -> ParkedState | None:
        """The state parked under ``pid`` (taken: no other process gets it), or None."""
        text = await self.backend.take_parked(_name(pid))
        return None if text is None else decode_state(text)


def _name(pid: str) -> str:
    return f"sio:{pid}"
