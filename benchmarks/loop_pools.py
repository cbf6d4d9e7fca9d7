"""Loop-pool scaling: ops/s of ``AsyncLoopPool.run`` for loop_count 1, 2, 4, against
one event loop running the same work in many tasks.

    python benchmarks/loop_pools.py             # I/O (Redis) and CPU, 3 rounds
    python benchmarks/loop_pools.py --quick     # seconds: 1 round, few ops
    python benchmarks/loop_pools.py --no-io     # CPU only (no Redis needed)

Two kinds of ``fn``:

- **I/O**: one real round trip to the local Redis (``PING``, ``$RESPOOL_REDIS_URL``
  or 127.0.0.1:6379) over a raw TCP connection the pool holds; 8 connections in
  all (one loop: a pool of 8; ``k`` loops: ``8 // k`` each).
- **CPU**: pure Python arithmetic, about 0.2 ms per call, no I/O at all.

The caller is one asyncio loop with ``--callers`` tasks (64), each calling
``await loops.run(fn)`` (or, for the baseline, leasing from an ``AsyncPool`` on
its own loop and awaiting ``fn``) until ``--ops`` calls are done.  Rounds are
interleaved and the table shows the median of each; ratios are to the one-loop
baseline of the same run, so machines compare by ratio, not by absolute figure.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import sysconfig
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

import anyio
import anyio.abc

import respool

URL = urlsplit(os.environ.get("RESPOOL_REDIS_URL", "redis://127.0.0.1:6379/0"))
CONNECTIONS = 8
LOOP_COUNTS = (1, 2, 4)


# -- the work --------------------------------------------------------------------------


async def connect() -> anyio.abc.SocketStream:
    return await anyio.connect_tcp(URL.hostname or "127.0.0.1", URL.port or 6379)


async def disconnect(stream: anyio.abc.SocketStream) -> None:
    await stream.aclose()


async def ping(stream: anyio.abc.SocketStream) -> None:
    """I/O-bound: one round trip."""
    await stream.send(b"PING\r\n")
    reply = b""
    while not reply.endswith(b"\r\n"):
        reply += await stream.receive()
    assert reply == b"+PONG\r\n", reply


async def nothing() -> object:
    return object()


async def crunch(resource: object) -> int:
    """CPU-bound: pure Python, no await inside."""
    total = 0
    for i in range(4000):
        total += i * i % 7
    return total


# -- the two ways to run it ------------------------------------------------------------------


async def drive(call: Callable[[], Awaitable[Any]], ops: int, callers: int) -> float:
    """ops/s of ``callers`` tasks calling ``call`` until ``ops`` calls are done."""
    left = ops

    async def caller() -> None:
        nonlocal left
        while left > 0:
            left -= 1
            await call()

    start = time.perf_counter()
    async with anyio.create_task_group() as group:
        for _ in range(callers):
            group.start_soon(caller)
    return ops / (time.perf_counter() - start)


async def one_loop(kind: str, ops: int, callers: int) -> float:
    factory, releaser, fn = kinds(kind)
    async with respool.AsyncPool(factory, releaser, pool_size=CONNECTIONS) as pool:
        await pool.prefill()

        async def call() -> None:
            async with pool.lease() as resource:
                await fn(resource)

        return await drive(call, ops, callers)


async def loop_pool(kind: str, loop_count: int, ops: int, callers: int) -> float:
    factory, releaser, fn = kinds(kind)
    size = max(1, CONNECTIONS // loop_count)
    async with respool.AsyncLoopPool(factory, releaser, loop_count, size) as loops:
        return await drive(lambda: loops.run(fn), ops, callers)


def kinds(kind: str) -> tuple[Any, Any, Any]:
    if kind == "io":
        return connect, disconnect, ping
    return nothing, None, crunch


# -- the run ---------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--ops", type=int, default=None, help="calls per measurement (4000)")
    parser.add_argument("--callers", type=int, default=64)
    parser.add_argument("--quick", action="store_true", help="1 round, 200 ops by default")
    parser.add_argument("--no-io", action="store_true", help="CPU only: no Redis")
    args = parser.parse_args()
    if args.quick:
        args.rounds = 1
    if args.ops is None:
        args.ops = 200 if args.quick else 4000
    kinds_run = ["cpu"] if args.no_io else ["io", "cpu"]
    configs = ["one loop", *(f"loop_count={k}" for k in LOOP_COUNTS)]
    samples: dict[tuple[str, str], list[float]] = {(k, c): [] for k in kinds_run for c in configs}
    for _ in range(args.rounds):
        for kind in kinds_run:
            for config in configs:
                if config == "one loop":
                    rate = asyncio.run(one_loop(kind, args.ops, args.callers))
                else:
                    count = int(config.split("=")[1])
                    rate = asyncio.run(loop_pool(kind, count, args.ops, args.callers))
                samples[kind, config].append(rate)
    gil = "free-threaded" if sysconfig.get_config_var("Py_GIL_DISABLED") else "GIL"
    print(
        f"Python {sys.version.split()[0]} ({gil} build), {os.cpu_count()} CPUs, "
        f"{args.rounds} rounds x {args.ops} ops, {args.callers} callers; median ops/s "
        f"(ratio to one loop)\n"
    )
    header = "| | " + " | ".join(configs) + " |"
    print(header)
    print("| --- " * (len(configs) + 1) + "|")
    for kind in kinds_run:
        base = statistics.median(samples[kind, "one loop"])
        cells = []
        for config in configs:
            median = statistics.median(samples[kind, config])
            cells.append(f"{median:,.0f} ({median / base:.2f}x)")
        name = "I/O: Redis PING" if kind == "io" else "CPU: ~0.2 ms of Python"
        print(f"| {name} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
