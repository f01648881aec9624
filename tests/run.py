"""Run the whole test suite: ``python3 tests/run.py [pytest args]``.

Works on a machine that has only Python 3.10+: it creates ``.venv``, installs
trio_ws with its ``test`` extra, then runs ruff, ``mypy --strict``, the Sphinx
build with ``-W``, and pytest. Exits non-zero when any of them fails.

Then it runs the core, app and CLI test modules (:func:`other_python_suites`)
on every other supported Python it finds (:data:`SUPPORTED`; on ``PATH`` as
``python3.X`` or under pyenv's ``versions/``), each in its own ``.venv-3.X``
with trio_ws and the test requirements those modules need. A supported Python
that is missing is reported and skipped, except under ``CI=true``, where it
fails the run. ``--this-python-only`` (the first argument) skips this part.
"""

from __future__ import annotations

import os
import re
import runpy
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

#: The Python versions trio_ws supports, and tests on.
SUPPORTED = ("3.10", "3.11", "3.12", "3.13")

#: Requirements of the ``test`` extra that the core, app and CLI modules do
#: not need on other Pythons: the linters and the docs, browser, benchmark and
#: interop tools (websockets 17 needs Python 3.11 or newer).
NOT_FOR_OTHER_PYTHONS = frozenset(
    {"mypy", "ruff", "sphinx", "furo", "coverage", "playwright", "matplotlib", "websockets"}
)

#: Top-level test modules that test the docs or the benchmarks, not the code
#: (their names start with these).
NOT_CORE_PREFIXES = ("test_docs", "test_benchmark")


def _strict() -> bool:
    """CI=true: a missing part (here, a supported Python) is a failure, not a skip."""
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def other_python_suites() -> list[str]:
    """The test paths run on every other Python: ``tests/test_*.py`` (core, hub, CLI, examples) and ``tests/app``."""
    modules = sorted(
        f"tests/{path.name}"
        for path in (ROOT / "tests").glob("test_*.py")
        if not path.name.startswith(NOT_CORE_PREFIXES)
    )
    return [*modules, "tests/app"]


def _test_requirements() -> list[str]:
    """The ``test`` extra of pyproject.toml, without :data:`NOT_FOR_OTHER_PYTHONS`."""
    try:
        import tomllib
    except ImportError:  # Python 3.10: pytest and mypy bring the backport
        import tomli as tomllib
    with open(ROOT / "pyproject.toml", "rb") as file:
        extras: dict[str, list[str]] = tomllib.load(file)["project"]["optional-dependencies"]
    keep = []
    for requirement in extras["test"]:
        name = re.split(r"[\s<>=!~;\[]", requirement, maxsplit=1)[0].lower().replace("_", "-")
        if name not in NOT_FOR_OTHER_PYTHONS:
            keep.append(requirement)
    return keep


def _version_of(interpreter: str) -> str | None:
    """``"3.X"`` of a working interpreter, None if it does not run (e.g. an inactive pyenv shim)."""
    try:
        result = subprocess.run(
            [interpreter, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
            capture_output=True,
            text=True,
            timeout=30,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return result.stdout.strip() if result.returncode == 0 else None


def find_interpreter(version: str) -> str | None:
    """A working ``python{version}``: on PATH first, then in pyenv's versions directory."""
    candidates = [shutil.which(f"python{version}")]
    pyenv = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    candidates += [str(path) for path in sorted(pyenv.glob(f"{version}.*/bin/python{version}"), reverse=True)]
    for candidate in candidates:
        if candidate is not None and _version_of(candidate) == version:
            return candidate
    return None


def run_other_pythons(bootstrap: dict[str, object]) -> list[str]:
    """Run the core, app and CLI modules on each other supported Python; return the names of failed steps."""
    current = f"{sys.version_info[0]}.{sys.version_info[1]}"
    failed = []
    requirements = _test_requirements()
    for version in SUPPORTED:
        if version == current:
            continue
        name = f"pytest on Python {version} (core, app, CLI)"
        print(f"\n=== {name} ===", flush=True)
        interpreter = find_interpreter(version)
        if interpreter is None:
            print(f"Python {version} not found (python{version} on PATH or under pyenv)", flush=True)
            if _strict():
                print("CI=true: every supported Python must be installed", flush=True)
                failed.append(f"Python {version} missing")
            else:
                print("skipped (it fails under CI=true)", flush=True)
            continue
        started = time.monotonic()
        python = bootstrap["ensure_other_environment"](interpreter, version, requirements)  # type: ignore[operator]
        installed = time.monotonic()
        command = [str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider", *other_python_suites()]
        code = subprocess.run(command, cwd=ROOT, env=os.environ.copy()).returncode
        print(
            f"Python {version}: environment {installed - started:.0f} s, tests {time.monotonic() - installed:.0f} s",
            flush=True,
        )
        if code != 0:
            failed.append(name)
    return failed


def main(args: list[str]) -> int:
    """Run every check in order; return the process exit status."""
    bootstrap = runpy.run_path(str(ROOT / ".ci" / "bootstrap.py"))
    if not bootstrap["in_environment"]():
        bootstrap["reexec"]("test", Path(__file__), args)
    bootstrap["ensure_environment"]("test")
    this_python_only = args[:1] == ["--this-python-only"]
    if this_python_only:
        args = args[1:]
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
    if not this_python_only:
        failed += run_other_pythons(bootstrap)
    if failed:
        print(f"\nFAILED: {', '.join(failed)}", flush=True)
        return 1
    print("\nall checks passed", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
