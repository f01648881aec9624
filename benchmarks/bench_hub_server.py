"""Server process of the hub fan-out benchmark.

Usage (normally started by ``bench_hub.py``, never by hand)::

    python benchmarks/bench_hub_server.py CONTENDER [--redis-url redis://127.0.0.1:PORT]

Serves on 127.0.0.1 with an OS-chosen port, prints that port alone on one
line of stdout, then serves until it is killed (or its stdin closes). See
``bench_hub_common.py`` for the protocol. Compression and keepalive pings are
off in every contender.
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import json
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

import trio
from bench_hub_common import (
    HOST,
    JOIN,
    JOINED,
    ROOM,
    exit_when_parent_goes,
    now,
    parse_go,
    raise_fd_limit,
    round_messages,
)

ReadyCallback = Callable[[int], None]
#: Fans one round's messages out; returns when the contender's own calls return.
FanOut = Callable[[list[bytes]], Awaitable[None]]


def _report(loop_seconds: float) -> bytes:
    return json.dumps({"loop": loop_seconds}).encode()


# --------------------------------------------------------------------------- #
# trio_ws: the Hub (optionally with a Redis backend), or a plain loop
# --------------------------------------------------------------------------- #


def make_redis_backend(url: str) -> Any:
    """A ``trio_ws.hub.redis.RedisBackend`` for ``url``, whatever its constructor takes.

    Raises:
        ImportError: when ``trio_ws.hub.redis`` does not exist (yet).
    """
    from trio_ws.hub.redis import RedisBackend

    parameters = inspect.signature(RedisBackend).parameters
    if "url" in parameters:
        return RedisBackend(url=url)
    if "host" in parameters and "port" in parameters:
        host, port = url.removeprefix("redis://").rsplit(":", 1)
        return RedisBackend(host=host, port=int(port))
    return RedisBackend(url)


async def serve_trio_ws_hub(on_ready: ReadyCallback, redis_url: str | None, streams: bool = False) -> None:
    """trio_ws with a Hub: members join one room, the trigger calls ``hub.broadcast``.

    With ``streams`` the room keeps history, so with Redis it is a Redis Stream
    (bounded generously: every process must read an entry before it is trimmed).
    """
    import trio_ws
    from trio_ws.hub import Hub

    backend = None if redis_url is None else make_redis_backend(redis_url)
    options: dict[str, Any] = {}
    if streams:
        from trio_ws.hub import HistoryPolicy

        options["history"] = HistoryPolicy(max_messages=100_000, max_bytes=None, max_age=120)
    async with Hub(backend=backend, **options) as hub:

        async def fan_out(messages: list[bytes]) -> None:
            for message in messages:
                await hub.broadcast(ROOM, message)

        async def handler(request: Any) -> None:
            ws = await request.accept()
            first = await ws.get_message()
            if first == JOIN:
                async with hub.connect(ws) as member:
                    await member.join(ROOM)
                    member.send(JOINED)
                    await ws.wait_closed()
            else:
                await _trigger_loop(first, ws.get_message, ws.send_message, fan_out, trio_ws.ConnectionClosed)

        async with trio.open_nursery() as nursery:
            serve = partial(trio_ws.serve_websocket, handler, HOST, 0, None, compression=None, ping_interval=None)
            server = await nursery.start(serve)
            on_ready(server.port)


async def serve_trio_websocket_api(on_ready: ReadyCallback, module_name: str) -> None:
    """trio-websocket (or trio_ws without its hub): ``await ws.send_message`` per connection."""
    import importlib

    module = importlib.import_module(module_name)
    closed = module.ConnectionClosed
    options: dict[str, Any] = {}
    if module_name == "trio_ws":
        options = {"compression": None, "ping_interval": None}
    connections: set[Any] = set()

    async def fan_out(messages: list[bytes]) -> None:
        for message in messages:
            for ws in list(connections):
                try:
                    await ws.send_message(message)
                except closed:
                    connections.discard(ws)

    async def handler(request: Any) -> None:
        ws = await request.accept()
        first = await ws.get_message()
        if first == JOIN:
            connections.add(ws)
            try:
                await ws.send_message(JOINED)
                while True:  # members never send again: this waits for the close
                    await ws.get_message()
            except closed:
                pass
            finally:
                connections.discard(ws)
        else:
            await _trigger_loop(first, ws.get_message, ws.send_message, fan_out, closed)

    async with trio.open_nursery() as nursery:
        serve = partial(module.serve_websocket, handler, HOST, 0, None, **options)
        server = await nursery.start(serve)
        on_ready(server.port)


async def _trigger_loop(
    first: bytes,
    receive: Callable[[], Awaitable[Any]],
    send: Callable[[bytes], Awaitable[None]],
    fan_out: FanOut,
    closed: type[BaseException],
) -> None:
    """Serve the trigger connection: one round of fan-out per request."""
    request = first
    try:
        while True:
            messages = round_messages(*parse_go(request))
            start = now()
            await fan_out(messages)
            await send(_report(now() - start))
            request = await receive()
    except closed:
        pass


# --------------------------------------------------------------------------- #
# websockets: asyncio broadcast() and Trio broadcast()
# --------------------------------------------------------------------------- #


async def serve_websockets_asyncio(on_ready: ReadyCallback) -> None:
    """websockets' asyncio server; the trigger calls ``broadcast(connections, message)``."""
    from websockets.asyncio.server import broadcast, serve
    from websockets.exceptions import ConnectionClosed

    connections: set[Any] = set()

    async def handler(ws: Any) -> None:
        first = await ws.recv()
        if first == JOIN:
            connections.add(ws)
            try:
                await ws.send(JOINED)
                await ws.wait_closed()
            finally:
                connections.discard(ws)
            return
        request = first
        try:
            while True:
                messages = round_messages(*parse_go(request))
                start = now()
                for message in messages:
                    broadcast(connections, message)
                await ws.send(_report(now() - start))
                request = await ws.recv()
        except ConnectionClosed:
            pass

    # backlog: asyncio's default of 100 is small for 1,000 clients connecting at once.
    async with serve(handler, HOST, 0, compression=None, ping_interval=None, backlog=1024) as server:
        on_ready(server.sockets[0].getsockname()[1])
        await server.serve_forever()


