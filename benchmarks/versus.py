"""Time respool's hot paths at two versions of its source, side by side in one run.

    python benchmarks/versus.py --base main               # main against this work tree
    python benchmarks/versus.py --base v0.3 --head main --rounds 15 --json out.json
    python benchmarks/versus.py --base main --callgrind   # instructions per op
    python benchmarks/versus.py --base HEAD --callgrind --head-metrics   # metrics=True, cost
    python benchmarks/versus.py --features [--callgrind]  # the lifecycle features' cost

``src/respool`` of ``--base`` is exported (``git archive``) to a temporary
folder as the package ``respool_base``; ``--head`` is another ref (exported
as ``respool_head``) or ``worktree``, the default: this repository's ``src/``,
imported as ``respool``.  The paths (benchmarks/hotpath.py's: bench.py's
scenarios a, c, e, f-a and two lease() variants) run on a fresh pool of 10
(8 for e), prefilled:

    a        asyncio, 1 task: r = await pool.acquire(); await pool.release(r)
    a-lease  the same through async with pool.lease()
    c        threads, 1 thread, Pool: pool.release(pool.acquire())
    c-lease  the same through with pool.lease()
    e        threads, 8 threads sharing a Pool of 8: acquire/release
    f-a      trio, 1 task: acquire/release
    b, f-b   asyncio, trio: 100 tasks, each holding across a sleep(0) (only by
             name in --paths; a chunk of ops starts its 100 tasks afresh)

Wall-clock mode (the default), both versions in this process: each round
times every path on base and on head, ``--seconds`` each after a short
warm-up, the two in swapped order every other round.  Per path: each
version's median ops/s, the median of the per-round head/base ratios (the
two of a pair run a second apart, on much the same machine) and their min
and max.  ``--base HEAD`` shows the noise floor: a ratio within that spread
is no evidence either way.

``--callgrind``: each single-threaded path of each version runs in
subprocesses under ``valgrind --tool=callgrind``, warm-up then ``--ops`` ops
and warm-up then none; the difference of the two instruction totals over
``--ops`` is the instructions per op, which does not depend on the machine's
load.  It does depend on the memory layout (a clash in CPython's type cache
costs ~3 % on c-lease, say), so each runs in ``--layouts`` layouts (padding
allocated first, another hash seed) and the table keeps the least per op,
with the most/least spread.  Instructions are not time (cache misses count
for nothing), but work added on a hot path shows for sure.

``--features`` (issue 16, item 5): no second version; "base" is this work
tree's pool with no lifecycle feature, "head" the same pool with
``min_size=10``, ``idle_timeout=60`` and its maintainer running (``open()``),
so head/base is what those features cost the hot path (limit: 5 %).
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import gc
import importlib
import json
import math
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import types
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PATHS = ("a", "a-lease", "c", "c-lease", "e", "f-a")
CROWDED = ("b", "f-b")  # by name only (--paths): 100 tasks on a pool of 10
SINGLE = ("a", "a-lease", "c", "c-lease", "f-a", *CROWDED)  # callgrind's: one thread each
CALLERS = 100
GATED = ("a", "c", "e", "f-a")  # a refactor may not make these more than 3 % slower
LIMIT = 0.97
FEATURE_PATHS = ("a", "a-lease", "c", "c-lease")  # --features: bench.py's scenarios a and c
FEATURE_LIMIT = 0.95  # the lifecycle features may cost the hot path at most 5 %
FEATURES = {"min_size": 10, "idle_timeout": 60.0}  # and open(): the maintainer runs
CHUNK = 1000  # ops between two looks at the clock
WARM_SECONDS = 0.1
TABLE = "{:8} {:>12} {:>12} {:>10} {:>7} {:>7}"


class Resource:
    __slots__ = ()


async def amake() -> Resource:
    return Resource()


# -- the two versions ----------------------------------------------------------


@dataclass
class Version:
    key: str  # "base" or "head"
    label: str  # what the user asked for, and its commit
    name: str  # the package name it is imported under
    where: Path  # the folder holding that package
    pkg: types.ModuleType | None = None
    features: bool = False  # --features: min_size, idle_timeout and a running maintainer


def _git(*args: str) -> str:
    done = subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"git {' '.join(args)}: {done.stderr.strip()}")
    return done.stdout.strip()


def _rename_import(name: str, m: re.Match[str]) -> str:
    indent, sub, alias = m.group(1), m.group(2), m.group(3)
    if alias:
        return f"{indent}import {name}{sub}{alias}"
    return f"{indent}import {name}{sub}; import {name} as respool"  # respool.x still works


def export(ref: str, key: str, into: Path) -> Version:
    """``src/respool`` of ``ref`` as the package ``respool_<key>`` in ``into``."""
    commit = _git("rev-parse", "--verify", f"{ref}^{{commit}}")
    name = f"respool_{key}"
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", commit, "src/respool"], check=True, capture_output=True
    ).stdout
    (into / key).mkdir()
    subprocess.run(["tar", "-x", "-C", str(into / key)], input=archive, check=True)
    (into / key / "src" / "respool").rename(into / name)
    for py in (into / name).rglob("*.py"):  # absolute imports of respool, if any, to the copy
        text = py.read_text()
        new = re.sub(r"^(\s*)from respool\b", rf"\1from {name}", text, flags=re.M)
        new = re.sub(
            r"^(\s*)import respool((?:\.\w+)*)( as \w+)?[ \t]*$",
            lambda m: _rename_import(name, m),
            new,
            flags=re.M,
        )
        if new != text:
            py.write_text(new)
    return Version(key, f"{ref} ({commit[:10]})", name, into)


def worktree() -> Version:
    dirty = _git("status", "--porcelain", "--", "src/respool")
    state = "with uncommitted changes" if dirty else "clean at " + _git("rev-parse", "--short", "@")
    return Version("head", f"worktree {ROOT / 'src'} ({state})", "respool", ROOT / "src")


def load(v: Version) -> types.ModuleType:
    """Import ``v`` and check that it is the copy asked for, using nothing of the others."""
    sys.path.insert(0, str(v.where))
    pkg = importlib.import_module(v.name)
    problems = []
    if Path(pkg.__file__ or "").resolve().parent != (v.where / v.name).resolve():
        problems.append(f"{v.name} was imported from {pkg.__file__}")
    for cls in (pkg.AsyncPool, pkg.Pool):
        if not cls.__module__.startswith(f"{v.name}."):
            problems.append(f"{v.name}.{cls.__name__} comes from {cls.__module__}")
    others = {"respool", "respool_base", "respool_head"} - {v.name}
    mine = [(n, m) for n, m in sys.modules.items() if n.split(".")[0] == v.name]
    for modname, mod in mine:
        for attr, value in vars(mod).items():
            ismod = isinstance(value, types.ModuleType)
            owner = value.__name__ if ismod else getattr(value, "__module__", None)
            if isinstance(owner, str) and owner.split(".")[0] in others:
                problems.append(f"{modname}.{attr} is {owner}'s")
    if problems:
        raise SystemExit(f"{v.label}: " + "; ".join(problems))
    return pkg


# -- the paths -----------------------------------------------------------------


def _timed(chunk: Any, seconds: float) -> float:
    end = time.perf_counter() + WARM_SECONDS
    while time.perf_counter() < end:
        chunk(CHUNK)
    gc.collect()
    ops, start = 0, time.perf_counter()
    end = start + seconds
    while (now := time.perf_counter()) < end:
        chunk(CHUNK)
        ops += CHUNK
    return ops / (now - start)


async def _atimed(chunk: Any, seconds: float, size: int = CHUNK) -> float:
    end = time.perf_counter() + WARM_SECONDS
    while time.perf_counter() < end:
        await chunk(size)
    gc.collect()
    ops, start = 0, time.perf_counter()
    end = start + seconds
    while (now := time.perf_counter()) < end:
        await chunk(size)
        ops += size
    return ops / (now - start)


def _settle() -> None:
    # Collect (the ops' cyclic garbage is theirs to pay for) and freeze the rest: the next
    # full collections walk only what came after, wherever they fall among the counted ops.
    gc.collect()
    gc.freeze()


def _extra(pkg: Any) -> dict[str, Any]:
    """The head's pools get ``metrics=True`` with ``--head-metrics`` (passed on in the env)."""
    head = pkg.__name__ in ("respool", "respool_head")
    return {"metrics": True} if head and os.environ.get("VERSUS_HEAD_METRICS") else {}


