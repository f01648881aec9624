"""Socket.IO clients over Engine.IO (WebSocket and HTTP long-polling): a standalone server handler.

:class:`SocketIOServer` serves unmodified Socket.IO clients: Engine.IO v4
over WebSocket (``/socket.io/?EIO=4&transport=websocket``) and over HTTP
long-polling with the upgrade to WebSocket (the official clients' default),
and Socket.IO v5 above it: namespaces, events both ways, acks both ways,
binary attachments. It does not use :class:`~trio_ws.App` (the App
integration builds on it).

Each Engine.IO session is a :class:`~trio_ws.socketio.transport.EngineConnection`
(its owner task, clock and transports); this module adds the Socket.IO
layer: the sockets of its namespaces and the handlers they run, all in the
session owner's nursery, so nothing outlives the session.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import trio

from ..errors import RequestBodyError
from ..request import WebSocketRequest
from .engineio import encode_payload
from .errors import InvalidPacket, SessionClosed
from .packets import MAX_ATTACHMENTS, Packet, PacketDecoder, PacketType
from .packets import encode_packet as encode_sio
from .requests import (
    EngineQuery,
    EngineRequestError,
    check_request,
    cors_headers,
    origin_allowed,
    parse_target,
    preflight_headers,
)
from .session import EngineConfig, SessionEnded, SessionState, Transport, new_sid
from .transport import EngineConnection

__all__ = [
    "SocketIOServer",
    "Socket",
    "ConnectRefused",
    "EngineRequestError",
    "check_request",
    "RESERVED_EVENTS",
    "MAX_EARLY_PACKETS",
]

logger = logging.getLogger("trio_ws.socketio")

EventHandler = Callable[..., Awaitable[Any]]
ConnectHandler = Callable[["Socket", Any], Awaitable[None]]
DisconnectHandler = Callable[["Socket", str], Awaitable[None]]

#: Seconds a client has to connect to a namespace after the Engine.IO handshake (Socket.IO's default).
CONNECT_TIMEOUT = 45.0


class ConnectRefused(Exception):
    """Raise it from a connect handler to refuse the client.

    The client receives CONNECT_ERROR with ``{"message": message}`` (plus
    ``"data"`` when given), which the official client reports as a
    ``connect_error`` event.
    """

    def __init__(self, message: str = "Connection refused", data: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.data = data


#: Event names the official clients treat as their own: a packet from the
#: server that carries one is a protocol error for them.
RESERVED_EVENTS = frozenset(
    {"connect", "connect_error", "disconnect", "disconnecting", "newListener", "removeListener"}
)


def _check_event(event: Any) -> None:
    if not isinstance(event, str):
        raise ValueError(f"an event name is a string, not {event!r}")
    if event in RESERVED_EVENTS:
        raise ValueError(f"{event!r} is reserved by Socket.IO clients and cannot be emitted")


def _ack_args(result: Any) -> list[Any]:
    if result is None:
        return []
    if isinstance(result, tuple):
        return list(result)
    return [result]


#: Packets a client may send for a namespace while its connect handler runs
#: (held, then handled in order); more closes the session as bad input.
MAX_EARLY_PACKETS = 256


class Socket:
    """One client connected to one namespace.

    Attributes:
        sid: the Socket.IO id of this connection to the namespace.
        namespace: the namespace, ``"/"`` for the main one.
        auth: the ``auth`` payload the client sent with CONNECT (a dict, or None).
        engine_sid: the id of the Engine.IO session below it.
    """

    def __init__(self, connection: _Connection, namespace: str, auth: Any) -> None:
        self._connection = connection
        self.sid = new_sid()
        self.namespace = namespace
        self.auth = auth
        self.engine_sid = connection.session.sid
        self.connected = False
        # Packets for this namespace that arrived while its connect handler
        # ran: handled in order once it accepts, dropped if it refuses.
        self._early: list[Packet] | None = []
        self._ack_ids = itertools.count()
        self._pending: dict[int, trio.MemorySendChannel[list[Any]]] = {}

    async def emit(self, event: str, *args: Any) -> None:
        """Send ``event`` with ``args`` (JSON values and bytes) to the client.

        Raises:
            SessionClosed: the socket is disconnected.
            TypeError: an argument JSON cannot represent.
            ValueError: ``event`` is a name the Socket.IO clients reserve
                (:data:`RESERVED_EVENTS`), or not a string.

        Packets are queued in call order; cancelling is safe (a queued packet
        is still sent). Concurrent calls are allowed.
        """
        _check_event(event)
        self._send(Packet(PacketType.EVENT, self.namespace, [event, *args]))
        await self._connection.flush()

    async def call(self, event: str, *args: Any, timeout: float = 10.0) -> list[Any]:  # noqa: ASYNC109
        """Send ``event`` and wait for the client's acknowledgement.

        Returns:
            the arguments the client passed to its callback.

        Raises:
            SessionClosed: the socket is or becomes disconnected before the answer.
            TimeoutError: no answer within ``timeout`` seconds.
            TypeError, ValueError: as for :meth:`emit`.

        Cancelling is safe (a late answer is dropped). Concurrent calls are allowed.
        """
        _check_event(event)
        ack_id = next(self._ack_ids)
        send, receive = trio.open_memory_channel[list[Any]](1)
        self._send(Packet(PacketType.EVENT, self.namespace, [event, *args], ack_id))
        self._pending[ack_id] = send
        try:
            await self._connection.flush()
            with trio.move_on_after(timeout) as scope:
                try:
                    return await receive.receive()
                except trio.EndOfChannel:
                    raise SessionClosed(f"socket {self.sid} disconnected before answering {event!r}") from None
            assert scope.cancelled_caught
            raise TimeoutError(f"no acknowledgement of {event!r} within {timeout:g} s")
        finally:
            self._pending.pop(ack_id, None)

    async def disconnect(self) -> None:
        """Disconnect the client from this namespace: a DISCONNECT packet, then the disconnect handler.

        Idempotent; cancelling is safe.
        """
        if not self.connected:
            return
        self._send(Packet(PacketType.DISCONNECT, self.namespace))
        self._connection.detach(self, "server namespace disconnect")
        await self._connection.flush()

    def _send(self, packet: Packet) -> None:
        if not self.connected:
            raise SessionClosed(f"socket {self.sid} of namespace {self.namespace!r} is disconnected")
        self._connection.send_packet(packet)

    def _acknowledged(self, ack_id: int, args: list[Any]) -> bool:
        channel = self._pending.pop(ack_id, None)
        if channel is None:
            return False
        channel.send_nowait(args)
        return True

    def _close_pending(self) -> None:
        for channel in self._pending.values():
            channel.close()
        self._pending.clear()


class SocketIOServer:
    """Serve Socket.IO clients over WebSocket and HTTP long-polling.

    Serve it with :func:`~trio_ws.serve_websocket` as both the handler and
    the ``process_request`` hook, so that plain HTTP requests (long-polling,
    CORS preflight) reach it too::

        await serve_websocket(sio, host, port, None, process_request=sio.process_request)

    Args:
        path: the endpoint path (``"/socket.io/"``, the clients' default).
        config: Engine.IO settings (ping interval and timeout, max_payload).
        connect_timeout: seconds a client has to connect to a namespace.
        max_attachments: the most binary attachments one packet may announce.
        cors_allowed_origins: the allowed values of the ``Origin`` header, on
            both transports (include None to allow requests without one);
            others get 403 with Engine.IO error 4. None (default) allows all.
            Long-polling answers carry the CORS headers a browser needs:
            ``Access-Control-Allow-Origin`` echoing the origin, and
            ``Access-Control-Allow-Credentials: true`` for a listed origin only.

    Serve it with ``max_message_size`` at least ``config.max_payload`` so the
    WebSocket layer lets through what Engine.IO accepts; larger messages end
    the session.
    """

    def __init__(
        self,
        *,
        path: str = "/socket.io/",
        config: EngineConfig | None = None,
        connect_timeout: float = CONNECT_TIMEOUT,
        max_attachments: int = MAX_ATTACHMENTS,
        cors_allowed_origins: Sequence[str | None] | None = None,
    ) -> None:
        if not connect_timeout > 0:
            raise ValueError(f"connect_timeout must be > 0, not {connect_timeout!r}")
        self.path = path
        self.config = config or EngineConfig()
        self.connect_timeout = connect_timeout
        self.max_attachments = max_attachments
        self.cors_allowed_origins = None if cors_allowed_origins is None else frozenset(cors_allowed_origins)
        self._events: dict[tuple[str, str], EventHandler] = {}
        self._connect: dict[str, ConnectHandler | None] = {"/": None}
        self._disconnect: dict[str, DisconnectHandler] = {}
        self._sessions: dict[str, _Connection] = {}

    @property
    def session_count(self) -> int:
        """The number of Engine.IO sessions open now (on either transport)."""
        return len(self._sessions)

    def on(self, event: str, namespace: str = "/") -> Callable[[EventHandler], EventHandler]:
        """Register ``async def handler(socket, *args)`` for ``event`` in ``namespace``.

        Its return value answers a client that asked for an acknowledgement:
        None sends no arguments, a tuple several, anything else one. Events
        without a handler are ignored, as Socket.IO servers do.
        """

        def register(handler: EventHandler) -> EventHandler:
            self._events[(namespace, event)] = handler
            self._connect.setdefault(namespace, None)
            return handler

        return register

    def on_connect(self, namespace: str = "/") -> Callable[[ConnectHandler], ConnectHandler]:
        """Register ``async def handler(socket, auth)``, run before the client is connected.

        Raise :exc:`ConnectRefused` to refuse. Registering it (or any event
        handler) for a namespace makes the namespace exist; a client asking
        for any other gets CONNECT_ERROR ``Invalid namespace``. Packets the
        client sends for the namespace while the handler runs are held and
        handled in order once it accepts (dropped if it refuses); more than
        :data:`MAX_EARLY_PACKETS` of them close the session as bad input.
        """

        def register(handler: ConnectHandler) -> ConnectHandler:
            self._connect[namespace] = handler
            return handler

        return register

    def on_disconnect(self, namespace: str = "/") -> Callable[[DisconnectHandler], DisconnectHandler]:
        """Register ``async def handler(socket, reason)``, run when a connected socket goes away."""

        def register(handler: DisconnectHandler) -> DisconnectHandler:
            self._disconnect[namespace] = handler
            self._connect.setdefault(namespace, None)
            return handler

        return register

    async def __call__(self, request: WebSocketRequest) -> None:
        """Serve one request (a WebSocket handshake or a plain HTTP one) until it is done.

        A WebSocket opens a session, or upgrades a long-polling one (its
        ``sid``), and is served until the session ends. A long-polling
        ``GET`` without ``sid`` opens a session (and its task then owns the
        session until it ends); with a ``sid`` it waits for packets; a
        ``POST`` delivers packets; ``OPTIONS`` is a CORS preflight (204).
        Requests outside ``path`` get 404; requests breaking the Engine.IO
        rules get 400 (403 for a refused origin) with the Engine.IO error as
        JSON. Handler errors are logged, never raised.
        """
        try:
            query = parse_target(request.path, self.path, websocket=request.is_websocket)
            if query is None:
                await request.reject(404)
                return
            if not origin_allowed(request.origin, self.cors_allowed_origins):
                logger.info("refused origin %r", request.origin)
                raise EngineRequestError(4)
            if request.is_websocket:
                await self._serve_websocket(request, query)
            else:
                await self._serve_polling(request, query)
        except EngineRequestError as err:
            if not request.answered:
                headers = [*self._cors(request), ("Content-Type", "application/json")]
                await request.respond(err.status, headers=headers, body=err.body)
        except RequestBodyError as err:
            if not request.answered:
                await request.respond(err.status_code, headers=self._cors(request), body=str(err).encode())

    async def process_request(self, request: WebSocketRequest) -> None:
        """The ``process_request`` hook: serves plain HTTP requests, leaves WebSocket handshakes to the handler."""
        if not request.is_websocket:
            await self(request)

    def _cors(self, request: WebSocketRequest) -> list[tuple[str, str]]:
        if request.is_websocket or not origin_allowed(request.origin, self.cors_allowed_origins):
            return []
        return cors_headers(request.origin, self.cors_allowed_origins)

    def _session(self, sid: str) -> _Connection:
        connection = self._sessions.get(sid)
        if connection is None:
            raise EngineRequestError(1)
        return connection

    async def _serve_websocket(self, request: WebSocketRequest, query: EngineQuery) -> None:
        if query.sid is None:
            connection = _Connection(self, "websocket")
            ws = await request.accept()
            async with trio.open_nursery() as nursery:
                await nursery.start(connection.run)
                await connection.websocket_transport(ws, opening=True)
            return
        connection = self._session(query.sid)
        if connection.session.transport != "polling" or connection.session.state is not SessionState.OPEN:
            raise EngineRequestError(3)  # one WebSocket per session (engine.io-protocol v4)
        await connection.upgrade(await request.accept())

    async def _serve_polling(self, request: WebSocketRequest, query: EngineQuery) -> None:
        method = request.method
        if method == "OPTIONS":
            asked = [v.decode("latin-1") for k, v in request.headers if k == b"access-control-request-headers"]
            headers = preflight_headers(request.origin, self.cors_allowed_origins, ", ".join(asked) or None)
            await request.respond(204, headers=headers)
            return
        if query.sid is None:
            if method != "GET":
                raise EngineRequestError(2)
            connection = _Connection(self, "polling")
            async with trio.open_nursery() as nursery:
                await nursery.start(connection.run)
                body = encode_payload([connection.session.open_packet()]).encode()
                headers = [*self._cors(request), ("Content-Type", "text/plain; charset=UTF-8")]
                await request.respond(200, headers=headers, body=body)
            return
        connection = self._session(query.sid)
        if connection.session.transport != "polling":
            raise EngineRequestError(3)  # the session moved to WebSocket
        if method == "GET":
            await connection.poll(request, self._cors(request))
        elif method == "POST":
            await connection.post(request, self._cors(request))
        else:
            raise EngineRequestError(3)


class _Connection(EngineConnection):
    """One Engine.IO session and the sockets of its namespaces."""

    def __init__(self, server: SocketIOServer, transport: Transport) -> None:
        super().__init__(transport, server.config)
        self.server = server
        self.decoder = PacketDecoder(max_attachments=server.max_attachments)
        self.sockets: dict[str, Socket] = {}
        self.connect_deadline: float | None = trio.current_time() + server.connect_timeout
        server._sessions[self.sid] = self

    # Sending -------------------------------------------------------------

    def send_packet(self, packet: Packet) -> None:
        """Queue ``packet`` (and its attachments, right behind it).

        Raises:
            SessionClosed: the session has ended, or ends now because the client
                left ``max_buffered`` packets unread.
        """
        try:
            for message in encode_sio(packet):
                self.session.send(message)
        except SessionClosed as err:
            if self.session.overflowed:
                self.finish(SessionEnded("buffer full", str(err)))
            raise

    def reply(self, packet: Packet) -> None:
        """Queue an answer of ours (CONNECT, CONNECT_ERROR, ACK) unless the session has ended."""
        with contextlib.suppress(SessionClosed):
            self.send_packet(packet)

    async def flush(self) -> None:
        """Have the active transport send what the session holds."""
        self.notify()
        await trio.lowlevel.checkpoint()

    # Receiving -----------------------------------------------------------

    async def message_received(self, data: str | bytes) -> None:
        await self._on_message(data)

    async def _on_message(self, data: str | bytes) -> None:
        packet = self.decoder.feed(data)
        if packet is None:
            return
        kind = packet.type
        socket = self.sockets.get(packet.namespace)
        if kind is PacketType.CONNECT:
            await self._on_connect(packet)
        elif kind is PacketType.CONNECT_ERROR:
            raise InvalidPacket("a client does not send CONNECT_ERROR packets")
        elif socket is not None and socket.connected:
            self._handle_packet(socket, packet)
        elif socket is not None and socket._early is not None:
            if len(socket._early) >= MAX_EARLY_PACKETS:
                raise InvalidPacket(
                    f"more than {MAX_EARLY_PACKETS} packets before namespace {packet.namespace!r} connected"
                )
            socket._early.append(packet)
        else:
            logger.debug("packet for namespace %r, which is not connected: ignored", packet.namespace)

    def _handle_packet(self, socket: Socket, packet: Packet) -> None:
        """Act on a DISCONNECT, EVENT or ACK for a connected namespace."""
        kind = packet.type
        if kind is PacketType.DISCONNECT:
            self.detach(socket, "client namespace disconnect")
        elif kind in (PacketType.EVENT, PacketType.BINARY_EVENT):
            handler = self.server._events.get((packet.namespace, packet.data[0]))
            if handler is not None and self.nursery is not None:
                self.nursery.start_soon(self._run_event, socket, handler, packet)
        elif packet.id is not None and not socket._acknowledged(packet.id, packet.data):
            logger.debug("acknowledgement with unknown id %d: ignored", packet.id)

    async def _on_connect(self, packet: Packet) -> None:
        namespace = packet.namespace
        if namespace not in self.server._connect:
            self.reply(Packet(PacketType.CONNECT_ERROR, namespace, {"message": "Invalid namespace"}))
            return
        if namespace in self.sockets:
            return  # already connected (or connecting): a repeated CONNECT changes nothing
        socket = Socket(self, namespace, packet.data)
        self.sockets[namespace] = socket
        handler = self.server._connect[namespace]
        if self.nursery is not None:
            self.nursery.start_soon(self._run_connect, socket, handler)

    async def _run_connect(self, socket: Socket, handler: ConnectHandler | None) -> None:
        try:
            if handler is not None:
                await handler(socket, socket.auth)
        except ConnectRefused as refusal:
            body: dict[str, Any] = {"message": refusal.message}
            if refusal.data is not None:
                body["data"] = refusal.data
            socket._early = None
            self.sockets.pop(socket.namespace, None)
            self.reply(Packet(PacketType.CONNECT_ERROR, socket.namespace, body))
        except Exception:
            logger.exception("connect handler of namespace %r failed", socket.namespace)
            socket._early = None
            self.sockets.pop(socket.namespace, None)
            self.reply(Packet(PacketType.CONNECT_ERROR, socket.namespace, {"message": "Internal error"}))
        else:
            early, socket._early = socket._early or [], None
            if self.sockets.get(socket.namespace) is socket and self.session.state is not SessionState.CLOSED:
                socket.connected = True
                self.reply(Packet(PacketType.CONNECT, socket.namespace, {"sid": socket.sid}))
                for packet in early:
                    if not socket.connected:  # an early DISCONNECT: what follows it is ignored
                        break
                    self._handle_packet(socket, packet)
        await self.flush()

    async def _run_event(self, socket: Socket, handler: EventHandler, packet: Packet) -> None:
        try:
            result = await handler(socket, *packet.data[1:])
        except Exception:
            logger.exception("handler of event %r (namespace %r) failed", packet.data[0], packet.namespace)
            return
        if packet.id is not None and socket.connected:
            try:
                self.reply(Packet(PacketType.ACK, socket.namespace, _ack_args(result), packet.id))
            except (TypeError, ValueError):
                logger.exception("acknowledgement of event %r cannot be encoded", packet.data[0])
                return
            await self.flush()

    def detach(self, socket: Socket, reason: str) -> None:
        """Forget ``socket`` and run its disconnect handler."""
        if self.sockets.get(socket.namespace) is socket:
            del self.sockets[socket.namespace]
        was_connected, socket.connected = socket.connected, False
        socket._close_pending()
        handler = self.server._disconnect.get(socket.namespace)
        if was_connected and handler is not None and self.nursery is not None:
            self.nursery.start_soon(self._run_disconnect, handler, socket, reason)

    async def _run_disconnect(self, handler: DisconnectHandler, socket: Socket, reason: str) -> None:
        try:
            await handler(socket, reason)
        except Exception:
            logger.exception("disconnect handler of namespace %r failed", socket.namespace)

    # Clock and end -------------------------------------------------------

    def deadlines(self) -> list[float]:
        return [] if self.connect_deadline is None else [self.connect_deadline]

    def tick(self, now: float) -> None:
        if self.end is None and self.connect_deadline is not None and now >= self.connect_deadline:
            # One check, as Socket.IO does: a client refused everywhere is closed too.
            self.connect_deadline = None
            if not any(socket.connected for socket in self.sockets.values()):
                self.fail("server close", "no namespace connected within connect_timeout")

    async def session_ended(self) -> None:
        self.server._sessions.pop(self.sid, None)
        await self._end_sockets()

    async def _end_sockets(self) -> None:
        """Disconnect every socket left, running its disconnect handler."""
        reason = (self.end or SessionEnded("server close")).reason
        while self.sockets:
            _, socket = self.sockets.popitem()
            was_connected, socket.connected = socket.connected, False
            socket._close_pending()
            handler = self.server._disconnect.get(socket.namespace)
            if was_connected and handler is not None:
                await self._run_disconnect(handler, socket, reason)
