# generated from tests/_async/test_metrics.py by unasync_build.py: do not edit, edit the source
"""Observability (issue 14): counters by outcome and by close reason, the latency
histograms of ``metrics=True``, and ``stats(reset=True)``, on scripted workloads.

Both faces: tests/_sync is generated from this file.  The exporters, and the
outcomes of one face only, are in tests/test_observability.py.
"""

from __future__ import annotations

import pytest

from respool import Pool, PoolClosed, PoolExhausted, PoolStats, PoolTimeout

from ..concurrency import Nursery, sleep, wait_until
from .resources import Resources, Resource


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


def test_metrics_must_be_a_bool() -> None:
    res = Resources()
    with pytest.raises(TypeError, match="metrics"):
        res.pool(metrics="yes")


def test_acquires_by_outcome_and_their_histograms() -> None:
    res = Resources()
    pool = res.pool(pool_size=1, max_waiting=1, metrics=True)
    r = pool.acquire()  # by creating
    pool.release(r)
    r = pool.acquire()  # at once, from the idle set
    with pytest.raises(PoolTimeout):
        pool.acquire(timeout=0.01)
    got: list[Resource] = []

    def waits() -> None:
        got.append(pool.acquire())

    with Nursery() as nursery:
        nursery.start_soon(waits)
        wait_until(lambda: pool.stats().waiting == 1)
        with pytest.raises(PoolExhausted):  # max_waiting=1 wait already
            pool.acquire()
        sleep(0.02)  # held a while: the waiter's wait and this hold are longer
        pool.release(r)
    pool.release(got[0])
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
    pool.dispose()
    with pytest.raises(PoolClosed):
        pool.acquire()
    stats = pool.stats()
    assert stats.refused_closed == 1 and stats.refused == 2
    assert stats.closed_disposed == 1
    closes_add_up(stats)


def test_without_metrics_there_are_no_histograms() -> None:
    res = Resources()
    pool = res.pool()
    pool.release(pool.acquire())
    stats = pool.stats()
    assert (stats.wait, stats.hold, stats.create, stats.check) == (None, None, None, None)
    assert stats.acquired_by_creating == 1
    pool.dispose()


class Verdicts:
    """A check and a reset that fail for the resources the test names."""

    def __init__(self) -> None:
        self.bad_check: set[int] = set()
        self.bad_reset: set[int] = set()

    def check(self, resource: Resource) -> bool:
        return resource.number not in self.bad_check

    def reset(self, resource: Resource) -> bool:
        return resource.number not in self.bad_reset


def test_closes_by_reason() -> None:
    res, verdicts = Resources(), Verdicts()
    pool = res.pool(
        pool_size=2, burst_limit=3, check=verdicts.check, check_interval=0,
        reset=verdicts.reset, metrics=True,
    )  # fmt: skip
    a = pool.acquire()
    pool.discard(a)  # discarded
    b = pool.acquire()
    verdicts.bad_reset.add(b.number)
    pool.release(b)  # reset failed
    c = pool.acquire()
    pool.release(c)
    verdicts.bad_check.add(c.number)
    d = pool.acquire()  # c fails its check: closed; d is created instead
    assert d is not c
    e, f = pool.acquire(), pool.acquire()  # f is a burst
    pool.release(f)  # above pool_size, nobody waiting: surplus
    pool.release(e)
    pool.release(d)
    assert pool.recycle(force=True) == 2  # recycled
    pool.release(pool.acquire())
    stats = pool.stats()
    assert stats.closed_discarded == 1
    assert stats.closed_reset_failed == 1
    assert stats.closed_check_failed == 1
    assert stats.closed_surplus == 1
    assert stats.closed_recycled == 2
    assert stats.checks >= 1
    assert stats.check is not None and stats.check.count == stats.checks
    closes_add_up(stats)
    pool.dispose()
    stats = pool.stats()
    assert stats.closed_disposed == 1
    closes_add_up(stats)
    res.assert_settled(pool, bound=3)


def test_idle_resources_closed_past_idle_timeout_count_as_idle() -> None:
    res = Resources()
    pool = res.pool(pool_size=2, idle_timeout=0.01)
    a, b = pool.acquire(), pool.acquire()
    pool.release(a)
    sleep(0.05)  # a is idle past idle_timeout: closed on the next release
    pool.release(b)
    stats = pool.stats()
    assert stats.closed_idle == 1
    closes_add_up(stats)
    pool.dispose()


def test_stats_reset_reads_the_counters_since_the_last_reset() -> None:
    res = Resources()
    pool = res.pool(metrics=True)
    for _ in range(3):
        pool.release(pool.acquire())
    first = pool.stats(reset=True)
    assert (first.acquired, first.created, first.acquired_at_once) == (3, 1, 2)
    assert first.hold is not None and first.hold.count == 3
    assert pool.stats().acquired == 0  # since the reset
    pool.release(pool.acquire())
    second = pool.stats(reset=True)
    assert (second.acquired, second.created, second.acquired_at_once) == (1, 0, 1)
    assert second.idle == 1 and second.size == 1  # gauges are never reset
    assert second.hold is not None and second.hold.count == 1
    assert second.wait is not None and second.wait.count == 1
    third = pool.stats(reset=True)
    assert third.acquired == 0 and third.hold is not None and third.hold.count == 0
    assert third.hold.max == 0.0
    assert pool._state.totals().acquired == 4  # what the exporters read: never reset
    pool.dispose()


def test_a_failed_factory_call_counts_and_is_not_timed() -> None:
    res = Resources(failures=1)
    pool = res.pool(metrics=True, max_backoff=0.01)
    pool.release(pool.acquire())  # one failure, then a retry that works
    stats = pool.stats()
    assert stats.create_errors == 1 and stats.created == 1
    assert stats.create is not None and stats.create.count == 1
    assert stats.acquired_by_creating == 1
    pool.dispose()


def test_stats_and_the_pool_with_metrics_from_many_callers() -> None:
    res = Resources(delay=0.001)
    pool: Pool[Resource] = res.pool(pool_size=3, metrics=True)

    def work() -> None:
        for _ in range(20):
            with pool.lease():
                sleep(0)

    with Nursery() as nursery:
        for _ in range(6):
            nursery.start_soon(work)
    stats = pool.stats()
    assert stats.acquired == 120
    closes_add_up(stats)
    assert stats.wait is not None and stats.wait.count == 120
    assert stats.hold is not None and stats.hold.count == 120
    pool.dispose()
    res.assert_settled(pool)
