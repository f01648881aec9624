"""Client connections through proxies: HTTP CONNECT and SOCKS (no WebSocket logic here).

Theory of operation. A client entry point's ``proxy`` argument is resolved
once per connection by :func:`resolve_proxy`: a proxy URL is used as given,
``None`` connects directly, and the default (``True``) reads the standard
environment variables the way curl does (:func:`proxy_from_environment`).
:func:`open_proxy_stream` then opens a TCP connection to the proxy and asks
it for a tunnel to the destination; the caller runs TLS (for ``wss://``,
with the destination's name for SNI and verification) and the WebSocket
handshake inside that tunnel, exactly as over a direct connection.

HTTP proxies are spoken to with h11 (``CONNECT host:port``, Basic
authentication from the URL's user and password); SOCKS5 and SOCKS4 use the
``python-socks`` library (install the ``socks`` extra).
"""

from __future__ import annotations

import base64
import ipaddress
import math
import os
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import h11
import trio

from .errors import TRANSPORT_ERRORS, HandshakeError
from .scopes import leaves

__all__ = [
    "PROXY_DOC",
    "ProxyArgument",
    "ProxyError",
    "ProxyURL",
    "open_proxy_stream",
    "proxy_bypassed",
    "proxy_from_environment",
    "resolve_proxy",
]

#: The type of the ``proxy`` argument of the client entry points.
ProxyArgument = str | Literal[True] | None

#: The ``proxy`` option's description, shared by every client entry point.
PROXY_DOC = (
    "the proxy to connect through: a URL (``http://user:password@host:port``, "
    "``socks5://``, ``socks5h://``, ``socks4://``, ``socks4a://``; SOCKS needs the "
    "``socks`` extra), None for a direct connection, or True (the default) to read "
    "``https_proxy`` (``wss://``) or ``http_proxy`` (``ws://``), then ``all_proxy`` "
    "(each also in upper case) and ``no_proxy`` from the environment."
)

_SCHEMES = {"http": 80, "socks5": 1080, "socks5h": 1080, "socks4": 1080, "socks4a": 1080}
_MAX_RESPONSE = 16384


class ProxyError(HandshakeError):
    """The proxy could not be reached, or refused to open the tunnel.

    Attributes:
        proxy: the proxy's ``host:port``.
        status_code: the HTTP status of an HTTP proxy's refusal, else None.
        retryable: whether another attempt may succeed (the proxy could not
            be reached, or it answered 5xx or 429; not a refused login).
    """

    def __init__(self, message: str, proxy: str, status_code: int | None = None, *, retryable: bool) -> None:
        super().__init__(message)
        self.proxy = proxy
        self.status_code = status_code
        self.retryable = retryable


@dataclass(frozen=True)
class ProxyURL:
    """A parsed proxy URL.

    Attributes:
        scheme: ``http``, ``socks5``, ``socks5h``, ``socks4`` or ``socks4a``.
        host: the proxy's host.
        port: the proxy's port (default 80 for http, 1080 for SOCKS).
        username: the user name from the URL (percent-decoded), or None.
        password: the password from the URL (percent-decoded), or None.
    """

    scheme: str
    host: str
    port: int
    username: str | None = None
    password: str | None = None

    @classmethod
    def parse(cls, url: str) -> ProxyURL:
        """Parse ``url``.

        Raises:
            ValueError: for an unsupported scheme, a missing host or a bad port.
        """
        parts = urllib.parse.urlsplit(url if "://" in url else f"http://{url}")
        scheme = parts.scheme.lower()
        if scheme not in _SCHEMES:
            raise ValueError(f"unsupported proxy scheme {parts.scheme!r} in {_hide_password(url)!r}")
        if not parts.hostname:
            raise ValueError(f"proxy URL has no host: {_hide_password(url)!r}")
        try:
            port = parts.port or _SCHEMES[scheme]
        except ValueError as err:
            raise ValueError(f"invalid port in proxy URL {_hide_password(url)!r}") from err
        username = urllib.parse.unquote(parts.username) if parts.username is not None else None
        password = urllib.parse.unquote(parts.password) if parts.password is not None else None
        return cls(scheme, parts.hostname, port, username, password)

    @property
    def address(self) -> str:
        """``host:port``, as error messages show the proxy."""
        return f"{_bracket(self.host)}:{self.port}"


def _bracket(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _hide_password(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))


