"""Adversarial tests of AsyncSharedPool / SharedPool, from the docs' promises only."""

from __future__ import annotations

import asyncio
import random
import threading

import anyio
import pytest

from respool import AsyncSharedPool, PoolClosed, PoolError, PoolTimeout, SharedPool


class Res:
    count = 0

    def __init__(self) -> None:
        Res.count += 1
        self.i = Res.count
        self.closed = 0
        self.held = 0  # holders as tracked by the test
        self.bad = False
        self.max_held = 0
        self.closed_while_held = False

    def __repr__(self) -> str:
        return f"Res{self.i}"


class Book:
    def __init__(self) -> None:
        self.made: list[Res] = []

    async def factory(self) -> Res:
        await anyio.sleep(0)
        r = Res()
        self.made.append(r)
        return r

    async def releaser(self, r: Res) -> None:
        if r.held:
            r.closed_while_held = True
        r.closed += 1

    def sfactory(self) -> Res:
        r = Res()
        self.made.append(r)
        return r

    def sreleaser(self, r: Res) -> None:
        if r.held:
            r.closed_while_held = True
        r.closed += 1


def _take(r: Res) -> None:
    assert not r.closed, f"{r} handed out after close"
    r.held += 1
    r.max_held = max(r.max_held, r.held)


@pytest.mark.anyio
async def test_tiny_deadlines_leave_counts_exact() -> None:
    book = Book()
    pool = AsyncSharedPool(book.factory, book.releaser, pool_size=3, max_holders=2)
    rng = random.Random(1)

    async def worker() -> None:
        for _ in range(30):
            with anyio.move_on_after(rng.choice((0, 0.00001, 0.0001, 0.001))):
                async with pool.lease() as r:
                    _take(r)
                    try:
                        await anyio.sleep(rng.choice((0, 0.0002, 0.001)))
                    finally:
                        r.held -= 1

    async with anyio.create_task_group() as tg:
        for _ in range(40):
            tg.start_soon(worker)
    assert pool.stats().leased == 0
    assert all(s.holders == 0 for s in pool.resource_stats())
    assert all(r.max_held <= 2 for r in book.made)
    assert len(pool.resource_stats()) <= 3
    await pool.dispose()
    assert [r.closed for r in book.made] == [1] * len(book.made)
    assert not any(r.closed_while_held for r in book.made)


@pytest.mark.parametrize("seed", range(3))
def test_asyncio_task_cancel_at_random_points(seed: int) -> None:
    book = Book()

    async def main() -> None:
        pool = AsyncSharedPool(book.factory, book.releaser, pool_size=2, max_holders=3)
        rng = random.Random(seed)

        async def worker() -> None:
            while True:
                async with pool.lease(timeout=rng.choice((0.0005, 1))) as r:
                    _take(r)
                    try:
                        await asyncio.sleep(rng.choice((0, 0.0003)))
                    finally:
                        r.held -= 1

        async def safe() -> None:
            try:
                await worker()
            except PoolTimeout:
                pass

        for _ in range(20):
            tasks = [asyncio.ensure_future(safe()) for _ in range(15)]
            await asyncio.sleep(rng.random() * 0.003)
            for t in tasks:
                for _ in range(rng.choice((1, 2))):
                    t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            assert pool.stats().leased == 0, pool.stats()
            assert all(s.holders == 0 for s in pool.resource_stats())
        await pool.dispose()

    asyncio.run(main())
    assert [r.closed for r in book.made] == [1] * len(book.made)
    assert not any(r.closed_while_held for r in book.made)
    assert all(r.max_held <= 3 for r in book.made)


@pytest.mark.anyio
async def test_release_more_than_acquired_and_foreign() -> None:
    book = Book()
    pool = AsyncSharedPool(book.factory, book.releaser, pool_size=1, max_holders=4)
    a = await pool.acquire()
    b = await pool.acquire()
    assert a is b
    await pool.release(a)
    await pool.release(a)
    with pytest.raises(PoolError):
        await pool.release(a)
    with pytest.raises(PoolError):
        await pool.release(Res())
    with pytest.raises(PoolError):
        await pool.discard(Res())
    with pytest.raises(PoolError):
        await pool.discard(a)  # no holder left
    assert pool.stats().leased == 0
    assert a.closed == 0
    await pool.dispose()
    assert a.closed == 1


@pytest.mark.anyio
async def test_discard_while_others_hold_closes_once_after_last() -> None:
    book = Book()
    pool = AsyncSharedPool(book.factory, book.releaser, pool_size=2, max_holders=4)
    held = [await pool.acquire() for _ in range(4)]
    r = held[0]
    assert all(x is r for x in held)
    for x in held:
        x.held += 1
    r.held -= 1
    await pool.discard(r)
    assert r.closed == 0, "closed while 3 still hold it"
    assert [s.broken for s in pool.resource_stats()] == [True]
    # a new caller gets a fresh resource, not the broken one
    n = await pool.acquire()
    assert n is not r
    for _ in range(3):
        assert r.closed == 0
        r.held -= 1
        await pool.release(r)
    assert r.closed == 1
    assert not r.closed_while_held
    await pool.release(n)
    await pool.dispose()
    assert r.closed == 1 and n.closed == 1


