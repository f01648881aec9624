"""Idle memory of server connections: RSS and tracemalloc over many connections.

Run from the project root::

    .venv/bin/python benchmarks/bench_memory.py                  # 10,000 connections
    .venv/bin/python benchmarks/bench_memory.py --connections 2000 --json results/memory.json

For each variant (trio_ws without compression, trio_ws with permessage-deflate
negotiated, and any ``--contenders`` of ``bench_contenders.py``), a fresh echo
server process is started twice:

* **RSS run.** The server runs as in ``bench_core.py``. The driver opens and
  closes a few warm-up connections, reads the server's ``VmRSS``, opens N idle
  connections, waits until the RSS stops moving and reports the growth / N.
* **tracemalloc run.** The server starts
  :mod:`tracemalloc` before serving; the driver asks it for a snapshot before
  and after the N connections. Reported: traced bytes / N, the allocation sites
  that grew most (bytes per connection, by file and line), and the objects per
  connection by type (from :func:`gc.get_objects`).

The client is a plain blocking-socket client in the driver process: it sends a
fixed upgrade request (offering permessage-deflate for the deflate variant),
reads the 101 answer and then keeps the socket open without reading, so the
client costs the server nothing beyond the idle connection itself.
"""

from __future__ import annotations

import argparse
import base64
import gc
import json
import os
import platform
import selectors
import signal
import socket
import subprocess
import sys
import threading
import time
import tracemalloc
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from bench_contenders import BASELINE, BASELINE_ENV, CONTENDERS, HOST, enable_baseline
from bench_server import raise_fd_limit
from machine import cpu_model
from report_memory import memory_markdown, parse_memory

SCRIPT = Path(__file__).resolve()
WARMUP_CONNECTIONS = 5
SERVER_START_TIMEOUT = 30.0


# --------------------------------------------------------------------------- #
# Server process
# --------------------------------------------------------------------------- #


def _measure_here(traced: bool) -> dict[str, Any]:
    """This process's memory figures (called from the control thread)."""
    gc.collect()
    out: dict[str, Any] = {"rss_kib": _rss_kib(os.getpid())}
    if traced:
        snapshot = tracemalloc.take_snapshot().filter_traces(
            (tracemalloc.Filter(False, tracemalloc.__file__), tracemalloc.Filter(False, __file__))
        )
        out["traced_bytes"] = tracemalloc.get_traced_memory()[0]
        out["sites"] = {
            f"{stat.traceback[0].filename}:{stat.traceback[0].lineno}": stat.size
            for stat in snapshot.statistics("lineno")
        }
    types: Counter[str] = Counter()
    for obj in gc.get_objects():
        kind = type(obj)
        types[f"{kind.__module__}.{kind.__qualname__}"] += 1
    out["types"] = dict(types)
    return out


def serve(contender_name: str, compression: str | None, traced: bool) -> None:
    """Run an echo server; answer ``measure`` lines on stdin with a JSON line."""
    if traced:
        tracemalloc.start(1)
    raise_fd_limit()
    contender = CONTENDERS[contender_name]
    lock = threading.Lock()

    def control() -> None:
        for line in sys.stdin:
            if line.strip() == "measure":
                with lock:
                    print(json.dumps(_measure_here(traced)), flush=True)
        os._exit(0)  # the driver went away

    def on_ready(port: int) -> None:
        print(port, flush=True)
        threading.Thread(target=control, name="bench-memory-control", daemon=True).start()

    contender.serve_forever(compression, on_ready)


# --------------------------------------------------------------------------- #
# Driver
# --------------------------------------------------------------------------- #


def _rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS in /proc status")


class Server:
    """A server child process, killed by pid on exit."""

    def __init__(self, contender: str, compression: str | None, traced: bool) -> None:
        command = [sys.executable, str(SCRIPT), "--serve", contender, "--compression", compression or "none"]
        if traced:
            command.append("--traced")
        self.proc = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        try:
            self.port = int(self._line(SERVER_START_TIMEOUT))
        except BaseException:
            self.kill()
            raise

    def _line(self, timeout: float) -> str:
        assert self.proc.stdout is not None
        with selectors.DefaultSelector() as selector:
            selector.register(self.proc.stdout, selectors.EVENT_READ)
            if not selector.select(timeout):
                raise RuntimeError("server did not answer")
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"server exited with {self.proc.wait()}")
        return line

    def measure(self) -> dict[str, Any]:
        """Ask the server for its figures (after a full garbage collection)."""
        assert self.proc.stdin is not None
        self.proc.stdin.write("measure\n")
        self.proc.stdin.flush()
        result: dict[str, Any] = json.loads(self._line(300.0))
        return result

    def settled_rss(self) -> int:
        """RSS once two readings 0.2 s apart agree (at most ~5 s)."""
        previous = _rss_kib(self.proc.pid)
        for _ in range(25):
            time.sleep(0.2)
            current = _rss_kib(self.proc.pid)
            if current == previous:
                break
            previous = current
        return previous

    def kill(self) -> None:
        """Terminate by pid (SIGTERM, then SIGKILL) and reap."""
        if self.proc.returncode is None:
            try:
                os.kill(self.proc.pid, signal.SIGTERM)
                try:
                    self.proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    os.kill(self.proc.pid, signal.SIGKILL)
                    self.proc.wait()
            except ProcessLookupError:
                self.proc.wait()
        for pipe in (self.proc.stdin, self.proc.stdout):
            if pipe is not None:
                pipe.close()


