"""Health checks, reset, discard, outages, leaks: both faces (tests/_sync is generated).

"Item N" in a docstring is item N of issue 9 (trust in the field).
"""

from __future__ import annotations

import logging
import re
import time

import pytest

from respool import AsyncPool, PoolError, PoolTimeout

from ..concurrency import AsyncNursery, async_sleep, async_wait_until
from .resources import AsyncResources, Resource

pytestmark = pytest.mark.anyio


class Health:
    """A check and a reset whose verdicts the test sets per resource."""

    def __init__(self) -> None:
        self.broken: set[int] = set()  # resource numbers the check rejects
        self.raising: set[int] = set()  # resource numbers the check raises on
        self.checked: list[int] = []
        self.reset_fails: set[int] = set()
        self.resets: list[int] = []

    async def check(self, resource: Resource) -> bool:
        self.checked.append(resource.number)
        if resource.number in self.raising:
            raise ConnectionResetError("server closed the connection")
        return resource.number not in self.broken

    async def reset(self, resource: Resource) -> None:
        self.resets.append(resource.number)
        if resource.number in self.reset_fails:
            raise ConnectionAbortedError("rollback failed")


# -- check -----------------------------------------------------------------------


async def test_check_runs_only_on_resources_idle_past_check_interval() -> None:
    res, health = AsyncResources(), Health()
    pool = res.pool(pool_size=2, check=health.check, check_interval=0.05)
    first = await pool.acquire()
    await pool.release(first)
    assert await pool.acquire() is first  # used just now: no check
    await pool.release(first)
    assert health.checked == []
    await async_sleep(0.06)
    assert await pool.acquire() is first
    assert health.checked == [first.number]
    await pool.release(first)
    res.assert_settled(pool)


async def test_a_failed_check_closes_the_resource_and_hands_out_another() -> None:
    res, health = AsyncResources(), Health()
    pool = res.pool(pool_size=3, check=health.check, check_interval=0)
    a, b = await pool.acquire(), await pool.acquire()
    await pool.release(b)
    await pool.release(a)  # LIFO: a is offered first
    health.broken.add(a.number)
    health.raising.add(b.number)
    got = await pool.acquire(timeout=5)
    assert a.closed and b.closed  # both rejected, in order, inside one acquire
    assert got is res.created[-1] and got not in (a, b)
    assert pool.stats().broken == 2
    await pool.release(got)
    res.assert_settled(pool)


async def test_a_failed_check_keeps_the_callers_place_and_slot() -> None:
    res, health = AsyncResources(), Health()
    pool = res.pool(pool_size=1, check=health.check, check_interval=0)
    only = await pool.acquire()
    await pool.release(only)
    health.broken.add(only.number)
    replacement = await pool.acquire(timeout=5)
    assert only.closed and replacement is not only
    assert pool.stats().size == 1
    await pool.release(replacement)
    res.assert_settled(pool)


async def test_check_is_bounded_by_the_acquire_timeout() -> None:
    res = AsyncResources()

    async def hanging_check(resource: Resource) -> bool:
        await async_sleep(1)
        return True

    pool = res.pool(pool_size=1, check=hanging_check, check_interval=0)
    resource = await pool.acquire()
    await pool.release(resource)
    started = time.monotonic()
    with pytest.raises(PoolTimeout, match="checking an idle resource"):
        await pool.acquire(timeout=0.1)
    assert time.monotonic() - started < 2
    # cut short mid-check, the resource is not trusted: closed once (now, or when the
    # check's thread ends), its slot freed either way
    await async_wait_until(lambda: pool.stats().size == 0, timeout=10)
    assert resource.closed
    res.assert_settled(pool)


