"""Tests for trio_ws.scopes: background_tasks never loses or wraps the block's exception."""

from __future__ import annotations

import sys

import pytest
import trio
import trio.testing

from trio_ws.scopes import background_tasks, is_cancellation, leaves, single_cancelled

if sys.version_info < (3, 11):
    from exceptiongroup import BaseExceptionGroup

TIMEOUT = 10


class UserError(Exception):
    pass


async def test_an_exception_raised_in_finally_while_cancelled_comes_out() -> None:
    # trio issue #1559: the block is being cancelled by an enclosing scope and
    # raises in its `finally:`; the enclosing scope must not swallow it.
    with trio.fail_after(TIMEOUT), pytest.raises(UserError) as caught, trio.move_on_after(0.01):
        async with background_tasks() as nursery:
            nursery.start_soon(trio.sleep_forever)
            try:
                await trio.sleep_forever()
            finally:
                raise UserError("raised while cancelled")
    assert isinstance(caught.value.__context__, trio.Cancelled)


async def test_the_block_exception_comes_out_unwrapped_when_an_outer_scope_is_cancelled() -> None:
    with trio.fail_after(TIMEOUT), pytest.raises(UserError), trio.CancelScope() as outer:
        async with background_tasks() as nursery:
            nursery.start_soon(trio.sleep_forever)
            outer.cancel()
            raise UserError("plain")


async def test_an_outer_cancellation_comes_out_as_one_cancelled() -> None:
    with trio.fail_after(TIMEOUT), trio.CancelScope() as outer:
        async with background_tasks() as nursery:
            nursery.start_soon(trio.sleep_forever)
            nursery.start_soon(trio.sleep_forever)
            outer.cancel()
            await trio.sleep_forever()
    assert outer.cancelled_caught


async def test_a_block_that_ends_normally_cancels_the_tasks() -> None:
    ended = trio.Event()

    async def task() -> None:
        try:
            await trio.sleep_forever()
        finally:
            ended.set()

    with trio.fail_after(TIMEOUT):
        async with background_tasks() as nursery:
            nursery.start_soon(task)
            await trio.testing.wait_all_tasks_blocked()
    assert ended.is_set()


def test_cancellation_helpers() -> None:
    assert not is_cancellation(UserError())
    assert single_cancelled(UserError()) is None


def test_leaves_flattens_nested_groups_in_order() -> None:
    first, second, third = UserError("1"), KeyboardInterrupt(), OSError("3")
    group = BaseExceptionGroup("outer", [BaseExceptionGroup("inner", [first, second]), third])
    assert leaves(group) == [first, second, third]
    assert leaves(first) == [first]


async def test_cancellation_helpers_look_through_nested_groups() -> None:
    cancelled: list[trio.Cancelled] = []
    for _ in range(2):
        with trio.CancelScope() as scope:
            scope.cancel()
            try:
                await trio.lowlevel.checkpoint()
            except trio.Cancelled as exc:
                cancelled.append(exc)
                raise
    only_cancelled = BaseExceptionGroup("outer", [BaseExceptionGroup("inner", [cancelled[0]]), cancelled[1]])
    assert is_cancellation(only_cancelled)
    assert single_cancelled(only_cancelled) is cancelled[0]
    mixed = BaseExceptionGroup("outer", [cancelled[0], UserError()])
    assert not is_cancellation(mixed)
    assert single_cancelled(mixed) is None


async def test_a_failing_background_task_is_not_hidden() -> None:
    # Our own tasks never raise; if one did (a bug), its error must show, grouped as Trio reports it.
    async def broken() -> None:
        raise UserError("a bug in a background task")

    with trio.fail_after(TIMEOUT), pytest.raises(BaseExceptionGroup) as caught:
        async with background_tasks() as nursery:
            nursery.start_soon(broken)
            await trio.sleep_forever()
    assert caught.group_contains(UserError)