async def serve_websockets_trio(on_ready: ReadyCallback) -> None:
    """websockets' Trio server; the trigger awaits its ``broadcast(connections, message)``."""
    from websockets.exceptions import ConnectionClosed
    from websockets.trio.server import broadcast, serve

    connections: set[Any] = set()

    async def fan_out(messages: list[bytes]) -> None:
        for message in messages:
            await broadcast(connections, message)

    async def handler(ws: Any) -> None:
        first = await ws.recv()
        if first == JOIN:
            connections.add(ws)
            try:
                await ws.send(JOINED)
                await ws.wait_closed()
            finally:
                connections.discard(ws)
        else:
            await _trigger_loop(first, ws.recv, ws.send, fan_out, ConnectionClosed)

    start = partial(serve, handler, 0, host=HOST, compression=None, ping_interval=None)
    async with trio.open_nursery() as nursery:
        server = await nursery.start(start)
        on_ready(server.listeners[0].socket.getsockname()[1])


# --------------------------------------------------------------------------- #
# trio_ws: the App serving Socket.IO clients
# --------------------------------------------------------------------------- #


async def serve_trio_ws_app_socketio(on_ready: ReadyCallback) -> None:
    """A trio_ws App with ``enable_socketio()``: the handlers of the python-socketio server below.

    Members join the room in the connect handler; ``go`` emits ``m`` to the
    room once per message with ``app.emit``, then ``report`` to the trigger;
    ``echo`` answers with its data as the acknowledgement. Same protocol,
    same clients (see ``bench_hub_socketio.py``).
    """
    from bench_hub_socketio import socketio_round_messages

    from trio_ws.app import App

    app = App()
    app.enable_socketio()

    @app.on("connect")
    async def connect(conn: Any, auth: Any) -> None:
        if not (isinstance(auth, dict) and auth.get("role") == "trigger"):
            await conn.join_room(ROOM)

    @app.on("go")
    async def go(conn: Any, request: str) -> None:
        messages = socketio_round_messages(*parse_go(request))
        start = now()
        for message in messages:
            await app.emit("m", message, to=ROOM)
        await app.emit("report", {"loop": now() - start}, to=conn.id)

    @app.on("echo")
    async def echo(conn: Any, data: Any) -> Any:
        return data  # the acknowledgement (bench_socketio.py)

    async with trio.open_nursery() as nursery:
        server = await nursery.start(partial(app.serve, HOST, 0, compression=None, ping_interval=None))
        on_ready(server.port)


# --------------------------------------------------------------------------- #
# python-socketio: AsyncServer (optionally with AsyncRedisManager) under uvicorn,
# optionally with uvloop and httptools
# --------------------------------------------------------------------------- #


