"""Generate the threaded face of respool from its async source.

    python unasync_build.py          # regenerate src/respool/_sync and tests/_sync
    python unasync_build.py --check  # exit 1, naming each file, if any is stale,
                                     # missing, or orphaned (no async source)

Every ``.py`` file under ``src/respool/_async`` and ``tests/_async`` is
rewritten by unasync with the explicit name map below, then docstring phrases
that only make sense for one face are swapped, a "do not edit" header is
added, and the result is checked for anything async that survived (an
unmapped ``AsyncX``, ``await``, ``anyio``...).  All paths are absolute, and the
output goes to a temporary folder first, so the source is never overwritten.
"""

from __future__ import annotations

import argparse
import filecmp
import re
import shutil
import sys
import tempfile
from pathlib import Path

import unasync

ROOT = Path(__file__).resolve().parent
TREES = [  # (async source, generated twin), relative to ROOT
    ("src/respool/_async", "src/respool/_sync"),
    ("tests/_async", "tests/_sync"),
]

# Every async name that has a sync twin.  unasync would turn an unmapped
# ``AsyncFoo`` into ``SyncFoo``; the checks below catch any that slip through.
NAMES = {
    # the pool
    "AsyncPool": "Pool",
    "AsyncLease": "Lease",
    "AsyncLoopPool": "LoopPool",
    "AsyncLifecycle": "Lifecycle",
    "AsyncSharedPool": "SharedPool",
    "aclose": "close",
    # respool._synchronization
    "AsyncStateLock": "StateLock",
    "AsyncEvent": "Event",
    "AsyncShield": "Shield",
    "AsyncBoundedCall": "BoundedCall",
    "AsyncHelpers": "Helpers",
    "async_ki_protected": "ki_protected",
    "async_wrap_sigint_handler": "wrap_sigint_handler",
    "AsyncLoopGuard": "LoopGuard",
    "AsyncCompletion": "Completion",
    "async_callable_check": "callable_check",
    "AsyncJobs": "Jobs",
    "AsyncMaintainerTask": "MaintainerTask",
    "AsyncTaskStatus": "TaskStatus",
    "ASYNC_TASK_STATUS_IGNORED": "TASK_STATUS_IGNORED",
    # respool._types
    "AsyncFactory": "Factory",
    "AsyncReleaser": "Releaser",
    "AsyncCheck": "Check",
    "async_sleep_until": "sleep_until",
    "async_call_within": "call_within",
    "async_cleanup_call": "cleanup_call",
    # tests
    "AsyncResources": "Resources",
    "AsyncNursery": "Nursery",
    "async_sleep": "sleep",
    "async_wait_until": "wait_until",
}

