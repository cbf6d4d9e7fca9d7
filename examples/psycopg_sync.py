"""PostgreSQL from threads: psycopg 3 connections in a ``respool.Pool``.

    python examples/psycopg_sync.py

Connects to ``$RESPOOL_PG_DSN`` (default ``postgresql://postgres@127.0.0.1:5432/test``).
"""

from __future__ import annotations

import contextlib
import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import psycopg
from psycopg.pq import TransactionStatus
from psycopg.rows import TupleRow

import respool

DSN = os.environ.get("RESPOOL_PG_DSN", "postgresql://postgres@127.0.0.1:5432/test")
Connection = psycopg.Connection[TupleRow]


def connect(dsn: str = DSN) -> Connection:
    """The factory: one new connection (the acquire deadline still bounds the call)."""
    return psycopg.connect(dsn, connect_timeout=5)


def check(conn: Connection) -> None:
    """Before handing out an idle connection: a round trip, raising if the server is gone."""
    conn.execute("SELECT 1")
    conn.rollback()  # end the transaction the SELECT began: the holder starts clean


def reset(conn: Connection) -> None:
    """On release: roll back whatever the holder left open.

    On a broken connection this raises, and the pool closes it instead of
    keeping it.
    """
    conn.rollback()


def make_pool(dsn: str = DSN, **options: Any) -> respool.Pool[Connection]:
    """A pool of up to 4 connections; ``options`` go to ``respool.Pool``."""
    options.setdefault("pool_size", 4)
    return respool.Pool(
        lambda: connect(dsn), psycopg.Connection.close, check=check, reset=reset, **options
    )


def main(dsn: str = DSN) -> respool.PoolStats:
    """8 threads, 25 queries each, through 4 connections; return the final stats."""
    with make_pool(dsn) as pool:

        def worker(n: int) -> set[int]:
            backends = set()
            for i in range(25):
                with pool.lease() as conn, conn.transaction():  # commits, or rolls back
                    row = conn.execute("SELECT %s::int * 2, pg_backend_pid()", (i,)).fetchone()
                    assert row is not None and row[0] == i * 2
                    backends.add(row[1])
            return backends

        with ThreadPoolExecutor(max_workers=8) as executor:
            backends = set().union(*executor.map(worker, range(8)))
        assert len(backends) <= 4, backends

        # A holder fails inside a transaction and leaves it aborted...
        with contextlib.suppress(psycopg.errors.DivisionByZero), pool.lease() as conn:
            conn.execute("SELECT 1 / 0")
        # ...`reset` rolled it back, so the next holder starts clean.
        with pool.lease() as conn:
            assert conn.info.transaction_status == TransactionStatus.IDLE
            conn.execute("SELECT 1")
    stats = pool.stats()
    assert stats.size == 0 and stats.closed == stats.created, stats  # all closed on exit
    print(f"ok: psycopg, threads: {stats.acquired} leases, {stats.created} connections opened")
    return stats


if __name__ == "__main__":
    main()
