"""``respool.presets`` against real servers: each preset serves queries, rolls back what a
holder left open, and survives every server connection killed once under load.

The kill tests: ``CALLERS`` callers share a pool of ``POOL_SIZE`` for ``SECONDS``;
``KILL_AT`` seconds in, a separate admin connection kills every connection of the pool
(``pg_terminate_backend``, or Redis ``CLIENT KILL TYPE normal SKIPME yes``).  At most
one request per killed connection may fail (those in flight at the kill, at most
``POOL_SIZE``), none once the kill is over, and the pool settles (nothing leased, no
more than ``POOL_SIZE`` alive).

Every async driver here (asyncpg, psycopg's AsyncConnection, redis.asyncio) runs on
asyncio only, so the AsyncPool tests run under asyncio only, never trio.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import threading
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
import asyncpg
import attrs
import psycopg
import pytest
import redis
from psycopg.pq import TransactionStatus

import respool
from respool import presets
from tests.integration.conftest import PgAdmin, RedisAdmin
from tests.integration.support import WAIT

CALLERS = 20
POOL_SIZE = 5
SECONDS = 1.5
KILL_AT = 0.5
GRACE = 0.25  # seconds after the kill in which a connection may still be found dead
QUERY_SLEEP = 0.01  # each PostgreSQL request holds its connection this long


@pytest.fixture
def anyio_backend() -> str:
    """asyncpg, psycopg's AsyncConnection and redis.asyncio run on asyncio only."""
    return "asyncio"


def app_name() -> str:
    """An ``application_name`` of the test's own, to find its pool's backends."""
    return f"respool-presets-{uuid.uuid4().hex[:8]}"


# -- the kill test's bookkeeping ----------------------------------------------------------


@attrs.define
class Request:
    start: float
    end: float
    error: BaseException | None


@attrs.define
class Outcome:
    requests: list[Request] = attrs.Factory(list)
    leased_at_kill: int = 0  # requests holding a connection as the kill began
    killed: int = 0
    kill_start: float = 0.0
    kill_end: float = 0.0

    def record(self, start: float, error: BaseException | None) -> None:
        self.requests.append(Request(start, time.monotonic(), error))


def judge(name: str, outcome: Outcome, pool: respool.Pool[Any] | respool.AsyncPool[Any]) -> None:
    failures = [r for r in outcome.requests if r.error is not None]
    late = [r for r in failures if r.start > outcome.kill_end + GRACE]
    recovered = [r for r in outcome.requests if r.error is None and r.start > outcome.kill_end]
    stats = pool.stats()
    print(
        f"\n{name}: {len(outcome.requests)} requests; at the kill {outcome.leased_at_kill} "
        f"in flight, {outcome.killed} connections killed; {len(failures)} failed "
        f"({sorted({type(r.error).__name__ for r in failures})}); {len(recovered)} succeeded "
        f"after the kill; stats after: {stats}"
    )
    assert outcome.killed >= 1
    assert len(failures) <= POOL_SIZE, [r.error for r in failures]
    assert not late, [r.error for r in late]
    assert recovered, "no request succeeded after the kill"
    assert stats.leased == 0 and stats.size <= POOL_SIZE, stats


def load_threads(
    pool: respool.Pool[Any], query: Callable[[Any], object], kill: Callable[[], int]
) -> Outcome:
    outcome = Outcome()
    lock = threading.Lock()
    stop = time.monotonic() + SECONDS

    def caller() -> None:
        while time.monotonic() < stop:
            start, error = time.monotonic(), None
            try:
                with pool.lease(timeout=WAIT) as conn:
                    query(conn)
            except Exception as e:
                error = e
            with lock:
                outcome.record(start, error)

    threads = [threading.Thread(target=caller) for _ in range(CALLERS)]
    for thread in threads:
        thread.start()
    try:
        time.sleep(KILL_AT)
        outcome.leased_at_kill = pool.stats().leased
        outcome.kill_start = time.monotonic()
        outcome.killed = kill()
        outcome.kill_end = time.monotonic()
    finally:
        for thread in threads:
            thread.join(timeout=WAIT)
    assert not any(thread.is_alive() for thread in threads)
    return outcome


async def load_tasks(
    pool: respool.AsyncPool[Any], query: Callable[[Any], Awaitable[object]], kill: Callable[[], int]
) -> Outcome:
    outcome = Outcome()
    stop = time.monotonic() + SECONDS

    async def caller() -> None:
        while time.monotonic() < stop:
            start, error = time.monotonic(), None
            try:
                async with pool.lease(timeout=WAIT) as conn:
                    await query(conn)
            except Exception as e:
                error = e
            outcome.record(start, error)

    with anyio.fail_after(SECONDS + WAIT):
        async with anyio.create_task_group() as tg:
            for _ in range(CALLERS):
                tg.start_soon(caller)
            await anyio.sleep(KILL_AT)
            outcome.leased_at_kill = pool.stats().leased
            outcome.kill_start = time.monotonic()
            outcome.killed = await anyio.to_thread.run_sync(kill)  # the loop keeps serving
            outcome.kill_end = time.monotonic()
    return outcome