@contextmanager
def running(contender: str, compression: str | None, traced: bool) -> Iterator[Server]:
    server = Server(contender, compression, traced)
    try:
        yield server
    finally:
        server.kill()


def _request(compression: str | None) -> bytes:
    key = base64.b64encode(os.urandom(16)).decode()
    lines = [
        "GET / HTTP/1.1",
        "Host: 127.0.0.1",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Key: {key}",
        "Sec-WebSocket-Version: 13",
    ]
    if compression is not None:
        lines.append("Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("ascii")


def open_idle(port: int, compression: str | None) -> socket.socket:
    """One upgraded connection that then stays idle (the 101 is read and checked)."""
    sock = socket.create_connection((HOST, port), timeout=30)
    sock.sendall(_request(compression))
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(4096)
        if not chunk:
            raise RuntimeError("server closed during the handshake")
        head += chunk
    if not head.startswith(b"HTTP/1.1 101"):
        raise RuntimeError(f"handshake refused: {head[:80]!r}")
    negotiated = b"permessage-deflate" in head.lower()
    if negotiated != (compression is not None):
        raise RuntimeError(f"compression negotiated: {negotiated}, asked for: {compression}")
    return sock


def _per_connection(after: dict[str, int], before: dict[str, int], n: int) -> dict[str, float]:
    grown = {key: (after.get(key, 0) - before.get(key, 0)) / n for key in after}
    return {key: value for key, value in grown.items() if abs(value) >= 0.05}


def _short_site(site: str) -> str:
    for marker in ("/site-packages/", "/lib/python3", str(SCRIPT.parent.parent) + "/"):
        if marker in site:
            site = site.split(marker, 1)[1]
    return site


def measure_variant(contender: str, compression: str | None, n: int, traced: bool) -> dict[str, Any]:
    """One fresh server, N idle connections: RSS or tracemalloc figures per connection."""
    with running(contender, compression, traced) as server:
        for _ in range(WARMUP_CONNECTIONS):
            open_idle(server.port, compression).close()
        time.sleep(0.3)
        before = server.measure()
        rss_before = server.settled_rss()
        sockets = []
        try:
            started = time.perf_counter()
            for _ in range(n):
                sockets.append(open_idle(server.port, compression))
            opened = time.perf_counter() - started
            rss_after = server.settled_rss()
            after = server.measure()
        finally:
            for sock in sockets:
                sock.close()
    result: dict[str, Any] = {
        "connections": n,
        "open_seconds": opened,
        "rss_kib_per_connection": (rss_after - rss_before) / n,
        "types": _per_connection(after["types"], before["types"], n),
    }
    if traced:
        result["traced_kib_per_connection"] = (after["traced_bytes"] - before["traced_bytes"]) / n / 1024
        sites = _per_connection(after["sites"], before["sites"], n)
        result["sites"] = {_short_site(site): size for site, size in sites.items()}
    return result


def measure_codecs(count: int) -> list[dict[str, Any]]:
    """A server connection's zlib codecs after one compressed message each way, KiB per connection.

    ``count`` server-side codecs per setting (made the way a server
    negotiates them, against a client offering ``client_max_window_bits``)
    each compress one message and inflate one from a client; tracemalloc
    counts what they hold afterwards. zlib allocates through Python's raw
    allocator, so its windows and hash tables are traced.
    """
    from dataclasses import asdict

    from trio_ws import Deflate
    from trio_ws.compression import deflate, new_compressor, server_accept

    settings_measured = (
        ("trio_ws's defaults (server window 12 bits, mem_level 5, client window 12 bits)", Deflate()),
        (
            "zlib's defaults (windows 15 bits, mem_level 8)",
            Deflate(server_max_window_bits=15, client_max_window_bits=15, mem_level=8),
        ),
        (
            "server_no_context_takeover and client_no_context_takeover",
            Deflate(server_no_context_takeover=True, client_no_context_takeover=True),
        ),
    )
    message = b"".join(b"%d: an idle-memory benchmark message, " % i for i in range(40))
    results = []
    for label, settings in settings_measured:
        client = new_compressor(15, 6, 8)
        payload = deflate(client, message)
        gc.collect()
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            codecs = []
            for _ in range(count):
                _, codec = server_accept(settings, {"client_max_window_bits": None}, None)
                codec.compress_message(message)
                inflated = codec.decompress_message(payload)
                if inflated != message:
                    raise RuntimeError(f"codec round trip failed for {label}")
                codecs.append(codec)
            gc.collect()
            held = tracemalloc.get_traced_memory()[0] - before
        finally:
            tracemalloc.stop()
        del codecs
        results.append(
            {
                "label": label,
                "settings": asdict(settings),
                "codecs": count,
                "kib_per_codec": held / count / 1024,
            }
        )
    return results


def main(argv: list[str] | None = None) -> int:
    """Measure (or re-render with ``--results``) and print the Markdown report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--serve", metavar="CONTENDER", help=argparse.SUPPRESS)
    parser.add_argument("--compression", default="none", help=argparse.SUPPRESS)
    parser.add_argument("--traced", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--connections", type=int, default=10_000, help="idle connections (default 10,000)")
    parser.add_argument("--reps", type=int, default=3, help="measurements per variant (default 3)")
    parser.add_argument(
        "--codecs", type=int, default=500, help="zlib codec pairs per compression setting (default 500; 0: none)"
    )
    parser.add_argument(
        "--contenders",
        default="trio_ws",
        help="comma-separated contenders of bench_contenders.py (default trio_ws)",
    )
    parser.add_argument("--baseline", type=Path, metavar="DIR", help="also measure DIR/trio_ws as trio_ws-baseline")
    parser.add_argument(
        "--json", type=Path, metavar="FILE", help="write every figure as JSON (report.py folds it into results.json)"
    )
    parser.add_argument(
        "--results",
        type=Path,
        metavar="FILE",
        help="measure nothing: print the report of an earlier --json file",
    )
    parser.add_argument("--output", type=Path, metavar="FILE.md", help="also write the report here")
    args = parser.parse_args(argv)
    if args.serve is not None:
        serve(args.serve, None if args.compression == "none" else args.compression, args.traced)
        return 0

    results = measure(args, argv) if args.results is None else json.loads(args.results.read_text(encoding="utf-8"))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    report = "\n".join(memory_markdown(parse_memory(results))) + "\n"
    print(report)
    if args.output:
        args.output.write_text(report, encoding="utf-8")
    return 0


def _measuring_arguments(arguments: list[str]) -> list[str]:
    """The command-line arguments without where the output went (--json, --output): how it measured."""
    kept: list[str] = []
    skip = False
    for argument in arguments:
        if skip:
            skip = False
        elif argument in ("--json", "--output"):
            skip = True
        elif not argument.startswith(("--json=", "--output=")):
            kept.append(argument)
    return kept


def measure(args: argparse.Namespace, argv: list[str] | None) -> dict[str, Any]:
    """Every variant, ``args.reps`` times, alternating; the results as JSON-ready data."""
    raise_fd_limit()
    names = [name.strip() for name in args.contenders.split(",") if name.strip()]
    if args.baseline is not None:
        enable_baseline(str(args.baseline))
        os.environ[BASELINE_ENV] = str(args.baseline.resolve())
        CONTENDERS[BASELINE.name] = BASELINE
        names.append(BASELINE.name)
    variants: list[tuple[str, str, str | None]] = []
    for name in names:
        contender = CONTENDERS[name]
        variants.append((name, name, None))
        if contender.supports_compression:
            variants.append((f"{name} (deflate)", name, "deflate"))
    load_before = os.getloadavg()[0]
    figures: dict[str, dict[str, list[dict[str, Any]]]] = {label: {"rss": [], "traced": []} for label, _, _ in variants}
    for rep in range(args.reps):
        for label, name, compression in variants:
            for traced in (False, True):
                result = measure_variant(name, compression, args.connections, traced)
                figures[label]["traced" if traced else "rss"].append(result)
                kind = "tracemalloc" if traced else "RSS"
                shown = result.get("traced_kib_per_connection", result["rss_kib_per_connection"])
                print(f"[{label}] rep {rep + 1}/{args.reps} {kind}: {shown:.2f} KiB/conn", file=sys.stderr)
    arguments = _measuring_arguments(sys.argv[1:] if argv is None else argv)
    return {
        "meta": {
            "command": "python benchmarks/bench_memory.py " + " ".join(arguments),
            "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpu_count": os.cpu_count(),
            "cpu_model": cpu_model(),
            "connections": args.connections,
            "reps": args.reps,
            "load_average": {"before": load_before, "after": os.getloadavg()[0]},
        },
        "variants": figures,
        "codecs": measure_codecs(args.codecs) if args.codecs > 0 else [],
    }


if __name__ == "__main__":
    sys.exit(main())
