"""Tests for trio_ws.Hub: members, rooms, fan-out, cleanup, slow consumers, frame-once, presence.

Connections are real trio_ws connections: in-memory pairs (``wrap_server_stream``
and ``wrap_client_stream`` over ``memory_stream_pair``) where the transport does
not matter, TCP on 127.0.0.1 where it does (resets, keepalive, slow readers).
"""

from __future__ import annotations

import base64
import functools
import json
import os
import socket
import struct
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Any

import pytest
import trio
import trio.lowlevel
import trio.testing
from support.pairs import ws_pair

import trio_ws
import trio_ws.hub.delivery
from trio_ws import (
    ConnectionClosed,
    Deflate,
    DeliveryReport,
    Hub,
    Member,
    PreparedMessage,
    PresenceEvent,
    WebSocketConnection,
)
from trio_ws.hub import Outcome
from trio_ws.hub.envelopes import (
    all_envelope,
    close_room_envelope,
    disconnect_envelope,
    member_envelope,
    presence_envelope,
    room_envelope,
)

TIMEOUT = 10


# -- helpers ------------------------------------------------------------------------


async def wait_until(predicate: Callable[[], bool]) -> None:
    """Poll ``predicate`` until it holds (callers run under ``trio.fail_after``)."""
    while not predicate():  # noqa: ASYNC110 - the hub has no event for these conditions
        await trio.sleep(0.005)


@dataclass
class Peer:
    """A hub member (server side) and the client connected to it."""

    client: WebSocketConnection
    member: Member

    @property
    def id(self) -> str:
        return self.member.id


@asynccontextmanager
async def hub_peers(
    hub: Hub, count: int, *, ids: list[str] | None = None, room: str | None = None
) -> AsyncIterator[list[Peer]]:
    """``count`` members registered with ``hub`` (over memory streams), optionally in ``room``."""
    async with trio.open_nursery() as nursery:
        try:
            async with AsyncExitStack() as stack:
                peers = []
                for index in range(count):
                    client, server = await ws_pair(nursery, server={"ping_interval": None})
                    member_id = ids[index] if ids else None
                    member = await stack.enter_async_context(hub.connect(server, member_id=member_id))
                    if room is not None:
                        await member.join(room)
                    peers.append(Peer(client, member))
                yield peers
        finally:
            nursery.cancel_scope.cancel()


async def expect_next(hub: Hub, peer: Peer, sentinel: str = "-- sentinel --") -> str | bytes:
    """Unicast a sentinel; return the first message the client receives (the sentinel if nothing came before)."""
    assert await hub.unicast(peer.id, sentinel)
    first = await peer.client.get_message()
    if first != sentinel:
        assert await peer.client.get_message() == sentinel
    return first


async def assert_nothing_pending(hub: Hub, peer: Peer) -> None:
    """The next message the client receives is a fresh sentinel (nothing was queued before it)."""
    sentinel = f"-- sentinel {os.urandom(4).hex()} --"
    assert await hub.unicast(peer.id, sentinel)
    assert await peer.client.get_message() == sentinel


async def next_event(events: trio.MemoryReceiveChannel[PresenceEvent], member_id: str, kind: str) -> PresenceEvent:
    """The next presence event of ``kind`` about ``member_id`` (others are skipped)."""
    while True:
        event = await events.receive()
        if event.member_id == member_id and event.kind == kind:
            return event


class RoomServer:
    """A handler that joins the room named in the path (``/room/member-id``) and reads until the end.

    With ``relay`` set, every message received is broadcast to the room. The
    message ``"raise!"`` makes the handler raise; ``scopes`` lets a test cancel
    one handler.
    """

    def __init__(self, hub: Hub, *, relay: bool = False) -> None:
        self.hub = hub
        self.relay = relay
        self.connections: dict[str, WebSocketConnection] = {}
        self.scopes: dict[str, trio.CancelScope] = {}

    async def handler(self, request: trio_ws.WebSocketRequest) -> None:
        _, room, member_id = request.path.split("/")
        ws = await request.accept()
        self.connections[member_id] = ws
        with trio.CancelScope() as scope:
            self.scopes[member_id] = scope
            async with self.hub.connect(ws, member_id=member_id) as member:
                await member.join(room)
                async for message in ws:
                    if message == "raise!":
                        raise RuntimeError("the handler fails on purpose")
                    if self.relay:
                        await self.hub.broadcast(room, message)


@asynccontextmanager
async def serving(handler: Any, **options: Any) -> AsyncIterator[int]:
    """Run a trio_ws server on 127.0.0.1 for the block; yield its port.

    A peer that does not answer the server's close at shutdown costs at most
    ``disconnect_timeout`` (2 s here unless given).
    """
    options.setdefault("disconnect_timeout", 2)
    async with trio.open_nursery() as nursery:
        server = await nursery.start(
            functools.partial(trio_ws.serve_websocket, handler, "127.0.0.1", 0, None, **options)
        )
        try:
            yield server.port
        finally:
            nursery.cancel_scope.cancel()


async def connect(nursery: trio.Nursery, port: int, path: str, **options: Any) -> WebSocketConnection:
    return await trio_ws.connect_websocket(nursery, "127.0.0.1", port, path, use_ssl=False, **options)


async def connect_many(
    nursery: trio.Nursery, port: int, room: str, ids: list[str], **options: Any
) -> dict[str, WebSocketConnection]:
    clients: dict[str, WebSocketConnection] = {}

    async def one(member_id: str) -> None:
        clients[member_id] = await connect(nursery, port, f"/{room}/{member_id}", **options)

    async with trio.open_nursery() as handshakes:
        for member_id in ids:
            handshakes.start_soon(one, member_id)
    return clients