@pytest.mark.anyio
async def test_check_fails_while_many_hold() -> None:
    book = Book()

    async def check(r: Res) -> bool:
        return not r.bad

    pool = AsyncSharedPool(
        book.factory, book.releaser, pool_size=2, max_holders=5, check=check, check_interval=0
    )
    held = [await pool.acquire() for _ in range(3)]
    r = held[0]
    r.held = 3
    r.bad = True
    n = await pool.acquire()
    assert n is not r
    assert r.closed == 0
    for _ in range(3):
        r.held -= 1
        await pool.release(r)
    assert r.closed == 1 and not r.closed_while_held
    await pool.release(n)
    await pool.dispose()


@pytest.mark.anyio
async def test_is_closed_while_held_not_handed_out() -> None:
    book = Book()
    pool = AsyncSharedPool(
        book.factory, book.releaser, pool_size=2, max_holders=5, is_closed=lambda r: r.bad
    )
    a = await pool.acquire()
    a.bad = True
    b = await pool.acquire()
    assert b is not a
    await pool.release(a)
    await pool.release(b)
    assert a.closed == 1
    await pool.dispose()


@pytest.mark.anyio
async def test_max_holders_one_is_exclusive() -> None:
    book = Book()
    pool = AsyncSharedPool(book.factory, book.releaser, pool_size=3, max_holders=1)

    async def worker() -> None:
        for _ in range(20):
            async with pool.lease() as r:
                _take(r)
                await anyio.sleep(0.0001)
                r.held -= 1

    async with anyio.create_task_group() as tg:
        for _ in range(10):
            tg.start_soon(worker)
    assert all(r.max_held == 1 for r in book.made)
    assert len(book.made) <= 3
    await pool.dispose()


@pytest.mark.anyio
async def test_resize_down_all_busy_then_up() -> None:
    book = Book()
    pool = AsyncSharedPool(book.factory, book.releaser, pool_size=4, max_holders=2)
    held = [await pool.acquire() for _ in range(8)]
    assert len({id(x) for x in held}) == 4
    await pool.resize(1)
    assert all(r.closed == 0 for r in book.made), "busy resource closed by shrink"
    await pool.resize(3)
    # growing serves new callers; bound now 3, 4 alive while surplus is held
    for x in held:
        await pool.release(x)
    alive = [r for r in book.made if not r.closed]
    assert len(alive) <= 3, alive
    assert all(r.closed <= 1 for r in book.made)
    # after resizing, new acquires work up to 3*2 holders
    more = [await pool.acquire(timeout=1) for _ in range(6)]
    assert all(x.closed == 0 for x in more)
    for x in more:
        await pool.release(x)
    await pool.dispose()
    assert all(r.closed == 1 for r in book.made)


@pytest.mark.anyio
async def test_dispose_with_holders_and_waiters() -> None:
    book = Book()
    pool = AsyncSharedPool(book.factory, book.releaser, pool_size=1, max_holders=2)
    a = await pool.acquire()
    b = await pool.acquire()
    errors: list[BaseException] = []

    async def waiter() -> None:
        try:
            await pool.acquire(timeout=5)
        except BaseException as e:
            errors.append(e)

    async with anyio.create_task_group() as tg:
        tg.start_soon(waiter)
        tg.start_soon(waiter)
        await anyio.sleep(0.01)
        await pool.dispose()
    assert len(errors) == 2 and all(isinstance(e, PoolClosed) for e in errors)
    assert a.closed == 0
    await pool.release(a)
    assert a.closed == 0, "closed while the second holder has it"
    await pool.release(b)
    assert a.closed == 1
    with pytest.raises(PoolClosed):
        await pool.acquire()


@pytest.mark.anyio
async def test_timeout_message_explains_itself() -> None:
    book = Book()
    pool = AsyncSharedPool(book.factory, book.releaser, pool_size=1, max_holders=1)
    a = await pool.acquire()
    with pytest.raises(PoolTimeout) as ei:
        await pool.acquire(timeout=0.05)
    msg = str(ei.value)
    assert "pool_size=1" in msg and "leased=1" in msg
    await pool.release(a)
    await pool.dispose()


@pytest.mark.anyio
async def test_factory_error_in_timeout_message() -> None:
    async def bad() -> Res:
        raise OSError("refused-xyz")

    pool = AsyncSharedPool(bad, None, pool_size=1, max_holders=1)
    with pytest.raises(PoolTimeout) as ei:
        await pool.acquire(timeout=0.1)
    assert "refused-xyz" in str(ei.value)
    await pool.dispose()


