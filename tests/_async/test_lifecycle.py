"""Sizing and lifecycle (issue 11): min_size and the maintainer, idle_timeout, keepalive,
expiry ahead of demand, burst_limit, resize, max_waiting, retain, timely leak reports.

Both faces: tests/_sync is generated from this file.
"""

from __future__ import annotations

import logging
import math

import pytest

from respool import AsyncPool, PoolClosed, PoolError, PoolExhausted, PoolTimeout

from ..concurrency import AsyncNursery, async_sleep, async_wait_until
from .resources import AsyncResources, Resource

pytestmark = pytest.mark.anyio


class Checker:
    """A check whose verdict the test sets: resources in ``dead`` fail it."""

    def __init__(self) -> None:
        self.dead: set[int] = set()
        self.checked: list[int] = []

    async def check(self, resource: Resource) -> bool:
        self.checked.append(resource.number)
        return resource.number not in self.dead


def bounded(res: AsyncResources, pool: AsyncPool[Resource], bound: int) -> None:
    """The invariant of every sizing test: never more alive than the bound in force."""
    stats = pool.stats()
    assert res.alive <= bound, (res.alive, stats)
    assert stats.size + stats.creating <= bound, stats


# -- bad input -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "error", "words"),
    [
        ({"min_size": 11}, ValueError, "min_size must be <= pool_size"),
        ({"min_size": -1}, ValueError, "min_size"),
        ({"min_size": 1.5}, TypeError, "min_size"),
        ({"burst_limit": 5}, ValueError, "burst_limit must be >= pool_size"),
        ({"burst_limit": True}, TypeError, "burst_limit"),
        ({"idle_timeout": 0}, ValueError, "idle_timeout must be > 0"),
        ({"idle_timeout": "1"}, TypeError, "idle_timeout"),
        ({"keepalive": 1.0}, ValueError, "keepalive needs a check"),
        ({"max_waiting": -1}, ValueError, "max_waiting"),
    ],
)
async def test_new_arguments_are_checked_at_construction(
    kwargs: dict[str, object], error: type[Exception], words: str
) -> None:
    with pytest.raises(error, match=words):
        AsyncResources().pool(pool_size=10, **kwargs)


async def test_opening_twice_maintaining_twice_and_after_dispose_are_refused() -> None:
    res = AsyncResources()
    pool = res.pool(pool_size=2)
    await pool.open()
    with pytest.raises(PoolError, match="maintainer running already"):
        await pool.open()
    with pytest.raises(PoolError, match="maintainer running already"):
        await pool.maintain()
    await pool.dispose()
    with pytest.raises(PoolClosed):
        await pool.open()
    with pytest.raises(PoolClosed):
        await pool.resize(3)
    with pytest.raises(PoolClosed):
        async with pool:
            pass  # pragma: no cover
    res.assert_settled(pool)


# -- min_size and the maintainer --------------------------------------------------------


async def test_an_opened_pool_keeps_min_size_alive_and_replaces_what_it_loses() -> None:
    res = AsyncResources()
    async with res.pool(pool_size=5, min_size=3) as pool:
        await async_wait_until(lambda: pool.stats().size == 3)
        assert pool.stats().min_size == 3
        held = await pool.acquire()
        await pool.discard(held)  # below min_size: replaced in the background
        await async_wait_until(lambda: pool.stats().size == 3 and pool.stats().creating == 0)
        assert len(res.created) == 4
        bounded(res, pool, 5)
    res.assert_settled(pool)
    assert res.alive == 0


async def test_a_pool_never_opened_stays_lazy() -> None:
    res = AsyncResources()
    pool = res.pool(pool_size=5, min_size=3)
    await async_sleep(0.05)
    assert res.created == []  # nobody asked, nobody opened it
    await pool.dispose()


async def test_open_wait_returns_once_min_size_exist() -> None:
    res = AsyncResources(delay=0.01)
    pool = res.pool(pool_size=4, min_size=3)
    await pool.open(wait=True, timeout=10)
    assert pool.stats().size >= 3
    await pool.dispose()
    res.assert_settled(pool)


