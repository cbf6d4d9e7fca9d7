"""Behaviour both faces share; tests/_sync is generated from this file.

"Item N" or "Issue 9" in a docstring: issue 9 (trust in the field).
"""

from __future__ import annotations

import itertools
import logging
import math
import random
import re
import sys
import time

import attrs
import pytest

from respool import AsyncPool, PoolClosed, PoolError, PoolTimeout

from ..concurrency import AsyncNursery, async_sleep, async_wait_until
from .resources import AsyncResources, Resource, hold

if sys.version_info < (3, 11):
    from exceptiongroup import ExceptionGroup

pytestmark = pytest.mark.anyio


# -- the basic cycle ------------------------------------------------------------


async def test_acquire_returns_the_factorys_own_object_and_reuses_it() -> None:
    res = AsyncResources()
    pool = res.pool(pool_size=2)
    first = await pool.acquire()
    assert type(first) is Resource  # no proxy
    await pool.release(first)
    assert await pool.acquire() is first
    await pool.release(first)
    assert pool.stats().created == 1
    res.assert_settled(pool)


async def test_lifo_hands_out_the_most_recently_returned() -> None:
    res = AsyncResources()
    pool = res.pool(pool_size=3)
    a, b, c = [await pool.acquire() for _ in range(3)]
    for r in (a, b, c):
        await pool.release(r)
    assert [await pool.acquire() for _ in range(3)] == [c, b, a]


async def test_fifo_hands_out_the_longest_idle() -> None:
    res = AsyncResources()
    pool = res.pool(pool_size=3, lifo=False)
    a, b, c = [await pool.acquire() for _ in range(3)]
    for r in (a, b, c):
        await pool.release(r)
    assert [await pool.acquire() for _ in range(3)] == [a, b, c]


async def test_lease_releases_when_the_body_raises() -> None:
    res = AsyncResources()
    pool = res.pool(pool_size=1)
    with pytest.raises(KeyError):
        async with pool.lease() as resource:
            raise KeyError("boom")
    assert await pool.acquire(timeout=0) is resource
    await pool.release(resource)
    res.assert_settled(pool)


async def test_a_lease_is_entered_once() -> None:
    pool = AsyncResources().pool()
    lease = pool.lease()
    async with lease:
        pass
    with pytest.raises(PoolError, match="already entered"):
        async with lease:
            pass


async def test_pool_as_context_manager_disposes() -> None:
    res = AsyncResources()
    async with res.pool() as pool:
        await pool.prefill(2)
    assert pool.closed
    assert len(res.closed) == 2
    with pytest.raises(PoolClosed):
        await pool.acquire()


async def test_entering_a_disposed_pool_raises_pool_closed() -> None:
    res = AsyncResources()
    pool = res.pool()
    await pool.dispose()
    with pytest.raises(PoolClosed, match="disposed"):
        async with pool:
            raise AssertionError("entered a disposed pool")  # pragma: no cover
    async with res.pool() as other:  # an open pool enters
        assert other.closed is False
    assert other.closed


async def test_entering_a_pool_again_after_its_with_block_raises_pool_closed() -> None:
    """Issue 9, the smaller ones: entering a disposed pool (``with``) is ``PoolClosed``."""
    pool = AsyncResources().pool(pool_size=1)
    async with pool:
        pass
    assert pool.closed
    with pytest.raises(PoolClosed):
        async with pool:
            pytest.fail("entered a disposed pool")


async def test_stats_are_a_frozen_snapshot() -> None:
    pool = AsyncResources().pool(pool_size=4)
    resource = await pool.acquire()
    stats = pool.stats()
    assert (stats.size, stats.leased, stats.idle, stats.pool_size) == (1, 1, 0, 4)
    assert (stats.created, stats.acquired, stats.closed) == (1, 1, 0)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        stats.size = 3  # type: ignore[misc]
    await pool.release(resource)
    assert pool.stats().leased == 0
    assert "leased=1" in str(stats)


# -- bad input ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"pool_size": 0}, ValueError),
        ({"pool_size": -3}, ValueError),
        ({"pool_size": 2.5}, TypeError),
        ({"pool_size": True}, TypeError),
        ({"pool_recycle": -1}, ValueError),
        ({"pool_recycle": float("nan")}, ValueError),
        ({"acquire_timeout": -0.1}, ValueError),
        ({"acquire_timeout": "3"}, TypeError),
        ({"lifo": "yes"}, TypeError),
        ({"lifo": 0}, TypeError),
        ({"lifo": None}, TypeError),
    ],
)
async def test_bad_arguments_fail_at_construction(kwargs: dict[str, object], error: type) -> None:
    res = AsyncResources()
    with pytest.raises(error):
        AsyncPool(res.factory, res.releaser, **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"lifo": "yes"}, "lifo"),
        ({"lifo": 1}, "lifo"),
        ({"lifo": None}, "lifo"),
        ({"check_interval": None}, "check_interval"),
    ],
)
async def test_strict_argument_types(kwargs: dict[str, object], match: str) -> None:
    """Issue 9, the smaller ones: ``lifo`` must be a bool; ``check_interval=None`` is
    refused (numbers of seconds already reject bools and strings)."""
    with pytest.raises(TypeError, match=match):
        AsyncResources().pool(**kwargs)


async def test_non_callables_fail_at_construction() -> None:
    res = AsyncResources()
    with pytest.raises(TypeError, match="factory must be callable"):
        AsyncPool(object(), res.releaser)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="releaser must be callable"):
        AsyncPool(res.factory, 42)  # type: ignore[arg-type]


async def test_bad_call_arguments_fail_before_anything_changes() -> None:
    res = AsyncResources()
    pool = res.pool()
    with pytest.raises(ValueError, match="timeout"):
        await pool.acquire(timeout=-1)
    with pytest.raises(ValueError, match="count"):
        await pool.prefill(-1)
    res.assert_settled(pool)
    assert pool.stats().created == 0


