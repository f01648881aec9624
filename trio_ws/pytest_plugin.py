"""pytest fixtures for testing trio_ws apps and handlers (needs pytest-trio).

Loaded through the ``pytest11`` entry point (named ``trio_ws``) when trio_ws
is installed; ``-p no:trio_ws`` turns it off, ``-p trio_ws`` loads it when
plugin autoloading is disabled. Listing the module itself (``-p
trio_ws.pytest_plugin`` or ``pytest_plugins = ["trio_ws.pytest_plugin"]``)
is for setups without the entry point (or with
``PYTEST_DISABLE_PLUGIN_AUTOLOAD=1``): pytest refuses to register one module
under two names. Both fixtures are factories, so one test can make several
clients or servers, with options::

    async def test_chat(trio_ws_client):
        client = await trio_ws_client(app)
        async with client.connect("/ws") as conn:
            assert await conn.emit("join", "lobby", ack=True) == "ok"

    async def test_real_socket(trio_ws_server):
        url = await trio_ws_server(app, max_message_size=2**20)
        async with trio_ws.open_websocket_url(url + "/ws") as ws:
            ...

* ``trio_ws_client``: ``await trio_ws_client(app, **options)`` returns an
  entered :class:`trio_ws.testing.TestClient` (in memory, no sockets); it is
  closed at teardown.
* ``trio_ws_server``: ``await trio_ws_server(app_or_handler, **options)``
  serves an :class:`~trio_ws.app.App` (with its ``process_request``, hub and
  static routes, through :meth:`App.serve <trio_ws.app.App.serve>`) or a
  plain ``async def handler(request)`` on ``127.0.0.1``, on a free port, in
  pytest-trio's ``nursery`` fixture, and returns ``"ws://127.0.0.1:PORT"``;
  the server is stopped at teardown.

``options`` are the connection options of
:func:`~trio_ws.serve_websocket` (``max_message_size``, ``ping_interval``,
``compression``...). The fixtures are async, so they need pytest-trio (with
``trio_mode = true``, or tests marked ``@pytest.mark.trio``).
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import pytest
import trio

from .app import App
from .server import WebSocketServer, serve_websocket
from .testing import TestClient

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from .options import ConnectionOptionsDict
    from .request import WebSocketRequest

__all__ = ["ClientFactory", "ServerFactory", "trio_ws_client", "trio_ws_server"]

#: ``async def handler(request)``; an App is one too.
RequestHandler = Callable[["WebSocketRequest"], Awaitable[None]]
#: Upper bound, in seconds, for stopping what a fixture started, at teardown.
TEARDOWN_TIMEOUT = 10.0


class ClientFactory(Protocol):
    """The ``trio_ws_client`` fixture's value."""

    async def __call__(self, app: RequestHandler, /, **options: Unpack[ConnectionOptionsDict]) -> TestClient:
        """Return an entered :class:`~trio_ws.testing.TestClient` for ``app``, closed at teardown."""
        ...


class ServerFactory(Protocol):
    """The ``trio_ws_server`` fixture's value."""

    async def __call__(self, app: RequestHandler, /, **options: Unpack[ConnectionOptionsDict]) -> str:
        """Serve ``app`` on 127.0.0.1 (a free port) until teardown; return ``"ws://127.0.0.1:PORT"``."""
        ...


@dataclass
class _Started:
    """Something a fixture runs in the test's nursery, and how to stop it."""

    scope: trio.CancelScope = field(default_factory=trio.CancelScope)
    done: trio.Event = field(default_factory=trio.Event)


async def _stop_all(started: list[_Started]) -> None:
    """Cancel what was started (most recent first) and wait, bounded, until it has finished."""
    for item in reversed(started):
        item.scope.cancel()
    with trio.move_on_after(TEARDOWN_TIMEOUT) as waiting:
        for item in reversed(started):
            await item.done.wait()
    if waiting.cancelled_caught:
        pytest.fail(f"trio_ws fixture: not stopped within {TEARDOWN_TIMEOUT} s at teardown", pytrace=False)


@pytest.fixture
async def trio_ws_client(nursery: trio.Nursery) -> AsyncIterator[ClientFactory]:
    """A factory of in-memory test clients: ``client = await trio_ws_client(app, **options)``.

    Each client is an entered :class:`trio_ws.testing.TestClient`, closed at
    teardown (its connections and the app's tasks for them are cancelled).
    """
    started: list[_Started] = []

    async def run(
        app: RequestHandler,
        options: ConnectionOptionsDict,
        item: _Started,
        *,
        task_status: trio.TaskStatus[TestClient] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        # The client's nursery lives in this task for the test's whole duration.
        try:
            with item.scope:
                async with TestClient(app, **options) as client:
                    task_status.started(client)
                    await trio.sleep(math.inf)
        finally:
            item.done.set()

    async def factory(app: RequestHandler, /, **options: Unpack[ConnectionOptionsDict]) -> TestClient:
        item = _Started()
        started.append(item)
        client: TestClient = await nursery.start(run, app, options, item)
        return client

    yield factory
    await _stop_all(started)


@pytest.fixture
async def trio_ws_server(nursery: trio.Nursery) -> AsyncIterator[ServerFactory]:
    """A factory of real servers: ``url = await trio_ws_server(app_or_handler, **options)``.

    An :class:`~trio_ws.app.App` is served with :meth:`App.serve
    <trio_ws.app.App.serve>` (its ``process_request`` policy, static files
    and hub included); any other ``async def handler(request)`` with
    :func:`~trio_ws.serve_websocket` (and its ``process_request`` attribute,
    if it has one). Both listen on 127.0.0.1, on a free port, in the test's
    nursery; the returned URL is ``"ws://127.0.0.1:PORT"`` (append the
    path). Every server is stopped (cancelled) at teardown, which closes its
    connections.
    """
    started: list[_Started] = []

    async def run(
        app: RequestHandler,
        options: ConnectionOptionsDict,
        item: _Started,
        *,
        task_status: trio.TaskStatus[WebSocketServer] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        try:
            with item.scope:
                if isinstance(app, App):
                    await app.serve("127.0.0.1", 0, task_status=task_status, **options)
                else:
                    process_request: Any = getattr(app, "process_request", None)
                    await serve_websocket(
                        app,
                        "127.0.0.1",
                        0,
                        None,
                        process_request=process_request,
                        task_status=task_status,
                        **options,
                    )
        finally:
            item.done.set()

    async def factory(app: RequestHandler, /, **options: Unpack[ConnectionOptionsDict]) -> str:
        item = _Started()
        started.append(item)
        server: WebSocketServer = await nursery.start(run, app, options, item)
        return f"ws://127.0.0.1:{server.port}"

    yield factory
    await _stop_all(started)
