"""WebSocket clients: ``open_websocket*`` context managers and ``connect_websocket*``.

The connection's reader and keepalive tasks run in the caller's nursery
(``connect_websocket``, ``wrap_client_stream``) or in a nursery that
``open_websocket`` opens around its block. The block itself runs outside that
nursery's error handling, so an exception raised in it comes out as itself,
never wrapped in an ExceptionGroup.
"""

from __future__ import annotations

import socket as stdlib_socket
import ssl
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

import trio

from .client_handshake import MAX_REJECTION_BODY, client_handshake
from .close import NORMAL_CLOSURE
from .connection import WebSocketConnection
from .endpoint import parse_websocket_url
from .errors import (
    ConnectionTimeout,
    DisconnectionTimeout,
    HandshakeError,
    TLSHandshakeError,
)
from .options import ConnectionOptions, document_options, seconds_or_inf
from .proxy import PROXY_DOC, ProxyArgument, ProxyURL, open_proxy_stream, resolve_proxy
from .scopes import background_tasks, leaves

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from .options import ConnectionOptionsDict

__all__ = [
    "open_websocket",
    "open_websocket_url",
    "open_websocket_unix",
    "connect_websocket",
    "connect_websocket_url",
    "connect_websocket_unix",
    "wrap_client_stream",
]

HeaderPairs = Sequence[tuple[bytes | str, bytes | str]]

_CLIENT_OPTION_DOCS = (
    ("subprotocols", "subprotocols to offer, in order of preference."),
    ("extra_headers", "more request headers, as ``(name, value)`` pairs."),
)
#: The options of the client entry points that connect over TCP.
_TCP_CLIENT_OPTION_DOCS = (*_CLIENT_OPTION_DOCS, ("proxy", PROXY_DOC))


def _root_cause(error: OSError) -> str:
    """The most specific message of a connection failure.

    trio's ``open_tcp_stream`` raises an OSError whose cause is an
    ExceptionGroup of the individual attempts; the first attempt's error
    ("Connection refused") is what a person wants to read.
    """
    cause = leaves(error.__cause__)[0] if error.__cause__ is not None else None
    if isinstance(cause, OSError) and cause.strerror:
        return cause.strerror
    return str(error)


def _host_header(host: str, port: int, is_ssl: bool) -> str:
    shown = f"[{host}]" if ":" in host and not host.startswith("[") else host
    return shown if port == (443 if is_ssl else 80) else f"{shown}:{port}"


def _url_ssl(is_ssl: bool, ssl_context: ssl.SSLContext | None) -> bool | ssl.SSLContext:
    """``use_ssl`` for a URL: a context (or True) for wss://; a context with ws:// is an error."""
    if is_ssl:
        return ssl_context or True
    if ssl_context is not None:
        raise ValueError("SSL context must be None for ws: URL scheme")
    return False


def _ssl_context(use_ssl: bool | ssl.SSLContext) -> ssl.SSLContext | None:
    if isinstance(use_ssl, ssl.SSLContext):
        return use_ssl
    if use_ssl is True:
        return ssl.create_default_context()
    if use_ssl is False:
        return None
    raise TypeError(f"`use_ssl` argument must be bool or ssl.SSLContext, not {use_ssl!r}")


def _ip_family(host: str) -> int | None:
    """The address family of an IPv4 or IPv6 address literal, None for a host name."""
    for family in (stdlib_socket.AF_INET, stdlib_socket.AF_INET6):
        try:
            stdlib_socket.inet_pton(family, host)
        except (OSError, ValueError):
            continue
        return family
    return None


async def _open_tcp(host: str, port: int) -> trio.SocketStream:
    """Open a TCP connection; an IP address is connected to directly.

    A host name goes through :func:`trio.open_tcp_stream` (name lookup and
    happy eyeballs over its addresses). An address literal has one target and
    needs no lookup, so the socket connects itself: that saves the nursery,
    the task and the cancel scopes ``open_tcp_stream`` spends per connection.
    A failure raises the same ``OSError`` (same message, the attempt's error
    as its cause).
    """
    family = _ip_family(host)
    if family is None:
        return await trio.open_tcp_stream(host, port)
    sock = trio.socket.socket(family, stdlib_socket.SOCK_STREAM)
    try:
        await sock.connect((host, port))
    except OSError as err:
        sock.close()
        shown = f"[{host}]" if family == stdlib_socket.AF_INET6 else host
        raise OSError(f"all attempts to connect to {shown}:{port} failed") from err
    except BaseException:
        sock.close()
        raise
    return trio.SocketStream(sock)