def pg_killer(admin: PgAdmin, application_name: str) -> Callable[[], int]:
    def kill() -> int:
        rows = admin.conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE application_name = %s", (application_name,)
        ).fetchall()
        admin.terminate(pid for (pid,) in rows)
        return len(rows)

    return kill


def redis_killer(admin: RedisAdmin) -> Callable[[], int]:
    def kill() -> int:
        return int(
            admin.client.execute_command("CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes")
        )

    return kill


# -- asyncpg --------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_asyncpg_pool_serves_and_resets(pg_dsn: str) -> None:
    async with presets.asyncpg_pool(pg_dsn, pool_size=2) as pool:
        async with pool.lease() as conn:
            first = conn
            assert await conn.fetchval("SELECT $1::int * 2", 21) == 42
            await conn.execute("BEGIN")
            await conn.execute("SET LOCAL application_name = 'left behind'")
        async with pool.lease() as conn:
            assert conn is first
            assert not conn.is_in_transaction()
            assert await conn.fetchval("SHOW application_name") != "left behind"
    assert pool.stats().created == 1


@pytest.mark.anyio
async def test_asyncpg_pool_survives_every_backend_killed(pg_dsn: str, pg_admin: PgAdmin) -> None:
    name = app_name()
    pool = presets.asyncpg_pool(
        pg_dsn,
        pool_size=POOL_SIZE,
        connect_kwargs={"server_settings": {"application_name": name}, "timeout": 5},
    )
    async with pool:

        async def query(conn: asyncpg.Connection) -> None:
            await conn.execute("SELECT pg_sleep($1)", QUERY_SLEEP)

        outcome = await load_tasks(pool, query, pg_killer(pg_admin, name))
        judge("asyncpg", outcome, pool)
        for r in outcome.requests:
            assert r.error is None or isinstance(r.error, pool._discard_on), r.error


# -- psycopg ------------------------------------------------------------------------------


def test_psycopg_pool_serves_and_rolls_back(pg_dsn: str, caplog: pytest.LogCaptureFixture) -> None:
    with presets.psycopg_pool(pg_dsn, pool_size=2) as pool:
        with pool.lease() as conn:
            first = conn
            row = conn.execute("SELECT %s::int * 2", (21,)).fetchone()
            assert row == (42,)
            conn.execute("SET LOCAL application_name = 'left behind'")  # left in a transaction
        with pool.lease() as conn:
            assert conn is first
            assert conn.info.transaction_status == TransactionStatus.IDLE
            assert conn.execute("SHOW application_name").fetchone() != ("left behind",)
            conn.rollback()
        with contextlib.suppress(psycopg.errors.DivisionByZero), pool.lease() as conn:
            conn.execute("SELECT 1 / 0")  # an aborted transaction (INERROR)
        with pool.lease() as conn:
            assert conn is first
            assert conn.info.transaction_status == TransactionStatus.IDLE
    rolled = [r for r in caplog.records if r.name == "respool.presets"]
    assert [r.levelno for r in rolled] == [logging.WARNING] * 2, rolled  # INTRANS, INERROR
    assert all("rolling back" in r.getMessage() for r in rolled)


def test_psycopg_pool_survives_every_backend_killed(pg_dsn: str, pg_admin: PgAdmin) -> None:
    name = app_name()
    pool = presets.psycopg_pool(
        pg_dsn,
        pool_size=POOL_SIZE,
        connect_kwargs={"application_name": name, "autocommit": True, "connect_timeout": 5},
    )
    with pool:
        outcome = load_threads(
            pool,
            lambda conn: conn.execute("SELECT pg_sleep(%s)", (QUERY_SLEEP,)),
            pg_killer(pg_admin, name),
        )
        judge("psycopg", outcome, pool)
        for r in outcome.requests:
            assert r.error is None or isinstance(r.error, psycopg.OperationalError), r.error


@pytest.mark.anyio
async def test_psycopg_async_pool_serves_and_rolls_back(pg_dsn: str) -> None:
    async with presets.psycopg_async_pool(pg_dsn, pool_size=2) as pool:
        async with pool.lease() as conn:
            first = conn
            cursor = await conn.execute("SELECT %s::int * 2", (21,))
            assert await cursor.fetchone() == (42,)
            assert conn.info.transaction_status == TransactionStatus.INTRANS  # left open
        async with pool.lease() as conn:
            assert conn is first
            assert conn.info.transaction_status == TransactionStatus.IDLE


@pytest.mark.anyio
async def test_psycopg_async_pool_survives_every_backend_killed(
    pg_dsn: str, pg_admin: PgAdmin
) -> None:
    name = app_name()
    pool = presets.psycopg_async_pool(
        pg_dsn,
        pool_size=POOL_SIZE,
        connect_kwargs={"application_name": name, "autocommit": True, "connect_timeout": 5},
    )
    async with pool:

        async def query(conn: psycopg.AsyncConnection[Any]) -> None:
            await conn.execute("SELECT pg_sleep(%s)", (QUERY_SLEEP,))

        outcome = await load_tasks(pool, query, pg_killer(pg_admin, name))
        judge("psycopg async", outcome, pool)
        for r in outcome.requests:
            assert r.error is None or isinstance(r.error, psycopg.OperationalError), r.error


