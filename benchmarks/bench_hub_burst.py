"""The burst table of ``bench_hub.py``: a server's peak memory per member during a burst.

A burst is :data:`BURST_MESSAGES` binary messages of :data:`BURST_SIZE` bytes
fanned out at once to every client (300 by default), with the same server
and client processes as the fan-out table. Before the timed round the driver
reads the server's RSS (``VmRSS``) and resets its peak (``VmHWM``, by writing
``5`` to ``/proc/PID/clear_refs``); after the last client received the last
message it reads the peak. (peak - RSS before) / clients is what the burst
cost per member.

:data:`BURST_BOUND_BYTES` is the bound ``docs/topics/hub.rst`` states for the
trio_ws Hub; ``tests/test_benchmark_report.py`` checks that the page states
this number.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable

BURST_MESSAGES = 100
BURST_SIZE = 1024
#: Peak memory a burst may add per member, as stated on docs/topics/hub.rst.
BURST_BOUND_BYTES = 16 * 1024

Values = Callable[[str, str, str], list[float]]


def _fmt(value: float | None, digits: int = 0) -> str:
    return "n/a" if value is None else f"{value:,.{digits}f}"


def render_burst(values: Values, labels: dict[str, str], settings: object) -> list[str]:
    """The burst table as Markdown lines (``values(table, contender, key)`` gives the samples)."""
    clients: int = getattr(settings, "clients")  # noqa: B009 - Settings lives in bench_hub (no import cycle)
    reps: int = getattr(settings, "reps")  # noqa: B009
    header = ["Server", "Peak bytes/member", "min - max", "Peak growth, MiB", "Deliveries/s"]
    rows = []
    for name, label in labels.items():
        per_member = values("burst", name, "peak_bytes_per_client")
        growth = values("burst", name, "server_peak_rss_kib")
        before = values("burst", name, "server_rss_before_kib")
        rate = values("burst", name, "deliveries_per_second")
        med = statistics.median(per_member) if per_member else None
        spread = f"{_fmt(min(per_member))} - {_fmt(max(per_member))}" if per_member else "n/a"
        if per_member and len(per_member) != reps:
            spread += f" ({len(per_member)} of {reps})"
        mib = statistics.median([(g - b) / 1024 for g, b in zip(growth, before, strict=True)]) if growth else None
        rows.append([label, _fmt(med), spread, _fmt(mib, 1), _fmt(statistics.median(rate) if rate else None)])
    lines = [
        "",
        f"### Memory of a burst: {BURST_MESSAGES} x {BURST_SIZE:,} bytes to {clients:,} clients",
        "",
        "The server's peak RSS during the round minus its RSS before it, per client "
        f"(median of {reps}; VmHWM reset through /proc/PID/clear_refs before the round).",
        "",
        "| " + " | ".join(header) + " |",
        "| :-- | " + " | ".join("--:" for _ in header[1:]) + " |",
        *("| " + " | ".join(row) + " |" for row in rows),
    ]
    hub = values("burst", "trio_ws-hub", "peak_bytes_per_client")
    if hub:
        median = statistics.median(hub)
        verdict = "within" if median <= BURST_BOUND_BYTES else "OVER"
        lines += [
            "",
            f"trio_ws Hub: {median:,.0f} bytes per member, {verdict} the documented bound of "
            f"{BURST_BOUND_BYTES:,} bytes (docs/topics/hub.rst).",
        ]
    return lines
