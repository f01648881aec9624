"""Tests of trio_ws.proxy: HTTP CONNECT and SOCKS5 tunnels through real proxies on loopback.

tinyproxy (HTTP CONNECT, Basic authentication) and microsocks (SOCKS5, user
and password) are started by the tests (tests/support/proxies.py); the
destinations are trio_ws servers, plain and TLS (trustme).
"""

from __future__ import annotations

import re
import ssl
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import pytest
import trio
import trustme
from support.processes import cli_command
from support.proxies import RunningProxy, dante, free_port, microsocks, tinyproxy

import trio_ws
from trio_ws import Endpoint, HandshakeError, WebSocketRequest, WebSocketServer
from trio_ws.proxy import ProxyError, ProxyURL, proxy_bypassed, proxy_from_environment, resolve_proxy

TIMEOUT = 10.0
QUIET = {"ping_interval": None}


class Destination:
    """A trio_ws echo server that records the peer address and TLS server name of each connection."""

    def __init__(self) -> None:
        self.peers: list[Endpoint | str] = []
        self.server_names: list[str | None] = []
        self.port = 0
        self.ca = trustme.CA()

    async def handler(self, request: WebSocketRequest) -> None:
        self.peers.append(request.remote)
        ws = await request.accept()
        async for message in ws:
            await ws.send_message(message)

    def server_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.ca.issue_cert("localhost", "127.0.0.1").configure_cert(context)

        def record(sock: ssl.SSLObject, name: str | None, context: ssl.SSLContext) -> None:
            self.server_names.append(name)

        context.sni_callback = record  # type: ignore[assignment]
        return context

    def client_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context()
        self.ca.configure_trust(context)
        return context


@asynccontextmanager
async def destination(*, tls: bool = False) -> AsyncIterator[Destination]:
    dest = Destination()
    host = "127.0.0.1"
    async with trio.open_nursery() as nursery:
        server: WebSocketServer = await nursery.start(
            partial(trio_ws.serve_websocket, dest.handler, host, 0, dest.server_context() if tls else None, **QUIET)
        )
        dest.port = server.port
        yield dest
        nursery.cancel_scope.cancel()


@dataclass(frozen=True)
class Seen:
    """The client side's addresses, read while the connection was open."""

    local: Endpoint | str
    remote: Endpoint | str

    @classmethod
    def of(cls, ws: trio_ws.WebSocketConnection) -> Seen:
        return cls(ws.local, ws.remote)


async def echo_through(url: str, proxy: str | bool | None, context: ssl.SSLContext | None = None) -> Seen:
    with trio.fail_after(TIMEOUT):
        async with trio_ws.open_websocket_url(url, context, proxy=proxy, **QUIET) as ws:  # type: ignore[arg-type]
            await ws.send_message("through")
            assert await ws.get_message() == "through"
            return Seen.of(ws)


def assert_tunnelled(ws: Seen, dest: Destination, proxy: RunningProxy) -> None:
    """The client talked to the proxy's port; the server saw another connection (the proxy's)."""
    remote = ws.remote
    assert isinstance(remote, Endpoint) and remote.port == proxy.port
    (peer,) = dest.peers
    local = ws.local
    assert isinstance(peer, Endpoint) and isinstance(local, Endpoint)
    assert peer.port != local.port, "the server's peer is the proxy, not the client"


# -- parsing and the environment (no sockets) ------------------------------------------


def test_proxy_url_parses_credentials_and_default_ports() -> None:
    assert ProxyURL.parse("http://ann:s%40cret@proxy.local:3128") == ProxyURL(
        "http", "proxy.local", 3128, "ann", "s@cret"
    )
    assert ProxyURL.parse("proxy.local") == ProxyURL("http", "proxy.local", 80)
    assert ProxyURL.parse("socks5h://[::1]").address == "[::1]:1080"


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://proxy:21", "unsupported proxy scheme 'ftp'"),
        ("https://proxy:443", "unsupported proxy scheme 'https'"),
        ("http://:3128", "proxy URL has no host"),
        ("http://ann:secret@proxy:99999", r"invalid port in proxy URL 'http://ann:\*\*\*@proxy:99999'"),
    ],
)
def test_proxy_url_errors_name_the_url_without_its_password(url: str, message: str) -> None:
    with pytest.raises(ValueError, match=message) as caught:
        ProxyURL.parse(url)
    assert "secret" not in str(caught.value)


