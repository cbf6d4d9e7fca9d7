"""AsyncPool behaviour with no threaded counterpart: cancellation and event loops.

Also a few tests written with anyio itself, so not generated for threads: their
threaded twins, written by hand, are in tests/test_threads.py.  "Item N" in a
docstring is item N of issue 9 (trust in the field); one that opens with "Spec:"
quotes the spec of its fix.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import random
import threading
import time
import warnings
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import anyio
import pytest
import trio
import trio.testing

from respool import AsyncPool, PoolClosed, PoolError, PoolTimeout

from ._async.resources import AsyncResources, Resource, hold
from .concurrency import async_wait_until
from .loops import run_on

pytestmark = pytest.mark.anyio


class Res:
    """A resource that supports weak references (so a dropped lease is noticed)."""

    def __init__(self, number: int) -> None:
        self.number = number


class MortalRes:
    """A resource that supports weak references, and that nothing else refers to."""

    def __init__(self, number: int) -> None:
        self.number = number
        self.dead = False

    def __repr__(self) -> str:
        return f"MortalRes({self.number})"


# -- cancellation ------------------------------------------------------------------


async def test_a_lease_body_cancelled_still_returns_the_resource() -> None:
    res = AsyncResources()
    pool = res.pool(pool_size=1)
    with anyio.move_on_after(0.01) as scope:
        async with pool.lease() as resource:
            await anyio.sleep(10)
    assert scope.cancelled_caught
    assert await pool.acquire(timeout=0) is resource
    await pool.release(resource)
    res.assert_settled(pool)


async def test_cancelled_while_closing_on_release_still_closes_and_frees_the_slot() -> None:
    closing = anyio.Event()
    closed: list[Resource] = []

    async def slow_releaser(resource: Resource) -> None:
        closing.set()
        await anyio.sleep(0.05)  # shielded: the cancellation waits for this
        closed.append(resource)

    res = AsyncResources()
    pool = AsyncPool(res.factory, slow_releaser, pool_size=1)
    resource = await pool.acquire()
    await pool.recycle(force=True)  # retire it: release will close it
    async with anyio.create_task_group() as tg:

        async def releasing() -> None:
            await pool.release(resource)

        tg.start_soon(releasing)
        await closing.wait()
        tg.cancel_scope.cancel()
    assert closed == [resource]
    stats = pool.stats()
    assert (stats.size, stats.closed, stats.leased) == (0, 1, 0)


async def test_a_newcomer_may_take_a_resource_released_while_the_oldest_waiter_is_young() -> None:
    """Within the fairness window a returned resource goes idle: a caller asking before the
    waiter runs takes it (no wait, no wake-up), and the waiter, woken to look, finds
    nothing, waits on at the head of the line, and gets the next one."""
    res = AsyncResources()
    pool = res.pool(pool_size=1, fairness_window=60)
    resource = await pool.acquire()
    got: list[Resource] = []

    async def waiter() -> None:
        got.append(await pool.acquire(timeout=10))

    async with anyio.create_task_group() as tg:
        tg.start_soon(waiter)
        await async_wait_until(lambda: pool.stats().waiting == 1)
        await pool.release(resource)  # neither yields: the waiter has not run yet
        assert await pool.acquire(timeout=0) is resource  # the newcomer took it
        await async_wait_until(lambda: pool.stats().waiting == 1)  # it looked; it waits on
        assert got == []
        await pool.release(resource)
        await async_wait_until(lambda: got == [resource])
    await pool.release(resource)
    assert pool.stats().timeouts == 0
    res.assert_settled(pool)


# A reset runs unshielded up to its first suspension (a shield costs microseconds on
# asyncio), then inside a shield: these hold it to "cancellation does not interrupt it".


class Awaiting:
    """An awaitable that is not a coroutine: it runs ``coro`` through ``__await__``."""

    def __init__(self, coro: Coroutine[Any, Any, Any]) -> None:
        self.coro = coro

    def __await__(self) -> Any:
        return self.coro.__await__()


@pytest.mark.parametrize("kind", ["coroutine", "other awaitable"])
async def test_a_reset_that_suspends_finishes_although_its_releaser_is_cancelled(
    kind: str,
) -> None:
    steps: list[str] = []

    async def reset(resource: Resource) -> None:
        steps.append("began")
        for _ in range(3):
            await anyio.sleep(0.01)  # each one a point a cancellation could land on
        steps.append("ended")

    def as_given(resource: Resource) -> Any:
        return reset(resource) if kind == "coroutine" else Awaiting(reset(resource))

    res = AsyncResources()
    pool = res.pool(pool_size=1, reset=as_given)
    resource = await pool.acquire()
    with anyio.CancelScope() as scope:
        scope.cancel()  # pending before the release starts: its first await would see it
        await pool.release(resource)
        await anyio.sleep(1)  # the release did not swallow the cancellation: here it lands
    assert scope.cancelled_caught
    assert steps == ["began", "ended"]
    assert not resource.closed
    assert await pool.acquire(timeout=0) is resource  # pooled, not closed
    await pool.release(resource)
    res.assert_settled(pool)


async def test_a_reset_that_never_suspends_pools_the_resource_in_a_cancelled_scope() -> None:
    resets: list[Resource] = []

    async def reset(resource: Resource) -> None:
        resets.append(resource)

    res = AsyncResources()
    pool = res.pool(pool_size=1, reset=reset)
    resource = await pool.acquire()
    with anyio.CancelScope() as scope:
        scope.cancel()
        await pool.release(resource)  # no checkpoint: nothing here yields
    assert not scope.cancelled_caught
    assert resets == [resource] and not resource.closed
    assert pool.stats().idle == 1
    res.assert_settled(pool)


@pytest.mark.parametrize("when", ["before suspending", "after suspending"])
async def test_a_reset_that_raises_closes_its_resource_and_frees_the_slot(when: str) -> None:
    async def reset(resource: Resource) -> None:
        if when == "after suspending":
            await anyio.sleep(0.01)
        raise ConnectionAbortedError("rollback failed")

    res = AsyncResources()
    pool = res.pool(pool_size=1, reset=reset)
    resource = await pool.acquire()
    with anyio.CancelScope() as scope:
        scope.cancel()
        await pool.release(resource)
    assert resource.closed
    stats = pool.stats()
    assert (stats.broken, stats.closed, stats.size) == (1, 1, 0), stats
    async with pool.lease(timeout=1) as fresh:
        assert fresh is not resource
    res.assert_settled(pool)


async def test_a_reset_refusing_after_suspending_closes_its_resource_quietly() -> None:
    async def reset(resource: Resource) -> bool:
        await anyio.sleep(0.01)
        return False

    res = AsyncResources()
    pool = res.pool(pool_size=1, reset=reset)
    async with pool.lease() as resource:
        pass
    assert resource.closed and pool.stats().broken == 1
    res.assert_settled(pool)


def test_asyncio_task_cancel_during_a_suspended_reset_closes_the_resource() -> None:
    """asyncio's own ``Task.cancel()`` goes through shields: the reset is cut short, so its
    resource is closed as untrusted, and the slot is freed."""

    async def main() -> None:
        started = asyncio.Event()

        async def reset(resource: Resource) -> None:
            if not started.is_set():  # the first release only: it is cancelled in there
                started.set()
                await asyncio.sleep(10)

        res = AsyncResources()
        pool = res.pool(pool_size=1, reset=reset)
        resource = await pool.acquire()
        task = asyncio.ensure_future(pool.release(resource))
        await started.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert resource.closed
        stats = pool.stats()
        assert (stats.leased, stats.size, stats.broken) == (0, 0, 1), stats
        async with pool.lease(timeout=1) as fresh:
            assert fresh is not resource
        res.assert_settled(pool)

    asyncio.run(main())


@pytest.mark.parametrize("handed", ["resource", "slot"])
async def test_a_waiter_cancelled_as_it_is_served_passes_it_on(handed: str) -> None:
    res = AsyncResources()
    # with a short pool_recycle the released resource is closed and its slot handed on
    pool = res.pool(pool_size=1, pool_recycle=0.02 if handed == "slot" else None)
    resource = await pool.acquire()
    got: list[Resource] = []

    async with anyio.create_task_group() as tg:
        first_scope = anyio.CancelScope()

        async def first() -> None:
            with first_scope:
                got.append(await pool.acquire(timeout=10))

        async def second() -> None:
            got.append(await pool.acquire(timeout=10))
            await pool.release(got[-1])

        tg.start_soon(first)
        await async_wait_until(lambda: pool.stats().waiting == 1)
        tg.start_soon(second)
        await async_wait_until(lambda: pool.stats().waiting == 2)
        if handed == "slot":
            await anyio.sleep(0.03)
        # `first` is cancelled, then served before it runs again: it must pass it on
        first_scope.cancel()
        await pool.release(resource)
    assert len(got) == 1  # `second` got it
    assert (got[0] is resource) == (handed == "resource")
    assert resource.closed == (handed == "slot")
    res.assert_settled(pool)


async def test_a_double_release_is_caught_while_the_next_holder_has_not_taken_it() -> None:
    res = AsyncResources()
    pool = res.pool(pool_size=1)
    resource = await pool.acquire()
    got: list[Resource] = []

    async def waiter() -> None:
        got.append(await pool.acquire(timeout=5))

    async with anyio.create_task_group() as tg:
        tg.start_soon(waiter)
        await async_wait_until(lambda: pool.stats().waiting == 1)
        await pool.release(resource)  # handed straight to the waiter
        before = pool.stats()
        with pytest.raises(PoolError, match="released twice"):
            await pool.release(resource)
        assert pool.stats() == before
    assert got == [resource]  # the waiter holds it, and only the waiter
    with pytest.raises(PoolTimeout):
        await pool.acquire(timeout=0)
    await pool.release(resource)
    res.assert_settled(pool)


async def test_a_caller_cancelled_during_the_factory_leaves_the_call_to_finish() -> None:
    """Issue 9, item 2: creation outlives a caller who gives up; its result is pooled."""
    res = AsyncResources(delay=0.2)
    pool = res.pool(pool_size=1)
    for _ in range(3):
        with anyio.move_on_after(0.01):
            await pool.acquire(timeout=30)
    assert pool.stats().creating == 1  # the first caller's call, still running
    assert res.created == []
    async with pool.lease(timeout=1) as resource:
        assert resource is res.created[0]  # the call the first caller left
    assert len(res.created) == 1
    res.assert_settled(pool)


@pytest.mark.anyio
async def test_a_cancelled_caller_does_not_cancel_the_factory_call() -> None:
    """Item 2: a factory call whose caller is cancelled runs to completion in the
    background (``stats().creating`` counts it); its resource joins the pool."""
    res = AsyncResources(delay=0.2)
    pool = res.pool(pool_size=1)
    with anyio.move_on_after(0.05) as scope:
        await pool.acquire(timeout=30)
    assert scope.cancelled_caught
    assert pool.stats().creating == 1
    with anyio.fail_after(10):
        while pool.stats().created == 0:
            await anyio.sleep(0.01)
    stats = pool.stats()
    assert (stats.creating, stats.idle, stats.size) == (0, 1, 1), stats
    assert await pool.acquire(timeout=0) is res.created[0]


async def test_dispose_stops_a_factory_call_nobody_waits_for() -> None:
    res = AsyncResources(delay=10)
    pool = res.pool(pool_size=1)
    with anyio.move_on_after(0.01):
        await pool.acquire(timeout=30)
    assert pool.stats().creating == 1
    await pool.dispose()
    await async_wait_until(lambda: pool.stats().creating == 0)
    assert pool.stats().size == 0 and res.created == []


@pytest.mark.anyio
async def test_dispose_cancels_a_background_creation() -> None:
    """Item 2: only ``dispose()`` cancels a creation left running by its caller."""
    started = anyio.Event()
    ended: list[str] = []

    async def factory() -> MortalRes:
        started.set()
        try:
            await anyio.sleep(30)
        except BaseException:
            ended.append("cancelled")
            raise
        ended.append("finished")
        return MortalRes(0)

    pool: AsyncPool[MortalRes] = AsyncPool(factory, None, pool_size=1)
    with pytest.raises(PoolTimeout):
        await pool.acquire(timeout=0.05)
    assert pool.stats().creating == 1
    before = time.monotonic()
    await pool.dispose()
    with anyio.fail_after(5):
        while pool.stats().creating:
            await anyio.sleep(0.01)
    assert ended == ["cancelled"]
    assert time.monotonic() - before < 5


@pytest.mark.usefixtures("quiet_respool")
async def test_prefill_during_dispose_raises_pool_closed(anyio_backend: str) -> None:
    """prefill() promises ``PoolClosed: the pool was disposed``; dispose() "stops background
    factory calls".

    Observed: the prefill caller gets the *background creation's* cancellation exception
    (asyncio ``CancelledError`` "Cancelled via cancel scope ...", trio ``Cancelled``) raised
    in its own task, which then silently cancels the caller's task group (the rest of the
    body never runs, nothing is reported).  Cause: ``dispose`` clears ``creation.owner``
    only for waiters in line; prefill's watcher is not in line, so ``_run_creation`` hands it
    the cancellation as ``owner.failed``, and ``_create`` re-raises it (``_is_fatal`` is true
    for any non-Exception).
    """

    async def factory() -> MortalRes:
        await anyio.sleep(30)
        return MortalRes(1)

    pool: AsyncPool[MortalRes] = AsyncPool(factory, None, pool_size=2)
    outcome: list[BaseException | str] = []
    after_dispose = []

    async def prefill() -> None:
        try:
            await pool.prefill(timeout=10)
            outcome.append("returned")
        except BaseException as exc:  # recorded, not raised: the task group stays intact
            outcome.append(exc)

    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            tg.start_soon(prefill)
            await anyio.sleep(0.05)
            await pool.dispose()
            await anyio.sleep(0.05)
            after_dispose.append(True)
            tg.cancel_scope.cancel()
    assert len(outcome) == 1
    assert isinstance(outcome[0], PoolClosed), f"prefill raised {outcome[0]!r}"


# Its threaded twin: tests/test_threads.py, the same name ending in _threads.
async def test_dispose_ends_an_acquire_waiting_out_factory_backoff(anyio_backend: str) -> None:
    """acquire() promises PoolClosed "if the pool was disposed, before or during the wait".

    A caller retrying a failing factory keeps retrying it after dispose(), until its own
    deadline, then raises PoolTimeout (with timeout=math.inf it would never return).
    """
    calls = 0

    async def factory() -> Res:
        nonlocal calls
        calls += 1
        raise OSError("server down")

    pool: AsyncPool[Res] = AsyncPool(factory, None, pool_size=1, max_backoff=0.05)
    outcome: dict[str, Any] = {}

    async def acquirer() -> None:
        try:
            await pool.acquire(timeout=3)
        except Exception as exc:
            outcome["error"] = exc
            outcome["at"] = time.monotonic()

    async with anyio.create_task_group() as tg:
        tg.start_soon(acquirer)
        await anyio.sleep(0.3)
        assert calls > 0
        await pool.dispose()
        disposed_at, calls_at_dispose = time.monotonic(), calls

    assert isinstance(outcome["error"], PoolClosed), repr(outcome["error"])
    assert outcome["at"] - disposed_at < 0.5
    assert calls - calls_at_dispose <= 1  # the factory is not hammered after dispose


# Its threaded twin (through ``check``) is in tests/test_threads.py.
async def test_acquire_timeout_bounds_closing_a_stale_idle_resource(anyio_backend: str) -> None:
    """acquire(timeout) is "seconds for the whole call"; closing a stale idle resource
    on the way runs the releaser with no bound but cleanup_timeout (None by default), so a
    releaser stuck on a dead peer holds the acquire far past its timeout."""
    made = 0

    async def factory() -> Res:
        nonlocal made
        made += 1
        return Res(made)

    async def releaser(resource: Res) -> None:
        await anyio.sleep(3)  # a close that hangs on an unreachable server

    pool: AsyncPool[Res] = AsyncPool(factory, releaser, pool_size=1, pool_recycle=0.05)
    await pool.release(await pool.acquire())
    await anyio.sleep(0.1)  # the idle resource is now past pool_recycle

    start = time.monotonic()
    with anyio.move_on_after(10):
        try:
            await pool.release(await pool.acquire(timeout=0.2))
        except PoolTimeout:
            pass
    elapsed = time.monotonic() - start
    assert elapsed < 0.2 + 0.5, f"acquire(timeout=0.2) took {elapsed:.2f}s"


@pytest.mark.usefixtures("quiet_respool")
@pytest.mark.parametrize("timeout", [0, 0.3])
async def test_acquire_takes_a_healthy_idle_resource_past_a_dead_one(
    anyio_backend: str, timeout: float
) -> None:
    """Spec: ``is_closed`` true "means the resource is dead: it is closed ... and the caller
    gets another idle one or a new one within the same timeout"; acquire: "``0`` takes an
    idle resource that needs no check".

    Two idle resources, the first to be handed out is dead (``is_closed``), the other is
    healthy; the releaser is slow (closing a dead TCP connection).  Observed:
    ``acquire(timeout=0)`` raises ``PoolTimeout`` "while a stale or broken resource was
    closed", its message showing ``idle=1``; with ``timeout=0.3`` the caller waits the whole
    0.3 s and times out too.  Cause: ``_replace`` waits for the close to finish before it
    looks at the idle set again, instead of taking another idle resource at once.
    """
    numbers = iter(range(1, 100))

    async def factory() -> MortalRes:
        return MortalRes(next(numbers))

    async def close(resource: MortalRes) -> None:
        await anyio.sleep(1.0)

    pool: AsyncPool[MortalRes] = AsyncPool(
        factory, close, pool_size=2, is_closed=lambda r: r.dead, cleanup_timeout=5
    )
    first = await pool.acquire()
    second = await pool.acquire()
    await pool.release(second)
    await pool.release(first)  # LIFO: handed out first
    first.dead = True
    try:
        got = await pool.acquire(timeout=timeout)
    except PoolTimeout as exc:
        pytest.fail(f"timeout={timeout}: {exc}")
    assert got is second
    await pool.release(got)
    with anyio.fail_after(5):
        await pool.dispose()


async def test_cancellation_storm_loses_nothing() -> None:
    rng = random.Random(99)
    res = AsyncResources(delay=0.001)
    pool = res.pool(pool_size=3, pool_recycle=0.01)
    cancelled = 0

    async def worker(seed: int) -> None:
        nonlocal cancelled
        local = random.Random(seed)
        for _ in range(25):
            if local.random() < 0.05:
                res.failures = 1
            with anyio.move_on_after(local.choice([0, 0.0005, 0.002, 1])) as scope:
                try:
                    await hold(pool, local.choice([0, 0.001]), timeout=local.choice([0, 0.001, 1]))
                except (PoolTimeout, ConnectionError):
                    pass
            cancelled += scope.cancelled_caught

    async with anyio.create_task_group() as tg:
        for _ in range(20):
            tg.start_soon(worker, rng.randrange(1 << 30))
    assert cancelled > 0
    res.assert_settled(pool)
    res.failures = 0  # a fault armed by the last worker must not fail the final check
    async with pool.lease(timeout=5):
        pass
    await pool.dispose()
    # A close that a cancelled caller left running (a stale resource it was replacing)
    # may still be ending: dispose closes the idle ones, it does not wait for those.
    await async_wait_until(lambda: pool.stats().size == 0)
    res.assert_settled(pool)


async def test_an_async_pool_needs_async_callables() -> None:
    def not_async() -> Resource:
        return Resource(0)

    pool = AsyncPool(not_async, None, pool_size=1)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="not an awaitable"):
        await pool.acquire()
    assert pool.stats().size == 0 and pool.stats().creating == 0


def test_an_async_is_closed_is_refused_at_construction() -> None:
    """Item 1: ``is_closed`` is synchronous in both faces; an async one is a TypeError."""

    async def is_closed(resource: Resource) -> bool:
        return False

    with pytest.raises(TypeError) as info:
        AsyncResources().pool(is_closed=is_closed)
    assert "is_closed" in str(info.value)
    assert "unexpected keyword" not in str(info.value)


@pytest.mark.parametrize("how", ["discard", "release", "recycle", "dispose", "acquire"])
async def test_a_plain_releaser_raises_type_error_when_first_called_and_counts_stay_right(
    how: str,
) -> None:
    res = AsyncResources()
    closed: list[Resource] = []

    def plain_releaser(resource: Resource) -> None:  # runs, but gives nothing to await
        closed.append(resource)

    pool = AsyncPool(res.factory, plain_releaser, pool_size=2, pool_recycle=0.05)
    resource = await pool.acquire()
    if how == "release":
        await pool.recycle(force=True)  # retired: release closes it
    elif how != "discard":
        await pool.release(resource)  # idle now
        if how in ("recycle", "acquire"):
            await anyio.sleep(0.06)  # past pool_recycle: recycle() or acquire closes it
    calls = {
        "discard": lambda: pool.discard(resource),
        "release": lambda: pool.release(resource),
        "recycle": pool.recycle,
        "dispose": pool.dispose,
        "acquire": lambda: pool.acquire(timeout=1),
    }
    with pytest.raises(TypeError, match=r"^AsyncPool's releaser .*plain_releaser\(\) returned "):
        await calls[how]()
    assert closed == [resource]  # it did run
    stats = pool.stats()
    assert (stats.size, stats.closed, stats.close_errors, stats.leased) == (0, 1, 1, 0), stats
    if how != "dispose":  # the slot was freed: a plain releaser that returns an awaitable works
        pool._closer._releaser = res.releaser
        async with pool.lease(timeout=1) as fresh:
            assert fresh is not resource


@pytest.mark.anyio
async def test_a_sync_releaser_is_a_type_error_at_its_first_call() -> None:
    """Issue 9, the smaller ones: a sync releaser given to AsyncPool gets a clear TypeError
    the first time it is called, and the counts stay right."""
    res = AsyncResources()
    closed: list[Resource] = []
    pool = AsyncPool(res.factory, closed.append, pool_size=1)  # type: ignore[arg-type]
    resource = await pool.acquire()
    with pytest.raises(TypeError, match=r"releaser|async"):
        await pool.discard(resource)
    stats = pool.stats()
    assert (stats.leased, stats.waiting, stats.creating) == (0, 0, 0), stats
    assert stats.size == stats.idle, stats
    async with pool.lease(timeout=1):  # the slot was not lost
        pass


@pytest.mark.usefixtures("quiet_respool")
@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_a_plain_releaser_met_by_a_background_creation_does_not_crash_the_run(
    backend: str,
) -> None:
    """Spec: "AsyncPool given a sync releaser ... -> clear TypeError the first time it is
    called; counts stay right"; ``AsyncLoopGuard.spawn``: "fn must not raise".

    A caller times out while its factory call goes on; ``recycle(force=True)`` retires it; when
    the factory returns, the background creation closes the resource with the (plain)
    releaser.  Observed: trio's run dies with ``TrioInternalError`` (a system task raised
    ``NotAwaitableError``); on asyncio the background task ends with an exception nobody
    retrieves.  Cause: ``_run_creation`` awaits ``_close_and_free`` unguarded, and ``_close``
    re-raises ``NotAwaitableError`` (``_close_in_background`` guards the same call).
    """
    unhandled: list[object] = []

    async def main() -> int:
        if backend == "asyncio":
            asyncio.get_running_loop().set_exception_handler(
                lambda loop, context: unhandled.append(context)
            )
        closed = []

        async def factory() -> MortalRes:
            await anyio.sleep(0.1)
            return MortalRes(1)

        def close(resource: MortalRes) -> None:  # a mistake: not async
            closed.append(resource)

        pool: AsyncPool[MortalRes] = AsyncPool(factory, close, pool_size=2)  # type: ignore[arg-type]
        with pytest.raises(PoolTimeout):
            await pool.acquire(timeout=0.02)  # its factory call goes on
        await pool.recycle(force=True)  # what it makes is retired: closed when it lands
        await anyio.sleep(0.3)
        stats = pool.stats()
        assert stats.size == 0 and stats.creating == 0
        await pool.dispose()
        return len(closed)

    try:
        closed = anyio.run(main, backend=backend)
    except BaseException as exc:  # TrioInternalError
        pytest.fail(f"the run crashed: {exc!r} (cause {exc.__cause__!r})")
    import gc

    gc.collect()  # asyncio reports an unretrieved task exception when the task is collected
    assert closed == 1
    assert unhandled == [], f"unhandled in the background: {unhandled}"


async def test_a_plain_reset_raises_type_error_when_first_called_and_counts_stay_right() -> None:
    res = AsyncResources()

    def plain_reset(resource: Resource) -> None:
        pass

    pool = AsyncPool(res.factory, res.releaser, pool_size=1, reset=plain_reset)  # type: ignore[arg-type]
    resource = await pool.acquire()
    with pytest.raises(TypeError, match=r"^AsyncPool's reset .*plain_reset\(\) returned NoneType"):
        await pool.release(resource)
    assert res.closed == [resource]  # closed, not pooled
    stats = pool.stats()
    assert (stats.size, stats.leased, stats.broken, stats.closed) == (0, 0, 1, 1), stats
    pool._closer._reset = None  # no reset from now on
    pool._state.resets = False
    async with pool.lease(timeout=1) as fresh:  # the slot was freed
        assert fresh is not resource


@pytest.mark.anyio
async def test_a_sync_reset_is_a_type_error_at_its_first_call() -> None:
    """Issue 9, the smaller ones: a sync reset given to AsyncPool gets a clear TypeError the
    first time it is called (on release), and the counts stay right."""
    res = AsyncResources()

    def reset(resource: Resource) -> None:
        pass

    pool = AsyncPool(res.factory, res.releaser, pool_size=1, reset=reset)  # type: ignore[arg-type]
    resource = await pool.acquire()
    with pytest.raises(TypeError, match=r"reset|async"):
        await pool.release(resource)
    stats = pool.stats()
    assert (stats.leased, stats.waiting, stats.creating) == (0, 0, 0), stats
    assert stats.size == stats.idle == res.alive, stats


@pytest.mark.anyio
async def test_a_sync_check_is_a_type_error_at_its_first_call() -> None:
    """Issue 9, the smaller ones: a sync check given to AsyncPool gets a clear TypeError the
    first time it is called (on acquire), and the counts stay right."""
    res = AsyncResources()

    def check(resource: Resource) -> bool:
        return True

    pool = AsyncPool(
        res.factory,
        res.releaser,
        pool_size=1,
        check=check,  # type: ignore[arg-type]
        check_interval=0,
    )
    await pool.release(await pool.acquire())
    with pytest.raises(TypeError, match=r"check|async"):
        await pool.acquire()
    stats = pool.stats()
    assert (stats.leased, stats.waiting, stats.creating) == (0, 0, 0), stats
    assert stats.size == stats.idle == res.alive == 1, stats


async def test_an_async_pool_takes_plain_callables_that_return_awaitables() -> None:
    res = AsyncResources()
    pool = AsyncPool(
        lambda: res.factory(),
        lambda resource: res.releaser(resource),
        check=lambda resource: anyio.sleep(0),
        reset=lambda resource: anyio.sleep(0),
        check_interval=0,
        pool_size=1,
    )
    async with pool.lease(timeout=1):
        pass
    async with pool.lease(timeout=1):
        pass
    await pool.dispose()
    res.assert_settled(pool)
    assert len(res.closed) == 1


async def test_acquiring_an_idle_resource_does_not_yield(anyio_backend: str) -> None:
    pool = AsyncResources().pool(pool_size=1)
    await pool.prefill()
    if anyio_backend == "trio":
        with trio.testing.assert_no_checkpoints():
            resource = await pool.acquire()
            await pool.release(resource)
        return
    ran = False

    async def other() -> None:
        nonlocal ran
        ran = True

    async with anyio.create_task_group() as tg:
        tg.start_soon(other)
        resource = await pool.acquire()
        await pool.release(resource)
        assert not ran  # nothing else got to run in between


# -- a caller backing off a failing factory keeps its place in line (issue 9, item 11) -----


@pytest.mark.usefixtures("quiet_respool")
async def test_a_caller_whose_factory_just_failed_keeps_its_place_in_line(
    anyio_backend: str,
) -> None:
    """Spec: a caller "backing off after a factory error, is in the FIFO line: a resource
    released meanwhile goes to it (oldest first), never to a newcomer who arrived later".

    A (oldest) creates in the last free slot; B (newer) parks.  A's factory call fails and,
    in the same instant, a holder releases a resource.  Observed: the resource goes to B,
    the newcomer, while A goes on backing off (asyncio: every trial; trio: about half, as
    trio randomises the order of the wake-ups).  Cause: ``_run_creation`` -> ``_settle``
    takes A out of line (``_leave_line``) when its creation ends, and A only re-enters the
    line (``_create``'s ``_enqueue(front=True)``) when its task next runs; a release in
    between (``_put`` -> ``_next_waiter``) skips A.
    """
    violations = []
    for _trial in range(8):
        order = await _fifo_trial()
        if order != ["A", "B"]:
            violations.append(order)
    assert violations == [], f"a newcomer was served before the older caller: {violations}"


async def _fifo_trial() -> list[str]:
    order: list[str] = []
    release_now = anyio.Event()
    calls = 0

    async def factory() -> MortalRes:
        nonlocal calls
        calls += 1
        if calls == 1:
            return MortalRes(1)
        await anyio.sleep(0.02)
        release_now.set()  # the holder releases in the same instant as the failure
        raise OSError("connection refused")

    pool: AsyncPool[MortalRes] = AsyncPool(factory, None, pool_size=2, max_backoff=0.05)
    held = await pool.acquire()

    async def holder() -> None:
        await release_now.wait()
        await pool.release(held)

    async def caller(name: str) -> None:
        resource = await pool.acquire(timeout=2)
        order.append(name)
        await anyio.sleep(0.1)
        await pool.release(resource)

    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            tg.start_soon(holder)
            tg.start_soon(caller, "A")  # takes the free slot: its factory call fails
            await anyio.sleep(0.005)
            tg.start_soon(caller, "B")  # pool full: parks behind A
    await pool.dispose()
    return order


# -- a lease lost while the pool's lock is held still wakes the parked waiter ---------------
#
# The threaded twins are in tests/test_threads.py.


def _collect_when_parking(guard: Any) -> Callable[[], None]:
    """Make the garbage collector run inside the pool's locked section, at the allocation
    of the new waiter's event (what gc does by itself at any allocation); returns an undo."""
    original = guard.new_event

    def new_event() -> Any:
        gc.collect()
        return original()

    guard.new_event = new_event

    def undo() -> None:
        guard.new_event = original

    return undo


async def _try(call: Awaitable[Res]) -> Res | PoolTimeout:
    try:
        return await call
    except PoolTimeout as exc:
        return exc


async def test_waiter_parked_while_a_lost_lease_is_collected_gets_its_slot(
    anyio_backend: str,
) -> None:
    """_lost_one (src/respool/_async/pool.py) only queues the lost record when the lock is busy,
    "the next operation recovers the slot"; but the waiter that is parking at that moment
    is the only operation, so it waits out its whole timeout beside a free slot."""
    made = 0

    async def factory() -> Res:
        nonlocal made
        made += 1
        return Res(made)

    pool: AsyncPool[Res] = AsyncPool(factory, None, pool_size=1)
    cycle: list[Any] = [await pool.acquire()]
    cycle.append(cycle)  # the holder dropped it inside a reference cycle (a traceback, say)
    del cycle
    gc.disable()  # let the cycle be collected exactly where gc would pick, under the lock
    undo = _collect_when_parking(pool._state)
    try:
        start = time.monotonic()
        with pytest.warns(ResourceWarning, match="garbage-collected"):
            got = await _try(pool.acquire(timeout=2))
    finally:
        undo()
        gc.enable()
    if isinstance(got, PoolTimeout):
        pytest.fail(
            f"PoolTimeout after {time.monotonic() - start:.2f}s though the dropped "
            f"lease's slot was free: {got}"
        )
    resource = got
    assert resource.number == 2
    await pool.release(resource)
    assert pool.stats().lost == 1


# Issue 9, item 7: collected by the cyclic GC in another thread, a dropped lease wakes the
# waiter parked on the full pool.


@pytest.mark.parametrize("flavour", ["asyncio", "asyncio-debug", "trio"])
def test_a_lease_dropped_and_collected_in_another_thread_wakes_the_parked_waiter(
    flavour: str,
) -> None:
    """Item 7: the cyclic GC runs in another thread, frees a dropped lease and so its slot:
    the waiter parked on the full pool wakes within 2 s (its timeout is 5 s)."""
    outcome: dict[str, Any] = {}

    async def main() -> None:
        made = 0

        async def factory() -> MortalRes:
            nonlocal made
            made += 1
            return MortalRes(made)

        pool: AsyncPool[MortalRes] = AsyncPool(factory, None, pool_size=1)
        cycle: list[Any] = [await pool.acquire()]
        cycle.append(cycle)  # dropped inside a reference cycle: only the cyclic GC frees it
        del cycle

        def collect() -> None:
            time.sleep(0.2)  # the event loop is idle, the waiter parked
            outcome["collected_at"] = time.monotonic()
            gc.collect()

        async def waiter() -> None:
            try:
                resource = await pool.acquire(timeout=5)
            except PoolTimeout as exc:
                outcome["error"] = exc
            else:
                outcome["number"] = resource.number
                await pool.release(resource)
            outcome["woke_at"] = time.monotonic()

        async with anyio.create_task_group() as tg:
            tg.start_soon(waiter)
            while pool.stats().waiting == 0:
                await anyio.sleep(0.001)
            thread = threading.Thread(target=collect, name="collector")
            thread.start()
            # nothing else wakes the loop now: only the slot freed by the collector can
        thread.join(10)
        outcome["lost"] = pool.stats().lost

    def run() -> None:
        try:
            run_on(flavour, main)
        except BaseException as exc:
            outcome["crashed"] = exc

    # The loop runs in a thread of its own, so that a waiter never woken (a task left
    # unscheduled forever, as in asyncio's debug mode) fails this test instead of hanging it.
    loop_thread = threading.Thread(target=run, name=f"{flavour} loop", daemon=True)
    gc.collect()
    gc.disable()  # only the collector thread may collect the cycle
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            loop_thread.start()
            loop_thread.join(15)
    finally:
        gc.enable()
    assert not loop_thread.is_alive(), "the waiter was never woken: its loop hangs for good"
    assert "crashed" not in outcome, repr(outcome["crashed"])
    assert "error" not in outcome, f"the waiter was not woken in time: {outcome['error']}"
    waited = outcome["woke_at"] - outcome["collected_at"]
    assert waited < 2.0, f"the waiter woke {waited:.2f}s after the collection freed its slot"
    assert outcome["number"] == 2 and outcome["lost"] == 1
    assert any(issubclass(w.category, ResourceWarning) for w in caught)


# -- event loops -------------------------------------------------------------------

module_level_pool = AsyncResources().pool(pool_size=2)  # built with no loop running


def test_a_pool_binds_to_the_first_loop_and_refuses_a_later_one() -> None:
    res = AsyncResources()
    pool = res.pool(pool_size=2)

    async def use() -> None:
        async with pool.lease(timeout=1):
            pass

    anyio.run(use, backend="asyncio")
    with pytest.raises(PoolError, match="bound to the asyncio event loop"):
        anyio.run(use, backend="asyncio")  # a new loop, even of the same library
    assert pool.stats().leased == 0


def test_use_from_a_second_loop_raises_pool_error_naming_both() -> None:
    async def use() -> None:
        async with module_level_pool.lease(timeout=1):
            pass

    anyio.run(use, backend="asyncio")
    with pytest.raises(
        PoolError, match=r"bound to the asyncio event loop .* now used from the trio run"
    ):
        anyio.run(use, backend="trio")
    with pytest.raises(PoolError, match="one pool per loop"):
        asyncio.run(use())
    with pytest.raises(PoolError):  # only dispose() may come from another loop
        trio.run(module_level_pool.acquire)


class LoopBound:
    """A resource that, like a stream or a connection, belongs to the loop that made it."""

    def __init__(self, number: int, call_soon: Callable[[Callable[[], object]], object]) -> None:
        self.number = number
        self.call_soon = call_soon  # the loop's, which refuses once the loop has ended
        self.closed = False

    def __repr__(self) -> str:
        return f"LoopBound({self.number})"


def loop_bound_pool(backend: str) -> AsyncPool[LoopBound]:
    numbers = iter(range(100))

    async def factory() -> LoopBound:
        if backend == "asyncio":
            call_soon: Any = asyncio.get_running_loop().call_soon
        else:
            call_soon = trio.lowlevel.current_trio_token().run_sync_soon
        return LoopBound(next(numbers), call_soon)

    async def releaser(resource: LoopBound) -> None:
        if resource.number % 2:  # odd ones need their own loop to close
            resource.call_soon(lambda: None)
        resource.closed = True

    return AsyncPool(factory, releaser, pool_size=4)  # built outside any loop


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_a_pool_whose_loop_ended_can_be_disposed_from_another_loop(
    backend: str, caplog: pytest.LogCaptureFixture
) -> None:
    pool = loop_bound_pool(backend)
    made: list[LoopBound] = []

    async def first() -> None:
        await pool.prefill(3)
        made.extend(entry.resource for entry in pool._state.alive.values())  # type: ignore[misc]

    async def second() -> None:
        await pool.dispose()  # the first loop has ended
        with pytest.raises(PoolClosed):
            await pool.acquire()
        await pool.dispose()  # idempotent

    def run(main: Callable[[], Coroutine[Any, Any, None]]) -> None:
        if backend == "asyncio":
            asyncio.run(main())  # closes its loop at the end
        else:
            trio.run(main)

    run(first)
    with caplog.at_level(logging.WARNING, logger="respool"):
        run(second)
    assert pool.closed
    assert sorted(r.number for r in made if r.closed) == [0, 2]  # released on the new loop
    warned = [
        r.getMessage().split(": ", 1)[1] for r in caplog.records if "LoopBound" in r.getMessage()
    ]
    assert warned == [
        "dispose: the releaser failed to close LoopBound(1) "
        "(the pool's loop had ended: the resource may have belonged to it)"
    ]
    stats = pool.stats()
    assert (stats.size, stats.idle, stats.closed, stats.close_errors) == (0, 0, 3, 1)


def test_a_pool_whose_loop_closed_can_be_disposed_from_another_loop() -> None:
    """Issue 9, the smaller ones: a module-level AsyncPool used by a loop that has since
    closed is disposed from a new loop: resources released, the pool ends closed."""
    res = AsyncResources()
    pool = res.pool(pool_size=2)

    async def use() -> None:
        await pool.prefill()

    asyncio.run(use())  # that loop is closed now
    asyncio.run(pool.dispose())
    assert pool.closed
    assert len(res.closed) == 2
    assert pool.stats().size == 0


def test_dispose_from_another_loop_while_the_pools_loop_lives_is_refused() -> None:
    pool = loop_bound_pool("asyncio")
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(pool.prefill(2))
        with pytest.raises(PoolError, match="one pool per loop"):
            asyncio.run(pool.dispose())  # its loop could still close them
        assert not pool.closed
        loop.run_until_complete(pool.dispose())
    finally:
        loop.close()
    assert pool.stats().closed == 2


def test_a_trio_bound_pool_refuses_asyncio() -> None:
    pool = AsyncResources().pool(pool_size=1)

    async def use() -> None:
        async with pool.lease(timeout=1):
            pass

    trio.run(use)
    with pytest.raises(
        PoolError, match=r"bound to the trio run .* now used from the asyncio event"
    ):
        asyncio.run(use())


def test_using_an_async_pool_outside_any_loop_is_a_clear_error() -> None:
    pool = AsyncResources().pool()
    coro = pool.acquire()
    with pytest.raises(RuntimeError, match="inside an asyncio or trio run"):
        coro.send(None)
    coro.close()


@pytest.mark.parametrize("batch", ["recycle", "dispose"])
def test_asyncio_task_cancel_cannot_strand_a_batch_of_closes(batch: str) -> None:
    """asyncio's own Task.cancel() goes through anyio shields: the batch must still finish."""
    closed: list[Resource] = []

    async def slow_releaser(resource: Resource) -> None:
        started.set()
        await asyncio.sleep(0.01)
        closed.append(resource)

    async def main() -> None:
        res = AsyncResources()
        pool = AsyncPool(res.factory, slow_releaser, pool_size=3)
        await pool.prefill()
        task = asyncio.ensure_future(
            pool.recycle(force=True) if batch == "recycle" else pool.dispose()
        )
        await started.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert len(closed) == 2  # the one cut short counts as closed; the rest were closed
        stats = pool.stats()
        assert (stats.size, stats.closed, stats.idle) == (0, 3, 0)
        if batch == "dispose":
            return
        held = [await pool.acquire(timeout=1) for _ in range(3)]  # every slot is usable
        for r in held:
            await pool.release(r)

    started = asyncio.Event()
    asyncio.run(main())