async def test_with_no_time_left_to_check_the_resource_goes_back_untouched() -> None:
    res, health = AsyncResources(), Health()
    pool = res.pool(pool_size=1, check=health.check, check_interval=0)
    resource = await pool.acquire()
    await pool.release(resource)
    with pytest.raises(PoolTimeout, match="before an idle resource could be checked"):
        await pool.acquire(timeout=0)
    assert health.checked == [] and not resource.closed
    assert pool.stats().idle == 1
    assert await pool.acquire(timeout=1) is resource
    await pool.release(resource)
    res.assert_settled(pool)


# -- reset -------------------------------------------------------------------------


async def test_reset_runs_on_release_and_a_failing_one_closes_the_resource() -> None:
    res, health = AsyncResources(), Health()
    pool = res.pool(pool_size=2, reset=health.reset)
    a, b = await pool.acquire(), await pool.acquire()
    health.reset_fails.add(b.number)
    await pool.release(a)
    await pool.release(b)
    assert health.resets == [a.number, b.number]
    assert not a.closed and b.closed
    assert pool.stats().idle == 1 and pool.stats().broken == 1
    res.assert_settled(pool)


async def test_a_release_while_reset_runs_is_a_double_release() -> None:
    res = AsyncResources()
    started: list[Resource] = []

    async def slow_reset(resource: Resource) -> None:
        started.append(resource)
        await async_sleep(0.1)

    pool = res.pool(pool_size=1, reset=slow_reset)
    resource = await pool.acquire()
    async with AsyncNursery() as nursery:
        nursery.start_soon(pool.release, resource)
        await async_wait_until(lambda: started == [resource])
        with pytest.raises(PoolError, match="released twice"):
            await pool.release(resource)
    assert pool.stats().idle == 1
    res.assert_settled(pool)


async def test_cleanup_timeout_bounds_reset_and_releaser() -> None:
    res = AsyncResources()

    async def hanging(resource: Resource) -> None:
        await async_sleep(1)

    pool = AsyncPool(res.factory, hanging, pool_size=1, reset=hanging, cleanup_timeout=0.05)
    resource = await pool.acquire()
    started = time.monotonic()
    await pool.release(resource)  # the reset overruns, then the releaser does
    assert time.monotonic() - started < 2
    await async_wait_until(lambda: pool.stats().size == 0, timeout=15)
    stats = pool.stats()
    assert stats.broken == 1 and stats.closed == 1 and stats.close_errors == 1
    async with pool.lease(timeout=1) as again:
        assert again is not resource


# -- discard -------------------------------------------------------------------------


async def test_discard_closes_at_once_and_wakes_a_waiter() -> None:
    res = AsyncResources()
    pool = res.pool(pool_size=1)
    broken = await pool.acquire()
    got: list[Resource] = []

    async def waiter() -> None:
        async with pool.lease(timeout=5) as resource:
            got.append(resource)

    async with AsyncNursery() as nursery:
        nursery.start_soon(waiter)
        await async_wait_until(lambda: pool.stats().waiting == 1)
        await pool.discard(broken)
    assert broken.closed
    assert len(got) == 1 and got[0] is not broken
    assert pool.stats().broken == 1
    with pytest.raises(PoolError, match=r"discard\(Resource"):
        await pool.discard(broken)
    res.assert_settled(pool)


async def test_discard_inside_a_lease_leaves_nothing_to_release() -> None:
    res = AsyncResources()
    pool = res.pool(pool_size=1)
    async with pool.lease(timeout=1) as resource:
        await pool.discard(resource)
    assert resource.closed
    assert pool.stats().broken == 1
    res.assert_settled(pool)


async def test_a_reset_returning_false_closes_the_resource_quietly(
    caplog: pytest.LogCaptureFixture,
) -> None:
    res = AsyncResources()

    async def refuse(resource: Resource) -> bool:
        return False

    pool = res.pool(pool_size=1, reset=refuse)
    with caplog.at_level(logging.DEBUG, logger="respool"):
        async with pool.lease(timeout=1) as resource:
            pass
    assert resource.closed and pool.stats().broken == 1
    assert [r for r in caplog.records if r.levelno > logging.DEBUG] == []  # only "closed"
    res.assert_settled(pool)


