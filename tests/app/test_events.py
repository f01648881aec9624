"""Section 4: events and acknowledgements, namespaces (decorators and Namespace
classes), connect / disconnect events, emit to a room / an id / everyone (in memory)."""

from __future__ import annotations

from typing import Any

import pytest
import trio
from apphelpers import TIMEOUT, wait_until

from trio_ws import CallError, ConnectionClosed
from trio_ws.app import App, EventConnection, EventError, Namespace
from trio_ws.testing import TestClient, TestConnection


class Log:
    def __init__(self) -> None:
        self.entries: list[tuple[Any, ...]] = []
        self.conns: dict[str, EventConnection] = {}

    def of(self, kind: str) -> list[tuple[Any, ...]]:
        return [entry for entry in self.entries if entry[0] == kind]


class Chat(Namespace):
    namespace = "/chat"

    def __init__(self, log: Log) -> None:
        self.log = log

    async def on_connect(self, conn: EventConnection, data: Any) -> bool | None:
        token = (data or {}).get("token")
        if token == "bad":
            return False
        if token == "raise":
            raise EventError("Unauthorized", "token rejected")
        self.log.entries.append(("chat-connect", conn.id, data))
        return None

    async def on_disconnect(self, conn: EventConnection) -> None:
        self.log.entries.append(("chat-disconnect", conn.id))

    async def on_message(self, conn: EventConnection, data: Any) -> str:
        return f"chat got {data}"

    async def on_join(self, conn: EventConnection, room: str) -> list[str]:
        await conn.join_room(room, namespace="/chat")
        return sorted(conn.rooms("/chat"))

    def helper_not_an_event(self) -> None:  # pragma: no cover - never dispatched
        raise AssertionError


def events_app(log: Log, **options: Any) -> App:
    app = App(**options)

    @app.on("connect")
    async def connect(conn: EventConnection, data: Any) -> bool | None:
        log.conns[conn.id] = conn
        log.entries.append(("connect", conn.id, data, conn.websocket.query_params.get("name")))
        return conn.websocket.query_params.get("refuse") is None

    @app.on("disconnect")
    async def disconnect(conn: EventConnection) -> None:
        log.entries.append(("disconnect", conn.id))

    @app.on("echo")
    async def echo(conn: EventConnection, data: Any) -> Any:
        return data

    @app.on("whoami")
    async def whoami(conn: EventConnection, data: Any) -> str:
        return conn.id

    @app.on("nothing")
    async def nothing(conn: EventConnection, data: Any) -> None:
        log.entries.append(("nothing", data))

    @app.on("join")
    async def join(conn: EventConnection, room: str) -> list[str]:
        await conn.join_room(room)
        return sorted(conn.rooms())

    @app.on("emit")
    async def emit(conn: EventConnection, spec: dict) -> int:
        report = await app.emit(
            spec["event"],
            spec.get("data"),
            to=spec.get("to"),
            exclude=spec.get("exclude"),
            namespace=spec.get("namespace", "/"),
        )
        return int(report) if isinstance(report, bool) else report.recipients

    @app.on("self", namespace="/chat")
    async def to_self(conn: EventConnection, data: Any) -> None:
        await conn.emit("to-self", data, namespace="/chat")

    app.add_namespace(Chat(log))
    return app


def event(name: str, data: Any, namespace: str = "/") -> dict[str, Any]:
    return {"type": "event", "event": name, "namespace": namespace, "data": data}


async def test_ack_returns_the_handler_value() -> None:
    log = Log()
    with trio.fail_after(TIMEOUT):
        async with TestClient(events_app(log)) as client, client.connect("/ws") as conn:
            for value in ({"a": [1, 2]}, [1, "x"], "text", 3, 2.5, True, None):
                assert await conn.emit("echo", value, ack=True) == value
            assert await conn.emit("nothing", 1, ack=True) is None
            # without an id there is no answer, but the handler runs
            await conn.emit("nothing", 2)
            await conn.emit("echo", "unanswered")
            assert await conn.get_received() == []
    assert log.of("nothing") == [("nothing", 1), ("nothing", 2)]


async def test_acks_travel_with_their_ids() -> None:
    with trio.fail_after(TIMEOUT):
        async with TestClient(events_app(Log())) as client, client.connect("/ws") as conn:
            await conn.send_json({"type": "event", "event": "echo", "data": "x", "id": 77})
            await conn.send_json({"type": "event", "event": "echo", "data": "y", "id": 5})
            await trio.testing.wait_all_tasks_blocked()
            assert conn._acks.pop(77) == {"type": "ack", "id": 77, "data": "x"}
            assert conn._acks.pop(5) == {"type": "ack", "id": 5, "data": "y"}