def measure(
    pkg: Any,
    path: str,
    seconds: float | None,
    counts: tuple[int, ...] = (),
    features: bool = False,
) -> float:
    """ops/s of ``path`` on ``pkg`` over ``seconds``; ``None``: run ``counts`` ops, settling.

    ``features``: the pool has :data:`FEATURES` and is opened (its maintainer runs).
    """
    if path == "e":
        assert seconds is not None and not features
        return _eight_threads(pkg, seconds)
    options = FEATURES if features else {}
    if path in ("c", "c-lease"):
        pool = pkg.Pool(Resource, None, pool_size=10, **options, **_extra(pkg))
        pool.prefill(timeout=math.inf)  # no deadline: no helper threads
        if features:
            pool.open(wait=True, timeout=math.inf)

        def chunk(n: int) -> None:
            if path == "c":
                for _ in range(n):
                    pool.release(pool.acquire())
            else:
                for _ in range(n):
                    with pool.lease():
                        pass

        try:
            if seconds is not None:
                return _timed(chunk, seconds)
            for n in counts:
                chunk(n)
                _settle()
            return 0.0
        finally:
            pool.dispose()

    async def main() -> float:
        pool = pkg.AsyncPool(amake, None, pool_size=10, **options, **_extra(pkg))
        await pool.prefill(timeout=math.inf)
        if features:
            await pool.open(wait=True, timeout=math.inf)

        async def chunk(n: int) -> None:
            if path in CROWDED:
                await _crowd(pool, n, trio=path == "f-b")
            elif path == "a-lease":
                for _ in range(n):
                    async with pool.lease():
                        pass
            else:
                for _ in range(n):
                    r = await pool.acquire()
                    await pool.release(r)

        try:
            if seconds is not None:
                return await _atimed(chunk, seconds, 20 * CHUNK if path in CROWDED else CHUNK)
            for n in counts:
                await chunk(n)
                _settle()
            return 0.0
        finally:
            await pool.dispose()

    if path in ("f-a", "f-b"):
        import trio

        return trio.run(main)  # type: ignore[no-any-return]
    return asyncio.run(main())


