from __future__ import annotations

import gc
import logging

import anyio
import pytest

from respool import AsyncPool, PoolClosed, PoolError, PoolTimeout

from .test_async_lifecycle import Res, Tracker, wait_until


@pytest.mark.anyio
async def test_keepalive_resource_never_handed_out_while_checked(anyio_backend, quiet_respool):
    in_check: set = set()
    problems: list = []
    t = Tracker()

    async def slow_check(r):
        if r.held:
            problems.append(f"{r} checked while held")
        in_check.add(r)
        try:
            await anyio.sleep(0.05)
        finally:
            in_check.discard(r)
        return True

    async def close(r):
        if r in in_check:
            problems.append(f"{r} closed while being checked")
        await t.close(r)

    stop = False
    async with AsyncPool(
        t.factory,
        close,
        pool_size=3,
        min_size=3,
        keepalive=0.02,
        check=slow_check,
        check_interval=100,
        acquire_timeout=10,
    ) as pool:

        async def worker():
            while not stop:
                async with pool.lease() as r:
                    if r in in_check:
                        problems.append(f"{r} handed out while being checked")
                    r.held = True
                    await anyio.sleep(0.003)
                    r.held = False
                await anyio.sleep(0.03)

        async with anyio.create_task_group() as tg:
            for _ in range(3):
                tg.start_soon(worker)
            await anyio.sleep(1.5)
            stop = True
    assert not problems, problems[:5]
    assert not t.errors, t.errors[:5]
    assert t.alive == set()


@pytest.mark.anyio
async def test_dispose_while_keepalive_check_runs(anyio_backend, quiet_respool):
    t = Tracker()
    started = anyio.Event()

    async def slow_check(r):
        started.set()
        await anyio.sleep(0.3)
        return True

    pool = AsyncPool(
        t.factory,
        t.close,
        pool_size=2,
        min_size=2,
        keepalive=0.05,
        check=slow_check,
        check_interval=100,
    )
    await pool.open(wait=True, timeout=5)
    with anyio.fail_after(5):
        await started.wait()
    await pool.dispose()
    await anyio.sleep(0.5)
    s = pool.stats()
    assert s.size == 0 and s.idle == 0, s
    assert t.alive == set()
    assert not t.errors


@pytest.mark.anyio
async def test_recycle_ahead_of_demand(anyio_backend, quiet_respool):
    t = Tracker()
    async with AsyncPool(t.factory, t.close, pool_size=4, min_size=3, pool_recycle=0.2) as pool:
        await wait_until(lambda: pool.stats().size == 3)
        await wait_until(lambda: t.made >= 9, 5)
        s = pool.stats()
        assert s.size <= 4
    assert not t.errors
    assert t.alive == set()


@pytest.mark.anyio
async def test_min_size_counts_leased(anyio_backend):
    t = Tracker()
    async with AsyncPool(t.factory, t.close, pool_size=5, min_size=2) as pool:
        await wait_until(lambda: pool.stats().size == 2)
        a = await pool.acquire()
        b = await pool.acquire()
        await anyio.sleep(0.3)
        s = pool.stats()
        assert s.size == 2, s
        await pool.release(a)
        await pool.release(b)


@pytest.mark.anyio
async def test_maintainer_never_beyond_pool_size(anyio_backend):
    t = Tracker(delay=0.02, bound=lambda: 3)
    async with AsyncPool(t.factory, t.close, pool_size=3, min_size=3) as pool:
        async with anyio.create_task_group() as tg:
            for _ in range(10):

                async def w():
                    async with pool.lease():
                        await anyio.sleep(0.05)

                tg.start_soon(w)
    assert t.max_alive <= 3
    assert not t.errors


