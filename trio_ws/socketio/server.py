"""Socket.IO clients over the Engine.IO WebSocket transport: a standalone server handler.

:class:`SocketIOServer` is a handler for :func:`trio_ws.serve_websocket`
that speaks Engine.IO v4 over WebSocket (``/socket.io/?EIO=4&transport=websocket``)
and Socket.IO v5 above it: namespaces, events both ways, acks both ways,
binary attachments. It is the transport foundation of the coming Socket.IO
support and does not use :class:`~trio_ws.App` (the App integration comes
next). HTTP long-polling is not served: official clients must be created
with ``transports: ["websocket"]``.

Each WebSocket runs one :class:`~trio_ws.socketio.EngineSession`; the
protocol decisions (pings, deadlines, close) are the session's and the
packet codecs', and this module only moves packets and runs handlers. The
connection's task owns a nursery holding the heartbeat clock and the handler
tasks; nothing outlives the connection.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import math
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

import trio

from ..close import NORMAL_CLOSURE, POLICY_VIOLATION
from ..connection import WebSocketConnection
from ..errors import ConnectionClosed
from ..request import WebSocketRequest
from .engineio import decode_packet, encode_packet
from .errors import InvalidPacket, PayloadTooLarge, SessionClosed
from .packets import MAX_ATTACHMENTS, Packet, PacketDecoder, PacketType
from .packets import encode_packet as encode_sio
from .session import EngineConfig, EngineSession, MessageReceived, SessionEnded, SessionState, new_sid

__all__ = ["SocketIOServer", "Socket", "ConnectRefused", "EngineRequestError", "check_request", "RESERVED_EVENTS"]

logger = logging.getLogger("trio_ws.socketio")

EventHandler = Callable[..., Awaitable[Any]]
ConnectHandler = Callable[["Socket", Any], Awaitable[None]]
DisconnectHandler = Callable[["Socket", str], Awaitable[None]]

#: Seconds a client has to connect to a namespace after the Engine.IO handshake (Socket.IO's default).
CONNECT_TIMEOUT = 45.0
_FLUSH_TIMEOUT = 5.0


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


class EngineRequestError(Exception):
    """A request the Engine.IO endpoint answers with HTTP 400 and a JSON error body.

    Attributes:
        code: the Engine.IO error code (0 unknown transport, 1 unknown session
            id, 3 bad request, 5 unsupported protocol version).
        message: its text, as the reference server writes it.
    """

    def __init__(self, code: int, message: str) -> None:
        super().__init__(f"Engine.IO error {code}: {message}")
        self.code = code
        self.message = message

    @property
    def body(self) -> bytes:
        """The JSON body of the 400 response."""
        return json.dumps({"code": self.code, "message": self.message}).encode()


def check_request(target: str, path: str) -> bool:
    """Check a WebSocket request's target against the Engine.IO rules.

    Args:
        target: the request target (path and query string).
        path: the endpoint's path, for example ``"/socket.io/"``.

    Returns:
        False when the target is outside ``path`` (not ours: answer 404).

    Raises:
        EngineRequestError: a missing or unknown ``EIO`` version or
            ``transport``, or a ``sid`` (this handler serves no long-polling
            session that a WebSocket could upgrade).
    """
    parts = urlsplit(target)
    if parts.path.rstrip("/") != path.rstrip("/"):
        return False
    query = parse_qs(parts.query, keep_blank_values=True)
    if query.get("EIO") != ["4"]:
        raise EngineRequestError(5, "Unsupported protocol version")
    if query.get("transport") != ["websocket"]:
        raise EngineRequestError(0, "Transport unknown")
    if "sid" in query:
        raise EngineRequestError(1, "Session ID unknown")
    return True


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
    """Serve Socket.IO clients over WebSocket; use it as a :func:`~trio_ws.serve_websocket` handler.

    Args:
        path: the endpoint path (``"/socket.io/"``, the clients' default).
        config: Engine.IO settings (ping interval and timeout, max_payload).
        connect_timeout: seconds a client has to connect to a namespace.
        max_attachments: the most binary attachments one packet may announce.

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
    ) -> None:
        if not connect_timeout > 0:
            raise ValueError(f"connect_timeout must be > 0, not {connect_timeout!r}")
        self.path = path
        self.config = config or EngineConfig()
        self.connect_timeout = connect_timeout
        self.max_attachments = max_attachments
        self._events: dict[tuple[str, str], EventHandler] = {}
        self._connect: dict[str, ConnectHandler | None] = {"/": None}
        self._disconnect: dict[str, DisconnectHandler] = {}

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
        for any other gets CONNECT_ERROR ``Invalid namespace``.
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
        """Serve one WebSocket request until its session ends.

        Requests outside ``path`` get 404; requests breaking the Engine.IO
        rules get 400 with the Engine.IO error as JSON. Returns when the
        session ends; handler errors are logged, never raised.
        """
        try:
            ours = check_request(request.path, self.path)
        except EngineRequestError as err:
            await request.reject(400, extra_headers=[("Content-Type", "application/json")], body=err.body)
            return
        if not ours:
            await request.reject(404)
            return
        ws = await request.accept()
        await _Connection(self, ws).run()