async def test_releaser_may_be_none() -> None:
    pool = AsyncPool(AsyncResources().factory, None, pool_size=1)
    resource = await pool.acquire()
    await pool.release(resource)
    await pool.dispose()
    assert pool.stats().closed == 1


# -- misuse ------------------------------------------------------------------


async def test_double_release_raises_and_changes_nothing() -> None:
    res = AsyncResources()
    pool = res.pool(pool_size=2)
    resource = await pool.acquire()
    await pool.release(resource)
    before = pool.stats()
    with pytest.raises(PoolError, match="released twice"):
        await pool.release(resource)
    assert pool.stats() == before
    # the resource is pooled once: two acquires get two different objects
    a, b = await pool.acquire(), await pool.acquire()
    assert a is not b


async def test_releasing_a_foreign_object_raises() -> None:
    pool = AsyncResources().pool()
    with pytest.raises(PoolError, match="does not lease"):
        await pool.release(Resource(99))
    other = AsyncResources().pool()
    theirs = await other.acquire()
    with pytest.raises(PoolError):
        await pool.release(theirs)
    await other.release(theirs)


async def test_a_factory_returning_a_pooled_object_is_refused() -> None:
    shared = Resource(0)

    async def same() -> Resource:
        return shared

    pool = AsyncPool(same, None, pool_size=2)
    assert await pool.acquire() is shared
    with pytest.raises(PoolError, match="already holds"):
        await pool.acquire()
    stats = pool.stats()
    assert (stats.size, stats.leased, stats.creating) == (1, 1, 0)


@pytest.mark.parametrize("tracked", [False, True])
async def test_a_factory_returning_none_is_refused_at_once_and_its_slot_freed(
    tracked: bool,
) -> None:
    made = iter([None, Resource(1)])

    async def factory() -> Resource | None:
        return next(made)

    async def reset(resource: Resource | None) -> None:
        pass

    # tracked: a reset and leak_timeout, with which a None could never be released
    kwargs: dict[str, object] = {"reset": reset, "leak_timeout": 60} if tracked else {}
    pool = AsyncPool(factory, None, pool_size=1, **kwargs)  # type: ignore[arg-type]
    started = time.monotonic()
    with pytest.raises(PoolError, match="the factory returned None"):
        await pool.acquire(timeout=5)
    assert time.monotonic() - started < 1  # at once, not after the timeout
    stats = pool.stats()
    assert (stats.size, stats.leased, stats.creating, stats.created) == (0, 0, 0, 0)
    async with pool.lease(timeout=1) as resource:  # the one slot is free again
        assert resource is not None and resource.number == 1
    assert pool.stats().idle == 1


@pytest.mark.parametrize("extras", ["plain", "reset", "leak_timeout"])
async def test_a_factory_returning_none_is_a_pool_error_and_frees_the_slot(extras: str) -> None:
    """Item 10: ``None`` from the factory is a ``PoolError`` at once; nothing is lost."""
    made: list[Resource] = []

    async def factory() -> Resource | None:
        if not made:
            made.append(Resource(0))
            return None
        made.append(Resource(len(made)))
        return made[-1]

    async def reset(resource: Resource) -> None:
        pass

    kwargs: dict[str, object] = {
        "plain": {},
        "reset": {"reset": reset},
        "leak_timeout": {"leak_timeout": 60},
    }[extras]
    pool = AsyncPool(factory, None, pool_size=1, **kwargs)  # type: ignore[arg-type]
    started = time.monotonic()
    with pytest.raises(PoolError, match="returned None") as info:
        await pool.acquire(timeout=5)
    assert not isinstance(info.value, PoolTimeout)
    assert time.monotonic() - started < 2.5
    stats = pool.stats()
    assert (stats.size, stats.creating, stats.leased, stats.waiting) == (0, 0, 0, 0), stats
    async with pool.lease(timeout=1) as resource:
        assert resource is made[-1]
    stats = pool.stats()
    assert (stats.size, stats.idle, stats.leased) == (1, 1, 0), stats


# -- capacity and fairness ---------------------------------------------------


async def test_never_more_than_pool_size_alive() -> None:
    res = AsyncResources(delay=0.002)
    pool = res.pool(pool_size=3)
    async with AsyncNursery() as nursery:
        for _ in range(12):
            nursery.start_soon(hold, pool, 0.005)
    assert res.peak == 3
    res.assert_settled(pool)


def waiting_or_quit(pool: AsyncPool[Resource]) -> tuple[int, int]:
    stats = pool.stats()
    return stats.waiting, stats.timeouts


async def test_forty_parked_waiters_are_served_in_arrival_order() -> None:
    """Like Commons Pool's testBorrowObjectFairness: 40 parked callers, served in order.

    The one resource passes down the line: every third holder discards it,
    so the next in line is handed a free slot (and creates) instead of a
    resource.  Five callers in the middle give up (time out) before anyone is
    served: they are skipped and the rest keep their order.  A caller arriving
    while the line is being served goes to its end.
    """
    res = AsyncResources()
    pool = res.pool(pool_size=1)
    first = await pool.acquire()
    quitters = {5, 12, 19, 26, 33}
    late = 40  # arrives when number 20 is served
    served: list[int] = []
    got: dict[int, Resource] = {}

    async def caller(i: int) -> None:
        if i in quitters:
            with pytest.raises(PoolTimeout):
                await pool.acquire(timeout=0.05)
            return
        resource = await pool.acquire(timeout=30)
        served.append(i)
        got[i] = resource
        if i == 20:
            nursery.start_soon(caller, late)
            # everyone still in line, then the late caller behind them
            in_line = len([j for j in range(21, 40) if j not in quitters]) + 1
            await async_wait_until(lambda: pool.stats().waiting == in_line)
        if i % 3 == 0:
            await pool.discard(resource)
        else:
            await pool.release(resource)

    async with AsyncNursery() as nursery:
        for i in range(40):
            nursery.start_soon(caller, i)
            # parked in turn (a quitter may already have given up)
            await async_wait_until(lambda i=i: sum(waiting_or_quit(pool)) == i + 1)
        await async_wait_until(lambda: pool.stats().timeouts == len(quitters))
        await pool.release(first)
    assert served == [i for i in range(40) if i not in quitters] + [late]
    assert got[0] is first
    for before, after in itertools.pairwise(served):
        if before % 3 == 0:  # discarded: the next one was handed the slot, and created
            assert got[after] is not got[before] and got[before].closed
        else:  # released: handed straight to the next one
            assert got[after] is got[before]
    assert pool.stats().broken == len([i for i in served if i % 3 == 0])
    assert pool.stats().timeouts == len(quitters)
    res.assert_settled(pool)