@pytest.mark.anyio
async def test_burst_resource_closed_when_nobody_waits(anyio_backend):
    t = Tracker()
    pool = AsyncPool(t.factory, t.close, pool_size=1, burst_limit=2)
    a = await pool.acquire()
    got = []
    async with anyio.create_task_group() as tg:

        async def taker():
            got.append(await pool.acquire(timeout=5))

        tg.start_soon(taker)
    assert pool.stats().burst == 1
    await pool.release(got[0])
    s = pool.stats()
    assert s.size == 1 and s.burst == 0 and s.idle == 0, s
    await pool.release(a)
    await pool.dispose()


@pytest.mark.anyio
async def test_max_waiting_cancelled_waiters_free_the_line(anyio_backend):
    t = Tracker()
    pool = AsyncPool(t.factory, t.close, pool_size=1, max_waiting=2)
    a = await pool.acquire()
    for _ in range(5):
        with anyio.move_on_after(0.02):
            async with anyio.create_task_group() as tg:
                for _ in range(2):
                    tg.start_soon(pool.acquire, 5)
                await anyio.sleep(1)
    assert pool.stats().waiting == 0
    for _ in range(5):
        with pytest.raises(PoolTimeout):
            await pool.acquire(timeout=0.01)
    assert pool.stats().exhausted == 0
    await pool.release(a)
    await pool.dispose()


@pytest.mark.anyio
async def test_open_wait_cancelled_stays_open(anyio_backend):
    t = Tracker(delay=0.5)
    pool = AsyncPool(t.factory, t.close, pool_size=2, min_size=2)
    with anyio.move_on_after(0.05):
        await pool.open(wait=True, timeout=10)
    with pytest.raises(PoolError):
        await pool.open()
    await wait_until(lambda: pool.stats().size == 2, 5)
    await pool.dispose()
    assert t.alive == set()


@pytest.mark.anyio
async def test_gc_of_leased_async_with_maintainer(anyio_backend, recwarn):
    async def factory():
        return Res()

    async with AsyncPool(factory, None, pool_size=3, min_size=2) as pool:
        await wait_until(lambda: pool.stats().size == 2)
        r = await pool.acquire()
        r2 = await pool.acquire()
        del r, r2
        gc.collect()
        await wait_until(lambda: pool.stats().lost == 2, 3)
        await wait_until(lambda: pool.stats().size == 2 and pool.stats().idle == 2, 3)


@pytest.mark.anyio
async def test_leak_report_names_acquirer_async(anyio_backend, caplog):
    caplog.set_level(logging.WARNING, logger="respool")
    t = Tracker()

    async def grab_it_here_async(pool):
        return await pool.acquire()

    async with AsyncPool(t.factory, t.close, pool_size=2, leak_timeout=0.2) as pool:
        r = await grab_it_here_async(pool)
        await anyio.sleep(0.6)
        recs = [x for x in caplog.records if x.name.startswith("respool")]
        assert len(recs) == 1
        assert "grab_it_here_async" in recs[0].getMessage()
        await pool.release(r)


@pytest.mark.anyio
async def test_resize_during_dispose(anyio_backend):
    t = Tracker()

    async def slow_close(r):
        await anyio.sleep(0.1)
        await t.close(r)

    pool = AsyncPool(t.factory, slow_close, pool_size=4)
    await pool.prefill(4)
    async with anyio.create_task_group() as tg:
        tg.start_soon(pool.dispose)
        await anyio.sleep(0.01)
        with pytest.raises(PoolClosed):
            await pool.resize(8, min_size=2)
    assert t.alive == set()


@pytest.mark.anyio
async def test_retain_during_keepalive_check(anyio_backend, quiet_respool):
    t = Tracker()
    started = anyio.Event()

    async def slow_check(r):
        started.set()
        await anyio.sleep(0.2)
        return True

    async with AsyncPool(
        t.factory,
        t.close,
        pool_size=2,
        min_size=2,
        keepalive=0.05,
        check=slow_check,
        check_interval=100,
    ) as pool:
        with anyio.fail_after(5):
            await started.wait()
        await pool.retain(lambda r: False)
        await anyio.sleep(0.4)
    assert not t.errors, t.errors
    assert t.alive == set()
