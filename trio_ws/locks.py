"""A FIFO lock for the connection's hot paths."""

from __future__ import annotations

import trio

__all__ = ["FifoLock"]


class FifoLock:
    """A lock whose uncontended acquire does not yield (the caller's next await will).

    Waiters are served in arrival order: ownership passes straight to the
    task woken by :meth:`release`.
    """

    __slots__ = ("_held", "_lot")

    def __init__(self) -> None:
        self._held = False
        self._lot = trio.lowlevel.ParkingLot()

    async def acquire(self) -> None:
        """Take the lock, waiting in line while another task holds it."""
        if self._held or self._lot:
            await self._lot.park()  # woken with ownership handed over
        else:
            self._held = True

    def release(self) -> None:
        """Hand the lock to the next waiter, or free it."""
        if self._lot:
            self._lot.unpark()  # ownership passes to the woken task
        else:
            self._held = False
