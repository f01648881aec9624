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
once per wire format, and each member receives its own encoding. The
client's Engine.IO session (long-polling, WebSocket, the upgrade, pings)
runs on :class:`~trio_ws.app.socketio_link.EngineLink`, an
:class:`~trio_ws.socketio.EngineConnection` that is also the member's
connection: the hub's writes become Engine.IO messages for whichever
transport is active. The session's messages come to
:meth:`SocketIOSession.engine_message` (the
:class:`~trio_ws.socketio.PacketDecoder`, then the app's dispatch); its
clock also ends a session that connects no namespace within
``connect_timeout``.

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
from dataclasses import dataclass, field
from typing import Any

import trio

from ..close import NORMAL_CLOSURE
from ..errors import ConnectionClosed
from ..hub import JoinResult, StreamPosition
from ..hub.outbox import Outcome
from ..socketio.engineio import encode_payload
from ..socketio.errors import InvalidPacket
from ..socketio.packets import MAX_ATTACHMENTS, Packet, PacketDecoder, PacketType
from ..socketio.server import CONNECT_TIMEOUT
from ..socketio.session import EngineConfig, SessionEnded
from .envelope import DEFAULT_NAMESPACE, EventEnvelope
from .namespaces import hub_room, namespace_room
from .registry import HandlerRegistry
from .session import EventConnection, EventSession, SessionSettings
from .socketio_encoding import (
    SOCKETIO,
    arguments_to_data,
    data_to_arguments,
    event_variants,
    packet_frames,
    positioned_variants,
    socketio_event_frames,
    socketio_only,
)
from .socketio_link import EngineLink, serve_engine_request
from .socketio_recovery import ParkedState, RecoveryLog, new_pid, parse_offset, personal_room
from .socketio_recovery_redis import StreamedRecovery
from .websocket import WebSocket

__all__ = [
    "SOCKETIO",
    "SocketIOSettings",
    "SocketIOConnection",
    "SocketIOSession",
    "serve_socketio",
    "socketio_event_frames",
    "event_variants",
    "positioned_variants",
    "arguments_to_data",
    "data_to_arguments",
]

logger = logging.getLogger("trio_ws.app.socketio")

@dataclass(frozen=True)
class SocketIOSettings:
    """How an app serves Socket.IO clients (see :meth:`App.enable_socketio <trio_ws.app.App.enable_socketio>`).

    Attributes:
        path: the Engine.IO endpoint, ``"/socket.io/"`` (the clients' default).
        config: Engine.IO settings (ping interval and timeout, ``max_payload``).
        connect_timeout: seconds a client has to connect to a namespace.
        max_attachments: the most binary attachments one packet may announce.
        origins: the allowed ``Origin`` values (None: any), also the CORS
            allow-list of the long-polling answers.
    """

    path: str = "/socket.io/"
    config: EngineConfig = field(default_factory=EngineConfig)
    connect_timeout: float = CONNECT_TIMEOUT
    max_attachments: int = MAX_ATTACHMENTS
    origins: frozenset[str | None] | None = None

    def __post_init__(self) -> None:
        if not self.path.startswith("/"):
            raise ValueError(f"the Socket.IO path must start with '/', not {self.path!r}")
        if not self.connect_timeout > 0:
            raise ValueError(f"connect_timeout must be > 0, not {self.connect_timeout!r}")


class SocketIOConnection(EventConnection):
    """A Socket.IO client seen by the app's handlers: the API of :class:`~trio_ws.app.EventConnection`.

    Its :attr:`id` is also the ``sid`` the client gets in each namespace
    (``socket.id`` in the JavaScript client), so ``app.emit(..., to=sid)``
    reaches it. :meth:`send_envelope` is not available (the client speaks
    Socket.IO); the connect handler's ``data`` is the client's ``auth``.

    Attributes:
        recovered: True when this connection took back the sid, rooms and
            ``session`` of a dropped one (connection-state recovery).
    """

    wire_format = SOCKETIO
    recovered = False
    _recovery: RecoveryLog | StreamedRecovery | None = None
    _goodbye = False

    def _queue(self, frames: list[str | bytes]) -> None:
        member = self.websocket.member
        if member.send(socketio_only(frames)) is Outcome.CLOSED:
            raise self._closed_error()

    def _queue_packet(self, packet: Packet) -> None:
        self._queue(packet_frames(packet))

    async def _send_answer(self, frames: list[str | bytes]) -> None:
        """Send an acknowledgement from the worker that ran the handler.

        On the WebSocket transport, with nothing waiting in the member's
        outbox (all that was queued before it has been taken by the hub's
        sender), it is written at once, without waking the sender: one task
        fewer per event and still in order. Otherwise (long-polling, an
        outbox in use, a member being closed) it is queued like any message.
        A client that does not read holds this worker as it would hold the
        sender, until the session ends (ping timeout, or the hub closing an
        overflowing member).
        """
        member = self.websocket.member
        link = member.connection
        if isinstance(link, EngineLink) and link.writes_at_once and member.queued == 0 and not member.closing:
            # No yield after a write the socket takes at once: only a worker
            # answers, and its next receive from the queue yields anyway, so
            # the worker runs once per event, not twice.
            await link.send_many(frames, schedule=False)
        else:
            self._queue(frames)

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
        log = self._recovery
        if log is None:
            self._queue(socketio_event_frames(event, data, namespace))
        elif isinstance(log, StreamedRecovery):
            # Through the namespace's log, like every event of a recovering namespace (see
            # socketio_recovery_redis): in order with room emits, not with acks and calls.
            marker = log.marker()
            frames = socketio_only(socketio_event_frames(event, data, namespace, offset=marker))
            if not self.websocket.member.active:
                raise self._closed_error()
            await log.send(namespace, self.id, frames, marker, set())
        else:
            message = socketio_only(socketio_event_frames(event, data, namespace, offset=log.next_offset()))
            log.record(namespace, personal_room(self.id), (), message, trio.current_time())
            if self.websocket.member.send(message) is Outcome.CLOSED:
                raise self._closed_error()
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
        self._goodbye = True
        connection = self.websocket.link
        with trio.move_on_after(1):
            for namespace in sorted(self._namespaces):
                if connection.closed is not None:
                    break
                try:
                    await connection.send_many(packet_frames(Packet(PacketType.DISCONNECT, namespace)))
                except ConnectionClosed:
                    break
        await self.websocket.close(code, reason)


class SocketIOSession(EventSession):
    """Runs one Socket.IO client over Engine.IO (long-polling, WebSocket, the upgrade) with the app's handlers."""

    connection_class = SocketIOConnection

    def __init__(
        self,
        registry: HandlerRegistry,
        websocket: WebSocket,
        settings: SessionSettings,
        socketio: SocketIOSettings,
        recovery: RecoveryLog | StreamedRecovery | None = None,
        links: dict[str, EngineLink] | None = None,
    ) -> None:
        super().__init__(registry, websocket, settings)
        self.socketio = socketio
        self.recovery = recovery
        self._sio_conn._recovery = recovery
        self._pids: list[str] = []
        self._restored: ParkedState | None = None
        self._offsets: dict[str, Any] = {}
        self._replayed: set[str] = set()
        self._connected_at: dict[str, StreamPosition] = {}
        self._to_park: ParkedState | None = None
        self.links = links if links is not None else {}
        self.link: EngineLink | None = None
        self.decoder = PacketDecoder(max_attachments=socketio.max_attachments)
        self._connect_deadline = math.inf
        self._queue: trio.MemorySendChannel[EventEnvelope] | None = None

    @property
    def _sio_conn(self) -> SocketIOConnection:
        assert isinstance(self.conn, SocketIOConnection)
        return self.conn

    async def run(self, cors: list[tuple[str, str]] | None = None) -> None:
        """Open an Engine.IO session on this request and serve it until it ends (handler errors are logged).

        The request is a WebSocket handshake or a long-polling ``GET``
        without ``sid`` (see :func:`~trio_ws.app.socketio_link.serve_engine_request`);
        ``cors`` are the headers of the polling answer.
        """
        websocket = self.conn.websocket
        request = websocket.request
        link = self.link = EngineLink(self, "websocket" if request.is_websocket else "polling", self.socketio.config)
        self._connect_deadline = trio.current_time() + self.socketio.connect_timeout
        ws = await request.accept() if request.is_websocket else None
        # The hub and the WebSocket use the link as the client's connection.
        await websocket.attach(link)
        self._queue = self._start_workers()
        self.links[link.sid] = link
        try:
            async with trio.open_nursery() as nursery:
                await nursery.start(link.run)
                if ws is not None:
                    await link.websocket_transport(ws, opening=True)
                else:
                    body = encode_payload([link.session.open_packet()]).encode()
                    headers = [*(cors or []), ("Content-Type", "text/plain; charset=UTF-8")]
                    await request.respond(200, headers=headers, body=body)
        finally:
            self.links.pop(link.sid, None)
            self._queue.close()
            state, self._to_park = self._to_park, None
            if state is not None and isinstance(self.recovery, StreamedRecovery):
                with trio.CancelScope(shield=True):  # bounded by the backend's command_timeout
                    for pid in self._pids:
                        await self.recovery.park(pid, state)
            await self._end()

    async def engine_message(self, data: str | bytes) -> None:
        """A message of the Engine.IO session: a Socket.IO packet (or one of its attachments)."""
        assert self._queue is not None
        await self._on_message(data, self._queue)

    def engine_message_now(self, data: str) -> bool:
        """An EVENT offered in the WebSocket's reader task: queued for the workers if there is room.

        Exactly what :meth:`engine_message` would do with it, minus a task:
        anything else (another packet type, attachments under way, bad
        input, a full queue) is declined and takes the usual way, in order.
        """
        queue = self._queue
        if queue is None or data[:1] != "2" or self.decoder.awaiting_attachments:
            return False
        try:
            packet = self.decoder.feed(data)  # a text EVENT: no decoder state changes
        except InvalidPacket:
            return False  # engine_message decodes it again and ends the session
        if packet is None or packet.type is not PacketType.EVENT:
            return False
        try:
            queue.send_nowait(_event_envelope(packet))
        except (trio.WouldBlock, trio.BrokenResourceError):
            return False
        return True

    def engine_deadline(self) -> float | None:
        """When the connect timeout expires, until it was checked."""
        return None if self._connect_deadline == math.inf else self._connect_deadline

    def engine_tick(self, now: float) -> None:
        """End a session that connected no namespace within ``connect_timeout``."""
        if now >= self._connect_deadline:
            # One check, as Socket.IO does: a client refused everywhere is closed too.
            self._connect_deadline = math.inf
            if not self.conn.namespaces and self.link is not None:
                self.link.fail("server close", "no namespace connected within connect_timeout")

    async def _on_message(self, data: str | bytes, queue: trio.MemorySendChannel[EventEnvelope]) -> None:
        packet = self.decoder.feed(data)
        if packet is None:
            return
        kind, namespace = packet.type, packet.namespace
        if kind is PacketType.CONNECT:
            auth = packet.data
            if self.recovery is not None and isinstance(auth, dict) and "pid" in auth:
                self._offsets[namespace] = auth.get("offset")
                auth = {key: value for key, value in auth.items() if key not in ("pid", "offset")} or None
            if not self.conn.websocket.in_hub:
                await self._enter_hub(packet.data)
            await self._dispatch(EventEnvelope("connect", namespace, data=auth), queue)
        elif kind is PacketType.DISCONNECT:
            await self._dispatch(EventEnvelope("disconnect", namespace), queue)
        elif kind in (PacketType.EVENT, PacketType.BINARY_EVENT):
            await self._dispatch(_event_envelope(packet), queue)
        elif kind in (PacketType.ACK, PacketType.BINARY_ACK):
            await self._dispatch(
                EventEnvelope("ack", namespace, data=arguments_to_data(packet.data), id=packet.id), queue
            )
        else:
            raise InvalidPacket("a client does not send CONNECT_ERROR packets")

    async def _enter_hub(self, auth: Any) -> None:
        """Join the hub at the first CONNECT: as the dropped connection whose state ``auth`` brings back, if any."""
        websocket = self.conn.websocket
        recovery = self.recovery
        if recovery is not None:
            pid = auth.get("pid") if isinstance(auth, dict) else None
            state: ParkedState | None = None
            if isinstance(pid, str):
                if isinstance(recovery, StreamedRecovery):
                    state = await recovery.take(pid)
                else:
                    state = recovery.take(pid, trio.current_time())
            if state is not None and self.settings.hub.member(state.sid) is None:
                assert isinstance(pid, str)
                websocket.id = state.sid
                websocket.session = self.conn.session = state.session
                self._restored = state
                self._sio_conn.recovered = True
                self._pids.append(pid)
            else:
                self._pids.append(new_pid())
        await websocket.join_hub()

    def engine_ended(self, end: SessionEnded) -> None:
        """The session has just ended: keep what a reconnection takes back, before the hub forgets the rooms."""
        conn = self._sio_conn
        if end.reason in ("client close", "parse error"):
            conn._goodbye = True
        recovery = self.recovery
        namespaces = conn.namespaces
        if recovery is not None and not conn._goodbye and namespaces and conn.websocket.in_hub:
            # Dropped without a goodbye (transport closed, ping timeout).
            now = trio.current_time()
            rooms = {
                namespace: frozenset({hub_room(namespace, room) for room in conn.rooms(namespace)})
                | {namespace_room(namespace)}
                for namespace in namespaces
            }
            positions = {ns: self._connected_at[ns] for ns in namespaces if ns in self._connected_at}
            deadline = now + recovery.max_disconnection_duration
            state = ParkedState(conn.id, rooms, conn.session, deadline, positions)
            if isinstance(recovery, StreamedRecovery):
                self._to_park = state  # parked in Redis by run(), which may wait
                return
            for pid in self._pids:
                recovery.park(pid, state, now)

    # -- answers in Socket.IO packets ---------------------------------------------
    async def _queue_packet(self, packet: Packet) -> None:
        if not self.conn.websocket.in_hub:
            # Nothing connected yet (an event before any CONNECT): Socket.IO servers ignore it.
            logger.debug("Socket.IO connection %s: %s before any CONNECT: ignored", self.conn.id, packet.type.name)
        else:
            with contextlib.suppress(ConnectionClosed):
                self._sio_conn._queue_packet(packet)
        await trio.lowlevel.checkpoint()

    async def _answer(self, event: str, call_id: int, result: Any, namespace: str) -> None:
        try:
            packet = Packet(PacketType.ACK, namespace, data_to_arguments(result), call_id)
            frames = packet_frames(packet)
        except (TypeError, ValueError) as err:
            logger.error("handler of %r returned a value JSON cannot encode: %s", event, err)
            await self._answer_error("InternalError", "the answer could not be encoded", call_id, namespace=namespace)
            return
        if self.conn.websocket.in_hub:  # else: before any CONNECT, ignored
            with contextlib.suppress(ConnectionClosed):
                await self._sio_conn._send_answer(frames)

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
        recovery = self.recovery
        if recovery is None:
            await self._queue_packet(Packet(PacketType.CONNECT, namespace, {"sid": self.conn.id}))
            return
        if isinstance(recovery, StreamedRecovery):
            await self._reply_connected_streamed(namespace, recovery)
            return
        state = self._restored
        missed = None
        if state is not None and namespace in state.rooms and namespace not in self._replayed:
            self._replayed.add(namespace)
            # No offset: the client received no event since it connected.
            offset = self._offsets.get(namespace)
            since = state.positions.get(namespace) if offset is None else parse_offset(offset)
            if since is not None:
                missed = recovery.missed(namespace, since, state.rooms[namespace], self.conn.id, trio.current_time())
        if state is None or missed is not None:
            pid = self._pids[0]
        else:
            # Not recoverable in this namespace: a pid the client does not know, so socket.recovered is false.
            pid = new_pid()
            self._pids.append(pid)
        # From here to the joins, no checkpoint: no emit can fall between the
        # replayed events and the live ones, nor arrive twice.
        try:
            self._sio_conn._queue_packet(Packet(PacketType.CONNECT, namespace, {"sid": self.conn.id, "pid": pid}))
            self._connected_at.setdefault(namespace, recovery.position)
            if missed is not None and state is not None:
                member = self.conn.websocket.member
                for message in missed:
                    member.send(message)
                for room in sorted(state.rooms[namespace]):
                    await self.conn.websocket.join_room(room)
        except ConnectionClosed:
            pass
        await trio.lowlevel.checkpoint()

    async def _reply_connected_streamed(self, namespace: str, recovery: StreamedRecovery) -> None:
        """Answer a CONNECT with recovery through Redis: join the namespace's log, from the offset if recovering."""
        state = self._restored
        since: StreamPosition | None = None
        restoring = state is not None and namespace in state.rooms and namespace not in self._replayed
        websocket = self.conn.websocket
        try:
            if restoring:
                assert state is not None
                self._replayed.add(namespace)
                offset = self._offsets.get(namespace)
                # No offset: the client received no event since it connected.
                since = state.positions.get(namespace) if offset is None else parse_offset(offset)
                for room in sorted(state.rooms[namespace]):
                    await websocket.join_room(room)
        except ConnectionClosed:
            return

        def answer(result: JoinResult) -> None:
            # Called by the hub with no checkpoint before the replay: the CONNECT answer comes first,
            # with the client's pid only when every missed event follows.
            if not restoring or (since is not None and result.recovered):
                pid = self._pids[0]
            else:
                pid = new_pid()  # one the client does not know: socket.recovered is false
                self._pids.append(pid)
            if result.position is not None:
                self._connected_at.setdefault(namespace, result.position)
            with contextlib.suppress(ConnectionClosed):
                self._sio_conn._queue_packet(Packet(PacketType.CONNECT, namespace, {"sid": self.conn.id, "pid": pid}))

        member_id = websocket.member.id
        with contextlib.suppress(ConnectionClosed, KeyError):
            await self.settings.hub.join(member_id, recovery.room(namespace), since=since, before_replay=answer)
        await trio.lowlevel.checkpoint()

    async def _reply_connect_error(self, namespace: str, error_type: str, message: str) -> None:
        if error_type == "UnknownNamespace":
            body: dict[str, Any] = {"message": "Invalid namespace"}
        else:
            body = {"message": message, "data": {"type": error_type}}
        await self._queue_packet(Packet(PacketType.CONNECT_ERROR, namespace, body))

    async def _reply_disconnect(self, namespace: str) -> None:
        await self._queue_packet(Packet(PacketType.DISCONNECT, namespace))


def _event_envelope(packet: Packet) -> EventEnvelope:
    """The app's envelope of a Socket.IO EVENT (or BINARY_EVENT) packet."""
    event, *arguments = packet.data
    return EventEnvelope("event", packet.namespace, event, arguments_to_data(arguments), packet.id)


async def serve_socketio(
    websocket: WebSocket,
    registry: HandlerRegistry,
    settings: SessionSettings,
    socketio: SocketIOSettings,
    recovery: RecoveryLog | StreamedRecovery | None,
    links: dict[str, EngineLink],
) -> None:
    """Serve one request on the app's Socket.IO path: a new session runs here until it ends."""

    async def open_session(cors: list[tuple[str, str]]) -> None:
        await SocketIOSession(registry, websocket, settings, socketio, recovery, links).run(cors)

    await serve_engine_request(websocket.request, socketio.path, socketio.origins, links, open_session)
