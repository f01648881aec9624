"""The server side of the opening handshake: :class:`WebSocketRequest`."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import h11
import trio

from .connection import WebSocketConnection
from .endpoint import Endpoint, stream_address
from .errors import TRANSPORT_ERRORS, HandshakeError, RequestBodyError
from .handshake import (
    HandshakeProblem,
    HeadReader,
    ParsedRequest,
    accept_key,
    check_upgrade_request,
    header_values,
    negotiate_server_extensions,
    parse_request_head,
    split_comma_header,
)
from .log import ConnectionLogger
from .options import ConnectionOptions
from .plainsocket import plain_socket, read_socket, write_socket
from .protocol import ProtocolCore
from .tls import peer_certificate

__all__ = ["WebSocketRequest", "read_request"]

HeaderPairs = Sequence[tuple[bytes | str, bytes | str]]
_MAX_REJECT_BODY = 2**20


def _encode(value: bytes | str) -> bytes:
    return value.encode("latin-1") if isinstance(value, str) else value


class WebSocketRequest:
    """An HTTP request received by a server, to be accepted or rejected.

    A server handler receives one and calls :meth:`accept` (to get a
    :class:`~trio_ws.WebSocketConnection`) or :meth:`reject`. A
    ``process_request`` hook also sees plain HTTP requests (``is_websocket``
    is then False), which it may answer with :meth:`respond` (or
    :meth:`reject`) — for example a health check answered with 200. Such a
    hook may read the request's body with :meth:`read_body` and hold the
    request open before answering it (a long poll), watching for the client
    leaving with :meth:`wait_disconnected`.
    """

    def __init__(
        self,
        stream: trio.abc.Stream,
        parsed: ParsedRequest,
        *,
        key: bytes | None,
        problem: HandshakeProblem | None,
        trailing_data: bytes,
        options: ConnectionOptions,
        logger: ConnectionLogger,
    ) -> None:
        self._stream = stream
        self._parsed = parsed
        self._key = key
        self._problem = problem
        self._trailing_data = trailing_data
        self._options = options
        self._logger = logger
        self._nursery: trio.Nursery | None = None
        self._on_accept: Callable[[WebSocketConnection], None] | None = None
        self._connection: WebSocketConnection | None = None
        self._answered = False
        self._body_read = False

    @property
    def headers(self) -> list[tuple[bytes, bytes]]:
        """The request headers as ``(name, value)`` bytes pairs; names are lower-case."""
        return list(self._parsed.headers)

    @property
    def method(self) -> str:
        """The HTTP method, for example ``"GET"``."""
        return self._parsed.method.decode("ascii")

    @property
    def path(self) -> str:
        """The request target, that is the path and, if any, the query string."""
        return self._parsed.target.decode("latin-1")

    @property
    def proposed_subprotocols(self) -> tuple[str, ...]:
        """The subprotocols the client offered, in its order of preference."""
        return tuple(split_comma_header(header_values(self._parsed.headers, b"sec-websocket-protocol")))

    @property
    def is_websocket(self) -> bool:
        """True when the request is a valid WebSocket upgrade."""
        return self._problem is None

    @property
    def origin(self) -> str | None:
        """The ``Origin`` header, or None."""
        values = header_values(self._parsed.headers, b"origin")
        return values[0].decode("latin-1") if values else None

    @property
    def local(self) -> Endpoint | str:
        """The server's address, as an :class:`Endpoint` or a Unix socket path."""
        return stream_address(self._stream, remote=False)

    @property
    def remote(self) -> Endpoint | str:
        """The client's address, as an :class:`Endpoint` or a Unix socket path."""
        return stream_address(self._stream, remote=True)

    @property
    def peer_certificate(self) -> dict[str, Any] | None:
        """The client's TLS certificate as ``ssl`` decodes it, or None (see :func:`trio_ws.tls.peer_certificate`).

        A server sees a client certificate only when its ``ssl.SSLContext``
        asks for one (``verify_mode``) and it passed verification.
        """
        return peer_certificate(self._stream)

    @property
    def answered(self) -> bool:
        """True once :meth:`accept` or :meth:`reject` has been called."""
        return self._answered

    @property
    def connection(self) -> WebSocketConnection | None:
        """The connection :meth:`accept` returned, if it was called."""
        return self._connection

    def _bind(self, nursery: trio.Nursery, on_accept: Callable[[WebSocketConnection], None] | None = None) -> None:
        """Say where the accepted connection's tasks will run, and whom to tell."""
        self._nursery = nursery
        self._on_accept = on_accept

    async def accept(
        self,
        *,
        subprotocol: str | None = None,
        extra_headers: HeaderPairs | None = None,
    ) -> WebSocketConnection:
        """Accept the handshake and open the WebSocket connection.

        Args:
            subprotocol: one of :attr:`proposed_subprotocols`, or None.
            extra_headers: more headers for the 101 response.

        Returns:
            the open connection.

        Raises:
            HandshakeError: when the request was already answered, is not a
                WebSocket upgrade, or the client went away during the answer.
            ValueError: when ``subprotocol`` was not proposed by the client.

        Cancelling closes the transport. Call it once, from one task.
        """
        if self._answered:
            raise HandshakeError("this request was already accepted or rejected")
        if self._problem is not None:
            detail = self._problem.detail
            await self.reject_invalid()
            raise HandshakeError(f"cannot accept a request that is not a WebSocket upgrade: {detail}")
        if subprotocol is not None and subprotocol not in self.proposed_subprotocols:
            raise ValueError(f"subprotocol {subprotocol!r} was not proposed by the client")
        if self._nursery is None:
            raise RuntimeError("request is not bound to a nursery")
        self._answered = True
        assert self._key is not None
        extension_header, extension = negotiate_server_extensions(
            self._parsed.headers, self._options.compression, self._options.max_message_size
        )
        # The application's headers first, then the protocol's: the order
        # trio-websocket's clients see in handshake_headers.
        headers = [(_encode(name), _encode(value)) for name, value in extra_headers or []]
        headers += [
            (b"Upgrade", b"websocket"),
            (b"Connection", b"Upgrade"),
            (b"Sec-WebSocket-Accept", accept_key(self._key)),
        ]
        if subprotocol is not None:
            headers.append((b"Sec-WebSocket-Protocol", subprotocol.encode("ascii")))
        if extension_header is not None:
            headers.append((b"Sec-WebSocket-Extensions", extension_header))
        if extra_headers:
            # The application's headers need h11's validation.
            try:
                data = self._parsed.h11_connection.send(h11.InformationalResponse(status_code=101, headers=headers))
            except h11.LocalProtocolError as err:
                await trio.aclose_forcefully(self._stream)
                raise ValueError(f"invalid response header: {err}") from err
        else:
            # Only our own headers, valid by construction (the subprotocol is
            # one the client's own, h11-checked header offered): serialise
            # them directly, byte for byte what h11 writes.
            data = _switching_protocols(headers)
        try:
            assert data is not None
            sock = plain_socket(self._stream)
            if sock is None:
                await self._stream.send_all(data)
            else:
                await write_socket(sock, data)
        except TRANSPORT_ERRORS as err:
            await trio.aclose_forcefully(self._stream)
            raise HandshakeError(f"client went away during the handshake: {err}") from err
        except BaseException:
            await trio.aclose_forcefully(self._stream)
            raise
        core = ProtocolCore(is_client=False, extension=extension, max_message_size=self._options.max_message_size)
        connection = WebSocketConnection(
            self._stream,
            core,
            options=self._options,
            path=self.path,
            subprotocol=subprotocol,
            # The parsed list itself, not a copy: an idle connection holds one.
            handshake_headers=self._parsed.headers,
            logger=self._logger,
            trailing_data=self._trailing_data,
        )
        connection._start(self._nursery)
        self._connection = connection
        if self._on_accept is not None:
            self._on_accept(connection)
        self._logger.debug(
            "accepted %s (subprotocol=%s, compression=%s)", self.path, subprotocol, extension is not None
        )
        return connection

    async def reject_invalid(self) -> None:
        """Answer a request that is not a valid upgrade with the status it deserves.

        That is 426 for a plain HTTP request, 405 for another method than GET,
        400 for a bad key, and so on. Does nothing for a valid upgrade request.
        """
        if self._problem is not None and not self._answered:
            problem = self._problem
            await self.reject(problem.status, extra_headers=problem.headers, body=problem.detail.encode())

    async def reject(
        self,
        status_code: int,
        *,
        extra_headers: HeaderPairs | None = None,
        body: bytes | None = None,
    ) -> None:
        """Answer the request with an HTTP response and close the transport.

        Any status may be used: 401 or 403 to refuse, 200 to answer a health
        check on a plain HTTP request.

        Args:
            status_code: the HTTP status code (200-599).
            extra_headers: more response headers.
            body: the response body (at most 1 MiB).

        Raises:
            HandshakeError: when the request was already answered.
            ValueError: for a status outside 200-599, a body over 1 MiB, or an
                invalid header.

        Cancelling closes the transport. Call it once, from one task.
        """
        if self._answered:
            raise HandshakeError("this request was already accepted or rejected")
        if not 200 <= status_code <= 599:
            raise ValueError(f"status_code must be between 200 and 599, not {status_code}")
        body = body or b""
        if len(body) > _MAX_REJECT_BODY:
            raise ValueError(f"body of {len(body):,} bytes exceeds {_MAX_REJECT_BODY:,} bytes")
        await self._answer(status_code, extra_headers, body)
        self._logger.debug("rejected %s with %d", self.path, status_code)

    async def respond(
        self,
        status_code: int,
        *,
        headers: HeaderPairs | None = None,
        body: bytes = b"",
    ) -> None:
        """Answer a plain HTTP request with a complete response and close the transport.

        Like :meth:`reject`, without its limit on the body's size: for
        answering plain HTTP requests (a health check, a long poll) rather
        than refusing a handshake. ``Content-Length`` and
        ``Connection: close`` are added; so is a plain-text ``Content-Type``
        when ``headers`` has none and the body is not empty.

        Args:
            status_code: the HTTP status code (200-599).
            headers: more response headers.
            body: the response body.

        Raises:
            HandshakeError: when the request was already answered.
            ValueError: for a status outside 200-599 or an invalid header.

        A client that went away is not an error: the answer is dropped.
        Cancelling closes the transport. Call it once, from one task.
        """
        if self._answered:
            raise HandshakeError("this request was already answered")
        if not 200 <= status_code <= 599:
            raise ValueError(f"status_code must be between 200 and 599, not {status_code}")
        await self._answer(status_code, headers, body)
        self._logger.debug("answered %s %s with %d", self.method, self.path, status_code)

    async def _answer(self, status_code: int, extra_headers: HeaderPairs | None, body: bytes) -> None:
        self._answered = True
        headers = [(_encode(name), _encode(value)) for name, value in extra_headers or []]
        await send_response(self._stream, self._parsed.h11_connection, status_code, headers, body)

    async def read_body(self, *, max_size: int | None = 2**20, timeout: float | None = 10.0) -> bytes:  # noqa: ASYNC109
        """Read the body of a plain HTTP request (``Content-Length`` or chunked).

        Args:
            max_size: the most bytes accepted, or None for no limit. A
                declared ``Content-Length`` over it fails before anything is read.
            timeout: seconds the whole body may take to arrive, or None.

        Returns:
            the body (empty for ``Content-Length: 0``).

        Raises:
            RequestBodyError: the request is left unanswered; answer it with
                the error's ``status_code``: 411 when the request declares
                neither ``Content-Length`` nor chunked encoding, 413 when the
                body exceeds ``max_size``, 400 when it is malformed or the
                client closed the connection before its end, 408 when it did
                not arrive within ``timeout``.
            HandshakeError: when the request was already answered or its
                body already read.

        Cancelling leaves the body partly read: answer the request instead
        of reading again. Call it once, from one task, and not while
        :meth:`wait_disconnected` runs.
        """
        if self._answered or self._body_read:
            raise HandshakeError("this request was already answered or its body already read")
        self._body_read = True
        headers = self._parsed.headers
        declared = header_values(headers, b"content-length")
        chunked = "chunked" in [t.lower() for t in split_comma_header(header_values(headers, b"transfer-encoding"))]
        if not declared and not chunked:
            raise RequestBodyError(411, f"{self.method} request without Content-Length: its body length is unknown")
        if declared and max_size is not None and int(declared[0]) > max_size:
            size = int(declared[0])
            raise RequestBodyError(413, f"request body of {size:,} bytes exceeds max_size={max_size:,}")
        conn = self._parsed.h11_connection
        if self._trailing_data:
            conn.receive_data(self._trailing_data)
            self._trailing_data = b""
        body = bytearray()
        with trio.move_on_after(math.inf if timeout is None else timeout):
            while True:
                try:
                    event = conn.next_event()
                except h11.RemoteProtocolError as err:
                    raise RequestBodyError(400, f"malformed request body: {err}") from err
                if event is h11.NEED_DATA:
                    try:
                        data = await self._stream.receive_some(self._options.receive_buffer_size)
                    except TRANSPORT_ERRORS as err:
                        raise RequestBodyError(400, f"the client went away while sending the body: {err}") from err
                    conn.receive_data(bytes(data))
                elif isinstance(event, h11.Data):
                    body += event.data
                    if max_size is not None and len(body) > max_size:
                        raise RequestBodyError(413, f"request body exceeds max_size={max_size:,} bytes")
                elif isinstance(event, h11.EndOfMessage):
                    return bytes(body)
                else:  # pragma: no cover - h11 yields nothing else inside a request body
                    raise RequestBodyError(400, f"unexpected {type(event).__name__} in the request body")
        raise RequestBodyError(408, f"the request body did not arrive within timeout={timeout:g} s")

    async def wait_disconnected(self) -> None:
        """Wait until the client closes its end of the connection, or the connection breaks.

        For a plain HTTP request held open before it is answered (a long
        poll): the server notices a client that left instead of answering a
        closed socket later. Whatever the client sends meanwhile (a body that
        was not read, a pipelined request) is discarded, since every answer
        closes the connection. Returns at once once the request was answered.

        Raises:
            HandshakeError: for an accepted WebSocket request (its
                connection reads the transport; use its ``wait_closed()``).

        Cancelling is safe. Not from two tasks at once, nor while
        :meth:`read_body` runs; answering from another task meanwhile is
        allowed (it makes this return).
        """
        if self._connection is not None:
            raise HandshakeError("an accepted WebSocket request's transport belongs to its connection")
        while not self._answered:
            try:
                data = await self._stream.receive_some(self._options.receive_buffer_size)
            except TRANSPORT_ERRORS:
                return
            if not data:
                return