async def _crowd(pool: Any, n: int, *, trio: bool) -> None:
    """``n`` ops by :data:`CALLERS` tasks sharing ``pool``, each holding across a sleep(0)."""
    left = n

    async def worker(sleep: Any) -> None:
        nonlocal left
        while left > 0:
            left -= 1
            r = await pool.acquire()
            await sleep(0)
            await pool.release(r)

    if trio:
        import trio as trio_

        async with trio_.open_nursery() as nursery:
            for _ in range(CALLERS):
                nursery.start_soon(worker, trio_.sleep)
    else:
        await asyncio.gather(*(worker(asyncio.sleep) for _ in range(CALLERS)))


def _eight_threads(pkg: Any, seconds: float) -> float:
    pool = pkg.Pool(Resource, None, pool_size=8, **_extra(pkg))
    pool.prefill(timeout=math.inf)
    counts = [0] * 8
    stop = False

    def worker(index: int) -> None:
        done = 0
        while not stop:
            pool.release(pool.acquire())
            done += 1
            counts[index] = done

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    gc.collect()
    for t in threads:
        t.start()
    time.sleep(WARM_SECONDS)
    before, start = sum(counts), time.perf_counter()
    time.sleep(seconds)
    after, end = sum(counts), time.perf_counter()
    stop = True
    for t in threads:
        t.join()
    pool.dispose()
    return (after - before) / (end - start)


# -- the modes -----------------------------------------------------------------


