"""trio_ws: WebSocket client and server for Trio, compatible with trio-websocket.

``import trio_ws as trio_websocket`` runs code written for trio-websocket 0.12.
"""

from __future__ import annotations

from ._deprecated import alias_getattr
from .app import (
    App,
    CallError,
    CallTimeout,
    EventClient,
    EventConnection,
    EventError,
    Namespace,
    NamespaceRefused,
    WebSocket,
    WebSocketHandler,
)
from .client import (
    connect_websocket,
    connect_websocket_unix,
    connect_websocket_url,
    open_websocket,
    open_websocket_unix,
    open_websocket_url,
    wrap_client_stream,
)
from .close import CloseReason
from .compression import Deflate
from .connection import WebSocketConnection
from .endpoint import Endpoint
from .errors import (
    ConcurrencyError,
    ConnectionClosed,
    ConnectionClosedError,
    ConnectionClosedOK,
    ConnectionRejected,
    ConnectionTimeout,
    DisconnectionTimeout,
    HandshakeError,
    InvalidURL,
    RequestBodyError,
    TLSHandshakeError,
    WebSocketError,
)
from .heartbeat import heartbeat
from .hub import DeliveryReport, HistoryPolicy, Hub, JoinResult, Member, PresenceEvent, StreamPosition
from .masking import HAS_SPEEDUPS
from .options import (
    CONN_TIMEOUT,
    MAX_HANDSHAKE_HEADERS,
    MAX_HANDSHAKE_LINE,
    MAX_MESSAGE_SIZE,
    MESSAGE_QUEUE_SIZE,
    PING_INTERVAL,
    PING_TIMEOUT,
    RECEIVE_BYTES,
    ConnectionOptions,
)
from .prepared import PreparedMessage
from .proxy import ProxyError
from .reconnect import Backoff, Connections, connect_forever
from .request import WebSocketRequest
from .server import WebSocketServer, serve_websocket, serve_websocket_unix, wrap_server_stream

__version__ = "0.1.0"

__all__ = [
    "App",
    "CallError",
    "CallTimeout",
    "EventClient",
    "EventConnection",
    "NamespaceRefused",
    "EventError",
    "Namespace",
    "WebSocket",
    "WebSocketHandler",
    "CONN_TIMEOUT",
    "MAX_HANDSHAKE_HEADERS",
    "MAX_HANDSHAKE_LINE",
    "MAX_MESSAGE_SIZE",
    "MESSAGE_QUEUE_SIZE",
    "Member",
    "PING_INTERVAL",
    "PING_TIMEOUT",
    "PreparedMessage",
    "PresenceEvent",
    "RECEIVE_BYTES",
    "CloseReason",
    "ConcurrencyError",
    "ConnectionClosed",
    "ConnectionClosedError",
    "ConnectionClosedOK",
    "ConnectionOptions",
    "ConnectionRejected",
    "ConnectionTimeout",
    "RequestBodyError",
    "Deflate",
    "DisconnectionTimeout",
    "DeliveryReport",
    "Endpoint",
    "HandshakeError",
    "HAS_SPEEDUPS",
    "Hub",
    "HistoryPolicy",
    "JoinResult",
    "StreamPosition",
    "InvalidURL",
    "TLSHandshakeError",
    "ProxyError",
    "Backoff",
    "Connections",
    "connect_forever",
    "WebSocketConnection",
    "WebSocketError",
    "WebSocketRequest",
    "WebSocketServer",
    "__version__",
    "connect_websocket",
    "connect_websocket_unix",
    "connect_websocket_url",
    "heartbeat",
    "open_websocket",
    "open_websocket_unix",
    "open_websocket_url",
    "serve_websocket",
    "serve_websocket_unix",
    "wrap_client_stream",
    "wrap_server_stream",
]

#: ``WebSocketEndpoint`` was the class-based handler's name, too close to :class:`Endpoint` (an address).
__getattr__ = alias_getattr(__name__, {"WebSocketEndpoint": ("trio_ws.WebSocketHandler", WebSocketHandler)})