# Docstring and comment phrases that are true of one face only.  Each must
# occur in the async source (so none goes stale).
PHRASES = [
    (
        "            whoever waits for it (default: ``acquire_timeout``).  A factory\n"
        "            call runs in the background:",
        "            whoever waits for it (default: ``acquire_timeout``), in the\n"
        "            pool for tasks; here a thread cannot be cut short, so a factory\n"
        "            call runs to its end and what it makes joins the pool.  A factory\n"
        "            call runs in the background while a timeout applies:",
    ),
    (
        "A pool of resources for asyncio and trio code (through anyio).",
        "A thread-safe pool of resources for threaded code.",
    ),
    ("``async () -> T`` makes", "``() -> T`` makes"),
    ("``async (T) -> object`` closes", "``(T) -> object`` closes"),
    ("``async (T) -> object`` tests", "``(T) -> object`` tests"),
    ("``async (T) -> object`` runs", "``(T) -> object`` runs"),
    (
        "            they take; one still running then is cancelled and its resource\n"
        "            counted as closed.",
        "            they take; with it set, they run in a thread of their own, and\n"
        "            one still running then is left behind: a releaser's resource\n"
        "            stays counted alive, its slot taken, until the releaser returns;\n"
        "            a reset's resource is closed when the reset ends.",
    ),
    ("            TypeError: the factory or ``check`` is not async.\n", ""),
    (
        "    A plain (not async) factory, releaser, check or reset is accepted, as it\n"
        "    may return an awaitable; one that returns something else makes the call\n"
        "    that ran it raise ``TypeError`` (a releaser's resource still counts\n"
        "    as closed, a reset's is closed; either way its slot is freed).\n",
        "    A coroutine function as factory, releaser, check or reset is refused:\n"
        "    called in a thread, it would only hand back a coroutine, never run.\n",
    ),
    (
        "        TypeError: a non-callable factory, releaser, check or reset, a\n",
        "        TypeError: a non-callable factory, releaser, check or reset, or a\n"
        "            coroutine function as one, a\n",
    ),
    (
        "    The pool can be built outside any event loop (say at module level); it\n"
        "    binds to the first loop that uses it, and use from another loop raises\n"
        "    :class:`PoolError`.\n",
        "    Any thread may use the pool; every method is thread-safe.  Ctrl-C\n"
        "    (``KeyboardInterrupt``) in the main thread is raised at once while it\n"
        "    waits or runs the factory, ``check``, ``reset`` or releaser, and held\n"
        "    back for the moment the pool does its bookkeeping, so no slot or\n"
        "    resource is lost: to do this the first ``Pool`` made in the main thread\n"
        "    wraps Python's default SIGINT handler (a handler of your own is kept).\n",
    ),
    (
        "        An idle resource is handed out without yielding to the event loop, so\n"
        "        this is a checkpoint only when it waits, checks or creates.\n",
        "        An idle resource is handed out without blocking on anything but the\n"
        "        pool's short internal lock.\n",
    ),
    (
        "A factory call under way is\n"
        "                not cut short: it finishes in the background (within\n"
        "                ``create_timeout``) and its resource goes to the next waiter.",
        "A factory call under way (it\n"
        "                runs in a thread of its own when a timeout applies) goes on;\n"
        "                what it returns goes to the next waiter or joins the pool.",
    ),
    ("            PoolError: the pool belongs to another event loop.\n", ""),
    ("            PoolError: the pool belongs to another event loop, one still alive.\n", ""),
    (
        "        A pool whose event loop has ended (closed, or its trio run finished)\n"
        "        can still be disposed, from another loop: idle resources are released\n"
        "        on the current one where they can be (a releaser that fails, say\n"
        "        because its resource belonged to the loop that ended, is logged as\n"
        "        above), and the pool ends closed and bound to the current loop.\n"
        "\n",
        "",
    ),
    (
        "        On cancellation nothing is lost: a resource or slot handed to this\n"
        "        caller at that moment goes to the next waiter, and a factory call\n"
        "        under way finishes in the background for whoever is next.\n",
        "        If the wait is interrupted (``KeyboardInterrupt``) nothing is lost: a\n"
        "        resource or slot handed to this caller at that moment goes to the\n"
        "        next waiter, and a factory call under way finishes for whoever is next.\n",
    ),
    (
        "        Never waits for anything but ``reset`` and the releaser, each bounded\n"
        "        by ``cleanup_timeout`` if set; cancellation does not interrupt them\n"
        "        (returning is cleanup and runs shielded), so the resource is returned\n"
        "        or closed either way.  Only asyncio's own ``Task.cancel()`` gets\n"
        "        through a shield: the call is then cut short, and the resource still\n"
        "        counts as closed and frees its slot.\n",
        "        Never waits for anything but ``reset`` and the releaser, each bounded\n"
        "        by ``cleanup_timeout`` if set.\n",
    ),
    (
        "error is logged and counted, never raised) and the slot goes at once\n"
        "        to the oldest waiter, who creates a fresh resource in it.  Closing is\n"
        "        cleanup and is not interrupted by cancellation.\n",
        "error is logged and counted, never raised) and the slot goes at once\n"
        "        to the oldest waiter, who creates a fresh resource in it.\n",
    ),
    (
        "        The resource is released when the block exits, also when the body\n"
        "        raises or is cancelled (the release cannot be interrupted).\n",
        "        The resource is released when the block exits, also when the body\n"
        "        raises.\n",
    ),
    (
        "        On cancellation the factory call under way finishes in the background\n"
        "        (its resource joins the pool); resources made so far stay.\n",
        "        Resources made so far stay when it fails or times out.\n",
    ),
    (
        "        Releaser errors are logged on the ``respool`` logger and counted.\n"
        "        Closing is cleanup and is not interrupted by cancellation.\n",
        "        Releaser errors are logged on the ``respool`` logger and counted.\n",
    ),
    (
        "closed when it is released (without error).  Closing is cleanup and\n"
        "        is not interrupted by cancellation.\n",
        "closed when it is released (without error).\n",
    ),
    (
        """\"\"\"Run the releaser, shielded from cancellation; return its error.""",
        """\"\"\"Run the releaser; return its error.""",
    ),
    (
        "    Entering acquires (with the lease's timeout and the errors of\n"
        "    :meth:`AsyncPool.acquire`); leaving releases, also when the body raised\n"
        "    or was cancelled.  A lease is entered once.\n",
        "    Entering acquires (with the lease's timeout and the errors of\n"
        "    :meth:`Pool.acquire`); leaving releases, also when the body raised.\n"
        "    A lease is entered once.\n",
    ),
    (
        "What :meth:`AsyncPool.lease` returns: ``async with`` it to hold a resource.",
        "What :meth:`Pool.lease` returns: ``with`` it to hold a resource.",
    ),
    ("``async with pool.lease() as resource:``", "``with pool.lease() as resource:``"),
    (
        "                    # Finish the batch anyway, or the rest would hold their slots\n"
        "                    # forever (a shield does not stop asyncio's own Task.cancel()).\n",
        "                    # Finish the batch anyway (say after KeyboardInterrupt), or the\n"
        "                    # rest would hold their slots forever.\n",
    ),
    (
        "so no\n        timeout applies and it is not a cancellation point.\n",
        "so no\n        timeout applies.\n",
    ),
    ("the timeout, cancellation and errors of", "the timeout and errors of"),
    (
        "The caller's side of ``AsyncLoopPool``; ``unasync_build.py`` generates\n"
        "``LoopPool`` (``respool._sync.loop_pool``) from it.",
        "The caller's side of ``LoopPool``, for threads; generated from\n"
        "``respool._async.loop_pool``.",
    ),
    (
        "    ``async with AsyncLoopPool(...) as loops:`` starts it (:meth:`start`) and\n"
        "    shuts it down on exit (:meth:`aclose`).\n",
        "    ``with LoopPool(...) as loops:`` starts it (:meth:`start`) and shuts it\n"
        "    down on exit (:meth:`close`).  Every method may be called from any\n"
        "    thread but the pool's own.\n",
    ),
    (
        "wait for its result without blocking the caller's event loop.",
        "block the calling thread until its result is in.",
    ),
    (
        "        On cancellation of the caller, ``fn`` is cancelled on its loop and\n"
        "        the cancellation goes on once it has ended there.\n",
        "        If the wait is interrupted (``KeyboardInterrupt``), ``fn`` is\n"
        "        cancelled on its loop, and the interruption goes on once it has\n"
        "        ended there.\n",
    ),
    (
        "        On cancellation of the caller, every call still running is cancelled\n"
        "        on its loop, and the cancellation goes on once they have ended.\n",
        "        If the wait is interrupted (``KeyboardInterrupt``), every call still\n"
        "        running is cancelled on its loop, and the interruption goes on once\n"
        "        they have ended.\n",
    ),
    (
        "``fatal=`` fail it at once.  On cancellation everything started is\n"
        "        stopped the same way before the cancellation goes on.\n",
        "``fatal=`` fail it at once.  If the wait is interrupted\n"
        "        (``KeyboardInterrupt``) everything started is stopped the same way\n"
        "        before the interruption goes on.\n",
    ),
    (
        "WARNING on the ``respool`` logger).  The shutdown is not interrupted\n"
        "        by cancellation.\n",
        "WARNING on the ``respool`` logger).\n",
    ),
    (
        '"""Whether :meth:`aclose` was called or the start failed (never waits)."""',
        '"""Whether :meth:`close` was called or the start failed (never waits)."""',
    ),
    ('"""Shut the pool down (:meth:`aclose`)."""', '"""Shut the pool down (:meth:`close`)."""'),
    (
        "The async face: the hand-written source of truth for ``respool._sync``.",
        "The threaded face, generated from ``respool._async``.",
    ),
]

