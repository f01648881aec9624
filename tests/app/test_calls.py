"""Section 4: the server calls the client (``conn.call``): answers, CallError,
CallTimeout, ConnectionClosed at once when the connection ends, and no growth
of the pending-call bookkeeping (in memory)."""

from __future__ import annotations

import json
from typing import Any

import pytest
import trio
from apphelpers import TIMEOUT, wait_until

from trio_ws import ConnectionClosed
from trio_ws.app import App, CallError, CallTimeout, EventConnection
from trio_ws.testing import TestClient

#: A pending call must fail well before its timeout when the connection ends.
LONG = 30.0
#: "Well before": a sixth of LONG, with room for a loaded machine's real clock.
PROMPT = 5.0


class Calls:
    def __init__(self) -> None:
        self.conns: list[EventConnection] = []
        self.outcomes: list[tuple[str, Any, float]] = []
        self.pending_after: list[int] = []
        self.done = trio.Event()


def calls_app(calls: Calls) -> App:
    app = App()

    @app.on("connect")
    async def connect(conn: EventConnection, data: Any) -> None:
        calls.conns.append(conn)

    @app.on("ask")
    async def ask(conn: EventConnection, spec: dict) -> Any:
        """Call the client back from inside a handler (which holds the only worker)."""
        start = trio.current_time()
        try:
            answer = await conn.call(spec["event"], spec.get("data"), timeout=spec.get("timeout", LONG))
        except CallTimeout as err:
            calls.outcomes.append(("CallTimeout", str(err), trio.current_time() - start))
            return "timeout"
        except CallError as err:
            calls.outcomes.append(("CallError", [err.error_type, err.message], trio.current_time() - start))
            return "error"
        except BaseException as err:
            calls.outcomes.append((type(err).__name__, None, trio.current_time() - start))
            raise
        finally:
            calls.pending_after.append(conn.pending_calls)
            calls.done.set()
        calls.outcomes.append(("answer", answer, trio.current_time() - start))
        return {"client said": answer}

    @app.on("echo")
    async def echo(conn: EventConnection, data: Any) -> Any:
        return data

    return app


async def test_call_from_a_handler_gets_the_client_answer() -> None:
    calls = Calls()
    with trio.fail_after(TIMEOUT):
        async with TestClient(calls_app(calls)) as client, client.connect("/ws") as conn:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(conn.answer_calls, {"add": lambda data: sum(data)})
                result = await conn.emit("ask", {"event": "add", "data": [1, 2, 3]}, ack=True)
                nursery.cancel_scope.cancel()
            assert result == {"client said": 6}
            assert calls.outcomes[0][:2] == ("answer", 6)
            assert calls.pending_after == [0]
            assert calls.conns[0].pending_calls == 0


async def test_call_answered_with_an_error_raises_call_error() -> None:
    calls = Calls()
    with trio.fail_after(TIMEOUT):
        async with TestClient(calls_app(calls)) as client, client.connect("/ws") as conn:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(conn.answer_calls, {})  # unknown event -> error answer
                assert await conn.emit("ask", {"event": "mystery"}, ack=True) == "error"
                nursery.cancel_scope.cancel()
            assert calls.outcomes[0][:2] == ("CallError", ["UnknownEvent", ""])
            assert calls.pending_after == [0]
            # an explicit error answer, from outside a handler
            server_conn = calls.conns[0]
            async with trio.open_nursery() as nursery:

                async def answer_with_error() -> None:
                    envelope = json.loads(await conn.receive())
                    assert envelope["type"] == "event" and envelope["event"] == "q"
                    await conn.send_json(
                        {"type": "ack", "id": envelope["id"], "error": {"type": "Nope", "message": "not today"}}
                    )

                nursery.start_soon(answer_with_error)
                with pytest.raises(CallError) as caught:
                    await server_conn.call("q", {"x": 1}, timeout=LONG)
            assert (caught.value.error_type, caught.value.message) == ("Nope", "not today")
            assert server_conn.pending_calls == 0