async def test_open_wait_times_out_with_the_last_factory_error_and_stays_open(
    quiet_respool: None,
) -> None:
    res = AsyncResources(failures=10**6)
    pool = res.pool(pool_size=2, min_size=1, max_backoff=0.05)
    with pytest.raises(PoolTimeout, match="opening: before min_size") as caught:
        await pool.open(wait=True, timeout=0.2)
    assert isinstance(caught.value.__cause__, ConnectionError)
    assert "backend down" in str(caught.value)
    res.failures = 0  # the backend is back: the maintainer, still running, recovers
    await async_wait_until(lambda: pool.stats().size == 1)
    await pool.dispose()
    res.assert_settled(pool)


async def test_a_failing_factory_is_retried_with_backoff_not_in_a_busy_loop(
    quiet_respool: None,
) -> None:
    res = AsyncResources(failures=10**6)
    calls = 0
    factory = res.factory

    async def counting() -> Resource:
        nonlocal calls
        calls += 1
        return await factory()

    pool = AsyncPool(counting, res.releaser, pool_size=3, min_size=2, max_backoff=0.1)
    async with pool:
        await async_sleep(1.0)
        # Pauses of 25-50 ms doubling to 50-100 ms: at most ~15 calls in 1 s,
        # one at a time, where a busy loop would make thousands.
        assert 3 <= calls <= 25, calls
        assert pool.stats().create_errors == calls
        res.failures = 0
        await async_wait_until(lambda: pool.stats().size == 2)
    res.assert_settled(pool)


async def test_the_hikari_spike_returns_to_min_size_after_idle_timeout() -> None:
    """min_size=2, pool_size=10, a 50 ms factory, 50 callers at once: all served."""
    res = AsyncResources(delay=0.05)
    served = 0

    async def caller(pool: AsyncPool[Resource]) -> None:
        nonlocal served
        async with pool.lease(timeout=30) as resource:
            resource.holders += 1
            bounded(res, pool, 10)
            await async_sleep(0.02)
            resource.holders -= 1
        served += 1

    async with res.pool(pool_size=10, min_size=2, idle_timeout=0.3) as pool:
        await async_wait_until(lambda: pool.stats().size == 2)
        async with AsyncNursery() as nursery:
            for _ in range(50):
                nursery.start_soon(caller, pool)
        assert served == 50
        assert res.peak <= 10
        await async_wait_until(lambda: pool.stats().size == 2, timeout=10)
        await async_sleep(0.4)  # another idle_timeout: it stays at exactly min_size
        assert pool.stats().size == 2
    res.assert_settled(pool)


async def test_cancelling_maintain_leaves_nothing_behind() -> None:
    res = AsyncResources(delay=0.05)
    pool = res.pool(pool_size=4, min_size=4)
    async with AsyncNursery() as nursery:
        nursery.start_soon(pool.maintain)
        await async_wait_until(lambda: pool.stats().size >= 1)
        await pool.dispose()  # the maintainer ends with the pool, mid-creation
    await async_wait_until(lambda: pool.stats().creating == 0)
    res.assert_settled(pool)
    assert res.alive == 0


# -- idle_timeout, keepalive, expiry ahead of demand ---------------------------------------


async def test_idle_timeout_without_a_maintainer_is_enforced_on_release() -> None:
    res = AsyncResources()
    pool = res.pool(pool_size=3, idle_timeout=0.05)
    a, b = await pool.acquire(), await pool.acquire()
    await pool.release(a)
    await async_sleep(0.08)
    await pool.release(b)  # a has been idle past idle_timeout: closed now
    assert res.closed == [a]
    assert pool.stats().size == 1
    await pool.dispose()
    res.assert_settled(pool)


