"""Promise 2 on AsyncPool: nothing is lost around the nudge (the waiter woken to look)."""

from __future__ import annotations

import random

import anyio
import pytest
import trio
import trio.testing

from respool import AsyncPool, PoolClosed, PoolTimeout

from ._kit import Book, settled

pytestmark = pytest.mark.anyio

BIG = 10.0  # a window nobody reaches: every release while someone waits is a nudge


def _pool(book: Book, **kw) -> AsyncPool:
    kw.setdefault("acquire_timeout", 30)
    return AsyncPool(book.afactory, book.aclose, **kw)


@pytest.mark.parametrize("window", [0, 0.005, BIG])
async def test_nudged_waiter_cancelled_before_it_runs_next_one_served(anyio_backend, window):
    book = Book()
    pool = _pool(book, pool_size=1, fairness_window=window)
    r = await pool.acquire()
    scope_a = anyio.CancelScope()
    log = []

    async def a():
        with scope_a:
            x = await pool.acquire(timeout=20)
            log.append(("A got", x))
            await pool.release(x)
        log.append("A out")

    async def b():
        t0 = anyio.current_time()
        x = await pool.acquire(timeout=20)
        log.append(("B got", anyio.current_time() - t0))
        await pool.release(x)

    async with anyio.create_task_group() as tg:
        tg.start_soon(a)
        await anyio.sleep(0.01)
        tg.start_soon(b)
        await anyio.sleep(0.01)
        assert pool.stats().waiting == 2
        await pool.release(r)  # A is nudged (or handed r, window 0)
        scope_a.cancel()  # ... and cancelled before it runs
        with anyio.fail_after(3):
            while not any(e[0] == "B got" for e in log if isinstance(e, tuple)):
                await anyio.sleep(0.01)
    b_wait = next(e[1] for e in log if isinstance(e, tuple) and e[0] == "B got")
    assert b_wait < 2.0, log
    assert settled(pool, book) == []
    await pool.dispose()
    assert settled(pool, book, disposed=True) == []


@pytest.mark.parametrize("window", [0, 0.005, BIG])
async def test_nudged_waiter_cancelled_resource_idle_when_nobody_else(anyio_backend, window):
    book = Book()
    pool = _pool(book, pool_size=1, fairness_window=window)
    r = await pool.acquire()
    scope = anyio.CancelScope()

    async def a():
        with scope:
            x = await pool.acquire(timeout=20)
            await pool.release(x)

    async with anyio.create_task_group() as tg:
        tg.start_soon(a)
        await anyio.sleep(0.01)
        await pool.release(r)
        scope.cancel()
    assert settled(pool, book) == []
    s = pool.stats()
    assert s.idle == 1, s
    # and it is really there for the taking
    x = await pool.acquire(timeout=0)
    assert x is r
    await pool.release(x)
    await pool.dispose()


@pytest.mark.parametrize("window", [0, 0.005, BIG])
async def test_barged_nudge_then_waiter_cancelled_next_waiter_not_stuck(anyio_backend, window):
    """A is nudged, a newcomer barges in, A waits on, then A is cancelled: B must not hang
    while the newcomer's resource, later released, sits idle."""
    book = Book()
    pool = _pool(book, pool_size=1, fairness_window=window)
    r = await pool.acquire()
    scope_a = anyio.CancelScope()
    b_done = anyio.Event()

    async def a():
        with scope_a:
            x = await pool.acquire(timeout=20)
            await pool.release(x)

    async def b():
        x = await pool.acquire(timeout=20)
        await pool.release(x)
        b_done.set()

    async with anyio.create_task_group() as tg:
        tg.start_soon(a)
        await anyio.sleep(0.01)
        tg.start_soon(b)
        await anyio.sleep(0.01)
        await pool.release(r)
        try:
            r = await pool.acquire(timeout=0)  # barge (allowed while A is young)
            barged = True
        except PoolTimeout:
            barged = False
        await anyio.sleep(0.02)  # A has looked and found nothing
        scope_a.cancel()
        await anyio.sleep(0.02)
        if barged:
            await pool.release(r)  # nobody else will release: B must be served now
        with anyio.fail_after(3):
            await b_done.wait()
    assert settled(pool, book) == []
    await pool.dispose()