PHRASES += [  # the lifecycle (_async/lifecycle.py)
    (
        "        while they are held.  For a maintainer owned by a block, use\n"
        "        ``async with pool:`` or run :meth:`~respool.AsyncPool.maintain` in a task\n"
        "        group.\n",
        "        while they are held, in one daemon thread of the pool's.  For a\n"
        "        maintainer owned by a block, use ``with pool:``.\n",
    ),
    ("\n        On cancellation of the wait, the pool stays open.\n", ""),
    (
        "        For a task group or nursery you own: ``tg.start_soon(pool.maintain)``\n"
        "        or ``await tg.start(pool.maintain)`` (which returns once it runs).\n"
        "        Cancelling the task stops the maintainer: its factory call, close or\n"
        "        check under way is cancelled and settled, nothing lost.\n",
        "        For a thread of your own: ``Thread(target=pool.maintain).start()``.\n"
        "        ``task_status`` is for ``open()``'s own use.\n",
    ),
    ("\n        Closing is cleanup and is not interrupted by cancellation.\n", ""),
    (
        "``async with pool:`` opens the pool, its maintainer owned by the block; returns it.",
        "``with pool:`` opens the pool, its maintainer thread owned by the block; returns it.",
    ),
]

PHRASES += [  # the shared pool (_async/shared.py)
    (
        "\n        On cancellation the factory call under way finishes in the background\n"
        "        and its resource joins the pool.\n",
        "",
    ),
    (
        "    the oldest waiters, strictly in order).  Timeouts and cancellation behave as in\n"
        "    :class:`~respool.AsyncPool`: a caller who gives up or is cancelled while waiting\n",
        "    the oldest waiters, strictly in order).  Timeouts behave as in\n"
        "    :class:`~respool.Pool`: a caller who gives up or is interrupted while waiting\n",
    ),
]
PHRASES.append(("~respool.AsyncPool.", "~respool.Pool."))  # links in a base class: last
PHRASES.append((":class:`~respool.AsyncPool`", ":class:`~respool.Pool`"))

