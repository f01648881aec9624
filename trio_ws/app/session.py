"""The event session: one connection that speaks the event envelope, and its dispatch loop.

Theory of operation. An event route accepts the connection, connects it to
the default namespace ``/`` and then reads envelopes in arrival order. Each
``event`` is checked (namespace connected, handler known, allowed by the
connection's ACL, data of the declared type) and handed to its handler; by
default one at a time, so a connection's events are handled in order. With
``max_concurrency > 1`` they run side by side in the connection's nursery,
at most that many at once, and at most ``max_in_flight`` may be waiting —
while that queue is full the connection stops reading, and an event that
waits longer than ``flood_timeout`` is answered with ``TooManyRequests``.
The handler's return value answers an event that carried an ``id``; an
exception becomes an error answer. Server-to-client calls
(:meth:`EventConnection.call`) wait for the client's ``ack``; they fail at
once with :class:`~trio_ws.ConnectionClosed` when the connection ends, and
their bookkeeping is removed when they finish, time out, or fail.

The session knows the app only through the :class:`HandlerRegistry` and a
:class:`SessionSettings` it receives.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import trio

from ..close import NORMAL_CLOSURE, POLICY_VIOLATION
from ..errors import ConnectionClosed
from ..hub import Hub, JoinResult
from .acl import AccessControl
from .calls import PendingCalls
from .envelope import (
    DEFAULT_NAMESPACE,
    EnvelopeError,
    EventEnvelope,
    ack_envelope,
    connect_error_envelope,
    connected_envelope,
    disconnect_envelope,
    error_envelope,
    event_envelope,
    parse_envelope,
)
from .handlers import EventError, EventHandler
from .jobs import NamespaceJobs
from .namespaces import hub_room, namespace_room, split_hub_room
from .registry import HandlerRegistry
from .resume import RESUME_PARAM, joined_envelope, parse_resume
from .websocket import WebSocket

__all__ = ["EventConnection", "EventSession", "SessionSettings"]

logger = logging.getLogger("trio_ws.app.events")


@dataclass(frozen=True)
class SessionSettings:
    """The app's settings that an event session follows (see :class:`~trio_ws.app.App`)."""

    hub: Hub
    max_concurrency: int = 1
    max_in_flight: int = 32
    flood_timeout: float = 5.0
    debug: bool = False
    disconnect_grace: float = 5.0


