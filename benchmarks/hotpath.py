"""Run one respool hot path in a tight loop, for a profiler to sample.

    py-spy record -r 500 -f raw -o a.txt -- python benchmarks/hotpath.py a
    pyinstrument benchmarks/hotpath.py a-lease

Paths (the benchmark's scenarios, respool only, no harness around them):

    a          asyncio, 1 task, pool 10: acquire/release
    a-lease    the same through lease()
    b          asyncio, 100 tasks, pool 10, sleep(0) held
    c          threads, 1 thread, pool 10: acquire/release
    c-lease    the same through lease()
    e          threads, 8 threads, pool 8: acquire/release
    f-a        trio, 1 task, pool 10: acquire/release
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from contenders import Resource

import respool


async def _factory() -> Resource:
    return Resource()


def run_async(path: str, seconds: float) -> int:
    async def main() -> int:
        pool: respool.AsyncPool[Resource] = respool.AsyncPool(_factory, None, pool_size=10)
        await pool.prefill()
        deadline = time.perf_counter() + seconds
        ops = 0
        if path == "b":
            stop = False

            async def worker() -> None:
                nonlocal ops
                while not stop:
                    r = await pool.acquire()
                    await asyncio.sleep(0)
                    await pool.release(r)
                    ops += 1

            tasks = [asyncio.create_task(worker()) for _ in range(100)]
            await asyncio.sleep(seconds)
            stop = True
            await asyncio.gather(*tasks)
            return ops
        while time.perf_counter() < deadline:
            if path.endswith("lease"):
                for _ in range(1000):
                    async with pool.lease():
                        pass
            else:
                for _ in range(1000):
                    r = await pool.acquire()
                    await pool.release(r)
            ops += 1000
        return ops

    if path == "f-a":
        import trio

        return trio.run(main)
    return asyncio.run(main())


def run_threads(path: str, seconds: float) -> int:
    pool: respool.Pool[Resource] = respool.Pool(Resource, None, pool_size=10 if path != "e" else 8)
    pool.prefill()
    counts = [0] * 8
    stop = False

    def loop(index: int) -> None:
        done = 0
        while not stop:
            if path.endswith("lease"):
                for _ in range(1000):
                    with pool.lease():
                        pass
            else:
                for _ in range(1000):
                    pool.release(pool.acquire())
            done += 1000
        counts[index] = done

    if path == "e":
        threads = [threading.Thread(target=loop, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        time.sleep(seconds)
        stop = True
        for t in threads:
            t.join()
        return sum(counts)
    deadline = time.perf_counter() + seconds
    ops = 0
    while time.perf_counter() < deadline:
        if path.endswith("lease"):
            for _ in range(1000):
                with pool.lease():
                    pass
        else:
            for _ in range(1000):
                pool.release(pool.acquire())
        ops += 1000
    return ops


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("path", choices=["a", "a-lease", "b", "c", "c-lease", "e", "f-a"])
    p.add_argument("--seconds", type=float, default=5.0)
    args = p.parse_args()
    started = time.perf_counter()
    if args.path in ("c", "c-lease", "e"):
        ops = run_threads(args.path, args.seconds)
    else:
        ops = run_async(args.path, args.seconds)
    elapsed = time.perf_counter() - started
    print(f"{args.path}: {ops:,} ops in {elapsed:.2f}s = {ops / elapsed:,.0f} ops/s")


if __name__ == "__main__":
    main()
