"""A Python client of the event protocol over real sockets: :class:`EventClient`.

Theory of operation. ``async with EventClient(url) as client`` connects (the
first error of the URL is raised from ``async with``), then runs three kinds
of tasks in the client's own nursery until the block ends:

* a *supervisor*, which reads the current connection and, when it ends
  abnormally, opens the next one through :class:`~trio_ws.Connections` (the
  rules and backoff of :func:`~trio_ws.connect_forever`), joins the
  namespaces again and reports ``connect`` with ``recovered=False``;
* the connection's own reader and keepalive tasks;
* one *worker* that runs the handlers of received events and server calls,
  in arrival order.

The reader resolves answers (``ack``, ``connected``, ``connect_error``) at
once and queues everything else for the worker, so a handler may itself
``await client.call(...)``. A handler's exception, or a failure that ends the
client for good (a close that is not retried, a refused reconnection),
cancels the block and comes out of ``async with`` as itself.
"""

from __future__ import annotations

import contextlib
import inspect
import logging
import ssl
from collections.abc import Callable, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

import trio

from ..client import HeaderPairs
from ..close import ABNORMAL_CLOSURE, CloseReason
from ..connection import WebSocketConnection
from ..errors import ConnectionClosed
from ..options import ConnectionOptions
from ..proxy import ProxyArgument
from ..reconnect import Backoff, Connections
from ..scopes import background_tasks, is_cancellation
from .calls import CallError, CallTimeout
from .envelope import (
    DEFAULT_NAMESPACE,
    EnvelopeError,
    EventEnvelope,
    ack_envelope,
    connect_envelope,
    disconnect_envelope,
    error_envelope,
    event_envelope,
    parse_envelope,
)
from .handlers import EventError

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from ..options import ConnectionOptionsDict

__all__ = ["EventClient", "NamespaceRefused"]

logger = logging.getLogger("trio_ws.client")

Handler = Callable[[Any], Any]
_H = TypeVar("_H", bound=Handler)

#: How many received events may wait for the handlers before the client stops reading.
EVENT_QUEUE_SIZE = 64


class NamespaceRefused(CallError):
    """The server answered a namespace ``connect`` with ``connect_error``."""


@dataclass
class _Pending:
    connection: WebSocketConnection | None
    done: trio.Event = field(default_factory=trio.Event)
    data: Any = None
    error: dict[str, str] | None = None
    closed: bool = False


@dataclass(frozen=True)
class _Local:
    """A client-side event for the worker: ``connect`` or ``disconnect``."""

    event: str
    data: Any


