"""The Flask recipe (``examples/flask_app.py``) under gunicorn ``--preload`` with 2 workers.

The test starts gunicorn on 127.0.0.1 (port 0: gunicorn picks a free one and logs
it), keeps one worker busy on an advisory lock the test holds, so that every other
request goes to the other worker, then lets it go.  The fork safety is made
visible: each worker's pool starts empty, the two use distinct PostgreSQL backends,
neither uses the master's connection, made before the fork, and that connection
is still alive at the end (no worker closed it).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import gunicorn.config  # type: ignore[import-untyped]
import psycopg
import pytest

from tests.integration.conftest import PgAdmin
from tests.integration.support import EXAMPLES, WAIT

REQUESTS = 30  # to the free worker, while the other one is busy


@attrs.frozen
class Server:
    url: str
    process: subprocess.Popen[bytes]
    log: Path


def gunicorn_command() -> list[str]:
    command = [
        sys.executable,
        "-m",
        "gunicorn",
        "--preload",
        "--workers=2",
        "--bind=127.0.0.1:0",  # gunicorn picks a free port, and logs it
        f"--chdir={EXAMPLES}",
        "--graceful-timeout=5",
        "--timeout=60",
    ]
    if any(s.name == "control_socket_disable" for s in gunicorn.config.KNOWN_SETTINGS):
        command.append("--no-control-socket")  # gunicorn 27's, in $HOME, shared otherwise
    return [*command, "flask_app:app"]


@pytest.fixture
def server(pg_dsn: str, tmp_path: Path) -> Iterator[Server]:
    log = tmp_path / "gunicorn.log"
    env = {**os.environ, "RESPOOL_PG_DSN": pg_dsn}
    with log.open("wb") as out:
        process = subprocess.Popen(
            gunicorn_command(), stdout=out, stderr=subprocess.STDOUT, env=env
        )
    try:
        deadline = time.monotonic() + WAIT
        while True:
            text = log.read_text(errors="replace")
            listening = re.search(r"Listening at: (http://127\.0\.0\.1:\d+)", text)
            if listening and len(re.findall(r"Booting worker with pid", text)) == 2:
                break
            assert process.poll() is None, f"gunicorn exited with {process.returncode}:\n{text}"
            assert time.monotonic() < deadline, f"gunicorn not up after {WAIT}s:\n{text}"
            time.sleep(0.05)
        yield Server(listening[1], process, log)
    finally:
        if process.poll() is None:
            process.terminate()  # SIGTERM: graceful, workers first
            try:
                process.wait(timeout=WAIT)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=WAIT)


def get(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(url, timeout=WAIT) as response:
        assert response.status == 200
        answer: dict[str, Any] = json.loads(response.read())
        return answer


def test_each_worker_has_a_pool_of_its_own(server: Server, pg_admin: PgAdmin, pg_dsn: str) -> None:
    key = int.from_bytes(os.urandom(7), "big")
    busy: dict[str, Any] = {}
    with psycopg.connect(pg_dsn, autocommit=True, connect_timeout=5) as gate:
        gate.execute("SELECT pg_advisory_lock(%s)", (key,))
        held = threading.Thread(target=lambda: busy.update(get(f"{server.url}/wait/{key}")))
        held.start()
        try:
            # Wait until that request is waiting for the lock: its worker is busy.
            waiting = (
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
                " AND ((classid::bigint << 32) | objid::bigint) = %s AND objsubid = 1"
            )
            deadline = time.monotonic() + WAIT
            while (row := gate.execute(waiting, (key,)).fetchone()) and row[0] == 0:
                assert time.monotonic() < deadline, server.log.read_text()
                time.sleep(0.01)
            free = [get(f"{server.url}/") for _ in range(REQUESTS)]  # all to the other worker
        finally:
            gate.execute("SELECT pg_advisory_unlock(%s)", (key,))
            held.join(timeout=WAIT)
    assert busy, "the request to the busy worker got no answer"
    answers = [busy, *free]
    print(f"\nbusy worker: {busy}\nfree worker: {free[0]} (then {REQUESTS - 1} more)")

    master = {(a["master_pid"], a["master_backend_pid"]) for a in answers}
    assert len(master) == 1  # one master, one connection made there before the fork
    ((master_pid, master_backend),) = master
    workers = {a["pid"] for a in answers}
    assert len(workers) == 2 and master_pid not in workers  # both workers served
    assert {a["pid"] for a in free} == {next(iter(workers - {busy["pid"]}))}

    # Each worker's pool started empty (its first request found nothing in it)...
    assert busy["size_before"] == 0
    assert free[0]["size_before"] == 0
    # ...and opened connections of its own: no backend shared, none the master's.
    free_backends = {a["backend_pid"] for a in free}
    assert busy["backend_pid"] not in free_backends
    assert master_backend not in free_backends | {busy["backend_pid"]}
    assert len(free_backends) == 1  # the free worker's one connection, reused
    assert free[-1]["created"] == 1

    # The master's connection is still there: no worker closed it.
    row = pg_admin.conn.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE pid = %s", (master_backend,)
    ).fetchone()
    assert row == (1,)
