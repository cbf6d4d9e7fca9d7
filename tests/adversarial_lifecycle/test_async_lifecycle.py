from __future__ import annotations

import itertools
import math

import anyio
import pytest

from respool import AsyncPool, PoolClosed, PoolError, PoolExhausted, PoolTimeout


class Res:
    _ids = itertools.count()

    def __init__(self) -> None:
        self.id = next(self._ids)
        self.closed = 0
        self.held = False

    def __repr__(self) -> str:
        return f"Res({self.id})"


class Tracker:
    def __init__(self, delay: float = 0.0, bound=None) -> None:
        self.delay = delay
        self.alive: set[Res] = set()
        self.made = 0
        self.max_alive = 0
        self.errors: list[str] = []
        self.bound = bound  # callable -> current bound

    async def factory(self) -> Res:
        if self.delay:
            await anyio.sleep(self.delay)
        r = Res()
        self.made += 1
        self.alive.add(r)
        self.max_alive = max(self.max_alive, len(self.alive))
        if self.bound is not None and len(self.alive) > self.bound():
            self.errors.append(f"alive {len(self.alive)} > bound {self.bound()}")
        return r

    async def close(self, r: Res) -> None:
        r.closed += 1
        if r.closed > 1:
            self.errors.append(f"{r} closed twice")
        if r.held:
            self.errors.append(f"{r} closed while held")
        self.alive.discard(r)


async def wait_until(pred, timeout=5.0):
    with anyio.fail_after(timeout):
        while not pred():
            await anyio.sleep(0.005)


@pytest.mark.anyio
async def test_min_size_kept_by_async_with(anyio_backend):
    t = Tracker()
    async with AsyncPool(t.factory, t.close, pool_size=5, min_size=3) as pool:
        await wait_until(lambda: pool.stats().size == 3)
        s = pool.stats()
        assert s.min_size == 3
    assert t.alive == set()


@pytest.mark.anyio
async def test_cancel_async_with_mid_creation(anyio_backend):
    t = Tracker(delay=0.2)
    pool = AsyncPool(t.factory, t.close, pool_size=5, min_size=3)
    with anyio.move_on_after(0.05):
        async with pool:
            await anyio.sleep(1)
    await anyio.sleep(0.3)
    s = pool.stats()
    assert pool.closed
    assert s.creating == 0 and s.size == 0 and s.idle == 0
    assert t.alive == set(), t.alive
    assert s.created == s.closed
    assert not t.errors


@pytest.mark.anyio
async def test_open_twice_maintain_twice_open_after_dispose(anyio_backend):
    t = Tracker()
    pool = AsyncPool(t.factory, t.close, pool_size=2, min_size=1)
    await pool.open()
    with pytest.raises(PoolError):
        await pool.open()
    with pytest.raises(PoolError):
        await pool.maintain()
    await pool.dispose()
    with pytest.raises(PoolClosed):
        await pool.open()
    with pytest.raises(PoolClosed):
        await pool.maintain()
    assert t.alive == set()


@pytest.mark.anyio
async def test_async_with_on_open_pool_raises_plain_pool_error(anyio_backend):
    t = Tracker()
    pool = AsyncPool(t.factory, t.close, pool_size=2, min_size=1)
    await pool.open()
    try:
        with pytest.raises(PoolError):
            async with pool:
                pass
    finally:
        await pool.dispose()


@pytest.mark.anyio
async def test_async_with_on_disposed_pool_raises_pool_closed(anyio_backend):
    pool = AsyncPool(Tracker().factory, None, pool_size=2, min_size=1)
    await pool.dispose()
    with pytest.raises(PoolClosed):
        async with pool:
            pass


@pytest.mark.anyio
async def test_maintain_twice_in_task_group(anyio_backend):
    t = Tracker()
    pool = AsyncPool(t.factory, t.close, pool_size=2, min_size=1)
    async with anyio.create_task_group() as tg:
        await tg.start(pool.maintain)
        with pytest.raises(PoolError):
            await pool.maintain()
        with pytest.raises(PoolError):
            await pool.open()
        await pool.dispose()
    assert t.alive == set()


