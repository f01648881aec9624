"""Tests of trio_ws.plainsocket: reading a plain socket as receive_some would."""

from __future__ import annotations

import os
import socket as stdlib_socket
from collections.abc import Awaitable, Callable

import pytest
import trio
import trio.testing

from trio_ws.plainsocket import plain_socket, read_socket, read_socket_into, write_socket

pytestmark = pytest.mark.skipif(os.name != "posix", reason="plain_socket reads POSIX descriptors")


Read = Callable[[trio.socket.SocketType, int], Awaitable[bytes]]


async def read_into(sock: trio.socket.SocketType, max_bytes: int) -> bytes:
    """read_socket_into a fresh buffer of max_bytes: the bytes it read."""
    buffer = bytearray(max_bytes)
    count = await read_socket_into(sock, memoryview(buffer))
    return bytes(buffer[:count])


@pytest.fixture(params=[read_socket, read_into], ids=["read_socket", "read_socket_into"])
def read(request: pytest.FixtureRequest) -> Read:
    """Both ways of reading: as bytes, and into a buffer (the same rules apply)."""
    return request.param  # type: ignore[no-any-return]


def socket_pair() -> tuple[trio.SocketStream, trio.SocketStream]:
    a, b = stdlib_socket.socketpair()
    return trio.SocketStream(trio.socket.from_stdlib_socket(a)), trio.SocketStream(trio.socket.from_stdlib_socket(b))


async def test_plain_socket_only_for_a_plain_socket_stream() -> None:
    left, right = socket_pair()
    async with left, right:
        assert plain_socket(left) is left.socket
    memory, _ = trio.testing.memory_stream_pair()
    assert plain_socket(memory) is None


async def test_reads_what_is_there_then_waits_then_eof(read: Read) -> None:
    left, right = socket_pair()
    async with left, right:
        await right.send_all(b"hello")
        assert await read(left.socket, 3) == b"hel"
        assert await read(left.socket, 100) == b"lo"
        async with trio.open_nursery() as nursery:
            got: list[bytes] = []

            async def reader() -> None:
                got.append(await read(left.socket, 100))

            nursery.start_soon(reader)
            await trio.testing.wait_all_tasks_blocked()
            assert got == []  # waiting for data
            await right.send_all(b"late")
        assert got == [b"late"]
        await right.send_eof()
        assert await read(left.socket, 100) == b""


async def test_a_read_that_does_not_wait_still_yields(read: Read) -> None:
    left, right = socket_pair()
    async with left, right:
        await right.send_all(b"x")
        with trio.testing.assert_checkpoints():
            assert await read(left.socket, 10) == b"x"


async def test_cancelled_read_consumes_nothing(read: Read) -> None:
    left, right = socket_pair()
    async with left, right:
        with trio.move_on_after(0.01):
            await read(left.socket, 10)
        await right.send_all(b"kept")
        with trio.CancelScope() as scope:
            scope.cancel()
            await read(left.socket, 10)  # cancelled before reading
        assert scope.cancelled_caught
        assert await read(left.socket, 10) == b"kept"


async def test_closed_socket_is_closed_resource_error(read: Read) -> None:
    left, right = socket_pair()
    async with right:
        await left.aclose()
        with pytest.raises(trio.ClosedResourceError):
            await read(left.socket, 10)


async def test_closing_while_waiting_is_closed_resource_error(read: Read) -> None:
    left, right = socket_pair()
    async with right:
        errors: list[BaseException] = []

        async def reader() -> None:
            try:
                await read(left.socket, 10)
            except trio.ClosedResourceError as err:
                errors.append(err)

        with trio.fail_after(5):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(reader)
                await trio.testing.wait_all_tasks_blocked()
                await left.aclose()
        assert len(errors) == 1


async def test_reset_is_broken_resource_error(read: Read) -> None:
    listener = (await trio.open_tcp_listeners(0, host="127.0.0.1"))[0]
    async with listener:
        port = listener.socket.getsockname()[1]
        client = await trio.open_tcp_stream("127.0.0.1", port)
        server = await listener.accept()
        async with server:
            # SO_LINGER 0: close sends RST instead of FIN.
            client.socket.setsockopt(stdlib_socket.SOL_SOCKET, stdlib_socket.SO_LINGER, b"\x01\0\0\0\0\0\0\0")
            await client.aclose()
            with pytest.raises(trio.BrokenResourceError, match="socket connection broken"):
                with trio.fail_after(5):
                    await read(server.socket, 10)


# -- write_socket -----------------------------------------------------------------------


async def test_write_socket_writes_everything_waiting_for_room() -> None:
    left, right = socket_pair()
    data = os.urandom(4 * 2**20)  # far more than the socket buffers hold
    received = bytearray()
    async with left, right:

        async def reader() -> None:
            while len(received) < len(data):
                received.extend(await right.receive_some(65536))

        async with trio.open_nursery() as nursery:
            nursery.start_soon(reader)
            await write_socket(left.socket, data)
    assert received == data


async def test_write_socket_that_does_not_wait_still_yields() -> None:
    left, right = socket_pair()
    async with left, right:
        with trio.testing.assert_checkpoints():
            await write_socket(left.socket, b"x")
        with trio.testing.assert_checkpoints():
            await write_socket(left.socket, b"")
        assert await right.receive_some(10) == b"x"


async def test_write_socket_cancelled_before_writing_sends_nothing() -> None:
    left, right = socket_pair()
    async with left, right:
        with trio.CancelScope() as scope:
            scope.cancel()
            await write_socket(left.socket, b"never")
        assert scope.cancelled_caught
        await left.send_all(b"after")
        assert await right.receive_some(100) == b"after"


async def test_write_socket_on_a_closed_socket_is_closed_resource_error() -> None:
    left, right = socket_pair()
    async with right:
        left.socket.close()
        with pytest.raises(trio.ClosedResourceError):
            await write_socket(left.socket, b"x")


async def test_write_socket_to_a_gone_peer_is_broken_resource_error() -> None:
    left, right = socket_pair()
    async with left:
        await right.aclose()
        with pytest.raises(trio.BrokenResourceError):
            for _ in range(100):  # the first write may still be accepted by the kernel
                await write_socket(left.socket, b"x" * 65536)
