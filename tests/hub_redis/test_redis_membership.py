"""The membership half of the Redis backend: writes and subscription changes never hold up the caller.

A paused Redis (SIGSTOP) answers nothing for as long as it is stopped; a
join, a leave, a new member and a unicast to a local member must still
return at once, and local delivery go on.
"""

from __future__ import annotations

import uuid

import pytest
import trio
from conftest import RedisServer

coredis = pytest.importorskip("coredis", reason="coredis is not installed (test extra)")

from node_support import FAST, connected, numbers, serving_node  # noqa: E402

from trio_ws.hub.redis import RedisBackend  # noqa: E402

# Far above the 1 s a join waits for a Redis that does not answer (WRITE_WAIT).
COMMAND_TIMEOUT = 6.0


async def test_join_leave_and_local_unicast_do_not_wait_for_a_paused_redis(restartable_redis: RedisServer) -> None:
    prefix = f"m{uuid.uuid4().hex[:12]}"
    backend = RedisBackend(
        restartable_redis.url, prefix=prefix, process_id="A", command_timeout=COMMAND_TIMEOUT, **FAST
    )
    with trio.fail_after(30):
        async with serving_node(backend) as node, connected(node, "a1") as a1:
            await a1.call("join", room="before")
            restartable_redis.pause()
            try:
                with trio.fail_after(COMMAND_TIMEOUT / 2):
                    # A new member (its registration is written in the background) ...
                    async with connected(node, "a2") as a2:
                        # ... joins rooms and leaves them at once ...
                        await a2.call("join", room="p")
                        await a2.call("join", room="before")
                        await a2.call("leave", room="before")
                        # ... and receives local broadcasts and unicasts at once.
                        for n in range(5):
                            await a1.call("broadcast", room="p", n=n)
                        assert (await a1.call("unicast", to="a2", data="hi"))["ok"] is True
                        await a2.wait_for(lambda m: numbers(a2, "a1") == list(range(5)) and a2.received("direct"))
                    started = trio.current_time()
            finally:
                restartable_redis.resume()
            # What was queued meanwhile is written once Redis answers again (or rewritten on reconnection).
            assert trio.current_time() - started < COMMAND_TIMEOUT / 2
            async with connected(node, "a3") as a3:
                await a3.call("join", room="p")
                while True:  # the leave of a2 and the join of a3 reach Redis in order
                    if set((await a1.call("members", room="p"))["members"]) == {"a3"}:
                        break
                    await trio.sleep(0.05)