# Lines dropped from generated tests: anyio's marker has no meaning for threads.
DROP_LINES = [re.compile(r"^pytestmark = pytest\.mark\.anyio\n", re.M)]

# Anything async that must not survive into generated code.
LEFTOVERS = re.compile(
    r"\bawait\b|\basync\b|\banyio\b|\btrio\b|\basyncio\b|\bAsync[A-Z]\w*|\bSync[A-Z]\w*"
    r"|__a(?:enter|exit|iter|next)__|\bthreading\b|event loop|cancel"
)
LEFTOVERS_ALLOWED_IN_TESTS = re.compile(r"cancel")
# The loop pool runs async code on event loops of its own in both faces (only the caller
# waits differently), so its threaded twin may speak of them in its text: of async
# functions awaited there, asyncio and trio, the AsyncPool on each loop, cancelling on
# those loops.  anyio, threading and any other AsyncX name are still caught.
LEFTOVERS_ALLOWED_IN = {
    "src/respool/_sync/loop_pool.py": re.compile(
        r"async|await|asyncio|trio|cancel|event loop|AsyncPool"
    ),
}

HEADER = "# generated from {source} by unasync_build.py: do not edit, edit the source\n"


def generate(into: Path) -> list[str]:
    """Write every generated file under ``into`` (mirroring ROOT); return their paths."""
    rules = []
    sources = []
    for src, dst in TREES:
        rule = unasync.Rule(f"{ROOT / src}/", f"{into / dst}/", additional_replacements=NAMES)
        rules.append(rule)
        sources += sorted(str(p) for p in (ROOT / src).rglob("*.py"))
    unused = {a for a, _ in PHRASES}
    written = []
    unasync.unasync_files(sources, rules)
    for src, dst in TREES:
        for source in sorted((ROOT / src).rglob("*.py")):
            rel = source.relative_to(ROOT / src)
            target = into / dst / rel
            text = target.read_text()
            for before, after in PHRASES:
                if before in text:
                    unused.discard(before)
                    text = text.replace(before, after)
            for pattern in DROP_LINES:
                text = pattern.sub("", text)
            check_source(f"{src}/{rel}", source.read_text())
            check_leftovers(f"{dst}/{rel}", text, tests=dst.startswith("tests"))
            compile(text, f"{dst}/{rel}", "exec")  # a broken rewrite fails here, named
            header = HEADER.format(source=f"{src}/{rel}")
            target.write_text(header + text)
            written.append(f"{dst}/{rel}")
    if unused:
        fail(["phrase not found in the async source (update PHRASES):\n  " + p for p in unused])
    return written


