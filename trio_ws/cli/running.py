"""Run a Trio program as a command: Ctrl-C stops it cleanly and quietly.

:func:`run_main` is what the ``trio-ws`` command and the examples use instead
of a bare ``trio.run``. The first Ctrl-C cancels the program, so that its
``finally`` blocks and closing handshakes run (a server says 1001 "going away"
to its clients); a second Ctrl-C interrupts at once. Either way the process
prints no traceback: on Python 3.10 and 3.11 Trio delivers Ctrl-C as a
``BaseExceptionGroup`` holding ``KeyboardInterrupt`` when it interrupts a
nursery, which ``except KeyboardInterrupt`` (or ``contextlib.suppress``) does
not catch, so this module looks inside groups.
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Awaitable, Callable
from functools import partial

import trio

from ..scopes import leaves
from .errors import EXIT_OK

if sys.version_info < (3, 11):  # pragma: no cover - trio depends on the backport there
    from exceptiongroup import BaseExceptionGroup

__all__ = ["run_main"]


async def _cancel_on_sigint(
    scope: trio.CancelScope, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
) -> None:
    """Cancel ``scope`` on the first SIGINT; a second one interrupts at once."""
    if threading.current_thread() is not threading.main_thread():
        task_status.started()  # signals can only be received in the main thread
        return
    with trio.open_signal_receiver(signal.SIGINT) as signals:
        task_status.started()
        async for _ in signals:
            break
    # Leaving the receiver puts Trio's own handler back: a second Ctrl-C during
    # the closing handshake raises KeyboardInterrupt instead of waiting on.
    scope.cancel()


class _Finished:
    """The result of the program, once it returned."""

    def __init__(self, value: object) -> None:
        self.value = value


async def _until_interrupted(program: Callable[[], Awaitable[object]]) -> _Finished | None:
    """Run ``program``; on Ctrl-C cancel it (so that it closes cleanly) and return None."""
    finished: _Finished | None = None
    async with trio.open_nursery() as nursery:
        await nursery.start(_cancel_on_sigint, nursery.cancel_scope)

        async def run() -> None:
            nonlocal finished
            finished = _Finished(await program())
            nursery.cancel_scope.cancel()

        nursery.start_soon(run)
    return finished


def run_main(async_fn: Callable[..., Awaitable[object]], *args: object, interrupted: int = EXIT_OK) -> int:
    """Run ``async_fn(*args)`` with :func:`trio.run`; Ctrl-C ends it quietly.

    The first Ctrl-C (SIGINT) cancels ``async_fn``, a second one raises
    ``KeyboardInterrupt`` inside it; in both cases nothing is printed and
    ``interrupted`` is returned. An exception that ends ``async_fn`` comes out
    as itself when it is the only one (Trio would wrap it in a group when it
    crosses a nursery).

    Args:
        async_fn: the program's main function.
        *args: positional arguments for ``async_fn``.
        interrupted: the exit status to return after Ctrl-C (0 by default:
            Ctrl-C is how a server is stopped; ``trio-ws connect`` uses 130).

    Returns:
        the exit status: what ``async_fn`` returned if it is an int, 0 if it
        returned anything else (``None``), ``interrupted`` after Ctrl-C. Use
        it as ``sys.exit(run_main(main))``.

    Raises:
        BaseException: whatever ``async_fn`` raised, unwrapped from exception
            groups of one.
    """
    try:
        finished = trio.run(_until_interrupted, partial(async_fn, *args))
    except BaseException as exc:
        found = leaves(exc)
        if all(isinstance(leaf, KeyboardInterrupt) for leaf in found):
            return interrupted
        if isinstance(exc, BaseExceptionGroup) and len(found) == 1:
            raise found[0] from None
        raise
    if finished is None:
        return interrupted
    return finished.value if isinstance(finished.value, int) else EXIT_OK
