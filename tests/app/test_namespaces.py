"""Namespaces as users of Flask-SocketIO, gevent-socketio and nameko expect them:
leaving one leaves its rooms and its access control, the server can take a
client out of one, the test client tracks them, internal rooms stay hidden,
and a send to one connection id says whether it was delivered."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
import trio
from apphelpers import TIMEOUT, wait_until

from trio_ws import CallError
from trio_ws.app import App, EventConnection, EventError, Namespace
from trio_ws.app.events import hub_room
from trio_ws.testing import TestClient


class Admin(Namespace):
    namespace = "/admin"
    allowed_events = frozenset({"login", "join"})

    def __init__(self) -> None:
        self.left: list[str] = []

    async def on_login(self, conn: EventConnection, password: str) -> str:
        if password != "letmein":
            raise EventError("Unauthorized", "wrong password")
        conn.acl("/admin").lift()
        return "welcome"

    async def on_join(self, conn: EventConnection, room: str) -> list[str]:
        await conn.join_room(room, namespace="/admin")
        return sorted(conn.rooms("/admin"))

    async def on_secret(self, conn: EventConnection, data: Any) -> str:
        return "the secret"

    async def on_disconnect(self, conn: EventConnection) -> None:
        self.left.append(conn.id)


def namespaced_app() -> tuple[App, Admin]:
    app = App()
    admin = app.add_namespace(Admin())
    assert isinstance(admin, Admin)

    @app.on("whoami")
    async def whoami(conn: EventConnection, data: Any) -> str:
        return conn.id

    @app.on("join")
    async def join(conn: EventConnection, room: str) -> None:
        await conn.join_room(room)

    @app.on("kick")
    async def kick(conn: EventConnection, namespace: str) -> list[str]:
        await conn.leave_namespace(namespace)
        return sorted(conn.namespaces)

    return app, admin


async def test_hub_rooms_lists_only_the_rooms_the_app_joined() -> None:
    app, _ = namespaced_app()
    with trio.fail_after(TIMEOUT):
        async with TestClient(app) as client, client.connect("/ws") as conn:
            conn_id = await conn.emit("whoami", ack=True)
            assert app.hub.rooms(conn_id) == frozenset()
            await conn.emit("join", "tea", ack=True)
            assert (await conn.connect_namespace("/admin"))["type"] == "connected"
            assert app.hub.rooms(conn_id) == {"tea"}
            member = app.hub.member(conn_id)
            assert member is not None
            assert member.rooms == {"tea"}


async def test_emit_to_one_id_says_whether_it_was_delivered() -> None:
    app, _ = namespaced_app()
    with trio.fail_after(TIMEOUT):
        async with TestClient(app) as client:
            assert await app.emit("news", "x", to=uuid.uuid4().hex) is False
            async with client.connect("/ws") as conn:
                conn_id = await conn.emit("whoami", ack=True)
                assert await app.emit("news", "for you", to=conn_id) is True
                assert [m["data"] for m in await conn.get_received()] == ["for you"]
            await wait_until(lambda: app.hub.member(conn_id) is None)
            assert await app.emit("news", "too late", to=conn_id) is False


async def test_leaving_a_namespace_leaves_its_rooms() -> None:
    app, admin = namespaced_app()
    with trio.fail_after(TIMEOUT):
        async with TestClient(app) as client, client.connect("/ws") as conn:
            conn_id = await conn.emit("whoami", ack=True)
            await conn.connect_namespace("/admin")
            assert await conn.emit("join", "ops", namespace="/admin", ack=True) == ["ops"]
            await conn.emit("join", "tea", ack=True)  # a room of "/": kept
            await conn.disconnect_namespace("/admin")
            await wait_until(lambda: admin.left == [conn_id])
            await conn.get_received()
            report = await app.emit("orders", "secret plans", to="ops", namespace="/admin")
            assert not isinstance(report, bool)
            assert report.recipients == 0
            everyone = await app.emit("notice", "admins only", namespace="/admin")
            assert not isinstance(everyone, bool)
            assert everyone.recipients == 0
            assert await conn.get_received() == []
            assert app.hub.rooms(conn_id) == {"tea"}


async def test_a_lifted_acl_does_not_survive_leaving_and_rejoining() -> None:
    app, _ = namespaced_app()
    with trio.fail_after(TIMEOUT):
        async with TestClient(app) as client, client.connect("/ws") as conn:
            await conn.connect_namespace("/admin")
            assert await conn.emit("login", "letmein", namespace="/admin", ack=True) == "welcome"
            assert await conn.emit("secret", namespace="/admin", ack=True) == "the secret"
            await conn.disconnect_namespace("/admin")
            await conn.connect_namespace("/admin")
            try:
                await conn.emit("secret", namespace="/admin", ack=True)
            except CallError as err:
                assert err.error_type == "Forbidden"
            else:  # pragma: no cover - the failure this test guards against
                raise AssertionError("the lifted ACL survived leaving the namespace")


async def test_the_server_can_take_a_client_out_of_one_namespace() -> None:
    app, admin = namespaced_app()
    with trio.fail_after(TIMEOUT):
        async with TestClient(app) as client, client.connect("/ws") as conn:
            conn_id = await conn.emit("whoami", ack=True)
            await conn.connect_namespace("/admin")
            await conn.emit("join", "ops", namespace="/admin", ack=True)
            assert conn.is_connected_to("/admin")
            assert await conn.emit("kick", "/admin", ack=True) == ["/"]
            assert await conn.get_received() == [{"type": "disconnect", "namespace": "/admin"}]
            assert not conn.is_connected_to("/admin")
            assert conn.is_connected
            assert admin.left == [conn_id]
            assert app.hub.rooms(conn_id) == frozenset()
            try:
                await conn.emit("join", "ops", namespace="/admin", ack=True)
            except CallError as err:
                assert err.error_type == "NotConnected"
            else:  # pragma: no cover - the failure this test guards against
                raise AssertionError("still in /admin after the server took the client out")
            # Taking it out again, or out of a namespace it never joined, does nothing.
            assert await conn.emit("kick", "/admin", ack=True) == ["/"]
            assert await conn.get_received() == []
            # It may join again.
            assert (await conn.connect_namespace("/admin"))["type"] == "connected"
            assert conn.is_connected_to("/admin")


async def test_the_test_client_tracks_namespaces() -> None:
    app, _ = namespaced_app()
    with trio.fail_after(TIMEOUT):
        async with TestClient(app) as client, client.connect("/ws") as conn:
            assert conn.namespaces == {"/"}
            assert conn.is_connected_to("/")
            assert not conn.is_connected_to("/admin")
            assert (await conn.connect_namespace("/nowhere"))["type"] == "connect_error"
            assert conn.namespaces == {"/"}
            await conn.connect_namespace("/admin")
            assert conn.namespaces == {"/", "/admin"}
            await conn.disconnect_namespace("/admin")
            assert conn.namespaces == {"/"}
            await conn.disconnect()
            assert conn.namespaces == frozenset()
            assert not conn.is_connected_to("/")


async def test_a_failing_disconnect_handler_still_leaves_the_rooms(caplog: pytest.LogCaptureFixture) -> None:
    app = App()

    @app.on("join", namespace="/team")
    async def join(conn: EventConnection, room: str) -> None:
        await conn.join_room(room, namespace="/team")

    @app.on("disconnect", namespace="/team")
    async def left(conn: EventConnection) -> None:
        raise RuntimeError("cleanup failed")

    team_blue = hub_room("/team", "blue")

    with trio.fail_after(TIMEOUT):
        async with TestClient(app) as client, client.connect("/ws") as conn:
            await conn.connect_namespace("/team")
            await conn.emit("join", "blue", namespace="/team", ack=True)
            await conn.disconnect_namespace("/team")
            await wait_until(lambda: not conn.is_connected_to("/team") and not app.hub.local_room_members(team_blue))
            assert any("disconnect handler of '/team' failed" in r.getMessage() for r in caplog.records)
            report = await app.emit("orders", "for blue", to="blue", namespace="/team")
            assert not isinstance(report, bool)
            assert report.recipients == 0
            assert conn.is_connected