def _environ(names: tuple[str, ...], environ: Mapping[str, str]) -> str | None:
    for name in names:
        for variant in (name, name.upper()):
            value = environ.get(variant, "").strip()
            if value:
                return value
    return None


def proxy_bypassed(host: str, port: int, no_proxy: str) -> bool:
    """Whether ``no_proxy`` (comma- or space-separated) exempts ``host:port``.

    Entries are ``*`` (everything), domain names (``example.com`` and
    ``.example.com`` both match the domain and its subdomains), IP addresses
    and networks (``10.0.0.0/8``, ``::1``); ``entry:port`` limits an entry to
    one port. Names are compared without case, and not resolved.
    """
    host = host.strip("[]").lower().rstrip(".")
    try:
        address: ipaddress.IPv4Address | ipaddress.IPv6Address | None = ipaddress.ip_address(host)
    except ValueError:
        address = None
    for entry in no_proxy.replace(",", " ").split():
        entry = entry.lower()
        if entry == "*":
            return True
        entry_port: int | None = None
        if entry.startswith("["):
            inside, _, rest = entry[1:].partition("]")
            entry, entry_port = inside, int(rest[1:]) if rest[1:].isdigit() else None
        elif entry.count(":") == 1:
            name, _, digits = entry.partition(":")
            if digits.isdigit():
                entry, entry_port = name, int(digits)
        if entry_port is not None and entry_port != port:
            continue
        if address is not None:
            try:
                if address in ipaddress.ip_network(entry, strict=False):
                    return True
            except ValueError:
                pass
            continue
        domain = entry.lstrip(".").rstrip(".")
        if domain and (host == domain or host.endswith("." + domain)):
            return True
    return False


def proxy_from_environment(
    host: str, port: int, *, is_ssl: bool, environ: Mapping[str, str] | None = None
) -> str | None:
    """The proxy URL the environment gives for a connection to ``host:port``, or None.

    ``wss://`` reads ``https_proxy``, ``ws://`` reads ``http_proxy``; both fall
    back to ``all_proxy``. Lower-case names win over upper-case ones; empty
    values count as unset. ``no_proxy`` (see :func:`proxy_bypassed`) exempts
    hosts.
    """
    env = os.environ if environ is None else environ
    url = _environ(("https_proxy" if is_ssl else "http_proxy", "all_proxy"), env)
    if url is None:
        return None
    if proxy_bypassed(host, port, _environ(("no_proxy",), env) or ""):
        return None
    return url


def resolve_proxy(proxy: ProxyArgument, host: str, port: int, *, is_ssl: bool) -> ProxyURL | None:
    """The proxy for a connection to ``host:port``, from a client's ``proxy`` argument.

    Raises:
        ValueError: for a proxy URL that cannot be used.
        TypeError: for a ``proxy`` that is not a string, True or None.
    """
    if proxy is None:
        return None
    if proxy is True:
        found = proxy_from_environment(host, port, is_ssl=is_ssl)
        return None if found is None else ProxyURL.parse(found)
    if isinstance(proxy, str):
        return ProxyURL.parse(proxy)
    raise TypeError(f"proxy must be a URL, True or None, not {proxy!r}")


async def open_proxy_stream(
    proxy: ProxyURL, host: str, port: int, *, max_response: int = _MAX_RESPONSE
) -> trio.abc.Stream:
    """Connect to ``proxy`` and open a tunnel to ``host:port``.

    Args:
        proxy: the proxy.
        host: the destination's host name or address.
        port: the destination's port.
        max_response: the largest HTTP proxy response head accepted, in bytes.

    Returns:
        a stream whose bytes go to and come from the destination.

    Raises:
        ProxyError: when the proxy cannot be reached, refuses the login or
            the destination, or breaks its protocol.
        ImportError: for a SOCKS proxy without ``python-socks`` installed.

    Cancelling is safe: the connection to the proxy is closed.
    """
    if proxy.scheme == "http":
        return await _http_connect(proxy, host, port, max_response)
    return await _socks_connect(proxy, host, port)


async def _http_connect(proxy: ProxyURL, host: str, port: int, max_response: int) -> trio.abc.Stream:
    try:
        stream: trio.abc.Stream = await trio.open_tcp_stream(proxy.host, proxy.port)
    except OSError as err:
        raise ProxyError(
            f"could not connect to proxy {proxy.address}: {_reason(err)}", proxy.address, retryable=True
        ) from err
    try:
        await _send_connect(stream, proxy, host, port, max_response)
    except BaseException:
        await trio.aclose_forcefully(stream)
        raise
    return stream