async def test_with_no_fairness_window_a_released_resource_goes_to_the_waiter() -> None:
    """Strict first come, first served: a newcomer never takes it first."""
    res = AsyncResources()
    pool = res.pool(pool_size=1, fairness_window=0)
    resource = await pool.acquire()
    got: list[Resource] = []

    async def waiter() -> None:
        got.append(await pool.acquire(timeout=10))

    async with AsyncNursery() as nursery:
        nursery.start_soon(waiter)
        await async_wait_until(lambda: pool.stats().waiting == 1)
        await pool.release(resource)
        with pytest.raises(PoolTimeout):
            await pool.acquire(timeout=0)  # a newcomer cannot barge in
    assert got == [resource]
    await pool.release(resource)
    res.assert_settled(pool)


async def test_a_waiter_past_the_fairness_window_gets_the_resource_before_a_newcomer() -> None:
    """The bound on unfairness: once the oldest waiter has waited ``fairness_window``, a
    returned resource is handed straight to it."""
    res = AsyncResources()
    pool = res.pool(pool_size=1, fairness_window=0.05)
    resource = await pool.acquire()
    got: list[Resource] = []

    async def waiter() -> None:
        got.append(await pool.acquire(timeout=10))

    async with AsyncNursery() as nursery:
        nursery.start_soon(waiter)
        await async_wait_until(lambda: pool.stats().waiting == 1)
        await async_sleep(0.1)  # past the window
        await pool.release(resource)
        with pytest.raises(PoolTimeout):
            await pool.acquire(timeout=0)  # a newcomer cannot pass it now
    assert got == [resource]
    await pool.release(resource)
    res.assert_settled(pool)


@pytest.mark.parametrize("window", [0, 0.001, 0.05])
async def test_every_waiter_is_served_under_contention_whatever_the_window(
    window: float,
) -> None:
    """Many callers on few resources, each holding across a checkpoint: every one of them
    gets its turns (no waiter starves), and the counts settle."""
    res = AsyncResources()
    pool = res.pool(pool_size=2, fairness_window=window)
    turns = dict.fromkeys(range(12), 0)

    async def caller(number: int) -> None:
        for _ in range(20):
            async with pool.lease(timeout=10):
                turns[number] += 1
                await async_sleep(0)

    async with AsyncNursery() as nursery:
        for number in turns:
            nursery.start_soon(caller, number)
    assert set(turns.values()) == {20}
    assert pool.stats().timeouts == 0
    res.assert_settled(pool)


# Issue 9, item 11: a caller backing off a failing factory is in the line.


async def test_a_caller_backing_off_a_failing_factory_gets_a_resource_released_meanwhile() -> None:
    """Item 11: a resource released while a caller retries a failing factory goes to it."""
    res = AsyncResources()
    pool = res.pool(pool_size=2, max_backoff=2)
    held = await pool.acquire()
    res.failures = 10**6  # the database is down from now on
    got: list[Resource] = []
    ends: list[float] = []

    async def caller() -> None:
        try:
            async with pool.lease(timeout=3) as resource:
                got.append(resource)
        except PoolTimeout:
            pass
        ends.append(time.monotonic())

    async with AsyncNursery() as nursery:
        nursery.start_soon(caller)
        await async_wait_until(lambda: pool.stats().create_errors >= 2, timeout=5)
        released_at = time.monotonic()
        await pool.release(held)  # healthy, and released while the caller backs off
    assert got == [held]
    assert ends[0] - released_at < 1.0  # at once, not after the caller's timeout
    assert not held.closed


async def test_a_caller_backing_off_is_served_before_a_newcomer() -> None:
    """Item 11: the caller backing off came first, so a resource released meanwhile is
    its, not a newcomer's who arrived later (no barging past a caller creating, whatever
    the fairness window)."""
    res = AsyncResources()
    pool = res.pool(pool_size=2, max_backoff=2)
    held = await pool.acquire()
    res.failures = 10**6
    got: dict[str, Resource] = {}
    errors: dict[str, BaseException] = {}

    async def caller(name: str, timeout: float) -> None:
        try:
            got[name] = await pool.acquire(timeout=timeout)
        except PoolTimeout as exc:
            errors[name] = exc

    async with AsyncNursery() as nursery:
        nursery.start_soon(caller, "first", 3)
        await async_wait_until(lambda: pool.stats().create_errors >= 2, timeout=5)
        nursery.start_soon(caller, "newcomer", 1)
        await async_sleep(0.05)  # the newcomer is parked by now
        await pool.release(held)
    assert got.get("first") is held, (got, errors)
    assert "newcomer" not in got
    await pool.release(held)


# -- timeouts ----------------------------------------------------------------


