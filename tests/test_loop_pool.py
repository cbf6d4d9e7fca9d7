"""AsyncLoopPool and LoopPool (issue 12, item 2): event loops on threads of their own.

The async callers run under asyncio and trio (the ``anyio_backend`` fixture); the pool's
own loops run asyncio or trio (``loops_backend``); ``LoopPool`` is driven from plain
threads.  Every test ends by checking that nothing was left behind: no loop thread, no
resource unclosed, nothing leased (:func:`assert_nothing_left`).
"""

from __future__ import annotations

import logging
import sys
import threading
from typing import Any

import anyio
import pytest

from respool import AsyncLoopPool, LoopPool, PoolClosed, PoolError, PoolTimeout

from .concurrency import async_wait_until, wait_until

pytestmark = pytest.mark.anyio


class Resource:
    def __init__(self, number: int) -> None:
        self.number = number
        self.thread = threading.get_ident()  # the loop thread that made it
        self.closed_on: int | None = None


class Resources:
    """A factory and a releaser that count, and check each resource stays on its loop."""

    def __init__(self, fail_on: int | None = None) -> None:
        self.lock = threading.Lock()
        self.made: list[Resource] = []
        self.fail_on = fail_on  # the factory call (0-based) that raises

    async def factory(self) -> Resource:
        with self.lock:
            number = len(self.made)
            if number == self.fail_on:
                self.fail_on = None
                raise ConnectionRefusedError(f"factory call {number} refused")
            resource = Resource(number)
            self.made.append(resource)
        await anyio.sleep(0)
        return resource

    async def close(self, resource: Resource) -> None:
        assert resource.closed_on is None, "closed twice"
        resource.closed_on = threading.get_ident()

    def assert_all_closed_on_their_loops(self) -> None:
        assert self.made
        for r in self.made:
            assert r.closed_on == r.thread, f"resource {r.number} closed on another thread"


def loop_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("respool-loop-")]


def assert_nothing_left(res: Resources, loops: AsyncLoopPool[Any] | LoopPool[Any]) -> None:
    assert loops.closed
    assert loop_threads() == []
    res.assert_all_closed_on_their_loops()
    for stats in loops.stats():
        assert not stats.alive and stats.in_flight == 0
        assert stats.pool.size == stats.pool.leased == 0, stats


@pytest.fixture(params=["asyncio", "trio"])
def loops_backend(request: pytest.FixtureRequest) -> str:
    """The library the pool's own loops run (the caller's is ``anyio_backend``)."""
    return str(request.param)


async def where(resource: Resource) -> tuple[int, int]:
    assert resource.thread == threading.get_ident(), "a resource met a loop not its own"
    await anyio.sleep(0)
    return resource.number, threading.get_ident()


async def double(resource: Resource, item: int) -> int:
    assert resource.thread == threading.get_ident()
    await anyio.sleep(0)
    return item * 2


# -- run, map, stats ------------------------------------------------------------------


async def test_run_goes_round_robin_or_to_the_loop_picked(loops_backend: str) -> None:
    res = Resources()
    async with AsyncLoopPool(
        res.factory, res.close, 3, pool_size=2, backend=loops_backend
    ) as loops:
        assert len(res.made) == 6  # prefilled: pool_size on each loop
        assert len(loop_threads()) == 3
        threads = [(await loops.run(where))[1] for _ in range(6)]
        assert threads[:3] == threads[3:] and len(set(threads)) == 3
        assert {(await loops.run(where, pick=1))[1] for _ in range(3)} == {threads[1]}
        stats = loops.stats()
        assert [s.index for s in stats] == [0, 1, 2]
        assert [s.calls for s in stats] == [2, 5, 2]
        assert all(s.alive and s.in_flight == 0 and s.pool.size == 2 for s in stats)
    assert_nothing_left(res, loops)


async def test_map_returns_results_in_input_order(loops_backend: str) -> None:
    res = Resources()
    async with AsyncLoopPool(res.factory, res.close, 2, backend=loops_backend) as loops:
        assert await loops.map(double, range(20)) == [i * 2 for i in range(20)]
        assert await loops.map(double, []) == []
        assert sum(s.calls for s in loops.stats()) == 20
        assert sorted(s.calls for s in loops.stats()) == [10, 10]  # sharded round-robin
    assert_nothing_left(res, loops)


