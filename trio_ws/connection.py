"""A WebSocket connection over any :class:`trio.abc.Stream`.

Theory of operation. Each connection runs a *reader* task
(:mod:`trio_ws.reader`: the one read loop, which feeds the protocol core and
acts on its events) and, with ``ping_interval``, a *keepalive* task
(:func:`trio_ws.heartbeat.keep_alive`). Both run in a nursery that the caller
owns (``connect_websocket``) or that the library opens around the connection
(``open_websocket``, the server), and both end when the transport is closed.

Each concept lives in its own module: the protocol core and its closing
state decide (:mod:`trio_ws.protocol`, :mod:`trio_ws.closing`); the receive
queue holds what was read until :meth:`WebSocketConnection.get_message`
takes it (:mod:`trio_ws.receive_queue`); the writer serialises what is sent
(:mod:`trio_ws.writer`); the ping tracker matches pongs to pings
(:mod:`trio_ws.pings`); the properties that describe the connection are
:mod:`trio_ws.connection_details`. This module wires them to a stream and
holds the public API, including closing: :meth:`WebSocketConnection.aclose` sends our
close frame and waits while the reader (or, when the reader was cancelled
with its owner, ``aclose`` itself) reads until the closing state expects no
more input.

The hot paths avoid locks that always yield: an uncontended receive or write
costs one trip through Trio's scheduler, as Trio's checkpoint rules require,
and a whole message sent right after the same task's receive costs none (the
receive just yielded), so answering a message costs one trip, not two.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable
from functools import partial
from typing import TYPE_CHECKING

import trio

from .close import ABNORMAL_CLOSURE, INTERNAL_ERROR, NORMAL_CLOSURE, CloseReason, is_sendable_close_code
from .connection_details import ConnectionDetails
from .errors import TRANSPORT_ERRORS, ConnectionClosed, MessageTypeError
from .heartbeat import keep_alive
from .locks import LazyEvent, LazyParkingLot
from .log import ConnectionLogger
from .options import ConnectionOptions, seconds_or_inf
from .pings import PingTracker
from .prepared import PreparedMessage
from .protocol import ProtocolCore
from .reader import Reader
from .receive_queue import Message, ReceiveQueue
from .writer import Writer

if TYPE_CHECKING:
    from .handshake import RawHeaders as Headers

__all__ = ["WebSocketConnection", "Message", "CANCELLED_CLOSE_GRACE", "close_transport"]


#: A close that runs shielded because its owner was cancelled (the end of a
#: cancelled ``open_websocket`` block, a server shutting down) waits at most
#: ``disconnect_timeout`` for the peer, or this many seconds when
#: ``disconnect_timeout`` is None: a shielded wait always has a deadline.
CANCELLED_CLOSE_GRACE = 2.0


async def close_transport(stream: trio.abc.Stream) -> None:
    """Close ``stream`` at once; never raises, even when cancelled. Closing twice is harmless.

    ``SocketStream.aclose()`` is ``socket.close()`` and a checkpoint: a plain
    TCP or Unix stream is closed directly, without the two cancel scopes and
    the ``Cancelled`` that :func:`trio.aclose_forcefully` raises and catches
    (a socket cannot fail to close). Other streams (TLS) are closed forcefully.
    """
    if type(stream) is trio.SocketStream:
        stream.socket.close()
        return
    with trio.CancelScope(shield=True), contextlib.suppress(*TRANSPORT_ERRORS):
        await trio.aclose_forcefully(stream)


class WebSocketConnection(ConnectionDetails, trio.abc.AsyncResource):
    """An open WebSocket connection, client or server side.

    Do not create one directly: get it from :func:`~trio_ws.open_websocket`,
    :func:`~trio_ws.connect_websocket`, :meth:`WebSocketRequest.accept` or the
    other entry points. Iterating it (``async for message in ws``) yields
    messages until the connection closes; it ends quietly on a normal close
    (1000, 1001, 1005) and raises :class:`~trio_ws.ConnectionClosedError`
    otherwise.
    """

    def __init__(
        self,
        stream: trio.abc.Stream,
        core: ProtocolCore,
        *,
        options: ConnectionOptions,
        path: str,
        subprotocol: str | None,
        handshake_headers: Headers,
        logger: ConnectionLogger,
        trailing_data: bytes = b"",
    ) -> None:
        self._stream = stream
        self._core = core
        self._options = options
        self._path = path
        self._subprotocol = subprotocol
        self._handshake_headers = handshake_headers
        self._logger = logger
        self._queue = ReceiveQueue(options.message_queue_size, self.closed_error)
        self._pings = PingTracker()
        self._transport_closed = LazyEvent()  # its trio.Event is made when a task waits
        self._writer = Writer(
            stream,
            core,
            transport_closed=self._transport_closed,
            owner=self,
            logger=logger,
        )
        self._close_progress = LazyParkingLot()  # woken when the close handshake advances
        self._reader = Reader(
            stream,
            core,
            self._queue,
            self._writer,
            self._pings,
            options=options,
            trailing_data=trailing_data,
            transport_closed=self._transport_closed,
            progress=self._close_progress,
            owner=self,
            logger=logger,
        )
        self._close_timed_out = False  # see close_timed_out
        self._started = False

    # -- lifecycle -----------------------------------------------------------
    def _start(self, nursery: trio.Nursery) -> None:
        """Start the reader (and keepalive) tasks in ``nursery``."""
        if self._started:
            raise RuntimeError("connection already started")
        self._started = True
        nursery.start_soon(self._reader.run, name=f"trio_ws reader {self._logger.conn_id}")
        if self._options.ping_interval is not None:
            keepalive = partial(
                keep_alive,
                self,
                interval=self._options.ping_interval,
                timeout=self._options.ping_timeout,
                reason="keepalive ping timeout",
            )
            nursery.start_soon(keepalive, name=f"trio_ws keepalive {self._logger.conn_id}")

    # -- properties ----------------------------------------------------------
    @property
    def closed(self) -> CloseReason | None:
        """Why the connection is closed or closing, or None while it is open."""
        return self._core.closing.reason

    @property
    def close_timed_out(self) -> bool:
        """True when :meth:`aclose` sent a close frame but gave up waiting for the peer's.

        That is, the closing handshake took longer than ``disconnect_timeout``
        and the transport was closed without it (``open_websocket`` raises
        :class:`~trio_ws.DisconnectionTimeout` then).
        """
        return self._close_timed_out

    # -- receiving -----------------------------------------------------------
    async def get_message(self) -> Message:
        """Receive the next message, waiting until one arrives.

        Messages already received are still returned after the connection has
        closed; only then is :class:`~trio_ws.ConnectionClosed` raised.

        Returns:
            a ``str`` for a text message, ``bytes`` for a binary one.

        Raises:
            ConnectionClosed: when the connection is closed and no message is
                left (the subclass tells a normal close from an error).

        Cancelling is safe: a message is removed from the queue only when it is
        returned. Concurrent calls are allowed; they are served in turn, each
        getting whole messages.
        """
        message = await self._queue.get_message()
        # get_message always yields to the scheduler once: the reply a task
        # sends next need not yield again (see Writer.receive_yielded).
        self._writer.receive_yielded()
        return message

    async def wait_closed(self) -> None:
        """Wait until the connection is closed and its transport released.

        Cancelling is safe; any number of tasks may wait.
        """
        await self._transport_closed.wait()

    def receive_stream(self) -> AsyncIterator[Message]:
        """Receive the next message as chunks, without assembling it whole.

        Use it with ``max_message_size=None`` to take messages larger than
        memory should hold. Each chunk is ``str`` for a text message and
        ``bytes`` for a binary one; the iteration ends after the last chunk.
        Abandoning the iteration early discards the rest of that message.

        Raises:
            ConnectionClosed: from the iteration, when the connection closes
                before the message is complete.
            ConcurrencyError: from the iteration, when another receive took
                the rest of this message (a ``get_message`` or another stream,
                started while this one was mid-message, discards the rest as
                if this iteration had been abandoned), instead of yielding
                chunks of a later message.

        Cancelling is safe (a chunk is consumed only when yielded); concurrent
        receives are served in turn per chunk, so run one receiver at a time.
        """
        return self._queue.chunks()

    def __aiter__(self) -> AsyncIterator[Message]:
        return self

    async def __anext__(self) -> Message:
        try:
            return await self.get_message()
        except ConnectionClosed as err:
            if err.reason.is_ok:
                raise StopAsyncIteration from None
            raise

    # -- sending -------------------------------------------------------------
    async def send_message(
        self,
        message: str
        | bytes
        | bytearray
        | memoryview
        | PreparedMessage
        | Iterable[str]
        | Iterable[bytes]
        | AsyncIterable[str]
        | AsyncIterable[bytes],
        *,
        compress: bool = True,
    ) -> None:
        """Send a message.

        Args:
            message: ``str`` for a text message; ``bytes``, ``bytearray`` or
                ``memoryview`` for a binary one; a :class:`PreparedMessage`
                (framed once for many connections); or a sync or async iterable of
                ``str`` (or of bytes-like) chunks, sent as one fragmented
                message (RFC 6455 §5.4). An empty iterable sends nothing.
            compress: with permessage-deflate negotiated, False sends this
                message uncompressed (for data that is already compressed).

        Raises:
            ConnectionClosed: when the connection is closed or closing.
            TypeError: for an unsupported message type (a subclass that is
                also a ``ValueError``, as trio-websocket raises), or an
                iterable that mixes ``str`` and bytes chunks (the connection is
                then closed with 1011, since the message cannot be finished).

        Cancelling is safe until the frame's first byte reaches the transport
        (while the call waits for its turn, or is called in a cancelled scope):
        nothing is sent and the connection stays open. Cancelled after that,
        the connection is aborted with 1006 (a half-written frame cannot be
        taken back). Concurrent calls are allowed: messages are sent whole,
        one after the other.

        It yields to other tasks once, except that a whole message sent right
        after the same task's :meth:`get_message` returned (which yielded)
        goes out without a second yield when a plain TCP or Unix socket takes
        it at once; a cancellation is still noticed before anything is sent.
        """
        if isinstance(message, (str, bytes, PreparedMessage)):
            await self._writer.send_whole(message, compress)
        elif isinstance(message, (bytearray, memoryview)):
            await self._writer.send_whole(bytes(message), compress)
        elif isinstance(message, AsyncIterable):
            await self._writer.send_fragments(message, compress)
        elif isinstance(message, Iterable):
            await self._writer.send_fragments(_aiter_sync(message), compress)
        else:
            raise MessageTypeError(
                f"message must be str, bytes-like or an iterable of them, not {type(message).__name__}"
            )

    def _set_message_sink(self, sink: Callable[[str | bytes], bool] | None) -> None:
        """For a layer that is this connection's only receiver (Engine.IO): take whole messages in the
        reader's task when its receiver waits and nothing is queued (see ``receive_queue.py``)."""
        self._queue.set_sink(sink)

    async def send_many(
        self, messages: Iterable[str | bytes | PreparedMessage], *, compress: bool = True, schedule: bool = True
    ) -> None:
        """Send several whole messages, in order, as one write to the transport.

        Fan-out uses it to flush a member's queue. The frames are not joined:
        on a TCP or Unix socket they go out in one gather system call
        (``sendmsg``), elsewhere small frames are joined into chunks of at
        most 16 KiB and larger ones written as they are. So the frames of
        :class:`PreparedMessage` values stay shared with every other
        connection (as with :meth:`send_message`) instead of being copied
        once per connection.

        Args:
            messages: ``str``, ``bytes`` or :class:`PreparedMessage` values.
            compress: as for :meth:`send_message`.
            schedule: False for a caller that has just yielded to the
                scheduler (it waited for these messages, as the hub's sender
                does): a single message that the transport takes at once then
                returns without yielding again (it still raises
                ``Cancelled`` first when cancelled). True (the default):
                every call yields, as every Trio I/O call does.

        Raises:
            ConnectionClosed: when the connection is closed or closing.
            TypeError: for a value of another type (nothing is sent then).

        Cancelling is safe until the first byte reaches the transport;
        cancelled after that, the connection is aborted (see
        :meth:`send_message`).
        Concurrent calls are allowed; each batch goes out whole.
        """
        items = list(messages)
        for item in items:
            if not isinstance(item, (str, bytes, PreparedMessage)):
                raise TypeError(f"send_many takes str, bytes or PreparedMessage, not {type(item).__name__}")
        await self._writer.send_many(items, compress, schedule=schedule)

    async def ping(self, payload: bytes | None = None) -> None:
        """Send a ping and wait for the matching pong.

        Args:
            payload: up to 125 bytes; by default a random 4-byte payload that
                no other pending ping uses. A pong answers its own ping and
                every earlier one (RFC 6455 §5.5.3 lets a peer answer only the
                latest).

        Raises:
            ConnectionClosed: when the connection closes before the pong.
            ValueError: when ``payload`` is already in use by a pending ping,
                or is longer than 125 bytes.

        Cancelling is safe: the ping is forgotten. Concurrent pings are allowed.
        """
        payload = self._pings.payload_for(payload)
        self._writer.check_can_send()
        pending = self._pings.add(payload)
        try:
            await self._writer.write(self._core.encode_ping(payload))
            await pending.event.wait()
        finally:
            self._pings.discard(payload)
        if not pending.answered:
            raise self.closed_error()

    async def pong(self, payload: bytes | None = None) -> None:
        """Send an unsolicited pong (a unidirectional heartbeat, RFC 6455 §5.5.3).

        Args:
            payload: up to 125 bytes (default empty).

        Raises:
            ConnectionClosed: when the connection is closed or closing.
            ValueError: when ``payload`` is longer than 125 bytes.

        Cancelling is safe before the frame starts going out (see
        :meth:`send_message`). Concurrent calls are allowed.
        """
        payload = payload or b""
        if len(payload) > 125:
            raise ValueError(f"pong payload of {len(payload)} bytes exceeds 125 bytes")
        self._writer.check_can_send()
        await self._writer.write(self._core.encode_pong(payload))

    # -- closing -------------------------------------------------------------
    async def aclose(self, code: int = NORMAL_CLOSURE, reason: str | None = None) -> None:
        """Close the connection with the closing handshake (RFC 6455 §7).

        Sends a close frame, waits up to ``disconnect_timeout`` for the peer's,
        then closes the transport. Idempotent: later calls wait for the first
        to finish. Messages received before the close can still be read with
        :meth:`get_message`.

        Args:
            code: the close code (1000 by default; 3000-4999 for applications).
            reason: a short text (truncated to fit the 125-byte frame).

        Raises:
            ValueError: when ``code`` may not be sent in a close frame.

        Cancelling closes the transport at once (no waiting for the peer).
        Concurrent calls are allowed.
        """
        if not is_sendable_close_code(code):
            raise ValueError(f"close code {code} may not be sent in a close frame")
        core = self._core
        try:
            core.closing.set_user_reason(code, reason)
            frame = None
            if core.can_send_close and not self._transport_closed.is_set():
                frame = core.encode_close(code, reason)
                self._end_input()
                self._queue.wake_reader()  # the reader must read on to find the peer's close
            if frame is not None or not self._transport_closed.is_set():
                # (Closed already and nothing to send, as when a handler ends
                # after the peer's close: no deadline needed.)
                with trio.move_on_after(seconds_or_inf(self._options.disconnect_timeout)) as scope:
                    if frame is not None:
                        with contextlib.suppress(ConnectionClosed):
                            await self._writer.write(frame)
                    await self._finish_closing()
                if scope.cancelled_caught and frame is not None:
                    self._close_timed_out = True
                    self._logger.debug("closing handshake timed out")
            await self._abort_stream()
        except BaseException:
            await self._abort_stream()
            raise

    async def _finish_closing(self) -> None:
        """Wait until the closing handshake needs no more input, reading it ourselves if the reader is gone."""
        closing = self._core.closing
        while not self._transport_closed.is_set():
            if closing.handshake_done and not closing.close_expected:
                return  # this side closes TCP now (§7.1.1)
            if not self._reader.done:
                await self._close_progress.park()  # the reader acts on the peer's frames
            elif closing.close_expected:
                # The reader was cancelled with its owner: read the peer's
                # close frame (and, on the client, the server's EOF) here.
                await self._reader.read_until_closed()
            else:
                return

    async def fail(self, code: int = INTERNAL_ERROR, reason: str | None = None) -> None:
        """Fail the connection (RFC 6455 §7.1.7): send a close frame, then drop TCP at once.

        Unlike :meth:`aclose`, this does not wait for the peer's close frame:
        use it when the peer is not expected to answer (a keepalive ping went
        unanswered, the peer broke your application's protocol). The close
        frame gets at most one second (``disconnect_timeout`` when shorter).
        Nothing is sent when a close frame already went out.

        Args:
            code: the close code (1011 by default).
            reason: a short text (truncated to fit the 125-byte frame).

        Raises:
            ValueError: when ``code`` may not be sent in a close frame.

        Cancelling is safe: the transport is closed either way. Concurrent
        calls are allowed; the first code is the one :attr:`closed` reports.
        """
        if not is_sendable_close_code(code):
            raise ValueError(f"close code {code} may not be sent in a close frame")
        self._logger.info("failing the connection: %d %s", code, reason or "")
        await self._fail(code, reason)

    async def aclose_shielded(self, code: int = NORMAL_CLOSURE, reason: str | None = None) -> None:
        """Close even though the calling scope is cancelled or unwinding from an error.

        For an owner that is being cancelled (the end of a cancelled
        ``open_websocket`` block, a server shutting down): the close runs
        shielded, so the close frames are still exchanged, yet bounded by
        ``disconnect_timeout``, or :data:`CANCELLED_CLOSE_GRACE` when that is
        None. A client does not wait for the server's EOF afterwards (the
        closing handshake is what the peer needs; TCP is then dropped). The
        transport is closed when this returns.

        Args:
            code: the close code (1000 by default; 3000-4999 for applications).
            reason: a short text (truncated to fit the 125-byte frame).

        Raises:
            ValueError: when ``code`` may not be sent in a close frame.

        Cancelling has no effect: that is its purpose (the bound above ends
        it). Concurrent calls are allowed, as for :meth:`aclose`.
        """
        if not is_sendable_close_code(code):
            raise ValueError(f"close code {code} may not be sent in a close frame")
        limit = self._options.disconnect_timeout
        with trio.CancelScope(shield=True):
            with trio.move_on_after(CANCELLED_CLOSE_GRACE if limit is None else limit):
                self._core.closing.wait_for_eof = False
                await self.aclose(code, reason)
            await self._abort_stream()

    async def _fail(self, code: int, reason: str | None) -> None:
        """Fail the connection (RFC 6455 §7.1.7): send a close frame if we can, then drop TCP."""
        frame = self._core.fail(code, reason)
        if frame is not None and not self._transport_closed.is_set():
            with trio.move_on_after(min(1.0, seconds_or_inf(self._options.disconnect_timeout))):
                with contextlib.suppress(ConnectionClosed):
                    await self._writer.write(frame)
        await self._abort_stream()

    async def _abort(self, code: int, reason: str) -> None:
        """Close the transport without a closing handshake."""
        self._core.closing.lose_transport(code, reason)
        await self._abort_stream()

    async def _abort_stream(self) -> None:
        """Close the transport (once) and wake every waiter; never raises, even when cancelled."""
        self._core.closing.transport_closed()
        if not self._transport_closed.is_set():
            self._transport_closed.set()
            await close_transport(self._stream)
        self._wake_all()

    def closed_error(self) -> ConnectionClosed:
        """The exception this connection's calls raise once it is closed, to raise it elsewhere too.

        :class:`~trio_ws.ConnectionClosedOK` or
        :class:`~trio_ws.ConnectionClosedError` (see
        :meth:`~trio_ws.ConnectionClosed.for_reason`) for :attr:`closed`, or
        for 1006 (ABNORMAL_CLOSURE) while nothing is recorded yet. For code
        built on the connection (the app layer's calls, a custom receive
        loop) that must fail the way the connection's own methods do.
        """
        return ConnectionClosed.for_reason(self._core.closing.reason or CloseReason(ABNORMAL_CLOSURE, None))

    def _end_input(self) -> None:
        """No more messages will arrive: wake receivers and pending pings."""
        self._queue.end()
        self._pings.abandon_all()

    def _wake_all(self) -> None:
        self._close_progress.unpark_all()
        self._queue.wake_reader()
        self._end_input()

    def __str__(self) -> str:
        # trio-websocket's form: the side and the connection id.
        return f"{'client' if self.is_client else 'server'}-{self.connection_id}"

    def __repr__(self) -> str:
        side = "client" if self.is_client else "server"
        reason = self.closed
        state = "open" if reason is None else f"closed {reason.code}"
        return f"<WebSocketConnection #{self.connection_id} {side} {self._path!r} {state}>"


async def _aiter_sync(items: Iterable[str] | Iterable[bytes]) -> AsyncIterator[str | bytes]:
    for item in items:
        yield item