@pytest.mark.anyio
async def test_reconnect_replaces_broken_held_and_counts() -> None:
    book = Book()
    pool = AsyncSharedPool(book.factory, book.releaser, pool_size=3, max_holders=2)
    held = [await pool.acquire() for _ in range(4)]  # two resources, two each
    first = held[0]
    await pool.discard(first)
    live = await pool.reconnect(timeout=1)
    assert live == 2, (live, pool.resource_stats())
    assert first.closed == 0
    await pool.release(first)
    assert first.closed == 1
    for x in held[2:]:
        await pool.release(x)
    await pool.dispose()


@pytest.mark.anyio
async def test_open_twice_and_reopen() -> None:
    book = Book()
    pool = AsyncSharedPool(book.factory, book.releaser, pool_size=2, max_holders=2, min_size=2)
    await pool.open(wait=True, timeout=2)
    with pytest.raises(PoolError):
        await pool.open()
    assert len(book.made) == 2
    await pool.dispose()
    with pytest.raises(PoolClosed):
        await pool.open()
    assert [r.closed for r in book.made] == [1, 1]


@pytest.mark.anyio
async def test_opened_pool_replaces_discarded_in_background() -> None:
    book = Book()
    async with AsyncSharedPool(
        book.factory, book.releaser, pool_size=2, max_holders=2, min_size=2
    ) as pool:
        await pool.prefill(2)
        a = await pool.acquire()
        await pool.discard(a)
        for _ in range(200):
            if len([s for s in pool.resource_stats() if not s.broken]) == 2:
                break
            await anyio.sleep(0.005)
        assert len([s for s in pool.resource_stats() if not s.broken]) == 2
    assert all(r.closed == 1 for r in book.made)


@pytest.mark.anyio
async def test_least_loaded_ties_to_oldest() -> None:
    book = Book()
    pool = AsyncSharedPool(book.factory, book.releaser, pool_size=3, max_holders=2)
    await pool.prefill(3)
    got = [await pool.acquire() for _ in range(3)]
    assert len({id(x) for x in got}) == 3, "load did not spread"
    await pool.release(got[1])
    x = await pool.acquire()
    assert x is got[1]
    for y in got:
        await pool.release(y)
    await pool.dispose()


def test_threads_hammer_shared_pool_with_discard_and_resize() -> None:
    book = Book()
    pool = SharedPool(
        book.sfactory, book.sreleaser, pool_size=4, max_holders=3, acquire_timeout=0.5
    )
    lock = threading.Lock()
    problems: list[str] = []
    stop = threading.Event()

    def worker(seed: int) -> None:
        rng = random.Random(seed)
        for _ in range(300):
            try:
                r = pool.acquire(timeout=rng.choice((0, 0.001, 0.05)))
            except PoolTimeout:
                continue
            with lock:
                if r.closed:
                    problems.append(f"{r} handed out closed")
                r.held += 1
                if r.held > 3:
                    problems.append(f"{r} {r.held} holders")
            with lock:
                r.held -= 1
            if rng.random() < 0.1:
                pool.discard(r)
            else:
                pool.release(r)

    def resizer() -> None:
        rng = random.Random(99)
        while not stop.is_set():
            pool.resize(rng.choice((1, 2, 4)))

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(12)]
    rs = threading.Thread(target=resizer)
    rs.start()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stop.set()
    rs.join()
    assert not problems, problems[:5]
    assert pool.stats().leased == 0
    pool.resize(4)
    pool.dispose()
    assert [r.closed for r in book.made] == [1] * len(book.made)
    assert not any(r.closed_while_held for r in book.made)


def test_sync_shared_release_more_and_dispose() -> None:
    book = Book()
    pool = SharedPool(book.sfactory, book.sreleaser, pool_size=1, max_holders=2)
    with pool.lease() as a, pool.lease() as b:
        assert a is b
        pool.dispose()
        assert a.closed == 0
    assert a.closed == 1
    with pytest.raises(PoolError):
        pool.release(a)


def test_validation() -> None:
    async def f() -> int:
        return 1

    for bad in (0, -1):
        with pytest.raises(ValueError):
            AsyncSharedPool(f, None, max_holders=bad)
    for bad in (1.5, "2", True):
        with pytest.raises(TypeError):
            AsyncSharedPool(f, None, max_holders=bad)  # type: ignore[arg-type]
    with pytest.raises((TypeError, ValueError)):
        AsyncSharedPool(f, None, pool_size=0)
    for name in ("reset", "leak_timeout", "lifo", "burst_limit"):
        with pytest.raises(TypeError):
            AsyncSharedPool(f, None, **{name: None})  # type: ignore[arg-type]