async def test_keepalive_catches_a_resource_killed_behind_the_pools_back() -> None:
    res, checker = AsyncResources(), Checker()
    pool = res.pool(pool_size=3, min_size=2, check=checker.check, keepalive=0.05)
    async with pool:
        await async_wait_until(lambda: pool.stats().size == 2)
        victim = res.created[0]
        checker.dead.add(victim.number)  # the server closed it: only a check can tell
        await async_wait_until(lambda: victim.closed and pool.stats().size == 2)
        assert pool.stats().broken == 1
        async with pool.lease() as resource:
            assert resource is not victim
    res.assert_settled(pool)


async def test_expired_resources_are_replaced_before_a_caller_meets_them() -> None:
    res = AsyncResources()
    async with res.pool(pool_size=3, min_size=2, pool_recycle=0.1) as pool:
        await async_wait_until(lambda: pool.stats().size == 2)
        first = list(res.created)
        await async_wait_until(lambda: all(r.closed for r in first), timeout=10)
        await async_wait_until(lambda: pool.stats().idle == 2)
        async with pool.lease() as resource:
            assert resource not in first
        assert pool.stats().size <= 3
    res.assert_settled(pool)


# -- leaks reported while held -------------------------------------------------------------


async def test_a_leak_is_reported_while_held_and_again_on_release(
    caplog: pytest.LogCaptureFixture,
) -> None:
    res = AsyncResources()
    caplog.set_level(logging.WARNING, logger="respool")
    async with res.pool(pool_size=2, leak_timeout=0.05) as pool:
        held = await pool.acquire()  # acquired here, in this test function
        await async_wait_until(lambda: "has been held for" in caplog.text)
        assert "test_a_leak_is_reported_while_held_and_again_on_release" in caplog.text
        await pool.release(held)
    assert "it was reported as a possible leak while held" in caplog.text
    res.assert_settled(pool)


# -- burst_limit, resize, max_waiting, retain ----------------------------------------------


async def test_burst_grows_past_pool_size_under_demand_and_shrinks_back() -> None:
    res = AsyncResources()
    pool = res.pool(pool_size=2, burst_limit=4)
    held = [await pool.acquire() for _ in range(4)]  # two of them are a burst
    assert pool.stats().burst == 2
    with pytest.raises(PoolTimeout):
        await pool.acquire(timeout=0.01)  # burst_limit reached
    for resource in held:
        await pool.release(resource)  # nobody waits: the surplus is closed
    stats = pool.stats()
    assert (stats.size, stats.idle, stats.burst) == (2, 2, 0)
    assert len(res.closed) == 2
    await pool.dispose()
    res.assert_settled(pool, bound=4)


async def test_ramp_up_and_down_with_a_burst_limit() -> None:
    """Load ramps 1 -> 8 -> 1 callers on pool_size=3, burst_limit=6, opened."""
    res = AsyncResources(delay=0.005)
    peaks: list[int] = []

    async def caller(pool: AsyncPool[Resource]) -> None:
        async with pool.lease(timeout=30) as resource:
            resource.holders += 1
            bounded(res, pool, 6)
            await async_sleep(0.01)
            resource.holders -= 1

    async with res.pool(pool_size=3, burst_limit=6, min_size=1) as pool:
        for load in (1, 2, 4, 8, 8, 4, 2, 1):
            async with AsyncNursery() as nursery:
                for _ in range(load):
                    nursery.start_soon(caller, pool)
            peaks.append(res.peak)
        assert max(peaks) <= 6 and res.peak > 3  # it did burst
        stats = pool.stats()
        assert stats.size <= 3 and stats.burst == 0, stats  # and shrank back
    res.assert_settled(pool, bound=6)


