"""The pytest plugin (``trio_ws.pytest_plugin``): its fixtures used directly, and in inner pytest runs.

The inner runs (pytest's ``pytester``) load the plugin three ways: by module
name with ``-p`` (plugin autoloading off, as pytest refuses one module under
two names), through a ``pytest11`` entry point (a stand-in distribution on
``sys.path``, so the test does not depend on how trio_ws was installed), and
by the entry point's name with ``-p trio_ws``.
"""

from __future__ import annotations

import contextlib
import re
import sys
from typing import TYPE_CHECKING

import pytest
import trio
import trio.testing

import trio_ws
from trio_ws.app import App, EventConnection
from trio_ws.testing import TestClient

if TYPE_CHECKING:
    # Not imported at run time: pytest imports the plugin itself (pytest_plugins below).
    from trio_ws.pytest_plugin import ClientFactory, ServerFactory

# With the pytest11 entry point installed, pytest has already loaded the plugin
# under the entry point's name; listing the module again would make pytest
# refuse to register it a second time ("Plugin already registered under a
# different name").
_PLUGIN_LOADED = "trio_ws.pytest_plugin" in sys.modules
pytest_plugins = ["pytester"] if _PLUGIN_LOADED else ["trio_ws.pytest_plugin", "pytester"]

TIMEOUT = 10

# The inner runs are in-process and the plugin module is already imported, so
# pytest warns that it cannot rewrite its asserts (it has none).
pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestAssertRewriteWarning")

# --------------------------------------------------------------------------
# Inner runs
# --------------------------------------------------------------------------

#: A test module using both fixtures; the last two tests check the first two's teardown.
USES_FIXTURES = """
import pytest
import trio
import trio_ws
from trio_ws.app import App
from trio_ws.testing import TestClient

STATE = {}


def make_app():
    app = App()

    @app.on("echo")
    async def echo(conn, data):
        return data

    return app


async def lingering(request):
    # Accepts, then outlives its connection: only the fixture's teardown ends it.
    await request.accept()
    try:
        await trio.sleep_forever()
    finally:
        STATE.setdefault("ended", []).append(request.path)


async def test_client(trio_ws_client):
    client = await trio_ws_client(make_app())
    assert isinstance(client, TestClient)
    async with client.connect("/ws") as conn:
        assert await conn.emit("echo", {"n": 1}, ack=True) == {"n": 1}
    other = await trio_ws_client(lingering)
    async with other.connect("/client") as conn:
        assert conn.is_connected


async def test_server(trio_ws_server):
    url = await trio_ws_server(make_app())
    async with trio_ws.open_websocket_url(url + "/ws") as ws:
        await ws.send_message('{"type":"event","event":"echo","data":"hi","id":1}')
        assert await ws.get_message() == '{"type":"ack","id":1,"data":"hi"}'
    STATE["url"] = await trio_ws_server(lingering)
    async with trio_ws.open_websocket_url(STATE["url"] + "/server"):
        pass


def test_client_and_server_were_stopped_at_teardown():
    assert sorted(STATE["ended"]) == ["/client", "/server"]


async def test_server_no_longer_listens():
    with pytest.raises((OSError, trio_ws.HandshakeError)):
        async with trio_ws.open_websocket_url(STATE["url"] + "/server"):
            pass
"""

#: One test passes, one fails on an assertion inside code that uses the fixtures.
FAILS = """
import trio_ws
from trio_ws.app import App


def make_app():
    app = App()

    @app.on("echo")
    async def echo(conn, data):
        return data

    return app


async def test_passes(trio_ws_client, trio_ws_server):
    client = await trio_ws_client(make_app())
    async with client.connect("/ws") as conn:
        assert await conn.emit("echo", 1, ack=True) == 1
    assert (await trio_ws_server(make_app())).startswith("ws://127.0.0.1:")


async def test_fails(trio_ws_client, trio_ws_server):
    url = await trio_ws_server(make_app())
    client = await trio_ws_client(make_app())
    async with client.connect("/ws") as conn:
        answer = await conn.emit("echo", "pong", ack=True)
    assert answer == "ping", f"deliberate failure (server at {url})"
"""

