"""The pool itself.

This file is the source of truth for both faces: ``unasync_build.py``
generates ``respool/_sync/pool.py`` (``Pool``) from it.  Everything that
differs between the two faces comes from ``respool._synchronization``.

How the state fits together (every field below is guarded by ``_lock``,
which is never held across a wait or a call out to user code):

* ``_slots`` is the one capacity count: resources alive (idle, leased, in
  hand-off or being closed) plus factory calls under way.  It never exceeds
  ``pool_size``.  A slot is freed only by ``_free_slot``, which hands it to
  the oldest waiter (who then creates a resource in it) if there is one.
* ``_idle`` holds resources nobody holds.  It is never non-empty while a
  live waiter is parked: ``_put`` hands a returned resource straight to the
  oldest waiter, so a newcomer cannot barge past it.
* ``_waiters`` is FIFO.  A waiter that gives up is only flagged
  ``abandoned`` (O(1)) and skipped when reached; the deque is compacted when
  the dead outnumber the living.
"""

from __future__ import annotations

import functools
import logging
import math
import reprlib
import sys
from collections import deque
from time import monotonic
from types import TracebackType
from typing import Generic, TypeVar

import attrs

from .._checks import check_count, check_seconds
from .._errors import PoolClosed, PoolError, PoolTimeout
from .._records import Entry
from .._stats import PoolStats
from .._synchronization import (
    AsyncBoundedCall,
    AsyncEvent,
    AsyncLoopGuard,
    AsyncShield,
    AsyncStateLock,
)
from .._types import AsyncFactory, AsyncReleaser

if sys.version_info < (3, 11):  # pragma: no cover
    from exceptiongroup import ExceptionGroup

T = TypeVar("T")

logger = logging.getLogger("respool")


class _Slot:
    """The right to create one resource: a free slot, reserved."""


_SLOT = _Slot()


class _Duplicate(Exception):
    """The factory returned an object the pool already holds (raised under the lock)."""


@attrs.define(eq=False)
class _Waiter(Generic[T]):
    """A caller parked in ``acquire``; served at most once, under the lock."""

    event: AsyncEvent = attrs.Factory(AsyncEvent)
    entry: Entry[T] | None = None  # served with a resource
    slot: bool = False  # served with a slot to create in
    closed: bool = False  # the pool was disposed
    abandoned: bool = False  # gave up before being served


@attrs.define(eq=False)
class _Stale(Generic[T]):
    """An idle resource taken out to be closed: too old, or retired."""

    entry: Entry[T]


