"""The chat example's page, end to end in headless Chromium (Debian's package).

Two pages join a room, exchange messages, see each other's presence, and one
page's close is seen by the other. The layout is checked at desktop (1280 px)
and phone (390 px) widths: the chat panel stays hidden until joining, nothing
is wider than the screen, every control is on screen and usable, an error is
cleared by a later successful join, and a name cannot be taken twice. The
layout tests save screenshots under ``.cache/screenshots/`` (git-ignored) for
people to look at. Playwright for Python drives the system browser
(``executable_path``); it never downloads one. Without chromium or Playwright
the test skips, which CI (``CI=true``) turns into a failure.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / ".cache" / "screenshots"
CHAT = ROOT / "examples" / "chat" / "app.py"
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


# -- layout at desktop and phone widths ------------------------------------------------

WIDTHS = [pytest.param(1280, 800, id="desktop-1280"), pytest.param(390, 844, id="phone-390")]


def _open(browser: object, width: int, height: int) -> object:
    context = browser.new_context(viewport={"width": width, "height": height})  # type: ignore[attr-defined]
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    return page


def _screenshot(page: object, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"chat-{name}.png"), full_page=True)  # type: ignore[attr-defined]


def _assert_no_sideways_scroll(page: object) -> None:
    """The document is no wider than the viewport, and trying to scroll sideways does nothing."""
    widths = page.evaluate(  # type: ignore[attr-defined]
        "() => [document.documentElement.scrollWidth, document.documentElement.clientWidth,"
        " document.body.scrollWidth]"
    )
    assert widths[0] <= widths[1] and widths[2] <= widths[1], f"page wider than the screen: {widths}"
    scrolled = page.evaluate("() => { window.scrollTo(400, window.scrollY); return window.scrollX; }")  # type: ignore[attr-defined]
    assert scrolled == 0


def _assert_on_screen(page: object, *selectors: str) -> None:
    """Each control is visible, enabled and entirely inside the viewport once scrolled to."""
    width = page.viewport_size["width"]  # type: ignore[attr-defined]
    height = page.viewport_size["height"]  # type: ignore[attr-defined]
    for selector in selectors:
        control = page.locator(selector)  # type: ignore[attr-defined]
        assert control.is_visible(), f"{selector} is not visible"
        assert control.is_enabled(), f"{selector} is disabled"
        control.scroll_into_view_if_needed()
        box = control.bounding_box()
        assert box is not None, selector
        assert box["width"] >= 24 and box["height"] >= 24, f"{selector} is too small to use: {box}"
        assert box["x"] >= 0 and box["x"] + box["width"] <= width, f"{selector} is cut off sideways: {box}"
        assert box["y"] >= 0 and box["y"] + box["height"] <= height, f"{selector} is off screen: {box}"


def _status(page: object) -> str:
    status = page.locator("#status")  # type: ignore[attr-defined]
    return status.inner_text() if status.is_visible() else ""  # type: ignore[no-any-return]


@pytest.mark.parametrize(("width", "height"), WIDTHS)
def test_layout_before_and_after_joining(chat_url: str, browser: object, width: int, height: int) -> None:
    page = _open(browser, width, height)
    page.goto(chat_url)  # type: ignore[attr-defined]
    page.locator("#connection", has_text="connected").wait_for()  # type: ignore[attr-defined]

    # Before joining: only the join form; the chat panel (whose CSS is a grid) stays hidden.
    assert not page.locator("#chat").is_visible()  # type: ignore[attr-defined]
    assert not page.locator("#text").is_visible()  # type: ignore[attr-defined]
    assert _status(page) == ""
    _assert_no_sideways_scroll(page)
    _assert_on_screen(page, "#name", "#room", "#join")
    _screenshot(page, f"{width}-1-start")

    # An error (a name of spaces passes the browser's `required`, not the server).
    page.fill("#name", "   ")  # type: ignore[attr-defined]
    page.click("#join")  # type: ignore[attr-defined]
    page.locator("#status", has_text="BadRequest").wait_for()  # type: ignore[attr-defined]
    assert not page.locator("#chat").is_visible()  # type: ignore[attr-defined]
    _assert_no_sideways_scroll(page)
    _screenshot(page, f"{width}-2-error")

    # A later successful join clears it.
    page.fill("#name", "ada")  # type: ignore[attr-defined]
    page.click("#join")  # type: ignore[attr-defined]
    page.wait_for_selector("#chat:not([hidden])")  # type: ignore[attr-defined]
    page.locator("#status").wait_for(state="hidden")  # type: ignore[attr-defined]
    assert _members(page) == ["ada"]

    # Long unbroken words and a full log still fit the screen.
    long_word = "w" * 300
    for number in range(12):
        page.fill("#text", f"message {number} {long_word if number == 0 else ''}")  # type: ignore[attr-defined]
        page.press("#text", "Enter")  # type: ignore[attr-defined]
    page.locator("#log li", has_text="message 11").wait_for()  # type: ignore[attr-defined]
    _assert_no_sideways_scroll(page)
    _assert_on_screen(page, "#text", "#send", "#members li", "#name", "#room", "#join")
    assert page.evaluate("() => document.activeElement.id") == "text"  # type: ignore[attr-defined]
    page.evaluate("() => window.scrollTo(0, 0)")  # type: ignore[attr-defined]
    _screenshot(page, f"{width}-3-joined")


def test_a_name_cannot_be_taken_twice(chat_url: str, browser: object) -> None:
    first = _open(browser, 1280, 800)
    second = _open(browser, 390, 844)
    _join(first, chat_url, "ada", "lobby")

    second.goto(chat_url)  # type: ignore[attr-defined]
    second.fill("#name", "Ada")  # type: ignore[attr-defined]
    second.click("#join")  # type: ignore[attr-defined]
    second.locator("#status", has_text="NameTaken").wait_for()  # type: ignore[attr-defined]
    assert "already called Ada" in _status(second)
    assert not second.locator("#chat").is_visible()  # type: ignore[attr-defined]
    _screenshot(second, "390-4-name-taken")

    second.fill("#name", "grace")  # type: ignore[attr-defined]
    second.click("#join")  # type: ignore[attr-defined]
    second.wait_for_selector("#chat:not([hidden])")  # type: ignore[attr-defined]
    assert _status(second) == ""
    first.wait_for_function("document.querySelectorAll('#members li').length === 2")  # type: ignore[attr-defined]
    assert _members(first) == ["ada", "grace"]
    assert _members(second) == ["ada", "grace"]
