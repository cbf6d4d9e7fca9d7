# generated from src/respool/_async/lifecycle.py by unasync_build.py: do not edit, edit the source
"""A pool's lifecycle: opening it with its maintainer, sizing it at runtime, disposing it.

The public methods here are the pool's own (this is its base class, so
``pool.py`` keeps the hot path on one screen).  A pool never opened does
nothing unless a caller asks; an opened one has a maintainer
(``maintenance.py``) keeping it in shape until it is disposed.
"""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from .._checks import check_count, check_seconds
from .._config import DEFAULT, Default, sizes_of
from .._deadline import Deadline
from .._errors import PoolClosed, PoolTimeout, closed_message
from .._state import PoolState
from .._state.steps import MADE, TimedOut
from .._synchronization import (
    TASK_STATUS_IGNORED,
    MaintainerTask,
    TaskStatus,
    ki_protected,
)
from .binding import Binding
from .closing import Closer
from .creating import Creator
from .maintenance import Maintainer

if TYPE_CHECKING:
    from typing_extensions import Self

T = TypeVar("T")

OPENING = "opening: before min_size resources were created"


@ki_protected  # threads: KeyboardInterrupt waits until the bookkeeping is done
class Lifecycle(Generic[T]):
    """Opening, sizing and disposing; the pool's base class (see the module docstring)."""

    _state: PoolState[T]
    _binding: Binding
    _closer: Closer[T]
    _creator: Creator[T]
    _maintainer: Maintainer[T]
    _task: MaintainerTask
    _check_loop: Callable[[], None]
    _timeout_error: Callable[[TimedOut, Deadline], PoolTimeout]
    _pool_size: int
    _acquire_timeout: float | None

    def open(self, wait: bool = False, timeout: float | None = None) -> None:
        """Start the pool's maintainer in the background, until the pool is disposed.

        The maintainer keeps ``min_size`` resources alive, closes those idle
        past ``idle_timeout``, checks idle ones every ``keepalive`` seconds,
        replaces expired ones, and logs leases held past ``leak_timeout``
        while they are held, in one daemon thread of the pool's.  For a
        maintainer owned by a block, use ``with pool:``.

        Args:
            wait: return once ``min_size`` resources exist.
            timeout: bound on that wait; ``None`` means ``acquire_timeout``.

        Raises:
            PoolTimeout: ``wait`` and the timeout passed; the message carries
                the last factory error.  The pool stays open, its maintainer
                still creating.
            PoolError: the pool is open already (or
                :meth:`~respool.Pool.maintain` runs).
            PoolClosed: the pool was disposed.
        """
        self._check_loop()
        self._state.start_maintaining()
        self._task.background(self._maintainer.loop, self._binding.guard)
        if wait:
            self._filled(self._deadline(timeout))

    def maintain(
        self, *, task_status: TaskStatus[None] = TASK_STATUS_IGNORED
    ) -> None:
        """Run the pool's maintainer here until the pool is disposed.

        What it does: see :meth:`~respool.Pool.open`.

        For a thread of your own: ``Thread(target=pool.maintain).start()``.
        ``task_status`` is for ``open()``'s own use.

        Raises:
            PoolError: a maintainer runs already (the pool was opened).
            PoolClosed: the pool was disposed.
        """
        self._check_loop()
        self._maintainer.run(task_status)

    def resize(
        self,
        pool_size: int,
        min_size: int | None = None,
        *,
        burst_limit: int | Default | None = DEFAULT,
    ) -> None:
        """Change the pool's sizes at runtime; validated like the constructor's.

        Growing serves waiters at once: each newly allowed slot goes to the
        oldest one.  Shrinking closes idle surplus now and leased surplus
        when it comes back, so no more than the new size are alive once the
        surplus is back.  ``min_size`` defaults to the current one, capped at
        ``pool_size``; ``burst_limit`` to the current one (``None``: no burst).
        Raises:
            ValueError, TypeError: a size out of range (``min_size <=
                pool_size <= burst_limit``) or not an int; nothing changes.
            PoolClosed: the pool was disposed.
        """
        self._check_loop()
        state = self._state
        least = min(state.min_size, check_count("pool_size", pool_size, 1))
        if min_size is not None:
            least = min_size
        if isinstance(burst_limit, Default):
            burst_limit = None if state.cap == state.limit else state.cap
        size, least, burst = sizes_of(pool_size, least, burst_limit)
        surplus = state.resize(size, least, size if burst is None else burst)
        self._pool_size = size
        self._closer.close_all(surplus, log=True)

    def retain(self, predicate: Callable[[T], object]) -> int:
        """Close every idle resource for which ``predicate(resource)`` is false; return how many.

        Leased resources are untouched.  ``predicate`` runs on each idle
        resource in turn, outside the pool's lock; if it raises, nothing is
        closed and the error propagates.
        """
        self._check_loop()
        state = self._state
        doomed = [entry for entry in state.idle_entries() if not predicate(entry.held())]
        taken = state.take_idle(doomed)
        self._closer.close_all(taken, log=True)
        return len(taken)

    def prefill(self, count: int | None = None, *, timeout: float | None = None) -> int:
        """Create resources until ``count`` are idle; return how many were made.

        ``count`` defaults to, and is capped at, ``pool_size``; ``0`` does
        nothing.  Resources are created one at a time; each goes to the
        oldest waiter first, if any.  Stops early once all ``pool_size``
        slots are taken.

        Args:
            timeout: seconds for the whole call; ``None`` means the pool's
                ``acquire_timeout``.

        Raises:
            PoolTimeout: the timeout passed (a failing factory is retried
                until then, as in :meth:`~respool.Pool.acquire`); resources
                made so far stay.
            PoolClosed: the pool was disposed.

        Resources made so far stay when it fails or times out.
        """
        target = self._pool_size
        if count is not None:
            target = min(check_count("count", count, 0), target)
        self._check_loop()
        deadline = self._deadline(timeout)
        made = 0
        while self._state.reserve(target):
            step = self._creator.prefill_one(deadline)
            if isinstance(step, TimedOut):
                raise self._timeout_error(step, deadline)
            if step is MADE:
                made += 1
        return made

    def recycle(self, force: bool = False) -> int:
        """Close idle resources past ``pool_recycle`` now; return how many.

        With ``force=True`` every idle resource is closed and every leased
        one is retired: it is closed when it comes back instead of being
        pooled.  Resources whose creation is under way are retired too.

        Releaser errors are logged on the ``respool`` logger and counted.
        """
        self._check_loop()
        stale = self._state.take_stale(force)
        self._closer.close_all(stale, log=True)
        return len(stale)

    def dispose(self, *, raise_errors: bool = False) -> None:
        """Close the pool; idempotent.

        Idle resources are closed now; every waiter and every later
        ``acquire`` gets :class:`PoolClosed`; a resource leased before is
        closed when it is released (without error).

        An opened pool's maintainer stops: its background work ends with
        the pool (a factory call under way is stopped, or its resource
        closed when it returns).

        Every idle resource is tried.  A releaser error is counted and logged
        on the ``respool`` logger (a WARNING naming the resource, with the
        error's traceback: one record per error), and ``dispose`` returns.

        Args:
            raise_errors: raise the releaser errors instead (none is logged).

        Raises:
            ExceptionGroup: with ``raise_errors=True``, the releaser errors,
                raised together after every idle resource was tried.
        """
        gone = self._binding.check_or_rebind()
        closed = self._state.close(gone)
        if closed is not None:  # else disposed already
            try:
                self._closer.dispose(*closed, gone=gone, raise_errors=raise_errors)
            finally:  # the maintainer, told by close(), ends by itself; this waits for it
                self._task.stop()

    def __enter__(self) -> Self:
        """``with pool:`` opens the pool, its maintainer thread owned by the block; returns it.

        Leaving the block stops the maintainer, then disposes the pool.

        Raises:
            PoolClosed: the pool was disposed.
            PoolError: the pool is open already.
        """
        if self._state.closed:
            raise PoolClosed(closed_message(type(self).__name__))
        self._check_loop()
        self._state.start_maintaining()  # PoolError if open already, before any task group
        try:
            self._task.enter(self._maintainer.started)
        except BaseException:
            self._state.stop_maintaining(ended=True)
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Stop the maintainer, then dispose the pool (see ``dispose``)."""
        try:
            self._state.stop_maintaining(ended=False)
            self._task.leave()
        finally:
            self.dispose()

    def _deadline(self, timeout: float | None) -> Deadline:
        seconds = self._acquire_timeout if timeout is None else check_seconds("timeout", timeout)
        return Deadline(seconds, self._state.clock())  # a hair after the claim: never early

    def _filled(self, deadline: Deadline) -> None:
        """Wait until ``min_size`` resources exist, or the deadline."""
        state = self._state
        while True:
            event: Any = state.new_event()
            if state.filled(event):
                return
            try:
                woken = event.wait(deadline.at)
            except BaseException:
                state.unfill(event)
                raise
            if not woken:
                state.unfill(event)
                if not state.filled(None):
                    raise self._timeout_error(TimedOut(state.timeout_facts(), OPENING), deadline)
                return
