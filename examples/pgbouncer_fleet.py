"""A fleet of processes, each with its own respool pool, sharing PostgreSQL through PgBouncer.

    python examples/pgbouncer_fleet.py

Needs PgBouncer in transaction pooling mode at ``$RESPOOL_PGBOUNCER_DSN``
(default ``postgresql://postgres@127.0.0.1:6432/test``), with its admin console
open to that user, in front of the PostgreSQL at ``$RESPOOL_PG_DSN`` (default
``postgresql://postgres@127.0.0.1:5432/test``), and ``default_pool_size = 20``
(docs/sizing.md has the configuration; tests/integration/test_pgbouncer.py
starts one of its own and runs this fleet through it).

8 processes, half asyncpg under asyncio and half psycopg 3 under threads, each
hold all 10 leases of their pool at once: 80 client connections to PgBouncer,
queueing for its 20 server connections.  A sampler reading ``pg_stat_activity``
on PostgreSQL directly (not through PgBouncer) records how many server
connections PgBouncer opened; it never exceeds 20.

Through transaction pooling, nothing may outlive a transaction, so the pools are
set up for it:

- asyncpg: ``statement_cache_size=0`` (no named prepared statements, which would
  stay on one server connection while the next query runs on another);
- psycopg: ``prepare_threshold=None`` (the same), and ``autocommit=True`` with
  explicit transactions: a connection idle in a transaction pins a server
  connection, for every process, until it ends.
"""

from __future__ import annotations

import asyncio
import json
import os
import queue
import secrets
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import attrs
import psycopg

from respool import presets

DSN = os.environ.get("RESPOOL_PGBOUNCER_DSN", "postgresql://postgres@127.0.0.1:6432/test")
DIRECT_DSN = os.environ.get("RESPOOL_PG_DSN", "postgresql://postgres@127.0.0.1:5432/test")
TAG = "respool-fleet"  # the application_name of the fleet's connections, client and server
PROCESSES = 8
POOL_SIZE = 10
SERVER_POOL = 20  # PgBouncer's default_pool_size
ROUNDS = 20  # transactions each lease runs after the gate
WAIT = 60.0  # seconds: the most any step of the fleet waits


# -- the pools: what a process behind PgBouncer needs --------------------------------------


def asyncpg_pool(dsn: str, tag: str, pool_size: int) -> Any:
    return presets.asyncpg_pool(
        dsn,
        pool_size=pool_size,
        connect_kwargs={
            "statement_cache_size": 0,  # no named prepared statements
            "timeout": 5,
            "server_settings": {"application_name": tag},
        },
    )


def psycopg_pool(dsn: str, tag: str, pool_size: int) -> Any:
    return presets.psycopg_pool(
        dsn,
        pool_size=pool_size,
        connect_kwargs={
            "prepare_threshold": None,  # never prepare
            "autocommit": True,  # transactions only where we open them
            "connect_timeout": 5,
            "application_name": tag,
        },
    )


# -- one process of the fleet --------------------------------------------------------------


def ready_then_wait_for_go() -> None:
    """Tell the fleet this process holds all its leases; wait until every process does."""
    print("ready", flush=True)
    line = sys.stdin.readline()
    if line != "go\n":
        raise RuntimeError(f"expected 'go' from the fleet, got {line!r}")


async def asyncpg_worker(dsn: str, tag: str, pool_size: int, key: int) -> dict[str, Any]:
    backends: set[int] = set()
    held_at_once = transactions = arrived = 0
    everyone_in = asyncio.Event()
    async with asyncpg_pool(dsn, tag, pool_size) as pool:

        async def lease() -> None:
            nonlocal held_at_once, transactions, arrived
            async with pool.lease() as conn:
                async with conn.transaction():
                    backends.add(await conn.fetchval("SELECT pg_backend_pid()"))
                transactions += 1
                arrived += 1
                if arrived == pool_size:  # the pool's every lease is held: tell the fleet
                    held_at_once = pool.stats().leased
                    await asyncio.to_thread(ready_then_wait_for_go)
                    everyone_in.set()
                await everyone_in.wait()
                async with conn.transaction():  # waits for a server connection, then the gate
                    await conn.execute("SELECT pg_advisory_xact_lock_shared($1)", key)
                    backends.add(await conn.fetchval("SELECT pg_backend_pid()"))
                transactions += 1
                for i in range(ROUNDS):
                    async with conn.transaction():
                        assert await conn.fetchval("SELECT $1::int + 1", i) == i + 1
                    transactions += 1

        await asyncio.gather(*(lease() for _ in range(pool_size)))
    return {
        "held_at_once": held_at_once,
        "transactions": transactions,
        "backends": sorted(backends),
    }


