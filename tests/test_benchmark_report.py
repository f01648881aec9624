"""Tests of ``benchmarks/report.py``, the benchmark report generator.

One module-scoped fixture runs ``report.py --run`` for real with tiny amounts
of work (``bench_core.py``: raw TCP, trio_ws and trio-websocket, one 0.2 s
repetition of ``rtt`` and of ``memory`` with 20 connections; ``bench_hub.py``:
two servers, 10 clients, 100 in-memory members; ``bench_memory.py``: 20 idle
connections, 5 codecs), about 40 s. Its JSON files
are the benchmarks' real output, so the report is tested against the schema
the benchmarks actually write. The other tests use hand-written results in the
same schema (checked against the real files) for exact table contents.
"""

from __future__ import annotations

import copy
import importlib.util
import json
import os
import re
import shlex
import struct
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

pytestmark = pytest.mark.slow  # runs report.py and the benchmarks' stand-ins: tens of seconds

ROOT = Path(__file__).resolve().parent.parent
BENCHMARKS = ROOT / "benchmarks"
REPORT = BENCHMARKS / "report.py"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

CORE_ARGS = "--reps 1 --duration 0.2 --connections 20 --contenders raw,trio_ws,trio-websocket --only rtt,memory"
HUB_ARGS = (
    "--reps 1 --clients 10 --messages 3 --warmup-messages 1 --members 100 --burst-clients 10"
    " --contenders trio_ws-hub,trio-websocket-loop"
)
MEMORY_ARGS = "--connections 20 --reps 1 --codecs 5"
SOCKETIO_ARGS = "--reps 1 --duration 0.2 --warmup 0.1 --clients 3"


