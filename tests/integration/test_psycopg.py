"""The psycopg 3 recipes (``examples/psycopg_sync.py``, ``examples/psycopg_async.py``)
against a real PostgreSQL, including backends terminated under the pool."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from psycopg.pq import TransactionStatus

from tests.integration.conftest import PgAdmin
from tests.integration.support import (
    CHECK_INTERVALS,
    await_out,
    interval_option,
    lease_all_at_once,
    lease_all_at_once_async,
    load_example,
    wait_out,
)

psycopg_sync = load_example("psycopg_sync")
psycopg_async = load_example("psycopg_async")


@pytest.fixture
def anyio_backend() -> str:
    """psycopg's AsyncConnection runs on asyncio only."""
    return "asyncio"


def backend_pid(conn: psycopg.Connection[Any]) -> int:
    """A real round trip (``conn.info.backend_pid`` would answer from the client's memory)."""
    row = conn.execute("SELECT pg_backend_pid()").fetchone()
    assert row is not None
    return int(row[0])


async def backend_pid_async(conn: psycopg.AsyncConnection[Any]) -> int:
    row = await (await conn.execute("SELECT pg_backend_pid()")).fetchone()
    assert row is not None
    return int(row[0])


# -- threads: respool.Pool ---------------------------------------------------------------


def test_main_runs(pg_dsn: str) -> None:
    stats = psycopg_sync.main(pg_dsn)
    assert stats.acquired == 8 * 25 + 2
    assert 1 <= stats.created <= 4
    assert stats.closed == stats.created
    assert stats.timeouts == stats.create_errors == stats.close_errors == stats.broken == 0


def test_reset_rolls_back_what_the_holder_left(pg_dsn: str) -> None:
    with psycopg_sync.make_pool(pg_dsn, pool_size=1) as pool:
        with pool.lease() as conn:
            first = conn
            with pytest.raises(psycopg.errors.DivisionByZero):
                conn.execute("SELECT 1 / 0")
            assert conn.info.transaction_status == TransactionStatus.INERROR
        with pool.lease() as conn:
            assert conn is first  # kept, not replaced
            assert conn.info.transaction_status == TransactionStatus.IDLE
            assert conn.execute("SELECT 2").fetchone() == (2,)
        assert pool.stats().created == 1


@pytest.mark.parametrize("check_interval", CHECK_INTERVALS)
def test_terminated_backends_never_reach_a_caller(
    pg_dsn: str, pg_admin: PgAdmin, check_interval: float | None
) -> None:
    with psycopg_sync.make_pool(pg_dsn, **interval_option(check_interval)) as pool:
        old = set(lease_all_at_once(pool, backend_pid))
        assert len(old) == pool.pool_size
        pg_admin.terminate(old)
        wait_out(check_interval)
        before = pool.stats()
        new = lease_all_at_once(pool, backend_pid)  # every caller's query succeeds
        after = pool.stats()
    assert not old & set(new)
    assert after.closed - before.closed == len(old)  # the checks dropped every dead one...
    assert after.created - before.created == len(old)  # ...and the pool opened new ones
    assert after.broken - before.broken == len(old)  # counted as broken, not as errors


def test_within_check_interval_the_holder_sees_the_error_and_reset_drops_it(
    pg_dsn: str, pg_admin: PgAdmin
) -> None:
    """The window ``check_interval`` leaves open, made wide: a connection used
    moments ago is handed out unchecked.  Its holder gets the error, and on
    release ``reset`` fails, so the pool closes the connection instead of
    keeping it."""
    with psycopg_sync.make_pool(pg_dsn, pool_size=1, check_interval=60) as pool:
        with pool.lease() as conn:
            pid = backend_pid(conn)
        pg_admin.terminate([pid])
        with pytest.raises(psycopg.OperationalError), pool.lease() as conn:
            backend_pid(conn)
        assert (pool.stats().closed, pool.stats().broken) == (1, 1)  # reset failed: dropped
        with pool.lease() as conn:
            assert backend_pid(conn) != pid


# -- asyncio: respool.AsyncPool ----------------------------------------------------------


@pytest.mark.anyio
async def test_async_demo_runs(pg_dsn: str) -> None:
    stats = await psycopg_async.demo(pg_dsn)
    assert stats.acquired == 20 * 10 + 2
    assert 1 <= stats.created <= 4
    assert stats.closed == stats.created
    assert stats.timeouts == stats.create_errors == stats.close_errors == stats.broken == 0


@pytest.mark.anyio
async def test_async_reset_rolls_back_what_the_holder_left(pg_dsn: str) -> None:
    async with psycopg_async.make_pool(pg_dsn, pool_size=1) as pool:
        async with pool.lease() as conn:
            first = conn
            with pytest.raises(psycopg.errors.DivisionByZero):
                await conn.execute("SELECT 1 / 0")
            assert conn.info.transaction_status == TransactionStatus.INERROR
        async with pool.lease() as conn:
            assert conn is first
            assert conn.info.transaction_status == TransactionStatus.IDLE
            assert await (await conn.execute("SELECT 2")).fetchone() == (2,)
        assert pool.stats().created == 1


@pytest.mark.anyio
@pytest.mark.parametrize("check_interval", CHECK_INTERVALS)
async def test_async_terminated_backends_never_reach_a_caller(
    pg_dsn: str, pg_admin: PgAdmin, check_interval: float | None
) -> None:
    async with psycopg_async.make_pool(pg_dsn, **interval_option(check_interval)) as pool:
        old = set(await lease_all_at_once_async(pool, backend_pid_async))
        assert len(old) == pool.pool_size
        pg_admin.terminate(old)
        await await_out(check_interval)
        before = pool.stats()
        new = await lease_all_at_once_async(pool, backend_pid_async)
        after = pool.stats()
    assert not old & set(new)
    assert after.closed - before.closed == len(old)
    assert after.created - before.created == len(old)
    assert after.broken - before.broken == len(old)  # counted as broken, not as errors


@pytest.mark.anyio
async def test_async_within_check_interval_the_holder_sees_the_error_and_reset_drops_it(
    pg_dsn: str, pg_admin: PgAdmin
) -> None:
    async with psycopg_async.make_pool(pg_dsn, pool_size=1, check_interval=60) as pool:
        async with pool.lease() as conn:
            pid = await backend_pid_async(conn)
        pg_admin.terminate([pid])
        with pytest.raises(psycopg.OperationalError):
            async with pool.lease() as conn:
                await backend_pid_async(conn)
        assert (pool.stats().closed, pool.stats().broken) == (1, 1)  # reset failed: dropped
        async with pool.lease() as conn:
            assert await backend_pid_async(conn) != pid
