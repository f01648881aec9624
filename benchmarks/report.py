"""Benchmark report: Markdown tables and PNG charts from the benchmarks' JSON output.

Build a report from results you already have::

    .venv/bin/python benchmarks/report.py --core results/core.json --hub results/hub.json --out results/report

or run the quick benchmarks first and build the report from them (a few
minutes; this is how the report in the docs is made)::

    .venv/bin/python benchmarks/report.py --run --out docs/_static/benchmarks

The output directory receives, always under the same names:

* ``report.md``: the Markdown report (every scenario, every contender's
  median, the ratio rows, the min - max ranges, the hub tables, the commands
  that made it and the machine's load);
* ``report.inc``: the same tables as a reStructuredText fragment, for
  ``.. include::`` in the Sphinx docs (not a ``.rst`` file, so Sphinx does not
  take it for a page of its own);
* ``ratios.png``: trio_ws's median divided by each peer's, per scenario;
* ``core_<metric>.png``: one bar chart per core metric (``core_rtt.png``,
  ``core_pipelined.png``, ``core_bulk.png``, ``core_handshake.png``,
  ``core_idle_memory.png``, ``core_idle_memory_deflate.png``);
* ``hub_fanout.png`` and ``hub_memory.png`` when hub results are given;
* ``results.json``: the one results file every figure above comes from (both
  benchmarks' raw output, the commands that made them, the machine and its
  load); ``--results DIR/results.json`` rebuilds everything from it, byte for
  byte;
* ``performance.inc`` and ``hub_burst.inc``: the figures quoted on the
  performance page and on the hub page, with the machine, its load and the
  date, from the same results.

Charts left over from an earlier report in the same directory under those
names (for example a scenario not measured this time) are removed.

Errors (a missing or malformed JSON file, a benchmark that wrote no results)
are one line on stderr and exit status 2; Ctrl-C exits with 130.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shlex
import statistics
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import matplotlib

# Non-interactive backend, chosen before pyplot is imported: no display needed.
matplotlib.use("Agg")

import matplotlib.pyplot as plt
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

HERE = Path(__file__).resolve().parent
CORE_SCRIPT = HERE / "bench_core.py"
HUB_SCRIPT = HERE / "bench_hub.py"

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
#: The one results file of a report (both benchmarks' output and how they ran).
RESULTS_NAME = "results.json"
RESULTS_FORMAT = "trio_ws benchmark results 1"

SUBJECT_COLOR = "#e8590c"
PEER_COLOR = "#8fa3b8"
RATIO_COLORS = ("#1f77b4", "#2ca02c")
DPI = 110


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


def load_results(path: Path) -> tuple[CoreResults | None, HubResults | None, list[BenchRun], str, str]:
    """Read a report's ``results.json``: (core, hub, benchmark runs, report command, generation date).

    Raises:
        ReportError: when the file is missing, not JSON, or not a results file.
    """
    data = _load_json(path, "report")
    if data.get("format") != RESULTS_FORMAT:
        raise ReportError(f"{path} is not a {RESULTS_NAME} written by report.py (no 'format': {RESULTS_FORMAT!r})")
    _require(data, ("made_with", "generated", "runs"), path, "the top level", "report.py")
    core = parse_core(data["core"], path) if data.get("core") is not None else None
    hub = parse_hub(data["hub"], path) if data.get("hub") is not None else None
    runs = [BenchRun(**run) for run in data["runs"]]
    return core, hub, runs, str(data["made_with"]), str(data["generated"])


# --------------------------------------------------------------------------- #
# Tables
# --------------------------------------------------------------------------- #


def fmt(value: float | None, scale: float = 1.0) -> str:
    """Format a measurement the way the benchmarks' own tables do."""
    if value is None:
        return "n/a"
    value *= scale
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    if abs(value) >= 100:
        return f"{value:.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def fmt_ratio(value: float | None) -> str:
    """A ratio as ``1.86x``, or ``n/a``."""
    return "n/a" if value is None else f"{value:.2f}x"


def fmt_range(cell: Cell | None, scale: float = 1.0) -> str:
    """``min - max`` of a cell, or ``n/a``."""
    if cell is None:
        return "n/a"
    return f"{fmt(cell.minimum, scale)} - {fmt(cell.maximum, scale)}"


@dataclass
class Table:
    """A table rendered both as Markdown and as a reStructuredText list-table.

    Cells are plain text; rows whose index is in ``bold`` are set in bold.
    """

    header: list[str]
    rows: list[list[str]] = field(default_factory=list)
    bold: set[int] = field(default_factory=set)

    def add(self, row: list[str], *, bold: bool = False) -> None:
        """Append a row."""
        if len(row) != len(self.header):
            raise ValueError(f"row has {len(row)} cells, header {len(self.header)}")
        if bold:
            self.bold.add(len(self.rows))
        self.rows.append(row)

    def markdown(self) -> list[str]:
        """The table as Markdown lines (first column left-aligned, the others right)."""

        def cell(text: str, strong: bool) -> str:
            text = text.replace("|", "\\|")
            return f"**{text}**" if strong and text else text

        lines = ["| " + " | ".join(cell(h, False) for h in self.header) + " |"]
        lines.append("| :-- | " + " | ".join("--:" for _ in self.header[1:]) + " |")
        for i, row in enumerate(self.rows):
            lines.append("| " + " | ".join(cell(c, i in self.bold) for c in row) + " |")
        return lines

    def rst(self) -> list[str]:
        """The table as a reStructuredText ``list-table`` directive."""

        def cell(text: str, strong: bool) -> str:
            text = rst_escape(text)
            return f"**{text}**" if strong and text else text

        lines = [".. list-table::", "   :header-rows: 1", "   :stub-columns: 1", ""]
        for i, row in enumerate([self.header, *self.rows]):
            strong = (i - 1) in self.bold
            for j, text in enumerate(row):
                bullet = "   * - " if j == 0 else "     - "
                lines.append((bullet + cell(text, strong)).rstrip())
        return lines


