"""Shared pools (issue 13) against real servers: NATS and Redis, connections killed mid-run.

200 callers loop for 1.5 s over 4 shared connections; at 0.5 s connections
are killed: NATS's sockets closed behind the clients' backs, Redis's with
``CLIENT KILL``.  Only requests in flight on a killed connection may fail;
once the pool has noticed (``is_closed`` at hand-out and return, or
``discard_on`` in the lease), none does.
"""

from __future__ import annotations

import gc
import time
import warnings
from typing import Any

import anyio
import pytest

import respool
from tests.integration.conftest import RedisAdmin
from tests.integration.support import WAIT, load_example

pytestmark = pytest.mark.anyio

CALLERS = 200
SECONDS = 1.5
KILL_AT = 0.5
GRACE = 0.25  # seconds after the kill in which a killed connection may still be met


@pytest.fixture
def anyio_backend() -> str:
    """nats-py and redis.asyncio run on asyncio only."""
    return "asyncio"


async def storm(pool: respool.AsyncSharedPool[Any], call: Any, kill: Any) -> dict[str, Any]:
    """Callers loop over ``call(resource)``; ``kill()`` at KILL_AT; what happened."""
    requests: list[tuple[float, BaseException | None]] = []
    stop = time.monotonic() + SECONDS
    facts: dict[str, Any] = {}

    async def caller() -> None:
        while time.monotonic() < stop:
            start, error = time.monotonic(), None
            try:
                async with pool.lease(timeout=WAIT) as resource:
                    await call(resource)
            except Exception as exc:
                error = exc
            requests.append((start, error))

    with anyio.fail_after(SECONDS + WAIT):
        async with anyio.create_task_group() as tg:
            for _ in range(CALLERS):
                tg.start_soon(caller)
            await anyio.sleep(KILL_AT)
            facts["in_flight"] = pool.stats().leased
            facts["killed"] = await kill()
            facts["kill_end"] = time.monotonic()
    failures = [(s, e) for s, e in requests if e is not None]
    late = [e for s, e in failures if s > facts["kill_end"] + GRACE]
    after = [s for s, e in requests if e is None and s > facts["kill_end"] + GRACE]
    print(
        f"\n{len(requests)} requests; {facts['killed']} connections killed with "
        f"{facts['in_flight']} holders in flight; {len(failures)} failed "
        f"({sorted({type(e).__name__ for _, e in failures})}); {len(after)} served after; "
        f"{pool.stats()}"
    )
    assert facts["killed"] >= 1
    assert len(failures) <= facts["in_flight"], [e for _, e in failures][:5]
    assert not late, late[:5]
    assert after, "nothing was served after the kill"
    stats = pool.stats()
    assert stats.leased == 0 and stats.size <= 4, stats
    return facts


async def test_the_nats_recipe_runs(nats_url: str) -> None:
    stats = await load_example("nats_shared").main(nats_url)
    assert stats.created <= 4


async def test_nats_connections_closed_behind_the_pools_back(
    nats_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    example = load_example("nats_shared")
    made: list[Any] = []
    connect = example.connect

    async def tracking(url: str = nats_url) -> Any:
        nc = await connect(url)
        made.append(nc)
        return nc

    monkeypatch.setattr(example, "connect", tracking)
    service = await example.responder(nats_url)

    async def call(nc: Any) -> None:
        reply = await nc.request(example.SUBJECT, b"ping", timeout=1.0)
        assert reply.data == b"PING"

    async def kill() -> int:
        victims = [nc for nc in made[1:] if nc.is_connected][:2]  # made[0] is the service's
        for nc in victims:
            nc._transport._io_writer.transport.abort()  # the socket, closed behind its back
        return len(victims)

    try:
        async with example.make_pool(nats_url) as pool:
            await storm(pool, call, kill)
            assert sum(1 for nc in made[1:] if nc.is_closed) >= 2
    finally:
        await service.close()
    assert pool.stats().size == 0 and pool.stats().closed == pool.stats().created
    # The pool closed every client it made; nats-py still leaves the socket of a
    # client closed by an aborted transport to the garbage collector, whose
    # ResourceWarning would land in whichever test runs next: collect it here.
    made.clear()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        gc.collect()


async def test_the_redis_shared_recipe_runs(redis_url: str) -> None:
    stats = await load_example("redis_shared").main(redis_url)
    assert stats.created <= 4


async def test_redis_shared_connections_killed_with_client_kill(
    redis_url: str, redis_admin: RedisAdmin
) -> None:
    example = load_example("redis_shared")
    ids: set[int] = set()

    async def call(shared: Any) -> None:
        ids.add(await shared.client_id())
        (pong,) = await shared.pipeline(("PING",))
        assert pong in (b"PONG", "PONG", True)

    async def kill() -> int:
        victims = sorted(ids)[:2]
        await anyio.to_thread.run_sync(redis_admin.kill, victims)
        return len(victims)

    async with example.make_pool(redis_url) as pool:
        await storm(pool, call, kill)
