"""The HTTP side of an Engine.IO endpoint: what a request asks for, and the errors and CORS headers it gets.

Sans-IO: plain functions of a request's method, target and ``Origin``.
The Trio layer (:mod:`trio_ws.socketio.transport`) calls them and moves
the bytes.

Engine.IO v4 (engine.io-protocol, "Transports") reaches one path,
``/socket.io/`` for Socket.IO, with the query parameters ``EIO=4``,
``transport`` (``polling`` or ``websocket``) and, once a session exists,
``sid``. A request breaking the rules gets HTTP 400 with a JSON body
``{"code": N, "message": "..."}``; the codes and texts are the reference
server's, which clients and test suites recognise:

====  ============================  ==================================================
code  message                       when
====  ============================  ==================================================
0     Transport unknown             missing or unknown ``transport``, or ``polling``
                                    asked for in a WebSocket handshake
1     Session ID unknown            a ``sid`` this server does not hold (never
                                    existed, or ended)
2     Bad handshake method          a new long-polling session opened with
                                    another method than GET
3     Bad request                   a polling request for a session now on
                                    WebSocket, a method other than GET/POST, a
                                    malformed body, two GETs (or POSTs) at once
4     Forbidden                     an ``Origin`` outside ``cors_allowed_origins``
                                    (HTTP 403)
5     Unsupported protocol version  ``EIO`` missing or other than 4
====  ============================  ==================================================
"""

from __future__ import annotations

import json
from collections.abc import Collection
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

from .session import Transport

__all__ = [
    "EngineRequestError",
    "EngineQuery",
    "parse_target",
    "check_request",
    "origin_allowed",
    "cors_headers",
    "preflight_headers",
    "ERROR_MESSAGES",
]

Header = tuple[str, str]


#: The Engine.IO request errors: code → message (the reference server's texts).
ERROR_MESSAGES = {
    0: "Transport unknown",
    1: "Session ID unknown",
    2: "Bad handshake method",
    3: "Bad request",
    4: "Forbidden",
    5: "Unsupported protocol version",
}


class EngineRequestError(Exception):
    """A request the Engine.IO endpoint answers with an HTTP error and a JSON body.

    Args:
        code: the Engine.IO error code (see the table in this module's documentation).
        message: its text; by default the one in :data:`ERROR_MESSAGES`.

    Attributes:
        code: the Engine.IO error code.
        message: its text.
        status: the HTTP status: 403 for code 4 (Forbidden), else 400.
    """

    def __init__(self, code: int, message: str | None = None) -> None:
        message = ERROR_MESSAGES.get(code, "Bad request") if message is None else message
        super().__init__(f"Engine.IO error {code}: {message}")
        self.code = code
        self.message = message
        self.status = 403 if code == 4 else 400

    @property
    def body(self) -> bytes:
        """The JSON body of the error response."""
        return json.dumps({"code": self.code, "message": self.message}).encode()


@dataclass(frozen=True)
class EngineQuery:
    """What an Engine.IO request asks for.

    Attributes:
        transport: ``"polling"`` or ``"websocket"``.
        sid: the session it belongs to, or None for a new session.
    """

    transport: Transport
    sid: str | None


def parse_target(target: str, path: str, *, websocket: bool) -> EngineQuery | None:
    """Read an Engine.IO request's target (path and query string).

    Args:
        target: the request target.
        path: the endpoint's path, for example ``"/socket.io/"`` (a trailing
            slash is optional on both sides).
        websocket: whether the request is a WebSocket handshake.

    Returns:
        the query, or None when the target is outside ``path`` (not ours:
        answer 404).

    Raises:
        EngineRequestError: code 5 for a missing or unsupported ``EIO``,
            code 0 for a missing or unknown ``transport`` or ``polling`` in a
            WebSocket handshake, code 3 for ``websocket`` in a plain HTTP
            request (engine.io-protocol v4: a WebSocket starts with an upgrade).
    """
    parts = urlsplit(target)
    if parts.path.rstrip("/") != path.rstrip("/"):
        return None
    query = parse_qs(parts.query, keep_blank_values=True)
    if query.get("EIO") != ["4"]:
        raise EngineRequestError(5)
    transport = query.get("transport")
    if transport == ["websocket"]:
        if not websocket:
            raise EngineRequestError(3)
    elif transport == ["polling"]:
        if websocket:
            raise EngineRequestError(0)
    else:
        raise EngineRequestError(0)
    sids = query.get("sid")
    if sids is not None and (len(sids) != 1 or not sids[0]):
        raise EngineRequestError(1)
    return EngineQuery("websocket" if websocket else "polling", sids[0] if sids else None)


def check_request(target: str, path: str) -> bool:
    """Check a WebSocket handshake's target for a server without long-polling.

    Returns:
        False when the target is outside ``path`` (not ours: answer 404).

    Raises:
        EngineRequestError: as :func:`parse_target` for a WebSocket
            handshake, and code 1 for a ``sid``: without long-polling there
            is no session a WebSocket could upgrade.
    """
    query = parse_target(target, path, websocket=True)
    if query is not None and query.sid is not None:
        raise EngineRequestError(1)
    return query is not None


def origin_allowed(origin: str | None, allowed: Collection[str | None] | None) -> bool:
    """Whether ``origin`` may use the endpoint: the semantics of the server's ``origins`` option.

    ``allowed`` None allows every request; otherwise the ``Origin`` header
    must be one of its values, and a request without one is allowed only
    when ``allowed`` contains None.
    """
    return allowed is None or origin in allowed


def cors_headers(origin: str | None, allowed: Collection[str | None] | None) -> list[Header]:
    """The CORS headers of a long-polling response to a request from ``origin``.

    A request without ``Origin`` (same-origin, or not from a browser) gets
    none. An origin listed in ``allowed`` is echoed with
    ``Access-Control-Allow-Credentials: true``, so a client created with
    ``withCredentials: true`` may send cookies; when every origin is allowed
    (``allowed`` None) the origin is echoed without credentials, so another
    site's page may poll but not with the user's cookies. The caller has
    checked :func:`origin_allowed` first.
    """
    if origin is None:
        return []
    headers = [("Access-Control-Allow-Origin", origin), ("Vary", "Origin")]
    if allowed is not None:
        headers.append(("Access-Control-Allow-Credentials", "true"))
    return headers


def preflight_headers(
    origin: str | None, allowed: Collection[str | None] | None, request_headers: str | None
) -> list[Header]:
    """The headers of the 204 answer to a CORS preflight (``OPTIONS``) request.

    Args:
        origin: the request's ``Origin``.
        allowed: the server's ``cors_allowed_origins``.
        request_headers: the ``Access-Control-Request-Headers`` the browser
            asks about (echoed, so a client's ``extraHeaders`` pass), or None.
    """
    headers = [*cors_headers(origin, allowed), ("Access-Control-Allow-Methods", "GET, POST, OPTIONS")]
    if request_headers:
        headers.append(("Access-Control-Allow-Headers", request_headers))
    return headers
