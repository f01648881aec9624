"""The ``trio-ws`` command line tool (also ``python -m trio_ws``).

Two commands:

* ``trio-ws connect URL``: an interactive client. Each line read from stdin is
  sent as a text message; received messages are printed on stdout, prefixed
  with ``"< "``. Status lines (close notices, ping round trips, errors) go to
  stderr, so stdout carries only messages.
* ``trio-ws serve APP``: a demo server. The apps live in :data:`APPS`, a dict of
  name -> :class:`ServeApp`: ``echo``, ``chat`` (with its browser page) and
  ``broadcast``. ``--redis URL`` gives ``chat`` and ``broadcast`` a hub with a
  Redis backend, so that several server processes share their rooms.

Exit codes: 0 success, 1 runtime failure (connection refused, rejected, TLS,
timeout, server closed with an error code), 2 usage error (bad option, bad
URL, unknown app), 130 interrupted by Ctrl-C (``connect`` only; ``serve``
exits 0 when stopped with Ctrl-C). Errors are reported as one line on stderr.
"""

from __future__ import annotations

import argparse
import codecs
import json
import os
import signal
import ssl
import stat
import sys
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from typing import NoReturn, TextIO

import trio

from .app import App
from .client import open_websocket_url
from .close import OK_CLOSE_CODES, close_code_name
from .connection import WebSocketConnection
from .demos import broadcast as _broadcast
from .demos import chat as _chat
from .endpoint import Endpoint, parse_websocket_url
from .errors import (
    ConnectionClosed,
    ConnectionRejected,
    ConnectionTimeout,
    DisconnectionTimeout,
    HandshakeError,
    InvalidURL,
)
from .hub import Hub
from .request import WebSocketRequest
from .server import Handler, serve_websocket

if sys.version_info < (3, 11):  # pragma: no cover - trio depends on the backport there
    from exceptiongroup import BaseExceptionGroup

__all__ = [
    "APPS",
    "EXIT_FAILURE",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_USAGE",
    "IDLE_AFTER_EOF",
    "AppFactory",
    "CliError",
    "ServeApp",
    "broadcast_app",
    "build_parser",
    "chat_app",
    "echo_app",
    "format_message",
    "main",
]

#: Exit status: success.
EXIT_OK = 0
#: Exit status: a runtime failure (connection, TLS, handshake, error close code).
EXIT_FAILURE = 1
#: Exit status: bad command line (option, URL, unknown app).
EXIT_USAGE = 2
#: Exit status of ``connect`` when stopped with Ctrl-C (128 + SIGINT).
EXIT_INTERRUPTED = 130

#: Seconds without an incoming message, after EOF on stdin, before ``connect`` closes.
IDLE_AFTER_EOF = 0.5

_PROG = "trio-ws"
_HEX_PREVIEW = 16
_READ_SIZE = 65536

#: Builds a ``serve`` app: called once per server run with a nursery that lives
#: as long as the server (for background tasks shared by connections) and the
#: hub built from ``--redis`` (None without it: the app makes its own in-memory
#: hub if it needs one). Returns the handler that serves each request, or an
#: :class:`~trio_ws.app.App`, which is served with :meth:`App.serve
#: <trio_ws.app.App.serve>` so that its ``process_request`` also answers plain
#: HTTP requests (static pages, the browser client).
AppFactory = Callable[[trio.Nursery, "Hub | None"], "Handler | App"]

_REDIS_SCHEMES = ("redis://", "rediss://", "unix://")


@dataclass(frozen=True)
class ServeApp:
    """An app that ``serve`` knows.

    Attributes:
        factory: builds the app for one server run (see :data:`AppFactory`).
        summary: what the app does, in one sentence (for ``--help``).
        uses_hub: whether the app's connections share a hub, so that
            ``--redis`` applies to it.
        page: whether the app serves a browser page at ``/`` (``serve`` then
            prints the address to open).
    """

    factory: AppFactory
    summary: str
    uses_hub: bool = False
    page: bool = False