def test_loop_pool_from_plain_threads(loops_backend: str) -> None:
    res = Resources()
    results: list[int] = []
    with LoopPool(res.factory, res.close, 2, pool_size=2, backend=loops_backend) as loops:

        def caller(n: int) -> None:
            for i in range(10):
                _, thread = loops.run(where)
                assert thread in {t.ident for t in loop_threads()}
                results.append(i)
            assert loops.map(double, [n, n + 1]) == [2 * n, 2 * n + 2]

        threads = [threading.Thread(target=caller, args=(n,)) for n in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert len(results) == 40
    assert_nothing_left(res, loops)


# -- bad input ------------------------------------------------------------------------


def test_constructor_arguments_are_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    res = Resources()
    with pytest.raises(ValueError, match="loop_count must be >= 1"):
        LoopPool(res.factory, res.close, 0)
    with pytest.raises(TypeError, match="loop_count must be an int"):
        AsyncLoopPool(res.factory, res.close, 1.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="backend must be 'asyncio' or 'trio', got 'curio'"):
        LoopPool(res.factory, res.close, 1, backend="curio")
    with pytest.raises(ValueError, match="pool_size must be >= 1"):
        LoopPool(res.factory, res.close, 1, pool_size=0)
    monkeypatch.setitem(sys.modules, "trio", None)  # as if trio were not installed
    with pytest.raises(ImportError, match=r"pip install 'respool\[trio\]'"):
        AsyncLoopPool(res.factory, res.close, 1, backend="trio")
    assert LoopPool(res.factory, res.close).loop_count >= 1  # os.cpu_count()
    assert res.made == [] and loop_threads() == []  # nothing starts before start()


async def test_misuse_is_refused_before_anything_runs() -> None:
    res = Resources()
    loops = AsyncLoopPool(res.factory, res.close, 1)
    with pytest.raises(PoolError, match="is not started"):
        await loops.run(where)

    def plain(resource: Resource) -> int:
        return 1

    async with loops:
        with pytest.raises(TypeError, match="fn must be a coroutine function"):
            await loops.run(plain)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="fn must be a coroutine function"):
            await loops.map(plain, [1])  # type: ignore[arg-type]
        with pytest.raises(IndexError, match="loops 0 to 0"):
            await loops.run(where, pick=1)
        with pytest.raises(TypeError, match="pick must be a loop index"):
            await loops.run(where, pick=True)
        with pytest.raises(ValueError, match="timeout"):
            await loops.run(where, timeout=-1)
        with pytest.raises(PoolError, match="was started already"):
            await loops.start()
        assert loops.stats()[0].calls == 0  # nothing was dispatched
    with pytest.raises(PoolClosed, match="is closed"):
        await loops.run(where)
    with pytest.raises(PoolClosed):
        await loops.start()
    await loops.aclose()  # idempotent
    assert_nothing_left(res, loops)


async def test_run_from_one_of_its_own_loops_raises_at_once(loops_backend: str) -> None:
    res = Resources()
    async with AsyncLoopPool(res.factory, res.close, 2, backend=loops_backend) as loops:

        async def nested(resource: Resource) -> None:
            await loops.run(where)  # would wait for itself

        with pytest.raises(PoolError, match=r"run\(\) or map\(\) was called from its own loop 1"):
            await loops.run(nested, pick=1)

        async def close_it(resource: Resource) -> None:
            await loops.aclose()

        with pytest.raises(PoolError, match=r"aclose\(\) was called from its own loop 0"):
            await loops.run(close_it, pick=0)
        assert not loops.closed
    assert_nothing_left(res, loops)


# -- errors, cancellation and timeouts: nothing leaks ------------------------------------


class Stopped:
    """Records which calls were cancelled on their loop, and which started."""

    def __init__(self) -> None:
        self.started = 0
        self.cancelled = 0
        self.lock = threading.Lock()

    async def forever(self, resource: Resource, *_: object) -> None:
        with self.lock:
            self.started += 1
        try:
            await anyio.sleep_forever()
        except BaseException:
            with self.lock:
                self.cancelled += 1
            raise


async def test_an_error_is_raised_in_the_caller_and_map_cancels_the_rest(
    loops_backend: str,
) -> None:
    res, stopped = Resources(), Stopped()

    async def fail_on_3(resource: Resource, item: int) -> int:
        if item == 3:
            await async_wait_until(lambda: stopped.started == 5)
            raise KeyError(item)
        if item == 2:
            return 2
        await stopped.forever(resource)
        return -1

    async with AsyncLoopPool(res.factory, res.close, 2, 4, backend=loops_backend) as loops:

        async def boom(resource: Resource) -> None:
            raise ZeroDivisionError("from fn")

        with pytest.raises(ZeroDivisionError, match="from fn"):
            await loops.run(boom)
        with pytest.raises(KeyError):
            await loops.map(fail_on_3, range(7))
        assert stopped.started == stopped.cancelled == 5
        assert all(s.pool.leased == 0 and s.in_flight == 0 for s in loops.stats())
        assert await loops.map(double, [1, 2]) == [2, 4]  # still serving
    assert_nothing_left(res, loops)


