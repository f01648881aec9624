"""Socket.IO connection-state recovery across processes: two Apps over one real redis-server.

Raw Engine.IO frames over real trio_ws connections (the official client in
separate server processes runs in test_socketio_recovery_processes.py). A
client whose transport drops on App A comes back to App B with its pid and
offset: same sid, rooms and session, and exactly the events it missed.
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

from trio_ws import WebSocketConnection, WebSocketServer, open_websocket_url
from trio_ws.app import App, EventConnection
from trio_ws.app.socketio import SocketIOConnection
from trio_ws.app.socketio_recovery import ParkedState
from trio_ws.app.socketio_recovery_redis import StreamedRecovery, decode_state, encode_state
from trio_ws.hub import HistoryPolicy, Hub, StreamPosition

coredis = pytest.importorskip("coredis", reason="coredis is not installed (test extra)")

from node_support import FAST  # noqa: E402

from trio_ws.hub.redis import RedisBackend  # noqa: E402

TIMEOUT = 20.0


def recovering_app(
    url: str, prefix: str, process_id: str, history: HistoryPolicy | None = None, **options: Any
) -> App:
    return recovering_app_on(RedisBackend(url, prefix=prefix, process_id=process_id, **{**FAST, **options}), history)


def recovering_app_on(backend: RedisBackend, history: HistoryPolicy | None = None) -> App:
    app = App(hub=Hub(backend=backend))
    app.enable_socketio(max_disconnection_duration=30, recovery_history=history)

    @app.on("join")
    async def join(conn: EventConnection, room: str) -> None:
        await conn.join_room(room)
        conn.session["name"] = "alice"

    @app.on("whoami")
    async def whoami(conn: EventConnection, data: Any) -> list[Any]:
        assert isinstance(conn, SocketIOConnection)
        return [conn.id, conn.session.get("name"), sorted(conn.rooms()), conn.recovered]

    @app.on("shout")
    async def shout(conn: EventConnection, text: str) -> None:
        await app.emit("news", text, to="tea", exclude=conn.id)

    @app.on("poke")
    async def poke(conn: EventConnection, data: Any) -> None:
        await conn.emit("poked", data)

    return app


@asynccontextmanager
async def session(
    server: WebSocketServer, auth: Any = None
) -> AsyncIterator[tuple[WebSocketConnection, dict[str, Any]]]:
    """A raw Socket.IO client CONNECTed to ``/`` with ``auth``: the socket and the CONNECT answer."""
    async with open_websocket_url(f"ws://127.0.0.1:{server.port}/socket.io/?EIO=4&transport=websocket") as ws:
        assert (await ws.get_message()).startswith("0{")
        await ws.send_message("40" + ("" if auth is None else json.dumps(auth)))
        answer = await next_packet(ws)
        assert answer.startswith("40"), answer
        yield ws, json.loads(answer[2:])


async def event(ws: WebSocketConnection) -> list[Any]:
    """The arguments of the next EVENT packet (to ``/``)."""
    message = await next_packet(ws)
    assert message.startswith("42"), message
    decoded: list[Any] = json.loads(message[2:])
    return decoded


async def wait_parked(app: App, redis_server: Any, prefix: str, pid: str) -> None:
    recovery = app._recovery
    assert isinstance(recovery, StreamedRecovery)
    key = f"{prefix}:parked:sio:{pid}"
    while not redis_server.cli("EXISTS", key).strip().endswith("1"):  # noqa: ASYNC110 - parked once A notices
        await trio.sleep(0.02)


async def test_a_client_dropped_on_one_process_recovers_on_another(redis_server: Any) -> None:
    prefix = f"t{uuid.uuid4().hex[:12]}"
    app_a = recovering_app(redis_server.url, prefix, "A")
    app_b = recovering_app(redis_server.url, prefix, "B")
    with trio.fail_after(TIMEOUT):
        async with serving(app_a) as server_a, serving(app_b) as server_b, session(server_b) as (bob, _):
            await bob.send_message('421["join","tea"]')
            assert await next_packet(bob) == "431[]"
            async with session(server_a) as (alice, answer):
                sid, pid = answer["sid"], answer["pid"]
                await alice.send_message('421["join","tea"]')
                assert await next_packet(alice) == "431[]"
                # Events emitted on either process reach both, in one order, with offsets.
                await app_a.emit("news", 1, to="tea")
                first = await event(alice)
                assert first[:2] == ["news", 1] and (await event(bob)) == first
                await app_b.emit("news", 2, to="tea")
                second = await event(alice)
                assert second[:2] == ["news", 2] and (await event(bob)) == second
                offset = second[2]
                # The transport drops without a goodbye.
                await alice.aclose(1011)
            await wait_parked(app_a, redis_server, prefix, pid)
            # Missed while away: from both processes, to the room, to all, to the sid itself.
            await app_b.emit("news", 3, to="tea")
            await app_a.emit("news", 4)
            await app_b.emit("news", "direct", to=sid)
            await app_a.emit("news", "elsewhere", to="coffee")
            # Bob shouts with exclusion: alice (away) gets it on recovery, bob does not.
            await bob.send_message('42["shout","hey"]')
            seen_by_bob = [await event(bob) for _ in range(2)]
            assert sorted(e[1] for e in seen_by_bob) == [3, 4]
            async with session(server_b, {"pid": pid, "offset": offset}) as (alice, back):
                assert back == {"sid": sid, "pid": pid}
                missed = [await event(alice) for _ in range(4)]
                # Two processes emitted: the order is the log's (each process's own emits in order),
                # the one bob saw live, and the offsets grow.
                assert sorted(str(m[1]) for m in missed) == ["3", "4", "direct", "hey"]
                assert [m for m in missed if m[1] in (3, 4)] == seen_by_bob
                values = [m[1] for m in missed]
                assert values.index(3) < values.index("direct")  # both from B, in order
                numbers = [int(m[2].rpartition(":")[2]) for m in missed]
                assert numbers == sorted(numbers) and len(set(numbers)) == 4
                assert int(offset.rpartition(":")[2]) < numbers[0]
                await alice.send_message('421["whoami"]')
                assert await next_packet(alice) == f'431[["{sid}","alice",["tea"],true]]'
                # Live again, in the same log: nothing twice.
                await app_a.emit("news", 5, to="tea")
                assert (await event(alice))[:2] == ["news", 5]
                await alice.send_message('42["poke",7]')
                assert (await event(alice))[:2] == ["poked", 7]
                # The state was taken: a second try with the same pid is a fresh session.
                async with session(server_a, {"pid": pid, "offset": offset}) as (_, fresh):
                    assert fresh["sid"] != sid and fresh["pid"] != pid


async def test_an_offset_the_log_cannot_cover_gives_back_the_sid_but_not_recovered(redis_server: Any) -> None:
    prefix = f"t{uuid.uuid4().hex[:12]}"
    app_a = recovering_app(redis_server.url, prefix, "A", HistoryPolicy(max_messages=2))
    app_b = recovering_app(redis_server.url, prefix, "B", HistoryPolicy(max_messages=2))
    with trio.fail_after(TIMEOUT):
        async with serving(app_a) as server_a, serving(app_b) as server_b, session(server_b) as (bob, _):
            await bob.send_message('421["join","tea"]')
            assert await next_packet(bob) == "431[]"
            async with session(server_a) as (alice, answer):
                await alice.send_message('421["join","tea"]')
                assert await next_packet(alice) == "431[]"
                await app_a.emit("news", 1, to="tea")
                offset = (await event(alice))[2]
                await alice.aclose(1011)
            await wait_parked(app_a, redis_server, prefix, answer["pid"])
            assert (await event(bob))[1] == 1
            for n in range(4):  # the log keeps 2: the offset's successor is trimmed
                await app_b.emit("news", n, to="tea")
                # One at a time: a reader more than the log's bound behind would miss some (a gap).
                assert (await event(bob))[1] == n
            async with session(server_b, {"pid": answer["pid"], "offset": offset}) as (alice, back):
                assert back["sid"] == answer["sid"] and back["pid"] != answer["pid"]
                # Live from here on (in its rooms still).
                await app_a.emit("news", "live", to="tea")
                assert (await event(alice))[:2] == ["news", "live"]


async def test_an_unknown_pid_or_a_redis_restart_gives_a_fresh_session(restartable_redis: Any) -> None:
    prefix = f"t{uuid.uuid4().hex[:12]}"
    app_a = recovering_app(restartable_redis.url, prefix, "A")
    app_b = recovering_app(restartable_redis.url, prefix, "B")
    with trio.fail_after(TIMEOUT):
        async with serving(app_a) as server_a, serving(app_b) as server_b:
            async with session(server_b, {"pid": "nobody", "offset": "x:1"}) as (_, fresh):
                assert fresh["pid"] != "nobody"
            async with session(server_a) as (alice, answer):
                await alice.send_message('421["join","tea"]')
                assert await next_packet(alice) == "431[]"
                await app_a.emit("news", 1, to="tea")
                offset = (await event(alice))[2]
                await alice.aclose(1011)
            await wait_parked(app_a, restartable_redis, prefix, answer["pid"])
            # Redis restarts without persistence: the parked state and the log are gone.
            restartable_redis.stop()
            restartable_redis.start()
            async with session(server_b, {"pid": answer["pid"], "offset": offset}) as (alice, back):
                assert back["sid"] != answer["sid"] and back["pid"] != answer["pid"]


async def test_redis_down_when_parking_or_recovering_gives_a_fresh_session(restartable_redis: Any) -> None:
    prefix = f"t{uuid.uuid4().hex[:12]}"
    app = recovering_app(restartable_redis.url, prefix, "A", command_timeout=0.5)

    async def dropped(server: WebSocketServer) -> dict[str, Any]:
        async with session(server) as (alice, answer):
            await alice.send_message('421["join","tea"]')
            assert await next_packet(alice) == "431[]"
            await alice.aclose(1011)
        return answer

    async def fresh_after(server: WebSocketServer, answer: dict[str, Any]) -> None:
        async with session(server, {"pid": answer["pid"]}) as (again, back):
            assert back["sid"] != answer["sid"] and back["pid"] != answer["pid"]
            await again.send_message('421["whoami"]')
            assert json.loads((await next_packet(again))[3:])[0][2:] == [[], False]

    with trio.fail_after(TIMEOUT):
        async with serving(app) as server:
            # Down while the state is parked (each Redis call waits command_timeout at most).
            restartable_redis.pause()
            try:
                async with session(server) as (alice, answer):
                    await alice.send_message('421["join","tea"]')
                    assert await next_packet(alice) == "431[]"
                    await alice.aclose(1011)
                while app.hub.local_members:  # noqa: ASYNC110 - the old session ends after its park failed
                    await trio.sleep(0.05)
            finally:
                restartable_redis.resume()
            await fresh_after(server, answer)
            # Parked, then down while the client comes back.
            backend = app.hub.backend
            assert isinstance(backend, RedisBackend)
            while not backend.connected:  # noqa: ASYNC110 - the link comes back after the pause
                await trio.sleep(0.05)
            answer = await dropped(server)
            await wait_parked(app, restartable_redis, prefix, answer["pid"])
            restartable_redis.pause()
            try:
                await fresh_after(server, answer)
            finally:
                restartable_redis.resume()
        assert not app.hub.local_members


def test_a_parked_state_is_json_and_a_session_json_cannot_encode_is_refused() -> None:
    state = ParkedState("s1", {"/": frozenset({"tea", "\x1fns/"})}, {"n": [1, "x"]}, 0.0, {"/": StreamPosition("e", 5)})
    back = decode_state(encode_state(state))
    assert back is not None
    assert (back.sid, back.rooms, back.session) == (state.sid, state.rooms, state.session)
    assert back.positions == state.positions
    assert decode_state("{}") is None and decode_state("not json") is None
    with pytest.raises(TypeError):
        encode_state(ParkedState("s1", {}, {"x": object()}, 0.0, {}))


async def test_recovery_across_processes_on_a_redis_cluster(redis_cluster: Any) -> None:
    from trio_ws.hub.redis_cluster import RedisClusterBackend

    prefix = f"t{uuid.uuid4().hex[:12]}"

    def backend(process_id: str) -> RedisClusterBackend:
        nodes = redis_cluster.startup_nodes
        return RedisClusterBackend(startup_nodes=nodes, prefix=prefix, process_id=process_id, **FAST)

    app_a, app_b = recovering_app_on(backend("A")), recovering_app_on(backend("B"))
    with trio.fail_after(TIMEOUT):
        async with serving(app_a) as server_a, serving(app_b) as server_b:
            async with session(server_a) as (alice, answer):
                await alice.send_message('421["join","tea"]')
                assert await next_packet(alice) == "431[]"
                await app_b.emit("news", 1, to="tea")
                offset = (await event(alice))[2]
                await alice.aclose(1011)
            while app_a.hub.local_members:  # noqa: ASYNC110 - parked before the session leaves the hub
                await trio.sleep(0.02)
            await app_b.emit("news", 2, to="tea")
            await app_a.emit("news", "direct", to=answer["sid"])
            async with session(server_b, {"pid": answer["pid"], "offset": offset}) as (alice, back):
                assert back == {"sid": answer["sid"], "pid": answer["pid"]}
                assert sorted([str((await event(alice))[1]) for _ in range(2)]) == ["2", "direct"]
