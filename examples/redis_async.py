"""Redis from asyncio tasks: ``redis.asyncio`` clients in a ``respool.AsyncPool``.

    python examples/redis_async.py

Connects to ``$RESPOOL_REDIS_URL`` (default ``redis://127.0.0.1:6379/0``).
``redis.asyncio`` runs on asyncio only, so this recipe does not run under trio.

Each pooled client owns exactly one connection (``single_connection_client``),
so respool decides how many connections exist and who waits for one.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from typing import Any

import redis.asyncio

import respool

URL = os.environ.get("RESPOOL_REDIS_URL", "redis://127.0.0.1:6379/0")


async def connect(url: str = URL) -> redis.asyncio.Redis:
    """The factory: a client holding one open connection."""
    client = redis.asyncio.Redis.from_url(
        url, single_connection_client=True, socket_connect_timeout=5, socket_timeout=5
    )
    try:
        await client.ping()  # connect now: a factory error beats a broken first command
    except BaseException:
        await client.aclose()
        raise
    return client


async def check(client: redis.asyncio.Redis) -> None:
    """Before handing out an idle client: PING, raising if the connection is gone."""
    await client.ping()


async def close(client: redis.asyncio.Redis) -> None:
    """The releaser."""
    await client.aclose()


def make_pool(url: str = URL, **options: Any) -> respool.AsyncPool[redis.asyncio.Redis]:
    """A pool of up to 4 clients; ``options`` go to ``respool.AsyncPool``."""
    options.setdefault("pool_size", 4)
    return respool.AsyncPool(lambda: connect(url), close, check=check, **options)


async def demo(url: str = URL) -> respool.PoolStats:
    """20 tasks, 10 increments each, through 4 connections; return the final stats."""
    key = f"respool-recipe:{uuid.uuid4()}"
    connections: set[int] = set()
    async with make_pool(url) as pool:

        async def worker(n: int) -> None:
            for _ in range(10):
                async with pool.lease() as client:
                    await client.incr(key)
                    connections.add(await client.client_id())

        await asyncio.gather(*(worker(n) for n in range(20)))
        assert len(connections) <= 4, connections
        async with pool.lease() as client:
            assert int(await client.get(key) or 0) == 20 * 10
            await client.delete(key)
    stats = pool.stats()
    assert stats.size == 0 and stats.closed == stats.created, stats  # all closed on exit
    print(f"ok: redis.asyncio: {stats.acquired} leases, {stats.created} connections opened")
    return stats


def main() -> None:
    asyncio.run(demo())


if __name__ == "__main__":
    main()
