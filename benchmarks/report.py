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
* ``results.json``: the one results file every figure above comes from (the
  benchmarks' raw output, the commands that made them, the machine and its
  load); ``--results DIR/results.json`` rebuilds everything from it, byte for
  byte;
* ``performance.inc`` and ``hub_burst.inc``: the figures quoted on the
  performance page and on the hub page, with the machine, its load and the
  date, from the same results;
* ``memory.inc`` and ``compression.inc``: the idle-memory figures of the
  performance page (``bench_memory.py``: RSS and tracemalloc per idle
  connection, allocation sites, object types) and the codec sizes of the
  compression page, with the machine, its load and the date;
* ``socketio.inc``: the Socket.IO figures of the performance page
  (``bench_socketio.py``'s echo table and the Socket.IO rows of the hub
  fan-out table, trio_ws App against python-socketio).

Charts left over from an earlier report in the same directory under those
names (for example a scenario not measured this time) are removed.

Errors (a missing or malformed JSON file, a benchmark that wrote no results)
are one line on stderr and exit status 2; Ctrl-C exits with 130.

This module runs the benchmarks and writes the files; ``report_results.py``
reads and checks the results, ``report_tables.py`` and ``report_charts.py``
render them.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from report_charts import core_chart, hub_fanout_chart, hub_memory_chart, ratio_chart, ratio_groups
from report_memory import MemoryResults, codecs_rst, memory_markdown, memory_rst, memory_sentence, memory_summary_rst
from report_results import (
    CORE_CELL_KEYS,
    CORE_META_KEYS,
    CORE_METRIC_KEYS,
    CORE_TOP_KEYS,
    HUB_BURST_KEYS,
    HUB_FANOUT_KEYS,
    HUB_MEMORY_KEYS,
    HUB_TOP_KEYS,
    RESULTS_FORMAT,
    RESULTS_NAME,
    SUBJECT,
    BenchRun,
    CoreResults,
    HubResults,
    MetricInfo,
    ReportError,
    Results,
    _num,
    _plural,
    load_core,
    load_hub,
    load_memory,
    load_results,
    load_socketio,
)
from report_run import display_command, run_benchmark
from report_socketio import SocketIOResults
from report_tables import (
    burst_sentence,
    core_tables,
    fmt,
    hub_burst_table,
    hub_fanout_table,
    hub_memory_table,
    rst_escape,
    socketio_echo_table,
    socketio_fragment,
    socketio_intro,
)

HERE = Path(__file__).resolve().parent
CORE_SCRIPT = HERE / "bench_core.py"
HUB_SCRIPT = HERE / "bench_hub.py"
MEMORY_SCRIPT = HERE / "bench_memory.py"
SOCKETIO_SCRIPT = HERE / "bench_socketio.py"
#: ``bench_memory.py``'s options under ``--run`` (10,000 connections, as the issue's target says).
MEMORY_RUN_ARGS = ("--connections", "10000", "--reps", "1")

#: Names the tests and other scripts read from this module.
__all__ = [
    "CORE_CELL_KEYS",
    "CORE_META_KEYS",
    "CORE_METRIC_KEYS",
    "CORE_TOP_KEYS",
    "HUB_BURST_KEYS",
    "HUB_FANOUT_KEYS",
    "HUB_MEMORY_KEYS",
    "HUB_TOP_KEYS",
    "RESULTS_NAME",
    "build_report",
    "fmt",
    "load_core",
    "load_hub",
    "load_memory",
    "load_results",
    "main",
    "ratio_groups",
    "rst_escape",
]


# --------------------------------------------------------------------------- #
# The report
# --------------------------------------------------------------------------- #


def _load_line(meta: dict[str, Any], what: str) -> str | None:
    load = meta.get("load_average")
    if not isinstance(load, dict):
        return None
    return f"{load.get('before', 0):.1f} before / {load.get('after', 0):.1f} after the {what}"


def _max_load(metas: list[dict[str, Any]], runs: list[BenchRun]) -> float:
    loads = [r.load_before for r in runs] + [r.load_after for r in runs]
    for meta in metas:
        if isinstance(meta.get("load_average"), dict):
            loads += [float(v) for v in meta["load_average"].values()]
    return max(loads, default=0.0)


