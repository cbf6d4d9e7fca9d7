"""Adversarial tests of AsyncLoopPool / LoopPool, from the docs' promises only."""

from __future__ import annotations

import asyncio
import functools
import threading
import time

import anyio
import pytest

from respool import AsyncLoopPool, LoopPool, PoolClosed, PoolError


def loop_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("respool-loop")]


class Book:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.made = 0
        self.closed = 0
        self.fail_on: int | None = None

    async def factory(self) -> dict:
        with self.lock:
            self.made += 1
            n = self.made
        if self.fail_on is not None and n == self.fail_on:
            raise OSError(f"factory failed on call {n}")
        return {"thread": threading.get_ident(), "n": n}

    async def releaser(self, r: dict) -> None:
        assert r["thread"] == threading.get_ident(), "closed on a foreign loop"
        with self.lock:
            self.closed += 1


async def where(r: dict) -> int:
    assert r["thread"] == threading.get_ident(), "resource used on a foreign loop"
    return threading.get_ident()


@pytest.mark.anyio
@pytest.mark.parametrize("backend", ["asyncio", "trio"])
async def test_run_round_robin_and_pick(backend: str) -> None:
    book = Book()
    async with AsyncLoopPool(
        book.factory, book.releaser, loop_count=3, pool_size=2, backend=backend
    ) as loops:
        ids = [await loops.run(where) for _ in range(6)]
        assert len(set(ids)) == 3
        assert ids[:3] == ids[3:]
        assert await loops.run(where, pick=1) == ids[1]
        with pytest.raises(IndexError):
            await loops.run(where, pick=3)
        with pytest.raises((IndexError, TypeError)):
            await loops.run(where, pick=-1)
        res = (
            await loops.map(lambda r, x: _double(r, x), range(10))
            if False
            else await loops.map(_double, range(10))
        )
        assert res == [2 * x for x in range(10)]
        assert await loops.map(_double, []) == []
    assert book.made == book.closed == 6
    assert loop_threads() == []


async def _double(r: dict, x: int) -> int:
    assert r["thread"] == threading.get_ident()
    await anyio.sleep(0.001 * (x % 3))
    return 2 * x


@pytest.mark.anyio
@pytest.mark.parametrize("fail_on", [1, 2, 3])
async def test_factory_failing_on_one_loop_leaves_no_threads(fail_on: int) -> None:
    # one loop only: with several, the start can hang (test_start_failure_hang.py)
    book = Book()
    book.fail_on = fail_on
    before = set(threading.enumerate())
    loops = AsyncLoopPool(book.factory, book.releaser, loop_count=1, pool_size=3, fatal=OSError)
    with pytest.raises(OSError):
        await loops.start()
    assert loops.closed
    await anyio.sleep(0.05)
    left = [
        t for t in threading.enumerate() if t not in before and not t.name.startswith("Trio thread")
    ]
    assert left == [], left
    assert book.closed == book.made - 1  # every resource made was closed
    with pytest.raises(PoolClosed):
        await loops.start()
    with pytest.raises((PoolClosed, PoolError)):
        await loops.run(where)


def test_sync_factory_failing_start_leaves_no_threads() -> None:
    book = Book()
    book.fail_on = 4
    before = set(threading.enumerate())
    lp = LoopPool(book.factory, book.releaser, loop_count=1, pool_size=4, fatal=OSError)
    with pytest.raises(OSError):
        with lp:
            pass
    assert [
        t for t in threading.enumerate() if t not in before and not t.name.startswith("Trio thread")
    ] == []


def test_sync_factory_retrying_until_timeout_leaves_no_threads() -> None:
    async def bad() -> int:
        raise OSError("down")

    before = set(threading.enumerate())
    lp = LoopPool(bad, None, loop_count=1, acquire_timeout=0.2)
    with pytest.raises(Exception):
        lp.start()
    assert [
        t for t in threading.enumerate() if t not in before and not t.name.startswith("Trio thread")
    ] == []


@pytest.mark.anyio
async def test_run_from_own_loop_raises() -> None:
    book = Book()
    async with AsyncLoopPool(book.factory, book.releaser, loop_count=2) as loops:

        async def inner(r: dict) -> object:
            with pytest.raises(PoolError):
                await loops.run(where)
            with pytest.raises(PoolError):
                await loops.map(_double, [1])
            return "ok"

        assert await loops.run(inner) == "ok"


def test_sync_run_from_own_loop_raises() -> None:
    book = Book()
    with LoopPool(book.factory, book.releaser, loop_count=2) as loops:

        async def inner(r: dict) -> object:
            with pytest.raises(PoolError):
                loops.run(where)
            with pytest.raises(PoolError):
                loops.close()
            return "ok"

        assert loops.run(inner, timeout=5) == "ok"


