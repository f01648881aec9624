"""Reconnection for the core client: :func:`connect_forever` and its policy.

Theory of operation. :func:`connect_forever` is an async context manager
around an async iterator of connections::

    async with trio_ws.connect_forever("wss://example.com/feed") as connections:
        async for ws in connections:
            try:
                async for message in ws:
                    ...
            except trio_ws.ConnectionClosed:
                continue  # the next iteration decides whether to reconnect

Each step of the iteration first looks at how the previous connection ended
(:func:`should_reconnect_after`), then connects, retrying the failures that
another attempt may fix (:func:`is_retryable`) after a delay drawn from the
:class:`Backoff` policy. The connections' background tasks run in a nursery
that the ``async with`` block owns, so nothing outlives the block; that is
why this is not a bare ``async for`` as in websockets: an async generator
that yields inside a nursery is left to the garbage collector when the loop
is left with ``break``, which Trio forbids.
"""

from __future__ import annotations

import datetime
import email.utils
import logging
import math
import random
import ssl
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import trio

from .client import HeaderPairs, _connect
from .close import (
    ABNORMAL_CLOSURE,
    GOING_AWAY,
    INTERNAL_ERROR,
    OK_CLOSE_CODES,
    SERVICE_RESTART,
    TRY_AGAIN_LATER,
    CloseReason,
)
from .connection import WebSocketConnection
from .endpoint import parse_websocket_url
from .errors import (
    TRANSPORT_ERRORS,
    ConnectionClosed,
    ConnectionRejected,
    ConnectionTimeout,
    HandshakeError,
    TLSHandshakeError,
)
from .options import ConnectionOptions, document_options
from .proxy import PROXY_DOC, ProxyArgument, ProxyError
from .scopes import background_tasks

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from .options import ConnectionOptionsDict

__all__ = [
    "Backoff",
    "Connections",
    "RETRY_CLOSE_CODES",
    "connect_forever",
    "is_retryable",
    "retry_after",
    "should_reconnect_after",
]

logger = logging.getLogger("trio_ws.client")

#: Close codes after which a connection is opened again: the server went away
#: or restarts (1001, 1012), the connection broke (1006), or the server had a
#: transient problem (1011, 1013). Every other code but 1000/1005 ends the
#: iteration with :class:`~trio_ws.ConnectionClosedError` (1008, a policy
#: violation, would only be refused again).
RETRY_CLOSE_CODES = frozenset({GOING_AWAY, ABNORMAL_CLOSURE, INTERNAL_ERROR, SERVICE_RESTART, TRY_AGAIN_LATER})

