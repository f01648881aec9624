"""``trio-ws connect URL``: an interactive client.

Each line read from stdin is sent as a text message; received messages are
printed on stdout, prefixed with ``"< "``. Status lines (close notices, ping
round trips, errors) go to stderr, so stdout carries only messages. When the
input ends, the session lasts until the server has been quiet for ``--idle``
seconds (:data:`IDLE_AFTER_EOF` by default).

A failed connection is explained by the type of its error; when a plain
``ws://`` handshake ends without an answer, a TLS handshake is tried on the
same port (:func:`speaks_tls`) to tell whether ``wss://`` was meant.
"""

from __future__ import annotations

import argparse
import logging
import ssl
import sys
from http import HTTPStatus
from typing import Literal

import trio

from ..client import open_websocket_url
from ..close import ABNORMAL_CLOSURE, OK_CLOSE_CODES
from ..connection import WebSocketConnection
from ..endpoint import parse_websocket_url
from ..errors import (
    ConnectionClosed,
    ConnectionRejected,
    ConnectionTimeout,
    DisconnectionTimeout,
    HandshakeError,
    InvalidURL,
)
from ..log import client_logger
from ..proxy import ProxyError
from ..reconnect import connect_forever
from .errors import EXIT_FAILURE, EXIT_OK, EXIT_USAGE, CliError, causes, os_error_text
from .output import describe_close, format_message, prefixed, status, write_line
from .stdin import StdinLines

__all__ = ["IDLE_AFTER_EOF", "check_url_characters", "run_connect", "speaks_tls"]

#: Default of ``--idle``: seconds without an incoming message, after the end of
#: the input, before ``connect`` closes. Longer than the one-second tick of the
#: ``broadcast`` demo, so that a server that keeps sending keeps the session open.
IDLE_AFTER_EOF = 2.0

#: SSLError reason of a TLS client that received something other than a TLS record.
_NOT_TLS_REASON = "WRONG_VERSION_NUMBER"


class _Session:
    """One interactive client session over an open connection."""

    def __init__(self, ws: WebSocketConnection, args: argparse.Namespace, interactive: bool, lines: StdinLines) -> None:
        self.ws = ws
        self.args = args
        self.lines = lines
        #: True when the session ended because the server closed (or the connection was lost).
        self.closed_by_server = False
        # Typed lines are already on the terminal (its echo): repeat them as
        # "> ..." only when stdout goes elsewhere, such as a file or a pipe.
        self.show_sent = interactive and not sys.stdout.isatty()
        self.idle: float = 0.0 if args.no_wait else args.idle
        self.exit_code: int | None = None
        self._idle: trio.CancelScope | None = None
        self._scope = trio.CancelScope()

    def finish(self, exit_code: int) -> None:
        """Record the session's result (the first one wins) and end it."""
        if self.exit_code is None:
            self.exit_code = exit_code
        self._scope.cancel()

    async def run(self) -> int:
        """Run until EOF and the idle delay, a close from the server, or cancellation."""
        with self._scope:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._receive)
                nursery.start_soon(self._send)
                if self.args.ping is not None:
                    nursery.start_soon(self._ping, self.args.ping)
        assert self.exit_code is not None
        return self.exit_code

    async def _receive(self) -> None:
        while True:
            try:
                message = await self.ws.get_message()
            except ConnectionClosed as closed:
                self._server_closed(closed.reason.code, closed.reason.reason)
                return
            if self._idle is not None:
                self._idle.deadline = trio.current_time() + self.idle
            write_line(sys.stdout, format_message(message, pretty_json=self.args.json))

    def _server_closed(self, code: int, reason: str | None) -> None:
        self.closed_by_server = True
        if code == ABNORMAL_CLOSURE:
            status(f"connection lost: {describe_close(code, reason)}")
        else:
            status(f"connection closed by server: {describe_close(code, reason)}")
        self.finish(EXIT_OK if code in OK_CLOSE_CODES else EXIT_FAILURE)

    async def _send(self) -> None:
        # stdin outlives the session: with --reconnect the next one reads on.
        while (line := await self.lines.readline()) is not None:
            try:
                await self.ws.send_message(line)
            except ConnectionClosed:
                return  # _receive reports the close
            if self.show_sent:
                write_line(sys.stdout, prefixed("> ", line))
        # End of input: wait until the server has been quiet for a moment; each
        # message that arrives meanwhile pushes the deadline back (_receive).
        if self.idle > 0:
            with trio.move_on_after(self.idle) as idle:
                self._idle = idle
                await trio.sleep_forever()
        self.finish(EXIT_OK)

    async def _ping(self, interval: float) -> None:
        while True:
            sent = trio.current_time()
            try:
                await self.ws.ping()
            except ConnectionClosed:
                return
            status(f"ping: round trip {(trio.current_time() - sent) * 1000:.1f} ms")
            await trio.sleep_until(sent + interval)


