"""pytest configuration for tests/interop.

Makes the sibling helper module importable whatever pytest import mode the
project uses (``prepend`` or ``importlib``).
"""

import sys
from pathlib import Path

_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)
