"""respool against the drivers' own pools, on the real local servers, in one process.

One op is one whole lease as a caller sees it: take a connection, one round
trip (PostgreSQL ``SELECT 1``, Redis ``PING``), give it back.  For each driver
the pools run side by side, 1 caller and 50 callers on 10 connections:

* psycopg, threads: respool ``Pool`` (``presets.psycopg_pool``), psycopg_pool
  ``ConnectionPool``, SQLAlchemy ``QueuePool(creator)`` of raw psycopg
  connections;
* psycopg, asyncio: respool ``AsyncPool`` (``presets.psycopg_async_pool``),
  psycopg_pool ``AsyncConnectionPool``;
* asyncpg: respool ``AsyncPool`` (``presets.asyncpg_pool``), ``asyncpg.create_pool``;
* redis-py, threads and asyncio: respool (``presets.redis_pool`` /
  ``redis_async_pool``) against redis-py's ``BlockingConnectionPool``.

Every scenario also runs a second, independent respool pool ("respool,
again"): its ratio to the first is the run's noise floor.

    python benchmarks/servers.py            # full run (about 4 minutes)
    python benchmarks/servers.py --quick    # smoke run, writes nothing by default

Method as benchmarks/bench.py: every (scenario, pool) case once per round,
in an order rotated from round to round, a fresh prefilled pool per case;
a warm-up, then a window timed in slices (the sample is the best slice);
medians over rounds.  Latency (p50/p99) is each op's, lease to release,
over the whole window.  Servers: ``$RESPOOL_PG_DSN`` (default
``postgresql://postgres@127.0.0.1:5432/test``) and ``$RESPOOL_REDIS_URL``
(default ``redis://127.0.0.1:6379/0``).

Outputs (full run): a table on stdout, benchmarks/servers.json, and the
servers block of docs/performance.md.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import datetime
import gc
import importlib.util
import itertools
import json
import os
import platform
import socket
import statistics
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent))

import report

from respool import presets

ROOT = Path(__file__).resolve().parent.parent
DSN = os.environ.get("RESPOOL_PG_DSN", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("RESPOOL_REDIS_URL", "redis://127.0.0.1:6379/0")
START = "<!-- servers:start -->"
END = "<!-- servers:end -->"
POOL_SIZE = 10
perf_counter = time.perf_counter


# -- the pools --------------------------------------------------------------------------


@dataclass
class Handle:
    """A built, prefilled pool: ``op()`` is one whole lease (awaitable for asyncio)."""

    op: Callable[[], Any]
    close: Callable[[], Any]
    checks: list[int] = field(default_factory=lambda: [0])  # respool's check calls


@dataclass(frozen=True)
class Contender:
    key: str
    label: str
    kind: str  # respool | noise | peer
    driver: str  # psycopg | psycopg-async | asyncpg | redis | redis-async
    needs: str | None  # the module a peer needs; missing: skipped with a note
    build: Callable[[int], Any]  # pool_size -> Handle (a coroutine for asyncio)
    does: str  # what it runs per lease besides the round trip (for the docs)


def _counted(options: dict[str, Any], checks: list[int], awaited: bool) -> dict[str, Any]:
    """The preset's ``check``, counting its calls (it runs only on a connection idle
    longer than ``check_interval``, 0.5 s: never inside a measured window)."""
    check = options["check"]
    if awaited:

        async def counted_async(resource: Any) -> None:
            checks[0] += 1
            await check(resource)

        options["check"] = counted_async
    else:

        def counted(resource: Any) -> None:
            checks[0] += 1
            check(resource)

        options["check"] = counted
    return options


# psycopg connections run in autocommit on every side: SELECT 1 opens no
# transaction, so no pool's return path has a COMMIT or ROLLBACK to send
# (each only looks at the transaction status, a libpq call, no round trip).
PG_KWARGS: dict[str, Any] = {"autocommit": True}


def respool_psycopg(size: int) -> Handle:
    from respool import Pool

    checks = [0]
    pool = Pool(
        pool_size=size, **_counted(presets.psycopg(DSN, **PG_KWARGS), checks, awaited=False)
    )
    pool.prefill()

    def op() -> None:
        with pool.lease() as conn:
            conn.execute("SELECT 1").fetchone()

    return Handle(op, pool.dispose, checks)


def psycopg_pool_sync(size: int) -> Handle:
    from psycopg_pool import ConnectionPool

    pool = ConnectionPool(
        DSN, min_size=size, max_size=size, kwargs=PG_KWARGS, open=False, timeout=30.0
    )
    pool.open(wait=True)

    def op() -> None:
        with pool.connection() as conn:
            conn.execute("SELECT 1").fetchone()

    return Handle(op, pool.close)


def sqlalchemy_queuepool(size: int) -> Handle:
    import psycopg
    from sqlalchemy.pool import QueuePool

    pool = QueuePool(
        lambda: psycopg.Connection.connect(DSN, **PG_KWARGS),
        pool_size=size,
        max_overflow=0,
        timeout=30.0,
    )
    held = [pool.connect() for _ in range(size)]  # prefill
    for fairy in held:
        fairy.close()

    def op() -> None:
        with pool.connect() as fairy:
            fairy.driver_connection.execute("SELECT 1").fetchone()

    return Handle(op, pool.dispose)


async def respool_psycopg_async(size: int) -> Handle:
    from respool import AsyncPool

    checks = [0]
    pool = AsyncPool(
        pool_size=size,
        **_counted(presets.psycopg_async(DSN, **PG_KWARGS), checks, awaited=True),
    )
    await pool.prefill()

    async def op() -> None:
        async with pool.lease() as conn:
            cursor = await conn.execute("SELECT 1")
            await cursor.fetchone()

    return Handle(op, pool.dispose, checks)


async def psycopg_pool_async(size: int) -> Handle:
    from psycopg_pool import AsyncConnectionPool

    pool = AsyncConnectionPool(
        DSN, min_size=size, max_size=size, kwargs=PG_KWARGS, open=False, timeout=30.0
    )
    await pool.open(wait=True)

    async def op() -> None:
        async with pool.connection() as conn:
            cursor = await conn.execute("SELECT 1")
            await cursor.fetchone()

    return Handle(op, pool.close)


async def respool_asyncpg(size: int) -> Handle:
    from respool import AsyncPool

    checks = [0]
    pool = AsyncPool(pool_size=size, **_counted(presets.asyncpg(DSN), checks, awaited=True))
    await pool.prefill()

    async def op() -> None:
        async with pool.lease() as conn:
            await conn.fetchval("SELECT 1")

    return Handle(op, pool.dispose, checks)


async def asyncpg_pool(size: int) -> Handle:
    import asyncpg

    pool = await asyncpg.create_pool(DSN, min_size=size, max_size=size)

    async def op() -> None:
        async with pool.acquire() as conn:
            await conn.fetchval("SELECT 1")

    return Handle(op, pool.close)


def respool_redis(size: int) -> Handle:
    from respool import Pool

    checks = [0]
    pool = Pool(pool_size=size, **_counted(presets.redis(REDIS_URL), checks, awaited=False))
    pool.prefill()

    def op() -> None:
        with pool.lease() as client:
            client.ping()

    return Handle(op, pool.dispose, checks)


def redis_blocking(size: int) -> Handle:
    import redis

    pool = redis.BlockingConnectionPool.from_url(REDIS_URL, max_connections=size)
    held = [pool.get_connection() for _ in range(size)]  # prefill
    for connection in held:
        pool.release(connection)
    client = redis.Redis(connection_pool=pool)

    def op() -> None:
        client.ping()

    def close() -> None:
        client.close()
        pool.disconnect()

    return Handle(op, close)


async def respool_redis_async(size: int) -> Handle:
    from respool import AsyncPool

    checks = [0]
    pool = AsyncPool(
        pool_size=size, **_counted(presets.redis_async(REDIS_URL), checks, awaited=True)
    )
    await pool.prefill()

    async def op() -> None:
        async with pool.lease() as client:
            await client.ping()

    return Handle(op, pool.dispose, checks)


async def redis_blocking_async(size: int) -> Handle:
    import redis.asyncio

    pool = redis.asyncio.BlockingConnectionPool.from_url(REDIS_URL, max_connections=size)
    held = [await pool.get_connection() for _ in range(size)]  # prefill
    for connection in held:
        await pool.release(connection)
    client = redis.asyncio.Redis(connection_pool=pool)

    async def op() -> None:
        await client.ping()

    async def close() -> None:
        await client.aclose()
        await pool.aclose()

    return Handle(op, close)


RESPOOL_PG = (
    "preset as shipped, plus autocommit: `reset` looks at the transaction status "
    "(nothing to roll back), `is_closed` on acquire and release, `check` only for a "
    "connection idle > 0.5 s (never in a window); acquire_timeout 30 s; no maintainer"
)
RESPOOL_ASYNCPG = (
    "preset as shipped: `reset` = `conn.reset()` on release (one round trip: "
    "RESET ALL, UNLISTEN *, CLOSE ALL, advisory unlock), `is_closed`, `check` only "
    "for a connection idle > 0.5 s; acquire_timeout 30 s; no maintainer"
)
RESPOOL_REDIS = (
    "preset as shipped: one `single_connection_client` per pooled resource, "
    "`check` only for a client idle > 0.5 s; acquire_timeout 30 s; no maintainer"
)

CONTENDERS = [
    Contender("respool-psycopg", "respool Pool", "respool", "psycopg", None,
              respool_psycopg, RESPOOL_PG),
    Contender("respool-psycopg-2", "respool Pool, again", "noise", "psycopg", None,
              respool_psycopg, "the same, a second pool"),
    Contender("psycopg-pool", "psycopg_pool ConnectionPool", "peer", "psycopg", "psycopg_pool",
              psycopg_pool_sync,
              "min_size = max_size = 10, timeout 30 s; `connection()`: `with conn:` "
              "(commit: a no-op in autocommit), then the status check and the expiry "
              "check on return; its scheduler and 3 worker threads run"),
    Contender("sqlalchemy", "SQLAlchemy QueuePool", "peer", "psycopg", "sqlalchemy",
              sqlalchemy_queuepool,
              "`QueuePool(creator)` of raw psycopg connections, pool_size 10, "
              "max_overflow 0, timeout 30 s, default `reset_on_return='rollback'` "
              "(psycopg's rollback() on an idle connection sends nothing)"),
    Contender("respool-psycopg-async", "respool AsyncPool", "respool", "psycopg-async",
              None, respool_psycopg_async, RESPOOL_PG),
    Contender("respool-psycopg-async-2", "respool AsyncPool, again", "noise", "psycopg-async",
              None, respool_psycopg_async, "the same, a second pool"),
    Contender("psycopg-pool-async", "psycopg_pool AsyncConnectionPool", "peer",
              "psycopg-async", "psycopg_pool", psycopg_pool_async,
              "as its ConnectionPool, awaited; its scheduler and workers are tasks"),
    Contender("respool-asyncpg", "respool AsyncPool", "respool", "asyncpg", None,
              respool_asyncpg, RESPOOL_ASYNCPG),
    Contender("respool-asyncpg-2", "respool AsyncPool, again", "noise", "asyncpg", None,
              respool_asyncpg, "the same, a second pool"),
    Contender("asyncpg-pool", "asyncpg Pool", "peer", "asyncpg", "asyncpg", asyncpg_pool,
              "`create_pool(min_size=10, max_size=10)`, defaults: `conn.reset()` on "
              "release (the same round trip), no acquire timeout"),
    Contender("respool-redis", "respool Pool", "respool", "redis", None,
              respool_redis, RESPOOL_REDIS),
    Contender("respool-redis-2", "respool Pool, again", "noise", "redis", None,
              respool_redis, "the same, a second pool"),
    Contender("redis-blocking", "redis-py BlockingConnectionPool", "peer", "redis", "redis",
              redis_blocking,
              "`Redis(connection_pool=BlockingConnectionPool(max_connections=10))`, "
              "timeout 20 s (its default): a `can_read()` poll of the socket on every "
              "checkout, which it cannot skip"),
    Contender("respool-redis-async", "respool AsyncPool", "respool", "redis-async", None,
              respool_redis_async, RESPOOL_REDIS),
    Contender("respool-redis-async-2", "respool AsyncPool, again", "noise", "redis-async",
              None, respool_redis_async, "the same, a second pool"),
    Contender("redis-blocking-async", "redis-py asyncio BlockingConnectionPool", "peer",
              "redis-async", "redis", redis_blocking_async,
              "as the threaded one, `redis.asyncio`: a `can_read_destructive()` check "
              "on every checkout"),
]  # fmt: skip


# --variants: respool with the `reset` hook's work moved or dropped, to show what the
# hook path itself costs (diagnostics, never targets).
def respool_psycopg_no_reset(size: int) -> Handle:
    from respool import Pool

    pool = Pool(pool_size=size, **{**presets.psycopg(DSN, **PG_KWARGS), "reset": None})
    pool.prefill()

    def op() -> None:
        with pool.lease() as conn:
            conn.execute("SELECT 1").fetchone()

    return Handle(op, pool.dispose)


async def respool_psycopg_async_no_reset(size: int) -> Handle:
    from respool import AsyncPool

    pool = AsyncPool(pool_size=size, **{**presets.psycopg_async(DSN, **PG_KWARGS), "reset": None})
    await pool.prefill()

    async def op() -> None:
        async with pool.lease() as conn:
            cursor = await conn.execute("SELECT 1")
            await cursor.fetchone()

    return Handle(op, pool.dispose)


async def respool_asyncpg_reset_in_body(size: int) -> Handle:
    from respool import AsyncPool

    pool = AsyncPool(pool_size=size, **{**presets.asyncpg(DSN), "reset": None})
    await pool.prefill()

    async def op() -> None:
        async with pool.lease() as conn:
            await conn.fetchval("SELECT 1")
            await conn.reset(timeout=5)  # the preset's reset, in the body instead of the hook

    return Handle(op, pool.dispose)


VARIANTS = [
    Contender("respool-psycopg-no-reset", "respool Pool, reset=None", "variant", "psycopg",
              None, respool_psycopg_no_reset, "the preset without its `reset` hook"),
    Contender("respool-psycopg-async-no-reset", "respool AsyncPool, reset=None", "variant",
              "psycopg-async", None, respool_psycopg_async_no_reset,
              "the preset without its `reset` hook"),
    Contender("respool-asyncpg-reset-in-body", "respool AsyncPool, reset in the body",
              "variant", "asyncpg", None, respool_asyncpg_reset_in_body,
              "the preset's `conn.reset()` run in the lease body, not by the hook"),
]  # fmt: skip
BY_KEY = {c.key: c for c in CONTENDERS + VARIANTS}

DRIVERS = {  # driver: (title, library, query)
    "psycopg": ("PostgreSQL, psycopg, threads", "threads", "SELECT 1"),
    "psycopg-async": ("PostgreSQL, psycopg, asyncio", "asyncio", "SELECT 1"),
    "asyncpg": ("PostgreSQL, asyncpg, asyncio", "asyncio", "SELECT 1"),
    "redis": ("Redis, redis-py, threads", "threads", "PING"),
    "redis-async": ("Redis, redis-py, asyncio", "asyncio", "PING"),
}
CALLERS = (1, 50)


@dataclass(frozen=True)
class Scenario:
    id: str
    title: str
    driver: str
    library: str
    query: str
    callers: int
    pool_size: int
    contenders: tuple[str, ...]


def scenarios(variants: bool = False) -> list[Scenario]:
    out = []
    for driver, (title, library, query) in DRIVERS.items():
        who_runs = CONTENDERS + VARIANTS if variants else CONTENDERS
        keys = tuple(c.key for c in who_runs if c.driver == driver)
        for callers in CALLERS:
            who = "1 caller" if callers == 1 else f"{callers} callers"
            kind = "thread" if library == "threads" else "task"
            who = who.replace("caller", kind)
            out.append(
                Scenario(
                    f"{driver}-{callers}",
                    f"{title}, {who}, {POOL_SIZE} connections",
                    driver,
                    library,
                    query,
                    callers,
                    POOL_SIZE,
                    keys,
                )
            )
    return out


def missing(module: str | None) -> str | None:
    if module is None:
        return None
    try:
        found = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        found = None
    return None if found is not None else f"{module} is not installed"


# -- timing -----------------------------------------------------------------------------


@dataclass
class Config:
    rounds: int = 5
    warmup: float = 0.3
    window: float = 1.0
    slices: int = 5
    drain_timeout: float = 10.0
    quick: bool = False
    variants: bool = False  # also the diagnostic respool variants (VARIANTS)


@dataclass
class Measured:
    ops: int  # completed in the window
    seconds: float
    best: float  # ops/s of the best slice
    p50_ms: float  # of the ops that overlap the window (begun or ended in it, or both)
    p99_ms: float
    max_ms: float
    mean_ms: float
    slowest_share: float  # the slowest caller's ops overlapping the window, over the mean
    checks: int


class BenchError(Exception):
    """A measurement that did not complete (the pool raised or hung)."""


class State:
    __slots__ = ("errors", "gate", "stop")

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.stop = False
        self.errors: list[BaseException] = []


class Caller:
    """One caller's record: when each op began, and how long it took."""

    __slots__ = ("latencies", "starts")

    def __init__(self) -> None:
        self.starts: list[float] = []
        self.latencies: list[float] = []


