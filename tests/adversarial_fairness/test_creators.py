"""Callers creating stand in line whatever the window: a release goes to them first."""

from __future__ import annotations

import anyio
import pytest

from respool import AsyncPool, PoolTimeout

from ._kit import Book, settled

pytestmark = pytest.mark.anyio


class SlowBook(Book):
    def __init__(self, delay: float) -> None:
        super().__init__()
        self.delay = delay
        self.fail_next = 0

    async def afactory(self):
        await anyio.sleep(self.delay)
        if self.fail_next:
            self.fail_next -= 1
            raise OSError("down")
        return self.make()


@pytest.mark.parametrize("window", [0, 0.005, 10.0])
async def test_release_during_creation_goes_to_creator_whatever_window(anyio_backend, window):
    book = SlowBook(0.3)
    pool = AsyncPool(book.afactory, book.aclose, pool_size=2, fairness_window=window)
    book.delay = 0
    r1 = await pool.acquire()
    book.delay = 0.3
    got = {}

    async def creator():
        t0 = anyio.current_time()
        x = await pool.acquire(timeout=5)
        got["c"] = (x, anyio.current_time() - t0)
        await anyio.sleep(0.5)
        await pool.release(x)

    async with anyio.create_task_group() as tg:
        tg.start_soon(creator)
        await anyio.sleep(0.05)
        assert pool.stats().creating == 1
        await pool.release(r1)  # the creator is young, but creating: it is handed r1
        with pytest.raises(PoolTimeout):
            await pool.acquire(timeout=0)  # the releaser loops back: nothing for it
        await anyio.sleep(0.4)  # its factory call finished meanwhile: that resource is idle
        s = pool.stats()
        assert s.idle == 1 and s.creating == 0, s
        x = await pool.acquire(timeout=0)
        await pool.release(x)
    assert got["c"][0] is r1
    assert got["c"][1] < 0.25
    assert settled(pool, book) == []
    await pool.dispose()
    assert settled(pool, book, disposed=True) == []


@pytest.mark.parametrize("window", [0, 0.005, 10.0])
async def test_release_during_backoff_goes_to_creator_slot_to_next(
    anyio_backend, window, quiet_respool
):
    book = SlowBook(0)
    pool = AsyncPool(
        book.afactory, book.aclose, pool_size=2, fairness_window=window, max_backoff=0.5
    )
    r1 = await pool.acquire()
    book.fail_next = 1000
    book.delay = 0.01
    got = {}

    async def caller(name):
        try:
            x = await pool.acquire(timeout=3)
        except PoolTimeout:
            got[name] = "timeout"
            return
        got[name] = x
        await anyio.sleep(0.3)
        await pool.release(x)

    async with anyio.create_task_group() as tg:
        tg.start_soon(caller, "c")  # takes the free slot, fails, backs off in it
        await anyio.sleep(0.1)
        tg.start_soon(caller, "b")  # waits behind c
        await anyio.sleep(0.05)
        book.fail_next = 0
        await pool.release(r1)  # to c (oldest, backing off); its slot to b, who creates
    assert got["c"] is r1, got
    assert got["b"] not in ("timeout", r1), got
    assert settled(pool, book) == []
    await pool.dispose()
