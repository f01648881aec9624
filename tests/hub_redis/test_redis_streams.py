"""Rooms with history on the Redis backend (Redis Streams), through a real redis-server.

Two hubs (two "processes") in one trio run, each with its own RedisBackend and
trio_ws server; the clients are real connections speaking hub_node.py's
protocol. Every room keeps history, so every room is a stream.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
import trio
from conftest import RedisServer

from trio_ws.hub import HistoryPolicy, HubClient, PositionedJSON

coredis = pytest.importorskip("coredis", reason="coredis is not installed (test extra)")

from hub_node import NodeClient  # noqa: E402
from node_support import FAST, Node, connected, next_event, serving_node  # noqa: E402

from trio_ws.hub.redis import RedisBackend  # noqa: E402
from trio_ws.hub.redis_streams import entry_id, offset_of  # noqa: E402

TIMEOUT = 20.0
POLICY = HistoryPolicy(max_messages=1000, max_bytes=None, max_age=None)


@asynccontextmanager
async def stream_node(
    url: str, prefix: str, process_id: str, policy: HistoryPolicy = POLICY, **options: Any
) -> AsyncIterator[Node]:
    backend = RedisBackend(url, prefix=prefix, process_id=process_id, **{**FAST, **options})
    async with serving_node(backend, history=policy) as node:
        yield node


@pytest.fixture
def prefix() -> str:
    return f"s{uuid.uuid4().hex[:12]}"


def received(client: NodeClient) -> list[tuple[Any, Any, list[Any]]]:
    """(sender, n, [epoch, offset]) of each room message, in arrival order."""
    return [(m["from"], m["n"], [m.get("epoch"), m.get("offset")]) for m in client.messages if "n" in m]


def numbers_from(client: NodeClient, sender: str) -> list[Any]:
    return [m["n"] for m in client.messages if m.get("from") == sender and "n" in m]


async def wait_count(client: NodeClient, count: int) -> None:
    await client.wait_for(lambda messages: sum("n" in m for m in messages) >= count)


def test_offsets_map_to_entry_ids() -> None:
    assert offset_of("1765000000123-7") == 1765000000123 * 1024 + 7
    assert entry_id(offset_of("1765000000123-7")) == "1765000000123-7"
    assert offset_of("0-0") == 0 and entry_id(0) == "0-0"
    # Offsets stay integers JavaScript holds exactly (below 2**53) for two centuries.
    assert offset_of("8000000000000-1023") < 2**53
    with pytest.raises(ValueError, match="sequence number"):
        offset_of("1765000000123-1024")


async def test_every_process_delivers_a_room_in_one_order(redis_server: RedisServer, prefix: str) -> None:
    async with stream_node(redis_server.url, prefix, "A") as a, stream_node(redis_server.url, prefix, "B") as b:
        with trio.fail_after(TIMEOUT):
            async with connected(a, "a1") as a1, connected(a, "a2") as a2, connected(b, "b1") as b1:
                for client in (a1, a2, b1):
                    reply = await client.call("join", room="r")
                    assert reply["position"] is not None and reply["recovered"] is False

                async def series(client: NodeClient, start: int) -> None:
                    for n in range(start, start + 30):
                        reply = await client.call("broadcast", room="r", n=n)
                        # Queued for the stream; no local member gets it before it is read back.
                        assert reply["published"] is True and reply["queued"] == 0

                async with trio.open_nursery() as nursery:
                    nursery.start_soon(series, a1, 0)
                    nursery.start_soon(series, b1, 100)
                for client in (a1, a2, b1):
                    await wait_count(client, 60)
                await trio.sleep(0.3)  # a duplicate would come within moments
                orders = [received(client) for client in (a1, a2, b1)]
                assert orders[0] == orders[1] == orders[2]  # one order, in every process
                assert len(orders[0]) == 60
                assert numbers_from(a1, "a1") == list(range(30)) and numbers_from(a1, "b1") == list(range(100, 130))
                offsets = [position[1] for _, _, position in orders[0]]
                assert offsets == sorted(set(offsets))
                assert len({position[0] for _, _, position in orders[0]}) == 1


async def test_resume_on_another_process(redis_server: RedisServer, prefix: str) -> None:
    async with stream_node(redis_server.url, prefix, "A") as a, stream_node(redis_server.url, prefix, "B") as b:
        with trio.fail_after(TIMEOUT):
            async with connected(a, "a1") as a1:
                await a1.call("join", room="r")
                for n in range(10):
                    await a1.call("broadcast", room="r", n=n)
                await wait_count(a1, 10)
                seen = received(a1)[4][2]  # the client saw up to n=4 there, then moved to B
                async with connected(b, "b1") as b1, trio.open_nursery() as nursery:

                    async def more() -> None:
                        for n in range(10, 40):
                            await a1.call("broadcast", room="r", n=n)

                    nursery.start_soon(more)  # broadcasts run while b1 resumes on B
                    reply = await b1.call("join", room="r", since=seen)
                    assert reply["recovered"] is True, reply
                    assert reply["replayed"] >= 5
                    await wait_count(b1, 35)
                    await trio.sleep(0.3)
                    assert numbers_from(b1, "a1") == list(range(5, 40))  # no gap, no duplicate at the seam
                    assert [m[2] for m in received(b1)] == [m[2] for m in received(a1)][5:]


async def test_resume_refusals(redis_server: RedisServer, prefix: str) -> None:
    small = HistoryPolicy(max_messages=5, max_bytes=None, max_age=None)
    async with stream_node(redis_server.url, prefix, "A", small) as a, stream_node(
        redis_server.url, prefix, "B", small
    ) as b:
        with trio.fail_after(TIMEOUT):
            async with connected(a, "a1") as a1, connected(b, "b1") as b1:
                first = (await a1.call("join", room="r"))["position"]
                for n in range(20):
                    await a1.call("broadcast", room="r", n=n)
                    # One at a time: a burst of 20 could be trimmed to 5 before A reads it.
                    await wait_count(a1, n + 1)
                newest = received(a1)[-1][2]
                cases = {
                    "trimmed": first,  # 15 messages after it were trimmed (5 kept)
                    "epoch": ["another-epoch", newest[1]],
                    "ahead": [newest[0], newest[1] + 1],
                }
                for reason, since in cases.items():
                    room_client = b1
                    reply = await room_client.call("join", room="r", since=since)
                    assert (reply["recovered"], reply["reason"]) == (False, reason), (reason, reply)
                    assert reply["position"] == newest
                    await room_client.call("leave", room="r")
                kept = received(a1)[15][2]  # the oldest message kept is n=15: from n=14's position all is there
                reply = await b1.call("join", room="r", since=received(a1)[14][2])
                assert (reply["recovered"], reply["replayed"]) == (True, 5), reply
                await wait_count(b1, 5)
                assert numbers_from(b1, "a1") == list(range(15, 20))
                assert received(b1)[0][2] == kept


async def test_resume_needs_room_in_the_outbox_and_an_answer_from_redis(
    restartable_redis: RedisServer, prefix: str
) -> None:
    url = restartable_redis.url
    backend = RedisBackend(url, prefix=prefix, process_id="B", **FAST)
    async with stream_node(url, prefix, "A") as a, serving_node(backend, history=POLICY, queue_size=8) as b:
        with trio.fail_after(TIMEOUT):
            async with connected(a, "a1") as a1, connected(b, "b1") as b1, b.hub.backend_events() as events:
                start = (await a1.call("join", room="r"))["position"]
                for n in range(20):
                    await a1.call("broadcast", room="r", n=n)
                await wait_count(a1, 20)
                # 20 missed messages do not fit an outbox of 8: nothing is replayed, the client must resync.
                reply = await b1.call("join", room="r", since=start)
                assert (reply["recovered"], reply["replayed"], reply["reason"]) == (False, 0, "queue_full")
                assert reply["position"] == received(a1)[-1][2]
                await b1.call("leave", room="r")
                restartable_redis.stop()
                await next_event(events, "down")
                # Redis does not answer: the member joins, and is told its position could not be served.
                reply = await b1.call("join", room="r", since=start)
                assert (reply["recovered"], reply["reason"], reply["position"]) == (False, "unavailable", None)


async def test_a_malformed_entry_is_skipped(redis_server: RedisServer, prefix: str) -> None:
    async with stream_node(redis_server.url, prefix, "A") as a:
        with trio.fail_after(TIMEOUT):
            async with connected(a, "a1") as a1, a.hub.backend_events() as events:
                await a1.call("join", room="r")
                await a1.call("broadcast", room="r", n=0)
                await wait_count(a1, 1)
                # Someone else writes into the stream: not JSON, then not an envelope of ours.
                async with coredis.Redis(host="127.0.0.1", port=redis_server.port, decode_responses=True) as raw:
                    await raw.xadd(a.backend.stream_key("r"), {"e": "x", "p": "0-0", "d": "not json"})
                    await raw.xadd(a.backend.stream_key("r"), {"e": "x", "p": "0-0", "d": '{"kind": "presence"}'})
                await next_event(events, "gap")  # the foreign entries break the chain of previous ids
                await a1.call("broadcast", room="r", n=1)
                await wait_count(a1, 2)
                assert numbers_from(a1, "a1") == [0, 1]
                assert a.backend.stats.malformed == 1 and a.hub.stats.remote_malformed == 1


async def test_catch_up_after_a_redis_pause(restartable_redis: RedisServer, prefix: str) -> None:
    url = restartable_redis.url
    async with stream_node(url, prefix, "A") as a, stream_node(url, prefix, "B") as b:
        with trio.fail_after(TIMEOUT):
            async with connected(a, "a1") as a1, connected(b, "b1") as b1:
                for client in (a1, b1):
                    await client.call("join", room="r")
                for n in range(5):
                    await a1.call("broadcast", room="r", n=n)
                await wait_count(b1, 5)
                restartable_redis.pause()
                try:
                    started = trio.current_time()
                    for n in range(5, 25):  # queued while Redis is stopped: the sender is not held up
                        reply = await a1.call("broadcast", room="r", n=n)
                        assert reply["published"] is True
                    assert trio.current_time() - started < 1.0
                    await trio.sleep(1.5)  # long enough for the links to count as down (heartbeat 0.25 s)
                finally:
                    restartable_redis.resume()
                resumed = trio.current_time()
                for client in (a1, b1):
                    await wait_count(client, 25)
                elapsed = trio.current_time() - resumed
                print(f"\n20 messages queued under SIGSTOP delivered {elapsed:.3f} s after SIGCONT")
                await trio.sleep(0.5)
                for client in (a1, b1):
                    assert numbers_from(client, "a1") == list(range(25)), client.id


async def test_a_process_that_loses_redis_catches_up(redis_server: RedisServer, prefix: str) -> None:
    relay = TcpRelay("127.0.0.1", redis_server.port)
    async with trio.open_nursery() as nursery:
        await nursery.start(relay.serve)
        relayed = f"redis://127.0.0.1:{relay.port}/0"
        async with stream_node(redis_server.url, prefix, "A") as a, stream_node(relayed, prefix, "B") as b:
            with trio.fail_after(TIMEOUT):
                async with connected(a, "a1") as a1, connected(b, "b1") as b1, b.hub.backend_events() as events:
                    for client in (a1, b1):
                        await client.call("join", room="r")
                    for n in range(5):
                        await a1.call("broadcast", room="r", n=n)
                    await wait_count(b1, 5)
                    relay.cut()  # B alone loses Redis; A goes on broadcasting
                    await next_event(events, "down")
                    for n in range(5, 30):
                        await a1.call("broadcast", room="r", n=n)
                    await wait_count(a1, 30)
                    assert numbers_from(b1, "a1") == list(range(5))
                    relay.restore()
                    restored = trio.current_time()
                    await next_event(events, "up")
                    await wait_count(b1, 30)
                    elapsed = trio.current_time() - restored
                    print(f"\nB caught up 25 messages {elapsed:.3f} s after its link was restored")
                    await trio.sleep(0.3)
                    assert numbers_from(b1, "a1") == list(range(30))  # caught up: nothing lost, nothing twice
                    assert [m[2] for m in received(b1)] == [m[2] for m in received(a1)]
        nursery.cancel_scope.cancel()


async def test_a_process_away_longer_than_the_history_reports_the_gap(redis_server: RedisServer, prefix: str) -> None:
    small = HistoryPolicy(max_messages=5, max_bytes=None, max_age=None)
    relay = TcpRelay("127.0.0.1", redis_server.port)
    async with trio.open_nursery() as nursery:
        await nursery.start(relay.serve)
        relayed = f"redis://127.0.0.1:{relay.port}/0"
        a_node = stream_node(redis_server.url, prefix, "A", small)
        async with a_node as a, stream_node(relayed, prefix, "B", small) as b:
            with trio.fail_after(TIMEOUT):
                async with connected(a, "a1") as a1, connected(b, "b1") as b1, b.hub.backend_events() as events:
                    for client in (a1, b1):
                        await client.call("join", room="r")
                    relay.cut()
                    await next_event(events, "down")
                    for n in range(20):
                        await a1.call("broadcast", room="r", n=n)
                        await wait_count(a1, n + 1)
                    relay.restore()
                    gap = await next_event(events, "gap")
                    assert gap.room == "r" and "trimmed" in gap.detail
                    await wait_count(b1, 5)
                    assert numbers_from(b1, "a1") == list(range(15, 20))  # what the history still held
        nursery.cancel_scope.cancel()


async def test_a_function_builder_cannot_cross_processes(redis_server: RedisServer, prefix: str) -> None:
    async with stream_node(redis_server.url, prefix, "A") as a:
        with pytest.raises(TypeError, match="cannot travel to other processes"):
            await a.hub.broadcast("r", lambda position: "text")
        with pytest.raises(TypeError):  # not JSON: refused in the sender
            await a.hub.broadcast("r", PositionedJSON({"x": object()}))
        a.hub.disable_history("plain")  # a room without history still takes a function, on pub/sub
        report = await a.hub.broadcast("plain", lambda position: f"at {position}")
        assert report.published is True and report.position is None


async def test_a_hub_client_appends_to_the_stream(redis_server: RedisServer, prefix: str) -> None:
    async with stream_node(redis_server.url, prefix, "A") as a:
        with trio.fail_after(TIMEOUT):
            async with connected(a, "a1") as a1:
                start = (await a1.call("join", room="r"))["position"]
                backend = RedisBackend(redis_server.url, prefix=prefix, process_id="worker", **FAST)
                async with HubClient(backend, history=POLICY) as worker:
                    body = {"from": "worker", "room": "r", "n": 1}
                    assert await worker.broadcast("r", PositionedJSON(body))
                    assert await worker.broadcast_json("r", {"from": "worker", "n": 2})
                    worker.disable_history("plain")  # on pub/sub: a PositionedJSON goes without position
                    await a1.call("join", room="plain")
                    assert await worker.broadcast("plain", PositionedJSON({"from": "worker", "n": 3}))
                await wait_count(a1, 3)
                streamed = [m for m in a1.messages if m.get("n") in (1, 2)]
                assert [m["n"] for m in streamed] == [1, 2]
                assert streamed[0]["epoch"] == start[0] and streamed[0]["offset"] > start[1]
                assert "epoch" not in next(m for m in a1.messages if m.get("n") == 3)
                async with connected(a, "a2") as a2:  # both are in the stream: a resume replays them
                    reply = await a2.call("join", room="r", since=start)
                    assert (reply["recovered"], reply["replayed"]) == (True, 2), reply


async def test_an_empty_redis_means_a_new_epoch(restartable_redis: RedisServer, prefix: str) -> None:
    url = restartable_redis.url
    async with stream_node(url, prefix, "A") as a, stream_node(url, prefix, "B") as b:
        with trio.fail_after(TIMEOUT):
            async with connected(a, "a1") as a1, connected(b, "b1") as b1, b.hub.backend_events() as events:
                for client in (a1, b1):
                    await client.call("join", room="r")
                for n in range(5):
                    await a1.call("broadcast", room="r", n=n)
                await wait_count(b1, 5)
                old = received(b1)[-1][2]
                restartable_redis.stop()  # kill -9, no persistence: the streams and epochs are gone
                await next_event(events, "down")
                restartable_redis.start()
                await next_event(events, "up")
                gap = await next_event(events, "gap")
                assert gap.room == "r" and "lost" in gap.detail
                for n in range(5, 10):
                    await a1.call("broadcast", room="r", n=n)
                for client in (a1, b1):
                    await wait_count(client, 10)
                assert numbers_from(b1, "a1") == list(range(10))
                new = received(b1)[-1][2]
                assert new[0] != old[0]  # a new epoch
                async with connected(a, "a2") as a2:
                    reply = await a2.call("join", room="r", since=old)
                    assert (reply["recovered"], reply["reason"]) == (False, "epoch")
                    assert reply["position"] == new


async def test_a_redis_restarted_with_its_data_keeps_the_epoch(persistent_redis: RedisServer, prefix: str) -> None:
    url = persistent_redis.url
    async with stream_node(url, prefix, "A") as a, stream_node(url, prefix, "B") as b:
        with trio.fail_after(TIMEOUT):
            async with connected(a, "a1") as a1, connected(b, "b1") as b1, b.hub.backend_events() as events:
                for client in (a1, b1):
                    await client.call("join", room="r")
                for n in range(5):
                    await a1.call("broadcast", room="r", n=n)
                await wait_count(b1, 5)
                seen = received(b1)[1][2]
                persistent_redis.stop()  # kill -9; the append-only file holds every entry
                await next_event(events, "down")
                for n in range(5, 10):  # queued while Redis is down
                    assert (await a1.call("broadcast", room="r", n=n))["published"] is True
                persistent_redis.start()
                await next_event(events, "up")
                for client in (a1, b1):
                    await wait_count(client, 10)
                await trio.sleep(0.3)
                assert numbers_from(b1, "a1") == list(range(10))  # nothing lost, nothing twice
                assert len({m[2][0] for m in received(b1)}) == 1  # the same epoch throughout
                assert b.backend.stats.gaps == 0
                async with connected(a, "a2") as a2:
                    reply = await a2.call("join", room="r", since=seen)
                    assert (reply["recovered"], reply["replayed"]) == (True, 8), reply
                    await wait_count(a2, 8)
                    assert numbers_from(a2, "a1") == list(range(2, 10))


class TcpRelay:
    """A TCP relay to Redis on a loopback port that can be cut (connections dropped, new ones refused) and restored."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.port = 0
        self._open = True
        self._scopes: set[trio.CancelScope] = set()

    async def serve(self, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
        self.port = listeners[0].socket.getsockname()[1]
        task_status.started()
        await trio.serve_listeners(self._handle, listeners)

    async def _handle(self, client: trio.SocketStream) -> None:
        if not self._open:
            await client.aclose()
            return
        with trio.CancelScope() as scope:
            self._scopes.add(scope)
            try:
                upstream = await trio.open_tcp_stream(*self.target)
                async with client, upstream, trio.open_nursery() as nursery:
                    nursery.start_soon(self._pump, client, upstream, nursery.cancel_scope)
                    nursery.start_soon(self._pump, upstream, client, nursery.cancel_scope)
            finally:
                self._scopes.discard(scope)

    @staticmethod
    async def _pump(source: trio.SocketStream, sink: trio.SocketStream, scope: trio.CancelScope) -> None:
        try:
            while data := await source.receive_some(65536):
                await sink.send_all(data)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass
        scope.cancel()

    def cut(self) -> None:
        self._open = False
        for scope in list(self._scopes):
            scope.cancel()

    def restore(self) -> None:
        self._open = True


async def test_entries_within_a_room_reach_and_replay_to_its_members_only(
    redis_server: RedisServer, prefix: str
) -> None:
    from test_hub import hub_peers

    from trio_ws.hub import Hub, JoinResult

    def backend(process_id: str) -> RedisBackend:
        return RedisBackend(redis_server.url, prefix=prefix, process_id=process_id, **FAST)

    with trio.fail_after(TIMEOUT):
        async with Hub(backend=backend("A")) as hub_a, Hub(backend=backend("B")) as hub_b:
            for hub in (hub_a, hub_b):
                hub.enable_history("s", POLICY)
            async with hub_peers(hub_a, 3) as [x, y, w], hub_peers(hub_b, 1) as [z]:
                for peer in (x, z):
                    await peer.member.join("t")
                start = (await x.member.join("s")).position
                assert start is not None
                for peer in (y, z):
                    await peer.member.join("s")
                await hub_b.broadcast("s", "to t", within="t")
                await hub_a.broadcast("s", "to y", within=y.id)
                await hub_b.broadcast("s", "to t but w", within="t", exclude=w.id)  # after "to t": same process
                for peer in (x, z):
                    assert [await peer.client.get_message() for _ in range(2)] == ["to t", "to t but w"]
                assert await y.client.get_message() == "to y"
                # w joins later, from the start: only what was for t and did not exclude it, after its answer.
                await w.member.join("t")
                seen: list[JoinResult] = []

                def answer(result: JoinResult) -> None:
                    seen.append(result)
                    w.member.send("answer")

                result = await hub_a.join(w.id, "s", since=start, before_replay=answer)
                assert seen == [result] and result.recovered and result.replayed == 1
                assert [await w.client.get_message() for _ in range(2)] == ["answer", "to t"]
                await hub_b.broadcast("s", "live", within=w.id)
                assert await w.client.get_message() == "live"