#: Each test raises in a ``finally:`` while an enclosing scope cancels a block
#: that uses a fixture's client or server (trio issue #1559): each must fail
#: with that exception, not pass.
RAISES_WHILE_CANCELLED = """
import trio
import trio_ws
from trio_ws.app import App


class BlockError(Exception):
    pass


async def echo(request):
    ws = await request.accept()
    async for message in ws:
        await ws.send_message(message)


async def test_client_fixture(trio_ws_client):
    app = App()

    @app.on("echo")
    async def echo_event(conn, data):
        return data

    client = await trio_ws_client(app)
    with trio.CancelScope() as scope:
        async with client.connect("/ws"):
            scope.cancel()
            try:
                await trio.sleep_forever()
            finally:
                raise BlockError("from the client fixture's block")


async def test_server_fixture(trio_ws_server):
    url = await trio_ws_server(echo)
    with trio.CancelScope() as scope:
        async with trio_ws.open_websocket_url(url + "/"):
            scope.cancel()
            try:
                await trio.sleep_forever()
            finally:
                raise BlockError("from the server fixture's block")
"""

AUTOLOAD_OFF = "PYTEST_DISABLE_PLUGIN_AUTOLOAD"
#: pytest-trio by module name (with autoloading off), trio mode on.
INNER_OPTIONS = ("-p", "pytest_trio.plugin", "-o", "trio_mode=true", "-p", "no:cacheprovider")


def install_entry_point(pytester: pytest.Pytester) -> None:
    """Put a distribution with the ``pytest11`` entry point ``trio_ws`` on ``sys.path``."""
    dist_info = pytester.mkdir("site") / "trio_ws_pytest_entry_point-0.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text("Metadata-Version: 2.1\nName: trio-ws-pytest-entry-point\nVersion: 0\n")
    (dist_info / "entry_points.txt").write_text("[pytest11]\ntrio_ws = trio_ws.pytest_plugin\n")
    pytester.syspathinsert(pytester.path / "site")


