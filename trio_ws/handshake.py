"""The opening handshake, without I/O (RFC 6455 §4).

The server side reads the request head with :class:`HeadReader`, which enforces
the line-length and header-count limits *while bytes arrive* (so a client can
never make us buffer an unbounded head), then parses it with h11 and checks it
with :func:`check_upgrade_request`. The client side builds its request with
:func:`build_client_request` and checks the answer with
:func:`check_client_response`. Extension negotiation lives in
:mod:`trio_ws.compression`.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import h11

from ._deprecated import alias_getattr
from .compression import (
    EXTENSION_NAME,
    Deflate,
    DeflateExtension,
    ExtensionNegotiationError,
    client_finalize,
    client_offer,
    parse_extension_header,
    server_accept,
)
from .errors import HandshakeError

__all__ = [
    "WEBSOCKET_GUID",
    "RawHeaders",
    "HandshakeProblem",
    "HeadReader",
    "ParsedRequest",
    "accept_key",
    "generate_key",
    "parse_request_head",
    "check_upgrade_request",
    "negotiate_server_extensions",
    "build_client_request",
    "check_client_response",
    "check_switching_headers",
    "header_values",
    "split_comma_header",
]

#: RFC 6455 §1.3: appended to the client's key before hashing.
WEBSOCKET_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

#: Header fields as they travel: ``(name, value)`` byte pairs, in order. (The
#: app layer's :class:`trio_ws.app.Headers` is a case-insensitive mapping.)
RawHeaders = list[tuple[bytes, bytes]]


class HandshakeProblem(Exception):
    """The request cannot be upgraded; a server answers it with this HTTP status.

    Only the server side raises it: a client that finds the server's answer
    invalid raises :class:`~trio_ws.HandshakeError` itself.

    Attributes:
        status: the HTTP status code to answer with.
        detail: a human-readable explanation, sent as the response body.
        headers: extra response headers (for example ``Sec-WebSocket-Version``).
    """

    def __init__(self, status: int, detail: str, headers: RawHeaders | None = None) -> None:
        super().__init__(f"{status}: {detail}")
        self.status = status
        self.detail = detail
        self.headers = headers or []


def generate_key() -> bytes:
    """A fresh random ``Sec-WebSocket-Key`` (16 random bytes, base64)."""
    return base64.b64encode(os.urandom(16))


def accept_key(key: bytes) -> bytes:
    """The ``Sec-WebSocket-Accept`` value that answers ``key`` (RFC 6455 §4.2.2)."""
    return base64.b64encode(hashlib.sha1(key + WEBSOCKET_GUID).digest())


def header_values(headers: Iterable[tuple[bytes, bytes]], name: bytes) -> list[bytes]:
    """All values of header ``name`` (lower-case), in order."""
    return [value for key, value in headers if key.lower() == name]


def split_comma_header(values: Iterable[bytes]) -> list[str]:
    """Split comma-separated header values into stripped tokens."""
    tokens: list[str] = []
    for value in values:
        tokens.extend(token.strip() for token in value.decode("latin-1").split(",") if token.strip())
    return tokens


class HeadReader:
    """Accumulate an HTTP head from received bytes, enforcing size limits.

    Args:
        max_line: the longest line accepted, in bytes.
        max_headers: the most header lines accepted.
    """

    def __init__(self, max_line: int, max_headers: int) -> None:
        self._max_line = max_line
        self._max_headers = max_headers
        self._buffer = bytearray()
        self._checked = 0  # bytes of complete lines already checked
        self._lines = 0

    def feed(self, data: bytes) -> tuple[bytes, bytes] | None:
        """Add received bytes.

        Returns:
            ``(head, trailing)`` once the blank line that ends the head has
            arrived (``trailing`` is whatever followed it), otherwise None.

        Raises:
            HandshakeProblem: 414 when the request line is too long, 431 when a
                header line is too long or there are too many headers.
        """
        self._buffer += data
        while True:
            end = self._buffer.find(b"\n", self._checked)
            if end < 0:
                if len(self._buffer) - self._checked > self._max_line:
                    self._too_long()
                return None
            line_length = end - self._checked
            if line_length > self._max_line + 1:  # +1 for the CR
                self._too_long()
            line = self._buffer[self._checked : end].rstrip(b"\r")
            self._checked = end + 1
            if not line:
                if self._lines == 0:
                    continue  # RFC 9112 §2.2: ignore leading empty lines
                head = bytes(self._buffer[: self._checked])
                trailing = bytes(self._buffer[self._checked :])
                return head, trailing
            self._lines += 1
            if self._lines - 1 > self._max_headers:
                raise HandshakeProblem(431, f"more than {self._max_headers} header lines")

    def _too_long(self) -> None:
        if self._lines == 0:
            raise HandshakeProblem(414, f"request line longer than {self._max_line} bytes")
        raise HandshakeProblem(431, f"header line longer than {self._max_line} bytes")

    @property
    def buffered(self) -> int:
        """How many bytes are held."""
        return len(self._buffer)


@dataclass
class ParsedRequest:
    """An HTTP request head, parsed and validated.

    :attr:`h11_connection` is server-side h11 state that has received the
    head; responses other than the 101 are serialised through it.
    """

    method: bytes
    target: bytes
    http_version: bytes
    headers: RawHeaders
    _h11: h11.Connection | None = field(default=None, repr=False)

    @property
    def h11_connection(self) -> h11.Connection:
        """h11's server state after this request (made on first use).

        A head read by :func:`_fast_parse` is not kept (an idle connection
        would hold it): it is written again from the parsed fields, which h11
        reads as it would have read the original.
        """
        if self._h11 is None:
            lines = [b"%s %s HTTP/%s" % (self.method, self.target, self.http_version)]
            lines += [b"%s: %s" % pair for pair in self.headers]
            self._h11 = _h11_parse(b"\r\n".join(lines) + b"\r\n\r\n")[1]
        return self._h11


# RFC 9110 §5.6.2 (token) and §5.5 (field values), as strict as h11's rules or
# stricter: a head these do not match whole goes to h11, which decides.
_TOKEN = rb"[-!#$%&'*+.^_`|~0-9a-zA-Z]+"
_REQUEST_LINE = re.compile(rb"(" + _TOKEN + rb") ([\x21-\x7e]+) HTTP/(1\.[01])")
_FIELD_VCHAR = rb"[\x21-\x7e\x80-\xff]"
_HEADER_LINE = re.compile(
    rb"(" + _TOKEN + rb"):[ \t]*((?:" + _FIELD_VCHAR + rb"+(?:[ \t]+" + _FIELD_VCHAR + rb"+)*)?)[ \t]*"
)
#: Headers whose rules (framing of a body) only h11 applies.
_BODY_HEADERS = (b"content-length", b"transfer-encoding")
#: The lower-case names a handshake usually carries, shared by every request
#: that holds them instead of one copy per connection.
_COMMON_NAMES = {
    name: name
    for name in (
        b"host",
        b"upgrade",
        b"connection",
        b"sec-websocket-key",
        b"sec-websocket-version",
        b"sec-websocket-extensions",
        b"sec-websocket-protocol",
        b"origin",
        b"user-agent",
        b"cookie",
        b"authorization",
        b"pragma",
        b"cache-control",
        b"accept-encoding",
        b"accept-language",
    )
}


def _fast_parse(head: bytes) -> ParsedRequest | None:
    """Parse a plain, well-formed request head; None for anything else.

    Handshakes are nearly always such heads (CRLF line ends, no body, one
    Host header, no folded lines). Everything this accepts, h11 accepts with
    the same result (method, target, version, lower-case names, values without
    surrounding whitespace); everything else is left to h11, so the answer to
    an unusual or malformed head (a 400 with h11's reason) is unchanged.
    """
    if not head.endswith(b"\r\n\r\n"):
        return None
    lines = head[:-4].split(b"\r\n")
    request_line = _REQUEST_LINE.fullmatch(lines[0])
    if request_line is None:
        return None
    headers: RawHeaders = []
    hosts = 0
    for line in lines[1:]:
        match = _HEADER_LINE.fullmatch(line)
        if match is None:
            return None
        name = match.group(1).lower()
        name = _COMMON_NAMES.get(name, name)
        if name in _BODY_HEADERS:
            return None
        if name == b"host":
            hosts += 1
        headers.append((name, match.group(2)))
    if hosts != 1:
        return None
    method, target, version = request_line.groups()
    return ParsedRequest(method, target, version, headers)


def _h11_parse(head: bytes) -> tuple[h11.Request, h11.Connection]:
    conn = h11.Connection(h11.SERVER, max_incomplete_event_size=len(head) + 1)
    conn.receive_data(head)
    try:
        event = conn.next_event()
    except h11.RemoteProtocolError as err:
        raise HandshakeProblem(err.error_status_hint, f"malformed request: {err}") from err
    if not isinstance(event, h11.Request):
        raise HandshakeProblem(400, "incomplete request")
    return event, conn


def parse_request_head(head: bytes) -> ParsedRequest:
    """Parse and validate a complete request head.

    Raises:
        HandshakeProblem: 400 when h11 finds the head malformed.
    """
    fast = _fast_parse(head)
    if fast is not None:
        return fast
    event, conn = _h11_parse(head)
    return ParsedRequest(
        method=event.method,
        target=event.target,
        http_version=event.http_version,
        headers=[(name, value) for name, value in event.headers],
        _h11=conn,
    )


def check_upgrade_request(request: ParsedRequest) -> bytes:
    """Check that ``request`` is a valid WebSocket upgrade (RFC 6455 §4.2.1).

    Returns:
        the client's ``Sec-WebSocket-Key``.

    Raises:
        HandshakeProblem: 405, 426, 505 or 400 with the reason.
    """
    headers = request.headers
    upgrade = [token.lower() for token in split_comma_header(header_values(headers, b"upgrade"))]
    connection = [token.lower() for token in split_comma_header(header_values(headers, b"connection"))]
    if "websocket" not in upgrade or "upgrade" not in connection:
        raise HandshakeProblem(
            426,
            "this endpoint only speaks WebSocket: send an Upgrade: websocket request",
            [(b"Upgrade", b"websocket"), (b"Connection", b"Upgrade")],
        )
    if request.method != b"GET":
        raise HandshakeProblem(405, "a WebSocket handshake must use GET", [(b"Allow", b"GET")])
    if request.http_version != b"1.1":
        raise HandshakeProblem(505, "a WebSocket handshake needs HTTP/1.1")
    versions = split_comma_header(header_values(headers, b"sec-websocket-version"))
    if versions != ["13"]:
        raise HandshakeProblem(
            426,
            "unsupported Sec-WebSocket-Version (only 13 is supported)",
            [(b"Sec-WebSocket-Version", b"13")],
        )
    keys = header_values(headers, b"sec-websocket-key")
    if len(keys) != 1:
        raise HandshakeProblem(400, "missing or repeated Sec-WebSocket-Key")
    key = keys[0].strip()
    try:
        valid = len(base64.b64decode(key, validate=True)) == 16
    except ValueError:
        valid = False
    if not valid:
        raise HandshakeProblem(400, "Sec-WebSocket-Key is not 16 bytes in base64")
    return key


def negotiate_server_extensions(
    headers: Sequence[tuple[bytes, bytes]],
    settings: Deflate | None,
    max_message_size: int | None,
) -> tuple[bytes | None, DeflateExtension | None]:
    """Pick the first acceptable permessage-deflate offer, if compression is on.

    Returns:
        the ``Sec-WebSocket-Extensions`` response value (or None) and the codec.
    """
    if settings is None:
        return None, None
    for value in header_values(headers, b"sec-websocket-extensions"):
        try:
            offers = parse_extension_header(value.decode("latin-1"))
        except ExtensionNegotiationError:
            continue
        for name, params in offers:
            if name != EXTENSION_NAME:
                continue
            try:
                response, codec = server_accept(settings, params, max_message_size)
            except ExtensionNegotiationError:
                continue
            return response.encode("ascii"), codec
    return None, None


def _client_headers(
    host: str,
    key: bytes,
    subprotocols: Sequence[str] | None,
    compression: Deflate | None,
    extra_headers: Sequence[tuple[bytes | str, bytes | str]] | None,
) -> RawHeaders:
    """The upgrade request's header fields, Host first (where h11 writes it too)."""
    headers: RawHeaders = [
        (b"Host", host.encode("idna") if not host.isascii() else host.encode("ascii")),
        (b"Upgrade", b"websocket"),
        (b"Connection", b"Upgrade"),
        (b"Sec-WebSocket-Key", key),
        (b"Sec-WebSocket-Version", b"13"),
    ]
    if subprotocols:
        headers.append((b"Sec-WebSocket-Protocol", ", ".join(subprotocols).encode("ascii")))
    if compression is not None:
        headers.append((b"Sec-WebSocket-Extensions", client_offer(compression).encode("ascii")))
    headers.extend((_latin1(name), _latin1(value)) for name, value in extra_headers or [])
    return headers


def build_client_request(
    host: str,
    resource: str,
    *,
    subprotocols: Sequence[str] | None,
    extra_headers: Sequence[tuple[bytes | str, bytes | str]] | None,
    compression: Deflate | None,
) -> tuple[h11.Request, bytes]:
    """The client's upgrade request and the key it carries.

    Raises:
        ValueError: when ``extra_headers`` hold a header that is not valid HTTP.
    """
    key = generate_key()
    return _h11_request(resource, _client_headers(host, key, subprotocols, compression, extra_headers)), key


def _h11_request(resource: str, headers: RawHeaders) -> h11.Request:
    try:
        return h11.Request(method="GET", target=resource, headers=headers)
    except h11.LocalProtocolError as err:
        raise ValueError(f"invalid handshake request: {err}") from err


def _latin1(value: bytes | str) -> bytes:
    return value.encode("latin-1") if isinstance(value, str) else value


def check_client_response(
    response: h11.InformationalResponse,
    key: bytes,
    *,
    subprotocols: Sequence[str] | None,
    compression: Deflate | None,
    max_message_size: int | None,
) -> tuple[str | None, DeflateExtension | None]:
    """Validate the server's 101 answer as h11 read it; see :func:`check_switching_headers`."""
    return check_switching_headers(
        list(response.headers),
        key,
        subprotocols=subprotocols,
        compression=compression,
        max_message_size=max_message_size,
    )


def check_switching_headers(
    headers: RawHeaders,
    key: bytes,
    *,
    subprotocols: Sequence[str] | None,
    compression: Deflate | None,
    max_message_size: int | None,
) -> tuple[str | None, DeflateExtension | None]:
    """Validate the header fields of the server's 101 answer (RFC 6455 §4.1, client steps 1-6).

    Returns:
        the subprotocol the server chose (or None) and the compression codec.

    Raises:
        HandshakeError: with the reason when the answer is not a valid
            WebSocket acceptance (the client has no HTTP status to answer with).
    """
    upgrade = [token.lower() for token in split_comma_header(header_values(headers, b"upgrade"))]
    connection = [token.lower() for token in split_comma_header(header_values(headers, b"connection"))]
    if "websocket" not in upgrade or "upgrade" not in connection:
        raise HandshakeError("server's 101 response lacks Upgrade: websocket")
    accepts = header_values(headers, b"sec-websocket-accept")
    if accepts != [accept_key(key)]:
        raise HandshakeError("server's Sec-WebSocket-Accept does not match our key")
    chosen = split_comma_header(header_values(headers, b"sec-websocket-protocol"))
    subprotocol: str | None = None
    if chosen:
        if len(chosen) != 1 or not subprotocols or chosen[0] not in subprotocols:
            raise HandshakeError(f"server chose a subprotocol we did not offer: {chosen}")
        subprotocol = chosen[0]
    codec: DeflateExtension | None = None
    for value in header_values(headers, b"sec-websocket-extensions"):
        try:
            accepted = parse_extension_header(value.decode("latin-1"))
        except ExtensionNegotiationError as err:
            raise HandshakeError(f"invalid Sec-WebSocket-Extensions: {err}") from err
        for name, params in accepted:
            if name != EXTENSION_NAME or compression is None or codec is not None:
                raise HandshakeError(f"server accepted an extension we did not offer: {name}")
            try:
                codec = client_finalize(compression, params, max_message_size)
            except ExtensionNegotiationError as err:
                raise HandshakeError(f"invalid permessage-deflate answer: {err}") from err
    return subprotocol, codec


#: ``Headers`` was the name of :data:`RawHeaders`, the same as the app layer's
#: mapping class :class:`trio_ws.app.Headers`. Deprecated; goes in the next release.
__getattr__ = alias_getattr(__name__, {"Headers": ("trio_ws.handshake.RawHeaders", RawHeaders)})