def rst_escape(text: str) -> str:
    """Escape the characters reStructuredText would read as markup."""
    for char in ("\\", "*", "`", "|", "_"):
        text = text.replace(char, "\\" + char)
    return text


def _contender_cell(core: CoreResults, metric: str, name: str, cell: Cell | None) -> str:
    if cell is not None:
        return fmt(cell.median)
    if name in core.skipped:
        return "skipped"
    if core.failed(metric, name):
        return "failed"
    return "n/a"


def core_tables(core: CoreResults) -> tuple[Table, Table]:
    """The medians with the ratio rows, and the min - max ranges."""
    header = ["Contender", *(m.column for m in core.metrics)]
    medians = Table(header)
    ranges = Table(header)
    for name, label in core.contenders.items():
        cells = [core.cell(m.key, name) for m in core.metrics]
        strong = name == SUBJECT
        medians.add(
            [label, *(_contender_cell(core, m.key, name, c) for m, c in zip(core.metrics, cells, strict=True))],
            bold=strong,
        )
        ranges.add([label, *(fmt_range(c) for c in cells)], bold=strong)
    for peer in PEERS:
        medians.add(
            [f"{SUBJECT} / {peer}", *(fmt_ratio(core.ratio(m.key, SUBJECT, peer)) for m in core.metrics)], bold=True
        )
    return medians, ranges


def hub_fanout_table(hub: HubResults) -> Table:
    """The fan-out table with ratio rows against every peer server."""
    table = Table(["Server", "Deliveries/s", "min - max", "Last receipt, ms", "Fan-out calls, ms", "Server CPU, s"])
    for name, label in hub.contenders.items():
        rate = hub.cell("fanout", name, "deliveries_per_second")

        def median(key: str, scale: float = 1.0, name: str = name) -> str:
            cell = hub.cell("fanout", name, key)
            return fmt(None if cell is None else cell.median, scale)

        first = fmt(rate.median) if rate is not None else ("failed" if hub.failed("fanout", name) else "n/a")
        table.add(
            [
                label,
                first,
                fmt_range(rate),
                median("elapsed_seconds", 1000),
                median("loop_seconds", 1000),
                median("server_cpu_seconds"),
            ],
            bold=name.startswith(SUBJECT),
        )
    for name in hub.skipped:
        table.add([name, "skipped", "", "", "", ""])
    if HUB_SUBJECT in hub.contenders:
        for peer in HUB_FANOUT_PEERS:
            if peer in hub.contenders:
                ratio = hub.ratio("fanout", HUB_SUBJECT, peer, "deliveries_per_second")
                label = f"{hub.contenders[HUB_SUBJECT]} / {hub.contenders[peer]}"
                table.add([label, fmt_ratio(ratio), "", "", "", ""], bold=True)
    return table


def hub_burst_table(hub: HubResults) -> Table:
    """The burst table: the server's peak memory per member while a burst is delivered."""
    table = Table(["Server", "Peak bytes/member", "min - max", "Peak growth, MiB", "Deliveries/s"])
    for name, label in hub.burst_contenders.items():
        per_member = hub.cell("burst", name, "peak_bytes_per_client")
        samples = [s for s in hub.samples if s["table"] == "burst" and s["contender"] == name]
        growth = Cell.of([(s["server_peak_rss_kib"] - s["server_rss_before_kib"]) / 1024 for s in samples])
        rate = hub.cell("burst", name, "deliveries_per_second")
        first = fmt(per_member.median) if per_member else ("failed" if hub.failed("burst", name) else "n/a")
        table.add(
            [
                label,
                first,
                fmt_range(per_member),
                fmt(growth.median if growth else None),
                fmt(rate.median if rate else None),
            ],
            bold=name == HUB_SUBJECT,
        )
    return table


def burst_sentence(hub: HubResults) -> str | None:
    """The trio_ws Hub's burst figure against its documented bound, as one sentence (no markup)."""
    cell = hub.cell("burst", HUB_SUBJECT, "peak_bytes_per_client")
    bound = hub.meta.get("burst_bound_bytes")
    settings = hub.meta.get("settings", {})
    if cell is None or bound is None:
        return None
    verdict = "within" if cell.median <= bound else "OVER"
    return (
        f"A burst of 100 x 1,024-byte messages to {_num(settings.get('burst_clients', '?'))} members raised the "
        f"trio_ws Hub server's peak memory by {fmt(cell.median)} bytes per member (median of "
        f"{_plural(cell.n, 'repetition')}, range {fmt_range(cell)}): {verdict} the documented bound of "
        f"{_num(bound)} bytes."
    )


