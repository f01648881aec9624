"""The PNG charts of the benchmark report (matplotlib, Agg backend: no display needed)."""

from __future__ import annotations

import textwrap
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import matplotlib

# Non-interactive backend, chosen before pyplot is imported: no display needed.
matplotlib.use("Agg")

import matplotlib.pyplot as plt
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator
from report_results import (
    HUB_PEERS,
    HUB_SUBJECT,
    PEERS,
    RAW,
    SUBJECT,
    Cell,
    CoreResults,
    HubResults,
    MetricInfo,
    _num,
)
from report_tables import fmt

SUBJECT_COLOR = "#e8590c"
PEER_COLOR = "#8fa3b8"
RATIO_COLORS = ("#1f77b4", "#2ca02c")
DPI = 110


# --------------------------------------------------------------------------- #
# Charts
# --------------------------------------------------------------------------- #


def _wrap(label: str, width: int = 16) -> str:
    return "\n".join(textwrap.wrap(label, width, break_long_words=False, break_on_hyphens=False)) or label


def _save(fig: Figure, path: Path) -> None:
    fig.tight_layout()
    # No "Software" entry: the same results give the same bytes whatever matplotlib version drew them.
    fig.savefig(path, dpi=DPI, metadata={"Software": None})
    plt.close(fig)


def _bars(
    ax: Axes,
    labels: list[str],
    cells: list[Cell],
    highlight: list[bool],
    scale: float = 1.0,
) -> None:
    """Bars of the medians with min - max error bars and the value on top."""
    positions = list(range(len(cells)))
    medians = [c.median * scale for c in cells]
    below = [(c.median - c.minimum) * scale for c in cells]
    above = [(c.maximum - c.median) * scale for c in cells]
    colors = [SUBJECT_COLOR if h else PEER_COLOR for h in highlight]
    ax.bar(positions, medians, color=colors, edgecolor="#333333", linewidth=0.6, zorder=2)
    spread = any(c.n > 1 for c in cells)
    if spread:
        ax.errorbar(positions, medians, yerr=[below, above], fmt="none", ecolor="#222222", capsize=4, zorder=3)
    for x, cell, median in zip(positions, cells, medians, strict=True):
        # The value sits above the error bar, where it cannot collide with it.
        top = cell.maximum * scale if spread else median
        ax.annotate(
            fmt(median),
            (x, top),
            xytext=(0, 3),
            textcoords="offset points",
            ha="center",
            va="bottom",
            fontsize=8,
            fontweight="bold" if colors[x] == SUBJECT_COLOR else "normal",
        )
    ax.set_xticks(positions, [_wrap(label) for label in labels], fontsize=8)
    for tick, strong in zip(ax.get_xticklabels(), highlight, strict=True):
        if strong:
            tick.set_fontweight("bold")
            tick.set_color(SUBJECT_COLOR)
    ax.yaxis.set_major_formatter(FuncFormatter(lambda value, _pos: f"{value:,.10g}"))
    ax.grid(axis="y", color="#dddddd", zorder=0)
    ax.set_axisbelow(True)
    top = max((c.maximum * scale for c in cells), default=1.0)
    ax.set_ylim(0, top * 1.18 if top > 0 else 1.0)


def _note(fig: Figure, text: str) -> None:
    """A small grey note under the x axis (or axes) of the figure."""
    if text:
        fig.supxlabel(text, fontsize=7, color="#555555")


def _reps_note(cells: Iterable[Cell]) -> str:
    counts = sorted({c.n for c in cells})
    if not counts:
        return ""
    n = "/".join(str(c) for c in counts)
    if counts[-1] > 1:
        return f"median of {n} repetitions; error bars: min - max"
    return "1 repetition (no spread)"


def core_chart(core: CoreResults, metric: MetricInfo, path: Path) -> bool:
    """One scenario: contenders on the x axis, raw TCP as a dashed line.

    Returns:
        whether a chart was written (``False`` when nothing was measured).
    """
    names = [n for n in core.contenders if n != RAW and core.cell(metric.key, n) is not None]
    raw = core.cell(metric.key, RAW)
    if not names and raw is None:
        return False
    cells = [c for c in (core.cell(metric.key, n) for n in names) if c is not None]
    fig, ax = plt.subplots(figsize=(7.0, 4.2))
    if cells:
        _bars(ax, [core.contenders[n] for n in names], cells, [n == SUBJECT for n in names])
    better = "higher is better" if metric.higher_is_better else "lower is better"
    ax.set_title(f"{metric.column} ({better})", fontsize=11)
    ax.set_ylabel(metric.unit)
    if raw is not None:
        kind = "ceiling" if metric.higher_is_better else "floor"
        ax.axhline(
            raw.median,
            color="#444444",
            linestyle="--",
            linewidth=1.2,
            label=f"raw trio TCP ({kind}): {fmt(raw.median)} {metric.unit}",
            zorder=4,
        )
        low, high = ax.get_ylim()
        ax.set_ylim(low, max(high, raw.median * 1.15))
        ax.legend(loc="best", fontsize=8, framealpha=0.9)
    _note(fig, _reps_note(cells))
    _save(fig, path)
    return True


@dataclass(frozen=True)
class RatioGroup:
    """One scenario of the summary chart: trio_ws's ratio against each core peer."""

    label: str
    higher_is_better: bool
    #: Core peer name -> ratio (``None``: not measured).
    ratios: dict[str, float | None]


