from __future__ import annotations

import threading
import time

import anyio
import pytest

from respool import AsyncPool, Pool, PoolClosed, PoolExhausted, PoolTimeout

from .test_async_lifecycle import Tracker, wait_until
from .test_threads_lifecycle import Tracker as ThreadTracker


def test_dispose_from_other_thread_ends_open_wait(quiet_respool):
    def bad():
        raise OSError("down")

    pool = Pool(bad, None, pool_size=2, min_size=1, max_backoff=0.1)
    threading.Timer(0.3, pool.dispose).start()
    t0 = time.monotonic()
    with pytest.raises((PoolClosed, PoolTimeout)) as ei:
        pool.open(wait=True, timeout=20)
    elapsed = time.monotonic() - t0
    assert elapsed < 10, elapsed  # woken by dispose, not by the 20 s timeout
    assert isinstance(ei.value, PoolClosed), repr(ei.value)


@pytest.mark.anyio
async def test_dispose_ends_open_wait_async(anyio_backend, quiet_respool):
    async def bad():
        raise OSError("down")

    pool = AsyncPool(bad, None, pool_size=2, min_size=1, max_backoff=0.1)
    async with anyio.create_task_group() as tg:

        async def later():
            await anyio.sleep(0.3)
            await pool.dispose()

        tg.start_soon(later)
        with anyio.fail_after(10):
            with pytest.raises(PoolClosed):
                await pool.open(wait=True, timeout=20)


@pytest.mark.anyio
async def test_open_wait_min_size_zero_returns(anyio_backend):
    t = Tracker(delay=10)
    pool = AsyncPool(t.factory, t.close, pool_size=2)
    with anyio.fail_after(2):
        await pool.open(wait=True, timeout=5)
    assert pool.stats().size == 0 and pool.stats().creating == 0
    await pool.dispose()


@pytest.mark.anyio
async def test_idle_timeout_with_keepalive_shrinks_to_min(anyio_backend):
    t = Tracker()

    async def ok(r):
        return True

    async with AsyncPool(
        t.factory,
        t.close,
        pool_size=6,
        min_size=2,
        idle_timeout=0.3,
        keepalive=0.05,
        check=ok,
        check_interval=100,
    ) as pool:
        rs = [await pool.acquire() for _ in range(6)]
        for r in rs:
            await pool.release(r)
        await wait_until(lambda: pool.stats().size == 2, 5)
        await anyio.sleep(0.5)
        assert pool.stats().size == 2
    assert not t.errors


@pytest.mark.anyio
async def test_burst_with_max_waiting(anyio_backend):
    t = Tracker(delay=0.01)
    pool = AsyncPool(t.factory, t.close, pool_size=1, burst_limit=2, max_waiting=1)
    a = await pool.acquire()
    got = []
    async with anyio.create_task_group() as tg:

        async def taker():
            got.append(await pool.acquire(timeout=5))

        tg.start_soon(taker)  # served by a burst resource
        await wait_until(lambda: len(got) == 1)
        tg.start_soon(taker)  # waits
        await wait_until(lambda: pool.stats().waiting == 1)
        with pytest.raises(PoolExhausted):
            await pool.acquire(timeout=1)
        await pool.release(a)
    s = pool.stats()
    assert s.size == 2 and s.burst == 1 and s.exhausted == 1, s
    for r in got:
        await pool.release(r)
    assert pool.stats().size == 1
    await pool.dispose()
    assert t.alive == set()


def test_threaded_resize_below_min_and_invalid():
    t = ThreadTracker()
    with Pool(t.factory, t.close, pool_size=5, min_size=4) as pool:
        deadline = time.monotonic() + 5
        while pool.stats().size < 4 and time.monotonic() < deadline:
            time.sleep(0.01)
        pool.resize(2)
        assert (pool.pool_size, pool.min_size) == (2, 2)
        assert pool.stats().size == 2
        with pytest.raises(ValueError):
            pool.resize(2, min_size=3)
        with pytest.raises(TypeError):
            pool.resize(2.5)
        assert (pool.pool_size, pool.min_size) == (2, 2)
    with pytest.raises(PoolClosed):
        pool.resize(3)


def test_idle_timeout_with_keepalive_shrinks_to_min_threads():
    t = ThreadTracker()
    with Pool(
        t.factory,
        t.close,
        pool_size=6,
        min_size=2,
        idle_timeout=0.3,
        keepalive=0.1,
        check=lambda r: True,
        check_interval=100,
    ) as pool:
        rs = [pool.acquire() for _ in range(6)]
        for r in rs:
            pool.release(r)
        deadline = time.monotonic() + 5
        while pool.stats().size != 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert pool.stats().size == 2, pool.stats()