def _counts(callers: list[Caller]) -> list[int]:
    return [len(c.latencies) for c in callers]


def _result(marks: list[tuple[list[int], float]], callers: list[Caller], checks: int) -> Measured:
    """The best slice's rate, from per-caller op counts at the window's start and its
    slices' ends; and the latency of every op that overlaps the window, read after
    the callers stopped: an op that waited through the window's start or end (a
    starved caller's) counts with its whole wait."""
    rates = []
    for (c0, t0), (c1, t1) in itertools.pairwise(marks):
        if t1 > t0:
            rates.append((sum(c1) - sum(c0)) / (t1 - t0))
    (first, begin), (last, end) = marks[0], marks[-1]
    window: list[float] = []
    per_caller = []
    for c in callers:
        i, j = bisect.bisect_left(c.starts, begin), bisect.bisect_left(c.starts, end)
        if i > 0 and c.starts[i - 1] + c.latencies[i - 1] > begin:
            i -= 1  # a caller's ops follow one another: one at most spans the start
        window += c.latencies[i:j]
        per_caller.append(j - i)
    if not window or sum(last) == sum(first):
        raise BenchError("no op completed in the measured window (stalled)")
    window.sort()
    return Measured(
        sum(last) - sum(first),
        end - begin,
        max(rates, default=0.0),
        report.percentile(window, 0.50) * 1000,
        report.percentile(window, 0.99) * 1000,
        window[-1] * 1000,
        statistics.fmean(window) * 1000,
        min(per_caller) / statistics.fmean(per_caller),
        checks,
    )