@pytest.mark.parametrize("window", [0, 0.005, BIG])
def test_mockclock_nudged_waiter_times_out_at_the_release_instant(window):
    """A's deadline and the release fall on the same virtual instant, in either order."""
    for order in range(6):
        book = Book()
        out = {}

        async def main(order=order, book=book, out=out):
            pool = _pool(book, pool_size=1, fairness_window=window)
            r = await pool.acquire()
            t0 = trio.current_time()

            async def a():
                try:
                    x = await pool.acquire(timeout=1.0)
                    out["a"] = "got"
                    await pool.release(x)
                except PoolTimeout:
                    out["a"] = "timeout"

            async def b():
                x = await pool.acquire(timeout=100)
                out["b_wait"] = trio.current_time() - t0
                await pool.release(x)

            async with trio.open_nursery() as nursery:
                nursery.start_soon(a)
                nursery.start_soon(b)
                await trio.sleep_until(t0 + 1.0)
                for _ in range(order % 3):
                    await trio.lowlevel.checkpoint()
                await pool.release(r)
                if order >= 3:
                    await trio.lowlevel.checkpoint()
                    try:
                        r2 = await pool.acquire(timeout=0)
                        await trio.sleep(0.001)
                        await pool.release(r2)
                    except PoolTimeout:
                        pass
            out["settled"] = settled(pool, book)
            await pool.dispose()

        trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
        assert out["settled"] == [], (order, out)
        assert out["b_wait"] <= 1.1, (order, out)


@pytest.mark.parametrize("window", [0, 0.005, BIG])
async def test_nudged_waiter_times_out_near_release_real_clock(anyio_backend, window):
    for delta in (-0.004, -0.002, -0.001, 0.0, 0.001, 0.002, 0.004):
        book = Book()
        pool = _pool(book, pool_size=1, fairness_window=window)
        r = await pool.acquire()
        b_wait = []

        async def a(pool=pool):
            try:
                x = await pool.acquire(timeout=0.03)
                await pool.release(x)
            except PoolTimeout:
                pass

        async def b(pool=pool, b_wait=b_wait):
            t0 = anyio.current_time()
            x = await pool.acquire(timeout=20)
            b_wait.append(anyio.current_time() - t0)
            await pool.release(x)

        async with anyio.create_task_group() as tg:
            tg.start_soon(a)
            tg.start_soon(b)
            await anyio.sleep(0.03 + delta)
            await pool.release(r)
        assert b_wait and b_wait[0] < 2.0, (delta, b_wait)
        assert settled(pool, book) == [], delta
        await pool.dispose()


@pytest.mark.parametrize("window", [0, 0.005, BIG])
async def test_dispose_while_waiter_nudged(anyio_backend, window):
    book = Book()
    pool = _pool(book, pool_size=2, fairness_window=window)
    held = [await pool.acquire(), await pool.acquire()]
    outcomes = []

    async def waiter():
        try:
            x = await pool.acquire(timeout=20)
        except PoolClosed:
            outcomes.append("closed")
            return
        outcomes.append("got")
        await anyio.sleep(0.01)
        await pool.release(x)

    async with anyio.create_task_group() as tg:
        for _ in range(4):
            tg.start_soon(waiter)
        await anyio.sleep(0.02)
        await pool.release(held[0])  # nudge (or handoff at window 0)
        await pool.dispose()
        await pool.release(held[1])  # leased before: closed on release
    assert len(outcomes) == 4
    assert outcomes.count("got") <= 1, outcomes
    assert settled(pool, book, disposed=True) == []
    assert book.alive == set()


