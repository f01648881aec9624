"""The official Socket.IO client in headless Chromium (Debian's package), against SocketIOServer and an App.

One chat end to end (``sio_chat_server.py``): the page is served from
another origin than the Socket.IO server, so every long-polling request is a
real cross-origin request checked by the browser against our CORS headers.
On the standalone SocketIOServer, Alice uses the client's default transports
(long-polling, then the upgrade to WebSocket), Bob long-polling only; they
exchange messages with acknowledgements, Alice sends bytes and gets bytes
back, Bob's page closes and Alice sees him leave. On an App with
``enable_socketio()``, two pages with the official client (default
transports) and one with the App's own ``trio_ws.js`` share one room: a
message from each reaches the two others, each in its own encoding, and is
acknowledged; a connect the App refuses shows ``connect_error`` in the
page. On both, a page from an origin outside ``cors_allowed_origins`` is
refused. Without chromium, Playwright (see ``conftest.py``) or the client
bundle (npm) the test skips, which CI (``CI=true``) turns into a failure.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from support.sio import SIO_BUNDLE, install_socketio_client

SERVER = Path(__file__).with_name("sio_chat_server.py")
TIMEOUT_MS = 10_000


@contextmanager
def chat_urls(mode: str) -> Iterator[list[str]]:
    """The chat server (``mode``: "server" or "app") in a subprocess:
    [allowed page URL, refused page URL, server URL]; stopped by pid."""
    if not SIO_BUNDLE.exists():
        npm = shutil.which("npm")
        if npm is None:
            pytest.skip(f"npm is not installed and socket.io-client is not cached at {SIO_BUNDLE}")
        install_socketio_client(npm)
    process = subprocess.Popen(
        [sys.executable, "-u", str(SERVER), str(SIO_BUNDLE), mode],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.startswith("ready "), (line, process.stderr.read() if process.poll() is not None else "")
        yield line.split()[1:]
    finally:
        process.kill()
        process.wait(timeout=10)


@pytest.fixture
def urls() -> Iterator[list[str]]:
    """The chat on a standalone SocketIOServer."""
    with chat_urls("server") as found:
        yield found


@pytest.fixture
def app_urls() -> Iterator[list[str]]:
    """The chat on an App (Socket.IO at /socket.io/, its own clients at /ws)."""
    with chat_urls("app") as found:
        yield found


def _open(browser: object, page_url: str, sio_url: str, name: str, transports: str = "") -> object:
    query = f"?name={name}&sio={sio_url}" + (f"&transports={transports}" if transports else "")
    return _goto(browser, page_url + query)


def _goto(browser: object, url: str) -> object:
    page = browser.new_page()  # type: ignore[attr-defined]
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(url)
    return page


def _say(page: object, text: str) -> None:
    page.fill("#text", text)  # type: ignore[attr-defined]
    page.press("#text", "Enter")  # type: ignore[attr-defined]


def _wait_log(page: object, text: str) -> None:
    page.locator("#log li", has_text=text).first.wait_for()  # type: ignore[attr-defined]


def test_chat_over_polling_and_the_upgrade_across_origins(urls: list[str], browser: object) -> None:
    page_url, _, sio_url = urls
    alice = _open(browser, page_url, sio_url, "alice")
    _wait_log(alice, "connected")
    bob = _open(browser, page_url, sio_url, "bob", transports="polling")
    _wait_log(bob, "connected")
    _wait_log(alice, "bob joined")

    # Alice's client upgrades to WebSocket; Bob's stays on cross-origin long-polling.
    alice.wait_for_function("window.chat.transport() === 'websocket'")  # type: ignore[attr-defined]
    assert bob.evaluate("window.chat.transport()") == "polling"  # type: ignore[attr-defined]

    alice.fill("#text", "hello bob")  # type: ignore[attr-defined]
    alice.click("#send")  # type: ignore[attr-defined]
    _wait_log(bob, "alice: hello bob")
    _wait_log(alice, "delivered to 2")
    bob.fill("#text", "hi alice")  # type: ignore[attr-defined]
    bob.press("#text", "Enter")  # type: ignore[attr-defined]
    _wait_log(alice, "bob: hi alice")
    _wait_log(bob, "delivered to 2")

    # Bytes both ways: an ArrayBuffer up, the reversed bytes back in the acknowledgement.
    alice.evaluate("window.upload([1, 2, 250])")  # type: ignore[attr-defined]
    _wait_log(alice, "upload answer 250,2,1")
    bob.evaluate("window.upload([7, 8])")  # type: ignore[attr-defined]
    _wait_log(bob, "upload answer 8,7")

    # Bob's page closes, dropping its held poll: his session ends at once and Alice sees it.
    bob.close()  # type: ignore[attr-defined]
    _wait_log(alice, "bob left")


def test_page_from_another_origin_is_refused(urls: list[str], browser: object) -> None:
    _, refused_page_url, sio_url = urls
    page = _open(browser, refused_page_url, sio_url, "mallory")
    _wait_log(page, "connect_error")
    assert "connected" not in page.locator("#log").inner_text()  # type: ignore[attr-defined]


def test_official_clients_and_the_apps_own_client_chat_in_one_room_of_an_app(
    app_urls: list[str], browser: object
) -> None:
    page_url, refused_page_url, server_url = app_urls
    alice = _open(browser, page_url, server_url, "alice")
    _wait_log(alice, "connected")
    bob = _open(browser, page_url, server_url, "bob")
    _wait_log(bob, "connected")
    _wait_log(alice, "bob joined")
    ws_url = server_url.replace("http://", "ws://") + "/ws"
    carol = _goto(browser, page_url + f"?client=trio_ws&name=carol&ws={ws_url}")
    _wait_log(carol, "connected")
    _wait_log(alice, "carol joined")
    _wait_log(bob, "carol joined")

    # Both official clients started on cross-origin long-polling and upgraded.
    for page in (alice, bob):
        page.wait_for_function("window.chat.transport() === 'websocket'")  # type: ignore[attr-defined]

    # A message from each reaches the two others (Socket.IO packets or envelopes),
    # and the sender's acknowledgement counts them.
    for sender, others in ((alice, (bob, carol)), (bob, (alice, carol)), (carol, (alice, bob))):
        name = sender.evaluate("new URLSearchParams(location.search).get('name')")  # type: ignore[attr-defined]
        _say(sender, f"hi from {name}")
        for other in others:
            _wait_log(other, f"{name}: hi from {name}")
        _wait_log(sender, "delivered to 2")
    # The room's emit excluded each sender: nobody heard its own message.
    for page, name in ((alice, "alice"), (bob, "bob"), (carol, "carol")):
        assert f"{name}: hi from {name}" not in page.locator("#log").inner_text()  # type: ignore[attr-defined]

    # Bytes both ways for a Socket.IO client: an ArrayBuffer up, the reversed bytes back as one.
    alice.evaluate("window.upload([1, 2, 250])")  # type: ignore[attr-defined]
    _wait_log(alice, "upload answer 250,2,1 (ArrayBuffer)")

    # Pages close: the others see each leave, whichever client it was.
    carol.close()  # type: ignore[attr-defined]
    _wait_log(alice, "carol left")
    _wait_log(bob, "carol left")
    bob.close()  # type: ignore[attr-defined]
    _wait_log(alice, "bob left")

    # The App's connect handler refuses a client without a name: the page sees connect_error.
    nameless = _goto(browser, page_url + f"?sio={server_url}")
    _wait_log(nameless, "connect_error: a name is required")
    # A page from an origin outside cors_allowed_origins cannot even poll.
    mallory = _open(browser, refused_page_url, server_url, "mallory")
    _wait_log(mallory, "connect_error")
    for page in (nameless, mallory):
        assert "connected" not in page.locator("#log").inner_text()  # type: ignore[attr-defined]
