"""The documentation builds with ``sphinx -W`` from the ``docs`` extra alone.

The build runs in a virtual environment of its own that holds only
``trio-ws[docs]`` (no test tools), as docs/index.rst tells readers to set one
up. The environment is kept under ``.cache/docs-venv-X.Y/`` and made again only
when the package's requirements or the extra's change, so the test costs one
Sphinx build on later runs. The HTML goes to a fresh directory every time:
an incremental build would not repeat the warnings of unchanged pages.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / ".cache" / f"docs-venv-{sys.version_info[0]}.{sys.version_info[1]}"
PYTHON = CACHE / ("Scripts/python.exe" if sys.platform == "win32" else "bin/python")
STAMP = CACHE / ".requirements"
TIMEOUT = 600  # seconds, for the install and for the build; a loaded 2-core machine needs about a minute


def _requirements() -> str:
    """The package's dependencies and its ``docs`` extra, as written in pyproject.toml."""
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    blocks = [re.search(rf"^{name} = \[.*?^\]", text, re.M | re.S) for name in ("dependencies", "docs")]
    assert all(blocks), "pyproject.toml lacks [project] dependencies or the docs extra"
    return "\n".join(block.group(0) for block in blocks if block)


def _docs_environment() -> Path:
    """The cached environment with ``.[docs]`` installed, made again when the requirements changed."""
    requirements = _requirements()
    if STAMP.exists() and STAMP.read_text() == requirements and PYTHON.exists():
        return PYTHON
    shutil.rmtree(CACHE, ignore_errors=True)
    venv.EnvBuilder(with_pip=True).create(CACHE)
    subprocess.run([str(PYTHON), "-m", "pip", "install", "-q", "-e", ".[docs]"], cwd=ROOT, check=True, timeout=TIMEOUT)
    STAMP.write_text(requirements)
    return PYTHON


def test_docs_extra_is_declared() -> None:
    docs = re.search(r"^docs = \[(.*?)^\]", (ROOT / "pyproject.toml").read_text(encoding="utf-8"), re.M | re.S)
    assert docs is not None
    names = set(re.findall(r'"([A-Za-z0-9_.-]+)', docs.group(1)))
    assert {"sphinx", "furo", "pytest", "coredis"} <= names, names


@pytest.mark.slow
def test_docs_build_with_only_the_docs_extra(tmp_path: Path) -> None:
    python = _docs_environment()
    # Only the docs extra: none of the test tools are there.
    probe = "import importlib.util as u; print([m for m in ('pytest_trio', 'playwright', 'mypy') if u.find_spec(m)])"
    found = subprocess.run([str(python), "-c", probe], capture_output=True, text=True, check=True, timeout=60)
    assert found.stdout.strip() == "[]", found.stdout
    build = subprocess.run(
        [str(python), "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html", "docs", str(tmp_path / "html")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert build.returncode == 0, build.stdout + build.stderr
    assert (tmp_path / "html" / "index.html").is_file()
