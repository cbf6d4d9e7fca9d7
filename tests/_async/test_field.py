"""Issue 9, trust in the field: regression tests for both faces (tests/_sync is generated).

Each test was written from the issue's description (``issues show 9``) and the spec
of the fix, before the fix: each docstring names the issue's item it proves.
Backend-specific items are in tests/test_field_async.py and tests/test_field_threads.py.
"""

from __future__ import annotations

import logging
import re
import sys
import time

import pytest

from respool import AsyncPool, PoolClosed, PoolError, PoolTimeout

from ..concurrency import AsyncNursery, async_sleep, async_wait_until
from .resources import AsyncResources, Resource

if sys.version_info < (3, 11):
    from exceptiongroup import ExceptionGroup

pytestmark = pytest.mark.anyio


def says_held_for(message: str, at_least: float) -> bool:
    """Whether ``message`` gives a duration of ``at_least`` seconds: "0.2s", "150 ms"."""
    for number, unit in re.findall(r"(\d+(?:\.\d+)?)\s?(ms|s)\b", message):
        if float(number) / (1000 if unit == "ms" else 1) >= at_least:
            return True
    return False


class Health:
    """A check, and an ``is_closed`` predicate, whose verdicts the test sets per resource."""

    def __init__(self) -> None:
        self.dead: set[int] = set()  # resource numbers is_closed reports as closed
        self.raising: set[int] = set()  # resource numbers is_closed raises on
        self.looked_at: list[int] = []
        self.checked: list[int] = []

    def is_closed(self, resource: Resource) -> bool:
        self.looked_at.append(resource.number)
        if resource.number in self.raising:
            raise RuntimeError("cannot tell")
        return resource.number in self.dead

    async def check(self, resource: Resource) -> bool:
        self.checked.append(resource.number)
        return True


# -- item 1: healing without user code --------------------------------------------------


async def test_is_closed_on_hand_out_replaces_a_dead_idle_resource() -> None:
    """Item 1: ``is_closed`` runs on every hand-out, whatever ``check_interval`` says."""
    res, health = AsyncResources(), Health()
    pool = res.pool(pool_size=2, is_closed=health.is_closed, check_interval=3600)
    first = await pool.acquire()
    await pool.release(first)
    health.dead.add(first.number)  # killed while idle, used a moment ago
    got = await pool.acquire(timeout=5)
    assert got is not first
    assert first.closed
    assert first.number in health.looked_at
    assert pool.stats().broken == 1
    await pool.release(got)
    res.assert_settled(pool)


async def test_is_closed_raising_counts_as_dead_on_hand_out() -> None:
    """Item 1: an exception from ``is_closed`` means the resource is dead."""
    res, health = AsyncResources(), Health()
    pool = res.pool(pool_size=1, is_closed=health.is_closed)
    first = await pool.acquire()
    await pool.release(first)
    health.raising.add(first.number)
    got = await pool.acquire(timeout=5)
    assert got is not first and first.closed
    assert pool.stats().broken == 1
    await pool.release(got)
    res.assert_settled(pool)


async def test_is_closed_on_return_closes_a_dead_resource() -> None:
    """Item 1: ``is_closed`` runs on every return too: a dead one is closed, not pooled."""
    res, health = AsyncResources(), Health()
    pool = res.pool(pool_size=1, is_closed=health.is_closed)
    async with pool.lease(timeout=5) as resource:
        health.dead.add(resource.number)  # the server closed it while it was held
    assert resource.closed
    stats = pool.stats()
    assert (stats.idle, stats.size, stats.broken) == (0, 0, 1), stats
    other = await pool.acquire(timeout=5)
    health.dead.add(other.number)
    await pool.release(other)
    assert other.closed and pool.stats().broken == 2
    res.assert_settled(pool)


