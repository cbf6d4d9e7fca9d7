"""Pool real sqlite3 connections from threads, asyncio tasks and trio tasks.

    python examples/sqlite_example.py

Three parts share one temporary database file (removed at the end):

1. 8 threads share a ``respool.Pool`` of 4 connections;
2. 20 asyncio tasks share a ``respool.AsyncPool`` of 4 connections;
3. the same async code under trio, if trio is installed (``respool[trio]``).

Every thread or task writes ``ROWS_EACH`` rows, one lease per row, and reads
back its own count through whichever connection it was handed.  Each part
prints what it wrote and the pool's stats, and the script asserts that nothing
is left leased or waiting, that no more than ``POOL_SIZE`` connections were
ever opened, and that every one was closed.
"""

from __future__ import annotations

import contextlib
import importlib.util
import sqlite3
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import anyio
import anyio.to_thread

import respool

POOL_SIZE = 4
THREADS = 8
TASKS = 20
ROWS_EACH = 25  # rows each thread or task writes


# -- plain sqlite3, shared by all three parts ------------------------------------


def connect(path: Path) -> sqlite3.Connection:
    """Open one new connection: the pool's factory.

    ``check_same_thread=False``: a pooled connection is used by whichever
    thread leases it next, and ``Pool`` runs its factory in a helper thread
    whenever a timeout applies.  The pool hands each connection to one holder
    at a time, which is all sqlite3 needs.
    """
    conn = sqlite3.connect(path, timeout=10, check_same_thread=False, isolation_level=None)
    conn.execute("PRAGMA synchronous=NORMAL")  # with WAL: no fsync per commit, still consistent
    return conn


def close(conn: sqlite3.Connection) -> None:
    """Close one connection: the pool's releaser."""
    conn.close()


def create_schema(path: Path) -> None:
    with contextlib.closing(connect(path)) as conn:
        conn.execute("PRAGMA journal_mode=WAL")  # readers never block the writer
        conn.execute(
            "CREATE TABLE rows (part TEXT, worker INTEGER, seq INTEGER,"
            " PRIMARY KEY (part, worker, seq))"
        )


def write_row(conn: sqlite3.Connection, part: str, worker: int, seq: int) -> int:
    """Insert one row in its own transaction; return how many this worker has written."""
    conn.execute("BEGIN IMMEDIATE")  # take the write lock up front (waits up to `timeout`)
    try:
        conn.execute("INSERT INTO rows VALUES (?, ?, ?)", (part, worker, seq))
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
    return count_rows(conn, part, worker)


def count_rows(conn: sqlite3.Connection, part: str, worker: int | None = None) -> int:
    if worker is None:
        row = conn.execute("SELECT count(*) FROM rows WHERE part = ?", (part,)).fetchone()
    else:
        sql = "SELECT count(*) FROM rows WHERE part = ? AND worker = ?"
        row = conn.execute(sql, (part, worker)).fetchone()
    return int(row[0])


@dataclass
class Result:
    part: str
    workers: int
    prefilled: int
    rows: int
    most_waiting: int  # the longest line for a connection that a worker saw
    seconds: float
    open_stats: respool.PoolStats  # just before dispose
    final_stats: respool.PoolStats  # after dispose

    def report(self) -> None:
        s, f = self.open_stats, self.final_stats
        print(
            f"{self.part}: {self.workers} workers wrote {self.rows} rows in {self.seconds:.2f}s"
            f" (prefill opened {self.prefilled} connections;"
            f" longest line seen: {self.most_waiting} waiting)"
        )
        print(f"  open:     {s}  created={s.created} acquired={s.acquired} timeouts={s.timeouts}")
        print(f"  disposed: {f}  closed={f.closed} close_errors={f.close_errors}")

    def check(self) -> None:
        s, f = self.open_stats, self.final_stats
        assert self.rows == self.workers * ROWS_EACH, self
        assert s.leased == 0, s
        assert s.waiting == 0, s
        assert s.creating == 0, s
        assert s.created == POOL_SIZE, s  # prefill opened them all; none was ever replaced
        assert s.acquired == self.workers * ROWS_EACH + 1, s  # one lease per row, one to count
        assert s.timeouts == s.create_errors == 0, s
        assert f.size == 0, f
        assert f.closed == f.created, f  # every connection went through the releaser
        assert f.close_errors == 0, f


