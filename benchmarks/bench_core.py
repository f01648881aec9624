"""Core benchmark: trio_ws against trio-websocket, websockets and raw TCP.

Run from the project root::

    .venv/bin/python benchmarks/bench_core.py --quick
    .venv/bin/python benchmarks/bench_core.py --output results.md --json results.json

This process is the client; every echo server runs in a child process started
from ``bench_server.py``.  See ``benchmarks/README.md`` for the scenarios and
the methodology.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import selectors
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterable
from contextlib import AsyncExitStack, ExitStack
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from functools import partial
from importlib import metadata
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any

from bench_contenders import BASELINE, BASELINE_ENV, CONTENDERS, Compression, Connection, Contender, enable_baseline
from bench_server import raise_fd_limit
from machine import cpu_model

SERVER_SCRIPT = Path(__file__).resolve().parent / "bench_server.py"
SMALL_SIZE = 32
#: Clients that open their connections at the same time in ``handshake_concurrent``.
CONCURRENT_CLIENTS = 100
BULK_SIZE = 1024 * 1024
#: Connections opened (and closed) before the idle-memory baseline is read.
MEMORY_WARMUP_CONNECTIONS = 5
SERVER_START_TIMEOUT = 30.0


# --------------------------------------------------------------------------- #
# Metrics and settings
# --------------------------------------------------------------------------- #


@dataclass(frozen=True)
class Metric:
    """One column of the result table."""

    key: str
    column: str
    unit: str
    higher_is_better: bool = True


METRICS: dict[str, Metric] = {
    metric.key: metric
    for metric in (
        Metric("rtt", "Echo round trips/s (32 B)", "round trips/s"),
        Metric("pipelined", "Pipelined msg/s (32 B)", "messages/s"),
        Metric("bulk", "1 MiB echo MB/s", "MB/s"),
        Metric("handshake", "Handshakes/s", "open+close/s"),
        Metric("handshake_concurrent", "Handshakes/s (100 at once)", "open+close/s"),
        Metric("idle_memory", "Idle KiB/conn", "KiB/connection", False),
        Metric("idle_memory_deflate", "Idle KiB/conn (deflate)", "KiB/connection", False),
    )
}

#: Command-line scenario names and the metrics each one produces.
SCENARIOS: dict[str, tuple[str, ...]] = {
    "rtt": ("rtt",),
    "pipelined": ("pipelined",),
    "bulk": ("bulk",),
    "handshake": ("handshake",),
    "handshake_concurrent": ("handshake_concurrent",),
    "memory": ("idle_memory", "idle_memory_deflate"),
}


@dataclass(frozen=True)
class Settings:
    """How much work each measurement does."""

    reps: int
    #: Length of one timed repetition, in seconds (fixed-duration scenarios)
    #: and the target length used to size the pipelined batch.
    duration: float
    #: Length of the untimed warm-up run per contender and scenario.
    warmup: float
    #: Batch size of the pipelined warm-up run, used to size the real batches.
    calibration_messages: int
    #: Idle connections held open in the memory scenario.
    connections: int
    client_cpu: int | None
    server_cpu: int | None

    @property
    def timeout(self) -> float:
        """Upper bound for one measurement before it counts as hung."""
        return 20.0 + 10.0 * self.duration + 0.1 * self.connections


# --------------------------------------------------------------------------- #
# Server processes
# --------------------------------------------------------------------------- #


class ServerProcess:
    """An echo server in a child process; always killed by pid on exit."""

    def __init__(self, contender: Contender, compression: Compression, cpu: int | None) -> None:
        self.contender = contender
        self.compression = compression
        self.cpu = cpu
        self.port = 0
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        """Process id of the server."""
        assert self._proc is not None
        return self._proc.pid

    def __enter__(self) -> ServerProcess:
        command = [
            sys.executable,
            str(SERVER_SCRIPT),
            self.contender.name,
            "--compression",
            self.compression or "none",
        ]
        if self.cpu is not None:
            command += ["--cpu", str(self.cpu)]
        # stdin stays open: the server exits by itself if this process dies.
        self._proc = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        try:
            self.port = self._read_port()
        except BaseException:
            self.kill()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.kill()

    def _read_port(self) -> int:
        assert self._proc is not None and self._proc.stdout is not None
        with selectors.DefaultSelector() as selector:
            selector.register(self._proc.stdout, selectors.EVENT_READ)
            if not selector.select(SERVER_START_TIMEOUT):
                raise RuntimeError(f"{self.contender.name} server did not start")
        line = self._proc.stdout.readline()
        if not line:
            code = self._proc.wait()
            raise RuntimeError(f"{self.contender.name} server exited with {code}")
        return int(line)

    def kill(self) -> None:
        """Terminate the server by its pid (SIGTERM, then SIGKILL) and reap it."""
        proc = self._proc
        if proc is None or proc.returncode is not None:
            return
        try:
            os.kill(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait()
        except ProcessLookupError:
            proc.wait()
        for pipe in (proc.stdin, proc.stdout):
            if pipe is not None:
                pipe.close()

    def rss_kib(self) -> int:
        """Resident set size of the server (VmRSS), in KiB."""
        with open(f"/proc/{self.pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        raise RuntimeError("no VmRSS in /proc status")


# --------------------------------------------------------------------------- #
# Client side of each scenario
# --------------------------------------------------------------------------- #


@dataclass(frozen=True)
class Run:
    """Work done by one timed run: ``count`` operations in ``elapsed`` seconds."""

    count: int
    elapsed: float


async def _check_echo(contender: Contender, conn: Connection, payload: bytes) -> None:
    """One untimed round trip that also checks the echo is correct.

    Sending and receiving run concurrently: a plain TCP stream has no
    background reader, so a large sequential send could fill the socket
    buffers in both directions and deadlock.
    """
    replies: list[bytes] = []

    async def receive() -> None:
        replies.append(await conn.recv(len(payload)))

    await contender.runtime.gather(partial(conn.send, payload), receive)
    if replies != [payload]:
        raise AssertionError("echo server returned different bytes")


async def run_rtt(contender: Contender, port: int, duration: float, _n: int) -> Run:
    """Scenario 1: send one 32-byte message, wait for its echo, repeat."""
    payload = os.urandom(SMALL_SIZE)
    async with contender.connect(port, None) as conn:
        await _check_echo(contender, conn, payload)
        count = 0
        start = time.perf_counter()
        deadline = start + duration
        while True:
            await conn.send(payload)
            await conn.recv(SMALL_SIZE)
            count += 1
            now = time.perf_counter()
            if now >= deadline:
                return Run(count, now - start)


async def run_pipelined(contender: Contender, port: int, _duration: float, n: int) -> Run:
    """Scenario 2: one task sends ``n`` 32-byte messages, another receives the echoes."""
    payload = os.urandom(SMALL_SIZE)
    async with contender.connect(port, None) as conn:
        await _check_echo(contender, conn, payload)

        async def send_all() -> None:
            for _ in range(n):
                await conn.send(payload)

        async def receive_all() -> None:
            for _ in range(n):
                await conn.recv(SMALL_SIZE)

        start = time.perf_counter()
        await contender.runtime.gather(send_all, receive_all)
        return Run(n, time.perf_counter() - start)


async def run_bulk(contender: Contender, port: int, duration: float, _n: int) -> Run:
    """Scenario 3: echo 1 MiB binary messages one at a time.

    Send and receive run concurrently (see :func:`_check_echo`); the
    WebSocket libraries read in the background anyway, so for them this only
    costs one task per message.
    """
    payload = os.urandom(BULK_SIZE)
    gather = contender.runtime.gather
    async with contender.connect(port, None) as conn:
        await _check_echo(contender, conn, payload)
        send = partial(conn.send, payload)
        receive = partial(conn.recv, BULK_SIZE)
        count = 0
        start = time.perf_counter()
        deadline = start + duration
        while True:
            await gather(send, receive)
            count += 1
            now = time.perf_counter()
            if now >= deadline:
                return Run(count, now - start)


async def run_handshake(contender: Contender, port: int, duration: float, _n: int) -> Run:
    """Scenario 4: open and close a connection, sequentially, repeatedly."""
    count = 0
    start = time.perf_counter()
    deadline = start + duration
    while True:
        async with contender.connect(port, None):
            pass
        count += 1
        now = time.perf_counter()
        if now >= deadline:
            return Run(count, now - start)


async def run_handshake_concurrent(contender: Contender, port: int, duration: float, _n: int) -> Run:
    """Scenario 5: 100 clients open and close a connection at once, repeatedly.

    One batch is 100 concurrent tasks that each open a connection and close
    it; the next batch starts when the whole batch has finished.
    """

    async def one_client() -> None:
        async with contender.connect(port, None):
            pass

    clients = [one_client] * CONCURRENT_CLIENTS
    count = 0
    start = time.perf_counter()
    deadline = start + duration
    while True:
        await contender.runtime.gather(*clients)
        count += CONCURRENT_CLIENTS
        now = time.perf_counter()
        if now >= deadline:
            return Run(count, now - start)


RunFunction = Callable[[Contender, int, float, int], Awaitable[Run]]

#: Echo scenarios: the run function and how a Run becomes the metric value.
ECHO_SCENARIOS: dict[str, tuple[RunFunction, Callable[[Run], float]]] = {
    "rtt": (run_rtt, lambda run: run.count / run.elapsed),
    "pipelined": (run_pipelined, lambda run: run.count / run.elapsed),
    "bulk": (run_bulk, lambda run: run.count * BULK_SIZE / 1e6 / run.elapsed),
    "handshake": (run_handshake, lambda run: run.count / run.elapsed),
    "handshake_concurrent": (run_handshake_concurrent, lambda run: run.count / run.elapsed),
}


async def _settled_rss(server: ServerProcess, contender: Contender) -> int:
    """Server RSS once two readings 0.1 s apart agree (at most ~2 s of waiting)."""
    await contender.runtime.sleep(0.2)
    previous = server.rss_kib()
    for _ in range(20):
        await contender.runtime.sleep(0.1)
        current = server.rss_kib()
        if current == previous:
            break
        previous = current
    return previous


async def run_idle_memory(contender: Contender, server: ServerProcess, compression: Compression, n: int) -> float:
    """Scenario 6: server RSS growth per idle connection, in KiB."""
    payload = os.urandom(SMALL_SIZE)
    # Warm up the server's code paths (lazy imports, first allocations).
    for _ in range(MEMORY_WARMUP_CONNECTIONS):
        async with contender.connect(server.port, compression) as conn:
            await _check_echo(contender, conn, payload)
    before = await _settled_rss(server, contender)
    async with AsyncExitStack() as stack:
        for _ in range(n):
            await stack.enter_async_context(contender.connect(server.port, compression))
        after = await _settled_rss(server, contender)
    return (after - before) / n


# --------------------------------------------------------------------------- #
# Results
# --------------------------------------------------------------------------- #


@dataclass
class Results:
    """Every raw sample, plus errors and skipped contenders."""

    samples: list[dict[str, Any]] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)

    def add(self, metric: str, contender: str, rep: int, value: float, **extra: Any) -> None:
        """Record one repetition's value."""
        self.samples.append({"metric": metric, "contender": contender, "rep": rep, "value": value, **extra})

    def error(self, metric: str, contender: str, rep: int | None, exc: BaseException) -> None:
        """Record a failed measurement and say so on stderr."""
        self.errors.append({"metric": metric, "contender": contender, "rep": rep, "error": repr(exc)})
        when = "warm-up" if rep is None else f"rep {rep + 1}"
        note(f"  ! {contender} failed in {metric} ({when}): {exc!r}")

    def values(self, metric: str, contender: str) -> list[float]:
        """All recorded values of ``metric`` for ``contender``."""
        return [
            sample["value"]
            for sample in self.samples
            if sample["metric"] == metric and sample["contender"] == contender
        ]

    def median(self, metric: str, contender: str) -> float | None:
        """Median value, or ``None`` when nothing was recorded."""
        values = self.values(metric, contender)
        return statistics.median(values) if values else None

    def summary(self) -> dict[str, dict[str, dict[str, float]]]:
        """Median, min, max and count per metric and contender."""
        out: dict[str, dict[str, dict[str, float]]] = {}
        for metric in METRICS:
            for name in CONTENDERS:
                values = self.values(metric, name)
                if values:
                    out.setdefault(metric, {})[name] = {
                        "median": statistics.median(values),
                        "min": min(values),
                        "max": max(values),
                        "n": len(values),
                    }
        return out