async def _send_connect(stream: trio.abc.Stream, proxy: ProxyURL, host: str, port: int, max_response: int) -> None:
    target = f"{_bracket(host)}:{port}"
    headers = [("Host", target)]
    if proxy.username is not None:
        credentials = f"{proxy.username}:{proxy.password or ''}".encode()
        headers.append(("Proxy-Authorization", "Basic " + base64.b64encode(credentials).decode("ascii")))
    conn = h11.Connection(h11.CLIENT, max_incomplete_event_size=max_response)
    data = conn.send(h11.Request(method="CONNECT", target=target, headers=headers))
    data += conn.send(h11.EndOfMessage()) or b""
    try:
        await stream.send_all(data)
        while True:
            try:
                event = conn.next_event()
            except h11.RemoteProtocolError as err:
                raise ProxyError(
                    f"proxy {proxy.address} sent an invalid answer to CONNECT: {err}", proxy.address, retryable=False
                ) from err
            if event is h11.NEED_DATA:
                chunk = await stream.receive_some(max_response)
                if not chunk:
                    raise ProxyError(
                        f"proxy {proxy.address} closed the connection during CONNECT", proxy.address, retryable=True
                    )
                conn.receive_data(bytes(chunk))
            elif isinstance(event, h11.Response):
                break
    except TRANSPORT_ERRORS as err:
        raise ProxyError(
            f"connection to proxy {proxy.address} failed during CONNECT: {err}", proxy.address, retryable=True
        ) from err
    status = event.status_code
    if not 200 <= status < 300:
        raise ProxyError(
            f"proxy {proxy.address} refused CONNECT to {target}: HTTP {status} {event.reason.decode('latin-1')}",
            proxy.address,
            status,
            retryable=status >= 500 or status == 429,
        )
    if conn.trailing_data[0]:
        # The destination cannot have spoken yet: neither TLS nor the
        # WebSocket handshake lets the server talk first.
        raise ProxyError(f"proxy {proxy.address} sent data after its CONNECT answer", proxy.address, retryable=False)


def _reason(error: OSError) -> str:
    cause = leaves(error.__cause__)[0] if error.__cause__ is not None else None
    if isinstance(cause, OSError) and cause.strerror:
        return cause.strerror
    return error.strerror or str(error)


async def _socks_connect(proxy: ProxyURL, host: str, port: int) -> trio.abc.Stream:
    try:
        from python_socks import ProxyConnectionError, ProxyTimeoutError, ProxyType
        from python_socks import ProxyError as SocksError
        from python_socks.async_.trio import Proxy
    except ImportError as err:
        raise ImportError(
            f"a {proxy.scheme}:// proxy needs python-socks: pip install 'trio-ws[socks]' ({err})"
        ) from err
    kind = ProxyType.SOCKS5 if proxy.scheme.startswith("socks5") else ProxyType.SOCKS4
    socks = Proxy(
        kind,
        proxy.host,
        proxy.port,
        username=proxy.username,
        password=proxy.password,
        rdns=proxy.scheme in ("socks5h", "socks4a"),
    )
    name = f"{proxy.scheme} proxy {proxy.address}"
    try:
        sock = await socks.connect(host, port, timeout=math.inf)
    except ProxyConnectionError as err:
        raise ProxyError(f"could not connect to {name}: {err}", proxy.address, retryable=True) from err
    except ProxyTimeoutError as err:  # pragma: no cover - our own connect_timeout fires first
        raise ProxyError(f"{name} timed out", proxy.address, retryable=True) from err
    except SocksError as err:
        # SOCKS5 reply codes 1-6 (RFC 1928 §6) are failures on the way to the
        # destination, which a later attempt may not meet; the rest (refused
        # login, rule set, unsupported command) will not change.
        code = getattr(err, "error_code", None)
        raise ProxyError(
            f"{name} refused CONNECT to {_bracket(host)}:{port}: {err}",
            proxy.address,
            retryable=isinstance(code, int) and 1 <= code <= 6 and kind is ProxyType.SOCKS5,
        ) from err
    except OSError as err:
        raise ProxyError(f"connection to {name} failed: {err}", proxy.address, retryable=True) from err
    return trio.SocketStream(sock)