def wallclock(versions: list[Version], paths: list[str], rounds: int, seconds: float) -> dict:
    rates: dict[str, dict[str, list[float]]] = {p: {"base": [], "head": []} for p in paths}
    for r in range(rounds):
        for path in paths:
            for v in versions if r % 2 == 0 else versions[::-1]:
                rates[path][v.key].append(measure(v.pkg, path, seconds, features=v.features))
        print(f"round {r + 1}/{rounds} done", file=sys.stderr)
    out = {}
    print(TABLE.format("path", "base ops/s", "head ops/s", "head/base", "min", "max"))
    for path, by in rates.items():
        ratios = [h / b for b, h in zip(by["base"], by["head"], strict=True)]
        base, head, ratio = (statistics.median(x) for x in (by["base"], by["head"], ratios))
        out[path] = {"ops_s": by, "ratios": ratios, "median_base": base, "median_head": head}
        out[path] |= {"median_ratio": ratio, "min_ratio": min(ratios), "max_ratio": max(ratios)}
        flag = _flag(versions, path, ratio)
        cells = (f"{base:,.0f}", f"{head:,.0f}", f"{ratio:.3f}", f"{min(ratios):.3f}")
        print(TABLE.format(path, *cells, f"{max(ratios):.3f}") + flag)
    return out


def _flag(versions: list[Version], path: str, ratio: float) -> str:
    """The limit a head/base ratio (of speeds) breaks, if any."""
    if versions[1].features:
        return "  <- over the 5 % limit" if ratio < FEATURE_LIMIT else ""
    return "  <- over the 3 % limit" if path in GATED and ratio < LIMIT else ""


def _child(v: Version, path: str, warm: int, ops: int, layout: int) -> list[str]:
    args = [str(v.where), v.name, path, str(warm), str(ops), str(layout), str(int(v.features))]
    return [sys.executable, __file__, "--child", *args]


def _instructions(job: tuple[Version, str, int, int], warm: int, env: dict, tmp: Path) -> int:
    v, path, layout, ops = job
    dump = tmp / f"callgrind.{v.key}.{path}.{layout}.{ops}"
    child = _child(v, path, warm, ops, layout)
    cmd = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={dump}", *child]
    env = env | {"PYTHONHASHSEED": str(layout)}
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{done.stderr[-3000:]}")
    found = re.search(r"^(?:summary|totals): (\d+)", dump.read_text(), re.M)
    assert found, f"no instruction total in {dump}"
    return int(found.group(1))


