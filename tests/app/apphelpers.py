"""Shared helpers of the application-layer tests (tests/app).

* :func:`serving` runs an :class:`~trio_ws.app.App` on 127.0.0.1, port 0,
  either with ``app.serve`` or with ``serve_websocket(app, ...,
  process_request=app.process_request)``.
* :class:`RawEvents` speaks the event envelope over a real trio_ws client
  connection, keeping every message it did not ask for.
"""

from __future__ import annotations

import json
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


class RawEvents:
    """The event envelope over a real client connection."""

    def __init__(self, ws: trio_ws.WebSocketConnection) -> None:
        self.ws = ws
        self.next_id = 0
        self.stash: list[dict[str, Any]] = []

    async def send(self, value: dict[str, Any]) -> None:
        await self.ws.send_message(json.dumps(value))

    async def emit(self, event: str, data: Any = None, *, namespace: str = "/", call_id: int | None = None) -> None:
        envelope: dict[str, Any] = {"type": "event", "event": event, "namespace": namespace, "data": data}
        if call_id is not None:
            envelope["id"] = call_id
        await self.send(envelope)

    def new_id(self) -> int:
        self.next_id += 1
        return self.next_id

    async def call(self, event: str, data: Any = None, *, namespace: str = "/") -> dict[str, Any]:
        """Emit with an id and return the ``ack`` envelope that answers it."""
        call_id = self.new_id()
        await self.emit(event, data, namespace=namespace, call_id=call_id)
        return await self.wait_ack(call_id)

    async def wait_ack(self, call_id: int) -> dict[str, Any]:
        for index, envelope in enumerate(self.stash):
            if envelope.get("type") == "ack" and envelope.get("id") == call_id:
                return self.stash.pop(index)
        while True:
            envelope = json.loads(await self.ws.get_message())
            if envelope.get("type") == "ack" and envelope.get("id") == call_id:
                return envelope
            self.stash.append(envelope)

    async def receive(self) -> dict[str, Any]:
        """The next message (stashed ones first), decoded."""
        if self.stash:
            return self.stash.pop(0)
        envelope: dict[str, Any] = json.loads(await self.ws.get_message())
        return envelope

    async def receive_type(self, kind: str) -> dict[str, Any]:
        """The next message of type ``kind`` (others are stashed)."""
        for index, envelope in enumerate(self.stash):
            if envelope.get("type") == kind:
                return self.stash.pop(index)
        while True:
            envelope = json.loads(await self.ws.get_message())
            if envelope.get("type") == kind:
                return envelope
            self.stash.append(envelope)


async def wait_until(predicate: Any, interval: float = 0.005) -> None:
    """Poll ``predicate()`` until it is true (callers bound it with fail_after)."""
    while not predicate():  # noqa: ASYNC110 - the state polled belongs to the code under test
        await trio.sleep(interval)