async def test_release_during_dispose_race_many(anyio_backend):
    """Loopers on a small pool; dispose mid-flight; everything closed once, nothing left."""
    book = Book()
    pool = _pool(book, pool_size=2, fairness_window=0.005)
    counts = {"closed": 0}

    async def looper(i):
        while True:
            try:
                async with pool.lease(timeout=5) as r:
                    book.took(r, i)
                    await anyio.sleep(0.001)
                    book.gave(r, i)
            except PoolClosed:
                counts["closed"] += 1
                return

    async with anyio.create_task_group() as tg:
        for i in range(8):
            tg.start_soon(looper, i)
        await anyio.sleep(0.2)
        await pool.dispose()
    assert counts["closed"] == 8
    assert settled(pool, book, disposed=True) == []
    assert book.alive == set()


# -- chaos: contention + the window + every feature that hands out or closes ------------


async def _chaos(pool, book, n, duration, rng, give_up=0.3):
    """n tasks lease with random timeouts and random cancellation; holders tracked."""
    stop = anyio.current_time() + duration
    tally = {"served": 0, "timeout": 0, "cancelled": 0, "acquire_cancelled": 0}

    async def worker(i):
        me = f"w{i}"
        while anyio.current_time() < stop:
            timeout = rng.choice([0, 0.002, 0.01, 0.05, 1.0])
            with anyio.CancelScope() as scope:
                if rng.random() < give_up:
                    scope.deadline = anyio.current_time() + rng.random() * 0.01
                in_body = False
                try:
                    async with pool.lease(timeout=timeout) as r:
                        in_body = True
                        book.took(r, me)
                        try:
                            await anyio.sleep(rng.random() * 0.003)
                        finally:
                            book.gave(r, me)
                    tally["served"] += 1
                except PoolTimeout:
                    tally["timeout"] += 1
            if scope.cancelled_caught:
                tally["cancelled"] += 1
                tally["acquire_cancelled"] += not in_body
            if rng.random() < 0.2:
                await anyio.sleep(0)

    async with anyio.create_task_group() as tg:
        for i in range(n):
            tg.start_soon(worker, i)
    return tally


async def _patient_after(pool, book):
    """After the chaos: waiters in line with long timeouts are served promptly."""
    t0 = anyio.current_time()
    async with anyio.create_task_group() as tg:
        for i in range(3):

            async def one(i=i):
                async with pool.lease(timeout=20) as r:
                    book.took(r, f"p{i}")
                    await anyio.sleep(0.001)
                    book.gave(r, f"p{i}")

            tg.start_soon(one)
    assert anyio.current_time() - t0 < 3.0


@pytest.mark.parametrize("window", [0, 0.005, 0.05])
async def test_chaos_cancel_and_timeouts(anyio_backend, window):
    book = Book()
    pool = _pool(book, pool_size=3, fairness_window=window)
    tally = await _chaos(pool, book, 12, 0.4, random.Random(1))
    assert tally["served"] > 50, tally
    s = pool.stats()
    # the counters agree with what the callers saw
    assert s.timeouts == tally["timeout"], (s, tally)
    assert s.cancelled == tally["acquire_cancelled"], (s, tally)
    in_body = tally["cancelled"] - tally["acquire_cancelled"]  # cancelled while holding
    assert s.acquired == tally["served"] + in_body, (s, tally)
    await _patient_after(pool, book)
    assert settled(pool, book) == [], tally
    await pool.dispose()
    assert settled(pool, book, disposed=True) == []