def measure_threads(scn: Scenario, c: Contender, cfg: Config) -> Measured:
    handle: Handle = c.build(scn.pool_size)
    try:
        state = State()
        callers = [Caller() for _ in range(scn.callers)]

        def worker(record: Caller) -> None:
            op, started, took = handle.op, record.starts.append, record.latencies.append
            state.gate.wait()
            try:
                while not state.stop:
                    t0 = perf_counter()
                    op()
                    took(perf_counter() - t0)
                    started(t0)
            except BaseException as exc:  # reported as the case's error
                state.errors.append(exc)
                state.stop = True

        threads = [threading.Thread(target=worker, args=(c,), daemon=True) for c in callers]
        gc.collect()
        for thread in threads:
            thread.start()
        state.gate.set()
        time.sleep(cfg.warmup)
        marks = [(_counts(callers), perf_counter())]
        for _ in range(cfg.slices):
            time.sleep(cfg.window / cfg.slices)
            marks.append((_counts(callers), perf_counter()))
        state.stop = True
        deadline = time.monotonic() + cfg.drain_timeout
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        if state.errors:
            raise BenchError(repr(state.errors[0]))
        alive = sum(thread.is_alive() for thread in threads)
        if alive:
            raise BenchError(f"{alive} threads still blocked {cfg.drain_timeout:g}s after stop")
        return _result(marks, callers, handle.checks[0])
    finally:
        handle.close()


