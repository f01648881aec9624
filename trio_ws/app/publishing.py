"""Emitting an app's events from a worker, a process that serves no connections.

Part of :class:`~trio_ws.app.App` (a mixin of it): :meth:`App.publish
<trio_ws.app.App.publish>` sends an event through a
:class:`~trio_ws.hub.HubClient` the way :meth:`App.emit
<trio_ws.app.App.emit>` sends it from a serving process, so that the
servers' clients cannot tell the two apart.

Theory of operation. The worker builds its own ``App`` with the servers'
Socket.IO settings (``enable_socketio`` with the same
``max_disconnection_duration`` and ``recovery_history``); its hub is not
used. Without connection-state recovery, the event's hub message
(:meth:`App.event_message <trio_ws.app.App.event_message>`) goes to the
room's, the namespace's or the connection's processes, as a serving app's
emit does. With recovery, a serving app sends an event to its Socket.IO
clients through the namespace's recovery log
(:mod:`trio_ws.app.socketio_recovery_redis`): one Redis Stream, appended to
with the event's Socket.IO frames ending with an offset marker, the room or
sid it is for (``within``) and its exclusions. The worker appends the same
entry (built by the same :func:`~trio_ws.app.socketio_recovery_redis.logged_event`
and :class:`~trio_ws.hub.publisher.Publisher`) through the client, which
treats the log's room as a room with the app's recovery history policy;
every serving process then delivers it to its own Socket.IO clients with
the entry's position as the offset, and replays it to a client that
recovers its connection. Envelope clients get their encoding through the
rooms' pub/sub channels, as from a serving app.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Iterable
from typing import Any

from ..hub import HubClient, MessageVariants, PositionedVariants
from ..socketio.packets import has_binary
from .envelope import DEFAULT_NAMESPACE, event_envelope
from .namespaces import hub_room, is_connection_id, namespace_room
from .resume import stream_event
from .socketio import SOCKETIO, SocketIOSettings, socketio_event_frames
from .socketio_recovery import RecoveryLog
from .socketio_recovery_redis import StreamedRecovery, recovery_room

__all__ = ["WorkerPublishing", "logged_event"]


def logged_event(event: str, data: Any, namespace: str) -> tuple[PositionedVariants, MessageVariants | None]:
    """An event as the recovery log through Redis keeps it, and its envelope for the other clients.

    Returns:
        the Socket.IO frames, ending with a fresh offset marker (each
        process that delivers the log's entry puts the entry's position
        there), and the envelope (None when ``data`` holds bytes: JSON
        cannot carry them, so envelope clients get nothing).

    Raises:
        TypeError, ValueError: as :meth:`App.emit <trio_ws.app.App.emit>`.
    """
    marker = StreamedRecovery.marker()
    frames = MessageVariants({SOCKETIO: socketio_event_frames(event, data, namespace, offset=marker)})
    envelope = None if has_binary(data) else MessageVariants({None: event_envelope(event, data, namespace)})
    return PositionedVariants(frames, marker), envelope


class WorkerPublishing:
    """The worker half of :class:`~trio_ws.app.App` (not used on its own)."""

    socketio: SocketIOSettings | None
    _recovery: RecoveryLog | StreamedRecovery | None

    @abstractmethod
    def event_message(
        self, event: str, data: Any = None, *, namespace: str = DEFAULT_NAMESPACE
    ) -> str | MessageVariants:
        """The hub message of an event, encoded once per wire format this app serves."""

    async def publish(
        self,
        client: HubClient,
        event: str,
        data: Any = None,
        *,
        to: str | None = None,
        exclude: str | Iterable[str] | None = None,
        namespace: str = DEFAULT_NAMESPACE,
    ) -> bool:
        """Send an event from a worker to a room, a connection, or every connection of a namespace.

        What :meth:`emit` does in a serving process, through ``client``, a
        :class:`~trio_ws.hub.HubClient` on the servers' backend (same
        prefix). Configure this app as the servers are configured (at least
        :meth:`enable_socketio` with the same ``max_disconnection_duration``
        and ``recovery_history``); its own hub is not used. With
        connection-state recovery, the event goes through the namespace's
        recovery log like a server's emit: Socket.IO clients receive it with
        its offset, and one that recovers its connection gets it if it
        missed it. Envelope clients receive their encoding as from
        :meth:`emit`.

        Args:
            client: the worker's HubClient (its ``async with`` block entered).
            event: the event name.
            data: JSON-encodable data (as for :meth:`emit`).
            to: a room of ``namespace``, or a connection id (32 hexadecimal
                digits); None for all.
            exclude: connection id(s) to skip.
            namespace: the namespace.

        Returns:
            True when the backend took the event for every kind of client
            it is for; False when some of it is lost. Without recovery, what
            the client's ``broadcast`` (or ``unicast`` for a connection id:
            False for an id no process knows) returns: False while the
            backend is down or its queue is full. With recovery, the log
            entry waits in the backend's queue while the link is down (lost
            only when that queue is full), the envelope clients' message is
            lost then; for a connection id, True when either was taken.

        Raises:
            TypeError: ``client`` is not a HubClient, or ``data`` cannot be
                encoded as JSON (nothing is sent).
            RuntimeError: ``client`` is not running (outside its ``async
                with`` block, where nothing could be sent).
            ValueError: with Socket.IO enabled, an event name its clients
                reserve; with recovery, a client whose backend keeps no
                streams (nothing is sent).

        Cancelling is safe (the event may or may not have been handed to
        the backend, for either kind of client); concurrent calls are allowed.
        """
        if not isinstance(client, HubClient):
            raise TypeError(
                f"App.publish sends through a trio_ws.hub.HubClient, not {client!r} "
                "(a process that serves the connections emits with App.emit)"
            )
        recovery = self._recovery
        log = recovery_room(namespace)
        try:
            if recovery is not None:
                client.enable_history(log, recovery.policy)
        except ValueError as err:
            raise ValueError(
                "this App has Socket.IO connection-state recovery (max_disconnection_duration), so App.publish "
                f"appends to the namespace's recovery log, so its HubClient needs a backend that keeps streams"
                f" (RedisBackend, as the servers'): {err}"
            ) from None
        if not client.running:
            raise RuntimeError(f"HubClient {client.process_id!r} is not running: publish inside its `async with` block")
        if recovery is None:
            return await self._publish_plain(client, event, data, to, exclude, namespace)
        frames, envelope = logged_event(event, data, namespace)
        if to is not None and is_connection_id(to):
            logged = await client.broadcast(log, frames, exclude=exclude, within=to)
            sent = envelope is not None and await client.unicast(to, envelope)
            return logged or sent
        room = namespace_room(namespace) if to is None else hub_room(namespace, to)
        logged = await client.broadcast(log, frames, exclude=exclude, within=room)
        if envelope is None:
            return logged
        return await client.broadcast(room, envelope, exclude=exclude) and logged

    async def _publish_plain(
        self,
        client: HubClient,
        event: str,
        data: Any,
        to: str | None,
        exclude: str | Iterable[str] | None,
        namespace: str,
    ) -> bool:
        """:meth:`publish` without recovery: the hub message of :meth:`emit`, through the client."""
        message = self.event_message(event, data, namespace=namespace)
        if to is None:
            return await client.broadcast(namespace_room(namespace), message, exclude=exclude)
        if is_connection_id(to):
            return await client.unicast(to, message)
        if self.socketio is None:
            # In a room with history the envelope also carries the room, epoch and offset.
            return await client.broadcast(
                hub_room(namespace, to), stream_event(event, data, namespace, to), exclude=exclude
            )
        return await client.broadcast(hub_room(namespace, to), message, exclude=exclude)
