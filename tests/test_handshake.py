"""Tests of the opening handshake, trio_ws.handshake: the sans-IO functions, then
trio_ws reading odd request heads and 101 answers written by hand over memory streams."""

from __future__ import annotations

import base64

import h11
import pytest
import trio
import trio.testing
from hypothesis import given, settings
from hypothesis import strategies as st
from support.rawhttp import client_given_answer, extension_header, read_head, read_until_eof

import trio_ws
from trio_ws import Deflate, HandshakeError
from trio_ws.handshake import (
    HandshakeProblem,
    HeadReader,
    ParsedRequest,
    accept_key,
    build_client_request,
    check_client_response,
    check_upgrade_request,
    generate_key,
    negotiate_server_extensions,
    parse_request_head,
)

RFC_KEY = b"dGhlIHNhbXBsZSBub25jZQ=="
RFC_ACCEPT = b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
TIMEOUT = 10.0


def upgrade_head(
    *,
    method: str = "GET",
    version: str = "1.1",
    extra: list[str] | None = None,
    upgrade: bool = True,
    key: str | None = RFC_KEY.decode(),
    ws_version: str | None = "13",
) -> bytes:
    lines = [f"{method} /chat HTTP/{version}", "Host: example.com"]
    if upgrade:
        lines += ["Upgrade: websocket", "Connection: Upgrade"]
    if key is not None:
        lines.append(f"Sec-WebSocket-Key: {key}")
    if ws_version is not None:
        lines.append(f"Sec-WebSocket-Version: {ws_version}")
    lines += extra or []
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def parsed(head: bytes) -> ParsedRequest:
    return parse_request_head(head)


def status_of(head: bytes) -> int:
    with pytest.raises(HandshakeProblem) as info:
        check_upgrade_request(parsed(head))
    return info.value.status


# -- accept_key / generate_key ----------------------------------------------


def test_accept_key_rfc6455_example() -> None:
    assert accept_key(RFC_KEY) == RFC_ACCEPT


def test_generate_key_is_16_random_bytes_in_base64() -> None:
    key = generate_key()
    assert len(base64.b64decode(key, validate=True)) == 16
    assert generate_key() != key


# -- HeadReader ---------------------------------------------------------------


def test_head_reader_whole_head_at_once() -> None:
    head = upgrade_head()
    reader = HeadReader(8192, 128)
    assert reader.feed(head) == (head, b"")


def test_head_reader_byte_by_byte() -> None:
    head = upgrade_head()
    reader = HeadReader(8192, 128)
    results = [reader.feed(head[i : i + 1]) for i in range(len(head))]
    assert all(result is None for result in results[:-1])
    assert results[-1] == (head, b"")


def test_head_reader_returns_trailing_bytes() -> None:
    head = upgrade_head()
    trailing = b"\x81\x85\x00\x00\x00\x00hello"
    reader = HeadReader(8192, 128)
    assert reader.feed(head + trailing) == (head, trailing)


def test_head_reader_trailing_bytes_split_feeds() -> None:
    head = upgrade_head()
    reader = HeadReader(8192, 128)
    assert reader.feed(head[:10]) is None
    assert reader.feed(head[10:] + b"extra") == (head, b"extra")


def test_head_reader_request_line_too_long_is_414() -> None:
    reader = HeadReader(100, 128)
    with pytest.raises(HandshakeProblem) as info:
        reader.feed(b"GET /" + b"a" * 200 + b" HTTP/1.1\r\n")
    assert info.value.status == 414


def test_head_reader_request_line_too_long_without_newline_is_414() -> None:
    reader = HeadReader(100, 128)
    # Without a newline yet: the reader must refuse before buffering more.
    with pytest.raises(HandshakeProblem) as info:
        for _ in range(50):
            reader.feed(b"a" * 10)
    assert info.value.status == 414
    assert reader.buffered <= 120