@pytest.mark.anyio
async def test_non_async_fn_type_error_before_dispatch() -> None:
    book = Book()
    calls = 0

    def plain(r: dict) -> int:
        nonlocal calls
        calls += 1
        return 1

    async with AsyncLoopPool(book.factory, book.releaser, loop_count=2) as loops:
        with pytest.raises(TypeError):
            await loops.run(plain)  # type: ignore[arg-type]
        with pytest.raises(TypeError):
            await loops.map(plain, [1, 2])  # type: ignore[arg-type]
        assert calls == 0
        assert (
            sum(s.calls for s in loops.stats()) == 0 if hasattr(loops.stats()[0], "calls") else True
        )
        # a partial of an async function is a coroutine function
        assert await loops.run(functools.partial(_double, x=2)) == 4


@pytest.mark.anyio
async def test_map_first_error_cancels_the_rest() -> None:
    book = Book()
    cancelled: list[int] = []
    finished: list[int] = []

    async def fn(r: dict, x: int) -> int:
        try:
            if x == 3:
                await anyio.sleep(0.05)
                raise ValueError("item 3")
            await anyio.sleep(5)
            finished.append(x)
            return x
        except anyio.get_cancelled_exc_class():
            cancelled.append(x)
            raise

    async with AsyncLoopPool(book.factory, book.releaser, loop_count=2, pool_size=8) as loops:
        with anyio.fail_after(4):
            with pytest.raises(ValueError, match="item 3"):
                await loops.map(fn, range(8))
        assert finished == []
        assert sorted(cancelled) == [0, 1, 2, 4, 5, 6, 7]
        assert all(s.in_flight == 0 for s in loops.stats()), loops.stats()
        assert all(s.pool.leased == 0 for s in loops.stats())


@pytest.mark.anyio
async def test_run_timeout_cancels_on_loop() -> None:
    book = Book()
    state: list[str] = []

    async def slow(r: dict) -> None:
        try:
            await anyio.sleep(5)
        finally:
            state.append("ended")

    async with AsyncLoopPool(book.factory, book.releaser, loop_count=1) as loops:
        with pytest.raises(TimeoutError):
            await loops.run(slow, timeout=0.05)
        assert state == ["ended"]
        assert loops.stats()[0].pool.leased == 0
        with pytest.raises(TimeoutError):
            await loops.map(
                lambda r, x: slow(r), [1, 2], timeout=0.05
            ) if False else await loops.map(_slow2, [1, 2], timeout=0.05)
        assert loops.stats()[0].pool.leased == 0
        assert await loops.run(where, timeout=1)


async def _slow2(r: dict, x: int) -> None:
    await anyio.sleep(5)


@pytest.mark.anyio
async def test_caller_cancellation_cancels_on_loop() -> None:
    book = Book()
    state: list[str] = []

    async def slow(r: dict) -> None:
        try:
            await anyio.sleep(5)
        finally:
            state.append("ended")

    async with AsyncLoopPool(book.factory, book.releaser, loop_count=2) as loops:
        with anyio.move_on_after(0.05):
            await loops.run(slow)
        assert state == ["ended"]
        with anyio.move_on_after(0.05):
            await loops.map(_slow2, range(4))
        assert all(s.pool.leased == 0 for s in loops.stats())
        assert all(s.in_flight == 0 for s in loops.stats())


def test_asyncio_task_cancel_of_run() -> None:
    book = Book()
    state: list[str] = []

    async def slow(r: dict) -> None:
        try:
            await anyio.sleep(5)
        finally:
            state.append("ended")

    async def main() -> None:
        async with AsyncLoopPool(book.factory, book.releaser, loop_count=2) as loops:
            for _ in range(20):
                t = asyncio.ensure_future(loops.run(slow))
                await asyncio.sleep(0.001)
                t.cancel()
                t.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await t
            assert all(s.pool.leased == 0 for s in loops.stats())
            assert all(s.in_flight == 0 for s in loops.stats())

    asyncio.run(main())
    assert len(state) <= 20
    assert book.made == book.closed


@pytest.mark.anyio
async def test_close_twice_and_use_after_close() -> None:
    book = Book()
    loops = AsyncLoopPool(book.factory, book.releaser, loop_count=2)
    with pytest.raises(PoolError):
        await loops.run(where)
    await loops.start()
    with pytest.raises(PoolError):
        await loops.start()
    await loops.aclose()
    await loops.aclose()
    with pytest.raises(PoolClosed):
        await loops.run(where)
    with pytest.raises(PoolClosed):
        await loops.map(_double, [1])
    with pytest.raises(PoolClosed):
        await loops.start()
    assert loop_threads() == []


@pytest.mark.anyio
async def test_shutdown_with_calls_in_flight() -> None:
    book = Book()
    loops = AsyncLoopPool(
        book.factory, book.releaser, loop_count=2, pool_size=4, shutdown_timeout=0.1
    )
    await loops.start()
    results: list[object] = []

    async def call() -> None:
        try:
            results.append(await loops.run(_slow2_one))
        except BaseException as e:
            results.append(e)

    async with anyio.create_task_group() as tg:
        for _ in range(6):
            tg.start_soon(call)
        await anyio.sleep(0.05)
        await loops.aclose()
    assert len(results) == 6
    assert all(isinstance(r, PoolClosed) for r in results), results
    assert book.made == book.closed
    assert loop_threads() == []


