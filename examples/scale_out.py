"""Scale out: several trio_ws processes share rooms through Redis.

Start a Redis server, then one process per port::

    python examples/scale_out.py --redis redis://127.0.0.1:6379 --port 8001
    python examples/scale_out.py --redis redis://127.0.0.1:6379 --port 8002

A client of either process joins a room with the ``join`` event (the answer is
the room's member count across all processes) and its ``say`` events reach
every member of the room, whichever process it is connected to, as ``said``
events. Put a load balancer in front (see docs/howto/deploy-nginx.rst) and the
processes look like one server.
"""

from __future__ import annotations

import argparse
import sys

import trio

from trio_ws.app import App, EventConnection, EventError
from trio_ws.cli import run_main
from trio_ws.hub import Hub
from trio_ws.hub.redis import RedisBackend


def create_app(redis_url: str) -> App:
    """An app whose hub spans every process using the same Redis."""
    app = App(hub=Hub(backend=RedisBackend(redis_url)))

    @app.on("join")
    async def join(conn: EventConnection, room: str) -> int:
        await conn.join_room(room)
        conn.session["room"] = room
        return await app.hub.member_count(room)

    @app.on("say")
    async def say(conn: EventConnection, text: str) -> None:
        room = conn.session.get("room")
        if room is None:
            raise EventError("NotInRoom", "join a room first")
        await app.emit("said", {"from": conn.id, "text": text}, to=room)

    return app


async def main(redis_url: str, host: str, port: int) -> None:
    """Serve until Ctrl-C; the hub's Redis link runs inside app.serve."""
    app = create_app(redis_url)
    async with trio.open_nursery() as nursery:
        server = await nursery.start(app.serve, host, port)
        print(f"node serving ws://{host}:{server.port}/ws (process {app.hub.process_id})", flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001, help="0 picks a free port")
    args = parser.parse_args()
    sys.exit(run_main(main, args.redis, args.host, args.port))  # Ctrl-C stops the server quietly
