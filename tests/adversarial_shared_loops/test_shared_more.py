"""Shared pool: growth serving waiters, a check that raises, threads discarding while others hold."""

from __future__ import annotations

import threading
import time

import anyio
import pytest

from respool import AsyncSharedPool, SharedPool

from .test_shared_adv import Book


@pytest.mark.anyio
async def test_resize_grow_serves_waiters_at_once() -> None:
    book = Book()
    pool = AsyncSharedPool(book.factory, book.releaser, pool_size=1, max_holders=1)
    a = await pool.acquire()
    got: list[object] = []

    async def w() -> None:
        r = await pool.acquire(timeout=2)
        got.append(r)

    async with anyio.create_task_group() as tg:
        for _ in range(3):
            tg.start_soon(w)
        await anyio.sleep(0.02)
        await pool.resize(4)
    assert len(got) == 3 and len({id(x) for x in got} | {id(a)}) == 4
    for r in [a, *got]:
        await pool.release(r)
    await pool.dispose()
    assert all(r.closed == 1 for r in book.made)


@pytest.mark.anyio
async def test_check_raising_while_held(quiet_respool: None) -> None:
    book = Book()

    async def check(r: object) -> bool:
        if getattr(r, "bad", False):
            raise ConnectionError("check blew up")
        return True

    pool = AsyncSharedPool(
        book.factory, book.releaser, pool_size=2, max_holders=4, check=check, check_interval=0
    )
    a = await pool.acquire()
    b = await pool.acquire()
    a.bad = True
    c = await pool.acquire(timeout=1)
    assert c is not a
    await pool.release(a)
    assert a.closed == 0
    await pool.release(b)
    assert a.closed == 1
    await pool.release(c)
    assert pool.stats().leased == 0
    await pool.dispose()


def test_threads_discard_while_others_hold() -> None:
    book = Book()
    pool = SharedPool(book.sfactory, book.sreleaser, pool_size=2, max_holders=8)
    lock = threading.Lock()
    problems: list[str] = []
    barrier = threading.Barrier(8)

    def worker(i: int) -> None:
        for _ in range(50):
            r = pool.acquire(timeout=5)
            with lock:
                if r.closed:
                    problems.append("handed out closed")
                r.held += 1
            barrier.wait() if False else None
            time.sleep(0.0005)
            with lock:
                r.held -= 1
            if i == 0:
                pool.discard(r)
            else:
                pool.release(r)

    ths = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for t in ths:
        t.start()
    for t in ths:
        t.join()
    assert not problems
    assert pool.stats().leased == 0
    pool.dispose()
    assert [r.closed for r in book.made] == [1] * len(book.made)
    assert not any(r.closed_while_held for r in book.made)
