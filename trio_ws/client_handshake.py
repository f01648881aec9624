"""The client's side of the opening handshake over a stream (RFC 6455 §4.1).

:func:`client_handshake` sends the upgrade request and reads the answer. The
usual exchange is read without h11: a request made only of our own header
fields is written directly (:func:`encode_client_request`), and a plain
``101`` answer is parsed directly (:func:`parse_switching_response`), the way
the server reads plain request heads. Anything else goes to h11, which then
reads every byte received so far: an unusual ``101`` (folded or bare-LF lines,
odd characters, body headers), another status (a rejection, ``100
Continue``), a head that is malformed or over the size limit, and any request
with the caller's ``extra_headers`` (h11 validates those). The answer to such
input is therefore exactly h11's, as before.
"""

from __future__ import annotations

import re
import ssl
from collections.abc import Sequence
from dataclasses import dataclass, field

import h11
import trio

from .compression import Deflate
from .connection import WebSocketConnection
from .errors import TRANSPORT_ERRORS, ConnectionRejected, HandshakeError, TLSHandshakeError
from .handshake import (
    _BODY_HEADERS,
    _COMMON_NAMES,
    _FIELD_VCHAR,
    _HEADER_LINE,
    RawHeaders,
    _client_headers,
    _h11_request,
    check_switching_headers,
    generate_key,
)
from .log import ConnectionLogger, client_logger, next_connection_id
from .options import ConnectionOptions
from .plainsocket import plain_socket, read_socket, write_socket
from .protocol import ProtocolCore

__all__ = ["ClientRequest", "client_handshake", "encode_client_request", "parse_switching_response"]

HeaderPairs = Sequence[tuple[bytes | str, bytes | str]]
#: The most of a rejection's body that is kept.
MAX_REJECTION_BODY = 2**16

#: RFC 9112 §3.2: a request target is visible ASCII (h11's rule).
_REQUEST_TARGET = re.compile(rb"[\x21-\x7e]+")
#: A field value as the server's head parser reads it (stricter than h11's rule).
_FIELD_VALUE = re.compile(rb"(?:" + _FIELD_VCHAR + rb"+(?:[ \t]+" + _FIELD_VCHAR + rb"+)*)?")
#: A 101 status line, reason phrase optional (stricter than h11's rule).
_STATUS_LINE_101 = re.compile(rb"HTTP/1\.1 101(?: [\t\x20-\x7e\x80-\xff]*)?")
#: Where a head ends: h11 also takes a bare LF as a line end.
_BLANK_LINE = re.compile(rb"\n\r?\n")
_SWITCHING = b"HTTP/1.1 101"


@dataclass
class ClientRequest:
    """An upgrade request ready to send.

    Attributes:
        data: the request head, byte for byte what h11 writes for it.
        key: the ``Sec-WebSocket-Key`` it carries.
        resource: the request target.
        headers: its header fields, in order.
    """

    data: bytes
    key: bytes
    resource: str
    headers: RawHeaders
    _h11: h11.Connection | None = field(default=None, repr=False)

    def h11_connection(self, max_incomplete_event_size: int) -> h11.Connection:
        """h11's client state after sending this request (made on first use), to read an unusual answer."""
        if self._h11 is None:
            self._h11 = h11.Connection(h11.CLIENT, max_incomplete_event_size=max_incomplete_event_size)
            self._h11.send(_h11_request(self.resource, self.headers))
        return self._h11


