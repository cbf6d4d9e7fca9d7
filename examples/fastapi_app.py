"""FastAPI (Starlette underneath): the pool opened in the lifespan, a lease per request.

    python examples/fastapi_app.py        # 20 requests through httpx, in this process
    uvicorn fastapi_app:app               # or served (from examples/; uvicorn not included)

Connects to ``$RESPOOL_PG_DSN`` (default ``postgresql://postgres@127.0.0.1:5432/test``).

An ``AsyncPool`` belongs to the event loop that first uses it, so it is created
in the lifespan, which runs in the loop that serves the requests: each run of
the application (a server start, each test client) gets a pool of its own, and
``async with`` closes it at shutdown.  Requests find it in the lifespan state
(``request.state``), and take a connection through a dependency that leases it
for the request.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

import httpx
from asgi_lifespan import LifespanManager
from fastapi import Depends, FastAPI, Request

import respool
from respool import presets

DSN = os.environ.get("RESPOOL_PG_DSN", "postgresql://postgres@127.0.0.1:5432/test")
POOL_SIZE = 5


def create_app(dsn: str = DSN, pool_size: int = POOL_SIZE) -> FastAPI:
    """The application; its pool is created when it starts, closed when it stops."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, Any]]:
        pool = presets.asyncpg_pool(dsn, pool_size=pool_size, connect_kwargs={"timeout": 5})
        async with pool:  # closed, every connection with it, when the application stops
            yield {"pool": pool}  # the lifespan state: request.state.pool

    app = FastAPI(lifespan=lifespan)
    app.add_api_route("/backend", backend)
    app.add_api_route("/stats", stats)
    return app


def the_pool(request: Request) -> respool.AsyncPool[Any]:
    pool: respool.AsyncPool[Any] = request.state.pool
    return pool


async def connection(request: Request) -> AsyncIterator[Any]:
    """The dependency: a connection leased for the request, given back after it.

    An exception the endpoint raises passes through here, so a connection
    error (the preset's ``discard_on``) discards the connection.
    """
    async with the_pool(request).lease() as conn:
        yield conn


Connection = Annotated[Any, Depends(connection)]  # an asyncpg.Connection


async def backend(request: Request, conn: Connection) -> dict[str, int]:
    """The server process serving this request, and the pool as this request saw it."""
    pid = await conn.fetchval("SELECT pg_backend_pid()")
    seen = the_pool(request).stats()  # taken while this request holds its lease
    return {"backend_pid": pid, "size": seen.size, "leased": seen.leased, "waiting": seen.waiting}


async def stats(request: Request) -> dict[str, int]:
    """The pool's counters (no lease taken)."""
    seen = the_pool(request).stats()
    return {name: getattr(seen, name) for name in ("size", "leased", "acquired", "created")}


app = create_app()  # for a server: `uvicorn fastapi_app:app`; no pool until it starts


async def demo(dsn: str = DSN, requests: int = 20) -> list[dict[str, int]]:
    """Start the application, send ``requests`` requests at once, stop it."""
    application = create_app(dsn)
    async with LifespanManager(application) as manager:  # runs the lifespan, in this loop
        transport = httpx.ASGITransport(app=manager.app)  # manager.app passes its state on
        async with httpx.AsyncClient(transport=transport, base_url="http://app") as client:
            responses = await asyncio.gather(*(client.get("/backend") for _ in range(requests)))
            final = (await client.get("/stats")).json()
    assert all(r.status_code == 200 for r in responses), responses
    seen = [r.json() for r in responses]
    assert max(s["size"] for s in seen) <= POOL_SIZE, seen
    assert len({s["backend_pid"] for s in seen}) <= POOL_SIZE, seen
    assert final["leased"] == 0 and final["acquired"] == requests, final
    print(
        f"ok: FastAPI, {requests} requests at once through a pool of {POOL_SIZE}: "
        f"{len({s['backend_pid'] for s in seen})} connections"
    )
    return seen


if __name__ == "__main__":
    asyncio.run(demo())