def check_source(name: str, text: str) -> None:
    """unasync drops the token after ``await``: ``await(x)`` would become ``x)``."""
    problems = [
        f"{name}:{lineno}: write `await x`, not `await(x)`: {line.strip()}"
        for lineno, line in enumerate(text.splitlines(), 1)
        if re.search(r"\bawait\(", line)
    ]
    if problems:
        fail(problems)


def check_leftovers(name: str, text: str, *, tests: bool) -> None:
    problems = []
    allowed = LEFTOVERS_ALLOWED_IN.get(name)
    for lineno, line in enumerate(text.splitlines(), 1):
        for match in LEFTOVERS.finditer(line):
            if tests and LEFTOVERS_ALLOWED_IN_TESTS.fullmatch(match.group()):
                continue
            if allowed is not None and allowed.fullmatch(match.group()):
                continue
            problems.append(f"{name}:{lineno}: {match.group()!r} survived: {line.strip()}")
    if problems:
        fail([*problems, "map the name in NAMES or the phrase in PHRASES (unasync_build.py)"])


def fail(lines: list[str]) -> None:
    print("\n".join(lines), file=sys.stderr)
    raise SystemExit(1)


def existing(dst: str) -> set[str]:
    return {f"{dst}/{p.relative_to(ROOT / dst)}" for p in (ROOT / dst).rglob("*.py")}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="only report stale files")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        into = Path(tmp)
        written = set(generate(into))
        on_disk = set().union(*(existing(dst) for _, dst in TREES))
        stale = sorted(
            f for f in written if f not in on_disk or not filecmp.cmp(into / f, ROOT / f, False)
        )
        orphans = sorted(on_disk - written)
        if args.check:
            problems = [f"stale or missing: {f}" for f in stale]
            problems += [f"orphaned (no async source): {f}" for f in orphans]
            if problems:
                fail([*problems, "run `python unasync_build.py` and commit the result"])
            print(f"ok: {len(written)} generated files are current")
            return 0
        for f in stale:
            (ROOT / f).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(into / f, ROOT / f)
            print(f"wrote {f}")
        for f in orphans:
            (ROOT / f).unlink()
            print(f"removed orphan {f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