@pytest.mark.parametrize(
    ("host", "port", "no_proxy", "bypassed"),
    [
        ("example.com", 443, "example.com", True),
        ("api.example.com", 443, "example.com", True),
        ("api.example.com", 443, ".example.com", True),
        ("badexample.com", 443, "example.com", False),
        ("EXAMPLE.com", 443, "example.COM", True),
        ("example.com", 443, "example.com:8443", False),
        ("example.com", 8443, "example.com:8443", True),
        ("10.1.2.3", 80, "10.0.0.0/8", True),
        ("11.1.2.3", 80, "10.0.0.0/8", False),
        ("127.0.0.1", 80, "localhost, 127.0.0.1", True),
        ("::1", 80, "::1", True),
        ("::1", 80, "[::1]:80", True),
        ("::1", 81, "[::1]:80", False),
        ("anything", 1, "*", True),
        ("example.org", 443, "example.com other.net", False),
        ("example.org", 443, "", False),
    ],
)
def test_proxy_bypassed(host: str, port: int, no_proxy: str, bypassed: bool) -> None:
    assert proxy_bypassed(host, port, no_proxy) is bypassed


def test_proxy_from_environment_picks_the_variable_by_scheme() -> None:
    env = {"http_proxy": "http://plain:1", "HTTPS_PROXY": "http://secure:2", "ALL_PROXY": "socks5://all:3"}
    assert proxy_from_environment("example.com", 80, is_ssl=False, environ=env) == "http://plain:1"
    assert proxy_from_environment("example.com", 443, is_ssl=True, environ=env) == "http://secure:2"
    assert proxy_from_environment("example.com", 80, is_ssl=False, environ={"ALL_PROXY": "socks5://all:3"}) == (
        "socks5://all:3"
    )
    lower_wins = {"https_proxy": "http://lower:1", "HTTPS_PROXY": "http://upper:2"}
    assert proxy_from_environment("example.com", 443, is_ssl=True, environ=lower_wins) == "http://lower:1"
    assert proxy_from_environment("example.com", 443, is_ssl=True, environ={"https_proxy": " "}) is None
    assert proxy_from_environment("example.com", 443, is_ssl=True, environ={}) is None
    bypass = {**env, "NO_PROXY": "example.com"}
    assert proxy_from_environment("www.example.com", 443, is_ssl=True, environ=bypass) is None


def test_resolve_proxy_refuses_other_types() -> None:
    with pytest.raises(TypeError, match="proxy must be a URL, True or None"):
        resolve_proxy(3128, "example.com", 80, is_ssl=False)  # type: ignore[arg-type]


# -- HTTP CONNECT through tinyproxy ---------------------------------------------------------


async def test_ws_through_an_http_proxy(tmp_path: Path) -> None:
    with tinyproxy(tmp_path) as proxy:
        async with destination() as dest:
            ws = await echo_through(f"ws://127.0.0.1:{dest.port}/", proxy.url())
    assert_tunnelled(ws, dest, proxy)


async def test_wss_through_an_http_proxy_speaks_tls_to_the_destination_with_its_name(tmp_path: Path) -> None:
    with tinyproxy(tmp_path) as proxy:
        async with destination(tls=True) as dest:
            # tinyproxy resolves "localhost"; the certificate is checked for that name.
            port = dest.port
            ws = await echo_through(f"wss://localhost:{port}/", proxy.url(), dest.client_context())
    assert dest.server_names == ["localhost"], "SNI carries the destination's name, not the proxy's"
    assert_tunnelled(ws, dest, proxy)


async def test_basic_auth_accepted(tmp_path: Path) -> None:
    with tinyproxy(tmp_path, username="ann", password="s3cret") as proxy:
        async with destination() as dest:
            ws = await echo_through(f"ws://127.0.0.1:{dest.port}/", proxy.url())
    assert_tunnelled(ws, dest, proxy)


async def test_basic_auth_refused_names_the_proxy_and_its_answer(tmp_path: Path) -> None:
    with tinyproxy(tmp_path, username="ann", password="s3cret") as proxy:
        async with destination() as dest:
            with pytest.raises(ProxyError) as caught:
                await echo_through(f"ws://127.0.0.1:{dest.port}/", proxy.url(password="wrong"))
            assert dest.peers == []
    error = caught.value
    # tinyproxy answers a failed login to CONNECT with 401 (RFC 9110 would have 407).
    assert re.match(rf"proxy {proxy.address} refused CONNECT to 127.0.0.1:{dest.port}: HTTP 40[17] ", str(error))
    assert (error.proxy, error.retryable) == (proxy.address, False)
    assert error.status_code in (401, 407)
    assert isinstance(error, HandshakeError)
    assert "wrong" not in str(error)