class EventConnection:
    """A connection that speaks the event envelope.

    Attributes:
        websocket: the :class:`WebSocket` (headers, cookies, state, path...).
        session: a per-connection dict for the application.
        wire_format: what the client speaks: None for the event envelope,
            ``"socketio"`` for a Socket.IO client (see
            :meth:`App.enable_socketio <trio_ws.app.App.enable_socketio>`).
    """

    wire_format: str | None = None

    def __init__(self, websocket: WebSocket, registry: HandlerRegistry) -> None:
        self.websocket = websocket
        self.session: dict[str, Any] = websocket.session
        self._registry = registry
        self._namespaces: set[str] = set()
        self._acl: dict[str, AccessControl] = {}
        self._calls = PendingCalls()
        self._jobs = NamespaceJobs(self, registry)
        self._session: EventSession | None = None
        self._resume, self._resume_problem = parse_resume(websocket.query_params.get(RESUME_PARAM))

    @property
    def id(self) -> str:
        """The connection's id (its hub member id)."""
        return self.websocket.id

    @property
    def namespaces(self) -> frozenset[str]:
        """The namespaces this connection has joined."""
        return frozenset(self._namespaces)

    @property
    def pending_calls(self) -> int:
        """Server calls waiting for the client's answer."""
        return len(self._calls)

    def acl(self, namespace: str = DEFAULT_NAMESPACE) -> AccessControl:
        """The access control of this connection in ``namespace``."""
        acl = self._acl.get(namespace)
        if acl is None:
            acl = self._acl[namespace] = AccessControl(self._registry.initial_acl(namespace))
        return acl

    async def send_envelope(self, text: str) -> None:
        """Send an already-encoded envelope directly on this connection.

        Raises:
            ConnectionClosed: when the connection is closed.

        Cancelling and concurrent calls behave as in
        :meth:`~trio_ws.WebSocketConnection.send_message`: concurrent calls are
        allowed (messages are sent whole); a cancelled call either sent
        nothing or ends the connection.
        """
        await self.websocket.connection.send_message(text)

    async def emit(self, event: str, data: Any = None, *, namespace: str = DEFAULT_NAMESPACE) -> None:
        """Send an event to this connection.

        Raises:
            ConnectionClosed: when the connection is closed.
            TypeError: when ``data`` cannot be encoded as JSON.

        Cancelling and concurrent calls: as :meth:`send_envelope`.
        """
        await self.send_envelope(event_envelope(event, data, namespace))

    async def call(
        self,
        event: str,
        data: Any = None,
        *,
        namespace: str = DEFAULT_NAMESPACE,
        timeout: float = 10.0,  # noqa: ASYNC109 - the answer's deadline, as in python-socketio's call()
    ) -> Any:
        """Send an event and wait for the client's answer.

        Returns:
            the data of the client's ``ack``.

        Raises:
            CallTimeout: when no answer arrives within ``timeout`` seconds.
            CallError: when the client answers with an error.
            ConnectionClosed: as soon as the connection closes.

        Cancelling is safe (the pending call is forgotten); concurrent calls
        are allowed.
        """
        call_id = self._calls.new_id()
        try:
            await self.send_envelope(event_envelope(event, data, namespace, call_id))
        except BaseException:
            self._calls.forget(call_id)
            raise
        return await self._calls.wait(call_id, timeout, repr(event), self._closed_error)

    def _closed_error(self) -> ConnectionClosed:
        return self.websocket.link.closed_error()

    async def join_room(self, room: str, namespace: str = DEFAULT_NAMESPACE) -> JoinResult:
        """Join ``room`` of ``namespace``.

        In a room with history the client is sent a ``joined`` envelope with
        the room's position; when the client reconnected with a position for
        this room (see :mod:`trio_ws.app.resume`), the events it missed come
        first and the envelope says whether all were recovered.

        Returns:
            the hub's :class:`~trio_ws.hub.JoinResult`.

        Raises, and behaves when cancelled or called concurrently, as
        :meth:`WebSocket.join_room`.
        """
        if self._resume_problem is not None:
            self.websocket.member.send(error_envelope("BadResume", self._resume_problem))
            self._resume_problem = None
        name = hub_room(namespace, room)
        already = name in self.websocket.rooms
        result = await self.websocket.join_room(name, since=self._resume.pop((namespace, room), None))
        # No checkpoint since the join: the notice is queued exactly between
        # the replayed events and the live ones.
        if result.position is not None and not already:
            self.websocket.member.send(joined_envelope(namespace, room, result))
        return result

    async def leave_room(self, room: str, namespace: str = DEFAULT_NAMESPACE) -> None:
        """Leave ``room`` of ``namespace``.

        Raises, and behaves when cancelled or called concurrently, as
        :meth:`WebSocket.leave_room`.
        """
        await self.websocket.leave_room(hub_room(namespace, room))

    def rooms(self, namespace: str = DEFAULT_NAMESPACE) -> frozenset[str]:
        """The rooms of ``namespace`` this connection is in."""
        found = set()
        for room in self.websocket.rooms:
            space, name = split_hub_room(room)
            if space == namespace:
                found.add(name)
        return frozenset(found)

    async def close_room(self, room: str, namespace: str = DEFAULT_NAMESPACE) -> None:
        """Remove every member from ``room`` of ``namespace`` (see :meth:`WebSocket.close_room`)."""
        await self.websocket.close_room(hub_room(namespace, room))

    def start_soon(self, function: Callable[..., Awaitable[Any]], *args: Any, namespace: str | None = None) -> None:
        """Run background work that ends with the connection, or with its stay in ``namespace``.

        Without ``namespace``, see :meth:`WebSocket.start_soon` (an exception
        closes the connection with 1011). With ``namespace``, the job is
        also cancelled when the connection leaves that namespace, and an
        exception in it is logged and handed to the namespace's error hook
        (with the function's name as the event); the connection stays open.

        Raises:
            RuntimeError: when the connection is not in ``namespace``.
        """
        if namespace is None:
            self.websocket.start_soon(function, *args)
            return
        if namespace not in self._namespaces:
            raise RuntimeError(f"connection {self.id} is not in namespace {namespace!r}")
        self._jobs.start(namespace, function, args)

    async def leave_namespace(self, namespace: str) -> None:
        """Take this connection out of ``namespace``, keeping the connection open.

        As when the client leaves: the namespace's disconnect handler runs,
        its jobs are cancelled, the connection leaves its rooms there and
        its access control starts afresh if it joins again. The client is
        told with a ``disconnect`` envelope (not sent if the connection has
        closed meanwhile). No effect when the connection is not in
        ``namespace``.

        Raises nothing of its own; an exception of the disconnect handler is
        logged. Cancelling it may leave the disconnect handler unfinished,
        but the connection is out of the namespace from the first step.
        Concurrent calls are allowed (only the first one has an effect).
        """
        if self._session is not None:
            await self._session.disconnect_namespace(namespace, notify=True)

    async def disconnect(self, code: int = NORMAL_CLOSURE, reason: str | None = None) -> None:
        """Close the connection (every namespace with it), as :meth:`WebSocket.close`."""
        await self.websocket.close(code, reason)

    def __repr__(self) -> str:
        return f"<EventConnection {self.id} namespaces={sorted(self._namespaces)}>"