def hub_memory_table(hub: HubResults) -> Table:
    """The in-memory table (one room, many members, one process)."""
    table = Table(["Variant", "All received, ms", "min - max, ms", "Deliveries/s", "Fan-out call, ms", "KiB/member"])
    for name, label in hub.memory_variants.items():
        elapsed = hub.cell("memory", name, "elapsed_seconds")

        def median(key: str, scale: float = 1.0, name: str = name) -> str:
            cell = hub.cell("memory", name, key)
            return fmt(None if cell is None else cell.median, scale)

        first = fmt(elapsed.median, 1000) if elapsed else ("failed" if hub.failed("memory", name) else "n/a")
        table.add(
            [
                label,
                first,
                fmt_range(elapsed, 1000),
                median("deliveries_per_second"),
                median("call_seconds", 1000),
                median("kib_per_member"),
            ],
            bold=name == HUB_SUBJECT,
        )
    if HUB_SUBJECT in hub.memory_variants:
        for peer in HUB_MEMORY_PEERS:
            if peer in hub.memory_variants:
                time_ratio = hub.ratio("memory", HUB_SUBJECT, peer, "elapsed_seconds")
                rate_ratio = hub.ratio("memory", HUB_SUBJECT, peer, "deliveries_per_second")
                kib_ratio = hub.ratio("memory", HUB_SUBJECT, peer, "kib_per_member")
                label = f"{hub.memory_variants[HUB_SUBJECT]} / {hub.memory_variants[peer]}"
                table.add(
                    [label, fmt_ratio(time_ratio), "", fmt_ratio(rate_ratio), "", fmt_ratio(kib_ratio)], bold=True
                )
    return table


# --------------------------------------------------------------------------- #
# Charts
# --------------------------------------------------------------------------- #


def _num(value: Any) -> str:
    """An integer with thousands separators; anything else as it is."""
    return f"{value:,}" if isinstance(value, int) else str(value)


def _plural(count: Any, noun: str) -> str:
    """``3 repetitions``, ``1 repetition``."""
    return f"{_num(count)} {noun}{'' if count == 1 else 's'}"


def _wrap(label: str, width: int = 16) -> str:
    return "\n".join(textwrap.wrap(label, width, break_long_words=False, break_on_hyphens=False)) or label


def _save(fig: Figure, path: Path) -> None:
    fig.tight_layout()
    # No "Software" entry: the same results give the same bytes whatever matplotlib version drew them.
    fig.savefig(path, dpi=DPI, metadata={"Software": None})
    plt.close(fig)


def _bars(
    ax: Axes,
    labels: list[str],
    cells: list[Cell],
    highlight: list[bool],
    scale: float = 1.0,
) -> None:
    """Bars of the medians with min - max error bars and the value on top."""
    positions = list(range(len(cells)))
    medians = [c.median * scale for c in cells]
    below = [(c.median - c.minimum) * scale for c in cells]
    above = [(c.maximum - c.median) * scale for c in cells]
    colors = [SUBJECT_COLOR if h else PEER_COLOR for h in highlight]
    ax.bar(positions, medians, color=colors, edgecolor="#333333", linewidth=0.6, zorder=2)
    spread = any(c.n > 1 for c in cells)
    if spread:
        ax.errorbar(positions, medians, yerr=[below, above], fmt="none", ecolor="#222222", capsize=4, zorder=3)
    for x, cell, median in zip(positions, cells, medians, strict=True):
        # The value sits above the error bar, where it cannot collide with it.
        top = cell.maximum * scale if spread else median
        ax.annotate(
            fmt(median),
            (x, top),
            xytext=(0, 3),
            textcoords="offset points",
            ha="center",
            va="bottom",
            fontsize=8,
            fontweight="bold" if colors[x] == SUBJECT_COLOR else "normal",
        )
    ax.set_xticks(positions, [_wrap(label) for label in labels], fontsize=8)
    for tick, strong in zip(ax.get_xticklabels(), highlight, strict=True):
        if strong:
            tick.set_fontweight("bold")
            tick.set_color(SUBJECT_COLOR)
    ax.yaxis.set_major_formatter(FuncFormatter(lambda value, _pos: f"{value:,.10g}"))
    ax.grid(axis="y", color="#dddddd", zorder=0)
    ax.set_axisbelow(True)
    top = max((c.maximum * scale for c in cells), default=1.0)
    ax.set_ylim(0, top * 1.18 if top > 0 else 1.0)


def _note(fig: Figure, text: str) -> None:
    """A small grey note under the x axis (or axes) of the figure."""
    if text:
        fig.supxlabel(text, fontsize=7, color="#555555")


def _reps_note(cells: Iterable[Cell]) -> str:
    counts = sorted({c.n for c in cells})
    if not counts:
        return ""
    n = "/".join(str(c) for c in counts)
    if counts[-1] > 1:
        return f"median of {n} repetitions; error bars: min - max"
    return "1 repetition (no spread)"


def core_chart(core: CoreResults, metric: MetricInfo, path: Path) -> bool:
    """One scenario: contenders on the x axis, raw TCP as a dashed line.

    Returns:
        whether a chart was written (``False`` when nothing was measured).
    """
    names = [n for n in core.contenders if n != RAW and core.cell(metric.key, n) is not None]
    raw = core.cell(metric.key, RAW)
    if not names and raw is None:
        return False
    cells = [c for c in (core.cell(metric.key, n) for n in names) if c is not None]
    fig, ax = plt.subplots(figsize=(7.0, 4.2))
    if cells:
        _bars(ax, [core.contenders[n] for n in names], cells, [n == SUBJECT for n in names])
    better = "higher is better" if metric.higher_is_better else "lower is better"
    ax.set_title(f"{metric.column} ({better})", fontsize=11)
    ax.set_ylabel(metric.unit)
    if raw is not None:
        kind = "ceiling" if metric.higher_is_better else "floor"
        ax.axhline(
            raw.median,
            color="#444444",
            linestyle="--",
            linewidth=1.2,
            label=f"raw trio TCP ({kind}): {fmt(raw.median)} {metric.unit}",
            zorder=4,
        )
        low, high = ax.get_ylim()
        ax.set_ylim(low, max(high, raw.median * 1.15))
        ax.legend(loc="best", fontsize=8, framealpha=0.9)
    _note(fig, _reps_note(cells))
    _save(fig, path)
    return True


