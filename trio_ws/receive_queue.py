"""The received messages of one connection, between its reader and its receivers.

Theory of operation. The reader task puts (:meth:`~ReceiveQueue.put`) the message
chunks the protocol core decodes (a whole message is one chunk). Receivers
take whole messages (:meth:`~ReceiveQueue.get_message`) or one message chunk
by chunk (:meth:`~ReceiveQueue.chunks`), one receiver at a time in arrival
order. A chunk leaves the queue only when it is returned, and a fragmented
message interrupted half-way is put back whole, so cancelling a receive loses
nothing. A receive that starts while a stream is mid-message discards the
rest of that message (the stream may have been abandoned); that stream's next
step then raises :class:`~trio_ws.ConcurrencyError` rather than yield chunks
of a later message. When more than ``limit`` chunks wait, :attr:`~ReceiveQueue.full` is
True and the reader stops reading until a receiver makes room, so TCP pushes
back on the peer. After :meth:`~ReceiveQueue.end` receivers get what is left,
then the connection's :class:`~trio_ws.ConnectionClosed`.

A *sink* (:meth:`~ReceiveQueue.set_sink`) lets the connection's only
receiver take a whole message in the reader's task instead: offered only
when nothing is queued and the receiver is waiting for its next message, so
the order cannot change; a message the sink declines is queued as usual.
"""

from __future__ import annotations

from collections import deque
from collections.abc import AsyncIterator, Callable

import trio

from .errors import ConcurrencyError, ConnectionClosed
from .locks import FifoLock, LazyParkingLot
from .protocol import MessageChunk

__all__ = ["Message", "ReceiveQueue"]

#: A received message: text as ``str``, binary as ``bytes``.
Message = str | bytes


