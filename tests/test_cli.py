"""Tests of the command line tool (trio_ws/cli/, ``python -m trio_ws``).

The CLI runs as a real subprocess against trio_ws servers started in the
test's own Trio loop on 127.0.0.1; argument errors are also checked in-process
through ``main()``. Every subprocess is started and stopped by its handle.
"""

from __future__ import annotations

import json
import os
import platform
import signal
import socket
import ssl
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import trio
import trustme
from support.processes import Finished, Output, cli_command, stop
from support.rawhttp import read_head, switching_protocols

import trio_ws
from trio_ws import ConnectionClosed, WebSocketRequest
from trio_ws.cli import IDLE_AFTER_EOF, format_message, main

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT = 20.0

Handler = Callable[[WebSocketRequest], Awaitable[None]]


# -- helpers -----------------------------------------------------------------


async def echo_handler(request: WebSocketRequest) -> None:
    ws = await request.accept()
    async for message in ws:
        await ws.send_message(message)


@asynccontextmanager
async def serving(handler: Handler, ssl_context: ssl.SSLContext | None = None, **options: Any) -> AsyncIterator[str]:
    """Run serve_websocket on 127.0.0.1:0 for the block; yield its URL."""
    async with trio.open_nursery() as nursery:
        server = await nursery.start(partial(trio_ws.serve_websocket, handler, "127.0.0.1", 0, ssl_context, **options))
        scheme = "ws" if ssl_context is None else "wss"
        yield f"{scheme}://127.0.0.1:{server.port}/"
        nursery.cancel_scope.cancel()


async def run_cli(*args: str, stdin: bytes = b"", keep_stdin_open: bool = False) -> Finished:
    """Run the CLI with ``stdin`` piped in, until it exits.

    stdin is closed after the data (EOF), or with ``keep_stdin_open`` only once
    the process has exited (so only the server can end the session).
    """
    process = await trio.lowlevel.open_process(
        cli_command(*args), stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT
    )
    assert process.stdin is not None and process.stdout is not None and process.stderr is not None
    out, err = Output(), Output()
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(out.drain, process.stdout)
            nursery.start_soon(err.drain, process.stderr)
            await process.stdin.send_all(stdin)
            if not keep_stdin_open:
                await process.stdin.aclose()
            await process.wait()
            await process.stdin.aclose()
    finally:
        await stop(process)
    assert process.returncode is not None
    return Finished(process.returncode, out.text, err.text)


def assert_one_line_error(result: Finished, code: int, text: str) -> None:
    assert result.returncode == code, result
    assert "Traceback" not in result.stderr
    assert result.stderr.count("\n") == 1, result.stderr
    assert text in result.stderr, result.stderr


@pytest.fixture
def tls(tmp_path: Path) -> tuple[ssl.SSLContext, Path]:
    """A server context certified by a private CA, and the CA's PEM file."""
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(server_ctx)
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    return server_ctx, ca_file


# -- connect: messages -----------------------------------------------------------


async def test_piped_lines_come_back() -> None:
    with trio.fail_after(TIMEOUT):
        async with serving(echo_handler) as url:
            result = await run_cli("connect", url, stdin=b"one\ntwo\r\n\nlast without newline")
    assert result.returncode == 0, result
    assert result.stdout == "< one\n< two\n< \n< last without newline\n"
    assert "> " not in result.stdout  # no echo of sent lines when stdin is a pipe
    assert result.stderr == ""


async def test_no_wait_closes_at_eof_with_1000() -> None:
    codes: list[int] = []

    async def handler(request: WebSocketRequest) -> None:
        ws = await request.accept()
        try:
            while True:
                await ws.get_message()
        except ConnectionClosed as closed:
            codes.append(closed.reason.code)

    with trio.fail_after(TIMEOUT):
        async with serving(handler) as url:
            result = await run_cli("connect", url, "--no-wait", stdin=b"a\n")
    assert result.returncode == 0, result
    assert codes == [1000]


async def test_session_stays_open_while_the_server_keeps_sending() -> None:
    """Input ends at once; ticks every 0.5 s keep the session open until the server closes."""

    async def ticker(request: WebSocketRequest) -> None:
        ws = await request.accept()
        for n in range(5):
            await ws.send_message(f"tick {n}")
            await trio.sleep(0.5)
        await ws.aclose(1000, "done")

    with trio.fail_after(TIMEOUT):
        async with serving(ticker) as url:
            result = await run_cli("connect", url)
    assert result.returncode == 0, result
    assert result.stdout == "".join(f"< tick {n}\n" for n in range(5))
    assert "connection closed by server: 1000 (NORMAL_CLOSURE) done" in result.stderr