def note(message: str) -> None:
    """Progress and diagnostics go to stderr; stdout carries only the table."""
    print(message, file=sys.stderr, flush=True)


def cpu_seconds(pid: str) -> float:
    """CPU time a process has run so far, in seconds (``/proc/PID/schedstat``).

    Unlike the throughput figures, the CPU time per operation hardly changes
    when other work shares the machine, so it tells a change in the code from
    a change in the load.
    """
    try:
        with open(f"/proc/{pid}/schedstat", encoding="ascii") as stat:
            return int(stat.read().split()[0]) / 1e9
    except OSError:
        return 0.0


def _measure(contender: Contender, settings: Settings, fn: Callable[[], Awaitable[Any]]) -> Any:
    gc.collect()
    return contender.runtime.run(fn, settings.timeout)


def _round_work(value: float) -> int:
    """Round a batch size to two significant digits."""
    digits = max(len(str(int(value))) - 2, 0)
    return int(round(value, -digits))


def run_echo_scenario(metric: str, contenders: list[Contender], settings: Settings, results: Results) -> None:
    """Run one echo scenario: warm-up, then ``reps`` alternating rounds.

    Each contender gets its own server process for the whole scenario.  The
    untimed warm-up run also sizes the pipelined batches so that one
    repetition lasts about ``settings.duration``.  A contender that fails is
    reported and dropped from this scenario only.
    """
    run_fn, to_value = ECHO_SCENARIOS[metric]
    with ExitStack() as servers:
        ports: dict[str, int] = {}
        server_pids: dict[str, str] = {}
        for contender in contenders:
            try:
                server = servers.enter_context(ServerProcess(contender, None, settings.server_cpu))
            except Exception as exc:
                results.error(metric, contender.name, None, exc)
            else:
                ports[contender.name] = server.port
                server_pids[contender.name] = str(server.pid)

        work: dict[str, int] = {}
        for contender in contenders:
            if contender.name not in ports:
                continue
            port = ports[contender.name]
            n = settings.calibration_messages
            try:
                warm = _measure(contender, settings, partial(run_fn, contender, port, settings.warmup, n))
            except Exception as exc:
                results.error(metric, contender.name, None, exc)
                continue
            rate = warm.count / warm.elapsed
            work[contender.name] = max(_round_work(rate * settings.duration), n)

        active = [c for c in contenders if c.name in work]
        for rep in range(settings.reps):
            line = []
            for contender in list(active):
                port, n = ports[contender.name], work[contender.name]
                cpu_before = (cpu_seconds("self"), cpu_seconds(server_pids[contender.name]))
                try:
                    run = _measure(
                        contender,
                        settings,
                        partial(run_fn, contender, port, settings.duration, n),
                    )
                except Exception as exc:
                    results.error(metric, contender.name, rep, exc)
                    active.remove(contender)
                    continue
                cpu_client = cpu_seconds("self") - cpu_before[0]
                cpu_server = cpu_seconds(server_pids[contender.name]) - cpu_before[1]
                value = to_value(run)
                results.add(
                    metric,
                    contender.name,
                    rep,
                    value,
                    count=run.count,
                    elapsed=run.elapsed,
                    cpu_client=cpu_client,
                    cpu_server=cpu_server,
                )
                line.append(f"{contender.name} {fmt(value)}")
            note(f"[{metric}] rep {rep + 1}/{settings.reps}: " + " | ".join(line))


