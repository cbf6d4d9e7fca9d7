"""Redis from asyncio: pipelines from 200 callers over 4 shared connections (``AsyncSharedPool``).

    python examples/redis_shared.py

Connects to ``$RESPOOL_REDIS_URL`` (default ``redis://127.0.0.1:6379/0``).
Each pooled resource is one raw connection; its holders take turns, each
sending a whole pipeline in one write and reading its replies, so up to 32
holders share a connection.  A connection whose batch was cut short (an
error, a cancellation) has unread replies on it: it marks itself broken and
the pool closes it once its holders are gone, and replaces it.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any
from urllib.parse import urlsplit

import redis.asyncio
import redis.exceptions

import respool

URL = os.environ.get("RESPOOL_REDIS_URL", "redis://127.0.0.1:6379/0")


class SharedConnection:
    """One Redis connection shared by several holders, one pipeline at a time."""

    def __init__(self, conn: redis.asyncio.Connection) -> None:
        self.conn = conn
        self.turn = asyncio.Lock()
        self.broken = False

    async def pipeline(self, *commands: tuple[Any, ...]) -> list[Any]:
        """Send ``commands`` in one write, read their replies; raise on a dead connection."""
        async with self.turn:
            if self.broken:
                raise redis.exceptions.ConnectionError("this connection was broken earlier")
            try:
                await self.conn.send_packed_command(self.conn.pack_commands(commands))
                return [await self.conn.read_response() for _ in commands]
            except BaseException:
                self.broken = True  # replies may be left unread: never use it again
                raise

    async def client_id(self) -> int:
        (client_id,) = await self.pipeline(("CLIENT", "ID"))
        return int(client_id)


async def connect(url: str = URL) -> SharedConnection:
    """The factory: one raw connection, checked with a PING."""
    address = urlsplit(url)
    conn = redis.asyncio.Connection(
        host=address.hostname or "127.0.0.1",
        port=address.port or 6379,
        db=int((address.path or "/0").lstrip("/") or 0),
        socket_connect_timeout=5,
        retry_on_error=[],
    )
    await conn.connect()
    shared = SharedConnection(conn)
    await shared.pipeline(("PING",))
    return shared


async def close(shared: SharedConnection) -> None:
    await shared.conn.disconnect()


def make_pool(url: str = URL, **options: Any) -> respool.AsyncSharedPool[SharedConnection]:
    """4 connections of up to 32 holders each; ``options`` go to the pool."""
    options.setdefault("pool_size", 4)
    options.setdefault("max_holders", 32)
    return respool.AsyncSharedPool(
        lambda: connect(url),
        close,
        is_closed=lambda shared: shared.broken,  # asked on every hand-out and return
        discard_on=(redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError),
        **options,
    )


async def main(url: str = URL) -> respool.PoolStats:
    """200 callers, each a pipeline of 3 commands, through 4 shared connections."""
    async with make_pool(url) as pool:

        async def caller(i: int) -> None:
            key = f"respool:shared:{i}"
            async with pool.lease() as shared:
                ok, value, deleted = await shared.pipeline(
                    ("SET", key, i), ("GET", key), ("DEL", key)
                )
            assert ok in (b"OK", "OK", True) and int(value) == i and deleted == 1

        await asyncio.gather(*(caller(i) for i in range(200)))
        connections = len(pool.resource_stats())
        assert connections <= 4, connections
    stats = pool.stats()
    assert stats.size == 0 and stats.closed == stats.created, stats
    print(f"ok: redis, shared: {stats.acquired} leases over {stats.created} connections")
    return stats


if __name__ == "__main__":
    asyncio.run(main())
