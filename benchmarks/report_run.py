"""Running one benchmark for ``report.py --run``: the command, its exit status, duration and load."""

from __future__ import annotations

import contextlib
import os
import shlex
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from report_results import BenchRun, ReportError

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def portable_command(command: Sequence[str]) -> list[str]:
    """A command with paths inside the project made relative to its root.

    The results file is committed: it must read the same in every checkout,
    so it never holds the absolute path of the one that measured.
    """
    parts = []
    for part in command:
        candidate = Path(part)
        if candidate.is_absolute():
            with contextlib.suppress(ValueError):
                part = str(candidate.relative_to(PROJECT_ROOT))
        parts.append(part)
    return parts


def display_command(command: Sequence[str]) -> str:
    """A command as a shell line, with paths inside the project made relative to its root."""
    return shlex.join(portable_command(command))


def run_benchmark(command: list[str], results: Path) -> BenchRun:
    """Run one benchmark in a subprocess; its progress goes to our stderr.

    Raises:
        ReportError: when it wrote no results file.
    """
    results.unlink(missing_ok=True)
    print(f"running: {display_command(command)}", file=sys.stderr, flush=True)
    load_before = os.getloadavg()[0]
    start = time.monotonic()
    # The benchmark's own table (its stdout) goes to our stderr with its progress.
    proc = subprocess.Popen(command, stdout=sys.stderr.fileno() if _has_fileno(sys.stderr) else None)
    try:
        returncode = proc.wait()
    except BaseException:
        # Ctrl-C reaches the child too, which stops its servers and exits: give it time to, then
        # SIGTERM (which it handles the same way), then SIGKILL.
        for stop in (None, proc.terminate, proc.kill):
            if stop is not None:
                stop()
            try:
                proc.wait(timeout=30)
                break
            except subprocess.TimeoutExpired:
                continue
        raise
    seconds = time.monotonic() - start
    if returncode == 130:
        raise KeyboardInterrupt
    if not results.exists():
        raise ReportError(f"{display_command(command)} exited with status {returncode} and wrote no results")
    return BenchRun(portable_command(command), returncode, seconds, load_before, os.getloadavg()[0])


def _has_fileno(stream: Any) -> bool:
    try:
        stream.fileno()
    except (AttributeError, OSError, ValueError):
        return False
    return True