@pytest.mark.anyio
async def test_maintain_scope_cancelled_then_reopen(anyio_backend):
    """Cancelling your scope stops the maintainer; the pool is not disposed: open it again."""
    t = Tracker()
    pool = AsyncPool(t.factory, t.close, pool_size=2, min_size=1)
    async with anyio.create_task_group() as tg:
        await tg.start(pool.maintain)
        await wait_until(lambda: pool.stats().size == 1)
        tg.cancel_scope.cancel()
    assert not pool.closed
    await pool.open()
    await pool.dispose()
    assert t.alive == set()


@pytest.mark.anyio
async def test_open_wait_timeout_carries_last_factory_error(anyio_backend):
    calls = 0

    async def bad():
        nonlocal calls
        calls += 1
        raise ConnectionRefusedError(f"refused #{calls}")

    pool = AsyncPool(bad, None, pool_size=2, min_size=1, max_backoff=0.1)
    with pytest.raises(PoolTimeout) as ei:
        await pool.open(wait=True, timeout=0.5)
    assert "refused" in str(ei.value)
    assert not pool.closed
    # stays open: opening again is an error
    with pytest.raises(PoolError):
        await pool.open()
    await pool.dispose()


@pytest.mark.anyio
async def test_open_wait_success(anyio_backend):
    t = Tracker(delay=0.02)
    pool = AsyncPool(t.factory, t.close, pool_size=5, min_size=4)
    await pool.open(wait=True, timeout=5)
    assert pool.stats().size >= 4
    await pool.dispose()
    assert t.alive == set()


@pytest.mark.anyio
async def test_factory_recovers(anyio_backend, quiet_respool):
    ok = False
    t = Tracker()

    async def flaky():
        if not ok:
            raise OSError("down")
        return await t.factory()

    async with AsyncPool(flaky, t.close, pool_size=3, min_size=2, max_backoff=0.2) as pool:
        await anyio.sleep(0.3)
        ok = True
        await wait_until(lambda: pool.stats().size == 2, 5)


@pytest.mark.anyio
async def test_resize_below_min_size(anyio_backend):
    t = Tracker()
    async with AsyncPool(t.factory, t.close, pool_size=5, min_size=4) as pool:
        await wait_until(lambda: pool.stats().size == 4)
        await pool.resize(2)
        assert pool.min_size == 2 and pool.pool_size == 2
        await anyio.sleep(0.2)
        assert pool.stats().size == 2
        with pytest.raises(ValueError):
            await pool.resize(2, min_size=3)
        assert pool.pool_size == 2 and pool.min_size == 2
        with pytest.raises(ValueError):
            await pool.resize(4, burst_limit=3)
        with pytest.raises((ValueError, TypeError)):
            await pool.resize(0)
        with pytest.raises(TypeError):
            await pool.resize(True)
        await pool.resize(6, min_size=5)
        await wait_until(lambda: pool.stats().size == 5)
    assert t.alive == set()


@pytest.mark.anyio
async def test_max_waiting_zero(anyio_backend):
    t = Tracker()
    pool = AsyncPool(t.factory, t.close, pool_size=1, max_waiting=0)
    r = await pool.acquire()
    with pytest.raises(PoolExhausted) as ei:
        await pool.acquire(timeout=1)
    assert ei.value.stats.exhausted == 1
    assert pool.stats().exhausted == 1
    assert pool.stats().waiting == 0
    await pool.release(r)
    r = await pool.acquire(timeout=1)
    await pool.release(r)
    await pool.dispose()