# -- outages -------------------------------------------------------------------------


async def test_an_outage_ends_every_acquire_in_time_and_the_pool_recovers() -> None:
    res = AsyncResources(failures=10**6)
    pool = res.pool(pool_size=3, max_backoff=0.2)
    calls_before = pool.stats().create_errors
    served: list[float] = []
    timeouts: list[PoolTimeout] = []

    async def caller(timeout: float) -> None:
        try:
            async with pool.lease(timeout=timeout):
                served.append(time.monotonic())
        except PoolTimeout as exc:
            timeouts.append(exc)

    down_until = time.monotonic() + 0.6
    async with AsyncNursery() as nursery:
        for _ in range(3):
            nursery.start_soon(caller, 0.2)  # give up during the outage
        for _ in range(5):
            nursery.start_soon(caller, 10)  # outlast it
        await async_sleep(max(0.0, down_until - time.monotonic()))
        res.failures = 0
    back = down_until
    assert len(served) == 5
    assert min(served) >= back
    assert max(served) <= back + 0.2 + 1.0  # one backoff pause, and a generous margin
    errors = pool.stats().create_errors - calls_before
    assert 3 <= errors <= 3 * (0.6 / 0.05 + 5)  # retried, but never in a busy loop
    assert len(timeouts) == pool.stats().timeouts == 3
    assert all(isinstance(exc.__cause__, ConnectionError) for exc in timeouts)
    # a factory call whose caller was served meanwhile may still be finishing
    await async_wait_until(lambda: pool.stats().creating == 0, timeout=5)
    res.assert_settled(pool)


# -- leaks -----------------------------------------------------------------------------


async def test_leak_timeout_logs_the_acquire_site_then_the_return(
    caplog: pytest.LogCaptureFixture,
) -> None:
    res = AsyncResources()
    pool = res.pool(pool_size=2, leak_timeout=0.05)
    kept = await pool.acquire()  # the line the warning must name
    await async_sleep(0.06)
    with caplog.at_level(logging.WARNING, logger="respool"):
        other = await pool.acquire()
        await pool.release(other)
        await pool.release(kept)
    messages = [record.getMessage() for record in caplog.records]
    assert len(messages) == 2, messages
    assert "Resource(0) has been held for" in messages[0]
    assert "kept = " in messages[0] and "pool.acquire()" in messages[0]
    assert "Resource(0) came back after" in messages[1]


@pytest.mark.parametrize("reported", [False, True])
@pytest.mark.parametrize("how", ["release", "lease"])
async def test_a_resource_back_past_leak_timeout_is_always_logged_with_its_acquire_stack(
    caplog: pytest.LogCaptureFixture, how: str, reported: bool
) -> None:
    res = AsyncResources()
    pool = res.pool(pool_size=1, leak_timeout=0.05)
    with caplog.at_level(logging.WARNING, logger="respool"):
        if how == "release":
            held = await pool.acquire()  # the line the warning must name
            await async_sleep(0.07)
            if reported:
                pool.stats()  # looks at the leases: reports this one while it is held
            await pool.release(held)
        else:
            async with pool.lease():  # the line the warning must name
                await async_sleep(0.07)
                if reported:
                    pool.stats()
    # (a releaser an earlier test left running in a thread may log meanwhile)
    messages = [  # each line names its pool first
        r.getMessage().split(": ", 1)[1] for r in caplog.records if " held" in r.getMessage()
    ]
    assert len(messages) == (2 if reported else 1), messages
    back = messages[-1]
    assert back.startswith("Resource(0) came back after 0.")
    assert "held past leak_timeout=0.05s" in back
    assert ("reported as a possible leak while held" in back) is reported
    assert "in test_a_resource_back_past_leak_timeout_is_always_logged" in back  # the stack
    assert ("pool.acquire()" if how == "release" else "pool.lease()") in back


