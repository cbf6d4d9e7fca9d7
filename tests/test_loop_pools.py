"""LoopPools (issue 12, item 1): one AsyncPool per (key, running event loop).

Each confirmed dataknobs bug is a test here: concurrent first use made 5 pools (4 never
closed); pools of finished loops were never removed, and a new loop reusing a dead
loop's ``id()`` got the dead loop's pool; configuration keys dropped fields, so
different configurations shared a pool; ``atexit`` cleanup called ``asyncio.run`` and
failed for the pools of other loops.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import threading
import weakref
from collections.abc import Hashable
from typing import Any

import anyio
import attrs
import pytest
import trio

from respool import AsyncPool, LoopPools, PoolError

from .concurrency import async_wait_until

pytestmark = pytest.mark.anyio


class Tracked:
    """Every resource and pool made, and where each resource was closed."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.pools: list[AsyncPool[Resource]] = []
        self.made: list[Resource] = []
        self.calls = 0  # make_pool calls

    def make_pool(self, key: Hashable) -> AsyncPool[Resource]:
        with self.lock:
            self.calls += 1

        async def factory() -> Resource:
            resource = Resource(key)
            with self.lock:
                self.made.append(resource)
            return resource

        pool = AsyncPool(factory, self.close, pool_size=2)
        self.pools.append(pool)
        return pool

    async def slow_make_pool(self, key: Hashable) -> AsyncPool[Resource]:
        """An async ``make_pool`` that yields (dataknobs validated its pool on the way)."""
        await anyio.sleep(0.001)
        return self.make_pool(key)

    @staticmethod
    async def close(resource: Resource) -> None:
        resource.closed_on = current_loop()

    def alive(self) -> list[Resource]:
        return [r for r in self.made if r.closed_on is None]


class Resource:
    def __init__(self, key: Hashable) -> None:
        self.key = key
        self.loop = current_loop()
        self.closed_on: object = None


def current_loop() -> object:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return trio.lowlevel.current_trio_token()


async def use(pools: LoopPools[Resource], key: Hashable = "default") -> AsyncPool[Resource]:
    pool = await pools.get(key)
    async with pool.lease() as resource:
        assert resource.loop is current_loop()
    return pool


# -- one pool per key and loop --------------------------------------------------------


async def test_concurrent_first_use_makes_exactly_one_pool() -> None:
    """dataknobs: concurrent first use on one loop created 5 pools, 4 never closed."""
    t = Tracked()
    pools = LoopPools(t.slow_make_pool)
    got: list[AsyncPool[Resource]] = []

    async def first_use() -> None:
        got.append(await pools.get())

    async with anyio.create_task_group() as group:
        for _ in range(100):
            group.start_soon(first_use)
    assert t.calls == 1 and len(t.pools) == 1
    assert len(got) == 100 and all(pool is t.pools[0] for pool in got)
    assert len(pools) == 1
    await pools.aclose()
    assert t.pools[0].closed and len(pools) == 0


async def test_a_failing_make_pool_fails_every_waiter_and_registers_nothing() -> None:
    calls = 0

    async def make_pool(key: Hashable) -> AsyncPool[Any]:
        nonlocal calls
        calls += 1
        await anyio.sleep(0.001)
        raise ConnectionRefusedError("no such database")

    pools: LoopPools[Any] = LoopPools(make_pool)
    errors: list[BaseException] = []

    async def first_use() -> None:
        try:
            await pools.get()
        except Exception as exc:
            errors.append(exc)

    async with anyio.create_task_group() as group:
        for _ in range(10):
            group.start_soon(first_use)
    assert calls == 1
    assert sum(isinstance(e, ConnectionRefusedError) for e in errors) == 1  # the maker's
    waiters = [e for e in errors if isinstance(e, PoolError)]
    assert len(waiters) == 9
    assert all(isinstance(e.__cause__, ConnectionRefusedError) for e in waiters)
    assert "failed in the task that called it first" in str(waiters[0])
    assert len(pools) == 0 and pools.info() == []
    with pytest.raises(ConnectionRefusedError):
        await pools.get()  # tried again: nothing was kept
    assert calls == 2


async def test_a_cancelled_maker_hands_over_to_a_waiter() -> None:
    t = Tracked()
    started, waiting = anyio.Event(), anyio.Event()

    async def make_pool(key: Hashable) -> AsyncPool[Resource]:
        if not started.is_set():
            started.set()
            await anyio.sleep_forever()  # the first maker: cancelled here
        return t.make_pool(key)

    pools = LoopPools(make_pool)
    got: list[AsyncPool[Resource]] = []
    maker = anyio.CancelScope()

    async def make_first() -> None:
        with maker:
            await pools.get()

    async def wait_for_it() -> None:
        waiting.set()  # no checkpoint until it waits inside get()
        got.append(await pools.get())

    async with anyio.create_task_group() as group:
        group.start_soon(make_first)
        await started.wait()
        group.start_soon(wait_for_it)
        await waiting.wait()
        maker.cancel()
    assert maker.cancelled_caught
    assert len(got) == 1 and got[0] is t.pools[0] and len(pools) == 1
    await pools.aclose()