class ReceiveQueue:
    """Message chunks from the reader, taken by receivers in order.

    Args:
        limit: how many chunks may wait before :attr:`full` is True (None:
            no limit).
        closed_error: makes the exception a receiver gets once the queue
            has ended and is empty.
    """

    __slots__ = (
        "_chunks",
        "_closed_error",
        "_data_lot",
        "_ended",
        "_limit",
        "_lock",
        "_mid_message",
        "_partial",
        "_sink",
        "_space_lot",
    )

    def __init__(self, limit: int | None, closed_error: Callable[[], ConnectionClosed]) -> None:
        # Made with the first message: an empty deque costs 770 bytes.
        self._chunks: deque[MessageChunk] | None = None
        self._limit = limit
        self._closed_error = closed_error
        self._data_lot = trio.lowlevel.ParkingLot()  # receivers waiting for a chunk
        self._space_lot = LazyParkingLot()  # the reader waiting for room
        self._lock = FifoLock()  # one receiver at a time
        self._partial: _MessageChunks | None = None  # the streamed receive that is mid-message
        self._ended = False  # no more chunks will be put
        self._sink: Callable[[Message], bool] | None = None
        self._mid_message = False  # the last chunk put was not the end of its message (only kept with a sink)

    # -- the reader's side ---------------------------------------------------
    def set_sink(self, sink: Callable[[Message], bool] | None) -> None:
        """Offer whole messages to ``sink`` in the reader's task (see the module docstring); None: stop.

        ``sink(message)`` returns True when it took the message, False to
        have it queued. It must not wait, and must decline rather than raise.
        """
        self._sink = sink
        self._mid_message = False

    def put(self, chunk: MessageChunk) -> None:
        """Queue a chunk and wake the next receiver (or hand a whole message to the sink)."""
        sink = self._sink
        if sink is not None:
            if not chunk.final:
                self._mid_message = True
            elif self._mid_message:
                self._mid_message = False  # the end of a fragmented message: queued behind its start
            elif not self._chunks and self._data_lot and sink(chunk.data):
                return
        if self._chunks is None:
            self._chunks = deque()
        self._chunks.append(chunk)
        self._data_lot.unpark()

    @property
    def full(self) -> bool:
        """True while more than ``limit`` chunks wait: the reader should stop reading."""
        return self._chunks is not None and self._limit is not None and len(self._chunks) > self._limit

    async def wait_for_room(self) -> None:
        """Wait until a receiver takes a chunk, or :meth:`wake_reader` is called."""
        await self._space_lot.park()

    def wake_reader(self) -> None:
        """Wake a reader waiting for room (it has something else to do)."""
        self._space_lot.unpark_all()

    def end(self) -> None:
        """No more chunks will be put: receivers drain the rest, then get the closed error."""
        self._ended = True
        self._data_lot.unpark_all()

    # -- the receivers' side -------------------------------------------------
    async def get_message(self) -> Message:
        """The next whole message (see :meth:`trio_ws.WebSocketConnection.get_message`)."""
        await trio.lowlevel.checkpoint_if_cancelled()
        await self._lock.acquire()
        try:
            parked = await self._skip_partial_message()
            chunk, waited = await self._next_chunk()
            if chunk.final:
                data = chunk.data
            else:
                data = await self._assemble(chunk)
                waited = True
            if not (waited or parked):
                await trio.lowlevel.cancel_shielded_checkpoint()
            return data
        finally:
            self._lock.release()

    def chunks(self) -> AsyncIterator[Message]:
        """The next message's chunks (see :meth:`trio_ws.WebSocketConnection.receive_stream`)."""
        return _MessageChunks(self)

    async def _assemble(self, first: MessageChunk) -> Message:
        """Collect the chunks of a fragmented message; on interruption put them back."""
        taken = [first]
        try:
            while not taken[-1].final:
                chunk, _ = await self._next_chunk()
                taken.append(chunk)
        except BaseException:
            # Cancelled (or closed) half-way: nothing is lost, the next
            # receive starts again from the message's first chunk.
            assert self._chunks is not None  # the chunks came from it
            self._chunks.extendleft(reversed(taken))
            raise
        parts = [chunk.data for chunk in taken]
        return "".join(parts) if first.is_text else b"".join(parts)  # type: ignore[arg-type]

    async def _skip_partial_message(self) -> bool:
        """Discard the rest of a message a streamed receive abandoned; True if that had to wait."""
        if not self._partial:
            return False
        parked = False
        while True:
            chunk, waited = await self._next_chunk()
            parked = parked or waited
            if chunk.final:
                self._partial = None
                return parked

    async def _next_chunk(self) -> tuple[MessageChunk, bool]:
        """Pop the next queued chunk; the flag tells whether we had to wait."""
        waited = False
        while not self._chunks:
            if self._ended:
                raise self._closed_error()
            waited = True
            await self._data_lot.park()
        chunk = self._chunks.popleft()
        if self._space_lot and not self.full:
            self._space_lot.unpark_all()
        return chunk, waited


class _MessageChunks:
    """Async iterator over the chunks of one message (see ``receive_stream``)."""

    def __init__(self, queue: ReceiveQueue) -> None:
        self._queue = queue
        self._done = False
        self._started = False
        self._midway = False  # a chunk of this message was yielded, not the last

    def __aiter__(self) -> _MessageChunks:
        return self

    async def __anext__(self) -> Message:
        if self._done:
            raise StopAsyncIteration
        queue = self._queue
        await trio.lowlevel.checkpoint_if_cancelled()
        await queue._lock.acquire()
        try:
            if not self._started:
                await queue._skip_partial_message()
                self._started = True
            elif self._midway and queue._partial is not self:
                raise ConcurrencyError(
                    "another receive took the rest of this message (get_message() or "
                    "receive_stream() started mid-message): run one streaming receiver at a time"
                )
            chunk, waited = await queue._next_chunk()
            queue._partial = None if chunk.final else self
            self._midway = not chunk.final
            self._done = chunk.final
            if not waited:
                await trio.lowlevel.cancel_shielded_checkpoint()
            return chunk.data
        finally:
            queue._lock.release()
