"""The Trio side of one Engine.IO session: its owner task, its clock and its two transports.

Theory of operation
-------------------
:class:`EngineConnection` drives one :class:`~trio_ws.socketio.EngineSession`
(the sans-IO state machine) and moves its packets:

* **Owner.** :meth:`EngineConnection.run` is the session's owner: it holds a
  nursery with the heartbeat clock and every task the layer above starts
  (:attr:`EngineConnection.nursery`), and returns only once the session has
  ended and :meth:`EngineConnection.session_ended` has run. It runs in the
  task of the request that opened the session (the WebSocket handshake, or
  the first long-polling ``GET``, whose answer has been sent by then), so
  cancelling the server ends every session and nothing outlives one.
* **WebSocket.** :meth:`EngineConnection.websocket_transport` runs in the
  WebSocket's own request task: a reader feeding the session and a writer
  sending what the session queues (pings, messages queued before an
  upgrade); a session the server ends closes the WebSocket without an
  Engine.IO close packet, as the reference server does.
  :meth:`EngineConnection.send_messages` writes messages on the WebSocket
  from the caller's task (the hub's sender of the member), each batch in
  one write, and a
  :class:`~trio_ws.PreparedMessage` as the frame it shares with every other
  connection that sends it: a broadcast is encoded and framed once, not once
  per session. Every write to the WebSocket holds one lock and first takes
  what the session has queued, so packets keep their order.
* **Long-polling.** Each ``GET`` (:meth:`EngineConnection.poll`) waits in
  its request task until the session has something to say (a packet, a
  ``noop`` releasing the poll during an upgrade, a ``close``), or the client
  leaves (which ends the session, as the reference server does). Each
  ``POST`` (:meth:`EngineConnection.post`) reads its body, feeds the packets
  to the session and answers ``ok``. engine.io-protocol v4: one ``GET`` and
  one ``POST`` at a time; an overlapping one gets HTTP 400 and ends the session.
* **Upgrade.** :meth:`EngineConnection.upgrade` runs in a WebSocket's task
  for an existing ``sid``: the ``2probe``/``3probe`` exchange, a ``noop`` to
  the waiting ``GET``, then the ``5`` that moves the session onto the
  WebSocket, which from then on is served as above.

Waking. The WebSocket writer and a waiting ``GET`` wait for output: a
packet queued, the session ended, a probe answered or the upgrade done. Each
of those calls :meth:`EngineConnection.notify`, which wakes them all; each
re-checks the session and waits again. The clock sleeps until the earliest
deadline (the next ping, the pong deadline, the upgrade timeout, the layer's
:meth:`~EngineConnection.deadlines`) on an event of its own, woken only when
a deadline comes earlier than the one it sleeps until (a pong that moves the
next ping before the pong deadline it replaces, an upgrade starting); one
that moves later needs no wake-up, the clock re-checks when it wakes. So a
packet that queues nothing (a message whose answer the layer writes itself,
a pong) wakes no task of the session.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence

import trio

from ..close import GOING_AWAY, NORMAL_CLOSURE, POLICY_VIOLATION
from ..connection import WebSocketConnection
from ..errors import ConnectionClosed, RequestBodyError
from ..prepared import PreparedMessage
from ..request import WebSocketRequest
from .engineio import (
    EnginePacket,
    EngineType,
    decode_packet,
    decode_payload,
    encode_packet,
    encode_payload,
    websocket_frame,
)
from .errors import InvalidPacket, PayloadTooLarge, SessionClosed
from .requests import EngineRequestError
from .session import (
    EngineConfig,
    EngineSession,
    MessageReceived,
    ProbeAnswer,
    SessionEnded,
    SessionState,
    Transport,
    UpgradeAborted,
    UpgradeCompleted,
    new_sid,
)

__all__ = ["EngineConnection", "FLUSH_TIMEOUT"]

logger = logging.getLogger("trio_ws.socketio")

#: Seconds a WebSocket is given to send what is left once its session ended.
FLUSH_TIMEOUT = 5.0

Header = tuple[str, str]


class EngineConnection:
    """One Engine.IO session with its transports; subclass it for the protocol above.

    Args:
        transport: the transport of the request that opens the session.
        config: the Engine.IO settings.

    A subclass overrides :meth:`message_received` (a message for the layer
    above), :meth:`deadlines` and :meth:`tick` (timers of its own) and
    :meth:`session_ended` (clean-up once the session is over). Not
    thread-safe; all its tasks run in one Trio run.
    """

    def __init__(self, transport: Transport, config: EngineConfig) -> None:
        self.config = config
        self.session = EngineSession(new_sid(), transport, trio.current_time(), config)
        #: Why the session ended, once it has.
        self.end: SessionEnded | None = None
        #: The owner's nursery, for tasks that must end with the session (None before :meth:`run`).
        self.nursery: trio.Nursery | None = None
        self._wake = trio.Event()  # the output waiters: the WebSocket writer, a waiting GET
        self._clock_wake = trio.Event()
        self._clock_at = math.inf  # when the clock wakes unless _clock_wake is set
        self._websocket: WebSocketConnection | None = None
        self._write_lock = trio.Lock()  # held by every write on the active WebSocket
        self._reader_scope: trio.CancelScope | None = None
        self._get_busy = False
        self._post_busy = False

    @property
    def sid(self) -> str:
        """The Engine.IO session id."""
        return self.session.sid

    # Hooks for the layer above -------------------------------------------

    async def message_received(self, data: str | bytes) -> None:
        """A message from the client. Raise :exc:`InvalidPacket` to end the session as a parse error."""

    def message_received_now(self, data: str) -> bool:
        """A text message from the client, offered in the WebSocket's reader task (nothing is waiting
        before it): return True if it was handled without waiting, False (the default) to have it
        come to :meth:`message_received` as usual. Must not raise; decline instead."""
        return False

    def deadlines(self) -> list[float]:
        """Times at which :meth:`tick` must run, besides the session's own.

        The clock reads them after each wake-up; a subclass whose deadline
        comes earlier than before calls :meth:`notify` to re-arm it.
        """
        return []

    def tick(self, now: float) -> None:
        """Called by the clock at every wake-up, after the session's own timers."""

    def taken(self) -> None:
        """Called when the active transport took the packets queued so far (to send them)."""

    async def session_ended(self) -> None:
        """Called once by the owner after the session ended (shielded, bounded by ``FLUSH_TIMEOUT``)."""

    # Shared ----------------------------------------------------------------

    def notify(self) -> None:
        """Wake the tasks waiting for output: a packet was queued, the session ended, or its upgrade moved on.

        Also re-arms the clock if a deadline came earlier than the one it sleeps until.
        """
        self._wake.set()
        self._wake = trio.Event()
        self._rearm_clock()

    def _next_time(self) -> float:
        """The earliest deadline of the session and of the layer above (inf for none)."""
        times = [t for t in (self.session.next_deadline(), *self.deadlines()) if t is not None]
        return min(times) if times else math.inf

    def _rearm_clock(self) -> None:
        """Wake the clock only if it would wake too late; a deadline moved later is seen at its next wake-up."""
        if self._next_time() < self._clock_at:
            self._clock_wake.set()

    def finish(self, end: SessionEnded) -> None:
        """Record that the session ended: cancel its tasks and the WebSocket reader, wake the rest. Idempotent."""
        if self.end is not None:
            return
        self.end = end
        if self.session.state is not SessionState.CLOSED:
            # Ended without a close packet for the client (socket dropped, server shutting down).
            self.session.transport_closed(end.detail)
        logger.debug("Engine.IO session %s ended: %s %s", self.sid, end.reason, end.detail)
        if self.nursery is not None:
            self.nursery.cancel_scope.cancel()
        if self._reader_scope is not None:
            self._reader_scope.cancel()
        self.notify()

    @property
    def writes_at_once(self) -> bool:
        """True while the session runs on the WebSocket transport: :meth:`send_messages` writes, not queues."""
        return self.end is None and self._websocket is not None and self.session.transport == "websocket"

    async def send_messages(self, messages: Sequence[str | bytes | PreparedMessage], *, schedule: bool = True) -> bool:
        """Send message packets to the client on the active transport.

        Args:
            messages: message data (``str`` or ``bytes``), or a
                :class:`~trio_ws.PreparedMessage` holding a whole message
                packet's WebSocket encoding (text ``4<data>``, or binary).
            schedule: as for :meth:`WebSocketConnection.send_many
                <trio_ws.WebSocketConnection.send_many>` (False: the caller
                has just yielded, a write that goes out at once need not yield again).

        Returns:
            True when they were written on the WebSocket transport (after
            what the session had queued, in one write); False when they
            were queued for long-polling (or an upgrade under way), where
            :meth:`taken` tells when a transport took them.

        Raises:
            SessionClosed: the session has ended, or ends now (the WebSocket
                closed while writing; ``max_buffered`` packets waiting).
            ValueError: for a prepared text that is not a message packet.

        Cancelling is safe before the write starts; cut short, it ends the
        session (a half-written frame cannot be taken back). Concurrent calls
        are allowed: each batch is written whole.
        """
        ws = self._websocket
        if ws is not None and self.writes_at_once:
            lock = self._write_lock
            try:
                # Free (the usual case): taken without a trip through the scheduler;
                # ws.send_many() checks for cancellation and yields once anyway.
                lock.acquire_nowait()
            except trio.WouldBlock:
                await lock.acquire()
            try:
                if self.end is not None:
                    raise SessionClosed(f"Engine.IO session {self.sid} is closed")
                queued = self.session.data_to_send()
                if queued:
                    self.taken()
                frames = [websocket_frame(packet) for packet in queued]
                for message in messages:
                    if isinstance(message, PreparedMessage):
                        if message.is_text and not message.payload.startswith(b"4"):
                            raise ValueError(f"not an Engine.IO message packet: {message.payload[:20]!r}")
                        frames.append(message)
                    else:
                        frames.append(encode_packet(EnginePacket(EngineType.MESSAGE, message)))
                try:
                    await ws.send_many(frames, schedule=schedule)
                except ConnectionClosed:
                    self.finish(SessionEnded("transport close"))
                    raise SessionClosed(f"Engine.IO session {self.sid} is closed") from None
            finally:
                lock.release()
            return True
        try:
            for message in messages:
                if isinstance(message, PreparedMessage):
                    self.session.send_prepared(message)
                else:
                    self.session.send(message)
        except SessionClosed as err:
            if self.session.overflowed:
                self.finish(SessionEnded("buffer full", str(err)))
            raise
        self.notify()
        return False

    def fail(self, reason: str, detail: str) -> None:
        """End the session from the server's side: a close packet for a polling client; a WebSocket just closes."""
        self.session.close()
        self.finish(SessionEnded(reason, detail))

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Own the session until it ends: the clock, the layer's tasks, then :meth:`session_ended`.

        ``task_status.started()`` once :attr:`nursery` exists. Cancelling ends
        the session as ``"server shutting down"``. Call it once.
        """
        try:
            async with trio.open_nursery() as nursery:
                self.nursery = nursery
                if self.end is not None:
                    nursery.cancel_scope.cancel()
                nursery.start_soon(self._clock)
                task_status.started()
                await trio.sleep_forever()  # until finish() cancels the nursery
        finally:
            with trio.CancelScope(shield=True), trio.move_on_after(FLUSH_TIMEOUT):
                self.finish(SessionEnded("server shutting down"))
                await self.session_ended()

    async def _clock(self) -> None:
        while True:
            self._clock_wake = wake = trio.Event()
            self._clock_at = self._next_time()
            with trio.move_on_at(self._clock_at):
                await wake.wait()
            self._clock_at = -math.inf  # awake: no re-arm needed until it sleeps again
            now = trio.current_time()
            for event in self.session.tick(now):
                if isinstance(event, SessionEnded):
                    self.finish(event)
                # An UpgradeAborted is seen by the probing WebSocket on its next packet; a waiting
                # GET needs no wake-up (its answer goes from noop back to "keep waiting").
            self.tick(now)
            if self.session.queued:  # a ping (an end, from either tick, has woken everyone)
                self.notify()

    async def receive(self, packets: list[EnginePacket]) -> None:
        """Feed packets from the client's active transport to the session and the layer above.

        Raises:
            InvalidPacket: from the session or the layer above; the caller ends the session.
        """
        await self._feed(packets)
        # Let the tasks the packets started (a connect handler) run before the next packet.
        await trio.lowlevel.checkpoint()

    async def _feed(self, packets: list[EnginePacket]) -> None:
        """:meth:`receive` without its final yield (the WebSocket reader's next receive yields once anyway)."""
        now = trio.current_time()
        for packet in packets:
            for event in self.session.receive(packet, now):
                if isinstance(event, MessageReceived):
                    await self.message_received(event.data)
                elif isinstance(event, SessionEnded):
                    self.finish(event)
        if self.session.queued:
            self.notify()  # an answer queued (a pong to a ping, what the layer queued without notifying)
        else:
            self._rearm_clock()  # a pong sets the next ping, which may come before the pong deadline

    # WebSocket -----------------------------------------------------------

    async def websocket_transport(self, ws: WebSocketConnection, *, opening: bool = False) -> None:
        """Serve the session over ``ws`` until the session ends or ``ws`` closes; then close ``ws``.

        With ``opening`` the open packet is sent first (a WebSocket-only
        session). Packets queued before (during an upgrade) are sent first.
        """
        try:
            if opening:
                await ws.send_message(encode_packet(self.session.open_packet()))
            # From here on send_messages() writes on it too: the open packet is first.
            self._websocket = ws
            # Message packets the layer can take at once are handled in the WebSocket's
            # reader task, not passed on to _ws_reader: one trip through the scheduler fewer.
            ws._set_message_sink(self._message_now)
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._ws_writer, ws)
                with trio.CancelScope() as self._reader_scope:
                    if self.end is None:
                        await self._ws_reader(ws)
                # Ended: the writer sends what is left, then returns.
                nursery.cancel_scope.deadline = trio.current_time() + FLUSH_TIMEOUT
        except ConnectionClosed:
            self.finish(SessionEnded("transport close"))
        end = self.end or SessionEnded("transport close")
        with trio.move_on_after(FLUSH_TIMEOUT):
            await ws.aclose(self.websocket_close_code(end), end.detail[:100] or end.reason)

    def websocket_close_code(self, end: SessionEnded) -> int:
        """The close code of the WebSocket of a session that ended for ``end`` (1008 for bad input)."""
        if end.reason in ("parse error", "buffer full"):
            return POLICY_VIOLATION
        if end.reason == "server shutting down":
            return GOING_AWAY
        return NORMAL_CLOSURE

    async def _ws_writer(self, ws: WebSocketConnection) -> None:
        while True:
            wake = self._wake
            if not self.session.queued:
                if self.end is not None:
                    return
                await wake.wait()
                continue
            async with self._write_lock:
                # Taken under the lock: a send_messages() that wrote first took them already.
                packets = self.session.data_to_send()
                if not packets:
                    continue
                self.taken()
                try:
                    await ws.send_many([websocket_frame(packet) for packet in packets])
                except ConnectionClosed:
                    self.finish(SessionEnded("transport close"))
                    return

    def _message_now(self, message: str | bytes) -> bool:
        """The WebSocket's sink (see :meth:`message_received_now`): a short text message packet of an
        open session; anything else, or what the layer declines, goes to :meth:`_ws_reader`, in order."""
        if (
            type(message) is not str
            or message[:1] != "4"
            or 4 * len(message) > self.config.max_payload  # surely within max_payload, else checked there
            or self.end is not None
            or self.session.state is not SessionState.OPEN
        ):
            return False
        return self.message_received_now(message[1:])

    async def _ws_reader(self, ws: WebSocketConnection) -> None:
        limit = self.config.max_payload
        while self.end is None:
            try:
                message = await ws.get_message()
            except ConnectionClosed:
                self.finish(SessionEnded("transport close"))
                return
            try:
                size = len(message) if isinstance(message, bytes) else len(message.encode("utf-8", "surrogatepass"))
                if size > limit:
                    raise PayloadTooLarge("Engine.IO packet", size, limit)
                # get_message() yielded once: the tasks the packet starts run before the next one.
                await self._feed([decode_packet(message)])
            except InvalidPacket as err:
                logger.info("Engine.IO session %s: invalid input, closing: %s", self.sid, err)
                self.fail("parse error", str(err))
                return

    async def upgrade(self, ws: WebSocketConnection) -> None:
        """Take the session over from long-polling on ``ws`` (engine.io-protocol v4 "Upgrade").

        Runs the probe; on ``5`` serves the session over ``ws`` until it ends.
        A probe that fails or times out closes ``ws`` with 1008 and the
        session carries on over long-polling.
        """
        try:
            self.session.start_upgrade(trio.current_time())
        except (SessionClosed, ValueError) as err:
            await ws.aclose(POLICY_VIOLATION, str(err)[:100])
            return
        self._rearm_clock()  # the upgrade timeout may come before the next ping
        problem = f"upgrade not completed within upgrade_timeout={self.config.upgrade_timeout:g} s"
        try:
            upgraded, problem = await self._probe(ws, problem)
        except ConnectionClosed:
            self.session.probe_closed()
            return
        if not upgraded:
            self.session.probe_closed()
            logger.info("Engine.IO session %s: upgrade abandoned: %s", self.sid, problem)
            await ws.aclose(POLICY_VIOLATION, problem[:100])
            return
        logger.debug("Engine.IO session %s upgraded to WebSocket", self.sid)
        self.notify()
        await self.websocket_transport(ws)

    async def _probe(self, ws: WebSocketConnection, problem: str) -> tuple[bool, str]:
        """Run the probe exchange; returns whether the client upgraded, and if not why."""
        with trio.move_on_after(self.config.upgrade_timeout):
            while True:
                message = await ws.get_message()
                try:
                    events = self.session.receive_probe(decode_packet(message), trio.current_time())
                except InvalidPacket as err:
                    return False, str(err)
                for event in events:
                    if isinstance(event, ProbeAnswer):
                        await ws.send_message(encode_packet(event.packet))
                        self.notify()  # a waiting GET gets its noop
                    elif isinstance(event, UpgradeCompleted):
                        return True, ""
                    elif isinstance(event, UpgradeAborted):
                        return False, event.reason
        return False, problem

    # Long-polling --------------------------------------------------------

    async def poll(self, request: WebSocketRequest, headers: list[Header]) -> None:
        """Answer a long-polling ``GET`` once the session has packets for it.

        Raises:
            EngineRequestError: a ``GET`` is already waiting (the session is
                ended, and the waiting one gets the close packet).
        """
        if self._get_busy:
            self.fail("transport error", "overlapping GET requests on a long-polling session")
            raise EngineRequestError(3)
        self._get_busy = True
        try:
            while True:
                wake = self._wake
                packets = self.session.poll()
                if packets is not None:
                    break
                left = False
                async with trio.open_nursery() as nursery:

                    async def watch() -> None:
                        nonlocal left
                        await request.wait_disconnected()
                        left = True
                        nursery.cancel_scope.cancel()

                    nursery.start_soon(watch)
                    await wake.wait()
                    nursery.cancel_scope.cancel()
                if left:
                    self.finish(SessionEnded("transport close", "poll connection closed prematurely"))
                    return
        finally:
            self._get_busy = False
        self.taken()
        body = encode_payload(packets).encode("utf-8")
        await request.respond(200, headers=[*headers, ("Content-Type", "text/plain; charset=UTF-8")], body=body)

    async def post(self, request: WebSocketRequest, headers: list[Header]) -> None:
        """Read a long-polling ``POST``, feed its packets to the session, answer ``ok``.

        Raises:
            EngineRequestError: another ``POST`` is under way, or the body is
                malformed; the session is ended.
            RequestBodyError: the body is too large or does not arrive within
                ``ping_timeout``; the session is ended.
        """
        if self._post_busy:
            self.fail("transport error", "overlapping POST requests on a long-polling session")
            raise EngineRequestError(3)
        self._post_busy = True
        try:
            try:
                body = await request.read_body(max_size=self.config.max_payload, timeout=self.config.ping_timeout)
                packets = decode_payload(body, max_payload=self.config.max_payload)
                await self.receive(packets)
            except RequestBodyError as err:
                self.fail("transport error", str(err))
                raise
            except InvalidPacket as err:
                logger.info("Engine.IO session %s: invalid input, closing: %s", self.sid, err)
                self.fail("parse error", str(err))
                raise EngineRequestError(3) from err
        finally:
            self._post_busy = False
        await request.respond(200, headers=[*headers, ("Content-Type", "text/html")], body=b"ok")
