"""App.publish: a worker's events reach the servers' clients, through the recovery log when there is one.

Two serving Apps and a worker (an App that serves nothing, with a
HubClient) share one real redis-server in one trio run; the Socket.IO
clients speak raw Engine.IO frames over real trio_ws connections, the
envelope clients speak envelopes (the official client in separate server
processes runs in test_socketio_recovery_processes.py).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
import trio
from support.sio_app import next_packet, serving

from trio_ws import ConnectionClosed, WebSocketConnection, WebSocketServer, open_websocket_url
from trio_ws.app import App, EventConnection
from trio_ws.app.socketio import SocketIOConnection
from trio_ws.app.socketio_recovery_redis import recovery_room
from trio_ws.hub import Hub, HubClient

coredis = pytest.importorskip("coredis", reason="coredis is not installed (test extra)")

from node_support import FAST  # noqa: E402

from trio_ws.hub.redis import RedisBackend  # noqa: E402

TIMEOUT = 20.0
WINDOW = 30.0


def server_app(url: str, prefix: str, process_id: str, *, recovery: bool) -> App:
    return server_app_on(RedisBackend(url, prefix=prefix, process_id=process_id, **FAST), recovery=recovery)


def server_app_on(backend: RedisBackend, *, recovery: bool) -> App:
    app = App(hub=Hub(backend=backend))
    app.enable_socketio(max_disconnection_duration=WINDOW if recovery else None)

    @app.on("join")
    async def join(conn: EventConnection, room: str) -> str:
        await conn.join_room(room)
        return conn.id

    @app.on("whoami")
    async def whoami(conn: EventConnection, data: Any) -> list[Any]:
        assert isinstance(conn, SocketIOConnection)
        return [conn.id, sorted(conn.rooms()), conn.recovered]

    @app.on("drop-me")
    async def drop(conn: EventConnection, data: Any) -> None:
        await conn.websocket.link.aclose(1011, "dropped")  # no goodbye, as a network failure

    return app


def worker_app(*, recovery: bool) -> App:
    """The worker's App: the servers' Socket.IO settings; it serves nothing."""
    app = App()
    app.enable_socketio(max_disconnection_duration=WINDOW if recovery else None)
    return app


async def event(ws: WebSocketConnection) -> list[Any]:
    """The arguments of the next EVENT packet (to ``/``)."""
    message = await next_packet(ws)
    assert message.startswith("42"), message
    decoded: list[Any] = json.loads(message[2:])
    return decoded


@asynccontextmanager
async def socketio_client(
    server: WebSocketServer, room: str | None = "tea", auth: Any = None
) -> AsyncIterator[tuple[WebSocketConnection, dict[str, Any]]]:
    """A raw Socket.IO client CONNECTed to ``/`` with ``auth`` (joined to ``room``): its socket and CONNECT answer."""
    async with open_websocket_url(f"ws://127.0.0.1:{server.port}/socket.io/?EIO=4&transport=websocket") as ws:
        assert (await ws.get_message()).startswith("0{")
        await ws.send_message("40" + ("" if auth is None else json.dumps(auth)))
        answer = await next_packet(ws)
        assert answer.startswith("40"), answer
        connected = json.loads(answer[2:])
        if room is not None:
            await ws.send_message(f"421{json.dumps(['join', room])}")
            assert await next_packet(ws) == f'431["{connected["sid"]}"]'
        yield ws, connected


@asynccontextmanager
async def envelope_client(server: WebSocketServer, room: str = "tea") -> AsyncIterator[WebSocketConnection]:
    """An envelope client of ``/ws``, joined to ``room``."""
    async with open_websocket_url(f"ws://127.0.0.1:{server.port}/ws") as ws:
        await ws.send_message(json.dumps({"type": "event", "event": "join", "data": room, "id": 1}))
        assert json.loads(await ws.get_message())["type"] == "ack"
        yield ws


async def envelope(ws: WebSocketConnection) -> Any:
    """The data of the next event envelope (its event and namespace checked against ``news``, ``/``)."""
    value = json.loads(await ws.get_message())
    assert (value["type"], value["namespace"]) == ("event", "/"), value
    return value["event"], value["data"]


def worker_client(url: str, prefix: str) -> HubClient:
    return HubClient(RedisBackend(url, prefix=prefix, process_id="W", **FAST))


def position(offset: str) -> int:
    epoch, _, number = offset.rpartition(":")
    assert epoch
    return int(number)


async def test_a_workers_events_reach_socketio_clients_with_offsets_and_envelope_clients(redis_server: Any) -> None:
    prefix = f"t{uuid.uuid4().hex[:12]}"
    app_a = server_app(redis_server.url, prefix, "A", recovery=True)
    app_b = server_app(redis_server.url, prefix, "B", recovery=True)
    worker = worker_app(recovery=True)
    with trio.fail_after(TIMEOUT):
        async with (
            serving(app_a) as server_a,
            serving(app_b) as server_b,
            socketio_client(server_a) as (alice, _),
            socketio_client(server_b) as (carol, carol_answer),
            envelope_client(server_b) as bob,
            worker_client(redis_server.url, prefix) as client,
        ):
            carol_sid = carol_answer["sid"]
            # To a room: both Socket.IO clients (two processes) with one offset; the envelope client its envelope.
            assert await worker.publish(client, "news", {"n": 1}, to="tea") is True
            first = await event(alice)
            assert first[:2] == ["news", {"n": 1}] and isinstance(first[2], str)
            assert await event(carol) == first
            assert await envelope(bob) == ("news", {"n": 1})
            # In the same log as the servers' emits: the offsets grow across both.
            await app_b.emit("news", 2, to="tea")
            second = await event(alice)
            assert second[:2] == ["news", 2] and position(second[2]) > position(first[2])
            assert await event(carol) == second and await envelope(bob) == ("news", 2)
            # To one sid: only carol.
            assert await worker.publish(client, "direct", "hi", to=carol_sid) is True
            direct = await event(carol)
            assert direct[:2] == ["direct", "hi"] and position(direct[2]) > position(second[2])
            # To the room but carol; then to the whole namespace.
            assert await worker.publish(client, "news", 3, to="tea", exclude=carol_sid) is True
            assert await worker.publish(client, "news", 4) is True
            assert [(await event(alice))[1] for _ in range(2)] == [3, 4]  # not "direct"
            assert (await event(carol))[1] == 4  # not 3
            assert [await envelope(bob) for _ in range(2)] == [("news", 3), ("news", 4)]
            # Bytes reach Socket.IO clients only, with the offset after the attachment's placeholder.
            assert await worker.publish(client, "blob", b"\x00\xff", to="tea") is True
            header = await next_packet(alice)
            assert header.startswith('451-["blob",{"_placeholder":true,"num":0},"'), header
            assert await next_packet(alice) == b"\x00\xff"
            assert await worker.publish(client, "blob", b"\x01", to=carol_sid) is True
            for payload in (b"\x00\xff", b"\x01"):
                header = await next_packet(carol)
                assert header.startswith('451-["blob",{"_placeholder":true,"num":0},"'), header
                assert await next_packet(carol) == payload
            await worker.publish(client, "news", 5, to="tea")
            assert await envelope(bob) == ("news", 5)


async def test_a_dropped_client_gets_back_exactly_the_worker_events_it_missed(redis_server: Any) -> None:
    prefix = f"t{uuid.uuid4().hex[:12]}"
    app_a = server_app(redis_server.url, prefix, "A", recovery=True)
    app_b = server_app(redis_server.url, prefix, "B", recovery=True)
    worker = worker_app(recovery=True)
    with trio.fail_after(TIMEOUT):
        async with (
            serving(app_a) as server_a,
            serving(app_b) as server_b,
            socketio_client(server_b) as (carol, _),
            worker_client(redis_server.url, prefix) as client,
        ):
            async with socketio_client(server_a) as (alice, answer):
                sid, pid = answer["sid"], answer["pid"]
                await worker.publish(client, "news", 1, to="tea")
                seen = await event(alice)
                assert seen[1] == 1 and await event(carol) == seen
                # The server drops her transport (no goodbye): A parks her state.
                await alice.send_message('42["drop-me"]')
                with pytest.raises(ConnectionClosed) as closed:
                    while True:
                        await next_packet(alice)
                assert closed.value.reason.code == 1011
            while not redis_server.cli("EXISTS", f"{prefix}:parked:sio:{pid}").strip().endswith("1"):  # noqa: ASYNC110
                await trio.sleep(0.02)  # Redis has no event for it
            # A worker without the servers' recovery settings delivers outside the log: no offset, no replay.
            assert await worker_app(recovery=False).publish(client, "news", "outside the log", to="tea")
            assert await next_packet(carol) == '42["news","outside the log"]'
            # Missed while away, in an order carol's process pins: from the worker and from a server.
            await worker.publish(client, "news", 2, to="tea")
            two = await event(carol)
            await app_b.emit("news", 3, to="tea")
            three = await event(carol)
            await worker.publish(client, "direct", "for alice", to=sid)
            await worker.publish(client, "news", "not for alice", to="tea", exclude=sid)
            await worker.publish(client, "news", "elsewhere", to="coffee")
            await worker.publish(client, "news", 4)
            assert (await event(carol))[1] == "not for alice"
            four = await event(carol)
            assert [two[1], three[1], four[1]] == [2, 3, 4]
            async with socketio_client(server_b, None, {"pid": pid, "offset": seen[2]}) as (alice, back):
                assert back == {"sid": sid, "pid": pid}
                missed = [await event(alice) for _ in range(4)]
                assert [m[:2] for m in missed] == [["news", 2], ["news", 3], ["direct", "for alice"], ["news", 4]]
                # The stream's positions, the same that carol got live, growing, none twice.
                assert [missed[0], missed[1], missed[3]] == [two, three, four]
                numbers = [position(m[2]) for m in missed]
                assert numbers == sorted(set(numbers)) and numbers[0] > position(seen[2])
                await alice.send_message('421["whoami"]')
                assert await next_packet(alice) == f'431[["{sid}",["tea"],true]]'
                # Live again: the next event is the next one published, nothing replayed twice.
                await worker.publish(client, "news", 5, to="tea")
                live = await event(alice)
                assert live[1] == 5 and position(live[2]) > numbers[-1]


async def test_without_recovery_a_worker_still_delivers(redis_server: Any) -> None:
    prefix = f"t{uuid.uuid4().hex[:12]}"
    app_a = server_app(redis_server.url, prefix, "A", recovery=False)
    worker = worker_app(recovery=False)
    plain_worker = App()  # without Socket.IO: envelopes only
    with trio.fail_after(TIMEOUT):
        async with (
            serving(app_a) as server_a,
            socketio_client(server_a) as (alice, _),
            socketio_client(server_a) as (carol, carol_answer),
            envelope_client(server_a) as bob,
            worker_client(redis_server.url, prefix) as client,
        ):
            assert await worker.publish(client, "news", 1, to="tea") is True
            for sio in (alice, carol):
                assert await next_packet(sio) == '42["news",1]'  # no offset
            assert await envelope(bob) == ("news", 1)
            assert await worker.publish(client, "direct", "hi", to=carol_answer["sid"]) is True
            assert await next_packet(carol) == '42["direct","hi"]'
            assert await worker.publish(client, "news", 2, to="tea", exclude=carol_answer["sid"]) is True
            assert await worker.publish(client, "news", 3) is True
            assert [await next_packet(alice) for _ in range(2)] == ['42["news",2]', '42["news",3]']
            assert await next_packet(carol) == '42["news",3]'
            assert [await envelope(bob) for _ in range(2)] == [("news", 2), ("news", 3)]
            assert await plain_worker.publish(client, "news", 4, to="tea") is True
            assert await envelope(bob) == ("news", 4)
            # A sid no process knows: nothing could be sent.
            assert await worker.publish(client, "direct", "hi", to="0" * 32) is False


async def test_a_worker_on_a_redis_cluster_goes_through_the_log_too(redis_cluster: Any) -> None:
    from trio_ws.hub.redis_cluster import RedisClusterBackend

    prefix = f"t{uuid.uuid4().hex[:12]}"

    def backend(process_id: str) -> RedisClusterBackend:
        nodes = redis_cluster.startup_nodes
        return RedisClusterBackend(startup_nodes=nodes, prefix=prefix, process_id=process_id, **FAST)

    app_a, app_b = server_app_on(backend("A"), recovery=True), server_app_on(backend("B"), recovery=True)
    worker = worker_app(recovery=True)
    with trio.fail_after(TIMEOUT):
        async with serving(app_a) as server_a, serving(app_b) as server_b, HubClient(backend("W")) as client:
            async with socketio_client(server_a) as (alice, answer):
                assert await worker.publish(client, "news", 1, to="tea")
                seen = await event(alice)
                assert seen[:2] == ["news", 1]
                await alice.send_message('42["drop-me"]')
                with pytest.raises(ConnectionClosed):
                    while True:
                        await next_packet(alice)
            while app_a.hub.local_members:  # noqa: ASYNC110 - parked before the session leaves the hub
                await trio.sleep(0.02)
            assert await worker.publish(client, "news", 2, to="tea")
            assert await worker.publish(client, "direct", "for alice", to=answer["sid"])
            auth = {"pid": answer["pid"], "offset": seen[2]}
            async with socketio_client(server_b, None, auth) as (alice, back):
                assert back == {"sid": answer["sid"], "pid": answer["pid"]}
                missed = [await event(alice) for _ in range(2)]
                assert [m[:2] for m in missed] == [["news", 2], ["direct", "for alice"]]
                assert position(seen[2]) < position(missed[0][2]) < position(missed[1][2])


@pytest.mark.parametrize("recovery", [True, False])
async def test_an_event_a_worker_cannot_hand_to_redis_is_reported_lost(restartable_redis: Any, recovery: bool) -> None:
    worker = worker_app(recovery=recovery)
    backend = RedisBackend(restartable_redis.url, prefix=f"t{uuid.uuid4().hex[:12]}", command_timeout=0.5)
    client = HubClient(backend)
    with trio.fail_after(TIMEOUT):
        async with client, client.backend_events() as events:
            restartable_redis.stop()
            async for backend_event in events:
                if backend_event.kind == "down":
                    break
            # The envelope clients' message is lost (with recovery the log entry waits for the link).
            assert await worker.publish(client, "news", 1, to="tea") is False
            assert await worker.publish(client, "news", 2) is False
            if not recovery:
                assert await worker.publish(client, "news", 3, to="0" * 32) is False
                return
            restartable_redis.start()
            key = backend.stream_key(recovery_room("/"))
            while restartable_redis.cli("XLEN", key).strip() != ":2":  # noqa: ASYNC110
                await trio.sleep(0.05)  # Redis has no event for it


class _PubSubOnly:
    """A backend that keeps no streams (a HubClient checks that when it is asked for history, before any I/O)."""

    process_id = "P"


async def test_misuses_are_refused_with_a_message(redis_server: Any) -> None:
    worker = worker_app(recovery=True)
    with pytest.raises(TypeError, match=r"App\.publish sends through a trio_ws\.hub\.HubClient"):
        await worker.publish(worker.hub, "news", 1)  # type: ignore[arg-type]
    client = worker_client(redis_server.url, f"t{uuid.uuid4().hex[:12]}")
    with pytest.raises(RuntimeError, match="HubClient 'W' is not running: publish inside its `async with` block"):
        await worker.publish(client, "news", 1)
    async with client:
        with pytest.raises(ValueError, match=r"reserved by Socket\.IO clients"):
            await worker.publish(client, "connect", 1)
        with pytest.raises(TypeError):
            await worker.publish(client, "news", object())
    # A client after its block, too.
    with pytest.raises(RuntimeError, match="is not running"):
        await worker.publish(client, "news", 1)
    # With recovery the event goes through the log: the client's backend must keep streams.
    pubsub_only = HubClient(_PubSubOnly())  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="HubClient needs a backend that keeps streams"):
        await worker.publish(pubsub_only, "news", 1)
