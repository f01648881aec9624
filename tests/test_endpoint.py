"""Tests for trio_ws.endpoint: URL parsing, Endpoint, and the addresses of streams and connections."""

from __future__ import annotations

from functools import partial

import pytest
import trio
import trio.testing

import trio_ws
from trio_ws import Endpoint, InvalidURL, WebSocketRequest
from trio_ws.endpoint import ParsedURL, parse_websocket_url, stream_address

TIMEOUT = 10.0
HOST = "127.0.0.1"


@pytest.mark.parametrize(
    ("url", "host", "port", "resource", "is_ssl"),
    [
        ("ws://example.com", "example.com", 80, "/", False),
        ("ws://example.com/", "example.com", 80, "/", False),
        ("wss://example.com", "example.com", 443, "/", True),
        ("wss://example.com/", "example.com", 443, "/", True),
        ("ws://example.com:8080/chat", "example.com", 8080, "/chat", False),
        ("wss://example.com:8443/a/b/c", "example.com", 8443, "/a/b/c", True),
        ("ws://example.com:80/x", "example.com", 80, "/x", False),
        ("wss://example.com:80/x", "example.com", 80, "/x", True),
        ("ws://127.0.0.1:9000/", "127.0.0.1", 9000, "/", False),
        ("ws://[::1]:9000/path", "::1", 9000, "/path", False),
        ("wss://[2001:db8::1]/", "2001:db8::1", 443, "/", True),
        ("ws://[::1]", "::1", 80, "/", False),
        ("ws://example.com/path?x=1&y=2", "example.com", 80, "/path?x=1&y=2", False),
        ("ws://example.com?x=1", "example.com", 80, "/?x=1", False),
        ("ws://example.com:1234?token=a%20b", "example.com", 1234, "/?token=a%20b", False),
        ("WS://Example.COM/Path", "example.com", 80, "/Path", False),
        ("WSS://example.com", "example.com", 443, "/", True),
        ("ws://user:pw@example.com:81/", "example.com", 81, "/", False),
        ("ws://example.com/a%2Fb", "example.com", 80, "/a%2Fb", False),
        ("ws://example.com:65535/", "example.com", 65535, "/", False),
    ],
)
def test_parse_valid(url: str, host: str, port: int, resource: str, is_ssl: bool) -> None:
    assert parse_websocket_url(url) == ParsedURL(host, port, resource, is_ssl)


def test_fragment_not_in_resource() -> None:
    assert parse_websocket_url("ws://example.com/p?q=1#frag").resource == "/p?q=1"


@pytest.mark.parametrize(
    "url",
    [
        "http://example.com/",
        "https://example.com/",
        "ftp://example.com",
        "example.com",
        "//example.com/",
        "",
        "wsx://a",
    ],
)
def test_bad_scheme(url: str) -> None:
    with pytest.raises(InvalidURL):
        parse_websocket_url(url)


@pytest.mark.parametrize("url", ["ws://", "ws:///path", "wss://:443/", "ws://?x=1", "ws://@/"])
def test_missing_host(url: str) -> None:
    with pytest.raises(InvalidURL, match="no host"):
        parse_websocket_url(url)


@pytest.mark.parametrize(
    "url", ["ws://example.com:abc/", "ws://example.com:99999/", "ws://example.com:-1/", "ws://example.com:1.5/"]
)
def test_bad_port(url: str) -> None:
    with pytest.raises(InvalidURL, match="port"):
        parse_websocket_url(url)


def test_invalid_url_is_value_error() -> None:
    with pytest.raises(ValueError):
        parse_websocket_url("http://example.com")


def test_error_message_mentions_url() -> None:
    with pytest.raises(InvalidURL, match="gopher"):
        parse_websocket_url("gopher://example.com")


