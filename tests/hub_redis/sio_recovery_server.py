"""An App serving Socket.IO clients with connection-state recovery through Redis, run as a process.

Usage::

    python sio_recovery_server.py --redis-url redis://127.0.0.1:PORT/0 --prefix P --process-id A [--window S]

Prints ``PORT <n>`` once it listens and serves until killed. Handlers (for
tests/hub_redis/sio_recovery_client.cjs): ``join`` (a room; sets
``session["name"]``), ``say`` (emits ``news`` to "tea", excluding the
sender, from this process), ``whoami`` (sid, session name, rooms,
``recovered``), ``ask`` (calls the client's ``add`` and answers with the
result) and ``drop-me`` (closes the transport without a goodbye, as a
network failure would).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import trio

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the checkout, when run as a script

from trio_ws.app import App, EventConnection
from trio_ws.app.socketio import SocketIOConnection
from trio_ws.hub import HistoryPolicy, Hub
from trio_ws.hub.redis import RedisBackend
from trio_ws.socketio.session import EngineConfig

#: The recovery log's bounds (a worker publishing into it is given the same). The log outlives a
#: short window: live delivery reads it too, and a loaded machine may read late.
HISTORY = HistoryPolicy(max_messages=10_000, max_bytes=8 * 1024 * 1024, max_age=60)


def build(url: str, prefix: str, process_id: str, window: float) -> App:
    backend = RedisBackend(url, prefix=prefix, process_id=process_id, heartbeat_interval=0.25, member_ttl=1.0)
    app = App(hub=Hub(backend=backend))
    config = EngineConfig(ping_interval=1.0, ping_timeout=2.0)
    app.enable_socketio(config=config, max_disconnection_duration=window, recovery_history=HISTORY)

    @app.on("join")
    async def join(conn: EventConnection, room: str) -> str:
        await conn.join_room(room)
        conn.session["name"] = f"joined on {process_id}"
        return process_id

    @app.on("say")
    async def say(conn: EventConnection, text: str) -> str:
        await app.emit("news", text, to="tea", exclude=conn.id)
        return process_id

    @app.on("whoami")
    async def whoami(conn: EventConnection, data: Any) -> list[Any]:
        assert isinstance(conn, SocketIOConnection)
        return [conn.id, conn.session.get("name"), sorted(conn.rooms()), conn.recovered, process_id]

    @app.on("ask")
    async def ask(conn: EventConnection, data: Any) -> Any:
        return await conn.call("add", (2, 3), timeout=5)

    @app.on("drop-me")
    async def drop(conn: EventConnection, data: Any) -> None:
        await conn.websocket.link.aclose(1011, "dropped")

    return app


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--redis-url", required=True)
    parser.add_argument("--prefix", required=True)
    parser.add_argument("--process-id", required=True)
    parser.add_argument("--window", type=float, default=30.0)
    args = parser.parse_args()
    app = build(args.redis_url, args.prefix, args.process_id, args.window)
    async with trio.open_nursery() as nursery:
        server = await nursery.start(app.serve, "127.0.0.1", 0)
        print(f"PORT {server.port}", flush=True)


if __name__ == "__main__":
    trio.run(main)
