"""Reading the benchmarks' JSON output for ``report.py``: the checked schema and the results types.

``bench_core.py --json``, ``bench_hub.py --json``, ``bench_memory.py
--json`` and ``bench_socketio.py --json`` each write one file; ``report.py``
folds them (and the commands that made them) into one ``results.json``, the
single source of every figure in the docs: each benchmark's output under its
own key (``"core"``, ``"hub"``, ``"memory"``, ``"socketio"``), ``null`` when
it did not run.

Adding a benchmark to the report: a ``load_*``/``parse_*`` pair that checks
its JSON (raising :class:`ReportError`), a key in :data:`PARTS` and a field of
:class:`Results`; ``report.py`` runs it under ``--run`` and renders it.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from report_memory import MemoryFormatError, MemoryResults, parse_memory
from report_socketio import SocketIOFormatError, SocketIOResults, parse_socketio

#: The contender this report is about, and the peers its ratios divide by.
SUBJECT = "trio_ws"
PEERS = ("trio-websocket", "websockets.trio")
RAW = "raw"

#: Hub contenders: trio_ws's rows, and the peer of each core peer in the hub tables.
HUB_SUBJECT = "trio_ws-hub"
HUB_PEERS: dict[str, str] = {"trio-websocket": "trio-websocket-loop", "websockets.trio": "websockets.trio-broadcast"}
#: Ratio rows of the hub fan-out table: trio_ws Hub against every peer server.
HUB_FANOUT_PEERS = ("trio-websocket-loop", "websockets-broadcast", "websockets.trio-broadcast")
HUB_MEMORY_PEERS = ("trio-websocket-loop",)
#: Further ratio rows of the fan-out table, each shown when both rows ran: trio_ws against
#: python-socketio measured the same way (across processes through Redis, in one process, and
#: with Socket.IO clients on both sides).
HUB_FANOUT_PAIRS = (
    ("trio_ws-hub-redis", "python-socketio-redis"),
    ("trio_ws-hub-redis-4", "python-socketio-redis-4"),
    ("trio_ws-hub", "python-socketio"),
    # Socket.IO clients on both sides: the trio_ws App against python-socketio (issue 9: at least 1.5).
    ("trio_ws-app-socketio", "python-socketio"),
    # The same, against uvicorn's [standard] configuration (uvloop event loop, httptools parser).
    ("trio_ws-app-socketio", "python-socketio-uvloop"),
)

#: Keys report.py reads from ``bench_core.py --json`` output (the tests check them).
CORE_TOP_KEYS = ("meta", "metrics", "contenders", "summary", "errors", "skipped")
CORE_METRIC_KEYS = ("key", "column", "unit", "higher_is_better")
CORE_CELL_KEYS = ("median", "min", "max", "n")
CORE_META_KEYS = ("date", "python", "platform", "cpu_count", "reps", "settings", "versions")
#: Keys report.py reads from ``bench_hub.py --json`` output.
HUB_TOP_KEYS = ("meta", "contenders", "burst_contenders", "memory_variants", "samples", "errors", "skipped")
HUB_SAMPLE_KEYS = ("table", "contender")
HUB_FANOUT_KEYS = (
    "deliveries_per_second",
    "elapsed_seconds",
    "loop_seconds",
    "server_cpu_seconds",
    "client_cpu_seconds",
)
HUB_MEMORY_KEYS = ("elapsed_seconds", "deliveries_per_second", "call_seconds", "kib_per_member", "members")
HUB_BURST_KEYS = ("peak_bytes_per_client", "deliveries_per_second", "server_peak_rss_kib", "server_rss_before_kib")
#: The one results file of a report (the benchmarks' output and how they ran).
RESULTS_NAME = "results.json"
RESULTS_FORMAT = "trio_ws benchmark results 1"
#: The benchmarks' keys in the results file, in the report's order.
PARTS = ("core", "hub", "memory", "socketio")


class ReportError(Exception):
    """A problem with the input or a benchmark run; reported as one line."""


# --------------------------------------------------------------------------- #
# Reading results
# --------------------------------------------------------------------------- #


@dataclass(frozen=True)
class Cell:
    """Median, min, max and number of repetitions of one contender in one scenario."""

    median: float
    minimum: float
    maximum: float
    n: int

    @classmethod
    def of(cls, values: Sequence[float]) -> Cell | None:
        """Summarise raw values; ``None`` when there are none."""
        if not values:
            return None
        return cls(statistics.median(values), min(values), max(values), len(values))


@dataclass(frozen=True)
class MetricInfo:
    """One core metric: a column of the table and a chart."""

    key: str
    column: str
    unit: str
    higher_is_better: bool


@dataclass
class CoreResults:
    """What ``bench_core.py --json`` wrote."""

    path: Path
    meta: dict[str, Any]
    metrics: list[MetricInfo]
    #: Contender name -> label, in the benchmark's order.
    contenders: dict[str, str]
    cells: dict[str, dict[str, Cell]]
    errors: list[dict[str, Any]]
    skipped: dict[str, str]
    #: The JSON as the benchmark wrote it.
    raw: dict[str, Any] = field(default_factory=dict)

    def cell(self, metric: str, contender: str) -> Cell | None:
        """The summary of one contender in one metric, if it was measured."""
        return self.cells.get(metric, {}).get(contender)

    def ratio(self, metric: str, top: str, bottom: str) -> float | None:
        """``top``'s median divided by ``bottom``'s, if both were measured."""
        return _ratio(self.cell(metric, top), self.cell(metric, bottom))

    def failed(self, metric: str, contender: str) -> bool:
        """Whether a measurement of ``contender`` in ``metric`` failed."""
        return any(e.get("metric") == metric and e.get("contender") == contender for e in self.errors)


@dataclass
class HubResults:
    """What ``bench_hub.py --json`` wrote."""

    path: Path
    meta: dict[str, Any]
    #: Fan-out server name -> label, in the benchmark's order.
    contenders: dict[str, str]
    #: In-memory variant name -> label.
    memory_variants: dict[str, str]
    samples: list[dict[str, Any]]
    errors: list[dict[str, Any]]
    skipped: dict[str, str]
    #: Burst-table server name -> label (empty in results from before that table).
    burst_contenders: dict[str, str] = field(default_factory=dict)
    #: The JSON as the benchmark wrote it.
    raw: dict[str, Any] = field(default_factory=dict)

    def cell(self, table: str, name: str, key: str) -> Cell | None:
        """Median, min and max of ``key`` over ``name``'s samples in ``table``."""
        return Cell.of(
            [float(s[key]) for s in self.samples if s["table"] == table and s["contender"] == name and key in s]
        )

    def ratio(self, table: str, top: str, bottom: str, key: str) -> float | None:
        """``top``'s median of ``key`` divided by ``bottom``'s."""
        return _ratio(self.cell(table, top, key), self.cell(table, bottom, key))

    def failed(self, table: str, name: str) -> bool:
        """Whether a measurement of ``name`` in ``table`` failed."""
        return any(e.get("table") == table and e.get("contender") == name for e in self.errors)


