"""Tests of trio_ws.reconnect: the backoff policy, the retry rules, connect_forever.

The servers are real trio_ws servers on 127.0.0.1; time is trio's MockClock
(autojump), so waits of seconds take none and delays are measured exactly.
The backoff's random source is replaced by one that always draws the upper
bound, which makes every delay equal to its cap.
"""

from __future__ import annotations

import contextlib
import email.utils
import itertools
import logging
import random
import socket
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

import pytest
import trio
import trio.testing
import trustme

import trio_ws
from trio_ws import (
    Backoff,
    ConnectionClosedError,
    ConnectionRejected,
    ConnectionTimeout,
    HandshakeError,
    TLSHandshakeError,
    WebSocketRequest,
    WebSocketServer,
)
from trio_ws.close import CloseReason
from trio_ws.reconnect import is_retryable, retry_after, should_reconnect_after

QUIET = {"ping_interval": None, "connect_timeout": None}


class Highest(random.Random):
    """Always draws the upper bound, so a delay equals its cap."""

    def uniform(self, a: float, b: float) -> float:
        return b


def highest(**kwargs: Any) -> Backoff:
    return Backoff(rng=Highest(), **kwargs)


@asynccontextmanager
async def serving(
    handler: Callable[[WebSocketRequest], Awaitable[None]], *, port: int = 0, ssl_context: ssl.SSLContext | None = None
) -> AsyncIterator[int]:
    async with trio.open_nursery() as nursery:
        server: WebSocketServer = await nursery.start(
            partial(trio_ws.serve_websocket, handler, "127.0.0.1", port, ssl_context, ping_interval=None)
        )
        yield server.port
        nursery.cancel_scope.cancel()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


# -- the policy, without sockets ------------------------------------------------------


def test_backoff_caps_grow_exponentially_up_to_max_delay() -> None:
    backoff = Backoff(initial_delay=0.5, factor=3, max_delay=10)
    assert [backoff.cap(n) for n in range(5)] == [0.5, 1.5, 4.5, 10, 10]
    assert backoff.cap(10_000) == 10  # no overflow after many retries


def test_backoff_full_jitter_draws_between_zero_and_the_cap() -> None:
    backoff = Backoff(initial_delay=1, factor=2, max_delay=8, rng=random.Random(7))
    delays = [backoff.delay(n) for n in range(200)]
    assert all(0 <= d <= backoff.cap(n) for n, d in enumerate(delays))
    assert min(delays[10:]) < 2 < max(delays[10:]), "delays spread over [0, cap], not pinned to it"
    again = Backoff(initial_delay=1, factor=2, max_delay=8, rng=random.Random(7))
    assert [again.delay(n) for n in range(200)] == delays, "a seeded rng repeats the delays"


