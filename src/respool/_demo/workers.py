"""The workers of each lane: threads on a ``Pool``, tasks on an ``AsyncPool``."""

from __future__ import annotations

import random
import sqlite3
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path

import anyio
import anyio.to_thread

from .. import AsyncPool, Pool, PoolStats, PoolTimeout
from .lanes import ACQUIRE_TIMEOUT, BACKOFF, Connection, Lane
from .sql import Plan, checker, close, connect, is_closed_error, work

# -- the threads lane: Pool --------------------------------------------------------


def thread_worker(lane: Lane, pool: Pool[Connection], n: int, done: Callable[[], bool]) -> None:
    rng = random.Random(f"{lane.spec.name}-{n}")
    seq = 0
    while not done():
        try:
            conn = pool.acquire(timeout=ACQUIRE_TIMEOUT)
        except PoolTimeout:
            lane.record_acquire(timed_out=True)
            time.sleep(BACKOFF)
            continue
        lane.record_acquire(timed_out=False)
        plan = Plan.draw(rng)
        try:
            inserted = work(conn, lane.spec.name, n, seq, plan.insert)
        except sqlite3.ProgrammingError as exc:
            if not is_closed_error(exc):
                pool.release(conn)
                raise
            pool.discard(conn)  # handed a dead connection: say so
            lane.count("discards")
            continue
        except BaseException:
            pool.release(conn)
            raise
        seq += inserted
        lane.count("inserts" if inserted else "reads")
        time.sleep(plan.hold)
        if plan.fate == "discard":
            pool.discard(conn)
            lane.count("discards")
        elif plan.fate == "kill":
            conn.close()
            lane.count("kills")
            pool.release(conn)
        else:
            pool.release(conn)


def run_threads(lane: Lane, path: Path, done: Callable[[], bool]) -> None:
    pool = Pool(
        partial(connect, path),
        close,
        pool_size=lane.spec.pool_size,
        acquire_timeout=ACQUIRE_TIMEOUT,
        check=checker(lane),
        check_interval=0,  # check every idle connection before handing it out
        metrics=True,  # the waits the display shows
    )
    lane.pool = pool
    with pool:  # disposes the pool on the way out
        workers = lane.spec.workers
        with ThreadPoolExecutor(workers, thread_name_prefix="respool-demo") as executor:
            futures = [executor.submit(thread_worker, lane, pool, n, done) for n in range(workers)]
        for future in futures:
            error = future.exception()
            if error is not None:
                lane.errors.append(error)
        lane.open_stats = settled(pool)
    lane.final_stats = settled(pool, disposed=True)


def settled(pool: Pool[Connection], *, disposed: bool = False, wait: float = 2.0) -> PoolStats:
    """The pool's stats once it is quiet, or after ``wait`` seconds.

    Quiet: nothing leased or being created, and nothing alive if ``disposed``.

    A ``check`` or factory call that overran its acquire's deadline goes on
    in its helper thread, and the pool closes what it leaves when it ends:
    the workers may be done a moment before that.
    """
    deadline = time.monotonic() + wait
    while True:
        stats = pool.stats()
        quiet = stats.leased == stats.creating == 0 and not (disposed and stats.size)
        if quiet or time.monotonic() >= deadline:
            return stats
        time.sleep(0.01)


# -- the asyncio and trio lanes: AsyncPool -----------------------------------------


async def task_worker(
    lane: Lane, pool: AsyncPool[Connection], n: int, done: Callable[[], bool]
) -> None:
    rng = random.Random(f"{lane.spec.name}-{n}")
    seq = 0
    while not done():
        try:
            conn = await pool.acquire(timeout=ACQUIRE_TIMEOUT)
        except PoolTimeout:
            lane.record_acquire(timed_out=True)
            await anyio.sleep(BACKOFF)
            continue
        lane.record_acquire(timed_out=False)
        plan = Plan.draw(rng)
        try:
            # sqlite3 blocks: run it in a worker thread, the loop serves others.
            inserted = await anyio.to_thread.run_sync(
                work, conn, lane.spec.name, n, seq, plan.insert
            )
        except sqlite3.ProgrammingError as exc:
            if not is_closed_error(exc):
                await pool.release(conn)
                raise
            await pool.discard(conn)
            lane.count("discards")
            continue
        except BaseException:
            await pool.release(conn)
            raise
        seq += inserted
        lane.count("inserts" if inserted else "reads")
        await anyio.sleep(plan.hold)
        if plan.fate == "discard":
            await pool.discard(conn)
            lane.count("discards")
        elif plan.fate == "kill":
            await anyio.to_thread.run_sync(conn.close)
            lane.count("kills")
            await pool.release(conn)
        else:
            await pool.release(conn)


async def run_tasks(lane: Lane, path: Path, done: Callable[[], bool]) -> None:
    """The same code for asyncio and trio: anyio runs on whichever is running."""

    async def open_conn() -> Connection:
        return await anyio.to_thread.run_sync(connect, path)

    async def close_conn(conn: Connection) -> None:
        await anyio.to_thread.run_sync(close, conn)

    check = checker(lane)

    async def check_conn(conn: Connection) -> None:
        check(conn)  # SELECT 1 on an idle connection: quick enough for the loop

    pool = AsyncPool(
        open_conn,
        close_conn,
        pool_size=lane.spec.pool_size,
        acquire_timeout=ACQUIRE_TIMEOUT,
        check=check_conn,
        check_interval=0,
        metrics=True,
    )
    lane.pool = pool
    async with pool:
        try:
            async with anyio.create_task_group() as tg:
                for n in range(lane.spec.workers):
                    tg.start_soon(task_worker, lane, pool, n, done)
        except Exception as exc:  # an ExceptionGroup of the workers' errors
            lane.errors.append(exc)
        lane.open_stats = pool.stats()
    lane.final_stats = pool.stats()


def run_lane(lane: Lane, path: Path, done: Callable[[], bool]) -> None:
    """A lane's thread: its pool and workers, start to finish."""
    lane.started = time.monotonic()
    try:
        if lane.spec.backend == "threads":
            run_threads(lane, path, done)
        else:
            anyio.run(run_tasks, lane, path, done, backend=lane.spec.backend)
    except BaseException as exc:
        lane.errors.append(exc)
    finally:
        lane.finished = time.monotonic()
