"""Check what `python -m build` made: python .ci/check_dist.py DIST_DIR.

One sdist and one wheel, of the version in src/respool/_version.py; the wheel
ships the package with py.typed and the classifiers; the sdist holds what it
takes to build, test and document the package, and no junk (virtualenvs,
built sites, caches, CI files).
"""

from __future__ import annotations

import re
import sys
import tarfile
import zipfile
from email.parser import Parser
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VERSION = re.search(r'__version__ = "(.+)"', (ROOT / "src/respool/_version.py").read_text())
JUNK = {".venv", "site", ".ci", ".git", "__pycache__", ".mypy_cache", ".ruff_cache",
        ".pytest_cache", ".hypothesis", "dist", "build"}  # fmt: skip
WHEEL_FILES = {
    "respool/__init__.py",
    "respool/py.typed",
    "respool/_async/pool.py",
    "respool/_sync/pool.py",
    "respool/_async/acquiring.py",
    "respool/_sync/acquiring.py",
    "respool/_state/__init__.py",  # the shared state: a package of its own
    "respool/_state/ledger.py",
    "respool/_synchronization/__init__.py",
    "respool/_synchronization/events.py",
    "respool/testing.py",  # the pytest plugin
    "respool/__main__.py",  # python -m respool demo
    "respool/_demo/__init__.py",
}
ENTRY_POINTS = "[pytest11]\nrespool = respool.testing\n"  # the pytest plugin's registration
SDIST_FILES = {
    "PKG-INFO",
    "pyproject.toml",
    "README.md",
    "LICENSE",
    "CHANGELOG.md",
    "mkdocs.yml",
    "unasync_build.py",
    "src/respool/py.typed",
    "src/respool/_sync/pool.py",
    "tests/_async/test_pool.py",
    "tests/typing/user_code.py",
    "docs/index.md",
    "tools/griffe_sphinx_roles.py",
}
CLASSIFIERS = {"Framework :: AnyIO", "Framework :: Trio", "Typing :: Typed"}


def main(dist: Path) -> list[str]:
    assert VERSION is not None
    version = VERSION.group(1)
    problems = []
    sdists, wheels = sorted(dist.glob("*.tar.gz")), sorted(dist.glob("*.whl"))
    if [p.name for p in sdists] != [f"respool-{version}.tar.gz"]:
        problems.append(f"expected one sdist of version {version}, got {sdists}")
    if [p.name for p in wheels] != [f"respool-{version}-py3-none-any.whl"]:
        problems.append(f"expected one pure wheel of version {version}, got {wheels}")
    if problems:
        return problems

    with zipfile.ZipFile(wheels[0]) as wheel:
        names = set(wheel.namelist())
        metadata = Parser().parsestr(wheel.read(f"respool-{version}.dist-info/METADATA").decode())
        entry_points_name = f"respool-{version}.dist-info/entry_points.txt"
        entry_points = wheel.read(entry_points_name).decode() if entry_points_name in names else ""
    problems += [f"wheel lacks {name}" for name in sorted(WHEEL_FILES - names)]
    problems += [f"wheel ships {n}" for n in sorted(names) if not n.startswith("respool")]
    if ENTRY_POINTS not in entry_points:
        problems.append(f"wheel entry_points.txt lacks {ENTRY_POINTS!r}: {entry_points!r}")
    problems += [
        f"wheel metadata lacks classifier {c!r}"
        for c in sorted(CLASSIFIERS - set(metadata.get_all("Classifier", [])))
    ]
    if metadata["Version"] != version:
        problems.append(f"wheel metadata version {metadata['Version']} != {version}")
    if "LICENSE" not in (metadata.get_all("License-File") or []):
        problems.append("wheel metadata names no LICENSE file")

    with tarfile.open(sdists[0]) as sdist:
        members = [m.name for m in sdist.getmembers() if m.isfile()]
    prefix = f"respool-{version}/"
    problems += [f"sdist member outside {prefix}: {m}" for m in members if not m.startswith(prefix)]
    files = {m.removeprefix(prefix) for m in members}
    problems += [f"sdist lacks {name}" for name in sorted(SDIST_FILES - files)]
    problems += [
        f"sdist ships junk: {name}" for name in sorted(files) if JUNK & set(name.split("/")[:-1])
    ]
    problems += [f"sdist ships junk: {name}" for name in sorted(files) if name.endswith(".pyc")]
    if not problems:
        print(f"ok: {wheels[0].name} ({len(names)} files), {sdists[0].name} ({len(files)} files)")
    return problems


if __name__ == "__main__":
    found = main(Path(sys.argv[1]))
    print("\n".join(found), file=sys.stderr)
    sys.exit(1 if found else 0)
