"""A PgBouncer of the test's own: Debian's ``pgbouncer``, configured and started by the test.

:func:`running_pgbouncer` writes ``pgbouncer.ini`` and a userlist into a directory,
starts PgBouncer on 127.0.0.1 with a free port, in transaction pooling mode, in front
of the PostgreSQL the integration tests use, waits until it accepts connections
(bounded), and always stops it.  ``.ci/run`` installs the package when it is missing.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import attrs
from psycopg.conninfo import conninfo_to_dict

from tests.integration.support import WAIT

SERVER_POOL = 20  # default_pool_size: server connections per user and database
# A second database entry with one server connection: every client shares it, so
# what one client leaves on a server connection, the next one meets, every time.
SINGLE = "respool_single"


def find_pgbouncer() -> str | None:
    """The ``pgbouncer`` program (Debian puts it in /usr/sbin, not on every PATH)."""
    return shutil.which("pgbouncer") or shutil.which("pgbouncer", path="/usr/sbin:/usr/bin")


def version(program: str) -> tuple[int, int]:
    done = subprocess.run(
        [program, "--version"], capture_output=True, text=True, timeout=WAIT, check=True
    )
    found = re.search(r"PgBouncer (\d+)\.(\d+)", done.stdout + done.stderr)
    assert found, done.stdout + done.stderr
    return int(found[1]), int(found[2])


@attrs.frozen
class PgBouncer:
    dsn: str  # the fleet's database, through PgBouncer
    single_dsn: str  # the database entry with one server connection
    tag: str  # application_name of its server connections to the fleet's database
    version: tuple[int, int]
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def write_config(directory: Path, pg_dsn: str, port: int, tag: str, found: tuple[int, int]) -> Path:
    params = conninfo_to_dict(pg_dsn)
    host, pg_port = params.get("host") or "127.0.0.1", params.get("port") or 5432
    user, dbname = params.get("user") or "postgres", params.get("dbname") or "test"
    server = f"host={host} port={pg_port} dbname={dbname}"
    userlist = directory / "userlist.txt"
    userlist.write_text(f'"{user}" ""\n')
    settings = {
        "listen_addr": "127.0.0.1",
        "listen_port": str(port),
        "unix_socket_dir": "",  # TCP only: nothing left in /tmp
        "auth_type": "trust",
        "auth_file": str(userlist),
        "admin_users": user,  # SHOW POOLS, for the fleet's count of queued clients
        "pool_mode": "transaction",
        "default_pool_size": str(SERVER_POOL),
        "max_client_conn": "200",
        "query_wait_timeout": "30",  # a client never waits in PgBouncer longer than this
        "server_login_retry": "1",
    }
    if found >= (1, 21):  # protocol-level prepared statements: off, as before 1.21
        settings["max_prepared_statements"] = "0"
    ini = directory / "pgbouncer.ini"
    ini.write_text(
        "[databases]\n"
        f"{dbname} = {server} application_name={tag}\n"
        f"{SINGLE} = {server} pool_size=1 application_name={tag}-single\n"
        "[pgbouncer]\n" + "".join(f"{name} = {value}\n" for name, value in settings.items())
    )
    return ini


def accepting(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


@contextmanager
def running_pgbouncer(program: str, directory: Path, pg_dsn: str) -> Iterator[PgBouncer]:
    """PgBouncer in front of ``pg_dsn``, started, ready, and stopped when the block ends."""
    found = version(program)
    tag = f"respool-fleet-{os.getpid()}-{time.monotonic_ns()}"
    # PgBouncer refuses to run as root; -u switches to an unprivileged user once it
    # has read its configuration (which may stay in a directory only root can read).
    user = ["-u", "nobody"] if os.geteuid() == 0 else []
    log = directory / "pgbouncer.log"
    for _attempt in range(3):  # another process may take the free port first
        port = free_port()
        ini = write_config(directory, pg_dsn, port, tag, found)
        with log.open("w") as out:
            process = subprocess.Popen(
                [program, *user, str(ini)], stdout=out, stderr=subprocess.STDOUT
            )
        try:
            deadline = time.monotonic() + WAIT
            while process.poll() is None and not accepting(port):
                assert time.monotonic() < deadline, f"PgBouncer not listening after {WAIT}s"
                time.sleep(0.05)
            if process.poll() is not None:
                if "Address already in use" in log.read_text():
                    continue
                raise AssertionError(
                    f"PgBouncer exited with {process.returncode}:\n{log.read_text()}"
                )
            user_name = conninfo_to_dict(pg_dsn).get("user") or "postgres"
            dbname = conninfo_to_dict(pg_dsn).get("dbname") or "test"
            address = f"postgresql://{user_name}@127.0.0.1:{port}"  # URLs: asyncpg takes no other
            yield PgBouncer(
                dsn=f"{address}/{dbname}",
                single_dsn=f"{address}/{SINGLE}",
                tag=tag,
                version=found,
                log=log,
            )
            return
        finally:
            if process.poll() is None:
                process.terminate()  # SIGTERM: PgBouncer's fast shutdown
                try:
                    process.wait(timeout=WAIT)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(timeout=WAIT)
    raise AssertionError(f"PgBouncer found no free port in 3 tries:\n{log.read_text()}")