class CliError(Exception):
    """An error to report as one line on stderr, with an exit status.

    Args:
        message: the line to print (without the program name).
        exit_code: the process exit status, :data:`EXIT_FAILURE` by default.
    """

    def __init__(self, message: str, exit_code: int = EXIT_FAILURE) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code


class _UsageError(Exception):
    """Raised by the parser instead of exiting, so :func:`main` returns 2."""


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line and do not exit the process."""

    def error(self, message: str) -> NoReturn:
        raise _UsageError(f"{message} (see '{self.prog} --help')")


# -- serve apps ----------------------------------------------------------------


def echo_app(nursery: trio.Nursery, hub: Hub | None = None) -> Handler:
    """Echo: send every message back to the client that sent it, text or binary (``hub`` is unused)."""

    async def echo(request: WebSocketRequest) -> None:
        ws = await request.accept()
        peer = _peer(ws)
        _status(f"connected: {peer} {ws.path}")
        try:
            async for message in ws:
                await ws.send_message(message)
        except ConnectionClosed:
            pass
        closed = ws.closed
        if closed is not None:
            _status(f"disconnected: {peer} {closed.code} ({closed.name})")

    return echo


def chat_app(nursery: trio.Nursery, hub: Hub | None = None) -> App:
    """Chat: :func:`trio_ws.demos.chat.create_app`, rooms and presence with a browser page."""
    return _chat.create_app(hub)


def broadcast_app(nursery: trio.Nursery, hub: Hub | None = None) -> App:
    """Broadcast: :func:`trio_ws.demos.broadcast.create_app`, with its ticker started in ``nursery``."""
    app = _broadcast.create_app(hub)
    nursery.start_soon(_broadcast.tick, app)
    return app


#: The apps ``serve`` knows, by name. Add an entry to offer another demo app.
APPS: dict[str, ServeApp] = {
    "echo": ServeApp(echo_app, "sends every message back to its sender, text or binary"),
    "chat": ServeApp(
        chat_app,
        "a chat with rooms and presence (its browser page at /, the events at /ws)",
        uses_hub=True,
        page=True,
    ),
    "broadcast": ServeApp(
        broadcast_app,
        "a 'tick' event every second to every connection of /ws, whose 'send' event broadcasts a message to all",
        uses_hub=True,
    ),
}


# -- output ----------------------------------------------------------------------


def _write_line(stream: TextIO, text: str) -> None:
    stream.write(text + "\n")
    stream.flush()


def _status(text: str) -> None:
    """A status line on stderr."""
    _write_line(sys.stderr, text)


def _peer(ws: WebSocketConnection) -> str:
    remote = ws.remote
    if isinstance(remote, Endpoint):
        host = f"[{remote.address}]" if ":" in remote.address else remote.address
        return f"{host}:{remote.port}"
    return remote


def _prefixed(marker: str, text: str) -> str:
    """Prefix the first line with ``marker``; indent the others to match."""
    indent = "\n" + " " * len(marker)
    return marker + text.replace("\n", indent)


def format_message(message: str | bytes, *, pretty_json: bool = False) -> str:
    """Render a received message as ``connect`` prints it.

    Args:
        message: the received message.
        pretty_json: indent text that parses as JSON.

    Returns:
        ``"< text"`` for text (continuation lines indented by two spaces), and
        ``"< [binary N bytes] hex..."`` for binary, previewing the first 16 bytes.
    """
    if isinstance(message, bytes):
        line = f"< [binary {len(message)} bytes]"
        if message:
            line += " " + message[:_HEX_PREVIEW].hex(" ")
            if len(message) > _HEX_PREVIEW:
                line += " ..."
        return line
    if pretty_json:
        try:
            value = json.loads(message)
        except ValueError:
            pass
        else:
            message = json.dumps(value, indent=2, ensure_ascii=False)
    return _prefixed("< ", message)


def _describe_close(code: int, reason: str | None) -> str:
    text = f"{code} ({close_code_name(code)})"
    return f"{text} {reason}" if reason else text


# -- stdin -------------------------------------------------------------------------


class _StdinLines:
    """Read stdin as text lines without blocking the event loop.

    Pipes, sockets and terminals are read through :class:`trio.lowlevel.FdStream`
    (cancellable at any time). A terminal is reopened by name first, so that the
    non-blocking mode FdStream sets stays on our own file description and does
    not leak to stdout and stderr, which usually share the terminal's. Regular
    files and devices such as ``/dev/null``, which cannot be waited on but never
    block for long, are read in a worker thread.
    """

    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._buffer = ""
        self._eof = False
        self._stream: trio.lowlevel.FdStream | None = None
        self._fd: int | None = None
        stdin = sys.stdin
        if stdin is None:
            self._eof = True
            return
        try:
            fd = stdin.fileno()
            mode = os.fstat(fd).st_mode
        except (OSError, ValueError):
            self._eof = True
            return
        if os.isatty(fd):
            try:
                own = os.open(os.ttyname(fd), os.O_RDONLY | os.O_NOCTTY)
            except OSError:
                own = os.dup(fd)
            self._stream = trio.lowlevel.FdStream(own)
        elif stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode):
            self._stream = trio.lowlevel.FdStream(os.dup(fd))
        else:
            self._fd = os.dup(fd)

    async def _read(self) -> bytes:
        if self._stream is not None:
            return bytes(await self._stream.receive_some(_READ_SIZE))
        if self._fd is not None:
            return await trio.to_thread.run_sync(os.read, self._fd, _READ_SIZE)
        return b""

    async def readline(self) -> str | None:
        """Return the next line without its line ending, or None at end of input."""
        while True:
            newline = self._buffer.find("\n")
            if newline >= 0:
                line, self._buffer = self._buffer[:newline], self._buffer[newline + 1 :]
                return line.removesuffix("\r")
            if self._eof:
                if self._buffer:
                    line, self._buffer = self._buffer, ""
                    return line.removesuffix("\r")
                return None
            data = await self._read()
            if data:
                self._buffer += self._decoder.decode(data)
            else:
                self._eof = True
                self._buffer += self._decoder.decode(b"", final=True)

    async def aclose(self) -> None:
        """Release the file descriptor (stdin itself stays open)."""
        if self._stream is not None:
            stream, self._stream = self._stream, None
            await stream.aclose()
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)


# -- connect -------------------------------------------------------------------------


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
            _write_line(sys.stdout, format_message(message, pretty_json=self.args.json))

    def _server_closed(self, code: int, reason: str | None) -> None:
        if code == 1006:
            _status(f"connection lost: {_describe_close(code, reason)}")
        else:
            _status(f"connection closed by server: {_describe_close(code, reason)}")
        self.finish(EXIT_OK if code in OK_CLOSE_CODES else EXIT_FAILURE)

    async def _send(self) -> None:
        lines = _StdinLines()
        try:
            while (line := await lines.readline()) is not None:
                try:
                    await self.ws.send_message(line)
                except ConnectionClosed:
                    return  # _receive reports the close
                if self.interactive:
                    _write_line(sys.stdout, _prefixed("> ", line))
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
            _status(f"ping: round trip {(trio.current_time() - sent) * 1000:.1f} ms")
            await trio.sleep_until(sent + interval)


def _client_ssl_context(args: argparse.Namespace) -> ssl.SSLContext:
    try:
        context = ssl.create_default_context(cafile=args.cafile)
    except (OSError, ssl.SSLError) as err:
        raise CliError(f"could not load CA file {args.cafile}: {_os_error_text(err)}", EXIT_USAGE) from err
    if args.insecure:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def _os_error_text(err: BaseException) -> str:
    """The most specific text of an OSError, looking through causes and groups."""
    found: list[str] = []

    def visit(exc: BaseException | None, depth: int) -> None:
        if exc is None or depth > 8:
            return
        children = getattr(exc, "exceptions", None)
        if isinstance(children, tuple):
            for child in children:
                if isinstance(child, BaseException):
                    visit(child, depth + 1)
        if isinstance(exc, ssl.SSLCertVerificationError):
            found.append(f"certificate verify failed: {exc.verify_message}")
        elif isinstance(exc, ssl.SSLError):
            found.append(exc.reason.replace("_", " ").lower() if exc.reason else str(exc))
        elif isinstance(exc, OSError) and exc.errno is not None and exc.errno > 0:
            found.append(os.strerror(exc.errno))
        elif isinstance(exc, OSError) and exc.strerror:
            found.append(exc.strerror)
        visit(exc.__cause__, depth + 1)

    visit(err, 0)
    unique = list(dict.fromkeys(found))
    return "; ".join(unique) if unique else str(err)


def _has_ssl_cause(err: BaseException) -> bool:
    exc: BaseException | None = err
    for _ in range(8):
        if exc is None:
            return False
        if isinstance(exc, ssl.SSLError):
            return True
        exc = exc.__cause__
    return False


def _handshake_failure(err: HandshakeError, host: str, port: int) -> CliError:
    """Turn a failed connection attempt into the line to print."""
    where = f"{host}:{port}"
    if isinstance(err, ConnectionRejected):
        return CliError(f"server rejected the connection: HTTP {err.status_code}")
    if isinstance(err, ConnectionTimeout):
        return CliError(f"timed out connecting to {where}")
    if _has_ssl_cause(err) or "TLS" in str(err):
        detail = _os_error_text(err.__cause__) if err.__cause__ is not None else str(err)
        hint = " (use --cafile PEM to trust its CA, or --insecure)" if "verify failed" in detail else ""
        return CliError(f"TLS handshake failed: {detail}{hint}")
    if isinstance(err.__cause__, OSError):
        return CliError(f"could not connect to {where}: {_os_error_text(err.__cause__)}")
    return CliError(f"WebSocket handshake with {where} failed: {err}")


async def _connect(args: argparse.Namespace) -> int:
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
                _status(f"connected to {args.url}{chosen}; Ctrl-D to finish, Ctrl-C to quit")
            return await _Session(ws, args, interactive).run()
    except HandshakeError as err:
        raise _handshake_failure(err, target.host, target.port) from None
    except DisconnectionTimeout:
        raise CliError("the server did not finish the closing handshake in time") from None


# -- serve -------------------------------------------------------------------------


def _server_ssl_context(args: argparse.Namespace) -> ssl.SSLContext | None:
    if args.tls is None:
        return None
    cert, key = args.tls
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as err:
        raise CliError(f"could not load TLS certificate {cert} / key {key}: {_os_error_text(err)}", EXIT_USAGE) from err
    return context


def _redis_hub(url: str) -> tuple[Hub, Callable[[], bool]]:
    """A hub whose backend is Redis at ``url``, and a function telling whether the link is up.

    trio_ws.hub.redis (and so coredis) is imported only now.
    """
    try:
        from .hub.redis import RedisBackend
    except ImportError:
        raise CliError("--redis needs trio_ws.hub.redis (pip install trio-ws[redis])") from None
    try:
        backend = RedisBackend(url)
    except ValueError as err:
        raise CliError(f"invalid --redis URL: {err}", EXIT_USAGE) from None
    return Hub(backend=backend), lambda: backend.connected


def _os_error_of(err: BaseException) -> OSError | None:
    """The OSError inside ``err`` (possibly in exception groups), if it is the only error."""
    leaves = _leaves(err)
    return leaves[0] if len(leaves) == 1 and isinstance(leaves[0], OSError) else None


async def _serve(args: argparse.Namespace) -> int:
    entry = APPS.get(args.app)
    if entry is None:
        raise CliError(f"unknown app: {args.app} (available: {', '.join(sorted(APPS))})", EXIT_USAGE)
    if args.redis is not None and not entry.uses_hub:
        with_hub = " and ".join(name for name, known in APPS.items() if known.uses_hub)
        raise CliError(f"--redis only applies to {with_hub}", EXIT_USAGE)
    context = _server_ssl_context(args)
    hub, connected = _redis_hub(args.redis) if args.redis is not None else (None, None)
    async with trio.open_nursery() as nursery:
        app = entry.factory(nursery, hub)
        try:
            if isinstance(app, App):
                server = await nursery.start(partial(app.serve, args.host, args.port, ssl_context=context))
            else:
                server = await nursery.start(serve_websocket, app, args.host, args.port, context)
        except (OSError, BaseExceptionGroup) as err:
            os_error = _os_error_of(err)
            if os_error is None:
                raise
            raise CliError(f"could not listen on {args.host}:{args.port}: {_os_error_text(os_error)}") from None
        secure = context is not None
        url = Endpoint(args.host, server.port, secure).url
        _write_line(sys.stdout, f"serving {url}/")
        if entry.page:
            page = url.replace("wss://", "https://", 1) if secure else url.replace("ws://", "http://", 1)
            _write_line(sys.stdout, f"open {page}/ in a browser")
        if hub is not None and connected is not None:
            if connected():
                _status(f"hub: connected to Redis as process {hub.process_id}")
            else:
                _status("hub: Redis is not reachable yet; retrying in the background (rooms stay local until then)")
        await trio.sleep_forever()
    return EXIT_OK  # pragma: no cover - only cancellation ends the server


# -- plumbing ------------------------------------------------------------------------


async def _cancel_on_sigint(
    scope: trio.CancelScope, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
) -> None:
    """Cancel ``scope`` on the first SIGINT; a second one interrupts at once."""
    if threading.current_thread() is not threading.main_thread():
        task_status.started()  # signals can only be received in the main thread
        return
    with trio.open_signal_receiver(signal.SIGINT) as signals:
        task_status.started()
        async for _ in signals:
            break
    # Leaving the receiver puts Trio's own handler back: a second Ctrl-C during
    # the closing handshake raises KeyboardInterrupt instead of waiting on.
    scope.cancel()


async def _until_interrupted(command: Callable[[argparse.Namespace], Awaitable[int]], args: argparse.Namespace) -> int:
    """Run ``command``; on Ctrl-C cancel it (so it closes cleanly) and return -1."""
    result = -1
    async with trio.open_nursery() as nursery:
        await nursery.start(_cancel_on_sigint, nursery.cancel_scope)

        async def run() -> None:
            nonlocal result
            result = await command(args)
            nursery.cancel_scope.cancel()

        nursery.start_soon(run)
    return result


def _leaves(exc: BaseException) -> list[BaseException]:
    """The exceptions inside (possibly nested) exception groups."""
    children = getattr(exc, "exceptions", None)
    if isinstance(children, tuple) and children and all(isinstance(c, BaseException) for c in children):
        return [leaf for child in children for leaf in _leaves(child)]
    return [exc]


def _outcome_of(exc: BaseException, interrupted: int) -> int:
    """Report an exception that ended a command as one line; return the exit status."""
    leaves = _leaves(exc)
    if all(isinstance(leaf, KeyboardInterrupt) for leaf in leaves):
        return interrupted
    for leaf in leaves:
        if isinstance(leaf, CliError):
            _status(f"{_PROG}: {leaf.message}")
            return leaf.exit_code
    for leaf in leaves:
        if isinstance(leaf, BrokenPipeError):
            # stdout went away (for example "| head"): stop quietly, and keep
            # Python from complaining when it flushes stdout at exit.
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            os.close(devnull)
            return EXIT_FAILURE
    if isinstance(exc, SystemExit):
        raise exc
    first = leaves[0]
    _status(f"{_PROG}: unexpected error: {type(first).__name__}: {first}")
    return EXIT_FAILURE


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds: {text!r}")
    return value


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"port must be in 0-65535: {text!r}")
    return value


def _redis_url(text: str) -> str:
    if not text.startswith(_REDIS_SCHEMES):
        raise argparse.ArgumentTypeError(f"expected a redis://, rediss:// or unix:// URL, got {text!r}")
    return text


def _header(text: str) -> tuple[str, str]:
    name, colon, value = text.partition(":")
    name = name.strip()
    if not colon or not name or any(ch.isspace() for ch in name):
        raise argparse.ArgumentTypeError(f"expected 'Name: value', got {text!r}")
    return name, value.strip()


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser of the ``trio-ws`` command."""
    parser = _Parser(prog=_PROG, description="WebSocket client and demo server built on trio_ws.")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    commands.required = True

    connect = commands.add_parser(
        "connect",
        help="connect to a WebSocket server and exchange text messages",
        description="Send each line of stdin as a text message and print what the server sends.",
    )
    connect.add_argument("url", metavar="URL", help="a ws:// or wss:// URL")
    connect.add_argument(
        "--header",
        action="append",
        type=_header,
        metavar="'NAME: VALUE'",
        help="an extra request header (repeatable)",
    )
    connect.add_argument(
        "--subprotocol", action="append", metavar="P", help="a subprotocol to offer (repeatable, in order)"
    )
    connect.add_argument("--json", action="store_true", help="pretty-print received text that parses as JSON")
    connect.add_argument(
        "--ping", type=_positive, metavar="SECONDS", help="send a ping every SECONDS and print the round trip"
    )
    connect.add_argument(
        "--insecure", action="store_true", help="wss://: do not verify the server's certificate (self-signed)"
    )
    connect.add_argument("--cafile", metavar="PEM", help="wss://: trust the CA certificates in this PEM file")
    connect.add_argument(
        "--timeout",
        type=_positive,
        default=10.0,
        metavar="SECONDS",
        help="time allowed to connect and finish the handshake (default: 10)",
    )
    connect.add_argument(
        "--no-wait",
        action="store_true",
        help=f"close as soon as stdin ends, instead of after {IDLE_AFTER_EOF} s without a message",
    )
    connect.set_defaults(handler=_connect, interrupted=EXIT_INTERRUPTED)

    apps = ", ".join(sorted(APPS))
    serve = commands.add_parser(
        "serve",
        help="run a demo WebSocket server",
        description="Run a demo WebSocket server until Ctrl-C. Apps: "
        + "; ".join(f"{name}: {app.summary}" for name, app in APPS.items())
        + ".",
    )
    serve.add_argument("app", metavar="APP", help=f"the app to serve ({apps})")
    serve.add_argument("--host", default="127.0.0.1", help="the address to listen on (default: 127.0.0.1)")
    serve.add_argument("--port", type=_port, default=8765, help="the TCP port, 0 for any free one (default: 8765)")
    serve.add_argument("--tls", nargs=2, metavar=("CERT", "KEY"), help="serve wss:// with this PEM certificate and key")
    with_hub = " and ".join(name for name, known in APPS.items() if known.uses_hub)
    serve.add_argument(
        "--redis",
        type=_redis_url,
        metavar="URL",
        help=f"{with_hub}: share rooms with other servers through Redis at URL (redis://HOST:PORT/DB)",
    )
    serve.set_defaults(handler=_serve, interrupted=EXIT_OK)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the ``trio-ws`` command line tool.

    Args:
        argv: the arguments after the program name (default: ``sys.argv[1:]``).

    Returns:
        the exit status: 0 success, 1 runtime failure, 2 usage error, 130
        ``connect`` interrupted with Ctrl-C.
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except _UsageError as err:
        _status(f"{_PROG}: {err}")
        return EXIT_USAGE
    except SystemExit as done:  # --help
        return done.code if isinstance(done.code, int) else EXIT_OK
    interrupted: int = args.interrupted
    try:
        result = trio.run(_until_interrupted, args.handler, args)
    except BaseException as exc:
        return _outcome_of(exc, interrupted)
    return interrupted if result < 0 else result