async def test_idle_option_sets_how_long_a_quiet_server_is_waited_for() -> None:
    codes: list[int] = []

    async def greet_then_wait(request: WebSocketRequest) -> None:
        ws = await request.accept()
        await ws.send_message("hello")
        try:
            await ws.get_message()
        except ConnectionClosed as closed:
            codes.append(closed.reason.code)

    with trio.fail_after(TIMEOUT):
        async with serving(greet_then_wait) as url:
            result = await run_cli("connect", url, "--idle", "0.2")
    assert result.returncode == 0, result
    assert result.stdout == "< hello\n"
    assert codes == [1000]


async def test_idle_inf_waits_for_the_server_to_close() -> None:
    async def slow(request: WebSocketRequest) -> None:
        ws = await request.accept()
        await ws.send_message("first")
        await trio.sleep(IDLE_AFTER_EOF + 0.5)  # quiet for longer than the default --idle
        await ws.send_message("second")
        await ws.aclose(1000)

    with trio.fail_after(TIMEOUT):
        async with serving(slow) as url:
            result = await run_cli("connect", url, "--idle", "inf")
    assert result.returncode == 0, result
    assert result.stdout == "< first\n< second\n"


async def test_json_is_pretty_printed() -> None:
    document = {"name": "trio_ws", "tags": ["ws", "trio"], "n": 1}
    lines = json.dumps(document) + "\nnot json\n"
    with trio.fail_after(TIMEOUT):
        async with serving(echo_handler) as url:
            result = await run_cli("connect", url, "--json", stdin=lines.encode())
    assert result.returncode == 0, result
    pretty = json.dumps(document, indent=2).replace("\n", "\n  ")
    assert result.stdout == f"< {pretty}\n< not json\n"


async def test_binary_messages_are_shown_as_hex() -> None:
    async def handler(request: WebSocketRequest) -> None:
        ws = await request.accept()
        await ws.send_message(bytes(range(3)))
        await ws.send_message(bytes(range(40)))
        async for _ in ws:
            pass

    with trio.fail_after(TIMEOUT):
        async with serving(handler) as url:
            result = await run_cli("connect", url)
    assert result.returncode == 0, result
    first16 = " ".join(f"{i:02x}" for i in range(16))
    assert result.stdout == f"< [binary 3 bytes] 00 01 02\n< [binary 40 bytes] {first16} ...\n"


async def test_ping_prints_round_trip() -> None:
    with trio.fail_after(TIMEOUT):
        async with serving(echo_handler) as url:
            result = await run_cli("connect", url, "--ping", "0.1", stdin=b"x\n")
    assert result.returncode == 0, result
    assert "ping: round trip" in result.stderr
    assert " ms" in result.stderr


@pytest.mark.parametrize(("code", "exit_code"), [(1000, 0), (1001, 0), (4000, 1)])
async def test_close_from_server(code: int, exit_code: int) -> None:
    async def handler(request: WebSocketRequest) -> None:
        ws = await request.accept()
        await ws.get_message()
        await ws.aclose(code, "bye")

    with trio.fail_after(TIMEOUT):
        async with serving(handler) as url:
            # stdin stays open: only the server's close can end the client.
            result = await run_cli("connect", url, stdin=b"hello\n", keep_stdin_open=True)
    assert result.returncode == exit_code, result
    name = trio_ws.CloseReason(code, None).name
    assert f"connection closed by server: {code} ({name}) bye" in result.stderr
    assert "Traceback" not in result.stderr


async def test_headers_and_subprotocol_are_sent() -> None:
    async def handler(request: WebSocketRequest) -> None:
        token = dict(request.headers).get(b"x-token", b"").decode()
        ws = await request.accept(subprotocol=request.proposed_subprotocols[0])
        await ws.send_message(f"{token} {ws.subprotocol} {list(request.proposed_subprotocols)}")

    with trio.fail_after(TIMEOUT):
        async with serving(handler) as url:
            result = await run_cli(
                "connect", url, "--header", "X-Token: s3cret", "--subprotocol", "chat", "--subprotocol", "json"
            )
    assert result.stdout == "< s3cret chat ['chat', 'json']\n", result


