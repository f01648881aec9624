"""Contenders of the core benchmark: one echo server and one client per library.

This module is imported by both processes of a measurement: the benchmark
driver (``bench_core.py``, the client side) and the server process
(``bench_server.py``).  Every library is imported lazily, so a library that is
missing or broken only disables its own contender.

A contender offers:

* :meth:`Contender.serve` -- run an echo server on ``127.0.0.1`` (port chosen by
  the OS) until the process is killed;
* :meth:`Contender.connect` -- an async context manager that opens one client
  connection and yields a :class:`Connection`;
* a :class:`Runtime` (Trio or asyncio) that runs the client coroutines.

All WebSocket contenders send binary messages, with keepalive pings off and a
4 MiB message size limit.  Compression is whatever the caller asks for
(``None`` or ``"deflate"``).
"""

from __future__ import annotations

import asyncio
import importlib
import os
import sys
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from functools import partial
from pathlib import Path
from types import ModuleType
from typing import Any, Protocol, TypeVar

import trio

# Let ``import trio_ws`` find the project package when it is not installed.
PROJECT_ROOT = Path(__file__).resolve().parent.parent
if str(PROJECT_ROOT) not in sys.path:
    sys.path.append(str(PROJECT_ROOT))

HOST = "127.0.0.1"
#: Message size limit for every WebSocket endpoint (the bulk scenario sends 1 MiB).
MAX_MESSAGE_SIZE = 4 * 1024 * 1024
#: Read size of the raw TCP echo server and client.
RAW_READ_SIZE = 65536

T = TypeVar("T")
Compression = str | None
ReadyCallback = Callable[[int], None]


class Connection(Protocol):
    """The two operations the scenarios need from an open client connection."""

    async def send(self, data: bytes) -> None:
        """Send ``data`` as one binary message."""

    async def recv(self, size: int) -> bytes:
        """Receive one message; ``size`` is its expected length (used by raw TCP)."""


# --------------------------------------------------------------------------- #
# Runtimes
# --------------------------------------------------------------------------- #


class Runtime(ABC):
    """The async library a client runs on, seen through the few calls we need."""

    name: str

    @abstractmethod
    def run(self, fn: Callable[[], Awaitable[T]], timeout: float) -> T:
        """Run ``fn()`` to completion in a fresh event loop, failing after ``timeout`` s."""

    @abstractmethod
    async def gather(self, *fns: Callable[[], Awaitable[object]]) -> None:
        """Run ``fns`` concurrently and wait for all of them."""

    @abstractmethod
    async def sleep(self, seconds: float) -> None:
        """Sleep without blocking the event loop."""


class TrioRuntime(Runtime):
    """Runs client coroutines with :func:`trio.run`."""

    name = "trio"

    def run(self, fn: Callable[[], Awaitable[T]], timeout: float) -> T:
        async def main() -> T:
            with trio.fail_after(timeout):
                return await fn()

        return trio.run(main)

    async def gather(self, *fns: Callable[[], Awaitable[object]]) -> None:
        async with trio.open_nursery() as nursery:
            for fn in fns:
                nursery.start_soon(fn)

    async def sleep(self, seconds: float) -> None:
        await trio.sleep(seconds)


class AsyncioRuntime(Runtime):
    """Runs client coroutines with :func:`asyncio.run` (default event loop)."""

    name = "asyncio"

    def run(self, fn: Callable[[], Awaitable[T]], timeout: float) -> T:
        async def main() -> T:
            return await asyncio.wait_for(fn(), timeout)

        return asyncio.run(main())

    async def gather(self, *fns: Callable[[], Awaitable[object]]) -> None:
        tasks = [asyncio.ensure_future(fn()) for fn in fns]
        try:
            await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


TRIO = TrioRuntime()
ASYNCIO = AsyncioRuntime()


# --------------------------------------------------------------------------- #
# Contenders
# --------------------------------------------------------------------------- #


class Contender(ABC):
    """One library under test: an echo server plus a client."""

    #: Key used on the command line and in the JSON results.
    name: str
    #: Row label in the Markdown table.
    label: str
    runtime: Runtime
    #: Whether the library can negotiate permessage-deflate.
    supports_compression: bool = False

    def unavailable_reason(self) -> str | None:
        """Return why this contender cannot run here, or ``None`` if it can."""
        return None

    @abstractmethod
    async def serve(self, compression: Compression, on_ready: ReadyCallback) -> None:
        """Serve echo connections forever; call ``on_ready(port)`` once listening."""

    @abstractmethod
    def connect(self, port: int, compression: Compression) -> AbstractAsyncContextManager[Connection]:
        """Open one client connection to the echo server on ``port``."""

    def serve_forever(self, compression: Compression, on_ready: ReadyCallback) -> None:
        """Blocking entry point of the server process."""
        if self.runtime is ASYNCIO:
            asyncio.run(self.serve(compression, on_ready))
        else:
            trio.run(self.serve, compression, on_ready)


