"""What a deadline costs ``Pool`` when every acquire runs a check (issue 9, item 5).

    python benchmarks/helper_threads.py [--seconds 2] [--rounds 3] [--pool-size 10]

With a deadline (the default ``acquire_timeout=30``), ``Pool`` runs ``check``
in a helper thread so the caller can give up on it; without one
(``acquire_timeout=None``) the check runs inline.  One thread leases in a
loop with ``check=lambda r: True, check_interval=0`` (a check on every
acquire) both ways; the best of a few rounds of leases/s is printed for
each, with the ratio.  No peer, no harness: just this one cost.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

import respool


class Resource:
    """A stand-in resource (weak-referenceable, like a connection object)."""


def leases_per_second(acquire_timeout: float | None, seconds: float, pool_size: int) -> float:
    pool: respool.Pool[Resource] = respool.Pool(
        Resource,
        None,
        pool_size=pool_size,
        acquire_timeout=acquire_timeout,
        check=lambda resource: True,
        check_interval=0,
    )
    try:
        pool.prefill()
        for _ in range(200):  # warm up: helper threads started, caches hot
            with pool.lease():
                pass
        ops = 0
        start = time.perf_counter()
        deadline = start + seconds
        while True:
            for _ in range(100):
                with pool.lease():
                    pass
            ops += 100
            now = time.perf_counter()
            if now >= deadline:
                return ops / (now - start)
    finally:
        pool.dispose()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="per round (default 2)")
    parser.add_argument("--rounds", type=int, default=3, help="best of (default 3)")
    parser.add_argument("--pool-size", type=int, default=10)
    args = parser.parse_args()
    timed = untimed = 0.0
    for _ in range(args.rounds):
        timed = max(timed, leases_per_second(30.0, args.seconds, args.pool_size))
        untimed = max(untimed, leases_per_second(None, args.seconds, args.pool_size))
    print(f"python {sys.version.split()[0]}, respool {respool.__version__}, 1 thread")
    print(f"check on every acquire, acquire_timeout=30:   {timed:10,.0f} leases/s")
    print(f"check on every acquire, acquire_timeout=None: {untimed:10,.0f} leases/s")
    print(f"ratio (timed / untimed): {timed / untimed:.3f}")
    print(f"threads alive at the end: {threading.active_count()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