@dataclass(frozen=True)
class RatioGroup:
    """One scenario of the summary chart: trio_ws's ratio against each core peer."""

    label: str
    higher_is_better: bool
    #: Core peer name -> ratio (``None``: not measured).
    ratios: dict[str, float | None]


def ratio_groups(core: CoreResults | None, hub: HubResults | None) -> list[RatioGroup]:
    """Every scenario's ratios, core metrics first, then the hub tables."""
    groups = []
    if core is not None:
        for m in core.metrics:
            groups.append(RatioGroup(m.column, m.higher_is_better, {p: core.ratio(m.key, SUBJECT, p) for p in PEERS}))
    if hub is not None:
        if HUB_SUBJECT in hub.contenders:
            ratios = {
                p: hub.ratio("fanout", HUB_SUBJECT, HUB_PEERS[p], "deliveries_per_second")
                if HUB_PEERS[p] in hub.contenders
                else None
                for p in PEERS
            }
            groups.append(RatioGroup("Hub fan-out deliveries/s", True, ratios))
        if HUB_SUBJECT in hub.memory_variants:
            ratios = {
                p: hub.ratio("memory", HUB_SUBJECT, HUB_PEERS[p], "deliveries_per_second")
                if HUB_PEERS[p] in hub.memory_variants
                else None
                for p in PEERS
            }
            groups.append(RatioGroup("Hub in-memory deliveries/s", True, ratios))
    return groups


def ratio_chart(groups: list[RatioGroup], path: Path, hub: bool) -> None:
    """Summary: bars from 1.0 to trio_ws / peer on a log scale, per scenario."""
    fig, ax = plt.subplots(figsize=(max(7.0, 1.15 * len(groups) + 2), 4.8))
    width = 0.38
    values = [r for g in groups for r in g.ratios.values() if r is not None and r > 0]
    low = min([*values, 1.0]) / 1.6
    high = max([*values, 1.0]) * 1.6
    ax.set_yscale("log")
    ax.set_ylim(low, high)
    for k, peer in enumerate(PEERS):
        offset = (k - (len(PEERS) - 1) / 2) * width
        label = f"vs {peer}"
        if hub:
            label += f" (hub: {HUB_PEERS[peer]})"
        xs, heights = [], []
        for i, group in enumerate(groups):
            ratio = group.ratios.get(peer)
            x = i + offset
            if ratio is None or ratio <= 0:
                ax.text(x, 1.0, "n/a", ha="center", va="bottom", fontsize=7, color="#777777")
                continue
            xs.append(x)
            heights.append(ratio - 1.0)
            ax.text(
                x,
                ratio * (1.04 if ratio >= 1 else 0.96),
                f"{ratio:.2f}x",
                ha="center",
                va="bottom" if ratio >= 1 else "top",
                fontsize=7,
            )
        ax.bar(xs, heights, width=width * 0.95, bottom=1.0, color=RATIO_COLORS[k], label=label, zorder=2)
    ax.axhline(1.0, color="black", linewidth=1.2, zorder=3)
    ticks = [t for t in (0.1, 0.2, 0.25, 0.5, 0.75, 1, 1.5, 2, 3, 5, 10, 20, 50, 100) if low <= t <= high]
    ax.yaxis.set_major_locator(FixedLocator(ticks))
    ax.yaxis.set_minor_locator(NullLocator())
    ax.set_yticklabels([f"{t:g}x" for t in ticks])
    ax.set_xticks(
        range(len(groups)),
        [_wrap(g.label, 14) + ("\n(\u2191 better)" if g.higher_is_better else "\n(\u2193 better)") for g in groups],
        fontsize=8,
    )
    ax.set_xlim(-0.6, len(groups) - 0.4)
    ax.set_ylabel(f"{SUBJECT} median / peer median")
    ax.set_title(f"{SUBJECT} against its peers (1.0 = equal)", fontsize=11)
    ax.grid(axis="y", color="#dddddd", zorder=0)
    ax.set_axisbelow(True)
    ax.legend(loc="upper right", fontsize=8, framealpha=0.9)
    if not groups:
        ax.text(0.5, 0.5, "no scenario measured", transform=ax.transAxes, ha="center")
    _save(fig, path)


def hub_fanout_chart(hub: HubResults, path: Path) -> bool:
    """Deliveries/s per fan-out server."""
    names = [n for n in hub.contenders if hub.cell("fanout", n, "deliveries_per_second") is not None]
    if not names:
        return False
    cells = [c for c in (hub.cell("fanout", n, "deliveries_per_second") for n in names) if c is not None]
    settings = hub.meta.get("settings", {})
    fig, ax = plt.subplots(figsize=(max(7.0, 1.5 * len(names)), 4.4))
    _bars(ax, [hub.contenders[n] for n in names], cells, [n.startswith(SUBJECT) for n in names])
    ax.set_title(
        f"Fan-out: {settings.get('size', '?')}-byte message to {_num(settings.get('clients', '?'))} clients, "
        f"{settings.get('messages', '?')} times (higher is better)",
        fontsize=10,
    )
    ax.set_ylabel("deliveries/s")
    _note(fig, _reps_note(cells))
    _save(fig, path)
    return True


