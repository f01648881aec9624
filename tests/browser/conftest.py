"""The browser tests' shared set-up: headless Chromium (Debian's package) driven by Playwright.

Playwright launches the system browser (``executable_path``) and never
downloads one. Without chromium or Playwright a test skips (with the
reason), which CI (``CI=true``) turns into a failure.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest

#: Chromium's switches for a headless run in a container, without background traffic.
BROWSER_ARGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--disable-quic"]  # fmt: skip


@pytest.fixture
def browser() -> Iterator[object]:
    """A headless Chromium (Playwright's sync API), closed after the test."""
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