def _cpu_count(metas: list[dict[str, Any]]) -> int:
    for meta in metas:
        if meta.get("cpu_count"):
            return int(meta["cpu_count"])
    return os.cpu_count() or 1


@dataclass
class Report:
    """Everything one report shows, rendered as Markdown and as reStructuredText."""

    core: CoreResults | None
    hub: HubResults | None
    made_with: str
    generated: str
    runs: list[BenchRun] = field(default_factory=list)
    memory: MemoryResults | None = None
    socketio: SocketIOResults | None = None
    #: Chart file names written, in the order the report shows them.
    core_charts: list[tuple[MetricInfo, str]] = field(default_factory=list)
    hub_charts: list[tuple[str, str]] = field(default_factory=list)

    def _named_parts(self) -> list[tuple[str, dict[str, Any]]]:
        """(benchmark name, its meta) of each benchmark in the report."""
        parts = (("core", self.core), ("hub", self.hub), ("memory", self.memory), ("Socket.IO", self.socketio))
        return [(name, part.meta) for name, part in parts if part is not None]

    def machine_lines(self) -> list[str]:
        """Date, machine, versions and load, as sentences (no markup)."""
        named = self._named_parts()
        metas = [meta for _, meta in named]
        cpus = _cpu_count(metas)
        lines = []
        meta = metas[0] if metas else {}
        dates = [f"{name} benchmark {m.get('date', '?')}" for name, m in named]
        lines.append(f"Measured: {', '.join(dates)} (UTC); report generated {self.generated}.")
        model = next((m["cpu_model"] for m in metas if m.get("cpu_model")), None)
        cpu = f"{model}, {cpus} CPUs" if model else f"{cpus} CPUs (model not recorded)"
        lines.append(f"Machine: {cpu}, {meta.get('platform', '?')}, Python {meta.get('python', '?')}.")
        versions: dict[str, str] = {}
        for m in metas:
            versions.update(m.get("versions", {}))
        if versions:
            lines.append("Versions: " + ", ".join(f"{k} {v}" for k, v in versions.items()) + ".")
        known = [x for name, m in named if (x := _load_line(m, f"{name} benchmark"))]
        if known:
            peak = _max_load(metas, self.runs)
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

    def socketio_rst(self) -> str:
        """The Socket.IO figures of the performance page: echo and the Socket.IO fan-out rows (reStructuredText)."""
        commands = [line for line in self.command_lines() if "bench_socketio.py" in line or "bench_hub.py" in line]
        load = _load_line(self.socketio.meta, "Socket.IO benchmark") if self.socketio is not None else None
        return socketio_fragment(self.socketio, self.hub, commands, load or "load not recorded")

    def memory_rst(self) -> str:
        """The idle-memory figures of the performance page (reStructuredText)."""
        if self.memory is None:
            return ".. Generated by benchmarks/report.py from results.json; edits are overwritten.\n\n" + (
                "No idle-memory measurement in the results.\n"
            )
        return memory_rst(self.memory)

    def compression_rst(self) -> str:
        """The codec sizes of the compression page, and websockets' idle connections with and without deflate."""
        extra = []
        if self.core is not None:
            for peer in ("websockets.trio", "websockets.asyncio"):
                plain = self.core.cell("idle_memory", peer)
                deflate = self.core.cell("idle_memory_deflate", peer)
                if plain is not None and deflate is not None:
                    connections = self.core.meta.get("settings", {}).get("connections", "?")
                    extra.append(
                        rst_escape(
                            f"For comparison, {peer} allocates its codecs during the handshake: its idle server "
                            f"connections measured {fmt(deflate.median)} KiB each with deflate and "
                            f"{fmt(plain.median)} KiB without (server RSS growth over {_num(connections)} "
                            f"connections, benchmarks/bench_core.py, {self.core.meta.get('date', '?')} UTC)."
                        )
                    )
                    break
        if self.memory is None:
            text = ".. Generated by benchmarks/report.py from results.json; edits are overwritten.\n\n"
            return text + "\n\n".join(["No codec measurement in the results.", *extra]) + "\n"
        return codecs_rst(self.memory, extra)

    def results_json(self) -> str:
        """The one results file: everything this report shows is computed from it."""
        payload = {
            "format": RESULTS_FORMAT,
            "made_with": self.made_with,
            "generated": self.generated,
            "runs": [asdict(run) for run in self.runs],
            "core": self.core.raw if self.core is not None else None,
            "hub": self.hub.raw if self.hub is not None else None,
            "memory": self.memory.raw if self.memory is not None else None,
            "socketio": self.socketio.raw if self.socketio is not None else None,
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
        for name, result in (("core", self.core), ("hub", self.hub), ("Socket.IO", self.socketio)):
            if result is None:
                continue
            if result.meta.get("interrupted"):
                lines.append(f"{name}: interrupted; the tables hold the repetitions that finished")
            for contender, reason in result.skipped.items():
                lines.append(f"{name}: {contender} skipped: {reason}")
            for error in result.errors:
                where = error.get("metric") or error.get("table") or error.get("scenario")
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
        if self.memory is not None:
            out += [*memory_markdown(self.memory), ""]
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
        if self.socketio is not None:
            out += ["## Socket.IO echo", "", socketio_intro(self.socketio), ""]
            out += [*socketio_echo_table(self.socketio).markdown(), ""]
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
        if self.memory is not None:
            out += ["", ".. rubric:: Idle memory per server connection", "", rst_escape(memory_sentence(self.memory))]
            out += ["", *memory_summary_rst(self.memory)]
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
        if self.socketio is not None:
            out += ["", ".. rubric:: Socket.IO echo", "", rst_escape(socketio_intro(self.socketio)), ""]
            out += socketio_echo_table(self.socketio).rst()
        problems = self._problems()
        if problems:
            out += ["", ".. rubric:: Skipped and failed", ""] + [f"* {rst_escape(p)}" for p in problems]
        return "\n".join(out).rstrip() + "\n"


#: Chart names this script writes; stale ones in the output directory are removed.
def _is_chart(name: str) -> bool:
    return name.endswith(".png") and (name == "ratios.png" or name.startswith(("core_", "hub_")))


def build_report(out: Path, results: Results) -> Report:
    """Write results.json, report.md, report.inc, the docs fragments and the charts into ``out``."""
    core, hub, memory = results.core, results.hub, results.memory
    if core is None and hub is None and memory is None and results.socketio is None:
        raise ReportError("nothing to report: give --core, --hub, --memory, --socketio or --run")
    out.mkdir(parents=True, exist_ok=True)
    report = Report(
        core,
        hub,
        results.made_with,
        results.generated or datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        list(results.runs),
        memory,
        results.socketio,
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
    (out / "memory.inc").write_text(report.memory_rst(), encoding="utf-8")
    (out / "compression.inc").write_text(report.compression_rst(), encoding="utf-8")
    (out / "socketio.inc").write_text(report.socketio_rst(), encoding="utf-8")
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
    parser.add_argument("--memory", type=Path, metavar="MEMORY.json", help="output of bench_memory.py --json")
    parser.add_argument("--socketio", type=Path, metavar="SIO.json", help="output of bench_socketio.py --json")
    parser.add_argument(
        "--results", type=Path, metavar="results.json", help="rebuild a report from its results.json (byte for byte)"
    )
    parser.add_argument("--out", type=Path, required=True, metavar="DIR", help="directory for report.md and charts")
    parser.add_argument(
        "--run",
        action="store_true",
        help="run bench_core.py --quick, bench_hub.py --quick, bench_memory.py "
        f"{' '.join(MEMORY_RUN_ARGS)} and bench_socketio.py --quick first (their JSON is folded into "
        "DIR/results.json)",
    )
    parser.add_argument("--no-hub", action="store_true", help="with --run: do not run bench_hub.py")
    parser.add_argument("--no-memory", action="store_true", help="with --run: do not run bench_memory.py")
    parser.add_argument("--no-socketio", action="store_true", help="with --run: do not run bench_socketio.py")
    parser.add_argument("--core-args", default="", metavar="ARGS", help="with --run: more options for bench_core.py")
    parser.add_argument("--hub-args", default="", metavar="ARGS", help="with --run: more options for bench_hub.py")
    parser.add_argument(
        "--memory-args", default="", metavar="ARGS", help="with --run: more options for bench_memory.py"
    )
    parser.add_argument(
        "--socketio-args", default="", metavar="ARGS", help="with --run: more options for bench_socketio.py"
    )
    args = parser.parse_args(argv)
    inputs = args.core or args.hub or args.memory or args.socketio
    if args.run and (inputs or args.results):
        parser.error(
            "--run writes its own results; do not combine it with --core, --hub, --memory, --socketio or --results"
        )
    if args.results and inputs:
        parser.error(
            "--results holds every benchmark's results; do not combine it with --core, --hub, --memory or --socketio"
        )
    if not args.run and not inputs and args.results is None:
        parser.error("give --core, --hub, --memory and/or --socketio, --results, or --run")
    run_only = (args.no_hub, args.no_memory, args.no_socketio, args.core_args, args.hub_args, args.memory_args)
    if not args.run and (any(run_only) or args.socketio_args):
        parser.error(
            "--no-hub, --no-memory, --no-socketio, --core-args, --hub-args, --memory-args and --socketio-args "
            "only apply with --run"
        )
    return args


def run_all(args: argparse.Namespace, made_with: str) -> Results:
    """``--run``: each benchmark in turn, its JSON read back; the JSON files are removed afterwards."""
    args.out.mkdir(parents=True, exist_ok=True)
    results = Results(made_with=made_with)
    core_json = (args.out / "core.json").resolve()
    hub_json = (args.out / "hub.json").resolve()
    memory_json = (args.out / "memory.json").resolve()
    socketio_json = (args.out / "socketio.json").resolve()
    try:
        command = [sys.executable, str(CORE_SCRIPT), "--quick", *shlex.split(args.core_args)]
        results.runs.append(run_benchmark([*command, "--json", str(core_json)], core_json))
        results.core = load_core(core_json)
        if not args.no_hub and HUB_SCRIPT.exists():
            command = [sys.executable, str(HUB_SCRIPT), "--quick", *shlex.split(args.hub_args)]
            results.runs.append(run_benchmark([*command, "--json", str(hub_json)], hub_json))
            results.hub = load_hub(hub_json)
        if not args.no_memory and MEMORY_SCRIPT.exists():
            command = [sys.executable, str(MEMORY_SCRIPT), *MEMORY_RUN_ARGS, *shlex.split(args.memory_args)]
            results.runs.append(run_benchmark([*command, "--json", str(memory_json)], memory_json))
            results.memory = load_memory(memory_json)
        if not args.no_socketio and SOCKETIO_SCRIPT.exists():
            command = [sys.executable, str(SOCKETIO_SCRIPT), "--quick", *shlex.split(args.socketio_args)]
            results.runs.append(run_benchmark([*command, "--json", str(socketio_json)], socketio_json))
            results.socketio = load_socketio(socketio_json)
    finally:
        # Their content lives in results.json, the report's one results file (and a failed
        # run must not leave a stale one behind to stand in for it).
        for path in (core_json, hub_json, memory_json, socketio_json):
            path.unlink(missing_ok=True)
    return results


def main(argv: list[str] | None = None) -> int:
    """Build the report; exit status 2 on bad input, 130 when interrupted."""
    arguments = sys.argv[1:] if argv is None else argv
    made_with = display_command([sys.executable, str(Path(__file__).resolve()), *arguments])
    args = parse_args(arguments)
    try:
        if args.run:
            results = run_all(args, made_with)
        elif args.results is not None:
            results = load_results(args.results)
        else:
            results = Results(
                core=load_core(args.core) if args.core is not None else None,
                hub=load_hub(args.hub) if args.hub is not None else None,
                memory=load_memory(args.memory) if args.memory is not None else None,
                socketio=load_socketio(args.socketio) if args.socketio is not None else None,
                made_with=made_with,
            )
        build_report(args.out, results)
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