def run_memory_scenario(contenders: list[Contender], settings: Settings, results: Results) -> None:
    """Idle memory: a fresh server per measurement, contenders alternating."""
    variants: tuple[tuple[str, Compression], ...] = (
        ("idle_memory", None),
        ("idle_memory_deflate", "deflate"),
    )
    failed: set[tuple[str, str]] = set()
    for rep in range(settings.reps):
        line = []
        for contender in contenders:
            for metric, compression in variants:
                if compression is not None and not contender.supports_compression:
                    continue
                if (metric, contender.name) in failed:
                    continue
                try:
                    with ServerProcess(contender, compression, settings.server_cpu) as server:
                        value = _measure(
                            contender,
                            settings,
                            partial(
                                run_idle_memory,
                                contender,
                                server,
                                compression,
                                settings.connections,
                            ),
                        )
                except Exception as exc:
                    results.error(metric, contender.name, rep, exc)
                    failed.add((metric, contender.name))
                    continue
                results.add(metric, contender.name, rep, value, connections=settings.connections)
                tag = "" if compression is None else f"+{compression}"
                line.append(f"{contender.name}{tag} {fmt(value)}")
        note(f"[memory] rep {rep + 1}/{settings.reps}: " + " | ".join(line))


# --------------------------------------------------------------------------- #
# Report
# --------------------------------------------------------------------------- #


