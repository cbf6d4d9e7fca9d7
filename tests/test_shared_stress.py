"""The shared pool under a random storm with cancellation (asyncio, trio) and with threads.

Workers acquire (with tiny timeouts), hold, release or discard, and resize the
pool, while an observer checks the invariants all along: no resource has more
than ``max_holders`` holders, no more than the bound in force are alive, and
no resource is handed out after it was closed.  Async workers are cancelled
at random moments.  Afterwards the holder counts are exact (zcached's drift),
and after ``dispose`` every resource made was closed exactly once.
"""

from __future__ import annotations

import random
import threading
import time

import anyio
import pytest

from respool import AsyncSharedPool, PoolTimeout, SharedPool

from ._async.resources import AsyncResources
from ._sync.resources import Resources
from .concurrency import wait_until

MAX_HOLDERS = 3
POOL_SIZE = 3


@pytest.mark.anyio
@pytest.mark.parametrize("seed", [7, 8])
async def test_async_storm_with_cancellation_keeps_the_counts_exact(seed: int) -> None:
    res = AsyncResources(delay=0.001)
    pool = AsyncSharedPool(res.factory, res.releaser, pool_size=POOL_SIZE, max_holders=MAX_HOLDERS)
    holding: dict[int, int] = {}
    problems: list[str] = []
    done = False

    async def observer() -> None:
        while not done:
            for stats in pool.resource_stats():
                if stats.holders > MAX_HOLDERS:
                    problems.append(f"{stats.holders} holders")
            if res.alive > POOL_SIZE:
                problems.append(f"{res.alive} alive")
            await anyio.sleep(0.0005)

    async def round_(rng: random.Random) -> None:
        resource = await pool.acquire(timeout=rng.choice((0, 0.001, 1)))
        if resource.closed:
            problems.append(f"{resource} handed out after it was closed")
        holding[id(resource)] = holding.get(id(resource), 0) + 1
        try:
            await anyio.sleep(rng.choice((0, 0.0005, 0.002)))
        finally:
            holding[id(resource)] -= 1
            if rng.random() < 0.1:
                await pool.discard(resource)
            else:
                await pool.release(resource)

    async def worker(rng: random.Random) -> None:
        for _ in range(30):
            with anyio.move_on_after(rng.choice((0.0002, 0.001, 0.01, 1))):
                try:
                    await round_(rng)
                except PoolTimeout:
                    pass
            if rng.random() < 0.03:
                await pool.resize(rng.choice((1, 2, 3)))

    rng = random.Random(seed)
    async with anyio.create_task_group() as tg:
        tg.start_soon(observer)
        async with anyio.create_task_group() as workers:
            for _ in range(10):
                workers.start_soon(worker, random.Random(rng.random()))
        done = True
    with anyio.fail_after(10):
        while pool.stats().creating or pool.stats().size != sum(1 for _ in pool.resource_stats()):
            await anyio.sleep(0.001)
    assert problems == []
    assert all(n == 0 for n in holding.values())
    assert [s.holders for s in pool.resource_stats()] == [0] * len(pool.resource_stats())
    assert pool.stats().leased == 0 and pool.stats().waiting == 0, pool.stats()
    await pool.dispose()
    assert len(res.closed) == len(res.created) and pool.stats().size == 0
    assert len({id(r) for r in res.closed}) == len(res.closed), "closed twice"


def test_threads_storm_keeps_the_counts_exact() -> None:
    res = Resources(delay=0.001)
    pool = SharedPool(res.factory, res.releaser, pool_size=POOL_SIZE, max_holders=MAX_HOLDERS)
    lock = threading.Lock()
    holding: dict[int, int] = {}
    problems: list[str] = []
    done = threading.Event()

    def observer() -> None:
        while not done.is_set():
            for stats in pool.resource_stats():
                if stats.holders > MAX_HOLDERS:
                    problems.append(f"{stats.holders} holders")
            time.sleep(0.0005)

    def worker(seed: int) -> None:
        rng = random.Random(seed)
        for _ in range(60):
            try:
                resource = pool.acquire(timeout=rng.choice((0, 0.001, 1)))
            except PoolTimeout:
                continue
            with lock:
                if resource.closed:
                    problems.append(f"{resource} handed out after it was closed")
                holding[id(resource)] = holding.get(id(resource), 0) + 1
                if holding[id(resource)] > MAX_HOLDERS:
                    problems.append("more holders than max_holders")
            time.sleep(rng.choice((0, 0.0005)))
            with lock:
                holding[id(resource)] -= 1
            if rng.random() < 0.1:
                pool.discard(resource)
            else:
                pool.release(resource)
            if rng.random() < 0.03:
                pool.resize(rng.choice((1, 2, 3)))

    watcher = threading.Thread(target=observer)
    watcher.start()
    threads = [threading.Thread(target=worker, args=(n,)) for n in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    done.set()
    watcher.join(10)
    wait_until(lambda: pool.stats().creating == 0)
    assert problems == []
    assert all(n == 0 for n in holding.values())
    assert pool.stats().leased == 0, pool.stats()
    assert res.peak <= POOL_SIZE
    pool.dispose()
    assert len(res.closed) == len(res.created) and pool.stats().size == 0
    assert len({id(r) for r in res.closed}) == len(res.closed), "closed twice"
