"""A seeded random stress test of the threaded Pool, with faulty hooks and an invariant checker.

16 threads share a pool of 4 and pick, from a seeded random sequence, among
acquire/release, acquire/discard, lease, a timed-out acquire, recycle (forced
or not), prefill and stats, with tiny timeouts.  The factory, releaser, check
and reset each fail on some calls and run slow on others: slow enough to
outlast an acquire's timeout or ``cleanup_timeout``, so the pool leaves calls
behind in their helper threads and adopts what they return.  A checker thread
watches the pool's counts the whole time.  The run is repeated with
``sys.setswitchinterval(1e-6)``, switching threads as often as CPython
allows, to shake out races.

Asserted throughout: no resource is held by two threads, or checked, reset
or closed while held, or handed out after it was closed; at most
``pool_size`` resources are alive; the pool's gauges stay within bounds.
Asserted at the end: created - closed == alive == stats().size, nothing
closed twice, nothing leased, created or waited for, and the pool still
serves.

The run is repeated on an *opened* pool (issue 11): its maintainer thread
keeps ``min_size``, runs the faulty check as a ``keepalive`` on idle
resources, the pool bursts up to ``burst_limit`` and workers resize it; the
bound on what is alive is then ``burst_limit``, and after ``dispose`` every
resource made was closed exactly once.
"""

from __future__ import annotations

import random
import sys
import threading
import time
from collections.abc import Iterator

import pytest

from respool import Pool, PoolTimeout

from ._sync.resources import Resource
from .concurrency import Nursery, wait_until
from .figures import Figures, figures

FIGURES = figures("stress_threads")

THREADS = 16
OPERATIONS = 300  # per thread
BURST_LIMIT = 6  # the opened pool's
POOL_SIZE = 4
FAULT_RATE = 0.08  # chance that a hook call fails; the same chance that it runs slow
SLOW = 0.004  # seconds a slow hook takes: past the 0.001 s timeouts and cleanup_timeout
CLEANUP_TIMEOUT = 0.002


class FaultyHooks:
    """Thread-safe hooks that fail or stall at random, recording every call."""

    def __init__(self, seed: int) -> None:
        self.lock = threading.Lock()
        self.rng = random.Random(seed)
        self.faults_on = True
        self.created: list[Resource] = []
        self.closed: list[Resource] = []  # given to the releaser (counted on entry)
        self.in_flight = 0  # hook calls under way (some left behind by the pool)
        self.faults = 0
        self.peak = 0
        self.next_number = 0
        self.violations: list[str] = []

    def expect(self, condition: bool, problem: str) -> None:
        """Note a broken rule (an assert in a hook would be caught and logged by the pool)."""
        if not condition:
            self.violations.append(problem)

    def _enter(self, resource: Resource | None, what: str) -> str:
        """Count a hook call in; check the resource is not held; pick its fate.

        The fate is "ok", or (each with chance FAULT_RATE/2 or more) "fails",
        "slow" or "slow, then fails".
        """
        with self.lock:
            self.in_flight += 1
            if resource is not None:
                self.expect(resource.holders == 0, f"{resource} {what} while held")
                if what != "closed":
                    self.expect(not resource.closed, f"{resource} {what} after it was closed")
            if not self.faults_on:
                return "ok"
            roll = self.rng.random()
            if roll >= 2 * FAULT_RATE:
                return "ok"
            self.faults += 1
            if roll < FAULT_RATE:
                return "fails"
            return "slow, then fails" if roll < 1.5 * FAULT_RATE else "slow"

    def _leave(self) -> None:
        with self.lock:
            self.in_flight -= 1

    def factory(self) -> Resource:
        fate = self._enter(None, "made")
        try:
            if fate.startswith("slow"):
                time.sleep(SLOW)
            if fate.endswith("fails"):
                raise ConnectionError("factory failed")
            with self.lock:
                resource = Resource(self.next_number)
                self.next_number += 1
                self.created.append(resource)
                alive = len(self.created) - len(self.closed)
                self.peak = max(self.peak, alive)
            return resource
        finally:
            self._leave()

    def releaser(self, resource: Resource) -> None:
        fate = self._enter(resource, "closed")
        try:
            with self.lock:
                self.expect(not resource.closed, f"{resource} closed twice")
                resource.closed = True
                self.closed.append(resource)
            if fate.startswith("slow"):
                time.sleep(SLOW)
            if fate.endswith("fails"):
                raise OSError(f"could not close {resource}")
        finally:
            self._leave()

    def check(self, resource: Resource) -> bool:
        fate = self._enter(resource, "checked")
        try:
            if fate.startswith("slow"):
                time.sleep(SLOW)
            if fate.endswith("fails"):
                if resource.number % 2:
                    raise ConnectionError(f"{resource} is broken")
                return False  # also means broken
            return True
        finally:
            self._leave()

    def reset(self, resource: Resource) -> None:
        fate = self._enter(resource, "reset")
        try:
            if fate.startswith("slow"):
                time.sleep(SLOW)
            if fate.endswith("fails"):
                raise ConnectionError(f"could not reset {resource}")
        finally:
            self._leave()


