"""Section 4 (RPC): exceptions become structured error answers; expected ones
are logged at INFO, unexpected ones at ERROR with sensitive arguments
redacted; EventError; debug mode; error hooks per namespace and default."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar

import pytest
import trio
from apphelpers import TIMEOUT

from trio_ws import CallError
from trio_ws.app import App, EventConnection, EventError, Namespace
from trio_ws.testing import TestClient

SECRET = f"hunter2-{uuid.uuid4().hex}"


class Hooks:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str, str, str, str]] = []  # (hook, conn id, event, type, message)


class Billing(Namespace):
    namespace = "/billing"
    expected_exceptions: ClassVar[Mapping[str, Iterable[type[BaseException]]]] = {"pay": [LookupError]}
    sensitive_arguments: ClassVar[Mapping[str, Iterable[str]]] = {"pay": ["card"]}

    def __init__(self, hooks: Hooks) -> None:
        self.hooks = hooks

    async def on_pay(self, conn: EventConnection, data: dict) -> str:
        if data.get("amount", 0) < 0:
            raise LookupError("no such account")
        raise ZeroDivisionError("billing bug")

    async def on_error(self, conn: EventConnection, event: str, error: BaseException) -> None:
        self.hooks.calls.append(("billing-namespace", conn.id, event, type(error).__name__, str(error)))


class Shop(Namespace):
    """A namespace with its own on_error, overridden by an app-level hook."""

    namespace = "/shop"

    def __init__(self, hooks: Hooks) -> None:
        self.hooks = hooks

    async def on_buy(self, conn: EventConnection, data: Any) -> None:
        raise KeyError("shop bug")

    async def on_error(self, conn: EventConnection, event: str, error: BaseException) -> None:
        self.hooks.calls.append(("shop-namespace", conn.id, event, type(error).__name__, str(error)))


class Plain(Namespace):
    """No on_error of its own: the default hook applies."""

    namespace = "/plain"

    async def on_oops(self, conn: EventConnection, data: Any) -> None:
        raise OSError("plain bug")


def rpc_app(hooks: Hooks, *, debug: bool = False, with_default_hook: bool = True) -> App:
    app = App(debug=debug)

    @app.on("whoami")
    async def whoami(conn: EventConnection, data: Any) -> str:
        return conn.id

    @app.on("login", expected_exceptions=[PermissionError, ValueError], sensitive_arguments=["password"])
    async def login(conn: EventConnection, data: Any) -> str:
        if isinstance(data, dict) and data.get("user") == "ann":
            raise PermissionError("wrong password")
        if isinstance(data, dict) and data.get("user") == "bob":
            raise RuntimeError("login bug")
        raise ValueError("bad input")

    @app.on("find")
    async def find(conn: EventConnection, data: Any) -> None:
        raise EventError("NotFound", f"no item {data}")

    @app.on("crash", namespace="/chat")
    async def crash(conn: EventConnection, data: Any) -> None:
        raise RuntimeError("chat bug")

    @app.on("unencodable")
    async def unencodable(conn: EventConnection, data: Any) -> Any:
        return {"set": {1, 2}}

    @app.on_error("/chat")
    async def chat_hook(conn: EventConnection, event: str, error: BaseException) -> None:
        hooks.calls.append(("chat", conn.id, event, type(error).__name__, str(error)))

    @app.on_error("/shop")
    async def shop_hook(conn: EventConnection, event: str, error: BaseException) -> None:
        hooks.calls.append(("shop-app", conn.id, event, type(error).__name__, str(error)))

    if with_default_hook:

        @app.on_error_default
        async def default_hook(conn: EventConnection, event: str, error: BaseException) -> None:
            hooks.calls.append(("default", conn.id, event, type(error).__name__, str(error)))

    app.add_namespace(Billing(hooks))
    app.add_namespace(Shop(hooks))
    app.add_namespace(Plain())
    return app


def records(caplog: pytest.LogCaptureFixture, level: int) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.levelno == level and r.name.startswith("trio_ws.app")]


def assert_secret_never_logged(caplog: pytest.LogCaptureFixture) -> None:
    for record in caplog.records:
        assert SECRET not in record.getMessage(), record.getMessage()
        assert SECRET not in repr(record.args)
    assert SECRET not in caplog.text


async def test_expected_exception_answers_type_and_message_logged_at_info(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="trio_ws")
    hooks = Hooks()
    with trio.fail_after(TIMEOUT):
        async with TestClient(rpc_app(hooks)) as client, client.connect("/ws") as conn:
            with pytest.raises(CallError) as caught:
                await conn.emit("login", {"user": "ann", "password": SECRET}, ack=True)
            assert (caught.value.error_type, caught.value.message) == ("PermissionError", "wrong password")
            with pytest.raises(CallError) as caught:
                await conn.emit("login", "not a dict", ack=True)
            assert (caught.value.error_type, caught.value.message) == ("ValueError", "bad input")
            assert conn.is_connected
    info = [r for r in records(caplog, logging.INFO) if "login" in r.getMessage()]
    assert len(info) == 2
    assert "<redacted>" in info[0].getMessage() and "ann" in info[0].getMessage()
    assert records(caplog, logging.ERROR) == []
    assert hooks.calls == []  # expected exceptions are not errors
    assert_secret_never_logged(caplog)


async def test_unexpected_exception_is_an_internal_error_logged_with_redaction(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="trio_ws")
    hooks = Hooks()
    with trio.fail_after(TIMEOUT):
        async with TestClient(rpc_app(hooks)) as client, client.connect("/ws") as conn:
            conn_id = await conn.emit("whoami", ack=True)
            with pytest.raises(CallError) as caught:
                await conn.emit("login", {"user": "bob", "password": SECRET}, ack=True)
            assert caught.value.error_type == "InternalError"
            assert "login bug" not in caught.value.message and "RuntimeError" not in caught.value.message
            assert conn.is_connected
            assert await conn.emit("whoami", ack=True) == conn_id
    errors = records(caplog, logging.ERROR)
    assert len(errors) == 1
    message = errors[0].getMessage()
    assert "login" in message and "<redacted>" in message and "bob" in message
    assert errors[0].exc_info is not None and isinstance(errors[0].exc_info[1], RuntimeError)
    assert hooks.calls == [("default", conn_id, "login", "RuntimeError", "login bug")]
    assert_secret_never_logged(caplog)


async def test_namespace_sensitive_arguments_and_expected_exceptions(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="trio_ws")
    hooks = Hooks()
    with trio.fail_after(TIMEOUT):
        async with TestClient(rpc_app(hooks)) as client, client.connect("/ws") as conn:
            conn_id = await conn.emit("whoami", ack=True)
            assert (await conn.connect_namespace("/billing"))["type"] == "connected"
            with pytest.raises(CallError) as caught:
                await conn.emit("pay", {"amount": -1, "card": SECRET}, namespace="/billing", ack=True)
            assert (caught.value.error_type, caught.value.message) == ("LookupError", "no such account")
            with pytest.raises(CallError) as caught:
                await conn.emit("pay", {"amount": 5, "card": SECRET}, namespace="/billing", ack=True)
            assert caught.value.error_type == "InternalError"
    assert len([r for r in records(caplog, logging.INFO) if "pay" in r.getMessage()]) == 1
    assert len(records(caplog, logging.ERROR)) == 1
    # the namespace's own on_error, not the default hook
    assert hooks.calls == [("billing-namespace", conn_id, "pay", "ZeroDivisionError", "billing bug")]
    assert_secret_never_logged(caplog)


async def test_sensitive_non_dict_argument_is_redacted_entirely(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="trio_ws")
    app = App()

    @app.on("token", sensitive_arguments=["token"])
    async def token(conn: EventConnection, data: Any) -> None:
        raise RuntimeError("token bug")

    with trio.fail_after(TIMEOUT):
        async with TestClient(app) as client, client.connect("/ws") as conn:
            with pytest.raises(CallError):
                await conn.emit("token", [SECRET], ack=True)
    assert len(records(caplog, logging.ERROR)) == 1
    assert_secret_never_logged(caplog)


async def test_debug_mode_sends_the_real_error() -> None:
    hooks = Hooks()
    with trio.fail_after(TIMEOUT):
        async with TestClient(rpc_app(hooks, debug=True)) as client, client.connect("/ws") as conn:
            with pytest.raises(CallError) as caught:
                await conn.emit("login", {"user": "bob", "password": "x"}, ack=True)
            assert (caught.value.error_type, caught.value.message) == ("RuntimeError", "login bug")
    assert len(hooks.calls) == 1


async def test_event_error_answers_with_its_type_and_message(caplog: pytest.LogCaptureFixture) -> None:
    hooks = Hooks()
    with trio.fail_after(TIMEOUT):
        async with TestClient(rpc_app(hooks)) as client, client.connect("/ws") as conn:
            with pytest.raises(CallError) as caught:
                await conn.emit("find", 42, ack=True)
            assert (caught.value.error_type, caught.value.message) == ("NotFound", "no item 42")
            # without an id the error comes back as a bare "error" envelope
            await conn.emit("find", 43)
            assert await conn.get_received() == [
                {"type": "error", "error": {"type": "NotFound", "message": "no item 43"}}
            ]
    assert hooks.calls == []
    assert records(caplog, logging.ERROR) == []


async def test_error_hooks_per_namespace_and_default() -> None:
    hooks = Hooks()
    with trio.fail_after(TIMEOUT):
        async with TestClient(rpc_app(hooks)) as client, client.connect("/ws") as conn:
            conn_id = await conn.emit("whoami", ack=True)
            for namespace in ("/chat", "/shop", "/plain"):
                assert (await conn.connect_namespace(namespace))["type"] == "connected"
            for name, namespace in (("crash", "/chat"), ("buy", "/shop"), ("oops", "/plain")):
                with pytest.raises(CallError) as caught:
                    await conn.emit(name, None, namespace=namespace, ack=True)
                assert caught.value.error_type == "InternalError"
    assert hooks.calls == [
        ("chat", conn_id, "crash", "RuntimeError", "chat bug"),
        ("shop-app", conn_id, "buy", "KeyError", "'shop bug'"),  # the app's hook wins over the class's
        ("default", conn_id, "oops", "OSError", "plain bug"),
    ]


async def test_hooks_receive_the_event_connection() -> None:
    app = App()
    seen: list[Any] = []

    @app.on("connect")
    async def connect(conn: EventConnection, data: Any) -> None:
        seen.append(conn)

    @app.on("boom")
    async def boom(conn: EventConnection, data: Any) -> None:
        raise RuntimeError("boom")

    @app.on_error_default
    async def hook(conn: EventConnection, event: str, error: BaseException) -> None:
        seen.append((conn, event, error))

    with trio.fail_after(TIMEOUT):
        async with TestClient(app) as client, client.connect("/ws") as conn:
            with pytest.raises(CallError):
                await conn.emit("boom", ack=True)
    first, (hook_conn, event, error) = seen
    assert hook_conn is first and event == "boom"
    assert isinstance(error, RuntimeError) and str(error) == "boom"


async def test_no_hook_still_answers_and_a_failing_hook_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    with trio.fail_after(TIMEOUT):
        async with TestClient(rpc_app(Hooks(), with_default_hook=False)) as client, client.connect("/ws") as conn:
            with pytest.raises(CallError) as caught:
                await conn.emit("login", {"user": "bob"}, ack=True)
            assert caught.value.error_type == "InternalError"

    app = App()

    @app.on("boom")
    async def boom(conn: EventConnection, data: Any) -> None:
        raise RuntimeError("boom")

    @app.on_error_default
    async def broken_hook(conn: EventConnection, event: str, error: BaseException) -> None:
        raise ValueError("the hook itself fails")

    with trio.fail_after(TIMEOUT):
        async with TestClient(app) as client, client.connect("/ws") as conn:
            with pytest.raises(CallError) as caught:
                await conn.emit("boom", ack=True)
            assert caught.value.error_type == "InternalError"
            assert conn.is_connected
    assert any(
        r.exc_info is not None and isinstance(r.exc_info[1], ValueError) and r.levelno == logging.ERROR
        for r in caplog.records
    )


async def test_unencodable_answer_is_an_internal_error(caplog: pytest.LogCaptureFixture) -> None:
    with trio.fail_after(TIMEOUT):
        async with TestClient(rpc_app(Hooks())) as client, client.connect("/ws") as conn:
            with pytest.raises(CallError) as caught:
                await conn.emit("unencodable", ack=True)
            assert caught.value.error_type == "InternalError"
            assert await conn.emit("whoami", ack=True)
    assert any("unencodable" in r.getMessage() for r in records(caplog, logging.ERROR))