def _load_report_module() -> ModuleType:
    # report.py imports its sibling modules (report_results, ...) as a script does.
    if str(BENCHMARKS) not in sys.path:
        sys.path.insert(0, str(BENCHMARKS))
    spec = importlib.util.spec_from_file_location("benchmark_report", REPORT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


report = _load_report_module()


# --------------------------------------------------------------------------- #
# Helpers
# --------------------------------------------------------------------------- #


def run_cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """``report.py`` as a user runs it, from the project root."""
    return subprocess.run(
        [sys.executable, str(REPORT), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def assert_png(path: Path, min_width: int = 400, min_height: int = 250) -> None:
    """``path`` is a complete PNG image of a plausible chart size."""
    assert path.is_file(), f"{path.name} was not written"
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE, f"{path.name} is not a PNG file"
    assert data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    assert width >= min_width and height >= min_height, (width, height)
    assert data[-8:-4] == b"IEND", f"{path.name} is truncated"
    assert len(data) > 8_000, f"{path.name} is only {len(data)} bytes: an empty chart?"
    import matplotlib.image

    pixels = matplotlib.image.imread(path)
    assert pixels.shape[:2] == (height, width)
    assert pixels.std() > 0.01, f"{path.name} is a blank image"


def assert_valid_rst(path: Path) -> None:
    """The reStructuredText fragment parses without a warning."""
    import docutils.core
    import docutils.utils

    try:
        docutils.core.publish_doctree(
            path.read_text(encoding="utf-8"),
            settings_overrides={"halt_level": 2, "report_level": 2, "warning_stream": False},
        )
    except docutils.utils.SystemMessage as exc:  # pragma: no cover - shown on failure
        pytest.fail(f"{path.name} is not valid reStructuredText: {exc}")


def md_row(cells: list[str]) -> str:
    """A Markdown table row as report.py writes it."""
    return "| " + " | ".join(cells) + " |"


def bold(cells: list[str]) -> list[str]:
    """Cells of a bold row."""
    return [f"**{c}**" if c else c for c in cells]


# --------------------------------------------------------------------------- #
# Hand-written results in the benchmarks' schema
# --------------------------------------------------------------------------- #

CORE_LABELS = {
    "raw": "raw trio TCP (ceiling)",
    "trio_ws": "trio_ws",
    "trio-websocket": "trio-websocket",
    "websockets.trio": "websockets.trio",
    "websockets.asyncio": "websockets.asyncio",
}
CORE_METRICS = {
    "rtt": ("Echo round trips/s (32 B)", "round trips/s", True),
    "pipelined": ("Pipelined msg/s (32 B)", "messages/s", True),
    "bulk": ("1 MiB echo MB/s", "MB/s", True),
    "handshake": ("Handshakes/s", "open+close/s", True),
    "idle_memory": ("Idle KiB/conn", "KiB/connection", False),
    "idle_memory_deflate": ("Idle KiB/conn (deflate)", "KiB/connection", False),
}
#: Medians per metric, in CORE_LABELS order (None: not measured).
CORE_MEDIANS: dict[str, list[float | None]] = {
    "rtt": [10330.0, 4336.0, 2331.0, 2609.0, 5554.0],
    "pipelined": [14804.0, 12460.0, 5182.0, 6058.0, 28248.0],
    "bulk": [418.0, 222.0, 24.4, 183.0, 297.0],
    "handshake": [1783.0, 312.0, 324.0, 242.0, 450.0],
    "idle_memory": [4.8, 16.6, 19.1, 20.8, 13.9],
    "idle_memory_deflate": [None, 16.8, None, 55.3, 47.3],
}


def core_fixture() -> dict[str, Any]:
    """Results of three repetitions, in the format ``bench_core.py --json`` writes."""
    samples: list[dict[str, Any]] = []
    summary: dict[str, dict[str, dict[str, float]]] = {}
    for metric, medians in CORE_MEDIANS.items():
        for name, median in zip(CORE_LABELS, medians, strict=True):
            if median is None:
                continue
            values = [median * 0.9, median, median * 1.05]
            for rep, value in enumerate(values):
                samples.append({"metric": metric, "contender": name, "rep": rep, "value": value})
            summary.setdefault(metric, {})[name] = {"median": median, "min": values[0], "max": values[2], "n": 3}
    return {
        "meta": {
            "date": "2026-11-21T20:57:39+00:00",
            "python": "3.11.7",
            "platform": "Linux-test",
            "cpu_count": 2,
            "reps": 3,
            "quick": True,
            "settings": {
                "reps": 3,
                "duration": 0.5,
                "warmup": 0.25,
                "calibration_messages": 500,
                "connections": 200,
                "client_cpu": None,
                "server_cpu": None,
            },
            "total_seconds": 93.2,
            "load_average": {"before": 1.4, "after": 1.6},
            "versions": {"trio": "0.35.0", "trio_ws": "0.1.0", "trio-websocket": "0.12.2", "websockets": "17.4"},
        },
        "metrics": {
            key: {"key": key, "column": column, "unit": unit, "higher_is_better": higher}
            for key, (column, unit, higher) in CORE_METRICS.items()
        },
        "contenders": dict(CORE_LABELS),
        "samples": samples,
        "summary": summary,
        "errors": [],
        "skipped": {},
    }


HUB_LABELS = {
    "trio_ws-hub": "trio_ws Hub",
    "trio-websocket-loop": "trio-websocket, per-connection loop",
    "websockets-broadcast": "websockets.asyncio broadcast()",
    "websockets.trio-broadcast": "websockets.trio broadcast()",
}
HUB_RATES = {
    "trio_ws-hub": 60000.0,
    "trio-websocket-loop": 20000.0,
    "websockets-broadcast": 80000.0,
    "websockets.trio-broadcast": 30000.0,
}
HUB_VARIANTS = {
    "trio_ws-hub": "trio_ws Hub",
    "trio_ws-loop": "trio_ws, per-connection loop (no hub)",
    "trio-websocket-loop": "trio-websocket, per-connection loop",
}
#: Peak bytes per member during a burst, per burst server.
HUB_BURST = {"trio_ws-hub": 4800.0, "trio-websocket-loop": 9000.0}
#: (all received, s; KiB per member) per in-memory variant.
HUB_MEMORY = {"trio_ws-hub": (0.050, 30.0), "trio_ws-loop": (0.040, 25.0), "trio-websocket-loop": (0.200, 36.0)}


def hub_fixture() -> dict[str, Any]:
    """One repetition of each table, in the format ``bench_hub.py --json`` writes."""
    samples: list[dict[str, Any]] = []
    for name, rate in HUB_RATES.items():
        elapsed = 30000 / rate
        samples.append(
            {
                "table": "fanout",
                "contender": name,
                "rep": 0,
                "round": 1,
                "messages": 100,
                "elapsed_seconds": elapsed,
                "first_client_seconds": elapsed / 2,
                "loop_seconds": 0.01,
                "deliveries": 30000,
                "deliveries_per_second": rate,
                "server_cpu_seconds": 0.4,
                "client_cpu_seconds": 0.3,
                "server_cpu_wait_seconds": 0.01,
                "client_cpu_wait_seconds": 0.02,
                "setup_seconds": 1.0,
                "warmup": [],
            }
        )
    for name, per_member in HUB_BURST.items():
        samples.append(
            {
                "table": "burst",
                "contender": name,
                "rep": 0,
                "round": 1,
                "messages": 100,
                "elapsed_seconds": 1.5,
                "deliveries_per_second": 20000.0,
                "server_rss_before_kib": 30000,
                "server_peak_rss_kib": 30000 + per_member * 300 / 1024,
                "peak_bytes_per_client": per_member,
            }
        )
    for name, (elapsed, kib) in HUB_MEMORY.items():
        samples.append(
            {
                "table": "memory",
                "contender": name,
                "rep": 0,
                "variant": name,
                "members": 10000,
                "size": 100,
                "rss_before_kib": 30000,
                "rss_after_kib": 30000 + int(kib * 10000),
                "kib_per_member": kib,
                "setup_seconds": 2.0,
                "call_seconds": elapsed / 2,
                "elapsed_seconds": elapsed,
                "deliveries_per_second": 10000 / elapsed,
            }
        )
    return {
        "meta": {
            "date": "2026-11-21T21:00:00+00:00",
            "python": "3.11.7",
            "platform": "Linux-test",
            "cpu_count": 2,
            "quick": True,
            "interrupted": False,
            "settings": {
                "reps": 1,
                "clients": 300,
                "messages": 100,
                "warmup_messages": 10,
                "size": 100,
                "client_processes": 1,
                "members": 10000,
                "burst_clients": 300,
            },
            "total_seconds": 60.0,
            "cpu_model": "Test CPU @ 2.00GHz",
            "burst_bound_bytes": 16384,
            "load_average": {"before": 1.0, "after": 1.2},
            "redis_server": None,
            "versions": {"trio": "0.35.0", "trio_ws": "0.1.0", "coredis": "6.9.0"},
        },
        "contenders": dict(HUB_LABELS),
        "burst_contenders": {name: HUB_LABELS[name] for name in HUB_BURST},
        "memory_variants": dict(HUB_VARIANTS),
        "samples": samples,
        "errors": [],
        "skipped": {"trio_ws-hub-redis": "redis row skipped: trio_ws.hub.redis not available"},
    }


def write_json(path: Path, data: Any) -> Path:
    """Write ``data`` as JSON and return the path."""
    path.write_text(json.dumps(data, indent=2), encoding="utf-8")
    return path


@pytest.fixture
def fixture_files(tmp_path: Path) -> tuple[Path, Path]:
    """The hand-written core and hub results as files."""
    return write_json(tmp_path / "core.json", core_fixture()), write_json(tmp_path / "hub.json", hub_fixture())


# --------------------------------------------------------------------------- #
# The real benchmarks, run once
# --------------------------------------------------------------------------- #


@pytest.fixture(scope="module")
def real_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, subprocess.CompletedProcess[str]]]:
    """``report.py --run`` with tiny amounts of work; yields its output directory and process."""
    out = tmp_path_factory.mktemp("real-run")
    proc = run_cli(
        "--run",
        "--out",
        str(out),
        f"--core-args={CORE_ARGS}",
        f"--hub-args={HUB_ARGS}",
        f"--memory-args={MEMORY_ARGS}",
        f"--socketio-args={SOCKETIO_ARGS}",
        timeout=400,
    )
    assert proc.returncode == 0, f"report.py --run failed:\n{proc.stderr[-4000:]}"
    yield out, proc


def real_part(out: Path, part: str) -> dict[str, Any] | None:
    """The raw output of one benchmark, from the run's one results file."""
    results = json.loads((out / report.RESULTS_NAME).read_text(encoding="utf-8"))
    value: dict[str, Any] | None = results[part]
    return value


def test_run_mode_writes_results_report_and_commands(
    real_run: tuple[Path, subprocess.CompletedProcess[str]],
) -> None:
    out, proc = real_run
    assert proc.stdout.strip() == str(out / "report.md")
    text = (out / "report.md").read_text(encoding="utf-8")
    python = os.path.relpath(sys.executable, ROOT) if sys.executable.startswith(str(ROOT)) else sys.executable
    core_json = os.path.relpath(out / "core.json", ROOT) if str(out).startswith(str(ROOT)) else str(out / "core.json")
    core_command = shlex.join([python, "benchmarks/bench_core.py", "--quick", *shlex.split(CORE_ARGS)])
    assert f"{core_command} --json {shlex.quote(core_json)}" in text
    assert "Made with `" in text and "benchmarks/report.py --run --out" in text
    assert "bench_core.py: exit status 0" in text
    assert "1-minute load average:" in text
    # One results file: the benchmarks' own outputs are folded into it.
    assert real_part(out, "core") is not None
    assert not (out / "core.json").exists() and not (out / "hub.json").exists()
    for name in ("ratios.png", "core_rtt.png", "core_idle_memory.png", "core_idle_memory_deflate.png"):
        assert_png(out / name)
    assert_valid_rst(out / "report.inc")
    # The performance page says how its figures were measured.
    assert_valid_rst(out / "performance.inc")
    assert "benchmarks/bench_core.py --quick" in (out / "performance.inc").read_text(encoding="utf-8")
    # The idle-memory benchmark is part of the same results file and report.
    memory = real_part(out, "memory")
    assert memory is not None and set(memory["variants"]) == {"trio_ws", "trio_ws (deflate)"}
    assert "bench_memory.py --connections 10000 --reps 1 " + MEMORY_ARGS in text
    assert "## Idle memory per server connection" in text and "memory benchmark " in text
    assert not (out / "memory.json").exists()
    for name in ("memory.inc", "compression.inc"):
        assert_valid_rst(out / name)
    assert "20 idle server connections per measurement" in (out / "memory.inc").read_text(encoding="utf-8")
    if (BENCHMARKS / "bench_hub.py").exists():
        assert real_part(out, "hub") is not None
        assert "bench_hub.py --quick " + HUB_ARGS in text
        assert_png(out / "hub_fanout.png")
        assert_png(out / "hub_memory.png")
    # The Socket.IO echo benchmark ran too; its table is in the report and on the performance page.
    sio = real_part(out, "socketio")
    assert (
        sio is not None
        and sio["errors"] == []
        and {s["scenario"] for s in sio["samples"]}
        == {
            "echo",
            "echo_concurrent",
        }
    )
    assert "bench_socketio.py --quick " + SOCKETIO_ARGS in text
    assert "## Socket.IO echo" in text and "Socket.IO benchmark " in text
    assert not (out / "socketio.json").exists()
    assert_valid_rst(out / "socketio.inc")
    fragment = (out / "socketio.inc").read_text(encoding="utf-8")
    assert "benchmarks/bench_socketio.py --quick" in fragment and ".. list-table::" in fragment


def test_real_core_results_have_the_keys_report_reads(real_run: tuple[Path, Any]) -> None:
    data = real_part(real_run[0], "core")
    assert data is not None
    assert set(report.CORE_TOP_KEYS) <= set(data)
    assert set(report.CORE_META_KEYS) <= set(data["meta"])
    assert {"before", "after"} == set(data["meta"]["load_average"])
    assert {"duration", "connections"} <= set(data["meta"]["settings"])
    assert set(data["metrics"]) == {"rtt", "idle_memory", "idle_memory_deflate"}
    for info in data["metrics"].values():
        assert set(report.CORE_METRIC_KEYS) <= set(info)
    assert data["summary"], "the benchmark measured nothing"
    for per_contender in data["summary"].values():
        for cell in per_contender.values():
            assert set(report.CORE_CELL_KEYS) <= set(cell)


def test_hand_written_core_fixture_matches_the_real_schema(real_run: tuple[Path, Any]) -> None:
    real = real_part(real_run[0], "core")
    assert real is not None
    fake = core_fixture()
    assert set(fake) == set(real)
    # The hand-written results invent no key; the benchmark may add keys report.py does not read.
    assert set(fake["meta"]) <= set(real["meta"])
    assert set(fake["meta"]["settings"]) <= set(real["meta"]["settings"])
    for key, info in real["metrics"].items():
        assert fake["metrics"][key] == info
    real_cell = next(iter(next(iter(real["summary"].values())).values()))
    fake_cell = next(iter(next(iter(fake["summary"].values())).values()))
    assert set(fake_cell) == set(real_cell)
    assert set(fake["samples"][0]) <= set(real["samples"][0])
    assert set(real["contenders"]) <= set(fake["contenders"])
    for name, label in real["contenders"].items():
        assert fake["contenders"][name] == label


def test_hand_written_hub_fixture_matches_the_real_schema(real_run: tuple[Path, Any]) -> None:
    real = real_part(real_run[0], "hub")
    assert real is not None
    fake = hub_fixture()
    assert set(fake) == set(real) == set(report.HUB_TOP_KEYS)
    # The hand-written results invent no key; the benchmark may add keys report.py does not read.
    assert set(fake["meta"]) <= set(real["meta"])
    assert set(fake["meta"]["settings"]) <= set(real["meta"]["settings"])
    tables = (("fanout", report.HUB_FANOUT_KEYS), ("memory", report.HUB_MEMORY_KEYS), ("burst", report.HUB_BURST_KEYS))
    for table, keys in tables:
        real_sample = next(s for s in real["samples"] if s["table"] == table)
        fake_sample = next(s for s in fake["samples"] if s["table"] == table)
        assert set(fake_sample) <= set(real_sample)
        assert set(keys) <= set(real_sample)
    for name, label in real["contenders"].items():
        assert fake["contenders"][name] == label
    for name, label in real["memory_variants"].items():
        assert fake["memory_variants"][name] == label


def test_report_from_real_results(real_run: tuple[Path, Any], tmp_path: Path) -> None:
    source = real_run[0]
    data = real_part(source, "core")
    hub = real_part(source, "hub")
    assert data is not None and hub is not None
    args = ["--core", str(write_json(tmp_path / "core.json", data)), "--out", str(tmp_path / "out")]
    args += ["--hub", str(write_json(tmp_path / "hub.json", hub))]
    assert report.main(args) == 0
    text = (tmp_path / "out" / "report.md").read_text(encoding="utf-8")
    summary = data["summary"]
    columns = [data["metrics"][m]["column"] for m in data["metrics"]]
    assert md_row(["Contender", *columns]) in text
    for name, label in data["contenders"].items():
        cells = [
            report.fmt(summary[m][name]["median"]) if name in summary.get(m, {}) else "n/a" for m in data["metrics"]
        ]
        row = [label, *cells]
        assert md_row(bold(row) if name == "trio_ws" else row) in text
    for peer in ("trio-websocket", "websockets.trio"):
        ratios = []
        for metric in data["metrics"]:
            cells = summary.get(metric, {})
            if "trio_ws" in cells and peer in cells:
                ratios.append(f"{cells['trio_ws']['median'] / cells[peer]['median']:.2f}x")
            else:
                ratios.append("n/a")
        assert md_row(bold([f"trio_ws / {peer}", *ratios])) in text
    # trio-websocket was measured in rtt and idle_memory, so those ratios are numbers.
    if "trio-websocket" in summary.get("rtt", {}):
        assert "**trio_ws / trio-websocket** | **n/a** |" not in text
    for name in ("report.md", "report.inc", "ratios.png", "core_rtt.png", "core_idle_memory.png"):
        assert (tmp_path / "out" / name).is_file()
    assert_png(tmp_path / "out" / "core_rtt.png")
    assert_png(tmp_path / "out" / "ratios.png")


# --------------------------------------------------------------------------- #
# Exact contents, from the hand-written results
# --------------------------------------------------------------------------- #


def test_core_and_hub_tables(fixture_files: tuple[Path, Path], tmp_path: Path) -> None:
    core_json, hub_json = fixture_files
    out = tmp_path / "out"
    assert report.main(["--core", str(core_json), "--hub", str(hub_json), "--out", str(out)]) == 0
    text = (out / "report.md").read_text(encoding="utf-8")

    header = ["Contender", *(column for column, _, _ in CORE_METRICS.values())]
    assert md_row(header) in text
    assert md_row(["raw trio TCP (ceiling)", "10,330", "14,804", "418", "1,783", "4.80", "n/a"]) in text
    assert md_row(bold(["trio_ws", "4,336", "12,460", "222", "312", "16.6", "16.8"])) in text
    assert md_row(["trio-websocket", "2,331", "5,182", "24.4", "324", "19.1", "n/a"]) in text
    assert md_row(["websockets.trio", "2,609", "6,058", "183", "242", "20.8", "55.3"]) in text
    assert md_row(["websockets.asyncio", "5,554", "28,248", "297", "450", "13.9", "47.3"]) in text
    assert md_row(bold(["trio_ws / trio-websocket", "1.86x", "2.40x", "9.10x", "0.96x", "0.87x", "n/a"])) in text
    assert md_row(bold(["trio_ws / websockets.trio", "1.66x", "2.06x", "1.21x", "1.29x", "0.80x", "0.30x"])) in text
    # The spread table: min - max of the three repetitions.
    spread = ["3,902 - 4,553", "11,214 - 13,083", "200 - 233", "281 - 328", "14.9 - 17.4", "15.1 - 17.6"]
    assert md_row(bold(["trio_ws", *spread])) in text

    # Hub fan-out: every server, the skipped one, and trio_ws Hub against each peer.
    assert md_row(bold(["trio_ws Hub", "60,000", "60,000 - 60,000", "500", "10.0", "0.40"])) in text
    assert md_row(["trio-websocket, per-connection loop", "20,000", "20,000 - 20,000", "1,500", "10.0", "0.40"]) in text
    assert md_row(["trio_ws-hub-redis", "skipped", "", "", "", ""]) in text
    assert md_row(bold(["trio_ws Hub / trio-websocket, per-connection loop", "3.00x", "", "", "", ""])) in text
    assert md_row(bold(["trio_ws Hub / websockets.asyncio broadcast()", "0.75x", "", "", "", ""])) in text
    assert md_row(bold(["trio_ws Hub / websockets.trio broadcast()", "2.00x", "", "", "", ""])) in text
    # Hub in memory.
    assert md_row(bold(["trio_ws Hub", "50.0", "50.0 - 50.0", "200,000", "25.0", "30.0"])) in text
    assert (
        md_row(bold(["trio_ws Hub / trio-websocket, per-connection loop", "0.25x", "", "4.00x", "", "0.83x"])) in text
    )

    assert "1-minute load average: 1.4 before / 1.6 after the core benchmark" in text
    assert "The machine was shared" in text  # 1.6 > half of 2 CPUs
    assert "trio_ws-hub-redis skipped: redis row skipped" in text
    for name in ("ratios.png", "hub_fanout.png", "hub_memory.png", *(f"core_{key}.png" for key in CORE_METRICS)):
        assert f"]({name})" in text
        assert_png(out / name)
    assert_valid_rst(out / "report.inc")
    rst = (out / "report.inc").read_text(encoding="utf-8")
    assert "   * - **trio\\_ws / trio-websocket**\n     - **1.86x**" in rst

    # The burst table, and the sentence against the documented bound.
    assert md_row(bold(["trio_ws Hub", "4,800", "4,800 - 4,800", "1.37", "20,000"])) in text
    assert md_row(["trio-websocket, per-connection loop", "9,000", "9,000 - 9,000", "2.57", "20,000"]) in text
    sentence = (
        "A burst of 100 x 1,024-byte messages to 300 members raised the trio_ws Hub server's peak memory by "
        "4,800 bytes per member (median of 1 repetition, range 4,800 - 4,800): within the documented bound of "
        "16,384 bytes."
    )
    assert sentence in text
    assert "Machine: Test CPU @ 2.00GHz, 2 CPUs, Linux-test" in text
    # The docs fragments: the performance page's table and machine, the hub page's burst figure.
    assert_valid_rst(out / "performance.inc")
    performance = (out / "performance.inc").read_text(encoding="utf-8")
    assert "   * - **trio\\_ws / trio-websocket**\n     - **1.86x**" in performance
    assert "Machine: Test CPU @ 2.00GHz, 2 CPUs" in performance
    assert "1-minute load average: 1.4 before / 1.6 after the core benchmark" in performance
    burst = (out / "hub_burst.inc").read_text(encoding="utf-8")
    assert report.rst_escape(sentence) in burst
    where = "Measured 2026-11-21T21:00:00+00:00 (UTC) by benchmarks/bench\\_hub.py on Test CPU @ 2.00GHz, 2 CPUs"
    assert where in burst


def test_results_file_rebuilds_the_report_byte_for_byte(fixture_files: tuple[Path, Path], tmp_path: Path) -> None:
    core_json, hub_json = fixture_files
    first, second = tmp_path / "first", tmp_path / "second"
    assert report.main(["--core", str(core_json), "--hub", str(hub_json), "--out", str(first)]) == 0
    assert report.main(["--results", str(first / report.RESULTS_NAME), "--out", str(second)]) == 0
    names = sorted(p.name for p in first.iterdir())
    assert names == sorted(p.name for p in second.iterdir())
    assert {"results.json", "report.md", "report.inc", "performance.inc", "hub_burst.inc", "memory.inc"} <= set(names)
    for name in names:
        assert (first / name).read_bytes() == (second / name).read_bytes(), name
    assert report.main(["--results", str(core_json), "--out", str(tmp_path / "bad")]) == 2


def test_ratio_groups_cover_core_and_hub(fixture_files: tuple[Path, Path]) -> None:
    core = report.load_core(fixture_files[0])
    hub = report.load_hub(fixture_files[1])
    groups = report.ratio_groups(core, hub)
    assert [g.label for g in groups] == [
        *(column for column, _, _ in CORE_METRICS.values()),
        "Hub fan-out deliveries/s",
        "Hub in-memory deliveries/s",
    ]
    by_label = {g.label: g for g in groups}
    assert by_label["Echo round trips/s (32 B)"].ratios["trio-websocket"] == pytest.approx(4336 / 2331)
    assert by_label["Idle KiB/conn (deflate)"].ratios["trio-websocket"] is None
    assert by_label["Idle KiB/conn"].higher_is_better is False
    assert by_label["Hub fan-out deliveries/s"].ratios == pytest.approx({"trio-websocket": 3.0, "websockets.trio": 2.0})
    assert by_label["Hub in-memory deliveries/s"].ratios["websockets.trio"] is None


def test_output_names_are_fixed_and_stale_charts_go(fixture_files: tuple[Path, Path], tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "core_gone.png").write_bytes(b"old chart")
    (out / "hub_fanout.png").write_bytes(b"old chart")
    (out / "notes.txt").write_text("not ours")
    data = core_fixture()
    data["metrics"] = {"rtt": data["metrics"]["rtt"]}
    data["summary"] = {"rtt": data["summary"]["rtt"]}
    core_json = write_json(tmp_path / "rtt.json", data)
    assert report.main(["--core", str(core_json), "--out", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == [
        "compression.inc",
        "core_rtt.png",
        "hub_burst.inc",
        "memory.inc",
        "notes.txt",
        "performance.inc",
        "ratios.png",
        "report.inc",
        "report.md",
        "results.json",
        "socketio.inc",
    ]
    # The same results give the same charts, byte for byte.
    first = (out / "core_rtt.png").read_bytes()
    assert report.main(["--core", str(core_json), "--out", str(out)]) == 0
    assert (out / "core_rtt.png").read_bytes() == first


def test_skipped_and_failed_contenders(tmp_path: Path) -> None:
    data = core_fixture()
    for metric in data["summary"].values():
        metric.pop("websockets.trio", None)
        metric.pop("trio-websocket", None)
    data["skipped"] = {"websockets.trio": "cannot import websockets.trio"}
    data["errors"] = [{"metric": "rtt", "contender": "trio-websocket", "rep": 0, "error": "OSError()"}]
    core_json = write_json(tmp_path / "core.json", data)
    assert report.main(["--core", str(core_json), "--out", str(tmp_path / "out")]) == 0
    text = (tmp_path / "out" / "report.md").read_text(encoding="utf-8")
    assert md_row(["websockets.trio", *["skipped"] * 6]) in text
    assert md_row(["trio-websocket", "failed", "n/a", "n/a", "n/a", "n/a", "n/a"]) in text
    assert md_row(bold(["trio_ws / trio-websocket", *["n/a"] * 6])) in text
    assert "core: trio-websocket failed in rtt: OSError()" in text
    assert_png(tmp_path / "out" / "ratios.png", min_height=200)


def test_run_mode_with_stand_in_benchmarks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """--run records each command, its exit status, and stops when a benchmark writes nothing."""
    source = write_json(tmp_path / "source.json", core_fixture())
    fake = tmp_path / "fake_core.py"
    fake.write_text(
        "import shutil, sys\n"
        f"shutil.copy({str(source)!r}, sys.argv[sys.argv.index('--json') + 1])\n"
        "sys.exit(1)  # like bench_core.py when a measurement failed\n"
    )
    monkeypatch.setattr(report, "CORE_SCRIPT", fake)
    out = tmp_path / "out"
    run = ["--run", "--no-hub", "--no-memory", "--no-socketio", "--core-args=--only rtt", "--out", str(out)]
    assert report.main(run) == 0
    text = (out / "report.md").read_text(encoding="utf-8")
    assert f"fake_core.py --quick --only rtt --json {out / 'core.json'}" in text
    assert "fake_core.py: exit status 1 (some measurements failed)" in text
    assert "--run --no-hub --no-memory --no-socketio '--core-args=--only rtt' --out" in text
    assert not (out / "core.json").exists() and not (out / "hub.json").exists()
    assert real_part(out, "core") == core_fixture() and real_part(out, "hub") is None
    assert real_part(out, "memory") is None and real_part(out, "socketio") is None

    silent = tmp_path / "silent.py"
    silent.write_text("raise SystemExit(3)\n")
    monkeypatch.setattr(report, "CORE_SCRIPT", silent)
    assert report.main(["--run", "--no-hub", "--no-memory", "--no-socketio", "--out", str(out)]) == 2
    assert not (out / "core.json").exists(), "a stale results file must not stand in for a failed run"


# --------------------------------------------------------------------------- #
# Bad input: one clear line, non-zero exit
# --------------------------------------------------------------------------- #


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    missing = tmp_path / "nope.json"
    proc = run_cli("--core", str(missing), "--out", str(tmp_path / "out"))
    assert proc.returncode == 2
    assert proc.stderr.strip() == f"report.py: error: core results file not found: {missing}"
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "out" / "report.md").exists()


def test_invalid_json_is_a_clear_error(tmp_path: Path) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text('{"meta": {"date": ')
    proc = run_cli("--core", str(broken), "--out", str(tmp_path / "out"))
    assert proc.returncode == 2
    assert f"report.py: error: core results file {broken} is not valid JSON (line 1" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize(
    ("option", "data", "message"),
    [
        ("--core", [1, 2], "holds a JSON list, not an object"),
        ("--core", {}, "does not look like the --json output of bench_core.py: the top level has no 'meta'"),
        ("--core", hub_fixture(), "does not look like the --json output of bench_core.py"),
        ("--hub", core_fixture(), "does not look like the --json output of bench_hub.py"),
    ],
)
def test_wrong_format_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], option: str, data: Any, message: str
) -> None:
    path = write_json(tmp_path / "wrong.json", data)
    assert report.main([option, str(path), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("report.py: error: ") and message in err
    assert err.count("\n") == 1


def test_summary_cell_without_median_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = copy.deepcopy(core_fixture())
    del data["summary"]["rtt"]["trio_ws"]["median"]
    path = write_json(tmp_path / "core.json", data)
    assert report.main(["--core", str(path), "--out", str(tmp_path / "out")]) == 2
    assert "summary cell rtt/trio_ws has no 'median'" in capsys.readouterr().err


def test_options_are_checked() -> None:
    proc = run_cli("--out", "somewhere")
    assert proc.returncode == 2 and "give --core, --hub, --memory and/or --socketio, --results, or --run" in proc.stderr
    proc = run_cli("--run", "--core", "x.json", "--out", "somewhere")
    assert (
        proc.returncode == 2
        and "do not combine it with --core, --hub, --memory, --socketio or --results" in proc.stderr
    )
    proc = run_cli("--results", "r.json", "--socketio", "x.json", "--out", "somewhere")
    assert proc.returncode == 2 and "--results holds every benchmark's results" in proc.stderr
    proc = run_cli("--socketio-args=--reps 1", "--core", "x.json", "--out", "somewhere")
    assert proc.returncode == 2 and "only apply with --run" in proc.stderr
    proc = run_cli("--results", "r.json", "--hub", "x.json", "--out", "somewhere")
    assert proc.returncode == 2 and "--results holds every benchmark's results" in proc.stderr
    proc = run_cli("--memory-args=--reps 1", "--results", "r.json", "--out", "somewhere")
    assert proc.returncode == 2 and "only apply with --run" in proc.stderr


def test_interrupted_hub_run_is_reported(tmp_path: Path) -> None:
    data = hub_fixture()
    data["meta"]["interrupted"] = True
    hub_json = write_json(tmp_path / "hub.json", data)
    assert report.main(["--hub", str(hub_json), "--out", str(tmp_path / "out")]) == 0
    text = (tmp_path / "out" / "report.md").read_text(encoding="utf-8")
    assert "hub: interrupted; the tables hold the repetitions that finished" in text
    assert "## Core benchmark" not in text
    assert_png(tmp_path / "out" / "hub_fanout.png")


# --------------------------------------------------------------------------- #
# The figures in the docs come from one results file
# --------------------------------------------------------------------------- #

STATIC = ROOT / "docs" / "_static" / "benchmarks"
#: The files report.py generates from the results file (the docs include the ``.inc`` ones).
GENERATED = (
    "report.md",
    "report.inc",
    "performance.inc",
    "hub_burst.inc",
    "memory.inc",
    "compression.inc",
    "socketio.inc",
)
#: What a quoted benchmark figure looks like: a ratio (``1.86x``, ``0.96`` with a multiplication sign), a
#: number with a rate or a per-connection (member, client, codec) unit, or a size said to be extra
#: or measured with or without something.
FIGURE = re.compile(
    r"(?<![\w.])(\d[\d,]*\.\d+)\s?[x\u00d7](?![\w\d])"
    r"|(?<![\w.])(\d[\d,]*(?:\.\d+)?)\s?(?:msg/s|messages/s|MB/s|deliveries/s|round trips/s|handshakes/s"
    r"|rt/s|(?:messages|deliveries|handshakes|round trips) per second"
    r"|(?:KiB|bytes|MiB)\s?(?:per|/)\s?(?:member|connection|conn|client|codec)"
    r"|(?:KiB|MiB)\s(?:extra|without|with|each))"
)
NUMBER = re.compile(r"\d[\d,]*(?:\.\d+)?")


def hand_written_pages() -> list[Path]:
    """Every docs page and the README: the text people write, not the generated fragments."""
    pages = [p for p in (ROOT / "docs").rglob("*.rst") if STATIC not in p.parents]
    return [*sorted(pages), ROOT / "README.md"]


def quoted_figures(text: str) -> list[str]:
    """The benchmark figures quoted in ``text``, as written."""
    return [match.group(0) for match in FIGURE.finditer(text)]


def test_the_figure_pattern_finds_what_the_old_performance_page_quoted() -> None:
    # The hand-written table that disagreed with the report, and prose figures.
    text = "trio_ws / trio-websocket 1.86x 0.96\u00d7, about 570 MB/s, 4,336 round trips/s, 16.6 KiB per connection"
    assert quoted_figures(text) == ["1.86x", "0.96\u00d7", "570 MB/s", "4,336 round trips/s", "16.6 KiB per connection"]
    # What the compression and delivery pages quoted by hand before their figures were generated.
    text = "about 49.5 KiB extra; measured 55 KiB with deflate and 21 KiB without"
    assert quoted_figures(text) == ["49.5 KiB extra", "55 KiB with", "21 KiB without"]
    # Arithmetic and limits are not benchmark figures.
    assert quoted_figures("16 \u00d7 1 MiB; message_queue_size \u00d7 1 MiB; 10 per second; 1.0 (the line)") == []


def test_the_docs_quote_no_figure_that_is_not_in_the_results_file() -> None:
    known = set()
    for name in GENERATED:
        known |= set(NUMBER.findall((STATIC / name).read_text(encoding="utf-8")))
    results = json.loads((STATIC / report.RESULTS_NAME).read_text(encoding="utf-8"))
    known.add(str(results["hub"]["meta"]["burst_bound_bytes"] // 1024))
    stray = []
    for page in hand_written_pages():
        for figure in quoted_figures(page.read_text(encoding="utf-8")):
            number = NUMBER.match(figure)
            assert number is not None
            if number.group(0) not in known:
                stray.append(f"{page.relative_to(ROOT)}: {figure!r}")
    assert not stray, "figures quoted by hand that the results file does not hold: " + "; ".join(stray)


def test_the_generated_docs_fragments_are_what_the_results_file_gives(tmp_path: Path) -> None:
    # Nobody edited a generated file by hand, and no figure comes from another run.
    assert report.main(["--results", str(STATIC / report.RESULTS_NAME), "--out", str(tmp_path)]) == 0
    for name in (*GENERATED, report.RESULTS_NAME):
        assert (STATIC / name).read_text(encoding="utf-8") == (tmp_path / name).read_text(encoding="utf-8"), name
    for other in ("core.json", "hub.json", "memory.json", "socketio.json"):
        assert not (STATIC / other).exists(), f"one results file only, but {other} is there too"


def test_the_pages_include_the_generated_figures_and_state_the_burst_bound() -> None:
    performance = (ROOT / "docs" / "topics" / "performance.rst").read_text(encoding="utf-8")
    assert ".. include:: /_static/benchmarks/performance.inc" in performance
    assert ".. include:: /_static/benchmarks/socketio.inc" in performance
    hub = (ROOT / "docs" / "topics" / "hub.rst").read_text(encoding="utf-8")
    assert ".. include:: /_static/benchmarks/hub_burst.inc" in hub
    results = json.loads((STATIC / report.RESULTS_NAME).read_text(encoding="utf-8"))
    bound = results["hub"]["meta"]["burst_bound_bytes"]
    sys.path.insert(0, str(BENCHMARKS))
    try:
        from bench_hub_burst import BURST_BOUND_BYTES
    finally:
        sys.path.remove(str(BENCHMARKS))
    assert bound == BURST_BOUND_BYTES
    assert f"at most {bound // 1024} KiB per member" in " ".join(hub.split())
    fragment = (STATIC / "hub_burst.inc").read_text(encoding="utf-8")
    assert "within the documented bound" in fragment, "the measured burst cost exceeds the bound on hub.rst"


def test_hub_ratio_rows_against_python_socketio(tmp_path: Path) -> None:
    data = hub_fixture()
    data["skipped"] = {}
    template = next(s for s in data["samples"] if s["table"] == "fanout" and s["contender"] == "trio_ws-hub")
    added = {
        "trio_ws-hub-redis": ("trio_ws Hub, 2 processes via Redis", 30000.0),
        "python-socketio-redis": ("python-socketio, 2 uvicorn processes via AsyncRedisManager", 4000.0),
        "python-socketio": ("python-socketio AsyncServer under uvicorn", 5000.0),
    }
    for name, (label, rate) in added.items():
        data["contenders"][name] = label
        data["samples"].append({**template, "contender": name, "deliveries_per_second": rate})
    hub_json = write_json(tmp_path / "hub.json", data)
    assert report.main(["--hub", str(hub_json), "--out", str(tmp_path / "out")]) == 0
    text = (tmp_path / "out" / "report.md").read_text(encoding="utf-8")
    pairs = [
        ("trio_ws Hub, 2 processes via Redis / python-socketio, 2 uvicorn processes via AsyncRedisManager", "7.50x"),
        ("trio_ws Hub / python-socketio AsyncServer under uvicorn", "12.00x"),
    ]
    for label, ratio in pairs:
        assert md_row(bold([label, ratio, "", "", "", ""])) in text
    # The 4-process pair did not run: no row for it.
    assert "4 uvicorn processes" not in text


def socketio_fixture() -> dict[str, Any]:
    """Hand-written ``bench_socketio.py --json`` output: 3 repetitions per cell."""
    rates = {
        ("echo", "trio_ws-app-socketio"): [6000.0, 6200.0, 5800.0],
        ("echo", "python-socketio"): [5000.0, 4000.0, 4800.0],
        ("echo_concurrent", "trio_ws-app-socketio"): [9000.0, 9000.0, 9000.0],
        ("echo_concurrent", "python-socketio"): [6000.0, 6000.0, 6000.0],
    }
    samples = [
        {
            "scenario": scenario,
            "contender": name,
            "rep": rep,
            "round_trips_per_second": rate,
            "server_cpu_us_per_round_trip": 50.0 if name == "trio_ws-app-socketio" else 80.0,
            "client_cpu_us_per_round_trip": 40.0,
        }
        for (scenario, name), values in rates.items()
        for rep, rate in enumerate(values)
    ]
    return {
        "meta": {
            "date": "2026-12-06T08:00:00+00:00",
            "python": "3.11.7",
            "platform": "Linux",
            "cpu_count": 2,
            "reps": 3,
            "payload_characters": 32,
            "settings": {"reps": 3, "duration": 2.0, "warmup": 0.5, "concurrent_clients": 100},
            "load_average": {"before": 0.3, "after": 0.5},
            "versions": {"python-socketio": "5.18.1"},
        },
        "contenders": {
            "trio_ws-app-socketio": "trio_ws App, Socket.IO clients",
            "python-socketio": "python-socketio AsyncServer under uvicorn",
        },
        "scenarios": {"echo": "Echo round trips/s, 1 client", "echo_concurrent": "Echo round trips/s, 100 clients"},
        "samples": samples,
        "errors": [],
        "skipped": {},
    }


def test_socketio_echo_table_and_fragment(fixture_files: tuple[Path, Path], tmp_path: Path) -> None:
    core_json, hub_json = fixture_files
    hub = hub_fixture()
    template = next(s for s in hub["samples"] if s["table"] == "fanout" and s["contender"] == "trio_ws-hub")
    for name, label, rate in (
        ("trio_ws-app-socketio", "trio_ws App, Socket.IO clients", 30000.0),
        ("python-socketio", "python-socketio AsyncServer under uvicorn", 15000.0),
    ):
        hub["contenders"][name] = label
        hub["samples"].append({**template, "contender": name, "deliveries_per_second": rate})
    hub_json = write_json(tmp_path / "hub-sio.json", hub)
    sio_json = write_json(tmp_path / "socketio.json", socketio_fixture())
    out = tmp_path / "out"
    args = ["--core", str(core_json), "--hub", str(hub_json), "--socketio", str(sio_json), "--out", str(out)]
    assert report.main(args) == 0
    text = (out / "report.md").read_text(encoding="utf-8")
    assert "Socket.IO benchmark 2026-12-06T08:00:00+00:00" in text
    assert (
        md_row(
            bold(
                [
                    "Echo round trips/s, 1 client: trio_ws App, Socket.IO clients",
                    "6,000",
                    "5,800 - 6,200",
                    "50.0",
                    "40.0",
                ]
            )
        )
        in text
    )
    assert (
        md_row(
            [
                "Echo round trips/s, 1 client: python-socketio AsyncServer under uvicorn",
                "4,800",
                "4,000 - 5,000",
                "80.0",
                "40.0",
            ]
        )
        in text
    )
    ratio = "Echo round trips/s, 1 client: trio_ws App, Socket.IO clients / python-socketio AsyncServer under uvicorn"
    assert md_row(bold([ratio, "1.25x", "", "0.62x", ""])) in text
    ratio = (
        "Echo round trips/s, 100 clients: trio_ws App, Socket.IO clients / python-socketio AsyncServer under uvicorn"
    )
    assert md_row(bold([ratio, "1.50x", "", "0.62x", ""])) in text
    fragment = (out / "socketio.inc").read_text(encoding="utf-8")
    assert_valid_rst(out / "socketio.inc")
    # The fan-out table's Socket.IO rows, with their ratio, are on the performance page too.
    assert "**trio\\_ws App, Socket.IO clients / python-socketio AsyncServer under uvicorn**" in fragment
    assert "**2.00x**" in fragment and "**1.25x**" in fragment and "**1.50x**" in fragment
    # One results file: it holds the Socket.IO results and rebuilds every file byte for byte.
    assert real_part(out, "socketio") == socketio_fixture()
    again = tmp_path / "again"
    assert report.main(["--results", str(out / report.RESULTS_NAME), "--out", str(again)]) == 0
    for name in ("report.md", "report.inc", "performance.inc", "socketio.inc", report.RESULTS_NAME):
        assert (out / name).read_bytes() == (again / name).read_bytes(), name


def test_socketio_results_in_the_wrong_format_are_a_clear_error(tmp_path: Path) -> None:
    data = socketio_fixture()
    del data["samples"][0]["server_cpu_us_per_round_trip"]
    bad = write_json(tmp_path / "socketio.json", data)
    proc = run_cli("--socketio", str(bad), "--out", str(tmp_path / "out"))
    assert proc.returncode == 2
    assert (
        "does not look like the --json output of bench_socketio.py: sample 0 has no 'server_cpu_us_per_round_trip'"
        in proc.stderr
    )


def test_socketio_tables_with_python_socketio_under_uvloop(tmp_path: Path) -> None:
    # python-socketio under uvicorn[standard] gets its own rows and its own ratio rows, echo and fan-out,
    # next to (not instead of) the rows against uvicorn as a plain install sets it up.
    uvloop_label = "python-socketio AsyncServer under uvicorn with uvloop and httptools"
    sio = socketio_fixture()
    sio["contenders"]["python-socketio-uvloop"] = uvloop_label
    for sample in [s for s in sio["samples"] if s["contender"] == "python-socketio"]:
        sio["samples"].append(
            {
                **sample,
                "contender": "python-socketio-uvloop",
                "round_trips_per_second": sample["round_trips_per_second"] * 1.5,
                "server_cpu_us_per_round_trip": 40.0,
            }
        )
    hub = hub_fixture()
    template = next(s for s in hub["samples"] if s["table"] == "fanout" and s["contender"] == "trio_ws-hub")
    for name, label, rate in (
        ("trio_ws-app-socketio", "trio_ws App, Socket.IO clients", 30000.0),
        ("python-socketio", "python-socketio AsyncServer under uvicorn", 15000.0),
        ("python-socketio-uvloop", uvloop_label, 20000.0),
    ):
        hub["contenders"][name] = label
        hub["samples"].append({**template, "contender": name, "deliveries_per_second": rate})
    args = ["--hub", str(write_json(tmp_path / "hub.json", hub)), "--socketio"]
    out = tmp_path / "out"
    assert report.main([*args, str(write_json(tmp_path / "socketio.json", sio)), "--out", str(out)]) == 0
    text = (out / "report.md").read_text(encoding="utf-8")
    row = [f"Echo round trips/s, 1 client: {uvloop_label}", "7,200", "6,000 - 7,500", "40.0", "40.0"]
    assert md_row(row) in text
    app = "trio_ws App, Socket.IO clients"
    for scenario, plain, uvloop in (("1 client", "1.25x", "0.83x"), ("100 clients", "1.50x", "1.00x")):
        title = f"Echo round trips/s, {scenario}"
        peer = "python-socketio AsyncServer under uvicorn"
        assert md_row(bold([f"{title}: {app} / {peer}", plain, "", "0.62x", ""])) in text
        assert md_row(bold([f"{title}: {app} / {uvloop_label}", uvloop, "", "1.25x", ""])) in text
    # The fan-out table's ratio rows, in report.md and on the performance page.
    assert md_row(bold([f"{app} / python-socketio AsyncServer under uvicorn", "2.00x", "", "", "", ""])) in text
    assert md_row(bold([f"{app} / {uvloop_label}", "1.50x", "", "", "", ""])) in text
    assert_valid_rst(out / "socketio.inc")
    fragment = (out / "socketio.inc").read_text(encoding="utf-8")
    assert "the same trio\\_ws client for every server. python-socketio runs under uvicorn" in fragment
    assert "(Socket.IO clients on every server):" in fragment
    assert f"**trio\\_ws App, Socket.IO clients / {uvloop_label}**" in fragment
    assert "**1.50x**" in fragment and "**0.83x**" in fragment
