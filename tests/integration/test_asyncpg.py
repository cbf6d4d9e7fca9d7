"""The asyncpg recipe (``examples/asyncpg_pool.py``) against a real PostgreSQL,
including backends terminated under the pool."""

from __future__ import annotations

import asyncpg
import pytest

from tests.integration.conftest import PgAdmin
from tests.integration.support import (
    CHECK_INTERVALS,
    await_out,
    interval_option,
    lease_all_at_once_async,
    load_example,
)

asyncpg_pool = load_example("asyncpg_pool")

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    """asyncpg runs on asyncio only."""
    return "asyncio"


async def backend_pid(conn: asyncpg.Connection) -> int:
    """A real round trip (``conn.get_server_pid()`` would answer from the client's memory)."""
    return int(await conn.fetchval("SELECT pg_backend_pid()"))


async def test_demo_runs(pg_dsn: str) -> None:
    stats = await asyncpg_pool.demo(pg_dsn)
    assert stats.acquired == 20 * 10 + 2
    assert 1 <= stats.created <= 4
    assert stats.closed == stats.created
    assert stats.timeouts == stats.create_errors == stats.close_errors == stats.broken == 0


async def test_reset_rolls_back_what_the_holder_left(pg_dsn: str) -> None:
    async with asyncpg_pool.make_pool(pg_dsn, pool_size=1) as pool:
        async with pool.lease() as conn:
            first = conn
            transaction = conn.transaction()
            await transaction.start()
            await conn.execute("SET LOCAL application_name = 'left behind'")
            assert conn.is_in_transaction()
        async with pool.lease() as conn:
            assert conn is first  # kept, not replaced
            assert not conn.is_in_transaction()
            assert await conn.fetchval("SHOW application_name") != "left behind"
        assert pool.stats().created == 1


@pytest.mark.parametrize("check_interval", CHECK_INTERVALS)
async def test_terminated_backends_never_reach_a_caller(
    pg_dsn: str, pg_admin: PgAdmin, check_interval: float | None
) -> None:
    async with asyncpg_pool.make_pool(pg_dsn, **interval_option(check_interval)) as pool:
        old = set(await lease_all_at_once_async(pool, backend_pid))
        assert len(old) == pool.pool_size
        pg_admin.terminate(old)
        await await_out(check_interval)
        before = pool.stats()
        new = await lease_all_at_once_async(pool, backend_pid)  # every caller's query succeeds
        after = pool.stats()
    assert not old & set(new)
    assert after.closed - before.closed == len(old)  # the checks dropped every dead one...
    assert after.created - before.created == len(old)  # ...and the pool opened new ones
    assert after.broken - before.broken == len(old)  # counted as broken, not as errors


async def test_within_check_interval_the_holder_sees_the_error_and_reset_drops_it(
    pg_dsn: str, pg_admin: PgAdmin
) -> None:
    """A connection used moments ago is handed out unchecked; its holder gets the
    error, and ``reset`` (the connection is closed by then) makes the pool drop it."""
    async with asyncpg_pool.make_pool(pg_dsn, pool_size=1, check_interval=60) as pool:
        async with pool.lease() as conn:
            pid = await backend_pid(conn)
        pg_admin.terminate([pid])
        with pytest.raises((asyncpg.PostgresConnectionError, asyncpg.InterfaceError)):
            async with pool.lease() as conn:
                await backend_pid(conn)
        assert (pool.stats().closed, pool.stats().broken) == (1, 1)  # reset failed: dropped
        async with pool.lease() as conn:
            assert await backend_pid(conn) != pid
