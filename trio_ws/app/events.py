"""Named events over the envelope (kept for imports of earlier releases).

The event layer lives in modules named after its concepts:
:mod:`~trio_ws.app.handlers` (handlers, :class:`EventError`),
:mod:`~trio_ws.app.acl` (:class:`AccessControl`),
:mod:`~trio_ws.app.namespaces` (:class:`Namespace`, hub room names),
:mod:`~trio_ws.app.calls` (server calls, :class:`CallError`,
:class:`CallTimeout`), :mod:`~trio_ws.app.registry` (the app's
:class:`HandlerRegistry`) and :mod:`~trio_ws.app.session` (the connection
and its dispatch loop). Every name importable from here before still is.
"""

from __future__ import annotations

from .acl import AccessControl
from .calls import CallError, CallTimeout
from .handlers import ErrorHook, EventError, EventHandler, HandlerFunction
from .namespaces import Namespace, hub_room, is_connection_id, namespace_room
from .session import EventConnection, EventSession

__all__ = [
    "AccessControl",
    "CallError",
    "CallTimeout",
    "ErrorHook",
    "EventConnection",
    "EventError",
    "EventHandler",
    "EventSession",
    "HandlerFunction",
    "Namespace",
    "hub_room",
    "is_connection_id",
    "namespace_room",
]