#: The longest ``Retry-After`` honoured, in seconds (a server cannot park a
#: client for a day).
MAX_RETRY_AFTER = 3600.0


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff with full jitter.

    The n-th consecutive retry (n = 0, 1, ...) waits a uniformly random time
    between 0 and ``min(max_delay, initial_delay * factor ** n)`` ("full
    jitter": clients that lost the same server do not come back in step).
    The count starts again after a connection that stayed open at least
    ``reset_after`` seconds.

    Attributes:
        initial_delay: the cap of the first delay, in seconds. Default 1.
        factor: how much the cap grows per retry. Default 2.
        max_delay: the largest delay, in seconds. Default 60.
        reset_after: seconds a connection must live for the next failure to
            count as the first again. Default 60.
        rng: the random source (``random.Random``); inject a seeded one to
            make delays repeatable.
    """

    initial_delay: float = 1.0
    factor: float = 2.0
    max_delay: float = 60.0
    reset_after: float = 60.0
    rng: random.Random = field(default_factory=random.Random, compare=False, repr=False)

    def __post_init__(self) -> None:
        for name in ("initial_delay", "max_delay", "reset_after"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and not isinstance(value, bool)) or value < 0 or math.isnan(value):
                raise ValueError(f"{name} must be a number of seconds >= 0, not {value!r}")
        if not isinstance(self.factor, (int, float)) or isinstance(self.factor, bool) or not self.factor >= 1:
            raise ValueError(f"factor must be >= 1, not {self.factor!r}")

    def cap(self, attempt: int) -> float:
        """The largest delay of retry number ``attempt`` (from 0)."""
        # Compare exponents rather than computing factor ** attempt, which
        # overflows after a few hundred retries.
        if self.initial_delay == 0:
            return 0.0
        if self.factor > 1 and attempt * math.log(self.factor) > math.log(self.max_delay / self.initial_delay + 1):
            return self.max_delay
        return min(self.max_delay, self.initial_delay * self.factor**attempt)

    def delay(self, attempt: int) -> float:
        """A random delay for retry number ``attempt``: uniform in ``[0, cap(attempt)]``."""
        return self.rng.uniform(0.0, self.cap(attempt))

    def delays(self) -> Iterator[float]:
        """The delays of consecutive retries, forever."""
        attempt = 0
        while True:
            yield self.delay(attempt)
            attempt += 1


def retry_after(error: BaseException) -> float | None:
    """The seconds a ``429``/``503`` rejection asks to wait (``Retry-After``), or None.

    Both forms of RFC 9110 §10.2.3 are read: a number of seconds and an HTTP
    date. The result is at most ``MAX_RETRY_AFTER`` (one hour).
    """
    if not isinstance(error, ConnectionRejected):
        return None
    for name, value in error.headers:
        if name.lower() != b"retry-after":
            continue
        text = value.decode("latin-1").strip()
        if text.isdigit():
            return min(float(text), MAX_RETRY_AFTER)
        try:
            when = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            return None
        seconds = (when - datetime.datetime.now(datetime.timezone.utc)).total_seconds()
        return min(max(seconds, 0.0), MAX_RETRY_AFTER)
    return None


def is_retryable(error: BaseException) -> bool:
    """Whether another attempt may succeed after ``error`` ended a connection attempt.

    Retried: network errors (``OSError``: refused, reset, unreachable, a name
    that does not resolve), :class:`~trio_ws.ConnectionTimeout`, TLS failures
    other than certificate verification, HTTP 5xx and 429. Not retried: other
    HTTP statuses (4xx: the request itself is refused), TLS certificate
    verification errors, and handshake responses that break the protocol. A
    :class:`~trio_ws.proxy.ProxyError` is retried when the proxy could not be
    reached or answered 5xx/429, not when it refused the login.
    """
    if isinstance(error, ConnectionRejected):
        return error.status_code >= 500 or error.status_code == 429
    if isinstance(error, ProxyError):
        return error.retryable
    if isinstance(error, TLSHandshakeError):
        return not error.verification_failed
    if isinstance(error, ConnectionTimeout):
        return True
    if isinstance(error, HandshakeError):
        return isinstance(error.__cause__, TRANSPORT_ERRORS)
    return isinstance(error, (OSError, trio.BrokenResourceError))


def should_reconnect_after(reason: CloseReason) -> bool:
    """Whether a connection that closed with ``reason`` is opened again.

    Returns:
        True for the codes of :data:`RETRY_CLOSE_CODES`, False for a normal
        close (1000, 1005).

    Raises:
        ConnectionClosedError: for every other code (1008 and the protocol
            errors): reconnecting would meet the same refusal.
    """
    if reason.code in RETRY_CLOSE_CODES:
        return True
    if reason.code in OK_CLOSE_CODES:
        return False
    raise ConnectionClosed.for_reason(reason)


class Connections:
    """The connections of :func:`connect_forever`; iterate with ``async for``.

    Not for concurrent use: one task iterates.
    """

    def __init__(
        self,
        nursery: trio.Nursery,
        url: str,
        ssl_context: ssl.SSLContext | None,
        *,
        subprotocols: Sequence[str] | None,
        extra_headers: HeaderPairs | None,
        backoff: Backoff,
        retry_first_attempt: bool,
        proxy: ProxyArgument,
        options: ConnectionOptions,
    ) -> None:
        self._proxy = proxy
        self._nursery = nursery
        self._url = url
        self._target = parse_websocket_url(url)
        if self._target.is_ssl:
            self._ssl_context: ssl.SSLContext | None = ssl_context or ssl.create_default_context()
        else:
            self._ssl_context = None
        self._subprotocols = subprotocols
        self._extra_headers = extra_headers
        self._backoff = backoff
        self._retry_first_attempt = retry_first_attempt
        self._options = options
        self._current: WebSocketConnection | None = None
        self._opened_at = 0.0
        self._attempt = 0
        self._ever_connected = False
        self._finished = False

    @property
    def connection(self) -> WebSocketConnection | None:
        """The connection the iteration yielded last, or None."""
        return self._current

    @property
    def attempts(self) -> int:
        """Consecutive failed attempts since the last healthy connection."""
        return self._attempt

    def __aiter__(self) -> Connections:
        return self

    async def __anext__(self) -> WebSocketConnection:
        """Close or judge the previous connection, then connect (with retries).

        Raises:
            StopAsyncIteration: when the previous connection closed normally
                (1000/1005), or the iteration was stopped.
            ConnectionClosedError: when it closed with a code not worth a
                retry (see :func:`should_reconnect_after`).
            HandshakeError: the error of an attempt that is not retried (see
                :func:`is_retryable`; a network error is a HandshakeError whose
                ``__cause__`` is the ``OSError``, as with :func:`open_websocket`); also
                the first attempt's error of a URL that never worked, unless
                ``retry_first_attempt`` is set.

        Cancelling is safe: the attempt in progress is abandoned and its
        transport closed.
        """
        if self._finished:
            raise StopAsyncIteration
        previous = self._current
        if previous is not None:
            self._current = None
            if previous.closed is None:
                # The caller asked for the next connection while this one was
                # open: close it and reconnect at once.
                await previous.aclose()
            else:
                try:
                    again = should_reconnect_after(previous.closed)
                except ConnectionClosed:
                    self._finished = True
                    raise
                if not again:
                    self._finished = True
                    raise StopAsyncIteration
                if trio.current_time() - self._opened_at >= self._backoff.reset_after:
                    self._attempt = 0
                await self._wait(f"connection to {self._url} closed ({previous.closed.code})", None)
        while True:
            try:
                connection = await _connect(
                    self._target.host,
                    self._target.port,
                    self._target.resource,
                    self._ssl_context,
                    self._subprotocols,
                    self._extra_headers,
                    self._options,
                    wrap_os_errors=True,
                    proxy=self._proxy,
                )
            except HandshakeError as error:
                first = not self._ever_connected and self._attempt == 0
                if not is_retryable(error) or (first and not self._retry_first_attempt):
                    self._finished = True
                    raise
                await self._wait(f"connecting to {self._url} failed: {error}", error, warn=first)
                continue
            connection._start(self._nursery)
            self._current = connection
            self._opened_at = trio.current_time()
            self._ever_connected = True
            return connection

    async def _wait(self, what: str, error: BaseException | None, *, warn: bool = False) -> None:
        delay = self._backoff.delay(self._attempt)
        asked = retry_after(error) if error is not None else None
        if asked is not None:
            delay = max(delay, asked)
        self._attempt += 1
        logger.log(
            logging.WARNING if warn else logging.INFO,
            "%s; retrying in %.2f s",
            what,
            delay,
            extra={"retry_delay": delay},
        )
        await trio.sleep(delay)

    async def aclose(self) -> None:
        """Stop the iteration and close the current connection (idempotent)."""
        self._finished = True
        current, self._current = self._current, None
        if current is not None:
            await current.aclose()


@asynccontextmanager
@document_options(
    ("subprotocols", "subprotocols to offer, in order of preference."),
    ("extra_headers", "more request headers, as ``(name, value)`` pairs."),
    ("proxy", PROXY_DOC),
    ("backoff", "the :class:`Backoff` policy between attempts (default: ``Backoff()``)."),
    (
        "retry_first_attempt",
        "retry the first attempt's retryable failures too (for a client started "
        "before its server). Default False: a URL that never worked raises its first error.",
    ),
)
async def connect_forever(
    url: str,
    ssl_context: ssl.SSLContext | None = None,
    *,
    subprotocols: Sequence[str] | None = None,
    extra_headers: HeaderPairs | None = None,
    proxy: ProxyArgument = True,
    backoff: Backoff | None = None,
    retry_first_attempt: bool = False,
    **options: Unpack[ConnectionOptionsDict],
) -> AsyncIterator[Connections]:
    """Connections to ``url``, opened again whenever one ends abnormally.

    ``async for ws in connections`` yields a connection; asking for the next
    one closes the previous one if it is still open, ends the loop if it
    closed normally (1000), and reconnects after the closes of
    :data:`RETRY_CLOSE_CODES`, waiting a :class:`Backoff` delay (and at least
    the ``Retry-After`` of a 429 or 503 answer). The block's end closes the
    current connection; its tasks end with the block. Each wait is logged on
    the ``trio_ws.client`` logger (WARNING for the first failed attempt, INFO
    after that), and the record's ``retry_delay`` attribute holds the delay in
    seconds, for a handler that shows the waits.

    Args:
        url: the server's ``ws://`` or ``wss://`` URL.
        ssl_context: the TLS context for ``wss://`` (default: a verifying one).

    Yields:
        the :class:`Connections` iterator.

    Raises:
        InvalidURL: when the URL is not a ws/wss URL.
        ConnectionClosedError: (from the iteration) after a close that is not retried.
        HandshakeError: (from the iteration) an attempt's error that is not
            retried: :class:`ConnectionRejected` for an HTTP status,
            :class:`TLSHandshakeError` for TLS, a plain HandshakeError (caused
            by the ``OSError``) when the server cannot be reached.

    Cancelling is safe at any point: a wait or an attempt stops at once and
    the current connection is closed within ``disconnect_timeout``.
    """
    parsed = ConnectionOptions.from_kwargs(**options)
    async with background_tasks() as nursery:
        connections = Connections(
            nursery,
            url,
            ssl_context,
            subprotocols=subprotocols,
            extra_headers=extra_headers,
            backoff=backoff or Backoff(),
            retry_first_attempt=retry_first_attempt,
            proxy=proxy,
            options=parsed,
        )
        try:
            yield connections
        finally:
            with trio.CancelScope(shield=True):
                await connections.aclose()