def encode_client_request(
    host: str,
    resource: str,
    *,
    subprotocols: Sequence[str] | None,
    extra_headers: HeaderPairs | None,
    compression: Deflate | None,
    max_incomplete_event_size: int,
) -> ClientRequest:
    """The client's upgrade request as bytes.

    A request made only of our own fields, with a plain target and plain
    values, is written directly; any other is validated and written by h11.

    Raises:
        ValueError: when a header or the target is not valid HTTP.
    """
    key = generate_key()
    headers = _client_headers(host, key, subprotocols, compression, extra_headers)
    plain = (
        not extra_headers
        and resource.isascii()
        and _REQUEST_TARGET.fullmatch(resource.encode("ascii")) is not None
        and all(_FIELD_VALUE.fullmatch(value) is not None for _, value in headers)
    )
    if plain:
        # h11's serialisation: request line, the fields in order (Host is
        # first), a blank line.
        lines = [b"GET %s HTTP/1.1\r\n" % resource.encode("ascii")]
        lines += [b"%s: %s\r\n" % pair for pair in headers]
        lines.append(b"\r\n")
        return ClientRequest(b"".join(lines), key, resource, headers)
    conn = h11.Connection(h11.CLIENT, max_incomplete_event_size=max_incomplete_event_size)
    data = conn.send(_h11_request(resource, headers))
    assert data is not None
    return ClientRequest(data, key, resource, headers, conn)


def parse_switching_response(head: bytes) -> RawHeaders | None:
    """The header fields of a plain, well-formed ``101`` response head; None for anything else.

    ``head`` ends with its blank line. Only heads that h11 reads the same way
    are accepted (CRLF line ends, HTTP/1.1, no folded lines, no body framing
    fields): names lower-case, values without surrounding whitespace.
    """
    if not head.endswith(b"\r\n\r\n"):
        return None
    lines = head[:-4].split(b"\r\n")
    if _STATUS_LINE_101.fullmatch(lines[0]) is None:
        return None
    headers: RawHeaders = []
    for line in lines[1:]:
        match = _HEADER_LINE.fullmatch(line)
        if match is None:
            return None
        name = match.group(1).lower()
        if name in _BODY_HEADERS:
            return None
        headers.append((_COMMON_NAMES.get(name, name), match.group(2)))
    return headers


async def client_handshake(
    stream: trio.abc.Stream,
    host: str,
    resource: str,
    *,
    subprotocols: Sequence[str] | None,
    extra_headers: HeaderPairs | None,
    options: ConnectionOptions,
) -> WebSocketConnection:
    """Send the upgrade request on ``stream`` and build the connection (not started).

    Raises:
        HandshakeError: when the answer is not a valid acceptance, or the
            transport fails or closes first.
        TLSHandshakeError: when a TLS server closes or fails before answering.
        ConnectionRejected: when the server answers with another status than 101.
        ValueError: when ``extra_headers`` (or the resource) are not valid HTTP.
    """
    limit = options.max_handshake_line * (options.max_handshake_headers + 1)
    request = encode_client_request(
        host,
        resource,
        subprotocols=subprotocols,
        extra_headers=extra_headers,
        compression=options.compression,
        max_incomplete_event_size=limit,
    )
    received = bytearray()
    trailing = b""
    headers: RawHeaders | None = None
    sock = plain_socket(stream)
    size = options.receive_buffer_size
    try:
        if sock is None:
            await stream.send_all(request.data)
        else:
            await write_socket(sock, request.data)
        while headers is None:
            chunk = await (stream.receive_some(size) if sock is None else read_socket(sock, size))
            if not chunk:
                _closed_before_answer(stream, answered=bool(received), informational=None)
            searched = max(0, len(received) - 2)  # a blank line may straddle two reads
            received += chunk
            if not _SWITCHING.startswith(received[: len(_SWITCHING)]):
                break  # not a 101: h11 reads it
            blank = _BLANK_LINE.search(received, searched)
            if blank is None:
                if len(received) > limit:
                    break  # h11 refuses it
                continue
            headers = parse_switching_response(bytes(received[: blank.end()]))
            if headers is None:
                break  # an unusual head: h11 decides
            trailing = bytes(received[blank.end() :])
        if headers is None:
            conn = request.h11_connection(limit)
            headers, trailing = await _h11_answer(stream, conn, bytes(received), options)
    except TRANSPORT_ERRORS as err:
        if isinstance(err.__cause__, ssl.SSLError):
            # TLS 1.3: a server that refuses our client certificate says so
            # after our side of the TLS handshake, on the first read.
            raise TLSHandshakeError(f"TLS failed during the handshake: {err.__cause__}") from err
        raise HandshakeError(f"connection failed during the handshake: {err}") from err
    subprotocol, extension = check_switching_headers(
        headers,
        request.key,
        subprotocols=subprotocols,
        compression=options.compression,
        max_message_size=options.max_message_size,
    )
    core = ProtocolCore(is_client=True, extension=extension, max_message_size=options.max_message_size)
    logger = ConnectionLogger(client_logger, next_connection_id())
    logger.debug("connected to %s%s (subprotocol=%s)", host, resource, subprotocol)
    return WebSocketConnection(
        stream,
        core,
        options=options,
        path=resource,
        subprotocol=subprotocol,
        handshake_headers=headers,
        logger=logger,
        trailing_data=trailing,
    )