async def test_cancelling_the_caller_cancels_run_and_map_on_their_loops(
    loops_backend: str,
) -> None:
    res, stopped = Resources(), Stopped()
    async with AsyncLoopPool(res.factory, res.close, 2, 2, backend=loops_backend) as loops:
        with anyio.CancelScope() as scope:
            async with anyio.create_task_group() as group:
                group.start_soon(loops.run, stopped.forever)
                await async_wait_until(lambda: stopped.started == 1)
                scope.cancel()
        assert stopped.cancelled == 1  # ended on its loop before run() returned
        with anyio.CancelScope() as scope:
            async with anyio.create_task_group() as group:
                group.start_soon(loops.map, stopped.forever, range(4))
                await async_wait_until(lambda: stopped.started == 5)
                scope.cancel()
        assert stopped.cancelled == 5
        assert all(s.pool.leased == 0 and s.in_flight == 0 for s in loops.stats())
    assert_nothing_left(res, loops)


def test_a_timeout_cancels_the_work_on_its_loop(loops_backend: str) -> None:
    res, stopped = Resources(), Stopped()
    with LoopPool(res.factory, res.close, 2, backend=loops_backend) as loops:
        with pytest.raises(TimeoutError, match=r"run\(\) did not finish within timeout=0.01s"):
            loops.run(stopped.forever, timeout=0.01)
        with pytest.raises(TimeoutError, match=r"map\(\) did not finish within timeout=0.01s"):
            loops.map(stopped.forever, range(3), timeout=0.01)
        assert stopped.cancelled == stopped.started  # every one that started was stopped
        assert all(s.pool.leased == 0 and s.in_flight == 0 for s in loops.stats())
        assert loops.run(where, timeout=30)[0] in (0, 1)
    assert_nothing_left(res, loops)


def test_an_acquire_timeout_on_the_loop_is_the_callers_error() -> None:
    res, stopped = Resources(), Stopped()
    errors: list[BaseException] = []

    def hold() -> None:
        try:
            loops.run(stopped.forever)
        except BaseException as exc:
            errors.append(exc)

    with LoopPool(res.factory, res.close, 1, acquire_timeout=0.01, shutdown_timeout=0) as loops:
        holder = threading.Thread(target=hold)
        holder.start()
        wait_until(lambda: stopped.started == 1)
        with pytest.raises(PoolTimeout, match="waiting for a resource"):
            loops.run(where)  # the loop's one resource is held: its pool timed out there
    holder.join()
    assert stopped.cancelled == 1  # the shutdown cancelled the holder's call at once
    assert [type(e) for e in errors] == [PoolClosed]
    assert_nothing_left(res, loops)


# -- start and shutdown ---------------------------------------------------------------


async def test_a_start_that_fails_half_way_stops_everything(loops_backend: str) -> None:
    res = Resources(fail_on=4)  # loops 0 and 1 get theirs, then one of loop 2's fails
    loops = AsyncLoopPool(
        res.factory, res.close, 3, 2, backend=loops_backend, fatal=ConnectionRefusedError
    )
    with pytest.raises(ConnectionRefusedError, match="factory call 4 refused"):
        await loops.start()
    assert len(res.made) >= 4
    assert_nothing_left(res, loops)
    with pytest.raises(PoolClosed):
        await loops.run(where)


async def test_shutdown_lets_calls_in_flight_finish_and_fences_new_ones() -> None:
    res = Resources()
    release = threading.Event()
    results: list[object] = []

    async def slow(resource: Resource) -> str:
        while not release.is_set():
            await anyio.sleep(0.001)
        return "finished"

    loops = AsyncLoopPool(res.factory, res.close, 2)
    await loops.start()
    async with anyio.create_task_group() as group:

        async def call() -> None:
            results.append(await loops.run(slow))

        group.start_soon(call)
        await async_wait_until(lambda: sum(s.in_flight for s in loops.stats()) == 1)
        group.start_soon(loops.aclose)
        await async_wait_until(lambda: loops.closed)
        with pytest.raises(PoolClosed):
            await loops.run(where)
        release.set()
    assert results == ["finished"]
    assert_nothing_left(res, loops)


