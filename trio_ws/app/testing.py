"""Test an app without sockets: :class:`TestClient` over in-memory streams.

::

    async with TestClient(app) as client:
        async with client.connect("/chat/lobby", headers={"cookie": "user=ann"}) as conn:
            assert await conn.emit("join", {"room": "a"}, ack=True) == "ok"
            events = await conn.get_received()

Each connection is a real trio_ws client and server joined by
``trio.testing.memory_stream_pair``: the handshake, framing, the app's
``process_request`` policy and its handlers all run as in production. A
reader task files every received message, so :meth:`TestConnection.emit`
can wait for its acknowledgement while events keep arriving, and
:meth:`TestConnection.get_received` returns what came in, once the app has
nothing left to do (``trio.testing.wait_all_tasks_blocked``).
"""

from __future__ import annotations

import json
import math
import urllib.parse
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import trio
import trio.testing

from ..client import wrap_client_stream
from ..close import NORMAL_CLOSURE
from ..connection import Message, WebSocketConnection
from ..errors import ConnectionClosed
from ..request import WebSocketRequest
from ..scopes import background_tasks
from ..server import WebSocketServer
from .calls import CallError
from .envelope import (
    DEFAULT_NAMESPACE,
    EnvelopeError,
    EventEnvelope,
    ack_envelope,
    connect_envelope,
    disconnect_envelope,
    encode,
    error_envelope,
    event_envelope,
    parse_envelope,
)

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from ..options import ConnectionOptionsDict

__all__ = ["TestClient", "TestConnection"]

RequestHandler = Callable[[WebSocketRequest], Awaitable[None]]


