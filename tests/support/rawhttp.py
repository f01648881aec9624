"""The HTTP side of a hand-written peer: upgrade requests and 101 answers as bytes, and plain HTTP requests.

Like :mod:`support.rawframes`, nothing here uses trio_ws: tests write the
opening handshake (RFC 6455 §4) byte by byte to check how trio_ws reads odd
heads, and read back exactly what it answered. :func:`http` sends plain
requests no well-behaved client sends (no Content-Length, a body cut short,
two long polls at once) and reads the answer with h11.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass

import h11
import trio
import trio.testing

import trio_ws
from support.rawframes import accept_for

#: A fixed Sec-WebSocket-Key (16 bytes in base64), for requests written by hand.
KEY = base64.b64encode(b"0123456789abcdef")


def upgrade_request(
    *, path: str = "/", host: str = "localhost", extensions: bytes | None = None, extra: bytes = b""
) -> bytes:
    """A valid upgrade request head with :data:`KEY`.

    ``extensions`` is the Sec-WebSocket-Extensions value (left out when None),
    ``extra`` more raw header lines (each ending in CRLF).
    """
    head = (
        f"GET {path} HTTP/1.1\r\nHost: {host}\r\n".encode("ascii")
        + b"Upgrade: websocket\r\nConnection: Upgrade\r\n"
        + b"Sec-WebSocket-Key: "
        + KEY
        + b"\r\nSec-WebSocket-Version: 13\r\n"
    )
    if extensions is not None:
        head += b"Sec-WebSocket-Extensions: " + extensions + b"\r\n"
    head += extra
    return head + b"\r\n"


def switching_protocols(request_head: bytes, *, extensions: bytes | None = None) -> bytes:
    """The 101 answer to ``request_head`` (its Sec-WebSocket-Key), optionally with an extensions header."""
    match = re.search(rb"(?im)^sec-websocket-key:[ \t]*(\S+)", request_head)
    assert match is not None, request_head
    answer = (
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Accept: " + accept_for(match.group(1)) + b"\r\n"
    )
    if extensions is not None:
        answer += b"Sec-WebSocket-Extensions: " + extensions + b"\r\n"
    return answer + b"\r\n"


async def read_head(stream: trio.abc.Stream) -> bytes:
    """Read up to and including the blank line that ends an HTTP head; EOFError if the peer closes first."""
    data = bytearray()
    while b"\r\n\r\n" not in data:
        chunk = await stream.receive_some(65536)
        if not chunk:
            raise EOFError(f"peer closed before the end of the head: {bytes(data)!r}")
        data += chunk
    return bytes(data)


async def read_until_eof(stream: trio.abc.Stream) -> bytes:
    """Everything the other side sends until it closes its end."""
    data = bytearray()
    while chunk := await stream.receive_some(65536):
        data += chunk
    return bytes(data)


def extension_header(head: bytes) -> bytes | None:
    """The Sec-WebSocket-Extensions value of an HTTP head, None if it has none."""
    match = re.search(rb"(?im)^sec-websocket-extensions:[ \t]*([^\r\n]*)", head)
    return match.group(1) if match else None


def status_of(response: bytes) -> int:
    """The status code of an HTTP/1.1 response."""
    assert response.startswith(b"HTTP/1.1 "), response[:100]
    return int(response.split(b" ", 2)[1])


async def client_given_answer(nursery: trio.Nursery, extensions: bytes) -> trio_ws.WebSocketConnection:
    """A trio_ws client (offering compression) whose raw server answers 101 with ``extensions``."""
    client_stream, server_stream = trio.testing.memory_stream_pair()

    async def raw_server() -> None:
        head = await read_head(server_stream)
        await server_stream.send_all(switching_protocols(head, extensions=extensions))

    nursery.start_soon(raw_server)
    return await trio_ws.wrap_client_stream(
        nursery, client_stream, "localhost", "/", compression="deflate", ping_interval=None
    )


# Plain HTTP requests ----------------------------------------------------------------


@dataclass
class Answer:
    """An HTTP response: status, headers (lower-case names, as text) and body."""

    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode()


def build_request(
    method: str, target: str, *, headers: dict[str, str] | None = None, body: bytes | None = None
) -> bytes:
    """The bytes of a request; ``Content-Length`` is added for a body unless ``headers`` declares a length."""
    lines = [f"{method} {target} HTTP/1.1", "Host: 127.0.0.1"]
    headers = dict(headers or {})
    if body is not None and not any(k.lower() in ("content-length", "transfer-encoding") for k in headers):
        headers["Content-Length"] = str(len(body))
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (body or b"")


async def read_answer(stream: trio.abc.Stream) -> Answer:
    """Read one response from ``stream`` (until its end)."""
    conn = h11.Connection(h11.CLIENT)
    conn.send(h11.Request(method="GET", target="/", headers=[("Host", "x")]))
    conn.send(h11.EndOfMessage())
    status = 0
    headers: dict[str, str] = {}
    body = bytearray()
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            conn.receive_data(await stream.receive_some(65536))
        elif isinstance(event, h11.Response):
            status = event.status_code
            headers = {k.decode().lower(): v.decode() for k, v in event.headers}
        elif isinstance(event, h11.Data):
            body += event.data
        elif isinstance(event, (h11.EndOfMessage, h11.ConnectionClosed)):
            return Answer(status, headers, bytes(body))


async def http(
    port: int,
    method: str,
    target: str,
    *,
    headers: dict[str, str] | None = None,
    body: bytes | None = None,
) -> Answer:
    """Send one request to 127.0.0.1:``port`` and return the answer."""
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    async with stream:
        await stream.send_all(build_request(method, target, headers=headers, body=body))
        return await read_answer(stream)