async def test_timeout_explains_an_exhausted_pool() -> None:
    res = AsyncResources()
    pool = res.pool(pool_size=2)
    held = [await pool.acquire(), await pool.acquire()]
    started = time.monotonic()
    with pytest.raises(PoolTimeout) as info:
        await pool.acquire(timeout=0.05)
    elapsed = time.monotonic() - started
    assert 0.04 <= elapsed < 5
    assert isinstance(info.value, TimeoutError)
    message = str(info.value)
    assert "0.05s" in message
    assert "pool_size=2" in message and "leased=2" in message and "waiting=1" in message
    assert "no factory errors" in message
    assert info.value.stats.leased == 2
    assert pool.stats().timeouts == 1
    for r in held:
        await pool.release(r)
    res.assert_settled(pool)


async def test_default_timeout_comes_from_the_pool() -> None:
    pool = AsyncResources().pool(pool_size=1, acquire_timeout=0.02)
    held = await pool.acquire()
    with pytest.raises(PoolTimeout, match=r"0\.02s"):
        await pool.acquire()
    with pytest.raises(PoolTimeout, match=r"0\.01s"):
        async with pool.lease(timeout=0.01):
            pass
    await pool.release(held)


async def test_timeout_carries_the_factory_error_it_met() -> None:
    res = AsyncResources(failures=10**6)
    pool = res.pool(pool_size=1)
    started = time.monotonic()
    with pytest.raises(
        PoolTimeout, match=r"last factory error \(\d+\.\ds ago\): ConnectionError"
    ) as info:
        await pool.acquire(timeout=0.3)
    assert time.monotonic() - started < 0.3 + 0.2
    assert isinstance(info.value.__cause__, ConnectionError)
    assert info.value.last_error is info.value.__cause__
    res.failures = 0
    async with pool.lease(timeout=5):
        pass
    res.assert_settled(pool)


async def test_a_waiter_that_times_out_names_the_last_factory_error() -> None:
    res = AsyncResources(failures=1)
    pool = res.pool(pool_size=1)
    held = await pool.acquire(timeout=5)  # the factory failed once, then worked
    with pytest.raises(PoolTimeout, match=r"last factory error .*ConnectionError") as info:
        await pool.acquire(timeout=0.01)
    assert info.value.__cause__ is None  # this caller met no factory error itself
    assert isinstance(info.value.last_error, ConnectionError)
    await pool.release(held)


async def test_timeout_bounds_a_slow_factory_and_loses_nothing() -> None:
    res = AsyncResources(delay=0.3)
    pool = res.pool(pool_size=1)
    started = time.monotonic()
    with pytest.raises(PoolTimeout, match="before the factory created one"):
        await pool.acquire(timeout=0.05)
    assert time.monotonic() - started < 0.25
    # the factory was cancelled (tasks) or finishes and joins the pool (threads)
    await async_wait_until(lambda: pool.stats().creating == 0)
    res.assert_settled(pool)
    async with pool.lease(timeout=5):
        pass
    res.assert_settled(pool)


async def test_a_short_timeout_behind_long_ones_fires_on_time() -> None:
    res = AsyncResources()
    pool = res.pool(pool_size=1)
    held = await pool.acquire()
    outcomes: list[tuple[str, float]] = []

    async def wait(name: str, timeout: float) -> None:
        started = time.monotonic()
        try:
            async with pool.lease(timeout=timeout):
                outcomes.append((name, -1.0))
        except PoolTimeout:
            outcomes.append((name, time.monotonic() - started))

    async with AsyncNursery() as nursery:
        nursery.start_soon(wait, "patient", 0.6)
        await async_wait_until(lambda: pool.stats().waiting == 1)
        nursery.start_soon(wait, "short", 0.05)  # its deadline comes before the first's
        nursery.start_soon(wait, "shorter", 0.02)
    by_name = dict(outcomes)
    assert 0.02 <= by_name["shorter"] < 0.3
    assert 0.05 <= by_name["short"] < 0.3
    assert by_name["patient"] >= 0.6
    await pool.release(held)
    res.assert_settled(pool)


@pytest.mark.parametrize("timeout", [0, 0.05])
async def test_a_short_timeout_after_a_served_long_one_fires_on_time(timeout: float) -> None:
    """A waiter served long before its deadline must not hold back a later short timeout.

    The first waiter (timeout 5 s) is served at once; a newcomer then asks
    with a short timeout, and the pool is still exhausted: it must get
    PoolTimeout after its own timeout, not at the first waiter's deadline.
    """
    res = AsyncResources()
    pool = res.pool(pool_size=1)
    resource = await pool.acquire()
    got: list[Resource] = []

    async def patient() -> None:
        got.append(await pool.acquire(timeout=5))

    async with AsyncNursery() as nursery:
        nursery.start_soon(patient)
        await async_wait_until(lambda: pool.stats().waiting == 1)
        await pool.release(resource)  # handed to `patient`, long before its deadline
        await async_wait_until(lambda: got == [resource])
        started = time.monotonic()
        with pytest.raises(PoolTimeout):
            await pool.acquire(timeout=timeout)
        elapsed = time.monotonic() - started
    assert elapsed < timeout + 1.0, f"a {timeout}s timeout took {elapsed:.2f}s"
    await pool.release(resource)
    res.assert_settled(pool)


async def test_every_timeout_in_a_random_mix_fires_on_time() -> None:
    """Waiters with mixed timeouts come and go: none times out early or much late.

    40 callers arrive at random moments over 0.3 s with timeouts from 0 to 1.5 s
    at a pool of 2 whose holders keep resources a random while.  A caller
    that times out must have waited its whole timeout and not much more (1 s
    of slack for a busy machine); one served must be served within the same
    bound.
    """
    rng = random.Random(77)
    res = AsyncResources()
    pool = res.pool(pool_size=2)
    slack = 1.0
    outcomes: list[tuple[float, str, float]] = []

    async def caller(delay: float, timeout: float, hold_for: float) -> None:
        await async_sleep(delay)
        started = time.monotonic()
        try:
            resource = await pool.acquire(timeout=timeout)
        except PoolTimeout:
            outcomes.append((timeout, "timed out", time.monotonic() - started))
            return
        outcomes.append((timeout, "served", time.monotonic() - started))
        await async_sleep(hold_for)
        await pool.release(resource)

    async with AsyncNursery() as nursery:
        for _ in range(40):
            nursery.start_soon(
                caller,
                rng.uniform(0, 0.3),
                rng.choice([0, 0.02, 0.05, 0.1, 0.3, 1.5]),
                rng.choice([0, 0.01, 0.05, 0.2]),
            )
    assert len(outcomes) == 40
    late = [o for o in outcomes if o[2] > o[0] + slack]
    early = [o for o in outcomes if o[1] == "timed out" and o[2] < o[0]]
    assert late == [] and early == [], (late, early)
    assert {kind for _, kind, _ in outcomes} == {"served", "timed out"}
    res.assert_settled(pool)


