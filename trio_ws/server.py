"""WebSocket servers: :func:`serve_websocket`, :class:`WebSocketServer`, :func:`wrap_server_stream`.

Each accepted transport is served by one task (in ``handler_nursery`` if
given, else in the server's own nursery): it reads the request within
``connect_timeout``, applies the ``origins`` policy and the
``process_request`` hook, then runs the user's handler. In the server's own
nursery, the connection's reader and keepalive tasks run next to that task,
not in a nursery of their own: a nursery per connection (its cancel scope,
status and task set) would be held by every idle connection. They end once
the connection's transport is closed. In a caller's ``handler_nursery`` a
connection keeps one task (as in trio-websocket), with its reader and
keepalive in a nursery of that task. Whatever the handler does — return,
raise, or get cancelled — the connection is closed (1000, 1011 or 1001)
before that task ends, and no exception escapes to the server.
"""

from __future__ import annotations

import contextlib
import errno
import os
import socket as stdlib_socket
import ssl
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any

import trio

from .close import GOING_AWAY, INTERNAL_ERROR, NORMAL_CLOSURE
from .connection import CANCELLED_CLOSE_GRACE, WebSocketConnection, close_transport
from .endpoint import Endpoint
from .errors import ConnectionClosed
from .log import ConnectionLogger, next_connection_id, server_logger
from .options import ConnectionOptions, document_options, seconds_or_inf
from .request import WebSocketRequest, read_request
from .scopes import is_cancellation

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from .options import ConnectionOptionsDict

__all__ = [
    "Handler",
    "ProcessRequest",
    "WebSocketServer",
    "serve_websocket",
    "serve_websocket_unix",
    "wrap_server_stream",
]

#: A server handler: called with each request, it accepts or rejects it.
Handler = Callable[[WebSocketRequest], Awaitable[None]]
#: A hook called with each request before the handler; it may answer it.
ProcessRequest = Callable[[WebSocketRequest], Awaitable[None]]

#: accept() errors that mean "out of descriptors or memory": retried after a pause.
_ACCEPT_CAPACITY_ERRNOS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOMEM, errno.ENOBUFS})
_ACCEPT_RETRY_DELAY = 0.1

_SERVER_OPTION_DOCS = (
    (
        "origins",
        "the allowed values of the Origin header (include None to allow requests "
        "without one); other requests are refused with 403. None (default) allows all.",
    ),
    (
        "process_request",
        "an async function called with each request (plain HTTP requests too) before "
        "the handler; if it calls ``request.reject(...)`` the handler is not run. Use it "
        "for authentication or a health check. An exception in it answers 500.",
    ),
)


