"""Child processes of the CLI and example tests: collect what they write, stop them (Ctrl-C or kill)."""

from __future__ import annotations

import signal
import subprocess
import sys
from dataclasses import dataclass

import trio


class Output:
    """Collects what a process writes to one pipe; lets a test wait for some text."""

    def __init__(self) -> None:
        self.data = bytearray()
        self.ended = False
        self._lot = trio.lowlevel.ParkingLot()

    async def drain(self, stream: trio.abc.ReceiveStream) -> None:
        """Read ``stream`` until EOF."""
        while chunk := await stream.receive_some():
            self.data += chunk
            self._lot.unpark_all()
        self.ended = True
        self._lot.unpark_all()

    async def wait_for(self, needle: bytes) -> None:
        """Wait until ``needle`` has been written."""
        while needle not in self.data:
            assert not self.ended, f"output ended without {needle!r}: {bytes(self.data)!r}"
            await self._lot.park()

    async def wait_ended(self) -> None:
        """Wait until the pipe is closed (the process exited)."""
        while not self.ended:
            await self._lot.park()

    async def lines(self, count: int) -> list[str]:
        """Wait for ``count`` complete lines; return them."""
        while self.data.count(b"\n") < count:
            assert not self.ended, f"output ended before {count} lines: {bytes(self.data)!r}"
            await self._lot.park()
        return self.text.splitlines()[:count]

    @property
    def text(self) -> str:
        """Everything written so far, decoded (undecodable bytes replaced)."""
        return self.data.decode(errors="replace")


@dataclass
class Finished:
    """What a finished process left behind."""

    returncode: int
    stdout: str
    stderr: str


def cli_command(*args: str) -> list[str]:
    """The command that runs trio_ws's CLI (``python -m trio_ws``) with ``args``."""
    return [sys.executable, "-m", "trio_ws", *args]


async def stop(process: trio.Process) -> None:
    """Kill ``process`` (one the test started) if it still runs, and reap it; safe in a cancelled scope."""
    with trio.CancelScope(shield=True):
        if process.returncode is None:
            process.kill()
        await process.wait()


async def interrupt_when_ready(
    command: list[str], ready: bytes, *, cwd: str | None = None, ready_on_stderr: bool = False
) -> Finished:
    """Start ``command``, wait until it prints ``ready``, send it SIGINT, wait for it to exit.

    The process is started and, if it outlives the test, killed by its own
    handle. Readiness is read from the process's output, never guessed with a
    sleep.
    """
    process = await trio.lowlevel.open_process(
        command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=cwd
    )
    assert process.stdout is not None and process.stderr is not None
    out, err = Output(), Output()
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(out.drain, process.stdout)
            nursery.start_soon(err.drain, process.stderr)
            try:
                await (err if ready_on_stderr else out).wait_for(ready)
            except AssertionError as failure:
                raise AssertionError(f"{failure}; stderr: {err.text}") from None
            process.send_signal(signal.SIGINT)
            await process.wait()
    finally:
        await stop(process)
    assert process.returncode is not None
    return Finished(process.returncode, out.text, err.text)
