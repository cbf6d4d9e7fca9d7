"""A recording factory and releaser with injectable faults, for the pool tests."""

from __future__ import annotations

import itertools
from typing import Any

from respool import AsyncPool

from ..concurrency import async_sleep


class Resource:
    """A stand-in for a connection: knows whether it is closed and who holds it."""

    def __init__(self, number: int) -> None:
        self.number = number
        self.closed = False
        self.holders = 0

    def __repr__(self) -> str:
        return f"Resource({self.number})"


class AsyncResources:
    """Makes and closes ``Resource`` objects, recording everything.

    ``delay`` slows the factory down; ``failures`` makes the next calls raise
    ``ConnectionError``; ``close_fails`` makes the releaser raise after
    closing.  ``peak`` is the most resources alive at once.
    """

    def __init__(self, *, delay: float = 0.0, failures: int = 0, close_fails: bool = False) -> None:
        self.delay = delay
        self.failures = failures
        self.close_fails = close_fails
        self.created: list[Resource] = []
        self.closed: list[Resource] = []
        self.peak = 0
        self._numbers = itertools.count()

    @property
    def alive(self) -> int:
        return len(self.created) - len(self.closed)

    async def factory(self) -> Resource:
        if self.delay:
            await async_sleep(self.delay)
        if self.failures > 0:
            self.failures -= 1
            raise ConnectionError("backend down")
        resource = Resource(next(self._numbers))
        self.created.append(resource)
        self.peak = max(self.peak, self.alive)
        return resource

    async def releaser(self, resource: Resource) -> None:
        assert not resource.closed, f"{resource} closed twice"
        assert resource.holders == 0, f"{resource} closed while held"
        resource.closed = True
        self.closed.append(resource)
        if self.close_fails:
            raise OSError(f"could not close {resource}")

    def pool(self, **kwargs: Any) -> AsyncPool[Resource]:
        return AsyncPool(self.factory, self.releaser, **kwargs)

    def assert_settled(self, pool: AsyncPool[Resource], bound: int | None = None) -> None:
        """Nothing in flight, nothing lost: every count agrees with the record.

        ``bound``: the most ever alive at once (default ``pool_size``; more
        with bursts, or a pool resized).
        """
        stats = pool.stats()
        assert stats.leased == 0, stats
        assert stats.waiting == 0, stats
        assert stats.creating == 0, stats
        assert stats.created == len(self.created), stats
        assert stats.closed == len(self.closed), stats
        assert stats.size == self.alive == stats.idle, stats
        assert stats.size <= stats.pool_size, stats
        bound = stats.pool_size if bound is None else bound
        assert self.peak <= bound, f"peak {self.peak} > {bound}"
        assert all(r.holders == 0 for r in self.created)
        assert len({id(r) for r in self.closed}) == len(self.closed)


async def hold(pool: AsyncPool[Resource], seconds: float, timeout: float | None = None) -> Resource:
    """Lease a resource for ``seconds``, asserting nobody else holds it meanwhile."""
    async with pool.lease(timeout) as resource:
        resource.holders += 1
        try:
            assert resource.holders == 1, f"{resource} held by two callers"
            assert not resource.closed, f"{resource} handed out after it was closed"
            await async_sleep(seconds)
        finally:
            resource.holders -= 1
    return resource
