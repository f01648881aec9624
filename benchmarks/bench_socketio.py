"""Socket.IO echo benchmark: trio_ws's App against python-socketio's ASGI server under uvicorn.

Run from the project root::

    .venv/bin/python benchmarks/bench_socketio.py --quick
    .venv/bin/python benchmarks/bench_socketio.py --json results/socketio.json

Every server runs the same handlers (``bench_hub_server.py``: the
``trio_ws-app-socketio``, ``python-socketio`` and ``python-socketio-uvloop``
servers of the hub fan-out benchmark, which also answer ``echo``; the last is
python-socketio under uvicorn with uvloop and httptools, uvicorn's
``[standard]`` configuration), in a child process each; this process
is the client: trio_ws WebSocket connections speaking Engine.IO v4 /
Socket.IO v5 text over ``/socket.io/?EIO=4&transport=websocket``
(``bench_hub_socketio.py``). A round trip is the client's EVENT with an ack
id, ``42<id>["echo","<32 characters>"]``, and the server's ACK
``43<id>["<32 characters>"]``, which the handler's return value makes on every
server. Scenarios (see ``benchmarks/README.md``, "Socket.IO echo
benchmark"):

1. ``echo``: one client, one round trip after the other; round trips/s.
2. ``echo_concurrent``: 100 clients at once, each one round trip after the
   other; round trips/s of all of them together.

Every measurement gets a fresh server, an untimed warm-up, then a timed run
of a fixed duration; contenders alternate within each repetition and the
table shows the median. The server's and the client's CPU time per round trip
come from ``/proc/PID/stat``; ``--baseline DIR`` adds trio_ws from another
checkout (before/after in one run).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import statistics
import sys
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from types import FrameType
from typing import Any

import trio
from bench_hub import START_TIMEOUT, Child, fmt, note
from bench_hub_common import cpu_seconds, raise_fd_limit, run_delay_seconds
from bench_hub_socketio import SocketIOClient
from machine import cpu_model

HERE = Path(__file__).resolve().parent
SERVER_SCRIPT = HERE / "bench_hub_server.py"
SUBJECT = "trio_ws-app-socketio"
PEER = "python-socketio"
#: python-socketio under uvicorn with uvloop and httptools (``uvicorn[standard]``).
PEER_UVLOOP = "python-socketio-uvloop"
BASELINE = "trio_ws-app-socketio-baseline"
PAYLOAD = "x" * 32


@dataclass(frozen=True)
class Contender:
    """One Socket.IO server."""

    name: str
    label: str
    #: Modules it needs; a missing one skips the contender.
    needs: tuple[str, ...]
    #: Prepended to the server's PYTHONPATH: another checkout of trio_ws (``--baseline``).
    pythonpath: str = ""

    def unavailable_reason(self) -> str | None:
        """Why this contender cannot run here, or ``None`` if it can."""
        import importlib

        for module_name in self.needs:
            try:
                importlib.import_module(module_name)
            except Exception as exc:
                return f"cannot import {module_name}: {exc!r}"
        return None


CONTENDERS: dict[str, Contender] = {
    SUBJECT: Contender(SUBJECT, "trio_ws App, Socket.IO clients", ("trio_ws.app",)),
    PEER: Contender(PEER, "python-socketio AsyncServer under uvicorn", ("socketio", "uvicorn")),
    PEER_UVLOOP: Contender(
        PEER_UVLOOP,
        "python-socketio AsyncServer under uvicorn with uvloop and httptools",
        ("socketio", "uvicorn", "uvloop", "httptools"),
    ),
}
#: Scenario -> (table column, number of clients at once).
SCENARIOS: dict[str, tuple[str, int]] = {
    "echo": ("Echo round trips/s, 1 client", 1),
    "echo_concurrent": ("Echo round trips/s, 100 clients", 100),
}


@dataclass(frozen=True)
class Settings:
    """How much work each measurement does."""

    reps: int
    duration: float
    warmup: float
    concurrent_clients: int = 100

    def clients(self, scenario: str) -> int:
        """Clients at once in ``scenario``."""
        return 1 if scenario == "echo" else self.concurrent_clients


# --------------------------------------------------------------------------- #
# One measurement
# --------------------------------------------------------------------------- #


async def _echo_loop(client: SocketIOClient, deadline: float, counter: list[int]) -> None:
    """Round trips one after the other until ``deadline`` (trio time); counts them in ``counter[0]``."""
    ack_id = 0
    while trio.current_time() < deadline:
        answer = await client.call(ack_id, "echo", PAYLOAD)
        if answer != PAYLOAD:
            raise RuntimeError(f"echo answered {answer[:40]!r}")
        ack_id += 1
        counter[0] += 1


async def _run_clients(port: int, clients: int, settings: Settings, server_pid: int) -> dict[str, Any]:
    """Connect ``clients``, warm up, then time round trips for ``settings.duration``."""
    pids = (server_pid, os.getpid())
    with trio.fail_after(START_TIMEOUT + settings.warmup + settings.duration + 30):
        async with trio.open_nursery() as nursery:
            connected = [await SocketIOClient.connect(nursery, port) for _ in range(clients)]
            results = {}
            for phase, seconds in (("warmup", settings.warmup), ("timed", settings.duration)):
                counter = [0]
                cpu_before = [cpu_seconds(pid) for pid in pids]
                wait_before = [run_delay_seconds(pid) for pid in pids]
                start = time.perf_counter()
                deadline = trio.current_time() + seconds
                async with trio.open_nursery() as loops:
                    for client in connected:
                        loops.start_soon(_echo_loop, client, deadline, counter)
                elapsed = time.perf_counter() - start
                cpu = [cpu_seconds(pid) - before for pid, before in zip(pids, cpu_before, strict=True)]
                wait = [run_delay_seconds(pid) - before for pid, before in zip(pids, wait_before, strict=True)]
                results[phase] = {
                    "round_trips": counter[0],
                    "elapsed_seconds": elapsed,
                    "round_trips_per_second": counter[0] / elapsed,
                    "server_cpu_seconds": cpu[0],
                    "client_cpu_seconds": cpu[1],
                    "server_cpu_us_per_round_trip": cpu[0] / counter[0] * 1e6,
                    "client_cpu_us_per_round_trip": cpu[1] / counter[0] * 1e6,
                    "server_cpu_wait_seconds": wait[0],
                    "client_cpu_wait_seconds": wait[1],
                }
            for client in connected:
                with trio.move_on_after(2):
                    await client.ws.aclose()
            nursery.cancel_scope.cancel()
    timed: dict[str, Any] = results["timed"]
    return {**timed, "clients": clients, "warmup": results["warmup"]}


def measure(contender: Contender, scenario: str, settings: Settings) -> dict[str, Any]:
    """One repetition: a fresh server, then the client side in a fresh ``trio.run``."""
    env = None
    if contender.pythonpath:
        path = os.pathsep.join(filter(None, [contender.pythonpath, os.environ.get("PYTHONPATH")]))
        env = {**os.environ, "PYTHONPATH": path}
    server_name = SUBJECT if contender.name == BASELINE else contender.name
    command = [sys.executable, str(SERVER_SCRIPT), server_name]
    with Child(f"{contender.name} server", command, env=env) as server:
        port = int(server.read_line(START_TIMEOUT))
        try:
            return trio.run(_run_clients, port, settings.clients(scenario), settings, server.pid)
        except Exception as exc:
            raise RuntimeError(f"{exc!r}{server.stderr_tail()}") from exc


# --------------------------------------------------------------------------- #
# Results and report
# --------------------------------------------------------------------------- #


@dataclass
class Results:
    """Every raw sample, plus errors and skipped contenders."""

    samples: list[dict[str, Any]] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)

    def median(self, scenario: str, name: str, key: str) -> float | None:
        """The median of ``key`` over ``name``'s samples in ``scenario``."""
        values = [s[key] for s in self.samples if s["scenario"] == scenario and s["contender"] == name]
        return statistics.median(values) if values else None

    def values(self, scenario: str, name: str, key: str) -> list[float]:
        """Every sample's ``key`` (for the min - max range)."""
        return [s[key] for s in self.samples if s["scenario"] == scenario and s["contender"] == name]


