"""What a user's type checker sees: checked by ``mypy --strict tests/typing``.

Not a test module (pytest collects only ``test_*.py``) and never run: mypy
checks it.  Each ``assert_type`` states the type mypy must infer; each
``# type: ignore[code]`` marks a mistake mypy must report with that code, and
``warn_unused_ignores`` (part of ``--strict``) fails the check if it no longer
does.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Coroutine
from typing import Any

from typing_extensions import assert_type

from respool import (
    AsyncCheck,
    AsyncFactory,
    AsyncLease,
    AsyncPool,
    AsyncReleaser,
    Check,
    Factory,
    Histogram,
    Lease,
    Pool,
    PoolStats,
    PoolTimeout,
    Releaser,
    events,
)


def connect() -> sqlite3.Connection:
    return sqlite3.connect(":memory:", check_same_thread=False)


def close(conn: sqlite3.Connection) -> None:
    conn.close()


def close_anything(resource: object) -> None:
    """A releaser for any type fits any pool: its parameter is contravariant."""


async def aconnect() -> sqlite3.Connection:
    return connect()


async def aclose(conn: sqlite3.Connection) -> None:
    conn.close()


def close_text(text: str) -> None:
    """A releaser for the wrong type."""


def ping(conn: sqlite3.Connection) -> bool:
    row: tuple[int] = conn.execute("SELECT 1").fetchone()
    return row == (1,)


async def aping(conn: sqlite3.Connection) -> bool:
    return ping(conn)


async def arollback(conn: sqlite3.Connection) -> None:
    conn.rollback()


# -- threads: the resource type comes from the factory ----------------------------

pool = Pool(connect, close, pool_size=4)
assert_type(pool, Pool[sqlite3.Connection])
assert_type(Pool(connect, sqlite3.Connection.close), Pool[sqlite3.Connection])
assert_type(Pool(connect, None), Pool[sqlite3.Connection])
assert_type(Pool(connect, close_anything), Pool[sqlite3.Connection])
assert_type(Pool(connect, lambda conn: conn.close()), Pool[sqlite3.Connection])
checked = Pool(
    connect,
    close,
    check=ping,
    check_interval=0,
    reset=sqlite3.Connection.rollback,
    leak_timeout=60,
    cleanup_timeout=5,
    max_backoff=1.5,
)
assert_type(checked, Pool[sqlite3.Connection])

assert_type(pool.acquire(), sqlite3.Connection)
assert_type(pool.acquire(timeout=1.5), sqlite3.Connection)
assert_type(pool.lease(), Lease[sqlite3.Connection])
with pool.lease(timeout=5) as conn:
    assert_type(conn, sqlite3.Connection)
with pool as same_pool:
    assert_type(same_pool, Pool[sqlite3.Connection])
assert_type(pool.release(connect()), None)
assert_type(pool.discard(connect()), None)
assert_type(pool.prefill(2, timeout=1), int)
assert_type(pool.recycle(force=True), int)
assert_type(pool.stats(), PoolStats)
assert_type(pool.stats().waiting, int)
assert_type(pool.stats().broken, int)
assert_type(pool.stats(reset=True), PoolStats)
assert_type(pool.stats().acquired_after_waiting, int)
assert_type(pool.stats().refused, int)
assert_type(pool.stats().wait, Histogram | None)
wait = pool.stats().wait
if wait is not None:
    assert_type(wait.p99, float)
    assert_type(wait.buckets, tuple[int, ...])


def on_event(event: events.Event) -> None:
    if isinstance(event, events.Closed):
        assert_type(event.reason, str)


assert_type(Pool(connect, close, metrics=True, on_event=on_event), Pool[sqlite3.Connection])
assert_type(pool.pool_size, int)
assert_type(pool.closed, bool)


# The documented aliases name the callables a pool is built from.
factory: Factory[sqlite3.Connection] = connect
releaser: Releaser[sqlite3.Connection] = close
health: Check[sqlite3.Connection] = ping
assert_type(Pool(factory, releaser, check=health), Pool[sqlite3.Connection])
not_a_factory: Factory[sqlite3.Connection] = aconnect  # type: ignore[assignment]
not_an_async_releaser: AsyncReleaser[sqlite3.Connection] = close  # type: ignore[assignment]


def on_timeout(error: PoolTimeout) -> None:
    assert_type(error.stats, PoolStats)
    assert_type(error.last_error, BaseException | None)


# -- asyncio and trio -------------------------------------------------------------


async def use_async_pool() -> None:
    apool = AsyncPool(aconnect, aclose, pool_size=4)
    assert_type(apool, AsyncPool[sqlite3.Connection])
    afactory: AsyncFactory[sqlite3.Connection] = aconnect
    areleaser: AsyncReleaser[sqlite3.Connection] = aclose
    ahealth: AsyncCheck[sqlite3.Connection] = aping
    assert_type(AsyncPool(afactory, areleaser, check=ahealth), AsyncPool[sqlite3.Connection])
    assert_type(AsyncPool(aconnect, None), AsyncPool[sqlite3.Connection])
    assert_type(
        AsyncPool(aconnect, aclose, check=aping, reset=arollback),
        AsyncPool[sqlite3.Connection],
    )
    assert_type(await apool.acquire(), sqlite3.Connection)
    assert_type(apool.lease(), AsyncLease[sqlite3.Connection])
    async with apool.lease() as conn:
        assert_type(conn, sqlite3.Connection)
    async with apool as same_pool:
        assert_type(same_pool, AsyncPool[sqlite3.Connection])
    assert_type(await apool.prefill(), int)
    assert_type(await apool.recycle(), int)
    assert_type(apool.stats(), PoolStats)
    await apool.release(conn)
    assert_type(await apool.discard(conn), None)

    # Mistakes mypy catches.
    await apool.release("not a connection")  # type: ignore[arg-type]
    AsyncPool(connect, None)  # type: ignore[arg-type]  # a sync factory
    AsyncPool(aconnect, close)  # type: ignore[arg-type]  # a sync releaser
    AsyncPool(aconnect, aclose, check=ping)  # type: ignore[arg-type]  # a sync check
    AsyncPool(aconnect, aclose, reset=sqlite3.Connection.rollback)  # type: ignore[arg-type]
    with apool.lease():  # type: ignore[attr-defined]  # `with` on an async lease
        pass


# -- mistakes mypy catches in threaded code -----------------------------------------

# A releaser for another type: mypy cannot find one resource type that fits
# both callables, and says so as "Cannot infer value of type parameter".
Pool(connect, close_text)  # type: ignore[misc]
Pool[sqlite3.Connection](connect, close_text)  # type: ignore[arg-type]  # named: pointed error
pool.release("not a connection")  # type: ignore[arg-type]
pool.discard("not a connection")  # type: ignore[arg-type]
Pool(connect, close, check=close_text)  # type: ignore[misc]  # a check for another type
Pool[sqlite3.Connection](connect, close, check=close_text)  # type: ignore[arg-type]
Pool(connect, close, check_interval=None)  # type: ignore[arg-type]  # seconds, not None
Pool(connect, close, pool_size="4")  # type: ignore[arg-type]
with pool.lease() as conn:
    conn.no_such_method()  # type: ignore[attr-defined]
text: str = pool.acquire()  # type: ignore[assignment]
Pool(aconnect, close)  # type: ignore[misc]  # an async factory with a sync releaser

# An async factory with no releaser type-checks, and the "resource" is the
# coroutine object: the type says what went wrong.
assert_type(Pool(aconnect, None), Pool[Coroutine[Any, Any, sqlite3.Connection]])
