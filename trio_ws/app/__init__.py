"""The application layer: routing, request data, handlers, events, namespaces, ACL."""

from __future__ import annotations

from .app import App, Route
from .client import EventClient, NamespaceRefused
from .datastructures import URL, Client, Headers, QueryParams, State
from .endpoint import WebSocketEndpoint
from .envelope import Envelope, EnvelopeError
from .events import (
    AccessControl,
    CallError,
    CallTimeout,
    EventConnection,
    EventError,
    EventHandler,
    Namespace,
)
from .routing import RoutePattern, Router
from .websocket import DecodeError, WebSocket, WebSocketDisconnect

__all__ = [
    "URL",
    "AccessControl",
    "App",
    "CallError",
    "CallTimeout",
    "Client",
    "DecodeError",
    "Envelope",
    "EnvelopeError",
    "EventClient",
    "EventConnection",
    "EventError",
    "EventHandler",
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
    "WebSocketEndpoint",
]