class RawTcp(Contender):
    """Plain Trio TCP echo: no framing at all, the ceiling for the Trio libraries."""

    name = "raw"
    label = "raw trio TCP (ceiling)"
    runtime = TRIO

    async def serve(self, compression: Compression, on_ready: ReadyCallback) -> None:
        async def handler(stream: trio.SocketStream) -> None:
            try:
                while data := await stream.receive_some(RAW_READ_SIZE):
                    await stream.send_all(data)
            except trio.BrokenResourceError:
                pass

        listeners = await trio.open_tcp_listeners(0, host=HOST)
        on_ready(listeners[0].socket.getsockname()[1])
        await trio.serve_listeners(handler, listeners)

    @asynccontextmanager
    async def connect(self, port: int, compression: Compression) -> AsyncIterator[Connection]:
        stream = await trio.open_tcp_stream(HOST, port)
        async with stream:
            yield _RawConnection(stream)


class _RawConnection:
    """A byte stream cut into messages of the length the caller expects."""

    def __init__(self, stream: trio.SocketStream) -> None:
        self._stream = stream
        self._buffer = bytearray()

    async def send(self, data: bytes) -> None:
        await self._stream.send_all(data)

    async def recv(self, size: int) -> bytes:
        buffer = self._buffer
        while len(buffer) < size:
            chunk = await self._stream.receive_some(RAW_READ_SIZE)
            if not chunk:
                raise EOFError("echo server closed the connection")
            buffer += chunk
        data = bytes(buffer[:size])
        del buffer[:size]
        return data


class TrioWebsocketApi(Contender):
    """A library with trio-websocket's API: trio-websocket itself or trio_ws.

    Both use exactly the same server and client code; only the module and a
    few extra keyword arguments (``compression``, ``ping_interval``, which
    trio-websocket does not have) differ.
    """

    runtime = TRIO

    def __init__(self, name: str, module: str, label: str, *, extended: bool) -> None:
        self.name = name
        self.label = label
        self._module_name = module
        #: True for trio_ws, which takes compression and keepalive options.
        self._extended = extended
        self.supports_compression = extended

    def _module(self) -> ModuleType:
        return importlib.import_module(self._module_name)

    def unavailable_reason(self) -> str | None:
        try:
            module = self._module()
        except Exception as exc:
            return f"cannot import {self._module_name}: {exc!r}"
        missing = [
            name for name in ("open_websocket", "serve_websocket", "ConnectionClosed") if not hasattr(module, name)
        ]
        if missing:
            return f"{self._module_name} has no {', '.join(missing)} yet"
        return None

    def _options(self, compression: Compression) -> dict[str, Any]:
        options: dict[str, Any] = {"max_message_size": MAX_MESSAGE_SIZE}
        if self._extended:
            options.update(compression=compression, ping_interval=None)
        elif compression is not None:
            raise ValueError(f"{self.name} does not support compression")
        return options

    async def serve(self, compression: Compression, on_ready: ReadyCallback) -> None:
        module = self._module()
        closed = module.ConnectionClosed

        async def handler(request: Any) -> None:
            ws = await request.accept()
            try:
                while True:
                    await ws.send_message(await ws.get_message())
            except closed:
                pass

        serve = partial(module.serve_websocket, handler, HOST, 0, None, **self._options(compression))
        async with trio.open_nursery() as nursery:
            server = await nursery.start(serve)
            on_ready(server.port)

    @asynccontextmanager
    async def connect(self, port: int, compression: Compression) -> AsyncIterator[Connection]:
        module = self._module()
        async with module.open_websocket(HOST, port, "/", use_ssl=False, **self._options(compression)) as ws:
            yield _TrioWebsocketConnection(ws)


class _TrioWebsocketConnection:
    """Adapts a trio-websocket style ``WebSocketConnection``."""

    def __init__(self, ws: Any) -> None:
        self._ws = ws

    async def send(self, data: bytes) -> None:
        await self._ws.send_message(data)

    async def recv(self, size: int) -> bytes:
        message: bytes = await self._ws.get_message()
        return message


class _WebsocketsConnection:
    """Adapts a ``websockets`` connection (either flavour)."""

    def __init__(self, ws: Any) -> None:
        self._ws = ws

    async def send(self, data: bytes) -> None:
        await self._ws.send(data)

    async def recv(self, size: int) -> bytes:
        message: bytes = await self._ws.recv()
        return message


def _websockets_options(compression: Compression) -> dict[str, Any]:
    return {
        "compression": compression,
        "ping_interval": None,
        "max_size": MAX_MESSAGE_SIZE,
    }


