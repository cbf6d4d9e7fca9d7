"""Observability (issue 14): counters by outcome and by close reason, the latency
histograms of ``metrics=True``, and ``stats(reset=True)``, on scripted workloads.

Both faces: tests/_sync is generated from this file.  The exporters, and the
outcomes of one face only, are in tests/test_observability.py.
"""

from __future__ import annotations

import pytest

from respool import AsyncPool, PoolClosed, PoolExhausted, PoolStats, PoolTimeout

from ..concurrency import AsyncNursery, async_sleep, async_wait_until
from .resources import AsyncResources, Resource

pytestmark = pytest.mark.anyio

CLOSED_BY = (
    "closed_recycled", "closed_idle", "closed_check_failed", "closed_reset_failed",
    "closed_discarded", "lost", "closed_disposed", "closed_surplus",
)  # fmt: skip


def closes_add_up(stats: PoolStats) -> None:
    assert sum(getattr(stats, name) for name in CLOSED_BY) == stats.closed, stats
    assert (
        stats.acquired_at_once + stats.acquired_after_waiting + stats.acquired_by_creating
        == stats.acquired
    ), stats


async def test_metrics_must_be_a_bool() -> None:
    res = AsyncResources()
    with pytest.raises(TypeError, match="metrics"):
        res.pool(metrics="yes")


async def test_acquires_by_outcome_and_their_histograms() -> None:
    res = AsyncResources()
    pool = res.pool(pool_size=1, max_waiting=1, metrics=True)
    r = await pool.acquire()  # by creating
    await pool.release(r)
    r = await pool.acquire()  # at once, from the idle set
    with pytest.raises(PoolTimeout):
        await pool.acquire(timeout=0.01)
    got: list[Resource] = []

    async def waits() -> None:
        got.append(await pool.acquire())

    async with AsyncNursery() as nursery:
        nursery.start_soon(waits)
        await async_wait_until(lambda: pool.stats().waiting == 1)
        with pytest.raises(PoolExhausted):  # max_waiting=1 wait already
            await pool.acquire()
        await async_sleep(0.02)  # held a while: the waiter's wait and this hold are longer
        await pool.release(r)
    await pool.release(got[0])
    stats = pool.stats()
    assert (stats.acquired_by_creating, stats.acquired_at_once) == (1, 1)
    assert stats.acquired_after_waiting == 1
    assert (stats.timeouts, stats.exhausted, stats.refused_closed) == (1, 1, 0)
    assert stats.refused == 1
    closes_add_up(stats)
    assert stats.wait is not None and stats.hold is not None and stats.create is not None
    assert stats.wait.count == stats.acquired == 3
    assert stats.wait.buckets[0] >= 1  # the one served at once counts as 0
    assert stats.wait.max >= 0.02  # the waiter waited for the release
    assert stats.hold.count == 3
    assert stats.hold.max >= 0.02
    assert stats.hold.p50 <= stats.hold.p99 <= stats.hold.max
    assert stats.create.count == stats.created == 1
    assert stats.check is not None and stats.check.count == 0
    assert sum(stats.wait.buckets) == stats.wait.count
    await pool.dispose()
    with pytest.raises(PoolClosed):
        await pool.acquire()
    stats = pool.stats()
    assert stats.refused_closed == 1 and stats.refused == 2
    assert stats.closed_disposed == 1
    closes_add_up(stats)


async def test_without_metrics_there_are_no_histograms() -> None:
    res = AsyncResources()
    pool = res.pool()
    await pool.release(await pool.acquire())
    stats = pool.stats()
    assert (stats.wait, stats.hold, stats.create, stats.check) == (None, None, None, None)
    assert stats.acquired_by_creating == 1
    await pool.dispose()


class Verdicts:
    """A check and a reset that fail for the resources the test names."""

    def __init__(self) -> None:
        self.bad_check: set[int] = set()
        self.bad_reset: set[int] = set()

    async def check(self, resource: Resource) -> bool:
        return resource.number not in self.bad_check

    async def reset(self, resource: Resource) -> bool:
        return resource.number not in self.bad_reset


