"""Server-to-client calls: the errors a call raises and the bookkeeping of calls awaiting an answer."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import trio

from ..errors import WebSocketError
from .envelope import EventEnvelope

__all__ = ["CallError", "CallTimeout", "PendingCalls"]

logger = logging.getLogger("trio_ws.app.events")


class CallError(WebSocketError):
    """The peer answered a call (or an emit awaiting its answer) with an error.

    Attributes:
        error_type: the error's type, as the peer named it.
        message: the error's message.
    """

    def __init__(self, error_type: str, message: str) -> None:
        super().__init__(f"{error_type}: {message}")
        self.error_type = error_type
        self.message = message


class CallTimeout(WebSocketError, TimeoutError):
    """The client did not answer a server call in time."""


@dataclass
class _Pending:
    event: trio.Event = field(default_factory=trio.Event)
    data: Any = None
    error: dict[str, str] | None = None
    closed: bool = False


class PendingCalls:
    """The calls of one connection that wait for their answer, by call id.

    :meth:`wait` registers a call and waits for :meth:`answer` (from the
    reader) or :meth:`fail_all` (when the connection ends); the call's
    bookkeeping is removed however the wait ends.
    """

    def __init__(self) -> None:
        self._calls: dict[int, _Pending] = {}
        self._next = 0

    def __len__(self) -> int:
        return len(self._calls)

    def new_id(self) -> int:
        """Register a new call and return its id."""
        self._next += 1
        self._calls[self._next] = _Pending()
        return self._next

    async def wait(
        self,
        call_id: int,
        timeout: float,  # noqa: ASYNC109 - the answer's deadline, as in python-socketio's call()
        what: str,
        closed_error: Callable[[], BaseException],
    ) -> Any:
        """Wait for the answer of ``call_id`` (registered with :meth:`new_id`).

        Returns:
            the answer's data.

        Raises:
            CallTimeout: when no answer arrives within ``timeout`` seconds.
            CallError: when the answer is an error.
            BaseException: ``closed_error()`` when the connection ended first.

        Cancelling is safe: the call is forgotten.
        """
        pending = self._calls[call_id]
        try:
            with trio.move_on_after(timeout) as scope:
                await pending.event.wait()
        finally:
            self.forget(call_id)
        if scope.cancelled_caught:
            raise CallTimeout(f"no answer to {what} within {timeout} s")
        if pending.closed:
            raise closed_error()
        if pending.error is not None:
            raise CallError(pending.error.get("type", "Error"), pending.error.get("message", ""))
        return pending.data

    def forget(self, call_id: int) -> None:
        """Drop the bookkeeping of ``call_id`` (no effect if it is gone)."""
        self._calls.pop(call_id, None)

    def answer(self, envelope: EventEnvelope) -> None:
        """Resolve the call that ``envelope`` (an ``ack``) answers; an unknown id is ignored."""
        assert envelope.id is not None
        pending = self._calls.get(envelope.id)
        if pending is None:
            logger.debug("answer to unknown or expired call %s ignored", envelope.id)
            return
        pending.data = envelope.data
        pending.error = envelope.error
        pending.event.set()

    def fail_all(self) -> None:
        """Wake every waiting call: the connection has ended."""
        for pending in self._calls.values():
            pending.closed = True
            pending.event.set()