async def test_discard_on_makes_a_lease_discard_the_resource_and_the_error_propagates() -> None:
    """Item 1: ``discard_on`` errors raised out of a lease body discard the resource."""
    res = AsyncResources()
    pool = res.pool(pool_size=1, discard_on=(ConnectionError, EOFError))
    with pytest.raises(ConnectionResetError, match="connection is closed"):
        async with pool.lease(timeout=5) as dead:
            raise ConnectionResetError("connection is closed")
    assert dead.closed
    stats = pool.stats()
    assert (stats.size, stats.idle, stats.leased, stats.broken) == (0, 0, 0, 1), stats
    with pytest.raises(ValueError, match="a bug in the body"):  # not listed: released
        async with pool.lease(timeout=5) as kept:
            raise ValueError("a bug in the body")
    assert not kept.closed and pool.stats().idle == 1
    res.assert_settled(pool)


async def test_a_lease_whose_body_failed_is_checked_on_its_next_hand_out() -> None:
    """Item 1: a failed lease body does not count as recent use: the next hand-out
    runs ``check`` even inside ``check_interval``."""
    res, health = AsyncResources(), Health()
    pool = res.pool(pool_size=1, check=health.check, check_interval=3600)
    async with pool.lease(timeout=5) as resource:
        pass
    async with pool.lease(timeout=5):
        pass
    assert health.checked == []  # used just now, without error: trusted
    with pytest.raises(OSError, match="query failed"):
        async with pool.lease(timeout=5):
            raise OSError("query failed")
    async with pool.lease(timeout=5) as again:
        assert again is resource
    assert health.checked == [resource.number]
    async with pool.lease(timeout=5):  # that lease went fine: trusted again
        pass
    assert health.checked == [resource.number]
    res.assert_settled(pool)


# -- item 2: creation outlives its caller ---------------------------------------------------


async def test_a_factory_slower_than_the_callers_timeout_still_fills_the_pool() -> None:
    """Item 2: a caller timing out does not cancel the factory call: it finishes in the
    background (``stats().creating`` shows it) and a later caller is served from it."""
    res = AsyncResources(delay=0.2)
    pool = res.pool(pool_size=2)
    with pytest.raises(PoolTimeout):
        await pool.acquire(timeout=0.05)
    assert pool.stats().creating == 1  # still under way, for nobody in particular
    await async_wait_until(lambda: pool.stats().created == 1, timeout=10)
    stats = pool.stats()
    assert (stats.creating, stats.idle, stats.size) == (0, 1, 1), stats
    got = await pool.acquire(timeout=0)
    assert got is res.created[0]
    await pool.release(got)
    res.assert_settled(pool)


async def test_traffic_with_a_short_timeout_is_served_once_creation_catches_up() -> None:
    """Item 2: connect takes 0.2 s, callers allow 0.1 s: the first ones time out, but
    ``created`` grows and later callers are served."""
    res = AsyncResources(delay=0.2)
    pool = res.pool(pool_size=3)
    served: list[Resource] = []
    timeouts: list[PoolTimeout] = []
    stop = time.monotonic() + 1.5

    async def caller() -> None:
        while time.monotonic() < stop:
            try:
                async with pool.lease(timeout=0.1) as resource:
                    served.append(resource)
                    await async_sleep(0.01)
            except PoolTimeout as exc:
                timeouts.append(exc)

    async with AsyncNursery() as nursery:
        for _ in range(6):
            nursery.start_soon(caller)
    assert timeouts, "the first callers should have timed out"
    assert pool.stats().created >= 1
    assert len(served) >= 10, f"served {len(served)}, timed out {len(timeouts)}"
    await async_wait_until(lambda: pool.stats().creating == 0, timeout=10)
    res.assert_settled(pool)


# -- item 3: outages you can see ---------------------------------------------------------


