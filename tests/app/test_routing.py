"""Section 1: route patterns, converters, 404 / 403 / 400 during the handshake,
per-route subprotocols and origins, mounting the event endpoint (in memory)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
import trio
from apphelpers import TIMEOUT

import trio_ws
from trio_ws import ConnectionRejected
from trio_ws.app import App, RoutePattern, Router, WebSocket, WebSocketHandler
from trio_ws.testing import TestClient

# -- RoutePattern / Router (no I/O) -------------------------------------------------


def test_str_parameter_matches_one_segment_exactly() -> None:
    pattern = RoutePattern("/chat/{room}")
    assert pattern.match("/chat/lobby") == {"room": "lobby"}
    assert pattern.match("/chat/lobby/") is None
    assert pattern.match("/chat/") is None
    assert pattern.match("/chat/a/b") is None
    assert pattern.match("/chatx/lobby") is None


def test_int_converter() -> None:
    pattern = RoutePattern("/item/{id:int}")
    found = pattern.match("/item/42")
    assert found == {"id": 42}
    assert type(found["id"]) is int
    assert pattern.match("/item/-3") == {"id": -3}
    assert pattern.match("/item/abc") is None
    assert pattern.match("/item/4.5") is None
    assert pattern.match("/item/") is None


def test_float_converter() -> None:
    pattern = RoutePattern("/price/{value:float}")
    assert pattern.match("/price/1.5") == {"value": 1.5}
    found = pattern.match("/price/2")
    assert found == {"value": 2.0}
    assert type(found["value"]) is float
    assert pattern.match("/price/-0.25") == {"value": -0.25}
    assert pattern.match("/price/abc") is None
    assert pattern.match("/price/1.") is None


def test_path_converter_spans_segments() -> None:
    pattern = RoutePattern("/files/{rest:path}")
    assert pattern.match("/files/a/b/c.txt") == {"rest": "a/b/c.txt"}
    assert pattern.match("/files/x") == {"rest": "x"}
    assert pattern.match("/other/x") is None


def test_uuid_converter() -> None:
    pattern = RoutePattern("/obj/{key:uuid}")
    value = uuid.uuid4()
    found = pattern.match(f"/obj/{value}")
    assert found == {"key": value}
    assert isinstance(found["key"], uuid.UUID)
    assert pattern.match(f"/obj/{str(value).upper()}") == {"key": value}
    assert pattern.match("/obj/not-a-uuid") is None
    assert pattern.match(f"/obj/{value.hex}") is None  # the dashed form only


def test_several_parameters() -> None:
    pattern = RoutePattern("/u/{uid:int}/post/{slug}")
    assert pattern.match("/u/7/post/hello") == {"uid": 7, "slug": "hello"}
    assert pattern.match("/u/x/post/hello") is None


@pytest.mark.parametrize(
    "bad",
    ["chat/{room}", "/x/{id:nope}", "/x/{a}/{a}"],
    ids=["no-leading-slash", "unknown-converter", "repeated-parameter"],
)
def test_invalid_patterns_raise_value_error(bad: str) -> None:
    with pytest.raises(ValueError):
        RoutePattern(bad)


def test_router_first_match_wins_and_refuses_duplicates() -> None:
    router: Router[str] = Router()
    router.add("/item/{id:int}", "int")
    router.add("/item/{name}", "str")
    first = router.match("/item/5")
    second = router.match("/item/five")
    assert first is not None and first.target == "int" and first.params == {"id": 5}
    assert second is not None and second.target == "str" and second.params == {"name": "five"}
    assert router.match("/nothing") is None
    assert len(router) == 2
    with pytest.raises(ValueError):
        router.add("/item/{id:int}", "again")


def test_add_route_refuses_a_class_that_is_not_an_endpoint() -> None:
    app = App()

    class NotAnEndpoint:
        pass

    with pytest.raises(TypeError):
        app.add_route("/x", NotAnEndpoint)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        app.add_route("x", WebSocketHandler)


def test_app_is_exported_at_the_top_level() -> None:
    """The spec writes ``app = trio_ws.App(...)``."""
    assert getattr(trio_ws, "App", None) is App


# -- through the handshake (in memory) ---------------------------------------------


def params_app() -> App:
    app = App()

    async def show(ws: WebSocket) -> None:
        await ws.accept()
        shown = {name: [type(value).__name__, str(value)] for name, value in ws.path_params.items()}
        await ws.send_json(shown)
        await ws.close()

    for pattern in (
        "/chat/{room}",
        "/item/{id:int}",
        "/price/{value:float}",
        "/files/{rest:path}",
        "/obj/{key:uuid}",
        "/u/{uid:int}/post/{slug}",
    ):
        app.add_route(pattern, show)
    return app


async def test_path_params_reach_the_handler_converted() -> None:
    key = uuid.uuid4()
    expected: dict[str, Any] = {
        "/chat/lobby": {"room": ["str", "lobby"]},
        "/item/42": {"id": ["int", "42"]},
        "/price/2.5": {"value": ["float", "2.5"]},
        "/files/a/b/c.txt": {"rest": ["str", "a/b/c.txt"]},
        f"/obj/{key}": {"key": ["UUID", str(key)]},
        "/u/7/post/hi": {"uid": ["int", "7"], "slug": ["str", "hi"]},
    }
    with trio.fail_after(TIMEOUT):
        async with TestClient(params_app()) as client:
            for path, params in expected.items():
                async with client.connect(path) as conn:
                    assert await conn.receive_json() == params, path


@pytest.mark.parametrize("path", ["/nowhere", "/item/abc", "/chat/lobby/", "/obj/123", "/", "/ws"])
async def test_no_matching_route_is_rejected_with_404(path: str) -> None:
    with trio.fail_after(TIMEOUT):
        async with TestClient(params_app()) as client:
            with pytest.raises(ConnectionRejected) as caught:
                async with client.connect(path):
                    pass  # pragma: no cover - must not be reached
            assert caught.value.status_code == 404
            # the app carries on
            async with client.connect("/item/1") as conn:
                assert await conn.receive_json() == {"id": ["int", "1"]}


def subprotocol_app() -> App:
    app = App()

    @app.websocket("/chat", subprotocols=["chat.v2", "chat.v1"])
    async def chat(ws: WebSocket) -> None:
        await ws.accept()
        await ws.send_json({"subprotocol": ws.subprotocol, "offered": list(ws.requested_subprotocols)})
        await ws.receive()

    @app.websocket("/plain")
    async def plain(ws: WebSocket) -> None:
        await ws.accept()
        await ws.send_json({"subprotocol": ws.subprotocol})
        await ws.receive()

    return app


async def test_route_subprotocol_is_chosen_on_accept() -> None:
    with trio.fail_after(TIMEOUT):
        async with TestClient(subprotocol_app()) as client:
            async with client.connect("/chat", subprotocols=["other", "chat.v1"]) as conn:
                assert await conn.receive_json() == {"subprotocol": "chat.v1", "offered": ["other", "chat.v1"]}
                assert conn.ws.subprotocol == "chat.v1"
            async with client.connect("/chat", subprotocols=["chat.v2"]) as conn:
                assert (await conn.receive_json())["subprotocol"] == "chat.v2"
                assert conn.ws.subprotocol == "chat.v2"


@pytest.mark.parametrize("offered", [None, ["other"]], ids=["none-offered", "only-unknown"])
async def test_route_subprotocol_required_else_400(offered: list[str] | None) -> None:
    with trio.fail_after(TIMEOUT):
        async with TestClient(subprotocol_app()) as client:
            with pytest.raises(ConnectionRejected) as caught:
                async with client.connect("/chat", subprotocols=offered):
                    pass  # pragma: no cover
            assert caught.value.status_code == 400
            assert caught.value.body is not None and b"chat.v2" in caught.value.body


async def test_route_without_subprotocols_accepts_without_one() -> None:
    with trio.fail_after(TIMEOUT):
        async with TestClient(subprotocol_app()) as client, client.connect("/plain", subprotocols=["chat.v1"]) as conn:
            assert await conn.receive_json() == {"subprotocol": None}
            assert conn.ws.subprotocol is None


def origin_app() -> App:
    app = App()

    async def hello(ws: WebSocket) -> None:
        await ws.accept()
        await ws.send_text(ws.headers.get("origin", "<none>"))
        await ws.receive()

    app.add_route("/strict", hello, origins=["https://good.example"])
    app.add_route("/lenient", hello, origins=["https://good.example", None])
    app.add_route("/any", hello)
    return app


async def test_route_origins() -> None:
    good = {"Origin": "https://good.example"}
    evil = {"Origin": "https://evil.example"}
    with trio.fail_after(TIMEOUT):
        async with TestClient(origin_app()) as client:
            async with client.connect("/strict", headers=good) as conn:
                assert await conn.receive_text() == "https://good.example"
            for path, headers in (("/strict", evil), ("/strict", None), ("/lenient", evil)):
                with pytest.raises(ConnectionRejected) as caught:
                    async with client.connect(path, headers=headers):
                        pass  # pragma: no cover
                assert caught.value.status_code == 403, (path, headers)
            async with client.connect("/lenient") as conn:
                assert await conn.receive_text() == "<none>"
            async with client.connect("/any", headers=evil) as conn:
                assert await conn.receive_text() == "https://evil.example"


async def test_event_route_is_mounted_only_when_events_are_registered() -> None:
    app = App()
    with trio.fail_after(TIMEOUT):
        async with TestClient(app) as client:
            with pytest.raises(ConnectionRejected) as caught:
                async with client.connect("/ws"):
                    pass  # pragma: no cover
            assert caught.value.status_code == 404

        @app.on("ping")
        async def ping(conn: Any, data: Any) -> str:
            return "pong"

        async with TestClient(app) as client, client.connect("/ws") as conn:
            assert await conn.emit("ping", ack=True) == "pong"


async def test_custom_event_route_with_subprotocols_and_origins() -> None:
    app = App(events_path=None)
    app.add_event_route("/events", subprotocols=["ev.1"], origins=["https://good.example"])

    @app.on("ping")
    async def ping(conn: Any, data: Any) -> str:
        return f"pong {conn.websocket.subprotocol}"

    with trio.fail_after(TIMEOUT):
        async with TestClient(app) as client:
            async with client.connect(
                "/events", subprotocols=["ev.1"], headers={"Origin": "https://good.example"}
            ) as conn:
                assert await conn.emit("ping", ack=True) == "pong ev.1"
            for path, subprotocols, origin, status in (
                ("/ws", ["ev.1"], "https://good.example", 404),
                ("/events", None, "https://good.example", 400),
                ("/events", ["ev.1"], "https://evil.example", 403),
            ):
                with pytest.raises(ConnectionRejected) as caught:
                    async with client.connect(path, subprotocols=subprotocols, headers={"Origin": origin}):
                        pass  # pragma: no cover
                assert caught.value.status_code == status


async def test_events_path_option() -> None:
    app = App(events_path="/custom")

    @app.on("ping")
    async def ping(conn: Any, data: Any) -> str:
        return "pong"

    with trio.fail_after(TIMEOUT):
        async with TestClient(app) as client:
            async with client.connect("/custom") as conn:
                assert await conn.emit("ping", ack=True) == "pong"
            with pytest.raises(ConnectionRejected):
                async with client.connect("/ws"):
                    pass  # pragma: no cover
