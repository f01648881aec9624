"""Observers of a stream of events that can never hold up the producer."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from typing import Generic, TypeVar

import trio

__all__ = ["Watchers", "WATCH_BUFFER"]

T = TypeVar("T")

#: How many events a watcher may have unread before new ones are dropped for it.
WATCH_BUFFER = 256


class Watchers(Generic[T]):
    """A set of watchers, each with a bounded buffer.

    :meth:`notify` never waits: an event that finds a watcher's buffer full is
    dropped for that watcher, so a watcher that stops reading costs the
    producer nothing.
    """

    def __init__(self, buffer: int = WATCH_BUFFER) -> None:
        self._buffer = buffer
        self._channels: set[trio.MemorySendChannel[T]] = set()

    def __bool__(self) -> bool:
        return bool(self._channels)

    @asynccontextmanager
    async def watch(self) -> AsyncIterator[trio.MemoryReceiveChannel[T]]:
        """Receive the events notified while the block runs."""
        send, receive = trio.open_memory_channel[T](self._buffer)
        self._channels.add(send)
        try:
            yield receive
        finally:
            self._channels.discard(send)
            send.close()

    def notify(self, event: T) -> None:
        """Hand ``event`` to every watcher that has room for it."""
        for channel in list(self._channels):
            with suppress(trio.WouldBlock, trio.BrokenResourceError, trio.ClosedResourceError):
                channel.send_nowait(event)