@pytest.mark.anyio
async def test_max_waiting_one(anyio_backend):
    t = Tracker()
    pool = AsyncPool(t.factory, t.close, pool_size=1, max_waiting=1)
    r = await pool.acquire()
    got = []
    async with anyio.create_task_group() as tg:

        async def waiter():
            got.append(await pool.acquire(timeout=5))

        tg.start_soon(waiter)
        await wait_until(lambda: pool.stats().waiting == 1)
        with pytest.raises(PoolExhausted):
            await pool.acquire(timeout=1)
        # timeout=0 while someone waits: exhausted or timeout, never blocks
        with pytest.raises((PoolExhausted, PoolTimeout)):
            await pool.acquire(timeout=0)
        await pool.release(r)
    await pool.release(got[0])
    await pool.dispose()


@pytest.mark.anyio
async def test_keepalive_check_hangs_does_not_stall(anyio_backend, quiet_respool):
    t = Tracker()
    checks = 0

    async def hang(r):
        nonlocal checks
        checks += 1
        await anyio.sleep(math.inf)

    async with AsyncPool(
        t.factory,
        t.close,
        pool_size=4,
        min_size=2,
        keepalive=0.1,
        check=hang,
        check_interval=100,
        cleanup_timeout=0.2,
    ) as pool:
        await wait_until(lambda: pool.stats().size >= 2)
        await anyio.sleep(0.5)
        # other callers still work
        with anyio.fail_after(3):
            async with pool.lease(timeout=2):
                pass
        # maintainer still keeps min_size after resize
        await pool.resize(4, min_size=3)
        await wait_until(lambda: pool.stats().size >= 3, 3)
    assert checks >= 1
    assert not t.errors


@pytest.mark.anyio
async def test_keepalive_check_raises_replaced(anyio_backend, quiet_respool):
    t = Tracker()

    async def bad(r):
        raise RuntimeError("dead")

    async with AsyncPool(
        t.factory, t.close, pool_size=4, min_size=2, keepalive=0.1, check=bad, check_interval=100
    ) as pool:
        await wait_until(lambda: t.made >= 6, 5)
        s = pool.stats()
        assert s.size <= 4
        assert s.broken >= 2
    assert not t.errors
    assert t.alive == set()


@pytest.mark.anyio
async def test_keepalive_check_false_replaced(anyio_backend, quiet_respool):
    t = Tracker()

    async with AsyncPool(
        t.factory,
        t.close,
        pool_size=4,
        min_size=2,
        keepalive=0.1,
        check=lambda r: _false(),
        check_interval=100,
    ) as pool:
        await wait_until(lambda: t.made >= 6, 5)
        await wait_until(lambda: pool.stats().size == 2, 5)
    assert not t.errors


async def _false():
    return False


@pytest.mark.anyio
async def test_idle_timeout_never_opened(anyio_backend):
    t = Tracker()
    pool = AsyncPool(t.factory, t.close, pool_size=4, min_size=2, idle_timeout=0.1)
    rs = [await pool.acquire() for _ in range(4)]
    for r in rs:
        await pool.release(r)
    await anyio.sleep(0.3)
    # release of another one triggers lazy enforcement
    r = await pool.acquire()
    await anyio.sleep(0.2)
    await pool.release(r)
    s = pool.stats()
    assert s.size <= 4
    await pool.dispose()
    assert t.alive == set()


@pytest.mark.anyio
async def test_idle_timeout_opened_shrinks_to_min(anyio_backend):
    t = Tracker()
    async with AsyncPool(t.factory, t.close, pool_size=6, min_size=2, idle_timeout=0.2) as pool:
        rs = [await pool.acquire() for _ in range(6)]
        for r in rs:
            await pool.release(r)
        await wait_until(lambda: pool.stats().size == 2, 3)
        await anyio.sleep(0.5)
        assert pool.stats().size == 2


@pytest.mark.anyio
async def test_burst_limit_counts(anyio_backend):
    t = Tracker(delay=0.01)
    pool = AsyncPool(t.factory, t.close, pool_size=2, burst_limit=4)
    held = [await pool.acquire() for _ in range(2)]
    got = []
    async with anyio.create_task_group() as tg:

        async def taker():
            got.append(await pool.acquire(timeout=5))

        for _ in range(3):
            tg.start_soon(taker)
        await wait_until(lambda: len(got) == 2 and pool.stats().waiting == 1)
        s = pool.stats()
        assert s.size == 4 and s.burst == 2, s
        await pool.release(held.pop())
    assert len(got) == 3
    for r in got + held:
        await pool.release(r)
    s = pool.stats()
    assert s.size == 2 and s.burst == 0, s
    await pool.dispose()


