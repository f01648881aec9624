"""Unit tests for trio_ws/demos/chat.py, the chat app behind the demo page, in memory.

The browser side of the same app is tested in tests/browser/test_chat_page.py.
"""

from __future__ import annotations

import pytest

from trio_ws import CallError
from trio_ws.demos.chat import MAX_NAME, create_app
from trio_ws.testing import TestClient


async def test_join_answers_with_the_room_and_its_members() -> None:
    async with TestClient(create_app()) as client, client.connect("/ws") as ann, client.connect("/ws") as bob:
        assert await ann.emit("join", {"name": "ann", "room": "tea"}, ack=True) == {"room": "tea", "members": ["ann"]}
        answer = await bob.emit("join", {"name": " bob ", "room": "tea"}, ack=True)
        assert answer == {"room": "tea", "members": ["ann", "bob"]}
        assert {"type": "event", "event": "joined", "data": {"name": "bob", "members": ["ann", "bob"]}} in [
            {key: envelope.get(key) for key in ("type", "event", "data")} for envelope in await ann.get_received()
        ]


@pytest.mark.parametrize("second", ["ann", "Ann", " ANN "])
async def test_a_name_taken_in_the_room_is_refused(second: str) -> None:
    async with TestClient(create_app()) as client, client.connect("/ws") as ann, client.connect("/ws") as other:
        await ann.emit("join", {"name": "ann", "room": "tea"}, ack=True)
        with pytest.raises(CallError) as caught:
            await other.emit("join", {"name": second, "room": "tea"}, ack=True)
        assert caught.value.error_type == "NameTaken"
        assert "already called" in caught.value.message
        # Nobody appears twice; the refused connection is in no room, so it cannot talk.
        assert await ann.emit("join", {"name": "ann", "room": "tea"}, ack=True) == {"room": "tea", "members": ["ann"]}
        with pytest.raises(CallError, match="NotInRoom"):
            await other.emit("say", "hello", ack=True)


async def test_a_refused_join_leaves_the_caller_in_its_room() -> None:
    async with TestClient(create_app()) as client, client.connect("/ws") as ann, client.connect("/ws") as bob:
        await ann.emit("join", {"name": "ann", "room": "tea"}, ack=True)
        await bob.emit("join", {"name": "ann", "room": "coffee"}, ack=True)  # another room: allowed
        with pytest.raises(CallError, match="NameTaken"):
            await bob.emit("join", {"name": "ann", "room": "tea"}, ack=True)
        await bob.emit("say", "still here", ack=True)
        received = await bob.get_received()
        assert {"name": "ann", "text": "still here"} in [envelope.get("data") for envelope in received]


async def test_a_name_is_free_again_after_its_owner_leaves() -> None:
    async with TestClient(create_app()) as client, client.connect("/ws") as bob:
        async with client.connect("/ws") as ann:
            await ann.emit("join", {"name": "ann", "room": "tea"}, ack=True)
        # ann's connection is closed: the disconnect handler freed the name.
        answer = await bob.emit("join", {"name": "ann", "room": "tea"}, ack=True)
        assert answer == {"room": "tea", "members": ["ann"]}


async def test_rejoining_with_ones_own_name_is_allowed() -> None:
    async with TestClient(create_app()) as client, client.connect("/ws") as ann:
        await ann.emit("join", {"name": "ann", "room": "tea"}, ack=True)
        assert await ann.emit("join", {"name": "ANN", "room": "tea"}, ack=True) == {"room": "tea", "members": ["ANN"]}


@pytest.mark.parametrize("name", ["", "   ", "x" * (MAX_NAME + 1), 7])
async def test_a_bad_name_is_a_bad_request(name: object) -> None:
    async with TestClient(create_app()) as client, client.connect("/ws") as ann:
        with pytest.raises(CallError, match="BadRequest: name must be a string"):
            await ann.emit("join", {"name": name, "room": "tea"}, ack=True)
