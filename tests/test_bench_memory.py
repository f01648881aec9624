"""Tests of ``benchmarks/bench_memory.py`` and its part of the report (``report_memory.py``).

The docs' idle-memory and codec figures come from the ``"memory"`` part of
``docs/_static/benchmarks/results.json``. These tests import neither
``report.py`` nor matplotlib, so they run on every Python the core tests run on.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
BENCHMARKS = ROOT / "benchmarks"
STATIC = ROOT / "docs" / "_static" / "benchmarks"


def _load(name: str) -> ModuleType:
    if str(BENCHMARKS) not in sys.path:
        sys.path.insert(0, str(BENCHMARKS))
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


bench_memory = _load("bench_memory")
report_memory = _load("report_memory")


def memory_part() -> dict[str, Any]:
    results = json.loads((STATIC / "results.json").read_text(encoding="utf-8"))
    part: dict[str, Any] = results["memory"]
    return part


def test_the_docs_fragments_are_what_the_results_file_gives() -> None:
    # Nobody edited memory.inc by hand, and it comes from the run results.json records.
    memory = report_memory.parse_memory(memory_part())
    assert report_memory.memory_rst(memory) == (STATIC / "memory.inc").read_text(encoding="utf-8")
    compression = (STATIC / "compression.inc").read_text(encoding="utf-8")
    assert compression.startswith(report_memory.codecs_rst(memory).rstrip("\n"))


def test_the_results_hold_both_rows_their_breakdown_and_the_codecs() -> None:
    results = memory_part()
    assert results["meta"]["connections"] >= 10_000
    for name in ("trio_ws", "trio_ws (deflate)"):
        variant = results["variants"][name]
        assert variant["rss"] and variant["traced"]
        traced = variant["traced"][-1]
        assert traced["sites"] and traced["types"]
        assert abs(traced["types"]["trio_ws.connection.WebSocketConnection"] - 1) < 0.01
    labels = [codec["label"] for codec in results["codecs"]]
    assert len(labels) == 3 and all(codec["codecs"] >= 100 for codec in results["codecs"])


def test_the_idle_connection_target_holds_in_the_results() -> None:
    # Issue 14: at most 12 KiB per idle server connection without compression, by RSS and by tracemalloc.
    memory = report_memory.parse_memory(memory_part())
    plain = memory.variant("trio_ws")
    assert plain is not None and plain.traced_median is not None
    assert plain.rss_median <= 12.0 and plain.traced_median <= 12.0


def test_codecs_are_measured_after_traffic() -> None:
    defaults, zlib_defaults, no_takeover = bench_memory.measure_codecs(20)
    # A 4 KiB window with mem_level 5 is a fraction of zlib's 32 KiB window with mem_level 8; without
    # context takeover nothing is kept between messages but the codec object itself.
    assert 20 < defaults["kib_per_codec"] < zlib_defaults["kib_per_codec"] / 3
    assert no_takeover["kib_per_codec"] < 1
    assert no_takeover["settings"]["server_no_context_takeover"] is True


def test_a_part_without_a_key_is_a_clear_error() -> None:
    part = memory_part()
    broken = {**part, "meta": {k: v for k, v in part["meta"].items() if k != "date"}}
    with pytest.raises(report_memory.MemoryFormatError, match="'meta' has no 'date'"):
        report_memory.parse_memory(broken)


def test_the_client_offers_deflate_only_for_the_deflate_row() -> None:
    assert b"permessage-deflate" in bench_memory._request("deflate")
    assert b"permessage-deflate" not in bench_memory._request(None)
