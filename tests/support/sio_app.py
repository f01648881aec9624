"""Helpers of the tests that serve Socket.IO clients from an App on 127.0.0.1 and speak raw Engine.IO frames."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

import trio

from trio_ws import WebSocketServer
from trio_ws.app import App


@asynccontextmanager
async def serving(app: App) -> AsyncIterator[WebSocketServer]:
    """``app`` served on an ephemeral port of 127.0.0.1 for the block; cancelled after it."""
    async with trio.open_nursery() as nursery:
        server = await nursery.start(partial(app.serve, "127.0.0.1", 0))
        yield server
        nursery.cancel_scope.cancel()


def task_count() -> int:
    """How many tasks run in this trio run (every nursery under the root task)."""

    def count(task: trio.lowlevel.Task) -> int:
        return 1 + sum(count(child) for nursery in task.child_nurseries for child in nursery.child_tasks)

    return count(trio.lowlevel.current_root_task())


async def next_packet(ws: Any) -> Any:
    """The next message on a raw Engine.IO WebSocket that is not a ping (which it answers): a ping
    may come between any two packets, the more so on a loaded machine."""
    while (message := await ws.get_message()) == "2":
        await ws.send_message("3")
    return message