@document_options(*_SERVER_OPTION_DOCS)
class WebSocketServer:
    """A WebSocket server over one or more :class:`trio.abc.Listener`.

    Args:
        handler: ``async def handler(request)`` run for each WebSocket request.
        listeners: the listeners to accept transports from (for example from
            :func:`trio.open_tcp_listeners` or :func:`trio.open_ssl_over_tcp_listeners`).
        handler_nursery: a nursery to run connection tasks in; by default the
            server's own, so that cancelling :meth:`run` ends every connection.
    """

    def __init__(
        self,
        handler: Handler,
        listeners: Sequence[trio.abc.Listener[Any]],
        *,
        handler_nursery: trio.Nursery | None = None,
        origins: Sequence[str | None] | None = None,
        process_request: ProcessRequest | None = None,
        **options: Unpack[ConnectionOptionsDict],
    ) -> None:
        if not listeners:
            raise ValueError("WebSocketServer needs at least one listener")
        self._handler = handler
        self._listeners = list(listeners)
        self._handler_nursery = handler_nursery
        self._origins = None if origins is None else frozenset(origins)
        self._process_request = process_request
        self._options = ConnectionOptions.from_kwargs(**options)
        self._connections: set[WebSocketConnection] = set()
        #: Where connections' tasks run (set by run()): handler_nursery, or the server's own.
        self._task_nursery: trio.Nursery | None = handler_nursery
        # Read once: a listener's socket may be closed later.
        self._listener_info = [_describe_listener(listener) for listener in self._listeners]

    @property
    def listeners(self) -> list[Endpoint | str]:
        """What this server listens on, as trio-websocket describes it.

        An :class:`Endpoint` for each TCP (or TLS over TCP) listener, the path
        for a Unix socket listener and the ``repr()`` of any other listener.
        """
        return list(self._listener_info)

    @property
    def port(self) -> int:
        """The TCP port the server listens on (useful after binding port 0).

        Raises:
            RuntimeError: when the listeners are not all TCP listeners on one
                port (a Unix socket or other listener, or several ports).
        """
        ports = {info.port for info in self._listener_info if isinstance(info, Endpoint)}
        if len(ports) == 1 and all(isinstance(info, Endpoint) for info in self._listener_info):
            return ports.pop()
        if not ports:
            raise RuntimeError(f"this server has no TCP port: it listens on {self._listener_info}")
        raise RuntimeError(
            f"this server has {len(self._listener_info)} listeners and no single TCP port: {self._listener_info}"
        )

    @property
    def connections(self) -> frozenset[WebSocketConnection]:
        """The connections currently open on this server."""
        return frozenset(self._connections)

    @property
    def options(self) -> ConnectionOptions:
        """The validated connection options."""
        return self._options

    async def run(self, *, task_status: trio.TaskStatus[WebSocketServer] = trio.TASK_STATUS_IGNORED) -> None:
        """Serve until cancelled; ``task_status.started(self)`` once listening.

        Cancelling closes every open connection with 1001 (Going Away), each
        within ``disconnect_timeout``, before this returns. Not re-entrant.

        Raises:
            OSError: a listener's ``accept()`` failed with an error other than
                running out of descriptors or memory (those are logged and
                retried). The server stops as if cancelled, then raises it,
                never wrapped in an exception group.
        """
        failures: list[OSError] = []
        async with trio.open_nursery() as nursery:
            handler_nursery = nursery if self._handler_nursery is None else self._handler_nursery
            self._task_nursery = handler_nursery
            for listener in self._listeners:
                nursery.start_soon(self._accept_loop, listener, handler_nursery, failures, nursery.cancel_scope)
            # The listeners already queue connections: a client may connect now.
            task_status.started(self)
        if failures:
            raise failures[0]

    async def _accept_loop(
        self,
        listener: trio.abc.Listener[Any],
        handler_nursery: trio.Nursery,
        failures: list[OSError],
        server_scope: trio.CancelScope,
    ) -> None:
        """Accept transports from ``listener`` and serve each in its own task, until cancelled.

        What :func:`trio.serve_listeners` does, without its wrapper task
        around each connection: that wrapper's frame stayed on every idle
        connection's stack, and its ``aclose_forcefully`` raised and caught
        a ``Cancelled`` per connection. :meth:`_serve_transport` closes its
        transport itself.
        """
        async with listener:
            while True:
                try:
                    stream = await listener.accept()
                except OSError as exc:
                    if exc.errno not in _ACCEPT_CAPACITY_ERRNOS:
                        # Stop the whole server; run() raises this, unwrapped.
                        failures.append(exc)
                        server_scope.cancel()
                        return
                    # Out of descriptors or memory: wait for connections to
                    # end instead of failing the server (trio's policy too).
                    server_logger.error(
                        "accept returned %s (%s); retrying in %s seconds",
                        errno.errorcode[exc.errno],
                        os.strerror(exc.errno),
                        _ACCEPT_RETRY_DELAY,
                        exc_info=True,
                    )
                    await trio.sleep(_ACCEPT_RETRY_DELAY)
                else:
                    handler_nursery.start_soon(self._serve_transport, stream)

    async def _serve_transport(self, stream: trio.abc.Stream) -> None:
        """Serve one accepted transport from the handshake to the last byte.

        While the handler runs, this task's stack is this frame and
        :meth:`_run_handler`'s: every frame of an idle connection's task is
        memory held for as long as the connection lives.
        """
        logger = ConnectionLogger(server_logger, next_connection_id())
        request: WebSocketRequest | None = None
        try:
            options = self._options
            with trio.move_on_after(seconds_or_inf(options.connect_timeout)):
                request = await read_request(stream, options, logger)
            if request is None:
                await trio.aclose_forcefully(stream)
                return
            if request.is_websocket and self._origins is not None and request.origin not in self._origins:
                logger.info("refused origin %r", request.origin)
                await request.reject(403, body=b"origin not allowed")
                return
            if self._handler_nursery is None:
                # The connection's tasks go next to this one (see the module's docstring).
                assert self._task_nursery is not None
                request._bind(self._task_nursery, self._connections.add)
                if await self._preflight(request, logger):
                    await self._run_handler(request, logger)
            else:
                # A caller's handler_nursery holds one task per connection, as
                # trio-websocket's does (its tests count them).
                async with trio.open_nursery() as nursery:
                    request._bind(nursery, self._connections.add)
                    if await self._preflight(request, logger):
                        await self._run_handler(request, logger)
        except Exception:  # a bug of ours: log it, never crash the server
            logger.exception("unexpected error while serving a connection")
        finally:
            if request is not None and request.connection is not None:
                self._connections.discard(request.connection)
            await close_transport(stream)

    async def _preflight(self, request: WebSocketRequest, logger: ConnectionLogger) -> bool:
        """Run the hook and answer what the handler must not see; True if the handler runs."""
        if self._process_request is not None:
            try:
                await self._process_request(request)
            except Exception:
                logger.exception("process_request raised")
                if not request.answered:
                    await request.reject(500, body=b"internal server error")
                return False
            if request.answered:
                return False
        if not request.is_websocket:
            await request.reject_invalid()
            return False
        return True

    async def _run_handler(self, request: WebSocketRequest, logger: ConnectionLogger) -> None:
        try:
            await self._handler(request)
        except trio.Cancelled:
            await _close_when_cancelled(request, self._options.disconnect_timeout, logger)
            raise
        except ConnectionClosed as exc:
            # The peer closed while the handler was talking to it: a normal end.
            logger.debug("handler ended by a closed connection: %s", exc)
            await _close_after_handler(request, NORMAL_CLOSURE, None, logger)
            return
        except BaseException as exc:
            if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                raise
            if is_cancellation(exc):  # a group of Cancelled from the handler's own nurseries
                await _close_when_cancelled(request, self._options.disconnect_timeout, logger)
                raise
            logger.error("handler raised an exception", exc_info=exc)
            await _close_after_handler(request, INTERNAL_ERROR, "internal error", logger)
            return
        await _close_after_handler(request, NORMAL_CLOSURE, None, logger)