def _ratio(top: Cell | None, bottom: Cell | None) -> float | None:
    if top is None or bottom is None or bottom.median == 0:
        return None
    return top.median / bottom.median


def _load_json(path: Path, what: str) -> dict[str, Any]:
    """Parse a results file, with a clear message for every way it can be wrong."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ReportError(f"{what} results file not found: {path}") from None
    except OSError as exc:
        raise ReportError(f"cannot read {what} results file {path}: {exc.strerror or exc}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ReportError(
            f"{what} results file {path} is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})"
        ) from None
    if not isinstance(data, dict):
        raise ReportError(f"{what} results file {path} holds a JSON {type(data).__name__}, not an object")
    return data


def _require(data: dict[str, Any], keys: Iterable[str], path: Path, where: str, script: str) -> None:
    missing = [key for key in keys if key not in data]
    if missing:
        raise ReportError(
            f"{path} does not look like the --json output of {script}: "
            f"{where} has no {', '.join(repr(k) for k in missing)}"
        )


def load_core(path: Path) -> CoreResults:
    """Read and check the output of ``bench_core.py --json``.

    Raises:
        ReportError: when the file is missing, not JSON, or not in that format.
    """
    return parse_core(_load_json(path, "core"), path)


def parse_core(data: dict[str, Any], path: Path) -> CoreResults:
    """Check and read ``bench_core.py``'s JSON (``path`` names it in errors).

    Raises:
        ReportError: when it is not in that format.
    """
    script = "bench_core.py"
    _require(data, CORE_TOP_KEYS, path, "the top level", script)
    _require(data["meta"], CORE_META_KEYS, path, "'meta'", script)
    metrics = []
    for key, info in data["metrics"].items():
        _require(info, CORE_METRIC_KEYS, path, f"metric {key!r}", script)
        metrics.append(MetricInfo(key, str(info["column"]), str(info["unit"]), bool(info["higher_is_better"])))
    if not metrics:
        raise ReportError(f"{path} holds no metrics: the benchmark measured nothing")
    cells: dict[str, dict[str, Cell]] = {}
    for metric, per_contender in data["summary"].items():
        for contender, cell in per_contender.items():
            _require(cell, CORE_CELL_KEYS, path, f"summary cell {metric}/{contender}", script)
            cells.setdefault(metric, {})[contender] = Cell(
                float(cell["median"]), float(cell["min"]), float(cell["max"]), int(cell["n"])
            )
    contenders = {str(name): str(label) for name, label in data["contenders"].items()}
    # A skipped contender is missing from "contenders"; keep it in the table as "skipped".
    for name in data["skipped"]:
        contenders.setdefault(str(name), str(name))
    return CoreResults(
        path, data["meta"], metrics, contenders, cells, list(data["errors"]), dict(data["skipped"]), data
    )


def load_hub(path: Path) -> HubResults:
    """Read and check the output of ``bench_hub.py --json``.

    Raises:
        ReportError: when the file is missing, not JSON, or not in that format.
    """
    return parse_hub(_load_json(path, "hub"), path)


def parse_hub(data: dict[str, Any], path: Path) -> HubResults:
    """Check and read ``bench_hub.py``'s JSON (``path`` names it in errors).

    Raises:
        ReportError: when it is not in that format.
    """
    script = "bench_hub.py"
    _require(data, HUB_TOP_KEYS, path, "the top level", script)
    _require(data["meta"], ("date", "python", "platform", "cpu_count", "settings", "versions"), path, "'meta'", script)
    for i, sample in enumerate(data["samples"]):
        _require(sample, HUB_SAMPLE_KEYS, path, f"sample {i}", script)
        table_keys = {"fanout": HUB_FANOUT_KEYS, "memory": HUB_MEMORY_KEYS, "burst": HUB_BURST_KEYS}.get(
            sample["table"], ()
        )
        _require(sample, table_keys, path, f"sample {i} ({sample['table']})", script)
    return HubResults(
        path,
        data["meta"],
        {str(k): str(v) for k, v in data["contenders"].items()},
        {str(k): str(v) for k, v in data["memory_variants"].items()},
        list(data["samples"]),
        list(data["errors"]),
        dict(data["skipped"]),
        {str(k): str(v) for k, v in data["burst_contenders"].items()},
        data,
    )


def load_memory(path: Path) -> MemoryResults:
    """Read and check the output of ``bench_memory.py --json``.

    Raises:
        ReportError: when the file is missing, not JSON, or not in that format.
    """
    return parse_memory_part(_load_json(path, "memory"), path)


def parse_memory_part(data: dict[str, Any], path: Path) -> MemoryResults:
    """Check and read ``bench_memory.py``'s JSON (``path`` names it in errors).

    Raises:
        ReportError: when it is not in that format.
    """
    try:
        return parse_memory(data)
    except MemoryFormatError as exc:
        raise ReportError(f"{path} {exc}") from None


def load_socketio(path: Path) -> SocketIOResults:
    """Read and check the output of ``bench_socketio.py --json``.

    Raises:
        ReportError: when the file is missing, not JSON, or not in that format.
    """
    return parse_socketio_part(_load_json(path, "Socket.IO"), path)


def parse_socketio_part(data: dict[str, Any], path: Path) -> SocketIOResults:
    """Check and read ``bench_socketio.py``'s JSON (``path`` names it in errors).

    Raises:
        ReportError: when it is not in that format.
    """
    try:
        return parse_socketio(data)
    except SocketIOFormatError as exc:
        raise ReportError(f"{path} {exc}") from None


@dataclass
class Results:
    """Everything a results file holds: each benchmark's output (None when it did not run) and how they ran."""

    core: CoreResults | None = None
    hub: HubResults | None = None
    memory: MemoryResults | None = None
    socketio: SocketIOResults | None = None
    runs: list[BenchRun] = field(default_factory=list)
    made_with: str = ""
    generated: str = ""

    def parts(self) -> dict[str, dict[str, Any] | None]:
        """Each benchmark's output as it wrote it, under its key in the results file."""
        return {name: None if (part := getattr(self, name)) is None else part.raw for name in PARTS}


