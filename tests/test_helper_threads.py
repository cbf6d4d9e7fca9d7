"""``Pool``'s helper threads: reused, named after the pool, bounded, ended at dispose (issue 9, 5).

With a deadline, ``Pool`` runs the factory, ``check``, ``reset`` and releaser
in helper threads so the caller can give up on a call.  They used to be one
new thread per call; now a small set per pool is reused.
"""

from __future__ import annotations

import os
import threading
import time
from typing import Any

import pytest

from respool import Pool, PoolTimeout
from respool._synchronization import Helpers

from ._sync.resources import Resource, Resources
from .concurrency import in_forked_child, wait_until


def helper_threads(prefix: str) -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith(prefix)]


def test_500_checked_acquires_use_a_few_helper_threads_named_after_the_pool() -> None:
    res = Resources()
    seen: set[int] = set()
    names: set[str] = set()

    def check(resource: Resource) -> bool:
        seen.add(threading.get_ident())
        names.add(threading.current_thread().name)
        return True

    pool = res.pool(pool_size=3, check=check, check_interval=0, acquire_timeout=10)
    for _ in range(500):
        with pool.lease():
            pass
    assert pool.stats().acquired == 500
    assert 1 <= len(seen) <= 4, len(seen)  # was 500: a thread per check
    assert threading.get_ident() not in seen  # with a deadline the check is not inline
    prefix = "respool-Resources.factory-"
    assert all(name.startswith(prefix) for name in names), names
    assert len(helper_threads(prefix)) <= pool._helpers.bound
    pool.dispose()
    res.assert_settled(pool)


def test_factory_calls_share_the_helpers_too() -> None:
    made_in: set[int] = set()

    def factory() -> Resource:
        made_in.add(threading.get_ident())
        return Resource(0)

    pool = Pool(factory, None, pool_size=1, acquire_timeout=10)
    for _ in range(50):
        resource = pool.acquire()
        pool.discard(resource)  # the next acquire creates again
    assert pool.stats().created == 50
    assert len(made_in) <= 2, len(made_in)
    pool.dispose()


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


def test_dispose_leaves_no_helper_thread_alive() -> None:
    res = Resources()
    pool = res.pool(
        pool_size=4, check=lambda r: True, check_interval=0, reset=lambda r: True,
        cleanup_timeout=5, acquire_timeout=5,
    )  # fmt: skip
    held = [pool.acquire() for _ in range(4)]  # factory calls, then checks, in helpers
    for resource in held:
        pool.release(resource)  # resets in helpers
    prefix = "respool-Resources.factory-"
    assert helper_threads(prefix)
    started = time.monotonic()
    pool.dispose()  # releasers in helpers, then the helpers end
    assert time.monotonic() - started < 2
    assert helper_threads(prefix) == []
    res.assert_settled(pool)


def test_a_release_after_dispose_still_closes_through_a_passing_thread() -> None:
    res = Resources()
    pool = res.pool(pool_size=1, cleanup_timeout=5, acquire_timeout=5)
    resource = pool.acquire()
    pool.dispose()
    pool.release(resource)  # closed: the releaser runs in a helper started for it
    assert res.closed == [resource]
    wait_until(lambda: helper_threads("respool-Resources.factory-") == [])


def test_a_stuck_check_does_not_block_other_callers() -> None:
    gate = threading.Event()
    calls = 0

    def check(resource: Resource) -> bool:
        nonlocal calls
        calls += 1
        if calls == 1:
            gate.wait(30)  # stuck until the test lets it go
        return True

    res = Resources()
    pool = res.pool(pool_size=2, check=check, check_interval=0, acquire_timeout=5)
    pool.prefill(2)
    with pytest.raises(PoolTimeout):
        pool.acquire(timeout=0.1)  # its check is stuck; the call is left behind
    started = time.monotonic()
    for _ in range(20):  # the other resource, checked in other helpers
        with pool.lease(timeout=2):
            pass
    assert time.monotonic() - started < 2
    gate.set()  # the stuck check ends: its resource, not trusted, is closed
    wait_until(lambda: pool.stats().leased == 0 and len(res.closed) == 1)
    pool.dispose()
    res.assert_settled(pool)


def test_past_the_bound_a_call_still_gets_a_thread_and_stuck_helpers_are_not_reused() -> None:
    helpers = Helpers(lambda: None, pool_size=1)
    assert helpers.bound == 4
    gate = threading.Event()
    for _ in range(helpers.bound + 2):  # more stuck calls than the bound
        helpers.submit(lambda: gate.wait(30))
    done = threading.Event()
    helpers.submit(done.set)  # finds no idle helper: starts one anyway
    assert done.wait(5)
    assert len(helpers.threads()) == helpers.bound + 3
    gate.set()
    # Back from their calls, at most `bound` helpers stay parked; the rest end.
    wait_until(lambda: len(helpers.threads()) <= helpers.bound)
    helpers.close()
    assert helpers.threads() == []


def test_an_idle_helper_ends_after_a_while(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Helpers, "IDLE_SECONDS", 0.05)
    helpers = Helpers(lambda: None, pool_size=2)
    ran = threading.Event()
    helpers.submit(ran.set)
    assert ran.wait(5)
    wait_until(lambda: helpers.threads() == [])
    again = threading.Event()
    helpers.submit(again.set)  # a new one starts when needed
    assert again.wait(5)
    helpers.close()
    assert helpers.threads() == []


def test_the_helper_name_follows_the_factory() -> None:
    import functools

    def make(n: int) -> Resource:
        return Resource(n)

    assert Helpers(functools.partial(make, 1), 1)._name.endswith(".make")
    assert Helpers(Resource, 1)._name == "respool-Resource"


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork()")
def test_a_forked_child_has_none_of_the_parents_helpers() -> None:
    res = Resources()
    pool = res.pool(pool_size=2, check=lambda r: True, check_interval=0, acquire_timeout=5)
    for _ in range(5):
        with pool.lease():
            pass
    helpers: Helpers = pool._helpers
    assert helpers.threads()

    def child() -> dict[str, Any]:
        report = {"before": len(helpers.threads())}
        with pool.lease():  # its check runs in a helper of the child's own
            pass
        report["after"] = len(helpers.threads())
        pool.dispose()
        report["disposed"] = len(helpers.threads())
        return report

    report = in_forked_child(child)
    assert report == {"before": 0, "after": 1, "disposed": 0}
    pool.dispose()