@pytest.mark.anyio
async def test_resize_under_load_with_burst(anyio_backend, quiet_respool):
    bound_state = {"b": 6}
    t = Tracker()
    pool = AsyncPool(t.factory, t.close, pool_size=4, burst_limit=6, acquire_timeout=10)

    async def closer(r):
        await t.close(r)

    stop = False

    async def worker():
        while not stop:
            async with pool.lease() as r:
                r.held = True
                await anyio.sleep(0.001)
                r.held = False

    sizes = [(2, None, 3), (8, None, 10), (1, 0, None), (5, 2, 7), (3, None, 3), (6, 1, 9)]
    async with pool:
        async with anyio.create_task_group() as tg:
            for _ in range(20):
                tg.start_soon(worker)
            for rnd in range(30):
                ps, ms, bl = sizes[rnd % len(sizes)]
                await pool.resize(ps, ms, burst_limit=bl)
                new_bound = bl if bl is not None else ps
                # during shrink, up to previous bound may still be alive
                await anyio.sleep(0.05)
                # after all leases came back at least once, alive <= new bound + held surplus
                bound_state["b"] = new_bound
            stop = True
        s = pool.stats()
        assert s.size <= 9 and s.leased == 0
    assert not t.errors, t.errors[:5]
    assert t.alive == set()


@pytest.mark.anyio
async def test_resize_shrink_never_above_new_bound_once_back(anyio_backend):
    t = Tracker()
    pool = AsyncPool(t.factory, t.close, pool_size=6)
    rs = [await pool.acquire() for _ in range(6)]
    await pool.resize(2)
    s = pool.stats()
    assert s.burst == 4, s
    for r in rs[:4]:
        await pool.release(r)
    assert pool.stats().size == 2
    assert len(t.alive) == 2
    for r in rs[4:]:
        await pool.release(r)
    assert pool.stats().size == 2 and pool.stats().idle == 2
    await pool.dispose()


@pytest.mark.anyio
async def test_resize_grow_serves_waiters(anyio_backend):
    t = Tracker()
    pool = AsyncPool(t.factory, t.close, pool_size=1)
    r = await pool.acquire()
    got = []
    async with anyio.create_task_group() as tg:

        async def taker():
            got.append(await pool.acquire(timeout=5))

        for _ in range(3):
            tg.start_soon(taker)
        await wait_until(lambda: pool.stats().waiting == 3)
        await pool.resize(4)
        await wait_until(lambda: len(got) == 3, 2)
    for x in [*got, r]:
        await pool.release(x)
    await pool.dispose()


@pytest.mark.anyio
async def test_resize_after_dispose(anyio_backend):
    pool = AsyncPool(Tracker().factory, None, pool_size=2)
    await pool.dispose()
    with pytest.raises(PoolClosed):
        await pool.resize(3)


@pytest.mark.anyio
async def test_retain_predicate_raises(anyio_backend):
    t = Tracker()
    pool = AsyncPool(t.factory, t.close, pool_size=4)
    rs = [await pool.acquire() for _ in range(4)]
    for r in rs:
        await pool.release(r)

    def pred(r):
        if r.id == rs[2].id:
            raise KeyError("boom")
        return False

    with pytest.raises(KeyError):
        await pool.retain(pred)
    s = pool.stats()
    assert s.idle == 4 and len(t.alive) == 4
    n = await pool.retain(lambda r: r.id % 2 == 0)
    assert n == 2
    assert pool.stats().idle == 2
    await pool.dispose()