async def _slow2_one(r: dict) -> None:
    await anyio.sleep(10)


def test_loop_thread_dying_fails_calls() -> None:
    book = Book()
    with LoopPool(book.factory, book.releaser, loop_count=2) as loops:

        async def kill(r: dict) -> None:
            asyncio.get_running_loop().stop()
            await asyncio.sleep(10)

        with pytest.raises(Exception):
            loops.run(kill, pick=0, timeout=5)
        with pytest.raises(PoolError):
            loops.run(where, pick=0, timeout=5)
        with pytest.raises(PoolError, match="refuses new ones"):
            loops.run(where, pick=1, timeout=5)  # the whole pool refuses until closed
    assert loop_threads() == []


def test_loop_thread_dying_by_base_exception() -> None:
    book = Book()
    with LoopPool(book.factory, book.releaser, loop_count=2) as loops:

        async def die(r: dict) -> None:
            raise SystemExit("die")

        with pytest.raises(BaseException):
            loops.run(die, pick=0, timeout=5)
        # Either the call simply raised, or the loop died; if it died, calls fail
        try:
            loops.run(where, pick=0, timeout=5)
        except PoolError:
            pass
    assert loop_threads() == []


def test_sync_from_many_threads() -> None:
    book = Book()
    errors: list[BaseException] = []
    with LoopPool(book.factory, book.releaser, loop_count=3, pool_size=2) as loops:

        def worker() -> None:
            try:
                for i in range(30):
                    loops.run(where)
                    assert loops.map(_double, range(5)) == [0, 2, 4, 6, 8]
            except BaseException as e:
                errors.append(e)

        ths = [threading.Thread(target=worker) for _ in range(8)]
        for t in ths:
            t.start()
        for t in ths:
            t.join()
    assert errors == []
    assert book.made == book.closed
    assert loop_threads() == []


def test_sync_timeout_and_close_from_other_thread() -> None:
    book = Book()
    lp = LoopPool(book.factory, book.releaser, loop_count=1, shutdown_timeout=0.1)
    lp.start()
    with pytest.raises(TimeoutError):
        lp.run(_slow2_one, timeout=0.05)
    out: list[BaseException] = []

    def caller() -> None:
        try:
            lp.run(_slow2_one)
        except BaseException as e:
            out.append(e)

    th = threading.Thread(target=caller)
    th.start()
    time.sleep(0.05)
    lp.close()
    th.join(5)
    assert not th.is_alive()
    assert len(out) == 1 and isinstance(out[0], PoolClosed)
    assert loop_threads() == []


def test_created_and_closed_many_times() -> None:
    book = Book()
    before = threading.active_count()
    for _ in range(50):
        with LoopPool(book.factory, book.releaser, loop_count=2) as loops:
            loops.run(where)
    assert threading.active_count() == before
    assert book.made == book.closed == 100


@pytest.mark.parametrize(
    "kwargs, exc",
    [
        ({"loop_count": 0}, ValueError),
        ({"loop_count": 1.5}, TypeError),
        ({"loop_count": "2"}, TypeError),
        ({"backend": "curio"}, ValueError),
        ({"pool_size": 0}, ValueError),
        ({"no_such_option": 1}, TypeError),
    ],
)
def test_constructor_validation(kwargs: dict, exc: type) -> None:
    with pytest.raises(exc):
        LoopPool(Book().factory, None, **kwargs)
    with pytest.raises(exc):
        AsyncLoopPool(Book().factory, None, **kwargs)


@pytest.mark.anyio
async def test_bad_timeout_values() -> None:
    async with AsyncLoopPool(Book().factory, None, loop_count=1) as loops:
        with pytest.raises(ValueError):
            await loops.run(where, timeout=-1)
        with pytest.raises(TypeError):
            await loops.run(where, timeout="1")  # type: ignore[arg-type]
        with pytest.raises(TypeError):
            await loops.run(where, pick="0")  # type: ignore[arg-type]


def test_map_inputs_generator_raising_dispatches_nothing() -> None:
    book = Book()
    ran: list[int] = []

    async def fn(r: dict, x: int) -> int:
        ran.append(x)
        return x

    def gen():
        yield 1
        yield 2
        raise KeyError("inputs broke")

    with LoopPool(book.factory, book.releaser, loop_count=2) as loops:
        with pytest.raises(KeyError):
            loops.map(fn, gen())
        time.sleep(0.05)
        assert ran == []


def test_dead_loop_pool_refuses_new_calls() -> None:
    book = Book()
    with LoopPool(book.factory, book.releaser, loop_count=2) as loops:

        async def kill(r: dict) -> None:
            asyncio.get_running_loop().stop()
            await asyncio.sleep(10)

        with pytest.raises(PoolError, match="refuses new ones"):
            loops.run(kill, pick=0, timeout=5)
        deadline = time.monotonic() + 10
        while loops.stats()[0].alive:  # its thread is ending
            assert time.monotonic() < deadline
            time.sleep(0.01)
        with pytest.raises(PoolError):
            loops.run(where, pick=1, timeout=5)
