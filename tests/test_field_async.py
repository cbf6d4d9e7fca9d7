"""Issue 9, trust in the field: regression tests for AsyncPool alone (asyncio, trio, uvloop).

Each test was written from the issue's description (``issues show 9``) and the spec
of the fix, before the fix: each docstring names the issue's item it proves.  Those from
the review of issue 9 (each failed when written) quote the spec instead, and run with
respool's log quiet (``quiet_respool``).
"""

from __future__ import annotations

import asyncio
import gc
import logging
import threading
import time
import warnings
from typing import Any

import anyio
import pytest

from respool import AsyncPool, PoolClosed, PoolTimeout

from ._async.resources import AsyncResources, Resource
from .loops import run_on


class Res:
    """A resource that supports weak references, and that nothing else refers to."""

    def __init__(self, number: int) -> None:
        self.number = number
        self.dead = False

    def __repr__(self) -> str:
        return f"Res({self.number})"


@pytest.fixture
def quiet_respool() -> Any:
    logger = logging.getLogger("respool")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    yield
    logger.setLevel(level)


# -- item 1: healing without user code --------------------------------------------------


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

    async def factory() -> Res:
        return Res(next(numbers))

    async def close(resource: Res) -> None:
        await anyio.sleep(1.0)

    pool: AsyncPool[Res] = AsyncPool(
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


# -- item 2: cancellation does not cancel creation --------------------------------------


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


@pytest.mark.anyio
async def test_dispose_cancels_a_background_creation() -> None:
    """Item 2: only ``dispose()`` cancels a creation left running by its caller."""
    started = anyio.Event()
    ended: list[str] = []

    async def factory() -> Res:
        started.set()
        try:
            await anyio.sleep(30)
        except BaseException:
            ended.append("cancelled")
            raise
        ended.append("finished")
        return Res(0)

    pool: AsyncPool[Res] = AsyncPool(factory, None, pool_size=1)
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

    async def factory() -> Res:
        await anyio.sleep(30)
        return Res(1)

    pool: AsyncPool[Res] = AsyncPool(factory, None, pool_size=2)
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


# -- item 7: a dropped lease collected in another thread ---------------------------------


@pytest.mark.parametrize("flavour", ["asyncio", "asyncio-debug", "trio"])
def test_a_lease_dropped_and_collected_in_another_thread_wakes_the_parked_waiter(
    flavour: str,
) -> None:
    """Item 7: the cyclic GC runs in another thread, frees a dropped lease and so its slot:
    the waiter parked on the full pool wakes within 2 s (its timeout is 5 s)."""
    outcome: dict[str, Any] = {}

    async def main() -> None:
        made = 0

        async def factory() -> Res:
            nonlocal made
            made += 1
            return Res(made)

        pool: AsyncPool[Res] = AsyncPool(factory, None, pool_size=1)
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


# -- item 11: a caller backing off is in the line ---------------------------------------


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

    async def factory() -> Res:
        nonlocal calls
        calls += 1
        if calls == 1:
            return Res(1)
        await anyio.sleep(0.02)
        release_now.set()  # the holder releases in the same instant as the failure
        raise OSError("connection refused")

    pool: AsyncPool[Res] = AsyncPool(factory, None, pool_size=2, max_backoff=0.05)
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


# -- the smaller ones, for AsyncPool alone ------------------------------------------------


def test_the_documented_callable_aliases_are_importable() -> None:
    """Issue 9, the smaller ones: the aliases the API page documents can be imported."""
    from respool import (  # type: ignore[attr-defined]
        AsyncCheck,
        AsyncFactory,
        AsyncReleaser,
        Check,
        Factory,
        Releaser,
    )

    for alias in (AsyncFactory, AsyncReleaser, AsyncCheck, Factory, Releaser, Check):
        assert alias is not None


def test_an_async_is_closed_is_refused_at_construction() -> None:
    """Item 1: ``is_closed`` is synchronous in both faces; an async one is a TypeError."""

    async def is_closed(resource: Resource) -> bool:
        return False

    with pytest.raises(TypeError) as info:
        AsyncResources().pool(is_closed=is_closed)
    assert "is_closed" in str(info.value)
    assert "unexpected keyword" not in str(info.value)


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

        async def factory() -> Res:
            await anyio.sleep(0.1)
            return Res(1)

        def close(resource: Res) -> None:  # a mistake: not async
            closed.append(resource)

        pool: AsyncPool[Res] = AsyncPool(factory, close, pool_size=2)  # type: ignore[arg-type]
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