# -- (a) threads: respool.Pool ---------------------------------------------------------


def threads_part(path: Path) -> Result:
    start = time.monotonic()
    pool = respool.Pool(lambda: connect(path), close, pool_size=POOL_SIZE, acquire_timeout=10)
    with pool:  # leaving the block disposes the pool: idle connections are closed
        prefilled = pool.prefill()

        def worker(n: int) -> int:
            most_waiting = 0
            for seq in range(ROWS_EACH):
                with pool.lease() as conn:
                    assert write_row(conn, "threads", n, seq) == seq + 1
                    most_waiting = max(most_waiting, pool.stats().waiting)
            return most_waiting

        with ThreadPoolExecutor(max_workers=THREADS) as executor:
            futures = [executor.submit(worker, n) for n in range(THREADS)]
            most_waiting = max(f.result() for f in futures)  # re-raises a worker's error

        with pool.lease() as conn:
            rows = count_rows(conn, "threads")
        open_stats = pool.stats()
    seconds = time.monotonic() - start
    return Result(
        "threads", THREADS, prefilled, rows, most_waiting, seconds, open_stats, pool.stats()
    )


# -- (b) and (c) tasks: respool.AsyncPool, under asyncio or trio -------------------------


async def tasks_part(path: Path, part: str) -> Result:
    """The same code for asyncio and trio: anyio picks up whichever is running."""
    start = time.monotonic()

    # sqlite3 blocks, so every call goes to a worker thread and the event loop
    # keeps serving the other tasks meanwhile.
    async def open_conn() -> sqlite3.Connection:
        return await anyio.to_thread.run_sync(connect, path)

    async def close_conn(conn: sqlite3.Connection) -> None:
        await anyio.to_thread.run_sync(close, conn)

    # A pool belongs to the event loop that first uses it: one pool per run.
    pool = respool.AsyncPool(open_conn, close_conn, pool_size=POOL_SIZE, acquire_timeout=10)
    async with pool:
        prefilled = await pool.prefill()
        most_waiting = 0

        async def worker(n: int) -> None:
            nonlocal most_waiting
            for seq in range(ROWS_EACH):
                async with pool.lease() as conn:
                    # If this task were cancelled here, run_sync would still
                    # wait for the thread, so the connection is never
                    # released while a thread is using it.
                    count = await anyio.to_thread.run_sync(write_row, conn, part, n, seq)
                    most_waiting = max(most_waiting, pool.stats().waiting)
                assert count == seq + 1

        async with anyio.create_task_group() as tg:
            for n in range(TASKS):
                tg.start_soon(worker, n)

        async with pool.lease() as conn:
            rows = await anyio.to_thread.run_sync(count_rows, conn, part)
        open_stats = pool.stats()
    seconds = time.monotonic() - start
    return Result(part, TASKS, prefilled, rows, most_waiting, seconds, open_stats, pool.stats())


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="respool-example-") as tmp:
        path = Path(tmp) / "example.db"
        create_schema(path)

        results = [threads_part(path)]
        results[-1].report()

        results.append(anyio.run(tasks_part, path, "asyncio"))
        results[-1].report()

        if importlib.util.find_spec("trio") is not None:
            results.append(anyio.run(tasks_part, path, "trio", backend="trio"))
            results[-1].report()
        else:
            print("trio: skipped (trio is not installed; pip install 'respool[trio]')")

        for result in results:
            result.check()
        with contextlib.closing(connect(path)) as conn:
            total = int(conn.execute("SELECT count(*) FROM rows").fetchone()[0])
        expected = sum(r.rows for r in results)
        assert total == expected, (total, expected)
        print(f"ok: {total} rows in the database, every pool drained and closed")


if __name__ == "__main__":
    main()
