"""A pool in a child process after os.fork(): the parent's resources are not the child's.

"Item 17" in a docstring is item 17 of issue 9 (trust in the field).
"""

from __future__ import annotations

import os
from typing import Any

import pytest

from respool import Pool, PoolError, PoolTimeout

from ._sync.resources import Resources
from .concurrency import in_forked_child

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork()")


def in_child(pool: Pool[object], res: Resources, held: object) -> dict[str, object]:
    """What the child sees and does; runs in the forked process."""
    before = pool.stats()
    fresh = pool.acquire(timeout=5)
    parents = res.created[:2]  # what the parent had made before the fork
    report: dict[str, object] = {
        "stats": [before.size, before.idle, before.leased, before.waiting, before.creating],
        "fresh_is_parents": any(fresh is r for r in parents),
    }
    try:
        pool.release(held)
    except PoolError as exc:
        report["release_parents"] = str(exc)
    pool.release(fresh)
    pool.dispose()
    report["closed"] = [r.number for r in res.closed]
    return report


def test_a_forked_child_starts_empty_and_leaves_the_parents_resources_alone() -> None:
    res = Resources()
    pool = res.pool(pool_size=3)
    pool.prefill(2)
    held = pool.acquire(timeout=1)
    parent_stats = pool.stats()

    def child() -> dict[str, Any]:
        return in_child(pool, res, held)

    report = in_forked_child(child)

    assert report["stats"] == [0, 0, 0, 0, 0]  # starts empty
    assert report["fresh_is_parents"] is False  # never hands out the parent's
    assert "does not lease it" in str(report["release_parents"])
    assert report["closed"] == [2]  # closed only its own resource, not the parent's 0 and 1
    # The parent is untouched.
    assert pool.stats() == parent_stats
    assert res.closed == []
    pool.release(held)
    pool.dispose()
    assert sorted(r.number for r in res.closed) == [0, 1]


COUNTERS = (
    "created",
    "closed",
    "acquired",
    "timeouts",
    "create_errors",
    "close_errors",
    "broken",
    "lost",
)


def counters(pool: Pool[object]) -> dict[str, int]:
    stats = pool.stats()
    return {name: getattr(stats, name) for name in COUNTERS}


def test_a_forked_childs_counters_start_at_zero() -> None:
    res = Resources(close_fails=True)
    pool = res.pool(pool_size=2, max_backoff=10)
    held = pool.acquire(timeout=1)
    broken = pool.acquire(timeout=1)
    pool.discard(broken)  # broken, closed, with a close error
    res.failures = 1
    with pytest.raises(PoolTimeout):  # a create error, then the backoff outlasts the timeout
        pool.acquire(timeout=0.01)
    dropped_pool = res.pool(pool_size=1)
    lost = dropped_pool.acquire(timeout=1)
    res.created.remove(lost)  # the record would keep it alive
    with pytest.warns(ResourceWarning):
        del lost  # dropped unreleased: counted as lost
    parent = counters(pool)
    assert all(parent[name] > 0 for name in COUNTERS if name != "lost"), parent
    assert dropped_pool.stats().lost == 1

    def child() -> dict[str, Any]:
        before = [counters(pool), counters(dropped_pool)]
        pool.dispose()
        dropped_pool.dispose()
        after = [counters(pool), counters(dropped_pool)]
        return {"before": before, "after": after}

    report = in_forked_child(child)

    zero = dict.fromkeys(COUNTERS, 0)
    assert report["before"] == [zero, zero]
    assert report["after"] == [zero, zero]  # disposing the child's empty pool closes nothing
    assert counters(pool) == parent  # the parent is untouched
    pool.release(held)
    res.close_fails = False
    pool.dispose()
    dropped_pool.dispose()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork()")
def test_a_forked_childs_counters_start_at_zero_after_prefill_and_recycle() -> None:
    """Item 17: in a forked child the pool's counters start at zero; after ``dispose()``
    there, ``created == 0`` and ``closed == 0``."""
    res = Resources()
    pool = res.pool(pool_size=3)
    pool.prefill(3)
    pool.release(pool.acquire(timeout=1))
    pool.recycle(force=True)  # the parent: created 3, closed 3, acquired 1
    pool.prefill(1)
    parent = pool.stats()
    assert parent.created == 4 and parent.closed == 3 and parent.acquired == 1

    def child() -> dict[str, Any]:
        before = pool.stats()
        pool.dispose()
        after = pool.stats()
        fields = ["created", "closed", "acquired", "timeouts", "create_errors"]
        fields += ["close_errors", "broken", "lost"]
        report = {
            "before": {f: getattr(before, f) for f in fields},
            "after": {f: getattr(after, f) for f in fields},
        }
        return report

    report = in_forked_child(child)
    assert all(v == 0 for v in report["before"].values()), report["before"]
    assert report["after"]["created"] == 0 and report["after"]["closed"] == 0, report["after"]
    assert pool.stats() == parent  # the parent is untouched
    pool.dispose()