def _switching_protocols(headers: list[tuple[bytes, bytes]]) -> bytes:
    """A 101 response head, as h11 serialises it (status line without a reason phrase)."""
    return b"HTTP/1.1 101 \r\n" + b"".join(b"%s: %s\r\n" % pair for pair in headers) + b"\r\n"


async def send_response(
    stream: trio.abc.Stream,
    conn: h11.Connection,
    status_code: int,
    headers: list[tuple[bytes, bytes]],
    body: bytes,
) -> None:
    """Send a complete HTTP response, then close the transport (errors ignored).

    Adds ``Content-Length``, ``Connection: close`` and, for a body without
    one, a plain-text ``Content-Type``.
    """
    headers = list(headers)
    if body and not any(name.lower() == b"content-type" for name, _ in headers):
        headers.append((b"Content-Type", b"text/plain; charset=utf-8"))
    headers += [(b"Content-Length", str(len(body)).encode()), (b"Connection", b"close")]
    try:
        data = conn.send(h11.Response(status_code=status_code, headers=headers))
        assert data is not None
        data += conn.send(h11.Data(data=body)) or b"" if body else b""
        data += conn.send(h11.EndOfMessage()) or b""
    except h11.LocalProtocolError as err:
        await trio.aclose_forcefully(stream)
        raise ValueError(f"invalid response: {err}") from err
    try:
        await stream.send_all(data)
    except TRANSPORT_ERRORS:
        pass
    finally:
        await trio.aclose_forcefully(stream)


