"""Flask under gunicorn, which forks: a pool made in the master, started over in each worker.

    gunicorn --preload --workers 2 --bind 127.0.0.1:8000 --chdir examples flask_app:app
    python examples/flask_app.py          # or a few requests through Flask's test client

Connects to ``$RESPOOL_PG_DSN`` (default ``postgresql://postgres@127.0.0.1:5432/test``).

With ``--preload`` gunicorn imports the application once, in the master, then
forks the workers.  This module makes its pool at import, as applications do,
and even uses it there (a check that the database answers), so the master's
pool holds a connection when the workers are forked.  After a fork every respool
pool starts over empty in the child: a worker never hands out, nor closes, a
connection of the master's (the socket is shared; using it from two processes
would garble both), and opens its own on first use.  ``/`` shows it: the
worker's pid, the PostgreSQL backend that served the request, and the master's.

One gunicorn sync worker serves one request at a time, so a small pool is
plenty; with ``--threads N``, make ``pool_size`` at least N.
"""

from __future__ import annotations

import os
from typing import Any

from flask import Flask

from respool import presets

DSN = os.environ.get("RESPOOL_PG_DSN", "postgresql://postgres@127.0.0.1:5432/test")

pool = presets.psycopg_pool(
    DSN,
    pool_size=2,
    connect_kwargs={"connect_timeout": 5, "application_name": "respool-flask"},
)


def backend_pid() -> int:
    with pool.lease() as conn, conn.transaction():
        row = conn.execute("SELECT pg_backend_pid()").fetchone()
    assert row is not None
    pid: int = row[0]
    return pid


# At import, so in gunicorn's master with --preload: the database answers, and the
# master's pool now holds an idle connection, which the workers inherit and must not use.
MASTER_PID = os.getpid()
MASTER_BACKEND_PID = backend_pid()

app = Flask(__name__)


def answer(query: str, *params: object) -> dict[str, Any]:
    """Run ``query`` on a leased connection; say who served it, and the pool before."""
    before = pool.stats()  # the worker's pool, before this request
    with pool.lease() as conn, conn.transaction():
        conn.execute(query, params)
        row = conn.execute("SELECT pg_backend_pid()").fetchone()
    assert row is not None
    return {
        "pid": os.getpid(),
        "backend_pid": row[0],
        "master_pid": MASTER_PID,
        "master_backend_pid": MASTER_BACKEND_PID,
        "size_before": before.size,
        "created": pool.stats().created,
    }


@app.get("/")
def whoami() -> dict[str, Any]:
    return answer("SELECT 1")


@app.get("/wait/<int:key>")
def wait(key: int) -> dict[str, Any]:
    """``/``, once the advisory lock ``key`` is free: the tests keep one worker busy with it."""
    return answer("SELECT pg_advisory_xact_lock(%s)", key)


def main() -> None:
    client = app.test_client()
    answers = [client.get("/").get_json() for _ in range(3)]
    assert {a["backend_pid"] for a in answers} == {MASTER_BACKEND_PID}  # no fork: one pool
    pool.dispose()
    print(f"ok: Flask, 3 requests, {pool.stats().created} connection (no fork here)")


if __name__ == "__main__":
    main()