class EventSession:
    """Runs one event connection: a reader, and workers that handle envelopes.

    The reader resolves acknowledgements of server calls at once (so a
    handler awaiting :meth:`EventConnection.call` is answered even while it
    holds the only worker) and queues every other envelope, in arrival
    order, for ``max_concurrency`` workers. The queue holds at most
    ``max_in_flight`` envelopes; while it is full the reader waits
    (backpressure), and an event still waiting after ``flood_timeout`` is
    answered with ``TooManyRequests``.
    """

    connection_class: type[EventConnection] = EventConnection

    def __init__(self, registry: HandlerRegistry, websocket: WebSocket, settings: SessionSettings) -> None:
        self.registry = registry
        self.settings = settings
        self.conn = self.connection_class(websocket, registry)
        self.conn._session = self

    async def run(self) -> None:
        """Accept, connect the default namespace, then read until the connection ends."""
        websocket = self.conn.websocket
        await websocket.accept()
        connection = websocket.connection
        if not await self._connect_namespace(DEFAULT_NAMESPACE, None, reply=False):
            await connection.aclose(POLICY_VIOLATION, "connection refused")
            return
        send = self._start_workers()
        try:
            while True:
                try:
                    message = await connection.get_message()
                except ConnectionClosed:
                    break
                await self._read(message, send)
        finally:
            send.close()
            await self._end()

    def _start_workers(self) -> trio.MemorySendChannel[EventEnvelope]:
        """Start the workers; return the queue the reader feeds (see :meth:`_dispatch`)."""
        send, receive = trio.open_memory_channel[EventEnvelope](self.settings.max_in_flight)
        for _ in range(self.settings.max_concurrency):
            self.conn.websocket.start_soon(self._worker, receive.clone())
        receive.close()
        return send

    async def _end(self) -> None:
        """The connection has ended: fail pending calls, run the disconnect handlers."""
        settings = self.settings
        self.conn._calls.fail_all()
        # Shielded, so that disconnect handlers can clean up while the
        # server shuts down, but bounded: a slow one must not hold it up.
        with trio.CancelScope(shield=True, deadline=trio.current_time() + settings.disconnect_grace) as grace:
            for namespace in list(self.conn._namespaces):
                await self.disconnect_namespace(namespace)
        if grace.cancelled_caught:
            logger.warning(
                "connection %s: disconnect handlers cancelled after disconnect_grace=%s s",
                self.conn.id,
                settings.disconnect_grace,
            )

    async def _read(self, message: str | bytes, queue: trio.MemorySendChannel[EventEnvelope]) -> None:
        try:
            envelope = parse_envelope(message)
        except EnvelopeError as err:
            await self._answer_error(err.error_type, str(err), err.call_id)
            return
        await self._dispatch(envelope, queue)

    async def _dispatch(self, envelope: EventEnvelope, queue: trio.MemorySendChannel[EventEnvelope]) -> None:
        """Resolve an ``ack`` at once; queue anything else for the workers (waiting while the queue is full)."""
        if envelope.type == "ack":
            self.conn._calls.answer(envelope)
            return
        # Room in the queue (the usual case): no timer, no trip through the
        # scheduler. Only a full queue waits, for flood_timeout at most.
        try:
            queue.send_nowait(envelope)
            return
        except trio.WouldBlock:
            pass
        except trio.BrokenResourceError:
            return  # the workers are gone: the connection is ending
        with trio.move_on_after(self.settings.flood_timeout):
            # Waits while the queue is full (backpressure); a broken channel
            # means the workers are gone because the connection is ending.
            with contextlib.suppress(trio.BrokenResourceError):
                await queue.send(envelope)
            return
        await self._answer_error(
            "TooManyRequests",
            f"more than {self.settings.max_in_flight} requests waiting for {self.settings.flood_timeout} s",
            envelope.id,
            namespace=envelope.namespace,
        )

    async def _worker(self, queue: trio.MemoryReceiveChannel[EventEnvelope]) -> None:
        async with queue:
            async for envelope in queue:
                await self._handle(envelope)

    async def _handle(self, envelope: EventEnvelope) -> None:
        if envelope.type == "event":
            await self._run_handler(envelope)
        elif envelope.type == "connect":
            await self._connect_namespace(envelope.namespace, envelope.data, reply=True)
        elif envelope.type == "disconnect":
            await self.disconnect_namespace(envelope.namespace)
        else:
            await self._answer_error(
                "BadEnvelope", f"clients do not send {envelope.type!r}", envelope.id, namespace=envelope.namespace
            )

    async def _run_handler(self, envelope: EventEnvelope) -> None:
        assert envelope.event is not None
        namespace, event, call_id = envelope.namespace, envelope.event, envelope.id
        if namespace not in self.conn._namespaces:
            await self._answer_error(
                "NotConnected", f"namespace {namespace!r} is not connected", call_id, namespace=namespace
            )
            return
        handler = self.registry.handler(namespace, event)
        if handler is None:
            await self._answer_error(
                "UnknownEvent", f"no handler for {event!r} in {namespace!r}", call_id, namespace=namespace
            )
            return
        if not self.conn.acl(namespace).allows(event):
            logger.warning("connection %s: event %r denied in %r", self.conn.id, event, namespace)
            await self._answer_error("Forbidden", f"event {event!r} is not allowed", call_id, namespace=namespace)
            return
        if not handler.accepts(envelope.data):
            assert handler.data_type is not None
            await self._answer_error(
                "TypeError",
                f"{event!r} expects {handler.data_type.__name__}, got {type(envelope.data).__name__}",
                call_id,
                namespace=namespace,
            )
            return
        try:
            result = await handler.function(self.conn, envelope.data)
        except ConnectionClosed:
            return
        except EventError as err:
            await self._answer_error(err.error_type, err.message, call_id, namespace=namespace)
            return
        except Exception as err:
            await self._handler_failed(handler, namespace, event, envelope.data, err, call_id)
            return
        if call_id is not None:
            await self._answer(event, call_id, result, namespace)

    async def _answer(self, event: str, call_id: int, result: Any, namespace: str) -> None:
        """Answer the event ``call_id`` with the handler's ``result``."""
        try:
            text = ack_envelope(call_id, result)
        except (TypeError, ValueError) as err:
            logger.error("handler of %r returned a value JSON cannot encode: %s", event, err)
            await self._answer_error("InternalError", "the answer could not be encoded", call_id, namespace=namespace)
            return
        await self._send(text)

    async def _handler_failed(
        self,
        handler: EventHandler,
        namespace: str,
        event: str,
        data: Any,
        error: Exception,
        call_id: int | None,
    ) -> None:
        shown = handler.shown(data)
        if isinstance(error, handler.expected_exceptions):
            logger.info("handler of %r raised expected %r (data=%r)", event, error, shown)
            await self._answer_error(type(error).__name__, str(error), call_id, namespace=namespace)
            return
        logger.error("handler of %r in %r failed (data=%r)", event, namespace, shown, exc_info=error)
        await self.registry.run_error_hooks(self.conn, namespace, event, error)
        if self.settings.debug:
            await self._answer_error(type(error).__name__, str(error), call_id, namespace=namespace)
        else:
            await self._answer_error("InternalError", "the handler failed", call_id, namespace=namespace)

    async def _connect_namespace(self, namespace: str, data: Any, *, reply: bool) -> bool:
        if namespace in self.conn._namespaces:
            if reply:
                await self._reply_connected(namespace)
            return True
        if not self.registry.has_namespace(namespace):
            if reply:
                await self._reply_connect_error(namespace, "UnknownNamespace", f"no namespace {namespace!r}")
            return False
        try:
            accepted = await self.registry.on_connect(namespace, self.conn, data)
            refusal = ("Refused", "connection refused")
        except EventError as err:
            accepted, refusal = False, (err.error_type, err.message)
        if accepted is False:
            if reply:
                await self._reply_connect_error(namespace, *refusal)
            return False
        self.conn._namespaces.add(namespace)
        await self.conn.websocket.join_room(namespace_room(namespace))
        if reply:
            await self._reply_connected(namespace)
        return True

    async def _reply_connected(self, namespace: str) -> None:
        await self._send(connected_envelope(namespace))

    async def _reply_connect_error(self, namespace: str, error_type: str, message: str) -> None:
        await self._send(connect_error_envelope(namespace, error_type, message))

    async def _reply_disconnect(self, namespace: str) -> None:
        await self._send(disconnect_envelope(namespace))

    async def disconnect_namespace(self, namespace: str, *, notify: bool = False) -> None:
        """Leave ``namespace``: its jobs, disconnect handler, rooms and ACL (``notify``: tell the client)."""
        conn = self.conn
        if namespace not in conn._namespaces:
            return
        conn._namespaces.discard(namespace)
        if not conn.websocket.closed:
            # Once the connection is closing, its jobs end with it, after the
            # close completes: cancelling one now could abort a close it started.
            conn._jobs.cancel(namespace)
        conn._acl.pop(namespace, None)  # joining again starts from the initial ACL
        try:
            await self.registry.on_disconnect(namespace, conn)
        except Exception:
            logger.exception("disconnect handler of %r failed", namespace)
        finally:
            # Also when the handler raised or was cancelled: a connection out of
            # a namespace must not keep receiving what is sent to its rooms.
            await self._leave_rooms(namespace)
        if notify:
            await self._reply_disconnect(namespace)

    async def _leave_rooms(self, namespace: str) -> None:
        hub = self.settings.hub
        rooms = [hub_room(namespace, room) for room in self.conn.rooms(namespace)] + [namespace_room(namespace)]
        for room in rooms:
            # The member is gone once the connection has closed (the hub
            # removed it from every room): nothing left to leave.
            if hub.member(self.conn.id) is None:
                return
            await hub.leave(self.conn.id, room)

    async def _answer_error(
        self, error_type: str, message: str, call_id: int | None, *, namespace: str = DEFAULT_NAMESPACE
    ) -> None:
        await self._send(error_envelope(error_type, message, call_id))

    async def _send(self, text: str) -> None:
        with contextlib.suppress(ConnectionClosed):
            await self.conn.send_envelope(text)
