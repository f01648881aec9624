"""Tests of trio_ws.heartbeat: the keepalive loop an application runs itself.

A trio_ws client talks to either a trio_ws server or a *raw* server (a few
lines of frame code below, independent of trio_ws) over in-memory streams;
time is Trio's autojump clock, so "100 seconds" take milliseconds.
"""

from __future__ import annotations

import base64
import hashlib
import re
import struct
from functools import partial
from typing import Any, NamedTuple

import pytest
import trio
import trio.testing

import trio_ws
from trio_ws import ConnectionClosed, ConnectionClosedError, WebSocketConnection, heartbeat

TEST_TIMEOUT = 300  # virtual seconds
PROMPT = 1.0
NO_KEEPALIVE: dict[str, Any] = {"ping_interval": None}
OP_TEXT, OP_CLOSE, OP_PING, OP_PONG = 0x1, 0x8, 0x9, 0xA
_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


class Frame(NamedTuple):
    opcode: int
    payload: bytes

    @property
    def close_code(self) -> int | None:
        return struct.unpack("!H", self.payload[:2])[0] if len(self.payload) >= 2 else None


class RawServer:
    """The server end of a connection, speaking bytes (server frames are unmasked)."""

    def __init__(self, stream: trio.abc.Stream) -> None:
        self.stream = stream
        self.buffer = bytearray()

    async def _need(self, n: int) -> bool:
        while len(self.buffer) < n:
            data = await self.stream.receive_some(2**16)
            if not data:
                return False
            self.buffer += data
        return True

    async def handshake(self) -> None:
        while b"\r\n\r\n" not in self.buffer:
            assert await self._need(len(self.buffer) + 1)
        end = self.buffer.index(b"\r\n\r\n") + 4
        head = bytes(self.buffer[:end])
        del self.buffer[:end]
        match = re.search(rb"(?im)^sec-websocket-key:[ \t]*(\S+)", head)
        assert match is not None
        accept = base64.b64encode(hashlib.sha1(match.group(1) + _GUID).digest())
        await self.stream.send_all(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Accept: " + accept + b"\r\n\r\n"
        )

    async def read_frame(self) -> Frame | None:
        """The next client frame, unmasked; None at EOF."""
        if not await self._need(2):
            return None
        b0, b1 = self.buffer[0], self.buffer[1]
        n, pos = b1 & 0x7F, 2
        if n == 126:
            if not await self._need(4):
                return None
            (n,) = struct.unpack("!H", self.buffer[2:4])
            pos = 4
        elif n == 127:
            if not await self._need(10):
                return None
            (n,) = struct.unpack("!Q", self.buffer[2:10])
            pos = 10
        assert b1 & 0x80, "client frames are masked"
        if not await self._need(pos + 4 + n):
            return None
        key = self.buffer[pos : pos + 4]
        payload = bytes(b ^ key[i % 4] for i, b in enumerate(self.buffer[pos + 4 : pos + 4 + n]))
        del self.buffer[: pos + 4 + n]
        return Frame(b0 & 0x0F, payload)

    async def send_frame(self, opcode: int, payload: bytes = b"") -> None:
        assert len(payload) < 126
        await self.stream.send_all(bytes([0x80 | opcode, len(payload)]) + payload)


async def client_with_raw_server(nursery: trio.Nursery, **options: Any) -> tuple[WebSocketConnection, RawServer]:
    client_stream, server_stream = trio.testing.memory_stream_pair()
    raw = RawServer(server_stream)
    async with trio.open_nursery() as handshake:
        handshake.start_soon(raw.handshake)
        ws = await trio_ws.wrap_client_stream(nursery, client_stream, "localhost", "/", **options)
    return ws, raw


async def open_pair(nursery: trio.Nursery, **options: Any) -> tuple[WebSocketConnection, WebSocketConnection]:
    client_stream, server_stream = trio.testing.memory_stream_pair()
    result: dict[str, WebSocketConnection] = {}

    async def server_side() -> None:
        request = await trio_ws.wrap_server_stream(nursery, server_stream, **options)
        result["server"] = await request.accept()

    async with trio.open_nursery() as handshake:
        handshake.start_soon(server_side)
        result["client"] = await trio_ws.wrap_client_stream(nursery, client_stream, "localhost", "/", **options)
    return result["client"], result["server"]


async def record_frames(raw: RawServer, frames: list[Frame], *, answer_pings: bool) -> None:
    while (frame := await raw.read_frame()) is not None:
        frames.append(frame)
        if frame.opcode == OP_PING and answer_pings:
            await raw.send_frame(OP_PONG, frame.payload)
        if frame.opcode == OP_CLOSE:
            return