# -- redis ----------------------------------------------------------------------------------


def test_redis_pool_serves_one_connection_per_client(redis_url: str) -> None:
    with presets.redis_pool(redis_url, pool_size=2) as pool:
        with pool.lease() as client:
            first = client.client_id()
            assert client.ping()
        with pool.lease() as client:
            assert client.client_id() == first  # the same connection, kept


def test_redis_pool_survives_every_connection_killed(
    redis_url: str, redis_admin: RedisAdmin
) -> None:
    key = f"respool-presets-{uuid.uuid4().hex}"
    with presets.redis_pool(redis_url, pool_size=POOL_SIZE) as pool:
        outcome = load_threads(pool, lambda client: client.incr(key), redis_killer(redis_admin))
        judge("redis", outcome, pool)
        for r in outcome.requests:
            assert r.error is None or isinstance(r.error, redis.ConnectionError), r.error
    redis_admin.client.delete(key)


@pytest.mark.anyio
async def test_redis_async_pool_serves_one_connection_per_client(redis_url: str) -> None:
    async with presets.redis_async_pool(redis_url, pool_size=2) as pool:
        async with pool.lease() as client:
            first = await client.client_id()
            assert await client.ping()
        async with pool.lease() as client:
            assert await client.client_id() == first


@pytest.mark.anyio
async def test_redis_async_pool_survives_every_connection_killed(
    redis_url: str, redis_admin: RedisAdmin
) -> None:
    key = f"respool-presets-{uuid.uuid4().hex}"
    async with presets.redis_async_pool(redis_url, pool_size=POOL_SIZE) as pool:

        async def query(client: Any) -> None:
            await client.incr(key)

        outcome = await load_tasks(pool, query, redis_killer(redis_admin))
        judge("redis.asyncio", outcome, pool)
        for r in outcome.requests:
            assert r.error is None or isinstance(r.error, redis.ConnectionError), r.error
    redis_admin.client.delete(key)


# -- sqlite ---------------------------------------------------------------------------------


def test_sqlite_pool_serves_and_rolls_back(tmp_path: Path) -> None:
    path = str(tmp_path / "presets.db")
    with presets.sqlite_pool(path, pool_size=2) as pool:
        with pool.lease() as conn:
            conn.execute("CREATE TABLE t (x INTEGER)")
            conn.execute("INSERT INTO t VALUES (1)")
            conn.commit()
            conn.execute("INSERT INTO t VALUES (2)")  # left uncommitted
            assert conn.in_transaction
            first = conn
        with pool.lease() as conn:
            assert conn is first
            assert not conn.in_transaction
            assert conn.execute("SELECT x FROM t").fetchall() == [(1,)]


def test_user_kwargs_override_the_preset(tmp_path: Path) -> None:
    path = str(tmp_path / "presets.db")
    with presets.sqlite_pool(path, pool_size=1, reset=None) as pool:
        with pool.lease() as conn:
            conn.execute("CREATE TABLE t (x INTEGER)")
            conn.execute("INSERT INTO t VALUES (1)")
        with pool.lease() as conn:
            assert conn.in_transaction  # no reset: left as it was
            conn.rollback()
    options = presets.sqlite(path, timeout=1.0)
    conn = options["factory"]()
    try:
        assert isinstance(conn, sqlite3.Connection)
    finally:
        conn.close()


# -- keepalive against the real server (issue 11) --------------------------------------------


def backends_of(admin: PgAdmin, application_name: str) -> set[int]:
    rows = admin.conn.execute(
        "SELECT pid FROM pg_stat_activity WHERE application_name = %s", (application_name,)
    ).fetchall()
    return {pid for (pid,) in rows}


def test_keepalive_replaces_killed_idle_connections_before_any_caller_sees_them(
    pg_dsn: str, pg_admin: PgAdmin
) -> None:
    """An opened psycopg pool: its idle backends are killed; no caller is there to notice.

    The maintainer's keepalive check finds them dead and min_size brings fresh
    ones, so the next caller is served on its first try, by a new backend.
    """
    name = app_name()
    with presets.psycopg_pool(
        pg_dsn,
        pool_size=4,
        min_size=2,
        keepalive=0.05,
        connect_kwargs={"application_name": name, "autocommit": True, "connect_timeout": 5},
    ) as pool:
        deadline = time.monotonic() + WAIT
        while len(backends_of(pg_admin, name)) < 2:
            assert time.monotonic() < deadline, pool.stats()
            time.sleep(0.01)
        killed = backends_of(pg_admin, name)
        pg_admin.terminate(killed)
        while not (pool.stats().broken >= 2 and len(backends_of(pg_admin, name)) == 2):
            assert time.monotonic() < deadline, pool.stats()  # replaced, with nobody asking
            time.sleep(0.01)
        assert backends_of(pg_admin, name).isdisjoint(killed)
        with pool.lease() as conn:  # first try, no error: the dead ones are gone
            row = conn.execute("SELECT pg_backend_pid()").fetchone()
            assert row is not None and row[0] not in killed
        assert pool.stats().size >= 2
