"""The one read loop of a connection: transport bytes into the core, its events acted on.

Theory of operation. :meth:`Reader.read_until_closed` reads the transport,
feeds :class:`~trio_ws.protocol.ProtocolCore` and acts on its events: data
chunks go to the :class:`~trio_ws.receive_queue.ReceiveQueue`; pings get the
pong the core says is due (none once the connection is closing); pongs wake
:meth:`~trio_ws.WebSocketConnection.ping`; the peer's close frame gets the
answer the core returns; a protocol failure fails the connection. It reads
for as long as the closing state expects input
(:attr:`~trio_ws.closing.ClosingState.close_expected`), then closes the
transport. When the queue holds more than ``message_queue_size`` chunks it
stops reading, so TCP pushes back on the peer; a control frame behind such
messages waits its turn, so whether frames share a TCP segment never changes
what happens.

The connection's reader task runs it (:meth:`Reader.run`); when that task is
cancelled with its owner, :meth:`~trio_ws.WebSocketConnection.aclose` runs
the same loop to read the peer's close frame (and, on a client, its EOF).
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

import trio

from .close import ABNORMAL_CLOSURE, INTERNAL_ERROR
from .errors import TRANSPORT_ERRORS, ConnectionClosed
from .locks import LazyEvent, LazyParkingLot
from .log import ConnectionLogger
from .options import ConnectionOptions, seconds_or_inf
from .pings import PingTracker
from .plainsocket import plain_socket, read_socket, read_socket_into
from .protocol import CloseReceived, Event, MessageChunk, PingReceived, PongReceived, ProtocolCore, ProtocolFailure
from .receive_queue import ReceiveQueue
from .writer import Writer

if TYPE_CHECKING:
    from .connection import WebSocketConnection

__all__ = ["Reader"]


class Reader:
    """Reads one connection's transport until the closing handshake needs no more input.

    Args:
        stream: the transport.
        core: the connection's protocol core.
        queue: where received message chunks go.
        writer: writes pongs and close frames.
        pings: the pings awaiting their pong.
        options: the connection's options (receive buffer size, disconnect timeout).
        trailing_data: bytes read with the opening handshake, fed first.
        transport_closed: set once the transport is closed.
        progress: woken whenever the closing handshake advances or reading ends.
        owner: the connection, which fails itself (RFC 6455 §7.1.7), aborts
            (closes the transport without a handshake) or closes its
            transport when reading ends (one reference instead of a bound
            method per callback keeps an idle connection small).
        logger: the connection's logger.
    """

    __slots__ = (
        "_core",
        "_logger",
        "_options",
        "_owner",
        "_pings",
        "_progress",
        "_queue",
        "_stream",
        "_trailing_data",
        "_transport_closed",
        "_writer",
        "done",
    )

    def __init__(
        self,
        stream: trio.abc.Stream,
        core: ProtocolCore,
        queue: ReceiveQueue,
        writer: Writer,
        pings: PingTracker,
        *,
        options: ConnectionOptions,
        trailing_data: bytes,
        transport_closed: trio.Event | LazyEvent,
        progress: trio.lowlevel.ParkingLot | LazyParkingLot,
        owner: WebSocketConnection,
        logger: ConnectionLogger,
    ) -> None:
        self._stream = stream
        self._core = core
        self._queue = queue
        self._writer = writer
        self._pings = pings
        self._options = options
        self._trailing_data = trailing_data
        self._transport_closed = transport_closed
        self._progress = progress
        self._owner = owner
        self._logger = logger
        #: True once the reader task ended (or was cancelled with its owner).
        self.done = False

    def _end_input(self) -> None:
        self._queue.end()
        self._pings.abandon_all()

    async def run(self) -> None:
        """The connection's reader task."""
        try:
            await self.read_until_closed()
        except trio.Cancelled:
            self._end_input()
            # Our owner's scope is being cancelled (a server shutting down, a
            # cancelled open_websocket block). Leave the transport open: the
            # owner's aclose() now reads the peer's close frame itself.
            self.done = True
            self._progress.unpark_all()
            raise
        except Exception:
            self._logger.exception("unexpected error in the connection's reader")
            await self._owner._fail(INTERNAL_ERROR, "internal error")
        self.done = True
        self._end_input()
        self._progress.unpark_all()
        if not self._transport_closed.is_set():
            with trio.CancelScope(shield=True):
                await self._owner._abort_stream()

    async def read_until_closed(self) -> None:
        """Feed the core and act on its events until no input is expected.

        Ends with the transport closed, except when cancelled.
        """
        core = self._core
        closing = core.closing
        queue = self._queue
        stream = self._stream
        sock = plain_socket(stream)
        transport_closed = self._transport_closed
        size = self._options.receive_buffer_size
        data = self._trailing_data
        self._trailing_data = b""
        filled = 0  # bytes read straight into the core's read_target()
        eof_deadline = float("inf")
        while True:
            if data or filled:
                events = core.received_into(filled) if filled else core.receive_data(data)
                for event in events:
                    if type(event) is MessageChunk:
                        if closing.accepts_messages:
                            queue.put(event)
                        continue
                    # A control frame that arrived behind messages filling the
                    # queue waits its turn, as if it had come in a later read:
                    # whether frames share a TCP segment must not change what
                    # happens (a close is not answered before the queue has room).
                    await self._wait_for_room()
                    if transport_closed.is_set():
                        return
                    await self._act_on(event)
            if transport_closed.is_set():
                return
            if not closing.close_expected:
                if closing.failed:
                    # RFC 6455 §7.1.7: whoever failed the connection closes
                    # TCP once its close frame is out; closing it here could
                    # cut that frame off.
                    await transport_closed.wait()
                    return
                break
            await self._wait_for_room()
            if transport_closed.is_set():
                return
            if closing.handshake_done and eof_deadline == float("inf"):
                # RFC 6455 §7.1.1: the client waits for the server to close
                # TCP first, for at most disconnect_timeout.
                eof_deadline = trio.current_time() + seconds_or_inf(self._options.disconnect_timeout)
            data = b""
            filled = 0
            try:
                if eof_deadline == float("inf"):
                    if sock is None:
                        data = bytes(await stream.receive_some(size))
                    else:
                        target = core.read_target()
                        if target is None:
                            data = await read_socket(sock, size)
                        else:
                            # A large frame: its payload goes straight into
                            # its own buffer (one copy fewer, see protocol.py).
                            filled = await read_socket_into(sock, target[:size])
                else:
                    data = b""
                    with trio.move_on_at(eof_deadline):
                        data = bytes(await stream.receive_some(size))
            except TRANSPORT_ERRORS as err:
                if not transport_closed.is_set():
                    self._logger.debug("transport failed while receiving: %r", err)
                    await self._owner._abort(ABNORMAL_CLOSURE, f"transport failed: {err}")
                return
            if not (data or filled):
                # The peer closed TCP: after a closing handshake that is the
                # normal end, otherwise the connection was lost (1006 unless
                # a close code is already known).
                closing.receive_eof()
                break
        await self._owner._abort_stream()

    async def _wait_for_room(self) -> None:
        queue = self._queue
        while queue.full and self._core.closing.accepts_messages and not self._transport_closed.is_set():
            await queue.wait_for_room()

    async def _act_on(self, event: Event) -> None:
        """Act on a non-data event: write what the core says is due next."""
        core = self._core
        if isinstance(event, PingReceived):
            pong = core.answer_ping(event.payload)
            if pong is not None:
                with contextlib.suppress(ConnectionClosed):
                    await self._writer.write(pong)
        elif isinstance(event, PongReceived):
            self._pings.pong_received(event.payload)
        elif isinstance(event, CloseReceived):
            answer = core.receive_close(event)
            self._progress.unpark_all()
            self._end_input()
            if answer is not None:
                with contextlib.suppress(ConnectionClosed):
                    await self._writer.write(answer)
        elif isinstance(event, ProtocolFailure):
            self._logger.debug("protocol error %d: %s", event.code, event.reason)
            self._end_input()
            await self._owner._fail(event.code, event.reason)
