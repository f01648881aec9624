"""Section 4 (access control): the per-connection set of allowed events —
an initial set per namespace, changed at run time; a denied event gets a
Forbidden error answer and a WARNING log."""

from __future__ import annotations

import logging
from typing import Any

import pytest
import trio
from apphelpers import TIMEOUT

from trio_ws import CallError
from trio_ws.app import AccessControl, App, EventConnection, Namespace
from trio_ws.testing import TestClient, TestConnection

# -- AccessControl (no I/O) ----------------------------------------------------------


def test_access_control_without_initial_set_allows_everything_but_denied() -> None:
    acl = AccessControl(None)
    assert acl.allowed is None and acl.denied == frozenset()
    assert acl.allows("anything")
    acl.deny("a", "b")
    assert not acl.allows("a") and not acl.allows("b") and acl.allows("c")
    assert acl.denied == {"a", "b"}
    acl.allow("a")
    assert acl.allows("a") and not acl.allows("b")
    acl.lift()
    assert acl.allows("b") and acl.denied == frozenset()
    acl.deny("x")
    acl.reset()
    assert acl.allows("x") and acl.allowed is None


def test_access_control_with_initial_set() -> None:
    acl = AccessControl(["read", "list"])
    assert acl.allowed == {"read", "list"}
    assert acl.allows("read") and not acl.allows("write")
    acl.allow("write")
    assert acl.allows("write")
    acl.deny("read")
    assert not acl.allows("read") and acl.allowed == {"list", "write"}
    acl.lift()
    assert acl.allowed is None and acl.allows("read") and acl.allows("admin")
    acl.deny("admin")
    assert not acl.allows("admin")
    acl.reset()
    assert acl.allowed == {"read", "list"} and acl.denied == frozenset()
    assert not acl.allows("write") and not acl.allows("admin") and acl.allows("read")


# -- at run time -------------------------------------------------------------------------


class Docs(Namespace):
    namespace = "/docs"
    allowed_events = frozenset({"read", "acl"})

    async def on_read(self, conn: EventConnection, data: Any) -> str:
        return "text"

    async def on_write(self, conn: EventConnection, data: Any) -> str:
        return "written"

    async def on_admin(self, conn: EventConnection, data: Any) -> str:
        return "admin"

    async def on_acl(self, conn: EventConnection, spec: dict) -> Any:
        acl = conn.acl("/docs")
        action = spec["action"]
        if action == "allow":
            acl.allow(*spec["events"])
        elif action == "deny":
            acl.deny(*spec["events"])
        elif action == "lift":
            acl.lift()
        elif action == "reset":
            acl.reset()
        return None if acl.allowed is None else sorted(acl.allowed)


def acl_app() -> App:
    app = App()
    app.add_namespace(Docs)

    @app.on("echo")
    async def echo(conn: EventConnection, data: Any) -> Any:
        return data

    @app.on("block")
    async def block(conn: EventConnection, events: list) -> None:
        conn.acl().deny(*events)

    return app


async def call(conn: TestConnection, event: str, data: Any = None) -> Any:
    """The answer, or ("error", type) for an error answer."""
    try:
        return await conn.emit(event, data, namespace="/docs", ack=True)
    except CallError as err:
        return ("error", err.error_type)


FORBIDDEN = ("error", "Forbidden")


async def test_initial_set_and_run_time_changes(caplog: pytest.LogCaptureFixture) -> None:
    with trio.fail_after(TIMEOUT):
        async with TestClient(acl_app()) as client, client.connect("/ws") as conn:
            assert (await conn.connect_namespace("/docs"))["type"] == "connected"
            assert await call(conn, "read") == "text"
            assert await call(conn, "write") == FORBIDDEN
            assert await call(conn, "admin") == FORBIDDEN
            assert await call(conn, "nope") == ("error", "UnknownEvent")

            assert await call(conn, "acl", {"action": "allow", "events": ["write"]}) == ["acl", "read", "write"]
            assert await call(conn, "write") == "written"
            assert await call(conn, "acl", {"action": "deny", "events": ["write", "read"]}) == ["acl"]
            assert await call(conn, "write") == FORBIDDEN
            assert await call(conn, "read") == FORBIDDEN
            assert await call(conn, "acl", {"action": "lift"}) is None
            assert await call(conn, "admin") == "admin"
            assert await call(conn, "write") == "written"
            assert await call(conn, "acl", {"action": "reset"}) == ["acl", "read"]
            assert await call(conn, "admin") == FORBIDDEN
            assert await call(conn, "read") == "text"
            assert conn.is_connected
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING and "denied" in r.getMessage()]
    assert len(warnings) == 5
    assert "'write'" in warnings[0].getMessage() and "'/docs'" in warnings[0].getMessage()


async def test_denied_event_without_id_gets_an_error_envelope() -> None:
    with trio.fail_after(TIMEOUT):
        async with TestClient(acl_app()) as client, client.connect("/ws") as conn:
            await conn.connect_namespace("/docs")
            await conn.emit("write", "x", namespace="/docs")
            received = await conn.get_received()
            assert len(received) == 1
            assert received[0]["type"] == "error" and received[0]["error"]["type"] == "Forbidden"
            assert "write" in received[0]["error"]["message"]


async def test_acl_is_per_connection() -> None:
    with trio.fail_after(TIMEOUT):
        async with TestClient(acl_app()) as client, client.connect("/ws") as a, client.connect("/ws") as b:
            await a.connect_namespace("/docs")
            await b.connect_namespace("/docs")
            await call(a, "acl", {"action": "allow", "events": ["write"]})
            assert await call(a, "write") == "written"
            assert await call(b, "write") == FORBIDDEN


async def test_default_namespace_allows_everything_until_denied(caplog: pytest.LogCaptureFixture) -> None:
    with trio.fail_after(TIMEOUT):
        async with TestClient(acl_app()) as client, client.connect("/ws") as conn, client.connect("/ws") as other:
            assert await conn.emit("echo", 1, ack=True) == 1
            await conn.emit("block", ["echo"], ack=True)
            with pytest.raises(CallError) as caught:
                await conn.emit("echo", 2, ack=True)
            assert caught.value.error_type == "Forbidden"
            assert await other.emit("echo", 3, ack=True) == 3
    assert any(r.levelno == logging.WARNING and "'echo'" in r.getMessage() for r in caplog.records)
