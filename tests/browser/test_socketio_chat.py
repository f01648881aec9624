"""The official Socket.IO client in headless Chromium (Debian's package) against SocketIOServer.

One chat end to end (``sio_chat_server.py``): the page is served from
another origin than the Socket.IO server, so every long-polling request is a
real cross-origin request checked by the browser against our CORS headers.
Alice uses the client's default transports (long-polling, then the upgrade
to WebSocket), Bob long-polling only; they exchange messages with
acknowledgements, Alice sends bytes and gets bytes back, Bob's page closes
and Alice sees him leave. A page from an origin outside
``cors_allowed_origins`` is refused. Playwright drives the system browser
(``executable_path``) and never downloads one; without chromium, Playwright,
or the client bundle (npm) the test skips, which CI (``CI=true``) turns into
a failure.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.sio import SIO_BUNDLE, install_socketio_client

SERVER = Path(__file__).with_name("sio_chat_server.py")
BROWSER_ARGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--disable-quic"]  # fmt: skip
TIMEOUT_MS = 10_000


@pytest.fixture
def urls() -> Iterator[list[str]]:
    """The chat server in a subprocess: [allowed page URL, refused page URL, Socket.IO URL]; stopped by pid."""
    if not SIO_BUNDLE.exists():
        npm = shutil.which("npm")
        if npm is None:
            pytest.skip(f"npm is not installed and socket.io-client is not cached at {SIO_BUNDLE}")
        install_socketio_client(npm)
    process = subprocess.Popen(
        [sys.executable, "-u", str(SERVER), str(SIO_BUNDLE)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
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
def browser() -> Iterator[object]:
    executable = shutil.which("chromium") or shutil.which("chromium-browser")
    if executable is None:
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, headless=True, args=BROWSER_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def _open(browser: object, page_url: str, sio_url: str, name: str, transports: str = "") -> object:
    page = browser.new_page()  # type: ignore[attr-defined]
    page.set_default_timeout(TIMEOUT_MS)
    query = f"?name={name}&sio={sio_url}" + (f"&transports={transports}" if transports else "")
    page.goto(page_url + query)
    return page


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