def test_backoff_delays_iterates_the_retries() -> None:
    delays = highest(initial_delay=1, factor=2, max_delay=5).delays()
    assert [next(delays) for _ in range(5)] == [1, 2, 4, 5, 5]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"initial_delay": -1}, "initial_delay must be"),
        ({"max_delay": float("nan")}, "max_delay must be"),
        ({"reset_after": "1"}, "reset_after must be"),
        ({"factor": 0.5}, "factor must be >= 1"),
    ],
)
def test_backoff_refuses_bad_values(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Backoff(**kwargs)


def _tls_error(cause: BaseException) -> TLSHandshakeError:
    try:
        try:
            raise trio.BrokenResourceError from cause
        except trio.BrokenResourceError as broken:
            raise TLSHandshakeError("TLS failed") from broken
    except TLSHandshakeError as err:
        return err


def _handshake_error(cause: BaseException | None) -> HandshakeError:
    error = HandshakeError("failed")
    error.__cause__ = cause
    return error


@pytest.mark.parametrize(
    ("error", "retried"),
    [
        (ConnectionRefusedError(111, "Connection refused"), True),
        (OSError("unreachable"), True),
        (ConnectionTimeout("slow"), True),
        (ConnectionRejected(503, [], b""), True),
        (ConnectionRejected(500, [], b""), True),
        (ConnectionRejected(429, [], b""), True),
        (ConnectionRejected(404, [], b""), False),
        (ConnectionRejected(401, [], b""), False),
        (ConnectionRejected(403, [], b""), False),
        (_tls_error(ssl.SSLCertVerificationError("certificate verify failed")), False),
        (_tls_error(ssl.SSLError("unexpected eof")), True),
        (_handshake_error(ConnectionResetError()), True),
        (_handshake_error(None), False),
        (ValueError("bad"), False),
    ],
)
def test_is_retryable(error: BaseException, retried: bool) -> None:
    assert is_retryable(error) is retried


def test_retry_after_reads_seconds_and_http_dates() -> None:
    assert retry_after(ConnectionRejected(429, [(b"Retry-After", b"7")], b"")) == 7
    assert retry_after(ConnectionRejected(429, [(b"retry-after", b"999999")], b"")) == 3600
    later = email.utils.formatdate(time.time() + 120, usegmt=True)
    seconds = retry_after(ConnectionRejected(503, [(b"Retry-After", later.encode())], b""))
    assert seconds is not None and 100 < seconds <= 120
    assert retry_after(ConnectionRejected(429, [(b"Retry-After", b"soon")], b"")) is None
    assert retry_after(ConnectionRejected(429, [], b"")) is None
    assert retry_after(OSError()) is None


@pytest.mark.parametrize("code", [1001, 1006, 1011, 1012, 1013])
def test_should_reconnect_after_transient_closes(code: int) -> None:
    assert should_reconnect_after(CloseReason(code, None)) is True


@pytest.mark.parametrize("code", [1000, 1005])
def test_should_not_reconnect_after_a_normal_close(code: int) -> None:
    assert should_reconnect_after(CloseReason(code, None)) is False


@pytest.mark.parametrize("code", [1008, 1002, 1003, 1007, 1009, 4000])
def test_other_closes_raise(code: int) -> None:
    with pytest.raises(ConnectionClosedError) as caught:
        should_reconnect_after(CloseReason(code, "no"))
    assert caught.value.reason.code == code


# -- connect_forever against real servers ---------------------------------------------


async def test_reconnects_after_a_service_restart_close_then_stops_at_a_normal_close(
    autojump_clock: trio.testing.MockClock,
) -> None:
    served = 0

    async def handler(request: WebSocketRequest) -> None:
        nonlocal served
        served += 1
        ws = await request.accept()
        await ws.send_message(f"hello {served}")
        await ws.aclose(1012 if served < 3 else 1000)

    received, opened_at = [], []
    async with (
        serving(handler) as port,
        trio_ws.connect_forever(
            f"ws://127.0.0.1:{port}/", backoff=highest(initial_delay=1, factor=2), **QUIET
        ) as connections,
    ):
        async for ws in connections:
            opened_at.append(trio.current_time())
            with contextlib.suppress(ConnectionClosedError):
                async for message in ws:
                    received.append(message)
    assert received == ["hello 1", "hello 2", "hello 3"]
    gaps = [round(b - a, 3) for a, b in itertools.pairwise(opened_at)]
    assert gaps == [1, 2], "full-jitter delays capped at 1 then 2 seconds"


async def test_the_backoff_resets_after_a_connection_that_lived_long_enough(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async def handler(request: WebSocketRequest) -> None:
        ws = await request.accept()
        await ws.get_message()  # the client says when
        await ws.aclose(1011)

    opened_at: list[float] = []
    async with (
        serving(handler) as port,
        trio_ws.connect_forever(
            f"ws://127.0.0.1:{port}/", backoff=highest(initial_delay=1, factor=2, reset_after=30), **QUIET
        ) as connections,
    ):
        async for ws in connections:
            opened_at.append(trio.current_time())
            if len(opened_at) == 3:
                await trio.sleep(30)  # a healthy connection
            if len(opened_at) == 5:
                break
            await ws.send_message("close now")
            with pytest.raises(trio_ws.ConnectionClosed):
                await ws.get_message()
    gaps = [round(b - a, 3) for a, b in itertools.pairwise(opened_at)]
    assert gaps == [1, 2, 30 + 1, 2]


async def test_429_waits_at_least_its_retry_after(autojump_clock: trio.testing.MockClock) -> None:
    refusals = 2

    async def handler(request: WebSocketRequest) -> None:
        nonlocal refusals
        if refusals:
            refusals -= 1
            await request.reject(429, extra_headers=[("Retry-After", "7")])
            return
        ws = await request.accept()
        await ws.aclose()

    async with serving(handler) as port:
        start = trio.current_time()
        async with trio_ws.connect_forever(
            f"ws://127.0.0.1:{port}/", backoff=highest(initial_delay=1), retry_first_attempt=True, **QUIET
        ) as connections:
            async for ws in connections:
                assert round(trio.current_time() - start, 3) == 14
                await ws.aclose()


async def test_a_4xx_is_not_retried(autojump_clock: trio.testing.MockClock) -> None:
    async def handler(request: WebSocketRequest) -> None:
        await request.reject(403)

    async with serving(handler) as port:
        with pytest.raises(ConnectionRejected) as caught:
            async with trio_ws.connect_forever(
                f"ws://127.0.0.1:{port}/", retry_first_attempt=True, **QUIET
            ) as connections:
                async for _ in connections:
                    pytest.fail("connected")  # pragma: no cover
    assert caught.value.status_code == 403


async def test_a_policy_violation_close_ends_the_loop_with_its_error(autojump_clock: trio.testing.MockClock) -> None:
    served = 0

    async def handler(request: WebSocketRequest) -> None:
        nonlocal served
        served += 1
        ws = await request.accept()
        await ws.aclose(1008, "banned")

    async with serving(handler) as port:
        with pytest.raises(ConnectionClosedError) as caught:
            async with trio_ws.connect_forever(f"ws://127.0.0.1:{port}/", **QUIET) as connections:
                async for ws in connections:
                    await ws.wait_closed()
    assert (caught.value.reason.code, caught.value.reason.reason) == (1008, "banned")
    assert served == 1


async def test_the_first_error_of_a_url_that_never_worked_is_raised_at_once(
    autojump_clock: trio.testing.MockClock,
) -> None:
    port = free_port()
    start = trio.current_time()
    with pytest.raises(HandshakeError, match=f"could not connect to 127.0.0.1:{port}: .*Connection refused") as caught:
        async with trio_ws.connect_forever(f"ws://127.0.0.1:{port}/", **QUIET) as connections:
            async for _ in connections:
                pytest.fail("connected")  # pragma: no cover
    assert isinstance(caught.value.__cause__, OSError)
    assert trio.current_time() == start, "no wait before raising"


async def test_retry_first_attempt_waits_for_a_server_that_starts_later(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    port = free_port()

    async def handler(request: WebSocketRequest) -> None:
        ws = await request.accept()
        await ws.send_message("up")
        await ws.aclose()

    caplog.set_level(logging.INFO, logger="trio_ws.client")
    async with (
        trio_ws.connect_forever(
            f"ws://127.0.0.1:{port}/", backoff=highest(initial_delay=1, factor=2), retry_first_attempt=True, **QUIET
        ) as connections,
        trio.open_nursery() as nursery,
    ):

        async def start_server_later() -> None:
            await trio.sleep(2.5)  # after the attempts at 0 s and 1 s, before the one at 3 s
            async with serving(handler, port=port):
                await trio.sleep_forever()

        nursery.start_soon(start_server_later)
        async for ws in connections:
            assert trio.current_time() == pytest.approx(3)
            assert await ws.get_message() == "up"
            nursery.cancel_scope.cancel()
    failures = [r for r in caplog.records if getattr(r, "retry_delay", None) is not None]
    assert [r.levelno for r in failures[:2]] == [logging.WARNING, logging.INFO], "the first failure is a warning"
    assert [r.retry_delay for r in failures] == [1, 2]  # type: ignore[attr-defined]
    assert "retrying in 1.00 s" in failures[0].getMessage()
    assert "Connection refused" in failures[0].getMessage()


async def test_certificate_verification_errors_are_not_retried(autojump_clock: trio.testing.MockClock) -> None:
    ca = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_context)

    async def handler(request: WebSocketRequest) -> None:  # pragma: no cover - never reached
        await request.accept()

    async with serving(handler, ssl_context=server_context) as port:
        untrusting = ssl.create_default_context()  # does not know the test CA
        with pytest.raises(TLSHandshakeError) as caught:
            async with trio_ws.connect_forever(
                f"wss://127.0.0.1:{port}/", untrusting, retry_first_attempt=True, **QUIET
            ) as connections:
                async for _ in connections:
                    pytest.fail("connected")  # pragma: no cover
    assert caught.value.verification_failed
    assert isinstance(caught.value, HandshakeError)


async def test_cancelling_during_the_wait_stops_at_once(autojump_clock: trio.testing.MockClock) -> None:
    port = free_port()
    attempts_seen = 0
    with trio.move_on_after(10) as scope:
        async with trio_ws.connect_forever(
            f"ws://127.0.0.1:{port}/", backoff=highest(initial_delay=100), retry_first_attempt=True, **QUIET
        ) as connections:
            async for _ in connections:
                pytest.fail("connected")  # pragma: no cover
    attempts_seen = connections.attempts
    assert scope.cancelled_caught
    assert trio.current_time() == pytest.approx(10), "stopped at the deadline, not after the 100 s wait"
    assert attempts_seen == 1


async def test_leaving_the_loop_closes_the_connection_normally(autojump_clock: trio.testing.MockClock) -> None:
    closes: list[int | None] = []

    async def handler(request: WebSocketRequest) -> None:
        ws = await request.accept()
        await ws.wait_closed()
        closes.append(ws.closed.code if ws.closed else None)

    async with serving(handler) as port:
        async with trio_ws.connect_forever(f"ws://127.0.0.1:{port}/", **QUIET) as connections:
            async for ws in connections:
                opened = ws
                break
        assert opened.closed is not None and opened.closed.code == 1000
        assert connections.connection is None
        await trio.testing.wait_all_tasks_blocked()
    assert closes == [1000]


async def test_asking_for_the_next_connection_while_open_reconnects_at_once(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async def handler(request: WebSocketRequest) -> None:
        ws = await request.accept()
        await ws.wait_closed()

    seen = []
    async with serving(handler) as port, trio_ws.connect_forever(f"ws://127.0.0.1:{port}/", **QUIET) as connections:
        async for ws in connections:
            seen.append((ws, trio.current_time()))
            if len(seen) == 2:
                break
    (first, t1), (second, t2) = seen
    assert first is not second and first.closed is not None and first.closed.code == 1000
    assert t2 == t1, "no backoff after a close the caller asked for"


async def test_an_exception_in_the_block_comes_out_as_itself(autojump_clock: trio.testing.MockClock) -> None:
    async def handler(request: WebSocketRequest) -> None:
        ws = await request.accept()
        await ws.wait_closed()

    async with serving(handler) as port:
        with pytest.raises(KeyError, match="mine"):
            async with trio_ws.connect_forever(f"ws://127.0.0.1:{port}/", **QUIET) as connections:
                async for _ in connections:
                    raise KeyError("mine")
