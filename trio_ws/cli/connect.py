"""``trio-ws connect URL``: an interactive client.

Each line read from stdin is sent as a text message; received messages are
printed on stdout, prefixed with ``"< "``. Status lines (close notices, ping
round trips, errors) go to stderr, so stdout carries only messages.
"""

from __future__ import annotations

import argparse
import ssl
import sys

import trio

from ..client import open_websocket_url
from ..close import OK_CLOSE_CODES
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
from .errors import EXIT_FAILURE, EXIT_OK, EXIT_USAGE, CliError, causes, os_error_text
from .output import describe_close, format_message, prefixed, status, write_line
from .stdin import StdinLines

__all__ = ["IDLE_AFTER_EOF", "run_connect"]

#: Seconds without an incoming message, after EOF on stdin, before ``connect`` closes.
IDLE_AFTER_EOF = 0.5


class _Session:
    """One interactive client session over an open connection."""

    def __init__(self, ws: WebSocketConnection, args: argparse.Namespace, interactive: bool) -> None:
        self.ws = ws
        self.args = args
        self.interactive = interactive
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
                self._idle.deadline = trio.current_time() + IDLE_AFTER_EOF
            write_line(sys.stdout, format_message(message, pretty_json=self.args.json))

    def _server_closed(self, code: int, reason: str | None) -> None:
        if code == 1006:
            status(f"connection lost: {describe_close(code, reason)}")
        else:
            status(f"connection closed by server: {describe_close(code, reason)}")
        self.finish(EXIT_OK if code in OK_CLOSE_CODES else EXIT_FAILURE)

    async def _send(self) -> None:
        lines = StdinLines()
        try:
            while (line := await lines.readline()) is not None:
                try:
                    await self.ws.send_message(line)
                except ConnectionClosed:
                    return  # _receive reports the close
                if self.interactive:
                    write_line(sys.stdout, prefixed("> ", line))
        finally:
            with trio.CancelScope(shield=True):
                await lines.aclose()
        # End of input: wait until the server has been quiet for a moment; each
        # message that arrives meanwhile pushes the deadline back (_receive).
        if not self.args.no_wait:
            with trio.move_on_after(IDLE_AFTER_EOF) as idle:
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


def _handshake_failure(err: HandshakeError, host: str, port: int) -> CliError:
    """Turn a failed connection attempt into the line to print."""
    where = f"{host}:{port}"
    if isinstance(err, ConnectionRejected):
        return CliError(f"server rejected the connection: HTTP {err.status_code}")
    if isinstance(err, ConnectionTimeout):
        return CliError(f"timed out connecting to {where}")
    chain = list(causes(err))
    if any(isinstance(exc, ssl.SSLError) for exc in chain):
        detail = os_error_text(err.__cause__) if err.__cause__ is not None else str(err)
        verify = any(isinstance(exc, ssl.SSLCertVerificationError) for exc in chain)
        hint = " (use --cafile PEM to trust its CA, or --insecure)" if verify else ""
        return CliError(f"TLS handshake failed: {detail}{hint}")
    if isinstance(err.__cause__, OSError):
        return CliError(f"could not connect to {where}: {os_error_text(err.__cause__)}")
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
    context = _client_ssl_context(args) if target.is_ssl else None
    interactive = sys.stdin is not None and sys.stdin.isatty()
    try:
        async with open_websocket_url(
            args.url,
            context,
            subprotocols=args.subprotocol or None,
            extra_headers=args.header or None,
            connect_timeout=args.timeout,
        ) as ws:
            if interactive:
                chosen = f" (subprotocol: {ws.subprotocol})" if ws.subprotocol else ""
                status(f"connected to {args.url}{chosen}; Ctrl-D to finish, Ctrl-C to quit")
            return await _Session(ws, args, interactive).run()
    except HandshakeError as err:
        raise _handshake_failure(err, target.host, target.port) from None
    except DisconnectionTimeout:
        raise CliError("the server did not finish the closing handshake in time") from None
