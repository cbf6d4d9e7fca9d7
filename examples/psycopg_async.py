"""PostgreSQL from asyncio tasks: psycopg 3 async connections in a ``respool.AsyncPool``.

    python examples/psycopg_async.py

Connects to ``$RESPOOL_PG_DSN`` (default ``postgresql://postgres@127.0.0.1:5432/test``).
psycopg's async connections run on asyncio only, so this recipe does not run under trio.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from typing import Any

import psycopg
from psycopg.pq import TransactionStatus
from psycopg.rows import TupleRow

import respool

DSN = os.environ.get("RESPOOL_PG_DSN", "postgresql://postgres@127.0.0.1:5432/test")
Connection = psycopg.AsyncConnection[TupleRow]


async def connect(dsn: str = DSN) -> Connection:
    """The factory: one new connection (the acquire deadline still bounds the call)."""
    return await psycopg.AsyncConnection.connect(dsn, connect_timeout=5)


async def check(conn: Connection) -> None:
    """Before handing out an idle connection: a round trip, raising if the server is gone."""
    await conn.execute("SELECT 1")
    await conn.rollback()  # end the transaction the SELECT began: the holder starts clean


async def reset(conn: Connection) -> None:
    """On release: roll back whatever the holder left open.

    On a broken connection this raises, and the pool closes it instead of
    keeping it.
    """
    await conn.rollback()


def make_pool(dsn: str = DSN, **options: Any) -> respool.AsyncPool[Connection]:
    """A pool of up to 4 connections; ``options`` go to ``respool.AsyncPool``."""
    options.setdefault("pool_size", 4)
    return respool.AsyncPool(
        lambda: connect(dsn), psycopg.AsyncConnection.close, check=check, reset=reset, **options
    )


async def demo(dsn: str = DSN) -> respool.PoolStats:
    """20 tasks, 10 queries each, through 4 connections; return the final stats."""
    backends: set[int] = set()
    async with make_pool(dsn) as pool:

        async def worker(n: int) -> None:
            for i in range(10):
                async with pool.lease() as conn, conn.transaction():  # commits, or rolls back
                    cursor = await conn.execute("SELECT %s::int * 2, pg_backend_pid()", (i,))
                    row = await cursor.fetchone()
                    assert row is not None and row[0] == i * 2
                    backends.add(row[1])

        await asyncio.gather(*(worker(n) for n in range(20)))
        assert len(backends) <= 4, backends

        # A holder fails inside a transaction and leaves it aborted...
        with contextlib.suppress(psycopg.errors.DivisionByZero):
            async with pool.lease() as conn:
                await conn.execute("SELECT 1 / 0")
        # ...`reset` rolled it back, so the next holder starts clean.
        async with pool.lease() as conn:
            assert conn.info.transaction_status == TransactionStatus.IDLE
            await conn.execute("SELECT 1")
    stats = pool.stats()
    assert stats.size == 0 and stats.closed == stats.created, stats  # all closed on exit
    print(f"ok: psycopg, asyncio: {stats.acquired} leases, {stats.created} connections opened")
    return stats


def main() -> None:
    asyncio.run(demo())


if __name__ == "__main__":
    main()