async def test_call_timeout() -> None:
    calls = Calls()
    with trio.fail_after(TIMEOUT):
        async with TestClient(calls_app(calls)) as client, client.connect("/ws") as conn:
            assert await conn.emit("ask", {"event": "ignored", "timeout": 0.1}, ack=True) == "timeout"
            kind, message, elapsed = calls.outcomes[0]
            assert kind == "CallTimeout" and "ignored" in message
            assert 0.1 <= elapsed < PROMPT
            assert calls.pending_after == [0]
            server_conn = calls.conns[0]
            with pytest.raises(CallTimeout) as caught:
                await server_conn.call("ignored-too", timeout=0.05)
            assert isinstance(caught.value, TimeoutError)
            assert server_conn.pending_calls == 0
            # the client saw both calls, with ids
            received = await conn.get_received()
            assert [(m["event"], isinstance(m["id"], int)) for m in received] == [
                ("ignored", True),
                ("ignored-too", True),
            ]
            # a late answer is ignored and the connection carries on
            for message in received:
                await conn.send_json({"type": "ack", "id": message["id"], "data": "too late"})
            assert await conn.emit("echo", "alive", ack=True) == "alive"
            assert server_conn.pending_calls == 0


async def test_unanswered_calls_do_not_pile_up() -> None:
    calls = Calls()
    with trio.fail_after(TIMEOUT):
        async with TestClient(calls_app(calls)) as client, client.connect("/ws") as conn:
            await conn.emit("echo", None, ack=True)
            server_conn = calls.conns[0]
            peak = 0
            async with trio.open_nursery() as nursery:

                async def call_once() -> None:
                    with pytest.raises(CallTimeout):
                        await server_conn.call("never", timeout=0.2)

                for _ in range(50):
                    nursery.start_soon(call_once)
                await wait_until(lambda: server_conn.pending_calls == 50)
                peak = server_conn.pending_calls
            assert peak == 50
            assert server_conn.pending_calls == 0
            assert server_conn.pending_calls == 0
            # and answered ones do not linger either
            async with trio.open_nursery() as nursery:
                nursery.start_soon(conn.answer_calls, {"double": lambda x: 2 * x})
                for i in range(20):
                    assert await server_conn.call("double", i, timeout=LONG) == 2 * i
                nursery.cancel_scope.cancel()
            assert server_conn.pending_calls == 0


@pytest.mark.parametrize("who_closes", ["client", "server"])
async def test_pending_call_fails_at_once_with_connection_closed(who_closes: str) -> None:
    calls = Calls()
    with trio.fail_after(TIMEOUT):
        async with TestClient(calls_app(calls)) as client:
            async with client.connect("/ws") as conn:
                await conn.emit("echo", None, ack=True)
                server_conn = calls.conns[0]
                outcome: list[Any] = []

                async def caller() -> None:
                    start = trio.current_time()
                    try:
                        await server_conn.call("slow", timeout=LONG)
                    except Exception as err:
                        outcome.append((err, trio.current_time() - start))

                async with trio.open_nursery() as nursery:
                    nursery.start_soon(caller)
                    await wait_until(lambda: server_conn.pending_calls == 1)
                    if who_closes == "client":
                        await conn.disconnect(4000, "bye")
                    else:
                        await server_conn.disconnect(4001, "server bye")
            error, elapsed = outcome[0]
            assert isinstance(error, ConnectionClosed), repr(error)
            assert not isinstance(error, CallTimeout)
            assert elapsed < PROMPT
            assert server_conn.pending_calls == 0
            # calling a closed connection fails at once too, leaving nothing behind
            with pytest.raises(ConnectionClosed):
                await server_conn.call("after", timeout=LONG)
            assert server_conn.pending_calls == 0


async def test_pending_call_in_a_handler_ends_at_once_when_the_client_leaves() -> None:
    calls = Calls()
    with trio.fail_after(TIMEOUT):
        async with TestClient(calls_app(calls)) as client:
            async with client.connect("/ws") as conn:
                await conn.emit("ask", {"event": "slow"})
                await wait_until(lambda: bool(calls.conns) and calls.conns[0].pending_calls == 1)
                await conn.disconnect()
            await calls.done.wait()
    kind, _, elapsed = calls.outcomes[0]
    # the handler's call ends at once: failed with ConnectionClosed, or cancelled with the connection
    assert kind in ("ConnectionClosedOK", "ConnectionClosedError", "Cancelled"), kind
    assert elapsed < PROMPT
    assert calls.pending_after == [0]
