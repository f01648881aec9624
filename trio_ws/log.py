"""Loggers: ``trio_ws.client``, ``trio_ws.server`` and a per-connection adapter."""

from __future__ import annotations

import itertools
import logging
from collections.abc import MutableMapping
from typing import Any

__all__ = ["client_logger", "server_logger", "ConnectionLogger", "next_connection_id"]

client_logger = logging.getLogger("trio_ws.client")
server_logger = logging.getLogger("trio_ws.server")

_ids = itertools.count(1)


def next_connection_id() -> int:
    """A process-wide increasing id, used to tell connections apart in logs."""
    return next(_ids)


class ConnectionLogger(logging.LoggerAdapter):  # type: ignore[type-arg]
    """Prefixes each record with the connection id and adds it as ``conn_id``."""

    def __init__(self, logger: logging.Logger, conn_id: int) -> None:
        # LoggerAdapter.__init__ would store an ``extra`` dict: made per
        # record instead (see :attr:`extra`), as an idle connection logs
        # nothing and the dict would cost it about 200 bytes.
        self.logger = logger
        self.conn_id = conn_id

    @property
    def extra(self) -> dict[str, object]:  # type: ignore[override]
        """The record extras: ``{"conn_id": ...}``."""
        return {"conn_id": self.conn_id}

    def process(self, msg: Any, kwargs: MutableMapping[str, Any]) -> tuple[Any, MutableMapping[str, Any]]:
        """Add the connection id to the message and to the record's extras."""
        kwargs.setdefault("extra", {}).update(self.extra or {})
        return f"[conn {self.conn_id}] {msg}", kwargs
