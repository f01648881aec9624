"""Helpers of the interop suites (tests/interop: the websockets library and Node's ws as peers).

The peers run as child processes that report what they saw as JSON lines
(:class:`PeerProcess`); a trio_ws server hands each connection it accepts to
the test (:func:`trio_ws_server`); messages are compared by type, length and
SHA-256 on both sides (:func:`exchange`).
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import random
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import trio

import trio_ws

if sys.version_info < (3, 11):
    from exceptiongroup import BaseExceptionGroup

PEER_SCRIPT = Path(__file__).resolve().parents[1] / "interop" / "websockets_asyncio_peer.py"

#: Upper bound for one in-process test, in seconds: a guard against hangs, far
#: above what a test takes (a 1 MiB deflate exchange took 2.9 s on a loaded
#: 2-core machine, and coverage tracing makes it several times slower).
TIMEOUT = 20
#: Upper bound for a test that also starts a Python child process.
PROCESS_TIMEOUT = 45

MiB = 2**20
#: Message size limit used when exchanging 1 MiB messages (room for framing).
BIG_LIMIT = 2 * MiB
#: A trio_ws server whose peers answer at once must stop well within this: half
#: its disconnect_timeout default (10 s), which it would otherwise sit out.
SHUTDOWN_GRACE = 5.0


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
    async with spawn_peer([sys.executable, str(PEER_SCRIPT), role, json.dumps(options)]) as peer:
        yield peer


@asynccontextmanager
async def spawn_peer(argv: list[str], env: dict[str, str] | None = None) -> AsyncIterator[PeerProcess]:
    """Start a peer process that reports on stdout; always kill it on the way out."""
    process = await trio.lowlevel.open_process(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, env=env)
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


# --------------------------------------------------------------------------
# Messages
# --------------------------------------------------------------------------


def command(op: str, **fields: Any) -> str:
    """A text message the peer scripts read as a command, not as data to echo."""
    return "!" + json.dumps({"op": op, **fields})


def describe(message: str | bytes) -> tuple[str, int, str]:
    raw = message.encode() if isinstance(message, str) else message
    kind = "text" if isinstance(message, str) else "binary"
    return kind, len(raw), hashlib.sha256(raw).hexdigest()


def observed(event: dict[str, Any]) -> tuple[str, int, str]:
    return event["type"], event["length"], event["sha256"]


@functools.cache
def big_binary() -> bytes:
    return random.Random(6455).randbytes(MiB)


@functools.cache
def big_text() -> str:
    rng = random.Random(7692)
    alphabet = "abcdefghijklmnopqrstuvwxyz \u00e9\u2603"
    return "".join(rng.choice(alphabet) for _ in range(MiB // 2))


async def exchange(ws: trio_ws.WebSocketConnection, peer: PeerProcess, message: str | bytes, **kwargs: Any) -> None:
    """Send ``message``, check the peer saw it intact and echoed it back."""
    await ws.send_message(message, **kwargs)
    event = await peer.next_event("message")
    assert observed(event) == describe(message)
    echoed = await ws.get_message()
    assert type(echoed) is type(message)
    assert echoed == message


# --------------------------------------------------------------------------
# trio_ws on either side
# --------------------------------------------------------------------------


def client(port: int, **options: Any) -> Any:
    """``open_websocket`` to the peer's server on 127.0.0.1 (an async context manager)."""
    return trio_ws.open_websocket("127.0.0.1", port, "/interop", use_ssl=False, **options)


class TrioWsServer:
    def __init__(
        self, port: int, accepted: trio.MemoryReceiveChannel[Any], scope: trio.CancelScope, stopped: trio.Event
    ) -> None:
        self.port = port
        self.accepted = accepted
        self.scope = scope
        self.stopped = stopped

    def uri(self, port: int | None = None) -> str:
        """The server's URI (or, with ``port``, the same path through a proxy listening there)."""
        return f"ws://127.0.0.1:{port or self.port}/interop"

    async def next_connection(self) -> tuple[trio_ws.WebSocketRequest, trio_ws.WebSocketConnection]:
        return await self.accepted.receive()

    async def shutdown(self) -> float:
        """Cancel the server; seconds it took to stop (inf: not within the grace)."""
        start = trio.current_time()
        self.scope.cancel()
        with trio.move_on_after(SHUTDOWN_GRACE):
            await self.stopped.wait()
        return trio.current_time() - start if self.stopped.is_set() else math.inf


@asynccontextmanager
async def trio_ws_server(
    choose_subprotocol: Callable[[trio_ws.WebSocketRequest], str | None] = lambda request: None,
    **options: Any,
) -> AsyncIterator[TrioWsServer]:
    """trio_ws server whose handler hands each accepted connection to the test.

    The handler keeps its connection open until the test is over (or the
    server is shut down with ``TrioWsServer.shutdown``).
    """
    send, receive = trio.open_memory_channel[Any](8)
    finished = trio.Event()
    stopped = trio.Event()
    scope = trio.CancelScope()

    async def handler(request: trio_ws.WebSocketRequest) -> None:
        ws = await request.accept(subprotocol=choose_subprotocol(request))
        await send.send((request, ws))
        await finished.wait()

    async def run(task_status: trio.TaskStatus[Any] = trio.TASK_STATUS_IGNORED) -> None:
        try:
            with scope:
                await trio_ws.serve_websocket(handler, "127.0.0.1", 0, None, task_status=task_status, **options)
        finally:
            stopped.set()

    with single_exceptions():
        async with trio.open_nursery() as nursery:
            server = await nursery.start(run)
            try:
                yield TrioWsServer(server.port, receive, scope, stopped)
            finally:
                finished.set()
                nursery.cancel_scope.cancel()
