"""Healing without user code, both faces (tests/_sync is generated from this file).

``is_closed`` on every hand-out and return, ``discard_on``, a lease whose body raised
checked on its next hand-out; creation outlives the caller who gave up; an outage is
logged once and its end too; ``fatal=`` factory errors are raised at once.  "Item N" in a
docstring is item N of issue 9 (trust in the field).  What one face alone does is in
tests/test_async_only.py and tests/test_threads.py.
"""

from __future__ import annotations

import logging
import re
import time

import pytest

from respool import AsyncPool, PoolTimeout

from ..concurrency import AsyncNursery, async_sleep, async_wait_until
from .resources import AsyncResources, Resource

pytestmark = pytest.mark.anyio


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
