"""Adversarial tests of LoopPools, from the docs' promises only."""

from __future__ import annotations

import asyncio
import gc
import logging
import threading

import anyio
import pytest
import trio

from respool import AsyncPool, AsyncSharedPool, LoopPools, PoolError


class Tracker:
    def __init__(self) -> None:
        self.made = 0
        self.closed = 0
        self.pools_made = 0

    async def factory(self) -> object:
        self.made += 1
        return object()

    async def releaser(self, r: object) -> None:
        self.closed += 1

    def make_pool(self, key: object) -> AsyncPool[object]:
        self.pools_made += 1
        return AsyncPool(self.factory, self.releaser, pool_size=2)


@pytest.mark.anyio
async def test_100_concurrent_first_gets_make_one_pool() -> None:
    t = Tracker()

    async def make(key: object) -> AsyncPool[object]:
        t.pools_made += 1
        await anyio.sleep(0.01)
        return AsyncPool(t.factory, t.releaser, pool_size=2)

    pools = LoopPools(make)
    got: list[object] = []

    async def one() -> None:
        got.append(await pools.get("k"))

    async with anyio.create_task_group() as tg:
        for _ in range(100):
            tg.start_soon(one)
    assert t.pools_made == 1
    assert len({id(p) for p in got}) == 1
    assert len(pools) == 1
    await pools.aclose()
    assert len(pools) == 0


@pytest.mark.anyio
async def test_failing_make_pool_fails_all_and_registers_nothing() -> None:
    calls = 0

    async def make(key: object) -> AsyncPool[object]:
        nonlocal calls
        calls += 1
        await anyio.sleep(0.01)
        raise RuntimeError("boom")

    pools = LoopPools(make)
    results: list[BaseException] = []

    async def one() -> None:
        try:
            await pools.get("k")
        except BaseException as e:
            results.append(e)

    async with anyio.create_task_group() as tg:
        for _ in range(10):
            tg.start_soon(one)
    assert calls == 1
    assert len(results) == 10
    assert sum(isinstance(e, RuntimeError) for e in results) == 1
    waiters = [e for e in results if not isinstance(e, RuntimeError)]
    assert all(isinstance(e, PoolError) and isinstance(e.__cause__, RuntimeError) for e in waiters)
    assert len(pools) == 0
    with pytest.raises(RuntimeError):
        await pools.get("k")
    assert calls == 2


@pytest.mark.anyio
async def test_cancelled_maker_hands_over_to_a_waiter() -> None:
    t = Tracker()
    started = anyio.Event()
    calls = 0

    async def make(key: object) -> AsyncPool[object]:
        nonlocal calls
        calls += 1
        if calls == 1:
            started.set()
            await anyio.sleep(10)
        return AsyncPool(t.factory, t.releaser)

    pools = LoopPools(make)
    got: list[object] = []

    async def first() -> None:
        await pools.get("k")

    async def waiter() -> None:
        got.append(await pools.get("k"))

    async with anyio.create_task_group() as tg:
        async with anyio.create_task_group() as tg1:
            tg1.start_soon(first)
            await started.wait()
            tg.start_soon(waiter)
            tg.start_soon(waiter)
            await anyio.sleep(0.01)
            tg1.cancel_scope.cancel()
    assert calls == 2
    assert len(got) == 2 and got[0] is got[1]
    await pools.aclose()


@pytest.mark.anyio
async def test_keys_by_equality_not_hash() -> None:
    class K:
        def __init__(self, v: int) -> None:
            self.v = v

        def __hash__(self) -> int:
            return 1

        def __eq__(self, o: object) -> bool:
            return isinstance(o, K) and o.v == self.v

    t = Tracker()
    pools = LoopPools(t.make_pool)
    a = await pools.get(K(1))
    b = await pools.get(K(2))
    c = await pools.get(K(1))
    assert a is not b and a is c
    with pytest.raises(TypeError):
        await pools.get(["unhashable"])  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        await pools.get({"a": 1})  # type: ignore[arg-type]
    assert len(pools) == 2
    await pools.aclose()


@pytest.mark.anyio
async def test_make_pool_returning_wrong_type() -> None:
    pools = LoopPools(lambda key: "not a pool")  # type: ignore[arg-type,return-value]
    with pytest.raises(TypeError):
        await pools.get()
    assert len(pools) == 0


@pytest.mark.anyio
async def test_shared_pool_as_loop_pool() -> None:
    t = Tracker()
    pools = LoopPools(lambda key: AsyncSharedPool(t.factory, t.releaser, pool_size=1))
    p = await pools.get()
    async with p.lease() as r:
        assert r is not None
    await pools.aclose()
    assert t.closed == t.made == 1


