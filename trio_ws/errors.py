"""The exceptions that trio_ws raises.

Every public call raises one of these (or ``ValueError``/``TypeError`` for bad
arguments); nothing from wsproto, h11 or trio's internals crosses the API.
"""

from __future__ import annotations

import ssl
from collections.abc import Sequence

import trio

from .close import CloseReason

__all__ = [
    "WebSocketError",
    "ConnectionClosed",
    "ConnectionClosedOK",
    "ConnectionClosedError",
    "HandshakeError",
    "TLSHandshakeError",
    "ConnectionRejected",
    "ConnectionTimeout",
    "RequestBodyError",
    "DisconnectionTimeout",
    "ConcurrencyError",
    "InvalidURL",
    "MessageTypeError",
]

#: What a Trio stream raises when its transport fails or was closed under it.
#: Internal, one definition for every layer: each maps these to one of the
#: exceptions below (``ConnectionClosed``, ``HandshakeError``...).
TRANSPORT_ERRORS = (trio.BrokenResourceError, trio.ClosedResourceError, OSError)


class WebSocketError(Exception):
    """Base class of every trio_ws exception."""


class ConnectionClosed(WebSocketError):
    """The connection is closed, or closing, so the operation cannot proceed.

    ``reason`` is the :class:`CloseReason` of the close: the code and reason the
    peer sent, the ones we sent, or 1006 (ABNORMAL_CLOSURE) when the transport
    ended without a close handshake. Use :meth:`for_reason` to get the right
    subclass: :class:`ConnectionClosedOK` for 1000, 1001 and 1005,
    :class:`ConnectionClosedError` for everything else.
    """

    def __init__(self, reason: CloseReason) -> None:
        super().__init__(reason)
        self.reason = reason

    @staticmethod
    def for_reason(reason: CloseReason) -> ConnectionClosed:
        """Build the subclass that matches ``reason``'s code."""
        if reason.is_ok:
            return ConnectionClosedOK(reason)
        return ConnectionClosedError(reason)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.reason!r})"

    def __str__(self) -> str:
        text = f"connection closed: {self.reason.code} ({self.reason.name})"
        if self.reason.reason:
            text += f" {self.reason.reason}"
        return text


class ConnectionClosedOK(ConnectionClosed):
    """The connection closed normally (1000, 1001 or 1005)."""


class ConnectionClosedError(ConnectionClosed):
    """The connection closed with an error code, or without a close handshake."""


class HandshakeError(WebSocketError):
    """The opening handshake failed."""


class TLSHandshakeError(HandshakeError):
    """The TLS handshake failed (before any HTTP was exchanged).

    The ``ssl`` error that caused it is the exception's ``__cause__`` chain;
    :attr:`verification_failed` tells a certificate the client refused (a
    wrong host name, an unknown authority, an expired certificate) from other
    TLS failures (the peer closed the connection, refused our client
    certificate, or spoke no TLS).
    """

    @property
    def verification_failed(self) -> bool:
        """True when our side refused the peer's certificate."""
        cause = self.__cause__
        while cause is not None:
            if isinstance(cause, ssl.SSLCertVerificationError):
                return True
            cause = cause.__cause__
        return False


class ConnectionRejected(HandshakeError):
    """The server answered the opening handshake with something other than 101.

    Attributes:
        status_code: the HTTP status code.
        headers: the response headers as a tuple of ``(name, value)`` bytes pairs.
        body: the response body (possibly empty), or None when none was read.
    """

    def __init__(
        self,
        status_code: int,
        headers: Sequence[tuple[bytes, bytes]],
        body: bytes | None,
    ) -> None:
        super().__init__(status_code, headers, body)
        self.status_code = status_code
        self.headers = tuple(headers)
        self.body = body

    def __repr__(self) -> str:
        return f"{type(self).__name__}<status_code={self.status_code}>"

    def __str__(self) -> str:
        return f"server rejected WebSocket connection: HTTP {self.status_code}"


class ConnectionTimeout(HandshakeError):
    """The connection or its opening handshake took longer than ``connect_timeout``."""


class RequestBodyError(HandshakeError):
    """A plain HTTP request's body could not be read (see :meth:`~trio_ws.WebSocketRequest.read_body`).

    The request is still unanswered: answer it with :attr:`status_code`.

    Attributes:
        status_code: the HTTP status that fits: 400 (malformed or cut short),
            408 (too slow), 411 (no declared length) or 413 (over the limit).
    """

    def __init__(self, status_code: int, message: str) -> None:
        super().__init__(message)
        self.status_code = status_code


class DisconnectionTimeout(WebSocketError):
    """The closing handshake took longer than ``disconnect_timeout``.

    The transport has been closed all the same when this is raised.
    """


class ConcurrencyError(WebSocketError, RuntimeError):
    """Two receives would have split one message between them.

    Raised by a :meth:`~trio_ws.WebSocketConnection.receive_stream` iteration
    whose message another receive (``get_message()`` or a second stream, in
    another task) took over mid-message: the stream stops with this error
    rather than go on yielding chunks of a later message.
    """


class InvalidURL(WebSocketError, ValueError):
    """A WebSocket URL could not be parsed, or its scheme is not ws/wss."""


class MessageTypeError(TypeError, ValueError):
    """A value that cannot be sent as a message.

    A ``TypeError``, and also a ``ValueError`` because that is what
    trio-websocket raises there: code written for either catches it.
    """
