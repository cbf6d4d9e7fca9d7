"""The Celery-style recipe (``examples/celery_style_asyncpg.py``) against a real
PostgreSQL: tasks that each call ``asyncio.run`` share nothing across loops, and every
connection a task's loop opened is closed on that loop, as seen by the server."""

from __future__ import annotations

import asyncio
import threading

import psycopg

from tests.concurrency import wait_until
from tests.integration.support import load_example

recipe = load_example("celery_style_asyncpg")


def our_backends(dsn: str) -> int:
    """The server's count of the recipe's connections (by their application_name)."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s", (recipe.APP,)
        ).fetchone()
    assert row is not None
    return int(row[0])


def test_the_recipe_runs(pg_dsn: str) -> None:
    recipe.main()
    wait_until(lambda: our_backends(pg_dsn) == 0)


def test_each_task_gets_its_loops_pool_and_the_server_sees_every_connection_closed(
    pg_dsn: str,
) -> None:
    seen: list[tuple[object, object]] = []  # (loop, pool) of each task

    async def task() -> int:
        pool = await recipe.pools.get(pg_dsn)
        seen.append((asyncio.get_running_loop(), pool))
        async with pool.lease() as conn:
            assert await conn.fetchval("SELECT current_setting('application_name')") == recipe.APP
            assert our_backends(pg_dsn) >= 1  # open now, on the server
            return int(await conn.fetchval("SELECT 1"))

    assert sum(asyncio.run(task()) for _ in range(5)) == 5
    threads = [threading.Thread(target=lambda: asyncio.run(task())) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(seen) == 8
    assert len({id(pool) for _, pool in seen}) == 8  # one pool per task's loop
    assert all(pool.closed for _, pool in seen)  # each closed as its asyncio.run ended
    assert len(recipe.pools) == 0
    wait_until(lambda: our_backends(pg_dsn) == 0)  # the server saw each one go