async def test_an_unreachable_http_proxy_is_a_retryable_proxy_error() -> None:
    port = free_port()
    async with destination() as dest:
        with pytest.raises(ProxyError, match=f"could not connect to proxy 127.0.0.1:{port}: .*Connection refused") as e:
            await echo_through(f"ws://127.0.0.1:{dest.port}/", f"http://127.0.0.1:{port}")
    assert e.value.retryable


async def test_connect_websocket_takes_a_proxy_too(tmp_path: Path, nursery: trio.Nursery) -> None:
    with tinyproxy(tmp_path) as proxy:
        async with destination() as dest:
            with trio.fail_after(TIMEOUT):
                ws = await trio_ws.connect_websocket(
                    nursery, "127.0.0.1", dest.port, "/", use_ssl=False, proxy=proxy.url(), **QUIET
                )
                await ws.send_message("hi")
                assert await ws.get_message() == "hi"
                seen = Seen.of(ws)
                await ws.aclose()
    assert_tunnelled(seen, dest, proxy)


# -- the environment --------------------------------------------------------------------------


async def test_the_environment_proxy_is_used_by_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with tinyproxy(tmp_path) as proxy:
        monkeypatch.setenv("http_proxy", proxy.url())
        async with destination() as dest:
            ws = await echo_through(f"ws://127.0.0.1:{dest.port}/", True)
    assert_tunnelled(ws, dest, proxy)


async def test_no_proxy_bypasses_the_environment_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    dead = free_port()
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{dead}")
    async with destination() as dest:
        with pytest.raises(ProxyError, match=f"proxy 127.0.0.1:{dead}"):
            await echo_through(f"ws://127.0.0.1:{dest.port}/", True)
        monkeypatch.setenv("NO_PROXY", "localhost,127.0.0.0/8")
        ws = await echo_through(f"ws://127.0.0.1:{dest.port}/", True)
    assert isinstance(ws.remote, Endpoint) and ws.remote.port == dest.port, "connected directly"


async def test_proxy_none_ignores_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALL_PROXY", f"http://127.0.0.1:{free_port()}")
    async with destination() as dest:
        ws = await echo_through(f"ws://127.0.0.1:{dest.port}/", None)
    assert isinstance(ws.remote, Endpoint) and ws.remote.port == dest.port


# -- SOCKS5 through microsocks ------------------------------------------------------------------


async def test_ws_through_a_socks5_proxy() -> None:
    with microsocks() as proxy:
        async with destination() as dest:
            ws = await echo_through(f"ws://127.0.0.1:{dest.port}/", proxy.url())
    assert_tunnelled(ws, dest, proxy)


@pytest.mark.parametrize("scheme", ["socks5", "socks5h"])
async def test_wss_through_a_socks5_proxy(scheme: str) -> None:
    with microsocks() as proxy:
        async with destination(tls=True) as dest:
            url = proxy.url().replace("socks5://", f"{scheme}://")
            ws = await echo_through(f"wss://localhost:{dest.port}/", url, dest.client_context())
    assert dest.server_names == ["localhost"]
    assert_tunnelled(ws, dest, proxy)


async def test_socks5_login_accepted() -> None:
    with microsocks(username="ann", password="s3cret") as proxy:
        async with destination() as dest:
            ws = await echo_through(f"ws://127.0.0.1:{dest.port}/", proxy.url())
    assert_tunnelled(ws, dest, proxy)


async def test_socks5_login_refused_names_the_proxy() -> None:
    with microsocks(username="ann", password="s3cret") as proxy:
        async with destination() as dest:
            with pytest.raises(ProxyError) as caught:
                await echo_through(f"ws://127.0.0.1:{dest.port}/", proxy.url(password="wrong"))
            assert dest.peers == []
    assert str(caught.value).startswith(f"socks5 proxy {proxy.address} refused CONNECT to 127.0.0.1:{dest.port}:")
    assert not caught.value.retryable


async def test_socks5_destination_refused_is_retryable() -> None:
    closed = free_port()
    with microsocks() as proxy, pytest.raises(ProxyError) as caught:
        await echo_through(f"ws://127.0.0.1:{closed}/", proxy.url())
    assert str(caught.value).startswith(f"socks5 proxy {proxy.address} refused CONNECT to 127.0.0.1:{closed}:")
    assert caught.value.retryable


