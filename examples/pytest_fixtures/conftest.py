"""Pool fixtures for pytest-anyio (asyncio and trio) and pytest-asyncio.

A pool belongs to the event loop that first uses it, and each of these plugins
runs every test in an event loop of its own, so each fixture makes a pool per
test, in the test's loop, and closes it after.  With ``respool_leaks = true``
(pytest.ini) the leak check watches every such pool: a test that leaves a
resource leased fails at teardown, naming the line that acquired it.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from typing import Any

import psycopg
import pytest
import pytest_asyncio

import respool
from respool import presets

DSN = os.environ.get("RESPOOL_PG_DSN", "postgresql://postgres@127.0.0.1:5432/test")

# -- pytest-anyio: the same tests on asyncio and on trio ---------------------------------


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    backend: str = request.param
    return backend


def connect() -> psycopg.Connection[Any]:
    return psycopg.connect(DSN, autocommit=True, connect_timeout=5)


@pytest.fixture
async def pool() -> AsyncIterator[respool.AsyncPool[psycopg.Connection[Any]]]:
    """A pool for one anyio test, in its event loop, asyncio's or trio's.

    No PostgreSQL driver runs on trio, so this pool holds psycopg's blocking
    connections, and the tests make their queries in worker threads, which
    works on both.  Connecting to the test server and closing are quick, so
    the factory and the releaser run in the loop itself.
    """

    async def open_one() -> psycopg.Connection[Any]:
        return connect()

    async def close(conn: psycopg.Connection[Any]) -> None:
        conn.close()

    async with respool.AsyncPool(open_one, close, pool_size=2) as pool:
        yield pool


# -- pytest-asyncio ----------------------------------------------------------------------


@pytest_asyncio.fixture
async def asyncpg_pool() -> AsyncIterator[respool.AsyncPool[Any]]:
    """A pool for one pytest-asyncio test, in its event loop (the fixture's loop scope,
    ``function``, must match the test's: a pool cannot move between loops).

    Not ``async with pool``: pytest-asyncio runs a fixture's setup and its
    teardown in different tasks, and ``async with`` runs the pool's maintainer
    in a task group that must be left by the task that entered it.
    ``open()`` runs the maintainer as a task of its own, ended by ``dispose()``.
    """
    pool = presets.asyncpg_pool(DSN, pool_size=2, connect_kwargs={"timeout": 5})
    await pool.open()
    try:
        yield pool
    finally:
        await pool.dispose()
