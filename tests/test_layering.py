"""The pool's layers, checked from the source: every ``import`` under src/respool.

The files are parsed with ``ast``, never imported.  A module may import only
modules ranked below it in ``RANKS`` (imports under ``if TYPE_CHECKING:`` are
exempt from that rule alone), and some imports are refused outright, whatever
the ranks and also for annotations: an I/O library (anyio, asyncio, trio,
sniffio, threading, _thread, signal) outside the paired primitives, a driver
or the primitives in the shared state or a shared lower module, one face in
the other, an application (testing, _demo, __main__, presets) in the pool, and a
driver imported by a preset other than inside a function.  Each
failure names the file, the line and the rule it breaks (:func:`check_source`).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import attrs

REPO = Path(__file__).resolve().parent.parent
SRC = REPO / "src"
PACKAGE = SRC / "respool"

# -- every module's place: THIS is where a new module gets its place -------------------
#
# A module may import only modules of a lower rank.  Modules of the same rank may
# not import each other; leave gaps, so a new module can slot in between.  The
# generated twin of each ``respool._async`` module (``respool._sync``) takes its rank.
RANKS: dict[str, int] = {
    # shared lower modules: used by the state, the primitives and both faces
    "respool._version": 0,
    "respool._types": 0,
    "respool._reprs": 0,
    "respool._stats": 0,
    "respool._deadline": 0,
    "respool._fork": 0,
    "respool._tracking": 0,
    "respool._logs": 1,  # _reprs
    "respool._checks": 1,  # _reprs
    "respool.events": 1,  # _reprs (_errors for annotations)
    "respool._metrics": 1,  # _stats
    "respool._leaks": 2,  # _reprs, events
    "respool._config": 2,  # _checks
    "respool._errors": 3,  # _leaks, _reprs, _stats
    # the paired primitives: the only home of anyio, asyncio, trio, threading...; they
    # know nothing of the pool (the state may not import them either, see check_source)
    "respool._synchronization.interrupts": 4,
    "respool._synchronization.events": 5,  # interrupts
    "respool._synchronization.helpers": 5,  # interrupts
    "respool._synchronization.calls": 6,  # events, helpers, interrupts
    "respool._synchronization.guards": 6,  # events, helpers
    "respool._synchronization.completions": 5,  # a caller waiting for another thread
    "respool._synchronization.loops": 5,  # event loops on threads of their own
    "respool._synchronization.loopends": 5,  # which loop runs, and a hook at its end
    "respool._synchronization.tasks": 7,  # guards, helpers
    "respool._synchronization": 8,
    # the shared state, sans I/O
    "respool._state.backoff": 10,
    "respool._state.line": 10,
    "respool._state.records": 10,
    "respool._state.steps": 11,
    "respool._state.reports": 11,
    "respool._state.lost": 11,
    "respool._state.ledger": 12,
    "respool._state.closings": 13,
    "respool._state.creations": 13,
    "respool._state.returns": 13,
    "respool._state.sizing": 13,
    "respool._state.upkeep": 13,
    "respool._state.tallies": 13,
    "respool._state": 14,
    "respool._state.shared": 15,  # a PoolState
    # a face: closing < creating < acquiring, maintenance < binding, lease < lifecycle
    # < pool (lease names the pool under TYPE_CHECKING only, for annotations)
    "respool._async.closing": 30,
    "respool._async.creating": 31,
    "respool._async.acquiring": 32,
    "respool._async.maintenance": 32,
    "respool._async.binding": 33,
    "respool._async.lease": 33,
    "respool._async.lifecycle": 34,
    "respool._async.pool": 35,
    "respool._async.shared": 36,  # an AsyncPool
    "respool._async": 37,
    # several event loops: built on the async face (AsyncPool) and the primitives
    "respool._loops.worker": 38,
    "respool._loops.registry": 38,
    "respool._loops": 39,
    "respool._async.loop_pool": 40,  # the loop pool's caller side: uses respool._loops
    # the package
    "respool": 41,
    # the exporters, for prometheus_client and OpenTelemetry: applications too
    "respool.metrics": 42,
    "respool.metrics.prometheus": 43,
    "respool.metrics.otel": 43,
    # applications of the pool, not the pool: nothing else may import them
    "respool.testing": 50,
    "respool._demo.lanes": 50,
    "respool._demo.invariants": 51,
    "respool._demo.display": 51,
    "respool._demo.sql": 51,
    "respool._demo.workers": 52,
    "respool._demo.running": 53,
    "respool._demo": 54,
    "respool.__main__": 55,  # runs _demo
    # the driver presets: applications too; each imports its driver inside functions only
    "respool.presets._asyncpg": 50,
    "respool.presets._psycopg": 50,
    "respool.presets._redis": 50,
    "respool.presets._sqlite": 50,
    "respool.presets": 51,
}
for _async_module, _rank in list(RANKS.items()):  # each generated twin takes its rank
    if _async_module.split(".")[:2] == ["respool", "_async"]:
        RANKS["respool._sync" + _async_module.removeprefix("respool._async")] = _rank

# Only the paired primitives may import these (the applications too, but for signal).
IO_MODULES = frozenset({"anyio", "asyncio", "trio", "sniffio", "threading", "_thread"})
SIGNAL = "signal"

# -- the size limit: no module under src/respool may exceed MAX_LINES lines -----------------
MAX_LINES = 450
KNOWN_OVERSIZE: set[str] = set()  # a module being split, until it is: remove when done


def _within(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def is_paired(module: str) -> bool:
    return _within(module, "respool._synchronization")


def is_state(module: str) -> bool:
    return _within(module, "respool._state")


def face_of(module: str) -> str | None:
    """``"respool._async"`` or ``"respool._sync"`` for a driver module, else ``None``."""
    for face in ("respool._async", "respool._sync"):
        if _within(module, face):
            return face
    return None


def is_application(module: str) -> bool:
    return (
        module in ("respool.testing", "respool.__main__")
        or _within(module, "respool._demo")
        or _within(module, "respool.presets")
        or _within(module, "respool.metrics")  # the exporters
    )


def is_loop_layer(module: str) -> bool:
    """``respool._loops``: several event loops, built on ``AsyncPool`` (async only)."""
    return _within(module, "respool._loops")


def is_shared_lower(module: str) -> bool:
    """A shared lower module: any other module of the package (``_checks``, ``_errors``...)."""
    return (
        module != "respool"
        and not (is_paired(module) or is_state(module) or is_application(module))
        and not is_loop_layer(module)
        and face_of(module) is None
    )


# -- reading the source ----------------------------------------------------------------------


def module_name(path: Path) -> str:
    """``src/respool/_state/line.py`` -> ``respool._state.line``; a package is its ``__init__``."""
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def module_files() -> dict[str, Path]:
    return {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


@attrs.frozen
class Import:
    line: int
    target: str  # a module, absolute: respool._state.line, anyio.to_thread...
    typing_only: bool  # under ``if TYPE_CHECKING:``


def _is_type_checking(test: ast.expr) -> bool:
    if isinstance(test, ast.Name):
        return test.id == "TYPE_CHECKING"
    return isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"


def _statements(node: ast.AST, typing_only: bool) -> Iterator[tuple[ast.stmt, bool]]:
    """Every import statement in ``node``, anywhere (functions too), and whether typing-only."""
    if isinstance(node, (ast.Import, ast.ImportFrom)):
        yield node, typing_only
    elif isinstance(node, ast.If) and _is_type_checking(node.test):
        for stmt in node.body:
            yield from _statements(stmt, True)
        for stmt in node.orelse:
            yield from _statements(stmt, typing_only)
    else:
        for child in ast.iter_child_nodes(node):
            yield from _statements(child, typing_only)


def imports(module: str, source: str, modules: set[str], *, package: bool) -> Iterator[Import]:
    """What ``module`` imports, relative imports resolved.

    ``from X import name`` imports the module ``X.name`` if there is one, else ``X``.
    ``package``: the source is a package's ``__init__.py`` (its own package is itself).
    """
    here = module.split(".") if package else module.split(".")[:-1]
    for stmt, typing_only in _statements(ast.parse(source), False):
        if isinstance(stmt, ast.Import):
            for alias in stmt.names:
                yield Import(stmt.lineno, alias.name, typing_only)
            continue
        assert isinstance(stmt, ast.ImportFrom)
        if stmt.level:
            if stmt.level > len(here):
                raise ValueError(f"{module}:{stmt.lineno}: a relative import beyond the package")
            base = here[: len(here) - (stmt.level - 1)]
            origin = ".".join(base + ([stmt.module] if stmt.module else []))
        else:
            origin = stmt.module or ""
        for alias in stmt.names:
            submodule = f"{origin}.{alias.name}"
            yield Import(stmt.lineno, submodule if submodule in modules else origin, typing_only)


def _ancestors(module: str) -> list[str]:
    parts = module.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


def check_source(
    module: str, source: str, modules: set[str], *, package: bool = False, where: str = ""
) -> list[str]:
    """Every layering rule ``module``'s source breaks, one line each: ``where:line: rule: ...``.

    ``modules``: every module of the package (to resolve ``from . import x`` and to tell a
    missing module from a third-party one); ``where``: the file, for the messages.
    """
    where = where or module
    problems: list[str] = []

    def broken(item: Import, rule: str, detail: str) -> None:
        problems.append(f"{where}:{item.line}: {rule}: {module} imports {item.target}; {detail}")

    for item in imports(module, source, modules, package=package):
        target, top = item.target, item.target.split(".")[0]
        if top == SIGNAL and not is_paired(module):
            broken(item, "signal outside the paired primitives", "only _synchronization may")
        if top in IO_MODULES and not (is_paired(module) or is_application(module)):
            broken(
                item,
                "I/O library outside the paired primitives",
                f"only respool._synchronization may import {', '.join(sorted(IO_MODULES))} "
                "(the pool's state and drivers go through its pairs)",
            )
        if top != "respool":
            continue
        if target not in modules:
            broken(item, "no such module", "there is no file for it under src/respool")
            continue
        face, their_face = face_of(module), face_of(target)
        if face and their_face and face != their_face:
            broken(item, "one face imports the other", f"{face} and {their_face} never meet")
        if is_state(module) and (their_face or is_paired(target)):
            broken(
                item,
                "the shared state imports "
                + ("a driver" if their_face else "the paired primitives"),
                "respool._state is sans I/O: it knows no face, loop or thread",
            )
        if is_shared_lower(module) and (their_face or is_paired(target)):
            broken(
                item,
                "a shared lower module imports a driver or the paired primitives",
                "the modules below the state serve both faces and know neither",
            )
        if is_loop_layer(module) and their_face == "respool._sync":
            broken(
                item,
                "the loop layer imports the threaded face",
                "respool._loops runs AsyncPool on event loops; it never needs Pool",
            )
        if is_application(target) and not is_application(module):
            broken(
                item,
                "the pool imports an application",
                "testing, _demo, __main__ and presets use the pool; the pool never uses them",
            )
        if item.typing_only:
            continue  # annotations only: exempt from the ranks (and nothing else)
        # Importing a.b.c first runs a and a.b: each package the importer is not in counts.
        # One message per import: the module itself first, else the package it runs.
        mine = set(_ancestors(module)) | {module}
        for reached in [target, *reversed(_ancestors(target))]:
            if reached in mine or reached not in RANKS or module not in RANKS:
                continue
            if RANKS[reached] >= RANKS[module]:
                how = "" if reached == target else f" (importing it runs {reached} first)"
                broken(
                    item,
                    "upward import",
                    f"{module} (rank {RANKS[module]}) may import only modules ranked below it, "
                    f"and {reached} has rank {RANKS[reached]}{how}; see RANKS in "
                    "tests/test_layering.py",
                )
                break
    return problems


def rules(problems: list[str]) -> list[tuple[str, str]]:
    """``(file:line, rule)`` of each problem ``check_source`` found."""
    return [(p.split(": ")[0], p.split(": ")[1]) for p in problems]


# -- the tests -------------------------------------------------------------------------------


def test_every_module_has_a_place_in_the_table() -> None:
    files = module_files()
    missing = [
        f"{path.relative_to(REPO)} ({module}) has no rank: add it to RANKS at the top of "
        "tests/test_layering.py"
        for module, path in files.items()
        if module not in RANKS
    ]
    stale = [
        f"{module} is in RANKS but has no file under src/respool: remove it from the table"
        for module in RANKS
        if module not in files
    ]
    assert not missing + stale, "\n".join(missing + stale)


def test_no_import_breaks_a_layer() -> None:
    files = module_files()
    modules = set(files)
    problems = []
    for module, path in files.items():
        problems += check_source(
            module,
            path.read_text(encoding="utf-8"),
            modules,
            package=path.name == "__init__.py",
            where=str(path.relative_to(REPO)),
        )
    assert not problems, "layering broken:\n" + "\n".join(problems)


def test_the_checker_catches_a_bad_module() -> None:
    """The checker itself, on a made-up module, so a pass means something."""
    modules = set(RANKS)
    bad = (
        "from __future__ import annotations\n"  # 1
        "from typing import TYPE_CHECKING\n"  # 2
        "import anyio\n"  # 3: the paired primitives' business
        "from .. import _fork, _tracking\n"  # 4: fine
        "from .._state.line import Waiter\n"  # 5: fine
        "from .pool import AsyncPool\n"  # 6: upward
        "if TYPE_CHECKING:\n"
        "    from .lease import AsyncLease\n"  # 8: upward, but for annotations only: fine
        "    from .._sync.pool import Pool\n"  # 9: the other face, even for annotations
        "def later():\n"
        "    import threading\n"  # 11: inside a function still counts
    )
    problems = check_source("respool._async.closing", bad, modules, where="bad.py")
    assert rules(problems) == [
        ("bad.py:3", "I/O library outside the paired primitives"),
        ("bad.py:6", "upward import"),
        ("bad.py:9", "one face imports the other"),
        ("bad.py:11", "I/O library outside the paired primitives"),
    ], "\n".join(problems)
    assert "respool._async.closing imports respool._async.pool" in problems[1]

    # relative imports resolve from the module's package, or from the package itself
    found = {i.target for i in imports("respool._async.pool", bad, modules, package=False)}
    assert {"respool._fork", "respool._tracking", "respool._state.line"} <= found
    assert {"respool._async.pool", "respool._async.lease", "respool._sync.pool"} <= found
    init = "from . import pool\nfrom .lease import AsyncLease\nfrom .. import PoolError\n"
    found = {i.target for i in imports("respool._async", init, modules, package=True)}
    assert found == {"respool._async.pool", "respool._async.lease", "respool"}

    # the state: no driver, no primitives, no threads, even for annotations
    state = "if TYPE_CHECKING:\n    from .._synchronization import AsyncEvent\nimport threading\n"
    problems = check_source("respool._state.ledger", state, modules, where="state.py")
    assert rules(problems) == [
        ("state.py:2", "the shared state imports the paired primitives"),
        ("state.py:3", "I/O library outside the paired primitives"),
    ], "\n".join(problems)

    # importing a module runs its packages first: respool._async (rank 35) is above the pool
    # (34), though respool._async.closing (30) is not
    twin = "from .._async.closing import Closer\n"
    problems = check_source("respool._sync.pool", twin, modules, where="twin.py")
    assert rules(problems) == [
        ("twin.py:1", "one face imports the other"),
        ("twin.py:1", "upward import"),
    ], "\n".join(problems)
    assert "(importing it runs respool._async first)" in problems[1]


# The drivers a preset may import, and only inside a function (or for annotations): a
# preset's module must import with none of them installed.
DRIVERS = frozenset({"asyncpg", "psycopg", "redis", "sqlite3"})


def eager_driver_imports(source: str) -> list[int]:
    """The lines of ``source`` importing a driver at module level, outside TYPE_CHECKING."""

    def walk(node: ast.AST, in_function: bool) -> Iterator[int]:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            in_function = True
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for stmt in node.orelse:
                yield from walk(stmt, in_function)
            return
        if isinstance(node, (ast.Import, ast.ImportFrom)) and not in_function:
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and not node.level:
                names = [node.module or ""]
            if any(name.split(".")[0] in DRIVERS for name in names):
                yield node.lineno
        for child in ast.iter_child_nodes(node):
            yield from walk(child, in_function)

    return list(walk(ast.parse(source), False))


def test_presets_import_their_drivers_lazily() -> None:
    presets = {m: p for m, p in module_files().items() if _within(m, "respool.presets")}
    assert len(presets) > 1, presets
    eager = [
        f"{path.relative_to(REPO)}:{line}: a driver imported at module level"
        for module, path in presets.items()
        for line in eager_driver_imports(path.read_text(encoding="utf-8"))
    ]
    assert not eager, "\n".join(eager)
    bad = "import redis\nif TYPE_CHECKING:\n    import psycopg\ndef f():\n    import asyncpg\n"
    assert eager_driver_imports(bad) == [1]


# THE SIZE LIMIT (not a layering rule): no module under src/respool exceeds MAX_LINES
# lines, so a module that grows past it is split by topic before it becomes the next one
# to split.  KNOWN_OVERSIZE lists those over it today; it must shrink, never grow (an
# entry no longer over the limit fails too, until it is removed).
def test_no_module_exceeds_the_line_limit() -> None:
    sizes = {
        path.relative_to(PACKAGE).as_posix(): len(path.read_text(encoding="utf-8").splitlines())
        for path in PACKAGE.rglob("*.py")
    }
    over = [
        f"src/respool/{name}: {lines} lines"
        for name, lines in sorted(sizes.items())
        if lines > MAX_LINES and name not in KNOWN_OVERSIZE
    ]
    assert not over, f"over {MAX_LINES} lines (split by topic):\n" + "\n".join(over)
    done = sorted(name for name in KNOWN_OVERSIZE if sizes.get(name, 0) <= MAX_LINES)
    assert not done, f"no longer over {MAX_LINES} lines (or gone): remove from KNOWN_OVERSIZE: " + (
        ", ".join(done)
    )


# A ``cast()`` whose type is a subscript or a union builds that type object at run time,
# on every call: ``cast(Check[T], fn)`` in the release path cost 2 µs per release, and
# ``cast(T | None, ...)`` in ``Entry.current`` 0.7 µs.  Quoted, the type costs nothing.
def runtime_built_casts(source: str) -> list[int]:
    """Lines where ``cast`` is given an unquoted subscript or ``|`` union as its type."""
    return [
        node.lineno
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id == "cast"
        and node.args
        and isinstance(node.args[0], (ast.Subscript, ast.BinOp))
    ]


def test_no_cast_builds_its_type_at_run_time() -> None:
    found = [
        f"src/respool/{path.relative_to(PACKAGE).as_posix()}:{line}: quote the type in cast()"
        for path in sorted(PACKAGE.rglob("*.py"))
        for line in runtime_built_casts(path.read_text(encoding="utf-8"))
    ]
    assert not found, "\n".join(found)
    assert runtime_built_casts('cast(T | None, x)\ncast(Entry[T], y)\ncast("Entry[T]", z)\n') == [
        1,
        2,
    ]
