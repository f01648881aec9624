"""The examples run and do what they say; Ctrl-C stops each of them quietly."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
from functools import partial
from pathlib import Path

import pytest
import trio
from support.envelopes import RawEvents
from support.processes import interrupt_when_ready

import trio_ws

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"


async def test_demo_serves_the_chat_on_the_in_memory_hub() -> None:
    """The README's main command: the chat demo prints its URL and chats."""
    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            demo = await nursery.start(_start_process, [sys.executable, "-u", str(EXAMPLES / "demo.py"), "--port", "0"])
            try:
                line = await _read_line(demo.stdout)
                assert line.startswith("trio_ws chat demo running: open http://127.0.0.1:"), line
                http_url = line.split()[5]
                ws_url = http_url.replace("http://", "ws://") + "ws"
                async with trio_ws.open_websocket_url(ws_url) as alice, trio_ws.open_websocket_url(ws_url) as bob:
                    alice_events, bob_events = RawEvents(alice), RawEvents(bob)
                    await alice_events.call("join", {"name": "alice", "room": "demo"})
                    answer = await bob_events.call("join", {"name": "bob", "room": "demo"})
                    assert answer["data"]["members"] == ["alice", "bob"]
                    await alice_events.call("say", "hello")
                    event = await bob_events.receive()
                    assert event["event"] == "message"
                    assert event["data"] == {"name": "alice", "text": "hello"}
            finally:
                demo.kill()  # the process we started, by its handle


async def test_echo_server_and_client() -> None:
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            server = await nursery.start(_start_process, [sys.executable, "-u", str(EXAMPLES / "echo_server.py"), "0"])
            try:
                line = await _read_line(server.stdout)
                assert line.startswith("echo server listening on ws://127.0.0.1:")
                url = line.rsplit(" ", 1)[1]
                client = await trio.run_process(
                    [sys.executable, str(EXAMPLES / "echo_client.py"), url, "one", "two"],
                    capture_stdout=True,
                    capture_stderr=True,
                )
                assert client.stdout.decode().splitlines() == ["< one", "< two"]
            finally:
                server.kill()  # the server process we started, by its handle


async def _start_process(command: list[str], *, task_status: trio.TaskStatus[trio.Process]) -> None:
    process = await trio.lowlevel.open_process(command, stdout=subprocess.PIPE)
    task_status.started(process)
    await process.wait()


async def _read_line(stream: trio.abc.ReceiveStream | None) -> str:
    assert stream is not None
    data = b""
    while not data.endswith(b"\n"):
        chunk = await stream.receive_some(1)
        if not chunk:
            break
        data += chunk
    return data.decode().strip()


# -- Ctrl-C ---------------------------------------------------------------------------

# (command line after the interpreter, what it prints once running, exit status after Ctrl-C)
LONG_RUNNING = [
    (["demo.py", "--port", "0"], b"demo running", 0),
    (["echo_server.py", "0"], b"listening", 0),
    (["ticker.py", "--port", "0", "--interval", "50"], b"ticker running", 0),
    (["chat/app.py", "--port", "0"], b"chat running", 0),
    (["heartbeat.py", "--interval", "0.2", "--count", "1000"], b"heartbeat 1:", 130),
]


@pytest.mark.parametrize(("args", "ready", "status"), LONG_RUNNING, ids=[case[0][0] for case in LONG_RUNNING])
async def test_ctrl_c_stops_an_example_quietly(args: list[str], ready: bytes, status: int) -> None:
    command = [sys.executable, "-u", str(EXAMPLES / args[0]), *args[1:]]
    with trio.fail_after(60):
        result = await interrupt_when_ready(command, ready, cwd=str(ROOT))
    assert result.returncode == status, result
    assert result.stderr == "", result


async def test_ctrl_c_stops_the_scale_out_example_quietly() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))  # bound, not listening: Redis is down, the node serves anyway
        redis_url = f"redis://127.0.0.1:{sock.getsockname()[1]}/0"
        command = [sys.executable, "-u", str(EXAMPLES / "scale_out.py"), "--redis", redis_url, "--port", "0"]
        with trio.fail_after(60):
            result = await interrupt_when_ready(command, b"node serving", cwd=str(ROOT))
    assert result.returncode == 0, result
    assert "Traceback" not in result.stderr, result
    assert "KeyboardInterrupt" not in result.stderr, result


