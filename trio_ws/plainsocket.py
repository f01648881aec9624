"""Reading and writing a plain socket without :class:`trio.SocketStream`'s layers.

A connection's reader spends most of its life waiting for the next bytes. On
a plain :class:`trio.SocketStream` that wait goes through ``receive_some``,
the socket's async ``recv`` wrapper, its non-blocking helper and an error
translating context manager: four frames (about 1.5 KiB held by every idle
connection) and as many calls per read. :func:`read_socket` does the same
with one frame: try the read, and only if nothing is there wait until the
socket is readable. Trio's checkpoint rules are kept (a cancellation is
noticed before reading; a read that did not wait still yields once), and
errors are translated as ``SocketStream`` translates them.

:func:`write_socket` does the same for ``send_all``: the opening handshake
writes its request or its 101 with it (one frame instead of five per write).

Only for POSIX sockets (``os.read``/``os.write`` on the descriptor);
:func:`plain_socket` says when it applies. TLS and other streams keep using
``receive_some`` and ``send_all``.
"""

from __future__ import annotations

import errno
import os

import trio

__all__ = ["plain_socket", "read_socket", "read_socket_into", "write_socket"]

#: errno values that mean "this socket was closed under us" (as trio reads them).
_CLOSED_ERRNOS = {errno.EBADF, errno.ENOTSOCK}


def plain_socket(stream: trio.abc.Stream) -> trio.socket.SocketType | None:
    """The socket of ``stream`` if :func:`read_socket` may read it directly, else None."""
    if os.name != "posix" or type(stream) is not trio.SocketStream:
        return None  # a subclass may change what receive_some does
    return stream.socket


async def read_socket(sock: trio.socket.SocketType, max_bytes: int) -> bytes:
    """Like ``SocketStream.receive_some(max_bytes)`` on the stream of ``sock``.

    Returns:
        the bytes read; ``b""`` at end of file.

    Raises:
        trio.ClosedResourceError: when the socket was closed (by us).
        trio.BrokenResourceError: when the connection failed.

    Cancelling is safe: no byte is consumed unless it is returned. One reader
    at a time (a second one waiting raises ``trio.BusyResourceError``).
    """
    await trio.lowlevel.checkpoint_if_cancelled()
    waited = False
    while True:
        # The descriptor is read each time: a closed socket says -1 (EBADF
        # below), so a number reused by another socket is never read.
        fd = sock.fileno()
        try:
            data = os.read(fd, max_bytes)
        except BlockingIOError:
            pass
        except OSError as exc:
            if exc.errno in _CLOSED_ERRNOS or fd < 0:
                raise trio.ClosedResourceError("this socket was already closed") from None
            raise trio.BrokenResourceError(f"socket connection broken: {exc}") from exc
        else:
            if not waited:
                await trio.lowlevel.cancel_shielded_checkpoint()
            return data
        waited = True
        await trio.lowlevel.wait_readable(sock)


async def read_socket_into(sock: trio.socket.SocketType, buffer: memoryview) -> int:
    """Like :func:`read_socket`, but into ``buffer`` (not empty), without a copy.

    Returns:
        how many bytes were read into the start of ``buffer``; 0 at end of file.

    Raises and cancels as :func:`read_socket` does (a cancelled call wrote
    nothing into ``buffer``). A loop of its own rather than a helper shared
    with :func:`read_socket`: an idle connection waits in that one, and
    every frame on its stack costs memory.
    """
    await trio.lowlevel.checkpoint_if_cancelled()
    waited = False
    while True:
        fd = sock.fileno()
        try:
            count = os.readv(fd, [buffer])
        except BlockingIOError:
            pass
        except OSError as exc:
            if exc.errno in _CLOSED_ERRNOS or fd < 0:
                raise trio.ClosedResourceError("this socket was already closed") from None
            raise trio.BrokenResourceError(f"socket connection broken: {exc}") from exc
        else:
            if not waited:
                await trio.lowlevel.cancel_shielded_checkpoint()
            return count
        waited = True
        await trio.lowlevel.wait_readable(sock)


async def write_socket(sock: trio.socket.SocketType, data: bytes) -> None:
    """Like ``SocketStream.send_all(data)`` on the stream of ``sock``.

    Raises:
        trio.ClosedResourceError: when the socket was closed (by us).
        trio.BrokenResourceError: when the connection failed.

    Cancelling is safe until the first byte is written (a cancellation is
    noticed before writing); cancelled while waiting for room after part of
    ``data`` went out, the rest is not sent, as with ``send_all``. One writer
    at a time (a second one waiting raises ``trio.BusyResourceError``).
    """
    await trio.lowlevel.checkpoint_if_cancelled()
    view = memoryview(data)
    sent = 0
    waited = False
    while sent < len(view):
        fd = sock.fileno()
        try:
            sent += os.write(fd, view[sent:])
        except BlockingIOError:
            waited = True
            await trio.lowlevel.wait_writable(sock)
        except OSError as exc:
            if exc.errno in _CLOSED_ERRNOS or fd < 0:
                raise trio.ClosedResourceError("this socket was already closed") from None
            raise trio.BrokenResourceError(f"socket connection broken: {exc}") from exc
    if not waited:
        await trio.lowlevel.cancel_shielded_checkpoint()