async def test_keys_are_compared_by_equality_with_every_field() -> None:
    """dataknobs: configuration keys dropped fields, so different configurations shared."""

    @attrs.frozen
    class Config:
        host: str
        database: str
        pool_size: int

    class SameHash:
        def __init__(self, name: str) -> None:
            self.name = name

        def __hash__(self) -> int:
            return 1  # every instance collides

        def __eq__(self, other: object) -> bool:
            return isinstance(other, SameHash) and other.name == self.name

    t = Tracked()
    pools = LoopPools(t.make_pool)
    a = await pools.get(Config("db", "app", 5))
    assert await pools.get(Config("db", "app", 5)) is a  # equal: shared
    assert await pools.get(Config("db", "app", 6)) is not a  # one field differs
    assert await pools.get(Config("db", "other", 5)) is not a
    x, y = await pools.get(SameHash("x")), await pools.get(SameHash("y"))
    assert x is not y and await pools.get(SameHash("x")) is x
    assert len(pools) == 5
    assert sum(isinstance(info.key, Config) for info in pools.info()) == 3
    with pytest.raises(TypeError, match="key must be hashable"):
        await pools.get(["a", "list"])
    await pools.aclose()
    assert all(pool.closed for pool in t.pools) and len(pools) == 0


async def test_info_lists_key_loop_and_stats() -> None:
    t = Tracked()
    pools = LoopPools(t.make_pool)
    await use(pools, "a")
    ((key, loop, stats),) = pools.info()
    assert key == "a" and loop is current_loop()
    assert stats.acquired == 1 and stats.idle == 1
    await pools.aclose()
    assert pools.info() == [] and t.alive() == []
    assert await pools.get("a") is not t.pools[0]  # made again on demand
    await pools.aclose()


async def test_bad_make_pool_results_and_outside_a_loop() -> None:
    with pytest.raises(TypeError, match="make_pool must be callable"):
        LoopPools(42)  # type: ignore[arg-type]
    pools: LoopPools[Any] = LoopPools(lambda key: "not a pool")
    with pytest.raises(TypeError, match=r"make_pool\('default'\) must return an AsyncPool"):
        await pools.get()
    assert len(pools) == 0


def test_get_outside_a_loop_says_so() -> None:
    pools = LoopPools(Tracked().make_pool)
    coro = pools.get()
    with pytest.raises(RuntimeError, match="inside an asyncio or trio run"):
        coro.send(None)


# -- loops that end -----------------------------------------------------------------------


@pytest.mark.parametrize("flavour", ["asyncio", "uvloop", "anyio", "trio"])
def test_a_loop_that_ends_disposes_its_pools_on_itself(flavour: str) -> None:
    t = Tracked()
    pools = LoopPools(t.make_pool)

    async def main() -> object:
        await use(pools, "a")
        await use(pools, "b")
        assert len(pools) == 2
        return current_loop()

    if flavour == "asyncio":
        loop = asyncio.run(main())
    elif flavour == "uvloop":
        uvloop = pytest.importorskip("uvloop")
        loop = uvloop.run(main())
    elif flavour == "anyio":
        loop = anyio.run(main)
    else:
        loop = trio.run(main)
    assert len(pools) == 0 and all(pool.closed for pool in t.pools)
    assert len(t.made) == 2 and all(r.closed_on is loop for r in t.made)  # on their loop