def callgrind(
    versions: list[Version], paths: list[str], warm: int, ops: int, layouts: int, tmp: Path
) -> dict:
    try:
        version = subprocess.run(["valgrind", "--version"], capture_output=True, text=True)
    except FileNotFoundError:
        raise SystemExit("--callgrind needs valgrind (apt-get install valgrind)") from None
    print(f"{version.stdout.strip()}: {warm:,} warm-up ops, then {ops:,} or none; "
          f"{layouts} memory layouts", file=sys.stderr)  # fmt: skip
    # Bytecode cached once, outside the source trees, then only read: every run imports alike.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(tmp / "pycache")
    for v in versions:
        for path in paths:
            subprocess.run(_child(v, path, 1, 0, 0), env=env, check=True)
    jobs = [(v, p, k, n) for p in paths for v in versions for k in range(layouts) for n in (0, ops)]
    with ThreadPoolExecutor(os.cpu_count() or 1) as pool:  # instruction counts ignore the load
        totals = list(pool.map(lambda job: _instructions(job, warm, env, tmp), jobs))
    ir = {(v.key, p, k, n): total for (v, p, k, n), total in zip(jobs, totals, strict=True)}
    out = {}
    print(TABLE.format("path", "base Ir/op", "head Ir/op", "head/base", "base", "head"))
    for path in paths:
        per_op = {
            key: [(ir[key, path, k, ops] - ir[key, path, k, 0]) / ops for k in range(layouts)]
            for key in ("base", "head")
        }
        base, head = min(per_op["base"]), min(per_op["head"])
        spreads = [f"{max(per_op[key]) / min(per_op[key]):.3f}" for key in ("base", "head")]
        flag = _flag(versions, path, base / head)
        cells = (f"{base:,.1f}", f"{head:,.1f}", f"{head / base:.4f}", *spreads)
        print(TABLE.format(path, *cells) + flag)
        out[path] = {"base_ir_per_op": base, "head_ir_per_op": head, "ratio": head / base}
        out[path] |= {"base_layouts": per_op["base"], "head_layouts": per_op["head"]}
    print(f"Ir/op: the least of {layouts} memory layouts; last two columns: most/least")
    return out


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--base", help="git ref of the version to compare against")
    p.add_argument(
        "--features",
        action="store_true",
        help="instead of --base: this tree without and with min_size, idle_timeout and "
        "a running maintainer (paths a, a-lease, c, c-lease)",
    )
    p.add_argument("--head", default="worktree", help="git ref, or 'worktree' (the default)")
    p.add_argument("--rounds", type=int, default=9)
    p.add_argument("--seconds", type=float, default=0.5, help="per path, version and round")
    p.add_argument("--paths", default=",".join(PATHS), help=f"comma-separated, of {PATHS}")
    p.add_argument("--callgrind", action="store_true", help="count instructions instead")
    p.add_argument("--ops", type=int, default=20_000, help="--callgrind: ops counted")
    p.add_argument("--warm", type=int, default=2_000, help="--callgrind: warm-up ops")
    p.add_argument("--layouts", type=int, default=3, help="--callgrind: memory layouts tried")
    p.add_argument("--head-metrics", action="store_true", help="head's pools: metrics=True")
    p.add_argument("--json", type=Path, metavar="FILE", help="also write the results here")
    args = p.parse_args(argv)
    if (args.base is None) is not args.features:
        p.error("give --base REF or --features, one of them")
    if args.features and args.paths == ",".join(PATHS):
        args.paths = ",".join(FEATURE_PATHS)
    paths = [path for path in args.paths.split(",") if path]
    if args.head_metrics:
        os.environ["VERSUS_HEAD_METRICS"] = "1"  # read by _extra, here and in the children
    if args.features and (bad := set(paths) - set(FEATURE_PATHS)):
        p.error(f"--features measures {FEATURE_PATHS}, not {sorted(bad)}")
    if unknown := set(paths) - set(PATHS) - set(CROWDED):
        p.error(f"unknown paths {sorted(unknown)}")
    if args.callgrind:
        paths = [path for path in paths if path in SINGLE]
    tmp = Path(tempfile.mkdtemp(prefix="versus-"))
    atexit.register(shutil.rmtree, tmp, ignore_errors=True)
    if args.features:
        tree = worktree()
        versions = [
            Version("base", f"{tree.label}, no lifecycle feature", tree.name, tree.where),
            Version("head", f"{tree.label}, {FEATURES} and open()", tree.name, tree.where),
        ]
        versions[1].features = True
    else:
        versions = [export(args.base, "base", tmp)]
        versions.append(worktree() if args.head == "worktree" else export(args.head, "head", tmp))
    for v in versions:
        v.pkg = load(v)
        print(f"{v.key}: {v.label}, as {v.name}", file=sys.stderr)
    if args.callgrind:
        results = callgrind(versions, paths, args.warm, args.ops, args.layouts, tmp)
    else:
        results = wallclock(versions, paths, args.rounds, args.seconds)
    if args.json:
        meta = {v.key: v.label for v in versions} | {"python": sys.version, "argv": sys.argv}
        args.json.write_text(json.dumps(meta | {"paths": results}, indent=2) + "\n")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:  # under callgrind: one version, one path, a fixed count
        where, name, path, warm, ops, layout, features = sys.argv[2:]
        pad = ["." * (i % 61) for i in range(int(layout) * 1000)]  # moves what comes next
        sys.path.insert(0, where)
        package = importlib.import_module(name)
        measure(package, path, None, (int(warm), int(ops)), features=features == "1")
    else:
        main()
