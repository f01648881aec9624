"""The application: routes, event handlers and namespaces, static files, serving.

An :class:`App` is a trio_ws server handler (``serve_websocket(app, ...)``
works) with a ``process_request`` hook (:meth:`App.process_request`) that
answers during the handshake: 404 for a path no route matches, 403 for a
route's disallowed origin, 400 when a route requires subprotocols the client
does not offer, and plain-HTTP GETs for static files and the bundled browser
client. :meth:`App.serve` wires all of it with the core's options.
"""

from __future__ import annotations

import logging
import os
import ssl
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import trio

from ..close import INTERNAL_ERROR
from ..errors import ConnectionClosed
from ..hub import DeliveryReport, Hub, MessageVariants
from ..request import WebSocketRequest
from ..scopes import background_tasks
from ..server import WebSocketServer, serve_websocket
from .endpoint import WebSocketHandler
from .envelope import DEFAULT_NAMESPACE, event_envelope
from .handlers import ErrorHook, HandlerFunction
from .namespaces import Namespace, hub_room, is_connection_id, namespace_room
from .publishing import WorkerPublishing, logged_event
from .registry import CATCH_ALL as CATCH_ALL  # re-exported: it was defined here
from .registry import HandlerRegistry
from .resume import stream_event
from .routing import Router
from .session import EventSession, SessionSettings
from .socketio import (
    SOCKETIO,
    SocketIOSettings,
    event_variants,
    positioned_variants,
    serve_socketio,
)
from .socketio_link import EngineLink
from .socketio_mount import SocketIOMount
from .socketio_recovery import RecoveryLog, personal_room
from .socketio_recovery_redis import StreamedRecovery
from .static import CLIENT_SCRIPT as CLIENT_SCRIPT  # re-exported: it was defined here
from .static import StaticFiles, client_script
from .websocket import DecodeError, WebSocket

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from ..options import ConnectionOptionsDict

__all__ = ["App", "Route", "FunctionHandler"]

logger = logging.getLogger("trio_ws.app")

FunctionHandler = Callable[[WebSocket], Awaitable[None]]
Handler = FunctionHandler | type[WebSocketHandler]
_H = TypeVar("_H", bound=Handler)
_F = TypeVar("_F", bound=HandlerFunction)


@dataclass(frozen=True)
class Route:
    """A WebSocket route: its handler and per-route policies."""

    handler: Handler | None
    subprotocols: tuple[str, ...] = ()
    origins: frozenset[str | None] | None = None
    events: bool = False
    wire_format: str | None = None