async def _open_transport(
    host: str, port: int, ssl_context: ssl.SSLContext | None, proxy: ProxyURL | None = None
) -> trio.abc.Stream:
    stream: trio.abc.Stream
    if proxy is None:
        stream = await _open_tcp(host, port)
    else:
        stream = await open_proxy_stream(proxy, host, port, max_response=MAX_REJECTION_BODY)
    if ssl_context is None:
        return stream
    tls = trio.SSLStream(stream, ssl_context, server_hostname=host, https_compatible=True)
    try:
        await tls.do_handshake()
    except trio.BrokenResourceError as err:
        await trio.aclose_forcefully(tls)
        raise TLSHandshakeError(f"TLS handshake with {host}:{port} failed: {err.__cause__ or err}") from err
    except BaseException:
        await trio.aclose_forcefully(tls)
        raise
    return tls


def _check_port(port: int) -> None:
    if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
        raise ValueError(f"port must be an integer from 1 to 65535, not {port!r}")


async def _connect(
    host: str,
    port: int,
    resource: str,
    ssl_context: ssl.SSLContext | None,
    subprotocols: Sequence[str] | None,
    extra_headers: HeaderPairs | None,
    options: ConnectionOptions,
    *,
    wrap_os_errors: bool = False,
    proxy: ProxyArgument = None,
) -> WebSocketConnection:
    _check_port(port)
    via = resolve_proxy(proxy, host, port, is_ssl=ssl_context is not None)
    with trio.move_on_after(seconds_or_inf(options.connect_timeout)) as scope:
        try:
            stream = await _open_transport(host, port, ssl_context, via)
        except OSError as err:
            if wrap_os_errors:
                # trio-websocket's open_websocket reports connection failures
                # as HandshakeError; keep that for code written against it.
                raise HandshakeError(f"could not connect to {host}:{port}: {_root_cause(err)}") from err
            raise
        try:
            return await client_handshake(
                stream,
                _host_header(host, port, ssl_context is not None),
                resource,
                subprotocols=subprotocols,
                extra_headers=extra_headers,
                options=options,
            )
        except BaseException:
            await trio.aclose_forcefully(stream)
            raise
    assert scope.cancelled_caught
    raise ConnectionTimeout(f"connecting to {host}:{port} took longer than {options.connect_timeout} s")


async def _connect_unix(
    path: str,
    host: str,
    resource: str,
    subprotocols: Sequence[str] | None,
    extra_headers: HeaderPairs | None,
    options: ConnectionOptions,
    *,
    wrap_os_errors: bool = False,
) -> WebSocketConnection:
    with trio.move_on_after(seconds_or_inf(options.connect_timeout)) as scope:
        try:
            stream = await trio.open_unix_socket(path)
        except OSError as err:
            if wrap_os_errors:
                raise HandshakeError(f"could not connect to {path}: {err}") from err
            raise
        try:
            return await client_handshake(
                stream, host, resource, subprotocols=subprotocols, extra_headers=extra_headers, options=options
            )
        except BaseException:
            await trio.aclose_forcefully(stream)
            raise
    assert scope.cancelled_caught
    raise ConnectionTimeout(f"connecting to {path} took longer than {options.connect_timeout} s")


@document_options(*_TCP_CLIENT_OPTION_DOCS)
async def connect_websocket(
    nursery: trio.Nursery,
    host: str,
    port: int,
    resource: str,
    *,
    use_ssl: bool | ssl.SSLContext,
    subprotocols: Sequence[str] | None = None,
    extra_headers: HeaderPairs | None = None,
    proxy: ProxyArgument = True,
    **options: Unpack[ConnectionOptionsDict],
) -> WebSocketConnection:
    """Connect to a WebSocket server; the connection's tasks run in ``nursery``.

    Close the connection with :meth:`~WebSocketConnection.aclose` when done;
    its tasks end when it closes.

    Args:
        nursery: where the connection's reader and keepalive tasks run.
        host: the server's host name or address.
        port: the server's port.
        resource: the request target, for example ``"/chat?room=1"``.
        use_ssl: True for TLS with a default, verifying context; an
            ``ssl.SSLContext`` to use that one; False for plain TCP.

    Returns:
        the open connection.

    Raises:
        OSError: when the TCP connection fails (for example, refused).
        HandshakeError: when the TLS or WebSocket handshake fails.
        ConnectionRejected: when the server answers with another status than 101.
        ConnectionTimeout: when it all takes longer than ``connect_timeout``.

    Cancelling is safe: the transport is closed.
    """
    parsed = ConnectionOptions.from_kwargs(**options)
    connection = await _connect(
        host, port, resource, _ssl_context(use_ssl), subprotocols, extra_headers, parsed, proxy=proxy
    )
    connection._start(nursery)
    return connection


