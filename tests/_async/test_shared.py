"""The shared pool (issue 13): resources with several holders, least-loaded first.

Both faces: tests/_sync is generated from this file.
"""

from __future__ import annotations

import random

import pytest

from respool import AsyncSharedPool, PoolClosed, PoolError, PoolTimeout

from ..concurrency import AsyncNursery, async_sleep, async_wait_until
from .resources import AsyncResources, Resource

pytestmark = pytest.mark.anyio


def shared(res: AsyncResources, **kwargs: object) -> AsyncSharedPool[Resource]:
    return AsyncSharedPool(res.factory, res.releaser, **kwargs)  # type: ignore[arg-type]


def holders(pool: AsyncSharedPool[Resource]) -> list[int]:
    return [r.holders for r in pool.resource_stats()]


def settled(res: AsyncResources, pool: AsyncSharedPool[Resource]) -> None:
    """Nothing held, nothing in flight; every count agrees with the record."""
    stats = pool.stats()
    assert (stats.leased, stats.waiting, stats.creating) == (0, 0, 0), stats
    assert stats.created == len(res.created) and stats.closed == len(res.closed), stats
    assert stats.size == res.alive, stats
    assert len({id(r) for r in res.closed}) == len(res.closed), "closed twice"
    assert res.peak <= stats.pool_size, res.peak


async def test_the_least_loaded_resource_is_handed_out_and_a_new_one_only_when_all_are_full() -> (
    None
):
    res = AsyncResources()
    pool = shared(res, pool_size=2, max_holders=3)
    got = [await pool.acquire() for _ in range(3)]
    assert len(res.created) == 1 and got == [res.created[0]] * 3  # one resource, 3 holders
    fourth = await pool.acquire()  # the first is full: a second one
    assert fourth is res.created[1] and holders(pool) == [3, 1]
    await pool.release(got[0])
    await pool.release(got[1])  # first: 1 holder, second: 1 holder
    assert await pool.acquire() is res.created[0]  # a tie goes to the oldest
    assert holders(pool) == [2, 1]
    assert await pool.acquire() is res.created[1]  # now the second is the least loaded
    assert pool.stats().leased == 4
    for resource in [got[2], fourth, res.created[0], res.created[1]]:
        await pool.release(resource)
    with pytest.raises(PoolError, match="no holder of it left"):
        await pool.release(fourth)  # released once more than acquired
    await pool.dispose()
    settled(res, pool)


async def test_callers_wait_in_turn_when_every_seat_is_taken() -> None:
    res = AsyncResources()
    pool = shared(res, pool_size=1, max_holders=2)
    first, second = await pool.acquire(), await pool.acquire()
    with pytest.raises(PoolTimeout, match="waiting for a resource") as caught:
        await pool.acquire(timeout=0.01)
    assert caught.value.stats.leased == 2
    order: list[int] = []

    async def waiter(n: int) -> None:
        async with pool.lease(timeout=10):
            order.append(n)
            await async_sleep(0.01)

    async with AsyncNursery() as nursery:
        for n in range(3):
            nursery.start_soon(waiter, n)
            await async_wait_until(lambda n=n: pool.stats().waiting == n + 1)  # type: ignore[misc]
        await pool.release(first)  # one seat: the oldest waiter takes it
        await async_wait_until(lambda: order == [0])
        await pool.release(second)
    assert order == [0, 1, 2]
    assert len(res.created) == 1
    await pool.dispose()
    settled(res, pool)


async def test_a_discarded_resource_gets_no_new_holder_and_closes_after_the_last() -> None:
    res = AsyncResources()
    pool = shared(res, pool_size=2, max_holders=4)
    a, b = await pool.acquire(), await pool.acquire()
    assert a is b
    await pool.discard(a)  # broken: b's holder still uses it
    assert not a.closed and pool.resource_stats()[0].broken
    c = await pool.acquire()
    assert c is not a  # a new one, not the broken one
    await pool.release(b)  # its last holder left: closed now
    assert a.closed and pool.stats().broken == 1
    await pool.release(c)
    await pool.dispose()
    settled(res, pool)


async def test_a_failed_check_retires_the_resource_while_others_still_use_it() -> None:
    res = AsyncResources()
    dead: set[int] = set()

    async def check(resource: Resource) -> bool:
        return resource.number not in dead

    pool = shared(res, pool_size=2, max_holders=4, check=check, check_interval=0)
    a = await pool.acquire()
    dead.add(a.number)
    b = await pool.acquire()  # a fails its check: retired, b gets a new one
    assert b is not a and not a.closed
    assert [s.broken for s in pool.resource_stats()] == [True, False]
    await pool.release(a)
    assert a.closed
    await pool.release(b)
    await pool.dispose()
    settled(res, pool)


