"""The tables of the benchmark report, as Markdown and reStructuredText (used by ``report.py``)."""

from __future__ import annotations

from dataclasses import dataclass, field

from report_results import (
    HUB_FANOUT_PAIRS,
    HUB_FANOUT_PEERS,
    HUB_MEMORY_PEERS,
    HUB_SUBJECT,
    PEERS,
    SUBJECT,
    Cell,
    CoreResults,
    HubResults,
    _num,
    _plural,
)
from report_socketio import SOCKETIO_PEER_UVLOOP, SOCKETIO_PEERS, SOCKETIO_SUBJECT, SocketIOResults

# --------------------------------------------------------------------------- #
# Tables
# --------------------------------------------------------------------------- #


def fmt(value: float | None, scale: float = 1.0) -> str:
    """Format a measurement the way the benchmarks' own tables do."""
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


def fmt_ratio(value: float | None) -> str:
    """A ratio as ``1.86x``, or ``n/a``."""
    return "n/a" if value is None else f"{value:.2f}x"


def fmt_range(cell: Cell | None, scale: float = 1.0) -> str:
    """``min - max`` of a cell, or ``n/a``."""
    if cell is None:
        return "n/a"
    return f"{fmt(cell.minimum, scale)} - {fmt(cell.maximum, scale)}"


@dataclass
class Table:
    """A table rendered both as Markdown and as a reStructuredText list-table.

    Cells are plain text; rows whose index is in ``bold`` are set in bold.
    """

    header: list[str]
    rows: list[list[str]] = field(default_factory=list)
    bold: set[int] = field(default_factory=set)

    def add(self, row: list[str], *, bold: bool = False) -> None:
        """Append a row."""
        if len(row) != len(self.header):
            raise ValueError(f"row has {len(row)} cells, header {len(self.header)}")
        if bold:
            self.bold.add(len(self.rows))
        self.rows.append(row)

    def markdown(self) -> list[str]:
        """The table as Markdown lines (first column left-aligned, the others right)."""

        def cell(text: str, strong: bool) -> str:
            text = text.replace("|", "\\|")
            return f"**{text}**" if strong and text else text

        lines = ["| " + " | ".join(cell(h, False) for h in self.header) + " |"]
        lines.append("| :-- | " + " | ".join("--:" for _ in self.header[1:]) + " |")
        for i, row in enumerate(self.rows):
            lines.append("| " + " | ".join(cell(c, i in self.bold) for c in row) + " |")
        return lines

    def rst(self) -> list[str]:
        """The table as a reStructuredText ``list-table`` directive."""

        def cell(text: str, strong: bool) -> str:
            text = rst_escape(text)
            return f"**{text}**" if strong and text else text

        lines = [".. list-table::", "   :header-rows: 1", "   :stub-columns: 1", ""]
        for i, row in enumerate([self.header, *self.rows]):
            strong = (i - 1) in self.bold
            for j, text in enumerate(row):
                bullet = "   * - " if j == 0 else "     - "
                lines.append((bullet + cell(text, strong)).rstrip())
        return lines


def rst_escape(text: str) -> str:
    """Escape the characters reStructuredText would read as markup."""
    for char in ("\\", "*", "`", "|", "_"):
        text = text.replace(char, "\\" + char)
    return text


def _contender_cell(core: CoreResults, metric: str, name: str, cell: Cell | None) -> str:
    if cell is not None:
        return fmt(cell.median)
    if name in core.skipped:
        return "skipped"
    if core.failed(metric, name):
        return "failed"
    return "n/a"


def core_tables(core: CoreResults) -> tuple[Table, Table]:
    """The medians with the ratio rows, and the min - max ranges."""
    header = ["Contender", *(m.column for m in core.metrics)]
    medians = Table(header)
    ranges = Table(header)
    for name, label in core.contenders.items():
        cells = [core.cell(m.key, name) for m in core.metrics]
        strong = name == SUBJECT
        medians.add(
            [label, *(_contender_cell(core, m.key, name, c) for m, c in zip(core.metrics, cells, strict=True))],
            bold=strong,
        )
        ranges.add([label, *(fmt_range(c) for c in cells)], bold=strong)
    for peer in PEERS:
        medians.add(
            [f"{SUBJECT} / {peer}", *(fmt_ratio(core.ratio(m.key, SUBJECT, peer)) for m in core.metrics)], bold=True
        )
    return medians, ranges