@pytest.mark.anyio
async def test_retain_leaves_leased(anyio_backend):
    t = Tracker()
    pool = AsyncPool(t.factory, t.close, pool_size=4)
    r = await pool.acquire()
    r.held = True
    assert await pool.retain(lambda r: False) == 0
    r.held = False
    await pool.release(r)
    await pool.dispose()
    assert not t.errors


@pytest.mark.anyio
async def test_leak_reported_while_held_once_then_on_release(anyio_backend, caplog):
    import logging

    caplog.set_level(logging.WARNING, logger="respool")
    t = Tracker()

    async def acquirer_function_xyz(pool):
        return await pool.acquire()

    async with AsyncPool(t.factory, t.close, pool_size=2, leak_timeout=0.2) as pool:
        r = await acquirer_function_xyz(pool)
        await anyio.sleep(0.6)
        held = [rec for rec in caplog.records if rec.name.startswith("respool")]
        assert len(held) == 1, [x.getMessage() for x in held]
        await anyio.sleep(0.5)
        assert len([rec for rec in caplog.records if rec.name.startswith("respool")]) == 1
        await pool.release(r)
        recs = [rec for rec in caplog.records if rec.name.startswith("respool")]
        assert len(recs) == 2, [x.getMessage() for x in recs]
        assert (
            "already" in recs[1].getMessage().lower() or "reported" in recs[1].getMessage().lower()
        )


@pytest.mark.anyio
async def test_open_then_dispose_counts(anyio_backend):
    t = Tracker(delay=0.05)
    pool = AsyncPool(t.factory, t.close, pool_size=5, min_size=5)
    await pool.open()
    await anyio.sleep(0.07)
    await pool.dispose()
    await anyio.sleep(0.2)
    s = pool.stats()
    assert s.size == 0 and s.creating == 0
    assert t.alive == set()
    assert s.created == s.closed


@pytest.mark.anyio
async def test_resize_never_creates_beyond_bound_in_force(anyio_backend, quiet_respool):
    """A factory call never starts when alive + in flight already reach the bound in force."""
    bound = {"b": 6}
    alive: set = set()
    inflight = 0
    violations: list = []
    closed_twice: list = []

    async def factory():
        nonlocal inflight
        if len(alive) + inflight >= bound["b"]:
            violations.append((len(alive), inflight, bound["b"]))
        inflight += 1
        try:
            await anyio.sleep(0.002)
        finally:
            inflight -= 1
        r = Res()
        alive.add(r)
        return r

    async def close(r):
        r.closed += 1
        if r.closed > 1 or r.held:
            closed_twice.append(r)
        alive.discard(r)

    pool = AsyncPool(factory, close, pool_size=4, burst_limit=6, min_size=1, acquire_timeout=10)
    stop = False

    async def worker():
        while not stop:
            async with pool.lease() as r:
                r.held = True
                await anyio.sleep(0.001)
                r.held = False

    sizes = [
        (2, None, 3),
        (8, None, 10),
        (1, 0, None),
        (5, 2, 7),
        (3, None, 3),
        (6, 1, 9),
        (2, 2, None),
    ]
    async with pool:
        async with anyio.create_task_group() as tg:
            for _ in range(15):
                tg.start_soon(worker)
            for rnd in range(40):
                ps, ms, bl = sizes[rnd % len(sizes)]
                new = bl if bl is not None else ps
                bound["b"] = max(bound["b"], new)
                await pool.resize(ps, ms, burst_limit=bl)
                bound["b"] = new
                await anyio.sleep(0.02)
            stop = True
    assert not violations, violations[:5]
    assert not closed_twice
    assert alive == set()


@pytest.mark.anyio
async def test_failed_async_with_leaves_opened_pool_working(anyio_backend):
    t = Tracker()
    pool = AsyncPool(t.factory, t.close, pool_size=4, min_size=1)
    await pool.open(wait=True, timeout=5)
    with pytest.raises(PoolError):
        async with pool:
            pass
    assert not pool.closed
    await pool.resize(4, min_size=3)
    await wait_until(lambda: pool.stats().size == 3, 5)  # the first maintainer still runs
    await pool.dispose()
    assert t.alive == set()
