"""The FastAPI recipe (``examples/fastapi_app.py``) against real PostgreSQL.

Requests go through httpx's ASGI transport, with the lifespan run by
asgi-lifespan's ``LifespanManager``: the application, its pool and the test's
200 concurrent requests all live in the test's own event loop, as under a real
server, so the requests really contend for the pool, and the test reads what they
saw.  (Starlette's ``TestClient`` would run the application in an event loop
of its own, in another thread, behind a synchronous client: no concurrent
requests from the test; and Starlette now warns when it drives httpx.)
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager

from tests.integration.support import load_example

REQUESTS = 200


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # asyncpg runs on asyncio only


@pytest.fixture
def recipe() -> Any:
    return load_example("fastapi_app")


async def send(app: Any, requests: int) -> tuple[list[dict[str, int]], dict[str, int]]:
    """Run the application's lifespan, send ``requests`` requests at once, then ``/stats``."""
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://app") as client:
            responses = await asyncio.gather(*(client.get("/backend") for _ in range(requests)))
            final = await client.get("/stats")
    assert [r.status_code for r in responses] == [200] * requests, responses
    assert final.status_code == 200
    return [r.json() for r in responses], final.json()


@pytest.mark.anyio
async def test_200_concurrent_requests_on_a_pool_of_5(recipe: Any, pg_dsn: str) -> None:
    seen, final = await send(recipe.create_app(pg_dsn), REQUESTS)
    size = recipe.POOL_SIZE
    assert size == 5
    # Every request was served; as each one saw the pool, it never held more than 5...
    assert max(s["size"] for s in seen) <= size
    assert max(s["leased"] for s in seen) <= size
    assert len({s["backend_pid"] for s in seen}) <= size
    # ...while the others waited for a connection (all 200 were in flight at once).
    assert max(s["waiting"] for s in seen) > 0
    assert final["leased"] == 0
    assert final["acquired"] == REQUESTS
    assert final["created"] <= size


def test_one_test_client_after_another(recipe: Any, pg_dsn: str) -> None:
    """Each client run is a new event loop with a new pool: no "different loop" error."""
    app = recipe.create_app(pg_dsn)
    for run in range(3):  # the same application, then new ones, each in an asyncio.run
        seen, final = asyncio.run(send(app if run < 2 else recipe.create_app(pg_dsn), 3))
        assert len(seen) == 3
        assert final["acquired"] == 3  # counted by this run's pool alone: a new one