async def test_waiters_that_time_out_leave_the_line() -> None:
    res = AsyncResources()
    pool = res.pool(pool_size=1)
    held = await pool.acquire()

    async def impatient() -> None:
        with pytest.raises(PoolTimeout):
            await pool.acquire(timeout=0.01)

    async with AsyncNursery() as nursery:
        for _ in range(50):
            nursery.start_soon(impatient)
    assert pool.stats().waiting == 0
    assert pool.stats().timeouts == 50
    await pool.release(held)
    assert pool.stats().idle == 1
    res.assert_settled(pool)


# -- factory errors ------------------------------------------------------------


async def test_a_failing_factory_is_retried_with_backoff_until_it_works() -> None:
    res = AsyncResources(failures=3)
    pool = res.pool(pool_size=2)
    started = time.monotonic()
    a = await pool.acquire(timeout=5)
    # three pauses of at least half of 0.05, 0.1 and 0.2 seconds: never a busy loop
    assert time.monotonic() - started >= (0.05 + 0.1 + 0.2) / 2 - 0.01
    assert pool.stats().create_errors == 3
    b = await pool.acquire(timeout=1)
    await pool.release(a)
    await pool.release(b)
    res.assert_settled(pool)
    assert pool.stats().size == 2


async def test_a_failed_creation_hands_its_slot_to_the_next_waiter() -> None:
    res = AsyncResources()
    pool = res.pool(pool_size=1, pool_recycle=0.05)
    held = await pool.acquire()
    results: list[object] = []

    async def waiter() -> None:
        resource = await pool.acquire(timeout=10)
        results.append(resource)
        await pool.release(resource)

    async with AsyncNursery() as nursery:
        nursery.start_soon(waiter)
        await async_wait_until(lambda: pool.stats().waiting == 1)
        await async_sleep(0.06)
        res.failures = 1
        await pool.release(held)  # expired: closed, its slot goes to the waiter
    assert held.closed
    assert results == [res.created[-1]]  # the waiter's factory call failed once, then worked
    assert pool.stats().create_errors == 1
    res.assert_settled(pool)


# -- prefill -------------------------------------------------------------------


async def test_prefill_fills_to_count_and_leaves_the_rest_acquirable() -> None:
    res = AsyncResources()
    pool = res.pool(pool_size=10)
    assert await pool.prefill(3) == 3
    assert pool.stats().idle == 3
    held = [await pool.acquire(timeout=1) for _ in range(10)]
    assert len({id(r) for r in held}) == 10
    for r in held:
        await pool.release(r)
    res.assert_settled(pool)


async def test_prefill_zero_default_and_cap() -> None:
    res = AsyncResources()
    pool = res.pool(pool_size=4)
    assert await pool.prefill(0) == 0
    assert pool.stats().size == 0
    assert await pool.prefill() == 4
    assert await pool.prefill(100) == 0
    assert pool.stats().idle == 4
    fresh = res.pool(pool_size=4)
    assert await fresh.prefill(100) == 4


async def test_prefill_counts_what_is_already_idle() -> None:
    res = AsyncResources()
    pool = res.pool(pool_size=5)
    held = await pool.acquire()
    await pool.release(held)
    assert await pool.prefill(3) == 2
    assert pool.stats().idle == 3


async def test_prefill_factory_error_keeps_what_was_made() -> None:
    res = AsyncResources()
    pool = res.pool(pool_size=5)
    await pool.prefill(2)
    res.failures = 10**6
    with pytest.raises(PoolTimeout) as info:
        await pool.prefill(timeout=0.1)
    assert isinstance(info.value.__cause__, ConnectionError)
    assert pool.stats().idle == 2
    res.failures = 0
    res.assert_settled(pool)


# -- recycling -------------------------------------------------------------------


async def test_expired_resources_are_closed_on_acquire() -> None:
    res = AsyncResources()
    pool = res.pool(pool_size=2, pool_recycle=0.05)
    old = await pool.acquire()
    await pool.release(old)
    await async_sleep(0.06)
    fresh = await pool.acquire()
    assert fresh is not old and old.closed
    await pool.release(fresh)
    res.assert_settled(pool)


async def test_expired_resources_are_closed_on_release() -> None:
    res = AsyncResources()
    pool = res.pool(pool_size=2, pool_recycle=0.05)
    old = await pool.acquire()
    await async_sleep(0.06)
    await pool.release(old)
    assert old.closed
    assert pool.stats().size == 0
    res.assert_settled(pool)


@pytest.mark.parametrize("disabled", [None, 0])
async def test_recycle_can_be_turned_off(disabled: float | None) -> None:
    res = AsyncResources()
    pool = res.pool(pool_size=1, pool_recycle=disabled)
    first = await pool.acquire()
    await pool.release(first)
    await async_sleep(0.01)
    assert await pool.acquire() is first
    await pool.release(first)
    assert await pool.recycle() == 0


