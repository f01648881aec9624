"""Shared helpers for the trio_ws <-> websockets interop tests (no fixtures)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import trio

if sys.version_info < (3, 11):
    from exceptiongroup import BaseExceptionGroup

PEER_SCRIPT = Path(__file__).with_name("websockets_asyncio_peer.py")

#: Upper bound for one in-process test, in seconds.
TIMEOUT = 5
#: Upper bound for a test that also starts a Python child process.
PROCESS_TIMEOUT = 10

MiB = 2**20
#: Message size limit used when exchanging 1 MiB messages (room for framing).
BIG_LIMIT = 2 * MiB


@contextmanager
def single_exceptions() -> Iterator[None]:
    """Re-raise a lone exception out of (nested) Trio exception groups.

    The helpers below run servers in nurseries; without this, any failure in a
    test body would surface as an ExceptionGroup and ``pytest.raises`` on a
    specific exception would not match.
    """
    try:
        yield
    except BaseExceptionGroup as group:
        exc: BaseException = group
        while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
            exc = exc.exceptions[0]
        if exc is group:
            raise
        raise exc from exc.__cause__


def header_values(headers: Any, name: str) -> list[str]:
    """Values of header ``name`` from a list of (name, value) pairs.

    Accepts bytes or str pairs (trio_ws keeps the trio-websocket convention of
    bytes) and compares names case-insensitively.
    """
    wanted = name.lower()
    values = []
    for key, value in headers:
        if isinstance(key, bytes):
            key = key.decode("latin-1")
        if isinstance(value, bytes):
            value = value.decode("latin-1")
        if key.lower() == wanted:
            values.append(value)
    return values


def extension_names(value: str | None) -> list[str]:
    """Extension tokens of a Sec-WebSocket-Extensions value, without params."""
    if not value:
        return []
    return [item.split(";")[0].strip().lower() for item in value.split(",")]


def compressible_payload(size: int = MiB) -> bytes:
    """A highly compressible (repetitive) payload of exactly ``size`` bytes."""
    pattern = b"trio_ws interop: the quick brown fox jumps over the lazy dog. "
    return (pattern * (size // len(pattern) + 1))[:size]


class PeerProcess:
    """A running ``websockets_asyncio_peer.py`` child and its JSON-line output."""

    def __init__(self, process: trio.Process) -> None:
        self.process = process
        self._buffer = bytearray()
        self.events: list[dict[str, Any]] = []

    async def _read_line(self) -> bytes:
        assert self.process.stdout is not None
        while b"\n" not in self._buffer:
            chunk = await self.process.stdout.receive_some(65536)
            if not chunk:
                raise EOFError(
                    f"peer exited (returncode={self.process.returncode}) "
                    f"after events {self.events!r}"
                )
            self._buffer += chunk
        line, _, rest = bytes(self._buffer).partition(b"\n")
        self._buffer = bytearray(rest)
        return line

    async def next_event(self, name: str | None = None) -> dict[str, Any]:
        """Return the next event (optionally: the next one called ``name``)."""
        while True:
            event = json.loads(await self._read_line())
            self.events.append(event)
            if name is None or event["event"] == name:
                return event


@asynccontextmanager
async def run_peer(role: str, **options: Any) -> AsyncIterator[PeerProcess]:
    """Start the asyncio websockets peer; always kill it on the way out."""
    process = await trio.lowlevel.open_process(
        [sys.executable, str(PEER_SCRIPT), role, json.dumps(options)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
    )
    try:
        yield PeerProcess(process)
    finally:
        if process.returncode is None:
            process.kill()
        with trio.CancelScope(shield=True), trio.move_on_after(5):
            await process.wait()
            if process.stdout is not None:
                await process.stdout.aclose()


@asynccontextmanager
async def peer_server(**options: Any) -> AsyncIterator[tuple[PeerProcess, int]]:
    """Start an asyncio websockets server; yield it with its listening port."""
    async with run_peer("server", **options) as peer:
        listening = await peer.next_event("listening")
        yield peer, listening["port"]


class CountingProxy:
    """TCP relay on 127.0.0.1 that counts the bytes going each way."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = 0
        self.upstream = 0  # client -> server bytes
        self.downstream = 0  # server -> client bytes

    async def _pump(self, source: trio.abc.Stream, sink: trio.abc.Stream, up: bool) -> None:
        try:
            while True:
                data = await source.receive_some(65536)
                if not data:
                    await sink.send_eof()  # type: ignore[attr-defined]
                    return
                if up:
                    self.upstream += len(data)
                else:
                    self.downstream += len(data)
                await sink.send_all(data)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            return

    async def _handle(self, client: trio.SocketStream) -> None:
        async with client:
            server = await trio.open_tcp_stream("127.0.0.1", self.target_port)
            async with server, trio.open_nursery() as nursery:
                nursery.start_soon(self._pump, client, server, True)
                nursery.start_soon(self._pump, server, client, False)

    async def run(self, *, task_status: trio.TaskStatus[Any] = trio.TASK_STATUS_IGNORED) -> None:
        listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
        self.port = listeners[0].socket.getsockname()[1]
        await trio.serve_listeners(self._handle, listeners, task_status=task_status)


@asynccontextmanager
async def counting_proxy(target_port: int) -> AsyncIterator[CountingProxy]:
    proxy = CountingProxy(target_port)
    async with trio.open_nursery() as nursery:
        await nursery.start(proxy.run)
        try:
            yield proxy
        finally:
            nursery.cancel_scope.cancel()