async def test_resize_and_reconnect() -> None:
    res = AsyncResources()
    pool = shared(res, pool_size=3, max_holders=1)
    held = [await pool.acquire() for _ in range(3)]
    await pool.release(held.pop())  # one idle, two busy
    await pool.resize(1)  # the idle one closes now; one busy one is retired
    assert res.closed == [res.created[2]]
    assert sum(s.broken for s in pool.resource_stats()) == 1
    for resource in held:
        await pool.release(resource)
    assert pool.stats().size == 1 and res.alive == 1
    await pool.resize(3)
    a = await pool.acquire()
    await pool.discard(a)  # no holder left: closed at once, nothing to replace
    assert await pool.reconnect() == 0
    await pool.dispose()
    settled(res, pool)


async def test_reconnect_replaces_a_broken_resource_still_held() -> None:
    res = AsyncResources()
    pool = shared(res, pool_size=2, max_holders=2)
    a, b = await pool.acquire(), await pool.acquire()
    assert a is b
    await pool.discard(a)  # broken, but b's holder still has it
    assert await pool.reconnect() == 1  # a live replacement, made now
    assert len(res.created) == 2 and not a.closed
    c = await pool.acquire()
    assert c is res.created[1]
    await pool.release(b)
    assert a.closed
    await pool.release(c)
    await pool.dispose()
    settled(res, pool)


async def test_an_opened_pool_replaces_a_broken_resource_in_the_background() -> None:
    res = AsyncResources()
    async with shared(res, pool_size=2, max_holders=8, min_size=1) as pool:
        await async_wait_until(lambda: pool.stats().idle == 1)
        a = await pool.acquire()
        await pool.discard(a)
        await async_wait_until(lambda: pool.stats().idle == 1 and a.closed)
        assert len(res.created) == 2
    settled(res, pool)


async def test_dispose_wakes_waiters_and_closes_what_holders_bring_back() -> None:
    res = AsyncResources()
    pool = shared(res, pool_size=1, max_holders=1)
    held = await pool.acquire()
    errors: list[BaseException] = []

    async def waiter() -> None:
        try:
            await pool.acquire(timeout=10)
        except PoolClosed as exc:
            errors.append(exc)

    async with AsyncNursery() as nursery:
        nursery.start_soon(waiter)
        await async_wait_until(lambda: pool.stats().waiting == 1)
        await pool.dispose()
    assert len(errors) == 1 and not held.closed
    await pool.release(held)
    assert held.closed
    settled(res, pool)


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_random_holders_never_drift(seed: int) -> None:
    """Random acquire/release/discard/timeouts/resize: holder counts stay exact."""
    res = AsyncResources(delay=0.001)
    pool = shared(res, pool_size=3, max_holders=4)
    held: dict[int, int] = {}  # id(resource) -> holders this test gave it

    async def worker(rng: random.Random) -> None:
        for _ in range(40):
            try:
                resource = await pool.acquire(timeout=rng.choice((0, 0.002, 1)))
            except PoolTimeout:
                continue
            held[id(resource)] = held.get(id(resource), 0) + 1
            assert held[id(resource)] <= 4, "more than max_holders"
            assert not resource.closed, "handed out after it was closed"
            await async_sleep(rng.choice((0, 0.001)))
            held[id(resource)] -= 1
            if rng.random() < 0.1:
                await pool.discard(resource)
            else:
                await pool.release(resource)
            if rng.random() < 0.05:
                await pool.resize(rng.choice((1, 2, 3)))

    rng = random.Random(seed)
    async with AsyncNursery() as nursery:
        for _ in range(8):
            nursery.start_soon(worker, random.Random(rng.random()))
    await async_wait_until(lambda: pool.stats().creating == 0)
    assert all(n == 0 for n in held.values())
    assert all(s.holders == 0 for s in pool.resource_stats())
    await pool.dispose()
    stats = pool.stats()
    assert stats.size == 0 and len(res.closed) == len(res.created), stats
    assert len({id(r) for r in res.closed}) == len(res.closed), "closed twice"


async def test_max_holders_is_checked() -> None:
    with pytest.raises(ValueError, match="max_holders"):
        shared(AsyncResources(), max_holders=0)
    with pytest.raises(TypeError, match="max_holders"):
        shared(AsyncResources(), max_holders=2.5)


async def test_opening_twice_leaks_nothing() -> None:
    """zcached's ``setup()`` twice leaked the old connections."""
    res = AsyncResources()
    pool = shared(res, pool_size=2, max_holders=4, min_size=2)
    await pool.open(wait=True, timeout=10)
    with pytest.raises(PoolError, match="maintainer running already"):
        await pool.open(wait=True, timeout=10)
    assert len(res.created) == 2 and res.alive == 2
    await pool.dispose()
    settled(res, pool)
    assert res.alive == 0
