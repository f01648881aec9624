"""A stand-in for the ``trio_websocket`` package that is trio_ws under that name.

Used only by ``tests/test_trio_websocket_suite.py``, which puts this folder
first on ``sys.path`` so that trio-websocket's own test suite imports trio_ws
when it says ``from trio_websocket import ...``. Nothing here adds behaviour:
every name is trio_ws's own.
"""

from trio_ws import *  # noqa: F403
from trio_ws import __all__ as __all__
