"""The raw-TCP recipe (``examples/trio_tcp.py``): ``anyio.connect_tcp`` streams
speaking RESP to a real Redis, under trio (the recipe's loop) and asyncio."""

from __future__ import annotations

import logging

import anyio
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
    assert stats.acquired == 20 * 10
    assert 1 <= stats.created <= 4
    assert stats.closed == stats.created
    assert stats.timeouts == stats.create_errors == stats.close_errors == stats.broken == 0


async def test_error_reply(redis_url: str) -> None:
    async with trio_tcp.make_pool(redis_url, pool_size=1) as pool:
        async with pool.lease() as conn:
            with pytest.raises(trio_tcp.RespError, match="unknown command"):
                await conn.command("NO-SUCH-COMMAND")
            assert await conn.command("ECHO", "still in step") == b"still in step"
        assert pool.stats().closed == 0  # an error reply is a reply: the connection is fine


async def test_a_holder_cancelled_mid_command_does_not_pass_its_reply_on(
    redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A holder gives up before the reply comes (BLPOP blocks a second server-side):
    ``reset`` refuses the connection, so the pool closes it and logs why."""
    async with trio_tcp.make_pool(redis_url, pool_size=1, check_interval=60) as pool:
        await pool.prefill()  # so the lease below takes an idle connection at once
        with anyio.move_on_after(0.2) as scope:
            async with pool.lease() as conn:
                await conn.command("BLPOP", "respool-recipe:nothing-here", 1)
        assert scope.cancelled_caught
        assert conn.in_flight
        stats = pool.stats()
        assert (stats.closed, stats.broken) == (1, 1)
        async with pool.lease() as conn2:
            assert conn2 is not conn
            assert await conn2.command("ECHO", "in step") == b"in step"
    [record] = [r for r in caplog.records if r.name == "respool"]
    assert record.levelno == logging.WARNING
    assert record.getMessage().split(": ", 1)[1].startswith("reset failed on")
    assert "a reply is still unread" in record.getMessage()


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
    assert after.broken - before.broken == len(old)  # counted as broken, not as errors