def fmt(value: float | None) -> str:
    """Format a measurement for the table."""
    if value is None:
        return "n/a"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    if abs(value) >= 100:
        return f"{value:.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def _cell(results: Results, metric: str, contender: str) -> str:
    if contender in results.skipped:
        return "skipped"
    return fmt(results.median(metric, contender))


def _ratio(results: Results, metric: str, numerator: str, denominator: str) -> str:
    top = results.median(metric, numerator)
    bottom = results.median(metric, denominator)
    if top is None or bottom is None or bottom == 0:
        return "n/a"
    return f"{top / bottom:.2f}x"


def _table(header: list[str], rows: Iterable[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |"]
    lines.append("| :-- | " + " | ".join("--:" for _ in header[1:]) + " |")
    lines.extend("| " + " | ".join(row) + " |" for row in rows)
    return lines


def render_markdown(results: Results, metrics: list[str], contenders: list[Contender], meta: dict[str, Any]) -> str:
    """The Markdown report: medians with ratio rows, then the spread."""
    header = ["Contender"] + [METRICS[m].column for m in metrics]
    rows = [[contender.label] + [_cell(results, m, contender.name) for m in metrics] for contender in contenders]
    others = ["trio-websocket", "websockets.trio"]
    if any(contender.name == BASELINE.name for contender in contenders):
        others.append(BASELINE.name)
    for other in others:
        rows.append([f"**trio_ws / {other}**"] + [_ratio(results, m, "trio_ws", other) for m in metrics])
    spread = []
    for contender in contenders:
        cells = []
        for m in metrics:
            values = results.values(m, contender.name)
            cells.append(f"{fmt(min(values))} - {fmt(max(values))}" if values else "n/a")
        spread.append([contender.label, *cells])

    cpu_rows = []
    for contender in contenders:
        cells = []
        for m in metrics:
            per_op = [
                (sample["cpu_client"] + sample["cpu_server"]) / sample["count"] * 1e6
                for sample in results.samples
                if sample["metric"] == m and sample["contender"] == contender.name and "cpu_client" in sample
            ]
            cells.append(fmt(statistics.median(per_op)) if per_op else "n/a")
        cpu_rows.append([contender.label, *cells])
    lines = [
        "## Core benchmark",
        "",
        f"Median of {meta['reps']} repetitions per cell ({meta['settings']['duration']} s each), "
        "contenders alternating; server and client in separate processes "
        f"({meta['cpu_count']} CPUs, Python {meta['python']}, {meta['date']}; "
        f"1-min load average {meta['load_average']['before']:.1f} before, "
        f"{meta['load_average']['after']:.1f} after).",
        "Throughput columns: higher is better. Memory columns (server RSS growth per idle "
        f"connection, {meta['settings']['connections']} connections): lower is better.",
        "Ratio rows divide trio_ws's median by the other library's.",
        "",
        *_table(header, rows),
        "",
        "Range (min - max over the repetitions):",
        "",
        *_table(header, spread),
        "",
        "CPU time per operation, client plus server, in microseconds (median; memory columns n/a):",
        "",
        *_table(header, cpu_rows),
    ]
    if results.skipped:
        lines += ["", "Skipped: " + "; ".join(f"{k}: {v}" for k, v in results.skipped.items())]
    if results.errors:
        lines += ["", f"Errors: {len(results.errors)} (see the JSON file or stderr)."]
    versions = ", ".join(f"{k} {v}" for k, v in meta["versions"].items())
    lines += ["", f"Versions: {versions}.", ""]
    return "\n".join(lines)


def _version(distribution: str, module: str | None = None) -> str:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        pass
    if module is not None and module in sys.modules:
        return str(getattr(sys.modules[module], "__version__", "source tree"))
    return "not installed"


# --------------------------------------------------------------------------- #
# Command line
# --------------------------------------------------------------------------- #


def _csv(choices: Iterable[str]) -> Callable[[str], list[str]]:
    allowed = list(choices)

    def parse(text: str) -> list[str]:
        items = [item.strip() for item in text.split(",") if item.strip()]
        unknown = [item for item in items if item not in allowed]
        if unknown or not items:
            raise argparse.ArgumentTypeError(f"expected a comma-separated list of {', '.join(allowed)}")
        return items

    return parse


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description="Benchmark trio_ws against trio-websocket, websockets and raw TCP.")
    parser.add_argument("--quick", action="store_true", help="3 repetitions of shorter work (a few minutes)")
    parser.add_argument(
        "--only",
        type=_csv(SCENARIOS),
        metavar="SCENARIO[,...]",
        help=f"run only these scenarios ({', '.join(SCENARIOS)})",
    )
    parser.add_argument(
        "--contenders",
        type=_csv(CONTENDERS),
        metavar="NAME[,...]",
        help=f"run only these contenders ({', '.join(CONTENDERS)})",
    )
    parser.add_argument("--reps", type=int, help="repetitions per cell (default 5, quick 3)")
    parser.add_argument("--duration", type=float, help="seconds per timed repetition (default 1.5, quick 0.5)")
    parser.add_argument("--connections", type=int, help="idle connections for memory (default 500, quick 200)")
    parser.add_argument("--output", type=Path, metavar="FILE.md", help="also write the table here")
    parser.add_argument("--json", type=Path, metavar="FILE", help="write raw results as JSON")
    parser.add_argument(
        "--baseline",
        type=Path,
        metavar="DIR",
        help="also run trio_ws from DIR/trio_ws (another checkout) as the contender trio_ws-baseline",
    )
    parser.add_argument(
        "--pin",
        action="store_true",
        help="pin the client and the server processes to two different CPUs",
    )
    return parser.parse_args(argv)


def make_settings(args: argparse.Namespace) -> Settings:
    """Settings from the command line, with --quick or full defaults."""
    cpus = sorted(os.sched_getaffinity(0))
    pin = args.pin and len(cpus) >= 2
    return Settings(
        reps=args.reps or (3 if args.quick else 5),
        duration=args.duration or (0.5 if args.quick else 1.5),
        warmup=0.25 if args.quick else 0.5,
        calibration_messages=500 if args.quick else 1000,
        connections=args.connections or (200 if args.quick else 500),
        client_cpu=cpus[0] if pin else None,
        server_cpu=cpus[1] if pin else None,
    )


def _terminate(signum: int, frame: FrameType | None) -> None:
    """Treat SIGTERM like Ctrl-C, which Trio and asyncio both unwind cleanly.

    Unwinding runs every ``ServerProcess.__exit__``, so the servers are killed.
    """
    signal.raise_signal(signal.SIGINT)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; exit status 130 when interrupted."""
    try:
        return run_benchmark(argv)
    except KeyboardInterrupt:
        note("interrupted; all servers were stopped")
        return 130


def run_benchmark(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the Markdown table."""
    args = parse_args(argv)
    if args.baseline is not None:
        # Before the contenders are listed: the baseline runs after trio_ws.
        enable_baseline(str(args.baseline))
        os.environ[BASELINE_ENV] = str(args.baseline.resolve())
        names = list(CONTENDERS)
        names.insert(names.index("trio_ws") + 1, BASELINE.name)
        CONTENDERS[BASELINE.name] = BASELINE
        for name in names:
            CONTENDERS[name] = CONTENDERS.pop(name)
        if args.contenders is not None and BASELINE.name not in args.contenders:
            args.contenders.append(BASELINE.name)
    settings = make_settings(args)
    signal.signal(signal.SIGTERM, _terminate)
    raise_fd_limit()
    if settings.client_cpu is not None:
        os.sched_setaffinity(0, {settings.client_cpu})

    results = Results()
    contenders: list[Contender] = []
    for name in args.contenders or list(CONTENDERS):
        contender = CONTENDERS[name]
        reason = contender.unavailable_reason()
        if reason is None:
            contenders.append(contender)
        else:
            results.skipped[name] = reason
            note(f"note: skipping {name}: {reason}")
    scenarios = [s for s in SCENARIOS if args.only is None or s in args.only]
    metrics = [m for s in scenarios for m in SCENARIOS[s]]

    load_before = os.getloadavg()[0]
    if load_before > 0.5 * (os.cpu_count() or 1):
        note(f"warning: load average is {load_before:.2f}; other processes will add noise")
    started = time.perf_counter()
    for scenario in scenarios:
        note(f"== {scenario} ==")
        if scenario == "memory":
            run_memory_scenario(contenders, settings, results)
        else:
            run_echo_scenario(scenario, contenders, settings, results)
    total = time.perf_counter() - started

    meta: dict[str, Any] = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "cpu_model": cpu_model(),
        "reps": settings.reps,
        "quick": args.quick,
        "settings": asdict(settings),
        "total_seconds": round(total, 1),
        "load_average": {"before": load_before, "after": os.getloadavg()[0]},
        "versions": {
            "trio": _version("trio"),
            "trio_ws": _version("trio_ws", "trio_ws"),
            "trio-websocket": _version("trio-websocket"),
            "websockets": _version("websockets"),
            "wsproto": _version("wsproto"),
        },
    }
    requested = set(args.contenders or CONTENDERS)
    table_contenders = [c for c in CONTENDERS.values() if c.name in requested]
    report = render_markdown(results, metrics, table_contenders, meta)
    print(report)
    note(f"total time: {total:.0f} s")
    if args.output:
        args.output.write_text(report, encoding="utf-8")
    if args.json:
        payload = {
            "meta": meta,
            "metrics": {key: asdict(METRICS[key]) for key in metrics},
            "contenders": {c.name: c.label for c in table_contenders},
            "samples": results.samples,
            "summary": results.summary(),
            "errors": results.errors,
            "skipped": results.skipped,
        }
        args.json.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    return 1 if results.errors else 0


if __name__ == "__main__":
    sys.exit(main())
