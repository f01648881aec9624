"""A Socket.IO chat for the browser tests: its server on one port, its page on two others.

Usage: python sio_chat_server.py BUNDLE MODE, where BUNDLE is the official
client's ``dist/socket.io.min.js`` and MODE is ``server`` (a standalone
SocketIOServer) or ``app`` (an :class:`~trio_ws.app.App` with
``enable_socketio()``, which also serves its own clients at ``/ws``). Prints
``ready PAGE_URL OTHER_PAGE_URL SERVER_URL`` once listening, then serves
until killed. The page at PAGE_URL comes from the origin the server allows
(``cors_allowed_origins``); OTHER_PAGE_URL serves the same page from an
origin that is not, so its client is refused.

The page runs the official client (``?name=...&sio=SERVER_URL``, optionally
``&transports=polling``), or in ``app`` mode the App's own ``trio_ws.js``
(``?client=trio_ws&ws=WS_URL&name=...``), which the page server serves as
the App does.

The chat: a Socket.IO client connects with ``auth: {name}`` (refused without
one); a ``trio_ws.js`` client, whose envelope has no ``auth``, says its name
with a ``join`` event. ``chat`` (text) reaches the other clients as
``message`` and is acknowledged with the number of clients it reached (the
standalone server's chat also echoes it to the sender);
``upload`` (bytes, Socket.IO only) is acknowledged with the bytes reversed;
arrivals and departures are announced as ``presence``.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import trio

from trio_ws import WebSocketRequest, serve_websocket
from trio_ws.app import App, EventConnection, EventError
from trio_ws.app.static import client_script
from trio_ws.socketio import ConnectRefused, SocketIOServer
from trio_ws.socketio.server import Socket

PAGE = """<!doctype html>
<html>
<head><meta charset="utf-8"><title>Socket.IO chat</title></head>
<body>
<form id="form"><input id="text" autocomplete="off"><button id="send">Send</button></form>
<ul id="log"></ul>
<script src="/socket.io.min.js"></script>
<script type="module">
  const params = new URLSearchParams(location.search);
  const name = params.get("name");
  const log = (text) => {
    const item = document.createElement("li");
    item.textContent = text;
    document.getElementById("log").append(item);
  };
  let send;
  if (params.get("client") === "trio_ws") {
    // The App's own browser client, over the event envelope.
    const { connect } = await import("/trio_ws.js");
    const socket = connect(params.get("ws"), { reconnect: false });
    window.chat = { socket, transport: () => "envelope" };
    socket.on("connect", async () => {
      await socket.emit("join", name, { ack: true });
      log("connected");
    });
    socket.on("message", (m) => log(m.from + ": " + m.text));
    socket.on("presence", (p) => log(p.name + " " + p.what));
    send = async (text) => log("delivered to " + (await socket.emit("chat", text, { ack: true })));
  } else {
    const options = { auth: name ? { name } : {}, reconnection: false };
    if (params.get("transports")) options.transports = params.get("transports").split(",");
    const socket = io(params.get("sio"), options);
    window.chat = { socket, transport: () => socket.io.engine && socket.io.engine.transport.name };
    socket.on("connect", () => log("connected"));
    socket.on("connect_error", (err) => log("connect_error: " + err.message));
    socket.on("message", (m) => log(m.from + ": " + m.text));
    socket.on("presence", (p) => log(p.name + " " + p.what));
    send = (text) => socket.emit("chat", text, (count) => log("delivered to " + count));
    window.upload = (values) =>
      socket.emit("upload", new Uint8Array(values).buffer, (answer) =>
        log("upload answer " + Array.from(new Uint8Array(answer)).join(",") + " (" + answer.constructor.name + ")"),
      );
  }
  document.getElementById("form").addEventListener("submit", (event) => {
    event.preventDefault();
    const input = document.getElementById("text");
    send(input.value);
    input.value = "";
  });
