"""The demo's settings, and what one pool and its workers did (``Lane``)."""

from __future__ import annotations

import sqlite3
import threading
import time
from dataclasses import dataclass, field

from .. import AsyncPool, Pool, PoolStats

ACQUIRE_TIMEOUT = 0.05  # seconds a worker waits for a connection before giving up
HOLD = (0.0005, 0.003)  # seconds a connection is held after its SQL, uniform
SLOW_QUERY = 0.03  # chance that a unit of work is a slow query...
SLOW_HOLD = (0.05, 0.15)  # ...holding its connection this long
DISCARD = 0.005  # chance that a holder discards its connection as broken
KILL = 0.005  # chance that a holder closes its connection behind the pool's back
INSERT = 0.7  # chance that a unit of work writes a row (else it reads)
BACKOFF = 0.005  # seconds a worker pauses after a PoolTimeout
GRACE = 30.0  # seconds past the deadline a lane may take to finish

Connection = sqlite3.Connection


@dataclass(frozen=True)
class LaneSpec:
    """One pool and its workers."""

    name: str
    backend: str  # "threads", "asyncio" or "trio"
    workers: int
    pool_size: int


LANES = (
    LaneSpec("threads", "threads", workers=10, pool_size=4),
    LaneSpec("asyncio", "asyncio", workers=16, pool_size=4),
    LaneSpec("trio", "trio", workers=16, pool_size=4),
)


@dataclass
class Lane:
    """What one pool's workers did, counted by the demo itself (not by the pool)."""

    spec: LaneSpec
    pool: Pool[Connection] | AsyncPool[Connection] | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)
    acquired: int = 0
    timeouts: int = 0
    inserts: int = 0  # committed
    reads: int = 0
    discards: int = 0  # discard() calls: planned, or a dead connection handed over
    kills: int = 0  # connections closed behind the pool's back
    check_failures: int = 0  # the pool's check found a dead connection (raised)
    peak_in_use: int = 0  # most of size + creating seen while sampling
    started: float = 0.0
    finished: float = 0.0
    errors: list[BaseException] = field(default_factory=list)
    open_stats: PoolStats | None = None  # just before dispose()
    final_stats: PoolStats | None = None  # after dispose()
    rows: int = 0  # rows of this lane in the database at the end
    skipped: str = ""  # why the lane did not run

    def record_acquire(self, *, timed_out: bool) -> None:
        with self.lock:
            if timed_out:
                self.timeouts += 1
            else:
                self.acquired += 1

    def count(self, what: str) -> None:
        with self.lock:
            setattr(self, what, getattr(self, what) + 1)

    def stats(self) -> PoolStats | None:
        """The pool's stats now (also sampling its peak), or its last snapshot."""
        pool = self.pool
        if pool is None:
            return None
        stats = pool.stats()
        with self.lock:
            self.peak_in_use = max(self.peak_in_use, stats.size + stats.creating)
        return stats

    def wait_percentiles(self) -> tuple[float, float, float] | None:
        """p50, p99 and max of the acquires' waits, in seconds: the pool's own histogram.

        The pool's, while it runs (made with ``metrics=True``); then its last stats'.
        """
        stats = self.final_stats if self.pool is None or self.final_stats else self.stats()
        wait = None if stats is None else stats.wait
        if wait is None or not wait.count:
            return None
        return wait.p50, wait.p99, wait.max

    def seconds(self) -> float:
        end = self.finished or time.monotonic()
        return max(end - self.started, 1e-9) if self.started else 0.0
