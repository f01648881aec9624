"""Unit tests for trio_ws.errors."""

from __future__ import annotations

import copy
import pickle

import pytest

import trio_ws
from trio_ws import (
    CloseReason,
    ConcurrencyError,
    ConnectionClosed,
    ConnectionClosedError,
    ConnectionClosedOK,
    ConnectionRejected,
    ConnectionTimeout,
    DisconnectionTimeout,
    HandshakeError,
    InvalidURL,
    WebSocketError,
)


@pytest.mark.parametrize("code", [1000, 1001, 1005])
def test_for_reason_ok(code: int) -> None:
    reason = CloseReason(code, None)
    exc = ConnectionClosed.for_reason(reason)
    assert type(exc) is ConnectionClosedOK
    assert exc.reason is reason


@pytest.mark.parametrize("code", [1002, 1003, 1006, 1007, 1009, 1011, 3000, 4000])
def test_for_reason_error(code: int) -> None:
    reason = CloseReason(code, "x")
    exc = ConnectionClosed.for_reason(reason)
    assert type(exc) is ConnectionClosedError
    assert exc.reason is reason


def test_hierarchy() -> None:
    for cls in (
        ConnectionClosed,
        ConnectionClosedOK,
        ConnectionClosedError,
        HandshakeError,
        ConnectionRejected,
        ConnectionTimeout,
        DisconnectionTimeout,
        ConcurrencyError,
        InvalidURL,
    ):
        assert issubclass(cls, WebSocketError)
    assert issubclass(ConnectionClosedOK, ConnectionClosed)
    assert issubclass(ConnectionClosedError, ConnectionClosed)
    assert issubclass(ConnectionRejected, HandshakeError)
    assert issubclass(ConnectionTimeout, HandshakeError)
    assert issubclass(ConcurrencyError, RuntimeError)
    assert issubclass(InvalidURL, ValueError)
    assert not issubclass(DisconnectionTimeout, HandshakeError)


def test_invalid_url_caught_as_value_error() -> None:
    with pytest.raises(ValueError, match="nope"):
        raise InvalidURL("nope")


def test_connection_closed_str_without_reason() -> None:
    exc = ConnectionClosed(CloseReason(1006, None))
    assert str(exc) == "connection closed: 1006 (ABNORMAL_CLOSURE)"
    assert str(ConnectionClosedOK(CloseReason(1000, ""))) == "connection closed: 1000 (NORMAL_CLOSURE)"


def test_connection_closed_str_with_reason() -> None:
    exc = ConnectionClosedError(CloseReason(1011, "handler crashed"))
    assert str(exc) == "connection closed: 1011 (INTERNAL_ERROR) handler crashed"


def test_connection_closed_repr_and_args() -> None:
    reason = CloseReason(1000, "bye")
    exc = ConnectionClosedOK(reason)
    assert repr(exc) == f"ConnectionClosedOK({reason!r})"
    assert exc.args == (reason,)


def test_connection_rejected_attributes() -> None:
    headers = [(b"content-type", b"text/plain"), (b"x-a", b"1")]
    exc = ConnectionRejected(403, tuple(headers), b"forbidden")
    assert exc.status_code == 403
    # A tuple of pairs, as trio-websocket documents it.
    assert exc.headers == tuple(headers)
    assert isinstance(exc.headers, tuple)
    assert exc.body == b"forbidden"
    assert str(exc) == "server rejected WebSocket connection: HTTP 403"
    assert repr(exc) == "ConnectionRejected<status_code=403>"
    assert exc.args == (403, tuple(headers), b"forbidden")


def test_connection_rejected_without_body() -> None:
    exc = ConnectionRejected(401, [], None)
    assert exc.body is None
    assert exc.headers == ()
    assert "401" in str(exc)


def test_exceptions_survive_copy() -> None:
    reason = CloseReason(1000, "bye")
    closed = copy.copy(ConnectionClosedOK(reason))
    assert type(closed) is ConnectionClosedOK and closed.reason == reason
    rejected = copy.copy(ConnectionRejected(404, [(b"a", b"b")], b"c"))
    assert (rejected.status_code, rejected.headers, rejected.body) == (404, ((b"a", b"b"),), b"c")
    for exc in (HandshakeError("x"), ConnectionTimeout("y"), DisconnectionTimeout()):
        assert copy.copy(exc).args == exc.args
    assert pickle.loads(pickle.dumps(rejected)).headers == ((b"a", b"b"),)


def test_simple_exceptions_str() -> None:
    assert str(ConnectionTimeout("too slow")) == "too slow"
    assert str(DisconnectionTimeout()) == ""
    assert str(ConcurrencyError("busy")) == "busy"
    assert str(HandshakeError("bad")) == "bad"


def test_exported_from_package() -> None:
    for name in (
        "WebSocketError",
        "ConnectionClosed",
        "ConnectionClosedOK",
        "ConnectionClosedError",
        "HandshakeError",
        "ConnectionRejected",
        "ConnectionTimeout",
        "DisconnectionTimeout",
        "ConcurrencyError",
        "InvalidURL",
    ):
        assert name in trio_ws.__all__
        assert getattr(trio_ws, name) is getattr(trio_ws.errors, name)
