"""The integration tests' fixtures: the servers, and ways to break them.

Each test runs a recipe from ``examples/`` against a real server.  Without the
server it is skipped, naming the address it tried, unless
``RESPOOL_REQUIRE_SERVICES=1`` (as in CI), where it fails instead:
:func:`require_service` is the one place that decides.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterable, Iterator
from typing import Any
from urllib.parse import urlsplit

import psycopg
import pytest
import redis
from psycopg.conninfo import conninfo_to_dict

from tests.integration.support import WAIT, load_example

REQUIRE_SERVICES = "RESPOOL_REQUIRE_SERVICES"


# -- servers: reachable, or skip (or fail when they are required) -------------------------


def require_service(what: str, host: str, port: int) -> None:
    """Skip the calling test unless ``what`` accepts TCP connections at ``host:port``.

    With ``RESPOOL_REQUIRE_SERVICES=1`` a missing server fails the test instead:
    CI must never pass by skipping.
    """
    try:
        with socket.create_connection((host, port), timeout=3):
            return
    except OSError as error:
        reason = f"{what} not reachable at {host}:{port} ({error})"
    if os.environ.get(REQUIRE_SERVICES) == "1":
        pytest.fail(f"{reason}; {REQUIRE_SERVICES}=1, so this fails instead of skipping")
    pytest.skip(f"{reason}; set {REQUIRE_SERVICES}=1 to fail instead")


def require_program(what: str, found: str | None, install: str) -> str:
    """Skip the calling test unless the program ``what`` was ``found`` (fail when required)."""
    if found is not None:
        return found
    reason = f"{what} is not installed ({install})"
    if os.environ.get(REQUIRE_SERVICES) == "1":
        pytest.fail(f"{reason}; {REQUIRE_SERVICES}=1, so this fails instead of skipping")
    pytest.skip(f"{reason}; set {REQUIRE_SERVICES}=1 to fail instead")


@pytest.fixture(scope="session")
def pg_dsn() -> str:
    """The PostgreSQL the recipes use: ``$RESPOOL_PG_DSN`` or their default."""
    dsn: str = load_example("psycopg_sync").DSN
    params = conninfo_to_dict(dsn)
    require_service(
        "PostgreSQL", str(params.get("host") or "127.0.0.1"), int(params.get("port") or 5432)
    )
    return dsn


@pytest.fixture(scope="session")
def redis_url() -> str:
    """The Redis the recipes use: ``$RESPOOL_REDIS_URL`` or their default."""
    url: str = load_example("redis_sync").URL
    address = urlsplit(url)
    require_service("Redis", address.hostname or "127.0.0.1", address.port or 6379)
    return url


@pytest.fixture(scope="session")
def nats_url() -> str:
    """The NATS server the shared-pool recipe uses: ``$RESPOOL_NATS_URL`` or its default."""
    url: str = load_example("nats_shared").URL
    address = urlsplit(url)
    require_service("NATS", address.hostname or "127.0.0.1", address.port or 4222)
    return url


# -- breaking things from the outside ---------------------------------------------------


class PgAdmin:
    """A separate connection that terminates chosen backends, and nothing else."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self.conn = conn

    def terminate(self, pids: Iterable[int]) -> None:
        """Terminate these backends and wait until the server has let them go."""
        pids = sorted(set(pids))
        rows = self.conn.execute(
            "SELECT pid, pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid = ANY(%s)",
            (pids,),
        ).fetchall()
        assert sorted(pid for pid, ok in rows if ok) == pids, (rows, pids)
        deadline = time.monotonic() + WAIT
        sql = "SELECT count(*) FROM pg_stat_activity WHERE pid = ANY(%s)"
        while (row := self.conn.execute(sql, (pids,)).fetchone()) and row[0]:
            assert time.monotonic() < deadline, f"backends {pids} still alive after {WAIT}s"
            time.sleep(0.01)


@pytest.fixture
def pg_admin(pg_dsn: str) -> Iterator[PgAdmin]:
    with psycopg.connect(pg_dsn, autocommit=True, connect_timeout=5) as conn:
        yield PgAdmin(conn)


class RedisAdmin:
    """A separate client that kills chosen client connections, by ID (never itself)."""

    def __init__(self, client: redis.Redis) -> None:
        self.client = client

    def kill(self, client_ids: Iterable[int]) -> None:
        ids = set(client_ids)
        assert self.client.client_id() not in ids
        for client_id in ids:
            assert self.client.client_kill_filter(_id=client_id) == 1, client_id
        alive = {int(c["id"]) for c in self.client.client_list()}
        assert not alive & ids, alive & ids


@pytest.fixture
def redis_admin(redis_url: str) -> Iterator[RedisAdmin]:
    client = redis.Redis.from_url(redis_url, socket_timeout=5)
    try:
        yield RedisAdmin(client)
    finally:
        client.close()