def hub_memory_chart(hub: HubResults, path: Path) -> bool:
    """Two panels: time to reach every member, and memory per member."""
    names = [n for n in hub.memory_variants if hub.cell("memory", n, "elapsed_seconds") is not None]
    if not names:
        return False
    members = hub.meta.get("settings", {}).get("members", "?")
    fig, axes = plt.subplots(1, 2, figsize=(9.5, 4.4))
    panels = (
        ("elapsed_seconds", 1000.0, "ms", f"One message to {_num(members)} members: all received"),
        ("kib_per_member", 1.0, "KiB/member", "Memory per member (RSS growth)"),
    )
    for ax, (key, scale, unit, title) in zip(axes, panels, strict=True):
        cells = [c for c in (hub.cell("memory", n, key) for n in names) if c is not None]
        _bars(ax, [hub.memory_variants[n] for n in names], cells, [n == HUB_SUBJECT for n in names], scale)
        ax.set_title(f"{title}\n(lower is better)", fontsize=9)
        ax.set_ylabel(unit)
    _note(fig, _reps_note(c for c in (hub.cell("memory", n, "elapsed_seconds") for n in names) if c is not None))
    _save(fig, path)
    return True


# --------------------------------------------------------------------------- #
# Running the benchmarks
# --------------------------------------------------------------------------- #


@dataclass
class BenchRun:
    """One benchmark command run by ``--run``."""

    command: list[str]
    returncode: int
    seconds: float
    load_before: float
    load_after: float


def display_command(command: Sequence[str]) -> str:
    """A command as a shell line, with paths under the current directory made relative."""
    cwd = Path.cwd()
    parts = []
    for part in command:
        candidate = Path(part)
        if candidate.is_absolute():
            with contextlib.suppress(ValueError):
                part = str(candidate.relative_to(cwd))
        parts.append(part)
    return shlex.join(parts)


def run_benchmark(command: list[str], results: Path) -> BenchRun:
    """Run one benchmark in a subprocess; its progress goes to our stderr.

    Raises:
        ReportError: when it wrote no results file.
    """
    results.unlink(missing_ok=True)
    print(f"running: {display_command(command)}", file=sys.stderr, flush=True)
    load_before = os.getloadavg()[0]
    start = time.monotonic()
    # The benchmark's own table (its stdout) goes to our stderr with its progress.
    proc = subprocess.Popen(command, stdout=sys.stderr.fileno() if _has_fileno(sys.stderr) else None)
    try:
        returncode = proc.wait()
    except BaseException:
        # Ctrl-C reaches the child too, which stops its servers and exits: give it time to, then
        # SIGTERM (which it handles the same way), then SIGKILL.
        for stop in (None, proc.terminate, proc.kill):
            if stop is not None:
                stop()
            try:
                proc.wait(timeout=30)
                break
            except subprocess.TimeoutExpired:
                continue
        raise
    seconds = time.monotonic() - start
    if returncode == 130:
        raise KeyboardInterrupt
    if not results.exists():
        raise ReportError(f"{display_command(command)} exited with status {returncode} and wrote no results")
    return BenchRun(command, returncode, seconds, load_before, os.getloadavg()[0])


def _has_fileno(stream: Any) -> bool:
    try:
        stream.fileno()
    except (AttributeError, OSError, ValueError):
        return False
    return True


# --------------------------------------------------------------------------- #
# The report
# --------------------------------------------------------------------------- #


def _load_line(meta: dict[str, Any], what: str) -> str | None:
    load = meta.get("load_average")
    if not isinstance(load, dict):
        return None
    return f"{load.get('before', 0):.1f} before / {load.get('after', 0):.1f} after the {what}"


def _max_load(core: CoreResults | None, hub: HubResults | None, runs: list[BenchRun]) -> float:
    loads = [r.load_before for r in runs] + [r.load_after for r in runs]
    for result in (core, hub):
        if result is not None and isinstance(result.meta.get("load_average"), dict):
            loads += [float(v) for v in result.meta["load_average"].values()]
    return max(loads, default=0.0)


def _cpu_count(core: CoreResults | None, hub: HubResults | None) -> int:
    for result in (core, hub):
        if result is not None and result.meta.get("cpu_count"):
            return int(result.meta["cpu_count"])
    return os.cpu_count() or 1


