"""Event hooks (issue 14): ``on_event=`` receives typed, frozen records.

Both faces: tests/_sync is generated from this file.
"""

from __future__ import annotations

import logging

import pytest

from respool import AsyncPool, PoolTimeout, events

from ..concurrency import AsyncNursery, async_sleep
from .resources import AsyncResources, Resource

pytestmark = pytest.mark.anyio


class Recorded:
    def __init__(self) -> None:
        self.events: list[events.Event] = []

    def __call__(self, event: events.Event) -> None:
        self.events.append(event)

    def kinds(self) -> list[str]:
        return [type(e).__name__ for e in self.events]


async def test_every_kind_of_event_with_what_it_carries() -> None:
    res, seen = AsyncResources(), Recorded()
    dead: set[int] = set()

    async def check(resource: Resource) -> bool:
        return resource.number not in dead

    pool = res.pool(pool_size=1, check=check, check_interval=0, on_event=seen, leak_timeout=0.01)
    r = await pool.acquire()
    assert seen.kinds() == ["Created", "CheckedOut"]
    created = seen.events[0]
    assert isinstance(created, events.Created) and created.resource is r and created.seconds >= 0
    await async_sleep(0.02)  # past leak_timeout
    await pool.release(r)
    assert seen.kinds()[2:] == ["CheckedIn", "Leaked"]
    leaked = seen.events[3]
    assert isinstance(leaked, events.Leaked) and leaked.returned and leaked.seconds >= 0.01
    dead.add(r.number)
    seen.events.clear()
    r2 = await pool.acquire()  # r fails its check: closed, r2 created
    assert seen.kinds() == ["CheckFailed", "Closed", "Created", "CheckedOut"]
    failed, closed = seen.events[0], seen.events[1]
    assert isinstance(failed, events.CheckFailed) and failed.resource is r and failed.error is None
    assert isinstance(closed, events.Closed) and closed.reason == "check_failed"
    seen.events.clear()
    with pytest.raises(PoolTimeout) as caught:
        await pool.acquire(timeout=0)
    assert seen.kinds() == ["TimedOut"]
    timed_out = seen.events[0]
    assert isinstance(timed_out, events.TimedOut) and timed_out.error is caught.value
    seen.events.clear()
    await pool.discard(r2)
    assert seen.kinds() == ["Closed"]
    assert isinstance(seen.events[0], events.Closed) and seen.events[0].reason == "discarded"
    await pool.dispose()


async def test_a_raising_hook_is_logged_once_and_never_breaks_the_pool(
    caplog: pytest.LogCaptureFixture,
) -> None:
    calls = []

    def hook(event: events.Event) -> None:
        calls.append(event)
        raise RuntimeError("hook broke")

    res = AsyncResources()
    pool = res.pool(on_event=hook)
    with caplog.at_level(logging.ERROR, logger="respool"):
        for _ in range(3):
            async with pool.lease():
                pass
    assert len(calls) == 7  # Created, then three CheckedOut and CheckedIn: still called
    logged = [r for r in caplog.records if "on_event" in r.getMessage()]
    assert len(logged) == 1 and "hook broke" in str(logged[0].exc_info)
    assert pool.stats().acquired == 3
    await pool.dispose()


async def test_a_hook_that_calls_back_into_the_pool() -> None:
    stats = []
    pool: AsyncPool[Resource]

    def hook(event: events.Event) -> None:
        stats.append(pool.stats())  # outside the lock: no deadlock

    res = AsyncResources()
    pool = res.pool(on_event=hook)
    await pool.release(await pool.acquire())
    assert len(stats) == 3
    assert stats[-1].idle == 1  # checked in: back in the pool
    await pool.dispose()


async def test_hooks_from_many_callers() -> None:
    seen = Recorded()
    res = AsyncResources(delay=0.001)
    pool = res.pool(pool_size=2, on_event=seen)

    async def work() -> None:
        for _ in range(10):
            async with pool.lease():
                await async_sleep(0)

    async with AsyncNursery() as nursery:
        for _ in range(4):
            nursery.start_soon(work)
    kinds = seen.kinds()
    assert kinds.count("CheckedOut") == kinds.count("CheckedIn") == 40
    assert kinds.count("Created") == pool.stats().created
    await pool.dispose()
    assert seen.kinds().count("Closed") == pool.stats().created


async def test_on_event_must_be_callable() -> None:
    with pytest.raises(TypeError, match="on_event"):
        AsyncResources().pool(on_event=42)
