"""pytest configuration for tests/interop.

Makes the sibling modules importable whatever pytest import mode the project
uses (``prepend`` or ``importlib``; the helpers themselves are in
``tests/support/interop.py``), and leaves out the suites of the
``websockets`` peer where it cannot be installed: websockets 17 needs Python
3.11 or newer, so ``python3 tests/run.py`` on a machine with only 3.10 runs
everything else. Under ``CI=true`` a missing peer is an error, as for every
other part the suite needs.
"""

import importlib.util
import os
import sys
from pathlib import Path

_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)

_WEBSOCKETS_SUITES = ["test_websockets_asyncio.py", "test_websockets_trio.py"]

if importlib.util.find_spec("websockets") is None:
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        raise RuntimeError("the websockets interop peer is not installed (test extra, Python 3.11+)")
    collect_ignore = _WEBSOCKETS_SUITES


def pytest_report_header() -> str | None:
    """Say so when the websockets suites are left out."""
    if importlib.util.find_spec("websockets") is None:
        return f"tests/interop: {', '.join(_WEBSOCKETS_SUITES)} left out (websockets 17 needs Python 3.11+)"
    return None
