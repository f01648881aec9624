"""Section 6: malformed envelopes, unknown events, wrong argument types and
oversized payloads get an error answer or a close with a clear code, and the
server and the other connections carry on (in memory)."""

from __future__ import annotations

import json
from typing import Any

import pytest
import trio
from apphelpers import TIMEOUT

from trio_ws import CallError, ConnectionClosed
from trio_ws.app import App, EventConnection
from trio_ws.app.envelope import MAX_EVENT_NAME, EnvelopeError, parse_envelope
from trio_ws.testing import TestClient, TestConnection


def typed_app() -> App:
    app = App()

    @app.on("echo")
    async def echo(conn: EventConnection, data: Any) -> Any:
        return data

    @app.on("add")
    async def add(conn: EventConnection, data: dict) -> int:
        return int(data["a"]) + int(data["b"])

    @app.on("count")
    async def count(conn: EventConnection, items: list) -> int:
        return len(items)

    @app.on("shout")
    async def shout(conn: EventConnection, text: str) -> str:
        return text.upper()

    @app.on("double")
    async def double(conn: EventConnection, n: int) -> int:
        return 2 * n

    @app.on("half")
    async def half(conn: EventConnection, x: float) -> float:
        return x / 2

    return app


async def still_usable(conn: TestConnection) -> None:
    assert conn.is_connected
    assert await conn.emit("echo", {"ok": True}, ack=True) == {"ok": True}


BARE_ERRORS = [
    ("not json at all", "BadEnvelope", "invalid JSON"),
    ("[1, 2, 3]", "BadEnvelope", "JSON object"),
    ('"a string"', "BadEnvelope", "JSON object"),
    ("null", "BadEnvelope", "JSON object"),
    (b'{"type": "event", "event": "echo", "id": 1}', "BadEnvelope", "text frames"),
    ('{"type": "event", "event": "echo", "id": "seven"}', "BadEnvelope", "id must be an integer"),
    ('{"type": "event", "event": "echo", "id": 1.5}', "BadEnvelope", "id must be an integer"),
    ('{"type": "event", "event": "echo", "id": true}', "BadEnvelope", "id must be an integer"),
    ('{"type": "event", "event": ""}', "BadEnvelope", "non-empty string"),
    ('{"type": "event"}', "BadEnvelope", "non-empty string"),
    ('{"event": "echo"}', "BadEnvelope", "unknown envelope type"),
    ('{"type": "ack", "data": 1}', "BadEnvelope", "needs an id"),
]


@pytest.mark.parametrize(("message", "error_type", "text"), BARE_ERRORS)
async def test_malformed_envelope_gets_an_error_and_the_connection_stays(
    message: str | bytes, error_type: str, text: str
) -> None:
    with trio.fail_after(TIMEOUT):
        async with TestClient(typed_app()) as client, client.connect("/ws") as conn:
            await conn.send(message)
            received = await conn.get_received()
            assert len(received) == 1, received
            assert received[0]["type"] == "error"
            assert received[0]["error"]["type"] == error_type
            assert text in received[0]["error"]["message"]
            await still_usable(conn)


ID_ERRORS = [
    ({"type": "bogus", "id": 3}, "BadEnvelope", "unknown envelope type"),
    ({"type": "event", "event": "", "id": 4}, "BadEnvelope", "non-empty string"),
    ({"type": "event", "event": "x" * (MAX_EVENT_NAME + 1), "id": 5}, "BadEnvelope", "at most"),
    ({"type": "event", "event": 42, "id": 6}, "BadEnvelope", "non-empty string"),
    ({"type": "event", "event": "echo", "namespace": "chat", "id": 7}, "BadEnvelope", "namespace"),
    ({"type": "event", "event": "echo", "namespace": 5, "id": 8}, "BadEnvelope", "namespace"),
    ({"type": "event", "event": "echo", "error": "x", "id": 9}, "BadEnvelope", "error must be"),
    ({"type": "connected", "id": 10}, "BadEnvelope", "clients do not send"),
    ({"type": "error", "id": 11}, "BadEnvelope", "clients do not send"),
    ({"type": "joined", "id": 14}, "BadEnvelope", "clients do not send"),
    ({"type": "event", "event": "nope", "id": 12}, "UnknownEvent", "nope"),
    ({"type": "event", "event": "echo", "namespace": "/nowhere", "id": 13}, "NotConnected", "/nowhere"),
]


