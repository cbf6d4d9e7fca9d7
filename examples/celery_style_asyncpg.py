"""PostgreSQL from Celery-style tasks that each call ``asyncio.run``: asyncpg through
``respool.LoopPools``.

    python examples/celery_style_asyncpg.py

A Celery or RQ worker runs each task as a plain function, so a task that uses an
async driver calls ``asyncio.run``: a new event loop per task.  One module-level
pool would be bound to the first task's loop and fail in every later one ("attached
to a different loop", "Event loop is closed").  ``LoopPools`` gives each running
loop its own pool, per database, and closes it on that loop as ``asyncio.run``
ends.  Connects to ``$RESPOOL_PG_DSN`` (default
``postgresql://postgres@127.0.0.1:5432/test``).
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import asyncpg

import respool

DSN = os.environ.get("RESPOOL_PG_DSN", "postgresql://postgres@127.0.0.1:5432/test")
APP = "respool-celery-style"  # application_name, so a test can count our connections

counts: Counter[str] = Counter()  # connections opened and closed, over every task
lock = threading.Lock()  # tasks may run in threads


async def connect(dsn: str) -> asyncpg.Connection:
    conn = await asyncpg.connect(dsn, timeout=5, server_settings={"application_name": APP})
    with lock:
        counts["opened"] += 1
    return conn


async def close(conn: asyncpg.Connection) -> None:
    await conn.close(timeout=5)
    with lock:
        counts["closed"] += 1


def make_pool(dsn: str) -> respool.AsyncPool[asyncpg.Connection]:
    """The key is the DSN: each database gets its pool, on each loop."""
    return respool.AsyncPool(lambda: connect(dsn), close, pool_size=4, acquire_timeout=10)


pools = respool.LoopPools(make_pool)


async def _add(dsn: str, a: int, b: int) -> int:
    pool = await pools.get(dsn)  # this loop's pool: made on first use, closed at its end
    async with pool.lease() as conn:
        return int(await conn.fetchval("SELECT $1::int + $2::int", a, b))


def add(a: int, b: int, dsn: str = DSN) -> int:
    """A task, as a Celery worker calls it: plain code, one event loop per call."""
    return asyncio.run(_add(dsn, a, b))


async def _totals(dsn: str, n: int) -> list[int]:
    # One task may run many queries at once; they share its loop's pool.
    return await asyncio.gather(*(_add(dsn, i, i) for i in range(n)))


def totals(n: int, dsn: str = DSN) -> list[int]:
    """Another task: ``n`` queries at once over up to 4 connections."""
    return asyncio.run(_totals(dsn, n))


def main() -> None:
    for i in range(10):  # a worker running tasks one after another (Celery's prefork)
        assert add(i, 1) == i + 1
    with ThreadPoolExecutor(4) as worker:  # or in threads (Celery's threads pool)
        assert list(worker.map(add, range(20), range(20))) == [2 * i for i in range(20)]
        assert worker.submit(totals, 12).result() == [2 * i for i in range(12)]
    assert len(pools) == 0  # every task's pool was closed as its loop ended
    assert counts["opened"] == counts["closed"], counts
    print(f"ok: asyncpg from 31 asyncio.run tasks: {counts['opened']} connections, all closed")


if __name__ == "__main__":
    main()
