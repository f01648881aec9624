"""Reading stdin line by line inside a Trio program, whatever stdin is."""

from __future__ import annotations

import codecs
import os
import stat
import sys

import trio

__all__ = ["StdinLines"]

_READ_SIZE = 65536


class StdinLines:
    """Read stdin as text lines without blocking the event loop.

    Pipes, sockets and terminals are read through :class:`trio.lowlevel.FdStream`
    (cancellable at any time). A terminal is reopened by name first, so that the
    non-blocking mode FdStream sets stays on our own file description and does
    not leak to stdout and stderr, which usually share the terminal's. Regular
    files and devices such as ``/dev/null``, which cannot be waited on but never
    block for long, are read in a worker thread.
    """

    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._buffer = ""
        self._eof = False
        self._stream: trio.lowlevel.FdStream | None = None
        self._fd: int | None = None
        stdin = sys.stdin
        if stdin is None:
            self._eof = True
            return
        try:
            fd = stdin.fileno()
            mode = os.fstat(fd).st_mode
        except (OSError, ValueError):
            self._eof = True
            return
        if os.isatty(fd):
            try:
                own = os.open(os.ttyname(fd), os.O_RDONLY | os.O_NOCTTY)
            except OSError:
                own = os.dup(fd)
            self._stream = trio.lowlevel.FdStream(own)
        elif stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode):
            self._stream = trio.lowlevel.FdStream(os.dup(fd))
        else:
            self._fd = os.dup(fd)

    async def _read(self) -> bytes:
        if self._stream is not None:
            return bytes(await self._stream.receive_some(_READ_SIZE))
        if self._fd is not None:
            return await trio.to_thread.run_sync(os.read, self._fd, _READ_SIZE)
        return b""

    async def readline(self) -> str | None:
        """Return the next line without its line ending, or None at end of input."""
        while True:
            newline = self._buffer.find("\n")
            if newline >= 0:
                line, self._buffer = self._buffer[:newline], self._buffer[newline + 1 :]
                return line.removesuffix("\r")
            if self._eof:
                if self._buffer:
                    line, self._buffer = self._buffer, ""
                    return line.removesuffix("\r")
                return None
            data = await self._read()
            if data:
                self._buffer += self._decoder.decode(data)
            else:
                self._eof = True
                self._buffer += self._decoder.decode(b"", final=True)

    async def aclose(self) -> None:
        """Release the file descriptor (stdin itself stays open)."""
        if self._stream is not None:
            stream, self._stream = self._stream, None
            await stream.aclose()
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)
