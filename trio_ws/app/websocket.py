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
from ..hub import Hub, JoinResult, Member, MemberConnection, StreamPosition
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
        self._link: MemberConnection | None = None
        self._member: Member | None = None
        self._tasks: trio.Nursery | None = None
        self._nursery: trio.Nursery | None = None
        self._defer_hub = False
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
    def request(self) -> WebSocketRequest:
        """The core's request this WebSocket wraps (answered once accepted or rejected)."""
        return self._request

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
        return self._link is not None

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
        await self._accepted(self._connection)

    async def attach(self, link: MemberConnection) -> None:
        """Take ``link`` as this WebSocket's accepted connection, instead of calling :meth:`accept`.

        The App's Socket.IO clients run on an Engine.IO session
        (:class:`~trio_ws.app.socketio_link.EngineLink`, long-polling or
        WebSocket), which the hub and the app then use as the connection
        (:attr:`link`); :attr:`connection` stays unavailable. Raises nothing
        of its own; cancelling is safe.
        """
        await self._accepted(link)

    def run_in(self, nursery: trio.Nursery, *, defer_hub: bool = False) -> None:
        """Have the accept join the app's hub and host the background tasks in ``nursery``.

        Called by the App before the handler runs. With ``defer_hub`` the
        accept does not join the hub: :meth:`join_hub` does, later (a
        Socket.IO client joins at its first CONNECT, under the id it gets back).
        """
        self._nursery = nursery
        self._defer_hub = defer_hub

    async def _accepted(self, link: MemberConnection) -> None:
        """After accept: join the hub (unless deferred) and open the nursery of the connection's tasks."""
        self._link = link
        nursery = self._nursery
        if nursery is None:
            return
        if not self._defer_hub:
            await self.join_hub()
        self._tasks = await nursery.start(_task_host, link)

    async def join_hub(self) -> Member:
        """Join the app's hub as a member (once accepted); the membership lasts until the connection closes.

        Returns:
            the hub member (the same one on later calls).

        Raises:
            RuntimeError: before :meth:`accept` (or :meth:`attach`), or on a
                WebSocket the App does not run.
            ValueError: when the hub has another member with this :attr:`id`.
        """
        if self._member is not None:
            return self._member
        if self._link is None or self._nursery is None:
            raise RuntimeError("only an accepted WebSocket that the App runs can join its hub")
        self._member = await self._nursery.start(_membership, self._hub, self._link, self.id, self.wire_format)
        return self._member

    @property
    def in_hub(self) -> bool:
        """True once this connection is a member of the app's hub (see :attr:`member`)."""
        return self._member is not None

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
            RuntimeError: before :meth:`accept`, or for a Socket.IO client
                (whose connection is an Engine.IO session: see :attr:`link`).
        """
        if self._connection is None:
            if self._link is not None:
                raise RuntimeError("a Socket.IO client has no WebSocketConnection of its own: use WebSocket.link")
            raise RuntimeError("the WebSocket has not been accepted yet")
        return self._connection

    @property
    def link(self) -> MemberConnection:
        """The connection the app and the hub use: :attr:`connection` itself, or a Socket.IO
        client's Engine.IO session (see :class:`~trio_ws.hub.MemberConnection`).

        Raises:
            RuntimeError: before :meth:`accept`.
        """
        if self._link is None:
            raise RuntimeError("the WebSocket has not been accepted yet")
        return self._link

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
        if self._link is None:
            if not self._request.answered:
                await self.reject(403)
            return
        await self._link.aclose(code, reason)

    @property
    def closed(self) -> CloseReason | None:
        """Why the connection closed, once it is closing or closed; None while open or not yet accepted.

        The same meaning as :attr:`trio_ws.WebSocketConnection.closed`. It was
        a bool before: its truth value is unchanged (a :class:`~trio_ws.CloseReason`
        is true), but code comparing it with ``True`` or ``False`` must test
        its truth value instead.
        """
        return None if self._link is None else self._link.closed

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
            if self._link is not None:
                await self._link.aclose(INTERNAL_ERROR, "internal error")

    @property
    def raw_headers(self) -> RawHeaders:
        """The request headers as the core's ``(bytes, bytes)`` pairs."""
        return self._request.headers

    def __repr__(self) -> str:
        return f"<WebSocket {self.id} {self.url.path!r}>"


async def _membership(
    hub: Hub,
    link: MemberConnection,
    member_id: str,
    wire_format: str | None,
    *,
    task_status: trio.TaskStatus[Member],
) -> None:
    """Keep the connection in the hub while it is open."""
    async with hub.connect(link, member_id=member_id, wire_format=wire_format) as member:
        task_status.started(member)
        await link.wait_closed()


async def _task_host(link: MemberConnection, *, task_status: trio.TaskStatus[trio.Nursery]) -> None:
    """Hold the nursery of ``start_soon`` tasks; cancel them when the connection closes.

    The tasks are wrapped so that they never raise into this nursery.
    """
    async with trio.open_nursery() as nursery:
        task_status.started(nursery)
        await link.wait_closed()
        nursery.cancel_scope.cancel()


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
