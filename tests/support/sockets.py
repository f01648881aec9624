"""Sockets for tests: Unix socket paths that fit, TCP stream pairs and resets, exception group leaves."""

from __future__ import annotations

import os
import socket
import struct
import sys
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import trio

if sys.version_info < (3, 11):
    from exceptiongroup import BaseExceptionGroup


def unix_socket_path(tmp_path: Path) -> str:
    """A path for a Unix socket under ``tmp_path``, or a shorter temporary one.

    AF_UNIX paths are limited to about 108 bytes, and pytest's ``tmp_path`` can
    be longer than that.
    """
    path = str(tmp_path / "ws.sock")
    if len(path) > 100:
        path = os.path.join(tempfile.mkdtemp(prefix="tws"), "ws.sock")
    return path


def reset_on_close(stream: trio.SocketStream) -> None:
    """Make closing ``stream`` send a TCP RST instead of a FIN (SO_LINGER with a zero timeout)."""
    stream.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


def flatten(exc: BaseException) -> list[BaseException]:
    """The leaves of an exception group (the exception itself when it is not a group)."""
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for inner in exc.exceptions for leaf in flatten(inner)]
    return [exc]


@asynccontextmanager
async def tcp_stream_pair() -> AsyncIterator[tuple[trio.SocketStream, trio.SocketStream]]:
    """A connected (client, server) pair of TCP streams on 127.0.0.1."""
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    async with listeners[0]:
        port = listeners[0].socket.getsockname()[1]
        client = await trio.open_tcp_stream("127.0.0.1", port)
        server = await listeners[0].accept()
    assert isinstance(server, trio.SocketStream)
    yield client, server