async def test_connect_forever_goes_through_the_proxy(tmp_path: Path) -> None:
    with tinyproxy(tmp_path) as proxy:
        async with destination() as dest:
            with trio.fail_after(TIMEOUT):
                async with trio_ws.connect_forever(
                    f"ws://127.0.0.1:{dest.port}/", proxy=proxy.url(), **QUIET
                ) as connections:
                    async for ws in connections:
                        await ws.send_message("x")
                        assert await ws.get_message() == "x"
                        seen = Seen.of(ws)
                        break
    assert_tunnelled(seen, dest, proxy)


# -- the command line ------------------------------------------------------------------------------


async def _cli_connect(*args: str) -> subprocess.CompletedProcess[bytes]:
    with trio.fail_after(TIMEOUT):
        return await trio.run_process(
            cli_command("connect", "--idle", "1", *args),
            stdin=b"through the proxy\n",
            capture_stdout=True,
            capture_stderr=True,
            check=False,
        )


async def test_cli_connect_through_a_proxy(tmp_path: Path) -> None:
    with tinyproxy(tmp_path, username="ann", password="s3cret") as proxy:
        async with destination() as dest:
            done = await _cli_connect("--proxy", proxy.url(), f"ws://127.0.0.1:{dest.port}/")
            refused = await _cli_connect("--proxy", proxy.url(password="wrong"), f"ws://127.0.0.1:{dest.port}/")
    assert done.returncode == 0, done
    assert done.stdout.decode().splitlines() == ["< through the proxy"]
    assert len(dest.peers) == 1
    assert refused.returncode == 1
    assert f"proxy {proxy.address} refused CONNECT" in refused.stderr.decode()


async def test_cli_proxy_none_connects_directly(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("http_proxy", f"http://127.0.0.1:{free_port()}")
    async with destination() as dest:
        through_dead_proxy = await _cli_connect(f"ws://127.0.0.1:{dest.port}/")
        direct = await _cli_connect("--proxy", "none", f"ws://127.0.0.1:{dest.port}/")
    assert through_dead_proxy.returncode == 1
    assert "could not connect to proxy 127.0.0.1:" in through_dead_proxy.stderr.decode()
    assert direct.returncode == 0, direct
    assert direct.stdout.decode().splitlines() == ["< through the proxy"]


# -- SOCKS4 through dante ----------------------------------------------------------------------------


@pytest.mark.parametrize("scheme", ["socks4", "socks4a", "socks5"])
async def test_ws_through_dante(tmp_path: Path, scheme: str) -> None:
    with dante(tmp_path) as proxy:
        async with destination() as dest:
            url = proxy.url().replace("socks4://", f"{scheme}://")
            ws = await echo_through(f"ws://127.0.0.1:{dest.port}/", url)
    assert_tunnelled(ws, dest, proxy)


async def test_wss_through_socks4(tmp_path: Path) -> None:
    with dante(tmp_path) as proxy:
        async with destination(tls=True) as dest:
            ws = await echo_through(f"wss://127.0.0.1:{dest.port}/", proxy.url(), dest.client_context())
    assert_tunnelled(ws, dest, proxy)


async def test_socks4_destination_refused_names_the_proxy(tmp_path: Path) -> None:
    closed = free_port()
    with dante(tmp_path) as proxy, pytest.raises(ProxyError) as caught:
        await echo_through(f"ws://127.0.0.1:{closed}/", proxy.url())
    assert str(caught.value).startswith(f"socks4 proxy {proxy.address} refused CONNECT to 127.0.0.1:{closed}:")


async def test_the_event_client_goes_through_the_proxy(tmp_path: Path) -> None:
    app = trio_ws.App()
    peers: list[object] = []

    @app.on("where")
    async def where(conn: trio_ws.EventConnection, data: object) -> int:
        peers.append(conn.websocket.client.port)
        return 42

    with tinyproxy(tmp_path) as proxy, trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            server: WebSocketServer = await nursery.start(partial(app.serve, "127.0.0.1", 0, **QUIET))
            async with trio_ws.EventClient(f"ws://127.0.0.1:{server.port}/ws", proxy=proxy.url(), **QUIET) as client:
                assert await client.call("where") == 42
                seen = Seen.of(client.connection)  # type: ignore[arg-type]
            nursery.cancel_scope.cancel()
    assert isinstance(seen.remote, Endpoint) and seen.remote.port == proxy.port
    assert isinstance(seen.local, Endpoint) and peers != [seen.local.port]
