"""The pool's shared deadline for timed waits: one timer per pool and loop (asyncio), one
system task per pool and run (trio), instead of a timer or cancel scope per wait.

Timeouts fire on time on the run's clock (real, ``MockClock`` autojump, asyncio virtual
time), in deadline order whatever order the waits are served or given up in; a cancelled
waiter leaves its deadline behind harmlessly; several pools and several runs (one after
another, or at once in threads) keep theirs apart; the trio task ends with its run (or
sooner) and logs nothing.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time

import anyio
import pytest
import trio
import trio.testing

from respool import AsyncPool, PoolTimeout

from ._async.resources import AsyncResources, Resource
from .loops import run_on

FLAVOURS = ["asyncio", "asyncio-virtual", "trio", "trio-mock"]
VIRTUAL = ("asyncio-virtual", "trio-mock")
LATE = 0.05  # seconds a loaded machine may add to a wake-up (real clocks only)


def _now() -> float:
    """The running loop's clock: what a pool's deadlines are measured on."""
    return anyio.current_time()


def _on_time(timeout: float, waited: float, flavour: str) -> bool:
    """Not early (but for float rounding), and late by little: nothing under virtual time."""
    return timeout - 1e-9 <= waited < timeout + (0.001 if flavour in VIRTUAL else 1.0)


async def _timed_out(pool: AsyncPool[Resource], timeout: float) -> float:
    """Seconds on the loop's clock until ``acquire(timeout)`` on a full pool gave up."""
    started = _now()
    with pytest.raises(PoolTimeout):
        await pool.acquire(timeout=timeout)
    return _now() - started


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_a_timed_wait_ends_at_its_deadline(flavour: str) -> None:
    """One wait on a full pool ends no earlier than its timeout, and not much later."""

    async def main() -> list[float]:
        pool = AsyncResources().pool(pool_size=1)
        held = await pool.acquire()
        waited = [await _timed_out(pool, t) for t in (0.05, 0.2, 0.01)]
        await pool.release(held)
        await pool.dispose()
        return waited

    started = time.monotonic()
    waited = run_on(flavour, main)
    for w, t in zip(waited, (0.05, 0.2, 0.01), strict=True):
        assert _on_time(t, w, flavour), (t, w)
    if flavour in VIRTUAL:
        assert time.monotonic() - started < 1.0  # virtual time: no real waiting


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_many_waiters_with_mixed_deadlines_expire_in_order(flavour: str) -> None:
    """60 waiters with timeouts in shuffled order (some behind a longer one, so out of the
    shared queue's order): each times out at its own deadline, in deadline order; the
    ones served first are served, none early or lost."""
    timeouts = [0.01 * (1 + (i * 37) % 60) for i in range(60)]

    async def main() -> tuple[list[tuple[float, float, float]], list[Resource]]:
        pool = AsyncResources().pool(pool_size=2)
        held = [await pool.acquire() for _ in range(2)]
        ended: list[tuple[float, float, float]] = []
        served: list[Resource] = []
        start = _now()

        async def waiter(i: int, timeout: float) -> None:
            began = _now() - start
            try:
                r = await pool.acquire(timeout=timeout)
            except PoolTimeout:
                ended.append((timeout, _now() - start, began + timeout))
            else:
                served.append(r)  # kept: the pool stays full

        async with anyio.create_task_group() as tg:
            for i, timeout in enumerate(timeouts):
                tg.start_soon(waiter, i, timeout)
                await anyio.sleep(0)
            # the two oldest waiters get the two resources: they leave the queue early
            for r in held:
                await pool.release(r)
        for r in served:
            await pool.release(r)
        await pool.dispose()
        return ended, served

    ended, served = run_on(flavour, main)
    assert len(served) == 2  # the two oldest
    assert len(ended) + len(served) == len(timeouts)
    # In the order of each one's own deadline (its start plus its timeout: the starts are
    # a loop iteration apart, several ms on a loaded machine), give or take the lateness
    # a loaded machine adds to a wake-up.
    deadlines = [deadline for _, _, deadline in ended]
    late = 0.0 if flavour in VIRTUAL else LATE
    assert all(a <= b + late for a, b in itertools.pairwise(deadlines)), ended
    for timeout, at, deadline in ended:
        assert _on_time(timeout, at - (deadline - timeout), flavour), (timeout, at, deadline)


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_a_cancelled_waiter_with_a_pending_deadline_leaves_the_rest_on_time(
    flavour: str,
) -> None:
    """Waiters cancelled while their deadlines are queued (the front one too): the others
    still time out on time, and a later waiter is served the released resource."""

    async def main() -> tuple[list[float], bool]:
        pool = AsyncResources().pool(pool_size=1)
        held = await pool.acquire()
        waited: list[float] = []

        async def timed(timeout: float) -> None:
            waited.append(await _timed_out(pool, timeout))

        async with anyio.create_task_group() as tg:
            with anyio.CancelScope() as doomed:
                async with anyio.create_task_group() as inner:
                    inner.start_soon(pool.acquire, 0.05)  # the front of the queue
                    await anyio.sleep(0)
                    tg.start_soon(timed, 0.1)
                    await anyio.sleep(0)
                    inner.start_soon(pool.acquire, 0.15)
                    await anyio.sleep(0)
                    tg.start_soon(timed, 0.2)
                    await anyio.sleep(0.01)
                    doomed.cancel()
        served: list[Resource] = []

        async def patient() -> None:
            async with pool.lease(timeout=1) as r:
                served.append(r)

        async with anyio.create_task_group() as tg:
            tg.start_soon(patient)
            await anyio.sleep(0.01)
            await pool.release(held)  # the waiter takes it
        await pool.dispose()
        return waited, served == [held]

    waited, served = run_on(flavour, main)
    assert len(waited) == 2
    for w, t in zip(sorted(waited), (0.1, 0.2), strict=True):
        assert _on_time(t, w + 0.01, flavour) or _on_time(t, w, flavour), (t, w)
    assert served


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_two_pools_in_one_run_keep_their_deadlines_apart(flavour: str) -> None:
    """Two full pools, timed waiters on each interleaved: each times out on its own
    deadline; serving one pool's waiters ends nothing on the other."""

    async def main() -> dict[str, list[tuple[float, float]]]:
        pools = {name: AsyncResources().pool(pool_size=1) for name in "ab"}
        held = {name: await pool.acquire() for name, pool in pools.items()}
        results: dict[str, list[tuple[float, float]]] = {"a": [], "b": []}

        async def waiter(name: str, timeout: float) -> None:
            results[name].append((timeout, await _timed_out(pools[name], timeout)))

        async with anyio.create_task_group() as tg:
            for i in range(10):
                tg.start_soon(waiter, "a", 0.02 * (i + 1))
                tg.start_soon(waiter, "b", 0.2 - 0.015 * i)  # b's arrive out of order
                await anyio.sleep(0)
        for name, pool in pools.items():
            await pool.release(held[name])
            await pool.dispose()
        return results

    results = run_on(flavour, main)
    for name in "ab":
        assert len(results[name]) == 10
        for timeout, waited in results[name]:
            assert _on_time(timeout, waited, flavour), (name, timeout, waited)