async def test_ctrl_c_stops_the_echo_client_quietly() -> None:
    received = trio.Event()

    async def silent(request: trio_ws.WebSocketRequest) -> None:
        ws = await request.accept()
        await ws.get_message()
        received.set()
        await trio.sleep_forever()  # never echoes: the client waits until Ctrl-C

    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            server = await nursery.start(trio_ws.serve_websocket, silent, "127.0.0.1", 0, None)
            url = f"ws://127.0.0.1:{server.port}/"
            process = await trio.lowlevel.open_process(
                [sys.executable, str(EXAMPLES / "echo_client.py"), url, "hi"],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
            try:
                await received.wait()  # the client is connected and waiting for the echo
                process.send_signal(signal.SIGINT)
                await process.wait()
                assert process.stderr is not None
                stderr = await process.stderr.receive_some()
            finally:
                process.kill()  # the process we started, by its handle
                await process.wait()
            nursery.cancel_scope.cancel()
    assert process.returncode == 130
    assert stderr == b""


async def test_echo_client_without_arguments_prints_usage() -> None:
    with trio.fail_after(30):
        result = await trio.run_process(
            [sys.executable, str(EXAMPLES / "echo_client.py")], capture_stdout=True, capture_stderr=True, check=False
        )
    assert result.returncode == 2
    stderr = result.stderr.decode()
    assert stderr.startswith("usage: echo_client.py [-h] URL [MESSAGE ...]"), stderr
    assert "Traceback" not in stderr


async def test_demo_on_a_busy_port_says_so_in_one_line() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with trio.fail_after(60):
            result = await trio.run_process(
                [sys.executable, str(EXAMPLES / "demo.py"), "--port", str(port)],
                capture_stdout=True,
                capture_stderr=True,
                check=False,
            )
    assert result.returncode == 1
    stderr = result.stderr.decode()
    assert stderr.count("\n") == 1, stderr
    assert f"127.0.0.1:{port}" in stderr
    assert "--port" in stderr


async def test_chat_bot_answers_commands_in_its_room() -> None:
    """examples/chat_bot.py joins the chat demo's room and answers !ping and !who."""
    from trio_ws.demos.chat import create_app

    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            server = await nursery.start(partial(create_app().serve, "127.0.0.1", 0, ping_interval=None))
            url = f"ws://127.0.0.1:{server.port}/ws"
            command = [sys.executable, "-u", str(EXAMPLES / "chat_bot.py"), url, "--room", "den", "--name", "robot"]
            bot = await nursery.start(_start_process, command)
            try:
                assert await _read_line(bot.stdout) == "robot joined den: robot"
                client = trio_ws.EventClient(url, ping_interval=None)
                said: list[dict[str, str]] = []
                answered = trio.Event()

                @client.on("message")
                def message(data: dict[str, str]) -> None:
                    said.append(data)
                    if [d["name"] for d in said].count("robot") == 2:
                        answered.set()

                async with client:
                    joined = await client.call("join", {"name": "ann", "room": "den"})
                    assert joined["members"] == ["ann", "robot"]
                    await client.call("say", "!ping")
                    await client.call("say", "!who")
                    await answered.wait()
                assert [d for d in said if d["name"] == "robot"] == [
                    {"name": "robot", "text": "pong, ann"},
                    {"name": "robot", "text": "here: ann, robot"},
                ]
            finally:
                bot.kill()  # the process this test started, by its handle
            nursery.cancel_scope.cancel()


async def test_ctrl_c_stops_the_chat_bot_quietly() -> None:
    from trio_ws.demos.chat import create_app

    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            server = await nursery.start(partial(create_app().serve, "127.0.0.1", 0, ping_interval=None))
            command = [sys.executable, "-u", str(EXAMPLES / "chat_bot.py"), f"ws://127.0.0.1:{server.port}/ws"]
            result = await interrupt_when_ready(command, b"bot joined lobby", cwd=str(ROOT))
            nursery.cancel_scope.cancel()
    assert result.returncode == 130, result
    assert result.stderr == "", result
