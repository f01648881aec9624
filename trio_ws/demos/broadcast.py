"""A broadcast demo: a tick to every connection each second, and messages to all.

Clients connect to the ``/ws`` event route (the event envelope, as with the
browser client ``/trio_ws.js``). The events:

* ``tick {"seq", "time"}``: emitted by the server to every connection once a
  second, by one background task (:func:`tick`) beside the server. ``seq``
  counts from 1, ``time`` is the server's Unix time. With a hub that has a
  Redis backend every process runs its own ticker, and its ticks also carry
  ``"server"``, the process's id on the hub.
* ``send "text"``: every connection, the sender included, gets
  ``message {"from", "text"}``, where ``from`` is the sender's connection id.

Both go through :meth:`App.emit <trio_ws.app.App.emit>` without a room: the
hub frames each event once and queues it for every connection without
waiting for any of them, in every process when the hub has a backend.
"""

from __future__ import annotations

import time
from typing import Any

import trio

from ..app import App, EventConnection, EventError
from ..hub import Hub

__all__ = ["MAX_TEXT", "TICK_INTERVAL", "create_app", "tick"]

#: Seconds between two ticks.
TICK_INTERVAL = 1.0
#: The longest message, in characters.
MAX_TEXT = 2000


def create_app(hub: Hub | None = None) -> App:
    """A fresh broadcast app; run :func:`tick` beside its server.

    Args:
        hub: the hub of the app's connections (default: a new in-memory hub).
    """
    app = App(hub=hub)

    @app.on("send")
    async def send(conn: EventConnection, text: str) -> None:
        if not text.strip() or len(text) > MAX_TEXT:
            raise EventError("BadRequest", f"a message has 1 to {MAX_TEXT} characters")
        await app.emit("message", {"from": conn.id, "text": text})

    return app


async def tick(app: App, interval: float = TICK_INTERVAL) -> None:
    """Emit ``tick`` to every connection of ``app`` every ``interval`` seconds, until cancelled.

    The schedule is fixed (a slow emit does not make it drift); the first tick
    comes one interval after the start.
    """
    deadline = trio.current_time()
    seq = 0
    while True:
        deadline += interval
        await trio.sleep_until(deadline)
        seq += 1
        data: dict[str, Any] = {"seq": seq, "time": round(time.time(), 3)}
        if app.hub.process_id is not None:
            data["server"] = app.hub.process_id
        await app.emit("tick", data)