async def test_recycle_closes_only_expired_idle_resources() -> None:
    res = AsyncResources()
    pool = res.pool(pool_size=3, pool_recycle=0.5)
    await pool.prefill(1)
    await async_sleep(0.3)
    old, young = await pool.acquire(), await pool.acquire()  # old from t=0, young made now
    await pool.release(old)
    await pool.release(young)
    await async_sleep(0.25)  # old is past 0.5s, young is not
    assert await pool.recycle() == 1
    assert old.closed and not young.closed
    assert pool.stats().idle == 1
    res.assert_settled(pool)


async def test_forced_recycle_retires_everything() -> None:
    res = AsyncResources()
    pool = res.pool(pool_size=3)
    await pool.prefill(2)
    leased = await pool.acquire()
    assert await pool.recycle(force=True) == 1
    assert pool.stats().idle == 0
    await pool.release(leased)  # retired: closed now
    assert leased.closed
    assert len(res.closed) == 2
    fresh = await pool.acquire()
    assert not fresh.closed and fresh is not leased
    await pool.release(fresh)
    res.assert_settled(pool)


async def test_releaser_errors_outside_dispose_are_logged_and_counted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    res = AsyncResources(close_fails=True)
    pool = res.pool(pool_size=1, pool_recycle=0.02)
    old = await pool.acquire()
    await async_sleep(0.03)
    with caplog.at_level(logging.WARNING, logger="respool"):
        await pool.release(old)  # does not raise
    assert "releaser failed to close Resource(0)" in caplog.text
    assert pool.stats().close_errors == 1
    fresh = await pool.acquire(timeout=1)  # the slot was not lost
    assert fresh is not old
    await pool.release(fresh)
    res.assert_settled(pool)


# -- dispose ---------------------------------------------------------------------


async def test_dispose_closes_idle_and_refuses_later_acquires() -> None:
    res = AsyncResources()
    pool = res.pool(pool_size=3)
    await pool.prefill(3)
    leased = await pool.acquire()
    await pool.dispose()
    assert len(res.closed) == 2 and not leased.closed
    with pytest.raises(PoolClosed, match="disposed"):
        await pool.acquire()
    with pytest.raises(PoolClosed):
        await pool.prefill()
    await pool.release(leased)  # closed, without error
    assert leased.closed
    await pool.dispose()  # idempotent
    res.assert_settled(pool)
    assert pool.stats().size == 0


async def test_dispose_wakes_every_waiter_with_pool_closed() -> None:
    res = AsyncResources()
    pool = res.pool(pool_size=1)
    held = await pool.acquire()
    outcomes: list[BaseException] = []

    async def waiter() -> None:
        try:
            await pool.acquire(timeout=30)
        except PoolClosed as exc:
            outcomes.append(exc)

    started = time.monotonic()
    async with AsyncNursery() as nursery:
        for _ in range(5):
            nursery.start_soon(waiter)
        await async_wait_until(lambda: pool.stats().waiting == 5)
        await pool.dispose()
    assert len(outcomes) == 5
    assert time.monotonic() - started < 10
    await pool.release(held)
    res.assert_settled(pool)


async def test_dispose_tries_every_releaser_and_logs_each_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    res = AsyncResources(close_fails=True)
    pool = res.pool(pool_size=3)
    await pool.prefill(3)
    with caplog.at_level(logging.WARNING, logger="respool"):
        await pool.dispose()  # returns: shutting down should not fail on a close error
    # (a releaser an earlier test left running in a thread may log meanwhile)
    records = [r for r in caplog.records if ": dispose:" in r.getMessage()]
    assert len(records) == 3
    assert {r.levelno for r in records} == {logging.WARNING}
    assert {r.pool for r in records} == {f"{type(pool).__name__}({type(res).__name__}.factory)"}
    assert sorted(r.getMessage().split(": ", 1)[1] for r in records) == [
        f"dispose: the releaser failed to close Resource({n})" for n in range(3)
    ]
    assert all(r.exc_info is not None and isinstance(r.exc_info[1], OSError) for r in records)
    assert all("Traceback" in r.exc_text for r in records if r.exc_text is not None)
    assert pool.closed
    assert len(res.closed) == 3
    assert pool.stats().close_errors == 3
    res.assert_settled(pool)


async def test_dispose_raise_errors_raises_them_together(
    caplog: pytest.LogCaptureFixture,
) -> None:
    res = AsyncResources(close_fails=True)
    pool = res.pool(pool_size=3)
    await pool.prefill(3)
    with caplog.at_level(logging.WARNING, logger="respool"):
        with pytest.raises(ExceptionGroup, match="3 of 3 idle resources") as info:
            await pool.dispose(raise_errors=True)
    assert [r for r in caplog.records if "dispose" in r.getMessage()] == []  # raised, not logged
    assert len(info.value.exceptions) == 3
    assert len(res.closed) == 3
    assert pool.stats().close_errors == 3
    res.assert_settled(pool)


