"""The application-layer examples run on their own and do what their docstrings say.

Each example is started as its own process with this interpreter and talked
to over real sockets by a trio_ws client speaking the event envelope.
"""

from __future__ import annotations

import json
import runpy
import subprocess
import sys
import urllib.request
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import trio
from support.envelopes import RawEvents

from trio_ws import open_websocket_url

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"


@asynccontextmanager
async def example_server(*args: str) -> AsyncIterator[tuple[str, trio.Process]]:
    """Start ``python examples/...`` with ``--port 0``; yield the URL it prints and the process."""
    command = [sys.executable, "-u", *[str(EXAMPLES / args[0]), *args[1:]], "--port", "0"]
    process = await trio.lowlevel.open_process(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT)
    try:
        line = await _read_line(process.stdout)
        url = next((word for word in line.split() if "://" in word), None)
        assert url is not None, f"no URL in {line!r}"
        yield url, process
    finally:
        process.kill()  # the process this test started, by its handle
        await process.wait()
        stderr = await process.stderr.receive_some(1 << 16) if process.stderr else b""
        assert b"Traceback" not in stderr, stderr.decode(errors="replace")


async def _read_line(stream: trio.abc.ReceiveStream | None) -> str:
    assert stream is not None
    data = b""
    with trio.fail_after(20):
        while not data.endswith(b"\n"):
            chunk = await stream.receive_some(1)
            if not chunk:
                break
            data += chunk
    return data.decode().strip()


@asynccontextmanager
async def peer(url: str) -> AsyncIterator[RawEvents]:
    async with open_websocket_url(url) as ws:
        yield RawEvents(ws, timeout=5)


def _http_get(url: str) -> tuple[int, str, bytes]:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.status, response.headers.get("Content-Type", ""), response.read()


# -- chat ------------------------------------------------------------------------


async def test_chat_rooms_messages_presence_and_leave() -> None:
    async with example_server("chat/app.py") as (url, _):
        assert url.startswith("http://127.0.0.1:")
        ws_url = url.replace("http://", "ws://") + "ws"
        async with peer(ws_url) as ann:
            answer = await ann.call("join", {"name": "ann", "room": "tea"})
            assert answer["data"] == {"room": "tea", "members": ["ann"]}
            async with peer(ws_url) as bob:
                answer = await bob.call("join", {"name": "bob", "room": "tea"})
                assert answer["data"] == {"room": "tea", "members": ["ann", "bob"]}
                assert await ann.next_event("joined") == {"name": "bob", "members": ["ann", "bob"]}

                assert "error" not in await bob.call("say", "hello ann")
                assert await ann.next_event("message") == {"name": "bob", "text": "hello ann"}
                assert await bob.next_event("message") == {"name": "bob", "text": "hello ann"}
                await ann.emit("say", "hi bob")
                assert await bob.next_event("message") == {"name": "ann", "text": "hi bob"}
            # bob's connection is closed: ann sees him leave
            assert await ann.next_event("left") == {"name": "bob", "members": ["ann"]}


async def test_chat_rooms_are_separate_and_errors_are_answered() -> None:
    async with example_server("chat/app.py") as (url, _):
        ws_url = url.replace("http://", "ws://") + "ws"
        async with peer(ws_url) as ann, peer(ws_url) as eve:
            assert (await eve.call("say", "anyone?"))["error"]["type"] == "NotInRoom"
            assert (await eve.call("join", {"name": "", "room": "x"}))["error"]["type"] == "BadRequest"
            assert (await eve.call("join", "eve"))["error"]["type"] == "TypeError"
            await ann.call("join", {"name": "ann", "room": "tea"})
            await eve.call("join", {"name": "eve", "room": "coffee"})
            await eve.call("say", "only coffee")
            assert await eve.next_event("message") == {"name": "eve", "text": "only coffee"}
            # moving to another room leaves the first one
            answer = await eve.call("join", {"name": "eve", "room": "tea"})
            assert answer["data"]["members"] == ["ann", "eve"]
            await eve.call("leave")
            assert await ann.next_event("joined") == {"name": "eve", "members": ["ann", "eve"]}
            assert await ann.next_event("left") == {"name": "eve", "members": ["ann"]}
            await ann.call("say", "still here")
            assert await ann.next_event("message") == {"name": "ann", "text": "still here"}
            assert not ann.stash  # ann never got the coffee room's message


