"""Writing a list of frames to a stream without joining them into one buffer.

Fan-out hands each member's connection a batch of frames that are shared by
every member (see :class:`~trio_ws.PreparedMessage`). Joining a batch into one
``bytes`` before writing would give every member a private copy of the burst;
these writers avoid that:

* on a plain :class:`trio.SocketStream` (TCP or Unix), a *gather* write: one
  ``sendmsg`` system call takes the frames as separate buffers (at most
  :data:`MAX_BUFFERS` per call) and the kernel copies them straight into the
  socket buffer. A partial write continues from a ``memoryview`` of the frame
  it stopped in, so nothing is copied in user space;
* on any other stream (TLS, in-memory, a proxy wrapper), frames smaller than
  :data:`COALESCE_BYTES` are joined into chunks of at most that size, so small
  messages still cost few writes, and a larger frame is written as it is.
  The private copy per member is then at most one chunk at a time.

A TLS stream still encrypts each member's data separately: ciphertext cannot
be shared between connections.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import trio

__all__ = ["COALESCE_BYTES", "MAX_BUFFERS", "send_frames"]

#: Buffers passed to one ``sendmsg`` call (Linux's IOV_MAX is 1024).
MAX_BUFFERS = 512
#: Largest chunk joined from small frames on streams without gather writes.
COALESCE_BYTES = 16 * 1024


def gather_socket(stream: trio.abc.Stream) -> trio.socket.SocketType | None:
    """The socket of ``stream`` if frames can be written to it with ``sendmsg``, else None."""
    if type(stream) is not trio.SocketStream:
        return None  # a subclass may change what send_all does
    socket = stream.socket
    return socket if hasattr(socket, "sendmsg") else None


async def send_frames(
    stream: trio.abc.Stream, socket: trio.socket.SocketType | None, frames: Sequence[bytes]
) -> None:
    """Write ``frames`` to ``stream`` in order, as one byte stream.

    Args:
        stream: the transport.
        socket: ``gather_socket(stream)``, looked up once per connection.
        frames: the frames; none of them is copied on a gather socket.

    Raises:
        whatever the stream's ``send_all`` (or the socket's ``sendmsg``)
        raises: trio.BrokenResourceError, trio.ClosedResourceError, OSError.

    Cancelled before anything was written, nothing was written; cancelled
    later, the frames may be cut anywhere (as with ``send_all``). Not for
    concurrent use on one stream.
    """
    if socket is None:
        for chunk in coalesce(frames, COALESCE_BYTES):
            await stream.send_all(chunk)
        return
    pending: Sequence[bytes | memoryview] = frames
    while pending:
        buffers = pending[:MAX_BUFFERS] if len(pending) > MAX_BUFFERS else pending
        sent = await socket.sendmsg(buffers)
        if sent == sum(map(len, buffers)):  # the usual case: everything went out
            pending = pending[len(buffers) :]
            continue
        done = 0
        while sent >= len(buffers[done]):
            sent -= len(buffers[done])
            done += 1
        rest = list(pending[done:])  # a new list: the caller's stays as it was
        if sent:
            # Stopped inside this frame: continue from where the kernel did.
            rest[0] = memoryview(rest[0])[sent:]
        pending = rest


def coalesce(frames: Sequence[bytes], limit: int) -> Iterator[bytes]:
    """``frames`` as chunks: runs of small frames joined up to ``limit`` bytes, larger frames as they are."""
    run: list[bytes] = []
    size = 0
    for frame in frames:
        if size + len(frame) > limit and run:
            yield run[0] if len(run) == 1 else b"".join(run)
            run, size = [], 0
        if len(frame) >= limit:
            yield frame
        else:
            run.append(frame)
            size += len(frame)
    if run:
        yield run[0] if len(run) == 1 else b"".join(run)
