"""Tests on pytest-anyio, run on asyncio and on trio, each with a pool of its own."""

from __future__ import annotations

from typing import Any

import anyio
import anyio.to_thread
import psycopg
import pytest

import respool

pytestmark = pytest.mark.anyio


async def run(conn: psycopg.Connection[Any], sql: str, *params: object) -> Any:
    """One query in a worker thread: a blocking driver works this way on asyncio and trio."""
    return await anyio.to_thread.run_sync(lambda: conn.execute(sql, params).fetchone())


async def test_a_query(pool: respool.AsyncPool[Any]) -> None:
    async with pool.lease() as conn:
        assert await run(conn, "SELECT %s::int + 1", 41) == (42,)


async def test_more_tasks_than_connections(pool: respool.AsyncPool[Any]) -> None:
    backends: set[int] = set()

    async def one() -> None:
        async with pool.lease() as conn:
            (pid,) = await run(conn, "SELECT pg_backend_pid()")
            backends.add(pid)

    async with anyio.create_task_group() as tasks:
        for _ in range(10):
            tasks.start_soon(one)
    assert 1 <= len(backends) <= pool.pool_size
    assert pool.stats().leased == 0
