"""Pool behaviour that only threads have: contention, blocking factories, wake-ups.

Also the threaded twins of a few tests in tests/test_async_only.py, written with anyio.
"Item N" in a docstring is item N of issue 9 (trust in the field).
"""

from __future__ import annotations

import contextvars
import functools
import gc
import logging
import random
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from respool import Pool, PoolClosed, PoolTimeout, _synchronization

from ._sync.resources import Resource, Resources, hold
from .concurrency import Nursery, wait_until


@pytest.fixture
def tiny_switch_interval() -> Iterator[None]:
    """Switch threads as often as CPython allows, to shake out races."""
    before = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        yield
    finally:
        sys.setswitchinterval(before)


class Counted:
    """A thread-safe record of how many resources are out at once."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.out: set[int] = set()
        self.peak = 0

    def take(self, resource: Resource) -> None:
        with self.lock:
            assert id(resource) not in self.out, f"{resource} held by two threads"
            self.out.add(id(resource))
            self.peak = max(self.peak, len(self.out))

    def give(self, resource: Resource) -> None:
        with self.lock:
            self.out.remove(id(resource))


class Res:
    """A resource that supports weak references (so a dropped lease is noticed)."""

    def __init__(self, number: int) -> None:
        self.number = number


@pytest.mark.parametrize("lifo", [True, False])
def test_many_threads_contending_never_share_or_exceed(
    tiny_switch_interval: None, lifo: bool
) -> None:
    res = Resources()
    pool = res.pool(pool_size=4, lifo=lifo)
    counted = Counted()

    def worker() -> None:
        for _ in range(300):
            resource = pool.acquire(timeout=30)
            counted.take(resource)
            counted.give(resource)
            pool.release(resource)

    with Nursery() as nursery:
        for _ in range(16):
            nursery.start_soon(worker)
    assert counted.peak <= 4
    res.assert_settled(pool)
    assert pool.stats().acquired == 16 * 300


def test_randomised_mix_keeps_every_invariant(tiny_switch_interval: None) -> None:
    res = Resources()
    pool = res.pool(pool_size=3, pool_recycle=0.005)
    counted = Counted()
    stop = time.monotonic() + 1.5
    lock = threading.Lock()

    def checker() -> None:
        while time.monotonic() < stop:
            stats = pool.stats()
            assert stats.size + stats.creating <= stats.pool_size, stats
            assert stats.leased <= stats.size, stats
            time.sleep(0.0005)

    def worker(seed: int) -> None:
        local = random.Random(seed)
        while time.monotonic() < stop:
            action = local.random()
            try:
                if action < 0.5:
                    resource = pool.acquire(timeout=local.choice([0, 0.001, 1]))
                    counted.take(resource)
                    time.sleep(local.choice([0, 0.0002]))
                    counted.give(resource)
                    pool.release(resource)
                elif action < 0.8:
                    with pool.lease(timeout=local.choice([0, 0.001, 1])) as resource:
                        counted.take(resource)
                        counted.give(resource)
                elif action < 0.85:
                    with lock:
                        res.failures = 1
                elif action < 0.9:
                    pool.recycle(force=local.random() < 0.5)
                elif action < 0.95:
                    pool.prefill(local.randrange(4), timeout=1)
                else:
                    pool.stats()
            except (PoolTimeout, ConnectionError):
                pass

    with Nursery() as nursery:
        nursery.start_soon(checker)
        for seed in range(8):
            nursery.start_soon(worker, seed)
    wait_until(lambda: pool.stats().creating == 0)
    res.assert_settled(pool)
    assert counted.peak <= 3
    pool.dispose()
    res.assert_settled(pool)
    assert pool.stats().size == 0


def test_dispose_from_another_thread_wakes_blocked_threads() -> None:
    res = Resources()
    pool = res.pool(pool_size=1)
    held = pool.acquire()
    woken: list[float] = []

    def blocked() -> None:
        with pytest.raises(PoolClosed):
            pool.acquire(timeout=60)
        woken.append(time.monotonic())

    with Nursery() as nursery:
        for _ in range(6):
            nursery.start_soon(blocked)
        wait_until(lambda: pool.stats().waiting == 6)
        disposed_at = time.monotonic()
        threading.Thread(target=pool.dispose).start()
    assert len(woken) == 6
    assert max(woken) - disposed_at < 5
    pool.release(held)
    res.assert_settled(pool)


# Its async twin: tests/test_async_only.py, the same name without _threads.
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


# Pool's create_timeout: a thread cannot be cut short, so in Pool a factory call
# runs to its end and what it makes joins the pool (docs/concepts.md, "Factory
# errors and backoff"; the create_timeout docstring).  The issue 9 review's test
# asserting AsyncPool's behaviour for Pool was dropped; the difference is documented.
def test_a_blocking_factory_cannot_overrun_the_timeout() -> None:
    gate = threading.Event()
    made: list[Resource] = []

    def factory() -> Resource:
        gate.wait(30)
        made.append(Resource(len(made)))
        return made[-1]

    pool = Pool(factory, None, pool_size=1)
    started = time.monotonic()
    with pytest.raises(PoolTimeout, match="before the factory created one"):
        pool.acquire(timeout=0.1)
    assert time.monotonic() - started < 5
    assert pool.stats().creating == 1  # the slot stays taken while the call runs
    gate.set()
    wait_until(lambda: pool.stats().idle == 1)  # what it made joins the pool
    assert pool.acquire(timeout=0) is made[0]


# Its async twin (through ``pool_recycle``) is in tests/test_async_only.py.
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


def test_a_late_resource_goes_to_the_oldest_waiter() -> None:
    gate = threading.Event()

    def factory() -> Resource:
        gate.wait(30)
        return Resource(1)

    pool = Pool(factory, None, pool_size=1)
    with pytest.raises(PoolTimeout):
        pool.acquire(timeout=0.01)
    got: list[Resource] = []
    with Nursery() as nursery:
        nursery.start_soon(lambda: got.append(pool.acquire(timeout=30)))
        wait_until(lambda: pool.stats().waiting == 1)
        gate.set()
    assert [r.number for r in got] == [1]
    assert pool.stats().leased == 1
    pool.release(got[0])


def test_a_late_resource_after_dispose_is_closed() -> None:
    gate = threading.Event()
    closed: list[Resource] = []
    pool = Pool(lambda: gate.wait(30) and Resource(1), closed.append, pool_size=1)
    with pytest.raises(PoolTimeout):
        pool.acquire(timeout=0.01)
    pool.dispose()
    gate.set()
    wait_until(lambda: pool.stats().creating == 0)
    assert [r.number for r in closed] == [1]
    assert pool.stats().size == 0


def test_a_late_factory_error_frees_the_slot_and_is_reported() -> None:
    gate = threading.Event()

    def factory() -> Resource:
        gate.wait(30)
        raise ConnectionError("refused")

    pool = Pool(factory, None, pool_size=1)
    with pytest.raises(PoolTimeout):
        pool.acquire(timeout=0.01)
    gate.set()
    wait_until(lambda: pool.stats().creating == 0)
    assert pool.stats().size == 0
    assert pool.stats().create_errors == 1
    with pytest.raises(PoolTimeout) as info:  # the slot is free again: new calls, new errors
        pool.acquire(timeout=0.5)
    assert isinstance(info.value.__cause__, ConnectionError)
    assert pool.stats().create_errors >= 2
    assert pool.stats().size == 0


def test_a_late_none_from_the_factory_is_logged_and_frees_the_slot(
    caplog: pytest.LogCaptureFixture,
) -> None:
    gate = threading.Event()
    calls = 0

    def factory() -> Resource | None:
        nonlocal calls
        calls += 1
        if calls == 1:
            gate.wait(30)
            return None  # after its caller left: the pool adopts the call
        return Resource(calls)

    pool = Pool(factory, None, pool_size=1)
    with pytest.raises(PoolTimeout):
        pool.acquire(timeout=0.01)
    with caplog.at_level(logging.ERROR, logger="respool"):
        gate.set()
        wait_until(lambda: pool.stats().creating == 0)
        # the line is logged just after the slot is freed, in the factory's thread
        wait_until(lambda: any("discarding" in r.getMessage() for r in caplog.records))
    record = next(r for r in caplog.records if "discarding" in r.getMessage())
    assert record.exc_info is not None
    assert "the factory returned None" in str(record.exc_info[1])
    stats = pool.stats()
    assert (stats.size, stats.idle, stats.created) == (0, 0, 0)
    resource = pool.acquire(timeout=1)  # the slot is free again
    assert resource is not None and resource.number == 2
    pool.release(resource)


def test_the_factory_thread_sees_the_callers_context() -> None:
    var: contextvars.ContextVar[str] = contextvars.ContextVar("var", default="unset")
    seen: list[tuple[str, bool]] = []

    def factory() -> Resource:
        seen.append((var.get(), threading.current_thread() is threading.main_thread()))
        return Resource(0)

    var.set("caller")
    pool = Pool(factory, None, pool_size=2)
    pool.release(pool.acquire(timeout=5))
    assert seen == [("caller", False)]  # a timeout applies: a helper thread ran it
    unbounded = Pool(factory, None, pool_size=2, acquire_timeout=None)
    unbounded.release(unbounded.acquire())
    assert seen[-1] == ("caller", True)  # no timeout: it ran inline


def test_threads_holding_for_a_while_never_exceed_pool_size() -> None:
    res = Resources()
    pool = res.pool(pool_size=2)
    with Nursery() as nursery:
        for _ in range(10):
            nursery.start_soon(hold, pool, 0.002, 10)
    assert res.peak == 2
    res.assert_settled(pool)


def test_an_interrupt_just_after_the_factory_returned_loses_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    res = Resources()
    pool = res.pool(pool_size=1)
    real_wait = _synchronization.Event.wait

    def wait_then_interrupt(self: _synchronization.Event, deadline: float | None) -> bool:
        real_wait(self, deadline)  # the factory thread finished...
        raise KeyboardInterrupt  # ...and Ctrl-C lands right after

    monkeypatch.setattr(_synchronization.Event, "wait", wait_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        pool.acquire(timeout=5)
    monkeypatch.setattr(_synchronization.Event, "wait", real_wait)
    assert len(res.created) == 1
    assert pool.stats().idle == 1  # what it made joined the pool
    res.assert_settled(pool)


def test_a_late_duplicate_is_logged_with_its_error(caplog: pytest.LogCaptureFixture) -> None:
    gate = threading.Event()
    shared = Resource(0)
    calls = 0

    def factory() -> Resource:
        nonlocal calls
        calls += 1
        if calls == 2:
            gate.wait(10)
        return shared  # a buggy factory: the same object every time

    pool = Pool(factory, None, pool_size=2)
    pool.acquire(timeout=5)
    with pytest.raises(PoolTimeout):
        pool.acquire(timeout=0.05)  # detaches; its late result is `shared` again
    with caplog.at_level(logging.ERROR, logger="respool"):
        gate.set()
        wait_until(lambda: pool.stats().creating == 0)
        # the line is logged just after the slot is freed, in the factory's thread
        wait_until(lambda: any("discarding" in r.getMessage() for r in caplog.records))
    record = next(r for r in caplog.records if "discarding" in r.getMessage())
    assert record.exc_info is not None
    assert "already holds" in str(record.exc_info[1])
    assert pool.stats().size == 1


# -- no overcommit while a releaser cut short still runs (issue 9, item 6) -----------------


class OpenCount:
    """Resources really open: +1 when the factory returns, -1 when the releaser returns."""

    def __init__(self, close_takes: float) -> None:
        self.close_takes = close_takes
        self.lock = threading.Lock()
        self.open = self.peak = self.made = 0

    def factory(self) -> Resource:
        with self.lock:
            self.made += 1
            self.open += 1
            self.peak = max(self.peak, self.open)
            return Resource(self.made)

    def releaser(self, resource: Resource) -> None:
        time.sleep(self.close_takes)  # a goodbye to a slow server
        with self.lock:
            self.open -= 1


def test_a_releaser_cut_short_keeps_its_slot_until_it_really_ends() -> None:
    """Item 6: ``cleanup_timeout`` cuts the wait for a releaser, not the releaser: with
    ``pool_size=2``, never more than 2 resources open, counting those being closed."""
    count = OpenCount(close_takes=0.3)
    pool = Pool(count.factory, count.releaser, pool_size=2, cleanup_timeout=0.05, pool_recycle=0.02)
    stop = time.monotonic() + 1.5

    def churn(seed: int) -> None:
        rng = random.Random(seed)
        while time.monotonic() < stop:
            try:
                with pool.lease(timeout=1):
                    time.sleep(rng.choice([0, 0.001, 0.01]))
            except PoolTimeout:
                pass
            if rng.random() < 0.3:
                pool.recycle(force=True)

    with Nursery() as nursery:
        for seed in range(4):
            nursery.start_soon(churn, seed)
    assert count.made >= 4  # resources were closed and replaced
    assert count.peak <= 2, f"{count.peak} resources open at once with pool_size=2"
    pool.recycle(force=True)  # close the idle ones, errors logged
    wait_until(lambda: count.open == 0, timeout=10)  # every releaser ended


# -- a lease lost while the pool's lock is held still wakes the parked waiter ---------------
#
# The async twin is in tests/test_async_only.py.


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


def _try_sync(call: Callable[[], Res]) -> Res | PoolTimeout:
    try:
        return call()
    except PoolTimeout as exc:
        return exc


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


# -- async callables are a mistake for threads -----------------------------------------


async def coroutine_function(*args: object) -> None:
    pass  # pragma: no cover - never called


class AsyncCallable:
    """An object whose ``__call__`` is ``async def``: calling it makes a coroutine."""

    async def __call__(self, *args: object) -> None:
        pass  # pragma: no cover - never called

    async def method(self, *args: object) -> None:
        pass  # pragma: no cover - never called


ASYNC_FORMS = {
    "function": coroutine_function,
    "partial": functools.partial(coroutine_function),
    "method": AsyncCallable().method,
    "callable object": AsyncCallable(),
    "partial of a callable object": functools.partial(AsyncCallable()),
}


@pytest.mark.parametrize("form", list(ASYNC_FORMS))
@pytest.mark.parametrize("argument", ["factory", "releaser", "check", "reset"])
def test_pool_refuses_async_callables_at_construction(argument: str, form: str) -> None:
    res = Resources()
    kwargs: dict[str, object] = {"factory": res.factory, "releaser": res.releaser}
    kwargs[argument] = ASYNC_FORMS[form]
    with pytest.raises(TypeError) as info:
        Pool(**kwargs)  # type: ignore[arg-type]
    message = str(info.value)
    assert message.startswith(f"{argument} must be a plain callable, but "), message
    assert "is async" in message and "use respool.AsyncPool" in message


def test_pool_takes_a_class_whose_instances_are_async_callables() -> None:
    """A class is called to construct an instance, which is not a coroutine."""
    pool = Pool(AsyncCallable, None, pool_size=1)
    with pool.lease(timeout=1) as made:
        assert isinstance(made, AsyncCallable)
    pool.dispose()


# Issue 9, item 15.


async def _async_factory() -> Resource:
    return Resource(0)


async def _async_one(resource: Resource) -> bool:
    return True


@pytest.mark.parametrize("name", ["factory", "releaser", "check", "reset", "is_closed"])
def test_pool_refuses_async_callables_at_construction_including_is_closed(name: str) -> None:
    """Item 15: an async factory, releaser, check, reset or is_closed given to ``Pool`` is a
    TypeError at construction, naming the argument."""
    res = Resources()
    factory: Callable[..., Any] = _async_factory if name == "factory" else res.factory
    releaser: Callable[..., Any] = _async_one if name == "releaser" else res.releaser
    kwargs = {name: _async_one} if name not in ("factory", "releaser") else {}
    with pytest.raises(TypeError) as info:
        Pool(factory, releaser, pool_size=1, **kwargs)
    message = str(info.value)
    assert name in message, message
    assert "unexpected keyword" not in message, message


def test_pool_refuses_a_partial_of_an_async_function() -> None:
    """Item 15: also an async function wrapped in ``functools.partial``."""
    with pytest.raises(TypeError, match="factory"):
        Pool(functools.partial(_async_factory), None, pool_size=1)


@pytest.mark.parametrize("timeout", [3.0, None])
def test_a_caller_waiting_for_a_late_releaser_is_served_when_it_returns(
    timeout: float | None,
) -> None:
    """A stale idle resource's releaser outlives cleanup_timeout (a thread cannot be cut
    short): the caller that met it gets the slot when the releaser returns, neither at its
    own deadline nor never (found by the docs review of issue 9)."""
    closing = threading.Event()

    def slow_close(resource: Resource) -> None:
        closing.set()
        time.sleep(0.5)
        resource.closed = True

    made = iter(range(100))
    pool = Pool(
        lambda: Resource(next(made)),
        slow_close,
        pool_size=1,
        pool_recycle=0.05,
        cleanup_timeout=0.05,
        acquire_timeout=timeout,
    )
    first = pool.acquire()
    pool.release(first)
    time.sleep(0.1)  # stale now: the next acquire closes it first
    started = time.monotonic()
    served: list[Resource] = []
    worker = threading.Thread(target=lambda: served.append(pool.acquire()), daemon=True)
    worker.start()
    worker.join(5)
    assert not worker.is_alive(), "the caller was never served"
    waited = time.monotonic() - started
    assert closing.is_set() and first.closed
    assert served and served[0] is not first
    assert waited < 2.5, waited  # served after the 0.5 s releaser, well before 3 s
    stats = pool.stats()
    assert (stats.size, stats.leased, stats.closed) == (1, 1, 1), stats
    pool.release(served[0])
    pool.dispose()


# -- an opened pool's maintainer thread (issue 11) -----------------------------------------


def maintainer_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "respool-maintainer"]


def test_with_pool_runs_one_maintainer_thread_and_dispose_joins_it() -> None:
    res = Resources()
    before = len(maintainer_threads())
    with res.pool(pool_size=4, min_size=2) as pool:
        assert len(maintainer_threads()) == before + 1
        assert all(t.daemon for t in maintainer_threads())
        wait_until(lambda: pool.stats().size == 2)
        # many threads at once, while the maintainer tops up: never past pool_size
        with Nursery() as nursery:
            for _ in range(16):
                nursery.start_soon(hold, pool, 0.002)
    assert len(maintainer_threads()) == before
    res.assert_settled(pool)


def test_open_then_dispose_from_another_thread_stops_the_maintainer() -> None:
    res = Resources(delay=0.05)
    pool = res.pool(pool_size=4, min_size=4)
    pool.open()
    wait_until(lambda: pool.stats().size >= 1)
    disposer = threading.Thread(target=pool.dispose)
    disposer.start()  # mid-creation, from a thread that is not the opener
    disposer.join(30)
    assert not disposer.is_alive()
    assert maintainer_threads() == []
    wait_until(lambda: pool.stats().creating == 0 and res.alive == 0)
    res.assert_settled(pool)


def test_a_pool_never_opened_starts_no_maintainer_thread() -> None:
    res = Resources()
    pool = res.pool(pool_size=2, min_size=1, idle_timeout=1.0)
    with pool.lease():
        pass
    assert maintainer_threads() == []
    pool.dispose()
