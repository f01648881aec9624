"""Endpoints and WebSocket URLs."""

from __future__ import annotations

import socket
import urllib.parse
from dataclasses import dataclass
from typing import Any

import trio

from .errors import InvalidURL

__all__ = ["Endpoint", "ParsedURL", "parse_websocket_url", "stream_address"]


class Endpoint:
    """A network endpoint: an address, a port and whether TLS is used.

    Args:
        address: an IPv4/IPv6 address or host name.
        port: the TCP port.
        is_ssl: whether the connection uses TLS.
    """

    __slots__ = ("address", "is_ssl", "port")

    def __init__(self, address: str, port: int, is_ssl: bool) -> None:
        self.address = address
        self.port = port
        self.is_ssl = is_ssl

    @property
    def url(self) -> str:
        """The endpoint as a ``ws://`` or ``wss://`` URL (default ports omitted)."""
        scheme = "wss" if self.is_ssl else "ws"
        default = 443 if self.is_ssl else 80
        host = f"[{self.address}]" if ":" in self.address else self.address
        port = "" if self.port == default else f":{self.port}"
        return f"{scheme}://{host}{port}"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Endpoint):
            return NotImplemented
        return (self.address, self.port, self.is_ssl) == (other.address, other.port, other.is_ssl)

    def __hash__(self) -> int:
        return hash((self.address, self.port, self.is_ssl))

    def __repr__(self) -> str:
        # trio-websocket's form (double quotes), also what str() gives.
        return f'Endpoint(address="{self.address}", port={self.port}, is_ssl={self.is_ssl})'


@dataclass(frozen=True)
class ParsedURL:
    """The parts of a ``ws://`` or ``wss://`` URL that a client needs."""

    host: str
    port: int
    resource: str
    is_ssl: bool


def parse_websocket_url(url: str) -> ParsedURL:
    """Split a WebSocket URL into host, port, resource and TLS flag.

    Raises:
        InvalidURL: when the scheme is not ws or wss, or the host is missing.
    """
    parts = urllib.parse.urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("ws", "wss"):
        raise InvalidURL(f"WebSocket URL scheme must be ws or wss, not {parts.scheme!r} in {url!r}")
    if not parts.hostname:
        raise InvalidURL(f"WebSocket URL has no host: {url!r}")
    try:
        port = parts.port
    except ValueError as err:
        raise InvalidURL(f"invalid port in {url!r}") from err
    is_ssl = scheme == "wss"
    resource = parts.path or "/"
    if parts.query:
        resource += "?" + parts.query
    if port is None:
        port = 443 if is_ssl else 80
    return ParsedURL(parts.hostname, port, resource, is_ssl)


def _socket_of(stream: trio.abc.Stream) -> Any:
    inner: Any = stream
    while isinstance(inner, trio.SSLStream):
        inner = inner.transport_stream
    return getattr(inner, "socket", None)


def stream_address(stream: trio.abc.Stream, *, remote: bool) -> Endpoint | str:
    """The local or remote address of a stream.

    Returns:
        an :class:`Endpoint` for TCP, the socket path (possibly empty) for a
        Unix socket, the stream's ``repr()`` for a stream without a socket
        (such as an in-memory stream; trio-websocket does the same), and
        ``"<unknown>"`` for a socket that is already closed.
    """
    sock = _socket_of(stream)
    if sock is None:
        return repr(stream)
    try:
        address = sock.getpeername() if remote else sock.getsockname()
    except OSError:
        return "<unknown>"
    if sock.family == getattr(socket, "AF_UNIX", None):
        return address if isinstance(address, str) else address.decode()
    return Endpoint(address[0], address[1], isinstance(stream, trio.SSLStream))