async def test_a_burst_resource_serves_the_oldest_waiter() -> None:
    res = AsyncResources()
    pool = res.pool(pool_size=1, burst_limit=2)
    order: list[int] = []
    first, burst = await pool.acquire(), await pool.acquire()
    assert pool.stats().burst == 1

    async def caller(n: int) -> None:
        async with pool.lease(timeout=10) as resource:
            order.append(n)
            assert resource is burst  # handed on, oldest waiter first, never closed
            await async_sleep(0.01)

    async with AsyncNursery() as nursery:
        for n in range(3):
            nursery.start_soon(caller, n)
            await async_wait_until(lambda n=n: pool.stats().waiting == n + 1)  # type: ignore[misc]
        await pool.release(burst)  # people wait: the burst resource serves them in turn
    assert order == [0, 1, 2]
    assert len(res.created) == 2 and res.closed == [burst]  # back with nobody waiting
    await pool.release(first)
    await pool.dispose()
    res.assert_settled(pool, bound=2)


async def test_resize_grows_for_waiters_and_shrinks_as_the_surplus_comes_back() -> None:
    res = AsyncResources()
    pool = res.pool(pool_size=2)
    held = [await pool.acquire() for _ in range(2)]
    got: list[Resource] = []

    async def waiter() -> None:
        got.append(await pool.acquire(timeout=10))

    async with AsyncNursery() as nursery:
        nursery.start_soon(waiter)
        await async_wait_until(lambda: pool.stats().waiting == 1)
        await pool.resize(3)  # the new slot goes to the waiter at once
    assert len(got) == 1 and pool.pool_size == 3
    held += got
    await pool.release(held.pop())
    await pool.resize(1)  # one idle: closed now; two leased: closed as they come back
    assert pool.stats().idle == 0
    for resource in held:
        await pool.release(resource)
    stats = pool.stats()
    assert (stats.size, stats.pool_size, stats.burst) == (1, 1, 0)
    bounded(res, pool, 1)
    with pytest.raises(ValueError, match="min_size must be <= pool_size"):
        await pool.resize(1, min_size=2)
    await pool.dispose()
    res.assert_settled(pool, bound=3)


async def test_resize_under_load_never_exceeds_the_bound_in_force() -> None:
    res = AsyncResources(delay=0.002)
    pool = res.pool(pool_size=4, min_size=1)
    sizes = [4, 2, 6, 1, 3, 5]
    stop = False
    violations: list[str] = []

    async def worker() -> None:
        while not stop:
            async with pool.lease(timeout=30) as resource:
                resource.holders += 1
                await async_sleep(0.001)
                resource.holders -= 1

    async with pool:
        async with AsyncNursery() as nursery:
            for _ in range(8):
                nursery.start_soon(worker)
            peak_bound = 4
            for size in sizes:
                peak_bound = max(peak_bound, size)
                await pool.resize(size)
                await async_sleep(0.05)
                if res.alive > peak_bound:
                    violations.append(f"{res.alive} alive, bound {peak_bound}")
                peak_bound = size
            stop = True
        await async_wait_until(lambda: res.alive <= sizes[-1])
    assert violations == []
    res.assert_settled(pool, bound=max(sizes))


async def test_max_waiting_refuses_at_once_with_the_stats() -> None:
    res = AsyncResources()
    pool = res.pool(pool_size=1, max_waiting=1)
    held = await pool.acquire()
    async with AsyncNursery() as nursery:
        nursery.start_soon(pool.acquire, 10)
        await async_wait_until(lambda: pool.stats().waiting == 1)
        with pytest.raises(PoolExhausted, match="max_waiting=1") as caught:
            await pool.acquire(timeout=math.inf)  # refused at once: else this would hang
        assert caught.value.stats.waiting == 1
        await pool.release(held)
    assert pool.stats().exhausted == 1
    await pool.release(res.created[0])
    await pool.dispose()
    res.assert_settled(pool)


async def test_retain_closes_the_idle_resources_the_predicate_rejects() -> None:
    res = AsyncResources()
    pool = res.pool(pool_size=4)
    await pool.prefill(3)
    leased = await pool.acquire()
    closed = await pool.retain(lambda r: r.number % 2 == 0 or r is leased)
    assert closed == len([r for r in res.created if r.number % 2 and r is not leased])
    assert all(r.number % 2 for r in res.closed)
    assert not leased.closed
    await pool.release(leased)
    await pool.dispose()
    res.assert_settled(pool)