class EventClient:
    """Talk to a trio_ws :class:`~trio_ws.App` event route from Python.

    Register handlers with :meth:`on` (before or inside the block), then use
    the client as an async context manager::

        client = EventClient("ws://localhost:8000/ws")

        @client.on("message")
        async def message(data):
            print(data)

        async with client:
            answer = await client.call("join", {"name": "bot", "room": "lobby"})

    Two client-side events are reported through the same handlers:
    ``connect`` after each reconnection (data ``{"recovered": False,
    "reconnects": N}``: rooms are not resumed, so messages sent while the
    client was away are missing) and ``disconnect`` when a connection ends
    (data ``{"code": ..., "reason": ...}``).

    Args:
        url: the ``ws://`` or ``wss://`` URL of the event route.
        ssl_context: the TLS context for ``wss://`` (default: a verifying one).
        reconnect: open a new connection when one ends abnormally (default
            True); with False the client stays disconnected.
        backoff: the delays between reconnection attempts (default ``Backoff()``).
        call_timeout: the default ``timeout`` of :meth:`call` and
            :meth:`connect_namespace`, in seconds.
        proxy: as for :func:`~trio_ws.open_websocket_url`.
        subprotocols: subprotocols to offer.
        extra_headers: more request headers (a cookie or a token, for example).
        options: connection options (see :data:`~trio_ws.options.OPTION_DOCS`).
    """

    def __init__(
        self,
        url: str,
        ssl_context: ssl.SSLContext | None = None,
        *,
        reconnect: bool = True,
        backoff: Backoff | None = None,
        call_timeout: float = 10.0,
        proxy: ProxyArgument = True,
        subprotocols: Sequence[str] | None = None,
        extra_headers: HeaderPairs | None = None,
        **options: Unpack[ConnectionOptionsDict],
    ) -> None:
        self.url = url
        self._ssl_context = ssl_context
        self._reconnect = reconnect
        self._backoff = backoff or Backoff()
        self._call_timeout = call_timeout
        self._proxy = proxy
        self._subprotocols = subprotocols
        self._extra_headers = extra_headers
        self._options = ConnectionOptions.from_kwargs(**options)
        self._handlers: dict[tuple[str, str], Handler] = {}
        self._calls: dict[int, _Pending] = {}
        self._joins: dict[str, _Pending] = {}
        self._namespaces: dict[str, Any] = {}  # joined namespace -> its connect data
        self._next_id = 0
        self._connection: WebSocketConnection | None = None
        self._connected = trio.Event()
        self._stack: AsyncExitStack | None = None
        self._nursery: trio.Nursery | None = None
        self._failure: BaseException | None = None
        self._closing = False
        self._queue_in, self._queue_out = trio.open_memory_channel[tuple[WebSocketConnection | None, Any]](
            EVENT_QUEUE_SIZE
        )
        #: How many times the client reconnected.
        self.reconnects = 0
        #: Whether the last reconnection resumed the rooms without loss
        #: (always False for now: nothing is resumed), None before any.
        self.recovered: bool | None = None

    # -- handlers ------------------------------------------------------------------
    def on(self, event: str, handler: _H | None = None, *, namespace: str = DEFAULT_NAMESPACE) -> Any:
        """Register ``handler(data)`` for ``event`` in ``namespace``; usable as a decorator.

        The handler may be a coroutine function or a plain function. For a
        server call (an event with an id), its return value is the answer;
        raising :class:`~trio_ws.EventError` answers with that error. Any
        other exception answers ``InternalError`` and then ends the client:
        it comes out of ``async with``.
        """

        def register(function: _H) -> _H:
            self._handlers[(namespace, event)] = function
            return function

        return register if handler is None else register(handler)

    # -- state -----------------------------------------------------------------------
    @property
    def connected(self) -> bool:
        """True while a connection is open."""
        return self._connection is not None and self._connection.closed is None

    @property
    def connection(self) -> WebSocketConnection | None:
        """The current (or last) connection."""
        return self._connection

    @property
    def namespaces(self) -> frozenset[str]:
        """The namespaces joined with :meth:`connect_namespace` (joined again after a reconnection)."""
        return frozenset(self._namespaces)

    async def wait_connected(self) -> None:
        """Wait until a connection is open (returns at once if one is)."""
        while not self.connected:
            await self._connected.wait()

    # -- the context manager ---------------------------------------------------------
    async def __aenter__(self) -> EventClient:
        """Connect, and start the supervisor and the handlers' worker.

        Raises:
            HandshakeError: when the first connection fails (its own error;
                see :func:`~trio_ws.connect_forever`).
            RuntimeError: when the client is entered twice.
        """
        if self._stack is not None:
            raise RuntimeError("an EventClient is entered once")
        self._stack = AsyncExitStack()
        nursery = await self._stack.enter_async_context(background_tasks())
        self._nursery = nursery
        try:
            connections = Connections(
                nursery,
                self.url,
                self._ssl_context,
                subprotocols=self._subprotocols,
                extra_headers=self._extra_headers,
                backoff=self._backoff,
                retry_first_attempt=False,
                proxy=self._proxy,
                options=self._options,
            )
            first = await connections.__anext__()
        except BaseException as error:
            await self._stack.__aexit__(type(error), error, error.__traceback__)
            raise
        self._use(first)
        nursery.start_soon(self._supervise, connections, first)
        nursery.start_soon(self._work)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool | None:
        """Close the connection (1000) and stop every task of the client.

        Raises:
            Exception: a handler's exception, or the error that ended the
                client (see the class description), in place of the
                cancellation it caused in the block.
        """
        assert self._stack is not None and self._nursery is not None
        self._closing = True
        current, self._connection = self._connection, None
        if current is not None:
            with trio.CancelScope(shield=True):
                await current.aclose()
        self._nursery.cancel_scope.cancel()
        try:
            suppressed = await self._stack.__aexit__(exc_type, exc, tb)
        except BaseException as raised:
            if self._failure is not None and is_cancellation(raised):
                raise self._failure from None
            raise
        if self._failure is not None and (exc is None or is_cancellation(exc)):
            # The block was cancelled by the failure (or ended before it noticed).
            raise self._failure from None
        return suppressed

    def _fail(self, error: BaseException) -> None:
        if self._failure is None:
            self._failure = error
        assert self._nursery is not None
        self._nursery.cancel_scope.cancel()

    # -- sending -----------------------------------------------------------------------
    def _current(self) -> WebSocketConnection:
        connection = self._connection
        if connection is None or connection.closed is not None:
            reason = connection.closed if connection is not None else None
            raise ConnectionClosed.for_reason(reason or CloseReason(ABNORMAL_CLOSURE, "not connected"))
        return connection

    async def emit(self, event: str, data: Any = None, *, namespace: str = DEFAULT_NAMESPACE) -> None:
        """Send an event.

        Raises:
            ConnectionClosed: when no connection is open (for example while
                reconnecting; see :meth:`wait_connected`).
            TypeError: when ``data`` cannot be encoded as JSON.

        Cancelling is safe; concurrent calls are allowed (each message is
        sent whole).
        """
        await self._current().send_message(event_envelope(event, data, namespace))

    async def call(
        self,
        event: str,
        data: Any = None,
        *,
        namespace: str = DEFAULT_NAMESPACE,
        timeout: float | None = None,  # noqa: ASYNC109 - the answer's deadline, as in the browser client
    ) -> Any:
        """Send an event and wait for the server's answer (the handler's return value).

        Args:
            event: the event name.
            data: any JSON value.
            namespace: the namespace of the event.
            timeout: seconds to wait for the answer (default: ``call_timeout``).

        Returns:
            the ``data`` of the server's ``ack``.

        Raises:
            CallTimeout: when no answer arrives within ``timeout``.
            CallError: when the server answers with an error (``error_type``
                and ``message``: ``UnknownEvent``, ``Forbidden``, an
                :class:`~trio_ws.EventError`'s type...).
            ConnectionClosed: when no connection is open, or the connection
                ends before the answer.

        Cancelling is safe (the call is forgotten); concurrent calls are allowed.
        """
        connection = self._current()
        self._next_id += 1
        call_id = self._next_id
        pending = self._calls[call_id] = _Pending(connection)
        wait = self._call_timeout if timeout is None else timeout
        try:
            await connection.send_message(event_envelope(event, data, namespace, call_id))
            with trio.move_on_after(wait) as scope:
                await pending.done.wait()
        finally:
            self._calls.pop(call_id, None)
        if scope.cancelled_caught:
            raise CallTimeout(f"no answer to {event!r} within {wait} s")
        return _outcome(pending, connection)

    async def connect_namespace(
        self,
        namespace: str,
        data: Any = None,
        *,
        timeout: float | None = None,  # noqa: ASYNC109 - the answer's deadline
    ) -> None:
        """Join ``namespace`` (``data`` goes to its ``on_connect``); it is joined again after a reconnection.

        Raises:
            NamespaceRefused: when the server answers ``connect_error`` (its
                ``error_type`` is ``UnknownNamespace``, ``Refused``, or the
                type of the :class:`~trio_ws.EventError` raised by ``on_connect``).
            CallTimeout: when no answer arrives within ``timeout`` (default ``call_timeout``).
            ConnectionClosed: when no connection is open or it ends first.

        Cancelling is safe; one join per namespace at a time.
        """
        connection = self._current()
        pending = self._joins[namespace] = _Pending(connection)
        wait = self._call_timeout if timeout is None else timeout
        try:
            await connection.send_message(connect_envelope(namespace, data))
            with trio.move_on_after(wait) as scope:
                await pending.done.wait()
        finally:
            self._joins.pop(namespace, None)
        if scope.cancelled_caught:
            raise CallTimeout(f"no answer to joining {namespace!r} within {wait} s")
        try:
            _outcome(pending, connection)
        except CallError as refused:
            raise NamespaceRefused(refused.error_type, refused.message) from None
        self._namespaces[namespace] = data

    async def leave_namespace(self, namespace: str) -> None:
        """Leave ``namespace`` (the server runs its ``on_disconnect``).

        Raises:
            ConnectionClosed: when no connection is open (the namespace is
                forgotten all the same).
        """
        self._namespaces.pop(namespace, None)
        await self._current().send_message(disconnect_envelope(namespace))

    # -- receiving -----------------------------------------------------------------------
    def _use(self, connection: WebSocketConnection) -> None:
        self._connection = connection
        self._connected.set()
        self._connected = trio.Event()

    async def _supervise(self, connections: Connections, connection: WebSocketConnection) -> None:
        try:
            while True:
                await self._read(connection)
                self._connection_lost(connection)
                if not self._reconnect:
                    return
                try:
                    connection = await connections.__anext__()
                except StopAsyncIteration:
                    return
                self._use(connection)
                self.reconnects += 1
                self.recovered = False
                for namespace, data in list(self._namespaces.items()):
                    with contextlib.suppress(ConnectionClosed):
                        await connection.send_message(connect_envelope(namespace, data))
                await self._queue_in.send(
                    (None, _Local("connect", {"recovered": False, "reconnects": self.reconnects}))
                )
        except Exception as error:  # a failure that ends the client: raised from `async with`
            self._fail(error)

    def _connection_lost(self, connection: WebSocketConnection) -> None:
        if self._closing:
            return
        for pending in (*self._calls.values(), *self._joins.values()):
            if pending.connection is connection:
                pending.closed = True
                pending.done.set()
        reason = connection.closed or CloseReason(ABNORMAL_CLOSURE, None)
        with contextlib.suppress(trio.WouldBlock):
            self._queue_in.send_nowait((None, _Local("disconnect", {"code": reason.code, "reason": reason.reason})))

    async def _read(self, connection: WebSocketConnection) -> None:
        while True:
            try:
                message = await connection.get_message()
            except ConnectionClosed:
                return
            try:
                envelope = parse_envelope(message)
            except EnvelopeError as err:
                logger.warning("ignored a message that is not an envelope: %s", err)
                continue
            if envelope.type == "ack":
                assert envelope.id is not None
                _resolve(self._calls.get(envelope.id), envelope)
            elif envelope.type in ("connected", "connect_error"):
                pending = self._joins.get(envelope.namespace)
                if pending is not None:
                    _resolve(pending, envelope)
                elif envelope.type == "connect_error":  # a join sent after a reconnection
                    self._namespaces.pop(envelope.namespace, None)
                    logger.warning("namespace %r refused after reconnecting: %s", envelope.namespace, envelope.error)
            elif envelope.type == "event":
                await self._queue_in.send((connection, envelope))
            elif envelope.type == "disconnect":
                self._namespaces.pop(envelope.namespace, None)
            else:
                logger.warning("the server reported an error: %s", envelope.error)

    async def _work(self) -> None:
        async for connection, item in self._queue_out:
            if isinstance(item, _Local):
                handler = self._handlers.get((DEFAULT_NAMESPACE, item.event))
                if handler is not None:
                    await self._run(handler, item.data, None, None)
            else:
                await self._dispatch(connection, item)

    async def _dispatch(self, connection: WebSocketConnection | None, envelope: EventEnvelope) -> None:
        assert envelope.event is not None
        handler = self._handlers.get((envelope.namespace, envelope.event))
        if handler is None:
            if envelope.id is not None:
                await _send(
                    connection, error_envelope("UnknownEvent", f"no handler for {envelope.event!r}", envelope.id)
                )
            return
        await self._run(handler, envelope.data, envelope.id, connection)

    async def _run(
        self, handler: Handler, data: Any, call_id: int | None, connection: WebSocketConnection | None
    ) -> None:
        try:
            result = handler(data)
            if inspect.isawaitable(result):
                result = await result
        except EventError as err:
            if call_id is not None:
                await _send(connection, error_envelope(err.error_type, err.message, call_id))
            return
        except Exception as err:
            if call_id is not None:
                await _send(connection, error_envelope("InternalError", "the handler failed", call_id))
            self._fail(err)
            return
        if call_id is not None:
            try:
                text = ack_envelope(call_id, result)
            except (TypeError, ValueError) as err:
                await _send(connection, error_envelope("InternalError", "the answer could not be encoded", call_id))
                self._fail(err)
                return
            await _send(connection, text)


def _resolve(pending: _Pending | None, envelope: EventEnvelope) -> None:
    if pending is None:
        logger.debug("answer to an unknown or expired request ignored")
        return
    pending.data = envelope.data
    pending.error = envelope.error
    pending.done.set()


def _outcome(pending: _Pending, connection: WebSocketConnection) -> Any:
    if pending.closed:
        raise ConnectionClosed.for_reason(connection.closed or CloseReason(ABNORMAL_CLOSURE, None))
    if pending.error is not None:
        raise CallError(pending.error.get("type", "Error"), pending.error.get("message", ""))
    return pending.data


async def _send(connection: WebSocketConnection | None, text: str) -> None:
    """Send an answer on the connection its question came on; a closed one drops it."""
    if connection is None:
        return
    with contextlib.suppress(ConnectionClosed):
        await connection.send_message(text)
