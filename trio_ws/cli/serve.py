"""``trio-ws serve APP``: a demo server.

The apps live in :data:`APPS`, a dict of name -> :class:`ServeApp`: ``echo``,
``chat`` (with its browser page) and ``broadcast``. ``--redis URL`` gives
``chat`` and ``broadcast`` a hub with a Redis backend, so that several server
processes share their rooms.
"""

from __future__ import annotations

import argparse
import ssl
import sys
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import trio

from ..app import App
from ..demos import broadcast as _broadcast
from ..demos import chat as _chat
from ..endpoint import Endpoint
from ..errors import ConnectionClosed
from ..hub import Hub
from ..request import WebSocketRequest
from ..server import Handler, serve_websocket
from .errors import EXIT_OK, EXIT_USAGE, CliError, os_error_text
from .output import peer, status, write_line

__all__ = ["APPS", "AppFactory", "ServeApp", "broadcast_app", "chat_app", "echo_app", "run_serve"]

#: Builds a ``serve`` app: called once per server run with a nursery that lives
#: as long as the server (for background tasks shared by connections) and the
#: hub built from ``--redis`` (None without it: the app makes its own in-memory
#: hub if it needs one). Returns the handler that serves each request, or an
#: :class:`~trio_ws.app.App`, which is served with :meth:`App.serve
#: <trio_ws.app.App.serve>` so that its ``process_request`` also answers plain
#: HTTP requests (static pages, the browser client).
AppFactory = Callable[[trio.Nursery, "Hub | None"], "Handler | App"]


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


def echo_app(nursery: trio.Nursery, hub: Hub | None = None) -> Handler:
    """Echo: send every message back to the client that sent it, text or binary (``hub`` is unused)."""

    async def echo(request: WebSocketRequest) -> None:
        ws = await request.accept()
        remote = peer(ws)
        status(f"connected: {remote} {ws.path}")
        try:
            async for message in ws:
                await ws.send_message(message)
        except ConnectionClosed:
            pass
        closed = ws.closed
        if closed is not None:
            status(f"disconnected: {remote} {closed.code} ({closed.name})")

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


def _server_ssl_context(args: argparse.Namespace) -> ssl.SSLContext | None:
    if args.tls is None:
        return None
    cert, key = args.tls
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as err:
        raise CliError(f"could not load TLS certificate {cert} / key {key}: {os_error_text(err)}", EXIT_USAGE) from err
    return context


def _redis_hub(url: str) -> tuple[Hub, Callable[[], bool]]:
    """A hub whose backend is Redis at ``url``, and a function telling whether the link is up.

    trio_ws.hub.redis (and so coredis) is imported only now.
    """
    try:
        from ..hub.redis import RedisBackend
    except ImportError:
        raise CliError("--redis needs trio_ws.hub.redis (pip install trio-ws[redis])") from None
    try:
        backend = RedisBackend(url)
    except ValueError as err:
        raise CliError(f"invalid --redis URL: {err}", EXIT_USAGE) from None
    return Hub(backend=backend), lambda: backend.connected


async def run_serve(args: argparse.Namespace) -> int:
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
        except OSError as err:
            raise CliError(f"could not listen on {args.host}:{args.port}: {os_error_text(err)}") from None
        secure = context is not None
        url = Endpoint(args.host, server.port, secure).url
        write_line(sys.stdout, f"serving {url}/")
        if entry.page:
            page = url.replace("wss://", "https://", 1) if secure else url.replace("ws://", "http://", 1)
            write_line(sys.stdout, f"open {page}/ in a browser")
        if hub is not None and connected is not None:
            if connected():
                status(f"hub: connected to Redis as process {hub.process_id}")
            else:
                status("hub: Redis is not reachable yet; retrying in the background (rooms stay local until then)")
        await trio.sleep_forever()
    return EXIT_OK  # pragma: no cover - only cancellation ends the server