async def test_an_outage_logs_one_warning_then_one_info_on_recovery(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Item 3: the first failure of an outage logs a WARNING with the error's repr (once,
    in a short outage); the first success after it logs INFO with its length and attempts."""
    res = AsyncResources(failures=5)
    pool = res.pool(pool_size=1, max_backoff=0.05)
    with caplog.at_level(logging.INFO, logger="respool"):
        got = await pool.acquire(timeout=10)
    await pool.release(got)
    assert pool.stats().create_errors == 5
    records = [r for r in caplog.records if r.name == "respool"]
    warnings = [r for r in records if r.levelno == logging.WARNING]
    infos = [r for r in records if r.levelno == logging.INFO]
    assert len(warnings) == 1, [r.getMessage() for r in records]
    assert repr(ConnectionError("backend down")) in warnings[0].getMessage()
    assert len(infos) == 1, [r.getMessage() for r in records]
    recovered = infos[0].getMessage()
    assert "attempt" in recovered, recovered
    assert re.search(r"(?<![.\d])[56](?![.\d])", recovered), recovered  # 5 fails (6 tries)
    assert re.search(r"\d(\.\d+)?\s?s\b", recovered), recovered  # the outage's length


@pytest.mark.parametrize("how", ["type", "tuple", "predicate"])
async def test_a_fatal_factory_error_is_raised_as_itself_at_once_and_frees_the_slot(
    how: str,
) -> None:
    """Item 3: ``fatal=`` errors end acquire, lease and prefill at once, as themselves."""

    class WrongPassword(Exception):
        pass

    calls = 0
    fail = True

    async def factory() -> Resource:
        nonlocal calls
        calls += 1
        if fail:
            raise WrongPassword("password authentication failed")
        return Resource(calls)

    fatal: object = {
        "type": WrongPassword,
        "tuple": (KeyError, WrongPassword),
        "predicate": lambda exc: isinstance(exc, WrongPassword),
    }[how]
    pool = AsyncPool(factory, None, pool_size=1, fatal=fatal)
    started = time.monotonic()
    with pytest.raises(WrongPassword):
        await pool.acquire(timeout=5)
    with pytest.raises(WrongPassword):
        async with pool.lease(timeout=5):
            pass
    with pytest.raises(WrongPassword):
        await pool.prefill(timeout=5)
    assert time.monotonic() - started < 2.5  # no retries until the timeout
    assert calls == 3
    stats = pool.stats()
    assert (stats.size, stats.creating, stats.waiting, stats.create_errors) == (0, 0, 0, 3)
    assert stats.timeouts == 0
    fail = False
    async with pool.lease(timeout=1) as resource:  # the slot was freed
        assert resource.number == 4


async def test_a_non_fatal_factory_error_is_still_retried() -> None:
    """Item 3: ``fatal=`` leaves other factory errors to the usual retries."""

    class WrongPassword(Exception):
        pass

    res = AsyncResources(failures=2)
    pool = res.pool(pool_size=1, max_backoff=0.05, fatal=WrongPassword)
    async with pool.lease(timeout=5):
        pass
    assert pool.stats().create_errors == 2
    res.assert_settled(pool)


# -- item 4: leaks reported where they matter -------------------------------------------


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
    assert re.search(r"test_field\.py:\d+ in hold_two_connections", message), message
    assert re.search(r"leak|overdue|held", message), message
    assert re.search(r"\b2\b", message.replace(str(info.value.stats), "")), message  # how many
    for resource in held:
        await pool.release(resource)
    res.assert_settled(pool)


# -- item 9: acquire(timeout=0) and cleanup_timeout=0 ----------------------------------------


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


async def test_cleanup_timeout_zero_is_refused() -> None:
    """Item 9: ``cleanup_timeout=0`` would cut every reset and releaser: a ValueError."""
    with pytest.raises(ValueError, match="cleanup_timeout"):
        AsyncResources().pool(cleanup_timeout=0)
    with pytest.raises(ValueError, match="cleanup_timeout"):
        AsyncResources().pool(cleanup_timeout=0.0)
    AsyncResources().pool(cleanup_timeout=None)
    AsyncResources().pool(cleanup_timeout=0.5)


# -- item 10: a factory returning None ----------------------------------------------------


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


# -- item 11: a caller backing off is in the line ---------------------------------------


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
    its, not a newcomer's who arrived later (no barging)."""
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


# -- the smaller ones -----------------------------------------------------------------


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


async def test_entering_a_disposed_pool_raises_pool_closed() -> None:
    """Issue 9, the smaller ones: entering a disposed pool (``with``) is ``PoolClosed``."""
    pool = AsyncResources().pool(pool_size=1)
    async with pool:
        pass
    assert pool.closed
    with pytest.raises(PoolClosed):
        async with pool:
            pytest.fail("entered a disposed pool")


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
