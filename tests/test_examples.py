"""The examples run and do what they say."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import trio

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"


def test_demo_exchanges_messages() -> None:
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / "demo.py")], capture_output=True, text=True, timeout=60, cwd=ROOT
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "client connected (compression negotiated: True)" in out
    assert "got 'hello, trio_ws'" in out
    assert "got b'\\x00\\x01binary'" in out
    assert "(100,000 chars)" in out
    assert "got 'fragmented'" in out
    assert "client closed: <CloseReason code=1000" in out
    assert out.rstrip().endswith("server stopped")


async def test_echo_server_and_client() -> None:
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            server = await nursery.start(
                _start_process, [sys.executable, "-u", str(EXAMPLES / "echo_server.py"), "0"]
            )
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
