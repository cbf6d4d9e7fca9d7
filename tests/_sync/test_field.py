# generated from tests/_async/test_field.py by unasync_build.py: do not edit, edit the source
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

from respool import Pool, PoolClosed, PoolError, PoolTimeout

from ..concurrency import Nursery, sleep, wait_until
from .resources import Resources, Resource

if sys.version_info < (3, 11):
    from exceptiongroup import ExceptionGroup



# -- item 9: acquire(timeout=0) ----------------------------------------


def test_timeout_zero_meeting_a_stale_idle_resource_still_closes_it_properly(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Item 9: the releaser of a stale idle resource met by ``acquire(timeout=0)`` runs to
    completion, and no close error is logged or counted."""
    res = Resources()
    finished: list[Resource] = []

    def slow_releaser(resource: Resource) -> None:
        sleep(0.05)  # a goodbye to the server: one round trip
        res.releaser(resource)
        finished.append(resource)

    pool = Pool(res.factory, slow_releaser, pool_size=1, pool_recycle=0.05)
    stale = pool.acquire()
    pool.release(stale)
    sleep(0.1)  # now past pool_recycle
    with caplog.at_level(logging.WARNING, logger="respool"):
        try:
            got = pool.acquire(timeout=0)
        except PoolTimeout:
            pass  # no time left to create a replacement: fine
        else:
            pool.release(got)
        wait_until(lambda: finished != [] and pool.stats().closed == 1, timeout=5)
    assert finished == [stale]
    stats = pool.stats()
    assert stats.close_errors == 0, stats
    assert stats.closed == 1, stats
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == []
    with pool.lease(timeout=5) as fresh:
        assert fresh is not stale


# -- item 10: a factory returning None ----------------------------------------------------


@pytest.mark.parametrize("extras", ["plain", "reset", "leak_timeout"])
def test_a_factory_returning_none_is_a_pool_error_and_frees_the_slot(extras: str) -> None:
    """Item 10: ``None`` from the factory is a ``PoolError`` at once; nothing is lost."""
    made: list[Resource] = []

    def factory() -> Resource | None:
        if not made:
            made.append(Resource(0))
            return None
        made.append(Resource(len(made)))
        return made[-1]

    def reset(resource: Resource) -> None:
        pass

    kwargs: dict[str, object] = {
        "plain": {},
        "reset": {"reset": reset},
        "leak_timeout": {"leak_timeout": 60},
    }[extras]
    pool = Pool(factory, None, pool_size=1, **kwargs)  # type: ignore[arg-type]
    started = time.monotonic()
    with pytest.raises(PoolError, match="returned None") as info:
        pool.acquire(timeout=5)
    assert not isinstance(info.value, PoolTimeout)
    assert time.monotonic() - started < 2.5
    stats = pool.stats()
    assert (stats.size, stats.creating, stats.leased, stats.waiting) == (0, 0, 0, 0), stats
    with pool.lease(timeout=1) as resource:
        assert resource is made[-1]
    stats = pool.stats()
    assert (stats.size, stats.idle, stats.leased) == (1, 1, 0), stats


# -- item 11: a caller backing off is in the line ---------------------------------------


def test_a_caller_backing_off_a_failing_factory_gets_a_resource_released_meanwhile() -> None:
    """Item 11: a resource released while a caller retries a failing factory goes to it."""
    res = Resources()
    pool = res.pool(pool_size=2, max_backoff=2)
    held = pool.acquire()
    res.failures = 10**6  # the database is down from now on
    got: list[Resource] = []
    ends: list[float] = []

    def caller() -> None:
        try:
            with pool.lease(timeout=3) as resource:
                got.append(resource)
        except PoolTimeout:
            pass
        ends.append(time.monotonic())

    with Nursery() as nursery:
        nursery.start_soon(caller)
        wait_until(lambda: pool.stats().create_errors >= 2, timeout=5)
        released_at = time.monotonic()
        pool.release(held)  # healthy, and released while the caller backs off
    assert got == [held]
    assert ends[0] - released_at < 1.0  # at once, not after the caller's timeout
    assert not held.closed


def test_a_caller_backing_off_is_served_before_a_newcomer() -> None:
    """Item 11: the caller backing off came first, so a resource released meanwhile is
    its, not a newcomer's who arrived later (no barging)."""
    res = Resources()
    pool = res.pool(pool_size=2, max_backoff=2)
    held = pool.acquire()
    res.failures = 10**6
    got: dict[str, Resource] = {}
    errors: dict[str, BaseException] = {}

    def caller(name: str, timeout: float) -> None:
        try:
            got[name] = pool.acquire(timeout=timeout)
        except PoolTimeout as exc:
            errors[name] = exc

    with Nursery() as nursery:
        nursery.start_soon(caller, "first", 3)
        wait_until(lambda: pool.stats().create_errors >= 2, timeout=5)
        nursery.start_soon(caller, "newcomer", 1)
        sleep(0.05)  # the newcomer is parked by now
        pool.release(held)
    assert got.get("first") is held, (got, errors)
    assert "newcomer" not in got
    pool.release(held)


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
def test_strict_argument_types(kwargs: dict[str, object], match: str) -> None:
    """Issue 9, the smaller ones: ``lifo`` must be a bool; ``check_interval=None`` is
    refused (numbers of seconds already reject bools and strings)."""
    with pytest.raises(TypeError, match=match):
        Resources().pool(**kwargs)


def test_entering_a_disposed_pool_raises_pool_closed() -> None:
    """Issue 9, the smaller ones: entering a disposed pool (``with``) is ``PoolClosed``."""
    pool = Resources().pool(pool_size=1)
    with pool:
        pass
    assert pool.closed
    with pytest.raises(PoolClosed):
        with pool:
            pytest.fail("entered a disposed pool")


def test_dispose_logs_releaser_errors_and_returns(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Issue 9, the smaller ones: ``dispose()`` logs each releaser error with its traceback
    (WARNING) and returns; ``dispose(raise_errors=True)`` raises the ExceptionGroup."""
    res = Resources(close_fails=True)
    pool = res.pool(pool_size=2)
    pool.prefill()
    with caplog.at_level(logging.WARNING, logger="respool"):
        pool.dispose()
    assert pool.closed and len(res.closed) == 2
    failed = [r for r in caplog.records if r.name == "respool" and r.levelno >= logging.WARNING]
    assert failed, "dispose() logged nothing"
    assert all(r.exc_info is not None for r in failed)  # with the traceback
    assert {"Resource(0)", "Resource(1)"} <= {
        m for r in failed for m in re.findall(r"Resource\(\d\)", r.getMessage())
    }
    assert pool.stats().close_errors == 2

    res = Resources(close_fails=True)
    pool = res.pool(pool_size=2)
    pool.prefill()
    with pytest.raises(ExceptionGroup) as info:
        pool.dispose(raise_errors=True)
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
def test_log_lines_show_a_resources_full_repr(
    caplog: pytest.LogCaptureFixture, length: int
) -> None:
    """Issue 9, the smaller ones: a resource's repr in a log line is cut at a few hundred
    characters, not ~30 (160 characters appear whole; 15,000 are cut)."""
    made: list[LongRepr] = []

    def factory() -> LongRepr:
        made.append(LongRepr(len(made), length))
        return made[-1]

    def refuse(resource: LongRepr) -> bool:
        return False

    pool = Pool(factory, None, pool_size=1, check=refuse, check_interval=0)
    first = pool.acquire()
    pool.release(first)
    with caplog.at_level(logging.WARNING, logger="respool"):
        second = pool.acquire(timeout=5)  # the check refuses `first`: logged
    pool.release(second)
    messages = [r.getMessage() for r in caplog.records if r.name == "respool"]
    assert len(messages) == 1, messages
    if length == 10:
        assert len(repr(first)) > 150
        assert repr(first) in messages[0], messages[0]
    else:
        assert len(repr(first)) > 10_000
        assert repr(first)[:200] in messages[0], messages[0][:300]
        assert len(messages[0]) < 5_000
