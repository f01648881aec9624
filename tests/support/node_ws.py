"""Node with the ``ws`` package, for the tests that need a Node peer.

``ws@8`` is installed once with npm into ``.cache/node-ws``. The fixtures are
registered for the whole suite by ``tests/conftest.py``; tests skip (with the
reason) when node is missing, which CI (``CI=true``) turns into a failure.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
import trio

PROJECT_ROOT = Path(__file__).resolve().parents[2]
NODE_WS_DIR = PROJECT_ROOT / ".cache" / "node-ws"
WS_PACKAGE_JSON = NODE_WS_DIR / "node_modules" / "ws" / "package.json"
#: Upper bound for the one-time ``npm install``.
NPM_INSTALL_TIMEOUT = 30


@dataclass
class NodeWs:
    """The node binary and an environment in which ``ws`` can be loaded."""

    node: str
    env: dict[str, str]


@pytest.fixture(scope="session")
def node_tools() -> tuple[str, str | None]:
    """Paths of node and npm; skips (with the reason) when they are missing.

    A sync fixture on purpose: a skip raised inside pytest-trio's run loses its reason.
    """
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed (needed for the tests with a Node ws peer)")
    npm = shutil.which("npm")
    if npm is None and not WS_PACKAGE_JSON.exists():
        pytest.skip(f"npm is not installed and ws@8 is not cached in {NODE_WS_DIR}")
    return node, npm


@pytest.fixture
async def node_ws(node_tools: tuple[str, str | None]) -> NodeWs:
    """Node with ``ws@8`` loadable (installed once into NODE_WS_DIR)."""
    node, npm = node_tools
    if not WS_PACKAGE_JSON.exists():
        assert npm is not None
        NODE_WS_DIR.mkdir(parents=True, exist_ok=True)
        with trio.fail_after(NPM_INSTALL_TIMEOUT):
            result = await trio.run_process(
                [npm, "install", "--prefix", str(NODE_WS_DIR), "ws@8", "--no-audit", "--no-fund"],
                stdin=subprocess.DEVNULL,
                capture_stdout=True,
                capture_stderr=True,
                check=False,
            )
        if result.returncode != 0:
            pytest.fail(f"npm install ws@8 failed ({result.returncode}):\n{result.stderr.decode(errors='replace')}")
    env = dict(os.environ, TRIO_WS_NODE_WS_DIR=str(NODE_WS_DIR), NODE_PATH=str(NODE_WS_DIR / "node_modules"))
    return NodeWs(node, env)
