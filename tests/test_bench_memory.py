"""Tests of ``benchmarks/bench_memory.py``: the docs fragment is what its results file gives."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parent.parent
BENCHMARKS = ROOT / "benchmarks"
STATIC = ROOT / "docs" / "_static" / "benchmarks"


def _load() -> ModuleType:
    if str(BENCHMARKS) not in sys.path:
        sys.path.insert(0, str(BENCHMARKS))
    spec = importlib.util.spec_from_file_location("bench_memory", BENCHMARKS / "bench_memory.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


bench_memory = _load()


def test_the_docs_fragment_is_what_the_results_file_gives(tmp_path: Path) -> None:
    # Nobody edited memory.inc by hand, and it comes from the run memory.json records.
    out = tmp_path / "memory.inc"
    assert bench_memory.main(["--results", str(STATIC / "memory.json"), "--rst", str(out)]) == 0
    assert out.read_text(encoding="utf-8") == (STATIC / "memory.inc").read_text(encoding="utf-8")


def test_the_results_hold_both_rows_and_their_breakdown() -> None:
    results = json.loads((STATIC / "memory.json").read_text(encoding="utf-8"))
    assert results["meta"]["connections"] >= 10_000
    for name in ("trio_ws", "trio_ws (deflate)"):
        variant = results["variants"][name]
        assert variant["rss"] and variant["traced"]
        traced = variant["traced"][-1]
        assert traced["sites"] and traced["types"]
        assert abs(traced["types"]["trio_ws.connection.WebSocketConnection"] - 1) < 0.01


def test_the_client_offers_deflate_only_for_the_deflate_row() -> None:
    assert b"permessage-deflate" in bench_memory._request("deflate")
    assert b"permessage-deflate" not in bench_memory._request(None)
