"""The idle-memory part of the benchmark report: ``bench_memory.py``'s JSON, checked and rendered.

``bench_memory.py --json`` writes it; ``report.py`` keeps it under
``"memory"`` in ``results.json`` and renders it with :func:`memory_markdown`
(in ``report.md``) and :func:`memory_rst` (``memory.inc``, included by the
performance page) and :func:`codecs_rst` (``compression.inc``, included by the
compression page). ``bench_memory.py`` prints :func:`memory_markdown` itself.

This module needs no plotting library: the tests of the Python versions
without matplotlib import it.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: Keys the report reads from ``bench_memory.py --json`` output (the tests check them).
MEMORY_TOP_KEYS = ("meta", "variants")
MEMORY_META_KEYS = ("command", "date", "python", "platform", "cpu_count", "connections", "reps", "load_average")
MEMORY_RUN_KEYS = ("connections", "rss_kib_per_connection", "types")
MEMORY_TRACED_KEYS = ("traced_kib_per_connection", "sites")
CODEC_KEYS = ("label", "settings", "codecs", "kib_per_codec")
#: Allocation sites and object types listed per variant.
TOP_SITES = 12
TOP_TYPES = 15


class MemoryFormatError(ValueError):
    """``bench_memory.py``'s JSON lacks a key the report reads."""


def _require(data: dict[str, Any], keys: Iterable[str], where: str) -> None:
    missing = [key for key in keys if key not in data]
    if missing:
        raise MemoryFormatError(
            f"does not look like the --json output of bench_memory.py: {where} has no "
            + ", ".join(repr(k) for k in missing)
        )


@dataclass
class MemoryVariant:
    """One server variant's runs (``trio_ws``, ``trio_ws (deflate)``, a contender)."""

    name: str
    rss: list[float]
    traced: list[float]
    #: The last tracemalloc run's sites (bytes per connection) and object types (objects per connection).
    sites: dict[str, float]
    types: dict[str, float]

    @property
    def rss_median(self) -> float:
        """Median RSS growth per connection, KiB."""
        return statistics.median(self.rss)

    @property
    def traced_median(self) -> float | None:
        """Median traced Python allocations per connection, KiB (None without a tracemalloc run)."""
        return statistics.median(self.traced) if self.traced else None


@dataclass
class MemoryResults:
    """What ``bench_memory.py --json`` wrote."""

    meta: dict[str, Any]
    variants: list[MemoryVariant]
    #: Codec sizes after traffic: one entry per compression setting.
    codecs: list[dict[str, Any]] = field(default_factory=list)
    #: The JSON as the benchmark wrote it.
    raw: dict[str, Any] = field(default_factory=dict)

    def variant(self, name: str) -> MemoryVariant | None:
        """The variant called ``name``, if it was measured."""
        return next((v for v in self.variants if v.name == name), None)


def parse_memory(data: dict[str, Any]) -> MemoryResults:
    """Check and read ``bench_memory.py``'s JSON.

    Raises:
        MemoryFormatError: when a key the report reads is missing.
    """
    _require(data, MEMORY_TOP_KEYS, "the top level")
    _require(data["meta"], MEMORY_META_KEYS, "'meta'")
    variants = []
    for name, runs in data["variants"].items():
        _require(runs, ("rss", "traced"), f"variant {name!r}")
        if not runs["rss"]:
            raise MemoryFormatError(f"variant {name!r} has no RSS run")
        for run in [*runs["rss"], *runs["traced"]]:
            _require(run, MEMORY_RUN_KEYS, f"a run of {name!r}")
        for run in runs["traced"]:
            _require(run, MEMORY_TRACED_KEYS, f"a tracemalloc run of {name!r}")
        last = runs["traced"][-1] if runs["traced"] else {}
        variants.append(
            MemoryVariant(
                str(name),
                [float(r["rss_kib_per_connection"]) for r in runs["rss"]],
                [float(r["traced_kib_per_connection"]) for r in runs["traced"]],
                dict(last.get("sites", {})),
                dict(last.get("types", {})),
            )
        )
    codecs = list(data.get("codecs", []))
    for i, codec in enumerate(codecs):
        _require(codec, CODEC_KEYS, f"codec entry {i}")
    return MemoryResults(data["meta"], variants, codecs, data)


# --------------------------------------------------------------------------- #
# Rendering
# --------------------------------------------------------------------------- #


def _markdown_table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "| :-- | " + " | ".join("--:" for _ in header[1:]) + " |"]
    return lines + ["| " + " | ".join(row) + " |" for row in rows]


def _rst_table(header: list[str], rows: list[list[str]]) -> list[str]:
    out = [".. list-table::", "   :header-rows: 1", ""]
    for row in [header, *rows]:
        out.append(f"   * - {row[0]}")
        out += [f"     - {cell}" for cell in row[1:]]
    return out


def _summary_rows(memory: MemoryResults) -> list[list[str]]:
    rows = []
    for variant in memory.variants:
        traced = variant.traced_median
        rows.append([variant.name, f"{variant.rss_median:.1f}", "n/a" if traced is None else f"{traced:.1f}"])
    return rows


