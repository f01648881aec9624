"""bench_socketio.py, run for real with tiny amounts of work.

Every server (the trio_ws App with Socket.IO enabled, python-socketio under
uvicorn, and python-socketio under uvicorn with uvloop and httptools) answers
the echo events of one client and of several at once, every answer checked by
the client, and the JSON and the table hold every scenario, contender and
ratio row: so that this code path cannot rot unnoticed. No figure is asserted
beyond being measured.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # starts six server processes: several seconds

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "benchmarks" / "bench_socketio.py"
CLIENTS = 5
APP = "trio_ws App, Socket.IO clients"
PEERS = (
    "python-socketio AsyncServer under uvicorn",
    "python-socketio AsyncServer under uvicorn with uvloop and httptools",
)


def _run(*arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(BENCH), "--reps", "1", "--duration", "0.2", "--warmup", "0.1", *arguments],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
    )


def test_every_server_echoes_for_one_and_many_clients(tmp_path: Path) -> None:
    for module in ("socketio", "uvicorn", "uvloop", "httptools"):
        pytest.importorskip(module)
    out = tmp_path / "socketio.json"
    proc = _run("--clients", str(CLIENTS), "--json", str(out))
    assert proc.returncode == 0, proc.stderr[-4000:]
    data = json.loads(out.read_text(encoding="utf-8"))
    assert data["errors"] == [] and data["skipped"] == {}
    assert data["contenders"] == {
        "trio_ws-app-socketio": APP,
        "python-socketio": PEERS[0],
        "python-socketio-uvloop": PEERS[1],
    }
    cells = {(s["scenario"], s["contender"]): s for s in data["samples"]}
    assert set(cells) == {(scenario, name) for scenario in ("echo", "echo_concurrent") for name in data["contenders"]}
    for (scenario, name), sample in cells.items():
        assert sample["clients"] == (1 if scenario == "echo" else CLIENTS), (scenario, name)
        assert sample["round_trips"] > 0 and sample["warmup"]["round_trips"] > 0, (scenario, name)
        assert sample["server_cpu_us_per_round_trip"] > 0, (scenario, name)
    # One ratio row per peer and scenario: against uvicorn as installed, and against uvicorn[standard].
    for peer in PEERS:
        ratio = f"**{APP} / {peer}** | "
        lines = [line for line in proc.stdout.splitlines() if ratio in line]
        assert len(lines) == 2 and all(line.split(ratio)[1].split(" |")[0].endswith("x") for line in lines), lines


def test_the_uvloop_server_refuses_to_run_on_another_loop() -> None:
    # The python-socketio-uvloop row cannot silently measure asyncio's loop instead.
    for module in ("socketio", "uvicorn", "uvloop", "httptools"):
        pytest.importorskip(module)
    code = (
        "import asyncio, bench_hub_server as s\n"
        "asyncio.run(s.serve_python_socketio(lambda port: print(port), None, production=True))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT / "benchmarks", capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 1 and proc.stdout == "", proc.stdout
    assert "RuntimeError: expected uvloop's event loop, running <_UnixSelectorEventLoop" in proc.stderr, proc.stderr


def test_baseline_runs_the_other_checkout(tmp_path: Path) -> None:
    pytest.importorskip("socketio")
    before = tmp_path / "before"
    shutil.copytree(ROOT / "trio_ws", before / "trio_ws", ignore=shutil.ignore_patterns("__pycache__"))
    proc = _run("--only", "echo", "--contenders", "trio_ws-app-socketio", "--baseline", str(before))
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert "trio_ws App, Socket.IO clients, baseline (before) |" in proc.stdout
    assert "**trio_ws App, Socket.IO clients / trio_ws App, Socket.IO clients, baseline (before)** | " in proc.stdout


def test_bad_arguments_are_refused(tmp_path: Path) -> None:
    proc = _run("--only", "echo,nonsense")
    assert proc.returncode == 2
    assert "--only: expected a comma-separated list of echo, echo_concurrent" in proc.stderr
    proc = _run("--baseline", str(tmp_path))
    assert proc.returncode == 2
    assert "no trio_ws package there" in proc.stderr
