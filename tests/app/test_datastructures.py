"""Section 2: what a handler sees — URL, path and query parameters, headers,
cookies, client, state, subprotocol (unit tests and through the in-memory client)."""

from __future__ import annotations

from typing import Any

import pytest
import trio
from apphelpers import TIMEOUT

from trio_ws.app import URL, App, Client, Headers, QueryParams, State, WebSocket
from trio_ws.app.datastructures import parse_cookies
from trio_ws.testing import TestClient

# -- unit tests --------------------------------------------------------------------


def test_query_params_is_an_immutable_multidict() -> None:
    params = QueryParams.from_string("a=1&b=2&a=3&empty=&sp=x%20y")
    assert params["a"] == "3"  # the last value
    assert params.get("a") == "3"
    assert params.getlist("a") == ["1", "3"]
    assert params.getlist("missing") == []
    assert params["empty"] == ""
    assert params["sp"] == "x y"
    assert list(params) == ["a", "b", "empty", "sp"]
    assert len(params) == 4
    assert params.multi_items() == [("a", "1"), ("b", "2"), ("a", "3"), ("empty", ""), ("sp", "x y")]
    assert "b" in params and "c" not in params
    with pytest.raises(KeyError):
        params["missing"]
    with pytest.raises(TypeError):
        params["a"] = "x"  # type: ignore[index]
    with pytest.raises(TypeError):
        del params["a"]  # type: ignore[attr-defined]
    assert not hasattr(params, "setdefault") and not hasattr(params, "update")
    assert params == QueryParams([("b", "2"), ("a", "1"), ("a", "3"), ("empty", ""), ("sp", "x y")])
    assert params != QueryParams([("a", "1")])
    assert hash(params) == hash(QueryParams.from_string("b=2&a=1&a=3&empty=&sp=x+y"))


def test_headers_are_case_insensitive_with_lower_case_keys() -> None:
    headers = Headers([("Content-Type", "text/plain"), ("X-Multi", "1"), ("x-multi", "2")])
    assert headers["content-type"] == "text/plain"
    assert headers["CONTENT-TYPE"] == "text/plain"
    assert headers.get("X-MULTI") == "2"
    assert headers.getlist("X-Multi") == ["1", "2"]
    assert list(headers) == ["content-type", "x-multi"]
    assert "Content-Type" in headers and "content-type" in headers
    assert 42 not in headers
    assert headers.multi_items() == [("content-type", "text/plain"), ("x-multi", "1"), ("x-multi", "2")]
    raw = Headers.from_raw([(b"Host", b"example.com"), (b"X-Latin", "caf\xe9".encode("latin-1"))])
    assert raw["host"] == "example.com"
    assert raw["x-latin"] == "caf\xe9"


def test_url_str() -> None:
    assert str(URL("ws", "example.com", 8000, "/chat", "a=1")) == "ws://example.com:8000/chat?a=1"
    assert str(URL("wss", "example.com", None, "/", "")) == "wss://example.com/"
    assert Client("127.0.0.1", 5000).port == 5000
    host, port = Client("::1", 80)
    assert (host, port) == ("::1", 80)
    assert Client("::1", 80) == ("::1", 80)


def test_state_is_an_attribute_store() -> None:
    state = State()
    state.user = "ann"
    assert state.user == "ann"
    with pytest.raises(AttributeError, match="missing"):
        state.missing  # noqa: B018
    del state.user
    with pytest.raises(AttributeError, match="user"):
        state.user  # noqa: B018
    with pytest.raises(AttributeError):
        del state.user
    assert State({"x": 1}).x == 1


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("a=1; b=2", {"a": "1", "b": "2"}),
        ('a=1; b; c="x', {"a": "1"}),
        ("a=1; bad name=2; d=4", {"a": "1", "d": "4"}),
        ("x=1; $$$=2; y=3", {"x": "1", "y": "3"}),
        ('a=1; b="unterminated; c=3', {"a": "1", "c": "3"}),
        ('k=v=w; j="quoted"', {"k": "v=w", "j": "quoted"}),
        ("", {}),
    ],
)
def test_invalid_cookies_are_skipped(header: str, expected: dict[str, str]) -> None:
    assert parse_cookies(Headers([("cookie", header)])) == expected


def test_cookies_from_several_cookie_headers() -> None:
    assert parse_cookies(Headers([("Cookie", "a=1"), ("cookie", "b=2")])) == {"a": "1", "b": "2"}


# -- what a handler sees (in memory) ---------------------------------------------------


def inspecting_app(seen: list[WebSocket]) -> App:
    app = App()

    @app.websocket("/room/{name}", subprotocols=["p1", "p2"])
    async def room(ws: WebSocket) -> None:
        seen.append(ws)
        ws.state.visits = 1
        await ws.accept()
        await ws.send_json(describe(ws))
        async for message in ws:
            if message == "state":
                ws.state.visits += 1
                await ws.send_json({"visits": ws.state.visits})

    return app


def describe(ws: WebSocket) -> dict[str, Any]:
    return {
        "url": [ws.url.scheme, ws.url.host, ws.url.port, ws.url.path, ws.url.query],
        "url_str": str(ws.url),
        "path_params": ws.path_params,
        "query_a": ws.query_params.getlist("a"),
        "query_last_a": ws.query_params["a"],
        "query_keys": list(ws.query_params),
        "header_keys": list(ws.headers),
        "custom": ws.headers.get("X-Custom"),
        "custom_all": ws.headers.getlist("X-CUSTOM"),
        "cookies": ws.cookies,
        "client": [ws.client.host, ws.client.port],
        "subprotocol": ws.subprotocol,
    }


async def test_handler_sees_request_data_in_memory() -> None:
    seen: list[WebSocket] = []
    headers = [("X-Custom", "one"), ("x-custom", "two"), ("Cookie", 'sid=abc; bad; q="x; lang=en')]
    with trio.fail_after(TIMEOUT):
        async with TestClient(inspecting_app(seen)) as client:
            async with client.connect("/room/blue?a=1&b=&a=2", headers=headers, subprotocols=["p2", "p1"]) as conn:
                info = await conn.receive_json()
                assert info["url"] == ["ws", "testserver", None, "/room/blue", "a=1&b=&a=2"]
                assert info["url_str"] == "ws://testserver/room/blue?a=1&b=&a=2"
                assert info["path_params"] == {"name": "blue"}
                assert info["query_a"] == ["1", "2"]
                assert info["query_last_a"] == "2"
                assert info["query_keys"] == ["a", "b"]
                assert all(key == key.lower() for key in info["header_keys"])
                assert "x-custom" in info["header_keys"] and "cookie" in info["header_keys"]
                assert info["custom"] == "two"
                assert info["custom_all"] == ["one", "two"]
                assert info["cookies"] == {"sid": "abc", "lang": "en"}
                assert info["subprotocol"] == "p1"  # the route's preference among those offered
                assert isinstance(seen[0].query_params, QueryParams)
                assert isinstance(seen[0].headers, Headers)
                await conn.send("state")
                assert await conn.receive_json() == {"visits": 2}
                await conn.send("state")
                assert await conn.receive_json() == {"visits": 3}
            # a new connection has its own state
            async with client.connect("/room/red", query={"a": "9"}, subprotocols=["p1"]) as conn:
                info = await conn.receive_json()
                assert info["query_a"] == ["9"]
                assert info["cookies"] == {}
                await conn.send("state")
                assert await conn.receive_json() == {"visits": 2}
    assert len(seen) == 2 and seen[0].state is not seen[1].state
    assert seen[0].session is not seen[1].session
