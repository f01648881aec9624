"""Tests of trio_ws.reader: how received bytes reach the protocol core."""

from __future__ import annotations

import os
import socket as stdlib_socket

import pytest
import trio
from support.pairs import ws_pair

import trio_ws.reader
from trio_ws.options import RECEIVE_BYTES
from trio_ws.protocol import DIRECT_READ_SHARE

pytestmark = pytest.mark.skipif(os.name != "posix", reason="direct socket reads are POSIX-only")

MiB = 2**20


def socket_streams() -> tuple[trio.SocketStream, trio.SocketStream]:
    a, b = stdlib_socket.socketpair()
    return trio.SocketStream(trio.socket.from_stdlib_socket(a)), trio.SocketStream(trio.socket.from_stdlib_socket(b))


@pytest.mark.parametrize("direction", ["server->client", "client->server"])
async def test_a_large_message_is_read_into_its_own_buffer(direction: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # Once a quarter of a large frame has arrived, the rest of its payload
    # goes from the socket straight into a buffer of the frame's length (one
    # copy), then out of it as the message (a second one, unmasking on the
    # way): it is not read as bytes and appended to the receive buffer, which
    # made two more.
    as_bytes: list[int] = []
    into_buffer: list[int] = []
    read_socket = trio_ws.reader.read_socket
    read_socket_into = trio_ws.reader.read_socket_into

    async def counting_read(sock: trio.socket.SocketType, max_bytes: int) -> bytes:
        data = await read_socket(sock, max_bytes)
        as_bytes.append(len(data))
        return data

    async def counting_read_into(sock: trio.socket.SocketType, buffer: memoryview) -> int:
        count = await read_socket_into(sock, buffer)
        into_buffer.append(count)
        return count

    monkeypatch.setattr(trio_ws.reader, "read_socket", counting_read)
    monkeypatch.setattr(trio_ws.reader, "read_socket_into", counting_read_into)
    options = {"compression": None, "max_message_size": None}
    async with trio.open_nursery() as nursery:
        client, server = await ws_pair(nursery, streams=socket_streams(), client=options, server=options)
        sender, receiver = (server, client) if direction == "server->client" else (client, server)
        payload = os.urandom(MiB)
        as_bytes.clear()
        async with trio.open_nursery() as sending:
            sending.start_soon(sender.send_message, payload)
            assert await receiver.get_message() == payload
        # Only the reads up to a quarter of the frame came as bytes; every
        # read into the frame's buffer was bounded by receive_buffer_size.
        assert sum(as_bytes) <= MiB // DIRECT_READ_SHARE + RECEIVE_BYTES
        assert sum(as_bytes) + sum(into_buffer) >= MiB
        assert max(into_buffer) <= RECEIVE_BYTES
        await client.aclose()
