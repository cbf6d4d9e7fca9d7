# generated from src/respool/_async/shared.py by unasync_build.py: do not edit, edit the source
"""The shared pool: each resource serves several holders at once, least-loaded first.

It is :class:`~respool.Pool` with another state (``_state/shared.py``):
the same drivers create, check, close, wait, time out and maintain.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from .._checks import Fatal, check_count
from .._config import DEFAULT, Default
from .._state import PoolState
from .._state.shared import ResourceStats, SharedState
from .._state.steps import MADE, TimedOut
from .._synchronization import ki_protected
from .._types import Check, Factory, Releaser
from .pool import Pool

T = TypeVar("T")


@ki_protected  # threads: KeyboardInterrupt waits until the bookkeeping is done
class SharedPool(Pool[T]):
    """A pool whose resources each serve up to ``max_holders`` holders at once.

    For multiplexed resources: an HTTP/2 or gRPC channel, a NATS
    connection, a pipelined Redis connection, an AMQP connection.
    ``pool.lease()`` (or ``acquire``/``release``, once
    per acquire: holders are counted, not identities) hands the
    **least-loaded** live resource: fewest current holders, ties to the
    oldest, so load spreads.  If every live resource has ``max_holders``
    holders, a new one is created while fewer than ``pool_size`` exist;
    otherwise the caller waits, first come, first served, bounded by its
    timeout.  A seat freed by a holder, or a new resource, goes to the
    oldest waiters.

    A resource that is discarded (:meth:`discard`), fails ``check`` or
    ``is_closed``, passes ``pool_recycle`` or is surplus after
    :meth:`~respool.Pool.resize` is *retired*: it gets no new holder
    and is closed when its last holder leaves, then replaced (at once by
    the maintainer of an opened pool, else on the next demand).

    Every argument is :class:`~respool.Pool`'s, with the same checks, except:

    Args:
        max_holders: the most holders one resource serves at once (default 16).
        pool_size: the most resources alive at once (default 4).

    There is no ``reset`` (a shared resource never comes back from all its
    holders at one moment to be reset), no ``leak_timeout``, no ``lifo``, no
    ``burst_limit`` and no ``fairness_window`` (a freed seat always goes to
    the oldest waiters, strictly in order).  Timeouts behave as in
    :class:`~respool.Pool`: a caller who gives up or is interrupted while waiting
    leaves the holder counts exact, and a seat handed to it at that moment
    goes to the next waiter.

    Raises:
        TypeError, ValueError: as :class:`~respool.Pool`, and ``max_holders`` not
            an int >= 1.
    """

    _state: SharedState[T]

    def __init__(
        self,
        factory: Factory[T],
        releaser: Releaser[T] | None,
        *,
        pool_size: int = 4,
        max_holders: int = 16,
        pool_recycle: float | None = 3600,
        acquire_timeout: float | None = 30.0,
        check: Check[T] | None = None,
        check_interval: float = 0.5,
        cleanup_timeout: float | None = None,
        max_backoff: float = 2.0,
        is_closed: Callable[[T], object] | None = None,
        discard_on: type[BaseException] | tuple[type[BaseException], ...] = (),
        fatal: Fatal = None,
        create_timeout: float | Default | None = DEFAULT,
        min_size: int = 0,
        idle_timeout: float | None = None,
        keepalive: float | None = None,
        max_waiting: int | None = None,
    ) -> None:
        self._max_holders = check_count("max_holders", max_holders, 1)
        super().__init__(
            factory, releaser, pool_size=pool_size, pool_recycle=pool_recycle,
            acquire_timeout=acquire_timeout, check=check, check_interval=check_interval,
            cleanup_timeout=cleanup_timeout, max_backoff=max_backoff, is_closed=is_closed,
            discard_on=discard_on, fatal=fatal, create_timeout=create_timeout,
            min_size=min_size, idle_timeout=idle_timeout, keepalive=keepalive,
            max_waiting=max_waiting,
        )  # fmt: skip

    def _new_state(self, *args: Any, **kwargs: Any) -> PoolState[T]:
        return SharedState[T](*args, max_holders=self._max_holders, **kwargs)

    @property
    def max_holders(self) -> int:
        """The most holders one resource serves at once (never waits)."""
        return self._max_holders

    def reconnect(self, *, timeout: float | None = None) -> int:
        """Replace the retired (broken) resources still held, now; return how many are live.

        A retired resource keeps its slot until its last holder leaves, so
        replacements are made as free slots allow, one at a time, each
        serving the oldest waiters first.

        Args:
            timeout: seconds for the whole call; ``None`` means ``acquire_timeout``.

        Raises:
            PoolTimeout: the timeout passed (a failing factory is retried until then).
            PoolClosed: the pool was disposed.
        """
        self._check_loop()
        state = self._state
        deadline = self._deadline(timeout)
        want = min(state.live() + state.retired_held(), self._pool_size)
        while state.live() < want and state.reserve(want):
            step = self._creator.prefill_one(deadline)
            if isinstance(step, TimedOut):
                raise self._timeout_error(step, deadline)
            if step is not MADE:
                break
        return state.live()

    def resource_stats(self) -> list[ResourceStats]:
        """Each resource alive now, oldest first: its holders, age and whether retired.

        Never waits (it takes only the pool's short internal lock).
        """
        return self._state.resource_stats()
