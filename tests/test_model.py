"""A hypothesis state machine driving the threaded Pool against a simple model of it.

One thread, so nothing ever blocks: acquires use ``timeout=0`` (an idle
resource or ``PoolTimeout`` at once), or a real timeout only when the model
says a resource or a free slot is there.  The model knows which resource
each acquire must return (LIFO or FIFO), which are idle, leased, retired or
closed, and every counter; after every step ``stats()`` must equal it.

Hypothesis also picks the pool's shape (size, LIFO or FIFO, whether it has a
``check`` and a ``reset``) and injects faults: the factory failing (retried
with backoff inside the acquire), the releaser failing (logged, counted),
``check`` finding a resource broken, ``reset`` failing.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    initialize,
    invariant,
    multiple,
    precondition,
    rule,
)

from respool import Pool, PoolClosed, PoolError, PoolStats, PoolTimeout

from ._sync.resources import Resource
from .coarse import coarse
from .figures import figures

if sys.version_info < (3, 11):
    from exceptiongroup import ExceptionGroup

FIGURES = figures("model")


class Backend:
    """The pool's hooks, with faults the state machine switches on."""

    def __init__(self) -> None:
        self.made: list[Resource] = []  # resource number n is made[n - 1]
        self.factory_failures = 0  # the next this-many factory calls raise
        self.close_failures = 0  # the next this-many releaser calls raise (after closing)
        self.reset_failures = 0  # the next this-many reset calls raise
        self.broken: set[int] = set()  # numbers of resources `check` finds broken
        self.violations: list[str] = []

    def expect(self, condition: bool, problem: str) -> None:
        """Note a broken rule (an assert in a hook would be caught and logged by the pool)."""
        if not condition:
            self.violations.append(problem)

    def factory(self) -> Resource:
        if self.factory_failures:
            self.factory_failures -= 1
            raise ConnectionError("backend down")
        self.made.append(Resource(len(self.made) + 1))
        return self.made[-1]

    def releaser(self, resource: Resource) -> None:
        self.expect(not resource.closed, f"{resource} closed twice")
        resource.closed = True
        if self.close_failures:
            self.close_failures -= 1
            raise OSError(f"could not close {resource}")

    def check(self, resource: Resource) -> bool:
        self.expect(not resource.closed, f"{resource} checked after it was closed")
        return resource.number not in self.broken

    def reset(self, resource: Resource) -> bool:
        self.expect(not resource.closed, f"{resource} reset after it was closed")
        if self.reset_failures:
            self.reset_failures -= 1
            if resource.number % 2:
                return False  # closes it quietly
            raise ConnectionError(f"could not reset {resource}")
        return True