def render(results: Results, names: list[str], scenarios: list[str], settings: Settings, meta: dict[str, Any]) -> str:
    """The Markdown table: medians, ranges, CPU per round trip, and the ratio rows."""
    header = ["Server", "Round trips/s", "min - max", "Server CPU, us/round trip", "Client CPU, us/round trip"]
    lines = [
        "## Socket.IO echo benchmark",
        "",
        f'Round trips of a {len(PAYLOAD)}-character event with an ack (`42<id>["echo",...]` answered by '
        f"`43<id>[...]`), over WebSocket; median of {settings.reps} repetition{'s' if settings.reps != 1 else ''} "
        f"of {settings.duration} s (contenders alternating, fresh server each, after {settings.warmup} s of "
        f"warm-up); the client is the same trio_ws WebSocket client for every server "
        f"({meta['cpu_count']} CPUs, Python {meta['python']}, {meta['date']}; 1-min load average "
        f"{meta['load_average']['before']:.1f} before, {meta['load_average']['after']:.1f} after).",
    ]
    for scenario in scenarios:
        column, _ = SCENARIOS[scenario]
        lines += ["", f"### {column.replace('Echo round trips/s, ', '')}", "", "| " + " | ".join(header) + " |"]
        lines.append("|" + "---|" * len(header))
        for name in names:
            values = results.values(scenario, name, "round_trips_per_second")
            spread = f"{fmt(min(values))} - {fmt(max(values))}" if values else "n/a"
            cells = [
                CONTENDERS[name].label,
                fmt(results.median(scenario, name, "round_trips_per_second")),
                spread,
                fmt(results.median(scenario, name, "server_cpu_us_per_round_trip")),
                fmt(results.median(scenario, name, "client_cpu_us_per_round_trip")),
            ]
            lines.append("| " + " | ".join(cells) + " |")
        for top, bottom in ratio_pairs(names):
            a = results.median(scenario, top, "round_trips_per_second")
            b = results.median(scenario, bottom, "round_trips_per_second")
            ca = results.median(scenario, top, "server_cpu_us_per_round_trip")
            cb = results.median(scenario, bottom, "server_cpu_us_per_round_trip")
            ratio = f"{a / b:.2f}x" if a is not None and b else "n/a"
            cpu_ratio = f"{ca / cb:.2f}x" if ca is not None and cb else "n/a"
            label = f"**{CONTENDERS[top].label} / {CONTENDERS[bottom].label}**"
            lines.append(f"| {label} | {ratio} | | {cpu_ratio} | |")
    return "\n".join(lines) + "\n"


