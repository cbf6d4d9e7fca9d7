"""PostgreSQL from asyncio tasks: asyncpg connections in a ``respool.AsyncPool``.

    python examples/asyncpg_pool.py

Connects to ``$RESPOOL_PG_DSN`` (default ``postgresql://postgres@127.0.0.1:5432/test``).
asyncpg runs on asyncio only, so this recipe does not run under trio.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from typing import Any

import asyncpg

import respool

DSN = os.environ.get("RESPOOL_PG_DSN", "postgresql://postgres@127.0.0.1:5432/test")


async def connect(dsn: str = DSN) -> asyncpg.Connection:
    """The factory: one new connection (the acquire deadline still bounds the call)."""
    return await asyncpg.connect(dsn, timeout=5)


async def check(conn: asyncpg.Connection) -> None:
    """Before handing out an idle connection: a round trip, raising if the server is gone."""
    await conn.fetchval("SELECT 1", timeout=5)


async def reset(conn: asyncpg.Connection) -> None:
    """On release: roll back a transaction the holder left open.

    Raises on a closed connection, and the pool closes it instead of keeping
    it.  (``await conn.reset()`` would also undo ``SET``, ``LISTEN`` and
    advisory locks, at the price of a round trip on every release.)
    """
    if conn.is_closed():
        raise ConnectionError("connection is closed")
    if conn.is_in_transaction():
        await conn.execute("ROLLBACK", timeout=5)


async def close(conn: asyncpg.Connection) -> None:
    """The releaser: close politely, bounded in time (releasers are not cancelled)."""
    await conn.close(timeout=5)


def make_pool(dsn: str = DSN, **options: Any) -> respool.AsyncPool[asyncpg.Connection]:
    """A pool of up to 4 connections; ``options`` go to ``respool.AsyncPool``."""
    options.setdefault("pool_size", 4)
    return respool.AsyncPool(lambda: connect(dsn), close, check=check, reset=reset, **options)


async def demo(dsn: str = DSN) -> respool.PoolStats:
    """20 tasks, 10 queries each, through 4 connections; return the final stats."""
    backends: set[int] = set()
    async with make_pool(dsn) as pool:

        async def worker(n: int) -> None:
            for i in range(10):
                async with pool.lease() as conn, conn.transaction():  # commits, or rolls back
                    row = await conn.fetchrow("SELECT $1::int * 2, pg_backend_pid()", i)
                    assert row is not None and row[0] == i * 2
                    backends.add(row[1])

        await asyncio.gather(*(worker(n) for n in range(20)))
        assert len(backends) <= 4, backends

        # A holder fails inside a transaction it began by hand and leaves it open...
        with contextlib.suppress(asyncpg.DivisionByZeroError):
            async with pool.lease() as conn:
                await conn.execute("BEGIN")
                await conn.execute("SELECT 1 / 0")
        # ...`reset` rolled it back, so the next holder starts clean.
        async with pool.lease() as conn:
            assert not conn.is_in_transaction()
            assert await conn.fetchval("SELECT 1") == 1
    stats = pool.stats()
    assert stats.size == 0 and stats.closed == stats.created, stats  # all closed on exit
    print(f"ok: asyncpg, asyncio: {stats.acquired} leases, {stats.created} connections opened")
    return stats


def main() -> None:
    asyncio.run(demo())


if __name__ == "__main__":
    main()