class App(SocketIOMount, WorkerPublishing):
    """A WebSocket application.

    Args:
        hub: the hub for rooms and emits (default: a new in-memory Hub; give
            one with a Redis backend to span processes).
        events_path: where the event endpoint is mounted once an event handler
            or namespace is registered (default ``"/ws"``); None to mount it
            yourself with :meth:`add_event_route`.
        max_concurrency: how many events of one connection may be handled at
            once; 1 (default) handles them strictly in arrival order.
        max_in_flight: how many received events may wait for a handler
            (default 32). When the queue is full the connection stops reading
            (backpressure reaches the client through TCP); an event that still
            finds it full after ``flood_timeout`` seconds is answered with a
            ``TooManyRequests`` error.
        flood_timeout: see ``max_in_flight`` (default 5 seconds).
        client_script_path: where the bundled browser client is served
            (default ``"/trio_ws.js"``; None to not serve it).
        debug: send unexpected handler exceptions' type and message to clients
            (default False: they get ``InternalError``).
        disconnect_grace: how many seconds the disconnect handlers of a
            closed connection may run (default 5). They run shielded from the
            server's shutdown so that they can clean up; after this grace
            period they are cancelled (and a warning logged), so that a slow
            handler cannot hold up the server's shutdown.
    """

    def __init__(
        self,
        *,
        hub: Hub | None = None,
        events_path: str | None = "/ws",
        max_concurrency: int = 1,
        max_in_flight: int = 32,
        flood_timeout: float = 5.0,
        client_script_path: str | None = "/" + CLIENT_SCRIPT,
        debug: bool = False,
        disconnect_grace: float = 5.0,
    ) -> None:
        if max_concurrency < 1 or max_in_flight < 1:
            raise ValueError("max_concurrency and max_in_flight must be >= 1")
        if not disconnect_grace >= 0:
            raise ValueError(f"disconnect_grace must be a number of seconds >= 0, not {disconnect_grace!r}")
        self.hub = hub or Hub()
        self.events_path = events_path
        self.max_concurrency = max_concurrency
        self.max_in_flight = max_in_flight
        self.flood_timeout = flood_timeout
        self.client_script_path = client_script_path
        self.debug = debug
        self.disconnect_grace = disconnect_grace
        self._router: Router[Route] = Router()
        self._events_mounted = False
        #: The event handlers, namespaces and hooks registered with this app.
        self.registry = HandlerRegistry()
        self._static = StaticFiles()
        self.server: WebSocketServer | None = None
        #: How Socket.IO clients are served, once :meth:`enable_socketio` was called (else None).
        self.socketio: SocketIOSettings | None = None
        self._engine_links: dict[str, EngineLink] = {}
        self._recovery: RecoveryLog | StreamedRecovery | None = None

    # -- routes ------------------------------------------------------------------
    def add_route(
        self,
        path: str,
        handler: Handler,
        *,
        subprotocols: Sequence[str] = (),
        origins: Iterable[str | None] | None = None,
    ) -> None:
        """Route ``path`` to a function handler or a :class:`WebSocketHandler` subclass.

        Args:
            path: a pattern such as ``/chat/{room}`` or ``/item/{id:int}``.
            handler: ``async def handler(ws)`` or an endpoint class.
            subprotocols: the subprotocols this route speaks, in order of
                preference; when given, a client must offer one of them (else
                400), and accept() picks the first of them the client offered.
            origins: allowed Origin values (None in the list allows none sent);
                others get 403. None (default) allows all.

        Raises:
            ValueError: for an invalid or duplicate pattern.
            TypeError: when ``handler`` is a class but not a WebSocketHandler.
        """
        if isinstance(handler, type) and not issubclass(handler, WebSocketHandler):
            raise TypeError(f"a handler class must subclass WebSocketHandler: {handler!r}")
        self._router.add(path, Route(handler, tuple(subprotocols), _origins(origins)))

    def websocket(
        self, path: str, *, subprotocols: Sequence[str] = (), origins: Iterable[str | None] | None = None
    ) -> Callable[[_H], _H]:
        """Decorator form of :meth:`add_route`."""

        def register(handler: _H) -> _H:
            self.add_route(path, handler, subprotocols=subprotocols, origins=origins)
            return handler

        return register

    def add_event_route(
        self, path: str, *, subprotocols: Sequence[str] = (), origins: Iterable[str | None] | None = None
    ) -> None:
        """Mount the event endpoint (envelopes, namespaces, acks) at ``path``."""
        self._router.add(path, Route(None, tuple(subprotocols), _origins(origins), events=True))
        self._events_mounted = True

    def _mount_events(self) -> None:
        if not self._events_mounted and self.events_path is not None:
            self.add_event_route(self.events_path)

    def _mount_socketio(self, path: str) -> None:
        # No route-level origin check: the Engine.IO endpoint checks every request itself
        # (WebSocket handshakes too), so a refused origin always gets 403 with error code 4.
        self._router.add(path, Route(self._serve_socketio, wire_format=SOCKETIO))

    async def _serve_socketio(self, websocket: WebSocket) -> None:
        assert self.socketio is not None
        settings = self._session_settings()
        await serve_socketio(websocket, self.registry, settings, self.socketio, self._recovery, self._engine_links)

    # -- events ------------------------------------------------------------------
    def on(
        self,
        event: str,
        *,
        namespace: str = DEFAULT_NAMESPACE,
        expected_exceptions: Iterable[type[BaseException]] = (),
        sensitive_arguments: Iterable[str] = (),
    ) -> Callable[[_F], _F]:
        """Register ``async def handler(conn, data)`` for ``event``.

        ``"connect"`` and ``"disconnect"`` register the namespace's connect
        (``handler(conn, data)``; return False to refuse) and disconnect
        (``handler(conn)``) handlers. ``"*"`` registers the namespace's
        catch-all handler, ``handler(conn, event, data)``, which receives
        the events that have no handler of their own. The return value of
        other handlers answers events sent with an id.

        Args:
            event: the event name.
            namespace: the namespace (default ``"/"``).
            expected_exceptions: exceptions answered with their type and
                message and logged at INFO instead of ERROR.
            sensitive_arguments: keys of the data to redact in logs.
        """

        def register(function: _F) -> _F:
            self._mount_events()
            self.registry.add_handler(namespace, event, function, expected_exceptions, sensitive_arguments)
            return function

        return register

    def add_namespace(self, namespace: Namespace | type[Namespace]) -> Namespace:
        """Register a :class:`Namespace` (an instance, or a class to instantiate).

        Raises:
            ValueError: when a namespace of that name is already registered.
        """
        instance = namespace() if isinstance(namespace, type) else namespace
        self.registry.add_namespace(instance)
        self._mount_events()
        return instance

    def on_error(self, namespace: str = DEFAULT_NAMESPACE) -> Callable[[ErrorHook], ErrorHook]:
        """Register ``async def hook(conn, event, error)`` for unexpected errors in ``namespace``."""

        def register(hook: ErrorHook) -> ErrorHook:
            self.registry.set_error_hook(namespace, hook)
            return hook

        return register

    def on_error_default(self, hook: ErrorHook) -> ErrorHook:
        """Register the error hook of namespaces without their own."""
        self.registry.set_error_hook(None, hook)
        return hook

    # -- emitting ----------------------------------------------------------------
    async def emit(
        self,
        event: str,
        data: Any = None,
        *,
        to: str | None = None,
        exclude: str | Iterable[str] | None = None,
        namespace: str = DEFAULT_NAMESPACE,
    ) -> DeliveryReport | bool:
        """Send an event to a room, a connection, or every connection of a namespace.

        Works across processes when the hub has a backend. Never waits for a
        peer (see :meth:`Hub.broadcast`).

        Args:
            event: the event name.
            data: JSON-encodable data.
            to: a room of ``namespace``, or a connection id; None for all.
            exclude: connection id(s) to skip.
            namespace: the namespace.

        Returns:
            for a connection id (a local connection, or an id of the form
            connection ids have: 32 hexadecimal digits), whether it was
            queued or handed to the connection's process: False for an
            unknown or closed connection; else the hub's delivery report.

        Raises:
            TypeError: when ``data`` cannot be encoded as JSON.
            ValueError: with Socket.IO enabled, for an event name its clients
                reserve (``"connect"``, ``"disconnect"``...).

        With Socket.IO enabled (:meth:`enable_socketio`), the event is
        encoded once for envelope clients and once for Socket.IO clients; a
        tuple ``data`` reaches Socket.IO clients as several arguments, and
        ``data`` holding ``bytes`` reaches Socket.IO clients only (the
        envelope is JSON). With connection-state recovery
        (``max_disconnection_duration``), the event is also kept in the
        recovery log and its Socket.IO encoding ends with its offset.

        Concurrent calls are allowed, from any task; see
        :meth:`~trio_ws.Hub.broadcast` for cancellation.
        """
        recovery = self._recovery
        if isinstance(recovery, StreamedRecovery):
            frames, envelope = logged_event(event, data, namespace)
            return await recovery.emit(
                frames.message, frames.marker, envelope, to=to, exclude=exclude, namespace=namespace
            )
        if to is None:
            message = self._logged_message(event, data, namespace, namespace_room(namespace), exclude)
            return await self.hub.broadcast(namespace_room(namespace), message, exclude=exclude)
        if self.hub.member(to) is not None or is_connection_id(to):
            return await self.hub.unicast(to, self._logged_message(event, data, namespace, personal_room(to), exclude))
        message = self._logged_message(event, data, namespace, hub_room(namespace, to), exclude)
        if self.socketio is None:
            # In a room with history the envelope also carries the room, epoch and offset.
            return await self.hub.broadcast(
                hub_room(namespace, to), stream_event(event, data, namespace, to), exclude=exclude
            )
        assert isinstance(message, MessageVariants)
        if self.hub.process_id is not None:
            # With a backend, a room with history is streamed through it, and a
            # message builder cannot travel there: the variants go as they are
            # (envelope clients then get no room/epoch/offset in such rooms).
            return await self.hub.broadcast(hub_room(namespace, to), message, exclude=exclude)
        build = positioned_variants(message, stream_event(event, data, namespace, to))
        return await self.hub.broadcast(hub_room(namespace, to), build, exclude=exclude)

    def _logged_message(
        self, event: str, data: Any, namespace: str, room: str, exclude: str | Iterable[str] | None
    ) -> str | MessageVariants:
        """The event's message; with recovery, its Socket.IO variant ends with its offset and is logged."""
        log = self._recovery
        if not isinstance(log, RecoveryLog):
            return self.event_message(event, data, namespace=namespace)
        message = event_variants(event, data, namespace, log.next_offset())
        excluded = {exclude} if isinstance(exclude, str) else set(exclude or ())
        log.record(namespace, room, excluded, message, trio.current_time())
        return message

    def event_message(
        self, event: str, data: Any = None, *, namespace: str = DEFAULT_NAMESPACE
    ) -> str | MessageVariants:
        """The hub message of an event, encoded once per wire format this app serves.

        :meth:`publish` sends it from a process that serves no connections
        (through the Socket.IO recovery log when there is one, which this
        message alone bypasses); a :class:`~trio_ws.hub.HubClient` may also
        ``broadcast`` it to ``hub_room(namespace, room)`` or
        ``namespace_room(namespace)``, or ``unicast`` it to a connection id.
        Without Socket.IO it is the envelope text.

        Raises:
            TypeError, ValueError: as :meth:`emit`.
        """
        if self.socketio is None:
            return event_envelope(event, data, namespace)
        return event_variants(event, data, namespace)

    # -- static files --------------------------------------------------------------
    def static(self, prefix: str, directory: str | os.PathLike[str]) -> None:
        """Serve the files under ``directory`` at ``prefix`` to plain HTTP GETs.

        ``/`` maps to ``index.html``. Paths that leave the directory are refused.

        Raises:
            ValueError: when ``directory`` is not a directory.
        """
        self._static.mount(prefix, directory)

    def _static_file(self, path: str) -> tuple[bytes, str] | None:
        if self.client_script_path is not None and path == self.client_script_path:
            return client_script()
        return self._static.find(path)

    # -- serving -----------------------------------------------------------------
    async def process_request(self, request: WebSocketRequest) -> None:
        """The handshake-time policy (use as ``serve_websocket(..., process_request=...)``)."""
        path = request.path.partition("?")[0]
        if not request.is_websocket:
            if request.method in ("GET", "HEAD"):
                found = self._static_file(path)
                if found is not None:
                    body, kind = found
                    await request.reject(200, extra_headers=[("Content-Type", kind)], body=body)
                    return
            if self.socketio is not None and path == self.socketio.path:
                await self(request)  # Engine.IO long-polling, served by the Socket.IO route
                return
            if self._router.match(path) is None:
                await request.reject(404, body=b"not found")
            return  # a plain request to a WebSocket route: the server answers 426
        match = self._router.match(path)
        if match is None:
            await request.reject(404, body=f"no WebSocket route for {path}".encode())
            return
        route = match.target
        if route.origins is not None and request.origin not in route.origins:
            await request.reject(403, body=b"origin not allowed")
            return
        if route.subprotocols and not set(route.subprotocols) & set(request.proposed_subprotocols):
            offered = ", ".join(route.subprotocols)
            await request.reject(400, body=f"this route needs one of these subprotocols: {offered}".encode())

    async def __call__(self, request: WebSocketRequest) -> None:
        """Handle a request: route it and run its handler (a trio_ws server handler)."""
        path = request.path.partition("?")[0]
        match = self._router.match(path)
        if match is None:
            await request.reject(404, body=b"not found")
            return
        route = match.target
        scheme = "wss" if getattr(request.local, "is_ssl", False) else "ws"
        websocket = WebSocket(
            request,
            path_params=match.params,
            hub=self.hub,
            scheme=scheme,
            supported_subprotocols=route.subprotocols,
        )
        websocket.wire_format = route.wire_format
        await self._run(request, websocket, route)

    async def _run(self, request: WebSocketRequest, websocket: WebSocket, route: Route) -> None:
        async with background_tasks() as nursery:
            # A Socket.IO client joins the hub at its first CONNECT, under the
            # sid it gets back when its state is recovered (SocketIOSession).
            websocket.run_in(nursery, defer_hub=websocket.wire_format == SOCKETIO)
            try:
                handler = route.handler
                if handler is None:
                    await EventSession(self.registry, websocket, self._session_settings()).run()
                elif isinstance(handler, type):
                    await handler(websocket).run()
                else:
                    await handler(websocket)
            except ConnectionClosed:
                pass
            except DecodeError as err:
                if websocket.accepted:
                    await websocket.link.aclose(err.close_code, str(err))
            except Exception:
                logger.exception("handler of %s failed", websocket.url.path)
                if websocket.accepted:
                    await websocket.link.aclose(INTERNAL_ERROR, "internal error")
                elif not request.answered:
                    await websocket.reject(500)
            if websocket.accepted:
                # Also when a close is already under way (started by one of the
                # connection's own tasks): wait for it to finish before the
                # nursery below cancels those tasks. aclose() is idempotent.
                await websocket.link.aclose()

    def _session_settings(self) -> SessionSettings:
        return SessionSettings(
            hub=self.hub,
            max_concurrency=self.max_concurrency,
            max_in_flight=self.max_in_flight,
            flood_timeout=self.flood_timeout,
            debug=self.debug,
            disconnect_grace=self.disconnect_grace,
        )

    async def serve(
        self,
        host: str | None,
        port: int,
        *,
        ssl_context: ssl.SSLContext | None = None,
        task_status: trio.TaskStatus[WebSocketServer] = trio.TASK_STATUS_IGNORED,
        **options: Unpack[ConnectionOptionsDict],
    ) -> None:
        """Serve the app until cancelled (runs the hub's backend too, if any).

        ``task_status.started`` receives the :class:`~trio_ws.WebSocketServer`.
        Accepts every connection option of :func:`~trio_ws.serve_websocket`.

        Raises:
            OSError: when the address cannot be bound (for example, already
                in use): the error itself, never inside an ExceptionGroup.

        Cancelling stops the server and closes every connection with 1001.
        """
        if self.hub.process_id is not None and not self.hub._running:
            async with self.hub:
                await self._serve(host, port, ssl_context, task_status, options)
        else:
            await self._serve(host, port, ssl_context, task_status, options)

    async def _serve(
        self,
        host: str | None,
        port: int,
        ssl_context: ssl.SSLContext | None,
        task_status: trio.TaskStatus[WebSocketServer],
        options: ConnectionOptionsDict,
    ) -> None:
        # No nursery of our own here: an OSError from binding (address in
        # use) must reach the caller as itself, not inside an ExceptionGroup.
        await serve_websocket(
            self,
            host,
            port,
            ssl_context,
            process_request=self.process_request,
            task_status=_RecordServer(self, task_status),
            **options,
        )


class _RecordServer:
    """A task status that remembers the server on the app, then passes it on."""

    def __init__(self, app: App, task_status: trio.TaskStatus[WebSocketServer]) -> None:
        self._app = app
        self._task_status = task_status

    def started(self, value: WebSocketServer | None = None) -> None:
        assert value is not None
        self._app.server = value
        self._task_status.started(value)


def _origins(origins: Iterable[str | None] | None) -> frozenset[str | None] | None:
    return None if origins is None else frozenset(origins)

