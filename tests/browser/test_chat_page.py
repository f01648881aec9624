"""The chat example's page, end to end in headless Chromium (Debian's package).

Two pages join a room, exchange messages, see each other's presence, and one
page's close is seen by the other. Playwright for Python drives the system
browser (``executable_path``); it never downloads one. Without chromium or
Playwright the test skips, which CI (``CI=true``) turns into a failure.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHAT = ROOT / "examples" / "chat" / "app.py"
BROWSER_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
]
TIMEOUT_MS = 10_000


@pytest.fixture
def chat_url() -> Iterator[str]:
    """The chat example served by a subprocess on a free port; stopped by its pid."""
    process = subprocess.Popen(
        [sys.executable, "-u", str(CHAT), "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.startswith("chat running at "), (line, process.stderr.read() if process.poll() else "")
        yield line.split()[3]
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


def _join(page: object, url: str, name: str, room: str) -> None:
    page.goto(url)  # type: ignore[attr-defined]
    page.fill("#name", name)  # type: ignore[attr-defined]
    page.fill("#room", room)  # type: ignore[attr-defined]
    page.click("#join")  # type: ignore[attr-defined]
    page.wait_for_selector("#chat:not([hidden])", timeout=TIMEOUT_MS)  # type: ignore[attr-defined]


def _members(page: object) -> list[str]:
    return page.locator("#members li").all_inner_texts()  # type: ignore[attr-defined,no-any-return]


def test_two_pages_chat_and_see_presence(chat_url: str, browser: object) -> None:
    alice = browser.new_page()  # type: ignore[attr-defined]
    bob = browser.new_page()  # type: ignore[attr-defined]
    alice.set_default_timeout(TIMEOUT_MS)
    bob.set_default_timeout(TIMEOUT_MS)

    _join(alice, chat_url, "alice", "lobby")
    _join(bob, chat_url, "bob", "lobby")

    # Presence: each page lists both names; alice saw bob arrive.
    alice.wait_for_function("document.querySelectorAll('#members li').length === 2")
    bob.wait_for_function("document.querySelectorAll('#members li').length === 2")
    assert _members(alice) == ["alice", "bob"]
    assert _members(bob) == ["alice", "bob"]
    alice.locator("#log li", has_text="bob joined").wait_for()

    # Messages both ways, typed and sent through the forms.
    alice.fill("#text", "hello bob")
    alice.click("#send")
    bob.locator("#log li", has_text="alice: hello bob").wait_for()
    bob.fill("#text", "hi alice")
    bob.press("#text", "Enter")
    alice.locator("#log li", has_text="bob: hi alice").wait_for()
    assert "alice: hello bob" in alice.locator("#log").inner_text()

    # One page closes: the other sees the leave and the member list shrink.
    bob.close()
    alice.locator("#log li", has_text="bob left").wait_for()
    alice.wait_for_function("document.querySelectorAll('#members li').length === 1")
    assert _members(alice) == ["alice"]


def test_page_loads_the_shipped_client(chat_url: str, browser: object) -> None:
    page = browser.new_page()  # type: ignore[attr-defined]
    response = page.goto(chat_url.rstrip("/") + "/trio_ws.js")
    assert response is not None and response.status == 200
    assert "export function connect" in page.content() or "export function connect" in response.text()
