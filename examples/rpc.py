"""Events with acknowledgements, error answers, and a server calling its client.

Run it::

    python examples/rpc.py

It starts the app on a free port and a client in the same process. The client
speaks the event envelope (docs/topics/envelope.rst) directly over a trio_ws
connection, so it also shows what travels on the wire. It asks for balances
and transfers; the server answers each event that carries an id, and for a
large transfer it calls the client back (``conn.call``) to confirm first.
"""

from __future__ import annotations

import json
import logging
import sys
from typing import Any

import trio

from trio_ws import WebSocketConnection, open_websocket_url
from trio_ws.app import App, CallError, CallTimeout, EventConnection, EventError
from trio_ws.cli import EXIT_INTERRUPTED, run_main


class InsufficientFunds(Exception):
    """Part of the transfer's contract: answered with its type and message, logged at INFO."""


def create_app() -> App:
    """The bank: ``balance`` and ``transfer`` events."""
    app = App()
    accounts = {"ann": 100, "bob": 20}

    @app.on("balance")
    async def balance(conn: EventConnection, user: str) -> int:
        if user not in accounts:
            raise EventError("UnknownAccount", f"no account {user!r}")
        return accounts[user]

    @app.on("transfer", expected_exceptions=[InsufficientFunds], sensitive_arguments=["pin"])
    async def transfer(conn: EventConnection, data: dict) -> dict:
        source, target, amount = data["from"], data["to"], data["amount"]
        if data.get("pin") != "1234":
            raise EventError("Unauthorized", "wrong pin")
        if accounts[source] < amount:
            raise InsufficientFunds(f"{source} has only {accounts[source]}")
        if amount >= 50:
            try:
                confirmed = await conn.call("confirm", f"send {amount} to {target}?", timeout=2)
            except (CallTimeout, CallError) as err:
                raise EventError("NotConfirmed", f"no confirmation: {err}") from None
            if not confirmed:
                raise EventError("Cancelled", "the client said no")
        accounts[source] -= amount
        accounts[target] += amount
        return {source: accounts[source], target: accounts[target]}

    return app


class Client:
    """A minimal envelope client: ``emit`` waits for the ack; server calls are answered by ``handlers``."""

    def __init__(self, ws: WebSocketConnection, handlers: dict[str, Any]) -> None:
        self.ws = ws
        self.handlers = handlers
        self.pending: dict[int, trio.MemorySendChannel[dict[str, Any]]] = {}
        self.next_id = 0

    async def read(self) -> None:
        """Route acks to their emit and answer the server's calls, until the connection closes."""
        async for text in self.ws:
            envelope = json.loads(text)
            if envelope["type"] == "ack":
                self.pending.pop(envelope["id"]).send_nowait(envelope)
            elif envelope["type"] == "event" and envelope.get("id") is not None:
                answer = self.handlers[envelope["event"]](envelope["data"])
                await self.ws.send_message(json.dumps({"type": "ack", "id": envelope["id"], "data": answer}))

    async def emit(self, event: str, data: Any) -> Any:
        """Send an event with an id and return the answer (``error: ...`` for an error answer)."""
        self.next_id += 1
        send, receive = trio.open_memory_channel[dict[str, Any]](1)
        self.pending[self.next_id] = send
        await self.ws.send_message(json.dumps({"type": "event", "event": event, "data": data, "id": self.next_id}))
        answer = await receive.receive()
        if "error" in answer:
            return f"error {answer['error']['type']}: {answer['error']['message']}"
        return answer["data"]


def confirm(question: str) -> bool:
    """The client's answer to the server's ``confirm`` call."""
    print(f"  server asks: {question} -> yes")
    return True


async def main() -> None:
    """Serve the app on a free port, run the client against it, stop."""
    async with trio.open_nursery() as nursery:
        server = await nursery.start(create_app().serve, "127.0.0.1", 0)
        async with open_websocket_url(f"ws://127.0.0.1:{server.port}/ws") as ws:
            client = Client(ws, {"confirm": confirm})
            nursery.start_soon(client.read)
            pay = {"from": "ann", "to": "bob", "pin": "1234"}
            print("balance ann:", await client.emit("balance", "ann"))
            print("balance eve:", await client.emit("balance", "eve"))
            print("transfer 30:", await client.emit("transfer", {**pay, "amount": 30}))
            print("transfer 500:", await client.emit("transfer", {**pay, "amount": 500}))
            print("transfer, wrong pin:", await client.emit("transfer", {**pay, "amount": 5, "pin": "0000"}))
            print("transfer 60:")
            print("  answer:", await client.emit("transfer", {**pay, "amount": 60}))
        while server.connections:  # noqa: ASYNC110 - let the server finish closing first
            await trio.sleep(0.01)
        nursery.cancel_scope.cancel()


if __name__ == "__main__":
    # Shows the INFO line of the expected exception, with the pin redacted.
    logging.basicConfig(level=logging.INFO, format="  log: %(message)s", stream=sys.stdout)
    sys.exit(run_main(main, interrupted=EXIT_INTERRUPTED))
