"""The pytest recipe (``examples/pytest_fixtures/``) runs, and its leak check catches a leak.

The recipe is a test directory with its own ``pytest.ini``: pool fixtures for
pytest-anyio (on asyncio and trio) and for pytest-asyncio, with respool's leak check
on for every test.  It runs here in a subprocess, from a copy (so nothing is
written under ``examples/``), with pytest-asyncio loaded, as in a user's project;
this suite itself runs with ``-p no:asyncio`` (pyproject.toml).  Then the same
copy gets a module whose tests forget to release, and the check must name them.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.support import EXAMPLES

RECIPE = EXAMPLES / "pytest_fixtures"

LEAKY = """
import pytest

KEPT = []  # what a buggy test keeps: the leased connections are never given back


@pytest.mark.anyio
async def test_forgets_to_release(pool):
    KEPT.append(await pool.acquire())


@pytest.mark.asyncio
async def test_forgets_to_release_asyncpg(asyncpg_pool):
    KEPT.append(await asyncpg_pool.acquire())


@pytest.mark.anyio
async def test_releases(pool):
    await pool.release(await pool.acquire())
"""


@pytest.fixture
def recipe(tmp_path: Path, pg_dsn: str) -> Path:
    copy = tmp_path / "pytest_fixtures"
    shutil.copytree(RECIPE, copy, ignore=shutil.ignore_patterns("__pycache__", ".pytest_cache"))
    return copy


def run_pytest(directory: Path, pg_dsn: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "RESPOOL_PG_DSN": pg_dsn, "PYTHONDONTWRITEBYTECODE": "1"}
    env.pop("PYTEST_ADDOPTS", None)
    env.pop("PYTEST_PLUGINS", None)
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-rA"],
        cwd=directory,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def summary(done: subprocess.CompletedProcess[str]) -> str:
    return done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ""


RECIPE_TESTS = [  # 2 anyio tests x (asyncio, trio), and 2 pytest-asyncio tests
    f"test_with_anyio.py::{name}[{backend}]"
    for name in ("test_a_query", "test_more_tasks_than_connections")
    for backend in ("asyncio", "trio")
] + [
    "test_with_pytest_asyncio.py::test_a_query",
    "test_with_pytest_asyncio.py::test_more_tasks_than_connections",
]
LEAKS = [
    ("test_forgets_to_release[asyncio]", 9),
    ("test_forgets_to_release[trio]", 9),
    ("test_forgets_to_release_asyncpg", 14),
]


def test_the_recipe_passes_and_its_leak_check_reports_a_leak(recipe: Path, pg_dsn: str) -> None:
    """One run (pytest takes seconds to start): the recipe, plus a module that leaks."""
    (recipe / "test_leaky.py").write_text(LEAKY)
    done = run_pytest(recipe, pg_dsn)
    out = done.stdout
    assert done.returncode == 1, out + done.stderr  # the leaks fail the run
    # The recipe's own tests pass, without an error at teardown...
    for test in RECIPE_TESTS:
        assert f"PASSED {test}\n" in out, out
        assert f"ERROR {test} " not in out, out
    # ...and each test that leaked errors at teardown, naming the line that acquired.
    assert re.fullmatch(r"=+ 11 passed, 3 errors in [\d.]+s =+", summary(done)), out
    for test, line in LEAKS:
        assert f"ERROR at teardown of {test} " in out, out
        name = test.split("[")[0]
        assert f"acquired at test_leaky.py:{line} in {name}\n" in out, out
    # Counted in the report, not in the short summary (which repeats it in full where CI is set).
    report = out.split("short test summary info")[0]
    assert report.count("respool: 1 resource still leased after the test") == len(LEAKS)
    assert "ERROR test_leaky.py::test_releases" not in out
