"""Shared helpers of the application-layer tests (tests/app).

* :func:`serving` runs an :class:`~trio_ws.app.App` on 127.0.0.1, port 0,
  either with ``app.serve`` or with ``serve_websocket(app, ...,
  process_request=app.process_request)``.
* :class:`RawEvents` speaks the event envelope over a real trio_ws client
  connection, keeping every message it did not ask for.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

import trio

import trio_ws
from trio_ws.app import App

#: Every test runs under ``trio.fail_after(TIMEOUT)``.
TIMEOUT = 10.0
SERVE_MODES = ("app.serve", "serve_websocket")


@asynccontextmanager
async def serving(app: App, mode: str = "app.serve", **options: Any) -> AsyncIterator[trio_ws.WebSocketServer]:
    """Serve ``app`` on 127.0.0.1 (a free port) for the duration of the block."""
    async with trio.open_nursery() as nursery:
        if mode == "app.serve":
            server = await nursery.start(partial(app.serve, "127.0.0.1", 0, **options))
        elif mode == "serve_websocket":
            server = await nursery.start(
                partial(
                    trio_ws.serve_websocket,
                    app,
                    "127.0.0.1",
                    0,
                    None,
                    process_request=app.process_request,
                    **options,
                )
            )
        else:  # pragma: no cover - a typo in a test
            raise ValueError(mode)
        yield server
        nursery.cancel_scope.cancel()


def connect(server: trio_ws.WebSocketServer, resource: str, **kwargs: Any) -> Any:
    """``open_websocket`` to ``server`` on 127.0.0.1 (an async context manager)."""
    return trio_ws.open_websocket("127.0.0.1", server.port, resource, use_ssl=False, **kwargs)


async def wait_until(predicate: Any, interval: float = 0.005) -> None:
    """Poll ``predicate()`` until it is true (callers bound it with fail_after)."""
    while not predicate():  # noqa: ASYNC110 - the state polled belongs to the code under test
        await trio.sleep(interval)