def _closed_before_answer(
    stream: trio.abc.Stream, *, answered: bool, informational: h11.InformationalResponse | None
) -> None:
    """Raise the error for a server that closed the connection before its final answer."""
    if isinstance(stream, trio.SSLStream) and not answered:
        # A trio or TLS 1.3 server that refuses our client certificate
        # closes here, after our TLS handshake.
        raise TLSHandshakeError(
            "server closed the TLS connection without an HTTP answer "
            "(it may require a client certificate, or refuse ours)"
        )
    if informational is not None:
        # The server's only answer was this 1xx: a refusal, as trio-websocket
        # reports it (a 1xx has no body).
        raise ConnectionRejected(informational.status_code, list(informational.headers), None)
    raise HandshakeError("server closed the connection during the handshake")


async def _h11_answer(
    stream: trio.abc.Stream, conn: h11.Connection, received: bytes, options: ConnectionOptions
) -> tuple[RawHeaders, bytes]:
    """Read the answer with h11, starting with the bytes already ``received``.

    Returns:
        the 101's header fields and the bytes that followed its head.
    """
    conn.receive_data(received)
    answered = bool(received)
    informational: h11.InformationalResponse | None = None
    while True:
        try:
            event = conn.next_event()
        except h11.RemoteProtocolError as err:
            raise HandshakeError(f"invalid handshake response: {err}") from err
        if event is h11.NEED_DATA:
            chunk = await stream.receive_some(options.receive_buffer_size)
            if not chunk:
                _closed_before_answer(stream, answered=answered, informational=informational)
            answered = True
            conn.receive_data(bytes(chunk))
        elif isinstance(event, h11.InformationalResponse):
            if event.status_code == 101:
                trailing, _ = conn.trailing_data
                return list(event.headers), bytes(trailing)
            # Another 1xx (100 Continue, 103 Early Hints): HTTP says to read
            # on for the final response (RFC 6455 §4.1 defers to it).
            informational = event
        elif isinstance(event, h11.Response):
            body = await _read_body(stream, conn, options.receive_buffer_size)
            raise ConnectionRejected(event.status_code, list(event.headers), body)


async def _read_body(stream: trio.abc.Stream, conn: h11.Connection, receive_size: int) -> bytes:
    """Read a rejection's body, up to 64 KiB (the rest is dropped)."""
    body = bytearray()
    while len(body) < MAX_REJECTION_BODY:
        try:
            event = conn.next_event()
        except h11.RemoteProtocolError:
            break
        if event is h11.NEED_DATA:
            try:
                chunk = await stream.receive_some(receive_size)
            except TRANSPORT_ERRORS:
                break
            if not chunk:
                break
            conn.receive_data(bytes(chunk))
        elif isinstance(event, h11.Data):
            body += event.data
        else:
            break
    return bytes(body[:MAX_REJECTION_BODY])