async def test_a_resource_back_within_leak_timeout_is_not_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    pool = AsyncResources().pool(pool_size=1, leak_timeout=10)
    with caplog.at_level(logging.WARNING, logger="respool"):
        async with pool.lease():
            pass
    assert [r for r in caplog.records if " held" in r.getMessage()] == []


async def grab(pool: AsyncPool[Resource]) -> Resource:
    return await pool.acquire()  # the acquire site a PoolTimeout names


async def test_a_timeout_names_the_leases_held_past_leak_timeout() -> None:
    res = AsyncResources()
    pool = res.pool(pool_size=2, leak_timeout=0.2)
    first = await grab(pool)
    await async_sleep(0.12)
    second = await pool.acquire()
    await async_sleep(0.12)  # first is past leak_timeout, second not yet
    with pytest.raises(PoolTimeout) as info:
        await pool.acquire(timeout=0.01)
    site = r"acquired at \S+test_health\.py:\d+ in grab$"
    oldest = r"the oldest for 0\.\ds"
    assert re.search(f"; 1 lease held past leak_timeout=0.2s, {oldest}, {site}", str(info.value))
    await async_sleep(0.12)  # now both are
    with pytest.raises(PoolTimeout) as info:
        await pool.acquire(timeout=0.01)
    assert re.search(f"; 2 leases held past leak_timeout=0.2s, {oldest}, {site}", str(info.value))
    await pool.release(first)
    await pool.release(second)
    res.assert_settled(pool)


# Issue 9, item 4: leaks reported where they matter.


def says_held_for(message: str, at_least: float) -> bool:
    """Whether ``message`` gives a duration of ``at_least`` seconds: "0.2s", "150 ms"."""
    for number, unit in re.findall(r"(\d+(?:\.\d+)?)\s?(ms|s)\b", message):
        if float(number) / (1000 if unit == "ms" else 1) >= at_least:
            return True
    return False


async def acquired_here_and_kept(pool: AsyncPool[Resource]) -> Resource:
    """The acquire site the leak reports must name."""
    return await pool.acquire(timeout=5)


