"""Adversarial review of the pool (changes since 327d440): each test here failed when written.

Every test states the behaviour the docstrings promise; the failure is the bug.
Async tests run on asyncio and trio; the threaded ``Pool`` twin is tested where it differs.
"""

from __future__ import annotations

import gc
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import pytest

from respool import AsyncPool, Pool, PoolClosed, PoolTimeout


class Res:
    """A resource that supports weak references (so a dropped lease is noticed)."""

    def __init__(self, number: int) -> None:
        self.number = number


# -- 1. dispose() does not reach an acquire that is backing off a failing factory --------


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


def test_dispose_ends_an_acquire_waiting_out_factory_backoff_threads() -> None:
    """The threaded twin: same promise, same failure."""
    calls = 0

    def factory() -> Res:
        nonlocal calls
        calls += 1
        raise OSError("server down")

    pool: Pool[Res] = Pool(factory, None, pool_size=1, max_backoff=0.05)
    outcome: dict[str, Any] = {}

    def acquirer() -> None:
        try:
            pool.acquire(timeout=3)
        except Exception as exc:
            outcome["error"] = exc
            outcome["at"] = time.monotonic()

    thread = threading.Thread(target=acquirer)
    thread.start()
    time.sleep(0.3)
    assert calls > 0
    pool.dispose()
    disposed_at, calls_at_dispose = time.monotonic(), calls
    thread.join(10)

    assert isinstance(outcome["error"], PoolClosed), repr(outcome["error"])
    assert outcome["at"] - disposed_at < 0.5
    assert calls - calls_at_dispose <= 1


# -- 2. acquire's timeout does not bound closing a stale or broken idle resource -----------


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


def test_acquire_timeout_bounds_closing_a_broken_idle_resource_threads() -> None:
    """The threaded twin, through ``check`` finding the idle resource broken."""
    made = 0

    def factory() -> Res:
        nonlocal made
        made += 1
        return Res(made)

    def releaser(resource: Res) -> None:
        time.sleep(3)

    pool: Pool[Res] = Pool(factory, releaser, pool_size=1, check=lambda r: False, check_interval=0)
    pool.release(pool.acquire())

    start = time.monotonic()
    try:
        pool.release(pool.acquire(timeout=0.2))
    except PoolTimeout:
        pass
    elapsed = time.monotonic() - start
    assert elapsed < 0.2 + 0.5, f"acquire(timeout=0.2) took {elapsed:.2f}s"


# -- 3. a lease lost while the pool's lock is held never wakes the parked waiter ------------


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


def _try_sync(call: Callable[[], Res]) -> Res | PoolTimeout:
    try:
        return call()
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


def test_waiter_parked_while_a_lost_lease_is_collected_gets_its_slot_threads() -> None:
    """The threaded twin (GC running in the thread that holds the lock)."""
    made = 0

    def factory() -> Res:
        nonlocal made
        made += 1
        return Res(made)

    pool: Pool[Res] = Pool(factory, None, pool_size=1)
    cycle: list[Any] = [pool.acquire()]
    cycle.append(cycle)
    del cycle
    gc.disable()
    undo = _collect_when_parking(pool._state)
    try:
        start = time.monotonic()
        with pytest.warns(ResourceWarning, match="garbage-collected"):
            got = _try_sync(lambda: pool.acquire(timeout=2))
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
    pool.release(resource)
    assert pool.stats().lost == 1


def test_lease_lost_in_another_thread_while_it_holds_the_lock_wakes_the_waiter() -> None:
    """Threads: a holder drops its resource while another thread is inside the pool's
    locked section (stats(), a release...).  The parked waiter is not woken; only a
    later operation on the pool recovers the slot.  The lock holder is stood in for
    by holding ``pool._lock`` for a moment, as any pool call does."""
    made = 0

    def factory() -> Res:
        nonlocal made
        made += 1
        return Res(made)

    pool: Pool[Res] = Pool(factory, None, pool_size=1)
    holder = [pool.acquire()]
    outcome: dict[str, Any] = {}

    def waiter() -> None:
        try:
            outcome["resource"] = pool.acquire(timeout=2)
        except PoolTimeout as exc:
            outcome["error"] = exc
        outcome["at"] = time.monotonic()

    thread = threading.Thread(target=waiter)
    thread.start()
    deadline = time.monotonic() + 5
    while pool._state.line.waiting == 0 and time.monotonic() < deadline:  # parked
        time.sleep(0.01)
    assert pool._state.line.waiting == 1

    def drop_while_another_call_holds_the_lock() -> None:
        with pool._state.lock:  # another thread is in a pool call right now
            holder.clear()  # the holder drops the resource unreleased

    with pytest.warns(ResourceWarning, match="garbage-collected"):
        drop_while_another_call_holds_the_lock()
    dropped_at = time.monotonic()
    thread.join(10)
    assert "error" not in outcome, f"waiter timed out: {outcome['error']}"
    assert outcome["at"] - dropped_at < 0.5
    pool.release(outcome["resource"])
