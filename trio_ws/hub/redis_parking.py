"""Short-lived values parked in Redis and taken back once: a connection's state until it returns.

Part of :class:`~trio_ws.hub.redis.RedisBackend` (a mixin of it). A process
parks a value under a name with a time to live (``SET ... PX``); whichever
process is asked for it first takes it (``GETDEL``, atomic in Redis, so two
processes never both get it), and Redis forgets it when its time is up. The
Socket.IO connection-state recovery parks a dropped connection's state here
so that the client may come back to any process
(:mod:`trio_ws.app.socketio_recovery_redis`).

Names: ``P:parked:NAME`` (``P`` the prefix): one key, no hash tag needed on
a cluster. Needs Redis 6.2 or newer (``GETDEL``).
"""

from __future__ import annotations

import math

import trio

from .redis_link import RedisLink

__all__ = ["RedisParking"]


class RedisParking(RedisLink):
    """The parking half of :class:`~trio_ws.hub.redis.RedisBackend` (not used on its own)."""

    _prefix: str

    def parked_key(self, name: str) -> str:
        """The Redis key of the value parked under ``name``."""
        return f"{self._prefix}:parked:{name}"

    async def park(self, name: str, value: str, ttl: float) -> bool:
        """Keep ``value`` under ``name`` for ``ttl`` seconds (replacing any value there).

        Returns:
            True when Redis stored it; False when the link is down or Redis
            did not answer within ``command_timeout`` (nothing is parked).
            Never raises. Cancelling it is safe (the command finishes,
            shielded, within ``command_timeout``); concurrent calls are allowed.
        """
        client = self._client
        if client is None or not self._up:
            return False
        milliseconds = max(1, math.ceil(ttl * 1000))
        try:
            with trio.CancelScope(shield=True), trio.fail_after(self._timeout):
                await client.set(self.parked_key(name), value, px=milliseconds)
        except Exception as exc:
            self._failed(f"parking {name!r}", exc)
            return False
        return True

    async def take_parked(self, name: str) -> str | None:
        """The value parked under ``name``, removed (no other call gets it), or None.

        None also when the link is down or Redis did not answer within
        ``command_timeout``. Never raises; cancelling it is safe (a value
        taken is then lost); concurrent calls are allowed.
        """
        client = self._client
        if client is None or not self._up:
            return None
        try:
            with trio.CancelScope(shield=True), trio.fail_after(self._timeout):
                value = await client.getdel(self.parked_key(name))
        except Exception as exc:
            self._failed(f"taking the value parked as {name!r}", exc)
            return None
        return value if isinstance(value, str) else None
