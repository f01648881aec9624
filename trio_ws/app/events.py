"""Named events over the envelope: namespaces, acknowledgements, server calls, access control.

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
"""

from __future__ import annotations

import contextlib
import inspect
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import trio

from ..close import POLICY_VIOLATION
from ..errors import ConnectionClosed, WebSocketError
from ..hub import INTERNAL_ROOM_PREFIX
from .envelope import (
    DEFAULT_NAMESPACE,
    Envelope,
    EnvelopeError,
    ack_envelope,
    encode,
    error_envelope,
    event_envelope,
    parse_envelope,
)
from .jobs import NamespaceJobs
from .websocket import WebSocket

if TYPE_CHECKING:
    from .app import App

__all__ = [
    "AccessControl",
    "CallError",
    "CallTimeout",
    "EventConnection",
    "EventError",
    "EventHandler",
    "Namespace",
    "EventSession",
    "hub_room",
]

logger = logging.getLogger("trio_ws.app.events")

HandlerFunction = Callable[..., Awaitable[Any]]
ErrorHook = Callable[["EventConnection", str, BaseException], Awaitable[None]]
_SIMPLE_TYPES = (dict, list, str, int, float, bool)
_REDACTED = "<redacted>"


class EventError(Exception):
    """Raise it in a handler to answer with a chosen error type and message."""

    def __init__(self, error_type: str, message: str) -> None:
        super().__init__(message)
        self.error_type = error_type
        self.message = message


class CallError(WebSocketError):
    """The client answered a server call with an error."""

    def __init__(self, error_type: str, message: str) -> None:
        super().__init__(f"{error_type}: {message}")
        self.error_type = error_type
        self.message = message


class CallTimeout(WebSocketError, TimeoutError):
    """The client did not answer a server call in time."""


@dataclass(frozen=True)
class EventHandler:
    """A registered event handler and how to treat its failures.

    Attributes:
        function: ``async def handler(conn, data)``; its return value answers.
        expected_exceptions: exceptions that are part of the handler's
            contract: answered with their type and message, logged at INFO.
        sensitive_arguments: keys of a dict argument to redact in logs.
        data_type: the declared type of ``data`` (from its annotation) when it
            is a plain JSON type; other types are refused with ``TypeError``.
    """

    function: HandlerFunction
    expected_exceptions: tuple[type[BaseException], ...] = ()
    sensitive_arguments: tuple[str, ...] = ()
    data_type: type | None = None

    @classmethod
    def wrap(
        cls,
        function: HandlerFunction,
        expected_exceptions: Iterable[type[BaseException]] = (),
        sensitive_arguments: Iterable[str] = (),
    ) -> EventHandler:
        """Build a handler, reading the data parameter's annotation."""
        return cls(function, tuple(expected_exceptions), tuple(sensitive_arguments), _data_type(function))

    def for_event(self, event: str) -> EventHandler:
        """This handler as the handler of ``event``: ``function(conn, event, data)`` called as ``(conn, data)``."""

        async def bound(conn: EventConnection, data: Any) -> Any:
            return await self.function(conn, event, data)

        return EventHandler(bound, self.expected_exceptions, self.sensitive_arguments)


def _data_type(function: HandlerFunction) -> type | None:
    try:
        parameters = list(inspect.signature(function, eval_str=True).parameters.values())
    except (NameError, TypeError, ValueError):
        return None
    if len(parameters) < 2:
        return None
    annotation = parameters[1].annotation
    return annotation if annotation in _SIMPLE_TYPES else None


