"""The HikariCP spike, measured on each face: an opened pool under a burst of callers.

    python benchmarks/spike.py            # asyncio, trio and threads
    python benchmarks/spike.py --json out.json

``min_size=2, pool_size=10, idle_timeout=0.5``, a factory that takes 50 ms,
and 50 callers at once, each holding its resource 20 ms.  Reported per face:
the peak number alive (never above 10), the seconds from the last release
until the pool is back to exactly ``min_size``, and, in a second run, the
factory calls per second the maintainer makes while the factory fails for
2 s (``max_backoff=0.5``): a busy loop would make thousands.  These are
figures of behaviour, not of speed; they go in the closing note of issue 11
and in docs/concepts.md.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

import anyio

from respool import AsyncPool, Pool

CALLERS, POOL, MIN, IDLE, FACTORY_SECONDS, HOLD = 50, 10, 2, 0.5, 0.05, 0.02
OUTAGE = 2.0


class Counter:
    def __init__(self) -> None:
        self.alive = self.peak = self.calls = 0
        self.failing = False
        self.lock = threading.Lock()

    def made(self) -> object:
        with self.lock:
            self.calls += 1
            if self.failing:
                raise ConnectionError("backend down")
            self.alive += 1
            self.peak = max(self.peak, self.alive)
        return object()

    def closed(self) -> None:
        with self.lock:
            self.alive -= 1


async def spike_async(backend: str) -> dict[str, Any]:
    counter = Counter()

    async def factory() -> object:
        await anyio.sleep(FACTORY_SECONDS)
        return counter.made()

    async def releaser(resource: object) -> None:
        counter.closed()

    pool = AsyncPool(factory, releaser, pool_size=POOL, min_size=MIN, idle_timeout=IDLE)
    async with pool:
        while pool.stats().size < MIN:
            await anyio.sleep(0.01)

        async def caller() -> None:
            async with pool.lease():
                await anyio.sleep(HOLD)

        async with anyio.create_task_group() as tg:
            for _ in range(CALLERS):
                tg.start_soon(caller)
        ended = time.monotonic()
        while pool.stats().size != MIN:
            await anyio.sleep(0.005)
        back = time.monotonic() - ended
    outage = await outage_async(backend)
    return {"peak": counter.peak, "back_to_min_s": back, **outage}


async def outage_async(backend: str) -> dict[str, Any]:
    counter = Counter()
    counter.failing = True

    async def factory() -> object:
        return counter.made()

    pool = AsyncPool(factory, None, pool_size=POOL, min_size=MIN, max_backoff=0.5)
    async with pool:
        await anyio.sleep(OUTAGE)
        calls = counter.calls
        counter.failing = False
        start = time.monotonic()
        while pool.stats().size < MIN:
            await anyio.sleep(0.005)
        recovered = time.monotonic() - start
    return {"outage_calls_per_s": calls / OUTAGE, "recovered_in_s": recovered}


def spike_threads() -> dict[str, Any]:
    counter = Counter()

    def factory() -> object:
        time.sleep(FACTORY_SECONDS)
        return counter.made()

    def releaser(resource: object) -> None:
        counter.closed()

    with Pool(factory, releaser, pool_size=POOL, min_size=MIN, idle_timeout=IDLE) as pool:
        while pool.stats().size < MIN:
            time.sleep(0.01)

        def caller() -> None:
            with pool.lease():
                time.sleep(HOLD)

        threads = [threading.Thread(target=caller) for _ in range(CALLERS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        ended = time.monotonic()
        while pool.stats().size != MIN:
            time.sleep(0.005)
        back = time.monotonic() - ended

    failing = Counter()
    failing.failing = True
    with Pool(failing.made, None, pool_size=POOL, min_size=MIN, max_backoff=0.5) as pool:
        time.sleep(OUTAGE)
        calls = failing.calls
        failing.failing = False
        start = time.monotonic()
        while pool.stats().size < MIN:
            time.sleep(0.005)
        recovered = time.monotonic() - start
    return {
        "peak": counter.peak,
        "back_to_min_s": back,
        "outage_calls_per_s": calls / OUTAGE,
        "recovered_in_s": recovered,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    import logging

    logging.getLogger("respool").setLevel(logging.CRITICAL)  # the outage is on purpose
    results = {
        "asyncio": anyio.run(spike_async, "asyncio", backend="asyncio"),
        "trio": anyio.run(spike_async, "trio", backend="trio"),
        "threads": spike_threads(),
    }
    print(
        f"spike: {CALLERS} callers, pool_size={POOL}, min_size={MIN}, "
        f"idle_timeout={IDLE}s, factory {FACTORY_SECONDS * 1000:.0f} ms"
    )
    head = f"{'face':8} {'peak':>5} {'back to min_size':>17} {'calls/s in outage':>18}"
    print(f"{head} {'recovered':>10}")
    for face, r in results.items():
        print(
            f"{face:8} {r['peak']:>5} {r['back_to_min_s']:>16.2f}s "
            f"{r['outage_calls_per_s']:>18.1f} {r['recovered_in_s']:>9.2f}s"
        )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