async def measure_asyncio(scn: Scenario, c: Contender, cfg: Config) -> Measured:
    handle: Handle = await c.build(scn.pool_size)
    try:
        state = State()
        callers = [Caller() for _ in range(scn.callers)]

        async def worker(record: Caller) -> None:
            op, started, took = handle.op, record.starts.append, record.latencies.append
            while not state.stop:
                t0 = perf_counter()
                await op()
                took(perf_counter() - t0)
                started(t0)

        gc.collect()
        tasks = [asyncio.create_task(worker(c)) for c in callers]
        await asyncio.sleep(cfg.warmup)
        marks = [(_counts(callers), perf_counter())]
        for _ in range(cfg.slices):
            await asyncio.sleep(cfg.window / cfg.slices)
            marks.append((_counts(callers), perf_counter()))
        state.stop = True
        done, pending = await asyncio.wait(tasks, timeout=cfg.drain_timeout)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending, timeout=cfg.drain_timeout)
            raise BenchError(
                f"{len(pending)} tasks still blocked {cfg.drain_timeout:g}s after stop"
            )
        for task in done:
            if task.exception() is not None:
                raise BenchError(repr(task.exception()))
        return _result(marks, callers, handle.checks[0])
    finally:
        await handle.close()


def measure(scn: Scenario, c: Contender, cfg: Config) -> Measured:
    if scn.library == "asyncio":
        return asyncio.run(measure_asyncio(scn, c, cfg))
    return measure_threads(scn, c, cfg)


