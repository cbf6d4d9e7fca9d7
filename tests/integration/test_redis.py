"""The redis-py recipes (``examples/redis_sync.py``, ``examples/redis_async.py``)
against a real Redis, including client connections killed under the pool."""

from __future__ import annotations

import pytest
import redis
import redis.asyncio

from tests.integration.conftest import RedisAdmin
from tests.integration.support import (
    CHECK_INTERVALS,
    await_out,
    interval_option,
    lease_all_at_once,
    lease_all_at_once_async,
    load_example,
    wait_out,
)

redis_sync = load_example("redis_sync")
redis_async = load_example("redis_async")


@pytest.fixture
def anyio_backend() -> str:
    """redis.asyncio runs on asyncio only."""
    return "asyncio"


def client_id(client: redis.Redis) -> int:
    return int(client.client_id())


async def client_id_async(client: redis.asyncio.Redis) -> int:
    return int(await client.client_id())


# -- threads: respool.Pool ---------------------------------------------------------------


def test_main_runs(redis_url: str) -> None:
    stats = redis_sync.main(redis_url)
    assert stats.acquired == 8 * 25 + 1
    assert 1 <= stats.created <= 4
    assert stats.closed == stats.created
    assert stats.timeouts == stats.create_errors == stats.close_errors == stats.broken == 0


@pytest.mark.parametrize("check_interval", CHECK_INTERVALS)
def test_killed_connections_never_reach_a_caller(
    redis_url: str, redis_admin: RedisAdmin, check_interval: float | None
) -> None:
    with redis_sync.make_pool(redis_url, **interval_option(check_interval)) as pool:
        old = set(lease_all_at_once(pool, client_id))
        assert len(old) == pool.pool_size
        redis_admin.kill(old)
        wait_out(check_interval)
        before = pool.stats()
        new = lease_all_at_once(pool, client_id)  # every caller's command succeeds
        after = pool.stats()
    assert not old & set(new)
    assert after.closed - before.closed == len(old)  # PING dropped every dead one...
    assert after.created - before.created == len(old)  # ...and the pool opened new ones
    assert after.broken - before.broken == len(old)  # counted as broken, not as errors


# -- asyncio: respool.AsyncPool ----------------------------------------------------------


@pytest.mark.anyio
async def test_async_demo_runs(redis_url: str) -> None:
    stats = await redis_async.demo(redis_url)
    assert stats.acquired == 20 * 10 + 1
    assert 1 <= stats.created <= 4
    assert stats.closed == stats.created
    assert stats.timeouts == stats.create_errors == stats.close_errors == stats.broken == 0


@pytest.mark.anyio
@pytest.mark.parametrize("check_interval", CHECK_INTERVALS)
async def test_async_killed_connections_never_reach_a_caller(
    redis_url: str, redis_admin: RedisAdmin, check_interval: float | None
) -> None:
    async with redis_async.make_pool(redis_url, **interval_option(check_interval)) as pool:
        old = set(await lease_all_at_once_async(pool, client_id_async))
        assert len(old) == pool.pool_size
        redis_admin.kill(old)
        await await_out(check_interval)
        before = pool.stats()
        new = await lease_all_at_once_async(pool, client_id_async)
        after = pool.stats()
    assert not old & set(new)
    assert after.closed - before.closed == len(old)
    assert after.created - before.created == len(old)
    assert after.broken - before.broken == len(old)  # counted as broken, not as errors
