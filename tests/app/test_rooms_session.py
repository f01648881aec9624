"""Section 4: per-connection session, rooms through the hub (join, leave,
rooms, close_room) and background tasks tied to the connection (in memory)."""

from __future__ import annotations

from typing import Any

import trio
from apphelpers import TIMEOUT, wait_until

from trio_ws.app import App, EventConnection
from trio_ws.app.events import hub_room
from trio_ws.testing import TestClient


def rooms_app(flags: dict[str, trio.Event] | None = None) -> App:
    app = App()
    flags = flags if flags is not None else {}

    @app.on("whoami")
    async def whoami(conn: EventConnection, data: Any) -> str:
        return conn.id

    @app.on("session")
    async def session(conn: EventConnection, data: Any) -> dict:
        if data is not None:
            conn.session.update(data)
        assert conn.session is conn.websocket.session
        return dict(conn.session)

    @app.on("join")
    async def join(conn: EventConnection, spec: dict) -> list[str]:
        namespace = spec.get("namespace", "/")
        await conn.join_room(spec["room"], namespace=namespace)
        return sorted(conn.rooms(namespace))

    @app.on("leave")
    async def leave(conn: EventConnection, spec: dict) -> list[str]:
        namespace = spec.get("namespace", "/")
        await conn.leave_room(spec["room"], namespace=namespace)
        return sorted(conn.rooms(namespace))

    @app.on("rooms")
    async def rooms(conn: EventConnection, namespace: str) -> list[str]:
        return sorted(conn.rooms(namespace))

    @app.on("close_room")
    async def close_room(conn: EventConnection, spec: dict) -> None:
        await conn.close_room(spec["room"], namespace=spec.get("namespace", "/"))

    @app.on("background")
    async def background(conn: EventConnection, name: str) -> str:
        async def task() -> None:
            flags[name + "-started"].set()
            try:
                await trio.sleep_forever()
            finally:
                flags[name + "-cancelled"].set()

        flags[name + "-started"] = trio.Event()
        flags[name + "-cancelled"] = trio.Event()
        conn.start_soon(task)
        return "started"

    return app


async def test_session_is_per_connection() -> None:
    with trio.fail_after(TIMEOUT):
        async with TestClient(rooms_app()) as client, client.connect("/ws") as a, client.connect("/ws") as b:
            assert await a.emit("session", None, ack=True) == {}
            assert await a.emit("session", {"user": "ann"}, ack=True) == {"user": "ann"}
            assert await a.emit("session", {"n": 1}, ack=True) == {"user": "ann", "n": 1}
            assert await b.emit("session", None, ack=True) == {}
            assert await b.emit("session", {"user": "bob"}, ack=True) == {"user": "bob"}
            assert await a.emit("session", None, ack=True) == {"user": "ann", "n": 1}
        async with TestClient(rooms_app()) as client, client.connect("/ws") as c:
            assert await c.emit("session", None, ack=True) == {}


async def test_join_leave_rooms_close_room_through_the_hub() -> None:
    app = rooms_app()
    hub = app.hub
    with trio.fail_after(TIMEOUT):
        async with TestClient(app) as client, client.connect("/ws") as a, client.connect("/ws") as b:
            id_a = await a.emit("whoami", ack=True)
            id_b = await b.emit("whoami", ack=True)
            assert await a.emit("rooms", "/", ack=True) == []
            assert await a.emit("join", {"room": "red"}, ack=True) == ["red"]
            assert await a.emit("join", {"room": "blue"}, ack=True) == ["blue", "red"]
            assert await b.emit("join", {"room": "red"}, ack=True) == ["red"]
            assert hub.local_room_members("red") == {id_a, id_b}
            assert hub.local_room_members("blue") == {id_a}
            assert await a.emit("leave", {"room": "blue"}, ack=True) == ["red"]
            assert hub.local_room_members("blue") == frozenset()
            # rooms of another namespace are kept apart
            assert await a.emit("join", {"room": "red", "namespace": "/chat"}, ack=True) == ["red"]
            assert await a.emit("rooms", "/", ack=True) == ["red"]
            assert hub.local_room_members(hub_room("/chat", "red")) == {id_a}
            # close_room empties the room for every member
            await b.emit("close_room", {"room": "red"}, ack=True)
            assert hub.local_room_members("red") == frozenset()
            assert await a.emit("rooms", "/", ack=True) == []
            assert await b.emit("rooms", "/", ack=True) == []
            assert await a.emit("rooms", "/chat", ack=True) == ["red"]
        # a closed connection leaves every room
        await wait_until(lambda: hub.local_room_members(hub_room("/chat", "red")) == frozenset())


async def test_room_names_with_a_colon_in_the_default_namespace() -> None:
    """``rooms()`` must list every room joined with ``join_room`` ("user:42" is a common name)."""
    with trio.fail_after(TIMEOUT):
        async with TestClient(rooms_app()) as client, client.connect("/ws") as conn:
            assert await conn.emit("join", {"room": "user:42"}, ack=True) == ["user:42"]


async def test_background_tasks_are_cancelled_when_the_connection_ends() -> None:
    flags: dict[str, trio.Event] = {}
    with trio.fail_after(TIMEOUT):
        async with TestClient(rooms_app(flags)) as client:
            async with client.connect("/ws") as a, client.connect("/ws") as b:
                assert await a.emit("background", "a", ack=True) == "started"
                assert await b.emit("background", "b", ack=True) == "started"
                await flags["a-started"].wait()
                await flags["b-started"].wait()
                await a.disconnect()
                await flags["a-cancelled"].wait()
                # the other connection's task is untouched
                await trio.testing.wait_all_tasks_blocked()
                assert not flags["b-cancelled"].is_set()
                assert await b.emit("whoami", ack=True)
            await flags["b-cancelled"].wait()