@document_options(*_TCP_CLIENT_OPTION_DOCS)
async def connect_websocket_url(
    nursery: trio.Nursery,
    url: str,
    ssl_context: ssl.SSLContext | None = None,
    *,
    subprotocols: Sequence[str] | None = None,
    extra_headers: HeaderPairs | None = None,
    proxy: ProxyArgument = True,
    **options: Unpack[ConnectionOptionsDict],
) -> WebSocketConnection:
    """Like :func:`connect_websocket`, with a ``ws://`` or ``wss://`` URL.

    Args:
        nursery: where the connection's reader and keepalive tasks run.
        url: the server's URL.
        ssl_context: the TLS context for ``wss://`` (default: a verifying one).

    Raises:
        InvalidURL: when the URL is not a ws/wss URL.
        ValueError: when ``ssl_context`` is given with a ``ws://`` URL.
        OSError: when the TCP connection fails.
        HandshakeError: when the TLS or WebSocket handshake fails.
        ConnectionRejected: when the server refuses the handshake.
        ConnectionTimeout: when connecting takes longer than ``connect_timeout``.
    """
    target = parse_websocket_url(url)
    use_ssl = _url_ssl(target.is_ssl, ssl_context)
    return await connect_websocket(
        nursery,
        target.host,
        target.port,
        target.resource,
        use_ssl=use_ssl,
        subprotocols=subprotocols,
        extra_headers=extra_headers,
        proxy=proxy,
        **options,
    )


@document_options(*_CLIENT_OPTION_DOCS)
async def connect_websocket_unix(
    nursery: trio.Nursery,
    path: str,
    resource: str = "/",
    *,
    host: str = "localhost",
    subprotocols: Sequence[str] | None = None,
    extra_headers: HeaderPairs | None = None,
    **options: Unpack[ConnectionOptionsDict],
) -> WebSocketConnection:
    """Connect to a WebSocket server on a Unix domain socket.

    Args:
        nursery: where the connection's reader and keepalive tasks run.
        path: the socket's path.
        resource: the request target.
        host: the Host header to send.

    Raises:
        OSError: when the socket cannot be reached.
        HandshakeError: when the WebSocket handshake fails.
        ConnectionRejected: when the server refuses the handshake.
        ConnectionTimeout: when connecting takes longer than ``connect_timeout``.
    """
    parsed = ConnectionOptions.from_kwargs(**options)
    connection = await _connect_unix(path, host, resource, subprotocols, extra_headers, parsed)
    connection._start(nursery)
    return connection


@document_options(*_CLIENT_OPTION_DOCS)
async def wrap_client_stream(
    nursery: trio.Nursery,
    stream: trio.abc.Stream,
    host: str,
    resource: str,
    *,
    subprotocols: Sequence[str] | None = None,
    extra_headers: HeaderPairs | None = None,
    **options: Unpack[ConnectionOptionsDict],
) -> WebSocketConnection:
    """Run the client handshake over an existing transport.

    Args:
        nursery: where the connection's reader and keepalive tasks run.
        stream: a connected transport (TCP, TLS, Unix, in-memory...).
        host: the Host header to send.
        resource: the request target.

    Raises:
        HandshakeError: when the WebSocket handshake fails.
        ConnectionRejected: when the server refuses the handshake.
        ConnectionTimeout: when the handshake takes longer than ``connect_timeout``.
    """
    parsed = ConnectionOptions.from_kwargs(**options)
    with trio.move_on_after(seconds_or_inf(parsed.connect_timeout)) as scope:
        connection = await client_handshake(
            stream, host, resource, subprotocols=subprotocols, extra_headers=extra_headers, options=parsed
        )
        connection._start(nursery)
        return connection
    assert scope.cancelled_caught
    raise ConnectionTimeout(f"handshake took longer than {parsed.connect_timeout} s")


@asynccontextmanager
async def _run_connection(connection: WebSocketConnection) -> AsyncIterator[WebSocketConnection]:
    """Run ``connection``'s tasks around the caller's block, then close it.

    The block's exception comes out as itself (see :func:`background_tasks`),
    never wrapped in an ExceptionGroup.
    """
    async with background_tasks() as nursery:
        connection._start(nursery)
        try:
            yield connection
        except BaseException:
            # The block raised, or is being cancelled: close shielded (the
            # peer still gets its close frame) but bounded, and never let a
            # cancellation replace the block's own exception (trio #1559).
            await connection.aclose_shielded(NORMAL_CLOSURE, None)
            raise
        # A normal exit: cancelling this close ends it at once.
        await connection.aclose()
    if connection.close_timed_out:
        raise DisconnectionTimeout("the closing handshake took longer than disconnect_timeout")