def _top_sites(variant: MemoryVariant) -> list[tuple[str, float]]:
    return sorted(variant.sites.items(), key=lambda item: (-item[1], item[0]))[:TOP_SITES]


def _top_types(variant: MemoryVariant) -> list[tuple[str, float]]:
    return sorted(variant.types.items(), key=lambda item: (-item[1], item[0]))[:TOP_TYPES]


def measured_on(meta: dict[str, Any]) -> str:
    """``measured <date> UTC on <CPU>, <n> CPUs, Python <v>; 1-minute load average <a> before / <b> after``."""
    load = meta["load_average"]
    return (
        f"measured {meta['date']} UTC on {meta.get('cpu_model') or 'an unrecorded CPU'}, {meta['cpu_count']} CPUs, "
        f"Python {meta['python']}; 1-minute load average {load['before']:.1f} before / {load['after']:.1f} after"
    )


def memory_sentence(memory: MemoryResults) -> str:
    """How the idle-memory figures were measured: connections, repetitions, date, machine, load."""
    meta = memory.meta
    return (
        f"{meta['connections']:,} idle server connections per measurement, median of {meta['reps']} "
        f"({measured_on(meta)})."
    )


_SUMMARY_HEADER = ["Server", "RSS growth, KiB per connection", "tracemalloc, KiB per connection"]


def memory_markdown(memory: MemoryResults) -> list[str]:
    """The idle-memory section of ``report.md`` (also what ``bench_memory.py`` prints)."""
    out = ["## Idle memory per server connection", "", memory_sentence(memory), ""]
    out += _markdown_table(_SUMMARY_HEADER, _summary_rows(memory))
    for variant in memory.variants:
        if not variant.traced:
            continue
        out += ["", f"### {variant.name}: largest allocation sites (bytes per connection)", ""]
        out += _markdown_table(["Site", "Bytes/conn"], [[f"`{s}`", f"{b:,.0f}"] for s, b in _top_sites(variant)])
        out += ["", f"### {variant.name}: objects per connection", ""]
        out += _markdown_table(["Type", "Objects/conn"], [[f"`{k}`", f"{c:.1f}"] for k, c in _top_types(variant)])
    if memory.codecs:
        out += ["", "### Compression codecs after traffic", "", CODECS_INTRO, ""]
        out += _markdown_table(_CODEC_HEADER, _codec_rows(memory))
    return out


def memory_rst(memory: MemoryResults) -> str:
    """``memory.inc``: the idle-memory figures of the performance page (reStructuredText)."""
    out = [".. Generated by benchmarks/report.py from results.json; edits are overwritten.", ""]
    out += [memory_sentence(memory), "", f"Measured with ``{memory.meta['command']}``.", ""]
    out += _rst_table(_SUMMARY_HEADER, _summary_rows(memory))
    for variant in memory.variants:
        if not variant.traced:
            continue
        out += ["", f".. rubric:: {variant.name}: the largest allocation sites", ""]
        out += _rst_table(
            ["Allocated at", "Bytes per connection"], [[f"``{s}``", f"{b:,.0f}"] for s, b in _top_sites(variant)]
        )
        out += ["", f".. rubric:: {variant.name}: objects per connection", ""]
        out += _rst_table(
            ["Type", "Objects per connection"], [[f"``{k}``", f"{c:.1f}"] for k, c in _top_types(variant)]
        )
    return "\n".join(out).rstrip() + "\n"


CODECS_INTRO = (
    "A server connection's zlib compressor and decompressor after one compressed message each way, "
    "measured with tracemalloc over many codec pairs (an idle connection that never exchanged a "
    "compressed message has neither)."
)
_CODEC_HEADER = ["Setting", "KiB per connection"]


def _codec_rows(memory: MemoryResults) -> list[list[str]]:
    return [[str(c["label"]), f"{float(c['kib_per_codec']):.1f}"] for c in memory.codecs]


def codecs_rst(memory: MemoryResults, extra: Iterable[str] = ()) -> str:
    """``compression.inc``: codec sizes after traffic, for the compression page (reStructuredText).

    ``extra`` paragraphs (plain text) follow the table.
    """
    out = [".. Generated by benchmarks/report.py from results.json; edits are overwritten.", ""]
    if memory.codecs:
        count = int(memory.codecs[0]["codecs"])
        out += [CODECS_INTRO, f"{count:,} codec pairs per setting; {measured_on(memory.meta)}.", ""]
        out += _rst_table(_CODEC_HEADER, _codec_rows(memory))
    else:
        out.append("No codec measurement in the results.")
    for paragraph in extra:
        out += ["", paragraph]
    return "\n".join(out).rstrip() + "\n"


def load_memory_json(path: Path) -> MemoryResults:
    """Read a ``bench_memory.py --json`` file (for ``bench_memory.py --results``)."""
    import json

    return parse_memory(json.loads(path.read_text(encoding="utf-8")))


def memory_summary_rst(memory: MemoryResults) -> list[str]:
    """The summary table (RSS and tracemalloc per connection, per variant) as reStructuredText lines."""
    return _rst_table(_SUMMARY_HEADER, _summary_rows(memory))
