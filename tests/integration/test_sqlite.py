"""The sqlite3 recipe (``examples/sqlite_threads.py``): no server needed."""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path

import respool
from tests.integration.support import load_example

sqlite_threads = load_example("sqlite_threads")


def test_run(tmp_path: Path) -> None:
    assert sqlite_threads.run(tmp_path / "db.sqlite") == 8 * 25


def test_reset_rolls_back_what_the_holder_did_not_commit(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite"
    with contextlib.closing(sqlite_threads.connect(path)) as conn, conn:
        conn.execute("CREATE TABLE t (x INTEGER)")
    with sqlite_threads.make_pool(path, pool_size=1) as pool:
        with pool.lease() as conn:
            conn.execute("INSERT INTO t VALUES (1)")
            assert conn.in_transaction
        with pool.lease() as conn:
            assert not conn.in_transaction
            assert conn.execute("SELECT count(*) FROM t").fetchone() == (0,)


def test_without_reset_the_next_holder_commits_what_was_left(tmp_path: Path) -> None:
    """Why the recipe has ``reset``: the same pool without it keeps the open
    transaction, and the next holder's commit makes the abandoned row permanent."""
    path = tmp_path / "db.sqlite"
    with contextlib.closing(sqlite_threads.connect(path)) as conn, conn:
        conn.execute("CREATE TABLE t (x INTEGER)")
    with respool.Pool(
        lambda: sqlite_threads.connect(path), sqlite3.Connection.close, pool_size=1
    ) as pool:
        with pool.lease() as conn:
            conn.execute("INSERT INTO t VALUES (1)")
        with pool.lease() as conn, conn:
            assert conn.in_transaction  # the abandoned transaction is still open
            conn.execute("INSERT INTO t VALUES (2)")
    with contextlib.closing(sqlite_threads.connect(path)) as conn:
        assert conn.execute("SELECT x FROM t ORDER BY x").fetchall() == [(1,), (2,)]
