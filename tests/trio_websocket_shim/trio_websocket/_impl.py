"""trio-websocket's ``_impl`` module, as far as its test suite imports it at load time.

The suite does ``from trio_websocket._impl import _TRIO_EXC_GROUP_TYPE`` at
module level; on the Trio versions trio_ws supports that name is the builtin
``BaseExceptionGroup``. The tests that use ``_impl`` for more (patching its
functions) are deselected by the runner, each with its reason.
"""

import sys

from trio_ws import *  # noqa: F403

if sys.version_info < (3, 11):
    from exceptiongroup import BaseExceptionGroup

_TRIO_EXC_GROUP_TYPE = BaseExceptionGroup