@dataclass
class Report:
    """Everything one report shows, rendered as Markdown and as reStructuredText."""

    core: CoreResults | None
    hub: HubResults | None
    made_with: str
    generated: str
    runs: list[BenchRun] = field(default_factory=list)
    #: Chart file names written, in the order the report shows them.
    core_charts: list[tuple[MetricInfo, str]] = field(default_factory=list)
    hub_charts: list[tuple[str, str]] = field(default_factory=list)

    def machine_lines(self) -> list[str]:
        """Date, machine, versions and load, as sentences (no markup)."""
        cpus = _cpu_count(self.core, self.hub)
        lines = []
        first = self.core or self.hub
        meta = first.meta if first is not None else {}
        dates = []
        if self.core is not None:
            dates.append(f"core benchmark {self.core.meta.get('date', '?')}")
        if self.hub is not None:
            dates.append(f"hub benchmark {self.hub.meta.get('date', '?')}")
        lines.append(f"Measured: {', '.join(dates)} (UTC); report generated {self.generated}.")
        model = next((r.meta["cpu_model"] for r in (self.core, self.hub) if r and r.meta.get("cpu_model")), None)
        cpu = f"{model}, {cpus} CPUs" if model else f"{cpus} CPUs (model not recorded)"
        lines.append(f"Machine: {cpu}, {meta.get('platform', '?')}, Python {meta.get('python', '?')}.")
        versions: dict[str, str] = {}
        for result in (self.core, self.hub):
            if result is not None:
                versions.update(result.meta.get("versions", {}))
        if versions:
            lines.append("Versions: " + ", ".join(f"{k} {v}" for k, v in versions.items()) + ".")
        loads = []
        if self.core is not None:
            loads.append(_load_line(self.core.meta, "core benchmark"))
        if self.hub is not None:
            loads.append(_load_line(self.hub.meta, "hub benchmark"))
        known = [x for x in loads if x]
        if known:
            peak = _max_load(self.core, self.hub, self.runs)
            sentence = f"1-minute load average: {'; '.join(known)} ({cpus} CPUs)."
            if peak > 0.5 * cpus:
                sentence += (
                    " The machine was shared with other work while this ran, so absolute numbers are lower and "
                    "noisier than on an idle machine; the ratios, from contenders alternating within each "
                    "repetition, suffer less, but look at the min - max ranges before trusting a difference of "
                    "a few percent."
                )
            lines.append(sentence)
        else:
            lines.append("Load average: not recorded in the results.")
        return lines

    def command_lines(self) -> list[str]:
        """The benchmark commands, one shell line each."""
        lines = []
        for run in self.runs:
            lines.append(display_command(run.command))
        return lines

    def run_notes(self) -> list[str]:
        """Exit statuses and durations of the benchmark runs."""
        notes = []
        for run in self.runs:
            name = Path(run.command[1]).name
            status = (
                "exit status 0" if run.returncode == 0 else f"exit status {run.returncode} (some measurements failed)"
            )
            notes.append(f"{name}: {status}, {run.seconds:.0f} s")
        return notes

    def _core_intro(self) -> str:
        assert self.core is not None
        meta = self.core.meta
        settings = meta.get("settings", {})
        return (
            f"Median of {_plural(meta.get('reps', '?'), 'repetition')} of {settings.get('duration', '?')} s per cell, "
            "contenders alternating within each repetition; echo servers in separate processes. "
            f"Memory: server RSS growth per idle connection, {settings.get('connections', '?')} connections. "
            f"Ratio rows divide {SUBJECT}'s median by the other library's: above 1 is better for throughput, "
            "below 1 is better for memory."
        )

    def _hub_intro(self) -> str:
        assert self.hub is not None
        s = self.hub.meta.get("settings", {})
        reps = s.get("reps", "?")
        return (
            f"A {s.get('size', '?')}-byte message fanned out to {_num(s.get('clients', '?'))} clients, "
            f"{s.get('messages', '?')} times; deliveries/s = clients x messages / time from the trigger to the "
            f"last client's last receipt; median of {_plural(reps, 'repetition')}, fresh processes "
            "each. Ratio rows: trio_ws Hub's deliveries/s divided by the other server's (above 1 is better)."
        )

    def _burst_intro(self) -> str:
        assert self.hub is not None
        clients = self.hub.meta.get("settings", {}).get("burst_clients", "?")
        return (
            f"100 messages of 1,024 bytes fanned out at once to {_num(clients)} clients, same processes as the "
            "fan-out table: the server's peak RSS during the round minus its RSS before it, per client. "
            "The server's kernel socket buffers are not part of its RSS."
        )

    def performance_rst(self) -> str:
        """The figures of the performance page: machine, load, date and the core table (reStructuredText)."""
        out = [".. Generated by benchmarks/report.py from results.json; edits are overwritten.", ""]
        out += [f"| {rst_escape(line)}" for line in self.machine_lines()]
        core_runs = [line for line in self.command_lines() if "bench_core.py" in line]
        if core_runs:
            out += ["", "Measured with:", "", ".. code:: sh", "", *(f"   {line}" for line in core_runs)]
        if self.core is not None:
            medians, _ = core_tables(self.core)
            out += ["", rst_escape(self._core_intro()), "", *medians.rst()]
        return "\n".join(out).rstrip() + "\n"

    def hub_burst_rst(self) -> str:
        """The burst figure for the hub page, with where and when it was measured (reStructuredText)."""
        out = [".. Generated by benchmarks/report.py from results.json; edits are overwritten.", ""]
        sentence = burst_sentence(self.hub) if self.hub is not None else None
        out.append(rst_escape(sentence or "No burst measurement in the results."))
        if self.hub is not None:
            model = self.hub.meta.get("cpu_model") or "CPU model not recorded"
            load = _load_line(self.hub.meta, "hub benchmark") or "load not recorded"
            out += [
                "",
                rst_escape(
                    f"Measured {self.hub.meta.get('date', '?')} (UTC) by benchmarks/bench_hub.py on {model}, "
                    f"{self.hub.meta.get('cpu_count', '?')} CPUs; 1-minute load average {load}."
                ),
            ]
        return "\n".join(out).rstrip() + "\n"

    def results_json(self) -> str:
        """The one results file: everything this report shows is computed from it."""
        payload = {
            "format": RESULTS_FORMAT,
            "made_with": self.made_with,
            "generated": self.generated,
            "runs": [asdict(run) for run in self.runs],
            "core": self.core.raw if self.core is not None else None,
            "hub": self.hub.raw if self.hub is not None else None,
        }
        return json.dumps(payload, indent=1) + "\n"

    def _memory_intro(self) -> str:
        assert self.hub is not None
        members = self.hub.meta.get("settings", {}).get("members", "?")
        return (
            f"{_num(members)} members of one room in one process over in-memory streams: time until all received "
            "one message, and RSS growth per member (both ends of every connection). Ratio rows: trio_ws Hub "
            "divided by the other variant (time and memory: below 1 is better; deliveries/s: above 1 is better)."
        )

    def _problems(self) -> list[str]:
        lines = []
        for name, result in (("core", self.core), ("hub", self.hub)):
            if result is None:
                continue
            if result.meta.get("interrupted"):
                lines.append(f"{name}: interrupted; the tables hold the repetitions that finished")
            for contender, reason in result.skipped.items():
                lines.append(f"{name}: {contender} skipped: {reason}")
            for error in result.errors:
                where = error.get("metric") or error.get("table")
                lines.append(f"{name}: {error.get('contender')} failed in {where}: {error.get('error')}")
        return lines

    def markdown(self) -> str:
        """The whole report as Markdown."""
        out = [
            "# trio_ws benchmark report",
            "",
            "<!-- Generated by benchmarks/report.py from the benchmarks' JSON output; edits are overwritten. -->",
            "",
            f"Made with `{self.made_with}`.",
        ]
        if self.runs:
            out += ["", "The benchmark commands it ran:", "", "```sh", *self.command_lines(), "```", ""]
            out += [f"- {n}" for n in self.run_notes()]
        out += [""]
        out += [f"{line}  " for line in self.machine_lines()]
        out += ["", f"![{SUBJECT} against its peers](ratios.png)", ""]
        if self.core is not None:
            medians, ranges = core_tables(self.core)
            out += ["## Core benchmark", "", self._core_intro(), "", *medians.markdown(), ""]
            out += ["Range (min - max over the repetitions):", "", *ranges.markdown(), ""]
            for metric, name in self.core_charts:
                out += [f"![{metric.column}]({name})", ""]
        if self.hub is not None:
            if self.hub.contenders or self.hub.skipped:
                out += ["## Hub fan-out", "", self._hub_intro(), "", *hub_fanout_table(self.hub).markdown(), ""]
            if self.hub.burst_contenders:
                out += ["## Hub burst memory", "", self._burst_intro(), "", *hub_burst_table(self.hub).markdown(), ""]
                sentence = burst_sentence(self.hub)
                out += [sentence, ""] if sentence else []
            if self.hub.memory_variants:
                out += ["## Hub in memory", "", self._memory_intro(), "", *hub_memory_table(self.hub).markdown(), ""]
            for title, name in self.hub_charts:
                out += [f"![{title}]({name})", ""]
        problems = self._problems()
        if problems:
            out += ["## Skipped and failed", "", *(f"- {p}" for p in problems), ""]
        return "\n".join(out).rstrip() + "\n"

    def rst(self) -> str:
        """The tables, commands and machine notes as a reStructuredText fragment (no section titles)."""
        out = [
            ".. Generated by benchmarks/report.py from the benchmarks' JSON output; edits are overwritten.",
            "",
            f"Made with ``{self.made_with}``.",
        ]
        if self.runs:
            out += ["", "The benchmark commands it ran:", "", ".. code:: sh", ""]
            out += [f"   {line}" for line in self.command_lines()]
            out += [""] + [f"* {rst_escape(n)}" for n in self.run_notes()]
        out += [""]
        out += [f"| {rst_escape(line)}" for line in self.machine_lines()]
        if self.core is not None:
            medians, ranges = core_tables(self.core)
            out += ["", ".. rubric:: Core benchmark", "", rst_escape(self._core_intro()), "", *medians.rst()]
            out += ["", "Range (min - max over the repetitions):", "", *ranges.rst()]
        if self.hub is not None:
            if self.hub.contenders or self.hub.skipped:
                out += ["", ".. rubric:: Hub fan-out", "", rst_escape(self._hub_intro()), ""]
                out += hub_fanout_table(self.hub).rst()
            if self.hub.burst_contenders:
                out += ["", ".. rubric:: Hub burst memory", "", rst_escape(self._burst_intro()), ""]
                out += hub_burst_table(self.hub).rst()
                sentence = burst_sentence(self.hub)
                out += ["", rst_escape(sentence)] if sentence else []
            if self.hub.memory_variants:
                out += ["", ".. rubric:: Hub in memory", "", rst_escape(self._memory_intro()), ""]
                out += hub_memory_table(self.hub).rst()
        problems = self._problems()
        if problems:
            out += ["", ".. rubric:: Skipped and failed", ""] + [f"* {rst_escape(p)}" for p in problems]
        return "\n".join(out).rstrip() + "\n"