async def _close_when_cancelled(request: WebSocketRequest, limit: float | None, logger: ConnectionLogger) -> None:
    """The server is shutting down: close with 1001 (or answer 503), shielded but bounded.

    The bound is ``limit`` (the server's ``disconnect_timeout``), or
    ``CANCELLED_CLOSE_GRACE`` when it is None, so a peer that never answers
    cannot hold the shutdown forever.
    """
    connection = request.connection
    if connection is not None:
        await connection.aclose_shielded(GOING_AWAY, "server shutting down")
        return
    with trio.CancelScope(shield=True), trio.move_on_after(CANCELLED_CLOSE_GRACE if limit is None else limit):
        await _close_after_handler(request, GOING_AWAY, "server shutting down", logger)


async def _close_after_handler(
    request: WebSocketRequest, code: int, reason: str | None, logger: ConnectionLogger
) -> None:
    """After the handler: close its connection, or answer a request it left unanswered."""
    connection = request.connection
    if connection is not None:
        await connection.aclose(code, reason)
    elif not request.answered:
        status = 500 if code == INTERNAL_ERROR else 403
        if code == GOING_AWAY:
            status = 503
        logger.info("handler returned without accepting or rejecting; answering %d", status)
        await request.reject(status)


def _describe_listener(listener: trio.abc.Listener[Any]) -> Endpoint | str:
    """An Endpoint for a TCP listener, the path of a Unix one, else its repr()."""
    inner: Any = listener
    is_ssl = isinstance(inner, trio.SSLListener)
    if is_ssl:
        inner = inner.transport_listener
    sock = getattr(inner, "socket", None)
    if sock is None:
        return repr(listener)
    if sock.family in (stdlib_socket.AF_INET, stdlib_socket.AF_INET6):
        address = sock.getsockname()
        return Endpoint(address[0], address[1], is_ssl)
    name = sock.getsockname()
    return name if isinstance(name, str) else bytes(name).decode(errors="replace")


