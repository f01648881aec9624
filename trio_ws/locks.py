"""A FIFO lock for the connection's hot paths."""

from __future__ import annotations

import trio

__all__ = ["FifoLock", "LazyEvent", "LazyParkingLot"]


class LazyParkingLot:
    """A :class:`trio.lowlevel.ParkingLot` made when a task first parks.

    An idle connection has several places to wait and waits in few of them;
    a parking lot costs about 250 bytes, this wrapper a fifth of that.
    """

    __slots__ = ("_lot",)

    def __init__(self) -> None:
        self._lot: trio.lowlevel.ParkingLot | None = None

    def __bool__(self) -> bool:
        return bool(self._lot)

    async def park(self) -> None:
        """Wait until unparked."""
        if self._lot is None:
            self._lot = trio.lowlevel.ParkingLot()
        await self._lot.park()

    def unpark(self) -> None:
        """Wake the longest-waiting task, if any."""
        if self._lot:
            self._lot.unpark()

    def unpark_all(self) -> None:
        """Wake every waiting task."""
        if self._lot:
            self._lot.unpark_all()


class LazyEvent:
    """A :class:`trio.Event` whose Event is made only when a task must wait for it.

    ``is_set``, ``set`` and ``wait`` behave as the Event's do (``wait`` on a
    set flag is a checkpoint); an idle connection holds one of these, not an
    Event and its set of waiters.
    """

    __slots__ = ("_event", "_flag")

    def __init__(self) -> None:
        self._flag = False
        self._event: trio.Event | None = None

    def is_set(self) -> bool:
        """True once :meth:`set` was called."""
        return self._flag

    def set(self) -> None:
        """Set the flag and wake every waiter."""
        self._flag = True
        if self._event is not None:
            self._event.set()

    async def wait(self) -> None:
        """Wait until the flag is set (a checkpoint if it already is)."""
        if self._flag:
            await trio.lowlevel.checkpoint()
            return
        if self._event is None:
            self._event = trio.Event()
        await self._event.wait()


class FifoLock:
    """A lock whose uncontended acquire does not yield (the caller's next await will).

    Waiters are served in arrival order: ownership passes straight to the
    task woken by :meth:`release`.
    """

    __slots__ = ("_held", "_lot")

    def __init__(self) -> None:
        self._held = False
        # Made when a task first waits (a connection holds three such locks
        # and rarely contends them); held directly rather than through a
        # LazyParkingLot, which would cost one more object per lock.
        self._lot: trio.lowlevel.ParkingLot | None = None

    async def acquire(self) -> None:
        """Take the lock, waiting in line while another task holds it."""
        if self._held or self._lot:
            if self._lot is None:
                self._lot = trio.lowlevel.ParkingLot()
            await self._lot.park()  # woken with ownership handed over
        else:
            self._held = True

    def release(self) -> None:
        """Hand the lock to the next waiter, or free it."""
        if self._lot:
            self._lot.unpark()  # ownership passes to the woken task
        else:
            self._held = False