async def test_connect_and_disconnect_events() -> None:
    log = Log()
    with trio.fail_after(TIMEOUT):
        async with TestClient(events_app(log)) as client:
            async with client.connect("/ws", query={"name": "ann"}) as conn:
                conn_id = await conn.emit("whoami", ack=True)
                assert log.of("connect") == [("connect", conn_id, None, "ann")]
                assert log.of("disconnect") == []
            await wait_until(lambda: bool(log.of("disconnect")))
    assert log.of("disconnect") == [("disconnect", conn_id)]


async def test_connect_handler_may_refuse_the_connection() -> None:
    log = Log()
    with trio.fail_after(TIMEOUT):
        async with TestClient(events_app(log)) as client, client.connect("/ws", query={"refuse": "1"}) as conn:
            with pytest.raises(ConnectionClosed) as caught:
                await conn.receive()
            assert not conn.is_connected
            assert caught.value.reason.code == 1008
    assert len(log.of("connect")) == 1
    assert log.of("disconnect") == []  # never connected to "/", so no disconnect event


async def test_namespace_class_dispatch_and_connect() -> None:
    log = Log()
    with trio.fail_after(TIMEOUT):
        async with TestClient(events_app(log)) as client, client.connect("/ws") as conn:
            # not connected to /chat yet
            with pytest.raises(CallError) as caught:
                await conn.emit("message", "hi", namespace="/chat", ack=True)
            assert caught.value.error_type == "NotConnected"
            answer = await conn.connect_namespace("/chat", {"token": "ok"})
            assert answer == {"type": "connected", "namespace": "/chat"}
            conn_id = await conn.emit("whoami", ack=True)
            assert log.of("chat-connect") == [("chat-connect", conn_id, {"token": "ok"})]
            assert await conn.emit("message", "hi", namespace="/chat", ack=True) == "chat got hi"
            # on_<event> methods are namespaced: "message" is unknown in "/", "echo" in "/chat"
            with pytest.raises(CallError) as caught:
                await conn.emit("message", "hi", ack=True)
            assert caught.value.error_type == "UnknownEvent"
            with pytest.raises(CallError) as caught:
                await conn.emit("echo", "hi", namespace="/chat", ack=True)
            assert caught.value.error_type == "UnknownEvent"
            for name in ("connect", "disconnect", "error", "helper_not_an_event"):
                with pytest.raises(CallError) as caught:
                    await conn.emit(name, None, namespace="/chat", ack=True)
                assert caught.value.error_type == "UnknownEvent", name
            # a decorator handler in the same namespace works alongside the class
            await conn.emit("self", {"n": 1}, namespace="/chat")
            assert await conn.get_received() == [event("to-self", {"n": 1}, "/chat")]
            # connecting twice just confirms
            assert (await conn.connect_namespace("/chat"))["type"] == "connected"
            assert len(log.of("chat-connect")) == 1
            # leaving the namespace calls on_disconnect; its events are refused again
            await conn.send_json({"type": "disconnect", "namespace": "/chat"})
            await trio.testing.wait_all_tasks_blocked()
            assert log.of("chat-disconnect") == [("chat-disconnect", conn_id)]
            with pytest.raises(CallError) as caught:
                await conn.emit("message", "hi", namespace="/chat", ack=True)
            assert caught.value.error_type == "NotConnected"
            assert await conn.emit("echo", "still", ack=True) == "still"


async def test_namespace_disconnect_runs_when_the_connection_closes() -> None:
    log = Log()
    with trio.fail_after(TIMEOUT):
        async with TestClient(events_app(log)) as client:
            async with client.connect("/ws") as conn:
                await conn.connect_namespace("/chat")
                conn_id = await conn.emit("whoami", ack=True)
            await wait_until(lambda: len(log.of("disconnect")) + len(log.of("chat-disconnect")) == 2)
    assert log.of("chat-disconnect") == [("chat-disconnect", conn_id)]
    assert log.of("disconnect") == [("disconnect", conn_id)]


