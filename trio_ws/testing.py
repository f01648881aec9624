"""The in-memory test client, under its historical import path.

The test client drives the app layer (event envelopes, namespaces), so it
lives in :mod:`trio_ws.app.testing`; this module re-exports it, and keeps
``AckError`` as a deprecated alias of :class:`~trio_ws.app.CallError`.
"""

from __future__ import annotations

from ._deprecated import alias_getattr
from .app.calls import CallError
from .app.testing import TestClient, TestConnection

__all__ = ["TestClient", "TestConnection"]

__getattr__ = alias_getattr(__name__, {"AckError": ("trio_ws.CallError", CallError)})
