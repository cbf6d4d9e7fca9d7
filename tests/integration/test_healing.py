"""Healing under sustained load, against a real PostgreSQL and the real drivers (issue 9).

The field failure: 20 tasks on a pool of 5 (asyncpg), ``pg_terminate_backend``
once, and every lease failed for the rest of the run, ``broken=0``: a lease
whose body failed still counted as recent use, so the default
``check_interval`` never let the check run again.

Here the load never pauses.  Once the pool holds ``POOL_SIZE`` connections, an
admin connection terminates every backend it holds (found by the factory's
``application_name``), and the load goes on.  Each killed connection may fail
the one request that meets it (the request in flight, or the first to use it:
with ``discard_on`` alone that failure is what discards it), and no more:

- every failure is on a killed connection, and none fails twice;
- no failure before the kill, none on a connection made after it;
- every worker is served again afterwards, and ``stats()`` shows the dead
  ones closed as broken and replaced.

Each healing option is tried alone: ``check=`` (with the default
``check_interval``: the case that failed), ``is_closed=``, ``discard_on=``.
No ``reset`` anywhere (it would heal on its own and hide what is tested).

What a killed connection raises (measured, PostgreSQL 57P01 "terminating
connection due to administrator command"):

- asyncpg, busy when killed: ``ConnectionDoesNotExistError`` or, about one in
  five, ``InternalClientError`` ("cannot switch to state 12; another operation
  is in progress"), which is not an ``InterfaceError``; idle when killed, first
  use: ``InterfaceError("connection is closed")``, as is every later use.
  ``is_closed()`` is already true when any of these is raised, and an idle
  killed connection reads true within milliseconds with no I/O, once the loop
  has run.
- psycopg: first use ``AdminShutdown`` (an ``OperationalError``), then
  ``OperationalError("the connection is closed")``.  ``closed``/``broken``
  stay false until an operation fails (libpq reads the socket only then), so
  ``is_closed`` alone costs one failure per killed connection, like
  ``discard_on``.

The last tests are item 2 of the issue: a factory slower than its callers'
timeout still fills the pool, because a creation outlives a caller who gives up.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import anyio
import anyio.to_thread
import asyncpg
import psycopg
import pytest
from psycopg.rows import TupleRow

import respool
from tests.figures import figures
from tests.integration.conftest import PgAdmin
from tests.integration.support import WAIT

FIGURES = figures("healing_pg")

KILL_AT = 0.8  # seconds of load before the kill
RUN_FOR = 2.5  # seconds of load in all, at least
DEADLINE = 8.0  # seconds of load at most, when workers are slow to be served again
SERVED_AFTER = 10  # leases each worker must be served after the kill
MAX_LEASES = 200_000  # per worker: every loop is bounded in count as well as time

Connection = psycopg.Connection[TupleRow]

# What a killed asyncpg connection raises (see the module's docstring); the
# shutdown errors are listed in case the server's message is read as a reply.
ASYNCPG_DEAD = (
    asyncpg.PostgresConnectionError,  # ConnectionDoesNotExistError
    asyncpg.InterfaceError,  # "connection is closed"
    asyncpg.exceptions.InternalClientError,  # "cannot switch to state ..."
    asyncpg.exceptions.AdminShutdownError,
    asyncpg.exceptions.CrashShutdownError,
    OSError,
)
PSYCOPG_DEAD = (psycopg.OperationalError, psycopg.InterfaceError)


def psycopg_is_closed(conn: Connection) -> bool:
    return conn.closed or conn.broken


# -- what the load saw --------------------------------------------------------------------


@dataclass
class Tally:
    """What the workers saw.  Each worker writes its own slot; lists only grow (GIL-safe)."""

    workers: int
    killing: bool = False  # set just before the kill
    killed_at: float | None = None  # set once the killed backends are gone
    killed: frozenset[int] = frozenset()
    failures: list[tuple[bool, int | None, str]] = field(default_factory=list)
    served_before: list[int] = field(init=False)
    served_after: list[int] = field(init=False)

    def __post_init__(self) -> None:
        self.served_before = [0] * self.workers
        self.served_after = [0] * self.workers

    def fail(self, pid: int | None, error: BaseException) -> None:
        self.failures.append((self.killing, pid, f"{type(error).__name__}: {error}"[:120]))

    def serve(self, worker: int, started_after_kill: bool) -> None:
        if started_after_kill:
            self.served_after[worker] += 1
        else:
            self.served_before[worker] += 1

    def done(self, elapsed: float) -> bool:
        """Enough load: ``RUN_FOR`` seconds passed and the outcome is known."""
        if elapsed >= DEADLINE:
            return True
        healed = min(self.served_after) >= SERVED_AFTER
        hopeless = len(self.failures) > len(self.killed)
        return elapsed >= RUN_FOR and (healed or hopeless)


class Backends:
    """The backends a pool's factory opened and its releaser closed, by connection."""

    def __init__(self) -> None:
        self.pid_of: dict[int, int] = {}  # id(conn) -> backend pid, recorded at creation
        self.keep: list[object] = []  # keeps every connection alive, so ids stay unique
        self.closed: set[int] = set()

    def opened(self, conn: object, pid: int) -> None:
        self.keep.append(conn)
        self.pid_of[id(conn)] = pid

    def alive(self) -> set[int]:
        return set(self.pid_of.values()) - self.closed


