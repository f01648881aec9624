"""Tests of trio_ws.heartbeat: the keepalive loop an application runs itself.

A trio_ws client talks to either a trio_ws server or a *raw* server
(tests/support/rawframes.py, independent of trio_ws) over in-memory streams;
time is Trio's autojump clock, so "100 seconds" take milliseconds.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import pytest
import trio
import trio.testing
from support.pairs import ws_pair
from support.rawframes import Frame, RawPeer

import trio_ws
from trio_ws import ConnectionClosed, ConnectionClosedError, WebSocketConnection, heartbeat

TEST_TIMEOUT = 300  # virtual seconds
PROMPT = 1.0
NO_KEEPALIVE: dict[str, Any] = {"ping_interval": None}
OP_TEXT, OP_CLOSE, OP_PING, OP_PONG = 0x1, 0x8, 0x9, 0xA


async def client_with_raw_server(nursery: trio.Nursery, **options: Any) -> tuple[WebSocketConnection, RawPeer]:
    client_stream, server_stream = trio.testing.memory_stream_pair()
    raw = RawPeer(server_stream, is_client=False)
    async with trio.open_nursery() as handshake:
        handshake.start_soon(raw.server_handshake)
        ws = await trio_ws.wrap_client_stream(nursery, client_stream, "localhost", "/", **options)
    return ws, raw


async def record_frames(raw: RawPeer, frames: list[Frame], *, answer_pings: bool) -> None:
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
        client, server = await ws_pair(nursery, client=NO_KEEPALIVE, server=NO_KEEPALIVE)
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
        client, server = await ws_pair(nursery, client=NO_KEEPALIVE, server=NO_KEEPALIVE)
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
        client, server = await ws_pair(nursery, client=NO_KEEPALIVE, server=NO_KEEPALIVE)
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
        client, server = await ws_pair(nursery, client=NO_KEEPALIVE, server=NO_KEEPALIVE)
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
        client, _server = await ws_pair(nursery, client=NO_KEEPALIVE, server=NO_KEEPALIVE)
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
        assert frame == Frame(True, False, OP_TEXT, b"yes")


async def test_heartbeat_never_raises_connection_closed(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    """Whatever happens to the connection, heartbeat returns quietly."""
    with trio.fail_after(TEST_TIMEOUT):
        client, server = await ws_pair(nursery, client=NO_KEEPALIVE, server=NO_KEEPALIVE)

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
