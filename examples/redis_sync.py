"""Redis from threads: redis-py clients in a ``respool.Pool``.

    python examples/redis_sync.py

Connects to ``$RESPOOL_REDIS_URL`` (default ``redis://127.0.0.1:6379/0``).

Each pooled client owns exactly one connection (``single_connection_client``),
so respool decides how many connections exist and who waits for one.
"""

from __future__ import annotations

import os
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import redis

import respool

URL = os.environ.get("RESPOOL_REDIS_URL", "redis://127.0.0.1:6379/0")


def connect(url: str = URL) -> redis.Redis:
    """The factory: a client holding one open connection."""
    client = redis.Redis.from_url(
        url, single_connection_client=True, socket_connect_timeout=5, socket_timeout=5
    )
    try:
        client.ping()  # connect now: a factory error beats a broken first command
    except BaseException:
        client.close()
        raise
    return client


def check(client: redis.Redis) -> None:
    """Before handing out an idle client: PING, raising if the connection is gone."""
    client.ping()


def make_pool(url: str = URL, **options: Any) -> respool.Pool[redis.Redis]:
    """A pool of up to 4 clients; ``options`` go to ``respool.Pool``."""
    options.setdefault("pool_size", 4)
    return respool.Pool(lambda: connect(url), redis.Redis.close, check=check, **options)


def main(url: str = URL) -> respool.PoolStats:
    """8 threads, 25 increments each, through 4 connections; return the final stats."""
    key = f"respool-recipe:{uuid.uuid4()}"
    with make_pool(url) as pool:

        def worker(n: int) -> set[int]:
            connections = set()
            for _ in range(25):
                with pool.lease() as client:
                    client.incr(key)
                    connections.add(client.client_id())
            return connections

        with ThreadPoolExecutor(max_workers=8) as executor:
            connections = set().union(*executor.map(worker, range(8)))
        assert len(connections) <= 4, connections
        with pool.lease() as client:
            assert int(client.get(key) or 0) == 8 * 25
            client.delete(key)
    stats = pool.stats()
    assert stats.size == 0 and stats.closed == stats.created, stats  # all closed on exit
    print(f"ok: redis-py, threads: {stats.acquired} leases, {stats.created} connections opened")
    return stats


if __name__ == "__main__":
    main()
