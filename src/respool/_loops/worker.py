"""One loop of a loop pool: its thread, its event loop, and its ``AsyncPool``.

Both faces of the loop pool (``AsyncLoopPool``, and ``LoopPool`` generated
from it) run the user's factory, releaser and ``fn`` on loops of their own,
so this part is async in both and written once: the generated face imports
it as it is.  The words of the loop pool's errors are here too.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar

import attrs

from .._async import AsyncPool
from .._errors import PoolClosed, PoolError
from .._reprs import show
from .._stats import PoolStats
from .._synchronization.loops import LoopHost, RemoteCall

T = TypeVar("T")
R = TypeVar("R")

log = logging.getLogger("respool")

# The callables of a loop pool: coroutine functions in both faces (they run on its loops).
LoopFactory = Callable[[], Awaitable[T]]
LoopReleaser = Callable[[T], Awaitable[object]]


@attrs.frozen
class LoopStats:
    """One loop of a loop pool at one moment (``loops.stats()``).

    Attributes:
        index: the loop's index, ``0`` to ``loop_count - 1`` (what ``pick=`` takes).
        in_flight: calls submitted to this loop and not over yet.
        calls: calls this loop has been given since the start.
        alive: whether the loop runs (``False`` before the start, after the
            shutdown, or once it died).
        pool: the :class:`~respool.PoolStats` of the loop's own pool.
    """

    index: int
    in_flight: int
    calls: int
    alive: bool
    pool: PoolStats


class Worker(Generic[T]):
    """Loop ``index`` of a loop pool: a ``LoopHost`` and the ``AsyncPool`` on it."""

    def __init__(
        self,
        index: int,
        owner: str,
        backend: str,
        factory: LoopFactory[T],
        releaser: LoopReleaser[T] | None,
        pool_size: int,
        options: dict[str, Any],
    ) -> None:
        self.index = index
        self.owner = owner
        self.pool: AsyncPool[T] = AsyncPool(factory, releaser, pool_size=pool_size, **options)
        name = f"respool-loop-{index}"
        self.host = LoopHost(backend, name, self._setup, self._teardown, self._died)
        self.host.when_ended(self._ended)

    async def _setup(self) -> None:
        """On the loop: open the pool there (its maintainer runs on this loop, so
        ``min_size``, ``idle_timeout`` and ``keepalive`` apply) and create its
        ``pool_size`` resources."""
        await self.pool.open()
        await self.pool.prefill()

    async def _teardown(self) -> None:
        """On the loop, as it ends: close the pool and its resources there."""
        await self.pool.dispose()

    def _died(self, error: BaseException | None) -> BaseException:
        if error is None:
            return PoolClosed(
                f"{self.owner} shut down while the call on loop {self.index} was pending or "
                "running: it was cancelled there (or never started)"
            )
        return PoolError(
            f"loop {self.index} of {self.owner} stopped unexpectedly ({error!r}): its calls "
            "failed, and the pool refuses new ones; close it and make a new one"
        )

    def _ended(self) -> None:
        size = self.pool.stats().size
        if self.host.error is None or size == 0:
            return  # ended in order, or died but closed its pool on the way out
        log.warning(
            "%s: loop %d died (%r); its pool could not be closed there, so its %d "
            "resource(s) were dropped without their releaser",
            self.owner, self.index, self.host.error, size,
        )  # fmt: skip

    def call(
        self, fn: Callable[..., Awaitable[Any]], args: tuple[Any, ...], notify: Callable[[], None]
    ) -> RemoteCall:
        """``await fn(resource, *args)`` on this loop, with a resource leased from its pool."""
        pool = self.pool

        async def body() -> Any:
            async with pool.lease() as resource:
                return await fn(resource, *args)

        return RemoteCall(body, notify)

    def stats(self) -> LoopStats:
        host = self.host
        alive = host.thread_id is not None and not host.ended and not host.dying
        return LoopStats(self.index, host.in_flight, host.submitted, alive, self.pool.stats())


# -- the loop pool's errors, worded once for both faces -----------------------------


def not_async(fn: object) -> TypeError:
    return TypeError(
        f"fn must be a coroutine function (async def), got {show(fn)}: it runs on the "
        "pool's event loops as `await fn(resource)`"
    )


def not_started(owner: str) -> PoolError:
    return PoolError(
        f"{owner} is not started: use it as `async with` / `with`, or call start() first"
    )


def closed(owner: str) -> PoolClosed:
    return PoolClosed(f"{owner} is closed: it runs no more calls")


def started_twice(owner: str) -> PoolError:
    return PoolError(f"{owner} was started already: a loop pool is started once")


def own_loop(owner: str, what: str, index: int) -> PoolError:
    return PoolError(
        f"{owner}.{what} was called from its own loop {index}: it would wait for itself "
        "and deadlock. Inside fn, use the resource you were given (or a task of your own "
        "on that loop); close the pool from outside its loops"
    )


def bad_pick(pick: object, count: int) -> Exception:
    if isinstance(pick, bool) or not isinstance(pick, int):
        return TypeError(f"pick must be a loop index (int) or None, got {show(pick)}")
    return IndexError(f"pick={pick} is out of range: this pool has loops 0 to {count - 1}")


def timed_out(owner: str, what: str, seconds: float, where: str) -> TimeoutError:
    return TimeoutError(
        f"{owner}.{what} did not finish within timeout={seconds}s; it was cancelled on "
        f"{where}, and the resources it held went back to their pools"
    )
