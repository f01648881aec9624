"""The connection object an application handler receives: :class:`WebSocket`.

It wraps the core's :class:`~trio_ws.WebSocketRequest` (before ``accept()``)
and :class:`~trio_ws.WebSocketConnection` (after), and adds what apps use:
the parsed URL, path and query parameters, headers, cookies, the client's
address, a per-connection ``state`` and ``session``, typed send/receive
helpers, rooms through the app's hub, and :meth:`WebSocket.start_soon` for
background work that ends when the connection does.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any

import trio

from ..close import INTERNAL_ERROR, INVALID_FRAME_PAYLOAD_DATA, NORMAL_CLOSURE, UNSUPPORTED_DATA, CloseReason
from ..connection import Message, WebSocketConnection
from ..endpoint import Endpoint
from ..errors import ConnectionClosed
from ..hub import Hub, JoinResult, Member, StreamPosition
from ..request import WebSocketRequest
from .datastructures import URL, Client, Headers, QueryParams, State, parse_cookies

if TYPE_CHECKING:
    from ..handshake import RawHeaders

__all__ = ["WebSocket", "WebSocketDisconnect", "DecodeError"]

logger = logging.getLogger("trio_ws.app")


class WebSocketDisconnect(ConnectionClosed):
    """Raised by the ``receive_*`` helpers when the connection has closed."""


class DecodeError(ValueError):
    """A received message does not have the type or format the handler expects.

    Attributes:
        close_code: 1003 for the wrong message type, 1007 for undecodable data.
    """

    def __init__(self, message: str, close_code: int) -> None:
        super().__init__(message)
        self.close_code = close_code


class WebSocket:
    """One WebSocket request and, once accepted, its connection.

    Args:
        request: the core's request.
        path_params: parameters captured by the route.
        hub: the app's hub (rooms, fan-out).
        scheme: ``"ws"`` or ``"wss"``.
        supported_subprotocols: the route's subprotocols, in preference order.
    """

    def __init__(
        self,
        request: WebSocketRequest,
        *,
        path_params: dict[str, Any],
        hub: Hub,
        scheme: str = "ws",
        supported_subprotocols: Sequence[str] = (),
    ) -> None:
        self._request = request
        self._hub = hub
        self._connection: WebSocketConnection | None = None
        self._member: Member | None = None
        self._tasks: trio.Nursery | None = None
        #: Called right after a successful accept (the app joins the hub there).
        self._on_accept: Callable[[WebSocket], Awaitable[None]] | None = None
        #: Set when the app defers the hub membership (Socket.IO): call it to join.
        self._join_hub: Callable[[], Awaitable[None]] | None = None
        self._supported = tuple(supported_subprotocols)
        self.id: str = uuid.uuid4().hex
        self.path_params = path_params
        self.headers = Headers.from_raw(request.headers)
        target = request.path
        path, _, query = target.partition("?")
        self.query_params = QueryParams.from_string(query)
        host, port = _split_host(self.headers.get("host", ""))
        self.url = URL(scheme, host, port, path, query)
        self.cookies = parse_cookies(self.headers)
        remote = request.remote
        self.client = Client(remote.address, remote.port) if isinstance(remote, Endpoint) else Client(str(remote), None)
        self.state = State()
        self.session: dict[str, Any] = {}
        #: The hub wire format of this connection (None: the application's
        #: own; ``"socketio"`` on the app's Socket.IO endpoint).
        self.wire_format: str | None = None

    @property
    def peer_certificate(self) -> dict[str, Any] | None:
        """The client's verified TLS certificate (mutual TLS), or None; see
        :attr:`trio_ws.WebSocketRequest.peer_certificate`."""
        return self._request.peer_certificate

    # -- handshake ---------------------------------------------------------------
    @property
    def requested_subprotocols(self) -> tuple[str, ...]:
        """The subprotocols the client offered."""
        return self._request.proposed_subprotocols

    @property
    def subprotocol(self) -> str | None:
        """The negotiated subprotocol (None before accept or when there is none)."""
        return self._connection.subprotocol if self._connection is not None else None

    @property
    def accepted(self) -> bool:
        """True once :meth:`accept` succeeded."""
        return self._connection is not None

    async def accept(
        self, subprotocol: str | None = None, headers: Sequence[tuple[str | bytes, str | bytes]] | None = None
    ) -> None:
        """Accept the connection.

        Args:
            subprotocol: the subprotocol to use; by default the first of the
                route's supported ones that the client offered.
            headers: extra response headers.

        Raises:
            HandshakeError: when the request was already answered.
            ValueError: when ``subprotocol`` was not offered by the client.
        """
        if subprotocol is None:
            offered = self.requested_subprotocols
            subprotocol = next((p for p in self._supported if p in offered), None)
        self._connection = await self._request.accept(subprotocol=subprotocol, extra_headers=headers)
        if self._on_accept is not None:
            await self._on_accept(self)

    async def _attach(self, connection: WebSocketConnection) -> None:
        """Take ``connection`` (the app's Socket.IO sessions: an Engine.IO link) as accepted."""
        self._connection = connection
        if self._on_accept is not None:
            await self._on_accept(self)

    async def reject(self, status: int = 403, body: bytes | str = b"") -> None:
        """Refuse the handshake with an HTTP status.

        Raises:
            HandshakeError: when the request was already answered.
        """
        await self._request.reject(status, body=body.encode() if isinstance(body, str) else body)

    @property
    def connection(self) -> WebSocketConnection:
        """The underlying connection.

        Raises:
            RuntimeError: before :meth:`accept`.
        """
        if self._connection is None:
            raise RuntimeError("the WebSocket has not been accepted yet")
        return self._connection

    # -- receiving ---------------------------------------------------------------
    async def receive(self) -> Message:
        """Receive the next message (``str`` or ``bytes``).

        Raises:
            WebSocketDisconnect: when the connection has closed.

        Cancelling is safe; one receiver at a time.
        """
        try:
            return await self.connection.get_message()
        except ConnectionClosed as err:
            raise WebSocketDisconnect(err.reason) from None

    async def receive_text(self) -> str:
        """Receive a text message.

        Raises:
            DecodeError: for a binary message (close code 1003).
            WebSocketDisconnect: when the connection has closed.

        Cancelling is safe; one receiver at a time (as :meth:`receive`).
        """
        text: str = decode_message(await self.receive(), "text")
        return text

    async def receive_bytes(self) -> bytes:
        """Receive a binary message.

        Raises:
            DecodeError: for a text message (close code 1003).
            WebSocketDisconnect: when the connection has closed.

        Cancelling is safe; one receiver at a time (as :meth:`receive`).
        """
        data: bytes = decode_message(await self.receive(), "bytes")
        return data

    async def receive_json(self) -> Any:
        """Receive a text (or UTF-8 binary) message holding JSON and decode it.

        Raises:
            DecodeError: when it is not valid JSON (close code 1007).
            WebSocketDisconnect: when the connection has closed.

        Cancelling is safe; one receiver at a time (as :meth:`receive`).
        """
        return decode_message(await self.receive(), "json")

    def __aiter__(self) -> AsyncIterator[Message]:
        return self.connection.__aiter__()

    # -- sending -----------------------------------------------------------------
    async def send(self, message: Message) -> None:
        """Send a text (``str``) or binary (``bytes``) message.

        Raises:
            ConnectionClosed: when the connection is closed.
            RuntimeError: before :meth:`accept`.

        Cancelling and concurrent calls behave as in
        :meth:`~trio_ws.WebSocketConnection.send_message`: concurrent calls are
        allowed (messages are sent whole); a cancelled call either sent
        nothing or ends the connection.
        """
        await self.connection.send_message(message)

    async def send_text(self, text: str) -> None:
        """Send a text message; see :meth:`send`."""
        await self.connection.send_message(text)

    async def send_bytes(self, data: bytes) -> None:
        """Send a binary message; see :meth:`send`."""
        await self.connection.send_message(data)

    async def send_json(self, value: Any) -> None:
        """Send ``value`` as a compact JSON text message; see :meth:`send`.

        Raises:
            TypeError: when ``value`` cannot be encoded as JSON (nothing is sent).
        """
        await self.connection.send_message(json.dumps(value, separators=(",", ":"), ensure_ascii=False))

    async def close(self, code: int = NORMAL_CLOSURE, reason: str | None = None) -> None:
        """Close the connection (before accept: reject the handshake with 403).

        Raises, and behaves when cancelled or called concurrently, as
        :meth:`~trio_ws.WebSocketConnection.aclose` (idempotent; concurrent
        calls are allowed).
        """
        if self._connection is None:
            if not self._request.answered:
                await self.reject(403)
            return
        await self._connection.aclose(code, reason)

    @property
    def closed(self) -> CloseReason | None:
        """Why the connection closed, once it is closing or closed; None while open or not yet accepted.

        The same meaning as :attr:`trio_ws.WebSocketConnection.closed`. It was
        a bool before: its truth value is unchanged (a :class:`~trio_ws.CloseReason`
        is true), but code comparing it with ``True`` or ``False`` must test
        its truth value instead.
        """
        return None if self._connection is None else self._connection.closed

    # -- rooms -------------------------------------------------------------------
    @property
    def member(self) -> Member:
        """This connection's hub member.

        Raises:
            RuntimeError: before :meth:`accept`.
        """
        if self._member is None:
            raise RuntimeError("the WebSocket is not a hub member yet (accept it first)")
        return self._member

    async def join_room(self, room: str, *, since: StreamPosition | tuple[str, int] | None = None) -> JoinResult:
        """Join a room of the app's hub (no effect if already in it).

        With ``since``, join from a position of a room with history (see
        :meth:`Hub.join <trio_ws.hub.Hub.join>`).

        Returns:
            the hub's :class:`~trio_ws.hub.JoinResult`.

        Raises:
            RuntimeError: before :meth:`accept`.
            ValueError: when ``since`` is not an (epoch, offset) pair.

        The membership is recorded before the first checkpoint: a call
        cancelled while it runs has joined. Concurrent calls are allowed.
        """
        return await self._hub.join(self.member.id, room, since=since)

    async def leave_room(self, room: str) -> None:
        """Leave a room of the app's hub (no effect if not in it).

        Raises:
            RuntimeError: before :meth:`accept`.

        The membership ends before the first checkpoint: a call cancelled
        while it runs has left. Concurrent calls are allowed.
        """
        await self._hub.leave(self.member.id, room)

    @property
    def rooms(self) -> frozenset[str]:
        """The rooms this connection is in."""
        return self._member.rooms if self._member is not None else frozenset()

    async def close_room(self, room: str) -> None:
        """Remove every member from ``room`` (see :meth:`~trio_ws.Hub.close_room`).

        Raises nothing of its own; concurrent calls are allowed.
        """
        await self._hub.close_room(room)

    # -- background work ---------------------------------------------------------
    def start_soon(self, function: Callable[..., Awaitable[Any]], *args: Any, name: str | None = None) -> None:
        """Run ``function(*args)`` in the background until the connection ends.

        The task is cancelled when the connection closes or the handler
        returns. An exception in it is logged and closes the connection with
        1011 (INTERNAL_ERROR).

        Raises:
            RuntimeError: before :meth:`accept`.
        """
        if self._tasks is None:
            raise RuntimeError("background tasks need an accepted connection")
        self._tasks.start_soon(self._guarded, function, args, name=name or getattr(function, "__name__", None))

    async def _guarded(self, function: Callable[..., Awaitable[Any]], args: tuple[Any, ...]) -> None:
        try:
            await function(*args)
        except ConnectionClosed:
            pass
        except Exception:
            logger.exception("background task %r of connection %s failed", function, self.id)
            if self._connection is not None:
                await self._connection.aclose(INTERNAL_ERROR, "internal error")

    @property
    def raw_headers(self) -> RawHeaders:
        """The request headers as the core's ``(bytes, bytes)`` pairs."""
        return self._request.headers

    def __repr__(self) -> str:
        return f"<WebSocket {self.id} {self.url.path!r}>"


def _split_host(header: str) -> tuple[str, int | None]:
    """Split a Host header into host and port; ``[::1]:80`` gives ``("::1", 80)``."""
    if header.startswith("["):
        host, _, rest = header[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
    elif header.count(":") == 1:
        host, _, port = header.partition(":")
    else:
        host, port = header, ""
    return host, int(port) if port.isdigit() else None


def decode_message(message: Message, encoding: str) -> Any:
    """Decode a received message as ``"text"``, ``"bytes"`` or ``"json"``.

    Raises:
        DecodeError: with close code 1003 (wrong type) or 1007 (bad data).
    """
    if encoding == "text":
        if not isinstance(message, str):
            raise DecodeError("expected a text message, got binary", UNSUPPORTED_DATA)
        return message
    if encoding == "bytes":
        if not isinstance(message, bytes):
            raise DecodeError("expected a binary message, got text", UNSUPPORTED_DATA)
        return message
    if encoding == "json":
        try:
            return json.loads(message)
        except (UnicodeDecodeError, json.JSONDecodeError) as err:
            raise DecodeError(f"invalid JSON: {err}", INVALID_FRAME_PAYLOAD_DATA) from None
    raise ValueError(f"unknown encoding {encoding!r}")
