"""A WebSocket connection over any :class:`trio.abc.Stream`.

Theory of operation. One *reader* task per connection reads the transport,
feeds :class:`~trio_ws.protocol.ProtocolCore` and acts on its events: data
chunks go to a bounded queue that :meth:`WebSocketConnection.get_message`
drains; pings are answered; pongs wake :meth:`~WebSocketConnection.ping`;
a close frame is answered and ends the connection. When the queue holds more
than ``message_queue_size`` chunks the reader stops reading, so TCP pushes
back on the peer. An optional *keepalive* task pings periodically. Both run
in a nursery that the caller owns (``connect_websocket``) or that the library
opens around the connection (``open_websocket``, the server), and both end
when the transport is closed.

Writes are serialised by a small FIFO lock, so a pong can go out between two
fragments of a streamed message. A write cancelled before its first byte
reached the transport changes nothing; one cancelled half-way would leave half
a frame on the wire, so such a cancellation aborts the connection (1006)
rather than let a later frame corrupt the stream. On a plain socket the bytes
written are counted; on other streams (TLS, in-memory) a write that has
started counts as half-way.

The hot paths avoid locks that always yield: an uncontended receive or write
costs one trip through Trio's scheduler, as Trio's checkpoint rules require.
"""

from __future__ import annotations

import contextlib
import os
from collections import OrderedDict
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Sequence
from functools import partial
from typing import TYPE_CHECKING, Any, cast

import trio

from .close import ABNORMAL_CLOSURE, INTERNAL_ERROR, NORMAL_CLOSURE, CloseReason, is_sendable_close_code
from .endpoint import Endpoint, stream_address
from .errors import TRANSPORT_ERRORS as _TRANSPORT_ERRORS
from .errors import ConnectionClosed, MessageTypeError
from .gather import gather_socket, send_frames
from .heartbeat import keep_alive
from .locks import FifoLock
from .log import ConnectionLogger
from .options import ConnectionOptions, seconds_or_inf
from .prepared import PreparedMessage
from .protocol import (
    CloseReceived,
    MessageChunk,
    PingReceived,
    PongReceived,
    ProtocolCore,
    ProtocolFailure,
)
from .receive_queue import Message, ReceiveQueue
from .tls import peer_certificate

if TYPE_CHECKING:
    from .handshake import RawHeaders as Headers

__all__ = ["WebSocketConnection", "Message", "CANCELLED_CLOSE_GRACE"]


#: A close that runs shielded because its owner was cancelled (the end of a
#: cancelled ``open_websocket`` block, a server shutting down) waits at most
#: ``disconnect_timeout`` for the peer, or this many seconds when
#: ``disconnect_timeout`` is None: a shielded wait always has a deadline.
CANCELLED_CLOSE_GRACE = 2.0


class _CountingSocket:
    """A socket's send calls, counting the bytes that reached the kernel."""

    __slots__ = ("_socket", "sent")

    def __init__(self, socket: trio.socket.SocketType) -> None:
        self._socket = socket
        self.sent = 0

    async def send_all(self, data: bytes) -> None:
        view = memoryview(data)
        total = len(view)
        while self.sent < total:
            self.sent += await self._socket.send(view[self.sent :])

    async def sendmsg(self, buffers: Sequence[bytes | memoryview]) -> int:
        sent = await self._socket.sendmsg(buffers)
        self.sent += sent
        return sent


class _PendingPing:
    __slots__ = ("answered", "event", "sent_at")

    def __init__(self, sent_at: float) -> None:
        self.event = trio.Event()
        self.sent_at = sent_at
        self.answered = False