class TestConnection:
    """One test connection to the app.

    Attributes:
        ws: the client side :class:`~trio_ws.WebSocketConnection`.
    """

    __test__ = False  # not a pytest test class

    def __init__(self, ws: WebSocketConnection) -> None:
        self.ws = ws
        self._inbox: deque[Message] = deque()
        self._arrived = trio.lowlevel.ParkingLot()
        self._acks: dict[int, dict[str, Any]] = {}  # the answers, as JSON objects
        self._next_id = 0
        self._reader_done = False
        # An event route connects the default namespace on accept, without a reply.
        self._namespaces = {DEFAULT_NAMESPACE}

    async def _read(self) -> None:
        try:
            while True:
                message = await self.ws.get_message()
                envelope = _envelope(message)
                if envelope is not None and envelope.type == "ack":
                    assert envelope.id is not None
                    self._acks[envelope.id] = json.loads(message)
                else:
                    if envelope is not None and envelope.type in ("connected", "disconnect"):
                        self._namespace_changed(envelope)
                    self._inbox.append(message)
                self._arrived.unpark_all()
        except ConnectionClosed:
            pass
        finally:
            self._reader_done = True
            self._arrived.unpark_all()

    def _closed(self) -> ConnectionClosed:
        return self.ws.closed_error()

    def _namespace_changed(self, envelope: EventEnvelope) -> None:
        namespace = envelope.namespace
        if envelope.type == "connected":
            self._namespaces.add(namespace)
        else:  # the app took the connection out of the namespace
            self._namespaces.discard(namespace)

    @property
    def is_connected(self) -> bool:
        """True while the connection is open."""
        return self.ws.closed is None

    @property
    def namespaces(self) -> frozenset[str]:
        """The namespaces this connection is in (``"/"`` from the start), while it is open.

        Updated as the app's ``connected`` and ``disconnect`` envelopes
        arrive, and by :meth:`disconnect_namespace`.
        """
        return frozenset(self._namespaces) if self.is_connected else frozenset()

    def is_connected_to(self, namespace: str) -> bool:
        """Whether the connection is open and in ``namespace`` (Flask-SocketIO's ``is_connected(namespace)``)."""
        return namespace in self.namespaces

    async def send(self, message: Message) -> None:
        """Send a text or binary message."""
        await self.ws.send_message(message)

    async def send_json(self, value: Any) -> None:
        """Send ``value`` as a JSON text message."""
        await self.ws.send_message(encode(value) if isinstance(value, dict) else json.dumps(value))

    async def receive(self) -> Message:
        """The next received message (events included, acknowledgements excluded).

        Raises:
            ConnectionClosed: when the connection closed and nothing is left.
        """
        while not self._inbox:
            if self._reader_done:
                raise self._closed()
            await self._arrived.park()
        return self._inbox.popleft()

    async def receive_text(self) -> str:
        """The next message, which must be text."""
        message = await self.receive()
        if not isinstance(message, str):
            raise AssertionError(f"expected a text message, got {message!r}")
        return message

    async def receive_json(self) -> Any:
        """The next message, decoded as JSON."""
        return json.loads(await self.receive())

    async def emit(
        self,
        event: str,
        data: Any = None,
        *,
        namespace: str = DEFAULT_NAMESPACE,
        ack: bool = False,
        timeout: float = 5.0,  # noqa: ASYNC109 - how long to wait for the app's answer
    ) -> Any:
        """Send an event; with ``ack=True`` wait for the app's answer and return its data.

        Raises:
            CallError: when the app answers with an error (``AckError`` is
                a deprecated alias of it).
            TimeoutError: when no answer arrives within ``timeout`` seconds.
            ConnectionClosed: when the connection closes first.
        """
        if not ack:
            await self.ws.send_message(event_envelope(event, data, namespace))
            return None
        self._next_id += 1
        call_id = self._next_id
        await self.ws.send_message(event_envelope(event, data, namespace, call_id))
        with trio.move_on_after(timeout) as scope:
            while call_id not in self._acks:
                if self._reader_done:
                    raise self._closed()
                await self._arrived.park()
        if scope.cancelled_caught:
            raise TimeoutError(f"no answer to {event!r} within {timeout} s")
        answer = self._acks.pop(call_id)
        if "error" in answer:
            raise CallError(answer["error"].get("type", "Error"), answer["error"].get("message", ""))
        return answer.get("data")

    async def disconnect_namespace(self, namespace: str) -> None:
        """Leave a namespace (a ``disconnect`` envelope); the connection stays open.

        Raises:
            ConnectionClosed: when the connection is closed.
        """
        self._namespaces.discard(namespace)
        await self.ws.send_message(disconnect_envelope(namespace))

    async def connect_namespace(self, namespace: str, data: Any = None) -> dict[str, Any]:
        """Join a namespace; returns the app's ``connected`` or ``connect_error`` envelope."""
        await self.ws.send_message(connect_envelope(namespace, data))
        while True:
            message = await self.receive()
            envelope = _envelope(message)
            if envelope is not None:
                if envelope.type in ("connected", "connect_error") and envelope.namespace == namespace:
                    answer: dict[str, Any] = json.loads(message)
                    return answer
                self._inbox.appendleft(message)
                await self._arrived.park()

    async def answer_calls(self, handlers: Mapping[str, Callable[[Any], Any]]) -> None:
        """Answer the app's calls (events with an id) with ``handlers[event](data)``, until closed."""
        while True:
            envelope = _envelope(await self.receive())
            if envelope is None or envelope.type != "event" or envelope.id is None:
                continue
            assert envelope.event is not None
            handler = handlers.get(envelope.event)
            if handler is None:
                reply = error_envelope("UnknownEvent", "", envelope.id)
            else:
                reply = ack_envelope(envelope.id, handler(envelope.data))
            await self.ws.send_message(reply)

    async def get_received(self) -> list[Any]:
        """Everything received so far (JSON decoded when possible), once the app is idle.

        Clears the list; acknowledgements are not included.
        """
        await trio.testing.wait_all_tasks_blocked()
        received: list[Any] = []
        while self._inbox:
            message = self._inbox.popleft()
            if isinstance(message, str):
                try:
                    received.append(json.loads(message))
                    continue
                except json.JSONDecodeError:
                    pass
            received.append(message)
        return received

    async def disconnect(self, code: int = NORMAL_CLOSURE, reason: str | None = None) -> None:
        """Close the connection."""
        await self.ws.aclose(code, reason)


def _envelope(message: Message) -> EventEnvelope | None:
    """``message`` as an envelope, or None when it is not one (plain routes send anything)."""
    try:
        return parse_envelope(message)
    except EnvelopeError:
        return None


