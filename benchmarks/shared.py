"""Shared vs exclusive pools on a real round trip, side by side in one run.

    python benchmarks/shared.py [--seconds 3] [--json out.json]

200 tasks loop for ``--seconds`` each, each iteration a real round trip:

* Redis (``PING`` over a raw connection, ``examples/redis_shared.py``'s
  ``SharedConnection``): ``AsyncPool(pool_size=4)`` leasing a connection
  to one caller at a time, ``AsyncSharedPool(pool_size=4, max_holders=64)``
  whose holders take turns per round trip on a connection, and one
  connection shared by all 200 (its turn lock, no pool);
* NATS (request/reply to a responder; a NATS connection multiplexes
  requests): the same three, where a shared connection carries many
  requests in flight at once.

Reported per case: ops/s, and the p50/p99/max of one iteration's latency
(lease plus round trip), in milliseconds.  Ratios compare within this run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "examples"))

import nats_shared  # noqa: E402
import redis_shared  # noqa: E402

import respool  # noqa: E402

TASKS = 200


async def run(seconds: float, one_trip: Any, lease: Any) -> dict[str, float]:
    latencies: list[float] = []
    stop = time.monotonic() + seconds

    async def task() -> None:
        while time.monotonic() < stop:
            start = time.perf_counter()
            async with lease() as resource:
                await one_trip(resource)
            latencies.append(time.perf_counter() - start)

    started = time.monotonic()
    await asyncio.gather(*(task() for _ in range(TASKS)))
    elapsed = time.monotonic() - started
    latencies.sort()
    return {
        "ops_per_s": len(latencies) / elapsed,
        "p50_ms": statistics.median(latencies) * 1000,
        "p99_ms": latencies[int(len(latencies) * 0.99)] * 1000,
        "max_ms": latencies[-1] * 1000,
    }


class Single:
    """One resource for everyone: ``lease()`` hands out the same one, no pool."""

    def __init__(self, resource: Any) -> None:
        self.resource = resource

    def lease(self) -> Any:
        single = self

        class _Lease:
            async def __aenter__(self) -> Any:
                return single.resource

            async def __aexit__(self, *exc: object) -> None:
                return None

        return _Lease()


async def redis_cases(seconds: float) -> dict[str, dict[str, float]]:
    async def ping(shared: Any) -> None:
        await shared.pipeline(("PING",))

    results = {}
    exclusive = respool.AsyncPool(redis_shared.connect, redis_shared.close, pool_size=4)
    async with exclusive:
        results["AsyncPool(pool_size=4)"] = await run(seconds, ping, exclusive.lease)
    shared = redis_shared.make_pool(pool_size=4, max_holders=64)
    async with shared:
        results["AsyncSharedPool(4, max_holders=64)"] = await run(seconds, ping, shared.lease)
    single = await redis_shared.connect()
    results["one shared connection"] = await run(seconds, ping, Single(single).lease)
    await redis_shared.close(single)
    return results


async def nats_cases(seconds: float) -> dict[str, dict[str, float]]:
    async def request(nc: Any) -> None:
        await nc.request(nats_shared.SUBJECT, b"ping", timeout=10)

    service = await nats_shared.responder()
    results = {}
    try:
        exclusive = respool.AsyncPool(nats_shared.connect, nats_shared.close, pool_size=4)
        async with exclusive:
            results["AsyncPool(pool_size=4)"] = await run(seconds, request, exclusive.lease)
        shared = nats_shared.make_pool(pool_size=4, max_holders=64)
        async with shared:
            results["AsyncSharedPool(4, max_holders=64)"] = await run(
                seconds, request, shared.lease
            )
        single = await nats_shared.connect()
        results["one shared connection"] = await run(seconds, request, Single(single).lease)
        await nats_shared.close(single)
    finally:
        await service.close()
    return results


def table(name: str, results: dict[str, dict[str, float]]) -> list[str]:
    base = results["AsyncPool(pool_size=4)"]["ops_per_s"]
    lines = [
        f"{name}, {TASKS} tasks:",
        "",
        "| pool | ops/s | vs AsyncPool | p50 ms | p99 ms | max ms |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for case, r in results.items():
        lines.append(
            f"| {case} | {r['ops_per_s']:,.0f} | {r['ops_per_s'] / base:.2f}x | "
            f"{r['p50_ms']:.1f} | {r['p99_ms']:.1f} | {r['max_ms']:.1f} |"
        )
    return lines


async def main_async(seconds: float) -> dict[str, Any]:
    return {"redis": await redis_cases(seconds), "nats": await nats_cases(seconds)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    results = asyncio.run(main_async(args.seconds))
    print("\n".join(table("Redis PING", results["redis"])))
    print()
    print("\n".join(table("NATS request/reply", results["nats"])))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