async def test_long_waiters_in_line_during_chaos_not_stuck(anyio_backend):
    """Patient waiters join mid-chaos; once the chaos stops they must all be served,
    not left waiting while resources sit idle."""
    book = Book()
    pool = _pool(book, pool_size=2, fairness_window=0.02)
    finished = []
    stop_at = {}

    async def patient(i):
        await anyio.sleep(0.05 * i)
        async with pool.lease(timeout=20) as r:
            book.took(r, f"p{i}")
            await anyio.sleep(0.001)
            book.gave(r, f"p{i}")
        finished.append(anyio.current_time())

    async with anyio.create_task_group() as tg:
        for i in range(6):
            tg.start_soon(patient, i)
        await _chaos(pool, book, 10, 0.5, random.Random(2), give_up=0.5)
        stop_at["t"] = anyio.current_time()
    assert len(finished) == 6
    assert max(finished) - stop_at["t"] < 3.0
    assert settled(pool, book) == []
    await pool.dispose()


@pytest.mark.parametrize("window", [0, 0.005])
async def test_chaos_factory_failing_while_barging(anyio_backend, window, quiet_respool):
    book = Book()
    book.fail_every = 3
    pool = _pool(book, pool_size=3, fairness_window=window, max_backoff=0.05, check=None)
    rng = random.Random(3)

    async def discarder():
        # keep slots churning so the failing factory runs while others barge
        stop = anyio.current_time() + 0.4
        while anyio.current_time() < stop:
            try:
                r = await pool.acquire(timeout=0.05)
            except PoolTimeout:
                continue
            book.took(r, "d")
            await anyio.sleep(0.001)
            book.gave(r, "d")
            await pool.discard(r)

    async with anyio.create_task_group() as tg:
        tg.start_soon(discarder)
        tally = await _chaos(pool, book, 8, 0.4, rng)
    book.fail_every = 0
    await _patient_after(pool, book)
    assert tally["served"] > 20, tally
    assert settled(pool, book) == [], tally
    await pool.dispose()
    assert settled(pool, book, disposed=True) == []


@pytest.mark.parametrize("window", [0, 0.005])
async def test_chaos_check_is_closed_reset_failing(anyio_backend, window, quiet_respool):
    book = Book()
    rng = random.Random(4)

    async def check(r):
        await anyio.sleep(0)
        return rng.random() > 0.1

    def is_closed(r):
        return rng.random() < 0.05

    async def reset(r):
        if rng.random() < 0.1:
            raise RuntimeError("reset failed")
        return True

    pool = AsyncPool(
        book.afactory, book.aclose, pool_size=3, fairness_window=window, check=check,
        check_interval=0, is_closed=is_closed, reset=reset, acquire_timeout=30,
    )  # fmt: skip
    tally = await _chaos(pool, book, 10, 0.4, rng)
    rng.seed(99)
    await _patient_after(pool, book)
    assert tally["served"] > 20, tally
    s = pool.stats()
    assert s.broken > 0, s
    assert settled(pool, book) == [], tally
    await pool.dispose()
    assert settled(pool, book, disposed=True) == []


@pytest.mark.parametrize("window", [0, 0.005])
async def test_chaos_burst_min_size_open_resize_leak(anyio_backend, window, quiet_respool):
    book = Book()
    pool = _pool(
        book, pool_size=2, burst_limit=4, min_size=1, fairness_window=window, leak_timeout=0.002
    )
    await pool.open(wait=True, timeout=5)
    limit = {"now": 4}
    peak = {"alive": 0}

    async def resizer():
        for size, burst in [(3, 5), (1, 2), (4, 4), (2, 3)]:
            await anyio.sleep(0.1)
            limit["now"] = max(limit["now"], burst)
            await pool.resize(size, min(1, size), burst_limit=burst)

    async def watcher():
        stop = anyio.current_time() + 0.4
        while anyio.current_time() < stop:
            peak["alive"] = max(peak["alive"], len(book.alive))
            await anyio.sleep(0.002)

    async with anyio.create_task_group() as tg:
        tg.start_soon(resizer)
        tg.start_soon(watcher)
        tally = await _chaos(pool, book, 12, 0.4, random.Random(5))
    await _patient_after(pool, book)
    assert peak["alive"] <= 5, peak
    assert tally["served"] > 20, tally
    assert settled(pool, book) == [], tally
    await pool.dispose()
    assert settled(pool, book, disposed=True) == []