@pytest.mark.parametrize(
    ("data", "error"),
    [
        ({"token": "bad"}, {"type": "Refused", "message": "connection refused"}),
        ({"token": "raise"}, {"type": "Unauthorized", "message": "token rejected"}),
    ],
)
async def test_namespace_connect_refusal(data: Any, error: dict[str, str]) -> None:
    log = Log()
    with trio.fail_after(TIMEOUT):
        async with TestClient(events_app(log)) as client, client.connect("/ws") as conn:
            answer = await conn.connect_namespace("/chat", data)
            assert answer == {"type": "connect_error", "namespace": "/chat", "error": error}
            with pytest.raises(CallError) as caught:
                await conn.emit("message", "hi", namespace="/chat", ack=True)
            assert caught.value.error_type == "NotConnected"
            assert conn.is_connected
            assert await conn.emit("echo", 1, ack=True) == 1
    assert log.of("chat-connect") == []


async def test_unknown_namespace_is_a_connect_error() -> None:
    with trio.fail_after(TIMEOUT):
        async with TestClient(events_app(Log())) as client, client.connect("/ws") as conn:
            answer = await conn.connect_namespace("/nope")
            assert answer["type"] == "connect_error"
            assert answer["error"]["type"] == "UnknownNamespace"
            assert await conn.emit("echo", 1, ack=True) == 1


async def test_decorator_namespace_without_a_class() -> None:
    app = App()
    joined: list[Any] = []

    @app.on("connect", namespace="/game")
    async def game_connect(conn: EventConnection, data: Any) -> bool:
        joined.append(data)
        return data == "let me in"

    @app.on("move", namespace="/game")
    async def move(conn: EventConnection, data: Any) -> str:
        return f"moved {data}"

    with trio.fail_after(TIMEOUT):
        async with TestClient(app) as client, client.connect("/ws") as conn:
            assert (await conn.connect_namespace("/game", "nope"))["type"] == "connect_error"
            assert (await conn.connect_namespace("/game", "let me in"))["type"] == "connected"
            assert await conn.emit("move", "e4", namespace="/game", ack=True) == "moved e4"
    assert joined == ["nope", "let me in"]


def test_add_namespace_twice_is_refused() -> None:
    app = App()

    class Room(Namespace):
        namespace = "/room"

    instance = app.add_namespace(Room)
    assert isinstance(instance, Room)
    with pytest.raises(ValueError):
        app.add_namespace(Room())


async def ids_of(conns: list[TestConnection]) -> list[str]:
    return [await conn.emit("whoami", ack=True) for conn in conns]


async def test_emit_to_room_id_all_and_exclude() -> None:
    log = Log()
    with trio.fail_after(TIMEOUT):
        async with (
            TestClient(events_app(log)) as client,
            client.connect("/ws") as a,
            client.connect("/ws") as b,
            client.connect("/ws") as c,
        ):
            everyone = [a, b, c]
            id_a, id_b, id_c = await ids_of(everyone)
            assert len({id_a, id_b, id_c}) == 3
            assert await a.emit("join", "red", ack=True) == ["red"]
            assert await b.emit("join", "red", ack=True) == ["red"]

            async def received() -> list[list[Any]]:
                return [await conn.get_received() for conn in everyone]

            news = event("news", {"n": 1})
            assert await c.emit("emit", {"event": "news", "data": {"n": 1}, "to": "red"}, ack=True) == 2
            assert await received() == [[news], [news], []]

            assert await a.emit("emit", {"event": "news", "data": {"n": 1}, "to": id_c}, ack=True) == 1
            assert await received() == [[], [], [news]]

            assert await a.emit("emit", {"event": "news", "data": {"n": 1}}, ack=True) == 3
            assert await received() == [[news], [news], [news]]

            spec = {"event": "news", "data": {"n": 1}, "to": "red", "exclude": id_a}
            assert await a.emit("emit", spec, ack=True) == 1
            assert await received() == [[], [news], []]

            spec = {"event": "news", "data": {"n": 1}, "exclude": [id_a, id_b]}
            assert await a.emit("emit", spec, ack=True) == 1
            assert await received() == [[], [], [news]]

            # a room nobody is in
            assert await a.emit("emit", {"event": "news", "to": "empty"}, ack=True) == 0
            assert await received() == [[], [], []]


