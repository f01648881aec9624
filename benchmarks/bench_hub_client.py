"""Client process of the hub fan-out benchmark: many room members on trio_ws.

Usage (normally started by ``bench_hub.py``, never by hand)::

    python benchmarks/bench_hub_client.py --ports 4321[,4322] --connections 1000 \
        --round-messages 10,100 --size 100

Opens ``--connections`` trio_ws client connections (compression and
keepalive off), each of which joins the room (see ``bench_hub_common.py``).
Connection ``i`` goes to port ``ports[(offset + i) % len(ports)]``. Prints
``ready`` once every connection has joined, then for each round (one per
``--round-messages`` entry, with that many messages) one JSON
line ``{"round", "count", "first", "last"}`` once every connection has
received that round's messages: ``first`` and ``last`` are the monotonic
times at which the first and the last connection received their final
message of the round. Every server contender is measured with this same
client, so only the server differs between them. With ``--socketio`` each
connection speaks Socket.IO over the same WebSocket client instead (see
``bench_hub_socketio.py``): it is a member once its namespace CONNECT is
acknowledged, and counts the ``m`` events the same way.
"""

from __future__ import annotations

import argparse
import json
import sys

import trio
from bench_hub_common import (
    HOST,
    JOIN,
    JOINED,
    SEQ_BYTES,
    exit_when_parent_goes,
    now,
    raise_fd_limit,
    sequence_number,
)
from bench_hub_socketio import SocketIOClient, sequence_of

import trio_ws

CLIENT_OPTIONS = {
    "compression": None,
    "ping_interval": None,
    # A whole round (100 messages) fits, so the reader never waits for the member task.
    "message_queue_size": 256,
}


class Rounds:
    """Per-round completion counts and times, printed once a round is complete."""

    def __init__(self, connections: int, rounds: int) -> None:
        self.connections = connections
        self.count = [0] * rounds
        self.first = [float("inf")] * rounds
        self.last = [0.0] * rounds

    def done(self, round_no: int, when: float) -> None:
        """Record that one connection received all of round ``round_no``."""
        self.count[round_no] += 1
        self.first[round_no] = min(self.first[round_no], when)
        self.last[round_no] = max(self.last[round_no], when)
        if self.count[round_no] == self.connections:
            line = {
                "round": round_no,
                "count": self.count[round_no],
                "first": self.first[round_no],
                "last": self.last[round_no],
            }
            print(json.dumps(line), flush=True)


async def run(
    ports: list[int],
    connections: int,
    offset: int,
    round_messages: list[int],
    size: int,
    concurrency: int,
    socketio: bool = False,
) -> None:
    """Open the members, report readiness, then receive ``rounds`` rounds."""
    limiter = trio.CapacityLimiter(concurrency)
    joined = 0
    all_joined = trio.Event()
    results = Rounds(connections, len(round_messages))

    async def socketio_member(index: int, nursery: trio.Nursery) -> None:
        nonlocal joined
        port = ports[(offset + index) % len(ports)]
        async with limiter:
            client = await SocketIOClient.connect(nursery, port)
        joined += 1
        if joined == connections:
            all_joined.set()
        for round_no, messages in enumerate(round_messages):
            expected = sequence_number(round_no, 0)
            for _ in range(messages):
                event = await client.next_event()
                if len(event) != 2 or event[0] != "m" or not isinstance(event[1], str):
                    raise RuntimeError(f"connection {index}: unexpected event {str(event)[:60]}")
                payload = event[1]
                seq = sequence_of(payload)
                if seq != expected or len(payload) != size:
                    raise RuntimeError(f"connection {index}: expected message {expected}, got {seq} ({len(payload)} B)")
                expected += 1
            results.done(round_no, now())

    async def member(index: int, nursery: trio.Nursery) -> None:
        nonlocal joined
        port = ports[(offset + index) % len(ports)]
        async with limiter:
            ws = await trio_ws.connect_websocket(nursery, HOST, port, "/", use_ssl=False, **CLIENT_OPTIONS)
            await ws.send_message(JOIN)
            reply = await ws.get_message()
            if reply != JOINED:
                raise RuntimeError(f"expected {JOINED!r}, got {reply!r}")
        joined += 1
        if joined == connections:
            all_joined.set()
        for round_no, messages in enumerate(round_messages):
            expected = sequence_number(round_no, 0)
            for _ in range(messages):
                data = await ws.get_message()
                seq = int.from_bytes(data[:SEQ_BYTES], "big")
                if seq != expected or len(data) != size:
                    raise RuntimeError(f"connection {index}: expected message {expected}, got {seq} ({len(data)} B)")
                expected += 1
            results.done(round_no, now())

    async with trio.open_nursery() as nursery:
        for index in range(connections):
            nursery.start_soon(socketio_member if socketio else member, index, nursery)
        await all_joined.wait()
        print("ready", flush=True)
        # The members' tasks end after the last round; their connections stay
        # open until the driver kills this process (closing 1,000 connections
        # gracefully would only add noise to the next measurement).
        await trio.sleep_forever()


def main(argv: list[str] | None = None) -> None:
    """Parse arguments and run the members."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ports", required=True, help="comma-separated server ports")
    parser.add_argument("--connections", type=int, required=True)
    parser.add_argument("--offset", type=int, default=0, help="index of the first connection (port assignment)")
    parser.add_argument("--round-messages", required=True, help="messages of each round, comma-separated")
    parser.add_argument("--size", type=int, required=True)
    parser.add_argument("--concurrency", type=int, default=50, help="connections opened at once")
    parser.add_argument("--socketio", action="store_true", help="speak Socket.IO (python-socketio servers)")
    args = parser.parse_args(argv)
    raise_fd_limit()
    exit_when_parent_goes()
    ports = [int(port) for port in args.ports.split(",")]
    round_messages = [int(count) for count in args.round_messages.split(",")]
    trio.run(run, ports, args.connections, args.offset, round_messages, args.size, args.concurrency, args.socketio)
    sys.exit(0)


if __name__ == "__main__":
    main()
