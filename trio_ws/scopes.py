"""Nurseries for the library's own background tasks around a caller's block.

Trio wraps whatever escapes a nursery in an ExceptionGroup. Our background
tasks never raise (they catch and report what they meet), so the only thing
that could be wrapped is the caller's own exception from the block; this
helper catches it inside the nursery and re-raises it, unchanged, outside.
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import trio

if sys.version_info < (3, 11):  # pragma: no cover - trio depends on the backport there
    from exceptiongroup import BaseExceptionGroup

__all__ = ["background_tasks", "is_cancellation", "leaves", "single_cancelled"]


def leaves(error: BaseException) -> list[BaseException]:
    """The exceptions inside ``error``, however deeply grouped; ``[error]`` for a plain one.

    The one way trio_ws looks into exception groups: in order, depth first,
    so ``leaves(group)[0]`` is the first error that happened to be recorded.
    """
    if isinstance(error, BaseExceptionGroup):
        return [leaf for inner in error.exceptions for leaf in leaves(inner)]
    return [error]


def is_cancellation(error: BaseException) -> bool:
    """True for ``trio.Cancelled``, or a group made only of them."""
    return all(isinstance(leaf, trio.Cancelled) for leaf in leaves(error))


def single_cancelled(error: BaseException) -> trio.Cancelled | None:
    """The first ``trio.Cancelled`` of a cancellation-only group (or the error itself)."""
    first = leaves(error)[0]
    return first if isinstance(first, trio.Cancelled) and is_cancellation(error) else None


@asynccontextmanager
async def background_tasks() -> AsyncIterator[trio.Nursery]:
    """Yield a nursery whose tasks are cancelled when the block ends.

    An exception raised by the block comes out as itself, never wrapped.
    """
    error: BaseException | None = None
    try:
        async with trio.open_nursery() as nursery:
            try:
                yield nursery
            except BaseException as exc:  # GeneratorExit included: re-raised below, unwrapped
                error = exc
            finally:
                nursery.cancel_scope.cancel()
    except BaseExceptionGroup as group:
        # An outer cancellation also reached our tasks: Trio groups their
        # Cancelled exceptions. Re-raise one plain Cancelled, never a group --
        # unless the block raised: then its exception wins, whatever it is.
        # A user's exception raised while the block was being cancelled (in a
        # ``finally:``, say) must not be replaced by a Cancelled that the
        # enclosing cancel scope would then swallow (trio issue #1559).
        cancelled = single_cancelled(group)
        if cancelled is None:
            raise
        if error is None:
            raise cancelled from None
    if error is not None:
        raise error
