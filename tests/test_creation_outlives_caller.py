"""A creation outlives the caller who gave up (issue 9, item 2), without a server.

The factory takes 0.2 s, every caller waits 0.1 s: the first callers time
out, but the creations they started finish in the background and serve the
callers who come later.  (Before the fix, ``AsyncPool`` cancelled each
caller's factory call at its deadline: 0 served, ``created == 0``.)  The same
with PostgreSQL is in ``tests/integration/test_healing.py``; this one runs on
asyncio and trio, and for ``Pool`` in threads.
"""

from __future__ import annotations

import threading
import time

import anyio
import pytest

import respool

FACTORY_TAKES = 0.2  # seconds
CALLER_WAITS = 0.1  # seconds: less than one creation takes
TRAFFIC_FOR = 1.5  # seconds
POOL_SIZE = 4
CALLERS = 10
MAX_TRIES = 10_000  # per caller: the loops are bounded in count as well as time
WAIT = 10.0  # seconds: the most any single step waits


class Resource:
    closed = False


def check_outcome(served: int, timeouts: int, stats: respool.PoolStats) -> None:
    summary = f"served={served} timeouts={timeouts} {stats!r} created={stats.created}"
    assert timeouts >= 1, summary  # nothing can exist before FACTORY_TAKES: the first give up
    assert 1 <= stats.created <= POOL_SIZE, summary  # ...yet their creations finished
    assert served > 0, summary  # ...and served the callers who came later
    assert stats.closed == stats.created, summary  # and dispose() closed them all


@pytest.mark.anyio
async def test_async_pool_fills_although_creating_outlasts_every_caller() -> None:
    async def create() -> Resource:
        await anyio.sleep(FACTORY_TAKES)
        return Resource()

    async def close(resource: Resource) -> None:
        resource.closed = True

    served = timeouts = 0

    async def caller(pool: respool.AsyncPool[Resource]) -> None:
        nonlocal served, timeouts
        end = time.monotonic() + TRAFFIC_FOR
        for _ in range(MAX_TRIES):
            if time.monotonic() >= end:
                return
            try:
                async with pool.lease(timeout=CALLER_WAITS) as resource:
                    assert not resource.closed
                    await anyio.sleep(0.001)
            except respool.PoolTimeout:
                timeouts += 1
            else:
                served += 1

    async with respool.AsyncPool(create, close, pool_size=POOL_SIZE) as pool:
        with anyio.fail_after(TRAFFIC_FOR + WAIT):
            async with anyio.create_task_group() as tg:
                for _ in range(CALLERS):
                    tg.start_soon(caller, pool)
    check_outcome(served, timeouts, pool.stats())


@pytest.mark.anyio
async def test_async_creation_a_caller_gave_up_on_goes_to_the_next_waiter() -> None:
    """pool_size=1: the first caller times out; one who waits longer gets what its
    creation made, and no second creation starts."""
    started = 0

    async def create() -> Resource:
        nonlocal started
        started += 1
        await anyio.sleep(FACTORY_TAKES)
        return Resource()

    async with respool.AsyncPool(create, None, pool_size=1) as pool:
        with pytest.raises(respool.PoolTimeout):
            await pool.acquire(timeout=CALLER_WAITS)
        assert pool.stats().creating == 1  # still under way, in the background
        resource = await pool.acquire(timeout=WAIT)
        await pool.release(resource)
        assert (started, pool.stats().created) == (1, 1)


def test_pool_fills_although_creating_outlasts_every_caller() -> None:
    def create() -> Resource:
        time.sleep(FACTORY_TAKES)
        return Resource()

    def close(resource: Resource) -> None:
        resource.closed = True

    lock = threading.Lock()
    counts = {"served": 0, "timeouts": 0}

    with respool.Pool(create, close, pool_size=POOL_SIZE) as pool:

        def caller() -> None:
            end = time.monotonic() + TRAFFIC_FOR
            for _ in range(MAX_TRIES):
                if time.monotonic() >= end:
                    return
                try:
                    resource = pool.acquire(timeout=CALLER_WAITS)
                except respool.PoolTimeout:
                    outcome = "timeouts"
                else:
                    assert not resource.closed
                    time.sleep(0.001)
                    pool.release(resource)
                    outcome = "served"
                with lock:
                    counts[outcome] += 1

        threads = [threading.Thread(target=caller, daemon=True) for _ in range(CALLERS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(TRAFFIC_FOR + WAIT)
        assert not any(thread.is_alive() for thread in threads)
    check_outcome(counts["served"], counts["timeouts"], pool.stats())
