"""Fixtures for the RFC 6455 conformance tests (raw peer <-> trio_ws)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

# The helper modules live beside this file; make them importable whatever
# import mode pytest runs in.
_HERE = str(Path(__file__).parent)
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)


@pytest.fixture(params=["server", "client"], ids=["ws-server", "ws-client"])
def side(request: pytest.FixtureRequest) -> str:
    """Which role trio_ws plays; the raw peer plays the other one."""
    return str(request.param)