class AccessControl:
    """The events a connection may send in one namespace.

    Two modes: an allow-list (only the listed events), or everything except
    a deny-list. :meth:`lift` allows everything; :meth:`reset` returns to
    the namespace's initial set.

    Args:
        initial: the namespace's initial allow-list, or None for "everything".
    """

    def __init__(self, initial: Iterable[str] | None) -> None:
        self._initial = None if initial is None else frozenset(initial)
        self._allowed: set[str] | None = None
        self._denied: set[str] = set()
        self.reset()

    @property
    def allowed(self) -> frozenset[str] | None:
        """The allow-list, or None when every event not in :attr:`denied` is allowed."""
        return None if self._allowed is None else frozenset(self._allowed)

    @property
    def denied(self) -> frozenset[str]:
        """The deny-list (used while there is no allow-list)."""
        return frozenset(self._denied)

    def allows(self, event: str) -> bool:
        """Whether ``event`` may be handled."""
        if self._allowed is None:
            return event not in self._denied
        return event in self._allowed

    def allow(self, *events: str) -> None:
        """Allow these events."""
        if self._allowed is None:
            self._denied.difference_update(events)
        else:
            self._allowed.update(events)

    def deny(self, *events: str) -> None:
        """Forbid these events."""
        if self._allowed is None:
            self._denied.update(events)
        else:
            self._allowed.difference_update(events)

    def lift(self) -> None:
        """Allow every event."""
        self._allowed = None
        self._denied = set()

    def reset(self) -> None:
        """Go back to the namespace's initial set."""
        self._allowed = None if self._initial is None else set(self._initial)
        self._denied = set()


class Namespace:
    """A group of event handlers: each ``on_<event>`` method handles ``<event>``.

    One instance serves every connection; keep per-connection data in
    ``conn.session``. Register it with :meth:`App.add_namespace`.

    Attributes:
        namespace: the namespace's name (default ``"/"``).
        allowed_events: the events a new connection may send here; None
            (default) allows all. Change a connection's set at run time with
            ``conn.acl(namespace)``.
    """

    namespace: ClassVar[str] = DEFAULT_NAMESPACE
    allowed_events: ClassVar[Iterable[str] | None] = None
    expected_exceptions: ClassVar[Mapping[str, Iterable[type[BaseException]]]] = {}
    sensitive_arguments: ClassVar[Mapping[str, Iterable[str]]] = {}

    async def on_connect(self, conn: EventConnection, data: Any) -> bool | None:
        """Called when a connection joins the namespace; return False (or raise
        :class:`EventError`) to refuse it."""
        return None

    async def on_disconnect(self, conn: EventConnection) -> None:
        """Called when a connection leaves the namespace or closes."""

    async def on_error(self, conn: EventConnection, event: str, error: BaseException) -> None:
        """Called when a handler (or a job) of this namespace raises an unexpected exception."""

    async def process_event(self, conn: EventConnection, event: str, data: Any) -> Any:
        """Handle one event of this namespace; override it to route events your own way.

        As long as it is not overridden, the app routes each event to its
        handler (decorated, ``on_<event>``, or the catch-all) and this method
        is not called. An override receives every event the connection's ACL
        allows; its return value answers the event, :class:`EventError`
        answers with an error. This default calls ``on_<event>`` (so an
        override can fall back to ``await super().process_event(...)``).

        Raises:
            EventError: ``UnknownEvent`` when there is no ``on_<event>`` method.
        """
        handler = self.handlers().get(event)
        if handler is None:
            raise EventError("UnknownEvent", f"no handler for {event!r} in {self.namespace!r}")
        return await handler.function(conn, data)

    def _routes_events(self) -> bool:
        """Whether this class overrides :meth:`process_event`."""
        return type(self).process_event is not Namespace.process_event

    def _dispatcher(self, event: str) -> EventHandler:
        """:meth:`process_event` as the handler of ``event``."""

        async def dispatch(conn: EventConnection, data: Any) -> Any:
            return await self.process_event(conn, event, data)

        return EventHandler(
            dispatch,
            tuple(self.expected_exceptions.get(event, ())),
            tuple(self.sensitive_arguments.get(event, ())),
        )

    def handlers(self) -> dict[str, EventHandler]:
        """The ``on_<event>`` methods, by event name."""
        found: dict[str, EventHandler] = {}
        for name in dir(self):
            if not name.startswith("on_") or name in ("on_connect", "on_disconnect", "on_error"):
                continue
            method = getattr(self, name)
            if callable(method):
                event = name[3:]
                found[event] = EventHandler.wrap(
                    method,
                    self.expected_exceptions.get(event, ()),
                    self.sensitive_arguments.get(event, ()),
                )
        return found