@pytest.mark.parametrize(
    ("address", "port", "is_ssl", "url"),
    [
        ("example.com", 80, False, "ws://example.com"),
        ("example.com", 443, True, "wss://example.com"),
        ("example.com", 443, False, "ws://example.com:443"),
        ("example.com", 80, True, "wss://example.com:80"),
        ("127.0.0.1", 8000, False, "ws://127.0.0.1:8000"),
        ("::1", 8000, False, "ws://[::1]:8000"),
        ("::1", 443, True, "wss://[::1]"),
        ("2001:db8::1", 80, False, "ws://[2001:db8::1]"),
    ],
)
def test_endpoint_url(address: str, port: int, is_ssl: bool, url: str) -> None:
    assert Endpoint(address, port, is_ssl).url == url


@pytest.mark.parametrize(
    "endpoint",
    [Endpoint("example.com", 8080, False), Endpoint("::1", 9000, True), Endpoint("10.0.0.1", 443, True)],
)
def test_endpoint_url_round_trip(endpoint: Endpoint) -> None:
    parsed = parse_websocket_url(endpoint.url)
    assert Endpoint(parsed.host, parsed.port, parsed.is_ssl) == endpoint


def test_endpoint_equality_and_hash() -> None:
    a = Endpoint("127.0.0.1", 80, False)
    assert a == Endpoint("127.0.0.1", 80, False)
    assert hash(a) == hash(Endpoint("127.0.0.1", 80, False))
    assert len({a, Endpoint("127.0.0.1", 80, False)}) == 1
    assert a != Endpoint("127.0.0.1", 81, False)
    assert a != Endpoint("127.0.0.2", 80, False)
    assert a != Endpoint("127.0.0.1", 80, True)
    assert a != ("127.0.0.1", 80, False)
    assert a.__eq__("x") is NotImplemented


def test_endpoint_attributes_and_repr() -> None:
    e = Endpoint("::1", 1234, True)
    assert (e.address, e.port, e.is_ssl) == ("::1", 1234, True)
    # trio-websocket's form, double quotes included.
    assert repr(e) == 'Endpoint(address="::1", port=1234, is_ssl=True)'
    assert str(Endpoint("10.0.0.2", 80, False)) == 'Endpoint(address="10.0.0.2", port=80, is_ssl=False)'


def test_explicit_port_zero_not_replaced_by_default() -> None:
    # "ws://host:0" names port 0: either reject it or keep it, but never
    # silently connect to the scheme's default port instead.
    try:
        parsed = parse_websocket_url("ws://example.com:0/")
    except InvalidURL:
        return
    assert parsed.port == 0


# -- addresses of streams and connections ------------------------------------------------
async def test_addresses_of_a_closed_tcp_stream_are_unknown() -> None:
    listeners = await trio.open_tcp_listeners(0, host=HOST)
    async with listeners[0]:
        port = listeners[0].socket.getsockname()[1]
        with trio.fail_after(TIMEOUT):
            client = await trio.open_tcp_stream(HOST, port)
            server = await listeners[0].accept()
    assert stream_address(client, remote=True) == Endpoint(HOST, port, False)
    await client.aclose()
    await server.aclose()
    assert stream_address(client, remote=True) == "<unknown>"
    assert stream_address(client, remote=False) == "<unknown>"


async def test_connection_addresses_after_close_are_unknown(nursery: trio.Nursery) -> None:
    async def handler(request: WebSocketRequest) -> None:
        ws = await request.accept()
        async for message in ws:
            await ws.send_message(message)

    with trio.fail_after(TIMEOUT):
        server = await nursery.start(partial(trio_ws.serve_websocket, handler, HOST, 0, None))
        ws = await trio_ws.connect_websocket(nursery, HOST, server.port, "/", use_ssl=False, ping_interval=None)
        assert ws.remote == Endpoint(HOST, server.port, False)
        local = ws.local
        assert isinstance(local, Endpoint) and local.address == HOST
        await ws.aclose()
    assert ws.remote == "<unknown>"
    assert ws.local == "<unknown>"


def test_address_of_a_stream_without_socket_is_its_repr() -> None:
    # trio-websocket's convention: any other stream is described by repr().
    client, _ = trio.testing.memory_stream_pair()
    assert stream_address(client, remote=True) == repr(client)
    assert stream_address(client, remote=False).startswith("StapledStream(")