async def test_closes_by_reason() -> None:
    res, verdicts = AsyncResources(), Verdicts()
    pool = res.pool(
        pool_size=2, burst_limit=3, check=verdicts.check, check_interval=0,
        reset=verdicts.reset, metrics=True,
    )  # fmt: skip
    a = await pool.acquire()
    await pool.discard(a)  # discarded
    b = await pool.acquire()
    verdicts.bad_reset.add(b.number)
    await pool.release(b)  # reset failed
    c = await pool.acquire()
    await pool.release(c)
    verdicts.bad_check.add(c.number)
    d = await pool.acquire()  # c fails its check: closed; d is created instead
    assert d is not c
    e, f = await pool.acquire(), await pool.acquire()  # f is a burst
    await pool.release(f)  # above pool_size, nobody waiting: surplus
    await pool.release(e)
    await pool.release(d)
    assert await pool.recycle(force=True) == 2  # recycled
    await pool.release(await pool.acquire())
    stats = pool.stats()
    assert stats.closed_discarded == 1
    assert stats.closed_reset_failed == 1
    assert stats.closed_check_failed == 1
    assert stats.closed_surplus == 1
    assert stats.closed_recycled == 2
    assert stats.checks >= 1
    assert stats.check is not None and stats.check.count == stats.checks
    closes_add_up(stats)
    await pool.dispose()
    stats = pool.stats()
    assert stats.closed_disposed == 1
    closes_add_up(stats)
    res.assert_settled(pool, bound=3)


async def test_idle_resources_closed_past_idle_timeout_count_as_idle() -> None:
    res = AsyncResources()
    pool = res.pool(pool_size=2, idle_timeout=0.01)
    a, b = await pool.acquire(), await pool.acquire()
    await pool.release(a)
    await async_sleep(0.05)  # a is idle past idle_timeout: closed on the next release
    await pool.release(b)
    stats = pool.stats()
    assert stats.closed_idle == 1
    closes_add_up(stats)
    await pool.dispose()


async def test_stats_reset_reads_the_counters_since_the_last_reset() -> None:
    res = AsyncResources()
    pool = res.pool(metrics=True)
    for _ in range(3):
        await pool.release(await pool.acquire())
    first = pool.stats(reset=True)
    assert (first.acquired, first.created, first.acquired_at_once) == (3, 1, 2)
    assert first.hold is not None and first.hold.count == 3
    assert pool.stats().acquired == 0  # since the reset
    await pool.release(await pool.acquire())
    second = pool.stats(reset=True)
    assert (second.acquired, second.created, second.acquired_at_once) == (1, 0, 1)
    assert second.idle == 1 and second.size == 1  # gauges are never reset
    assert second.hold is not None and second.hold.count == 1
    assert second.wait is not None and second.wait.count == 1
    third = pool.stats(reset=True)
    assert third.acquired == 0 and third.hold is not None and third.hold.count == 0
    assert third.hold.max == 0.0
    assert pool._state.totals().acquired == 4  # what the exporters read: never reset
    await pool.dispose()


async def test_a_failed_factory_call_counts_and_is_not_timed() -> None:
    res = AsyncResources(failures=1)
    pool = res.pool(metrics=True, max_backoff=0.01)
    await pool.release(await pool.acquire())  # one failure, then a retry that works
    stats = pool.stats()
    assert stats.create_errors == 1 and stats.created == 1
    assert stats.create is not None and stats.create.count == 1
    assert stats.acquired_by_creating == 1
    await pool.dispose()


async def test_stats_and_the_pool_with_metrics_from_many_callers() -> None:
    res = AsyncResources(delay=0.001)
    pool: AsyncPool[Resource] = res.pool(pool_size=3, metrics=True)

    async def work() -> None:
        for _ in range(20):
            async with pool.lease():
                await async_sleep(0)

    async with AsyncNursery() as nursery:
        for _ in range(6):
            nursery.start_soon(work)
    stats = pool.stats()
    assert stats.acquired == 120
    closes_add_up(stats)
    assert stats.wait is not None and stats.wait.count == 120
    assert stats.hold is not None and stats.hold.count == 120
    await pool.dispose()
    res.assert_settled(pool)
