"""The Socket.IO part of the benchmark report: ``bench_socketio.py``'s JSON, checked and read.

``bench_socketio.py --json`` writes it; ``report.py`` keeps it under
``"socketio"`` in ``results.json`` and renders it (``report_tables.py``:
the echo table, and the Socket.IO rows of the hub fan-out table) in
``report.md``, ``report.inc`` and ``socketio.inc``, which the performance
page includes.

This module needs no plotting library.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

#: Keys the report reads from ``bench_socketio.py --json`` output (the tests check them).
SOCKETIO_TOP_KEYS = ("meta", "contenders", "scenarios", "samples", "errors", "skipped")
SOCKETIO_META_KEYS = ("date", "python", "platform", "cpu_count", "reps", "settings", "versions")
SOCKETIO_SAMPLE_KEYS = (
    "scenario",
    "contender",
    "round_trips_per_second",
    "server_cpu_us_per_round_trip",
    "client_cpu_us_per_round_trip",
)
#: The Socket.IO servers compared (echo, and the Socket.IO rows of the fan-out table).
SOCKETIO_SUBJECT = "trio_ws-app-socketio"
SOCKETIO_PEER = "python-socketio"
#: python-socketio under uvicorn with uvloop and httptools (``uvicorn[standard]``); results
#: measured before this contender existed lack it, and the report leaves its rows out.
SOCKETIO_PEER_UVLOOP = "python-socketio-uvloop"
#: The peers trio_ws's App is divided by, one ratio row each when both ran.
SOCKETIO_PEERS = (SOCKETIO_PEER, SOCKETIO_PEER_UVLOOP)


class SocketIOFormatError(ValueError):
    """``bench_socketio.py``'s JSON lacks a key the report reads."""


def _require(data: dict[str, Any], keys: Iterable[str], where: str) -> None:
    missing = [key for key in keys if key not in data]
    if missing:
        raise SocketIOFormatError(
            f"does not look like the --json output of bench_socketio.py: {where} has no "
            + ", ".join(repr(k) for k in missing)
        )


@dataclass
class SocketIOResults:
    """What ``bench_socketio.py --json`` wrote."""

    meta: dict[str, Any]
    #: Server name -> label, in the benchmark's order.
    contenders: dict[str, str]
    #: Scenario -> its title.
    scenarios: dict[str, str]
    samples: list[dict[str, Any]]
    errors: list[dict[str, Any]]
    skipped: dict[str, str]
    #: The JSON as the benchmark wrote it.
    raw: dict[str, Any] = field(default_factory=dict)

    def values(self, scenario: str, name: str, key: str) -> list[float]:
        """``key`` of every sample of ``name`` in ``scenario``."""
        return [float(s[key]) for s in self.samples if s["scenario"] == scenario and s["contender"] == name]

    def failed(self, scenario: str, name: str) -> bool:
        """Whether a measurement of ``name`` in ``scenario`` failed."""
        return any(e.get("scenario") == scenario and e.get("contender") == name for e in self.errors)


def parse_socketio(data: dict[str, Any]) -> SocketIOResults:
    """Check and read ``bench_socketio.py``'s JSON.

    Raises:
        SocketIOFormatError: when it is not in that format.
    """
    _require(data, SOCKETIO_TOP_KEYS, "the top level")
    _require(data["meta"], SOCKETIO_META_KEYS, "'meta'")
    for i, sample in enumerate(data["samples"]):
        _require(sample, SOCKETIO_SAMPLE_KEYS, f"sample {i}")
    return SocketIOResults(
        data["meta"],
        {str(k): str(v) for k, v in data["contenders"].items()},
        {str(k): str(v) for k, v in data["scenarios"].items()},
        list(data["samples"]),
        list(data["errors"]),
        dict(data["skipped"]),
        data,
    )
