"""The Engine.IO session of an app's Socket.IO client, seen by the app and the hub as its connection.

Theory of operation. A Socket.IO client of an :class:`~trio_ws.app.App`
runs on an :class:`~trio_ws.socketio.EngineConnection` (long-polling,
WebSocket, and the upgrade between them). The app's
:class:`~trio_ws.app.WebSocket` and the hub's member need a connection to
send to, close and watch (:class:`~trio_ws.hub.MemberConnection`):
:class:`EngineLink` is that connection. What the
hub writes to it (the Socket.IO variant of a message: the Engine.IO message
``4<packet>`` and its binary attachments, each a
:class:`~trio_ws.PreparedMessage` shared by every member of a broadcast)
goes out on whichever transport is active: written on a WebSocket as the
frame built once for all of them, or queued in the Engine.IO session for
the next long-polling ``GET`` (a write then returns once a ``GET`` took
it). So a client that does not read (a WebSocket that is not read, or no
``GET`` to answer) keeps the messages in the member's hub outbox, where the
hub's overflow policy applies.

:func:`serve_engine_request` routes the requests on the app's Socket.IO
path: a new session (a WebSocket, or a long-polling ``GET`` without ``sid``)
runs the app's session in that request's task, which owns it until it
ends; the other requests (``GET``, ``POST`` and the upgrade WebSocket of an
existing ``sid``, CORS preflights) are served by the session's link.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Collection, Sequence
from typing import Protocol

import trio

from ..close import ABNORMAL_CLOSURE, CloseReason
from ..errors import ConnectionClosed, RequestBodyError
from ..prepared import PreparedMessage
from ..request import WebSocketRequest
from ..socketio.errors import SessionClosed
from ..socketio.requests import (
    EngineRequestError,
    cors_headers,
    origin_allowed,
    parse_target,
    preflight_headers,
)
from ..socketio.session import EngineConfig, SessionEnded, SessionState, Transport
from ..socketio.transport import FLUSH_TIMEOUT, EngineConnection

__all__ = ["EngineLink", "LinkOwner", "serve_engine_request"]

logger = logging.getLogger("trio_ws.app.socketio")

Header = tuple[str, str]
Frame = str | bytes | PreparedMessage


class LinkOwner(Protocol):
    """What the layer above gives a link: where messages go, and its own timer."""

    async def engine_message(self, data: str | bytes) -> None:
        """A message from the client (raise InvalidPacket to end the session as a parse error)."""

    def engine_message_now(self, data: str) -> bool:
        """A text message offered in the WebSocket's reader task: True if handled without waiting."""

    def engine_deadline(self) -> float | None:
        """When :meth:`engine_tick` must run next, or None."""

    def engine_tick(self, now: float) -> None:
        """Called by the clock at every wake-up."""

    def engine_ended(self, end: SessionEnded) -> None:
        """The session has just ended (called once, before any task learns it)."""


