"""Suite-wide pytest configuration.

Strict mode for CI: with ``CI=true`` a skipped test is reported as a failure,
because CI installs every part the suite needs (peers, compilers, browsers);
a skip there means a missing install step, not a missing part.
"""

from __future__ import annotations

import gc
import os
from collections.abc import Generator

import pytest
from support.node_ws import node_tools, node_ws  # fixtures shared by the Node ws tests

__all__ = ["node_tools", "node_ws"]

STRICT = os.environ.get("CI", "").lower() in ("1", "true", "yes")

#: The environment variables client entry points read for a proxy by default.
PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy", "no_proxy")


@pytest.fixture(autouse=True)
def _no_proxy_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Connect directly unless a test sets a proxy: a developer's or a CI
    machine's proxy settings must not reroute the suite's loopback traffic."""
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, None, None]:
    outcome = yield
    report = outcome.get_result()
    if STRICT and report.skipped and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.longrepr = f"skipped in CI (CI=true makes skips fail): {reason}"


@pytest.hookimpl(trylast=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> None:
    """A slow test frees its own cyclic garbage before the next test starts.

    The 10,000-member hub test leaves about 1.8 million objects in reference
    cycles; left alone, the interpreter's next full collection ran in whichever
    test came next (11 s at load 15 on two cores) and tripped that test's
    ``fail_after``. Collected here, the pause is billed to the slow test's
    teardown, which no timer bounds.
    """
    if item.get_closest_marker("slow") is not None:
        gc.collect()
