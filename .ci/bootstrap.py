"""Set up the project's virtual environment on a machine that has only Python.

Used by ``tests/run.py`` and ``examples/demo.py``: creates ``.venv`` beside the
project, installs the package (with the extras asked for) and re-installs
only when ``pyproject.toml`` or the C speed-up changed.
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


def ensure_environment(extras: str = "") -> Path:
    """Create and fill ``.venv`` if needed; return its Python interpreter."""
    if sys.version_info < (3, 10):
        sys.exit(f"trio_ws needs Python 3.10 or newer; this is {sys.version.split()[0]}")
    if not PYTHON.exists():
        print(f"creating virtual environment in {VENV}", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    stamp = VENV / f".installed-{extras or 'base'}"
    fingerprint = _fingerprint(extras)
    if not stamp.exists() or stamp.read_text() != fingerprint:
        target = f".[{extras}]" if extras else "."
        print(f"installing trio_ws{f'[{extras}]' if extras else ''} into {VENV}", flush=True)
        for command in (["install", "--upgrade", "pip"], ["install", "-e", target]):
            result = subprocess.run(
                [str(PYTHON), "-m", "pip", "-q", *command], cwd=ROOT, capture_output=True, text=True
            )
            if result.returncode != 0:
                sys.exit(f"pip {' '.join(command)} failed:\n{result.stdout}\n{result.stderr}")
        stamp.write_text(fingerprint)
    return PYTHON


def in_environment() -> bool:
    """True when the running interpreter is the project's virtual environment."""
    return Path(sys.prefix).resolve() == VENV.resolve()


def reexec(extras: str, script: Path, args: list[str]) -> None:
    """Make sure the environment exists, then run ``script`` inside it (never returns)."""
    python = ensure_environment(extras)
    os.execv(str(python), [str(python), str(script), *args])