def _client_ssl_context(args: argparse.Namespace) -> ssl.SSLContext:
    try:
        context = ssl.create_default_context(cafile=args.cafile)
    except (OSError, ssl.SSLError) as err:
        raise CliError(f"could not load CA file {args.cafile}: {os_error_text(err)}", EXIT_USAGE) from err
    if args.insecure:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def check_url_characters(url: str) -> None:
    """Refuse a URL that cannot be sent as it is written, saying how to write it.

    Raises:
        CliError: (usage error) the URL holds a space, a control character or
            a non-ASCII character.
    """
    for char in url:
        if char == " ":
            problem, advice = "contains a space", "write it as %20"
        elif char.isspace() or ord(char) < 0x20 or ord(char) == 0x7F:
            problem, advice = f"contains the control character {char!r}", "remove it or percent-encode it"
        elif ord(char) > 0x7F:
            encoded = "".join(f"%{byte:02X}" for byte in char.encode())
            problem, advice = f"contains the non-ASCII character {char!r}", f"percent-encode it as {encoded}"
        else:
            continue
        raise CliError(f"invalid URL {url!r}: it {problem}; {advice}", EXIT_USAGE)


async def speaks_tls(host: str, port: int) -> bool:
    """Whether the server at ``host:port`` completes a TLS handshake (certificate not checked).

    Raises nothing of its own: a refused connection or a failed handshake is
    False. Cancelling it is safe (bound it with :func:`trio.move_on_after`).
    """
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    try:
        stream = await trio.open_tcp_stream(host, port)
    except OSError:
        return False
    tls = trio.SSLStream(stream, context, server_hostname=host)
    try:
        await tls.do_handshake()
    except trio.BrokenResourceError:
        return False
    finally:
        await trio.aclose_forcefully(tls)
    return True


def _with_scheme(url: str, scheme: str) -> str:
    return scheme + url[url.index("://") :]


async def _handshake_failure(
    err: HandshakeError, args: argparse.Namespace, host: str, port: int, path: str
) -> CliError:
    """Turn a failed connection attempt into the line to print (what happened, and what to do)."""
    where = f"{host}:{port}"
    if isinstance(err, ProxyError):
        return CliError(f"{err} (see --proxy)")  # it names the proxy and its answer
    if isinstance(err, ConnectionRejected):
        code = err.status_code
        try:
            phrase = f" {HTTPStatus(code).phrase}"
        except ValueError:
            phrase = ""
        if 200 <= code < 300:
            return CliError(
                f"{args.url} is not a WebSocket endpoint: the server answered HTTP {code}{phrase} "
                "as for an ordinary web page (check the path)"
            )
        if code == HTTPStatus.NOT_FOUND:
            return CliError(f"server rejected the connection: HTTP 404 Not Found: the path {path} was not found")
        return CliError(f"server rejected the connection: HTTP {code}{phrase}")
    if isinstance(err, ConnectionTimeout):
        return CliError(f"timed out connecting to {where}")
    chain = list(causes(err))
    ssl_errors = [exc for exc in chain if isinstance(exc, ssl.SSLError)]
    if ssl_errors:
        if any(isinstance(exc, ssl.SSLCertVerificationError) for exc in ssl_errors):
            hint = " (use --cafile PEM to trust its CA, or --insecure)"
        elif any(exc.reason == _NOT_TLS_REASON for exc in ssl_errors):
            hint = f" (the server at {where} does not speak TLS: use {_with_scheme(args.url, 'ws')})"
        else:
            hint = ""
        detail = os_error_text(err.__cause__) if err.__cause__ is not None else str(err)
        return CliError(f"TLS handshake failed: {detail}{hint}")
    if isinstance(err.__cause__, OSError):
        return CliError(f"could not connect to {where}: {os_error_text(err.__cause__)}")
    if not args.url.startswith("wss://"):
        # The server closed without answering: a TLS server does that to plain HTTP.
        with trio.move_on_after(args.timeout):
            if await speaks_tls(host, port):
                return CliError(f"the server at {where} expects TLS: use {_with_scheme(args.url, 'wss')}")
    return CliError(f"WebSocket handshake with {where} failed: {err}")