class WebSocketConnection(trio.abc.AsyncResource):
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
        self._gather_socket = gather_socket(stream)
        self._core = core
        self._options = options
        self._path = path
        self._subprotocol = subprotocol
        self._handshake_headers = handshake_headers
        self._logger = logger
        self._trailing_data = trailing_data
        self._queue = ReceiveQueue(options.message_queue_size, self._closed_error)
        self._write_lock = FifoLock()
        self._message_lock = FifoLock()
        self._pings: OrderedDict[bytes, _PendingPing] = OrderedDict()
        self._transport_closed = trio.Event()
        self._reader_done = False  # the reader task ended (or was cancelled)
        self._close_progress = trio.lowlevel.ParkingLot()  # woken when the close handshake advances
        self._close_timed_out = False
        self._latency: float | None = None
        self._started = False

    # -- lifecycle -----------------------------------------------------------
    def _start(self, nursery: trio.Nursery) -> None:
        """Start the reader (and keepalive) tasks in ``nursery``."""
        if self._started:
            raise RuntimeError("connection already started")
        self._started = True
        nursery.start_soon(self._reader_task, name=f"trio_ws reader {self._logger.conn_id}")
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
    def is_client(self) -> bool:
        """True on the client side of the connection."""
        return self._core.is_client

    @property
    def is_server(self) -> bool:
        """True on the server side of the connection."""
        return not self._core.is_client

    @property
    def local(self) -> Endpoint | str:
        """The local address: an :class:`Endpoint`, a Unix socket path, or the stream's repr()."""
        return stream_address(self._stream, remote=False)

    @property
    def remote(self) -> Endpoint | str:
        """The peer's address: an :class:`Endpoint`, a Unix socket path, or the stream's repr()."""
        return stream_address(self._stream, remote=True)

    @property
    def peer_certificate(self) -> dict[str, Any] | None:
        """The peer's TLS certificate as ``ssl`` decodes it, or None (see :func:`trio_ws.tls.peer_certificate`).

        A server sees a client certificate only when its ``ssl.SSLContext``
        asks for one (``verify_mode``) and it passed verification.
        """
        return peer_certificate(self._stream)

    @property
    def path(self) -> str:
        """The request target (path and query) of the opening handshake."""
        return self._path

    @property
    def subprotocol(self) -> str | None:
        """The negotiated subprotocol, or None."""
        return self._subprotocol

    @property
    def handshake_headers(self) -> Headers:
        """The headers the peer sent in the opening handshake, as bytes pairs."""
        return self._handshake_headers

    @property
    def latency(self) -> float | None:
        """The round trip of the last answered ping in seconds, or None yet."""
        return self._latency

    @property
    def compression(self) -> bool:
        """True when permessage-deflate was negotiated."""
        return self._core.extension is not None

    @property
    def shares_frames(self) -> bool:
        """True when prepared messages go out here as shared, pre-built frames."""
        return self._core.shared_framing_key()[0]

    @property
    def connection_id(self) -> int:
        """A process-wide id of this connection, as shown in log records."""
        return self._logger.conn_id

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
        return await self._queue.get_message()

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
        """
        if isinstance(message, (str, bytes, PreparedMessage)):
            await self._send_whole(message, compress)
        elif isinstance(message, (bytearray, memoryview)):
            await self._send_whole(bytes(message), compress)
        elif isinstance(message, AsyncIterable):
            await self._send_fragments(message, compress)
        elif isinstance(message, Iterable):
            await self._send_fragments(_aiter_sync(message), compress)
        else:
            raise MessageTypeError(
                f"message must be str, bytes-like or an iterable of them, not {type(message).__name__}"
            )

    async def _send_whole(self, message: str | bytes | PreparedMessage, compress: bool) -> None:
        await self._message_lock.acquire()
        try:
            self._check_can_send()
            await self._write(self._core.encode_whole(message, compress=compress))
        finally:
            self._message_lock.release()

    async def send_many(self, messages: Iterable[str | bytes | PreparedMessage], *, compress: bool = True) -> None:
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
        await self._message_lock.acquire()
        try:
            self._check_can_send()
            frames = [self._core.encode_whole(item, compress=compress) for item in items]
            if frames:
                await self._write(frames[0] if len(frames) == 1 else frames)
        finally:
            self._message_lock.release()

    async def _send_fragments(
        self, chunks: AsyncIterable[str | bytes | bytearray | memoryview], compress: bool
    ) -> None:
        await self._message_lock.acquire()
        first = True
        try:
            self._check_can_send()
            previous: str | bytes | None = None
            is_text: bool | None = None
            async for chunk in chunks:
                chunk_is_text = isinstance(chunk, str)
                if not chunk_is_text and not isinstance(chunk, (bytes, bytearray, memoryview)):
                    raise MessageTypeError(f"message chunks must be str or bytes-like, not {type(chunk).__name__}")
                if is_text is None:
                    is_text = chunk_is_text
                elif is_text != chunk_is_text:
                    raise TypeError("a fragmented message cannot mix str and bytes chunks")
                data = chunk if isinstance(chunk, (str, bytes)) else bytes(chunk)
                if previous is not None:
                    await self._write_fragment(previous, is_text, first, False, compress)
                    first = False
                previous = data
            if previous is not None:
                assert is_text is not None
                await self._write_fragment(previous, is_text, first, True, compress)
        except BaseException:
            if not first and self.closed is None:
                # Fragments went out but the message cannot be finished: any
                # later data frame would break the framing, so fail the
                # connection (RFC 6455 §7.1.7) rather than leave it unusable.
                with trio.CancelScope(shield=True):
                    await self._fail(INTERNAL_ERROR, "a fragmented message could not be finished")
            raise
        finally:
            self._message_lock.release()

    async def _write_fragment(self, data: str | bytes, is_text: bool, first: bool, fin: bool, compress: bool) -> None:
        self._check_can_send()
        payload = data.encode("utf-8") if isinstance(data, str) else data
        frame = self._core.encode_fragment(payload, is_text=is_text, first=first, fin=fin, compress=compress)
        await self._write(frame)

    def _check_can_send(self) -> None:
        if self._core.closing.reason is not None or not self._core.can_send_data:
            raise self._closed_error()

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
        if payload is None:
            payload = os.urandom(4)
            while payload in self._pings:
                payload = os.urandom(4)
        elif payload in self._pings:
            raise ValueError(f"payload {payload!r} is already used by a pending ping")
        if len(payload) > 125:
            raise ValueError(f"ping payload of {len(payload)} bytes exceeds 125 bytes")
        self._check_can_send()
        pending = _PendingPing(trio.current_time())
        self._pings[payload] = pending
        try:
            await self._write(self._core.encode_ping(payload))
            await pending.event.wait()
        finally:
            self._pings.pop(payload, None)
        if not pending.answered:
            raise self._closed_error()

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
        self._check_can_send()
        await self._write(self._core.encode_pong(payload))

    async def _write(self, data: bytes | list[bytes]) -> None:
        """Write bytes (or a list of frames, see ``gather.py``) to the transport, one writer at a time.

        A cancellation that arrives before any byte reached the transport
        leaves the connection as it was; one that cuts a write short aborts
        the connection (1006), since the rest of a frame cannot be taken back.
        """
        await self._write_lock.acquire()
        try:
            if self._transport_closed.is_set():
                raise self._closed_error()
            # Nothing written yet: cancelled here, the caller's frame is simply
            # not sent and the connection stays usable.
            await trio.lowlevel.checkpoint_if_cancelled()
            counter = None if self._gather_socket is None else _CountingSocket(self._gather_socket)
            try:
                if counter is not None:
                    if isinstance(data, bytes):
                        await counter.send_all(data)
                    else:
                        await send_frames(self._stream, cast("trio.socket.SocketType", counter), data)
                elif isinstance(data, bytes):
                    await self._stream.send_all(data)
                else:
                    await send_frames(self._stream, None, data)
            except _TRANSPORT_ERRORS as err:
                self._logger.debug("transport failed while sending: %r", err)
                await self._abort(ABNORMAL_CLOSURE, f"transport failed while sending: {err}")
                raise self._closed_error() from err
            except BaseException:
                if counter is not None and counter.sent == 0:
                    # A socket write cancelled while waiting for buffer space:
                    # not a byte went out, the stream is intact.
                    raise
                # Cancelled (or worse) mid-write, or on a stream that cannot
                # tell how much it wrote: part of a frame may be on the wire,
                # so nothing else may be written after it.
                await self._abort(ABNORMAL_CLOSURE, "a write was interrupted")
                raise
        finally:
            self._write_lock.release()

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
            with trio.move_on_after(self._timeout(self._options.disconnect_timeout)) as scope:
                if frame is not None:
                    with contextlib.suppress(ConnectionClosed):
                        await self._write(frame)
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
            if not self._reader_done:
                await self._close_progress.park()  # the reader acts on the peer's frames
            elif closing.close_expected:
                # The reader was cancelled with its owner: read the peer's
                # close frame (and, on the client, the server's EOF) here.
                await self._read_until_closed()
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

    async def _close_shielded(self, code: int, reason: str | None) -> None:
        """Close when the owner was cancelled or is unwinding from an error.

        Shielded, so the close frames are still exchanged, yet bounded: by
        ``disconnect_timeout``, or :data:`CANCELLED_CLOSE_GRACE` when that is
        None. A client does not wait for the server's EOF afterwards (the
        close handshake is what the peer needs; TCP is then dropped).
        """
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
            with trio.move_on_after(min(1.0, self._timeout(self._options.disconnect_timeout))):
                with contextlib.suppress(ConnectionClosed):
                    await self._write(frame)
        await self._abort_stream()

    async def _abort(self, code: int, reason: str) -> None:
        """Close the transport without a closing handshake."""
        self._core.closing.lose_transport(code, reason)
        await self._abort_stream()

    async def _abort_stream(self) -> None:
        self._core.closing.transport_closed()
        if not self._transport_closed.is_set():
            self._transport_closed.set()
            with trio.CancelScope(shield=True), contextlib.suppress(*_TRANSPORT_ERRORS):
                await trio.aclose_forcefully(self._stream)
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

    _closed_error = closed_error

    def _end_input(self) -> None:
        """No more messages will arrive: wake receivers and pending pings."""
        self._queue.end()
        for pending in self._pings.values():
            pending.event.set()

    def _wake_all(self) -> None:
        self._close_progress.unpark_all()
        self._queue.wake_reader()
        self._end_input()

    _timeout = staticmethod(seconds_or_inf)

    # -- the reader ----------------------------------------------------------
    async def _reader_task(self) -> None:
        try:
            await self._read_until_closed()
        except trio.Cancelled:
            self._end_input()
            # Our owner's scope is being cancelled (a server shutting down, a
            # cancelled open_websocket block). Leave the transport open: the
            # owner's aclose() now reads the peer's close frame itself.
            self._reader_done = True
            self._close_progress.unpark_all()
            raise
        except Exception:
            self._logger.exception("unexpected error in the connection's reader")
            await self._fail(INTERNAL_ERROR, "internal error")
        self._reader_done = True
        self._end_input()
        self._close_progress.unpark_all()
        with trio.CancelScope(shield=True):
            await self._abort_stream()

    async def _read_until_closed(self) -> None:
        """The one read loop: feed the core and act on its events until no input is expected.

        Run by the reader task, or by :meth:`aclose` when the reader was
        cancelled. Ends with the transport closed, except when cancelled.
        """
        core = self._core
        closing = core.closing
        queue = self._queue
        stream = self._stream
        size = self._options.receive_buffer_size
        data = self._trailing_data
        self._trailing_data = b""
        eof_deadline = float("inf")
        while True:
            if data:
                for event in core.receive_data(data):
                    if type(event) is MessageChunk:
                        if closing.accepts_messages:
                            queue.put(event)
                        continue
                    # A control frame that arrived behind messages filling the
                    # queue waits its turn, as if it had come in a later read:
                    # whether frames share a TCP segment must not change what
                    # happens (a close is not answered before the queue has room).
                    await self._wait_for_space()
                    if self._transport_closed.is_set():
                        return
                    await self._act_on(event)
            if not closing.close_expected or self._transport_closed.is_set():
                break
            await self._wait_for_space()
            if self._transport_closed.is_set():
                return
            if closing.handshake_done and eof_deadline == float("inf"):
                # RFC 6455 §7.1.1: the client waits for the server to close
                # TCP first, for at most disconnect_timeout.
                eof_deadline = trio.current_time() + self._timeout(self._options.disconnect_timeout)
            try:
                if eof_deadline == float("inf"):
                    data = bytes(await stream.receive_some(size))
                else:
                    data = b""
                    with trio.move_on_at(eof_deadline):
                        data = bytes(await stream.receive_some(size))
            except _TRANSPORT_ERRORS as err:
                if not self._transport_closed.is_set():
                    self._logger.debug("transport failed while receiving: %r", err)
                    await self._abort(ABNORMAL_CLOSURE, f"transport failed: {err}")
                return
            if not data:
                # The peer closed TCP: after a closing handshake that is the
                # normal end, otherwise the connection was lost (1006 unless
                # a close code is already known).
                closing.receive_eof()
                break
        await self._abort_stream()

    async def _wait_for_space(self) -> None:
        while self._queue.full and self._core.closing.accepts_messages and not self._transport_closed.is_set():
            await self._queue.wait_for_room()

    async def _act_on(self, event: object) -> None:
        """Act on a non-data event: write what the core says is due next."""
        core = self._core
        if isinstance(event, PingReceived):
            pong = core.answer_ping(event.payload)
            if pong is not None:
                with contextlib.suppress(ConnectionClosed):
                    await self._write(pong)
        elif isinstance(event, PongReceived):
            self._pong_received(event.payload)
        elif isinstance(event, CloseReceived):
            answer = core.receive_close(event)
            self._close_progress.unpark_all()
            self._end_input()
            if answer is not None:
                with contextlib.suppress(ConnectionClosed):
                    await self._write(answer)
        elif isinstance(event, ProtocolFailure):
            self._logger.debug("protocol error %d: %s", event.code, event.reason)
            self._end_input()
            await self._fail(event.code, event.reason)

    def _pong_received(self, payload: bytes) -> None:
        pending = self._pings.get(payload)
        if pending is None:
            return  # unsolicited pong: a unidirectional heartbeat
        now = trio.current_time()
        while self._pings:
            key, earlier = self._pings.popitem(last=False)
            earlier.answered = True
            earlier.event.set()
            if key == payload:
                break
        self._latency = now - pending.sent_at

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
