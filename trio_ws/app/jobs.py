"""Background jobs of an event connection, each belonging to a namespace.

gevent-socketio's namespaces ``spawn`` jobs and kill them when the client
leaves the namespace (``kill_local_jobs``); :class:`NamespaceJobs` does the
same with Trio cancel scopes. The jobs run in the connection's task nursery
(so they also end when the connection closes); each has its own cancel
scope, filed under its namespace, and leaving the namespace cancels them.
A job's exception is logged and handed to the namespace's error hook; the
connection stays open.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import trio

from ..errors import ConnectionClosed

if TYPE_CHECKING:
    from .registry import HandlerRegistry
    from .session import EventConnection

__all__ = ["NamespaceJobs"]

logger = logging.getLogger("trio_ws.app.events")


class NamespaceJobs:
    """The running jobs of one connection, by namespace."""

    def __init__(self, conn: EventConnection, registry: HandlerRegistry) -> None:
        self._conn = conn
        self._registry = registry
        self._scopes: dict[str, set[trio.CancelScope]] = {}

    def start(self, namespace: str, function: Callable[..., Awaitable[Any]], args: tuple[Any, ...]) -> None:
        """Start ``function(*args)`` as a job of ``namespace``."""
        scope = trio.CancelScope()
        # Filed before the task starts: leaving the namespace at once still cancels it.
        self._scopes.setdefault(namespace, set()).add(scope)
        name = getattr(function, "__name__", repr(function))
        self._conn.websocket.start_soon(self._run, namespace, name, scope, function, args, name=name)

    def count(self, namespace: str) -> int:
        """How many jobs of ``namespace`` are running (or about to start)."""
        return len(self._scopes.get(namespace, ()))

    def cancel(self, namespace: str) -> None:
        """Cancel every job of ``namespace``."""
        for scope in self._scopes.pop(namespace, ()):
            scope.cancel()

    async def _run(
        self,
        namespace: str,
        name: str,
        scope: trio.CancelScope,
        function: Callable[..., Awaitable[Any]],
        args: tuple[Any, ...],
    ) -> None:
        try:
            with scope:
                await function(*args)
        except ConnectionClosed:
            pass
        except Exception as error:
            logger.error("job %r of connection %s in %r failed", name, self._conn.id, namespace, exc_info=error)
            await self._registry.run_error_hooks(self._conn, namespace, name, error)
        finally:
            jobs = self._scopes.get(namespace)
            if jobs is not None:
                jobs.discard(scope)
