"""Every example runs as a script, the way the docs say: ``python examples/<name>.py``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.support import EXAMPLES

# Which server each example needs, by the fixture that provides its address.
SERVICES = {
    "asyncpg_pool": "pg_dsn",
    "nats_shared": "nats_url",
    "celery_style_asyncpg": "pg_dsn",
    "psycopg_async": "pg_dsn",
    "psycopg_sync": "pg_dsn",
    "redis_async": "redis_url",
    "redis_shared": "redis_url",
    "redis_sync": "redis_url",
    "sqlite_example": None,
    "sqlite_threads": None,
    "trio_tcp": "redis_url",
    "fastapi_app": "pg_dsn",
    "flask_app": "pg_dsn",
}
# Examples that need more than a server, run by their own tests instead.
ELSEWHERE = {
    "pgbouncer_fleet": "tests/integration/test_pgbouncer.py, with a PgBouncer it starts",
}


def test_every_example_is_listed() -> None:
    listed = sorted([*SERVICES, *ELSEWHERE])
    assert sorted(path.stem for path in EXAMPLES.glob("*.py")) == listed


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_script(name: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONWARNINGS": "error"}  # an unclosed socket fails the run
    fixture = SERVICES[name]
    if fixture is not None:
        address = request.getfixturevalue(fixture)  # skips, or fails, without the server
        variable = {"pg_dsn": "RESPOOL_PG_DSN", "nats_url": "RESPOOL_NATS_URL"}
        env[variable.get(fixture, "RESPOOL_REDIS_URL")] = address
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / f"{name}.py")],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stderr == ""  # no warning, not even one ignored in a __del__
    assert done.stdout.splitlines()[-1].startswith("ok"), done.stdout