# -- the run ----------------------------------------------------------------------------


@dataclass
class Case:
    samples: list[float] = field(default_factory=list)  # best slice's ops/s, per round
    overall: list[float] = field(default_factory=list)  # the whole window's, per round
    p50: list[float] = field(default_factory=list)  # ms, per round
    p99: list[float] = field(default_factory=list)
    max: list[float] = field(default_factory=list)
    mean: list[float] = field(default_factory=list)
    slowest_share: list[float] = field(default_factory=list)
    checks: list[int] = field(default_factory=list)
    error: str | None = None


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def servers_reachable() -> list[str]:
    """What cannot be reached: each server's address, tried once."""
    from psycopg.conninfo import conninfo_to_dict

    params = conninfo_to_dict(DSN)
    redis_address = urlsplit(REDIS_URL)
    wanted = [
        ("PostgreSQL", str(params.get("host") or "127.0.0.1"), int(params.get("port") or 5432)),
        ("Redis", redis_address.hostname or "127.0.0.1", redis_address.port or 6379),
    ]
    problems = []
    for what, host, port in wanted:
        try:
            with socket.create_connection((host, port), timeout=3):
                pass
        except OSError as error:
            problems.append(f"{what} not reachable at {host}:{port} ({error})")
    return problems


def run(cfg: Config, log: Callable[[str], None], only: set[str] | None = None) -> dict[str, Any]:
    notes: list[str] = []
    skipped: set[str] = set()
    for c in CONTENDERS:
        reason = missing(c.needs)
        if reason is not None:
            skipped.add(c.key)
            note = f"skipped {c.label}: {reason}"
            if note not in notes:
                notes.append(note)
                log(note)
    active = []
    for scn in scenarios(cfg.variants):
        if only is not None and scn.id not in only and scn.driver not in only:
            continue
        rows = [BY_KEY[k] for k in scn.contenders if k not in skipped]
        active.append((scn, rows))
    cases = {(s.id, c.key): Case() for s, rows in active for c in rows}
    started = perf_counter()
    for round_no in range(cfg.rounds):
        log(f"round {round_no + 1}/{cfg.rounds} ...")
        for scn, rows in active:
            shift = round_no % len(rows)
            for c in rows[shift:] + rows[:shift]:
                case = cases[(scn.id, c.key)]
                if case.error is not None:
                    continue
                try:
                    result = measure(scn, c, cfg)
                except Exception as exc:
                    case.error = str(exc) if isinstance(exc, BenchError) else repr(exc)
                    log(f"  {scn.id} {c.label}: {case.error}")
                    continue
                case.samples.append(result.best)
                case.overall.append(result.ops / result.seconds)
                case.p50.append(result.p50_ms)
                case.p99.append(result.p99_ms)
                case.max.append(result.max_ms)
                case.mean.append(result.mean_ms)
                case.slowest_share.append(result.slowest_share)
                case.checks.append(result.checks)
    bench_seconds = perf_counter() - started
    return assemble(cfg, active, cases, skipped, notes, bench_seconds)