class AsyncPool(Generic[T]):
    """A pool of resources for asyncio and trio code (through anyio).

    Args:
        factory: ``async () -> T`` makes a new resource.
        releaser: ``async (T) -> object`` closes one, or ``None`` if there is
            nothing to close.
        pool_size: the most resources alive at once, counting those being
            created.
        pool_recycle: seconds after its *creation* past which a resource is
            never handed out again (closed on acquire or release instead);
            ``None`` or ``0`` turns this off.
        lifo: hand out the most recently returned idle resource first (keeps
            a hot set small); ``False`` for FIFO (spreads use evenly).
        acquire_timeout: the default bound, in seconds, on ``acquire``,
            ``lease`` and ``prefill``; ``None`` waits forever.

    The pool can be built outside any event loop (say at module level); it
    binds to the first loop that uses it, and use from another loop raises
    :class:`PoolError`.

    Raises:
        TypeError: a non-callable factory or releaser, or non-numeric sizes.
        ValueError: ``pool_size < 1``, a negative ``pool_recycle`` or
            ``acquire_timeout``.
    """

    def __init__(
        self,
        factory: AsyncFactory[T],
        releaser: AsyncReleaser[T] | None,
        *,
        pool_size: int = 10,
        pool_recycle: float | None = 3600,
        lifo: bool = True,
        acquire_timeout: float | None = 30.0,
    ) -> None:
        if not callable(factory):
            raise TypeError(f"factory must be callable, got {type(factory).__name__}")
        if releaser is not None and not callable(releaser):
            raise TypeError(f"releaser must be callable or None, got {type(releaser).__name__}")
        self._factory = factory
        self._releaser = releaser
        self._pool_size = check_count("pool_size", pool_size, 1)
        self._recycle = check_seconds("pool_recycle", pool_recycle) or math.inf
        self._acquire_timeout = check_seconds("acquire_timeout", acquire_timeout)
        self._lifo = bool(lifo)

        self._lock = AsyncStateLock()
        self._guard = AsyncLoopGuard()
        self._idle: deque[Entry[T]] = deque()
        self._pop_idle = self._idle.pop if lifo else self._idle.popleft
        self._alive: dict[int, Entry[T]] = {}  # by id(resource): who is ours, and leased
        self._waiters: deque[_Waiter[T]] = deque()
        self._slots = 0
        self._creating = 0
        self._leased = 0
        self._waiting = 0
        self._generation = 0
        self._closed = False
        self._last_error: BaseException | None = None
        self._last_error_at = 0.0
        self._created = self._closed_count = self._acquired = 0
        self._timeouts = self._create_errors = self._close_errors = 0

    # -- public API --------------------------------------------------------

    async def acquire(self, timeout: float | None = None) -> T:
        """Take a resource out of the pool; give it back with :meth:`release`.

        Takes an idle resource if there is one (LIFO or FIFO), closing any
        past ``pool_recycle`` on the way; else creates one if fewer than
        ``pool_size`` exist; else waits its turn: waiters are served first
        come, first served.

        An idle resource is handed out without yielding to the event loop, so
        this is a checkpoint only when it waits or creates.

        Args:
            timeout: seconds for the whole call, creation included; ``None``
                means the pool's ``acquire_timeout``; ``math.inf`` waits
                forever; ``0`` takes an idle resource or fails at once
                (there is no time to create one).

        Raises:
            PoolTimeout: the timeout passed.  A factory call cut short is
                cancelled and its slot freed.  The message carries the pool's
                counts and the last factory error.
            PoolClosed: the pool was disposed, before or during the wait.
            PoolError: the pool belongs to another event loop.
            Exception: whatever the factory raised; its slot goes to the next
                waiter.

        On cancellation nothing is lost: a resource or slot handed to this
        caller at that moment goes to the next waiter, a factory call under
        way is cancelled and its slot freed.
        """
        now = monotonic()
        deadline = self._deadline(timeout, now)
        self._check_loop()
        while True:
            claim: Entry[T] | _Slot | _Waiter[T] | _Stale[T] | None
            with self._lock:
                claim = self._claim(now)
            if isinstance(claim, _Waiter):
                claim = await self._wait(claim, deadline, timeout)
            if isinstance(claim, _Stale):
                claim = await self._replace(claim.entry)
            if isinstance(claim, _Slot):
                claim = await self._create(deadline, timeout, lease=True)
            if isinstance(claim, Entry):
                return claim.resource
            now = monotonic()

    async def release(self, resource: T) -> None:
        """Give back a resource taken with :meth:`acquire`.

        It goes straight to the oldest waiter if any, else back to the idle
        set.  If it is past ``pool_recycle``, was retired by
        ``recycle(force=True)``, or the pool was disposed, it is closed
        instead (a releaser error is logged on the ``respool`` logger and
        counted, never raised) and its slot goes to the next waiter.

        Never waits for anything but the releaser; cancellation does not
        interrupt the releaser (closing is cleanup and runs shielded), so the
        resource is returned or closed either way.  Only asyncio's own
        ``Task.cancel()`` gets through a shield: the releaser is then cut
        short, and the resource still counts as closed and frees its slot.

        A double release is caught until the resource's next holder has it;
        after that, the pool cannot tell the first holder's second release
        from the new holder's own.  ``lease()`` makes double release
        impossible.

        Raises:
            PoolError: this pool does not currently lease ``resource``
                (released twice, or never acquired from this pool); nothing
                changes.
        """
        self._check_loop()
        with self._lock:
            entry = self._alive.get(id(resource))
            problem = self._release_problem(entry)
            if entry is not None and problem is None:
                to_close = self._check_in(entry)
        if problem is not None:
            raise PoolError(
                f"release({reprlib.repr(resource)}): this {type(self).__name__} {problem}; "
                "release each acquired resource exactly once, or use `lease()`"
            )
        if to_close is not None:
            await self._close_and_free(to_close)

    def lease(self, timeout: float | None = None) -> AsyncLease[T]:
        """``async with pool.lease() as resource:`` acquire, then always release.

        The resource is released when the block exits, also when the body
        raises or is cancelled (the release cannot be interrupted).
        ``timeout`` and the errors on entry are those of :meth:`acquire`.
        """
        return AsyncLease(self, timeout)

    async def prefill(self, count: int | None = None, *, timeout: float | None = None) -> int:
        """Create resources until ``count`` are idle; return how many were made.

        ``count`` defaults to, and is capped at, ``pool_size``; ``0`` does
        nothing.  Resources are created one at a time; each goes to the
        oldest waiter first, if any.  Stops early once all ``pool_size``
        slots are taken.

        Args:
            timeout: seconds for the whole call; ``None`` means the pool's
                ``acquire_timeout``.

        Raises:
            PoolTimeout: the timeout passed; resources made so far stay.
            PoolClosed: the pool was disposed.
            Exception: whatever the factory raised; resources made so far stay.

        On cancellation the factory call under way is cancelled and its slot
        freed; resources made so far stay.
        """
        target = self._pool_size
        if count is not None:
            target = min(check_count("count", count, 0), target)
        deadline = self._deadline(timeout, monotonic())
        self._check_loop()
        made = 0
        while True:
            with self._lock:
                if self._closed:
                    raise PoolClosed(self._closed_message())
                if len(self._idle) >= target or self._slots >= self._pool_size:
                    return made
                self._slots += 1
                self._creating += 1
            if await self._create(deadline, timeout, lease=False) is not None:
                made += 1

    async def recycle(self, force: bool = False) -> int:
        """Close idle resources past ``pool_recycle`` now; return how many.

        With ``force=True`` every idle resource is closed and every leased
        one is retired: it is closed when it comes back instead of being
        pooled.  Resources whose creation is under way are retired too.

        Releaser errors are logged on the ``respool`` logger and counted.
        Closing is cleanup and is not interrupted by cancellation.
        """
        self._check_loop()
        with self._lock:
            if force:
                self._generation += 1
            now = monotonic()
            stale = [entry for entry in self._idle if not self._usable(entry, now)]
            if stale:
                keep = [entry for entry in self._idle if self._usable(entry, now)]
                self._idle.clear()
                self._idle.extend(keep)
        await self._close_all(stale, log=True)
        return len(stale)

    async def dispose(self) -> None:
        """Close the pool; idempotent.

        Idle resources are closed now; every waiter and every later
        ``acquire`` gets :class:`PoolClosed`; a resource leased before is
        closed when it is released (without error).  Closing is cleanup and
        is not interrupted by cancellation.

        Raises:
            ExceptionGroup: the releaser errors, raised together after every
                idle resource was tried.
        """
        self._check_loop()
        with self._lock:
            if self._closed:
                return
            self._closed = True
            idle = list(self._idle)
            self._idle.clear()
            while (waiter := self._next_waiter()) is not None:
                waiter.closed = True
                waiter.event.set()
        errors = await self._close_all(idle, log=False)
        if errors:
            raise ExceptionGroup(
                f"{len(errors)} of {len(idle)} idle resources failed to close on dispose", errors
            )

    def stats(self) -> PoolStats:
        """A consistent snapshot of the pool's gauges and counters.

        Never waits (it takes only the pool's short internal lock), so no
        timeout applies and it is not a cancellation point.
        """
        with self._lock:
            return self._stats()

    @property
    def pool_size(self) -> int:
        """The most resources the pool keeps alive at once (never waits)."""
        return self._pool_size

    @property
    def closed(self) -> bool:
        """Whether :meth:`dispose` was called (never waits)."""
        return self._closed

    async def __aenter__(self) -> AsyncPool[T]:
        """``async with pool:`` returns the pool itself."""
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Dispose the pool (see :meth:`dispose`)."""
        await self.dispose()

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"<{type(self).__name__} {state} {self.stats()}>"

    # -- the acquire path ----------------------------------------------------

    def _claim(self, now: float) -> Entry[T] | _Slot | _Waiter[T] | _Stale[T]:
        """Under the lock: an idle resource, a slot to create in, or a place in line."""
        if self._closed:
            raise PoolClosed(self._closed_message())
        if self._idle:
            entry = self._pop_idle()
            if not self._usable(entry, now):
                return _Stale(entry)
            self._lease(entry)
            return entry
        if self._slots < self._pool_size:
            self._slots += 1
            self._creating += 1
            return _SLOT
        waiter: _Waiter[T] = _Waiter()
        self._waiters.append(waiter)
        self._waiting += 1
        return waiter

    async def _wait(
        self, waiter: _Waiter[T], deadline: float | None, timeout: float | None
    ) -> Entry[T] | _Slot:
        try:
            await waiter.event.wait(deadline)
        except BaseException:
            with self._lock:
                to_close = self._abandon(waiter)
            if to_close is not None:
                await self._close_and_free(to_close)
            raise
        with self._lock:
            if waiter.entry is not None:
                waiter.entry.handed = None  # taken: from now on it is this caller's
                return waiter.entry
            if waiter.slot:
                return _SLOT
            if waiter.closed:
                raise PoolClosed(self._closed_message())
            facts = self._timeout_facts()  # taken before leaving: it counts itself
            self._abandon(waiter)
        raise self._timeout_error(facts, timeout, "waiting for a resource")

    async def _create(
        self, deadline: float | None, timeout: float | None, lease: bool
    ) -> Entry[T] | None:
        """Make a resource in a slot the caller reserved (counted in ``_creating``).

        Leases it to the caller, or (``lease=False``) places it in the pool;
        returns ``None`` if it was closed at once instead (retired meanwhile).
        """
        with self._lock:
            generation = self._generation
        call = AsyncBoundedCall(self._factory, functools.partial(self._adopt, generation))
        try:
            resource = await call.run(deadline)
        except BaseException as exc:
            if not call.detached:  # else the slot is _adopt's now
                with self._lock:
                    self._creation_failed(None if call.timed_out else exc)
            if call.timed_out:
                with self._lock:
                    facts = self._timeout_facts()
                raise self._timeout_error(
                    facts, timeout, "before the factory could create one"
                ) from None
            raise
        try:
            with self._lock:
                entry = self._register(resource, generation)
                if lease and not self._closed:
                    self._lease(entry)
                    return entry
                to_close = self._put(entry, entry.created_at)
        except _Duplicate:
            raise self._duplicate_error(resource) from None
        if to_close is None:
            return entry
        await self._close_and_free(to_close)
        if self._closed:
            raise PoolClosed(self._closed_message())
        return None

    async def _adopt(
        self, generation: int, resource: T | None, error: BaseException | None
    ) -> None:
        """Take over a factory call its caller stopped waiting for (threads only)."""
        with self._lock:
            if error is not None:
                self._creation_failed(error)
                return
            try:
                entry = self._register(resource, generation)  # type: ignore[arg-type]
            except _Duplicate:
                to_close = None
                refused = True
            else:
                to_close = self._put(entry, entry.created_at)
                refused = False
        if refused:
            logger.error(
                "discarding what the factory returned after its caller left",
                exc_info=self._duplicate_error(resource),
            )
        elif to_close is not None:
            await self._close_and_free(to_close)

    async def _replace(self, entry: Entry[T]) -> _Slot | None:
        """Close a stale idle resource the caller took; keep its slot to create in.

        Keeping the slot keeps the caller's place: a newcomer parked meanwhile
        stays behind it.  Returns ``None`` (slot freed) to look again when idle
        resources are left or the pool closed.
        """
        try:
            error = await self._close(entry)
        except BaseException:
            with self._lock:
                self._free_slot()
            raise
        self._log_close_error(entry, error)
        with self._lock:
            if self._idle or self._closed:
                self._free_slot()
                return None
            self._creating += 1
            return _SLOT

    # -- bookkeeping, always under the lock ------------------------------------

    def _usable(self, entry: Entry[T], now: float) -> bool:
        return now < entry.expires_at and entry.generation == self._generation

    def _lease(self, entry: Entry[T]) -> None:
        entry.leased = True
        self._leased += 1
        self._acquired += 1

    def _unlease(self, entry: Entry[T]) -> None:
        entry.leased = False
        self._leased -= 1

    def _register(self, resource: T, generation: int) -> Entry[T]:
        """A factory call returned: its slot now holds a live resource."""
        self._creating -= 1
        if id(resource) in self._alive:
            self._free_slot()
            raise _Duplicate
        now = monotonic()
        entry = Entry(resource, now, now + self._recycle, generation, now)
        self._alive[id(resource)] = entry
        self._created += 1
        return entry

    def _creation_failed(self, error: BaseException | None) -> None:
        """A factory call ended without a resource: count it and free its slot."""
        self._creating -= 1
        if isinstance(error, Exception):
            self._create_errors += 1
            self._last_error = error
            self._last_error_at = monotonic()
        self._free_slot()

    def _release_problem(self, entry: Entry[T] | None) -> str | None:
        if entry is None or not entry.leased:
            return "does not lease it (released twice, or never acquired from this pool)"
        if entry.handed is not None:
            return (
                "already got it back: it was released twice (the first release handed it "
                "to a waiter that has not taken it yet)"
            )
        return None

    def _check_in(self, entry: Entry[T]) -> Entry[T] | None:
        """A holder gave ``entry`` back; return it if it must be closed."""
        self._unlease(entry)
        entry.last_used = now = monotonic()
        return self._put(entry, now)

    def _put(self, entry: Entry[T], now: float) -> Entry[T] | None:
        """Place an unheld resource: to the oldest waiter, else idle.

        Returns it instead when it must be closed (expired, retired, or the
        pool is closed): the caller closes it and frees its slot.
        """
        if self._closed or not self._usable(entry, now):
            return entry
        waiter = self._next_waiter()
        if waiter is None:
            self._idle.append(entry)
            return None
        self._lease(entry)
        entry.handed = waiter
        waiter.entry = entry
        waiter.event.set()
        return None

    def _free_slot(self) -> None:
        """A slot emptied: the oldest waiter gets to create in it, else it is free."""
        waiter = self._next_waiter()
        if waiter is None:
            self._slots -= 1
            return
        self._creating += 1
        waiter.slot = True
        waiter.event.set()

    def _next_waiter(self) -> _Waiter[T] | None:
        waiters = self._waiters
        while waiters:
            waiter = waiters.popleft()
            if not waiter.abandoned:
                self._waiting -= 1
                return waiter
        return None

    def _abandon(self, waiter: _Waiter[T]) -> Entry[T] | None:
        """A waiter gave up: pass on what it was handed, or leave the line.

        Returns a resource the caller must close (the pool closed meanwhile).
        """
        if waiter.entry is not None:
            entry, waiter.entry = waiter.entry, None
            entry.handed = None
            self._unlease(entry)
            self._acquired -= 1
            return self._put(entry, monotonic())
        if waiter.slot:
            waiter.slot = False
            self._creating -= 1
            self._free_slot()
        elif not waiter.closed and not waiter.abandoned:
            waiter.abandoned = True
            self._waiting -= 1
            if len(self._waiters) > 2 * self._waiting + 32:
                self._waiters = deque(w for w in self._waiters if not w.abandoned)
        return None

    def _stats(self) -> PoolStats:
        return PoolStats(
            pool_size=self._pool_size,
            size=self._slots - self._creating,
            idle=len(self._idle),
            leased=self._leased,
            creating=self._creating,
            waiting=self._waiting,
            created=self._created,
            closed=self._closed_count,
            acquired=self._acquired,
            timeouts=self._timeouts,
            create_errors=self._create_errors,
            close_errors=self._close_errors,
        )

    def _timeout_facts(self) -> tuple[PoolStats, BaseException | None, float]:
        """Under the lock: count a timeout and note what its message will say."""
        self._timeouts += 1
        return self._stats(), self._last_error, monotonic() - self._last_error_at

    def _timeout_error(
        self,
        facts: tuple[PoolStats, BaseException | None, float],
        timeout: float | None,
        what: str,
    ) -> PoolTimeout:
        # Built outside the lock: repr() of the factory's error is user code.
        stats, last, ago = facts
        seconds = self._acquire_timeout if timeout is None else timeout
        if last is None:
            cause = "no factory errors so far"
        else:
            cause = f"last factory error ({ago:.1f}s ago): {last!r}"
        return PoolTimeout(
            f"{type(self).__name__}: no resource after {seconds:g}s {what} ({stats}); {cause}",
            stats,
            last,
        )

    def _duplicate_error(self, resource: object) -> PoolError:
        return PoolError(
            f"the factory returned {reprlib.repr(resource)}, which this pool already "
            "holds; a factory must return a new resource on every call"
        )

    def _closed_message(self) -> str:
        return f"this {type(self).__name__} was disposed; create a new pool"

    # -- closing ---------------------------------------------------------------

    async def _close(self, entry: Entry[T]) -> Exception | None:
        """Run the releaser, shielded from cancellation; return its error."""
        error = None
        try:
            if self._releaser is not None:
                with AsyncShield():
                    await self._releaser(entry.resource)
        except Exception as exc:
            error = exc
        finally:
            with self._lock:
                del self._alive[id(entry.resource)]
                self._closed_count += 1
                if error is not None:
                    self._close_errors += 1
        return error

    async def _close_and_free(self, entry: Entry[T]) -> None:
        """Close a resource nobody holds (logging a releaser error), free its slot."""
        try:
            error = await self._close(entry)
        finally:
            with self._lock:
                self._free_slot()
        self._log_close_error(entry, error)

    def _log_close_error(self, entry: Entry[T], error: Exception | None) -> None:
        if error is not None:
            logger.error(
                "releaser failed to close %s", reprlib.repr(entry.resource), exc_info=error
            )

    async def _close_all(self, entries: list[Entry[T]], *, log: bool) -> list[Exception]:
        """Close resources taken out of the pool, every one, and free their slots."""
        errors = []
        interrupted: BaseException | None = None
        with AsyncShield():
            for entry in entries:
                try:
                    error = await self._close(entry)
                except BaseException as exc:
                    # Finish the batch anyway, or the rest would hold their slots
                    # forever (a shield does not stop asyncio's own Task.cancel()).
                    interrupted = interrupted or exc
                    continue
                finally:
                    with self._lock:
                        self._free_slot()
                if log:
                    self._log_close_error(entry, error)
                elif error is not None:
                    errors.append(error)
        if interrupted is not None:
            raise interrupted
        return errors

    # -- helpers -----------------------------------------------------------------

    def _check_loop(self) -> None:
        problem = self._guard.check()
        if problem is not None:
            raise PoolError(problem)

    def _deadline(self, timeout: float | None, now: float) -> float | None:
        seconds = self._acquire_timeout if timeout is None else check_seconds("timeout", timeout)
        if seconds is None or seconds == math.inf:
            return None
        return now + seconds


class AsyncLease(Generic[T]):
    """What :meth:`AsyncPool.lease` returns: ``async with`` it to hold a resource.

    Entering acquires (with the lease's timeout and the errors of
    :meth:`AsyncPool.acquire`); leaving releases, also when the body raised
    or was cancelled.  A lease is entered once.
    """

    __slots__ = ("_pool", "_resource", "_state", "_timeout")

    def __init__(self, pool: AsyncPool[T], timeout: float | None) -> None:
        self._pool = pool
        self._timeout = timeout
        self._state = "new"

    async def __aenter__(self) -> T:
        """Acquire: the timeout, cancellation and errors of ``acquire``."""
        if self._state != "new":
            raise PoolError("this lease was already entered; call pool.lease() for a new one")
        self._state = "acquiring"
        self._resource = await self._pool.acquire(self._timeout)
        self._state = "held"
        return self._resource

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Release, whatever ended the block; never raises ``PoolTimeout``."""
        self._state = "done"
        await self._pool.release(self._resource)
