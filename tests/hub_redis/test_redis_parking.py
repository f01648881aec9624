"""Values parked in Redis with a time to live and taken back once (RedisParking), on a real redis-server."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
import trio

coredis = pytest.importorskip("coredis", reason="coredis is not installed (test extra)")

from node_support import FAST  # noqa: E402

from trio_ws.hub import Hub  # noqa: E402
from trio_ws.hub.redis import RedisBackend  # noqa: E402


async def test_a_parked_value_is_taken_once_and_expires(redis_server: Any) -> None:
    backend = RedisBackend(redis_server.url, prefix=f"p{uuid.uuid4().hex[:12]}", process_id="A", **FAST)
    with trio.fail_after(10):
        async with Hub(backend=backend):
            assert await backend.park("s1", '{"x": 1}', ttl=30)
            assert 0 < int(redis_server.cli("PTTL", backend.parked_key("s1")).strip().lstrip(":")) <= 30_000
            results: list[str | None] = []

            async def take() -> None:
                results.append(await backend.take_parked("s1"))

            async with trio.open_nursery() as nursery:
                for _ in range(3):
                    nursery.start_soon(take)
            assert sorted(results, key=str) == [None, None, '{"x": 1}']
            assert await backend.park("s2", "short", ttl=0.05)
            await trio.sleep(0.2)  # Redis's own clock expires it
            assert await backend.take_parked("s2") is None


async def test_parking_without_redis_fails_quietly(restartable_redis: Any) -> None:
    backend = RedisBackend(restartable_redis.url, prefix="p", process_id="A", command_timeout=0.3, **FAST)
    with trio.fail_after(10):
        assert await backend.park("s", "v", 1) is False  # not running: no link
        async with Hub(backend=backend):
            restartable_redis.pause()
            try:
                assert await backend.park("s", "v", 1) is False
                assert await backend.take_parked("s") is None
            finally:
                restartable_redis.resume()
