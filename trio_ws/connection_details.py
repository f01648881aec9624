"""What a :class:`~trio_ws.WebSocketConnection` is: its side, addresses, handshake and negotiated options.

Part of :class:`~trio_ws.WebSocketConnection` (a mixin of it): the
read-only properties that describe the connection. None of them does I/O,
and only ``latency`` (the last answered ping) changes with traffic.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import trio

from .endpoint import Endpoint, stream_address
from .log import ConnectionLogger
from .pings import PingTracker
from .protocol import ProtocolCore
from .tls import peer_certificate

if TYPE_CHECKING:
    from .handshake import RawHeaders as Headers

__all__ = ["ConnectionDetails"]


class ConnectionDetails:
    """The descriptive properties of :class:`~trio_ws.WebSocketConnection` (not used on its own)."""

    _stream: trio.abc.Stream
    _core: ProtocolCore
    _path: str
    _subprotocol: str | None
    _handshake_headers: Headers
    _pings: PingTracker
    _logger: ConnectionLogger

    @property
    def is_client(self) -> bool:
        """True on the client side of the connection."""
        return self._core.is_client

    @property
    def is_server(self) -> bool:
        """True on the server side of the connection."""
        return not self._core.is_client

    @property
    def local(self) -> Endpoint | str:
        """The local address: an :class:`Endpoint`, a Unix socket path, or the stream's repr()."""
        return stream_address(self._stream, remote=False)

    @property
    def remote(self) -> Endpoint | str:
        """The peer's address: an :class:`Endpoint`, a Unix socket path, or the stream's repr()."""
        return stream_address(self._stream, remote=True)

    @property
    def peer_certificate(self) -> dict[str, Any] | None:
        """The peer's TLS certificate as ``ssl`` decodes it, or None (see :func:`trio_ws.tls.peer_certificate`).

        A server sees a client certificate only when its ``ssl.SSLContext``
        asks for one (``verify_mode``) and it passed verification.
        """
        return peer_certificate(self._stream)

    @property
    def path(self) -> str:
        """The request target (path and query) of the opening handshake."""
        return self._path

    @property
    def subprotocol(self) -> str | None:
        """The negotiated subprotocol, or None."""
        return self._subprotocol

    @property
    def handshake_headers(self) -> Headers:
        """The headers the peer sent in the opening handshake, as bytes pairs."""
        return self._handshake_headers

    @property
    def latency(self) -> float | None:
        """The round trip of the last answered ping in seconds, or None yet."""
        return self._pings.latency

    @property
    def compression(self) -> bool:
        """True when permessage-deflate was negotiated."""
        return self._core.extension is not None

    @property
    def shares_frames(self) -> bool:
        """True when prepared messages go out here as shared, pre-built frames."""
        return self._core.shared_framing_key()[0]

    @property
    def connection_id(self) -> int:
        """A process-wide id of this connection, as shown in log records."""
        return self._logger.conn_id