def test_every_loop_gets_its_own_pool_and_a_dead_loop_is_never_reused(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """dataknobs: finished loops' pools stayed; a new loop at a dead one's id() got it."""
    made: list[weakref.ref[AsyncPool[object]]] = []

    async def factory() -> object:
        return object()

    def make_pool(key: Hashable) -> AsyncPool[object]:
        pool = AsyncPool(factory, None, pool_size=1)
        made.append(weakref.ref(pool))  # held by nothing here, so its dead loop can go
        return pool

    async def pool_id() -> int:
        pool = await pools.get()
        async with pool.lease():
            return id(pool)

    pools = LoopPools(make_pool)
    loop_ids: set[int] = set()
    reused = 0
    with caplog.at_level(logging.WARNING, logger="respool"):
        for i in range(20):
            loop = asyncio.new_event_loop()  # ended without asyncio.run: no hook runs
            loop.run_until_complete(pool_id())
            assert len(made) == i + 1  # a pool of its own, never a dead loop's
            loop.close()
            reused += id(loop) in loop_ids
            loop_ids.add(id(loop))
            del loop
            assert len(pools) == 0  # noticed, dropped, with a warning naming the key
            gc.collect()
    dropped = [r.getMessage() for r in caplog.records if "dropped" in r.getMessage()]
    assert len(dropped) == 20
    assert "the pool for key 'default' belonged to the asyncio event loop" in dropped[0]
    assert "ended without disposing them; its 1 resource(s) were dropped" in dropped[0]
    assert reused > 0, "no loop reused a dead loop's id(): the id() case went untested"


def test_close_all_disposes_on_each_loop_and_never_calls_asyncio_run(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """dataknobs: atexit cleanup called asyncio.run, which failed for other loops' pools."""
    t = Tracked()
    pools = LoopPools(t.make_pool)
    ready, stop = threading.Event(), threading.Event()
    loops: list[object] = []

    def serve(flavour: str) -> None:
        async def main() -> None:
            await use(pools, flavour)
            loops.append(current_loop())
            ready.set()
            while not stop.is_set():
                await anyio.sleep(0.001)

        anyio.run(main, backend=flavour)

    threads = []
    for flavour in ("asyncio", "trio"):
        ready.clear()
        threads.append(threading.Thread(target=serve, args=(flavour,)))
        threads[-1].start()
        ready.wait(10)
    dead = asyncio.new_event_loop()
    dead.run_until_complete(use(pools, "dead"))
    dead.close()
    monkeypatch.setattr(asyncio, "run", lambda *a, **k: pytest.fail("asyncio.run called"))
    monkeypatch.setattr(asyncio, "new_event_loop", lambda: pytest.fail("a loop was made"))
    with caplog.at_level(logging.WARNING, logger="respool"):
        pools.close_all(timeout=10)
    stop.set()
    for thread in threads:
        thread.join()
    assert len(pools) == 0 and all(pool.closed for pool in t.pools[:2])
    by_key = {r.key: r for r in t.made}
    assert by_key["asyncio"].closed_on is loops[0]  # each closed on its own loop
    assert by_key["trio"].closed_on is loops[1]
    assert by_key["dead"].closed_on is None  # its loop cannot run: dropped, with a warning
    assert any("key 'dead'" in r.getMessage() for r in caplog.records)


def test_200_loops_leave_no_pool_thread_or_resource_behind() -> None:
    t = Tracked()
    pools = LoopPools(t.make_pool)
    threads = threading.active_count()

    async def main() -> None:
        await use(pools)
        await use(pools, "other")

    for i in range(200):
        if i % 2:
            asyncio.run(main())
        else:
            trio.run(main)
    gc.collect()
    assert len(pools) == 0 and pools._loops == {}  # no loop or pool left registered
    assert len(t.pools) == 400 and all(pool.closed for pool in t.pools)
    assert len(t.made) == 400 and t.alive() == []  # every resource closed
    assert threading.active_count() == threads


async def test_pools_of_the_running_loop_close_with_aclose_and_others_stay() -> None:
    t = Tracked()
    pools = LoopPools(t.make_pool)
    release = threading.Event()

    async def hold() -> None:
        await use(pools, "elsewhere")
        while not release.is_set():
            await asyncio.sleep(0.001)

    other = threading.Thread(target=lambda: asyncio.run(hold()))
    other.start()
    await async_wait_until(lambda: len(pools) == 1)
    await use(pools, "here")
    assert len(pools) == 2
    await pools.aclose()  # this loop's only
    assert [info.key for info in pools.info()] == ["elsewhere"]
    release.set()
    other.join()
    assert len(pools) == 0 and t.alive() == []


@pytest.mark.parametrize("flavour", ["asyncio", "trio"])
def test_an_opened_pool_with_its_maintainer_is_disposed_at_the_loops_end(flavour: str) -> None:
    t = Tracked()

    def make_pool(key: Hashable) -> AsyncPool[Resource]:
        async def factory() -> Resource:
            resource = Resource(key)
            t.made.append(resource)
            return resource

        pool = AsyncPool(factory, t.close, pool_size=3, min_size=2)
        t.pools.append(pool)
        return pool

    pools = LoopPools(make_pool)

    async def main() -> object:
        pool = await pools.get()
        await pool.open(wait=True)  # its maintainer keeps min_size=2 alive
        await use(pools)
        return current_loop()

    loop = anyio.run(main, backend=flavour)
    (pool,) = t.pools
    assert pool.closed and pool.stats().size == 0 and len(pools) == 0
    assert len(t.made) >= 2 and all(r.closed_on is loop for r in t.made)
