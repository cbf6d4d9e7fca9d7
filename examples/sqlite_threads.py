"""sqlite3 from threads: the embedded default, in a ``respool.Pool``.

    python examples/sqlite_threads.py [path/to/db.sqlite]

Without a path it uses a temporary file, removed at the end.
"""

from __future__ import annotations

import contextlib
import sqlite3
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import respool


def connect(path: Path) -> sqlite3.Connection:
    """The factory.  ``check_same_thread=False``: a pooled connection moves
    between threads (one holder at a time, which is all sqlite3 needs)."""
    return sqlite3.connect(path, timeout=10, check_same_thread=False)


def reset(conn: sqlite3.Connection) -> None:
    """On release: roll back what the holder did not commit.

    Otherwise an idle connection could keep its transaction, and with it the
    database's write lock, and every other writer would wait for it.
    """
    conn.rollback()


def make_pool(path: Path, **options: Any) -> respool.Pool[sqlite3.Connection]:
    """A pool of up to 4 connections; ``options`` go to ``respool.Pool``."""
    options.setdefault("pool_size", 4)
    return respool.Pool(lambda: connect(path), sqlite3.Connection.close, reset=reset, **options)


def run(path: Path) -> int:
    """8 threads, 25 committed inserts each, and one holder that forgets to commit.

    Returns the number of rows in the table at the end.
    """
    with contextlib.closing(connect(path)) as conn, conn:
        conn.execute("CREATE TABLE IF NOT EXISTS events (worker INTEGER, seq INTEGER)")
        conn.execute("DELETE FROM events")
    with make_pool(path) as pool:
        # A holder that writes and never commits; its transaction holds the write lock...
        with pool.lease() as conn:
            conn.execute("INSERT INTO events VALUES (-1, -1)")
        # ...until `reset` rolls it back on release, so the writers below never wait.

        def worker(n: int) -> None:
            for seq in range(25):
                with pool.lease() as conn, conn:  # `with conn`: commit, or roll back
                    conn.execute("INSERT INTO events VALUES (?, ?)", (n, seq))

        with ThreadPoolExecutor(max_workers=8) as executor:
            list(executor.map(worker, range(8)))
        with pool.lease() as conn:
            rows = int(conn.execute("SELECT count(*) FROM events").fetchone()[0])
    stats = pool.stats()
    assert rows == 8 * 25, rows  # the uncommitted row is gone
    assert stats.size == 0 and stats.closed == stats.created, stats  # all closed on exit
    print(
        f"ok: sqlite3, threads: {rows} rows, {stats.acquired} leases, {stats.created} connections"
    )
    return rows


def main() -> None:
    if len(sys.argv) > 1:
        run(Path(sys.argv[1]))
        return
    with tempfile.TemporaryDirectory(prefix="respool-recipe-") as tmp:
        run(Path(tmp) / "recipe.db")


if __name__ == "__main__":
    main()