def app_name(request: pytest.FixtureRequest) -> str:
    """A name for the test's connections on the server (``application_name``, <64 bytes)."""
    return f"respool-{request.node.name}"[:63]


def server_pids(pg_admin: PgAdmin, name: str) -> set[int]:
    rows = pg_admin.conn.execute(
        "SELECT pid FROM pg_stat_activity WHERE application_name = %s", (name,)
    ).fetchall()
    return {int(pid) for (pid,) in rows}


def wait_for_no_backends(pg_admin: PgAdmin, name: str) -> None:
    """After ``dispose()``: the server sees none of the pool's connections (bounded wait)."""
    deadline = time.monotonic() + WAIT
    while left := server_pids(pg_admin, name):
        assert time.monotonic() < deadline, f"still connected after dispose: {left}"
        time.sleep(0.02)


def kill_everything_the_pool_holds(pg_admin: PgAdmin, backends: Backends, name: str) -> set[int]:
    held = backends.alive()
    deadline = time.monotonic() + WAIT  # a closed connection's backend may take a moment to go
    while (seen := server_pids(pg_admin, name)) != held and time.monotonic() < deadline:
        time.sleep(0.02)
    assert held == seen, (held, seen)
    pg_admin.terminate(held)  # returns once the server has let them go
    return held


def verdict(
    tally: Tally,
    before: respool.PoolStats,
    after: respool.PoolStats,
    seconds_after: float,
    label: str,
) -> None:
    """The assertions every healing variant shares; figures recorded first."""
    after_kill = [(pid, what) for killing, pid, what in tally.failures if killing]
    per_connection = Counter(pid for pid, _ in after_kill)
    FIGURES.add(
        **{
            f"{label}_killed": len(tally.killed),
            f"{label}_failures": len(tally.failures),
            f"{label}_served_after_kill": sum(tally.served_after),
        }
    )
    summary = (
        f"{len(tally.failures)} failures for {len(tally.killed)} killed connections "
        f"({len(after_kill) / max(seconds_after, 1e-9):.0f}/s over {seconds_after:.2f}s "
        f"after the kill), by kind {Counter(what for _, what in after_kill).most_common(4)}; "
        f"served after the kill, per worker: {tally.served_after}; broken "
        f"{before.broken}->{after.broken}, created {before.created}->{after.created}"
    )
    assert len(after_kill) == len(tally.failures), f"failures before the kill: {summary}"
    assert set(per_connection) <= tally.killed, f"a live or new connection failed: {summary}"
    assert max(per_connection.values(), default=0) <= 1, f"a dead one served twice: {summary}"
    assert min(tally.served_after) >= SERVED_AFTER, f"not every worker healed: {summary}"
    assert after.broken - before.broken >= len(tally.killed), summary
    assert after.created - before.created >= len(tally.killed), summary
    assert after.timeouts == after.create_errors == 0, (summary, after)


# -- asyncpg, AsyncPool: 20 tasks on a pool of 5 ------------------------------------------

ASYNC_POOL_SIZE = 5
ASYNC_TASKS = 20


async def asyncpg_check(conn: asyncpg.Connection) -> None:
    await conn.fetchval("SELECT 1", timeout=5)


