"""A fleet of respool pools through PgBouncer in transaction pooling mode, for real.

The test starts its own PgBouncer (Debian's package; ``.ci/run`` installs it) with
``default_pool_size = 20`` in front of the test PostgreSQL, then runs the recipe
``examples/pgbouncer_fleet.py``: 8 processes, each with a pool of 10, hold their 80
leases at once and run their transactions, while a sampler reads
``pg_stat_activity`` on PostgreSQL directly.  The server never sees more than 20
connections.

Then the caveats docs/sizing.md lists, each shown on a database entry with a single
server connection (so every client meets what the previous one left behind, every
time): named prepared statements break without ``statement_cache_size=0`` /
``prepare_threshold=None``; a session ``SET`` reaches the next client while
``SET LOCAL`` does not; and a transaction left open pins the server connection until
the preset's ``reset`` rolls it back.
"""

from __future__ import annotations

import logging
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from respool import presets
from tests.integration.conftest import require_program
from tests.integration.pgbouncer import (
    SERVER_POOL,
    PgBouncer,
    find_pgbouncer,
    running_pgbouncer,
)
from tests.integration.support import WAIT, load_example


@pytest.fixture(scope="module")
def pgbouncer(pg_dsn: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[PgBouncer]:
    program = require_program(
        "pgbouncer", find_pgbouncer(), "apt-get install pgbouncer; .ci/run does it"
    )
    with running_pgbouncer(program, tmp_path_factory.mktemp("pgbouncer"), pg_dsn) as bouncer:
        yield bouncer


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # asyncpg runs on asyncio only


def test_80_client_leases_share_20_server_connections(pgbouncer: PgBouncer, pg_dsn: str) -> None:
    fleet_example = load_example("pgbouncer_fleet")
    fleet = fleet_example.run_fleet(pgbouncer.dsn, pg_dsn, tag=pgbouncer.tag)
    print(f"\nPgBouncer {pgbouncer.version}: {fleet}")
    clients = fleet_example.PROCESSES * fleet_example.POOL_SIZE
    assert (fleet.processes, clients) == (8, 80)
    assert fleet.client_leases_at_once == clients  # every lease of every pool, at once
    # At the gate all 80 wanted a server connection: 20 had one, 60 queued in PgBouncer.
    assert fleet.server_connections_at_gate == SERVER_POOL
    assert fleet.clients_waiting_in_pgbouncer == clients - SERVER_POOL
    # ...and PostgreSQL never saw more than 20 (the gate shows it saw 20).
    assert fleet.peak_server_connections == SERVER_POOL
    assert fleet.server_backends_seen == SERVER_POOL
    assert 1 < fleet.client_backends_seen <= SERVER_POOL
    assert fleet.transactions == clients * (2 + fleet_example.ROUNDS)  # every one served


# -- the caveats, on the database entry with one server connection ---------------------


# One process of a fleet, with asyncpg's default statement cache: its first query
# is prepared as __asyncpg_stmt_1__ (a counter per process), left on the server
# connection when the transaction ends.
ONE_QUERY = """
import asyncio, sys

import asyncpg

async def main():
    conn = await asyncpg.connect(sys.argv[1], timeout=5)
    try:
        print(await conn.fetchval("SELECT 1"))
    except asyncpg.PostgresError as error:
        print(type(error).__name__, str(error), error.hint)
    finally:
        await conn.close(timeout=5)

asyncio.run(main())
"""


def test_asyncpg_needs_statement_cache_size_0(pgbouncer: PgBouncer) -> None:
    def one_process() -> str:
        done = subprocess.run(
            [sys.executable, "-c", ONE_QUERY, pgbouncer.single_dsn],
            capture_output=True,
            text=True,
            timeout=WAIT,
            check=False,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout.strip()

    try:
        assert one_process() == "1"
        # The next process names its first statement the same, on the same server connection.
        error = one_process()
        assert error.startswith(
            'DuplicatePreparedStatementError prepared statement "__asyncpg_stmt_1__" already exists'
        ), error
        assert "statement_cache_size to 0" in error  # asyncpg's own hint names PgBouncer
    finally:
        with psycopg.connect(pgbouncer.single_dsn, autocommit=True, prepare_threshold=None) as conn:
            conn.execute("DEALLOCATE ALL")  # the server connection is shared: leave it clean


@pytest.mark.anyio
async def test_asyncpg_with_statement_cache_size_0(pgbouncer: PgBouncer) -> None:
    async with (
        presets.asyncpg_pool(
            pgbouncer.single_dsn, pool_size=2, connect_kwargs={"statement_cache_size": 0}
        ) as pool,
        pool.lease() as one,
        pool.lease() as other,
    ):
        for n in range(10):  # two clients, one server connection: no statement names
            assert await one.fetchval("SELECT $1::int", n) == n
            assert await other.fetchval("SELECT $1::int", n) == n


def test_psycopg_needs_prepare_threshold_none(pgbouncer: PgBouncer) -> None:
    options: dict[str, Any] = {"autocommit": True, "connect_timeout": 5}
    with (
        psycopg.connect(pgbouncer.single_dsn, **options) as first,
        psycopg.connect(pgbouncer.single_dsn, **options) as second,
    ):
        assert first.prepare_threshold is not None  # the default: prepare a query run often
        for _ in range(first.prepare_threshold + 1):
            first.execute("SELECT 1")  # ...prepared as _pg3_0 on the one server connection
        for _ in range(first.prepare_threshold):
            second.execute("SELECT 1")
        with pytest.raises(psycopg.errors.DuplicatePreparedStatement):
            second.execute("SELECT 1")  # ...and prepared as _pg3_0 again, by the second
        first.execute("DEALLOCATE ALL")  # the server connection is shared: leave it clean
    with (
        presets.psycopg_pool(
            pgbouncer.single_dsn, pool_size=2, connect_kwargs={**options, "prepare_threshold": None}
        ) as pool,
        pool.lease() as one,
        pool.lease() as other,
    ):
        for n in range(10):
            assert one.execute("SELECT %s::int", (n,)).fetchone() == (n,)
            assert other.execute("SELECT %s::int", (n,)).fetchone() == (n,)


def setting(conn: psycopg.Connection[Any]) -> object:
    row = conn.execute("SELECT current_setting('respool.tenant', true)").fetchone()
    assert row is not None
    return row[0]


def test_session_settings_reach_the_next_client_set_local_does_not(pgbouncer: PgBouncer) -> None:
    options = {"autocommit": True, "prepare_threshold": None, "connect_timeout": 5}
    with presets.psycopg_pool(pgbouncer.single_dsn, pool_size=2, connect_kwargs=options) as pool:
        with pool.lease() as one, pool.lease() as other:
            with one.transaction():
                one.execute("SET LOCAL respool.tenant = 'alice'")
                assert setting(one) == "alice"
            assert setting(other) in (None, "")  # gone with the transaction
            one.execute("SET respool.tenant = 'alice'")  # a session setting...
            assert setting(other) == "alice"  # ...is the next client's too
            other.execute("RESET respool.tenant")


def test_reset_frees_the_server_connection_a_holder_left_in_a_transaction(
    pgbouncer: PgBouncer, caplog: pytest.LogCaptureFixture
) -> None:
    options = {"autocommit": True, "prepare_threshold": None, "connect_timeout": 5}
    with (
        caplog.at_level(logging.WARNING, logger="respool.presets"),
        presets.psycopg_pool(pgbouncer.single_dsn, pool_size=2, connect_kwargs=options) as pool,
    ):
        with pool.lease() as holder:
            holder.execute("BEGIN")  # pins the one server connection until it ends
            pinned = holder.execute("SELECT pg_backend_pid()").fetchone()
        # Back in the pool, the preset's reset rolled the transaction back...
        assert "rolling back returned connection (INTRANS)" in caplog.text
        with pool.lease() as holder, pool.lease() as other:
            assert other is not holder  # a second client connection to PgBouncer
            # ...so another client gets the server connection (else it would wait in
            # PgBouncer, up to query_wait_timeout, and fail).
            assert other.execute("SELECT pg_backend_pid()").fetchone() == pinned
