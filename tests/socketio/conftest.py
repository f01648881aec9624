"""Node with the official ``socket.io-client`` package, for the tests that need a Socket.IO peer.

``socket.io-client@4`` is installed once with npm into ``.cache/node-socketio``;
the tests skip (with the reason) when node or npm is missing, which CI
(``CI=true``) turns into a failure.
"""

from __future__ import annotations

import importlib.util
import os

import pytest
import trio
from support.node_ws import NodeWs
from support.sio import NODE_SIO_DIR, SIO_PACKAGE_JSON, install_socketio_client


@pytest.fixture
async def node_socketio(node_tools: tuple[str, str | None]) -> NodeWs:
    """Node with ``socket.io-client@4`` loadable (installed once into NODE_SIO_DIR)."""
    node, npm = node_tools
    if not SIO_PACKAGE_JSON.exists():
        if npm is None:
            pytest.skip(f"npm is not installed and socket.io-client is not cached in {NODE_SIO_DIR}")
        await trio.to_thread.run_sync(install_socketio_client, npm)
    env = dict(os.environ, NODE_PATH=str(NODE_SIO_DIR / "node_modules"))
    return NodeWs(node, env)


@pytest.fixture
def python_socketio() -> None:
    """Skips (with the reason) when python-socketio's client is not installed.

    A sync fixture, so the skip keeps its reason; ``find_spec`` rather than
    ``importorskip``, because this ``tests/socketio`` folder would import as a
    namespace package named ``socketio``.
    """
    spec = importlib.util.find_spec("socketio")
    if spec is None or spec.origin is None:
        pytest.skip("python-socketio's client (test extra) is not installed")