async def test_sigint_closes_with_1000_and_exits_130() -> None:
    codes: list[int] = []

    async def handler(request: WebSocketRequest) -> None:
        ws = await request.accept()
        try:
            async for message in ws:
                await ws.send_message(message)
        finally:
            assert ws.closed is not None
            codes.append(ws.closed.code)

    with trio.fail_after(TIMEOUT):
        async with serving(handler) as url:
            process = await trio.lowlevel.open_process(
                cli_command("connect", url),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                cwd=ROOT,
            )
            assert process.stdin is not None and process.stdout is not None and process.stderr is not None
            out, err = Output(), Output()
            try:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(out.drain, process.stdout)
                    nursery.start_soon(err.drain, process.stderr)
                    await process.stdin.send_all(b"ready?\n")
                    await out.wait_for(b"< ready?\n")
                    process.send_signal(signal.SIGINT)
                    await process.wait()
                    await process.stdin.aclose()
            finally:
                await stop(process)
    assert process.returncode == 130
    assert err.text == ""
    assert codes == [1000]


async def test_second_sigint_stops_waiting_for_the_closing_handshake() -> None:
    """A server that never answers the close frame: the second Ctrl-C ends the wait, quietly."""
    message_seen, close_frame_seen = trio.Event(), trio.Event()

    async def deaf(stream: trio.SocketStream) -> None:
        await stream.send_all(switching_protocols(await read_head(stream)))
        while data := await stream.receive_some():
            if data[0] & 0x0F == 0x1:  # a text frame: the session runs
                message_seen.set()
            if data[0] & 0x0F == 0x8:  # the client's close frame: never answered
                close_frame_seen.set()
        await trio.sleep_forever()

    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            listeners = await nursery.start(partial(trio.serve_tcp, deaf, 0, host="127.0.0.1"))
            port = listeners[0].socket.getsockname()[1]
            process = await trio.lowlevel.open_process(
                cli_command("connect", f"ws://127.0.0.1:{port}/"),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                cwd=ROOT,
            )
            assert process.stdin is not None and process.stdout is not None and process.stderr is not None
            out, err = Output(), Output()
            try:
                async with trio.open_nursery() as pipes:
                    pipes.start_soon(out.drain, process.stdout)
                    pipes.start_soon(err.drain, process.stderr)
                    await process.stdin.send_all(b"ready?\n")
                    await message_seen.wait()
                    process.send_signal(signal.SIGINT)
                    await close_frame_seen.wait()
                    process.send_signal(signal.SIGINT)
                    await process.wait()
                    await process.stdin.aclose()
            finally:
                await stop(process)
            nursery.cancel_scope.cancel()
    assert process.returncode == 130
    assert err.text == ""


async def test_typed_lines_are_repeated_when_stdout_is_not_the_terminal() -> None:
    master, slave = os.openpty()
    try:
        with trio.fail_after(TIMEOUT):
            async with serving(echo_handler) as url:
                process = await trio.lowlevel.open_process(
                    cli_command("connect", url),
                    stdin=slave,
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
                        await err.wait_for(b"connected to")
                        os.write(master, b"typed\n")
                        await out.wait_for(b"< typed")
                        os.write(master, b"\x04")  # Ctrl-D: end of input
                        await process.wait()
                finally:
                    await stop(process)
    finally:
        os.close(master)
        os.close(slave)
    assert process.returncode == 0, (out.text, err.text)
    # The reply may be printed before or after the echo of the sent line.
    assert sorted(out.text.splitlines()) == ["< typed", "> typed"]


async def test_typed_line_is_shown_once_at_a_terminal() -> None:
    """stdin and stdout on one terminal: its echo shows the typed line; no "> ..." copy."""
    master, slave = os.openpty()
    reader = trio.lowlevel.FdStream(os.dup(master))
    screen = bytearray()
    got_reply = trio.Event()

    async def read_screen() -> None:
        try:
            while chunk := await reader.receive_some():
                screen.extend(chunk)
                if b"< typed" in screen:
                    got_reply.set()
        except (trio.BrokenResourceError, OSError):
            pass  # EIO once the terminal's last user is gone

    try:
        with trio.fail_after(TIMEOUT):
            async with serving(echo_handler) as url:
                process = await trio.lowlevel.open_process(
                    cli_command("connect", url), stdin=slave, stdout=slave, stderr=subprocess.PIPE, cwd=ROOT
                )
                assert process.stderr is not None
                err = Output()
                try:
                    async with trio.open_nursery() as nursery:
                        nursery.start_soon(err.drain, process.stderr)
                        nursery.start_soon(read_screen)
                        await err.wait_for(b"connected to")
                        os.write(master, b"typed\n")
                        await got_reply.wait()
                        os.write(master, b"\x04")  # Ctrl-D: end of input
                        await process.wait()
                        nursery.cancel_scope.cancel()
                finally:
                    await stop(process)
    finally:
        await reader.aclose()
        os.close(master)
        os.close(slave)
    assert process.returncode == 0, (screen, err.text)
    text = screen.decode(errors="replace")
    assert "> typed" not in text, text
    assert text.count("typed") == 2, text  # the terminal's echo, and the reply "< typed"


# -- connect: errors ---------------------------------------------------------------


async def test_bad_url() -> None:
    with trio.fail_after(TIMEOUT):
        result = await run_cli("connect", "http://127.0.0.1/")
    assert_one_line_error(result, 2, "invalid URL:")


async def test_refused_port() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))  # bound, not listening: connections are refused
        port = sock.getsockname()[1]
        with trio.fail_after(TIMEOUT):
            result = await run_cli("connect", f"ws://127.0.0.1:{port}/")
    assert_one_line_error(result, 1, f"could not connect to 127.0.0.1:{port}: ")