ASYNCPG_VARIANTS = {
    "check": {"check": asyncpg_check},  # with the default check_interval
    "is_closed": {"is_closed": asyncpg.Connection.is_closed},
    "discard_on": {"discard_on": ASYNCPG_DEAD},
}


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])  # asyncpg runs on asyncio only
@pytest.mark.parametrize("variant", list(ASYNCPG_VARIANTS))
async def test_asyncpg_pool_heals_under_load(
    pg_dsn: str, pg_admin: PgAdmin, request: pytest.FixtureRequest, variant: str
) -> None:
    name = app_name(request)
    backends = Backends()

    async def connect() -> asyncpg.Connection:
        conn = await asyncpg.connect(pg_dsn, timeout=5, server_settings={"application_name": name})
        backends.opened(conn, conn.get_server_pid())
        return conn

    async def close(conn: asyncpg.Connection) -> None:
        backends.closed.add(backends.pid_of[id(conn)])
        await conn.close(timeout=5)

    pool = respool.AsyncPool(connect, close, pool_size=ASYNC_POOL_SIZE, **ASYNCPG_VARIANTS[variant])
    tally = Tally(ASYNC_TASKS)
    stop = anyio.Event()

    async def worker(n: int) -> None:
        for _ in range(MAX_LEASES):
            if stop.is_set():
                return
            after = tally.killed_at is not None
            pid = None
            try:
                async with pool.lease(timeout=WAIT) as conn:
                    pid = backends.pid_of[id(conn)]
                    assert await conn.fetchval("SELECT 1") == 1
            except Exception as error:
                tally.fail(pid, error)
            else:
                tally.serve(n, after)

    async with pool:
        started = time.monotonic()
        async with anyio.create_task_group() as tg:
            for n in range(ASYNC_TASKS):
                tg.start_soon(worker, n)
            with anyio.fail_after(WAIT):
                while (
                    time.monotonic() - started < KILL_AT or len(backends.alive()) < ASYNC_POOL_SIZE
                ):
                    await anyio.sleep(0.02)
            before = pool.stats()
            tally.killing = True
            tally.killed = frozenset(
                await anyio.to_thread.run_sync(
                    kill_everything_the_pool_holds, pg_admin, backends, name
                )
            )
            tally.killed_at = killed_at = time.monotonic()
            while not tally.done(time.monotonic() - started):
                await anyio.sleep(0.02)
            stop.set()
        seconds_after = time.monotonic() - killed_at
        after = pool.stats()
    await anyio.to_thread.run_sync(wait_for_no_backends, pg_admin, name)
    assert len(tally.killed) == ASYNC_POOL_SIZE
    verdict(tally, before, after, seconds_after, f"asyncpg_{variant}")


# -- psycopg 3, Pool: 8 threads on a pool of 4 ---------------------------------------------

SYNC_POOL_SIZE = 4
SYNC_THREADS = 8


def psycopg_check(conn: Connection) -> None:
    conn.execute("SELECT 1")  # autocommit: no transaction left open


PSYCOPG_VARIANTS: dict[str, dict[str, Any]] = {
    "check": {"check": psycopg_check},  # with the default check_interval
    "is_closed": {"is_closed": psycopg_is_closed},
    "discard_on": {"discard_on": PSYCOPG_DEAD},
}


@pytest.mark.parametrize("variant", list(PSYCOPG_VARIANTS))
def test_psycopg_pool_heals_under_load(
    pg_dsn: str, pg_admin: PgAdmin, request: pytest.FixtureRequest, variant: str
) -> None:
    name = app_name(request)
    backends = Backends()

    def connect() -> Connection:
        conn = psycopg.connect(pg_dsn, autocommit=True, connect_timeout=5, application_name=name)
        backends.opened(conn, conn.info.backend_pid)
        return conn

    def close(conn: Connection) -> None:
        backends.closed.add(backends.pid_of[id(conn)])
        conn.close()

    pool = respool.Pool(connect, close, pool_size=SYNC_POOL_SIZE, **PSYCOPG_VARIANTS[variant])
    tally = Tally(SYNC_THREADS)
    stop = threading.Event()

    def worker(n: int) -> None:
        for _ in range(MAX_LEASES):
            if stop.is_set():
                return
            after = tally.killed_at is not None
            pid = None
            try:
                with pool.lease(timeout=WAIT) as conn:
                    pid = backends.pid_of[id(conn)]
                    assert conn.execute("SELECT 1").fetchone() == (1,)
            except Exception as error:
                tally.fail(pid, error)
            else:
                tally.serve(n, after)

    with pool, running(worker, SYNC_THREADS, stop):
        started = time.monotonic()
        deadline = started + WAIT
        while time.monotonic() - started < KILL_AT or len(backends.alive()) < SYNC_POOL_SIZE:
            assert time.monotonic() < deadline, pool.stats()
            time.sleep(0.02)
        before = pool.stats()
        tally.killing = True
        tally.killed = frozenset(kill_everything_the_pool_holds(pg_admin, backends, name))
        tally.killed_at = killed_at = time.monotonic()
        while not tally.done(time.monotonic() - started):
            time.sleep(0.02)
        stop.set()
        seconds_after = time.monotonic() - killed_at
    after = pool.stats()
    wait_for_no_backends(pg_admin, name)
    assert len(tally.killed) == SYNC_POOL_SIZE
    verdict(tally, before, after, seconds_after, f"psycopg_{variant}")


