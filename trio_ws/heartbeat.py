"""A heartbeat you run yourself: periodic pings (or pongs) on a connection.

Connections already keep themselves alive with ``ping_interval`` and
``ping_timeout``; use :func:`heartbeat` when you want the loop in your own
nursery, with your own period, or the unidirectional variant.
"""

from __future__ import annotations

from typing import Literal

import trio

from .close import INTERNAL_ERROR
from .connection import WebSocketConnection
from .errors import ConnectionClosed

__all__ = ["heartbeat"]


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
            late the connection is closed with 1011 and this returns. None
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
    while ws.closed is None:
        await trio.sleep(interval)
        try:
            if mode == "pong":
                await ws.pong()
                continue
            with trio.move_on_after(float("inf") if timeout is None else timeout) as scope:
                await ws.ping()
            if scope.cancelled_caught:
                await ws._fail(INTERNAL_ERROR, "heartbeat ping timeout")
                return
        except ConnectionClosed:
            return