def test_inner_run_with_module_plugin(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(AUTOLOAD_OFF, "1")
    pytester.makepyfile(test_uses_fixtures=USES_FIXTURES)
    result = pytester.runpytest(*INNER_OPTIONS, "-p", "trio_ws.pytest_plugin")
    result.assert_outcomes(passed=4)


def test_inner_run_reports_a_failing_assertion(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(AUTOLOAD_OFF, "1")
    pytester.makepyfile(test_fails=FAILS)
    result = pytester.runpytest(*INNER_OPTIONS, "-p", "trio_ws.pytest_plugin")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*FAILED test_fails.py::test_fails*deliberate failure*"])
    result.stdout.fnmatch_lines(["*AssertionError: deliberate failure (server at ws://127.0.0.1:*"])


def test_inner_run_keeps_an_exception_raised_while_cancelled(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(AUTOLOAD_OFF, "1")
    pytester.makepyfile(test_raises=RAISES_WHILE_CANCELLED)
    result = pytester.runpytest(*INNER_OPTIONS, "-p", "trio_ws.pytest_plugin")
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(["*BlockError: from the client fixture's block*"])
    result.stdout.fnmatch_lines(["*BlockError: from the server fixture's block*"])


def test_inner_run_without_the_plugin_has_no_fixtures(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(AUTOLOAD_OFF, "1")
    pytester.makepyfile(test_fails=FAILS)
    result = pytester.runpytest(*INNER_OPTIONS)
    result.assert_outcomes(errors=2)
    result.stdout.fnmatch_lines(["*fixture 'trio_ws_client' not found*"])


def test_inner_run_through_the_entry_point(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(AUTOLOAD_OFF, raising=False)
    install_entry_point(pytester)
    pytester.makepyfile(test_uses_fixtures=USES_FIXTURES)
    result = pytester.runpytest("-o", "trio_mode=true", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=4)


def test_inner_run_with_entry_point_names(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    """With autoloading off, ``-p trio_ws`` loads the plugin through its entry point."""
    monkeypatch.setenv(AUTOLOAD_OFF, "1")
    install_entry_point(pytester)
    pytester.makepyfile(test_fails=FAILS)
    result = pytester.runpytest("-p", "trio", "-p", "trio_ws", "-o", "trio_mode=true")
    result.assert_outcomes(passed=1, failed=1)


def test_entry_point_can_be_disabled(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(AUTOLOAD_OFF, raising=False)
    install_entry_point(pytester)
    pytester.makepyfile(test_fails=FAILS)
    result = pytester.runpytest("-o", "trio_mode=true", "-p", "no:trio_ws", "-p", "no:cacheprovider")
    result.assert_outcomes(errors=2)
    result.stdout.fnmatch_lines(["*fixture 'trio_ws_client' not found*"])


# --------------------------------------------------------------------------
# The fixtures, used directly
# --------------------------------------------------------------------------


def make_app() -> App:
    app = App()

    @app.on("echo")
    async def echo(conn: EventConnection, data: object) -> object:
        return data

    @app.on("join")
    async def join(conn: EventConnection, data: str) -> list[str]:
        await conn.join_room(data)
        return sorted(conn.rooms())

    return app


async def echo_handler(request: trio_ws.WebSocketRequest) -> None:
    ws = await request.accept()
    async for message in ws:
        await ws.send_message(message)


async def quiet_echo_handler(request: trio_ws.WebSocketRequest) -> None:
    """:func:`echo_handler`, ending quietly when the connection fails (see the xfail below)."""
    with contextlib.suppress(trio_ws.ConnectionClosed):
        await echo_handler(request)


async def test_client_fixture_drives_an_app(trio_ws_client: ClientFactory) -> None:
    with trio.fail_after(TIMEOUT):
        client = await trio_ws_client(make_app())
        assert isinstance(client, TestClient)
        async with client.connect("/ws") as conn:
            assert await conn.emit("echo", [1, "two"], ack=True) == [1, "two"]
            assert await conn.emit("join", "lobby", ack=True) == ["lobby"]
            assert conn.is_connected


async def test_client_fixture_makes_several_clients(trio_ws_client: ClientFactory) -> None:
    app = make_app()
    with trio.fail_after(TIMEOUT):
        first = await trio_ws_client(app)
        second = await trio_ws_client(app)
        assert first is not second
        async with first.connect("/ws") as a, second.connect("/ws") as b:
            await a.emit("join", "room", ack=True)
            await b.emit("join", "room", ack=True)
            await app.emit("news", "hello", to="room")
            for conn in (a, b):
                assert await conn.get_received() == [
                    {"type": "event", "event": "news", "namespace": "/", "data": "hello"}
                ]


async def test_client_fixture_passes_options(trio_ws_client: ClientFactory) -> None:
    with trio.fail_after(TIMEOUT):
        client = await trio_ws_client(quiet_echo_handler, max_message_size=16)
        async with client.connect("/") as conn:
            await conn.send("short")
            assert await conn.receive() == "short"
            await conn.send("x" * 17)
            with pytest.raises(trio_ws.ConnectionClosed) as exc_info:
                await conn.receive()
            assert exc_info.value.reason.code == 1009


async def test_client_fixture_plain_handler_ended_by_a_failed_connection(trio_ws_client: ClientFactory) -> None:
    with trio.fail_after(TIMEOUT):
        client = await trio_ws_client(echo_handler, max_message_size=16)
        async with client.connect("/") as conn:
            await conn.send("x" * 17)
            with pytest.raises(trio_ws.ConnectionClosed):
                await conn.receive()
            await trio.testing.wait_all_tasks_blocked()


async def test_server_fixture_serves_an_app(trio_ws_server: ServerFactory) -> None:
    with trio.fail_after(TIMEOUT):
        url = await trio_ws_server(make_app())
        assert re.fullmatch(r"ws://127\.0\.0\.1:\d+", url)
        async with trio_ws.open_websocket_url(url + "/ws") as ws:
            await ws.send_message('{"type":"event","event":"echo","data":{"a":1},"id":7}')
            assert await ws.get_message() == '{"type":"ack","id":7,"data":{"a":1}}'
        # The app's process_request runs: unknown paths are refused during the handshake...
        with pytest.raises(trio_ws.ConnectionRejected) as exc_info:
            async with trio_ws.open_websocket_url(url + "/nowhere"):
                pass
        assert exc_info.value.status_code == 404
        # ...and the static route answers plain GETs.
        port = int(url.rsplit(":", 1)[1])
        async with await trio.open_tcp_stream("127.0.0.1", port) as stream:
            await stream.send_all(b"GET /trio_ws.js HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            head = b""
            while b"\r\n" not in head:
                chunk = await stream.receive_some(4096)
                assert chunk
                head += chunk
        assert head.startswith(b"HTTP/1.1 200 ")


class Guarded:
    """A plain handler with a ``process_request`` hook, as an object."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    async def process_request(self, request: trio_ws.WebSocketRequest) -> None:
        self.asked.append(request.path)
        if request.path == "/private":
            await request.reject(403, body=b"no")

    async def __call__(self, request: trio_ws.WebSocketRequest) -> None:
        await echo_handler(request)


async def test_server_fixture_serves_a_plain_handler(trio_ws_server: ServerFactory) -> None:
    with trio.fail_after(TIMEOUT):
        url = await trio_ws_server(echo_handler, max_message_size=64)
        async with trio_ws.open_websocket_url(url + "/any/path") as ws:
            await ws.send_message(b"\x00bytes")
            assert await ws.get_message() == b"\x00bytes"
            await ws.send_message("y" * 65)
            with pytest.raises(trio_ws.ConnectionClosed) as exc_info:
                await ws.get_message()
            assert exc_info.value.reason.code == 1009


async def test_server_fixture_uses_a_handlers_process_request(trio_ws_server: ServerFactory) -> None:
    handler = Guarded()
    with trio.fail_after(TIMEOUT):
        url = await trio_ws_server(handler)
        with pytest.raises(trio_ws.ConnectionRejected) as exc_info:
            async with trio_ws.open_websocket_url(url + "/private"):
                pass
        assert exc_info.value.status_code == 403
        async with trio_ws.open_websocket_url(url + "/public") as ws:
            await ws.send_message("ok")
            assert await ws.get_message() == "ok"
        assert handler.asked == ["/private", "/public"]


async def test_server_fixture_makes_several_servers(trio_ws_server: ServerFactory) -> None:
    with trio.fail_after(TIMEOUT):
        urls = [await trio_ws_server(echo_handler) for _ in range(3)]
        assert len(set(urls)) == 3
        for url in urls:
            async with trio_ws.open_websocket_url(url + "/") as ws:
                await ws.send_message(url)
                assert await ws.get_message() == url


async def test_both_fixtures_in_one_test(trio_ws_client: ClientFactory, trio_ws_server: ServerFactory) -> None:
    app = make_app()
    with trio.fail_after(TIMEOUT):
        url = await trio_ws_server(app)
        client = await trio_ws_client(app)
        async with client.connect("/ws") as conn, trio_ws.open_websocket_url(url + "/ws") as ws:
            await conn.emit("join", "both", ack=True)
            await ws.send_message('{"type":"event","event":"join","data":"both","id":1}')
            assert await ws.get_message() == '{"type":"ack","id":1,"data":["both"]}'
            report = await app.emit("news", "to both", to="both")
            assert not isinstance(report, bool)
            assert report.recipients == 2
            assert (await conn.receive_json())["data"] == "to both"
            assert '"to both"' in str(await ws.get_message())