async def send_problem(stream: trio.abc.Stream, problem: HandshakeProblem) -> None:
    """Answer a request we could not even parse, without h11's request state."""
    body = problem.detail.encode("utf-8")
    conn = h11.Connection(h11.SERVER)
    # h11 will not send a response before it has seen a request; tell it one
    # arrived so that it serialises (and validates) our answer.
    conn.receive_data(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    conn.next_event()
    await send_response(stream, conn, problem.status, problem.headers, body)


async def read_request(
    stream: trio.abc.Stream,
    options: ConnectionOptions,
    logger: ConnectionLogger,
) -> WebSocketRequest | None:
    """Read and check an opening handshake request from ``stream``.

    Returns:
        the request, or None when the client sent garbage or went away (the
        error response, if any, has been sent and the transport closed).
    """
    reader = HeadReader(options.max_handshake_line, options.max_handshake_headers)
    sock = plain_socket(stream)
    size = options.receive_buffer_size
    try:
        while True:
            try:
                data = await (stream.receive_some(size) if sock is None else read_socket(sock, size))
            except TRANSPORT_ERRORS as err:
                logger.debug("client went away during the handshake: %r", err)
                await trio.aclose_forcefully(stream)
                return None
            if not data:
                if reader.buffered:
                    await send_problem(stream, HandshakeProblem(400, "truncated request"))
                else:
                    await trio.aclose_forcefully(stream)
                return None
            if not reader.buffered and data[:1] == b"\x16":
                # A TLS ClientHello (record type 22) on a plain-text port: fail
                # at once instead of waiting for a request line that never comes.
                raise HandshakeProblem(400, "TLS handshake received on a plain-text (ws://) port")
            result = reader.feed(bytes(data))
            if result is not None:
                break
        head, trailing = result
        parsed = parse_request_head(head)
    except HandshakeProblem as problem:
        logger.info("bad handshake request: %s", problem)
        await send_problem(stream, problem)
        return None
    key: bytes | None = None
    upgrade_problem: HandshakeProblem | None = None
    try:
        key = check_upgrade_request(parsed)
    except HandshakeProblem as err:
        upgrade_problem = err
    return WebSocketRequest(
        stream,
        parsed,
        key=key,
        problem=upgrade_problem,
        trailing_data=trailing,
        options=options,
        logger=logger,
    )
