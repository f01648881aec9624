"""What the processes of the hub fan-out benchmark share.

``bench_hub.py`` (the driver and trigger client), ``bench_hub_server.py`` (the
servers) and ``bench_hub_client.py`` (the 1,000 room members) speak a tiny
protocol over the WebSocket connections they benchmark:

* a member's first message is ``b"join"``; the server adds the connection to
  the room (or to its list of connections) and answers ``b"joined"``;
* the trigger's messages are ``b"go ROUND MESSAGES SIZE"``; the server fans
  out ``MESSAGES`` binary messages of ``SIZE`` bytes to every member, then
  answers the trigger with JSON ``{"loop": seconds}`` (how long its fan-out
  calls took; with the hub they only queue, so this is not the delivery time).

Each fanned-out message starts with its sequence number (4 bytes, big-endian:
``ROUND << 24 | index``), so the members check order and completeness.
Times are read from ``CLOCK_MONOTONIC``, which every process on the machine
shares, so the driver can subtract a member's receipt time from its trigger
time.
"""

from __future__ import annotations

import os
import resource
import sys
import threading
import time
from pathlib import Path

# Let ``import trio_ws`` find the project package when it is not installed.
PROJECT_ROOT = Path(__file__).resolve().parent.parent
if str(PROJECT_ROOT) not in sys.path:
    sys.path.append(str(PROJECT_ROOT))

HOST = "127.0.0.1"
ROOM = "bench"
JOIN = b"join"
JOINED = b"joined"
SEQ_BYTES = 4


def now() -> float:
    """Seconds on the system-wide monotonic clock (comparable across processes)."""
    return time.clock_gettime(time.CLOCK_MONOTONIC)


def go_message(round_no: int, messages: int, size: int) -> bytes:
    """The trigger's request for one round of fan-out."""
    return f"go {round_no} {messages} {size}".encode("ascii")


def parse_go(data: bytes | str) -> tuple[int, int, int]:
    """``(round, messages, size)`` of a trigger request.

    Raises:
        ValueError: when ``data`` is not a trigger request.
    """
    text = data.decode("ascii") if isinstance(data, bytes) else data
    word, round_no, messages, size = text.split()
    if word != "go":
        raise ValueError(f"not a trigger request: {text!r}")
    return int(round_no), int(messages), int(size)


def sequence_number(round_no: int, index: int) -> int:
    """The number that starts message ``index`` of round ``round_no``."""
    return round_no << 24 | index


def round_messages(round_no: int, messages: int, size: int) -> list[bytes]:
    """The ``messages`` payloads of one round, each ``size`` bytes, numbered."""
    padding = bytes(size - SEQ_BYTES)
    return [sequence_number(round_no, i).to_bytes(SEQ_BYTES, "big") + padding for i in range(messages)]


def raise_fd_limit() -> None:
    """Raise the soft limit on open files to the hard limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def exit_when_parent_goes() -> None:
    """End this process when stdin reaches end of file (the driver died or closed it)."""

    def watch() -> None:
        sys.stdin.buffer.read()
        os._exit(0)

    threading.Thread(target=watch, name="stdin-watchdog", daemon=True).start()


def rss_kib(pid: int | str = "self") -> int:
    """Resident set size (VmRSS) of a process, in KiB."""
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS in /proc status")


def run_delay_seconds(pid: int) -> float:
    """Time a process has spent runnable but waiting for a CPU, in seconds.

    The second field of ``/proc/PID/schedstat``: a large value means other
    processes (the benchmark's own, or anything else on the machine) held the
    CPUs while this one had work to do.
    """
    with open(f"/proc/{pid}/schedstat", encoding="ascii") as schedstat:
        return int(schedstat.read().split()[1]) / 1e9


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time a process has used so far, in seconds."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    # Fields 14 and 15 of proc(5) (utime, stime); [0] here is field 3.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def peak_rss_kib(pid: int | str = "self") -> int:
    """Peak resident set size (VmHWM) of a process since it started or since :func:`reset_peak_rss`, in KiB."""
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    raise RuntimeError("no VmHWM in /proc status")


def reset_peak_rss(pid: int | str = "self") -> None:
    """Set a process's VmHWM back to its current RSS (proc(5): ``5`` written to ``clear_refs``).

    Raises:
        OSError: when this process may not write the other's ``clear_refs``.
    """
    with open(f"/proc/{pid}/clear_refs", "w", encoding="ascii") as clear_refs:
        clear_refs.write("5")