class PoolModel(RuleBasedStateMachine):
    """The pool on one side, a list-and-counter model of it on the other."""

    leased = Bundle("leased")

    def __init__(self) -> None:
        super().__init__()
        self.backend = Backend()
        self.pool: Pool[Resource] | None = None
        self.size = 1
        self.lifo = True
        self.checking = False
        self.resetting = False
        self.disposed = False
        self.idle: list[Resource] = []  # in the pool's order: LIFO pops the end, FIFO the front
        self.held: list[Resource] = []
        self.retired: set[int] = set()  # numbers of leased resources recycle(force=True) retired
        self.gone: list[Resource] = [Resource(0)]  # closed, or never ours: giving back fails
        self.made = 0  # resources the model expects the factory to have made
        self.steps = 0
        # faults the model expects still to come (the backend counts its own down)
        self.factory_failures = self.close_failures = self.reset_failures = 0
        self.counts = dict.fromkeys(
            [
                "created",
                "closed",
                "acquired",
                "timeouts",
                "create_errors",
                "close_errors",
                "broken",
            ],
            0,
        )
        FIGURES.add(state_machines=1)

    # -- setup --------------------------------------------------------------

    @initialize(
        size=st.integers(1, 4),
        lifo=st.booleans(),
        checking=st.booleans(),
        resetting=st.booleans(),
    )
    def make_pool(self, size: int, lifo: bool, checking: bool, resetting: bool) -> None:
        self.size, self.lifo, self.checking, self.resetting = size, lifo, checking, resetting
        self.pool = Pool(
            self.backend.factory,
            self.backend.releaser,
            pool_size=size,
            lifo=lifo,
            pool_recycle=None,
            check=self.backend.check if checking else None,
            check_interval=0,
            reset=self.backend.reset if resetting else None,
            max_backoff=0.01,  # factory retries stay quick
        )

    @property
    def p(self) -> Pool[Resource]:
        assert self.pool is not None
        return self.pool

    # -- what the model expects the pool to do ----------------------------------

    def _close(self, resource: Resource) -> None:
        """The pool hands ``resource`` to the releaser now."""
        self.counts["closed"] += 1
        if self.close_failures:
            self.close_failures -= 1
            self.counts["close_errors"] += 1
        self.gone.append(resource)

    def _create(self) -> int:
        """The factory is called until it works (the pool retries): the new resource's number."""
        self.counts["create_errors"] += self.factory_failures
        self.factory_failures = 0
        self.counts["created"] += 1
        self.made += 1
        return self.made

    def _take_idle(self) -> Resource:
        return self.idle.pop() if self.lifo else self.idle.pop(0)

    @property
    def alive(self) -> int:
        return len(self.idle) + len(self.held)

    def _step(self) -> None:
        self.steps += 1
        FIGURES.add(operations=1)

    # -- acquiring ----------------------------------------------------------------

    @rule(target=leased)
    def acquire_now(self) -> object:
        """timeout=0: an idle resource that needs no check, or PoolTimeout at once."""
        self._step()
        if self.disposed:
            with pytest.raises(PoolClosed):
                self.p.acquire(timeout=0)
            return multiple()
        if not self.idle or self.checking:
            # Nothing idle (and no time to create), or no time left to check it:
            # the resource is put back at the end of the queue (moving it under FIFO).
            if self.idle and not self.lifo:
                self.idle.append(self.idle.pop(0))
            with pytest.raises(PoolTimeout):
                self.p.acquire(timeout=0)
            self.counts["timeouts"] += 1
            return multiple()
        expected = self._take_idle()
        assert self.p.acquire(timeout=0) is expected
        self.counts["acquired"] += 1
        self.held.append(expected)
        return expected

    @precondition(lambda self: not self.disposed and (self.idle or self.alive < self.size))
    @rule(target=leased)
    def acquire_available(self) -> Resource:
        """A real timeout, when the model says an idle resource or a free slot is there."""
        self._step()
        expected = self._expect_acquire()
        resource = self.p.acquire(timeout=10)
        self._got(resource, expected)
        return resource

    def _expect_acquire(self) -> Resource | int:
        """The idle resource an acquire must return, or the number of the one it creates."""
        while self.idle:
            candidate = self._take_idle()
            if not self.checking or candidate.number not in self.backend.broken:
                return candidate
            self.counts["broken"] += 1  # the check fails: closed, and the search goes on
            self._close(candidate)
        return self._create()

    def _got(self, resource: Resource, expected: Resource | int) -> None:
        if isinstance(expected, int):
            assert resource.number == expected, (resource, expected)
        else:
            assert resource is expected, (resource, expected)
        self.counts["acquired"] += 1
        self.held.append(resource)

    @precondition(lambda self: not self.disposed and (self.idle or self.alive < self.size))
    @rule(how=st.sampled_from(["release", "discard"]))
    def lease(self, how: str) -> None:
        """``with pool.lease()``: released on exit, or discarded inside (nothing to release)."""
        self._step()
        expected = self._expect_acquire()
        with self.p.lease(timeout=10) as resource:
            self._got(resource, expected)
            if how == "discard":
                self.give_back(resource, "discard")
            else:
                self._expect_give_back(resource, "release")
        self._step()

    # -- giving back ----------------------------------------------------------------

    @rule(resource=consumes(leased), how=st.sampled_from(["release", "release", "discard"]))
    def give_back(self, resource: Resource, how: str) -> None:
        """Release (reset, then pool or close) or discard (close) a leased resource."""
        self._step()
        self._expect_give_back(resource, how)
        getattr(self.p, how)(resource)

    def _expect_give_back(self, resource: Resource, how: str) -> None:
        self.held.remove(resource)
        retired = resource.number in self.retired
        self.retired.discard(resource.number)
        if how == "discard":
            self.counts["broken"] += 1
            self._close(resource)
        elif self.resetting and self.reset_failures:
            self.reset_failures -= 1
            self.counts["broken"] += 1
            self._close(resource)
        elif self.disposed or retired:
            self._close(resource)
        else:
            self.idle.append(resource)

    @rule(data=st.data(), how=st.sampled_from(["release", "discard"]))
    def give_back_what_is_not_leased(self, data: st.DataObject, how: str) -> None:
        """Released twice (now idle or closed), or never ours: PoolError, nothing changes."""
        self._step()
        resource = data.draw(st.sampled_from([*self.idle, *self.gone]))
        before = self.settled()
        with pytest.raises(PoolError, match="does not lease"):
            getattr(self.p, how)(resource)
        assert self.p.stats() == before

    # -- housekeeping ----------------------------------------------------------------

    @rule(force=st.booleans())
    def recycle(self, force: bool) -> None:
        self._step()
        expected = 0
        if force:
            expected = len(self.idle)
            for resource in self.idle:
                self._close(resource)
            self.idle.clear()
            self.retired.update(r.number for r in self.held)
        assert self.p.recycle(force=force) == expected

    @rule(count=st.integers(0, 5))
    def prefill(self, count: int) -> None:
        self._step()
        if self.disposed:
            with pytest.raises(PoolClosed):
                self.p.prefill(count)
            return
        target = min(count, self.size)
        expected = max(0, min(target - len(self.idle), self.size - self.alive))
        numbers = [self._create() for _ in range(expected)]
        assert self.p.prefill(count) == expected
        self.idle += [self.backend.made[n - 1] for n in numbers]  # placed in the order made

    @precondition(lambda self: self.steps >= 12)  # disposing early would end the interesting part
    @rule()
    def dispose(self) -> None:
        self._step()
        if self.disposed:
            self.p.dispose()  # idempotent
            return
        failures = min(self.close_failures, len(self.idle))
        for resource in self.idle:
            self._close(resource)
        self.idle.clear()
        self.disposed = True
        if failures:
            with pytest.raises(ExceptionGroup) as info:
                self.p.dispose(raise_errors=True)
            assert len(info.value.exceptions) == failures
        else:
            self.p.dispose(raise_errors=True)

    # -- faults ----------------------------------------------------------------

    @rule(hook=st.sampled_from(["factory", "releaser", "reset"]))
    def fails_once(self, hook: str) -> None:
        """The hook's next call raises (a reset fault only matters with a reset)."""
        name = f"{hook}_failures" if hook != "releaser" else "close_failures"
        setattr(self.backend, name, getattr(self.backend, name) + 1)
        setattr(self, name, getattr(self, name) + 1)
        FIGURES.add(faults_injected=1)

    @precondition(lambda self: self.checking and self.idle)
    @rule(data=st.data())
    def an_idle_resource_breaks(self, data: st.DataObject) -> None:
        resource = data.draw(st.sampled_from(self.idle))
        self.backend.broken.add(resource.number)
        FIGURES.add(faults_injected=1)

    # -- what must hold after every step ---------------------------------------------

    def settled(self) -> PoolStats:
        """The pool's stats once its background work is done (a close met on the acquire
        path runs in a helper thread): bounded, never a sleep on the model's side."""
        deadline = time.monotonic() + 5
        while True:
            stats = self.p.stats()
            busy = stats.creating or stats.size != stats.idle + stats.leased
            if not busy or time.monotonic() > deadline:
                return stats
            time.sleep(0.001)

    @invariant()
    def stats_match_the_model(self) -> None:
        if self.pool is None:
            return
        expected = PoolStats(
            pool_size=self.size,
            size=self.alive,
            idle=len(self.idle),
            leased=len(self.held),
            creating=0,
            waiting=0,
            lost=0,
            **self.counts,
        )
        assert self.backend.violations == []
        assert coarse(self.settled()) == expected
        assert self.p.closed == self.disposed
        assert all(not r.closed for r in [*self.idle, *self.held])
        assert all(r.closed for r in self.gone[1:])
        FIGURES.add(invariant_checks=1)

    def teardown(self) -> None:
        if self.pool is not None:
            for resource in self.held:
                self.p.release(resource)
            self.backend.close_failures = 0
            self.p.dispose()
            assert self.settled().size == 0


@pytest.fixture(autouse=True)
def quiet_pool_logs() -> Iterator[None]:
    """Broken checks and failed closes are logged on purpose: keep them out of the report."""
    logger = logging.getLogger("respool")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(level)


PoolModel.TestCase.settings = settings(
    max_examples=200,
    stateful_step_count=50,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
test_pool_matches_its_model = PoolModel.TestCase