#: Separates a namespace from a room name in hub room names (ASCII unit
#: separator: it cannot collide with printable room names).
_SEPARATOR = "\x1f"


def hub_room(namespace: str, room: str) -> str:
    """The hub room of ``room`` in ``namespace`` (the default namespace's rooms keep their names)."""
    return room if namespace == DEFAULT_NAMESPACE else f"{namespace}{_SEPARATOR}{room}"


def namespace_room(namespace: str) -> str:
    """The hub room every connection of ``namespace`` is in (for emits to all).

    Its name starts with the hub's internal-room prefix, so the hub does not
    list it among a member's rooms.
    """
    return f"{INTERNAL_ROOM_PREFIX}namespace{_SEPARATOR}{namespace}"


def is_connection_id(value: str) -> bool:
    """Whether ``value`` has the form of a connection id (32 lowercase hexadecimal digits)."""
    return len(value) == 32 and all(c in "0123456789abcdef" for c in value)


@dataclass
class _PendingCall:
    event: trio.Event = field(default_factory=trio.Event)
    data: Any = None
    error: dict[str, str] | None = None
    closed: bool = False


class EventConnection:
    """A connection that speaks the event envelope.

    Attributes:
        websocket: the :class:`WebSocket` (headers, cookies, state, path...).
        session: a per-connection dict for the application.
    """

    def __init__(self, websocket: WebSocket, app: App) -> None:
        self.websocket = websocket
        self.session: dict[str, Any] = websocket.session
        self._app = app
        self._namespaces: set[str] = set()
        self._acl: dict[str, AccessControl] = {}
        self._calls: dict[int, _PendingCall] = {}
        self._next_call = 0
        self._jobs = NamespaceJobs(self, app)
        self._session: EventSession | None = None

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
            acl = self._acl[namespace] = AccessControl(self._app._initial_acl(namespace))
        return acl

    async def send_envelope(self, text: str) -> None:
        """Send an already-encoded envelope directly on this connection."""
        await self.websocket.connection.send_message(text)

    async def emit(self, event: str, data: Any = None, *, namespace: str = DEFAULT_NAMESPACE) -> None:
        """Send an event to this connection.

        Raises:
            ConnectionClosed: when the connection is closed.
            TypeError: when ``data`` cannot be encoded as JSON.
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
        self._next_call += 1
        call_id = self._next_call
        pending = _PendingCall()
        self._calls[call_id] = pending
        try:
            await self.send_envelope(event_envelope(event, data, namespace, call_id))
            with trio.move_on_after(timeout) as scope:
                await pending.event.wait()
        finally:
            self._calls.pop(call_id, None)
        if scope.cancelled_caught:
            raise CallTimeout(f"no answer to {event!r} within {timeout} s")
        if pending.closed:
            raise self.websocket.connection._closed_error()
        if pending.error is not None:
            raise CallError(pending.error.get("type", "Error"), pending.error.get("message", ""))
        return pending.data

    def _answered(self, envelope: Envelope) -> None:
        assert envelope.id is not None
        pending = self._calls.get(envelope.id)
        if pending is None:
            logger.debug("answer to unknown or expired call %s ignored", envelope.id)
            return
        pending.data = envelope.data
        pending.error = envelope.error
        pending.event.set()

    def _fail_calls(self) -> None:
        for pending in self._calls.values():
            pending.closed = True
            pending.event.set()

    async def join_room(self, room: str, namespace: str = DEFAULT_NAMESPACE) -> None:
        """Join ``room`` of ``namespace``."""
        await self.websocket.join_room(hub_room(namespace, room))

    async def leave_room(self, room: str, namespace: str = DEFAULT_NAMESPACE) -> None:
        """Leave ``room`` of ``namespace``."""
        await self.websocket.leave_room(hub_room(namespace, room))

    def rooms(self, namespace: str = DEFAULT_NAMESPACE) -> frozenset[str]:
        """The rooms of ``namespace`` this connection is in."""
        found = set()
        for room in self.websocket.rooms:
            space, separator, name = room.rpartition(_SEPARATOR)
            if not separator:
                if namespace == DEFAULT_NAMESPACE:
                    found.add(room)
            elif space == namespace:
                found.add(name)
        return frozenset(found)

    async def close_room(self, room: str, namespace: str = DEFAULT_NAMESPACE) -> None:
        """Remove every member from ``room`` of ``namespace``."""
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
        """
        if self._session is not None:
            await self._session.disconnect_namespace(namespace, notify=True)

    async def disconnect(self, code: int = 1000, reason: str | None = None) -> None:
        """Close the connection (every namespace with it)."""
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

    def __init__(self, app: App, websocket: WebSocket) -> None:
        self.app = app
        self.conn = EventConnection(websocket, app)
        self.conn._session = self

    async def run(self) -> None:
        """Accept, connect the default namespace, then read until the connection ends."""
        websocket = self.conn.websocket
        await websocket.accept()
        connection = websocket.connection
        if not await self._connect_namespace(DEFAULT_NAMESPACE, None, reply=False):
            await connection.aclose(POLICY_VIOLATION, "connection refused")
            return
        send, receive = trio.open_memory_channel[Envelope](self.app.max_in_flight)
        for _ in range(self.app.max_concurrency):
            websocket.start_soon(self._worker, receive.clone())
        receive.close()
        try:
            while True:
                try:
                    message = await connection.get_message()
                except ConnectionClosed:
                    break
                await self._read(message, send)
        finally:
            send.close()
            self.conn._fail_calls()
            # Shielded, so that disconnect handlers can clean up while the
            # server shuts down, but bounded: a slow one must not hold it up.
            with trio.CancelScope(shield=True, deadline=trio.current_time() + self.app.disconnect_grace) as grace:
                for namespace in list(self.conn._namespaces):
                    await self.disconnect_namespace(namespace)
            if grace.cancelled_caught:
                logger.warning(
                    "connection %s: disconnect handlers cancelled after disconnect_grace=%s s",
                    self.conn.id,
                    self.app.disconnect_grace,
                )

    async def _read(self, message: str | bytes, queue: trio.MemorySendChannel[Envelope]) -> None:
        try:
            envelope = parse_envelope(message)
        except EnvelopeError as err:
            await self._answer_error(err.error_type, str(err), err.call_id)
            return
        if envelope.type == "ack":
            self.conn._answered(envelope)
            return
        with trio.move_on_after(self.app.flood_timeout):
            # Waits while the queue is full (backpressure); a broken channel
            # means the workers are gone because the connection is ending.
            with contextlib.suppress(trio.BrokenResourceError):
                await queue.send(envelope)
            return
        await self._answer_error(
            "TooManyRequests",
            f"more than {self.app.max_in_flight} requests waiting for {self.app.flood_timeout} s",
            envelope.id,
        )

    async def _worker(self, queue: trio.MemoryReceiveChannel[Envelope]) -> None:
        async with queue:
            async for envelope in queue:
                await self._handle(envelope)

    async def _handle(self, envelope: Envelope) -> None:
        if envelope.type == "event":
            await self._run_handler(envelope)
        elif envelope.type == "connect":
            await self._connect_namespace(envelope.namespace, envelope.data, reply=True)
        elif envelope.type == "disconnect":
            await self.disconnect_namespace(envelope.namespace)
        else:
            await self._answer_error("BadEnvelope", f"clients do not send {envelope.type!r}", envelope.id)

    async def _run_handler(self, envelope: Envelope) -> None:
        assert envelope.event is not None
        namespace, event, call_id = envelope.namespace, envelope.event, envelope.id
        if namespace not in self.conn._namespaces:
            await self._answer_error("NotConnected", f"namespace {namespace!r} is not connected", call_id)
            return
        handler = self.app._handler(namespace, event)
        if handler is None:
            await self._answer_error("UnknownEvent", f"no handler for {event!r} in {namespace!r}", call_id)
            return
        if not self.conn.acl(namespace).allows(event):
            logger.warning("connection %s: event %r denied in %r", self.conn.id, event, namespace)
            await self._answer_error("Forbidden", f"event {event!r} is not allowed", call_id)
            return
        if handler.data_type is not None and not _matches(envelope.data, handler.data_type):
            await self._answer_error(
                "TypeError",
                f"{event!r} expects {handler.data_type.__name__}, got {type(envelope.data).__name__}",
                call_id,
            )
            return
        try:
            result = await handler.function(self.conn, envelope.data)
        except ConnectionClosed:
            return
        except EventError as err:
            await self._answer_error(err.error_type, err.message, call_id)
            return
        except Exception as err:
            await self._handler_failed(handler, namespace, event, envelope.data, err, call_id)
            return
        if call_id is not None:
            try:
                text = ack_envelope(call_id, result)
            except (TypeError, ValueError) as err:
                logger.error("handler of %r returned a value JSON cannot encode: %s", event, err)
                await self._answer_error("InternalError", "the answer could not be encoded", call_id)
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
        shown = _redact(data, handler.sensitive_arguments)
        if isinstance(error, handler.expected_exceptions):
            logger.info("handler of %r raised expected %r (data=%r)", event, error, shown)
            await self._answer_error(type(error).__name__, str(error), call_id)
            return
        logger.error("handler of %r in %r failed (data=%r)", event, namespace, shown, exc_info=error)
        await self.app._run_error_hooks(self.conn, namespace, event, error)
        if self.app.debug:
            await self._answer_error(type(error).__name__, str(error), call_id)
        else:
            await self._answer_error("InternalError", "the handler failed", call_id)

    async def _connect_namespace(self, namespace: str, data: Any, *, reply: bool) -> bool:
        if namespace in self.conn._namespaces:
            if reply:
                await self._send(encode({"type": "connected", "namespace": namespace}))
            return True
        if not self.app._has_namespace(namespace):
            if reply:
                await self._send(
                    encode(
                        {
                            "type": "connect_error",
                            "namespace": namespace,
                            "error": {"type": "UnknownNamespace", "message": f"no namespace {namespace!r}"},
                        }
                    )
                )
            return False
        try:
            accepted = await self.app._on_connect(namespace, self.conn, data)
            refusal = {"type": "Refused", "message": "connection refused"}
        except EventError as err:
            accepted, refusal = False, {"type": err.error_type, "message": err.message}
        if accepted is False:
            if reply:
                await self._send(encode({"type": "connect_error", "namespace": namespace, "error": refusal}))
            return False
        self.conn._namespaces.add(namespace)
        await self.conn.websocket.join_room(namespace_room(namespace))
        if reply:
            await self._send(encode({"type": "connected", "namespace": namespace}))
        return True

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
            await self.app._on_disconnect(namespace, conn)
        except Exception:
            logger.exception("disconnect handler of %r failed", namespace)
        finally:
            # Also when the handler raised or was cancelled: a connection out of
            # a namespace must not keep receiving what is sent to its rooms.
            await self._leave_rooms(namespace)
        if notify:
            await self._send(encode({"type": "disconnect", "namespace": namespace}))

    async def _leave_rooms(self, namespace: str) -> None:
        hub = self.app.hub
        rooms = [hub_room(namespace, room) for room in self.conn.rooms(namespace)] + [namespace_room(namespace)]
        for room in rooms:
            # The member is gone once the connection has closed (the hub
            # removed it from every room): nothing left to leave.
            if hub.member(self.conn.id) is None:
                return
            await hub.leave(self.conn.id, room)

    async def _answer_error(self, error_type: str, message: str, call_id: int | None) -> None:
        await self._send(error_envelope(error_type, message, call_id))

    async def _send(self, text: str) -> None:
        with contextlib.suppress(ConnectionClosed):
            await self.conn.send_envelope(text)


def _matches(value: Any, expected: type) -> bool:
    """JSON-aware isinstance: an integer is a float, a boolean is not a number."""
    if expected is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if expected is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, expected)


def _redact(data: Any, sensitive: tuple[str, ...]) -> Any:
    if not sensitive:
        return data
    if isinstance(data, dict):
        return {key: (_REDACTED if key in sensitive else value) for key, value in data.items()}
    return _REDACTED
