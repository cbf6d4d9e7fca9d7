"""Driver presets: the pool's settings for common drivers, ready to use.

One small module per driver.  Each offers a function returning the keyword
arguments for the pool (``AsyncPool(**presets.asyncpg(dsn), pool_size=10)``)
and one returning the pool itself (``presets.asyncpg_pool(dsn, pool_size=10)``).
A driver is imported only when its function is called, so ``respool`` never
needs any of them installed.

Presets are applications of the pool, like :mod:`respool.testing`: they use
``respool`` and nothing in the pool uses them.
"""

from __future__ import annotations

from ._asyncpg import asyncpg, asyncpg_pool
from ._psycopg import psycopg, psycopg_async, psycopg_async_pool, psycopg_pool
from ._redis import redis, redis_async, redis_async_pool, redis_pool
from ._sqlite import sqlite, sqlite_pool

__all__ = [
    "asyncpg",
    "asyncpg_pool",
    "psycopg",
    "psycopg_async",
    "psycopg_async_pool",
    "psycopg_pool",
    "redis",
    "redis_async",
    "redis_async_pool",
    "redis_pool",
    "sqlite",
    "sqlite_pool",
]
