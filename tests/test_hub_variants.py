"""trio_ws.hub.variants: one message per wire format, each member receiving its own variant."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

import pytest
import trio
import trio.testing

import trio_ws
from trio_ws import PreparedMessage, WebSocketConnection
from trio_ws.hub import Hub, Member, MessageVariants
from trio_ws.hub.envelopes import decode_payload, encode_payload
from trio_ws.hub.outbox import Outbox, Outcome

#: In virtual seconds: the async tests run on Trio's autojump clock (memory
#: streams only, no real peer), so a pause of the process (a full garbage
#: collection, a loaded machine) cannot trip the timeout while a real hang
#: still fails at once.
TIMEOUT = 10


async def open_pair(nursery: trio.Nursery) -> tuple[WebSocketConnection, WebSocketConnection]:
    client_stream, server_stream = trio.testing.memory_stream_pair()
    result: dict[str, WebSocketConnection] = {}

    async def server_side() -> None:
        request = await trio_ws.wrap_server_stream(nursery, server_stream, ping_interval=None, compression=None)
        result["server"] = await request.accept()

    async def client_side() -> None:
        result["client"] = await trio_ws.wrap_client_stream(nursery, client_stream, "localhost", "/", compression=None)

    async with trio.open_nursery() as handshake:
        handshake.start_soon(server_side)
        handshake.start_soon(client_side)
    return result["client"], result["server"]


@asynccontextmanager
async def members(hub: Hub, formats: list[str | None]) -> AsyncIterator[list[tuple[WebSocketConnection, Member]]]:
    """One member per wire format in ``formats``, all in room ``r``: (client, member) pairs."""
    async with trio.open_nursery() as nursery:
        try:
            async with AsyncExitStack() as stack:
                pairs = []
                for wire_format in formats:
                    client, server = await open_pair(nursery)
                    member = await stack.enter_async_context(hub.connect(server, wire_format=wire_format))
                    await member.join("r")
                    pairs.append((client, member))
                yield pairs
        finally:
            nursery.cancel_scope.cancel()


def test_variants_need_frames_and_report_their_size() -> None:
    with pytest.raises(ValueError, match="at least one variant"):
        MessageVariants({})
    with pytest.raises(ValueError, match="at least one frame"):
        MessageVariants({None: []})
    with pytest.raises(TypeError):
        MessageVariants({None: [1]})  # type: ignore[list-item]
    message = MessageVariants({None: "abc", "sio": ["4x", b"\x00\x01"]})
    assert len(message) == 3 + 2 + 2
    assert message.formats == {None, "sio"}
    assert message.variant("other") is None
    assert isinstance(message.variant(None), PreparedMessage)
    assert dict(message.items())["sio"][1].data == b"\x00\x01"
    assert "sio" in repr(message)


async def test_each_member_receives_its_variant_built_once_per_format(autojump_clock: trio.testing.MockClock) -> None:
    hub = Hub()
    message = MessageVariants({None: "envelope", "sio": ["text", b"attachment"]})
    with trio.fail_after(TIMEOUT):
        async with members(hub, [None, "sio", None, "sio", "other"]) as pairs:
            report = await hub.broadcast("r", message)
            assert report.queued == 4  # the "other" member has no variant: not a recipient
            for client, member in pairs[:4]:
                if member.wire_format is None:
                    assert await client.get_message() == "envelope"
                else:
                    assert await client.get_message() == "text"
                    assert await client.get_message() == b"attachment"
            # Frame-once: each variant's frames were built once for all its members.
            variant = message.variant("sio")
            assert isinstance(variant, tuple)
            assert [frame.frames_built for frame in variant] == [1, 1]
            # A plain message is the default format's: members of another format do not get it.
            report = await hub.broadcast("r", "plain")
            assert report.queued == 2
            assert await hub.unicast(pairs[1][1].id, "direct")  # sent to one member: its caller's choice
            assert await pairs[1][0].get_message() == "direct"
            assert pairs[1][1].send(MessageVariants({None: "x"})) is Outcome.DROPPED
            report = await hub.send_all(message)
            assert report.queued == 4


def test_a_multi_frame_variant_is_one_outbox_item_under_every_policy() -> None:
    frames = (PreparedMessage("a"), PreparedMessage(b"b"))
    outbox = Outbox(1, "drop_oldest")
    assert outbox.put(frames) is Outcome.QUEUED
    assert len(outbox) == 1
    following = PreparedMessage("next")
    assert outbox.put(following) is Outcome.QUEUED  # evicts both frames together
    assert list(outbox._items) == [following]
    assert outbox.stats.dropped == 1


def test_variants_cross_processes_through_the_backend_payload() -> None:
    message = MessageVariants({None: "envelope", "sio": ["text", b"\x00\xff"]})
    decoded = decode_payload(encode_payload(message))
    assert isinstance(decoded, MessageVariants)
    assert {fmt: [frame.data for frame in frames] for fmt, frames in decoded.items()} == {
        None: ["envelope"],
        "sio": ["text", b"\x00\xff"],
    }
    for bad in ([["sio"]], "nope", [[1, [{"text": "x"}]]], [["sio", []]], [["sio", [{"nothing": 1}]]]):
        with pytest.raises(ValueError):
            decode_payload({"variants": bad})


async def test_a_room_history_replays_each_member_its_variant(autojump_clock: trio.testing.MockClock) -> None:
    hub = Hub()
    hub.enable_history("r")
    with trio.fail_after(TIMEOUT):
        async with members(hub, [None]) as pairs:
            start = hub.history_position("r")
            assert start is not None
            await hub.broadcast("r", MessageVariants({None: "envelope", "sio": ["one", b"\x01"]}))
            assert await pairs[0][0].get_message() == "envelope"
            async with trio.open_nursery() as nursery:
                client, server = await open_pair(nursery)
                async with hub.connect(server, wire_format="sio") as late:
                    result = await late.join("r", since=start)
                    assert result.recovered and result.replayed == 1
                    assert await client.get_message() == "one"
                    assert await client.get_message() == b"\x01"
                nursery.cancel_scope.cancel()
