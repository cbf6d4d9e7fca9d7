from __future__ import annotations

import asyncio

import anyio
import pytest
import trio
import trio.testing

from respool import AsyncPool

from .test_async_lifecycle import Tracker


def test_asyncio_open_then_loop_ends_without_dispose(quiet_respool):
    t = Tracker(delay=0.01)
    pool = AsyncPool(t.factory, t.close, pool_size=3, min_size=2)

    async def main():
        await pool.open(wait=True, timeout=5)

    asyncio.run(main())
    # The loop ended with the pool open; dispose from a fresh loop.
    asyncio.run(pool.dispose())
    assert pool.closed
    s = pool.stats()
    assert s.idle == 0 and s.creating == 0, s
    assert t.alive == set(), t.alive


def test_trio_open_then_run_ends_without_dispose(quiet_respool):
    t = Tracker(delay=0.01)
    pool = AsyncPool(t.factory, t.close, pool_size=3, min_size=2)

    async def main():
        await pool.open(wait=True, timeout=5)

    trio.run(main)
    trio.run(pool.dispose)
    assert pool.closed
    s = pool.stats()
    assert s.idle == 0 and s.creating == 0, s
    assert t.alive == set(), t.alive


def test_asyncio_open_mid_creation_loop_ends(quiet_respool):
    t = Tracker(delay=0.3)
    pool = AsyncPool(t.factory, t.close, pool_size=3, min_size=3)

    async def main():
        await pool.open()
        await asyncio.sleep(0.05)

    asyncio.run(main())
    asyncio.run(pool.dispose())
    s = pool.stats()
    assert s.creating == 0 and s.idle == 0 and s.size == 0, s
    assert t.alive == set()


def test_trio_mockclock_idle_timeout_driven_by_virtual_time():
    t = Tracker()
    result = {}

    async def main():
        async with AsyncPool(t.factory, t.close, pool_size=6, min_size=1, idle_timeout=300) as pool:
            rs = [await pool.acquire() for _ in range(4)]
            for r in rs:
                await pool.release(r)
            result["before"] = pool.stats().size
            await trio.sleep(301 * 3)
            result["after"] = pool.stats().size

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
    # 4 the callers made, and perhaps 1 more: the maintainer's, for min_size, if its
    # factory call started before the callers' (both are allowed: pool_size is 6)
    assert result["before"] in (4, 5) and result["after"] == 1, result
    assert t.alive == set()


def test_trio_mockclock_keepalive_and_leak(caplog):
    import logging

    caplog.set_level(logging.WARNING, logger="respool")
    t = Tracker()
    checks = []

    async def check(r):
        checks.append(r)
        return True

    async def main():
        async with AsyncPool(
            t.factory,
            t.close,
            pool_size=3,
            min_size=2,
            keepalive=60,
            check=check,
            leak_timeout=1000,
        ) as pool:
            r = await pool.acquire()
            await trio.sleep(1001)
            await pool.release(r)

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
    assert len(checks) >= 10
    recs = [x for x in caplog.records if x.name.startswith("respool")]
    assert len(recs) == 2, [x.getMessage()[:80] for x in recs]


def test_trio_mockclock_failing_factory_backoff_no_spin(quiet_respool):
    calls = 0

    async def bad():
        nonlocal calls
        calls += 1
        raise OSError("down")

    async def main():
        async with AsyncPool(bad, None, pool_size=2, min_size=2, max_backoff=2):
            await trio.sleep(100)

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
    # >= 1 call per 2 s pause (shortened up to 50%): roughly 50-100, never thousands
    assert 20 <= calls <= 250, calls


def test_uvloop_opened_pool():
    uvloop = pytest.importorskip("uvloop")
    t = Tracker(delay=0.01)

    async def main():
        async with AsyncPool(
            t.factory, t.close, pool_size=6, min_size=2, idle_timeout=0.2, burst_limit=8
        ) as pool:
            while pool.stats().size < 2:
                await asyncio.sleep(0.01)
            async with anyio.create_task_group() as tg:
                for _ in range(20):

                    async def w():
                        async with pool.lease():
                            await asyncio.sleep(0.02)

                    tg.start_soon(w)
            for _ in range(300):
                if pool.stats().size == 2:
                    break
                await asyncio.sleep(0.01)
            return pool.stats()

    s = uvloop.run(main()) if hasattr(uvloop, "run") else asyncio.run(main())
    assert s.size == 2, s
    assert t.alive == set()
    assert t.max_alive <= 8
