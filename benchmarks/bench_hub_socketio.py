"""The Socket.IO side of the hub fan-out benchmark (the ``python-socketio`` contenders).

python-socketio's server speaks Socket.IO (v5) over Engine.IO (v4), so its
members and its trigger cannot use the plain protocol of
``bench_hub_common.py``. Over one WebSocket at
``/socket.io/?EIO=4&transport=websocket``:

* the server opens with an Engine.IO OPEN packet ``0{...}``; the client sends a
  namespace CONNECT ``40`` (the trigger sends ``40{"role":"trigger"}``) and the
  server answers ``40{"sid":...}`` once its connect handler has returned, which
  for a member means it has joined the room;
* the trigger emits ``go`` with the text of ``go_message``; the server emits
  event ``m`` to the room once per message, then ``report`` with
  ``{"loop": seconds}`` to the trigger;
* the payload of ``m`` is text of ``SIZE`` characters that starts with the
  sequence number in 8 hex digits (a binary payload would travel as a
  separate attachment frame, which would double the frames per delivery);
* Engine.IO PINGs (``2``) are answered with PONGs (``3``) at any time;
* the echo benchmark (``bench_socketio.py``) emits ``echo`` with an ack id,
  ``42<id>["echo","..."]``, and the server's handler returns its data, which
  comes back as the ACK ``43<id>["..."]``.

The clients are trio_ws connections, the same WebSocket client as for the
other contenders.
"""

from __future__ import annotations

import json
from typing import Any

import trio
from bench_hub_common import HOST, sequence_number

import trio_ws

RESOURCE = "/socket.io/?EIO=4&transport=websocket"
SEQ_HEX = 8
CLIENT_OPTIONS: dict[str, Any] = {"compression": None, "ping_interval": None, "message_queue_size": 256}


def socketio_round_messages(round_no: int, messages: int, size: int) -> list[str]:
    """The payloads of one round: ``size`` characters each, numbered in hex.

    Raises:
        ValueError: when ``size`` is too small for the sequence number.
    """
    if size < SEQ_HEX:
        raise ValueError(f"Socket.IO payloads need at least {SEQ_HEX} characters, not {size}")
    padding = "x" * (size - SEQ_HEX)
    return [f"{sequence_number(round_no, i):0{SEQ_HEX}x}{padding}" for i in range(messages)]


def sequence_of(payload: str) -> int:
    """The sequence number a payload of :func:`socketio_round_messages` starts with."""
    return int(payload[:SEQ_HEX], 16)


class SocketIOClient:
    """One Socket.IO connection (default namespace) over a trio_ws WebSocket."""

    def __init__(self, ws: trio_ws.WebSocketConnection) -> None:
        self.ws = ws

    @classmethod
    async def connect(cls, nursery: trio.Nursery, port: int, auth: dict[str, str] | None = None) -> SocketIOClient:
        """Open the WebSocket, read the Engine.IO OPEN, connect the namespace and wait for its ack.

        Raises:
            RuntimeError: when the server answers with something else.
        """
        ws = await trio_ws.connect_websocket(nursery, HOST, port, RESOURCE, use_ssl=False, **CLIENT_OPTIONS)
        client = cls(ws)
        opening = await ws.get_message()
        if not isinstance(opening, str) or not opening.startswith("0{"):
            raise RuntimeError(f"expected an Engine.IO OPEN packet, got {opening!r}")
        await ws.send_message("40" + (json.dumps(auth) if auth else ""))
        while True:
            packet = await client._next_packet()
            if packet.startswith("40"):
                return client
            if packet.startswith("44"):
                raise RuntimeError(f"namespace connection refused: {packet!r}")

    async def _next_packet(self) -> str:
        """The next Socket.IO packet (text), answering Engine.IO PINGs on the way."""
        while True:
            packet = await self.ws.get_message()
            if not isinstance(packet, str):
                raise RuntimeError(f"unexpected binary frame ({len(packet)} bytes)")
            if packet == "2":
                await self.ws.send_message("3")
                continue
            if not packet.startswith("4"):
                raise RuntimeError(f"unexpected Engine.IO packet {packet[:40]!r}")
            return packet

    async def next_event(self) -> list[Any]:
        """The next EVENT packet's ``[name, *args]``.

        Raises:
            RuntimeError: on any other Socket.IO packet.
        """
        packet = await self._next_packet()
        if not packet.startswith("42"):
            raise RuntimeError(f"expected an EVENT packet, got {packet[:40]!r}")
        event: list[Any] = json.loads(packet[2:])
        return event

    async def emit(self, *event: Any) -> None:
        """Send an EVENT packet ``[name, *args]``."""
        await self.ws.send_message("42" + json.dumps(list(event)))

    async def call(self, ack_id: int, event: str, data: str) -> str:
        """Send ``42<ack_id>[event, data]`` and return the one argument of its ACK ``43<ack_id>[...]``.

        Raises:
            RuntimeError: when the next Socket.IO packet is not that ACK with one string.
        """
        await self.ws.send_message(f"42{ack_id}" + json.dumps([event, data]))
        packet = await self._next_packet()
        prefix = f"43{ack_id}["
        if not packet.startswith(prefix):
            raise RuntimeError(f"expected the ACK {ack_id}, got {packet[:40]!r}")
        answer = json.loads(packet[len(prefix) - 1 :])
        if len(answer) != 1 or not isinstance(answer[0], str):
            raise RuntimeError(f"unexpected ACK arguments {packet[:60]!r}")
        result: str = answer[0]
        return result