@asynccontextmanager
@document_options(*_TCP_CLIENT_OPTION_DOCS)
async def open_websocket(
    host: str,
    port: int,
    resource: str,
    *,
    use_ssl: bool | ssl.SSLContext,
    subprotocols: Sequence[str] | None = None,
    extra_headers: HeaderPairs | None = None,
    proxy: ProxyArgument = True,
    **options: Unpack[ConnectionOptionsDict],
) -> AsyncIterator[WebSocketConnection]:
    """Open a WebSocket connection for the duration of an ``async with`` block.

    The connection is closed (1000) when the block ends, within
    ``disconnect_timeout``; its background tasks end with it.

    Args:
        host: the server's host name or address.
        port: the server's port.
        resource: the request target, for example ``"/chat"``.
        use_ssl: True for TLS with a default verifying context, an
            ``ssl.SSLContext``, or False.

    Yields:
        the open connection.

    Raises:
        HandshakeError: when the TCP connection fails (from the ``OSError``, as
            trio-websocket does), or the TLS or WebSocket handshake fails.
        ConnectionRejected: when the server refuses the handshake.
        ConnectionTimeout: when connecting takes longer than ``connect_timeout``.
        DisconnectionTimeout: when the closing handshake takes longer than
            ``disconnect_timeout`` (the transport is closed anyway).

    Cancelling is safe: the connection is closed, waiting at most
    ``disconnect_timeout`` for the peer's close frame (2 s when it is None),
    not for its EOF. An exception raised in the block, even while the block is
    being cancelled, comes out as itself.
    """
    parsed = ConnectionOptions.from_kwargs(**options)
    connection = await _connect(
        host,
        port,
        resource,
        _ssl_context(use_ssl),
        subprotocols,
        extra_headers,
        parsed,
        wrap_os_errors=True,
        proxy=proxy,
    )
    async with _run_connection(connection) as ws:
        yield ws


@asynccontextmanager
@document_options(*_TCP_CLIENT_OPTION_DOCS)
async def open_websocket_url(
    url: str,
    ssl_context: ssl.SSLContext | None = None,
    *,
    subprotocols: Sequence[str] | None = None,
    extra_headers: HeaderPairs | None = None,
    proxy: ProxyArgument = True,
    **options: Unpack[ConnectionOptionsDict],
) -> AsyncIterator[WebSocketConnection]:
    """Like :func:`open_websocket`, with a ``ws://`` or ``wss://`` URL.

    Args:
        url: the server's URL.
        ssl_context: the TLS context for ``wss://`` (default: a verifying one).

    Yields:
        the open connection.

    Raises:
        InvalidURL: when the URL is not a ws/wss URL.
        ValueError: when ``ssl_context`` is given with a ``ws://`` URL.
        HandshakeError: when the connection or the TLS or WebSocket handshake fails.
        ConnectionRejected: when the server refuses the handshake.
        ConnectionTimeout: when connecting takes longer than ``connect_timeout``.
        DisconnectionTimeout: when the closing handshake takes longer than
            ``disconnect_timeout``.
    """
    target = parse_websocket_url(url)
    use_ssl = _url_ssl(target.is_ssl, ssl_context)
    parsed = ConnectionOptions.from_kwargs(**options)
    connection = await _connect(
        target.host,
        target.port,
        target.resource,
        _ssl_context(use_ssl),
        subprotocols,
        extra_headers,
        parsed,
        wrap_os_errors=True,
        proxy=proxy,
    )
    async with _run_connection(connection) as ws:
        yield ws


@asynccontextmanager
@document_options(*_CLIENT_OPTION_DOCS)
async def open_websocket_unix(
    path: str,
    resource: str = "/",
    *,
    host: str = "localhost",
    subprotocols: Sequence[str] | None = None,
    extra_headers: HeaderPairs | None = None,
    **options: Unpack[ConnectionOptionsDict],
) -> AsyncIterator[WebSocketConnection]:
    """Like :func:`open_websocket`, over a Unix domain socket at ``path``.

    Args:
        path: the socket's path.
        resource: the request target.
        host: the Host header to send.

    Yields:
        the open connection.

    Raises:
        HandshakeError: when the connection or the WebSocket handshake fails.
        ConnectionRejected: when the server refuses the handshake.
        ConnectionTimeout: when connecting takes longer than ``connect_timeout``.
        DisconnectionTimeout: when the closing handshake takes longer than
            ``disconnect_timeout``.
    """
    parsed = ConnectionOptions.from_kwargs(**options)
    connection = await _connect_unix(path, host, resource, subprotocols, extra_headers, parsed, wrap_os_errors=True)
    async with _run_connection(connection) as ws:
        yield ws