async def slow_reader(nursery: trio.Nursery, port: int, path: str) -> tuple[WebSocketConnection, trio.SocketStream]:
    """A trio_ws client with a tiny socket receive buffer and a receive queue of one message."""
    sock = trio.socket.socket(trio.socket.AF_INET, trio.socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    await sock.connect(("127.0.0.1", port))
    stream = trio.SocketStream(sock)
    ws = await trio_ws.wrap_client_stream(nursery, stream, "127.0.0.1", path, message_queue_size=1)
    return ws, stream


async def raw_websocket(port: int, path: str, *, rcvbuf: int | None = None) -> trio.SocketStream:
    """Open a WebSocket by hand over TCP; the caller then reads (or does not read) raw bytes."""
    sock = trio.socket.socket(trio.socket.AF_INET, trio.socket.SOCK_STREAM)
    if rcvbuf is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    await sock.connect(("127.0.0.1", port))
    stream = trio.SocketStream(sock)
    key = base64.b64encode(os.urandom(16))
    await stream.send_all(
        b"GET " + path.encode() + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
        b"Connection: Upgrade\r\nSec-WebSocket-Key: " + key + b"\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = await stream.receive_some(1)  # byte by byte: read nothing past the response
        assert chunk, "the server closed during the handshake"
        head += chunk
    assert head.startswith(b"HTTP/1.1 101 "), head
    return stream


async def close_code(client: WebSocketConnection) -> tuple[int, str | None, list[str | bytes]]:
    """Read until the connection closes: (close code, reason, messages received before)."""
    received: list[str | bytes] = []
    while True:
        try:
            received.append(await client.get_message())
        except ConnectionClosed as err:
            return err.reason.code, err.reason.reason, received


# -- construction -------------------------------------------------------------------


def test_hub_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="queue size"):
        Hub(queue_size=0)
    with pytest.raises(ValueError, match="overflow policy"):
        Hub(overflow="block")  # type: ignore[arg-type]


async def test_in_memory_hub_has_no_process_id_and_works_inside_async_with() -> None:
    hub = Hub()
    assert hub.process_id is None
    with trio.fail_after(TIMEOUT):
        async with hub as running, hub_peers(running, 1, room="r") as [peer]:
            assert running is hub
            report = await hub.broadcast("r", "inside")
            assert report == DeliveryReport(queued=1)
            assert await peer.client.get_message() == "inside"


# -- members ------------------------------------------------------------------------


async def test_member_ids_are_unique_and_random_by_default() -> None:
    hub = Hub()
    with trio.fail_after(TIMEOUT):
        async with hub_peers(hub, 20) as peers:
            ids = [peer.id for peer in peers]
            assert len(set(ids)) == 20
            for member_id in ids:
                assert len(member_id) == 32
                int(member_id, 16)
            assert hub.local_members == frozenset(ids)
            for peer in peers:
                assert hub.member(peer.id) is peer.member
                assert peer.member.connection.is_server
                assert peer.member.active
                assert peer.member.data is None
                assert peer.member.rooms == frozenset()
        assert hub.local_members == frozenset()
        assert all(hub.member(member_id) is None for member_id in ids)


async def test_custom_id_and_data() -> None:
    hub = Hub()
    data = {"name": "Alice", "roles": ["admin"]}
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            client, server = await ws_pair(nursery)
            async with hub.connect(server, member_id="alice", data=data) as member:
                assert member.id == "alice"
                assert member.data is data
                assert member.connection is server
                assert hub.member("alice") is member
                assert hub.local_members == {"alice"}
                assert "alice" in repr(member)
                assert await hub.unicast("alice", "hi alice")
                assert await client.get_message() == "hi alice"
            assert hub.member("alice") is None
            nursery.cancel_scope.cancel()


async def test_duplicate_member_id_raises_and_leaves_the_first_alone() -> None:
    hub = Hub()
    with trio.fail_after(TIMEOUT):
        async with hub_peers(hub, 1, ids=["bob"], room="r") as [first], trio.open_nursery() as nursery:
            _, server = await ws_pair(nursery)
            with pytest.raises(ValueError, match="already in use"):
                async with hub.connect(server, member_id="bob"):
                    pytest.fail("the block must not run")
            assert hub.member("bob") is first.member
            assert hub.local_room_members("r") == {"bob"}
            assert await hub.unicast("bob", "still here")
            assert await first.client.get_message() == "still here"
            nursery.cancel_scope.cancel()


async def test_connect_reraises_the_block_exception_unchanged_and_cleans_up() -> None:
    hub = Hub()

    class Boom(Exception):
        pass

    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery, hub.watch("r") as events:
            _, server = await ws_pair(nursery)
            with pytest.raises(Boom):
                async with hub.connect(server, member_id="m") as member:
                    await member.join("r")
                    raise Boom
            assert hub.member("m") is None
            assert hub.local_room_members("r") == frozenset()
            assert (await next_event(events, "m", "leave")).count == 0
            nursery.cancel_scope.cancel()


async def test_connect_keeps_an_exception_raised_while_the_block_is_cancelled() -> None:
    # trio issue #1559: raised in `finally:` while an enclosing scope cancels the block.
    hub = Hub()

    class Boom(Exception):
        pass

    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            _, server = await ws_pair(nursery)
            with pytest.raises(Boom), trio.CancelScope() as scope:
                async with hub.connect(server, member_id="m"):
                    scope.cancel()
                    try:
                        await trio.sleep_forever()
                    finally:
                        raise Boom
            assert hub.member("m") is None
            nursery.cancel_scope.cancel()


# -- rooms --------------------------------------------------------------------------


async def test_join_leave_and_room_queries() -> None:
    hub = Hub()
    with trio.fail_after(TIMEOUT):
        async with hub_peers(hub, 3, ids=["a", "b", "c"]) as [a, b, c]:
            await hub.join("a", "red")
            await a.member.join("blue")
            await b.member.join("red")
            assert a.member.rooms == {"red", "blue"}
            assert hub.rooms("a") == {"red", "blue"}
            assert hub.rooms("b") == {"red"}
            assert hub.rooms("c") == frozenset()
            assert hub.rooms("nobody") == frozenset()
            assert hub.local_room_members("red") == {"a", "b"}
            assert hub.local_room_members("blue") == {"a"}
            assert hub.local_room_members("green") == frozenset()
            assert await hub.members("red") == {"a", "b"}
            assert await hub.member_count("red") == 2
            assert await hub.member_count("green") == 0

            await hub.join("a", "red")  # already in it: no change
            assert await hub.member_count("red") == 2

            await hub.leave("a", "red")
            assert hub.local_room_members("red") == {"b"}
            assert a.member.rooms == {"blue"}
            await a.member.leave("red")  # not in it: no effect
            await c.member.leave("blue")
            assert hub.local_room_members("blue") == {"a"}

            with pytest.raises(KeyError):
                await hub.join("nobody", "red")
            with pytest.raises(KeyError):
                await hub.leave("nobody", "red")

            report = await hub.broadcast("red", "to red")
            assert report.queued == 1
            assert await b.client.get_message() == "to red"
            assert await expect_next(hub, a) == "-- sentinel --"


async def test_envelopes_from_other_processes_are_applied_and_malformed_ones_counted() -> None:
    # The hub is its backend's sink: deliver_remote reads the envelope format
    # (trio_ws.hub.envelopes) and applies it to the local members.
    hub = Hub()
    with trio.fail_after(TIMEOUT):
        async with hub_peers(hub, 2, ids=["a", "b"], room="r") as (a, b), hub.watch("r") as events:
            hub.deliver_remote(room_envelope("other", "r", PreparedMessage("to r"), exclude="b"))
            hub.deliver_remote(all_envelope("other", PreparedMessage(b"\x01")))
            hub.deliver_remote(member_envelope("other", "b", PreparedMessage("to b")))
            hub.deliver_remote(presence_envelope("other", "r", "z", "join"))
            assert await a.client.get_message() == "to r"
            assert await a.client.get_message() == b"\x01"
            assert await b.client.get_message() == b"\x01"
            assert await b.client.get_message() == "to b"
            assert await events.receive() == PresenceEvent("join", "r", "z", 2, remote=True)
            for bad in ({"kind": "room", "room": "r"}, {"kind": "nope"}, {}):
                hub.deliver_remote(bad)  # never raises
            assert (hub.stats.remote_received, hub.stats.remote_malformed) == (7, 3)
            hub.deliver_remote(close_room_envelope("other", "r"))
            assert hub.local_room_members("r") == frozenset()
            assert {(await events.receive()).member_id for _ in range(2)} == {"a", "b"}
            hub.deliver_remote(disconnect_envelope("other", "a", 4002, "bye"))
            with pytest.raises(ConnectionClosed) as closed:
                await a.client.get_message()
            assert (closed.value.reason.code, closed.value.reason.reason) == (4002, "bye")
            await assert_nothing_pending(hub, b)


async def test_cancelled_calls_have_taken_effect() -> None:
    """Membership changes and fan-out act before their first checkpoint: cancelled, they are done."""
    hub = Hub()
    with trio.fail_after(TIMEOUT):
        async with hub_peers(hub, 3, ids=["a", "b", "c"]) as (a, b, c), hub.watch("r") as events:
            with trio.CancelScope() as scope:
                scope.cancel()
                await hub.join("a", "r")
                await b.member.join("r")
                await hub.join("c", "r")
                await hub.leave("c", "r")
                assert (await hub.broadcast("r", "one")).queued == 2
                assert (await hub.send_all("two")).queued == 3
                assert await hub.unicast("b", "three")
                await hub.close_room("r")
                assert await hub.disconnect("c", 4003, "cancelled")
                await trio.lowlevel.checkpoint()
            assert scope.cancelled_caught
            assert hub.local_room_members("r") == frozenset() and a.member.rooms == frozenset()
            seen = [((e := events.receive_nowait()).kind, e.member_id) for _ in range(6)]
            assert seen == [("join", "a"), ("join", "b"), ("join", "c"), ("leave", "c"), ("leave", "a"), ("leave", "b")]
            assert [await a.client.get_message() for _ in range(2)] == ["one", "two"]
            assert [await b.client.get_message() for _ in range(3)] == ["one", "two", "three"]
            with pytest.raises(ConnectionClosed) as closed:
                await c.client.get_message()
            assert closed.value.reason.code == 4003
            with pytest.raises(TypeError, match="str or bytes-like"):
                a.member.send(42)  # type: ignore[arg-type]


async def test_close_room_empties_it_but_keeps_the_members_connected() -> None:
    hub = Hub()
    with trio.fail_after(TIMEOUT):
        async with hub_peers(hub, 3, ids=["a", "b", "c"], room="doomed") as peers, hub.watch("doomed") as events:
            await hub.join("a", "other")
            await hub.close_room("doomed")
            assert hub.local_room_members("doomed") == frozenset()
            assert await hub.member_count("doomed") == 0
            assert hub.local_room_members("other") == {"a"}
            assert hub.local_members == {"a", "b", "c"}
            for peer in peers:
                assert "doomed" not in peer.member.rooms
            leaves = [await events.receive() for _ in range(3)]
            assert {event.member_id for event in leaves} == {"a", "b", "c"}
            assert all(event.kind == "leave" for event in leaves)
            assert sorted(event.count for event in leaves) == [0, 1, 2]
            report = await hub.broadcast("doomed", "nobody hears this")
            assert report.recipients == 0
            report = await hub.send_all("everyone still connected")
            assert report.queued == 3
            for peer in peers:
                assert await peer.client.get_message() == "everyone still connected"


# -- fan-out ------------------------------------------------------------------------


async def test_broadcast_text_and_binary() -> None:
    hub = Hub()
    with trio.fail_after(TIMEOUT):
        async with hub_peers(hub, 3, room="r") as peers:
            report = await hub.broadcast("r", "text é🎉")
            assert report == DeliveryReport(queued=3, dropped=0, closed=0, published=False)
            assert report.recipients == 3
            report = await hub.broadcast("r", b"\x00\xffbinary")
            assert report.queued == 3
            for peer in peers:
                text = await peer.client.get_message()
                assert text == "text é🎉"
                assert isinstance(text, str)
                data = await peer.client.get_message()
                assert data == b"\x00\xffbinary"
                assert isinstance(data, bytes)


async def test_broadcast_to_an_empty_room_reaches_nobody() -> None:
    hub = Hub()
    with trio.fail_after(TIMEOUT):
        async with hub_peers(hub, 2, room="r") as peers:
            report = await hub.broadcast("elsewhere", "lost")
            assert report == DeliveryReport()
            assert report.recipients == 0
            for peer in peers:
                await assert_nothing_pending(hub, peer)


@pytest.mark.parametrize("exclude", ["a", ["a", "b"], ("a", "b", "c"), {"b", "d"}, frozenset({"c"})])
async def test_broadcast_excludes(exclude: Any) -> None:
    hub = Hub()
    excluded = {exclude} if isinstance(exclude, str) else set(exclude)
    with trio.fail_after(TIMEOUT):
        async with hub_peers(hub, 4, ids=["a", "b", "c", "d"], room="r") as peers:
            report = await hub.broadcast("r", "not for everyone", exclude=exclude)
            assert report.queued == 4 - len(excluded)
            assert report.recipients == 4 - len(excluded)
            for peer in peers:
                first = await expect_next(hub, peer)
                if peer.id in excluded:
                    assert first == "-- sentinel --"
                else:
                    assert first == "not for everyone"


async def test_broadcast_excluding_unknown_ids_sends_to_all() -> None:
    hub = Hub()
    with trio.fail_after(TIMEOUT):
        async with hub_peers(hub, 2, room="r") as peers:
            report = await hub.broadcast("r", "x", exclude=["ghost", "phantom"])
            assert report.queued == 2
            for peer in peers:
                assert await peer.client.get_message() == "x"


@pytest.mark.parametrize(
    "value",
    [
        {"user": "Zoë", "text": "héllo 🎉", "n": [1, 2.5, None, True], "nested": {"a": {}}},
        ["a", 1, {"b": "c"}],
        "just a string",
        12345,
        None,
    ],
)
async def test_broadcast_json_encodes_compactly_once(value: Any) -> None:
    hub = Hub()
    expected = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    with trio.fail_after(TIMEOUT):
        async with hub_peers(hub, 3, ids=["a", "b", "c"], room="r") as peers:
            report = await hub.broadcast_json("r", value, exclude="c")
            assert report.queued == 2
            for peer in peers[:2]:
                received = await peer.client.get_message()
                assert isinstance(received, str)
                assert received == expected
                assert json.loads(received) == value
            assert await expect_next(hub, peers[2]) == "-- sentinel --"


async def test_send_all_reaches_every_member_whatever_its_rooms() -> None:
    hub = Hub()
    with trio.fail_after(TIMEOUT):
        async with hub_peers(hub, 4, ids=["a", "b", "c", "d"]) as peers:
            await hub.join("a", "r1")
            await hub.join("b", "r2")
            report = await hub.send_all("to everyone")
            assert report.queued == 4
            for peer in peers:
                assert await peer.client.get_message() == "to everyone"
            report = await hub.send_all(b"\x01", exclude=["a", "d"])
            assert report.queued == 2
            for peer in peers:
                first = await expect_next(hub, peer)
                assert first == (b"\x01" if peer.id in ("b", "c") else "-- sentinel --")


async def test_unicast() -> None:
    hub = Hub()
    with trio.fail_after(TIMEOUT):
        async with hub_peers(hub, 2, ids=["a", "b"]) as [a, b]:
            assert await hub.unicast("a", "only a") is True
            assert await hub.unicast("a", b"binary for a") is True
            assert await a.client.get_message() == "only a"
            assert await a.client.get_message() == b"binary for a"
            assert await hub.unicast("nobody", "lost") is False
            assert await expect_next(hub, b) == "-- sentinel --"
            assert a.member.send("via member") is Outcome.QUEUED
            assert await a.client.get_message() == "via member"
        # Gone: the members have left the hub.
        assert await hub.unicast("a", "too late") is False
        assert await hub.unicast("b", "too late") is False


async def test_unicast_to_a_member_whose_connection_closed_is_false() -> None:
    hub = Hub()
    with trio.fail_after(TIMEOUT):
        async with hub_peers(hub, 1, ids=["a"]) as [a]:
            await a.client.aclose()
            await wait_until(lambda: hub.member("a") is None)
            assert await hub.unicast("a", "after close") is False


async def test_send_to_checks_room_membership() -> None:
    hub = Hub()
    with trio.fail_after(TIMEOUT):
        async with hub_peers(hub, 2, ids=["a", "b"]) as [a, b]:
            await hub.join("a", "r")
            await hub.join("b", "other")
            assert await hub.send_to("r", "a", "in r") is True
            assert await a.client.get_message() == "in r"
            assert await hub.send_to("r", "b", "b is not in r") is False
            assert await hub.send_to("r", "ghost", "unknown") is False
            assert await hub.send_to("nowhere", "a", "no such room") is False
            assert await expect_next(hub, b) == "-- sentinel --"
            assert await expect_next(hub, a) == "-- sentinel --"


async def test_prepared_message_broadcast_and_unicast() -> None:
    hub = Hub()
    with trio.fail_after(TIMEOUT):
        async with hub_peers(hub, 3, room="r") as peers:
            message = PreparedMessage("prepared")
            assert (await hub.broadcast("r", message)).queued == 3
            assert await hub.unicast(peers[0].id, message)
            for peer in peers:
                assert await peer.client.get_message() == "prepared"
            assert await peers[0].client.get_message() == "prepared"
            # Context takeover (the default) frames per connection: no shared frame.
            assert not any(peer.member.connection.shares_frames for peer in peers)
            assert message.frames_built == 0


@pytest.mark.parametrize(("code", "reason"), [(4001, "kicked"), (1000, ""), (1008, "bad behaviour")])
async def test_disconnect_closes_with_code_and_reason(code: int, reason: str) -> None:
    hub = Hub()
    with trio.fail_after(TIMEOUT):
        async with hub_peers(hub, 2, ids=["victim", "witness"], room="r") as [victim, witness]:
            async with hub.watch("r") as events:
                assert await hub.disconnect("victim", code, reason) is True
                got_code, got_reason, before = await close_code(victim.client)
                assert got_code == code
                assert (got_reason or "") == reason
                assert before == []
                assert (await next_event(events, "victim", "leave")).count == 1
            await wait_until(lambda: hub.member("victim") is None)
            assert victim.member.connection.closed is not None
            assert victim.member.connection.closed.code == code
            assert hub.local_room_members("r") == {"witness"}
            assert await hub.disconnect("victim") is False
            assert await hub.disconnect("ghost", 4000, "x") is False
            assert (await hub.broadcast("r", "still on")).queued == 1
            assert await witness.client.get_message() == "still on"


async def test_disconnect_default_code_is_1000() -> None:
    hub = Hub()
    with trio.fail_after(TIMEOUT):
        async with hub_peers(hub, 1, ids=["a"]) as [a]:
            assert await hub.disconnect("a")
            code, _, _ = await close_code(a.client)
            assert code == 1000


async def test_stats_counters() -> None:
    hub = Hub()
    with trio.fail_after(TIMEOUT):
        async with hub_peers(hub, 2, ids=["a", "b"], room="r") as [a, b]:
            for i in range(3):
                await hub.broadcast("r", f"m{i}")
            await hub.send_all("all")
            await hub.unicast("a", "one")
            await wait_until(lambda: hub.stats.delivered == 9)
            assert hub.stats.fanouts == 4  # unicast is not a fan-out
            assert hub.stats.queued == 9
            assert hub.stats.delivered == 9
            assert hub.stats.dropped == 0
            assert hub.stats.overflow_closes == 0
            assert hub.stats.remote_received == 0
            assert a.member.stats.queued == 5
            assert a.member.stats.delivered == 5
            assert b.member.stats.queued == 4
            assert b.member.stats.delivered == 4
            assert a.member.stats.dropped == 0
            assert 1 <= a.member.stats.high_water <= 5
            assert a.member.queued == 0
            for _ in range(4):
                await b.client.get_message()
            for _ in range(5):
                await a.client.get_message()


# -- overflow (in memory: deterministic, fan-out does not yield) ---------------------


async def test_overflow_close_policy_in_memory() -> None:
    hub = Hub(queue_size=1, overflow="close")
    with trio.fail_after(TIMEOUT):
        async with hub_peers(hub, 2, ids=["victim", "ok"], room="r") as [victim, ok], hub.watch("r") as events:
            outcomes = [victim.member.send(f"m{i}") for i in range(3)]
            assert outcomes == [Outcome.QUEUED, Outcome.DROPPED, Outcome.CLOSED]
            report = await hub.broadcast("r", "room message")
            assert report == DeliveryReport(queued=1, dropped=0, closed=1)
            code, reason, before = await close_code(victim.client)
            assert code == 1008
            assert reason == "outbound queue overflow"
            assert before == []  # what was queued at the overflow is discarded: at most once
            assert (await next_event(events, "victim", "leave")).count == 1
            assert hub.member("victim") is None
            assert hub.stats.overflow_closes == 1
            assert hub.stats.dropped == 1
            assert victim.member.stats.dropped == 1
            assert await ok.client.get_message() == "room message"


@pytest.mark.parametrize(("policy", "expected"), [("drop_newest", ["m0", "m1"]), ("drop_oldest", ["m3", "m4"])])
async def test_drop_policies_in_memory(policy: Any, expected: list[str]) -> None:
    hub = Hub(queue_size=2, overflow=policy)
    with trio.fail_after(TIMEOUT):
        async with hub_peers(hub, 2, room="r") as peers:
            reports = [await hub.broadcast("r", f"m{i}") for i in range(5)]
            if policy == "drop_newest":
                assert [r.queued for r in reports] == [2, 2, 0, 0, 0]
                assert [r.dropped for r in reports] == [0, 0, 2, 2, 2]
            else:
                assert [r.queued for r in reports] == [2] * 5
                assert [r.dropped for r in reports] == [0] * 5  # the evicted message is counted in stats
            assert all(r.closed == 0 for r in reports)
            for peer in peers:
                assert [await peer.client.get_message() for _ in expected] == expected
                await assert_nothing_pending(hub, peer)
                assert peer.member.stats.dropped == 3
                assert peer.member.connection.closed is None
            assert hub.stats.dropped == 6
            assert hub.stats.overflow_closes == 0


# -- membership cleanup, however the connection ends (TCP) ----------------------------


@asynccontextmanager
async def victim_and_witness(
    hub: Hub, room: str = "room", **server_options: Any
) -> AsyncIterator[tuple[int, RoomServer, trio.Nursery, WebSocketConnection, trio.MemoryReceiveChannel[PresenceEvent]]]:
    """A server with a witness client in ``room`` and a presence watcher; the test adds the victim."""
    server = RoomServer(hub)
    # The clients' nursery encloses the server: when the block ends the server
    # shuts down first and the clients, still running, answer its close.
    async with (
        hub.watch(room) as events,
        trio.open_nursery() as nursery,
        serving(server.handler, **server_options) as port,
    ):
        witness = await connect(nursery, port, f"/{room}/witness")
        await next_event(events, "witness", "join")
        yield port, server, nursery, witness, events


async def assert_cleaned_up(
    hub: Hub,
    events: trio.MemoryReceiveChannel[PresenceEvent],
    witness: WebSocketConnection,
    member_id: str = "victim",
    room: str = "room",
) -> None:
    leave = await next_event(events, member_id, "leave")
    assert leave.room == room
    assert leave.count == 1
    assert not leave.remote
    await wait_until(lambda: hub.member(member_id) is None)
    assert member_id not in hub.local_members
    assert hub.local_room_members(room) == {"witness"}
    assert await hub.members(room) == {"witness"}
    assert hub.rooms(member_id) == frozenset()
    report = await hub.broadcast(room, "after the victim left")
    assert report == DeliveryReport(queued=1)
    assert await witness.get_message() == "after the victim left"
    assert await hub.unicast(member_id, "x") is False
    assert await hub.send_to(room, member_id, "x") is False
    assert (await hub.send_all("all")).recipients == 1
    assert await witness.get_message() == "all"


async def test_cleanup_when_the_client_closes_normally() -> None:
    hub = Hub()
    with trio.fail_after(TIMEOUT):
        async with victim_and_witness(hub) as (port, server, nursery, witness, events):
            victim = await connect(nursery, port, "/room/victim")
            await next_event(events, "victim", "join")
            await victim.aclose()
            assert victim.closed is not None
            assert victim.closed.code == 1000
            await assert_cleaned_up(hub, events, witness)
            await wait_until(lambda: server.connections["victim"].closed is not None)


@pytest.mark.parametrize("reset", [False, True], ids=["close", "reset"])
async def test_cleanup_when_the_client_transport_is_killed(reset: bool) -> None:
    hub = Hub()
    with trio.fail_after(TIMEOUT):
        async with victim_and_witness(hub) as (port, server, nursery, witness, events):
            stream = await trio.open_tcp_stream("127.0.0.1", port)
            await trio_ws.wrap_client_stream(nursery, stream, "127.0.0.1", "/room/victim")
            await next_event(events, "victim", "join")
            if reset:
                # SO_LINGER with a zero timeout: close() sends a TCP RST.
                stream.socket.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            await trio.aclose_forcefully(stream)
            await assert_cleaned_up(hub, events, witness)
            closed = server.connections["victim"].closed
            assert closed is not None
            assert closed.code == 1006


async def test_cleanup_when_the_handler_is_cancelled() -> None:
    hub = Hub()
    with trio.fail_after(TIMEOUT):
        async with victim_and_witness(hub) as (port, server, nursery, witness, events):
            victim = await connect(nursery, port, "/room/victim")
            await next_event(events, "victim", "join")
            server.scopes["victim"].cancel()
            await assert_cleaned_up(hub, events, witness)
            code, _, _ = await close_code(victim)
            assert code == 1000  # the handler returned: the server closes normally


async def test_cleanup_when_the_handler_raises() -> None:
    hub = Hub()
    with trio.fail_after(TIMEOUT):
        async with victim_and_witness(hub) as (port, _, nursery, witness, events):
            victim = await connect(nursery, port, "/room/victim")
            await next_event(events, "victim", "join")
            await victim.send_message("raise!")
            await assert_cleaned_up(hub, events, witness)
            code, _, _ = await close_code(victim)
            assert code == 1011


async def test_cleanup_on_keepalive_timeout() -> None:
    hub = Hub()
    # ping_timeout is what the witness (a real client in this process) has to
    # answer each ping: 1 s leaves room for a loaded machine, and the victim is
    # still gone well within the 5 s checked below.
    options = {"ping_interval": 0.2, "ping_timeout": 1.0, "disconnect_timeout": 0.5}
    with trio.fail_after(TIMEOUT):
        async with victim_and_witness(hub, **options) as (port, server, _nursery, witness, events):
            # A client that completes the handshake by hand, then never reads or answers a ping.
            stream = await raw_websocket(port, "/room/victim")
            await next_event(events, "victim", "join")
            start = trio.current_time()
            await assert_cleaned_up(hub, events, witness)
            assert trio.current_time() - start < 5
            closed = server.connections["victim"].closed
            assert closed is not None
            assert closed.code == 1011
            assert closed.reason == "keepalive ping timeout"
            # The witness answers pings by itself and stays (one more full
            # interval + timeout: a witness that did not answer would be gone).
            await trio.sleep(1.2)
            assert hub.local_room_members("room") == {"witness"}
            await stream.aclose()


async def test_cleanup_when_the_server_side_closes() -> None:
    hub = Hub()
    with trio.fail_after(TIMEOUT):
        async with victim_and_witness(hub) as (port, _, nursery, witness, events):
            victim = await connect(nursery, port, "/room/victim")
            await next_event(events, "victim", "join")
            member = hub.member("victim")
            assert member is not None
            await member.connection.aclose(4002, "server says bye")
            await assert_cleaned_up(hub, events, witness)
            code, reason, _ = await close_code(victim)
            assert (code, reason) == (4002, "server says bye")


async def test_cleanup_when_the_server_shuts_down() -> None:
    hub = Hub()
    server = RoomServer(hub)
    with trio.fail_after(TIMEOUT):
        async with hub.watch("room") as events, trio.open_nursery() as clients:
            async with trio.open_nursery() as server_nursery:
                listener = await server_nursery.start(
                    functools.partial(trio_ws.serve_websocket, server.handler, "127.0.0.1", 0, None)
                )
                peers = await connect_many(clients, listener.port, "room", ["a", "b"])
                await wait_until(lambda: len(hub.local_room_members("room")) == 2)
                server_nursery.cancel_scope.cancel()
            assert hub.local_members == frozenset()
            assert hub.local_room_members("room") == frozenset()
            leaves = set()
            while len(leaves) < 2:
                event = await events.receive()
                if event.kind == "leave":
                    leaves.add(event.member_id)
            assert leaves == {"a", "b"}
            assert (await hub.broadcast("room", "nobody")).recipients == 0
            for peer in peers.values():
                code, _, _ = await close_code(peer)
                assert code == 1001
            clients.cancel_scope.cancel()


@pytest.mark.parametrize("size", [64, 8192], ids=["small", "8KiB"])
async def test_server_cancelled_under_traffic_closes_every_member_with_1001(size: int) -> None:
    # Broadcasts are in flight when the server's scope is cancelled: a member's
    # sender is then cancelled before (or between) its writes, which must not
    # abort the connection (1006); every member gets the going-away close.
    hub = Hub()
    server = RoomServer(hub)
    ids = [f"m{index}" for index in range(20)]
    codes: dict[str, int] = {}
    received: dict[str, int] = {}

    async def read(member_id: str, client: WebSocketConnection) -> None:
        code, _, messages = await close_code(client)
        codes[member_id] = code
        received[member_id] = len(messages)

    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as clients, trio.open_nursery() as server_nursery:
            listener = await server_nursery.start(
                functools.partial(trio_ws.serve_websocket, server.handler, "127.0.0.1", 0, None)
            )
            peers = await connect_many(clients, listener.port, "room", ids, compression=None)
            await wait_until(lambda: len(hub.local_room_members("room")) == len(ids))
            for member_id, client in peers.items():
                clients.start_soon(read, member_id, client)

            async def traffic() -> None:
                payload = "x" * size
                while True:
                    await hub.broadcast("room", payload)
                    await trio.lowlevel.checkpoint()

            server_nursery.start_soon(traffic)
            await wait_until(lambda: min(received.get(i, 0) for i in ids) > 0 or hub.stats.delivered > 2000)
            server_nursery.cancel_scope.cancel()
        assert codes == dict.fromkeys(ids, 1001)
        assert hub.stats.delivered > 0


# -- slow consumers (TCP) ------------------------------------------------------------

PAYLOAD = "x" * 16384
SLOW_COUNT = 600  # 600 x 16 KiB: far more than the kernel buffers of a stalled reader hold


def numbered(index: int) -> str:
    return f"{index:06d}{PAYLOAD}"


async def paced_broadcast(
    hub: Hub, fast: Member, fast_client: WebSocketConnection, count: int
) -> tuple[list[DeliveryReport], list[int], float]:
    """Broadcast ``count`` numbered messages to "r" at the fast reader's pace.

    Returns the reports, the indexes the fast client received and the worst
    latency it saw between a broadcast and its arrival.
    """
    sent_at: dict[int, float] = {}
    received: list[int] = []
    worst = 0.0
    reports = []

    async def read_fast() -> None:
        nonlocal worst
        while len(received) < count:
            message = await fast_client.get_message()
            assert isinstance(message, str)
            index = int(message[:6])
            worst = max(worst, time.monotonic() - sent_at[index])
            received.append(index)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(read_fast)
        for index in range(count):
            while fast.queued > 1:
                await trio.lowlevel.checkpoint()
            sent_at[index] = time.monotonic()
            reports.append(await hub.broadcast("r", numbered(index)))
            await trio.lowlevel.checkpoint()
    return reports, received, worst


async def test_slow_consumer_is_closed_with_1008_while_the_fast_one_gets_everything() -> None:
    hub = Hub(queue_size=4, overflow="close")
    server = RoomServer(hub)
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery, serving(server.handler, compression=None) as port:
            slow, _ = await slow_reader(nursery, port, "/r/slow")  # never reads until the end
            fast_client = await connect(nursery, port, "/r/fast")
            await wait_until(lambda: len(hub.local_room_members("r")) == 2)
            fast = hub.member("fast")
            assert fast is not None
            async with hub.watch("r") as events:
                reports, received, worst = await paced_broadcast(hub, fast, fast_client, SLOW_COUNT)
                assert received == list(range(SLOW_COUNT))
                assert worst < 2.0, f"the fast client waited {worst:.3f} s for a message"
                assert fast.stats.dropped == 0
                assert fast.connection.closed is None
                # The slow member overflowed exactly once; later fan-outs skip it as closed.
                assert sum(report.dropped for report in reports) == 1
                overflow_at = next(i for i, report in enumerate(reports) if report.dropped)
                assert all(report.closed == 0 for report in reports[:overflow_at])
                assert all(report.queued == 1 and report.dropped == 0 for report in reports[overflow_at + 1 :])
                # The slow client reads at last: a prefix in order, then the 1008 close.
                code, reason, before = await close_code(slow)
                assert (code, reason) == (1008, "outbound queue overflow")
                indexes = [int(str(message)[:6]) for message in before]
                assert indexes == list(range(len(indexes)))
                assert len(indexes) < overflow_at
                await next_event(events, "slow", "leave")
            closed = server.connections["slow"].closed
            assert closed is not None
            assert closed.code == 1008
            assert hub.stats.overflow_closes == 1
            assert hub.local_room_members("r") == {"fast"}


@pytest.mark.parametrize("policy", ["drop_newest", "drop_oldest"])
async def test_slow_consumer_with_a_drop_policy_stays_connected(policy: Any) -> None:
    queue_size = 4
    hub = Hub(queue_size=queue_size, overflow=policy)
    server = RoomServer(hub)
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery, serving(server.handler, compression=None) as port:
            slow_client, _ = await slow_reader(nursery, port, "/r/slow")
            fast_client = await connect(nursery, port, "/r/fast")
            await wait_until(lambda: len(hub.local_room_members("r")) == 2)
            fast, slow = hub.member("fast"), hub.member("slow")
            assert fast is not None
            assert slow is not None
            reports, received, worst = await paced_broadcast(hub, fast, fast_client, SLOW_COUNT)
            assert received == list(range(SLOW_COUNT))
            assert worst < 2.0, f"the fast client waited {worst:.3f} s for a message"
            assert slow.stats.dropped > 0
            assert hub.stats.dropped == slow.stats.dropped
            assert fast.stats.dropped == 0
            assert hub.stats.overflow_closes == 0
            assert slow.connection.closed is None
            if policy == "drop_newest":
                assert sum(report.dropped for report in reports) == slow.stats.dropped
            assert all(report.closed == 0 for report in reports)

            # Now the slow client reads everything that was not dropped.
            got: list[int] = []
            done = trio.Event()

            async def read_slow() -> None:
                while True:
                    message = await slow_client.get_message()
                    if message == "end":
                        done.set()
                        return
                    got.append(int(str(message)[:6]))

            nursery.start_soon(read_slow)
            await wait_until(lambda: slow.queued == 0 and slow.stats.delivered + slow.stats.dropped == SLOW_COUNT)
            assert await hub.unicast("slow", "end")
            await done.wait()
            assert got == sorted(got)
            assert len(set(got)) == len(got)
            assert len(got) == SLOW_COUNT - slow.stats.dropped
            if policy == "drop_oldest":
                assert got[-queue_size:] == list(range(SLOW_COUNT - queue_size, SLOW_COUNT))
            else:
                assert SLOW_COUNT - 1 not in got  # the newest found the queue full
            assert slow.connection.closed is None
            assert hub.local_room_members("r") == {"fast", "slow"}


async def test_overflow_closes_a_completely_stalled_client_promptly() -> None:
    """A client that stops reading entirely must still be closed once its outbox overflows.

    Its sender is stuck in a TCP write that will never finish, so closing it
    means aborting that write; the member must leave its rooms promptly, not
    when (and if) keepalive notices.
    """
    hub = Hub(queue_size=1, overflow="close")
    server = RoomServer(hub)
    with trio.fail_after(TIMEOUT):
        async with serving(server.handler, compression=None, ping_interval=None) as port:
            stream = await raw_websocket(port, "/r/stalled", rcvbuf=4096)  # never reads
            await wait_until(lambda: hub.local_room_members("r") == {"stalled"})
            member = hub.member("stalled")
            assert member is not None
            for _ in range(20):  # 1 MiB each; overflows once the kernel buffers are full
                report = await hub.broadcast("r", b"\x00" * 2**20)
                if report.dropped:
                    break
                await trio.sleep(0.05)
            assert member.stats.dropped == 1, "the outbox never overflowed"
            with trio.move_on_after(3):
                await wait_until(lambda: hub.member("stalled") is None)
            assert member.connection.closed is not None, "the overflowed connection is still open"
            assert hub.local_room_members("r") == frozenset()
            assert hub.stats.overflow_closes == 1
            await trio.aclose_forcefully(stream)


# -- ordering ------------------------------------------------------------------------


async def test_broadcasts_from_one_sender_arrive_in_order_at_every_member() -> None:
    count, size = 1000, 20
    hub = Hub(queue_size=count)  # this test is about order, not overflow
    server = RoomServer(hub, relay=True)
    ids = [f"m{i:02d}" for i in range(size)]
    received: dict[str, list[str]] = {member_id: [] for member_id in ids}
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery, serving(server.handler) as port:
            clients = await connect_many(nursery, port, "chat", ids)
            await wait_until(lambda: len(hub.local_room_members("chat")) == size)

            async def read(member_id: str) -> None:
                while len(received[member_id]) < count:
                    message = await clients[member_id].get_message()
                    assert isinstance(message, str)
                    received[member_id].append(message)

            async with trio.open_nursery() as readers:
                for member_id in ids:
                    readers.start_soon(read, member_id)
                sender = clients["m00"]
                for i in range(count):
                    await sender.send_message(f"{i:04d}")
            expected = [f"{i:04d}" for i in range(count)]
            for member_id in ids:
                assert received[member_id] == expected, f"{member_id} got messages out of order"
            assert hub.stats.fanouts == count
            assert hub.stats.dropped == 0
            assert hub.stats.delivered == count * size


# -- frame once ----------------------------------------------------------------------


async def run_room(
    size: int, messages: list[PreparedMessage], server_options: dict[str, Any], client_options: Callable[[int], dict]
) -> tuple[Hub, dict[str, WebSocketConnection], dict[str, list[str | bytes]]]:
    """Connect ``size`` clients over TCP to room "r", broadcast ``messages``, return what each client got."""
    hub = Hub()
    server = RoomServer(hub)
    ids = [f"c{i:02d}" for i in range(size)]
    received: dict[str, list[str | bytes]] = {}
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery, serving(server.handler, **server_options) as port:
            clients: dict[str, WebSocketConnection] = {}

            async def one(index: int) -> None:
                member_id = ids[index]
                clients[member_id] = await connect(nursery, port, f"/r/{member_id}", **client_options(index))

            async with trio.open_nursery() as handshakes:
                for index in range(size):
                    handshakes.start_soon(one, index)
            await wait_until(lambda: len(hub.local_room_members("r")) == size)
            for message in messages:
                report = await hub.broadcast("r", message)
                assert report == DeliveryReport(queued=size)
            for member_id, client in clients.items():
                received[member_id] = [await client.get_message() for _ in messages]
                assert not client.shares_frames  # client frames are masked, never shared
            await wait_until(lambda: hub.stats.delivered == size * len(messages))
            members = {member_id: hub.member(member_id) for member_id in ids}
            server_side = {member_id: member.connection for member_id, member in members.items() if member}
            assert len(server_side) == size
    # Report the server-side connections through the hub's connections map.
    return hub, server_side, received


async def test_frame_once_uncompressed_room_of_50() -> None:
    message = PreparedMessage("frame once, send fifty times " * 20)
    hub, connections, received = await run_room(50, [message], {"compression": None}, lambda _: {})
    assert message.frames_built == 1
    assert hub.stats.delivered == 50
    for connection in connections.values():
        assert not connection.compression
        assert connection.shares_frames
    assert all(got == [message.data] for got in received.values())


async def test_frame_once_with_server_no_context_takeover() -> None:
    texts = ["compress me once " * 100, "and again, differently " * 80]
    messages = [PreparedMessage(text) for text in texts] + [PreparedMessage(os.urandom(3000) * 3)]
    options = {"compression": Deflate(server_no_context_takeover=True)}
    _, connections, received = await run_room(50, messages, options, lambda _: {})
    for message in messages:
        assert message.frames_built == 1
    for connection in connections.values():
        assert connection.compression
        assert connection.shares_frames
    assert all(got == [message.data for message in messages] for got in received.values())


async def test_frame_once_with_mixed_compression_builds_one_frame_per_kind() -> None:
    messages = [PreparedMessage("half compressed " * 100)]
    options = {"compression": Deflate(server_no_context_takeover=True)}
    # Even-numbered clients offer compression, odd-numbered ones do not.
    _, connections, received = await run_room(
        50, messages, options, lambda index: {} if index % 2 == 0 else {"compression": None}
    )
    assert messages[0].frames_built == 2
    assert sum(connection.compression for connection in connections.values()) == 25
    assert all(connection.shares_frames for connection in connections.values())
    assert all(got == [messages[0].data] for got in received.values())


async def test_context_takeover_frames_per_connection() -> None:
    texts = [f"context takeover message {i} " * 60 for i in range(5)]
    messages = [PreparedMessage(text) for text in texts]
    _, connections, received = await run_room(50, messages, {}, lambda _: {})
    for message in messages:
        assert message.frames_built == 0
    for connection in connections.values():
        assert connection.compression
        assert not connection.shares_frames
    assert all(got == texts for got in received.values())


# -- scale ---------------------------------------------------------------------------


@pytest.mark.slow
async def test_ten_thousand_members_in_one_room_each_get_the_message_once() -> None:
    """10,000 server connections over memory streams; the clients are raw byte streams.

    Each client writes a fixed opening handshake and later reads what it
    received: the 101 response and exactly one unmasked text frame.
    """
    count, batch = 10_000, 500
    options: dict[str, Any] = {"ping_interval": None, "compression": None, "connect_timeout": None}
    key = base64.b64encode(b"0123456789abcdef")
    request = (
        b"GET /big HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: " + key + b"\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    hub = Hub()
    clients: list[trio.StapledStream[Any, Any]] = []
    with trio.fail_after(120):
        async with trio.open_nursery() as nursery:
            release = trio.Event()

            async def member(index: int, stream: trio.abc.Stream, task_status: trio.TaskStatus[None]) -> None:
                incoming = await trio_ws.wrap_server_stream(nursery, stream, **options)
                ws = await incoming.accept()
                async with hub.connect(ws, member_id=f"m{index}") as joined:
                    await joined.join("big")
                    task_status.started()
                    await release.wait()

            for start in range(0, count, batch):
                async with trio.open_nursery() as handshakes:
                    for index in range(start, min(count, start + batch)):
                        client_stream, server_stream = trio.testing.memory_stream_pair()
                        await client_stream.send_all(request)
                        clients.append(client_stream)
                        handshakes.start_soon(nursery.start, member, index, server_stream)
            assert len(hub.local_room_members("big")) == count

            report = await hub.broadcast("big", "hello")
            assert report == DeliveryReport(queued=count)
            await wait_until(lambda: hub.stats.delivered == count)
            assert hub.stats.queued == count
            assert hub.stats.dropped == 0
            expected_frame = b"\x81\x05hello"
            exactly_once = 0
            for client_stream in clients:
                data = await client_stream.receive_some()  # everything buffered so far
                head, _, frames = data.partition(b"\r\n\r\n")
                assert head.startswith(b"HTTP/1.1 101 ")
                exactly_once += frames == expected_frame
            assert exactly_once == count
            members = [hub.member(f"m{i}") for i in range(count)]
            assert all(m is not None and m.stats.delivered == 1 and m.queued == 0 for m in members)
            release.set()
            nursery.cancel_scope.cancel()
    assert hub.local_members == frozenset()


# -- presence ------------------------------------------------------------------------


async def test_watch_reports_joins_and_leaves_with_counts() -> None:
    hub = Hub()
    with trio.fail_after(TIMEOUT):
        async with hub.watch("lobby") as events, hub_peers(hub, 3, ids=["a", "b", "c"]) as [_, _, c]:
            await hub.join("a", "lobby")
            await hub.join("b", "lobby")
            await hub.join("c", "elsewhere")  # not watched
            await hub.join("a", "lobby")  # already in: no event
            await hub.leave("a", "lobby")
            await c.client.aclose()  # c was never in the lobby: no event
            await wait_until(lambda: hub.member("c") is None)
            await hub.join("a", "lobby")
        # The peers' block ended: a and b leave the lobby as they disconnect.
        seen = []
        while True:
            try:
                event = events.receive_nowait()
            except (trio.WouldBlock, trio.EndOfChannel):
                break
            seen.append((event.kind, event.member_id, event.count))
            assert event.room == "lobby"
            assert not event.remote
        assert seen[:4] == [("join", "a", 1), ("join", "b", 2), ("leave", "a", 1), ("join", "a", 2)]
        assert sorted(seen[4:]) == [("leave", "a", 0), ("leave", "b", 1)] or sorted(seen[4:]) == [
            ("leave", "a", 1),
            ("leave", "b", 0),
        ]
        assert len(seen) == 6


async def test_a_watcher_that_never_reads_does_not_block_the_hub() -> None:
    hub = Hub()
    rounds = 200  # 400 events, more than a watcher's buffer of 256
    eager_seen: list[PresenceEvent] = []
    with trio.fail_after(TIMEOUT):
        async with (
            hub_peers(hub, 2, ids=["a", "b"], room="busy") as [a, b],
            hub.watch("busy") as lazy,
            hub.watch("busy") as eager,
            trio.open_nursery() as nursery,
        ):

            async def read_eager() -> None:
                async for event in eager:
                    eager_seen.append(event)

            nursery.start_soon(read_eager)
            for _ in range(rounds):
                await hub.leave("a", "busy")
                await hub.join("a", "busy")
                await trio.testing.wait_all_tasks_blocked()
            # Fan-out still works while the lazy watcher's buffer is full.
            assert (await hub.broadcast("busy", "still flowing")).queued == 2
            assert await a.client.get_message() == "still flowing"
            assert await b.client.get_message() == "still flowing"
            # Every event reached the eager watcher by now (it read after each round).
            await trio.testing.wait_all_tasks_blocked()
            assert len(eager_seen) == 2 * rounds
            lazy_seen = []
            while True:
                try:
                    lazy_seen.append(lazy.receive_nowait())
                except trio.WouldBlock:
                    break
            nursery.cancel_scope.cancel()
    assert len(lazy_seen) == 256
    assert lazy_seen == eager_seen[:256]
    assert [(e.kind, e.count) for e in eager_seen[:4]] == [("leave", 1), ("join", 2), ("leave", 1), ("join", 2)]


async def test_leaving_the_watch_block_stops_the_events() -> None:
    hub = Hub()
    with trio.fail_after(TIMEOUT):
        async with hub_peers(hub, 1, ids=["a"]) as _:
            async with hub.watch("r") as events:
                await hub.join("a", "r")
                assert (await events.receive()).kind == "join"
            await hub.leave("a", "r")  # no watcher now: must not fail
            with pytest.raises(trio.EndOfChannel):
                events.receive_nowait()
            async with hub.watch("r") as again:
                await hub.join("a", "r")
                event = await again.receive()
                assert (event.kind, event.member_id, event.count) == ("join", "a", 1)


async def test_broadcast_within_reaches_the_members_also_in_that_room_or_with_that_id() -> None:
    hub = Hub()
    with trio.fail_after(5):
        async with hub_peers(hub, 3, room="all") as [a, b, c]:
            await a.member.join("vip")
            await b.member.join("vip")
            report = await hub.broadcast("all", "for vips", within="vip", exclude=b.id)
            assert report.queued == 1
            assert await hub.broadcast("all", "for c", within=c.id) == DeliveryReport(queued=1)
            assert await expect_next(hub, a) == "for vips"
            await assert_nothing_pending(hub, b)
            assert await expect_next(hub, c) == "for c"
            # A room with history in an in-memory hub cannot replay such a message to the right members only.
            hub.enable_history("all")
            with pytest.raises(ValueError, match="within"):
                await hub.broadcast("all", "x", within="vip")


# -- the sender's trips through the scheduler ---------------------------------------------


class SenderSteps(trio.abc.Instrument):
    """Steps of the hub's sender tasks (a step is one run of a task between two yields)."""

    def __init__(self) -> None:
        self.steps = 0

    def before_task_step(self, task: trio.lowlevel.Task) -> None:
        if task.name == "trio_ws.hub.hub.Hub._sender":
            self.steps += 1


def socket_streams() -> tuple[trio.SocketStream, trio.SocketStream]:
    a, b = socket.socketpair()
    return trio.SocketStream(trio.socket.from_stdlib_socket(a)), trio.SocketStream(trio.socket.from_stdlib_socket(b))


@pytest.mark.skipif(os.name != "posix", reason="plain socket writes are POSIX-only")
async def test_the_sender_yields_once_per_batch_it_waited_for_and_in_every_other_write(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A sender woken for a message has just yielded: it writes without yielding
    # again. Batches it finds already queued (here: one message per batch) are
    # written with a yield each, so a sender that always has work still lets
    # the other tasks run between its writes.
    monkeypatch.setattr(trio_ws.hub.delivery, "BATCH_BYTES", 1)
    counter = SenderSteps()
    with trio.fail_after(TIMEOUT):
        async with Hub() as hub, trio.open_nursery() as nursery:
            client, server = await ws_pair(nursery, streams=socket_streams(), server={"ping_interval": None})
            async with hub.connect(server) as member:
                assert member.send("warm-up") is Outcome.QUEUED
                assert await client.get_message() == "warm-up"
                await trio.testing.wait_all_tasks_blocked()
                trio.lowlevel.add_instrument(counter)
                for index in range(10):  # one at a time: the sender waits for each
                    assert member.send(f"one {index}") is Outcome.QUEUED
                    assert await client.get_message() == f"one {index}"
                    await trio.testing.wait_all_tasks_blocked()
                one_at_a_time, counter.steps = counter.steps, 0
                for index in range(5):  # a burst: five batches queued at once
                    assert member.send(f"burst {index}") is Outcome.QUEUED
                assert [await client.get_message() for _ in range(5)] == [f"burst {index}" for index in range(5)]
                await trio.testing.wait_all_tasks_blocked()
                trio.lowlevel.remove_instrument(counter)
            nursery.cancel_scope.cancel()
    assert one_at_a_time == 10
    assert counter.steps == 5


async def test_member_closing_once_the_hub_closes_it() -> None:
    with trio.fail_after(TIMEOUT):
        async with Hub(queue_size=1) as hub, hub_peers(hub, 2) as (left, overflowing):
            assert not left.member.closing and not overflowing.member.closing
            await hub.disconnect(left.id)
            assert left.member.closing
            assert left.member.send("refused") is Outcome.CLOSED
            # No checkpoint between the sends: the sender cannot drain the one-message outbox.
            assert overflowing.member.send("one") is Outcome.QUEUED
            assert overflowing.member.send("two") is Outcome.DROPPED
            assert overflowing.member.closing
