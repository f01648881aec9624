"""Run the whole test suite: ``python3 tests/run.py [pytest args]``.

Works on a machine that has only Python 3.10+: it creates ``.venv``, installs
trio_ws with its ``test`` extra, then runs ruff, ``mypy --strict``, the Sphinx
build with ``-W``, and pytest. Exits non-zero when any of them fails.
"""

from __future__ import annotations

import os
import runpy
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main(args: list[str]) -> int:
    """Run every check in order; return the process exit status."""
    bootstrap = runpy.run_path(str(ROOT / ".ci" / "bootstrap.py"))
    if not bootstrap["in_environment"]():
        bootstrap["reexec"]("test", Path(__file__), args)
    bootstrap["ensure_environment"]("test")
    python = sys.executable
    steps: list[tuple[str, list[str]]] = [
        ("ruff", [python, "-m", "ruff", "check", "trio_ws", "tests", "examples", "benchmarks"]),
        ("mypy --strict", [python, "-m", "mypy", "--strict"]),
    ]
    if (ROOT / "docs" / "conf.py").exists():
        sphinx = [python, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html", "docs", "docs/_build/html"]
        steps.append(("sphinx -W", sphinx))
    steps.append(("pytest", [python, "-m", "pytest", *args]))
    failed = []
    for name, command in steps:
        print(f"\n=== {name} ===", flush=True)
        if subprocess.run(command, cwd=ROOT, env=os.environ.copy()).returncode != 0:
            failed.append(name)
    if failed:
        print(f"\nFAILED: {', '.join(failed)}", flush=True)
        return 1
    print("\nall checks passed", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