def test_head_reader_header_line_too_long_is_431() -> None:
    reader = HeadReader(100, 128)
    assert reader.feed(b"GET / HTTP/1.1\r\nHost: x\r\n") is None
    with pytest.raises(HandshakeProblem) as info:
        reader.feed(b"X-Long: " + b"b" * 200 + b"\r\n\r\n")
    assert info.value.status == 431


def test_head_reader_header_line_too_long_trickled_is_431() -> None:
    reader = HeadReader(100, 128)
    assert reader.feed(b"GET / HTTP/1.1\r\n") is None
    with pytest.raises(HandshakeProblem) as info:
        for _ in range(200):
            reader.feed(b"b")
    assert reader.buffered <= 120
    assert info.value.status == 431


def test_head_reader_line_at_the_limit_is_fine() -> None:
    line = b"X-Fit: " + b"c" * (100 - 7)
    assert len(line) == 100
    head = b"GET / HTTP/1.1\r\n" + line + b"\r\n\r\n"
    assert HeadReader(100, 128).feed(head) == (head, b"")


def test_head_reader_too_many_headers_is_431() -> None:
    reader = HeadReader(8192, 5)
    head = b"GET / HTTP/1.1\r\n" + b"".join(b"X-H%d: v\r\n" % i for i in range(10)) + b"\r\n"
    with pytest.raises(HandshakeProblem) as info:
        reader.feed(head)
    assert info.value.status == 431


def test_head_reader_exactly_max_headers_is_fine() -> None:
    head = b"GET / HTTP/1.1\r\n" + b"".join(b"X-H%d: v\r\n" % i for i in range(5)) + b"\r\n"
    assert HeadReader(8192, 5).feed(head) == (head, b"")


def test_head_reader_ignores_leading_empty_lines() -> None:
    head = upgrade_head()
    reader = HeadReader(8192, 128)
    result = reader.feed(b"\r\n" + head)
    assert result is not None
    assert result[1] == b""
    assert result[0].endswith(b"\r\n\r\n")


# -- parse_request_head ---------------------------------------------------------


def test_parse_request_head_ok() -> None:
    request = parsed(upgrade_head())
    assert request.method == b"GET"
    assert request.target == b"/chat"
    assert request.http_version == b"1.1"
    assert (b"host", b"example.com") in request.headers


@pytest.mark.parametrize(
    "head",
    [
        b"garbage\r\n\r\n",
        b"GET / HTTP/1.1\r\nno colon here\r\n\r\n",
        b"GET / HTTP/1.1\r\nBad Name: x\r\n\r\n",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\r\n\r\n",
        b"GET / HTTP/1.1\r\n\r\n",  # HTTP/1.1 without Host
        b"GET / HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n",
    ],
)
def test_parse_request_head_malformed_is_400(head: bytes) -> None:
    with pytest.raises(HandshakeProblem) as info:
        parse_request_head(head)
    assert info.value.status == 400


def h11_reading(head: bytes) -> tuple[bytes, bytes, bytes, list[tuple[bytes, bytes]]] | None:
    """What h11 makes of a head: (method, target, version, headers), None if it refuses it."""
    conn = h11.Connection(h11.SERVER, max_incomplete_event_size=len(head) + 1)
    conn.receive_data(head)
    try:
        event = conn.next_event()
    except h11.RemoteProtocolError:
        return None
    if not isinstance(event, h11.Request):
        return None
    return event.method, event.target, event.http_version, list(event.headers)


def test_plain_upgrade_head_takes_the_fast_path() -> None:
    # The fast path must be the one a typical handshake takes, and must read
    # it exactly as h11 does; its h11 state is made only when needed.
    head = upgrade_head(extra=["Origin: https://example.com", "X-Empty:", "X-Spaces:  a  b \t"])
    request = parse_request_head(head)
    assert request._h11 is None
    assert (request.method, request.target, request.http_version, request.headers) == h11_reading(head)
    assert (b"x-empty", b"") in request.headers and (b"x-spaces", b"a  b") in request.headers
    # A response can still be serialised through h11 (for reject()).
    data = request.h11_connection.send(h11.Response(status_code=403, headers=[(b"Content-Length", b"0")]))
    assert data is not None and data.startswith(b"HTTP/1.1 403 ")


