"""The Engine.IO session of an App's Socket.IO client as its connection (trio_ws.app.socketio_link)."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import pytest
import trio
from support.envelopes import RawEvents
from support.rawhttp import http
from support.sio_app import serving

import trio_ws.app.socketio_encoding
import trio_ws.prepared
import trio_ws.protocol
from trio_ws import open_websocket_url
from trio_ws.app import App, EventConnection
from trio_ws.app.socketio_link import EngineLink
from trio_ws.socketio import EngineConfig, Handshake, decode_packet

#: Every test runs under ``trio.fail_after(TIMEOUT)``.
TIMEOUT = 10.0
#: The clients offer no compression: with per-connection (context takeover)
#: deflate no frame can be shared, for any hub member (see trio_ws.prepared).
PLAIN = {"compression": None}


def quiet_app() -> App:
    """An App whose Engine.IO pings are far apart: none lands in what a test reads."""
    app = App()
    app.enable_socketio(config=EngineConfig(ping_interval=30, ping_timeout=30))
    return app


@asynccontextmanager
async def raw_socketio(port: int) -> AsyncIterator[Any]:
    """A raw Engine.IO WebSocket connected to the namespace ``/``."""
    async with open_websocket_url(f"ws://127.0.0.1:{port}/socket.io/?EIO=4&transport=websocket", **PLAIN) as ws:
        assert (await ws.get_message()).startswith("0{")
        await ws.send_message("40")
        answer = await ws.get_message()
        assert answer.startswith("40{")
        yield ws


async def test_a_socketio_clients_link_is_its_engineio_session_and_its_hub_connection() -> None:
    app = quiet_app()
    seen: dict[str, Any] = {}

    @app.on("connect")
    async def connect(conn: EventConnection, auth: Any) -> None:
        websocket = conn.websocket
        link = websocket.link
        seen["link"] = type(link)
        seen["in_hub"] = websocket.in_hub
        seen["member_connection"] = websocket.member.connection is link
        seen["join_again"] = await websocket.join_hub() is websocket.member
        with pytest.raises(RuntimeError, match=r"WebSocket\.link"):
            websocket.connection  # noqa: B018
        seen["request"] = websocket.request.is_websocket

    with trio.fail_after(TIMEOUT):
        async with serving(app) as server, raw_socketio(server.port):
            pass
    assert seen == {
        "link": EngineLink,
        "in_hub": True,
        "member_connection": True,
        "join_again": True,
        "request": True,
    }


# One encoding and one frame per broadcast ------------------------------------------------------

POLLING = "/socket.io/?EIO=4&transport=polling"


def count_news(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """Count, from now on, the Socket.IO encodings and the WebSocket frames built of ``news`` events."""
    counts: Counter[str] = Counter()
    encode_sio = trio_ws.app.socketio_encoding.encode_sio

    def counting_encode(packet: Any) -> Any:
        if isinstance(packet.data, list) and packet.data[:1] == ["news"]:
            counts["encodes"] += 1
        return encode_sio(packet)

    def counting_frame(encode_frame: Callable[..., bytes]) -> Callable[..., bytes]:
        def frame(opcode: int, payload: bytes, **options: Any) -> bytes:
            if b"news" in payload:
                counts["frames"] += 1
            return encode_frame(opcode, payload, **options)

        return frame

    monkeypatch.setattr(trio_ws.app.socketio_encoding, "encode_sio", counting_encode)
    # Plain messages are framed in protocol.py, prepared ones in prepared.py.
    monkeypatch.setattr(trio_ws.protocol, "encode_frame", counting_frame(trio_ws.protocol.encode_frame))
    monkeypatch.setattr(trio_ws.prepared, "encode_frame", counting_frame(trio_ws.prepared.encode_frame))
    return counts


class PollingClient:
    """A Socket.IO client on long-polling, in raw HTTP: the packets of each GET, in order."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.sid = ""
        self.packets: list[str] = []

    async def open(self) -> None:
        answer = await http(self.port, "GET", POLLING)
        self.sid = Handshake.from_packet(decode_packet(answer.text)).sid
        await self.post("40")
        assert (await self.next()).startswith("40{")

    async def post(self, body: str) -> None:
        answer = await http(self.port, "POST", f"{POLLING}&sid={self.sid}", body=body.encode())
        assert answer.text == "ok", answer

    async def next(self) -> str:
        while not self.packets:
            answer = await http(self.port, "GET", f"{POLLING}&sid={self.sid}")
            assert answer.status == 200, answer
            self.packets.extend(answer.text.split("\x1e"))
        return self.packets.pop(0)