async def test_rejected_handshake() -> None:
    async def forbid(request: WebSocketRequest) -> None:
        await request.reject(403, body=b"go away")

    with trio.fail_after(TIMEOUT):
        async with serving(echo_handler, process_request=forbid) as url:
            result = await run_cli("connect", url)
    assert_one_line_error(result, 1, "server rejected the connection: HTTP 403")


async def test_not_found_names_the_path() -> None:
    async def not_found(request: WebSocketRequest) -> None:
        await request.reject(404)

    with trio.fail_after(TIMEOUT):
        async with serving(echo_handler, process_request=not_found) as url:
            result = await run_cli("connect", url + "missing?x=1")
    assert_one_line_error(result, 1, "HTTP 404 Not Found: the path /missing was not found")


async def test_plain_http_server_is_not_a_websocket_endpoint() -> None:
    async def web_page(stream: trio.SocketStream) -> None:
        request = b""
        while b"\r\n\r\n" not in request:
            request += await stream.receive_some()
        await stream.send_all(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 5\r\n\r\nhello")
        await stream.aclose()

    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            listeners = await nursery.start(partial(trio.serve_tcp, web_page, 0, host="127.0.0.1"))
            url = f"ws://127.0.0.1:{listeners[0].socket.getsockname()[1]}/"
            result = await run_cli("connect", url)
            nursery.cancel_scope.cancel()
    assert_one_line_error(result, 1, f"{url} is not a WebSocket endpoint: the server answered HTTP 200 OK")


async def test_ws_url_to_a_tls_server_suggests_wss(tls: tuple[ssl.SSLContext, Path]) -> None:
    server_ctx, _ = tls
    with trio.fail_after(TIMEOUT):
        async with serving(echo_handler, server_ctx) as url:
            plain = url.replace("wss://", "ws://")
            result = await run_cli("connect", plain)
    assert_one_line_error(result, 1, f"expects TLS: use {url}")


async def test_wss_url_to_a_plain_server_suggests_ws() -> None:
    with trio.fail_after(TIMEOUT):
        async with serving(echo_handler) as url:
            result = await run_cli("connect", url.replace("ws://", "wss://"))
    assert_one_line_error(result, 1, f"does not speak TLS: use {url}")


async def test_version() -> None:
    with trio.fail_after(TIMEOUT):
        result = await run_cli("--version")
    assert result.returncode == 0, result
    built = "built" if trio_ws.HAS_SPEEDUPS else "not built (pure-Python masking)"
    expected = f"trio-ws {trio_ws.__version__} (Python {platform.python_version()}; compiled speed-up: {built})\n"
    assert result.stdout == expected


@pytest.mark.parametrize("has_speedups", [True, False])
async def test_version_says_whether_the_speedup_was_built(
    has_speedups: bool, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(trio_ws.masking, "HAS_SPEEDUPS", has_speedups)
    with trio.fail_after(TIMEOUT):
        code = await trio.to_thread.run_sync(main, ["--version"])
    assert code == 0
    out = capsys.readouterr().out
    assert out.endswith("compiled speed-up: built)\n" if has_speedups else "not built (pure-Python masking))\n")


async def test_handshake_timeout() -> None:
    async def silent(stream: trio.SocketStream) -> None:
        await trio.sleep_forever()

    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            listeners = await nursery.start(partial(trio.serve_tcp, silent, 0, host="127.0.0.1"))
            port = listeners[0].socket.getsockname()[1]
            result = await run_cli("connect", f"ws://127.0.0.1:{port}/", "--timeout", "0.3")
            nursery.cancel_scope.cancel()
    assert_one_line_error(result, 1, f"timed out connecting to 127.0.0.1:{port}")


async def test_tls_failure_without_cafile(tls: tuple[ssl.SSLContext, Path]) -> None:
    server_ctx, _ = tls
    with trio.fail_after(TIMEOUT):
        async with serving(echo_handler, server_ctx) as url:
            result = await run_cli("connect", url, stdin=b"hi\n")
    assert_one_line_error(result, 1, "TLS handshake failed: certificate verify failed")


@pytest.mark.parametrize("trust", ["--cafile", "--insecure"])
async def test_tls_success(tls: tuple[ssl.SSLContext, Path], trust: str) -> None:
    server_ctx, ca_file = tls
    options = ["--cafile", str(ca_file)] if trust == "--cafile" else ["--insecure"]
    with trio.fail_after(TIMEOUT):
        async with serving(echo_handler, server_ctx) as url:
            result = await run_cli("connect", url, *options, stdin=b"over tls\n")
    assert result.returncode == 0, result
    assert result.stdout == "< over tls\n"


# -- serve ---------------------------------------------------------------------------


async def test_serve_echo_until_sigint() -> None:
    with trio.fail_after(TIMEOUT):
        process = await trio.lowlevel.open_process(
            cli_command("serve", "echo", "--host", "127.0.0.1", "--port", "0"),
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
                await out.wait_for(b"\n")
                line = out.text.splitlines()[0]
                assert line.startswith("serving ws://127.0.0.1:")
                url = line.removeprefix("serving ")
                assert not url.endswith(":0/")
                async with trio_ws.open_websocket_url(url) as ws:
                    await ws.send_message("echo me")
                    assert await ws.get_message() == "echo me"
                    await ws.send_message(b"\x00\x01")
                    assert await ws.get_message() == b"\x00\x01"
                # A client still connected at shutdown is told 1001 (going away).
                async with trio_ws.open_websocket_url(url) as ws:
                    process.send_signal(signal.SIGINT)
                    with pytest.raises(ConnectionClosed) as closed:
                        await ws.get_message()
                    assert closed.value.reason.code == 1001
                await process.wait()
        finally:
            await stop(process)
    assert process.returncode == 0
    assert "Traceback" not in err.text


async def test_serve_tls(tmp_path: Path) -> None:
    ca = trustme.CA()
    pem = tmp_path / "server.pem"
    ca.issue_cert("127.0.0.1").private_key_and_cert_chain_pem.write_to_path(str(pem))
    client_ctx = ssl.create_default_context()
    ca.configure_trust(client_ctx)
    with trio.fail_after(TIMEOUT):
        process = await trio.lowlevel.open_process(
            cli_command("serve", "echo", "--port", "0", "--tls", str(pem), str(pem)),
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
                await out.wait_for(b"\n")
                url = out.text.splitlines()[0].removeprefix("serving ")
                assert url.startswith("wss://127.0.0.1:")
                async with trio_ws.open_websocket_url(url, client_ctx) as ws:
                    await ws.send_message("secure")
                    assert await ws.get_message() == "secure"
                process.send_signal(signal.SIGINT)
                await process.wait()
        finally:
            await stop(process)
    assert process.returncode == 0
    assert "Traceback" not in err.text


async def test_serve_unknown_app() -> None:
    with trio.fail_after(TIMEOUT):
        result = await run_cli("serve", "nope", "--port", "0")
    assert_one_line_error(result, 2, "unknown app: nope (available: broadcast, chat, echo)")


# -- in-process ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "text"),
    [
        ([], "required: COMMAND"),
        (["nope"], "invalid choice"),
        (["connect"], "required: URL"),
        (["connect", "ws://x/", "--ping", "0"], "--ping: must be a positive number"),
        (["connect", "ws://x/", "--header", "no colon"], "--header: expected 'Name: value'"),
        (["connect", "ftp://x/"], "invalid URL: "),
        (["connect", "ws://host:99999/"], "invalid URL: "),
        (["connect", "ws://host/a b"], "it contains a space; write it as %20"),
        (["connect", "ws://host/a\tb"], "contains the control character '\\t'"),
        (["connect", "ws://host/caf\u00e9"], "non-ASCII character 'é'; percent-encode it as %C3%A9"),
        (["connect", "ws://x/", "--idle", "-1"], "--idle: must be 0, a positive number of seconds, or inf"),
        (["connect", "wss://x/", "--cafile", "/nonexistent/ca.pem"], "could not load CA file"),
        (["serve", "echo", "--port", "70000"], "port must be in 0-65535"),
        (["serve", "nope"], "unknown app: nope (available: broadcast, chat, echo)"),
        (["serve", "echo", "--tls", "/nonexistent/cert.pem", "/nonexistent/key.pem"], "could not load TLS certificate"),
    ],
)
async def test_main_usage_errors(argv: list[str], text: str, capsys: pytest.CaptureFixture[str]) -> None:
    with trio.fail_after(TIMEOUT):
        # main() runs its own trio.run, so it cannot run in this loop's thread.
        code = await trio.to_thread.run_sync(main, argv)
    captured = capsys.readouterr()
    assert code == 2
    assert captured.out == ""
    assert captured.err.count("\n") == 1, captured.err
    assert captured.err.startswith("trio-ws: ")
    assert text in captured.err


async def test_main_help(capsys: pytest.CaptureFixture[str]) -> None:
    with trio.fail_after(TIMEOUT):
        code = await trio.to_thread.run_sync(main, ["connect", "--help"])
    assert code == 0
    assert "--no-wait" in capsys.readouterr().out


async def test_format_message() -> None:
    with trio.fail_after(TIMEOUT):
        await trio.lowlevel.checkpoint()
    assert format_message("hi") == "< hi"
    assert format_message("two\nlines") == "< two\n  lines"
    assert format_message(b"") == "< [binary 0 bytes]"
    assert format_message(b"\xff" * 17) == "< [binary 17 bytes] " + " ".join(["ff"] * 16) + " ..."
    assert format_message('{"a":1}', pretty_json=True) == '< {\n    "a": 1\n  }'
    assert format_message("[1,", pretty_json=True) == "< [1,"


# -- --reconnect and --proxy -------------------------------------------------------


async def test_connect_reconnect_opens_the_connection_again_after_a_restart_close() -> None:
    served = 0

    async def restarting(request: WebSocketRequest) -> None:
        nonlocal served
        served += 1
        ws = await request.accept()
        await ws.send_message(f"hello {served}")
        await ws.aclose(1012 if served == 1 else 1000)

    with trio.fail_after(TIMEOUT):
        async with serving(restarting) as url:
            result = await run_cli("connect", "--reconnect", url, keep_stdin_open=True)
    assert result.returncode == 0, result
    assert result.stdout.splitlines() == ["< hello 1", "< hello 2"]
    assert "connection closed by server: 1012" in result.stderr
    assert "retrying in" in result.stderr
    assert f"reconnected to {url}" in result.stderr
    assert served == 2


def test_connect_reconnect_shows_the_waits_by_their_record_attribute_not_their_text(
    capsys: pytest.CaptureFixture[str],
) -> None:
    import logging

    from trio_ws.cli.connect import _RetryNotices

    notices = _RetryNotices(logging.INFO)

    def record(message: str, **extra: object) -> logging.LogRecord:
        made = logging.LogRecord("trio_ws.client", logging.INFO, __file__, 1, message, (), None)
        made.__dict__.update(extra)
        return made

    notices.handle(record("an unrelated line that says retrying in 5 s"))
    notices.handle(record("connecting failed; wait 0.50 s", retry_delay=0.5))
    assert capsys.readouterr().err.splitlines() == ["connecting failed; wait 0.50 s"]


async def test_connect_reconnect_stops_at_a_close_that_is_not_retried() -> None:
    served = 0

    async def banning(request: WebSocketRequest) -> None:
        nonlocal served
        served += 1
        ws = await request.accept()
        await ws.aclose(1008, "banned")

    with trio.fail_after(TIMEOUT):
        async with serving(banning) as url:
            result = await run_cli("connect", "--reconnect", url, keep_stdin_open=True)
    assert result.returncode == 1, result
    assert "connection closed by server: 1008" in result.stderr
    assert "Traceback" not in result.stderr
    assert served == 1


async def test_connect_reconnect_reports_the_first_error_of_a_url_that_never_worked() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with trio.fail_after(TIMEOUT):
        result = await run_cli("connect", "--reconnect", f"ws://127.0.0.1:{port}/")
    assert_one_line_error(result, 1, f"could not connect to 127.0.0.1:{port}")
