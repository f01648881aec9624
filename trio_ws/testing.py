"""The in-memory test client, under its historical import path.

The test client drives the app layer (event envelopes, namespaces), so it
lives in :mod:`trio_ws.app.testing`; this module re-exports it, and keeps
``AckError`` as a deprecated alias of :class:`~trio_ws.app.CallError`.
"""

from __future__ import annotations

import warnings
from typing import Any

from .app.testing import TestClient, TestConnection

__all__ = ["TestClient", "TestConnection"]


def __getattr__(name: str) -> Any:
    if name == "AckError":
        warnings.warn(
            "trio_ws.testing.AckError is deprecated; catch trio_ws.CallError (the same class)",
            DeprecationWarning,
            stacklevel=2,
        )
        from .app.calls import CallError

        return CallError
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
