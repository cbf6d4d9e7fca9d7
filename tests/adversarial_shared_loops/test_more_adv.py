"""More adversarial tests: retirement paths, FIFO, runners, LoopPools corners."""

from __future__ import annotations

import asyncio
import sys
import threading
import time

import anyio
import pytest

from respool import (
    AsyncLoopPool,
    AsyncPool,
    AsyncSharedPool,
    LoopPools,
    PoolClosed,
    PoolExhausted,
    SharedPool,
)

from .test_shared_adv import Book, Res


@pytest.mark.anyio
async def test_pool_recycle_while_held_closes_after_last() -> None:
    book = Book()
    pool = AsyncSharedPool(
        book.factory, book.releaser, pool_size=2, max_holders=4, pool_recycle=0.05
    )
    a = await pool.acquire()
    b = await pool.acquire()
    assert a is b
    a.held = 2
    await anyio.sleep(0.1)
    c = await pool.acquire()
    assert c is not a, "expired resource got a new holder"
    assert a.closed == 0
    a.held -= 1
    await pool.release(a)
    assert a.closed == 0
    a.held -= 1
    await pool.release(a)
    assert a.closed == 1 and not a.closed_while_held
    await pool.release(c)
    await pool.dispose()


@pytest.mark.anyio
async def test_recycle_force_with_holders() -> None:
    book = Book()
    pool = AsyncSharedPool(book.factory, book.releaser, pool_size=2, max_holders=4)
    a = await pool.acquire()
    await pool.recycle(force=True)
    assert a.closed == 0
    assert pool.resource_stats()[0].broken, pool.resource_stats()
    b = await pool.acquire()
    assert b is not a
    await pool.release(a)
    assert a.closed == 1
    await pool.release(b)
    await pool.dispose()


@pytest.mark.anyio
async def test_discard_on_retires() -> None:
    book = Book()
    pool = AsyncSharedPool(
        book.factory, book.releaser, pool_size=2, max_holders=4, discard_on=ConnectionError
    )
    other = await pool.acquire()
    with pytest.raises(ConnectionError):
        async with pool.lease() as r:
            assert r is other
            raise ConnectionError
    assert other.closed == 0
    fresh = await pool.acquire()
    assert fresh is not other
    await pool.release(other)
    assert other.closed == 1
    await pool.release(fresh)
    await pool.dispose()


@pytest.mark.anyio
async def test_waiters_fifo_and_cancelled_waiter_seat_passes_on() -> None:
    book = Book()
    pool = AsyncSharedPool(book.factory, book.releaser, pool_size=1, max_holders=1)
    a = await pool.acquire()
    order: list[int] = []

    async def waiter(i: int) -> None:
        r = await pool.acquire(timeout=5)
        order.append(i)
        await anyio.sleep(0.001)
        await pool.release(r)

    async with anyio.create_task_group() as tg:
        for i in range(5):
            tg.start_soon(waiter, i)
            await anyio.sleep(0.002)
        async with anyio.create_task_group() as tg2:
            tg2.start_soon(waiter, 99)
            await anyio.sleep(0.005)
            await pool.release(a)  # seat goes to waiter 0
            tg2.cancel_scope.cancel()
    assert order == [0, 1, 2, 3, 4]
    assert pool.stats().leased == 0
    await pool.dispose()


@pytest.mark.anyio
async def test_cancel_waiter_at_handoff() -> None:
    book = Book()
    pool = AsyncSharedPool(book.factory, book.releaser, pool_size=1, max_holders=1)
    a = await pool.acquire()
    got: list[Res] = []

    async def w() -> None:
        r = await pool.acquire(timeout=5)
        got.append(r)
        await pool.release(r)

    async with anyio.create_task_group() as tg:
        async with anyio.create_task_group() as tg1:
            tg1.start_soon(w)
            await anyio.sleep(0.01)
            tg.start_soon(w)
            await anyio.sleep(0.01)
            await pool.release(a)  # handed to the first waiter, which is cancelled now
            tg1.cancel_scope.cancel()
    assert pool.stats().leased == 0
    assert len(got) >= 1
    await pool.dispose()


@pytest.mark.anyio
async def test_max_waiting_shared() -> None:
    book = Book()
    pool = AsyncSharedPool(book.factory, book.releaser, pool_size=1, max_holders=1, max_waiting=1)
    a = await pool.acquire()
    async with anyio.create_task_group() as tg:
        tg.start_soon(lambda: pool.acquire(timeout=0.2))
        await anyio.sleep(0.01)
        with pytest.raises(PoolExhausted):
            await pool.acquire(timeout=1)
        tg.cancel_scope.cancel()
    await pool.release(a)
    assert pool.stats().leased == 0
    await pool.dispose()


@pytest.mark.anyio
async def test_acquire_timeout_zero_with_free_seat() -> None:
    book = Book()
    pool = AsyncSharedPool(book.factory, book.releaser, pool_size=1, max_holders=3)
    a = await pool.acquire()
    b = await pool.acquire(timeout=0)
    assert a is b
    await pool.release(a)
    await pool.release(b)
    await pool.dispose()


