"""A Socket.IO chat for the browser test: SocketIOServer on one port, its page on two others.

Usage: python sio_chat_server.py BUNDLE (the official client's
``dist/socket.io.min.js``). Prints ``ready PAGE_URL OTHER_PAGE_URL SIO_URL``
once listening, then serves until killed. The page at PAGE_URL comes from an
origin listed in ``cors_allowed_origins``; OTHER_PAGE_URL serves the same
page from an origin that is not, so its client is refused.

The chat: a client connects with ``auth: {name}`` (refused without one);
``chat`` (text) reaches every connected client as ``message`` and is
acknowledged with the number of clients it reached; ``upload`` (bytes) is
acknowledged with the bytes reversed; arrivals and departures are announced
as ``presence``.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import trio

from trio_ws import WebSocketRequest, serve_websocket
from trio_ws.socketio import ConnectRefused, SocketIOServer
from trio_ws.socketio.server import Socket

PAGE = """<!doctype html>
<html>
<head><meta charset="utf-8"><title>Socket.IO chat</title></head>
<body>
<form id="form"><input id="text" autocomplete="off"><button id="send">Send</button></form>
<ul id="log"></ul>
<script src="/socket.io.min.js"></script>
<script>
  const params = new URLSearchParams(location.search);
  const options = { auth: { name: params.get("name") }, reconnection: false };
  if (params.get("transports")) options.transports = params.get("transports").split(",");
  const socket = io(params.get("sio"), options);
  const log = (text) => {
    const item = document.createElement("li");
    item.textContent = text;
    document.getElementById("log").append(item);
  };
  window.chat = { socket, transport: () => socket.io.engine && socket.io.engine.transport.name };
  socket.on("connect", () => log("connected"));
  socket.on("connect_error", (err) => log("connect_error: " + err.message));
  socket.on("message", (m) => log(m.from + ": " + m.text));
  socket.on("presence", (p) => log(p.name + " " + p.what));
  document.getElementById("form").addEventListener("submit", (event) => {
    event.preventDefault();
    const input = document.getElementById("text");
    socket.emit("chat", input.value, (count) => log("delivered to " + count));
    input.value = "";
  });
  window.upload = (values) =>
    socket.emit("upload", new Uint8Array(values), (answer) =>
      log("upload answer " + Array.from(new Uint8Array(answer)).join(",")),
    );
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


async def main(script: bytes) -> None:

    async def serve_page(request: WebSocketRequest) -> None:
        if request.path.startswith("/socket.io.min.js"):
            await request.respond(200, headers=[("Content-Type", "text/javascript")], body=script)
        elif request.path.split("?")[0] == "/":
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
        sio = chat_server(page_urls[0])
        server = await nursery.start(
            lambda task_status: serve_websocket(
                sio, "127.0.0.1", 0, None, process_request=sio.process_request, task_status=task_status
            )
        )
        print("ready", page_urls[0] + "/", page_urls[1] + "/", f"http://127.0.0.1:{server.port}", flush=True)


if __name__ == "__main__":
    trio.run(main, Path(sys.argv[1]).read_bytes())
