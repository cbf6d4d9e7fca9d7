"""Issue 9, trust in the field: regression tests for the threaded Pool alone.

Each test was written from the issue's description (``issues show 9``) and the spec
of the fix, before the fix: each docstring names the issue's item it proves.
"""

from __future__ import annotations

import functools
import os
import random
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from respool import Pool, PoolTimeout

from ._sync.resources import Resource, Resources
from .concurrency import Nursery, in_forked_child, wait_until

# -- item 5: helper threads are reused ---------------------------------------------------


def test_helper_threads_are_reused_for_check_and_factory_calls() -> None:
    """Item 5: with a check on every acquire and a timeout (the default), 500 acquires run
    their checks on a small set of persistent helper threads, not a thread each."""
    ran_on: list[threading.Thread] = []  # kept alive, so no two threads share an identity

    def check(resource: Resource) -> bool:
        ran_on.append(threading.current_thread())
        return True

    res = Resources()
    pool = Pool(res.factory, res.releaser, pool_size=2, check=check, check_interval=0)
    for _ in range(500):
        resource = pool.acquire(timeout=5)
        pool.release(resource)
    assert len(ran_on) >= 499
    helpers = set(ran_on)
    assert threading.main_thread() not in helpers  # a timeout applies: not inline
    assert len(helpers) <= 8, f"{len(helpers)} threads ran 500 checks"
    names = sorted({t.name for t in helpers})
    assert all("respool" in name for name in names), names
    pool.dispose()


def test_helper_threads_are_named_after_the_pool() -> None:
    """Item 5: the helper threads are daemons, named after the pool (respool and its
    factory's qualified name) so a thread dump says whose they are."""
    seen: list[threading.Thread] = []

    def check(resource: Resource) -> bool:
        seen.append(threading.current_thread())
        return True

    res = Resources()
    pool = Pool(res.factory, res.releaser, pool_size=1, check=check, check_interval=0)
    for _ in range(3):
        pool.release(pool.acquire(timeout=5))
    assert seen
    for thread in seen:
        assert thread.daemon
        assert thread.name.startswith("respool-Resources.factory-"), thread.name
    pool.dispose()


# -- item 6: no overcommit while a releaser cut short still runs ----------------------------


class OpenCount:
    """Resources really open: +1 when the factory returns, -1 when the releaser returns."""

    def __init__(self, close_takes: float) -> None:
        self.close_takes = close_takes
        self.lock = threading.Lock()
        self.open = self.peak = self.made = 0

    def factory(self) -> Resource:
        with self.lock:
            self.made += 1
            self.open += 1
            self.peak = max(self.peak, self.open)
            return Resource(self.made)

    def releaser(self, resource: Resource) -> None:
        time.sleep(self.close_takes)  # a goodbye to a slow server
        with self.lock:
            self.open -= 1


def test_a_releaser_cut_short_keeps_its_slot_until_it_really_ends() -> None:
    """Item 6: ``cleanup_timeout`` cuts the wait for a releaser, not the releaser: with
    ``pool_size=2``, never more than 2 resources open, counting those being closed."""
    count = OpenCount(close_takes=0.3)
    pool = Pool(count.factory, count.releaser, pool_size=2, cleanup_timeout=0.05, pool_recycle=0.02)
    stop = time.monotonic() + 1.5

    def churn(seed: int) -> None:
        rng = random.Random(seed)
        while time.monotonic() < stop:
            try:
                with pool.lease(timeout=1):
                    time.sleep(rng.choice([0, 0.001, 0.01]))
            except PoolTimeout:
                pass
            if rng.random() < 0.3:
                pool.recycle(force=True)

    with Nursery() as nursery:
        for seed in range(4):
            nursery.start_soon(churn, seed)
    assert count.made >= 4  # resources were closed and replaced
    assert count.peak <= 2, f"{count.peak} resources open at once with pool_size=2"
    pool.recycle(force=True)  # close the idle ones, errors logged
    wait_until(lambda: count.open == 0, timeout=10)  # every releaser ended


# -- item 8: KeyboardInterrupt anywhere loses nothing ---------------------------------------


# Item 8 (KeyboardInterrupt anywhere in a thread) is proven in
# tests/test_keyboard_interrupt.py: its storms send real SIGINTs, from another
# process, to the default handler that respool wraps.  A storm here used a SIGINT
# handler of its own, which respool leaves alone by design (the bookkeeping is
# then not protected), so it could not tell a fixed pool from a broken one.


async def _async_factory() -> Resource:
    return Resource(0)


async def _async_one(resource: Resource) -> bool:
    return True


@pytest.mark.parametrize("name", ["factory", "releaser", "check", "reset", "is_closed"])
def test_pool_refuses_async_callables_at_construction(name: str) -> None:
    """Item 15: an async factory, releaser, check, reset or is_closed given to ``Pool`` is a
    TypeError at construction, naming the argument."""
    res = Resources()
    factory: Callable[..., Any] = _async_factory if name == "factory" else res.factory
    releaser: Callable[..., Any] = _async_one if name == "releaser" else res.releaser
    kwargs = {name: _async_one} if name not in ("factory", "releaser") else {}
    with pytest.raises(TypeError) as info:
        Pool(factory, releaser, pool_size=1, **kwargs)
    message = str(info.value)
    assert name in message, message
    assert "unexpected keyword" not in message, message


def test_pool_refuses_a_partial_of_an_async_function() -> None:
    """Item 15: also an async function wrapped in ``functools.partial``."""
    with pytest.raises(TypeError, match="factory"):
        Pool(functools.partial(_async_factory), None, pool_size=1)


# -- item 17: a forked child's counters start at zero --------------------------------------


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork()")
def test_a_forked_childs_counters_start_at_zero() -> None:
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