def test_sync_dispose_wakes_waiting_threads() -> None:
    book = Book()
    pool = SharedPool(book.sfactory, book.sreleaser, pool_size=1, max_holders=2)
    a = pool.acquire()
    b = pool.acquire()
    errs: list[BaseException] = []

    def w() -> None:
        try:
            pool.acquire(timeout=10)
        except BaseException as e:
            errs.append(e)

    ths = [threading.Thread(target=w) for _ in range(5)]
    for t in ths:
        t.start()
    time.sleep(0.05)
    pool.dispose()
    for t in ths:
        t.join(5)
    assert len(errs) == 5 and all(isinstance(e, PoolClosed) for e in errs)
    pool.release(a)
    assert a.closed == 0
    pool.release(b)
    assert a.closed == 1


@pytest.mark.skipif(sys.version_info < (3, 11), reason="asyncio.Runner is new in Python 3.11")
def test_asyncio_runner_keeps_pool_across_runs_and_closes_at_end() -> None:
    closed: list[int] = []

    async def fac() -> int:
        return 1

    async def rel(r: int) -> None:
        closed.append(r)

    made = 0

    def make(key: object) -> AsyncPool[int]:
        nonlocal made
        made += 1
        return AsyncPool(fac, rel)

    pools = LoopPools(make)

    async def use() -> int:
        p = await pools.get()
        async with p.lease():
            pass
        return id(p)

    with asyncio.Runner() as runner:
        x = runner.run(use())
        y = runner.run(use())
        assert x == y and made == 1
        assert len(pools) == 1
    assert len(pools) == 0
    assert closed == [1]


def test_close_all_from_thread_whose_loop_runs() -> None:
    closed: list[int] = []

    async def fac() -> int:
        return 1

    async def rel(r: int) -> None:
        closed.append(r)

    pools = LoopPools(lambda key: AsyncPool(fac, rel))

    async def main() -> None:
        p = await pools.get()
        async with p.lease():
            pass
        pools.close_all(timeout=1)  # given as a task; must not block or deadlock
        await asyncio.sleep(0.05)
        assert len(pools) == 0
        assert closed == [1]

    asyncio.run(main())


def test_info_lists_key_loop_stats() -> None:
    async def fac() -> int:
        return 1

    pools = LoopPools(lambda key: AsyncPool(fac, None))

    async def main() -> None:
        await pools.get(("a", 1))
        await pools.get(("b", 2))
        info = pools.info()
        assert sorted(i.key for i in info) == [("a", 1), ("b", 2)]
        assert all(i.loop is asyncio.get_running_loop() for i in info)

    asyncio.run(main())


@pytest.mark.anyio
async def test_loop_pool_map_timeout_returns_resources() -> None:
    async def fac() -> dict:
        return {}

    async def fn(r: dict, x: int) -> int:
        if x % 2:
            await anyio.sleep(5)
        return x

    async with AsyncLoopPool(fac, None, loop_count=2, pool_size=3) as loops:
        with pytest.raises(TimeoutError):
            await loops.map(fn, range(6), timeout=0.05)
        stats = loops.stats()
        assert all(s.in_flight == 0 for s in stats), stats
        assert all(s.pool.leased == 0 for s in stats), stats
        assert await loops.map(fn, [0, 2, 4]) == [0, 2, 4]


def test_loop_pool_close_from_other_thread_during_map() -> None:
    from respool import LoopPool

    async def fac() -> dict:
        return {}

    async def fn(r: dict, x: int) -> int:
        await anyio.sleep(10)
        return x

    lp = LoopPool(fac, None, loop_count=2, pool_size=2, shutdown_timeout=0.05)
    lp.start()
    out: list[BaseException] = []

    def caller() -> None:
        try:
            lp.map(fn, range(4))
        except BaseException as e:
            out.append(e)

    th = threading.Thread(target=caller)
    th.start()
    time.sleep(0.05)
    lp.close()
    th.join(5)
    assert not th.is_alive()
    assert len(out) == 1 and isinstance(out[0], PoolClosed), out
    assert not [t for t in threading.enumerate() if t.name.startswith("respool-loop")]


@pytest.mark.anyio
async def test_expired_held_resource_shows_broken() -> None:
    book = Book()
    pool = AsyncSharedPool(
        book.factory, book.releaser, pool_size=1, max_holders=2, pool_recycle=0.05
    )
    a = await pool.acquire()
    await anyio.sleep(0.1)
    stats = pool.resource_stats()
    await pool.release(a)
    await pool.dispose()
    assert stats[0].broken, stats


@pytest.mark.anyio
async def test_expired_held_resource_gets_no_new_holder() -> None:
    book = Book()
    pool = AsyncSharedPool(
        book.factory, book.releaser, pool_size=2, max_holders=2, pool_recycle=0.05
    )
    a = await pool.acquire()
    await anyio.sleep(0.1)
    b = await pool.acquire()
    assert b is not a
    await pool.release(a)
    assert a.closed == 1
    await pool.release(b)
    await pool.dispose()
