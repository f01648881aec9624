"""Which tasks of an Engine.IO session wake up, and when (trio_ws.socketio.transport).

A packet that queues nothing for the client (an event whose ack the layer
writes itself) wakes neither the session's clock nor its WebSocket writer nor
its Engine.IO reader (the connection's reader task queues the event for the
App's worker itself),
the App's worker that handles the event runs once (it writes the ack itself,
taking the session's write lock without a trip through the scheduler and
without yielding after the write), and the hub's sender does not wake:
counted with a Trio instrument over real round trips on 127.0.0.1, so no
timing is involved. The wake-ups that must stay are pinned too: a pong that
brings the next ping before the pong deadline re-arms the clock (on the
mock clock), and a packet the layer queues without notifying goes out.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

import pytest
import trio
import trio.testing

from trio_ws import WebSocketConnection, WebSocketServer, open_websocket_url, serve_websocket
from trio_ws.app import App, EventConnection
from trio_ws.socketio import EngineConfig
from trio_ws.socketio.server import Socket, SocketIOServer

CLOCK = "trio_ws.socketio.transport.EngineConnection._clock"
WRITER = "trio_ws.socketio.transport.EngineConnection._ws_writer"
SENDER = "trio_ws.hub.hub.Hub._sender"
#: The task that runs a WebSocket-only session, and in it the Engine.IO reader (_ws_reader).
TRANSPORT_READER = "trio_ws.server.WebSocketServer._serve_transport"
WORKER = "_worker"  # the App session's event worker (WebSocket.start_soon names a task by its function)
SLOW_PINGS = EngineConfig(ping_interval=30, ping_timeout=30)  # no ping within a test


class TaskSteps(trio.abc.Instrument):
    """Counts the steps (runs between two yields) of the tasks with the given names."""

    def __init__(self, *names: str) -> None:
        self.steps = dict.fromkeys(names, 0)

    def before_task_step(self, task: trio.lowlevel.Task) -> None:
        if task.name in self.steps:
            self.steps[task.name] += 1


@asynccontextmanager
async def counting(*names: str) -> AsyncIterator[TaskSteps]:
    counter = TaskSteps(*names)
    trio.lowlevel.add_instrument(counter)
    try:
        yield counter
    finally:
        trio.lowlevel.remove_instrument(counter)


@asynccontextmanager
async def app_session(app: App) -> AsyncIterator[WebSocketConnection]:
    """A raw Engine.IO WebSocket on ``app``, connected to ``/``."""
    async with trio.open_nursery() as nursery:
        server: WebSocketServer = await nursery.start(partial(app.serve, "127.0.0.1", 0))
        async with open_websocket_url(f"ws://127.0.0.1:{server.port}/socket.io/?EIO=4&transport=websocket") as ws:
            assert (await ws.get_message()).startswith("0{")
            await ws.send_message("40")
            assert (await ws.get_message()).startswith("40")
            yield ws
        nursery.cancel_scope.cancel()


@asynccontextmanager
async def server_session(sio: SocketIOServer, *, connect: bool) -> AsyncIterator[WebSocketConnection]:
    """A raw Engine.IO WebSocket on the standalone server ``sio`` (connected to ``/`` with ``connect``)."""
    async with trio.open_nursery() as nursery:
        server: WebSocketServer = await nursery.start(
            lambda task_status: serve_websocket(
                sio, "127.0.0.1", 0, None, process_request=sio.process_request, task_status=task_status
            )
        )
        async with open_websocket_url(f"ws://127.0.0.1:{server.port}/socket.io/?EIO=4&transport=websocket") as ws:
            assert (await ws.get_message()).startswith("0{")
            if connect:
                await ws.send_message("40")
                assert (await ws.get_message()).startswith("40")
            yield ws
        nursery.cancel_scope.cancel()


async def test_app_echo_round_trips_wake_neither_the_clock_nor_the_writer() -> None:
    app = App()
    app.enable_socketio(config=SLOW_PINGS)

    @app.on("echo")
    async def echo(conn: EventConnection, data: Any) -> Any:
        return data

    with trio.fail_after(20):
        async with app_session(app) as ws:
            await ws.send_message('420["echo","warm"]')
            assert await ws.get_message() == '430["warm"]'
            async with counting(CLOCK, WRITER, SENDER, WORKER, TRANSPORT_READER) as counter:
                for i in range(1, 21):
                    await ws.send_message(f'42{i}["echo",{i}]')
                    assert await ws.get_message() == f"43{i}[{i}]"
    # The ack goes out from the hub's sender; nothing was queued in the session, no deadline came earlier.
    assert (counter.steps[CLOCK], counter.steps[WRITER]) == (0, 0)
    # The Engine.IO reader does not wake either: the connection's reader task hands the
    # EVENT straight to the worker's queue (the transport's sink), nothing being queued before it.
    assert counter.steps[TRANSPORT_READER] == 0
    # The hub's sender does not wake at all: with nothing in the member's outbox,
    # the worker writes the ack itself.
    assert counter.steps[SENDER] == 0
    # The worker runs once per event: it wakes for the event, writes the ack without
    # yielding (the session's free write lock is taken without a trip through the
    # scheduler), and parks in its next receive from the queue.
    assert counter.steps[WORKER] <= 20


async def test_standalone_server_echo_round_trips_do_not_wake_the_clock() -> None:
    sio = SocketIOServer(config=SLOW_PINGS)

    @sio.on("echo")
    async def echo(socket: Socket, *args: Any) -> tuple[Any, ...]:
        return args

    with trio.fail_after(20):
        async with server_session(sio, connect=True) as ws, counting(CLOCK, WRITER) as counter:
            for i in range(1, 21):
                await ws.send_message(f'42{i}["echo",{i}]')
                assert await ws.get_message() == f"43{i}[{i}]"
    # Each ack is queued in the session and written by the writer, which is all that wakes.
    assert counter.steps[CLOCK] == 0
    assert counter.steps[WRITER] >= 20


async def test_a_reply_queued_while_a_packet_is_handled_goes_out() -> None:
    # CONNECT to a namespace that does not exist: the standalone server queues the
    # CONNECT_ERROR from inside the packet's handling, without notifying; the
    # receiving side wakes the writer because something is queued.
    sio = SocketIOServer(config=SLOW_PINGS)
    with trio.fail_after(20):
        async with server_session(sio, connect=False) as ws:
            await ws.send_message("40/nowhere,")
            answer = await ws.get_message()
    assert isinstance(answer, str)
    assert answer.startswith("44/nowhere,")
    assert json.loads(answer[len("44/nowhere,") :]) == {"message": "Invalid namespace"}


async def test_a_pong_brings_the_next_ping_before_the_pong_deadline(mock_clock: trio.testing.MockClock) -> None:
    # ping_interval < ping_timeout: after each pong the next ping (5 s later) is due
    # long before the pong deadline the clock was sleeping until (60 s after the ping).
    app = App()
    app.enable_socketio(config=EngineConfig(ping_interval=5, ping_timeout=60))
    async with app_session(app) as ws:
        # From here the clock jumps by itself once every task waits: to the next
        # ping if the pong re-armed the session's clock, else to fail_after's deadline.
        mock_clock.autojump_threshold = 0.5
        start = trio.current_time()
        for n in range(1, 4):
            with trio.fail_after(20):
                assert await ws.get_message() == "2"
            assert trio.current_time() - start == pytest.approx(5 * n)
            await ws.send_message("3")


async def test_events_keep_their_order_whichever_task_takes_them() -> None:
    # EVENTs the connection's reader task hands to the worker itself, and packets
    # that take the Engine.IO reader (binary events and their attachments, pongs,
    # acks, events sent while the worker's queue is full), arrive in the order sent.
    app = App()
    app.enable_socketio(config=SLOW_PINGS)
    seen: list[Any] = []

    @app.on("note")
    async def note(conn: EventConnection, data: Any) -> Any:
        seen.append(data)
        await trio.lowlevel.checkpoint()  # the reader may run while the worker is busy
        return data

    sent: list[Any] = []
    with trio.fail_after(20):
        async with app_session(app) as ws:
            for i in range(60):
                if i % 7 == 3:
                    await ws.send_message('451-["note",{"_placeholder":true,"num":0}]')
                    await ws.send_message(bytes([i]))
                    sent.append(bytes([i]))
                elif i % 11 == 5:
                    await ws.send_message("3")  # a pong nobody asked for: ignored, in between
                    await ws.send_message(f'42["note",{i}]')
                    sent.append(i)
                else:
                    await ws.send_message(f'42["note",{i}]')
                    sent.append(i)
            await ws.send_message('4299["note","last"]')
            while (await ws.get_message()) != '4399["last"]':
                pass
    assert seen == [*sent, "last"]