#: Chart names this script writes; stale ones in the output directory are removed.
def _is_chart(name: str) -> bool:
    return name.endswith(".png") and (name == "ratios.png" or name.startswith(("core_", "hub_")))


def build_report(
    out: Path,
    core: CoreResults | None,
    hub: HubResults | None,
    made_with: str,
    runs: list[BenchRun] | None = None,
    generated: str | None = None,
) -> Report:
    """Write results.json, report.md, report.inc, the docs fragments and the charts into ``out``."""
    if core is None and hub is None:
        raise ReportError("nothing to report: give --core, --hub or --run")
    out.mkdir(parents=True, exist_ok=True)
    report = Report(
        core,
        hub,
        made_with,
        generated or datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        list(runs or []),
    )
    written = {"ratios.png"}
    if core is not None:
        for metric in core.metrics:
            name = f"core_{metric.key}.png"
            if core_chart(core, metric, out / name):
                report.core_charts.append((metric, name))
                written.add(name)
    if hub is not None:
        if hub_fanout_chart(hub, out / "hub_fanout.png"):
            report.hub_charts.append(("Hub fan-out", "hub_fanout.png"))
            written.add("hub_fanout.png")
        if hub_memory_chart(hub, out / "hub_memory.png"):
            report.hub_charts.append(("Hub in memory", "hub_memory.png"))
            written.add("hub_memory.png")
    ratio_chart(ratio_groups(core, hub), out / "ratios.png", hub is not None)
    for stale in out.iterdir():
        if _is_chart(stale.name) and stale.name not in written:
            stale.unlink()
    (out / "report.md").write_text(report.markdown(), encoding="utf-8")
    (out / "report.inc").write_text(report.rst(), encoding="utf-8")
    (out / "performance.inc").write_text(report.performance_rst(), encoding="utf-8")
    (out / "hub_burst.inc").write_text(report.hub_burst_rst(), encoding="utf-8")
    (out / RESULTS_NAME).write_text(report.results_json(), encoding="utf-8")
    return report