async def test_chat_serves_its_page_and_the_browser_client() -> None:
    async with example_server("chat/app.py") as (url, _):
        status, kind, body = await trio.to_thread.run_sync(_http_get, url)
        assert status == 200
        assert kind.startswith("text/html")
        page = body.decode()
        assert 'import { connect } from "/trio_ws.js"' in page
        for element in ('id="name"', 'id="room"', 'id="text"', 'id="members"', 'id="log"'):
            assert element in page
        status, kind, body = await trio.to_thread.run_sync(_http_get, url + "trio_ws.js")
        assert status == 200
        assert kind.startswith("text/javascript")
        assert b"export function connect" in body


# -- rpc -------------------------------------------------------------------------


async def test_rpc_prints_answers_errors_and_the_server_call() -> None:
    result = await trio.run_process(
        [sys.executable, str(EXAMPLES / "rpc.py")], capture_stdout=True, capture_stderr=True, cwd=ROOT
    )
    out = result.stdout.decode()
    assert "balance ann: 100\n" in out
    assert "balance eve: error UnknownAccount: no account 'eve'\n" in out
    assert "transfer 30: {'ann': 70, 'bob': 50}\n" in out
    assert "transfer 500: error InsufficientFunds: ann has only 70\n" in out
    assert "'pin': '<redacted>'" in out and "1234" not in out
    assert "transfer, wrong pin: error Unauthorized: wrong pin\n" in out
    assert "  server asks: send 60 to bob? -> yes\n  answer: {'ann': 10, 'bob': 110}\n" in out
    assert b"Traceback" not in result.stderr, result.stderr.decode()


async def test_rpc_app_over_a_real_socket() -> None:
    """The example's app and client, in this process: a refused confirmation cancels the transfer."""
    rpc = _load("rpc.py")
    async with trio.open_nursery() as nursery:
        server = await nursery.start(rpc.create_app().serve, "127.0.0.1", 0)
        async with open_websocket_url(f"ws://127.0.0.1:{server.port}/ws") as ws:
            questions: list[str] = []

            def refuse(question: str) -> bool:
                questions.append(question)
                return False

            client = rpc.Client(ws, {"confirm": refuse})
            nursery.start_soon(client.read)
            pay = {"from": "ann", "to": "bob", "pin": "1234"}
            assert await client.emit("transfer", {**pay, "amount": 80}) == "error Cancelled: the client said no"
            assert questions == ["send 80 to bob?"]
            assert await client.emit("balance", "ann") == 100
        while server.connections:  # noqa: ASYNC110 - let the server finish closing first
            await trio.sleep(0.01)
        nursery.cancel_scope.cancel()


def _load(name: str) -> Any:
    """Run an example file as a module (not as ``__main__``) and return its globals."""
    return SimpleNamespace(**runpy.run_path(str(EXAMPLES / name), run_name=f"example_{name[:-3]}"))


# -- ticker ----------------------------------------------------------------------


async def test_ticker_broadcasts_to_every_subscriber() -> None:
    async with example_server("ticker.py", "--interval", "50") as (url, _):
        assert url.endswith("/ticker")
        async with open_websocket_url(url) as first, open_websocket_url(url) as second:
            for ws in (first, second):
                with trio.fail_after(5):
                    ticks = [json.loads(await ws.get_message()) for _ in range(3)]
                seqs = [tick["seq"] for tick in ticks]
                assert seqs == list(range(seqs[0], seqs[0] + 3))
                assert all(isinstance(tick["time"], float) for tick in ticks)


# -- heartbeat -------------------------------------------------------------------


async def test_heartbeat_prints_round_trips() -> None:
    result = await trio.run_process(
        [sys.executable, str(EXAMPLES / "heartbeat.py"), "--interval", "0.1", "--count", "3"],
        capture_stdout=True,
        capture_stderr=True,
        cwd=ROOT,
    )
    lines = result.stdout.decode().splitlines()
    assert [line.split(":")[0] for line in lines] == ["heartbeat 1", "heartbeat 2", "heartbeat 3"]
    # a loaded machine may print before the first pong; by the last line pings have been answered
    assert lines[-1].endswith(" ms"), lines
    assert b"Traceback" not in result.stderr, result.stderr.decode()