@pytest.mark.parametrize(
    "head",
    [
        b"GET / HTTP/1.1\nHost: x\n\n",  # bare LF line ends
        b"GET / HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n",  # obs-fold
        b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
        b"GET / HTTP/1.0\r\n\r\n",  # HTTP/1.0 needs no Host
        b"GET / HTTP/1.1\r\nHost: x\r\nX: a\x01b\r\n\r\n",  # a control byte h11 tolerates
    ],
)
def test_unusual_heads_are_read_by_h11(head: bytes) -> None:
    request = parse_request_head(head)
    assert request._h11 is not None  # h11 parsed it
    assert (request.method, request.target, request.http_version, request.headers) == h11_reading(head)


@settings(max_examples=300, deadline=None)
@given(
    request_line=st.sampled_from([b"GET / HTTP/1.1", b"GET /a?b=c HTTP/1.0", b"POST /x HTTP/1.1", b"GET  / HTTP/1.1"]),
    lines=st.lists(
        st.one_of(
            st.sampled_from([b"Host: example.com", b"host:x", b"Upgrade: websocket", b"Content-Length: 3"]),
            st.binary(max_size=20).map(lambda raw: b"X-Field:" + raw),
            st.binary(max_size=20),
        ),
        max_size=6,
    ),
    line_end=st.sampled_from([b"\r\n", b"\n"]),
)
def test_fast_path_agrees_with_h11(request_line: bytes, lines: list[bytes], line_end: bytes) -> None:
    head = line_end.join([request_line, *lines]) + line_end + line_end
    expected = h11_reading(head)
    try:
        request = parse_request_head(head)
    except HandshakeProblem as problem:
        assert expected is None, problem
        return
    assert expected == (request.method, request.target, request.http_version, request.headers)


# -- check_upgrade_request --------------------------------------------------------


def test_check_upgrade_request_ok_returns_key() -> None:
    assert check_upgrade_request(parsed(upgrade_head())) == RFC_KEY


