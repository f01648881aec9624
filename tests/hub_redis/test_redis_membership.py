"""The membership half of the Redis backend: when a join (or leave) returns, and what it guarantees then.

A paused Redis (SIGSTOP) answers nothing for as long as it is stopped. A
join waits for its write while the link is up, however slow Redis is, and
returns early only once the link is declared down (within
``command_timeout``); local delivery never waits.
"""

from __future__ import annotations

import uuid

import pytest
import trio
from conftest import RedisServer

coredis = pytest.importorskip("coredis", reason="coredis is not installed (test extra)")

from hub_node import NodeClient  # noqa: E402
from node_support import FAST, connected, next_event, numbers, serving_node  # noqa: E402

from trio_ws.hub.redis import RedisBackend  # noqa: E402

# Far above a healthy round trip: a join under a paused Redis waits until the link
# is declared down, at most this long.
COMMAND_TIMEOUT = 3.0
# Longer than the 1 s after which a join used to stop waiting for its write
# (and return before it was in Redis), far shorter than COMMAND_TIMEOUT.
SLOW = 1.5
# The heartbeat's probe must not declare the link deaf during SLOW.
SLOW_LINK = {"heartbeat_interval": 2.0, "member_ttl": 6.0}


async def test_join_leave_and_local_unicast_wait_for_a_paused_redis_only_until_the_link_is_down(
    restartable_redis: RedisServer,
) -> None:
    """Local delivery never waits; a membership change waits at most until the link is declared down."""
    prefix = f"m{uuid.uuid4().hex[:12]}"
    backend = RedisBackend(
        restartable_redis.url, prefix=prefix, process_id="A", command_timeout=COMMAND_TIMEOUT, **FAST
    )
    with trio.fail_after(30):
        async with serving_node(backend) as node, connected(node, "a1") as a1, connected(node, "a2") as a2:
            await a1.call("join", room="before")
            await a2.call("join", room="p")
            restartable_redis.pause()
            try:
                with trio.fail_after(COMMAND_TIMEOUT / 2):
                    # Local broadcasts and unicasts arrive at once.
                    for n in range(5):
                        await a1.call("broadcast", room="p", n=n)
                    assert (await a1.call("unicast", to="a2", data="hi"))["ok"] is True
                    await a2.wait_for(lambda m: numbers(a2, "a1") == list(range(5)) and a2.received("direct"))
                # A join waits for its write until the link is declared down (its write, or the
                # heartbeat, unanswered for command_timeout), then returns ...
                started = trio.current_time()
                with trio.fail_after(COMMAND_TIMEOUT + 2):
                    await a2.call("join", room="q")
                assert not backend.connected
                print(f"\njoin under a paused Redis returned after {trio.current_time() - started:.2f} s, "
                      f"link down (command_timeout={COMMAND_TIMEOUT} s)")
                # ... and while it is down, new members, joins and leaves return at once.
                with trio.fail_after(COMMAND_TIMEOUT / 2):
                    async with connected(node, "a3") as a3:
                        await a3.call("join", room="p")
                        await a2.call("join", room="before")
                        await a2.call("leave", room="before")
                        await a1.call("broadcast", room="p", n=5)
                        await a3.wait_for(lambda m: numbers(a3, "a1") == [5])
            finally:
                restartable_redis.resume()
            # What changed meanwhile is written again on reconnection.
            async with connected(node, "a4") as a4:
                await a4.call("join", room="p")
                while True:
                    if set((await a1.call("members", room="p"))["members"]) == {"a2", "a4"}:
                        break
                    await trio.sleep(0.05)


async def test_a_join_waits_for_a_slow_redis_and_is_effective_when_it_returns(restartable_redis: RedisServer) -> None:
    """Redis silent for longer than a round trip but less than command_timeout: the join waits for it.

    When it returns its subscription is in Redis: a publish from another
    process right after reaches the member, and the member is listed there.
    """
    prefix = f"m{uuid.uuid4().hex[:12]}"
    options = {"prefix": prefix, "command_timeout": 2 * COMMAND_TIMEOUT, **SLOW_LINK}
    with trio.fail_after(30):
        async with (
            serving_node(RedisBackend(restartable_redis.url, process_id="A", **options)) as a,
            serving_node(RedisBackend(restartable_redis.url, process_id="B", **options)) as b,
            connected(a, "a1") as a1,
            connected(b, "b1") as b1,
            coredis.Redis(host="127.0.0.1", port=restartable_redis.port, decode_responses=True) as raw,
        ):
            await b1.call("join", room="r")
            returned = trio.Event()

            async def join() -> None:
                await a.hub.join("a1", "r")
                returned.set()

            async with trio.open_nursery() as nursery:
                restartable_redis.pause()
                try:
                    nursery.start_soon(join)
                    await trio.sleep(SLOW)  # Redis answers nothing for SLOW seconds
                    assert not returned.is_set()
                finally:
                    restartable_redis.resume()
            assert a.backend.connected and a.backend.stats.disconnects == 0
            # No polling: the join promised it is in Redis.
            assert (await raw.pubsub_numsub(a.backend.room_channel("r")))[a.backend.room_channel("r")] == 2
            assert set((await b1.call("members", room="r"))["members"]) == {"a1", "b1"}
            await b1.call("broadcast", room="r", n=1)
            await a1.wait_for(lambda m: numbers(a1, "b1") == [1])


async def test_a_join_under_a_silent_redis_returns_when_the_link_is_down_and_lands_after(
    restartable_redis: RedisServer,
) -> None:
    """Redis paused past command_timeout: the join returns once the link is declared down, within it.

    The subscription and the membership are made by the reconnection, before
    the hub's ``up`` event.
    """
    prefix = f"m{uuid.uuid4().hex[:12]}"
    options = {"prefix": prefix, "command_timeout": COMMAND_TIMEOUT, **SLOW_LINK}
    with trio.fail_after(30):
        async with (
            serving_node(RedisBackend(restartable_redis.url, process_id="A", **options)) as a,
            serving_node(RedisBackend(restartable_redis.url, process_id="B", **options)) as b,
            connected(a, "a1") as a1,
            connected(b, "b1") as b1,
            a.hub.backend_events() as events,
            coredis.Redis(host="127.0.0.1", port=restartable_redis.port, decode_responses=True) as raw,
        ):
            restartable_redis.pause()
            try:
                started = trio.current_time()
                await a.hub.join("a1", "s")
                waited = trio.current_time() - started
                assert not a.backend.connected  # it returned because the link is down
                assert waited < COMMAND_TIMEOUT + 1
                await next_event(events, "down")
                assert a.hub.rooms("a1") == frozenset({"s"})
            finally:
                restartable_redis.resume()
            await next_event(events, "up")
            # Up means resubscribed and registered again: no polling.
            assert (await raw.pubsub_numsub(a.backend.room_channel("s")))[a.backend.room_channel("s")] == 1
            assert await raw.smembers(f"{prefix}:members:{{s}}:A") == {"a1"}
            await members_listed(b1, "s", {"a1"})  # B itself may still be reconnecting
            await b1.call("broadcast", room="s", n=1)
            await a1.wait_for(lambda m: numbers(a1, "b1") == [1])


async def members_listed(client: NodeClient, room: str, expected: set[str]) -> None:
    """Poll until ``room``'s members are ``expected`` (the other process may still be reconnecting)."""
    while True:
        if set((await client.call("members", room=room))["members"]) == expected:
            return
        await trio.sleep(0.05)