def psycopg_worker(dsn: str, tag: str, pool_size: int, key: int) -> dict[str, Any]:
    backends: set[int] = set()
    held = [0]
    transactions = [0]
    errors: list[BaseException] = []
    lock = threading.Lock()
    with psycopg_pool(dsn, tag, pool_size) as pool:

        def all_in() -> None:  # run by one thread once every lease is held
            held[0] = pool.stats().leased
            ready_then_wait_for_go()

        everyone_in = threading.Barrier(pool_size, action=all_in, timeout=WAIT)

        def lease() -> None:
            try:
                leased()
            except BaseException as error:
                errors.append(error)
                everyone_in.abort()  # the others stop waiting; the first error is raised
                raise

        def leased() -> None:
            with pool.lease() as conn:
                with conn.transaction():
                    pid = conn.execute("SELECT pg_backend_pid()").fetchone()
                everyone_in.wait()
                with conn.transaction():
                    conn.execute("SELECT pg_advisory_xact_lock_shared(%s)", (key,))
                    gated = conn.execute("SELECT pg_backend_pid()").fetchone()
                for i in range(ROUNDS):
                    with conn.transaction():
                        row = conn.execute("SELECT %s::int + 1", (i,)).fetchone()
                        assert row is not None and row[0] == i + 1
                with lock:
                    assert pid is not None and gated is not None
                    backends.update((pid[0], gated[0]))
                    transactions[0] += 2 + ROUNDS

        threads = [threading.Thread(target=lease) for _ in range(pool_size)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    if errors:
        raise errors[0]
    return {"held_at_once": held[0], "transactions": transactions[0], "backends": sorted(backends)}


def worker_main(kind: str, dsn: str, tag: str, pool_size: int, key: int) -> None:
    if kind == "asyncpg":
        result = asyncio.run(asyncpg_worker(dsn, tag, pool_size, key))
    else:
        result = psycopg_worker(dsn, tag, pool_size, key)
    print("result " + json.dumps({"pid": os.getpid(), "kind": kind, **result}), flush=True)


# -- the fleet ----------------------------------------------------------------------------


@attrs.frozen
class Fleet:
    """What the fleet did, and what PostgreSQL and PgBouncer saw."""

    processes: int
    pool_size: int
    client_leases_at_once: int  # leases held at once, all processes together
    clients_waiting_in_pgbouncer: int  # at the gate, PgBouncer's cl_waiting
    server_connections_at_gate: int  # waiting on the gate, in pg_stat_activity
    peak_server_connections: int  # the sampler's highest count
    server_backends_seen: int  # distinct backend pids the sampler saw
    client_backends_seen: int  # distinct pg_backend_pid() the clients saw
    transactions: int
    samples: int


class Sampler(threading.Thread):
    """Polls ``pg_stat_activity`` directly on PostgreSQL: the fleet's server connections."""

    def __init__(self, direct_dsn: str, tag: str) -> None:
        super().__init__(daemon=True)
        self.conn = psycopg.connect(direct_dsn, autocommit=True, connect_timeout=5)
        self.tag = tag
        self.stop = threading.Event()
        self.peak = self.samples = 0
        self.pids: set[int] = set()
        self.error: BaseException | None = None

    def run(self) -> None:
        sql = "SELECT pid FROM pg_stat_activity WHERE application_name = %s"
        try:
            while not self.stop.is_set():
                pids = {pid for (pid,) in self.conn.execute(sql, (self.tag,))}
                self.samples += 1
                self.peak = max(self.peak, len(pids))
                self.pids |= pids
                self.stop.wait(0.005)
        except BaseException as error:
            self.error = error
        finally:
            self.conn.close()


def pgbouncer_pool(admin: psycopg.Connection[Any], database: str) -> dict[str, int]:
    """``SHOW POOLS`` on PgBouncer's admin console (simple query protocol only)."""
    result = admin.pgconn.exec_(b"SHOW POOLS")
    names = [result.fname(i) for i in range(result.nfields)]
    for row in range(result.ntuples):
        values = {names[i]: result.get_value(row, i) for i in range(result.nfields)}
        if values[b"database"] == database.encode():
            return {name: int(values[name.encode()] or 0) for name in ("cl_active", "cl_waiting")}
    raise LookupError(f"PgBouncer has no pool for database {database!r}")


def read_lines(process: subprocess.Popen[str], into: queue.Queue[tuple[int, str]]) -> None:
    assert process.stdout is not None
    for line in process.stdout:
        into.put((process.pid, line.rstrip("\n")))
    into.put((process.pid, ""))  # end of output


def read_errors(process: subprocess.Popen[str], into: dict[int, str]) -> None:
    assert process.stderr is not None
    into[process.pid] = process.stderr.read()


class Workers:
    """The fleet's processes, their output lines (all in one queue) and their stderr."""

    def __init__(self) -> None:
        self.started: list[subprocess.Popen[str]] = []
        self.lines: queue.Queue[tuple[int, str]] = queue.Queue()
        self.errors: dict[int, str] = {}
        self.done: set[int] = set()  # the workers that printed their result
        self.readers: list[threading.Thread] = []

    def start(self, command: list[str]) -> None:
        process = subprocess.Popen(
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.started.append(process)
        for target, into in ((read_lines, self.lines), (read_errors, self.errors)):
            reader = threading.Thread(target=target, args=(process, into), daemon=True)
            reader.start()
            self.readers.append(reader)

    def next_line(self, deadline: float, expected: str) -> tuple[int, str]:
        """The next line a worker printed, which must start with ``expected``."""
        while True:
            try:
                pid, line = self.lines.get(timeout=max(deadline - time.monotonic(), 0))
            except queue.Empty:
                raise TimeoutError(f"no worker said {expected!r} within {WAIT}s") from None
            if line or pid not in self.done:
                break  # not the end of output of a worker that has said all it had to
        if line.startswith("result "):
            self.done.add(pid)
        if not line.startswith(expected):
            self.stop()  # so that each one's stderr has been read in full
            codes = {process.pid: process.returncode for process in self.started}
            raise AssertionError(
                f"worker {pid} said {line!r}, not {expected!r}, and exited with {codes[pid]};"
                f" its stderr:\n{self.errors.get(pid, '')}"
            )
        return pid, line

    def stop(self) -> None:
        for process in self.started:
            if process.poll() is None:
                process.kill()
            process.wait(timeout=WAIT)
        for reader in self.readers:
            reader.join(timeout=WAIT)
        for process in self.started:
            for stream in (process.stdin, process.stdout, process.stderr):
                if stream is not None:
                    stream.close()


@contextmanager
def workers(dsn: str, tag: str, processes: int, pool_size: int, key: int) -> Iterator[Workers]:
    """The fleet's processes, always ended when the block exits."""
    fleet = Workers()
    try:
        for n in range(processes):
            kind = "asyncpg" if n % 2 == 0 else "psycopg"
            fleet.start(
                [sys.executable, __file__, "worker", kind, dsn, tag, str(pool_size), str(key)]
            )
        yield fleet
    finally:
        fleet.stop()


def run_fleet(
    dsn: str = DSN,
    direct_dsn: str = DIRECT_DSN,
    *,
    tag: str = TAG,
    processes: int = PROCESSES,
    pool_size: int = POOL_SIZE,
    server_pool: int = SERVER_POOL,
) -> Fleet:
    """Run the fleet through PgBouncer at ``dsn``; ``direct_dsn`` reaches PostgreSQL itself."""
    clients = processes * pool_size
    key = secrets.randbits(62)  # the gate: an advisory lock the fleet's transactions wait on
    database = str(psycopg.conninfo.conninfo_to_dict(dsn)["dbname"])
    admin_dsn = psycopg.conninfo.make_conninfo(dsn, dbname="pgbouncer")
    deadline = time.monotonic() + WAIT
    with (
        psycopg.connect(direct_dsn, autocommit=True, connect_timeout=5) as gate,
        psycopg.connect(admin_dsn, autocommit=True, connect_timeout=5) as admin,
    ):
        gate.execute("SELECT pg_advisory_lock(%s)", (key,))
        sampler = Sampler(direct_dsn, tag)
        sampler.start()
        try:
            with workers(dsn, tag, processes, pool_size, key) as fleet:
                # 1. Every process holds all its leases, each having run a transaction.
                for _ in range(processes):
                    fleet.next_line(deadline, "ready")
                for process in fleet.started:
                    assert process.stdin is not None
                    process.stdin.write("go\n")
                    process.stdin.flush()
                # 2. All 80 open a transaction at the gate: PgBouncer lends its 20 server
                # connections to 20 of them and queues the other 60.
                waiting_sql = (
                    "SELECT count(*) FROM pg_stat_activity"
                    " WHERE application_name = %s AND wait_event_type = 'Lock'"
                )
                while True:
                    row = gate.execute(waiting_sql, (tag,)).fetchone()
                    at_gate = row[0] if row else 0
                    in_pgbouncer = pgbouncer_pool(admin, database)
                    if at_gate == server_pool and in_pgbouncer["cl_waiting"] == clients - at_gate:
                        break
                    if time.monotonic() > deadline:
                        raise TimeoutError(
                            f"after {WAIT}s, {at_gate} server connections at the gate "
                            f"(expected {server_pool}); PgBouncer: {in_pgbouncer}"
                        )
                    time.sleep(0.01)
                # 3. Open the gate: the 80 clients' transactions run through 20 connections.
                gate.execute("SELECT pg_advisory_unlock(%s)", (key,))
                results = []
                for _ in range(processes):
                    _, line = fleet.next_line(deadline, "result ")
                    results.append(json.loads(line.removeprefix("result ")))
                for process in fleet.started:
                    code = process.wait(timeout=max(deadline - time.monotonic(), 0))
                    assert code == 0, f"worker {process.pid} exited with {code}"
        finally:
            sampler.stop.set()
            sampler.join(timeout=WAIT)
    assert sampler.error is None, sampler.error
    return Fleet(
        processes=processes,
        pool_size=pool_size,
        client_leases_at_once=sum(r["held_at_once"] for r in results),
        clients_waiting_in_pgbouncer=in_pgbouncer["cl_waiting"],
        server_connections_at_gate=at_gate,
        peak_server_connections=sampler.peak,
        server_backends_seen=len(sampler.pids),
        client_backends_seen=len({pid for r in results for pid in r["backends"]}),
        transactions=sum(r["transactions"] for r in results),
        samples=sampler.samples,
    )


def main() -> None:
    fleet = run_fleet()
    assert fleet.client_leases_at_once == PROCESSES * POOL_SIZE, fleet
    assert fleet.peak_server_connections <= SERVER_POOL, fleet
    assert fleet.client_backends_seen <= SERVER_POOL, fleet
    print(
        f"ok: {fleet.processes} processes, {fleet.client_leases_at_once} client leases held "
        f"at once ({fleet.clients_waiting_in_pgbouncer} queued in PgBouncer), "
        f"{fleet.transactions} transactions; PostgreSQL saw at most "
        f"{fleet.peak_server_connections} server connections ({fleet.samples} samples)"
    )


if __name__ == "__main__":
    if sys.argv[1:2] == ["worker"]:
        kind, dsn, tag, pool_size, key = sys.argv[2:]
        worker_main(kind, dsn, tag, int(pool_size), int(key))
    else:
        main()
