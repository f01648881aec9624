"""Nurseries for the library's own background tasks around a caller's block.

Trio wraps whatever escapes a nursery in an ExceptionGroup. Our background
tasks never raise (they catch and report what they meet), so the only thing
that could be wrapped is the caller's own exception from the block; this
helper catches it inside the nursery and re-raises it, unchanged, outside.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import trio

__all__ = ["background_tasks"]


@asynccontextmanager
async def background_tasks() -> AsyncIterator[trio.Nursery]:
    """Yield a nursery whose tasks are cancelled when the block ends.

    An exception raised by the block comes out as itself, never wrapped.
    """
    error: BaseException | None = None
    async with trio.open_nursery() as nursery:
        try:
            yield nursery
        except GeneratorExit:
            raise
        except BaseException as exc:
            error = exc
        finally:
            nursery.cancel_scope.cancel()
    if error is not None:
        raise error