class EngineLink(EngineConnection):
    """An Engine.IO session that the app's WebSocket and the hub use as a connection.

    It has the :class:`~trio_ws.hub.MemberConnection` protocol (what the
    App and the hub use of a connection): :attr:`closed`,
    :meth:`closed_error`, :meth:`send_many`, :meth:`aclose` and
    :meth:`wait_closed`; the app's :class:`~trio_ws.app.WebSocket` takes it
    with :meth:`~trio_ws.app.WebSocket.attach`.
    """

    def __init__(self, owner: LinkOwner, transport: Transport, config: EngineConfig) -> None:
        super().__init__(transport, config)
        self.owner = owner
        self._ended = trio.Event()
        self._close_code: int | None = None
        self._close_reason: CloseReason | None = None
        self._taken = trio.Event()

    # EngineConnection hooks ---------------------------------------------------
    async def message_received(self, data: str | bytes) -> None:
        await self.owner.engine_message(data)

    def message_received_now(self, data: str) -> bool:
        return self.owner.engine_message_now(data)

    def deadlines(self) -> list[float]:
        deadline = self.owner.engine_deadline()
        return [] if deadline is None else [deadline]

    def tick(self, now: float) -> None:
        self.owner.engine_tick(now)

    def finish(self, end: SessionEnded) -> None:
        if self.end is None:
            self.owner.engine_ended(end)
            super().finish(end)
            self._ended.set()
            self._taken.set()

    def taken(self) -> None:
        self._taken.set()
        self._taken = trio.Event()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Own the session (:meth:`~trio_ws.socketio.EngineConnection.run`), then see its close packet out.

        A long-polling client learns that the server closed its session only
        from the close packet in a ``GET``'s answer. Between two polls no
        ``GET`` is waiting: the session then stays reachable until the
        client's next ``GET`` takes what is left (the close packet last),
        for at most ``FLUSH_TIMEOUT``, as the reference server keeps a socket
        it closes until then. (Removed at once, that ``GET`` got HTTP 400,
        which clients take for a transport error: what they did depended on
        when they polled.) Cancelling it (the server shutting down) ends
        the session and stops that wait. Raises nothing of its own; call it once.
        """
        await super().run(task_status=task_status)
        end = self.end
        if end is None or end.reason != "server close" or self.session.transport != "polling":
            return
        with trio.move_on_after(FLUSH_TIMEOUT):
            while self.session.queued:
                self._taken = taken = trio.Event()  # finish() set the previous one
                await taken.wait()

    def websocket_close_code(self, end: SessionEnded) -> int:
        return self._close_code if self._close_code is not None else super().websocket_close_code(end)

    # The connection API -------------------------------------------------------
    @property
    def closed(self) -> CloseReason | None:
        """Why the session ended, as a close reason; None while it is open."""
        end = self.end
        if end is None:
            return None
        if self._close_reason is None:
            code = self._close_code if self._close_code is not None else self.websocket_close_code(end)
            self._close_reason = CloseReason(code, end.detail or end.reason)
        return self._close_reason

    def closed_error(self) -> ConnectionClosed:
        """The exception the link's calls raise once the session has ended."""
        return ConnectionClosed.for_reason(self.closed or CloseReason(ABNORMAL_CLOSURE, None))

    async def send_message(self, message: Frame) -> None:
        """Send one Engine.IO message; raises and behaves as :meth:`send_many`."""
        await self.send_many([message])

    async def send_many(self, messages: Sequence[Frame], *, schedule: bool = True) -> None:
        """Send Engine.IO messages (text ``4<packet>``, or binary attachments) on the active transport.

        On the WebSocket transport they are written at once, a
        :class:`~trio_ws.PreparedMessage` as the frame it shares with every
        other connection (see :meth:`~trio_ws.socketio.EngineConnection.send_messages`);
        on long-polling they are queued, and the call returns once a ``GET``
        (or the WebSocket of an upgrade) took them. ``schedule=False`` is
        for a caller that has just yielded (the hub's sender, which waited
        for them): a WebSocket write that goes out at once does not yield again.

        Raises:
            ConnectionClosed: the session has ended (or ends now: ``max_buffered``,
                the WebSocket closed).
            ValueError: for text that is not an Engine.IO message (``4`` first).

        Cancelling is safe while waiting; a write cut short ends the
        session. Concurrent calls are allowed.
        """
        if self.end is not None:
            raise self.closed_error()
        try:
            written = await self.send_messages([_engine_message(message) for message in messages], schedule=schedule)
        except SessionClosed:
            raise self.closed_error() from None
        if not written:
            while self.session.queued and self.end is None:
                await self._taken.wait()  # set by the transport taking them, or by the end
            await trio.lowlevel.checkpoint()

    async def aclose(self, code: int = 1000, reason: str | None = None) -> None:
        """End the session: a WebSocket closes with ``code`` (no Engine.IO ``close`` packet, so clients
        reconnect), a long-polling client gets a ``close`` packet, on the ``GET`` waiting or on its
        next one if that comes within 5 s. Idempotent; raises nothing."""
        if self.end is None:
            self._close_code = code
            self.fail("server close", reason or "")
        await trio.lowlevel.checkpoint()

    async def wait_closed(self) -> None:
        """Wait until the session has ended. Raises nothing; cancelling is safe."""
        await self._ended.wait()


def _engine_message(frame: Frame) -> str | bytes | PreparedMessage:
    """What the session sends for a WebSocket message of a Socket.IO client: the data of a text
    ``4<packet>``, binary as is, and a PreparedMessage unchanged (the session checks its type)."""
    if isinstance(frame, str):
        if not frame.startswith("4"):
            raise ValueError(f"not an Engine.IO message: {frame[:20]!r}")
        return frame[1:]
    return frame


async def serve_engine_request(
    request: WebSocketRequest,
    path: str,
    origins: Collection[str | None] | None,
    links: dict[str, EngineLink],
    open_session: Callable[[list[Header]], Awaitable[None]],
) -> None:
    """Serve one request on the Socket.IO path: open a session, or serve an existing one.

    ``open_session(cors)`` runs a new session in this request's task (a
    WebSocket without ``sid``, or a long-polling ``GET`` without ``sid``).
    Requests breaking the Engine.IO rules get 400 (403 for a refused
    origin) with the Engine.IO error as JSON; others outside ``path`` 404.
    Raises nothing of its own.
    """

    def cors() -> list[Header]:
        if request.is_websocket or not origin_allowed(request.origin, origins):
            return []
        return cors_headers(request.origin, origins)

    try:
        query = parse_target(request.path, path, websocket=request.is_websocket)
        if query is None:
            await request.reject(404)
            return
        if not origin_allowed(request.origin, origins):
            logger.info("refused origin %r", request.origin)
            raise EngineRequestError(4)
        method = request.method
        if not request.is_websocket and method == "OPTIONS":
            asked = [v.decode("latin-1") for k, v in request.headers if k == b"access-control-request-headers"]
            headers = preflight_headers(request.origin, origins, ", ".join(asked) or None)
            await request.respond(204, headers=headers)
            return
        if query.sid is None:
            if not request.is_websocket and method != "GET":
                raise EngineRequestError(2)
            await open_session(cors())
            return
        link = links.get(query.sid)
        if link is None:
            raise EngineRequestError(1)
        if request.is_websocket:
            if link.session.transport != "polling" or link.session.state is not SessionState.OPEN:
                raise EngineRequestError(3)  # one WebSocket per session (engine.io-protocol v4)
            await link.upgrade(await request.accept())
        elif link.session.transport != "polling":
            raise EngineRequestError(3)  # the session moved to WebSocket
        elif method == "GET":
            await link.poll(request, cors())
        elif method == "POST":
            await link.post(request, cors())
        else:
            raise EngineRequestError(3)
    except EngineRequestError as err:
        if not request.answered:
            await request.respond(err.status, headers=[*cors(), ("Content-Type", "application/json")], body=err.body)
    except RequestBodyError as err:
        if not request.answered:
            await request.respond(err.status_code, headers=cors(), body=str(err).encode())
