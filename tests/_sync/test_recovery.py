# generated from tests/_async/test_recovery.py by unasync_build.py: do not edit, edit the source
"""Recovery from dropped leases and from cleanup cut short: both faces (tests/_sync is generated).

Complements test_health.py, which covers the basic dropped lease and outages.
"""

from __future__ import annotations

import logging

import pytest

from respool import Pool

from ..concurrency import Nursery, sleep, wait_until
from .resources import Resources, Resource



class Unreferenced:
    """A factory that keeps no reference to what it makes, so a dropped lease can die."""

    def __init__(self) -> None:
        self.made = 0

    def factory(self) -> Resource:
        self.made += 1
        return Resource(self.made)


def test_a_waiter_parked_on_a_full_pool_gets_the_slot_of_a_dropped_lease() -> None:
    source = Unreferenced()
    pool = Pool(source.factory, None, pool_size=1)
    holder = [pool.acquire()]
    got: list[int] = []

    def waiter() -> None:
        with pool.lease(timeout=30) as resource:
            got.append(resource.number)

    with Nursery() as nursery:
        nursery.start_soon(waiter)
        wait_until(lambda: pool.stats().waiting == 1)
        with pytest.warns(ResourceWarning, match="garbage-collected without being released"):
            holder.clear()  # the only reference: CPython frees it at once
        wait_until(lambda: got != [], timeout=10)
    assert got == [2]  # the waiter created a new resource in the recovered slot
    stats = pool.stats()
    assert (stats.lost, stats.closed, stats.created, stats.size, stats.idle) == (1, 1, 2, 1, 1)
    assert (stats.leased, stats.waiting, stats.creating) == (0, 0, 0)


def test_many_dropped_leases_are_all_recovered() -> None:
    source = Unreferenced()
    pool = Pool(source.factory, None, pool_size=5)
    for _ in range(4):  # the pool is used up, then up again, then again
        holder = [pool.acquire(timeout=1) for _ in range(5)]
        with pytest.warns(ResourceWarning) as caught:
            holder.clear()
        assert len(caught) == 5
        assert pool.stats().leased == 0
    stats = pool.stats()
    assert (stats.lost, stats.closed, stats.created, stats.size) == (20, 20, 20, 0)
    with pool.lease(timeout=1):
        pass


def test_a_dropped_lease_without_weak_references_is_only_reported_by_leak_timeout(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The documented limit: an object that cannot be weakly referenced is not recovered."""

    def factory() -> object:
        return object()  # no __weakref__ slot

    pool = Pool(factory, None, pool_size=1, leak_timeout=0.05)
    holder = [pool.acquire()]  # the line the report must name
    holder.clear()
    sleep(0.06)
    with caplog.at_level(logging.WARNING, logger="respool"):
        stats = pool.stats()  # looking at the pool reports the overdue lease
    assert stats.lost == 0 and stats.leased == 1  # not recovered: its slot stays taken
    assert "has been held for" in caplog.text
    assert "holder = [" in caplog.text
    assert "test_a_dropped_lease_without_weak_references" in caplog.text


def test_the_releaser_runs_for_every_resource_the_pool_counts_as_closed() -> None:
    """cleanup_timeout bounds the releaser's run; it must never skip the call.

    The pool computes the cleanup deadline, then starts the releaser; if the
    deadline has passed in between (a garbage-collection pause, the process
    descheduled on a busy machine: seen in the cancellation matrix with
    cleanup_timeout=0.004), the releaser is not called at all, yet the
    resource counts as closed, its slot is freed and a TimeoutError ("did not
    finish within cleanup_timeout") is logged.  Whatever it stands for (a
    socket, a server-side session) is never closed.  A cleanup_timeout far
    below the time between those two steps makes it happen every time.
    """
    res = Resources()
    pool = res.pool(pool_size=2, cleanup_timeout=1e-9)
    resource = pool.acquire()
    pool.discard(resource)
    # the releaser may still be running in its own thread (threaded face): it then
    # counts as closed, and frees its slot, when it ends
    wait_until(lambda: len(res.closed) == 1, timeout=2)
    wait_until(lambda: pool.stats().closed == 1, timeout=2)
    assert res.closed == [resource]