@pytest.mark.parametrize(("envelope", "error_type", "text"), ID_ERRORS)
async def test_bad_envelope_with_an_id_gets_an_error_answer(
    envelope: dict[str, Any], error_type: str, text: str
) -> None:
    with trio.fail_after(TIMEOUT):
        async with TestClient(typed_app()) as client, client.connect("/ws") as conn:
            await conn.send(json.dumps(envelope))
            await trio.testing.wait_all_tasks_blocked()
            answer = conn._acks.pop(envelope["id"])
            assert answer["type"] == "ack" and "data" not in answer
            assert answer["error"]["type"] == error_type
            assert text in answer["error"]["message"]
            assert await conn.get_received() == []
            await still_usable(conn)


async def test_many_bad_messages_in_a_row_do_not_end_the_connection() -> None:
    with trio.fail_after(TIMEOUT):
        async with TestClient(typed_app()) as client, client.connect("/ws") as conn, client.connect("/ws") as other:
            for message, _, _ in BARE_ERRORS * 5:
                await conn.send(message)
            received = await conn.get_received()
            assert len(received) == len(BARE_ERRORS) * 5
            assert {m["type"] for m in received} == {"error"}
            await still_usable(conn)
            await still_usable(other)


async def test_unknown_event() -> None:
    with trio.fail_after(TIMEOUT):
        async with TestClient(typed_app()) as client, client.connect("/ws") as conn:
            with pytest.raises(CallError) as caught:
                await conn.emit("does-not-exist", 1, ack=True)
            assert caught.value.error_type == "UnknownEvent"
            assert "does-not-exist" in caught.value.message
            await conn.emit("does-not-exist-either")
            received = await conn.get_received()
            assert [m["error"]["type"] for m in received] == ["UnknownEvent"]
            await still_usable(conn)


@pytest.mark.parametrize(
    ("event", "data", "expects", "got"),
    [
        ("add", [1, 2], "dict", "list"),
        ("add", "1+2", "dict", "str"),
        ("count", {"a": 1}, "list", "dict"),
        ("shout", 5, "str", "int"),
        ("double", "5", "int", "str"),
        ("double", None, "int", "NoneType"),
        ("half", "1.5", "float", "str"),
    ],
)
async def test_wrong_argument_type_is_a_type_error_answer(event: str, data: Any, expects: str, got: str) -> None:
    with trio.fail_after(TIMEOUT):
        async with TestClient(typed_app()) as client, client.connect("/ws") as conn:
            with pytest.raises(CallError) as caught:
                await conn.emit(event, data, ack=True)
            assert caught.value.error_type == "TypeError"
            assert expects in caught.value.message and got in caught.value.message
            await still_usable(conn)


async def test_right_argument_types_pass() -> None:
    with trio.fail_after(TIMEOUT):
        async with TestClient(typed_app()) as client, client.connect("/ws") as conn:
            assert await conn.emit("add", {"a": 1, "b": 2}, ack=True) == 3
            assert await conn.emit("count", [1, 2, 3], ack=True) == 3
            assert await conn.emit("shout", "hi", ack=True) == "HI"
            assert await conn.emit("double", 21, ack=True) == 42
            assert await conn.emit("half", 3.0, ack=True) == 1.5


async def test_float_argument_accepts_a_json_integer() -> None:
    """JSON has one number type: 3.0 is sent as ``3`` by JavaScript's
    JSON.stringify (and the bundled browser client), so a ``float`` handler
    must accept it."""
    with trio.fail_after(TIMEOUT):
        async with TestClient(typed_app()) as client, client.connect("/ws") as conn:
            assert await conn.emit("half", 3, ack=True) == 1.5


@pytest.mark.parametrize("size", [2048, 100_000])
async def test_oversized_message_closes_with_1009_while_others_carry_on(size: int) -> None:
    with trio.fail_after(TIMEOUT):
        async with TestClient(typed_app(), max_message_size=1024) as client:
            async with client.connect("/ws") as big, client.connect("/ws") as other:
                await still_usable(big)
                await big.emit("echo", "x" * size)
                with pytest.raises(ConnectionClosed) as caught:
                    await big.receive()
                assert caught.value.reason.code == 1009
                assert not big.is_connected
                await still_usable(other)
            # new connections are served too
            async with client.connect("/ws") as later:
                await still_usable(later)


def test_parse_envelope_unit() -> None:
    envelope = parse_envelope('{"type": "event", "event": "e", "data": [1], "id": 2}')
    assert (envelope.type, envelope.event, envelope.namespace, envelope.data, envelope.id) == (
        "event",
        "e",
        "/",
        [1],
        2,
    )
    with pytest.raises(EnvelopeError) as caught:
        parse_envelope('{"type": "nope", "id": 9}')
    assert caught.value.call_id == 9 and caught.value.error_type == "BadEnvelope"
    with pytest.raises(EnvelopeError) as caught:
        parse_envelope('{"type": "event", "event": "e", "id": "9"}')
    assert caught.value.call_id is None
