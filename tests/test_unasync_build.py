"""The generator keeps the threaded face honest: these are the traps it must catch."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A copy of the generator and its inputs and outputs, to break at will."""
    for rel in ["src/respool/_async", "src/respool/_sync", "tests/_async", "tests/_sync"]:
        shutil.copytree(REPO / rel, tmp_path / rel, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "unasync_build.py", tmp_path)
    return tmp_path


def run(tree: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(tree / "unasync_build.py"), *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_committed_twin_is_current() -> None:
    assert importlib.util.find_spec("unasync") is not None
    result = run(REPO, "--check")
    assert result.returncode == 0, result.stderr
    assert "generated files are current" in result.stdout


def test_check_names_a_stale_file_and_regeneration_fixes_it(tree: Path) -> None:
    target = tree / "src/respool/_sync/pool.py"
    target.write_text(target.read_text() + "# edited by hand\n")
    result = run(tree, "--check")
    assert result.returncode == 1
    assert "stale or missing: src/respool/_sync/pool.py" in result.stderr
    assert run(tree).returncode == 0
    assert run(tree, "--check").returncode == 0
    assert "edited by hand" not in target.read_text()


def test_check_names_missing_and_orphaned_files(tree: Path) -> None:
    (tree / "tests/_sync/resources.py").unlink()
    (tree / "src/respool/_sync/leftover.py").write_text("x = 1\n")
    result = run(tree, "--check")
    assert result.returncode == 1
    assert "stale or missing: tests/_sync/resources.py" in result.stderr
    assert "orphaned (no async source): src/respool/_sync/leftover.py" in result.stderr
    assert run(tree).returncode == 0
    assert not (tree / "src/respool/_sync/leftover.py").exists()


def test_generated_files_carry_a_do_not_edit_header() -> None:
    first = (REPO / "src/respool/_sync/pool.py").read_text().splitlines()[0]
    assert first.startswith("# generated from src/respool/_async/pool.py by unasync_build.py")
    assert "do not edit" in first


@pytest.mark.parametrize(
    ("code", "complaint"),
    [
        ("async def f(x):\n    return await(x)\n", "write `await x`, not `await(x)`"),
        ("class AsyncWidget:\n    pass\n", "'SyncWidget' survived"),
        ("import anyio\n\n\nasync def f():\n    await anyio.sleep(0)\n", "'anyio' survived"),
        ('"""Works under asyncio and trio."""\n', "'asyncio' survived"),
    ],
)
def test_async_leftovers_fail_the_build_with_the_file_named(
    tree: Path, code: str, complaint: str
) -> None:
    (tree / "src/respool/_async/trap.py").write_text(code)
    result = run(tree)
    assert result.returncode == 1
    assert complaint in result.stderr
    assert "src/respool/_" in result.stderr
    assert not (tree / "src/respool/_sync/trap.py").exists()