async def test_emit_is_namespaced() -> None:
    log = Log()
    with trio.fail_after(TIMEOUT):
        async with TestClient(events_app(log)) as client, client.connect("/ws") as a, client.connect("/ws") as b:
            await ids_of([a, b])
            assert (await a.connect_namespace("/chat"))["type"] == "connected"
            # everyone in /chat: only a
            spec = {"event": "hi", "data": 1, "namespace": "/chat"}
            assert await b.emit("emit", spec, ack=True) == 1
            assert await a.get_received() == [event("hi", 1, "/chat")]
            assert await b.get_received() == []
            # room "red" of /chat is not room "red" of /
            assert await a.emit("join", "red", namespace="/chat", ack=True) == ["red"]
            assert await b.emit("join", "red", ack=True) == ["red"]
            spec = {"event": "hi", "data": 2, "namespace": "/chat", "to": "red"}
            assert await b.emit("emit", spec, ack=True) == 1
            assert await a.get_received() == [event("hi", 2, "/chat")]
            assert await b.get_received() == []
            assert await b.emit("emit", {"event": "hi", "data": 3, "to": "red"}, ack=True) == 1
            assert await a.get_received() == []
            assert await b.get_received() == [event("hi", 3)]


async def test_app_emit_from_outside_a_handler() -> None:
    log = Log()
    app = events_app(log)
    with trio.fail_after(TIMEOUT):
        async with TestClient(app) as client, client.connect("/ws") as a, client.connect("/ws") as b:
            id_a, _ = await ids_of([a, b])
            report = await app.emit("tick", [1, 2, 3])
            assert not isinstance(report, bool) and report.recipients == 2
            assert await app.emit("tick", "only a", to=id_a) is True
            assert await a.get_received() == [event("tick", [1, 2, 3]), event("tick", "only a")]
            assert await b.get_received() == [event("tick", [1, 2, 3])]
            with pytest.raises(TypeError):
                await app.emit("tick", object())


# -- catch-all handlers (Flask-SocketIO's on("*")) and custom dispatch (gevent-socketio's process_event)


async def test_catch_all_handler_gets_events_without_a_handler() -> None:
    app = App()
    caught: list[tuple[str, Any]] = []

    @app.on("known")
    async def known(conn: EventConnection, data: Any) -> str:
        return "known handler"

    @app.on("*")
    async def anything(conn: EventConnection, event: str, data: Any) -> str:
        caught.append((event, data))
        if event == "fail":
            raise EventError("Nope", "not this one")
        return f"caught {event}"

    @app.on("*", namespace="/other")
    async def other(conn: EventConnection, event: str, data: Any) -> str:
        return f"/other caught {event}"

    with trio.fail_after(TIMEOUT):
        async with TestClient(app) as client, client.connect("/ws") as conn:
            assert await conn.emit("known", ack=True) == "known handler"
            assert await conn.emit("whatever", {"x": 1}, ack=True) == "caught whatever"
            with pytest.raises(CallError) as caught_error:
                await conn.emit("fail", ack=True)
            assert caught_error.value.error_type == "Nope"
            # A namespace with only a catch-all handler exists, and uses its own.
            assert (await conn.connect_namespace("/other"))["type"] == "connected"
            assert await conn.emit("ping", namespace="/other", ack=True) == "/other caught ping"
    assert caught == [("whatever", {"x": 1}), ("fail", None)]


class Routed(Namespace):
    """Routes ``"user:create"`` to ``on_user_create``, as gevent-socketio's process_event allows."""

    namespace = "/routed"
    allowed_events = frozenset({"user:create", "plain", "missing"})

    async def process_event(self, conn: EventConnection, event: str, data: Any) -> Any:
        if ":" in event:
            method = getattr(self, "on_" + event.replace(":", "_"), None)
            if method is None:  # pragma: no cover - not exercised
                raise EventError("UnknownEvent", event)
            return await method(conn, data)
        return await super().process_event(conn, event, data)

    async def on_user_create(self, conn: EventConnection, data: Any) -> str:
        return f"created {data}"

    async def on_plain(self, conn: EventConnection, data: Any) -> str:
        return "plain"

    async def on_hidden(self, conn: EventConnection, data: Any) -> str:  # pragma: no cover - refused by the ACL
        return "hidden"


async def test_an_overridden_process_event_routes_every_allowed_event() -> None:
    app = App()
    app.add_namespace(Routed)
    with trio.fail_after(TIMEOUT):
        async with TestClient(app) as client, client.connect("/ws") as conn:
            await conn.connect_namespace("/routed")
            assert await conn.emit("user:create", "ann", namespace="/routed", ack=True) == "created ann"
            assert await conn.emit("plain", namespace="/routed", ack=True) == "plain"
            with pytest.raises(CallError) as unknown:
                await conn.emit("missing", namespace="/routed", ack=True)
            assert unknown.value.error_type == "UnknownEvent"
            with pytest.raises(CallError) as forbidden:
                await conn.emit("hidden", namespace="/routed", ack=True)
            assert forbidden.value.error_type == "Forbidden"