def test_check_upgrade_request_tokens_are_case_insensitive_lists() -> None:
    head = (
        b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: WebSocket\r\nConnection: keep-alive, UPGRADE\r\n"
        b"Sec-WebSocket-Key: " + RFC_KEY + b"\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    assert check_upgrade_request(parsed(head)) == RFC_KEY


def test_check_upgrade_request_without_upgrade_is_426() -> None:
    with pytest.raises(HandshakeProblem) as info:
        check_upgrade_request(parsed(upgrade_head(upgrade=False)))
    assert info.value.status == 426
    names = [name.lower() for name, _ in info.value.headers]
    assert b"upgrade" in names


def test_check_upgrade_request_upgrade_without_connection_is_426() -> None:
    head = (
        b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nSec-WebSocket-Key: "
        + RFC_KEY
        + (b"\r\nSec-WebSocket-Version: 13\r\n\r\n")
    )
    assert status_of(head) == 426


def test_check_upgrade_request_post_is_405() -> None:
    with pytest.raises(HandshakeProblem) as info:
        check_upgrade_request(parsed(upgrade_head(method="POST", extra=["Content-Length: 0"])))
    assert info.value.status == 405
    assert (b"Allow", b"GET") in info.value.headers


def test_check_upgrade_request_http10_is_505() -> None:
    assert status_of(upgrade_head(version="1.0")) == 505


def test_check_upgrade_request_version_8_is_426_with_version_header() -> None:
    with pytest.raises(HandshakeProblem) as info:
        check_upgrade_request(parsed(upgrade_head(ws_version="8")))
    assert info.value.status == 426
    assert [value for name, value in info.value.headers if name.lower() == b"sec-websocket-version"] == [b"13"]


def test_check_upgrade_request_missing_version_is_426() -> None:
    assert status_of(upgrade_head(ws_version=None)) == 426


def test_check_upgrade_request_missing_key_is_400() -> None:
    assert status_of(upgrade_head(key=None)) == 400


@pytest.mark.parametrize(
    "key",
    [
        "not base64!!",
        base64.b64encode(b"x" * 15).decode(),  # 15 bytes
        base64.b64encode(b"x" * 17).decode(),  # 17 bytes
        "",
    ],
)
def test_check_upgrade_request_bad_key_is_400(key: str) -> None:
    assert status_of(upgrade_head(key=key)) == 400


def test_check_upgrade_request_repeated_key_is_400() -> None:
    other = base64.b64encode(b"y" * 16).decode()
    assert status_of(upgrade_head(extra=[f"Sec-WebSocket-Key: {other}"])) == 400


# -- negotiate_server_extensions ------------------------------------------------------


def test_negotiate_server_extensions_disabled() -> None:
    headers = [(b"sec-websocket-extensions", b"permessage-deflate")]
    assert negotiate_server_extensions(headers, None, 2**20) == (None, None)


def test_negotiate_server_extensions_no_offer() -> None:
    assert negotiate_server_extensions([(b"host", b"x")], Deflate(), 2**20) == (None, None)


def test_negotiate_server_extensions_accepts_deflate() -> None:
    headers = [(b"sec-websocket-extensions", b"permessage-deflate; client_max_window_bits")]
    response, codec = negotiate_server_extensions(headers, Deflate(), 2**20)
    assert response is not None
    assert response.startswith(b"permessage-deflate")
    assert b"client_max_window_bits=" in response
    assert codec is not None


def test_negotiate_server_extensions_skips_unknown_and_invalid_offers() -> None:
    headers = [
        (b"sec-websocket-extensions", b"x-webkit-deflate-frame"),
        (b"sec-websocket-extensions", b"permessage-deflate; bogus_param=1"),
        (b"sec-websocket-extensions", b"permessage-deflate"),
    ]
    response, codec = negotiate_server_extensions(headers, Deflate(), 2**20)
    assert response is not None
    assert response.startswith(b"permessage-deflate")
    assert b"bogus" not in response
    assert codec is not None


def test_negotiate_server_extensions_only_unknown_offers() -> None:
    headers = [(b"sec-websocket-extensions", b"x-webkit-deflate-frame, foo; bar=1")]
    assert negotiate_server_extensions(headers, Deflate(), 2**20) == (None, None)


# -- build_client_request / check_client_response -------------------------------------


def response_101(headers: list[tuple[bytes, bytes]]) -> h11.InformationalResponse:
    return h11.InformationalResponse(status_code=101, headers=headers)


def good_headers(key: bytes) -> list[tuple[bytes, bytes]]:
    return [(b"Upgrade", b"websocket"), (b"Connection", b"Upgrade"), (b"Sec-WebSocket-Accept", accept_key(key))]


def test_build_client_request_headers() -> None:
    request, key = build_client_request(
        "example.com:8080", "/chat?x=1", subprotocols=["a", "b"], extra_headers=[("X-Token", "t")], compression=None
    )
    headers = dict(request.headers)
    assert request.method == b"GET"
    assert request.target == b"/chat?x=1"
    assert headers[b"host"] == b"example.com:8080"
    assert headers[b"sec-websocket-key"] == key
    assert headers[b"sec-websocket-version"] == b"13"
    assert headers[b"sec-websocket-protocol"] == b"a, b"
    assert headers[b"x-token"] == b"t"
    assert b"sec-websocket-extensions" not in headers


def test_build_client_request_invalid_extra_header_is_value_error() -> None:
    with pytest.raises(ValueError):
        build_client_request("h", "/", subprotocols=None, extra_headers=[("Bad Name", "v")], compression=None)


def test_check_client_response_ok() -> None:
    subprotocol, codec = check_client_response(
        response_101(good_headers(RFC_KEY)), RFC_KEY, subprotocols=None, compression=None, max_message_size=None
    )
    assert subprotocol is None
    assert codec is None


def test_check_client_response_bad_accept_key() -> None:
    headers = [(b"Upgrade", b"websocket"), (b"Connection", b"Upgrade"), (b"Sec-WebSocket-Accept", b"wrong=")]
    with pytest.raises(HandshakeError, match="Accept"):
        check_client_response(
            response_101(headers), RFC_KEY, subprotocols=None, compression=None, max_message_size=None
        )


def test_check_client_response_missing_accept_key() -> None:
    headers = [(b"Upgrade", b"websocket"), (b"Connection", b"Upgrade")]
    with pytest.raises(HandshakeError):
        check_client_response(
            response_101(headers), RFC_KEY, subprotocols=None, compression=None, max_message_size=None
        )


def test_check_client_response_missing_upgrade() -> None:
    headers = [(b"Connection", b"Upgrade"), (b"Sec-WebSocket-Accept", accept_key(RFC_KEY))]
    with pytest.raises(HandshakeError):
        check_client_response(
            response_101(headers), RFC_KEY, subprotocols=None, compression=None, max_message_size=None
        )


def test_check_client_response_chosen_subprotocol() -> None:
    headers = [*good_headers(RFC_KEY), (b"Sec-WebSocket-Protocol", b"chat")]
    subprotocol, _ = check_client_response(
        response_101(headers), RFC_KEY, subprotocols=["superchat", "chat"], compression=None, max_message_size=None
    )
    assert subprotocol == "chat"


@pytest.mark.parametrize("offered", [None, ["superchat"]])
def test_check_client_response_unoffered_subprotocol(offered: list[str] | None) -> None:
    headers = [*good_headers(RFC_KEY), (b"Sec-WebSocket-Protocol", b"chat")]
    with pytest.raises(HandshakeError, match="subprotocol"):
        check_client_response(
            response_101(headers), RFC_KEY, subprotocols=offered, compression=None, max_message_size=None
        )


def test_check_client_response_two_subprotocols_rejected() -> None:
    headers = [*good_headers(RFC_KEY), (b"Sec-WebSocket-Protocol", b"a, b")]
    with pytest.raises(HandshakeError):
        check_client_response(
            response_101(headers), RFC_KEY, subprotocols=["a", "b"], compression=None, max_message_size=None
        )


def test_check_client_response_unoffered_extension() -> None:
    headers = [*good_headers(RFC_KEY), (b"Sec-WebSocket-Extensions", b"x-custom-ext")]
    with pytest.raises(HandshakeError, match="extension"):
        check_client_response(
            response_101(headers), RFC_KEY, subprotocols=None, compression=Deflate(), max_message_size=None
        )


def test_check_client_response_deflate_not_offered() -> None:
    headers = [*good_headers(RFC_KEY), (b"Sec-WebSocket-Extensions", b"permessage-deflate")]
    with pytest.raises(HandshakeError):
        check_client_response(
            response_101(headers), RFC_KEY, subprotocols=None, compression=None, max_message_size=None
        )


def test_check_client_response_deflate_accepted_twice_rejected() -> None:
    headers = [*good_headers(RFC_KEY), (b"Sec-WebSocket-Extensions", b"permessage-deflate, permessage-deflate")]
    with pytest.raises(HandshakeError):
        check_client_response(
            response_101(headers), RFC_KEY, subprotocols=None, compression=Deflate(), max_message_size=None
        )


def test_check_client_response_deflate_accepted() -> None:
    headers = [
        *good_headers(RFC_KEY),
        (b"Sec-WebSocket-Extensions", b"permessage-deflate; server_max_window_bits=12"),
    ]
    _, codec = check_client_response(
        response_101(headers), RFC_KEY, subprotocols=None, compression=Deflate(), max_message_size=None
    )
    assert codec is not None


def test_server_answer_satisfies_client_check() -> None:
    """What negotiate_server_extensions answers to build_client_request's offer is accepted back."""
    settings = Deflate()
    request, key = build_client_request("h", "/", subprotocols=None, extra_headers=None, compression=settings)
    response, codec = negotiate_server_extensions(list(request.headers), settings, 2**20)
    assert response is not None
    assert codec is not None
    headers = [*good_headers(key), (b"Sec-WebSocket-Extensions", response)]
    _, client_codec = check_client_response(
        response_101(headers), key, subprotocols=None, compression=settings, max_message_size=2**20
    )
    assert client_codec is not None


# -- a trio_ws server reading a request head over a stream --------------------------------
async def test_head_ended_by_a_bare_cr_line_is_400_incomplete(nursery: trio.Nursery) -> None:
    """``\\r\\r\\n`` ends the head for the line reader but not for HTTP: answered 400, not left hanging."""
    client_stream, server_stream = trio.testing.memory_stream_pair()
    await client_stream.send_all(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\r\n")
    with trio.fail_after(TIMEOUT):
        with pytest.raises(HandshakeError):
            await trio_ws.wrap_server_stream(nursery, server_stream)
        response = await read_until_eof(client_stream)
    assert response.startswith(b"HTTP/1.1 400 "), response[:100]
    assert response.endswith(b"incomplete request")


async def test_unparsable_extension_header_is_skipped_for_the_next_one(nursery: trio.Nursery) -> None:
    client_stream, server_stream = trio.testing.memory_stream_pair()
    await client_stream.send_all(
        upgrade_head(
            extra=[
                "Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover; server_no_context_takeover",
                "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits",
            ]
        )
    )
    with trio.fail_after(TIMEOUT):
        request = await trio_ws.wrap_server_stream(nursery, server_stream, ping_interval=None)
        ws = await request.accept()
        head = await read_head(client_stream)
    assert ws.compression
    answer = extension_header(head)
    assert answer is not None
    # the answer is to the second header: the first asked for server_no_context_takeover
    assert b"server_no_context_takeover" not in answer
    assert b"client_max_window_bits=" in answer


# -- a trio_ws client checking the 101 answer over a stream --------------------------------
async def test_client_refuses_an_unparsable_extension_answer(nursery: trio.Nursery) -> None:
    with trio.fail_after(TIMEOUT):
        with pytest.raises(HandshakeError, match="invalid Sec-WebSocket-Extensions"):
            await client_given_answer(nursery, b"; server_no_context_takeover")  # no extension name
        with pytest.raises(HandshakeError, match="invalid Sec-WebSocket-Extensions"):
            await client_given_answer(nursery, b"permessage-deflate; a=1; a=2")


@pytest.mark.parametrize(
    "answer",
    [
        b"permessage-deflate; server_max_window_bits=16",
        b"permessage-deflate; server_max_window_bits",
        b"permessage-deflate; unknown_parameter",
        b"permessage-deflate; server_no_context_takeover=yes",
    ],
    ids=["bits-16", "bits-bare", "unknown", "flag-with-value"],
)
async def test_client_refuses_an_invalid_permessage_deflate_answer(nursery: trio.Nursery, answer: bytes) -> None:
    with trio.fail_after(TIMEOUT):
        with pytest.raises(HandshakeError, match="invalid permessage-deflate answer"):
            await client_given_answer(nursery, answer)


def test_the_raw_header_alias_has_one_name_and_the_old_one_warns() -> None:
    import trio_ws.handshake as handshake

    expected = r"trio_ws\.handshake\.Headers is deprecated; use trio_ws\.handshake\.RawHeaders"
    with pytest.warns(DeprecationWarning, match=expected):
        alias = handshake.Headers
    assert alias is handshake.RawHeaders
    with pytest.raises(AttributeError):
        handshake.NoSuchName  # noqa: B018