@document_options(*_SERVER_OPTION_DOCS)
async def serve_websocket(
    handler: Handler,
    host: str | bytes | None,
    port: int,
    ssl_context: ssl.SSLContext | None,
    *,
    handler_nursery: trio.Nursery | None = None,
    origins: Sequence[str | None] | None = None,
    process_request: ProcessRequest | None = None,
    task_status: trio.TaskStatus[WebSocketServer] = trio.TASK_STATUS_IGNORED,
    **options: Unpack[ConnectionOptionsDict],
) -> None:
    """Listen on ``host:port`` and serve WebSocket connections until cancelled.

    Use ``server = await nursery.start(serve_websocket, handler, host, port,
    None)`` to get the :class:`WebSocketServer` once it listens (its ``port``
    tells the bound port when you pass 0).

    Args:
        handler: ``async def handler(request)`` run for each request; it calls
            ``request.accept()`` or ``request.reject(...)``. When it returns the
            connection is closed with 1000; when it raises, with 1011 (and the
            error is logged); the server carries on either way.
        host: the address to bind, or None for all interfaces.
        port: the TCP port, 0 for any free port.
        ssl_context: a server TLS context for ``wss://``, or None.
        handler_nursery: run connection tasks there instead of in the server's
            own nursery.
        task_status: given by ``nursery.start``.

    Raises:
        OSError: when the address cannot be bound.

    Cancelling stops the server and closes every connection with 1001.
    """
    if ssl_context is None:
        listeners: list[Any] = await trio.open_tcp_listeners(port, host=host)
    else:
        listeners = await trio.open_ssl_over_tcp_listeners(port, ssl_context, host=host, https_compatible=True)
    server = WebSocketServer(
        handler,
        listeners,
        handler_nursery=handler_nursery,
        origins=origins,
        process_request=process_request,
        **options,
    )
    await server.run(task_status=task_status)


@document_options(*_SERVER_OPTION_DOCS)
async def serve_websocket_unix(
    handler: Handler,
    path: str,
    *,
    handler_nursery: trio.Nursery | None = None,
    origins: Sequence[str | None] | None = None,
    process_request: ProcessRequest | None = None,
    task_status: trio.TaskStatus[WebSocketServer] = trio.TASK_STATUS_IGNORED,
    **options: Unpack[ConnectionOptionsDict],
) -> None:
    """Serve WebSocket connections on a Unix domain socket at ``path``.

    Like :func:`serve_websocket`; the socket file is created (an existing
    file at ``path`` is an error) and removed when the server stops.

    Raises:
        OSError: when the socket cannot be created.
    """
    sock = trio.socket.socket(stdlib_socket.AF_UNIX, stdlib_socket.SOCK_STREAM)
    try:
        await sock.bind(path)
        sock.listen(128)
    except BaseException:
        sock.close()
        raise
    try:
        server = WebSocketServer(
            handler,
            [trio.SocketListener(sock)],
            handler_nursery=handler_nursery,
            origins=origins,
            process_request=process_request,
            **options,
        )
        await server.run(task_status=task_status)
    finally:
        sock.close()
        with contextlib.suppress(OSError):
            os.unlink(path)


@document_options()
async def wrap_server_stream(
    nursery: trio.Nursery,
    stream: trio.abc.Stream,
    **options: Unpack[ConnectionOptionsDict],
) -> WebSocketRequest:
    """Read an opening handshake from ``stream`` and return the request.

    The accepted connection's background tasks run in ``nursery``.

    Args:
        nursery: where the connection's reader and keepalive tasks run.
        stream: a transport that already carries the client's request.

    Returns:
        the request; accept or reject it.

    Raises:
        HandshakeError: when the request is malformed, over a limit or the
            client went away (a 4xx answer has been sent and the stream closed).
        ConnectionTimeout: when the request did not arrive within ``connect_timeout``.
    """
    from .errors import ConnectionTimeout, HandshakeError

    parsed_options = ConnectionOptions.from_kwargs(**options)
    logger = ConnectionLogger(server_logger, next_connection_id())
    request: WebSocketRequest | None = None
    with trio.move_on_after(seconds_or_inf(parsed_options.connect_timeout)) as scope:
        request = await read_request(stream, parsed_options, logger)
    if scope.cancelled_caught:
        await trio.aclose_forcefully(stream)
        raise ConnectionTimeout(f"no complete request within {parsed_options.connect_timeout} s")
    if request is None:
        raise HandshakeError("the client sent an invalid request or went away")
    request._bind(nursery)
    return request
