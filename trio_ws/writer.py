"""The sending half of a connection: messages as frames, one writer at a time.

Theory of operation. Writes are serialised by a small FIFO lock, so a pong
can go out between two fragments of a streamed message; whole messages (and
the fragments of one message) are serialised by a second lock, so messages
never interleave. A write cancelled before its first byte reached the
transport changes nothing; one cancelled half-way would leave half a frame on
the wire, so such a cancellation aborts the connection (1006) rather than let
a later frame corrupt the stream. On a plain socket the bytes written are
counted; on other streams (TLS, in-memory) a write that has started counts as
half-way. A fragmented message that cannot be finished (its iterable failed,
or the sender was cancelled between fragments) fails the connection with 1011
(RFC 6455 §7.1.7): any later data frame would break the framing.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterable, Sequence
from typing import TYPE_CHECKING, cast

import trio

from .close import ABNORMAL_CLOSURE, INTERNAL_ERROR
from .errors import TRANSPORT_ERRORS, MessageTypeError
from .gather import gather_socket, send_frames
from .locks import FifoLock, LazyEvent
from .log import ConnectionLogger
from .prepared import PreparedMessage
from .protocol import ProtocolCore

if TYPE_CHECKING:
    from .connection import WebSocketConnection

__all__ = ["Writer"]

#: A message at least this long is written as two buffers, the frame's
#: header and its body (one gather write), instead of being copied after the
#: header into one frame.
SPLIT_FRAME_MIN = 64 * 1024

#: ``os.write`` works on socket descriptors here (not on Windows).
_POSIX = os.name == "posix"


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


class Writer:
    """Frames to one connection's transport.

    Args:
        stream: the transport.
        core: the connection's protocol core (it encodes the frames).
        transport_closed: set once the transport is closed.
        owner: the connection, which aborts or fails itself when a write
            goes wrong and makes the exception for a write once it is closed
            (one reference instead of a bound method per callback keeps an
            idle connection small).
        logger: the connection's logger.
    """

    __slots__ = (
        "_core",
        "_gather_socket",
        "_logger",
        "_message_lock",
        "_owner",
        "_stream",
        "_transport_closed",
        "_write_lock",
        "_yielded",
    )

    def __init__(
        self,
        stream: trio.abc.Stream,
        core: ProtocolCore,
        *,
        transport_closed: trio.Event | LazyEvent,
        owner: WebSocketConnection,
        logger: ConnectionLogger,
    ) -> None:
        self._stream = stream
        self._gather_socket = gather_socket(stream)
        self._core = core
        self._transport_closed = transport_closed
        self._owner = owner
        self._logger = logger
        self._write_lock = FifoLock()  # one frame (or batch of frames) at a time
        self._message_lock = FifoLock()  # one message (all its fragments) at a time
        # The task whose last receive on this connection yielded to the
        # scheduler: its next whole-message send need not yield again.
        self._yielded: trio.lowlevel.Task | None = None

    def receive_yielded(self) -> None:
        """Note that the current task's receive just yielded to the scheduler.

        Its next :meth:`send_whole` then skips the yield that follows a write
        which did not have to wait: a task that answers each message it
        receives yields once per message (in the receive) instead of twice.
        Every send still yields unless the same task's receive yielded since
        its last send that did not, so a sending loop cannot starve others.
        """
        self._yielded = trio.lowlevel.current_task()

    def check_can_send(self) -> None:
        """Raise the closed error once a close frame was sent or received, or the connection ended."""
        if self._core.closing.reason is not None or not self._core.can_send_data:
            raise self._owner.closed_error()

    async def send_whole(self, message: str | bytes | PreparedMessage, compress: bool) -> None:
        """Send one whole message as one frame (see :meth:`receive_yielded` for when it yields)."""
        yielded = self._yielded
        if yielded is not None:
            self._yielded = None
            yielded = yielded if yielded is trio.lowlevel.current_task() else None
        await self._message_lock.acquire()
        try:
            self.check_can_send()
            if not isinstance(message, PreparedMessage) and len(message) >= SPLIT_FRAME_MIN:
                await self.write(self._core.encode_message_parts(message, compress=compress))
            else:
                await self.write(self._core.encode_whole(message, compress=compress), schedule=yielded is None)
        finally:
            self._message_lock.release()

    async def send_many(
        self, items: list[str | bytes | PreparedMessage], compress: bool, *, schedule: bool = True
    ) -> None:
        """Send whole messages in order, as one write (``schedule`` as for :meth:`write`)."""
        await self._message_lock.acquire()
        try:
            self.check_can_send()
            frames = [self._core.encode_whole(item, compress=compress) for item in items]
            if frames:
                await self.write(frames[0] if len(frames) == 1 else frames, schedule=schedule)
        finally:
            self._message_lock.release()

    async def send_fragments(self, chunks: AsyncIterable[str | bytes | bytearray | memoryview], compress: bool) -> None:
        """Send the chunks as one fragmented message (RFC 6455 §5.4), one frame behind the iterable."""
        await self._message_lock.acquire()
        first = True
        try:
            self.check_can_send()
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
            if not first and self._core.closing.reason is None:
                # Fragments went out but the message cannot be finished: any
                # later data frame would break the framing, so fail the
                # connection (RFC 6455 §7.1.7) rather than leave it unusable.
                with trio.CancelScope(shield=True):
                    await self._owner._fail(INTERNAL_ERROR, "a fragmented message could not be finished")
            raise
        finally:
            self._message_lock.release()

    async def _write_fragment(self, data: str | bytes, is_text: bool, first: bool, fin: bool, compress: bool) -> None:
        self.check_can_send()
        payload = data.encode("utf-8") if isinstance(data, str) else data
        frame = self._core.encode_fragment(payload, is_text=is_text, first=first, fin=fin, compress=compress)
        await self.write(frame)

    async def write(self, data: bytes | list[bytes], *, schedule: bool = True) -> None:
        """Write bytes (or a list of frames, see ``gather.py``) to the transport, one writer at a time.

        With ``schedule=False`` a write that goes out whole at once on a
        plain socket does not yield to the scheduler afterwards (the caller
        yielded just before); it still notices a cancellation first. A list
        of frames, a write that has to wait, and other streams yield as usual.

        Raises:
            ConnectionClosed: when the transport is closed, or failed while
                writing (the connection is then aborted with 1006).

        A cancellation that arrives before any byte reached the transport
        leaves the connection as it was; one that cuts a write short aborts
        the connection (1006), since the rest of a frame cannot be taken back.
        """
        await self._write_lock.acquire()
        try:
            if self._transport_closed.is_set():
                raise self._owner.closed_error()
            # Nothing written yet: cancelled here, the caller's frame is simply
            # not sent and the connection stays usable.
            await trio.lowlevel.checkpoint_if_cancelled()
            sock = self._gather_socket
            counter = None
            try:
                if sock is not None:
                    if _POSIX and type(data) is bytes:
                        # One system call, without trio's socket wrapper (a
                        # closed socket's descriptor is -1: EBADF, an OSError).
                        try:
                            sent = os.write(sock.fileno(), data)
                        except BlockingIOError:
                            sent = 0
                        if sent == len(data):
                            if schedule:
                                await trio.lowlevel.cancel_shielded_checkpoint()
                            return
                        counter = _CountingSocket(sock)
                        counter.sent = sent
                        await counter.send_all(data)  # the rest, once there is room
                    else:
                        counter = _CountingSocket(sock)
                        if isinstance(data, bytes):
                            await counter.send_all(data)
                        else:
                            await send_frames(self._stream, cast("trio.socket.SocketType", counter), data)
                elif isinstance(data, bytes):
                    await self._stream.send_all(data)
                else:
                    await send_frames(self._stream, None, data)
            except TRANSPORT_ERRORS as err:
                self._logger.debug("transport failed while sending: %r", err)
                await self._owner._abort(ABNORMAL_CLOSURE, f"transport failed while sending: {err}")
                raise self._owner.closed_error() from err
            except BaseException:
                if counter is not None and counter.sent == 0:
                    # A socket write cancelled while waiting for buffer space:
                    # not a byte went out, the stream is intact.
                    raise
                # Cancelled (or worse) mid-write, or on a stream that cannot
                # tell how much it wrote: part of a frame may be on the wire,
                # so nothing else may be written after it.
                await self._owner._abort(ABNORMAL_CLOSURE, "a write was interrupted")
                raise
        finally:
            self._write_lock.release()
