"""NATS from asyncio: 200 callers sharing 4 connections in a ``respool.AsyncSharedPool``.

    python examples/nats_shared.py

Connects to ``$RESPOOL_NATS_URL`` (default ``nats://127.0.0.1:4222``).  A NATS
connection multiplexes many requests at once, so each serves up to 64
holders; a connection the server or the network closed is retired (no new
holder, closed once its last holder leaves) and replaced.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

import nats
import nats.errors
from nats.aio.client import Client
from nats.aio.msg import Msg

import respool

URL = os.environ.get("RESPOOL_NATS_URL", "nats://127.0.0.1:4222")
SUBJECT = "respool.echo"


async def connect(url: str = URL) -> Client:
    """The factory: one connection, which never reconnects by itself (the pool replaces it)."""
    return await nats.connect(url, allow_reconnect=False, connect_timeout=5)


async def close(nc: Client) -> None:
    if not nc.is_closed:
        await nc.close()


def is_closed(nc: Client) -> bool:
    """Asked on every hand-out: a connection the server dropped is closed, never shared."""
    return bool(nc.is_closed or not nc.is_connected)


def make_pool(url: str = URL, **options: Any) -> respool.AsyncSharedPool[Client]:
    """4 connections of up to 64 holders each; ``options`` go to the pool."""
    options.setdefault("pool_size", 4)
    options.setdefault("max_holders", 64)
    return respool.AsyncSharedPool(
        lambda: connect(url),
        close,
        is_closed=is_closed,
        discard_on=(nats.errors.ConnectionClosedError, nats.errors.StaleConnectionError, OSError),
        **options,
    )


async def responder(url: str = URL) -> Client:
    """A service on a connection of its own: it answers each request in upper case."""
    nc = await connect(url)

    async def reply(msg: Msg) -> None:
        await msg.respond(msg.data.upper())

    await nc.subscribe(SUBJECT, cb=reply)
    await nc.flush()
    return nc


async def main(url: str = URL) -> respool.PoolStats:
    """200 concurrent requesters and publishers through 4 shared connections."""
    service = await responder(url)
    try:
        async with make_pool(url) as pool:

            async def caller(i: int) -> None:
                async with pool.lease() as nc:
                    reply = await nc.request(SUBJECT, f"hello {i}".encode(), timeout=5)
                    assert reply.data == f"HELLO {i}".encode()
                    await nc.publish("respool.events", b"served")

            await asyncio.gather(*(caller(i) for i in range(200)))
            connections = len(pool.resource_stats())
            assert connections <= 4, connections
        stats = pool.stats()
    finally:
        await service.close()
    assert stats.size == 0 and stats.closed == stats.created, stats
    print(f"ok: nats, shared: {stats.acquired} leases over {stats.created} connections")
    return stats


if __name__ == "__main__":
    asyncio.run(main())