</script>
</body>
</html>
"""


def chat_server(allowed_origin: str) -> SocketIOServer:
    sio = SocketIOServer(cors_allowed_origins=[allowed_origin])
    clients: dict[str, tuple[Socket, str]] = {}

    async def announce(event: str, data: Any) -> None:
        for socket, _ in list(clients.values()):
            if socket.connected:
                await socket.emit(event, data)

    @sio.on_connect()
    async def connect(socket: Socket, auth: Any) -> None:
        name = auth.get("name") if isinstance(auth, dict) else None
        if not name:
            raise ConnectRefused("a name is required")
        await announce("presence", {"name": name, "what": "joined"})
        clients[socket.sid] = (socket, name)

    @sio.on("chat")
    async def chat(socket: Socket, text: str) -> int:
        await announce("message", {"from": clients[socket.sid][1], "text": text})
        return len(clients)

    @sio.on("upload")
    async def upload(socket: Socket, data: bytes) -> bytes:
        return bytes(reversed(data))

    @sio.on_disconnect()
    async def disconnect(socket: Socket, reason: str) -> None:
        _, name = clients.pop(socket.sid)
        await announce("presence", {"name": name, "what": "left"})

    return sio


def chat_app(allowed_origin: str) -> App:
    """The same chat on an App: one room, "chat", holds both kinds of client."""
    app = App()
    app.enable_socketio(cors_allowed_origins=[allowed_origin])

    async def enter(conn: EventConnection, name: str) -> None:
        conn.session["name"] = name
        await app.emit("presence", {"name": name, "what": "joined"}, to="chat")
        await conn.join_room("chat")

    @app.on("connect")
    async def connect(conn: EventConnection, auth: Any) -> None:
        if conn.wire_format == "socketio":
            name = auth.get("name") if isinstance(auth, dict) else None
            if not name:
                raise EventError("Refused", "a name is required")
            await enter(conn, name)

    @app.on("join")
    async def join(conn: EventConnection, name: str) -> None:
        await enter(conn, name)

    @app.on("chat")
    async def chat(conn: EventConnection, text: str) -> int:
        report = await app.emit("message", {"from": conn.session["name"], "text": text}, to="chat", exclude=conn.id)
        return report.queued

    @app.on("upload")
    async def upload(conn: EventConnection, data: bytes) -> bytes:
        return bytes(reversed(data))

    @app.on("disconnect")
    async def disconnect(conn: EventConnection) -> None:
        if "name" in conn.session:
            await app.emit("presence", {"name": conn.session["name"], "what": "left"}, to="chat", exclude=conn.id)

    return app


async def main(bundle: bytes, mode: str) -> None:
    envelope_client, _ = client_script()

    async def serve_page(request: WebSocketRequest) -> None:
        path = request.path.split("?")[0]
        if path == "/socket.io.min.js":
            await request.respond(200, headers=[("Content-Type", "text/javascript")], body=bundle)
        elif path == "/trio_ws.js":
            await request.respond(200, headers=[("Content-Type", "text/javascript")], body=envelope_client)
        elif path == "/":
            await request.respond(200, headers=[("Content-Type", "text/html; charset=utf-8")], body=PAGE.encode())
        else:
            await request.respond(404)

    async def no_websocket(request: WebSocketRequest) -> None:
        await request.reject(404)

    async with trio.open_nursery() as nursery:
        pages = [
            await nursery.start(
                lambda task_status: serve_websocket(
                    no_websocket, "127.0.0.1", 0, None, process_request=serve_page, task_status=task_status
                )
            )
            for _ in range(2)
        ]
        page_urls = [f"http://127.0.0.1:{page.port}" for page in pages]
        serve: Callable[..., Any]
        if mode == "app":
            serve = chat_app(page_urls[0]).serve
        else:
            sio = chat_server(page_urls[0])
            serve = lambda host, port, task_status: serve_websocket(  # noqa: E731
                sio, host, port, None, process_request=sio.process_request, task_status=task_status
            )
        server = await nursery.start(lambda task_status: serve("127.0.0.1", 0, task_status=task_status))
        print("ready", page_urls[0] + "/", page_urls[1] + "/", f"http://127.0.0.1:{server.port}", flush=True)


if __name__ == "__main__":
    trio.run(main, Path(sys.argv[1]).read_bytes(), sys.argv[2])
