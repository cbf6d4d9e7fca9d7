"""pytest plugin: report respool leases a test never gave back.

Installed with respool (entry point ``pytest11``: ``respool``) and off until
enabled, for one test or the whole run:

- mark a test, class or module ``@pytest.mark.respool_leaks``;
- or request the fixture ``respool_leak_check``;
- or run ``pytest --respool-leaks``, or set ``respool_leaks = true`` in the
  pytest configuration; then ``@pytest.mark.respool_leaks(enabled=False)``
  exempts a test.

For a test where it is enabled, the plugin records every ``Pool`` and
``AsyncPool`` created from the start of the test's setup (its function-scoped
fixtures included) to its end.  After the test and its function-scoped
fixtures are torn down, any resource still leased from one of those pools is
a leak: the test gets an error at teardown that names, for each such
resource, the lines that acquired it.  Pools created earlier (in
module-, class- or session-scoped fixtures) are not checked.

This module imports pytest; respool itself never imports it.  See
``docs/testing.md``.
"""

from __future__ import annotations

import os
import sys
import sysconfig
import traceback
import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol, cast

import pytest

from . import _tracking
from ._reprs import show

__all__ = ["respool_leak_check"]

MARKER = "respool_leaks"
FIXTURE = "respool_leak_check"
SHOWN_FRAMES = 4  # user frames shown per acquire site, innermost first

# Frames in these packages are skipped when naming where a resource was acquired.
_INTERNAL_PACKAGES = (
    "respool",
    "anyio",
    "sniffio",
    "trio",
    "outcome",
    "exceptiongroup",
    "pytest",
    "_pytest",
    "pluggy",
    "pytest_asyncio",
)


class _Tracked(Protocol):
    def _outstanding(self) -> list[tuple[object, traceback.StackSummary | None]]: ...


def pytest_addoption(parser: pytest.Parser) -> None:
    """Register ``--respool-leaks`` and the ``respool_leaks`` configuration option."""
    group = parser.getgroup("respool", "respool leak checks")
    group.addoption(
        "--respool-leaks",
        action="store_true",
        default=False,
        dest="respool_leaks",
        help="fail every test that leaves a resource leased from a respool pool it created "
        "(opt a test out with @pytest.mark.respool_leaks(enabled=False))",
    )
    parser.addini(
        "respool_leaks",
        type="bool",
        default=False,
        help="like --respool-leaks: check every test for unreleased respool leases",
    )


def pytest_configure(config: pytest.Config) -> None:
    """Register the ``respool_leaks`` marker (so ``--strict-markers`` accepts it)."""
    config.addinivalue_line(
        "markers",
        f"{MARKER}(enabled=True): fail the test if a respool pool created during it still "
        "has resources leased after teardown; enabled=False exempts the test from "
        "--respool-leaks",
    )


def _enabled(item: pytest.Item) -> bool:
    marker = item.get_closest_marker(MARKER)
    if marker is not None:
        return bool(marker.kwargs.get("enabled", marker.args[0] if marker.args else True))
    config = item.config
    return bool(config.getoption("respool_leaks") or config.getini("respool_leaks"))


@pytest.fixture(autouse=True)
def _respool_leaks_autouse(request: pytest.FixtureRequest) -> None:
    """Start the check before the test's other function-scoped fixtures, if enabled.

    Being autouse and from a plugin, this is set up before the function-scoped
    fixtures of the test's own modules, so pools they create are watched, and
    the check runs after they are torn down.  Does nothing if not enabled.
    """
    if FIXTURE in request.fixturenames or _enabled(request.node):
        request.getfixturevalue(FIXTURE)


@pytest.fixture
def respool_leak_check(request: pytest.FixtureRequest) -> Iterator[None]:
    """Fail the test if a pool created during it still has resources leased at teardown.

    Requesting this fixture enables the check for the test, like the
    ``respool_leaks`` marker.  Every respool pool created from the start of the
    test's function-scoped fixtures to the end of the test is watched (and
    records where each resource is acquired); after the test's other
    function-scoped fixtures are torn down, a resource still leased from one
    of them makes the test fail at teardown, with the lines that acquired it.
    The pools are kept alive until then, so a pool the test dropped is checked too.
    """
    with _tracking.watch(keep_alive=True) as pools:  # a test's dropped pool is still checked
        yield
        report = _leak_report(pools, request.config.rootpath)
    if report:
        pytest.fail(report, pytrace=False)


def _leak_report(pools: list[weakref.ref[object]], root: Path) -> str:
    """What leaked from the watched pools, or ``""``."""
    leaks: list[str] = []
    leaky_pools = 0
    alive = 0
    for ref in pools:
        pool = ref()
        if pool is None:
            continue
        alive += 1
        outstanding = cast(_Tracked, pool)._outstanding()
        if outstanding:
            leaky_pools += 1
        for resource, site in outstanding:
            what = (
                show(resource)
                if resource is not None
                else "a resource garbage-collected without being released"
            )
            leaks.append(f"{what} from {pool!r}\n")
            leaks.append(_format_site(site, root))
    if not leaks:
        return ""
    count = len(leaks) // 2
    head = (
        f"respool: {count} resource{'s' if count != 1 else ''} still leased after the test"
        f" (from {leaky_pools} of the {alive} pool{'s' if alive != 1 else ''} created during"
        " it); release or discard every resource you acquire, or use lease():\n"
    )
    return head + "".join(leaks)


def _format_site(site: traceback.StackSummary | None, root: Path) -> str:
    if site is None:
        return "  acquired at an unrecorded place (the pool was created outside the check)\n"
    frames = [frame for frame in site if not _internal(frame.filename)] or list(site[:1])
    lines = []
    for i, frame in enumerate(frames[:SHOWN_FRAMES]):
        label = "acquired at" if i == 0 else "called from"
        lines.append(f"  {label} {_path(frame.filename, root)}:{frame.lineno} in {frame.name}\n")
        if frame.line:
            lines.append(f"      {frame.line.strip()}\n")
    if len(frames) > SHOWN_FRAMES:
        lines.append(f"  ... {len(frames) - SHOWN_FRAMES} more\n")
    return "".join(lines)


def _path(filename: str, root: Path) -> str:
    try:
        return str(Path(filename).relative_to(root))
    except ValueError:
        return filename


def _package_prefixes() -> tuple[str, ...]:
    prefixes = []
    for name in _INTERNAL_PACKAGES:
        file = getattr(sys.modules.get(name), "__file__", None)
        if file:
            prefixes.append(os.path.dirname(os.path.abspath(file)) + os.sep)
    return tuple(prefixes)


def _stdlib_prefixes() -> tuple[str, ...]:
    paths = sysconfig.get_paths()
    return tuple({os.path.abspath(paths[key]) + os.sep for key in ("stdlib", "platstdlib")})


def _internal(filename: str) -> bool:
    """Whether a frame belongs to respool, an event loop, pytest or the standard library."""
    if filename.startswith("<frozen "):
        return True
    path = os.path.abspath(filename)
    if path.startswith(_package_prefixes()):
        return True
    installed = "site-packages" in path or "dist-packages" in path  # may sit under stdlib
    return not installed and path.startswith(_stdlib_prefixes())
