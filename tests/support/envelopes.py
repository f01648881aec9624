"""A client of the event envelope written by hand: JSON over a real WebSocket connection.

It writes and reads the envelopes as plain JSON (not through trio_ws.app), so
the tests check the wire format the server speaks, as a browser or any other
client would see it.
"""

from __future__ import annotations

import json
from typing import Any

import trio

import trio_ws


class RawEvents:
    """The event envelope over a client connection.

    Envelopes read while waiting for another one are kept (``stash``) and
    returned by later calls, in order. ``timeout`` bounds each wait for a
    message (None: the caller bounds the test).
    """

    def __init__(self, ws: trio_ws.WebSocketConnection, *, timeout: float | None = None) -> None:
        self.ws = ws
        self.timeout = timeout
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

    async def call_ok(self, event: str, data: Any = None, *, namespace: str = "/") -> Any:
        """:meth:`call` that must succeed: the data of its ``ack``."""
        ack = await self.call(event, data, namespace=namespace)
        assert "error" not in ack, ack
        return ack.get("data")

    async def _next(self) -> dict[str, Any]:
        if self.timeout is None:
            message = await self.ws.get_message()
        else:
            with trio.fail_after(self.timeout):
                message = await self.ws.get_message()
        envelope: dict[str, Any] = json.loads(message)
        return envelope

    async def _first(self, wanted: Any) -> dict[str, Any]:
        """The first envelope (stashed ones first) for which ``wanted`` is true; others are stashed."""
        for index, envelope in enumerate(self.stash):
            if wanted(envelope):
                return self.stash.pop(index)
        while True:
            envelope = await self._next()
            if wanted(envelope):
                return envelope
            self.stash.append(envelope)

    async def wait_ack(self, call_id: int) -> dict[str, Any]:
        return await self._first(lambda envelope: envelope.get("type") == "ack" and envelope.get("id") == call_id)

    async def receive(self) -> dict[str, Any]:
        """The next message (stashed ones first), decoded."""
        if self.stash:
            return self.stash.pop(0)
        return await self._next()

    async def receive_type(self, kind: str) -> dict[str, Any]:
        """The next message of type ``kind`` (others are stashed)."""
        return await self._first(lambda envelope: envelope.get("type") == kind)

    async def next_event(self, name: str) -> Any:
        """The data of the next ``name`` event (others are stashed)."""
        envelope = await self._first(lambda envelope: envelope.get("event") == name)
        return envelope["data"]