class Holding:
    """Which resources threads hold right now; each may be held by one thread only."""

    def __init__(self) -> None:
        self.lock = threading.Lock()

    def take(self, resource: Resource) -> None:
        with self.lock:
            assert resource.holders == 0, f"{resource} held by two threads"
            assert not resource.closed, f"{resource} handed out after it was closed"
            resource.holders = 1

    def give(self, resource: Resource) -> None:
        with self.lock:
            assert resource.holders == 1
            resource.holders = 0


@pytest.fixture
def switch_interval(request: pytest.FixtureRequest) -> Iterator[float]:
    """The parametrized thread switch interval, restored afterwards."""
    before = sys.getswitchinterval()
    sys.setswitchinterval(request.param)
    try:
        yield request.param
    finally:
        sys.setswitchinterval(before)


@pytest.mark.parametrize(
    "switch_interval", [sys.getswitchinterval(), 1e-6], indirect=True, ids=["default", "1us"]
)
def test_random_mix_of_everything_under_faults_keeps_every_invariant(
    switch_interval: float,
) -> None:
    with FIGURES.timed():
        run_stress(seed=2024 if switch_interval > 1e-6 else 4202, record=FIGURES)


def test_the_mix_on_an_opened_pool_with_bursts_and_resizes_keeps_every_invariant() -> None:
    with FIGURES.timed():
        run_stress(seed=1111, record=FIGURES, opened=True)


