"""Set up the project's virtual environments on a machine that has only Python.

Used by ``tests/run.py`` and ``examples/demo.py``: creates ``.venv`` beside the
project, installs the package (with the extras asked for) and re-installs
only when ``pyproject.toml`` or the C speed-up changed. ``tests/run.py`` also
builds one ``.venv-3.X`` per other Python it tests on (see
:func:`ensure_other_environment`).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv"
PYTHON = VENV / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def _fingerprint(extras: str) -> str:
    digest = hashlib.sha256(extras.encode())
    for name in ("pyproject.toml", "trio_ws/_speedups.c"):
        path = ROOT / name
        if path.exists():
            digest.update(path.read_bytes())
    return digest.hexdigest()


def _venv_python(directory: Path) -> Path:
    return directory / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def _install(python: Path, directory: Path, name: str, key: str, targets: list[str]) -> None:
    """pip install ``targets`` with ``python`` unless the stamp ``name`` says it is done for ``key``."""
    stamp = directory / f".installed-{name}"
    fingerprint = _fingerprint(key)
    if stamp.exists() and stamp.read_text() == fingerprint:
        return
    print(f"installing {' '.join(targets)} into {directory}", flush=True)
    for command in (["install", "--upgrade", "pip"], ["install", *targets]):
        result = subprocess.run([str(python), "-m", "pip", "-q", *command], cwd=ROOT, capture_output=True, text=True)
        if result.returncode != 0:
            sys.exit(f"pip {' '.join(command)} failed:\n{result.stdout}\n{result.stderr}")
    stamp.write_text(fingerprint)


def ensure_environment(extras: str = "") -> Path:
    """Create and fill ``.venv`` if needed; return its Python interpreter."""
    if sys.version_info < (3, 10):
        sys.exit(f"trio_ws needs Python 3.10 or newer; this is {sys.version.split()[0]}")
    if not PYTHON.exists():
        print(f"creating virtual environment in {VENV}", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    target = f".[{extras}]" if extras else "."
    _install(PYTHON, VENV, extras or "base", extras, ["-e", target])
    return PYTHON


def ensure_other_environment(interpreter: str, version: str, requirements: list[str]) -> Path:
    """Create and fill ``.venv-VERSION`` with ``interpreter``; return its Python.

    The package is installed editable (its speed-up is built for that
    interpreter beside the others), with ``requirements`` next to it.
    """
    directory = ROOT / f".venv-{version}"
    python = _venv_python(directory)
    if not python.exists():
        print(f"creating virtual environment in {directory} with {interpreter}", flush=True)
        result = subprocess.run([interpreter, "-m", "venv", str(directory)], capture_output=True, text=True)
        if result.returncode != 0:
            sys.exit(f"{interpreter} -m venv failed:\n{result.stdout}\n{result.stderr}")
    _install(python, directory, "tests", " ".join(requirements), ["-e", ".", *requirements])
    return python


def in_environment() -> bool:
    """True when the running interpreter is one of the project's virtual environments."""
    prefix = Path(sys.prefix).resolve()
    return prefix == VENV.resolve() or (prefix.parent == ROOT and prefix.name.startswith(".venv-"))


def reexec(extras: str, script: Path, args: list[str]) -> None:
    """Make sure the environment exists, then run ``script`` inside it (never returns)."""
    python = ensure_environment(extras)
    os.execv(str(python), [str(python), str(script), *args])