async def _websockets_echo(ws: Any) -> None:
    """Echo handler shared by both websockets servers."""
    from websockets.exceptions import ConnectionClosed

    try:
        async for message in ws:
            await ws.send(message)
    except ConnectionClosed:
        pass


class WebsocketsTrio(Contender):
    """websockets' Trio implementation (``websockets.trio``)."""

    name = "websockets.trio"
    label = "websockets.trio"
    runtime = TRIO
    supports_compression = True

    def unavailable_reason(self) -> str | None:
        try:
            importlib.import_module("websockets.trio.server")
            importlib.import_module("websockets.trio.client")
        except Exception as exc:
            return f"cannot import websockets.trio: {exc!r}"
        return None

    async def serve(self, compression: Compression, on_ready: ReadyCallback) -> None:
        from websockets.trio.server import serve

        start = partial(serve, _websockets_echo, 0, host=HOST, **_websockets_options(compression))
        async with trio.open_nursery() as nursery:
            server = await nursery.start(start)
            on_ready(server.listeners[0].socket.getsockname()[1])

    @asynccontextmanager
    async def connect(self, port: int, compression: Compression) -> AsyncIterator[Connection]:
        from websockets.trio.client import connect

        # proxy=None: never look up or use a proxy from the environment.
        async with connect(f"ws://{HOST}:{port}/", proxy=None, **_websockets_options(compression)) as ws:
            yield _WebsocketsConnection(ws)


class WebsocketsAsyncio(Contender):
    """websockets' asyncio implementation (``websockets.asyncio``)."""

    name = "websockets.asyncio"
    label = "websockets.asyncio"
    runtime = ASYNCIO
    supports_compression = True

    def unavailable_reason(self) -> str | None:
        try:
            importlib.import_module("websockets.asyncio.server")
            importlib.import_module("websockets.asyncio.client")
        except Exception as exc:
            return f"cannot import websockets.asyncio: {exc!r}"
        return None

    async def serve(self, compression: Compression, on_ready: ReadyCallback) -> None:
        from websockets.asyncio.server import serve

        async with serve(_websockets_echo, HOST, 0, **_websockets_options(compression)) as server:
            on_ready(server.sockets[0].getsockname()[1])
            await server.serve_forever()

    @asynccontextmanager
    async def connect(self, port: int, compression: Compression) -> AsyncIterator[Connection]:
        from websockets.asyncio.client import connect

        async with connect(f"ws://{HOST}:{port}/", proxy=None, **_websockets_options(compression)) as ws:
            yield _WebsocketsConnection(ws)


#: The contender of ``bench_core.py --baseline DIR``: trio_ws from another
#: checkout, imported under this module name (see :func:`enable_baseline`).
BASELINE_MODULE = "trio_ws_baseline"
BASELINE = TrioWebsocketApi("trio_ws-baseline", BASELINE_MODULE, "trio_ws (baseline)", extended=True)
#: The environment variable that tells a server process where the baseline is.
BASELINE_ENV = "TRIO_WS_BENCH_BASELINE"


def enable_baseline(directory: str) -> None:
    """Make ``directory``'s ``trio_ws`` package importable as ``trio_ws_baseline``.

    The package only uses relative imports among its modules, so the same
    files load under a second name next to the project's ``trio_ws``: one
    process can run both (the benchmark's client side does). A directory
    holding a symbolic link named ``trio_ws_baseline`` to the package goes on
    ``sys.path``.
    """
    package = Path(directory).resolve() / "trio_ws"
    if not (package / "__init__.py").is_file():
        raise SystemExit(f"--baseline {directory}: no trio_ws package there")
    import hashlib
    import tempfile

    tag = hashlib.sha1(str(package).encode()).hexdigest()[:12]
    link_dir = Path(tempfile.gettempdir()) / f"trio_ws_bench_baseline_{tag}"
    link_dir.mkdir(exist_ok=True)
    link = link_dir / BASELINE_MODULE
    if not link.is_symlink():
        link.symlink_to(package, target_is_directory=True)
    if str(link_dir) not in sys.path:
        sys.path.insert(0, str(link_dir))


#: Every contender, in table order.
CONTENDERS: dict[str, Contender] = {
    contender.name: contender
    for contender in (
        RawTcp(),
        TrioWebsocketApi("trio_ws", "trio_ws", "trio_ws", extended=True),
        TrioWebsocketApi("trio-websocket", "trio_websocket", "trio-websocket", extended=False),
        WebsocketsTrio(),
        WebsocketsAsyncio(),
    )
}

if os.environ.get(BASELINE_ENV):
    # A server process of a run with --baseline: the driver passed the directory.
    enable_baseline(os.environ[BASELINE_ENV])
    CONTENDERS[BASELINE.name] = BASELINE