def hub_fanout_table(hub: HubResults) -> Table:
    """The fan-out table with ratio rows against every peer server."""
    table = Table(["Server", "Deliveries/s", "min - max", "Last receipt, ms", "Fan-out calls, ms", "Server CPU, s"])
    for name, label in hub.contenders.items():
        rate = hub.cell("fanout", name, "deliveries_per_second")

        def median(key: str, scale: float = 1.0, name: str = name) -> str:
            cell = hub.cell("fanout", name, key)
            return fmt(None if cell is None else cell.median, scale)

        first = fmt(rate.median) if rate is not None else ("failed" if hub.failed("fanout", name) else "n/a")
        table.add(
            [
                label,
                first,
                fmt_range(rate),
                median("elapsed_seconds", 1000),
                median("loop_seconds", 1000),
                median("server_cpu_seconds"),
            ],
            bold=name.startswith(SUBJECT),
        )
    for name in hub.skipped:
        table.add([name, "skipped", "", "", "", ""])
    if HUB_SUBJECT in hub.contenders:
        for peer in HUB_FANOUT_PEERS:
            if peer in hub.contenders:
                ratio = hub.ratio("fanout", HUB_SUBJECT, peer, "deliveries_per_second")
                label = f"{hub.contenders[HUB_SUBJECT]} / {hub.contenders[peer]}"
                table.add([label, fmt_ratio(ratio), "", "", "", ""], bold=True)
    for top, bottom in HUB_FANOUT_PAIRS:
        if top in hub.contenders and bottom in hub.contenders:
            ratio = hub.ratio("fanout", top, bottom, "deliveries_per_second")
            label = f"{hub.contenders[top]} / {hub.contenders[bottom]}"
            table.add([label, fmt_ratio(ratio), "", "", "", ""], bold=True)
    return table


def hub_burst_table(hub: HubResults) -> Table:
    """The burst table: the server's peak memory per member while a burst is delivered."""
    table = Table(["Server", "Peak bytes/member", "min - max", "Peak growth, MiB", "Deliveries/s"])
    for name, label in hub.burst_contenders.items():
        per_member = hub.cell("burst", name, "peak_bytes_per_client")
        samples = [s for s in hub.samples if s["table"] == "burst" and s["contender"] == name]
        growth = Cell.of([(s["server_peak_rss_kib"] - s["server_rss_before_kib"]) / 1024 for s in samples])
        rate = hub.cell("burst", name, "deliveries_per_second")
        first = fmt(per_member.median) if per_member else ("failed" if hub.failed("burst", name) else "n/a")
        table.add(
            [
                label,
                first,
                fmt_range(per_member),
                fmt(growth.median if growth else None),
                fmt(rate.median if rate else None),
            ],
            bold=name == HUB_SUBJECT,
        )
    return table


def burst_sentence(hub: HubResults) -> str | None:
    """The trio_ws Hub's burst figure against its documented bound, as one sentence (no markup)."""
    cell = hub.cell("burst", HUB_SUBJECT, "peak_bytes_per_client")
    bound = hub.meta.get("burst_bound_bytes")
    settings = hub.meta.get("settings", {})
    if cell is None or bound is None:
        return None
    verdict = "within" if cell.median <= bound else "OVER"
    return (
        f"A burst of 100 x 1,024-byte messages to {_num(settings.get('burst_clients', '?'))} members raised the "
        f"trio_ws Hub server's peak memory by {fmt(cell.median)} bytes per member (median of "
        f"{_plural(cell.n, 'repetition')}, range {fmt_range(cell)}): {verdict} the documented bound of "
        f"{_num(bound)} bytes."
    )


def hub_memory_table(hub: HubResults) -> Table:
    """The in-memory table (one room, many members, one process)."""
    table = Table(["Variant", "All received, ms", "min - max, ms", "Deliveries/s", "Fan-out call, ms", "KiB/member"])
    for name, label in hub.memory_variants.items():
        elapsed = hub.cell("memory", name, "elapsed_seconds")

        def median(key: str, scale: float = 1.0, name: str = name) -> str:
            cell = hub.cell("memory", name, key)
            return fmt(None if cell is None else cell.median, scale)

        first = fmt(elapsed.median, 1000) if elapsed else ("failed" if hub.failed("memory", name) else "n/a")
        table.add(
            [
                label,
                first,
                fmt_range(elapsed, 1000),
                median("deliveries_per_second"),
                median("call_seconds", 1000),
                median("kib_per_member"),
            ],
            bold=name == HUB_SUBJECT,
        )
    if HUB_SUBJECT in hub.memory_variants:
        for peer in HUB_MEMORY_PEERS:
            if peer in hub.memory_variants:
                time_ratio = hub.ratio("memory", HUB_SUBJECT, peer, "elapsed_seconds")
                rate_ratio = hub.ratio("memory", HUB_SUBJECT, peer, "deliveries_per_second")
                kib_ratio = hub.ratio("memory", HUB_SUBJECT, peer, "kib_per_member")
                label = f"{hub.memory_variants[HUB_SUBJECT]} / {hub.memory_variants[peer]}"
                table.add(
                    [label, fmt_ratio(time_ratio), "", fmt_ratio(rate_ratio), "", fmt_ratio(kib_ratio)], bold=True
                )
    return table