def load_results(path: Path) -> Results:
    """Read a report's ``results.json``.

    Raises:
        ReportError: when the file is missing, not JSON, or not a results file.
    """
    data = _load_json(path, "report")
    if data.get("format") != RESULTS_FORMAT:
        raise ReportError(f"{path} is not a {RESULTS_NAME} written by report.py (no 'format': {RESULTS_FORMAT!r})")
    _require(data, ("made_with", "generated", "runs"), path, "the top level", "report.py")
    return Results(
        core=parse_core(data["core"], path) if data.get("core") is not None else None,
        hub=parse_hub(data["hub"], path) if data.get("hub") is not None else None,
        memory=parse_memory_part(data["memory"], path) if data.get("memory") is not None else None,
        socketio=parse_socketio_part(data["socketio"], path) if data.get("socketio") is not None else None,
        runs=[BenchRun(**run) for run in data["runs"]],
        made_with=str(data["made_with"]),
        generated=str(data["generated"]),
    )


@dataclass
class BenchRun:
    """One benchmark command run by ``--run``."""

    command: list[str]
    returncode: int
    seconds: float
    load_before: float
    load_after: float


def _num(value: Any) -> str:
    """An integer with thousands separators; anything else as it is."""
    return f"{value:,}" if isinstance(value, int) else str(value)


def _plural(count: Any, noun: str) -> str:
    """``3 repetitions``, ``1 repetition``."""
    return f"{_num(count)} {noun}{'' if count == 1 else 's'}"