# -- argument validation ------------------------------------------------------------
@pytest.mark.parametrize(
    "kwargs",
    [
        {"interval": 0},
        {"interval": -1},
        {"interval": 1, "timeout": 0},
        {"interval": 1, "timeout": -5},
        {"interval": 1, "mode": "bogus"},
        {"interval": 1, "mode": "PING"},
        {"interval": 1, "mode": None},
    ],
)
async def test_heartbeat_argument_validation(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock, kwargs: dict[str, Any]
) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        client, server = await open_pair(nursery, **NO_KEEPALIVE)
        start = trio.current_time()
        with pytest.raises(ValueError):
            await heartbeat(client, **kwargs)
        assert trio.current_time() - start < PROMPT  # refused at once, not after a sleep
        assert client.closed is None  # the connection is untouched
        await client.send_message("still fine")
        assert await server.get_message() == "still fine"


# -- mode="ping" ----------------------------------------------------------------------
async def test_ping_heartbeat_closes_1011_on_silent_peer(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        ws, raw = await client_with_raw_server(nursery, **NO_KEEPALIVE)
        start = trio.current_time()
        await heartbeat(ws, interval=1, timeout=1)  # returns once it closed the connection
        elapsed = trio.current_time() - start
        assert 1 <= elapsed <= 2 + 0.01
        assert ws.closed is not None
        assert ws.closed.code == 1011
        with pytest.raises(ConnectionClosedError) as info:
            await ws.get_message()
        assert type(info.value) is ConnectionClosedError
        assert info.value.reason.code == 1011
        # On the wire: one ping, then a close frame with 1011.
        frames: list[Frame] = []
        await record_frames(raw, frames, answer_pings=False)
        assert [frame.opcode for frame in frames] == [OP_PING, OP_CLOSE]
        assert frames[-1].close_code == 1011


async def test_ping_heartbeat_in_background_closes_and_get_message_raises(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        ws, _raw = await client_with_raw_server(nursery, **NO_KEEPALIVE)
        nursery.start_soon(partial(heartbeat, ws, interval=3, timeout=2))
        start = trio.current_time()
        with pytest.raises(ConnectionClosedError) as info:
            await ws.get_message()
        assert info.value.reason.code == 1011
        assert trio.current_time() - start <= 5 + 0.01


async def test_ping_heartbeat_keeps_healthy_connection_open(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        ws, raw = await client_with_raw_server(nursery, **NO_KEEPALIVE)
        frames: list[Frame] = []
        nursery.start_soon(partial(record_frames, raw, frames, answer_pings=True))
        nursery.start_soon(partial(heartbeat, ws, interval=2, timeout=1))
        await trio.sleep(60.5)
        assert ws.closed is None
        pings = [frame for frame in frames if frame.opcode == OP_PING]
        assert 29 <= len(pings) <= 31
        assert len({frame.payload for frame in pings}) == len(pings)  # one pending ping at a time, fresh payloads
        assert isinstance(ws.latency, float)


async def test_ping_heartbeat_between_trio_ws_peers(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        client, server = await open_pair(nursery, **NO_KEEPALIVE)
        assert client.latency is None
        nursery.start_soon(partial(heartbeat, client, interval=1, timeout=1))
        nursery.start_soon(partial(heartbeat, server, interval=1.5, timeout=1))
        await trio.sleep(30)
        assert client.closed is None and server.closed is None
        assert isinstance(client.latency, float)
        assert isinstance(server.latency, float)
        await client.send_message("hi")
        assert await server.get_message() == "hi"


async def test_ping_heartbeat_timeout_none_waits_forever(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        ws, raw = await client_with_raw_server(nursery, **NO_KEEPALIVE)
        frames: list[Frame] = []
        nursery.start_soon(partial(record_frames, raw, frames, answer_pings=False))
        nursery.start_soon(partial(heartbeat, ws, interval=1))
        await trio.sleep(100)
        assert ws.closed is None
        assert [frame.opcode for frame in frames] == [OP_PING]  # still waiting for the first pong


async def test_ping_heartbeat_slow_pong_within_timeout_is_fine(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        ws, raw = await client_with_raw_server(nursery, **NO_KEEPALIVE)

        async def slow_ponger() -> None:
            while (frame := await raw.read_frame()) is not None:
                if frame.opcode == OP_PING:
                    await trio.sleep(1.5)
                    await raw.send_frame(OP_PONG, frame.payload)

        nursery.start_soon(slow_ponger)
        nursery.start_soon(partial(heartbeat, ws, interval=1, timeout=2))
        await trio.sleep(30)
        assert ws.closed is None
        assert ws.latency == pytest.approx(1.5, abs=0.01)


# -- mode="pong" -------------------------------------------------------------------------
async def test_pong_heartbeat_sends_unsolicited_pongs(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        ws, raw = await client_with_raw_server(nursery, **NO_KEEPALIVE)
        frames: list[Frame] = []
        nursery.start_soon(partial(record_frames, raw, frames, answer_pings=False))
        nursery.start_soon(partial(heartbeat, ws, interval=1, timeout=0.5, mode="pong"))
        await trio.sleep(10.5)
        assert [frame.opcode for frame in frames] == [OP_PONG] * 10
        assert ws.closed is None  # nobody answers pongs, and that is fine


async def test_pong_heartbeat_is_ignored_by_trio_ws_peer(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        client, server = await open_pair(nursery, **NO_KEEPALIVE)
        nursery.start_soon(partial(heartbeat, client, interval=1, mode="pong"))
        await trio.sleep(20)
        await client.send_message("first message")
        assert await server.get_message() == "first message"  # the pongs were not messages
        assert client.closed is None and server.closed is None


# -- ending --------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["ping", "pong"])
async def test_heartbeat_returns_when_connection_closes(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock, mode: str
) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        client, server = await open_pair(nursery, **NO_KEEPALIVE)
        done = trio.Event()

        async def run() -> None:
            await heartbeat(client, interval=5, timeout=5, mode=mode)  # type: ignore[arg-type]
            done.set()

        nursery.start_soon(run)
        await trio.sleep(12)
        await server.aclose(1000)
        start = trio.current_time()
        await done.wait()
        assert trio.current_time() - start <= 5 + 0.01  # at most one interval
        assert client.closed is not None and client.closed.code == 1000  # not turned into 1011


async def test_heartbeat_returns_when_peer_vanishes_during_ping(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        ws, raw = await client_with_raw_server(nursery, **NO_KEEPALIVE)
        done = trio.Event()

        async def run() -> None:
            await heartbeat(ws, interval=1, timeout=50)
            done.set()

        nursery.start_soon(run)
        frame = await raw.read_frame()
        assert frame is not None and frame.opcode == OP_PING
        start = trio.current_time()
        await trio.aclose_forcefully(raw.stream)
        await done.wait()
        assert trio.current_time() - start < PROMPT
        assert ws.closed is not None and ws.closed.code == 1006


async def test_heartbeat_on_closed_connection_returns_at_once(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        client, _server = await open_pair(nursery, **NO_KEEPALIVE)
        await client.aclose()
        start = trio.current_time()
        await heartbeat(client, interval=10, timeout=1)
        await heartbeat(client, interval=10, mode="pong")
        assert trio.current_time() - start < PROMPT


async def test_cancelling_heartbeat_leaves_connection_usable(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        ws, raw = await client_with_raw_server(nursery, **NO_KEEPALIVE)
        with trio.move_on_after(1.5) as scope:
            await heartbeat(ws, interval=1, timeout=10)  # cancelled while its ping is pending
        assert scope.cancelled_caught
        assert ws.closed is None
        frame = await raw.read_frame()
        assert frame is not None and frame.opcode == OP_PING
        await raw.send_frame(OP_PONG, frame.payload)  # a late pong is simply ignored
        await raw.send_frame(OP_TEXT, b"still open")
        assert await ws.get_message() == "still open"
        await ws.send_message("yes")
        frame = await raw.read_frame()
        assert frame == Frame(OP_TEXT, b"yes")


async def test_heartbeat_never_raises_connection_closed(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    """Whatever happens to the connection, heartbeat returns quietly."""
    with trio.fail_after(TEST_TIMEOUT):
        client, server = await open_pair(nursery, **NO_KEEPALIVE)

        async def run(mode: str) -> None:
            try:
                await heartbeat(client, interval=0.5, timeout=1, mode=mode)  # type: ignore[arg-type]
            except ConnectionClosed as exc:  # pragma: no cover - the failure we look for
                raise AssertionError(f"heartbeat raised {exc!r}") from exc

        async with trio.open_nursery() as inner:
            inner.start_soon(run, "ping")
            inner.start_soon(run, "pong")
            await trio.sleep(3)
            await server.aclose(4000)
        assert client.closed is not None and client.closed.code == 4000