def ratio_pairs(names: list[str]) -> list[tuple[str, str]]:
    """The ratio rows among ``names``: trio_ws against python-socketio (both ways), and against its baseline."""
    pairs = [(SUBJECT, PEER), (SUBJECT, PEER_UVLOOP), (SUBJECT, BASELINE)]
    return [(top, bottom) for top, bottom in pairs if top in names and bottom in names]


def _version(distribution: str) -> str:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "not installed"


# --------------------------------------------------------------------------- #
# Command line
# --------------------------------------------------------------------------- #


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 repetitions of 0.5 s (default: 3 of 2 s)")
    parser.add_argument("--only", default=",".join(SCENARIOS), help=f"scenarios ({', '.join(SCENARIOS)})")
    parser.add_argument("--contenders", default=",".join(CONTENDERS), help=f"servers ({', '.join(CONTENDERS)})")
    parser.add_argument("--reps", type=int, help="repetitions per cell (default 3)")
    parser.add_argument("--duration", type=float, help="seconds of each timed run (default 2, quick 0.5)")
    parser.add_argument("--warmup", type=float, help="seconds of untimed warm-up (default 0.5, quick 0.2)")
    parser.add_argument("--clients", type=int, default=100, help="clients of echo_concurrent (default 100)")
    parser.add_argument(
        "--baseline", type=Path, metavar="DIR", help="also run trio_ws from another checkout (DIR/trio_ws)"
    )
    parser.add_argument("--output", type=Path, metavar="FILE.md", help="also write the table here")
    parser.add_argument("--json", type=Path, metavar="FILE", help="write every sample as JSON")
    args = parser.parse_args(argv)
    args.only = [s.strip() for s in args.only.split(",") if s.strip()]
    args.contenders = [c.strip() for c in args.contenders.split(",") if c.strip()]
    for value, allowed, what in ((args.only, SCENARIOS, "--only"), (args.contenders, CONTENDERS, "--contenders")):
        unknown = [v for v in value if v not in allowed]
        if unknown or not value:
            parser.error(f"{what}: expected a comma-separated list of {', '.join(allowed)}, got {unknown or value}")
    if args.baseline is not None and not (args.baseline / "trio_ws" / "__init__.py").is_file():
        parser.error(f"--baseline {args.baseline}: no trio_ws package there")
    return args