def _respool_errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


@pytest.mark.parametrize("clock", ["real", "mock"])
def test_a_pool_used_in_two_consecutive_trio_runs(
    clock: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Run 1 ends while its pool's deadline task sleeps (a timed wait was served before
    its deadline): the run ends at once, nothing is logged.  Run 2 disposes that pool
    (it rebinds) and times out on a new pool, its deadline task its own."""
    res = AsyncResources()
    pool = res.pool(pool_size=1)

    def clock_for_run() -> trio.abc.Clock | None:
        return trio.testing.MockClock(autojump_threshold=0) if clock == "mock" else None

    async def first() -> float:
        held = await pool.acquire()
        got: list[Resource] = []

        async def patient() -> None:
            got.append(await pool.acquire(600.0))  # served before its 600 s deadline

        async with trio.open_nursery() as nursery:
            nursery.start_soon(patient)
            await trio.testing.wait_all_tasks_blocked()
            await pool.release(held)
        waited = await _timed_out(pool, 0.05)  # behind the served one's stale deadline
        await pool.release(got[0])
        return waited

    started = time.monotonic()
    assert 0.05 <= trio.run(first, clock=clock_for_run()) < 1.0
    assert time.monotonic() - started < 5.0  # not held until the 600 s deadline

    async def second() -> float:
        await pool.dispose()
        other = AsyncResources().pool(pool_size=1)
        held = await other.acquire()
        waited = await _timed_out(other, 0.05)
        await other.release(held)
        await other.dispose()
        return waited

    with caplog.at_level(logging.DEBUG):
        assert 0.05 <= trio.run(second, clock=clock_for_run()) < 1.0
    assert _respool_errors(caplog) == []
    assert res.alive == 0


def test_trio_runs_in_threads_at_once_time_out_on_their_own() -> None:
    """Four trio runs in four threads, a pool each with timed waiters (and one MockClock
    run among them): every timeout fires on its own run's clock, no earlier."""
    errors: list[BaseException] = []
    results: dict[int, list[float]] = {}

    def run(index: int) -> None:
        async def main() -> list[float]:
            pool = AsyncResources().pool(pool_size=1)
            held = await pool.acquire()
            waited: list[float] = []

            async def timed(timeout: float) -> None:
                waited.append(await _timed_out(pool, timeout) - timeout)

            async with trio.open_nursery() as nursery:
                for i in range(20):
                    nursery.start_soon(timed, 0.01 + 0.005 * ((i * 7) % 20))
            await pool.release(held)
            await pool.dispose()
            return waited

        try:
            mock = trio.testing.MockClock(autojump_threshold=0) if index == 0 else None
            results[index] = trio.run(main, clock=mock)
        except BaseException as exc:  # pragma: no cover  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors, errors
    assert sorted(results) == [0, 1, 2, 3]
    for index, late in results.items():
        assert len(late) == 20
        assert min(late) >= -1e-9, (index, min(late))
        assert max(late) < (0.001 if index == 0 else 2.0), (index, max(late))