def socketio_echo_table(sio: SocketIOResults) -> Table:
    """The Socket.IO echo table: round trips/s and CPU per round trip, per scenario and server, with ratios."""
    table = Table(
        ["Scenario / server", "Round trips/s", "min - max", "Server CPU, us/round trip", "Client CPU, us/round trip"]
    )

    def cell(scenario: str, name: str, key: str) -> Cell | None:
        return Cell.of(sio.values(scenario, name, key))

    def ratio(scenario: str, peer: str, key: str) -> float | None:
        top, bottom = cell(scenario, SOCKETIO_SUBJECT, key), cell(scenario, peer, key)
        return None if top is None or bottom is None or not bottom.median else top.median / bottom.median

    for scenario, title in sio.scenarios.items():
        for name, label in sio.contenders.items():
            rate = cell(scenario, name, "round_trips_per_second")
            first = fmt(rate.median) if rate else ("failed" if sio.failed(scenario, name) else "n/a")
            server = cell(scenario, name, "server_cpu_us_per_round_trip")
            client = cell(scenario, name, "client_cpu_us_per_round_trip")
            table.add(
                [
                    f"{title}: {label}",
                    first,
                    fmt_range(rate),
                    fmt(server.median if server else None),
                    fmt(client.median if client else None),
                ],
                bold=name == SOCKETIO_SUBJECT,
            )
        for peer in SOCKETIO_PEERS:
            if SOCKETIO_SUBJECT in sio.contenders and peer in sio.contenders:
                label = f"{title}: {sio.contenders[SOCKETIO_SUBJECT]} / {sio.contenders[peer]}"
                rates = ratio(scenario, peer, "round_trips_per_second")
                cpus = ratio(scenario, peer, "server_cpu_us_per_round_trip")
                table.add([label, fmt_ratio(rates), "", fmt_ratio(cpus), ""], bold=True)
    for name in sio.skipped:
        table.add([name, "skipped", "", "", ""])
    return table


def socketio_fanout_table(hub: HubResults) -> Table | None:
    """The Socket.IO rows of the hub fan-out table (same clients, same protocol), or None without them."""
    names = [n for n in (SOCKETIO_SUBJECT, *SOCKETIO_PEERS) if n in hub.contenders]
    if not names:
        return None
    clients = _num(hub.meta.get("settings", {}).get("clients", "?"))
    table = Table([f"Fan-out to {clients} Socket.IO clients", "Deliveries/s", "min - max", "Server CPU, s"])
    for name in names:
        rate = hub.cell("fanout", name, "deliveries_per_second")
        cpu = hub.cell("fanout", name, "server_cpu_seconds")
        first = fmt(rate.median) if rate else ("failed" if hub.failed("fanout", name) else "n/a")
        table.add(
            [hub.contenders[name], first, fmt_range(rate), fmt(cpu.median if cpu else None)],
            bold=name == SOCKETIO_SUBJECT,
        )
    for peer in SOCKETIO_PEERS:
        if SOCKETIO_SUBJECT in names and peer in names:
            ratio = hub.ratio("fanout", SOCKETIO_SUBJECT, peer, "deliveries_per_second")
            cpu_ratio = hub.ratio("fanout", SOCKETIO_SUBJECT, peer, "server_cpu_seconds")
            label = f"{hub.contenders[SOCKETIO_SUBJECT]} / {hub.contenders[peer]}"
            table.add([label, fmt_ratio(ratio), "", fmt_ratio(cpu_ratio)], bold=True)
    return table


def socketio_intro(sio: SocketIOResults) -> str:
    """What the Socket.IO echo table shows and how it was measured (one paragraph, no markup)."""
    meta = sio.meta
    settings = meta.get("settings", {})
    # Results from before the uvloop contender existed render as they did then.
    servers = (
        "every server. python-socketio runs under uvicorn as a plain install sets it up (asyncio's event loop, "
        "h11), and with uvloop and httptools (what uvicorn[standard] installs and uvicorn then picks)."
        if SOCKETIO_PEER_UVLOOP in sio.contenders
        else "both servers."
    )
    return (
        f"Socket.IO round trips over WebSocket: an event of {meta.get('payload_characters', '?')} characters "
        "with an ack, answered by the handler's return value; one client, and "
        f"{settings.get('concurrent_clients', '?')} clients at once. Median of "
        f"{_plural(meta.get('reps', '?'), 'repetition')} of {settings.get('duration', '?')} s, servers "
        f"alternating, a fresh server process each; the same trio_ws client for {servers} Ratio rows: "
        "trio_ws App divided by python-socketio (round trips/s: above 1 is better; server CPU per round "
        "trip: below 1 is better)."
    )


def socketio_fragment(sio: SocketIOResults | None, hub: HubResults | None, commands: list[str], load: str) -> str:
    """``socketio.inc``: the commands, the echo table and the fan-out table's Socket.IO rows (reStructuredText)."""
    out = [".. Generated by benchmarks/report.py from results.json; edits are overwritten.", ""]
    if commands:
        out += ["Measured with:", "", ".. code:: sh", "", *(f"   {line}" for line in commands), ""]
    if sio is None:
        out.append("No Socket.IO echo measurement in the results.")
    else:
        out += [rst_escape(f"{socketio_intro(sio)} 1-minute load average {load}."), "", *socketio_echo_table(sio).rst()]
    fanout = socketio_fanout_table(hub) if hub is not None else None
    if fanout is not None:
        on = "every server" if SOCKETIO_PEER_UVLOOP in hub.contenders else "both"
        out += ["", rst_escape(f"The Socket.IO rows of the hub fan-out table (Socket.IO clients on {on}):"), ""]
        out += fanout.rst()
    return "\n".join(out).rstrip() + "\n"
