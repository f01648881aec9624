"""Run the trio_ws command line tool: ``python -m trio_ws --help``."""

from __future__ import annotations

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