async def test_dispose_logs_releaser_errors_and_returns(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Issue 9, the smaller ones: ``dispose()`` logs each releaser error with its traceback
    (WARNING) and returns; ``dispose(raise_errors=True)`` raises the ExceptionGroup."""
    res = AsyncResources(close_fails=True)
    pool = res.pool(pool_size=2)
    await pool.prefill()
    with caplog.at_level(logging.WARNING, logger="respool"):
        await pool.dispose()
    assert pool.closed and len(res.closed) == 2
    failed = [r for r in caplog.records if r.name == "respool" and r.levelno >= logging.WARNING]
    assert failed, "dispose() logged nothing"
    assert all(r.exc_info is not None for r in failed)  # with the traceback
    assert {"Resource(0)", "Resource(1)"} <= {
        m for r in failed for m in re.findall(r"Resource\(\d\)", r.getMessage())
    }
    assert pool.stats().close_errors == 2

    res = AsyncResources(close_fails=True)
    pool = res.pool(pool_size=2)
    await pool.prefill()
    with pytest.raises(ExceptionGroup) as info:
        await pool.dispose(raise_errors=True)
    assert len(info.value.exceptions) == 2
    assert all(isinstance(e, OSError) for e in info.value.exceptions)
    assert pool.closed


# -- a storm of everything -----------------------------------------------------------


async def test_storm_of_timeouts_failures_and_expiry_loses_nothing() -> None:
    rng = random.Random(77)
    res = AsyncResources(delay=0.001)
    pool = res.pool(pool_size=4, pool_recycle=0.02)

    async def worker(seed: int) -> None:
        local = random.Random(seed)
        for _ in range(15):
            if local.random() < 0.1:
                res.failures = 1
            try:
                await hold(
                    pool, local.choice([0, 0.001, 0.003]), timeout=local.choice([0, 0.002, 1])
                )
            except (PoolTimeout, ConnectionError):
                pass

    async with AsyncNursery() as nursery:
        for _ in range(16):
            nursery.start_soon(worker, rng.randrange(1 << 30))
    await async_wait_until(lambda: pool.stats().creating == 0)
    res.assert_settled(pool)
    stats = pool.stats()
    assert stats.acquired > 0
    res.failures = 0  # a fault armed by the last worker must not fail the final check
    async with pool.lease(timeout=5):
        pass
    await pool.dispose()
    res.assert_settled(pool)
    assert pool.stats().size == 0


async def test_timeout_zero_takes_only_an_idle_resource() -> None:
    res = AsyncResources()
    pool = res.pool(pool_size=2)
    with pytest.raises(PoolTimeout, match="before the factory created one"):
        await pool.acquire(timeout=0)
    assert res.created == []  # the factory was never called
    await pool.prefill(1)
    resource = await pool.acquire(timeout=0)
    await pool.release(resource)
    res.assert_settled(pool)


async def test_timeout_zero_meeting_a_stale_idle_resource_still_closes_it_properly(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Item 9: the releaser of a stale idle resource met by ``acquire(timeout=0)`` runs to
    completion, and no close error is logged or counted."""
    res = AsyncResources()
    finished: list[Resource] = []

    async def slow_releaser(resource: Resource) -> None:
        await async_sleep(0.05)  # a goodbye to the server: one round trip
        await res.releaser(resource)
        finished.append(resource)

    pool = AsyncPool(res.factory, slow_releaser, pool_size=1, pool_recycle=0.05)
    stale = await pool.acquire()
    await pool.release(stale)
    await async_sleep(0.1)  # now past pool_recycle
    with caplog.at_level(logging.WARNING, logger="respool"):
        try:
            got = await pool.acquire(timeout=0)
        except PoolTimeout:
            pass  # no time left to create a replacement: fine
        else:
            await pool.release(got)
        await async_wait_until(lambda: finished != [] and pool.stats().closed == 1, timeout=5)
    assert finished == [stale]
    stats = pool.stats()
    assert stats.close_errors == 0, stats
    assert stats.closed == 1, stats
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == []
    async with pool.lease(timeout=5) as fresh:
        assert fresh is not stale


async def test_ages_ignore_the_wall_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    res = AsyncResources()
    pool = res.pool(pool_size=1, pool_recycle=60)
    resource = await pool.acquire()
    await pool.release(resource)
    monkeypatch.setattr(time, "time", lambda: 1e12)  # the wall clock jumps far ahead
    assert await pool.acquire(timeout=1) is resource  # not taken for expired
    await pool.release(resource)
    assert await pool.recycle() == 0


async def test_a_resource_retired_while_being_made_by_prefill_is_not_pooled() -> None:
    res = AsyncResources()
    calls = 0

    async def factory() -> Resource:
        nonlocal calls
        calls += 1
        if calls == 1:
            await pool.recycle(force=True)  # retired while it is being made
        return await res.factory()

    pool = AsyncPool(factory, res.releaser, pool_size=2)
    assert await pool.prefill(1) == 1  # counts only what it kept
    # the retired one was closed, not pooled, so prefill made another
    assert len(res.closed) == 1
    assert len(res.created) == 2
    assert pool.stats().idle == 1
    res.assert_settled(pool)


class Introspective(Resource):
    """A resource whose repr reads the pool: repr must never run under the pool's lock."""

    pool: AsyncPool[Resource] | None = None

    def __repr__(self) -> str:
        assert self.pool is not None
        return f"<Introspective {self.pool.stats()}>"


class IntrospectiveError(ConnectionError):
    pool: AsyncPool[Resource] | None = None

    def __repr__(self) -> str:
        assert self.pool is not None
        return f"IntrospectiveError({self.pool.stats()})"


async def test_user_reprs_run_outside_the_pool_lock() -> None:
    """A repr that reads pool.stats() would deadlock if called under the lock."""
    error = IntrospectiveError()
    made = 0

    async def factory() -> Resource:
        nonlocal made
        made += 1
        if made == 2:
            raise error
        return Introspective(made)

    pool = AsyncPool(factory, None, pool_size=2)
    Introspective.pool = error.pool = pool
    resource = await pool.acquire()
    await pool.release(resource)
    with pytest.raises(PoolError, match=r"release\(<Introspectiv"):
        await pool.release(resource)  # double release: the message shows the repr
    held = await pool.acquire()
    other = await pool.acquire()  # the factory fails once, then works on the retry
    assert pool.stats().create_errors == 1
    with pytest.raises(PoolError):
        await pool.release(Introspective(99))
    with pytest.raises(PoolTimeout, match=r"last factory error .*IntrospectiveError\(pool_size"):
        await pool.acquire(timeout=0.01)
    await pool.release(held)
    await pool.release(other)


class Described(Resource):
    """A resource whose repr is whatever the test says, or raises."""

    def __init__(self, number: int, text: str | None) -> None:
        super().__init__(number)
        self.text = text

    def __repr__(self) -> str:
        if self.text is None:
            raise RuntimeError("no repr today")
        return self.text


async def test_log_lines_and_errors_show_the_full_repr_cut_at_300_characters(
    caplog: pytest.LogCaptureFixture,
) -> None:
    medium = "Conn(" + "dsn='postgresql://db.example.com/app', " * 4 + "id=7)"  # ~170 characters
    huge = "Conn(" + "x" * 1000 + ")"
    texts = iter([medium, huge])

    async def factory() -> Resource:
        return Described(0, next(texts))

    async def failing_releaser(resource: Resource) -> None:
        raise OSError("could not close")

    pool = AsyncPool(factory, failing_releaser, pool_size=2)
    first, second = await pool.acquire(), await pool.acquire()
    with caplog.at_level(logging.WARNING, logger="respool"):
        await pool.discard(first)
        await pool.discard(second)
    messages = [  # each line names its pool first
        r.getMessage().split(": ", 1)[1] for r in caplog.records if "Conn(" in r.getMessage()
    ]
    assert messages[0] == f"releaser failed to close {medium}"
    assert messages[1] == f"releaser failed to close {huge[:297]}..."
    with pytest.raises(PoolError) as info:
        await pool.release(Described(9, medium))
    assert f"release({medium})" in str(info.value)


class LongRepr(Resource):
    """A resource with a long repr, as a driver's connection object has."""

    def __init__(self, number: int, length: int) -> None:
        super().__init__(number)
        self.length = length

    def __repr__(self) -> str:
        return f"<Connection {self.number} to " + "db.example.com/" * self.length + ">"


@pytest.mark.parametrize("length", [10, 1000])
async def test_log_lines_show_a_resources_full_repr(
    caplog: pytest.LogCaptureFixture, length: int
) -> None:
    """Issue 9, the smaller ones: a resource's repr in a log line is cut at a few hundred
    characters, not ~30 (160 characters appear whole; 15,000 are cut)."""
    made: list[LongRepr] = []

    async def factory() -> LongRepr:
        made.append(LongRepr(len(made), length))
        return made[-1]

    async def refuse(resource: LongRepr) -> bool:
        return False

    pool = AsyncPool(factory, None, pool_size=1, check=refuse, check_interval=0)
    first = await pool.acquire()
    await pool.release(first)
    with caplog.at_level(logging.WARNING, logger="respool"):
        second = await pool.acquire(timeout=5)  # the check refuses `first`: logged
    await pool.release(second)
    messages = [r.getMessage() for r in caplog.records if r.name == "respool"]
    assert len(messages) == 1, messages
    if length == 10:
        assert len(repr(first)) > 150
        assert repr(first) in messages[0], messages[0]
    else:
        assert len(repr(first)) > 10_000
        assert repr(first)[:200] in messages[0], messages[0][:300]
        assert len(messages[0]) < 5_000


async def test_a_repr_that_raises_never_breaks_the_pool(caplog: pytest.LogCaptureFixture) -> None:
    class Unprintable(ConnectionError):
        def __repr__(self) -> str:
            raise RuntimeError("no repr today")

    calls = 0

    async def factory() -> Resource:
        nonlocal calls
        calls += 1
        if calls > 1:
            raise Unprintable()
        return Described(calls, None)

    async def failing_releaser(resource: Resource) -> None:
        raise OSError("could not close")

    pool = AsyncPool(factory, failing_releaser, pool_size=2, max_backoff=10)
    resource = await pool.acquire()
    with pytest.raises(PoolTimeout, match=r"last factory error .*: <unprintable Unprintable>"):
        await pool.acquire(timeout=0.05)  # the factory keeps failing
    with pytest.raises(PoolError, match=r"release\(<unprintable Described>\)"):
        await pool.release(Described(9, None))
    with caplog.at_level(logging.WARNING, logger="respool"):
        await pool.discard(resource)
    assert "releaser failed to close <unprintable Described>" in caplog.text
    # A retry started just before the timeout may still be failing in the background.
    await async_wait_until(lambda: pool.stats().creating == 0, timeout=10)
    stats = pool.stats()
    assert (stats.size, stats.leased, stats.creating) == (0, 0, 0)


async def test_a_caller_replacing_a_stale_resource_keeps_its_place() -> None:
    res = AsyncResources()

    async def slow_releaser(resource: Resource) -> None:
        await async_sleep(0.1)
        await res.releaser(resource)

    pool = AsyncPool(res.factory, slow_releaser, pool_size=1, pool_recycle=0.01)
    await pool.prefill()
    await async_sleep(0.02)  # the only resource is now expired
    order: list[str] = []

    async def user(name: str) -> None:
        async with pool.lease(timeout=10):
            order.append(name)
            await async_sleep(0.02)

    async with AsyncNursery() as nursery:
        nursery.start_soon(user, "first")
        await async_wait_until(lambda: pool.stats().idle == 0)  # first is closing it
        nursery.start_soon(user, "second")
        await async_wait_until(lambda: pool.stats().waiting == 1)
    assert order == ["first", "second"]
    res.assert_settled(pool)


@pytest.mark.parametrize(("pool_timeout", "call_timeout"), [(None, None), (0.01, math.inf)])
async def test_no_deadline_waits_as_long_as_it_takes(
    pool_timeout: float | None, call_timeout: float | None
) -> None:
    res = AsyncResources()
    pool = res.pool(pool_size=1, acquire_timeout=pool_timeout)
    held = await pool.acquire()
    got: list[Resource] = []

    async def patient() -> None:
        got.append(await pool.acquire(call_timeout))

    async with AsyncNursery() as nursery:
        nursery.start_soon(patient)
        await async_wait_until(lambda: pool.stats().waiting == 1)
        await async_sleep(0.05)  # well past the pool's 0.01s default
        assert pool.stats().waiting == 1
        await pool.release(held)
    assert got == [held]
    assert pool.stats().timeouts == 0
