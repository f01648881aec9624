"""The application layer: routing, request data, handlers, events, namespaces, ACL."""

from __future__ import annotations

from .acl import AccessControl
from .app import App, Route
from .calls import CallError, CallTimeout
from .client import EventClient, NamespaceRefused
from .datastructures import URL, Client, Headers, QueryParams, State
from .endpoint import WebSocketEndpoint
from .envelope import Envelope, EnvelopeError
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
    "Envelope",
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
    "WebSocketEndpoint",
]
