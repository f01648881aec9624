"""The Engine.IO request rules and CORS headers (trio_ws.socketio.requests), without sockets."""

from __future__ import annotations

import json

import pytest

from trio_ws.socketio.requests import (
    ERROR_MESSAGES,
    EngineQuery,
    EngineRequestError,
    check_request,
    cors_headers,
    origin_allowed,
    parse_target,
    preflight_headers,
)


def test_parse_target_reads_transport_and_sid() -> None:
    assert parse_target("/socket.io/?EIO=4&transport=polling", "/socket.io/", websocket=False) == EngineQuery(
        "polling", None
    )
    assert parse_target("/socket.io?EIO=4&transport=polling&sid=abc&t=x", "/socket.io/", websocket=False) == (
        EngineQuery("polling", "abc")
    )
    assert parse_target("/socket.io/?EIO=4&transport=websocket&sid=abc", "/socket.io", websocket=True) == (
        EngineQuery("websocket", "abc")
    )
    assert parse_target("/elsewhere/?EIO=4&transport=polling", "/socket.io/", websocket=False) is None


@pytest.mark.parametrize(
    ("target", "websocket", "code"),
    [
        ("/socket.io/?transport=polling", False, 5),
        ("/socket.io/?EIO=abc&transport=polling", False, 5),
        ("/socket.io/?EIO=3&transport=websocket", True, 5),
        ("/socket.io/?EIO=4", False, 0),
        ("/socket.io/?EIO=4&transport=abc", False, 0),
        ("/socket.io/?EIO=4&transport=polling", True, 0),  # polling asked for in a WebSocket handshake
        ("/socket.io/?EIO=4&transport=websocket", False, 3),  # a WebSocket starts with an upgrade
        ("/socket.io/?EIO=4&transport=polling&sid=", False, 1),
        ("/socket.io/?EIO=4&transport=polling&sid=a&sid=b", False, 1),
    ],
)
def test_parse_target_errors(target: str, websocket: bool, code: int) -> None:
    with pytest.raises(EngineRequestError) as info:
        parse_target(target, "/socket.io/", websocket=websocket)
    assert info.value.code == code
    assert info.value.status == 400
    assert json.loads(info.value.body) == {"code": code, "message": ERROR_MESSAGES[code]}


def test_error_codes_messages_and_statuses() -> None:
    assert ERROR_MESSAGES == {
        0: "Transport unknown",
        1: "Session ID unknown",
        2: "Bad handshake method",
        3: "Bad request",
        4: "Forbidden",
        5: "Unsupported protocol version",
    }
    forbidden = EngineRequestError(4)
    assert (forbidden.status, str(forbidden)) == (403, "Engine.IO error 4: Forbidden")
    assert EngineRequestError(3, "custom").body == b'{"code": 3, "message": "custom"}'


def test_check_request_is_parse_target_for_websockets_without_a_sid() -> None:
    assert check_request("/socket.io/?EIO=4&transport=websocket", "/socket.io/")
    assert not check_request("/other/?EIO=4&transport=websocket", "/socket.io/")
    with pytest.raises(EngineRequestError) as info:
        check_request("/socket.io/?EIO=4&transport=websocket&sid=abc", "/socket.io/")
    assert info.value.code == 1


def test_origins_have_the_semantics_of_the_server_origins_option() -> None:
    assert origin_allowed("https://any.example", None)
    assert origin_allowed(None, None)
    listed = frozenset({"https://app.example"})
    assert origin_allowed("https://app.example", listed)
    assert not origin_allowed("https://evil.example", listed)
    assert not origin_allowed(None, listed)
    assert origin_allowed(None, frozenset({"https://app.example", None}))


def test_cors_headers_give_credentials_to_listed_origins_only() -> None:
    assert cors_headers(None, None) == []
    assert cors_headers("https://any.example", None) == [
        ("Access-Control-Allow-Origin", "https://any.example"),
        ("Vary", "Origin"),
    ]
    assert cors_headers("https://app.example", frozenset({"https://app.example"})) == [
        ("Access-Control-Allow-Origin", "https://app.example"),
        ("Vary", "Origin"),
        ("Access-Control-Allow-Credentials", "true"),
    ]


def test_preflight_headers_allow_the_polling_methods_and_asked_headers() -> None:
    assert preflight_headers("https://app.example", None, "content-type, x-token") == [
        ("Access-Control-Allow-Origin", "https://app.example"),
        ("Vary", "Origin"),
        ("Access-Control-Allow-Methods", "GET, POST, OPTIONS"),
        ("Access-Control-Allow-Headers", "content-type, x-token"),
    ]
    assert preflight_headers(None, None, None) == [("Access-Control-Allow-Methods", "GET, POST, OPTIONS")]