async def test_a_room_emit_is_encoded_and_framed_once_and_each_client_gets_it_once_in_its_encoding(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    app = quiet_app()

    @app.on("join")
    async def join(conn: EventConnection, room: str) -> str:
        await conn.join_room(room)
        return "ok"

    with trio.fail_after(TIMEOUT):
        async with serving(app) as server, AsyncExitStack() as stack:
            websockets = [await stack.enter_async_context(raw_socketio(server.port)) for _ in range(3)]
            for ws in websockets:
                await ws.send_message('421["join","tea"]')
                assert await ws.get_message() == '431["ok"]'
            polling = PollingClient(server.port)
            await polling.open()
            await polling.post('421["join","tea"]')
            assert await polling.next() == '431["ok"]'
            envelopes = []
            for _ in range(2):
                url = f"ws://127.0.0.1:{server.port}/ws"
                ws = await stack.enter_async_context(open_websocket_url(url, **PLAIN))
                envelopes.append(RawEvents(ws))
                assert await envelopes[-1].call_ok("join", "tea") == "ok"
            assert len(app.hub.local_room_members("tea")) == 6

            counts = count_news(monkeypatch)
            for n in (1, 2):
                assert (await app.emit("news", {"n": n}, to="tea")).queued == 6
            await app.emit("end", to="tea")
            for ws in websockets:
                got = [await ws.get_message() for _ in range(3)]
                assert got == ['42["news",{"n":1}]', '42["news",{"n":2}]', '42["end"]']
            assert [await polling.next() for _ in range(3)] == ['42["news",{"n":1}]', '42["news",{"n":2}]', '42["end"]']
            for events in envelopes:
                got = [await events.receive() for _ in range(3)]
                assert [(e["event"], e.get("data")) for e in got] == [
                    ("news", {"n": 1}),
                    ("news", {"n": 2}),
                    ("end", None),
                ]
    # Per emit: one Socket.IO encoding, one frame for the three Socket.IO
    # WebSockets and one for the two envelope clients (the polling client's
    # GET carries the encoded text, unframed).
    assert counts == {"encodes": 2, "frames": 4}


async def test_packets_queued_during_an_upgrade_go_out_before_the_next_emit() -> None:
    app = quiet_app()

    @app.on("join")
    async def join(conn: EventConnection, room: str) -> str:
        await conn.join_room(room)
        return "ok"

    with trio.fail_after(TIMEOUT):
        async with serving(app) as server:
            polling = PollingClient(server.port)
            await polling.open()
            await polling.post('421["join","tea"]')
            assert await polling.next() == '431["ok"]'
            url = f"ws://127.0.0.1:{server.port}/socket.io/?EIO=4&transport=websocket&sid={polling.sid}"
            async with open_websocket_url(url) as ws:
                await ws.send_message("2probe")
                assert await ws.get_message() == "3probe"
                assert await polling.next() == "6"  # the waiting GET is released
                # Queued in the session while the upgrade is under way...
                await app.emit("news", 1, to="tea")
                await app.emit("news", 2, to="tea")
                await ws.send_message("5")
                # ...and written on the WebSocket before what is emitted after it.
                await app.emit("news", 3, to="tea")
                got = [json.loads((await ws.get_message())[2:])[1] for _ in range(3)]
                assert got == [1, 2, 3]
