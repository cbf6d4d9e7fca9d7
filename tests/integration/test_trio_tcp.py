"""The raw-TCP recipe (``examples/trio_tcp.py``): ``anyio.connect_tcp`` streams
speaking RESP to a real Redis, under trio (the recipe's loop) and asyncio."""

from __future__ import annotations

import pytest

from tests.integration.conftest import RedisAdmin
from tests.integration.support import (
    CHECK_INTERVALS,
    await_out,
    interval_option,
    lease_all_at_once_async,
    load_example,
)

trio_tcp = load_example("trio_tcp")

# The anyio_backend fixture of tests/conftest.py runs each test under trio and asyncio.
pytestmark = pytest.mark.anyio


async def client_id(conn: trio_tcp.RespConnection) -> int:
    reply = await conn.command("CLIENT", "ID")
    assert isinstance(reply, int)
    return reply


async def test_demo_runs(redis_url: str) -> None:
    stats = await trio_tcp.demo(redis_url)
    assert stats.acquired == 20 * 10 + 2
    assert stats.closed == stats.created  # the one out of step, and the rest at exit
    assert stats.timeouts == stats.create_errors == stats.close_errors == 0


async def test_error_reply(redis_url: str) -> None:
    async with trio_tcp.make_pool(redis_url, pool_size=1) as pool:
        async with pool.lease() as conn:
            with pytest.raises(trio_tcp.RespError, match="unknown command"):
                await conn.command("NO-SUCH-COMMAND")
            assert await conn.command("ECHO", "still in step") == b"still in step"
        assert pool.stats().closed == 0  # an error reply is a reply: the connection is fine


@pytest.mark.parametrize("check_interval", CHECK_INTERVALS)
async def test_killed_connections_never_reach_a_caller(
    redis_url: str, redis_admin: RedisAdmin, check_interval: float | None
) -> None:
    async with trio_tcp.make_pool(redis_url, **interval_option(check_interval)) as pool:
        old = set(await lease_all_at_once_async(pool, client_id))
        assert len(old) == pool.pool_size
        redis_admin.kill(old)
        await await_out(check_interval)
        before = pool.stats()
        new = await lease_all_at_once_async(pool, client_id)  # every caller's command succeeds
        after = pool.stats()
    assert not old & set(new)
    assert after.closed - before.closed == len(old)  # PING dropped every dead one...
    assert after.created - before.created == len(old)  # ...and the pool opened new ones