def _versions() -> dict[str, str]:
    names = [
        "respool",
        "psycopg",
        "psycopg-binary",
        "psycopg-pool",
        "SQLAlchemy",
        "asyncpg",
        "redis",
        "hiredis",
        "anyio",
    ]
    found = {}
    for name in names:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return found


def _server_versions() -> dict[str, str]:
    out = {}
    try:
        import psycopg

        with psycopg.connect(DSN, connect_timeout=5) as conn:
            row = conn.execute("SHOW server_version").fetchone()
            out["PostgreSQL"] = str(row[0]) if row else "?"
    except Exception as exc:
        out["PostgreSQL"] = f"unknown ({exc!r})"
    try:
        import redis

        client = redis.Redis.from_url(REDIS_URL, socket_timeout=5)
        try:
            out["Redis"] = str(client.info("server")["redis_version"])
        finally:
            client.close()
    except Exception as exc:
        out["Redis"] = f"unknown ({exc!r})"
    return out


def assemble(
    cfg: Config,
    active: list[tuple[Scenario, list[Contender]]],
    cases: dict[tuple[str, str], Case],
    skipped: set[str],
    notes: list[str],
    bench_seconds: float,
) -> dict[str, Any]:
    out = []
    for scn, rows in active:
        entries = []
        for c in rows:
            case = cases[(scn.id, c.key)]
            entries.append(
                {
                    "contender": c.key,
                    "label": c.label,
                    "kind": c.kind,
                    "does": c.does,
                    "ops_per_s": _median(case.samples),
                    "p50_ms": _median(case.p50),
                    "p99_ms": _median(case.p99),
                    "max_ms": _median(case.max),
                    "mean_ms": _median(case.mean),
                    "slowest_share": _median(case.slowest_share),
                    "samples": case.samples,
                    "overall": case.overall,
                    "p50_samples": case.p50,
                    "p99_samples": case.p99,
                    "checks": case.checks if c.kind != "peer" else None,
                    "error": case.error,
                }
            )
        by_key = {e["contender"]: e for e in entries}
        ours = next(e for e in entries if e["kind"] == "respool")
        pairs = []
        for c in (BY_KEY[k] for k in scn.contenders):
            if c.kind == "respool":
                continue
            other = by_key.get(c.key)
            pair: dict[str, Any] = {
                "respool": ours["contender"],
                "other": c.key,
                "label": c.label,
                "kind": c.kind,
                "ratio": None,
                "p99_ratio": None,
                "skipped": c.key in skipped,
            }
            if other is not None and _usable(ours) and _usable(other):
                pair["ratio"] = ours["ops_per_s"] / other["ops_per_s"]
                pair["p99_ratio"] = ours["p99_ms"] / other["p99_ms"]
            pairs.append(pair)
        out.append(
            {
                **{k: v for k, v in asdict(scn).items() if k != "contenders"},
                "rows": entries,
                "pairs": pairs,
            }
        )
    results: dict[str, Any] = {
        "meta": {
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "machine": report.machine(ROOT, load=True),
            "servers": _server_versions(),
            "versions": _versions(),
            "config": asdict(cfg),
            "bench_seconds": round(bench_seconds, 1),
            "notes": notes,
        },
        "scenarios": out,
    }
    results["targets"] = targets(results)
    results["noise"] = noise(results)
    return results


def _usable(row: dict[str, Any]) -> bool:
    return bool(row["ops_per_s"]) and row["error"] is None and bool(row["p99_ms"])


def targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Per pair with a peer: throughput >= 1.0x, and a p99 no worse (ratio <= 1.0x)."""
    out = []
    for scn in results["scenarios"]:
        for pair in scn["pairs"]:
            if pair["kind"] != "peer":
                continue
            name = f"{scn['id']} ({scn['title']}): respool vs {pair['label']}"
            for what, value, ok in (
                ("ops/s", pair["ratio"], lambda v: v >= 1.0),
                ("p99", pair["p99_ratio"], lambda v: v <= 1.0),
            ):
                status = "SKIP" if value is None else ("PASS" if ok(value) else "FAIL")
                out.append(
                    {
                        "name": f"{name}, {what}",
                        "what": what,
                        "value": value,
                        "status": status,
                        "scenario": scn["id"],
                        "other": pair["other"],
                    }
                )
    return out


def noise(results: dict[str, Any]) -> dict[str, Any]:
    """respool against itself: how far from 1.00x two identical pools land in this run."""
    ratios = [
        p for s in results["scenarios"] for p in s["pairs"] if p["kind"] == "noise" and p["ratio"]
    ]
    if not ratios:
        return {"ops_worst": None, "p99_worst": None}
    return {
        "ops_worst": max(abs(p["ratio"] - 1) for p in ratios),
        "p99_worst": max(abs(p["p99_ratio"] - 1) for p in ratios),
    }


# -- reports ----------------------------------------------------------------------------


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}" if value < 10 else f"{value:.1f}"


HEAD = [
    "Pool",
    "ops/s",
    "spread",
    "p50 ms",
    "p99 ms",
    "max ms",
    "slowest caller",
    "respool/this ops/s",
    "respool/this p99",
]


def _cells(scn: dict[str, Any], row: dict[str, Any]) -> list[str]:
    pair = next((p for p in scn["pairs"] if p["other"] == row["contender"]), None)
    note = f"error: {row['error']}" if row["error"] else ""
    return [
        row["label"] + (f" ({note})" if note else ""),
        report._ops(row["ops_per_s"]),
        report._spread(row["samples"]),
        _ms(row["p50_ms"]),
        _ms(row["p99_ms"]),
        _ms(row["max_ms"]),
        "" if row["slowest_share"] is None else f"{row['slowest_share']:.2f}",
        report._x(pair["ratio"]) if pair else "",
        report._x(pair["p99_ratio"]) if pair else "",
    ]


def _target_line(t: dict[str, Any]) -> str:
    if t["status"] == "SKIP":
        return f"SKIP  {t['name']} (not measured)"
    value = t["value"]
    shown = f"{value:.3f}x" if abs(value - 1) < 0.005 else f"{value:.2f}x"  # 0.998x, not 1.00x
    if t["what"] == "ops/s":
        sign = ">=" if t["status"] == "PASS" else "<"
        return f"{t['status']}  {t['name']}: {shown} {sign} 1.0x"
    sign = "<=" if t["status"] == "PASS" else ">"
    return f"{t['status']}  {t['name']}: respool's p99 is {shown} {sign} 1.0x theirs"


def _tally(results: dict[str, Any]) -> str:
    statuses = [t["status"] for t in results["targets"]]
    return ", ".join(f"{statuses.count(s)} {s}" for s in ("PASS", "FAIL", "SKIP") if s in statuses)


def _noise_line(results: dict[str, Any]) -> str:
    n = results["noise"]
    if n["ops_worst"] is None:
        return "noise: not measured"
    return (
        f"noise (respool against a second respool pool, worst scenario): "
        f"ops/s {n['ops_worst'] * 100:.0f} %, p99 {n['p99_worst'] * 100:.0f} % from 1.00x"
    )


def text(results: dict[str, Any]) -> str:
    meta = results["meta"]
    m = meta["machine"]
    lines = [
        f"respool vs the drivers' own pools: Python {m['python']} on {m['cpu']} "
        f"({m['cpus']} CPUs), {meta['config']['rounds']} round(s), medians; "
        f"{meta['bench_seconds']}s",
    ]
    lines += [f"  note: {n}" for n in meta["notes"]]
    for scn in results["scenarios"]:
        lines += ["", f"[{scn['id']}] {scn['title']}: {scn['query']}"]
        rows = [_cells(scn, r) for r in scn["rows"]]
        widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(HEAD)]

        def fmt(cells: list[str], widths: list[int] = widths) -> str:
            parts = [
                c.ljust(w) if i == 0 else c.rjust(w)
                for i, (c, w) in enumerate(zip(cells, widths, strict=True))
            ]
            return "  " + "  ".join(parts).rstrip()

        lines += [fmt(HEAD), "  " + "  ".join("-" * w for w in widths), *map(fmt, rows)]
    lines += ["", f"targets: {_tally(results)}"]
    lines += [f"  {_target_line(t)}" for t in results["targets"]]
    lines += ["", _noise_line(results)]
    return "\n".join(lines)


def markdown(results: dict[str, Any]) -> str:
    meta = results["meta"]
    m = meta["machine"]
    load = m.get("load_average") or []
    lines = [
        f"Measured {meta['date']} at commit `{m['commit'] or 'unknown'}`: Python {m['python']} "
        f"({m['implementation']}) on {m['cpu']}, {m['cpus']} CPUs, {m['platform']}"
        + (f", load average {load[0]:.1f} at the end" if load else "")
        + f"; {meta['config']['rounds']} interleaved rounds of a "
        f"{meta['config']['window']:g} s window, medians; the run took "
        f"{meta['bench_seconds']:.0f} s. Servers on the same machine: "
        + ", ".join(f"{k} {v}" for k, v in meta["servers"].items())
        + ".",
        "",
        "Versions: " + ", ".join(f"{k} {v}" for k, v in meta["versions"].items()) + ".",
    ]
    lines += [f"\n*{n}*" for n in meta["notes"]]
    lines += [
        "",
        "| Scenario | " + " | ".join(HEAD) + " |",
        "| --- | --- |" + " ---: |" * (len(HEAD) - 1),
    ]
    for scn in results["scenarios"]:
        for i, row in enumerate(scn["rows"]):
            cells = _cells(scn, row)
            if row["kind"] == "respool":
                cells[0] = f"**{cells[0]}**"
            first = f"{scn['title']}: `{scn['query']}`" if i == 0 else ""
            lines.append("| " + " | ".join([first, *cells]).replace("||", "| |") + " |")
    checks = sum(sum(r["checks"]) for s in results["scenarios"] for r in s["rows"] if r["checks"])
    lines += [
        "",
        f"respool's `check` ran {checks} times in the whole run (only a connection idle "
        "longer than `check_interval`, 0.5 s, is checked).",
    ]
    lines += [
        "",
        f"Targets (respool >= 1.0x the driver's own pool, and a p99 no worse): {_tally(results)}.",
        "",
    ]
    lines += [f"- {_target_line(t)}" for t in results["targets"]]
    lines += ["", f"*{_noise_line(results)}.*"]
    return "\n".join(lines)


# -- command line -----------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=None, help="interleaved rounds (default 5)")
    p.add_argument(
        "--quick",
        action="store_true",
        help="smoke run: 1 round, tiny windows; writes no file unless a path is given",
    )
    p.add_argument("--window", type=float, default=None, help="seconds per measured window")
    p.add_argument("--json", default=None, help="results file (default benchmarks/servers.json)")
    p.add_argument(
        "--markdown",
        default=None,
        help=f"markdown file whose block between {START} and {END} is rewritten "
        "(default docs/performance.md)",
    )
    p.add_argument(
        "--variants",
        action="store_true",
        help="also respool with its reset hook dropped or moved into the lease body "
        "(diagnostics: what the hook path costs)",
    )
    p.add_argument("--no-output", action="store_true", help="print only, write no file")
    p.add_argument(
        "--render",
        metavar="SERVERS_JSON",
        default=None,
        help="measure nothing: print a saved run and rewrite its markdown block",
    )
    p.add_argument(
        "--only",
        default=None,
        help="comma-separated scenario ids or driver names (e.g. psycopg-50,redis)",
    )
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    cfg = Config()
    if args.quick:
        cfg = Config(rounds=1, warmup=0.02, window=0.04, slices=2, quick=True)
    if args.rounds is not None:
        cfg.rounds = max(1, args.rounds)
    if args.window is not None:
        cfg.window = args.window
    cfg.variants = args.variants

    def default(path: str | None, fallback: str) -> Path | None:
        if args.no_output:
            return None
        if path is not None:
            return Path(path)
        return None if cfg.quick or args.only or cfg.variants else ROOT / fallback

    json_path = default(args.json, "benchmarks/servers.json")
    md_path = default(args.markdown, "docs/performance.md")

    def log(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    if args.render is not None:
        results = json.loads(Path(args.render).read_text())
        json_path = None
    else:
        problems = servers_reachable()
        if problems:
            for problem in problems:
                log(problem)
            return 2
        only = None
        if args.only:
            only = {w.strip() for w in args.only.split(",")}
            unknown = only - {s.id for s in scenarios()} - set(DRIVERS)
            if unknown:
                raise SystemExit(f"unknown scenario or driver: {', '.join(sorted(unknown))}")
        log(
            f"respool vs the drivers' pools on Python {platform.python_version()}: "
            f"{cfg.rounds} round(s)" + (" (quick)" if cfg.quick else "")
        )
        results = run(cfg, log, only)
    print(text(results))
    if json_path is not None:
        json_path.write_text(json.dumps(results, indent=2) + "\n")
        log(f"wrote {json_path}")
    if md_path is not None:
        report.update_markdown(md_path, markdown(results), START, END)
        log(f"wrote the servers block of {md_path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
