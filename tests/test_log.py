"""The per-connection logger adapter: the connection id on every record, no dict kept per connection."""

from __future__ import annotations

import logging

import pytest

from trio_ws.log import ConnectionLogger, next_connection_id, server_logger


def test_records_carry_the_connection_id(caplog: pytest.LogCaptureFixture) -> None:
    conn_id = next_connection_id()
    logger = ConnectionLogger(server_logger, conn_id)
    with caplog.at_level(logging.INFO, logger="trio_ws.server"):
        logger.info("hello %d", 5)
    (record,) = caplog.records
    assert record.getMessage() == f"[conn {conn_id}] hello 5"
    assert record.conn_id == conn_id  # type: ignore[attr-defined]
    assert logger.extra == {"conn_id": conn_id}


def test_an_idle_adapter_holds_no_extra_dict() -> None:
    # The extras are made per record: an idle connection's adapter keeps
    # only the logger and the id (docs/topics/performance.rst).
    logger = ConnectionLogger(server_logger, next_connection_id())
    assert sorted(vars(logger)) == ["conn_id", "logger"]