def ratio_groups(core: CoreResults | None, hub: HubResults | None) -> list[RatioGroup]:
    """Every scenario's ratios, core metrics first, then the hub tables."""
    groups = []
    if core is not None:
        for m in core.metrics:
            groups.append(RatioGroup(m.column, m.higher_is_better, {p: core.ratio(m.key, SUBJECT, p) for p in PEERS}))
    if hub is not None:
        if HUB_SUBJECT in hub.contenders:
            ratios = {
                p: hub.ratio("fanout", HUB_SUBJECT, HUB_PEERS[p], "deliveries_per_second")
                if HUB_PEERS[p] in hub.contenders
                else None
                for p in PEERS
            }
            groups.append(RatioGroup("Hub fan-out deliveries/s", True, ratios))
        if HUB_SUBJECT in hub.memory_variants:
            ratios = {
                p: hub.ratio("memory", HUB_SUBJECT, HUB_PEERS[p], "deliveries_per_second")
                if HUB_PEERS[p] in hub.memory_variants
                else None
                for p in PEERS
            }
            groups.append(RatioGroup("Hub in-memory deliveries/s", True, ratios))
    return groups


def ratio_chart(groups: list[RatioGroup], path: Path, hub: bool) -> None:
    """Summary: bars from 1.0 to trio_ws / peer on a log scale, per scenario."""
    fig, ax = plt.subplots(figsize=(max(7.0, 1.15 * len(groups) + 2), 4.8))
    width = 0.38
    values = [r for g in groups for r in g.ratios.values() if r is not None and r > 0]
    low = min([*values, 1.0]) / 1.6
    high = max([*values, 1.0]) * 1.6
    ax.set_yscale("log")
    ax.set_ylim(low, high)
    for k, peer in enumerate(PEERS):
        offset = (k - (len(PEERS) - 1) / 2) * width
        label = f"vs {peer}"
        if hub:
            label += f" (hub: {HUB_PEERS[peer]})"
        xs, heights = [], []
        for i, group in enumerate(groups):
            ratio = group.ratios.get(peer)
            x = i + offset
            if ratio is None or ratio <= 0:
                ax.text(x, 1.0, "n/a", ha="center", va="bottom", fontsize=7, color="#777777")
                continue
            xs.append(x)
            heights.append(ratio - 1.0)
            ax.text(
                x,
                ratio * (1.04 if ratio >= 1 else 0.96),
                f"{ratio:.2f}x",
                ha="center",
                va="bottom" if ratio >= 1 else "top",
                fontsize=7,
            )
        ax.bar(xs, heights, width=width * 0.95, bottom=1.0, color=RATIO_COLORS[k], label=label, zorder=2)
    ax.axhline(1.0, color="black", linewidth=1.2, zorder=3)
    ticks = [t for t in (0.1, 0.2, 0.25, 0.5, 0.75, 1, 1.5, 2, 3, 5, 10, 20, 50, 100) if low <= t <= high]
    ax.yaxis.set_major_locator(FixedLocator(ticks))
    ax.yaxis.set_minor_locator(NullLocator())
    ax.set_yticklabels([f"{t:g}x" for t in ticks])
    ax.set_xticks(
        range(len(groups)),
        [_wrap(g.label, 14) + ("\n(\u2191 better)" if g.higher_is_better else "\n(\u2193 better)") for g in groups],
        fontsize=8,
    )
    ax.set_xlim(-0.6, len(groups) - 0.4)
    ax.set_ylabel(f"{SUBJECT} median / peer median")
    ax.set_title(f"{SUBJECT} against its peers (1.0 = equal)", fontsize=11)
    ax.grid(axis="y", color="#dddddd", zorder=0)
    ax.set_axisbelow(True)
    ax.legend(loc="upper right", fontsize=8, framealpha=0.9)
    if not groups:
        ax.text(0.5, 0.5, "no scenario measured", transform=ax.transAxes, ha="center")
    _save(fig, path)


def hub_fanout_chart(hub: HubResults, path: Path) -> bool:
    """Deliveries/s per fan-out server."""
    names = [n for n in hub.contenders if hub.cell("fanout", n, "deliveries_per_second") is not None]
    if not names:
        return False
    cells = [c for c in (hub.cell("fanout", n, "deliveries_per_second") for n in names) if c is not None]
    settings = hub.meta.get("settings", {})
    fig, ax = plt.subplots(figsize=(max(7.0, 1.5 * len(names)), 4.4))
    _bars(ax, [hub.contenders[n] for n in names], cells, [n.startswith(SUBJECT) for n in names])
    ax.set_title(
        f"Fan-out: {settings.get('size', '?')}-byte message to {_num(settings.get('clients', '?'))} clients, "
        f"{settings.get('messages', '?')} times (higher is better)",
        fontsize=10,
    )
    ax.set_ylabel("deliveries/s")
    _note(fig, _reps_note(cells))
    _save(fig, path)
    return True


def hub_memory_chart(hub: HubResults, path: Path) -> bool:
    """Two panels: time to reach every member, and memory per member."""
    names = [n for n in hub.memory_variants if hub.cell("memory", n, "elapsed_seconds") is not None]
    if not names:
        return False
    members = hub.meta.get("settings", {}).get("members", "?")
    fig, axes = plt.subplots(1, 2, figsize=(9.5, 4.4))
    panels = (
        ("elapsed_seconds", 1000.0, "ms", f"One message to {_num(members)} members: all received"),
        ("kib_per_member", 1.0, "KiB/member", "Memory per member (RSS growth)"),
    )
    for ax, (key, scale, unit, title) in zip(axes, panels, strict=True):
        cells = [c for c in (hub.cell("memory", n, key) for n in names) if c is not None]
        _bars(ax, [hub.memory_variants[n] for n in names], cells, [n == HUB_SUBJECT for n in names], scale)
        ax.set_title(f"{title}\n(lower is better)", fontsize=9)
        ax.set_ylabel(unit)
    _note(fig, _reps_note(c for c in (hub.cell("memory", n, "elapsed_seconds") for n in names) if c is not None))
    _save(fig, path)
    return True