def run_stress(seed: int, record: Figures, opened: bool = False) -> None:
    hooks = FaultyHooks(seed)
    bound = BURST_LIMIT if opened else POOL_SIZE
    options = {"min_size": 1, "burst_limit": BURST_LIMIT, "keepalive": 0.005} if opened else {}
    pool = Pool(
        hooks.factory,
        hooks.releaser,
        pool_size=POOL_SIZE,
        pool_recycle=0.02,  # resources expire all the time
        check=hooks.check,
        check_interval=0,
        reset=hooks.reset,
        cleanup_timeout=CLEANUP_TIMEOUT,
        max_backoff=0.01,
        leak_timeout=0.05,
        **options,  # type: ignore[arg-type]
    )
    holding = Holding()
    done = threading.Event()
    counts = {"operations": 0, "served": 0, "timeouts": 0, "checks_of_stats": 0}
    counts_lock = threading.Lock()

    def count(**more: int) -> None:
        with counts_lock:
            for key, n in more.items():
                counts[key] += n

    def checker() -> None:
        while not done.is_set():
            stats = pool.stats()
            assert stats.size + stats.creating <= bound, stats
            assert stats.idle + stats.leased <= stats.size, stats
            assert min(stats.idle, stats.leased, stats.creating, stats.waiting) >= 0, stats
            with hooks.lock:
                assert hooks.peak <= bound, hooks.peak
            count(checks_of_stats=1)
            time.sleep(0.0005)

    def use(resource: Resource, local: random.Random) -> None:
        holding.take(resource)
        if local.random() < 0.3:
            time.sleep(0.0005)
        holding.give(resource)

    def worker(seed: int) -> None:
        local = random.Random(seed)
        for _ in range(OPERATIONS):
            action = local.random()
            timeout = local.choice([0, 0.001, 0.01, 1])
            count(operations=1)
            try:
                if action < 0.35:
                    resource = pool.acquire(timeout)
                    count(served=1)
                    use(resource, local)
                    pool.release(resource)
                elif action < 0.45:
                    resource = pool.acquire(timeout)
                    count(served=1)
                    use(resource, local)
                    pool.discard(resource)
                elif action < 0.75:
                    with pool.lease(timeout) as resource:
                        count(served=1)
                        use(resource, local)
                elif action < 0.8:
                    pool.recycle(force=local.random() < 0.5)
                elif action < 0.9:
                    pool.prefill(local.randrange(POOL_SIZE + 1), timeout=timeout)
                elif opened and action < 0.95:
                    pool.resize(local.choice((2, 3, 4, 5)))
                else:
                    stats = pool.stats()
                    assert stats.size <= bound
            except PoolTimeout:
                count(timeouts=1)

    rng = random.Random(seed)
    if opened:
        pool.open()
    with Nursery() as nursery:
        nursery.start_soon(checker)
        try:
            with Nursery() as workers:
                for _ in range(THREADS):
                    workers.start_soon(worker, rng.randrange(1 << 30))
        finally:
            done.set()
    if opened:
        return check_opened_run(pool, hooks, holding, counts, record)

    # calls the pool left behind in helper threads finish and are adopted (a
    # check or reset left behind closes its resource when it ends: in_flight
    # drops to 0 between the two, but the resource is still leased or closing)
    def settled() -> bool:
        stats = pool.stats()
        with hooks.lock:
            busy = hooks.in_flight or stats.creating or stats.leased
            return not busy and stats.size == stats.idle

    wait_until(settled, timeout=30)
    stats = pool.stats()
    alive = len(hooks.created) - len(hooks.closed)
    assert hooks.violations == []
    assert stats.waiting == 0, stats
    assert stats.created == len(hooks.created), stats
    assert stats.closed == len(hooks.closed), stats
    assert stats.size == alive == stats.idle, (stats, alive)
    assert len({id(r) for r in hooks.closed}) == len(hooks.closed)
    assert hooks.peak <= POOL_SIZE
    assert all(r.holders == 0 for r in hooks.created)
    assert counts["served"] > THREADS  # the mix did real work
    leaks = abs(alive - stats.size) + stats.leased + stats.creating

    hooks.faults_on = False
    with pool.lease(timeout=10) as resource:
        holding.take(resource)
        holding.give(resource)
    pool.dispose()
    stats = pool.stats()
    assert hooks.violations == []
    assert stats.size == 0 and len(hooks.closed) == len(hooks.created), stats
    record.add(
        runs=1,
        worker_threads=THREADS,
        operations=counts["operations"],
        served=counts["served"],
        timeouts=counts["timeouts"],
        faults_injected=hooks.faults,
        resources_created=len(hooks.created),
        invariant_checks=counts["checks_of_stats"],
        leaks_found=leaks,
    )


def check_opened_run(
    pool: Pool[Resource],
    hooks: FaultyHooks,
    holding: Holding,
    counts: dict[str, int],
    record: Figures,
) -> None:
    """An opened pool's run: it still serves; after dispose, all made were closed once."""
    hooks.faults_on = False
    with pool.lease(timeout=10) as resource:
        holding.take(resource)
        holding.give(resource)
    pool.dispose()
    maintainer = [t for t in threading.enumerate() if t.name == "respool-maintainer"]
    assert maintainer == [], "dispose() joined the maintainer thread"

    def settled() -> bool:
        with hooks.lock:
            return not hooks.in_flight and len(hooks.closed) == len(hooks.created)

    wait_until(settled, timeout=30)  # calls left behind in helper threads end, and close
    stats = pool.stats()
    assert hooks.violations == []
    assert stats.size == stats.leased == stats.creating == stats.waiting == 0, stats
    assert stats.closed == stats.created == len(hooks.created), stats
    assert len({id(r) for r in hooks.closed}) == len(hooks.closed)
    assert hooks.peak <= BURST_LIMIT
    assert counts["served"] > THREADS
    record.add(
        runs=1,
        worker_threads=THREADS,
        operations=counts["operations"],
        served=counts["served"],
        timeouts=counts["timeouts"],
        faults_injected=hooks.faults,
        resources_created=len(hooks.created),
        invariant_checks=counts["checks_of_stats"],
    )