def test_the_trio_deadline_task_ends_when_nothing_is_pending() -> None:
    """Once its waits are over and their deadlines past, a pool's deadline task ends (a
    disposed pool leaves no task behind for the rest of the run)."""

    def deadline_tasks() -> list[str]:
        root = trio.lowlevel.current_root_task()
        assert root is not None
        found: list[str] = []

        def walk(task: trio.lowlevel.Task) -> None:
            if task.name == "respool-deadlines":
                found.append(task.name)
            for nursery in task.child_nurseries:
                for child in nursery.child_tasks:
                    walk(child)

        walk(root)
        return found

    async def main() -> tuple[int, int]:
        pool = AsyncResources().pool(pool_size=1)
        held = await pool.acquire()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(pool.acquire, 0.5)
            await trio.testing.wait_all_tasks_blocked()
            during = len(deadline_tasks())
            await pool.release(held)
        await pool.dispose()
        await trio.sleep(1.0)  # past the served wait's deadline
        return during, len(deadline_tasks())

    during, after = trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
    assert (during, after) == (1, 0)


def test_a_shielded_timed_wait_as_the_trio_run_ends_still_times_out() -> None:
    """A system task's shielded timed wait, pending when the main task returns: the run's
    end cancels the deadline task, the wait takes a timer of its own and still times out
    on time (it is not left hanging, nor ended early)."""
    outcome: list[float] = []

    async def main() -> None:
        pool = AsyncResources().pool(pool_size=1)
        await pool.acquire()  # never released: the pool stays full

        async def shielded() -> None:
            with trio.CancelScope(shield=True):
                outcome.append(await _timed_out(pool, 0.2))

        trio.lowlevel.spawn_system_task(shielded)
        await trio.testing.wait_all_tasks_blocked()
        await trio.sleep(0.05)

    started = time.monotonic()
    trio.run(main)
    took = time.monotonic() - started
    assert len(outcome) == 1 and 0.2 <= outcome[0] < 1.5, outcome
    assert took < 5.0