class _Connection:
    """One WebSocket, its Engine.IO session and the sockets of its namespaces."""

    def __init__(self, server: SocketIOServer, ws: WebSocketConnection) -> None:
        now = trio.current_time()
        self.server = server
        self.ws = ws
        self.session = EngineSession(new_sid(), "websocket", now, server.config)
        self.decoder = PacketDecoder(max_attachments=server.max_attachments)
        self.sockets: dict[str, Socket] = {}
        self.connect_deadline: float | None = now + server.connect_timeout
        self.changed = trio.Event()
        self.writer_wake = trio.Event()
        self.end: SessionEnded | None = None
        self.nursery: trio.Nursery | None = None

    async def run(self) -> None:
        # Only the writer task sends, so no send is ever cancelled half-way by
        # the end of the session (an interrupted write breaks the WebSocket).
        try:
            await self.ws.send_message(encode_packet(self.session.open_packet()))
            async with trio.open_nursery() as outer:
                outer.start_soon(self._writer)
                async with trio.open_nursery() as inner:
                    self.nursery = inner
                    inner.start_soon(self._clock)
                    await self._read_loop()
                    inner.cancel_scope.cancel()
                # The session has ended (every path through _finish closes it): let
                # the writer send what is left, the close packet included.
                outer.cancel_scope.deadline = trio.current_time() + _FLUSH_TIMEOUT
                await self._end_sockets()
                self.writer_wake.set()
        except ConnectionClosed:
            self._finish(SessionEnded("transport close"))
        finally:
            with trio.CancelScope(shield=True), trio.move_on_after(_FLUSH_TIMEOUT):
                # Cancelled from outside: the server is shutting down. No Engine.IO
                # close packet, so clients treat it as a lost transport and reconnect;
                # the server closes the WebSocket with 1001.
                shutting_down = self.end is None
                if self.end is None:
                    self.end = SessionEnded("server shutting down")
                await self._end_sockets()
                if not shutting_down:
                    policy = self.end.reason in ("parse error", "buffer full")
                    code = POLICY_VIOLATION if policy else NORMAL_CLOSURE
                    await self.ws.aclose(code, self.end.detail[:100] or self.end.reason)

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
                self._finish(SessionEnded("buffer full", str(err)))
            raise

    def reply(self, packet: Packet) -> None:
        """Queue an answer of ours (CONNECT, CONNECT_ERROR, ACK) unless the session has ended."""
        with contextlib.suppress(SessionClosed):
            self.send_packet(packet)

    async def flush(self) -> None:
        """Have the writer send what the session holds."""
        self.writer_wake.set()
        await trio.lowlevel.checkpoint()

    async def _writer(self) -> None:
        while True:
            self.writer_wake = trio.Event()
            packets = self.session.data_to_send()
            if not packets:
                if self.end is not None:
                    return
                await self.writer_wake.wait()
                continue
            for packet in packets:
                try:
                    await self.ws.send_message(encode_packet(packet))
                except ConnectionClosed:
                    self._finish(SessionEnded("transport close"))
                    return

    # Receiving -----------------------------------------------------------

    async def _read_loop(self) -> None:
        limit = self.server.config.max_payload
        while self.end is None:
            try:
                message = await self.ws.get_message()
            except ConnectionClosed:
                self._finish(SessionEnded("transport close"))
                return
            try:
                size = len(message) if isinstance(message, bytes) else len(message.encode("utf-8", "surrogatepass"))
                if size > limit:
                    raise PayloadTooLarge("Engine.IO packet", size, limit)
                packet = decode_packet(message)
                for event in self.session.receive(packet, trio.current_time()):
                    if isinstance(event, MessageReceived):
                        await self._on_message(event.data)
                    elif isinstance(event, SessionEnded):
                        self._finish(event)
            except InvalidPacket as err:
                logger.info("Engine.IO session %s: invalid input, closing: %s", self.session.sid, err)
                self.session.close()
                self._finish(SessionEnded("parse error", str(err)))
                return
            await self.flush()
            self.changed.set()

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
        elif socket is None or not socket.connected:
            logger.debug("packet for namespace %r, which is not connected: ignored", packet.namespace)
        elif kind is PacketType.DISCONNECT:
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
            self.sockets.pop(socket.namespace, None)
            self.reply(Packet(PacketType.CONNECT_ERROR, socket.namespace, body))
        except Exception:
            logger.exception("connect handler of namespace %r failed", socket.namespace)
            self.sockets.pop(socket.namespace, None)
            self.reply(Packet(PacketType.CONNECT_ERROR, socket.namespace, {"message": "Internal error"}))
        else:
            if self.sockets.get(socket.namespace) is socket and self.session.state is not SessionState.CLOSED:
                socket.connected = True
                self.reply(Packet(PacketType.CONNECT, socket.namespace, {"sid": socket.sid}))
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

    async def _clock(self) -> None:
        # Runs until _finish cancels the nursery.
        while True:
            self.changed = trio.Event()
            deadlines = [d for d in (self.session.next_deadline(), self.connect_deadline) if d is not None]
            with trio.move_on_at(min(deadlines) if deadlines else math.inf):
                await self.changed.wait()
            now = trio.current_time()
            for event in self.session.tick(now):
                if isinstance(event, SessionEnded):
                    self._finish(event)
            if self.end is None and self.connect_deadline is not None and now >= self.connect_deadline:
                # One check, as Socket.IO does: a client refused everywhere is closed too.
                self.connect_deadline = None
                if not any(socket.connected for socket in self.sockets.values()):
                    self.session.close()
                    self._finish(SessionEnded("server close", "no namespace connected within connect_timeout"))
            await self.flush()

    def _finish(self, end: SessionEnded) -> None:
        if self.end is not None:
            return
        self.end = end
        if end.reason == "transport close":
            self.session.transport_closed(end.detail)
        logger.debug("Engine.IO session %s ended: %s %s", self.session.sid, end.reason, end.detail)
        self.changed.set()
        if self.nursery is not None:
            self.nursery.cancel_scope.cancel()

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