def test_shutdown_cancels_calls_still_running_after_shutdown_timeout() -> None:
    res, stopped = Resources(), Stopped()
    errors: list[BaseException] = []
    loops = LoopPool(res.factory, res.close, 1, shutdown_timeout=0.01)
    loops.start()

    def caller() -> None:
        try:
            loops.run(stopped.forever)
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=caller)
    thread.start()
    wait_until(lambda: stopped.started == 1)
    loops.close()
    thread.join()
    assert stopped.cancelled == 1
    assert len(errors) == 1 and isinstance(errors[0], PoolClosed), errors
    assert "shut down while the call on loop 0" in str(errors[0])
    assert_nothing_left(res, loops)


def test_a_loop_that_dies_fails_its_calls_and_refuses_new_ones(
    caplog: pytest.LogCaptureFixture, loops_backend: str
) -> None:
    res = Resources()

    async def kill_the_loop(resource: Resource) -> None:
        if loops_backend == "asyncio":
            import asyncio

            asyncio.get_running_loop().stop()  # anyio.run then fails: the loop died
        else:
            import trio

            async def crash() -> None:
                raise RuntimeError("a system task crashed the run")

            trio.lowlevel.spawn_system_task(crash)
        await anyio.sleep_forever()

    with caplog.at_level(logging.WARNING, logger="respool"):
        with LoopPool(res.factory, res.close, 2, backend=loops_backend) as loops:
            first = loops.run(where, pick=0)[1]
            with pytest.raises(PoolError, match=r"loop 1 of .* stopped unexpectedly"):
                loops.run(kill_the_loop, pick=1)
            with pytest.raises(PoolError, match="refuses new ones"):
                loops.run(where, pick=1)
            assert loops.run(where, pick=0)[1] == first  # the other loop still serves
            wait_until(lambda: not loops.stats()[1].alive)  # its thread is ending
            assert loops.stats()[0].alive
    assert loop_threads() == []
    (alive,) = (r for r in res.made if r.thread == first)
    (died,) = (r for r in res.made if r.thread != first)
    assert alive.closed_on == first  # loop 0 closed its own
    # loop 1 closed its resource on its way down (its teardown ran as its tasks were
    # cancelled), or it was dropped, with a warning
    assert died.closed_on == died.thread or any(
        "loop 1 died" in r.getMessage() for r in caplog.records
    )


def test_200_loop_pools_started_and_closed_leave_nothing_behind() -> None:
    res = Resources()
    threads = threading.active_count()
    for i in range(200):
        with LoopPool(res.factory, res.close, 1, backend="trio" if i % 2 else "asyncio") as loops:
            assert loops.run(where)[0] == i
        assert loops.closed and loops.stats()[0].pool.size == 0
    assert threading.active_count() == threads and loop_threads() == []
    assert len(res.made) == 200
    res.assert_all_closed_on_their_loops()


def test_loop_pool_run_or_close_from_its_own_loop_raises() -> None:
    res = Resources()
    with LoopPool(res.factory, res.close, 1) as loops:

        async def misuse(resource: Resource) -> list[str]:
            messages = []
            for call in (lambda: loops.run(where), loops.close):
                with pytest.raises(PoolError) as caught:
                    call()
                messages.append(str(caught.value))
            return messages

        run, close = loops.run(misuse)
        assert "LoopPool(1 asyncio loops).run() or map() was called from its own loop 0" in run
        assert "LoopPool(1 asyncio loops).close() was called from its own loop 0" in close
        assert not loops.closed
    assert_nothing_left(res, loops)


async def test_cancelling_a_start_stops_everything_started(loops_backend: str) -> None:
    res = Resources()
    started = threading.Event()

    async def stuck_factory() -> Resource:
        started.set()
        await anyio.sleep_forever()
        raise AssertionError("unreachable")

    loops = AsyncLoopPool(stuck_factory, res.close, 2, backend=loops_backend)
    with anyio.CancelScope() as scope:
        async with anyio.create_task_group() as group:
            group.start_soon(loops.start)
            await async_wait_until(started.is_set)
            scope.cancel()
    assert scope.cancelled_caught
    assert loops.closed and loop_threads() == []
    assert all(not s.alive and s.pool.size == s.pool.creating == 0 for s in loops.stats())


def test_each_loops_pool_is_opened_there_so_its_maintainer_keeps_min_size() -> None:
    res = Resources()
    loops = LoopPool(res.factory, res.close, 2, pool_size=1, min_size=1, discard_on=KeyError)
    with loops:

        async def discard(resource: Resource) -> None:
            raise KeyError("broken")

        with pytest.raises(KeyError):
            loops.run(discard, pick=0)  # discard_on below closes it...
        wait_until(lambda: loops.stats()[0].pool.created == 2)  # ...the maintainer refills
        assert loops.stats()[0].pool.broken == 1
    assert_nothing_left(res, loops)