# --------------------------------------------------------------------------- #
# Command line
# --------------------------------------------------------------------------- #


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(
        description="Markdown tables and PNG charts from the benchmarks' --json output.",
        epilog="Extra benchmark options need the = form, for example --core-args='--only rtt,memory'.",
    )
    parser.add_argument("--core", type=Path, metavar="CORE.json", help="output of bench_core.py --json")
    parser.add_argument("--hub", type=Path, metavar="HUB.json", help="output of bench_hub.py --json")
    parser.add_argument(
        "--results", type=Path, metavar="results.json", help="rebuild a report from its results.json (byte for byte)"
    )
    parser.add_argument("--out", type=Path, required=True, metavar="DIR", help="directory for report.md and charts")
    parser.add_argument(
        "--run",
        action="store_true",
        help="run bench_core.py --quick (and bench_hub.py --quick) first, writing DIR/core.json and DIR/hub.json",
    )
    parser.add_argument("--no-hub", action="store_true", help="with --run: do not run bench_hub.py")
    parser.add_argument("--core-args", default="", metavar="ARGS", help="with --run: more options for bench_core.py")
    parser.add_argument("--hub-args", default="", metavar="ARGS", help="with --run: more options for bench_hub.py")
    args = parser.parse_args(argv)
    if args.run and (args.core or args.hub or args.results):
        parser.error("--run writes its own results; do not combine it with --core, --hub or --results")
    if args.results and (args.core or args.hub):
        parser.error("--results holds both benchmarks' results; do not combine it with --core or --hub")
    if not args.run and args.core is None and args.hub is None and args.results is None:
        parser.error("give --core (and optionally --hub), --results, or --run")
    if not args.run and (args.no_hub or args.core_args or args.hub_args):
        parser.error("--no-hub, --core-args and --hub-args only apply with --run")
    return args


def main(argv: list[str] | None = None) -> int:
    """Build the report; exit status 2 on bad input, 130 when interrupted."""
    arguments = sys.argv[1:] if argv is None else argv
    made_with = display_command([sys.executable, str(Path(__file__).resolve()), *arguments])
    args = parse_args(arguments)
    try:
        runs: list[BenchRun] = []
        core: CoreResults | None = None
        hub: HubResults | None = None
        if args.run:
            args.out.mkdir(parents=True, exist_ok=True)
            core_json = (args.out / "core.json").resolve()
            command = [sys.executable, str(CORE_SCRIPT), "--quick", *shlex.split(args.core_args)]
            runs.append(run_benchmark([*command, "--json", str(core_json)], core_json))
            core = load_core(core_json)
            hub_json = (args.out / "hub.json").resolve()
            if not args.no_hub and HUB_SCRIPT.exists():
                command = [sys.executable, str(HUB_SCRIPT), "--quick", *shlex.split(args.hub_args)]
                runs.append(run_benchmark([*command, "--json", str(hub_json)], hub_json))
                hub = load_hub(hub_json)
            else:
                hub_json.unlink(missing_ok=True)
            build_report(args.out, core, hub, made_with, runs)
            # Their content now lives in results.json, the report's one results file.
            core_json.unlink()
            hub_json.unlink(missing_ok=True)
        elif args.results is not None:
            core, hub, runs, made_with, generated = load_results(args.results)
            build_report(args.out, core, hub, made_with, runs, generated)
        else:
            core = load_core(args.core) if args.core is not None else None
            hub = load_hub(args.hub) if args.hub is not None else None
            build_report(args.out, core, hub, made_with, runs)
    except ReportError as exc:
        print(f"report.py: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("report.py: interrupted", file=sys.stderr)
        return 130
    print(args.out / "report.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