async def serve_python_socketio(on_ready: ReadyCallback, redis_url: str | None, production: bool = False) -> None:
    """python-socketio's ASGI server under uvicorn; members join the room in their connect handler.

    With ``redis_url`` its client manager is ``AsyncRedisManager``, so an emit to
    the room goes through Redis pub/sub to every process (this one included).
    With ``production`` uvicorn parses HTTP with httptools, and the caller runs
    this under uvloop's event loop: what ``uvicorn[standard]`` installs and
    uvicorn then picks by itself, so how many deploy it. Both are checked here,
    so that a fallback to asyncio's loop or h11 cannot pass unnoticed. The
    WebSocket implementation is uvicorn's default in both cases. The protocol
    is Socket.IO's (see ``bench_hub_socketio.py``).

    Raises:
        RuntimeError: with ``production``, when the loop is not uvloop's or
            the HTTP protocol not httptools'.
    """
    import socket

    import socketio
    import uvicorn
    from bench_hub_socketio import socketio_round_messages

    options: dict[str, Any] = {}
    if redis_url is not None:
        options["client_manager"] = socketio.AsyncRedisManager(redis_url)
    sio = socketio.AsyncServer(async_mode="asgi", **options)

    @sio.event
    async def connect(sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        if not (isinstance(auth, dict) and auth.get("role") == "trigger"):
            await sio.enter_room(sid, ROOM)

    @sio.on("go")
    async def go(sid: str, request: str) -> None:
        messages = socketio_round_messages(*parse_go(request))
        start = now()
        for message in messages:
            await sio.emit("m", message, room=ROOM)
        await sio.emit("report", {"loop": now() - start}, to=sid)

    @sio.on("echo")
    async def echo(sid: str, data: Any) -> Any:
        return data  # the acknowledgement (bench_socketio.py)

    if production:
        import uvloop

        if not isinstance(asyncio.get_running_loop(), uvloop.Loop):
            raise RuntimeError(f"expected uvloop's event loop, running {asyncio.get_running_loop()!r}")
        # Config's loop only matters to uvicorn.run()/Server.run(); the caller set the loop up.
        stack = {"loop": "uvloop", "http": "httptools"}
    else:
        stack = {}
    config = uvicorn.Config(
        socketio.ASGIApp(sio),
        **stack,
        log_level="warning",
        lifespan="off",
        ws_ping_interval=None,
        ws_per_message_deflate=False,
        backlog=2048,
        # Killed by SIGTERM after each measurement: do not wait for hundreds of connections to close.
        timeout_graceful_shutdown=1,
    )
    server = uvicorn.Server(config)
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((HOST, 0))
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        if serving.done():
            serving.result()  # raises why uvicorn did not start
            raise RuntimeError("uvicorn stopped before it started serving")
        await asyncio.sleep(0.01)
    if production and config.http_protocol_class.__name__ != "HttpToolsProtocol":
        raise RuntimeError(f"expected uvicorn's httptools protocol, got {config.http_protocol_class!r}")
    on_ready(sock.getsockname()[1])
    await serving


# --------------------------------------------------------------------------- #
# Entry point
# --------------------------------------------------------------------------- #

SERVERS = (
    "trio_ws-hub",
    "trio_ws-hub-redis",
    "trio_ws-hub-streams",
    "trio_ws-loop",
    "trio-websocket-loop",
    "websockets-broadcast",
    "websockets.trio-broadcast",
    "python-socketio",
    "python-socketio-redis",
    "python-socketio-uvloop",
    "trio_ws-app-socketio",
)


def serve_forever(contender: str, on_ready: ReadyCallback, redis_url: str | None) -> None:
    """Run the contender's server until the process ends."""
    if contender in ("trio_ws-hub", "trio_ws-hub-redis"):
        if (contender == "trio_ws-hub-redis") != (redis_url is not None):
            raise SystemExit("--redis-url is required with trio_ws-hub-redis, and only with it")
        trio.run(serve_trio_ws_hub, on_ready, redis_url)
    elif contender == "trio_ws-hub-streams":
        if redis_url is None:
            raise SystemExit("--redis-url is required with trio_ws-hub-streams")
        trio.run(serve_trio_ws_hub, on_ready, redis_url, True)
    elif contender in ("python-socketio", "python-socketio-redis"):
        if (contender == "python-socketio-redis") != (redis_url is not None):
            raise SystemExit("--redis-url is required with python-socketio-redis, and only with it")
        asyncio.run(serve_python_socketio(on_ready, redis_url))
    elif contender == "python-socketio-uvloop":
        import uvloop

        uvloop.run(serve_python_socketio(on_ready, None, production=True))
    elif contender == "trio_ws-app-socketio":
        trio.run(serve_trio_ws_app_socketio, on_ready)
    elif contender == "trio_ws-loop":
        trio.run(serve_trio_websocket_api, on_ready, "trio_ws")
    elif contender == "trio-websocket-loop":
        trio.run(serve_trio_websocket_api, on_ready, "trio_websocket")
    elif contender == "websockets-broadcast":
        asyncio.run(serve_websockets_asyncio(on_ready))
    elif contender == "websockets.trio-broadcast":
        trio.run(serve_websockets_trio, on_ready)
    else:
        raise SystemExit(f"unknown contender {contender!r}")


def main(argv: list[str] | None = None) -> None:
    """Parse arguments and serve forever."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("contender", choices=SERVERS)
    parser.add_argument("--redis-url", default=None)
    args = parser.parse_args(argv)
    raise_fd_limit()
    exit_when_parent_goes()

    def on_ready(port: int) -> None:
        print(port, flush=True)

    serve_forever(args.contender, on_ready, args.redis_url)


if __name__ == "__main__":
    main()