def _terminate(signum: int, frame: FrameType | None) -> None:
    """Treat SIGTERM like Ctrl-C, which unwinds every Child.__exit__ (killing the servers)."""
    signal.raise_signal(signal.SIGINT)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; exit status 1 if a measurement failed, 130 when interrupted."""
    args = parse_args(argv)
    settings = Settings(
        reps=args.reps or 3,
        duration=args.duration or (0.5 if args.quick else 2.0),
        warmup=args.warmup if args.warmup is not None else (0.2 if args.quick else 0.5),
        concurrent_clients=args.clients,
    )
    signal.signal(signal.SIGTERM, _terminate)
    raise_fd_limit()
    results = Results()
    names = []
    for name in args.contenders:
        reason = CONTENDERS[name].unavailable_reason()
        if reason is None:
            names.append(name)
        else:
            results.skipped[name] = reason
            note(f"note: skipping {name}: {reason}")
    if args.baseline is not None and SUBJECT in names:
        base = CONTENDERS[SUBJECT]
        label = f"{base.label}, baseline ({args.baseline.resolve().name})"
        CONTENDERS[BASELINE] = Contender(BASELINE, label, base.needs, str(args.baseline.resolve()))
        names.insert(names.index(SUBJECT) + 1, BASELINE)

    load_before = os.getloadavg()[0]
    if load_before > 0.5 * (os.cpu_count() or 1):
        note(f"warning: load average is {load_before:.2f}; other processes will add noise")
    started = time.perf_counter()
    interrupted = False
    try:
        for scenario in args.only:
            note(f"== {scenario}: {settings.clients(scenario)} client(s), {settings.duration} s per run ==")
            active = list(names)
            for rep in range(settings.reps):
                line = []
                for name in list(active):
                    try:
                        sample = measure(CONTENDERS[name], scenario, settings)
                    except Exception as exc:
                        results.errors.append({"scenario": scenario, "contender": name, "rep": rep, "error": str(exc)})
                        note(f"error: {name} in {scenario}: {exc}")
                        active.remove(name)
                        continue
                    results.samples.append({"scenario": scenario, "contender": name, "rep": rep, **sample})
                    line.append(
                        f"{name} {fmt(sample['round_trips_per_second'])}/s, "
                        f"server {fmt(sample['server_cpu_us_per_round_trip'])} us"
                    )
                note(f"[{scenario}] rep {rep + 1}/{settings.reps}: " + " | ".join(line))
    except KeyboardInterrupt:
        interrupted = True
        note("interrupted; every server was stopped; reporting what was measured")
    meta: dict[str, Any] = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "cpu_model": cpu_model(),
        "quick": args.quick,
        "interrupted": interrupted,
        "reps": settings.reps,
        "settings": asdict(settings),
        "payload_characters": len(PAYLOAD),
        "total_seconds": round(time.perf_counter() - started, 1),
        "load_average": {"before": load_before, "after": os.getloadavg()[0]},
        "baseline": str(args.baseline) if args.baseline is not None else None,
        "versions": {
            name: _version(name)
            for name in ("trio", "trio_ws", "python-socketio", "uvicorn", "uvloop", "httptools", "websockets")
        },
    }
    report = render(results, names, args.only, settings, meta)
    print(report)
    note(f"total time: {meta['total_seconds']:.0f} s")
    if args.output:
        args.output.write_text(report, encoding="utf-8")
    if args.json:
        payload = {
            "meta": meta,
            "contenders": {name: CONTENDERS[name].label for name in names},
            "scenarios": {name: SCENARIOS[name][0] for name in args.only},
            "samples": results.samples,
            "errors": results.errors,
            "skipped": results.skipped,
        }
        args.json.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    if interrupted:
        return 130
    return 1 if results.errors else 0


if __name__ == "__main__":
    sys.exit(main())
