# generated from tests/_async/test_hooks.py by unasync_build.py: do not edit, edit the source
"""Event hooks (issue 14): ``on_event=`` receives typed, frozen records.

Both faces: tests/_sync is generated from this file.
"""

from __future__ import annotations

import logging

import pytest

from respool import Pool, PoolTimeout, events

from ..concurrency import Nursery, sleep
from .resources import Resources, Resource



class Recorded:
    def __init__(self) -> None:
        self.events: list[events.Event] = []

    def __call__(self, event: events.Event) -> None:
        self.events.append(event)

    def kinds(self) -> list[str]:
        return [type(e).__name__ for e in self.events]


def test_every_kind_of_event_with_what_it_carries() -> None:
    res, seen = Resources(), Recorded()
    dead: set[int] = set()

    def check(resource: Resource) -> bool:
        return resource.number not in dead

    pool = res.pool(pool_size=1, check=check, check_interval=0, on_event=seen, leak_timeout=0.01)
    r = pool.acquire()
    assert seen.kinds() == ["Created", "CheckedOut"]
    created = seen.events[0]
    assert isinstance(created, events.Created) and created.resource is r and created.seconds >= 0
    sleep(0.02)  # past leak_timeout
    pool.release(r)
    assert seen.kinds()[2:] == ["CheckedIn", "Leaked"]
    leaked = seen.events[3]
    assert isinstance(leaked, events.Leaked) and leaked.returned and leaked.seconds >= 0.01
    dead.add(r.number)
    seen.events.clear()
    r2 = pool.acquire()  # r fails its check: closed, r2 created
    assert seen.kinds() == ["CheckFailed", "Closed", "Created", "CheckedOut"]
    failed, closed = seen.events[0], seen.events[1]
    assert isinstance(failed, events.CheckFailed) and failed.resource is r and failed.error is None
    assert isinstance(closed, events.Closed) and closed.reason == "check_failed"
    seen.events.clear()
    with pytest.raises(PoolTimeout) as caught:
        pool.acquire(timeout=0)
    assert seen.kinds() == ["TimedOut"]
    timed_out = seen.events[0]
    assert isinstance(timed_out, events.TimedOut) and timed_out.error is caught.value
    seen.events.clear()
    pool.discard(r2)
    assert seen.kinds() == ["Closed"]
    assert isinstance(seen.events[0], events.Closed) and seen.events[0].reason == "discarded"
    pool.dispose()


def test_a_raising_hook_is_logged_once_and_never_breaks_the_pool(
    caplog: pytest.LogCaptureFixture,
) -> None:
    calls = []

    def hook(event: events.Event) -> None:
        calls.append(event)
        raise RuntimeError("hook broke")

    res = Resources()
    pool = res.pool(on_event=hook)
    with caplog.at_level(logging.ERROR, logger="respool"):
        for _ in range(3):
            with pool.lease():
                pass
    assert len(calls) == 7  # Created, then three CheckedOut and CheckedIn: still called
    logged = [r for r in caplog.records if "on_event" in r.getMessage()]
    assert len(logged) == 1 and "hook broke" in str(logged[0].exc_info)
    assert pool.stats().acquired == 3
    pool.dispose()


def test_a_hook_that_calls_back_into_the_pool() -> None:
    stats = []
    pool: Pool[Resource]

    def hook(event: events.Event) -> None:
        stats.append(pool.stats())  # outside the lock: no deadlock

    res = Resources()
    pool = res.pool(on_event=hook)
    pool.release(pool.acquire())
    assert len(stats) == 3
    assert stats[-1].idle == 1  # checked in: back in the pool
    pool.dispose()


def test_hooks_from_many_callers() -> None:
    seen = Recorded()
    res = Resources(delay=0.001)
    pool = res.pool(pool_size=2, on_event=seen)

    def work() -> None:
        for _ in range(10):
            with pool.lease():
                sleep(0)

    with Nursery() as nursery:
        for _ in range(4):
            nursery.start_soon(work)
    kinds = seen.kinds()
    assert kinds.count("CheckedOut") == kinds.count("CheckedIn") == 40
    assert kinds.count("Created") == pool.stats().created
    pool.dispose()
    assert seen.kinds().count("Closed") == pool.stats().created


def test_on_event_must_be_callable() -> None:
    with pytest.raises(TypeError, match="on_event"):
        Resources().pool(on_event=42)
