"""Connect a raw peer (rawframes.RawPeer) to a real trio_ws endpoint.

``open_pair("server")``: trio_ws runs ``serve_websocket`` on 127.0.0.1 port 0
and the raw peer is the client. ``open_pair("client")``: the raw peer listens on
127.0.0.1 and a trio_ws client (``open_websocket`` or ``connect_websocket``)
connects to it. Either way the trio_ws side runs :meth:`UserCode.echo_loop`, a
small echo application that records exactly what the library showed it.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from functools import partial
from types import ModuleType
from typing import Any, TypeVar

import trio
from support import rawframes as rf

if sys.version_info < (3, 11):  # pragma: no cover - Python 3.10
    from exceptiongroup import BaseExceptionGroup

#: Every timeout that could end a connection in these tests on its own is at
#: least this long: open_pair sets connect_timeout and disconnect_timeout to it
#: unless a test chooses its own, and keepalive pings come every 20 s by default.
SLOW_TIMEOUT = 30.0
#: A close frame, the TCP close and the user-visible exception must all follow
#: a protocol violation within this many seconds. They take milliseconds on an
#: idle machine; the bound is what "prompt" means here: acting on the event
#: itself, long before SLOW_TIMEOUT (or a keepalive) could have ended the
#: connection instead. Not tighter, because a loaded 2-core CI machine has
#: stalled a close frame past half a second.
PROMPT = 5.0
#: Hard bound on one whole test (each step is bounded by PROMPT already).
TEST_TIMEOUT = 60.0
HOST = "127.0.0.1"

#: Text message that makes the echo application call ``ws.aclose(code, "bye")``.
CLOSE_COMMAND = "please-close:"
#: Text message that makes the echo application raise RuntimeError.
RAISE_COMMAND = "please-raise"

T = TypeVar("T")


def impl() -> ModuleType:
    """The library under test: trio_ws. The environment variable lets the
    suite be pointed at another API-compatible module for comparison."""
    return importlib.import_module(os.environ.get("TRIO_WS_CONFORMANCE_IMPL", "trio_ws"))


async def within(seconds: float, what: str, fn: Callable[..., Awaitable[T]], *args: Any) -> T:
    """Await ``fn(*args)``; fail the test (not hang) if it takes longer."""
    with trio.move_on_after(seconds):
        return await fn(*args)
    raise AssertionError(f"{what}: still waiting after {seconds}s")


@dataclass
class UserCode:
    """What the application code on the trio_ws side saw on one connection."""

    ws: Any = None
    messages: list[str | bytes] = field(default_factory=list)
    #: Exception raised by get_message/send_message (normally ConnectionClosed).
    error: BaseException | None = None
    #: Exception raised by ws.aclose() when the application closed first.
    aclose_error: BaseException | None = None
    aclose_done: bool = False
    #: Exception that escaped the client's ``async with open_websocket`` / nursery.
    escaped: BaseException | None = None
    done: trio.Event = field(default_factory=trio.Event)

    async def echo_loop(self, ws: Any) -> None:
        self.ws = ws
        try:
            while True:
                message = await ws.get_message()
                self.messages.append(message)
                if message == RAISE_COMMAND:
                    break
                if isinstance(message, str) and message.startswith(CLOSE_COMMAND):
                    try:
                        await ws.aclose(int(message[len(CLOSE_COMMAND) :]), "bye")
                    except BaseException as exc:
                        self.aclose_error = exc  # recorded, asserted by the test
                        if not isinstance(exc, Exception):
                            raise  # cancellation must go on
                    self.aclose_done = True
                    return
                await ws.send_message(message)
        except Exception as exc:  # recorded, asserted by the test
            self.error = exc
            return
        raise RuntimeError("application failure requested by the test")

    @property
    def close_reason_text(self) -> str | None:
        """``.reason.reason`` of the ConnectionClosed the application saw."""
        assert self.error is not None, "the application never saw the connection close"
        reason: Any = getattr(self.error, "reason", None)
        assert reason is not None, repr(self.error)
        return reason.reason  # type: ignore[no-any-return]

    def assert_closed_with(self, code: int) -> None:
        """The application saw a plain ConnectionClosed carrying ``code``."""
        lib = impl()
        exc = self.error
        assert exc is not None, "the application never saw the connection close"
        assert isinstance(exc, lib.ConnectionClosed), (
            f"expected ConnectionClosed, the application got {type(exc).__module__}.{type(exc).__qualname__}: {exc!r}"
        )
        assert exc.reason is not None and exc.reason.code == code, (
            f"ConnectionClosed.reason is {exc.reason!r}, expected code {code}"
        )
        ok_cls = getattr(lib, "ConnectionClosedOK", None)
        err_cls = getattr(lib, "ConnectionClosedError", None)
        if ok_cls is not None and err_cls is not None:
            expected = ok_cls if code in (1000, 1001, 1005) else err_cls
            assert isinstance(exc, expected), f"{exc!r} should be a {expected.__name__}"
        assert self.escaped is None, f"exception escaped the client context: {self.escaped!r}"
        assert self.ws.closed is not None and self.ws.closed.code == code, self.ws.closed


@dataclass
class Pair:
    side: str  # the role trio_ws plays: "server" or "client"
    raw: rf.RawPeer
    user: UserCode
    port: int
    #: Cancels the whole trio_ws side (serve_websocket, or the client task).
    trio_side: trio.CancelScope
    #: Set when serve_websocket (or the client task) has returned.
    trio_side_done: trio.Event
    #: Server side only: yields the UserCode of each new connection.
    _users: trio.MemoryReceiveChannel[UserCode] | None = None

    @property
    def raw_is_client(self) -> bool:
        return self.side == "server"

    async def send_message_frames(self, frames: list[bytes]) -> None:
        """Write several frames in one go (one TCP write, so the trio_ws side
        normally gets them in a single read)."""
        await self.raw.send(b"".join(frames))

    async def expect_close(self, code: int | None, t0: float | None = None) -> rf.Frame:
        """Read the close frame trio_ws writes (skipping other frames) and check
        its code and that it came promptly."""
        t0 = trio.current_time() if t0 is None else t0
        try:
            close, before = await within(PROMPT, f"close frame with code {code}", self.raw.recv_until_close)
        except rf.PeerClosed as exc:
            raise AssertionError(
                f"trio_ws {self.side} closed TCP ({exc}) without sending a close frame (expected code {code})"
            ) from None
        elapsed = trio.current_time() - t0
        assert elapsed < PROMPT, f"close frame took {elapsed:.3f}s"
        data = [f for f in before if not f.is_control]
        assert not data, f"unexpected data frames before the close: {data}"
        assert close.close_code == code, (
            f"trio_ws {self.side} sent close code {close.close_code} (reason {close.close_reason!r}), expected {code}"
        )
        close.close_reason.decode("utf-8")  # a close reason must be valid UTF-8
        return close

    async def finish_close(self, close: rf.Frame, *, reply: bool) -> None:
        """Complete the closing handshake as an RFC-abiding raw peer.

        trio_ws server: the raw client optionally answers the close, then the
        server must close TCP first (RFC 6455 §7.1.1), promptly, with nothing
        written after its close frame. trio_ws client: the raw server echoes
        the close and closes TCP, as servers do.
        """
        if reply:
            await self.raw.send_frame(rf.CLOSE, close.payload)
        if self.raw_is_client:
            after = await within(PROMPT, "TCP close by the trio_ws server", self.raw.recv_until_eof)
            assert after == b"", f"bytes written after the close frame: {after!r}"
        else:
            await self.raw.aclose()

    async def wait_user(self) -> UserCode:
        await within(PROMPT, "application noticing the close", self.user.done.wait)
        return self.user

    async def assert_fails_with(self, code: int, data: bytes | list[bytes], *, check_next: bool = True) -> None:
        """Send ``data`` (a violation), then check the whole failure path."""
        if isinstance(data, list):
            data = b"".join(data)
        t0 = trio.current_time()
        await self.raw.send(data)
        close = await self.expect_close(code, t0)
        await self.finish_close(close, reply=not self.raw_is_client)
        user = await self.wait_user()
        user.assert_closed_with(code)
        if check_next and self.side == "server":
            await self.assert_serves_again()

    async def expect_pong(self, payload: bytes) -> rf.Frame:
        """Read frames until a pong arrives; it must carry ``payload``."""

        async def read() -> rf.Frame:
            while True:
                frame = await self.raw.recv_frame()
                assert frame.opcode != rf.CLOSE, f"closed instead of answering the ping: {frame}"
                assert frame.opcode == rf.PONG, f"expected a pong, got {frame}"
                return frame

        pong = await within(PROMPT, "pong", read)
        assert pong.payload == payload, f"pong payload {pong.payload!r} != ping payload {payload!r}"
        return pong

    async def assert_echo(self, message: str | bytes) -> None:
        """One well-behaved round trip through the echo application."""
        opcode, payload = (rf.TEXT, message.encode()) if isinstance(message, str) else (rf.BINARY, message)
        await self.raw.send_frame(opcode, payload)
        got = await within(PROMPT, "echo", self.recv_message)
        assert got == message

    async def recv_message(self) -> str | bytes:
        """Reassemble the next data message from trio_ws (answers nothing)."""
        parts: list[bytes] = []
        opcode = None
        while True:
            frame = await self.raw.recv_frame()
            if frame.is_control:
                assert frame.opcode != rf.CLOSE, f"closed instead of a message: {frame}"
                continue
            if opcode is None:
                assert frame.opcode in (rf.TEXT, rf.BINARY), frame
                opcode = frame.opcode
            else:
                assert frame.opcode == rf.CONT, frame
            parts.append(frame.payload)
            if frame.fin:
                data = b"".join(parts)
                return data.decode("utf-8") if opcode == rf.TEXT else data

    async def assert_serves_again(self) -> None:
        """A fresh, well-behaved connection to the same server still works."""
        assert self._users is not None
        stream = await trio.open_tcp_stream(HOST, self.port)
        raw = rf.RawPeer(stream, is_client=True)
        try:
            await within(PROMPT, "handshake of a follow-up connection", raw.client_handshake, HOST, self.port)
            user = await within(PROMPT, "handler for the follow-up connection", self._users.receive)
            follow = Pair("server", raw, user, self.port, self.trio_side, self.trio_side_done, self._users)
            await follow.assert_echo("still serving \u2713")
            await raw.send_frame(rf.CLOSE, rf.close_payload(1000, "done"))
            close = await follow.expect_close(1000)
            await follow.finish_close(close, reply=False)
            (await follow.wait_user()).assert_closed_with(1000)
        finally:
            await raw.aclose()


async def _server_handler(users: trio.MemorySendChannel[UserCode], request: Any) -> None:
    user = UserCode()
    try:
        await users.send(user)
        ws = await request.accept()
        await user.echo_loop(ws)
    finally:
        user.done.set()


async def _run_client(user: UserCode, port: int, api: str, options: dict[str, Any]) -> None:
    lib = impl()
    try:
        if api == "open":
            async with lib.open_websocket(HOST, port, "/", use_ssl=False, **options) as ws:
                await user.echo_loop(ws)
        else:
            async with trio.open_nursery() as nursery:
                ws = await lib.connect_websocket(nursery, HOST, port, "/", use_ssl=False, **options)
                await user.echo_loop(ws)
                await ws.aclose()
    except Exception as exc:  # recorded, asserted by the test
        user.escaped = exc
    finally:
        user.done.set()


@contextmanager
def _unwrap_single_failure() -> Iterator[None]:
    """Show a test's AssertionError as itself, not inside the nursery's group."""
    try:
        yield
    except BaseExceptionGroup as group:
        leaf: BaseException = group
        while isinstance(leaf, BaseExceptionGroup) and len(leaf.exceptions) == 1:
            leaf = leaf.exceptions[0]
        if isinstance(leaf, AssertionError):
            raise leaf from None
        raise


@asynccontextmanager
async def open_pair(side: str, *, client_api: str = "open", **options: Any) -> AsyncIterator[Pair]:
    """A connected (raw peer, trio_ws) pair, the whole test bounded in time.

    ``options`` go to serve_websocket / open_websocket (e.g. max_message_size).
    On leaving, the raw peer drops TCP and the trio_ws side is cancelled; it
    must then wind down within PROMPT.
    """
    lib = impl()
    options.setdefault("connect_timeout", SLOW_TIMEOUT)
    options.setdefault("disconnect_timeout", SLOW_TIMEOUT)
    trio_side = trio.CancelScope()
    trio_side_done = trio.Event()
    with trio.fail_after(TEST_TIMEOUT), _unwrap_single_failure():
        async with trio.open_nursery() as nursery:
            if side == "server":
                send_users, users = trio.open_memory_channel[UserCode](8)

                async def run_server(task_status: trio.TaskStatus[Any]) -> None:
                    try:
                        with trio_side:
                            await lib.serve_websocket(
                                partial(_server_handler, send_users),
                                HOST,
                                0,
                                None,
                                task_status=task_status,
                                **options,
                            )
                    finally:
                        trio_side_done.set()

                server = await nursery.start(run_server)
                port = server.port
                stream = await trio.open_tcp_stream(HOST, port)
                raw = rf.RawPeer(stream, is_client=True)
                await within(PROMPT, "opening handshake", raw.client_handshake, HOST, port)
                user = await within(PROMPT, "handler start", users.receive)
                pair = Pair(side, raw, user, port, trio_side, trio_side_done, users)
            elif side == "client":
                listeners = await trio.open_tcp_listeners(0, host=HOST)
                listener = listeners[0]
                port = listener.socket.getsockname()[1]
                user = UserCode()

                async def run_client() -> None:
                    try:
                        with trio_side:
                            await _run_client(user, port, client_api, options)
                    finally:
                        trio_side_done.set()

                nursery.start_soon(run_client)
                stream = await within(PROMPT, "client connecting", listener.accept)
                await listener.aclose()
                raw = rf.RawPeer(stream, is_client=False)
                await within(PROMPT, "opening handshake", raw.server_handshake)
                pair = Pair(side, raw, user, port, trio_side, trio_side_done)
            else:
                raise ValueError(side)
            try:
                yield pair
            finally:
                await raw.aclose()
                teardown_started = trio.current_time()
                nursery.cancel_scope.cancel()
        # Reached only when the test body passed.
        elapsed = trio.current_time() - teardown_started
        assert elapsed < PROMPT, f"trio_ws {side} took {elapsed:.3f}s to wind down when cancelled"
