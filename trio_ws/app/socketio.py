"""Socket.IO clients on an :class:`~trio_ws.app.App`: the second wire format beside the event envelope.

:meth:`App.enable_socketio <trio_ws.app.App.enable_socketio>` mounts an
Engine.IO v4 endpoint (``/socket.io/`` by default); each Socket.IO client
that connects there runs a :class:`SocketIOSession`, the Socket.IO flavour
of the app's :class:`~trio_ws.app.session.EventSession`: the same registry
of handlers, namespaces, ACLs, calls and rooms, with Socket.IO packets in
and out instead of envelopes. Handlers receive a :class:`SocketIOConnection`,
which has the API of :class:`~trio_ws.app.EventConnection`.

Imports flow one way: this module (the app layer) uses
:mod:`trio_ws.socketio` (the protocol: packets, the Engine.IO session), which
knows nothing of the app.

Theory of operation. The connection joins the app's hub as a member of wire
format :data:`SOCKETIO`. Everything the server sends it that carries
Socket.IO packets (events, acks, CONNECT and DISCONNECT answers) goes through
the member's outbox, so it keeps its order and obeys the hub's one overflow
policy; an emit to a room is a :class:`~trio_ws.hub.MessageVariants` encoded
once per wire format, and each member receives its own encoding. Only the
Engine.IO control packets (open, ping, close) are written directly. The
reader feeds the :class:`~trio_ws.socketio.EngineSession` (heartbeat,
close) and the :class:`~trio_ws.socketio.PacketDecoder`; a clock task
sends pings and ends a session whose pong is late, or that connects no
namespace within ``connect_timeout``.

Mapping between Socket.IO arguments and the app's single ``data`` value:
a packet without arguments gives ``None``, one argument gives itself,
several give a list. Going out, ``None`` sends no argument, a ``tuple``
sends its items as separate arguments, anything else one argument (as
python-socketio does with a handler's return value).
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import trio

from ..close import NORMAL_CLOSURE, POLICY_VIOLATION
from ..errors import ConnectionClosed
from ..hub import JoinResult, MessageVariants
from ..hub.outbox import Outcome
from ..socketio.engineio import decode_packet, encode_packet
from ..socketio.errors import InvalidPacket, PayloadTooLarge
from ..socketio.packets import MAX_ATTACHMENTS, Packet, PacketDecoder, PacketType
from ..socketio.packets import encode_packet as encode_sio
from ..socketio.server import CONNECT_TIMEOUT, RESERVED_EVENTS, EngineRequestError, check_request
from ..socketio.session import EngineConfig, EngineSession, MessageReceived, SessionEnded, new_sid
from .envelope import DEFAULT_NAMESPACE, EventEnvelope
from .namespaces import hub_room
from .registry import HandlerRegistry
from .session import EventConnection, EventSession, SessionSettings
from .websocket import WebSocket

__all__ = [
    "SOCKETIO",
    "SocketIOSettings",
    "SocketIOConnection",
    "SocketIOSession",
    "socketio_event_frames",
    "arguments_to_data",
    "data_to_arguments",
]

logger = logging.getLogger("trio_ws.app.socketio")

#: The hub wire format of Socket.IO members.
SOCKETIO = "socketio"


@dataclass(frozen=True)
class SocketIOSettings:
    """How an app serves Socket.IO clients (see :meth:`App.enable_socketio <trio_ws.app.App.enable_socketio>`).

    Attributes:
        path: the Engine.IO endpoint, ``"/socket.io/"`` (the clients' default).
        config: Engine.IO settings (ping interval and timeout, ``max_payload``).
        connect_timeout: seconds a client has to connect to a namespace.
        max_attachments: the most binary attachments one packet may announce.
    """

    path: str = "/socket.io/"
    config: EngineConfig = field(default_factory=EngineConfig)
    connect_timeout: float = CONNECT_TIMEOUT
    max_attachments: int = MAX_ATTACHMENTS

    def __post_init__(self) -> None:
        if not self.path.startswith("/"):
            raise ValueError(f"the Socket.IO path must start with '/', not {self.path!r}")
        if not self.connect_timeout > 0:
            raise ValueError(f"connect_timeout must be > 0, not {self.connect_timeout!r}")


def data_to_arguments(data: Any) -> list[Any]:
    """The Socket.IO arguments of an app value: None none, a tuple its items, else one."""
    if data is None:
        return []
    if isinstance(data, tuple):
        return list(data)
    return [data]


def arguments_to_data(arguments: Sequence[Any]) -> Any:
    """The app value of Socket.IO arguments: none None, one itself, several a list."""
    if not arguments:
        return None
    if len(arguments) == 1:
        return arguments[0]
    return list(arguments)


def _frames(packet: Packet) -> list[str | bytes]:
    """The WebSocket messages of ``packet``: the Engine.IO message ``4<text>``, then its attachments."""
    text, *attachments = encode_sio(packet)
    return ["4" + str(text), *attachments]


def socketio_event_frames(
    event: str, data: Any, namespace: str = DEFAULT_NAMESPACE, call_id: int | None = None
) -> list[str | bytes]:
    """The WebSocket messages that carry an app event to a Socket.IO client.

    Raises:
        ValueError: ``event`` is a name the Socket.IO clients reserve
            (``"connect"``, ``"disconnect"``...), or data JSON cannot encode.
        TypeError: data JSON cannot encode (bytes aside).
    """
    if event in RESERVED_EVENTS:
        raise ValueError(f"{event!r} is reserved by Socket.IO clients and cannot be emitted")
    return _frames(Packet(PacketType.EVENT, namespace, [event, *data_to_arguments(data)], call_id))


def _socketio_only(frames: list[str | bytes]) -> MessageVariants:
    return MessageVariants({SOCKETIO: frames})


class SocketIOConnection(EventConnection):
    """A Socket.IO client seen by the app's handlers: the API of :class:`~trio_ws.app.EventConnection`.

    Its :attr:`id` is also the ``sid`` the client gets in each namespace
    (``socket.id`` in the JavaScript client), so ``app.emit(..., to=sid)``
    reaches it. :meth:`send_envelope` is not available (the client speaks
    Socket.IO); the connect handler's ``data`` is the client's ``auth``.
    """

    wire_format = SOCKETIO

    def _queue(self, frames: list[str | bytes]) -> None:
        member = self.websocket.member
        if member.send(_socketio_only(frames)) is Outcome.CLOSED:
            raise self._closed_error()

    def _queue_packet(self, packet: Packet) -> None:
        self._queue(_frames(packet))

    async def send_envelope(self, text: str) -> None:
        """Not available on a Socket.IO connection.

        Raises:
            TypeError: always (use :meth:`emit`).
        """
        raise TypeError("a Socket.IO client does not take event envelopes: use emit()")

    async def emit(self, event: str, data: Any = None, *, namespace: str = DEFAULT_NAMESPACE) -> None:
        """Send an event to this client (``data`` as in :mod:`trio_ws.app.socketio`'s mapping; bytes allowed).

        Raises:
            ConnectionClosed: when the connection is closed.
            TypeError, ValueError: ``data`` JSON cannot encode, or ``event``
                is a name Socket.IO clients reserve.

        The event is queued in the connection's hub outbox (in order with
        room emits); cancelling is safe and concurrent calls are allowed.
        """
        self._queue(socketio_event_frames(event, data, namespace))
        await trio.lowlevel.checkpoint()

    async def call(
        self,
        event: str,
        data: Any = None,
        *,
        namespace: str = DEFAULT_NAMESPACE,
        timeout: float = 10.0,  # noqa: ASYNC109 - the answer's deadline, as in python-socketio's call()
    ) -> Any:
        """Send an event with an ack id and wait for the client's callback.

        Returns:
            the callback's arguments, mapped: none None, one itself, several a list.

        Raises:
            CallTimeout: when no answer arrives within ``timeout`` seconds.
            ConnectionClosed: as soon as the connection closes.
            TypeError, ValueError: as :meth:`emit`.

        Cancelling is safe (the pending call is forgotten); concurrent calls
        are allowed.
        """
        call_id = self._calls.new_id()
        try:
            self._queue(socketio_event_frames(event, data, namespace, call_id))
        except BaseException:
            self._calls.forget(call_id)
            raise
        return await self._calls.wait(call_id, timeout, repr(event), self._closed_error)

    async def join_room(self, room: str, namespace: str = DEFAULT_NAMESPACE) -> JoinResult:
        """Join ``room`` of ``namespace``; raises and behaves as :meth:`WebSocket.join_room`."""
        return await self.websocket.join_room(hub_room(namespace, room))

    async def disconnect(self, code: int = NORMAL_CLOSURE, reason: str | None = None) -> None:
        """Disconnect the client for good: a DISCONNECT for each namespace, then the connection closes.

        The official clients do not reconnect after it (``"io server
        disconnect"``). Idempotent; raises nothing; cancelling is safe (the
        connection is closed, perhaps without the packets).
        """
        connection = self.websocket.connection
        with trio.move_on_after(1):
            for namespace in sorted(self._namespaces):
                if connection.closed is not None:
                    break
                try:
                    await connection.send_many(_frames(Packet(PacketType.DISCONNECT, namespace)))
                except ConnectionClosed:
                    break
        await self.websocket.close(code, reason)


class SocketIOSession(EventSession):
    """Runs one Socket.IO client over the Engine.IO WebSocket transport with the app's handlers."""

    connection_class = SocketIOConnection

    def __init__(
        self,
        registry: HandlerRegistry,
        websocket: WebSocket,
        settings: SessionSettings,
        socketio: SocketIOSettings,
    ) -> None:
        super().__init__(registry, websocket, settings)
        self.socketio = socketio
        self.engine: EngineSession | None = None
        self.decoder = PacketDecoder(max_attachments=socketio.max_attachments)
        self._changed = trio.Event()
        self._connect_deadline = math.inf

    @property
    def _sio_conn(self) -> SocketIOConnection:
        assert isinstance(self.conn, SocketIOConnection)
        return self.conn

    async def run(self) -> None:
        """Check the request, accept, then read until the session ends (handler errors are logged, never raised)."""
        websocket = self.conn.websocket
        try:
            ours = check_request(websocket._request.path, self.socketio.path)
        except EngineRequestError as err:
            await websocket._request.reject(400, extra_headers=[("Content-Type", "application/json")], body=err.body)
            return
        if not ours:
            await websocket.reject(404)
            return
        await websocket.accept()
        connection = websocket.connection
        now = trio.current_time()
        self.engine = EngineSession(new_sid(), "websocket", now, self.socketio.config)
        self._connect_deadline = now + self.socketio.connect_timeout
        try:
            await connection.send_message(encode_packet(self.engine.open_packet()))
        except ConnectionClosed:
            return
        send = self._start_workers()
        websocket.start_soon(self._clock)
        try:
            await self._read_loop(send)
        finally:
            send.close()
            await self._end()

    async def _read_loop(self, queue: trio.MemorySendChannel[EventEnvelope]) -> None:
        engine = self.engine
        assert engine is not None
        connection = self.conn.websocket.connection
        limit = self.socketio.config.max_payload
        while True:
            try:
                message = await connection.get_message()
            except ConnectionClosed:
                engine.transport_closed()
                return
            try:
                size = len(message) if isinstance(message, bytes) else len(message.encode("utf-8", "surrogatepass"))
                if size > limit:
                    raise PayloadTooLarge("Engine.IO packet", size, limit)
                for event in engine.receive(decode_packet(message), trio.current_time()):
                    if isinstance(event, MessageReceived):
                        await self._on_message(event.data, queue)
                    elif isinstance(event, SessionEnded):
                        await self._close(NORMAL_CLOSURE, event.reason)
                        return
            except InvalidPacket as err:
                logger.info("Socket.IO connection %s: invalid input, closing: %s", self.conn.id, err)
                engine.close()
                await self._close(POLICY_VIOLATION, str(err)[:100])
                return
            await self._flush_engine()
            self._changed.set()

    async def _on_message(self, data: str | bytes, queue: trio.MemorySendChannel[EventEnvelope]) -> None:
        packet = self.decoder.feed(data)
        if packet is None:
            return
        kind, namespace = packet.type, packet.namespace
        if kind is PacketType.CONNECT:
            await self._dispatch(EventEnvelope("connect", namespace, data=packet.data), queue)
        elif kind is PacketType.DISCONNECT:
            await self._dispatch(EventEnvelope("disconnect", namespace), queue)
        elif kind in (PacketType.EVENT, PacketType.BINARY_EVENT):
            event, *arguments = packet.data
            envelope = EventEnvelope("event", namespace, event, arguments_to_data(arguments), packet.id)
            await self._dispatch(envelope, queue)
        elif kind in (PacketType.ACK, PacketType.BINARY_ACK):
            await self._dispatch(
                EventEnvelope("ack", namespace, data=arguments_to_data(packet.data), id=packet.id), queue
            )
        else:
            raise InvalidPacket("a client does not send CONNECT_ERROR packets")

    # -- answers in Socket.IO packets ---------------------------------------------
    async def _queue_packet(self, packet: Packet) -> None:
        with contextlib.suppress(ConnectionClosed):
            self._sio_conn._queue_packet(packet)
        await trio.lowlevel.checkpoint()

    async def _answer(self, event: str, call_id: int, result: Any, namespace: str) -> None:
        try:
            packet = Packet(PacketType.ACK, namespace, data_to_arguments(result), call_id)
            frames = _frames(packet)
        except (TypeError, ValueError) as err:
            logger.error("handler of %r returned a value JSON cannot encode: %s", event, err)
            await self._answer_error("InternalError", "the answer could not be encoded", call_id, namespace=namespace)
            return
        with contextlib.suppress(ConnectionClosed):
            self._sio_conn._queue(frames)
        await trio.lowlevel.checkpoint()

    async def _answer_error(
        self, error_type: str, message: str, call_id: int | None, *, namespace: str = DEFAULT_NAMESPACE
    ) -> None:
        # Socket.IO has no error answer: an event that asked for one gets an
        # ACK whose one argument is {"error": {"type", "message"}}; others
        # are only logged (Socket.IO servers ignore what they cannot handle).
        if call_id is None:
            logger.info("Socket.IO connection %s: %s: %s", self.conn.id, error_type, message)
            return
        error = {"error": {"type": error_type, "message": message}}
        await self._queue_packet(Packet(PacketType.ACK, namespace, [error], call_id))

    async def _reply_connected(self, namespace: str) -> None:
        await self._queue_packet(Packet(PacketType.CONNECT, namespace, {"sid": self.conn.id}))

    async def _reply_connect_error(self, namespace: str, error_type: str, message: str) -> None:
        if error_type == "UnknownNamespace":
            body: dict[str, Any] = {"message": "Invalid namespace"}
        else:
            body = {"message": message, "data": {"type": error_type}}
        await self._queue_packet(Packet(PacketType.CONNECT_ERROR, namespace, body))

    async def _reply_disconnect(self, namespace: str) -> None:
        await self._queue_packet(Packet(PacketType.DISCONNECT, namespace))

    # -- the Engine.IO clock ------------------------------------------------------
    async def _clock(self) -> None:
        """Send pings, end a session whose pong is late or that connects no namespace in time."""
        engine = self.engine
        assert engine is not None
        while True:
            self._changed = trio.Event()
            deadline = min(engine.next_deadline() or math.inf, self._connect_deadline)
            with trio.move_on_at(deadline):
                await self._changed.wait()
            now = trio.current_time()
            for event in engine.tick(now):
                if isinstance(event, SessionEnded):
                    logger.debug("Socket.IO connection %s: %s", self.conn.id, event.detail)
                    await self._close(NORMAL_CLOSURE, event.reason)
                    return
            if now >= self._connect_deadline:
                # One check, as Socket.IO does: a client refused everywhere is closed too.
                self._connect_deadline = math.inf
                if not self.conn._namespaces:
                    engine.close()
                    await self._close(NORMAL_CLOSURE, "no namespace connected within connect_timeout")
                    return
            await self._flush_engine()

    async def _flush_engine(self) -> None:
        """Write the Engine.IO control packets the session holds (pings, pongs, close)."""
        assert self.engine is not None
        packets = self.engine.data_to_send()
        if packets:
            with contextlib.suppress(ConnectionClosed):
                await self.conn.websocket.connection.send_many([encode_packet(p) for p in packets])

    async def _close(self, code: int, reason: str) -> None:
        await self._flush_engine()
        await self.conn.websocket.close(code, reason)