class _MemoryListener(trio.abc.Listener[trio.abc.Stream]):
    """A listener whose transports are the server ends of in-memory stream pairs."""

    def __init__(self) -> None:
        self._send, self._receive = trio.open_memory_channel[trio.abc.Stream](math.inf)

    def dial(self) -> trio.abc.Stream:
        """A new in-memory transport: the server end goes to ``accept()``, the client end is returned."""
        client_stream, server_stream = trio.testing.memory_stream_pair()
        self._send.send_nowait(server_stream)
        return client_stream

    async def accept(self) -> trio.abc.Stream:
        """The next dialled transport's server end."""
        try:
            return await self._receive.receive()
        except (trio.ClosedResourceError, trio.EndOfChannel):
            raise trio.ClosedResourceError("the listener is closed") from None

    async def aclose(self) -> None:
        """Stop accepting: ``accept()`` and ``dial()`` raise ``trio.ClosedResourceError`` from now on."""
        self._send.close()
        self._receive.close()
        await trio.lowlevel.checkpoint()


class TestClient:
    """Drive an :class:`~trio_ws.app.App` (or any request handler) in memory.

    The server side is a real :class:`~trio_ws.WebSocketServer` (with the
    app's ``process_request`` hook, if it has one) accepting in-memory
    transports, so every connection goes through the same code as in
    production: a handler that returns closes with 1000, one that returns
    without accepting answers 403, a failing ``process_request`` answers
    500, and leaving the ``async with`` block stops the server (open
    connections are closed with 1001).

    Args:
        app: the app, or ``async def handler(request)``.
        options: connection options for both sides (for example
            ``max_message_size``); keepalive is off by default here.
    """

    __test__ = False  # not a pytest test class

    def __init__(self, app: RequestHandler, **options: Unpack[ConnectionOptionsDict]) -> None:
        self.app = app
        self._process_request: RequestHandler | None = getattr(app, "process_request", None)
        options.setdefault("ping_interval", None)
        self._options = options
        self._listener: _MemoryListener | None = None
        self._context: Any = None

    async def __aenter__(self) -> TestClient:
        listener = _MemoryListener()
        server = WebSocketServer(self.app, [listener], process_request=self._process_request, **self._options)
        self._context = background_tasks()
        nursery = await self._context.__aenter__()
        try:
            await nursery.start(server.run)
        except BaseException as exc:
            await self._context.__aexit__(type(exc), exc, exc.__traceback__)
            raise
        self._listener = listener
        return self

    async def __aexit__(self, *exc_info: Any) -> bool | None:
        self._listener = None
        result: bool | None = await self._context.__aexit__(*exc_info)
        return result

    @asynccontextmanager
    async def connect(
        self,
        path: str = "/",
        *,
        headers: Mapping[str, str] | Sequence[tuple[str, str]] | None = None,
        query: Mapping[str, str] | None = None,
        subprotocols: Sequence[str] | None = None,
    ) -> AsyncIterator[TestConnection]:
        """Open a connection to ``path`` for the duration of the block.

        An exception raised in the block comes out unchanged, also while the
        block is being cancelled.

        Raises:
            ConnectionRejected: when the app refuses the handshake (with the
                status the server answered: 403 for a handler that returned
                without accepting, 500 when ``process_request`` raised...).
            RuntimeError: outside ``async with TestClient(...)``.
        """
        if self._listener is None:
            raise RuntimeError("use the TestClient as `async with TestClient(app) as client:`")
        if query:
            path += ("&" if "?" in path else "?") + urllib.parse.urlencode(query)
        pairs = list(headers.items()) if isinstance(headers, Mapping) else list(headers or [])
        client_stream = self._listener.dial()
        async with background_tasks() as nursery:
            ws = await wrap_client_stream(
                nursery,
                client_stream,
                "testserver",
                path,
                subprotocols=subprotocols,
                extra_headers=pairs,
                **self._options,
            )
            connection = TestConnection(ws)
            nursery.start_soon(connection._read)
            try:
                yield connection
            finally:
                with trio.CancelScope(shield=True):
                    await ws.aclose()
