"""Server process of the core benchmark.

Usage (normally started by ``bench_core.py``, never by hand)::

    python benchmarks/bench_server.py CONTENDER [--compression deflate] [--cpu N]

Runs the contender's echo server on 127.0.0.1 with an OS-chosen port, prints
that port alone on one line of stdout, then serves until it is killed.  It
also exits by itself when its stdin reaches end of file, so a driver that
dies without cleaning up does not leave servers behind.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import threading

from bench_contenders import CONTENDERS


def _exit_when_parent_goes() -> None:
    """Block on stdin in a daemon thread; end the process at EOF."""

    def watch() -> None:
        sys.stdin.buffer.read()
        os._exit(0)

    threading.Thread(target=watch, name="stdin-watchdog", daemon=True).start()


def raise_fd_limit() -> None:
    """Raise the soft limit on open files to the hard limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def main(argv: list[str] | None = None) -> None:
    """Parse arguments and serve forever."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("contender", choices=sorted(CONTENDERS))
    parser.add_argument("--compression", choices=("none", "deflate"), default="none")
    parser.add_argument("--cpu", type=int, default=None, help="pin to this CPU")
    args = parser.parse_args(argv)

    if args.cpu is not None:
        os.sched_setaffinity(0, {args.cpu})
    raise_fd_limit()
    _exit_when_parent_goes()

    contender = CONTENDERS[args.contender]
    compression = None if args.compression == "none" else args.compression

    def on_ready(port: int) -> None:
        print(port, flush=True)

    contender.serve_forever(compression, on_ready)


if __name__ == "__main__":
    main()