@contextlib.contextmanager
def running(worker: Callable[[int], None], count: int, stop: threading.Event) -> Iterator[None]:
    """Run ``worker(0..count-1)`` in threads; on exit set ``stop``, join them (bounded)
    and re-raise the first error a worker raised."""
    errors: list[BaseException] = []

    def run(n: int) -> None:
        try:
            worker(n)
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=run, args=(n,), daemon=True) for n in range(count)]
    for thread in threads:
        thread.start()
    try:
        yield
    finally:
        stop.set()
        for thread in threads:
            thread.join(WAIT)
    assert not any(thread.is_alive() for thread in threads), "a worker hangs"
    if errors:
        raise errors[0]


# -- item 2: a creation outlives the caller who gave up -----------------------------------

CONNECT_DELAY = 0.2  # seconds the factory waits before connecting
CALLER_TIMEOUT = 0.1  # seconds each caller waits: less than one creation takes
TRAFFIC_FOR = 2.0  # seconds
SLOW_POOL_SIZE = 4
SLOW_CALLERS = 10


@dataclass
class Traffic:
    served: int = 0
    timeouts: int = 0
    other: list[str] = field(default_factory=list)


def assert_filled_anyway(traffic: Traffic, stats: respool.PoolStats, label: str) -> None:
    FIGURES.add(**{f"{label}_served": traffic.served, f"{label}_timeouts": traffic.timeouts})
    summary = f"{traffic}, created={stats.created}, stats {stats}"
    assert not traffic.other, summary
    # Nothing can exist before CONNECT_DELAY, so the first callers must give up...
    assert traffic.timeouts >= 1, summary
    # ...and the creations they started still finish and serve those who come later.
    assert stats.created >= 1, summary
    assert traffic.served > 0, summary
    assert stats.created <= SLOW_POOL_SIZE, summary


@pytest.fixture
def slow_name(request: pytest.FixtureRequest, pg_admin: PgAdmin) -> Iterator[str]:
    """The test's ``application_name``; afterwards, no connection of it is left on the server."""
    name = app_name(request)
    yield name
    wait_for_no_backends(pg_admin, name)


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])  # asyncpg runs on asyncio only
async def test_async_pool_fills_although_connecting_outlasts_every_caller(
    pg_dsn: str, slow_name: str
) -> None:
    async def connect() -> asyncpg.Connection:
        await anyio.sleep(CONNECT_DELAY)  # a remote database, TLS...
        return await asyncpg.connect(
            pg_dsn, timeout=5, server_settings={"application_name": slow_name}
        )

    async def close(conn: asyncpg.Connection) -> None:
        await conn.close(timeout=5)

    traffic = Traffic()

    async def caller(pool: respool.AsyncPool[asyncpg.Connection]) -> None:
        end = time.monotonic() + TRAFFIC_FOR
        for _ in range(MAX_LEASES):
            if time.monotonic() >= end:
                return
            try:
                async with pool.lease(timeout=CALLER_TIMEOUT) as conn:
                    assert await conn.fetchval("SELECT 1") == 1
            except respool.PoolTimeout:
                traffic.timeouts += 1
            except Exception as error:
                traffic.other.append(repr(error))
            else:
                traffic.served += 1

    async with respool.AsyncPool(connect, close, pool_size=SLOW_POOL_SIZE) as pool:
        async with anyio.create_task_group() as tg:
            for _ in range(SLOW_CALLERS):
                tg.start_soon(caller, pool)
        stats = pool.stats()
    assert_filled_anyway(traffic, stats, "asyncpg_slow_connect")


def test_pool_fills_although_connecting_outlasts_every_caller(pg_dsn: str, slow_name: str) -> None:
    def connect() -> Connection:
        time.sleep(CONNECT_DELAY)
        return psycopg.connect(
            pg_dsn, autocommit=True, connect_timeout=5, application_name=slow_name
        )

    traffic = Traffic()
    lock = threading.Lock()
    stop = threading.Event()

    with respool.Pool(connect, psycopg.Connection.close, pool_size=SLOW_POOL_SIZE) as pool:

        def caller(_: int) -> None:
            end = time.monotonic() + TRAFFIC_FOR
            for _ in range(MAX_LEASES):
                if time.monotonic() >= end or stop.is_set():
                    return
                try:
                    conn = pool.acquire(timeout=CALLER_TIMEOUT)
                except respool.PoolTimeout:
                    outcome = "timeout"
                else:
                    try:
                        assert conn.execute("SELECT 1").fetchone() == (1,)
                        outcome = "served"
                    except Exception as error:
                        outcome = repr(error)
                    finally:
                        pool.release(conn)
                with lock:
                    if outcome == "served":
                        traffic.served += 1
                    elif outcome == "timeout":
                        traffic.timeouts += 1
                    else:
                        traffic.other.append(outcome)

        with running(caller, SLOW_CALLERS, stop):
            time.sleep(TRAFFIC_FOR)
        stats = pool.stats()
    assert_filled_anyway(traffic, stats, "psycopg_slow_connect")
