"""The application layer: routing, request data, handlers, events, namespaces, ACL."""

from __future__ import annotations

from .._deprecated import alias_getattr
from .acl import AccessControl
from .app import App, Route
from .calls import CallError, CallTimeout
from .client import EventClient, NamespaceRefused
from .datastructures import URL, Client, Headers, QueryParams, State
from .endpoint import WebSocketHandler
from .envelope import EnvelopeError, EventEnvelope
from .handlers import EventError, EventHandler
from .namespaces import Namespace
from .registry import HandlerRegistry
from .routing import RoutePattern, Router
from .session import EventConnection
from .websocket import DecodeError, WebSocket, WebSocketDisconnect

__all__ = [
    "URL",
    "AccessControl",
    "App",
    "CallError",
    "CallTimeout",
    "Client",
    "DecodeError",
    "EventEnvelope",
    "EnvelopeError",
    "EventClient",
    "EventConnection",
    "EventError",
    "EventHandler",
    "HandlerRegistry",
    "Headers",
    "Namespace",
    "NamespaceRefused",
    "QueryParams",
    "Route",
    "RoutePattern",
    "Router",
    "State",
    "WebSocket",
    "WebSocketDisconnect",
    "WebSocketHandler",
]

__getattr__ = alias_getattr(
    __name__,
    {
        "Envelope": ("trio_ws.app.EventEnvelope", EventEnvelope),
        "WebSocketEndpoint": ("trio_ws.app.WebSocketHandler", WebSocketHandler),
    },
)
