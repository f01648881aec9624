"""Periodic pings (or pongs) on a connection: the keepalive loop, owned once.

Connections already keep themselves alive with ``ping_interval`` and
``ping_timeout`` (their keepalive task runs :func:`keep_alive`); use
:func:`heartbeat` when you want the loop in your own nursery, with your own
period, or the unidirectional variant.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import trio

from .close import INTERNAL_ERROR
from .errors import ConnectionClosed
from .options import seconds_or_inf

if TYPE_CHECKING:
    from .connection import WebSocketConnection

__all__ = ["heartbeat", "keep_alive"]


async def heartbeat(
    ws: WebSocketConnection,
    *,
    interval: float,
    timeout: float | None = None,  # noqa: ASYNC109 - a per-ping limit, not the call's
    mode: Literal["ping", "pong"] = "ping",
) -> None:
    """Send a heartbeat every ``interval`` seconds until the connection closes.

    Run it in a nursery beside your own code, for example
    ``nursery.start_soon(partial(heartbeat, ws, interval=5, timeout=5))``.

    Args:
        ws: the connection.
        interval: seconds between heartbeats.
        timeout: in ``"ping"`` mode, seconds to wait for each pong; when one is
            late the connection is failed with 1011 (see
            :meth:`~trio_ws.WebSocketConnection.fail`) and this returns. None
            waits forever.
        mode: ``"ping"`` (bidirectional: the peer must answer, which detects a
            dead peer) or ``"pong"`` (unidirectional, RFC 6455 §5.5.3: an
            unsolicited pong keeps intermediaries from timing out the
            connection and expects no answer).

    Raises:
        ValueError: for a non-positive interval or timeout, or an unknown mode.

    Returns when the connection closes; cancelling it is safe.
    """
    if interval <= 0:
        raise ValueError(f"interval must be > 0, not {interval!r}")
    if timeout is not None and timeout <= 0:
        raise ValueError(f"timeout must be > 0 or None, not {timeout!r}")
    if mode not in ("ping", "pong"):
        raise ValueError(f'mode must be "ping" or "pong", not {mode!r}')
    await keep_alive(ws, interval=interval, timeout=timeout, mode=mode, reason="heartbeat ping timeout")


async def keep_alive(
    ws: WebSocketConnection,
    *,
    interval: float,
    timeout: float | None,  # noqa: ASYNC109 - a per-ping limit, not the call's
    mode: Literal["ping", "pong"] = "ping",
    reason: str,
) -> None:
    """The keepalive loop of :func:`heartbeat` and of ``ping_interval``, arguments unchecked.

    Every ``interval`` seconds, until the connection closes: a ping whose pong
    must come within ``timeout`` (else the connection is failed with 1011 and
    ``reason``), or an unsolicited pong.
    """
    while True:
        with trio.move_on_after(interval):
            await ws.wait_closed()
            return
        if ws.closed is not None:
            return
        try:
            if mode == "pong":
                await ws.pong()
                continue
            with trio.move_on_after(seconds_or_inf(timeout)) as scope:
                await ws.ping()
        except ConnectionClosed:
            return
        if scope.cancelled_caught:
            await ws.fail(INTERNAL_ERROR, reason)
            return
