"""Tests on pytest-asyncio, with asyncpg (asyncio only), each with a pool of its own."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

import respool


@pytest.mark.asyncio
async def test_a_query(asyncpg_pool: respool.AsyncPool[Any]) -> None:
    async with asyncpg_pool.lease() as conn:
        assert await conn.fetchval("SELECT $1::int + 1", 41) == 42


@pytest.mark.asyncio
async def test_more_tasks_than_connections(asyncpg_pool: respool.AsyncPool[Any]) -> None:
    async def one() -> int:
        async with asyncpg_pool.lease() as conn:
            pid: int = await conn.fetchval("SELECT pg_backend_pid()")
            return pid

    backends = set(await asyncio.gather(*(one() for _ in range(10))))
    assert 1 <= len(backends) <= asyncpg_pool.pool_size
    assert asyncpg_pool.stats().leased == 0