async def test_a_release_past_leak_timeout_always_logs_holding_time_and_acquirer(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Item 4: held past ``leak_timeout`` and released with no pool call in between: the
    release logs a WARNING with the holding time and the acquiring function."""
    res = AsyncResources()
    pool = res.pool(pool_size=2, leak_timeout=0.05)
    kept = await acquired_here_and_kept(pool)
    await async_sleep(0.15)
    with caplog.at_level(logging.WARNING, logger="respool"):
        await pool.release(kept)
    messages = [r.getMessage() for r in caplog.records if r.name == "respool"]
    assert any(
        "Resource(0)" in m
        and "acquired_here_and_kept" in m
        and says_held_for(m, 0.1)  # it slept 0.15 s; leak_timeout is 0.05 s
        for m in messages
    ), messages
    res.assert_settled(pool)


async def test_a_release_past_leak_timeout_names_the_acquirer_after_a_report_too(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Item 4: also when a report was logged while it was held, the return names the
    acquiring function (and a lease's exit logs it the same way)."""
    res = AsyncResources()
    pool = res.pool(pool_size=2, leak_timeout=0.05)
    kept = await acquired_here_and_kept(pool)
    await async_sleep(0.1)
    with caplog.at_level(logging.WARNING, logger="respool"):
        pool.stats()  # looks at leases: reports the overdue one
        reported = len(caplog.records)
        await pool.release(kept)
    returned = [r.getMessage() for r in caplog.records[reported:] if r.name == "respool"]
    assert reported >= 1
    assert any("acquired_here_and_kept" in m and says_held_for(m, 0.09) for m in returned), returned
    caplog.clear()

    async def leased_here_and_kept() -> None:
        async with pool.lease(timeout=5):
            await async_sleep(0.1)

    with caplog.at_level(logging.WARNING, logger="respool"):
        await leased_here_and_kept()
    messages = [r.getMessage() for r in caplog.records if r.name == "respool"]
    assert any("leased_here_and_kept" in m for m in messages), messages
    res.assert_settled(pool)


async def hold_two_connections(pool: AsyncPool[Resource]) -> list[Resource]:
    """The acquire site the ``PoolTimeout`` message must name."""
    first = await pool.acquire(timeout=5)
    second = await pool.acquire(timeout=5)
    return [first, second]


async def test_a_pool_timeout_names_the_overdue_leases_and_their_acquire_site() -> None:
    """Item 4: two resources held past ``leak_timeout``, then ``acquire(timeout=0.2)`` times
    out: the message says how many are overdue and where the oldest was acquired."""
    res = AsyncResources()
    pool = res.pool(pool_size=2, leak_timeout=0.05)
    held = await hold_two_connections(pool)
    await async_sleep(0.1)
    with pytest.raises(PoolTimeout) as info:
        await pool.acquire(timeout=0.2)
    message = str(info.value)
    assert re.search(r"test_health\.py:\d+ in hold_two_connections", message), message
    assert re.search(r"leak|overdue|held", message), message
    assert re.search(r"\b2\b", message.replace(str(info.value.stats), "")), message  # how many
    for resource in held:
        await pool.release(resource)
    res.assert_settled(pool)


async def test_a_dropped_lease_warns_and_its_slot_is_recovered() -> None:
    numbers = iter(range(100))

    async def factory() -> Resource:  # keeps no reference to what it makes
        return Resource(next(numbers))

    pool = AsyncPool(factory, None, pool_size=1, leak_timeout=60)
    dropped = await pool.acquire()
    number = dropped.number
    with pytest.warns(ResourceWarning, match=r"garbage-collected without being released.*test_"):
        del dropped  # the last reference: CPython frees it at once
    stats = pool.stats()
    assert stats.lost == 1 and stats.leased == 0 and stats.size == 0
    async with pool.lease(timeout=1) as fresh:
        assert fresh.number != number


# -- lifetime jitter and arguments -----------------------------------------------------


async def test_pool_recycle_is_cut_by_up_to_five_percent_per_resource() -> None:
    res = AsyncResources()
    pool = res.pool(pool_size=50, pool_recycle=100)
    await pool.prefill()
    lifetimes = [e.expires_at - e.last_used for e in pool._state.alive.values()]  # never used yet
    assert all(95 <= t <= 100 for t in lifetimes), lifetimes
    assert len({round(t, 6) for t in lifetimes}) > 40  # spread, not one value


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"check": 1}, TypeError, "check must be callable"),
        ({"reset": "x"}, TypeError, "reset must be callable"),
        ({"check_interval": -1}, ValueError, "check_interval"),
        ({"leak_timeout": "1"}, TypeError, "leak_timeout"),
        ({"cleanup_timeout": -0.5}, ValueError, "cleanup_timeout"),
        ({"cleanup_timeout": 0}, ValueError, "cleanup_timeout must be > 0 seconds or None"),
        ({"check_interval": None}, TypeError, "check_interval must be a number of seconds"),
        ({"max_backoff": 0}, ValueError, "max_backoff must be > 0"),
    ],
)
async def test_bad_reliability_arguments_fail_at_construction(
    kwargs: dict[str, object], error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        AsyncResources().pool(**kwargs)


# Issue 9, item 9.


async def test_cleanup_timeout_zero_is_refused() -> None:
    """Item 9: ``cleanup_timeout=0`` would cut every reset and releaser: a ValueError."""
    with pytest.raises(ValueError, match="cleanup_timeout"):
        AsyncResources().pool(cleanup_timeout=0)
    with pytest.raises(ValueError, match="cleanup_timeout"):
        AsyncResources().pool(cleanup_timeout=0.0)
    AsyncResources().pool(cleanup_timeout=None)
    AsyncResources().pool(cleanup_timeout=0.5)
