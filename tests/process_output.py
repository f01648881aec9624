"""Collect what a child process writes to a pipe, for the CLI tests."""

from __future__ import annotations

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