async def run_connect(args: argparse.Namespace) -> int:
    """Run the ``connect`` command; return its exit status.

    Raises:
        CliError: the connection could not be opened or closed cleanly.
    """
    try:
        target = parse_websocket_url(args.url)
    except InvalidURL as err:
        raise CliError(f"invalid URL: {err}", EXIT_USAGE) from None
    check_url_characters(args.url)
    context = _client_ssl_context(args) if target.is_ssl else None
    interactive = sys.stdin is not None and sys.stdin.isatty()
    lines = StdinLines()
    try:
        if args.reconnect:
            return await _run_reconnecting(args, context, interactive, lines)
        async with open_websocket_url(
            args.url,
            context,
            subprotocols=args.subprotocol or None,
            extra_headers=args.header or None,
            proxy=_proxy(args),
            connect_timeout=args.timeout,
        ) as ws:
            _connected(args, ws, interactive)
            return await _Session(ws, args, interactive, lines).run()
    except HandshakeError as err:
        raise await _handshake_failure(err, args, target.host, target.port, target.resource.split("?", 1)[0]) from None
    except DisconnectionTimeout:
        raise CliError("the server did not finish the closing handshake in time") from None
    finally:
        with trio.CancelScope(shield=True):
            await lines.aclose()


def _proxy(args: argparse.Namespace) -> str | Literal[True] | None:
    """``--proxy``: a URL, ``none`` for a direct connection, or (unset) the environment's."""
    if args.proxy is None:
        return True
    return None if args.proxy.lower() == "none" else str(args.proxy)


def _connected(args: argparse.Namespace, ws: WebSocketConnection, interactive: bool) -> None:
    if interactive:
        chosen = f" (subprotocol: {ws.subprotocol})" if ws.subprotocol else ""
        status(f"connected to {args.url}{chosen}; Ctrl-D to finish, Ctrl-C to quit")


class _RetryNotices(logging.Handler):
    """Shows connect_forever's waits (the records with a ``retry_delay``) as status lines."""

    def emit(self, record: logging.LogRecord) -> None:
        if getattr(record, "retry_delay", None) is not None:
            status(record.getMessage())


async def _run_reconnecting(
    args: argparse.Namespace, context: ssl.SSLContext | None, interactive: bool, lines: StdinLines
) -> int:
    """``--reconnect``: sessions over :func:`connect_forever`'s connections until stdin ends.

    The server closing with 1001/1006/1011/1012/1013 starts a new session
    after a backoff delay; a normal close (1000) ends the command with
    status 0, another code with status 1.
    """
    notices = _RetryNotices(logging.INFO)
    client_logger.addHandler(notices)
    previous_level = client_logger.level
    if client_logger.getEffectiveLevel() > logging.INFO:
        client_logger.setLevel(logging.INFO)
    exit_code = EXIT_OK
    try:
        async with connect_forever(
            args.url,
            context,
            subprotocols=args.subprotocol or None,
            extra_headers=args.header or None,
            proxy=_proxy(args),
            connect_timeout=args.timeout,
        ) as connections:
            first = True
            async for ws in connections:
                if first:
                    _connected(args, ws, interactive)
                    first = False
                else:
                    status(f"reconnected to {args.url}")
                session = _Session(ws, args, interactive, lines)
                exit_code = await session.run()
                if not session.closed_by_server:
                    return exit_code  # stdin ended, or the session was cancelled
    except ConnectionClosed:
        return EXIT_FAILURE  # a close that is not retried; the session printed it
    finally:
        client_logger.removeHandler(notices)
        client_logger.setLevel(previous_level)
    return exit_code