def test_asyncio_run_200_times_leaves_nothing() -> None:
    t = Tracker()
    pools = LoopPools(t.make_pool)
    before = threading.active_count()

    async def task() -> None:
        p = await pools.get("db")
        async with p.lease(), p.lease():
            pass

    for _ in range(200):
        asyncio.run(task())
        assert len(pools) == 0
    assert t.pools_made == 200
    assert t.made == t.closed == 400
    assert threading.active_count() == before
    assert pools.info() == []


def test_uvloop_run_end_disposes() -> None:
    uvloop = pytest.importorskip("uvloop")
    t = Tracker()
    pools = LoopPools(t.make_pool)

    async def task() -> None:
        p = await pools.get("db")
        async with p.lease():
            pass

    for _ in range(5):
        uvloop.run(task())
    assert len(pools) == 0
    assert t.made == t.closed == 5


def test_trio_run_end_disposes_repeatedly() -> None:
    t = Tracker()
    pools = LoopPools(t.make_pool)

    async def task() -> None:
        p = await pools.get("db")
        async with p.lease():
            pass

    for _ in range(50):
        trio.run(task)
        assert len(pools) == 0
    assert t.made == t.closed == 50


def test_dead_loop_reused_id_gets_new_pool(caplog: pytest.LogCaptureFixture) -> None:
    t = Tracker()
    pools = LoopPools(t.make_pool)

    async def get() -> object:
        p = await pools.get("cfg-key-xyz")
        async with p.lease():
            pass
        return p

    seen: list[tuple[int, int]] = []
    for _ in range(30):
        loop = asyncio.new_event_loop()
        p = loop.run_until_complete(get())
        seen.append((id(loop), id(p)))
        loop.close()  # without shutdown_asyncgens
        del loop
        gc.collect()
    ids = [s[0] for s in seen]
    assert len(set(ids)) < len(ids) or True
    assert t.pools_made == 30
    with caplog.at_level(logging.WARNING, logger="respool"):
        n = len(pools)
    assert n == 0


def test_dead_loop_pool_dropped_with_warning(caplog: pytest.LogCaptureFixture) -> None:
    t = Tracker()
    pools = LoopPools(t.make_pool)
    loop = asyncio.new_event_loop()

    async def get() -> None:
        await pools.get("cfg-key-xyz")

    loop.run_until_complete(get())
    loop.close()
    with caplog.at_level(logging.WARNING, logger="respool"):
        assert len(pools) == 0
    assert any("cfg-key-xyz" in r.getMessage() for r in caplog.records), caplog.records


def test_close_all_from_sync_with_loop_in_other_thread() -> None:
    t = Tracker()
    pools = LoopPools(t.make_pool)
    ready = threading.Event()
    done = threading.Event()

    async def main() -> None:
        p = await pools.get("k")
        async with p.lease():
            pass
        ready.set()
        while not done.is_set():
            await asyncio.sleep(0.01)

    th = threading.Thread(target=asyncio.run, args=(main(),))
    th.start()
    ready.wait(5)
    pools.close_all(timeout=5)
    assert len(pools) == 0
    assert t.closed == t.made == 1
    done.set()
    th.join()
    assert t.closed == 1


def test_close_all_with_no_loop_does_not_raise() -> None:
    pools = LoopPools(Tracker().make_pool)
    pools.close_all()
    pools.close_all()


def test_get_outside_loop_is_runtime_error() -> None:
    pools = LoopPools(Tracker().make_pool)
    coro = pools.get()
    with pytest.raises(RuntimeError):
        coro.send(None)
    coro.close()


def test_threads_each_with_loop() -> None:
    t = Tracker()
    pools = LoopPools(t.make_pool)
    seen: list[int] = []
    lock = threading.Lock()

    async def task() -> None:
        ps = await asyncio.gather(*(pools.get("k") for _ in range(20)))
        assert len({id(p) for p in ps}) == 1
        async with ps[0].lease():
            await asyncio.sleep(0.001)
        with lock:
            seen.append(id(ps[0]))

    ths = [threading.Thread(target=asyncio.run, args=(task(),)) for _ in range(16)]
    for th in ths:
        th.start()
    for th in ths:
        th.join()
    assert len(seen) == 16
    assert t.pools_made == 16
    assert len(pools) == 0
    assert t.made == t.closed


def test_aclose_while_make_pool_in_progress() -> None:
    t = Tracker()
    gate = None

    async def make(key: object) -> AsyncPool[object]:
        await gate.wait()
        return AsyncPool(t.factory, t.releaser)

    pools = LoopPools(make)

    async def main() -> None:
        nonlocal gate
        gate = asyncio.Event()
        task = asyncio.ensure_future(pools.get())
        await asyncio.sleep(0.01)
        await pools.aclose()
        gate.set()
        p = await task
        async with p.lease():
            pass
        assert len(pools) == 1

    asyncio.run(main())
    assert len(pools) == 0
    assert t.made == t.closed == 1
