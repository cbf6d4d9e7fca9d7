# generated from src/respool/_async/pool.py by unasync_build.py: do not edit, edit the source
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
* ``_lost`` collects records of leased resources their holders dropped
  without releasing them (a weak-reference callback appends, with no lock);
  the next operation under the lock recovers their slots.
* ``_holding`` (only with ``leak_timeout``) lists leased records oldest
  lease first, so finding overdue leases never scans the rest.
"""

from __future__ import annotations

import functools
import logging
import math
import os
import random
import reprlib
import sys
import traceback
import warnings
import weakref
from collections import OrderedDict, deque
from types import TracebackType
from typing import Any, Generic, TypeVar, cast

import attrs

from .. import _tracking
from .._checks import check_callable, check_count, check_seconds
from .._errors import PoolClosed, PoolError, PoolTimeout
from .._records import Entry, LostRef
from .._stats import PoolStats
from .._synchronization import (
    BoundedCall,
    Event,
    Helpers,
    LoopGuard,
    Shield,
    StateLock,
    NotAwaitableError,
    ki_protected,
    sleep_until,
    wrap_sigint_handler,
)
from .._types import Check, Factory, Releaser

if sys.version_info < (3, 11):  # pragma: no cover
    from exceptiongroup import ExceptionGroup

T = TypeVar("T")

logger = logging.getLogger("respool")

RECYCLE_JITTER = 0.05  # each resource's pool_recycle is cut by up to this fraction
FIRST_BACKOFF = 0.05  # seconds before the first retry of a failing factory; doubles


@ki_protected
def _on_lost(ref: LostRef) -> None:
    """A leased resource was garbage-collected: its holder never released it."""
    pool = ref.pool()
    if pool is not None:
        pool._lost_one(ref.entry)


def _no_adoption(result: object, error: BaseException | None) -> None:
    """A releaser call left behind at its timeout: the resource already counts as closed."""


_PACKAGE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _where(entry: Entry[Any]) -> str:
    """The line outside respool that acquired ``entry``'s resource, if recorded."""
    if entry.site is None:
        return "an unrecorded place (set leak_timeout to record acquire sites)"
    frame = next((f for f in entry.site if not f.filename.startswith(_PACKAGE)), entry.site[0])
    return f"{frame.filename}:{frame.lineno} in {frame.name}"


def _stack(entry: Entry[Any]) -> str:
    if entry.site is None:
        return "  (not recorded)\n"
    return "".join(entry.site.format())


_POOLS: weakref.WeakSet[Any] = weakref.WeakSet()  # every pool, to reset in a forked child


def _forget_in_child() -> None:
    for pool in list(_POOLS):
        pool._forget_after_fork()


if hasattr(os, "register_at_fork"):  # not on Windows
    os.register_at_fork(after_in_child=_forget_in_child)


class _Slot:
    """The right to create one resource: a free slot, reserved."""


_SLOT = _Slot()


class _Duplicate(Exception):
    """The factory returned an object the pool already holds (raised under the lock)."""


class _Waiter(Generic[T]):
    """A caller parked in ``acquire``; served at most once, under the lock."""

    __slots__ = ("abandoned", "closed", "entry", "event", "slot")

    def __init__(self, event: Event) -> None:
        self.event = event
        self.entry: Entry[T] | None = None  # served with a resource
        self.slot = False  # served with a slot to create in
        self.closed = False  # the pool was disposed
        self.abandoned = False  # gave up before being served


@attrs.define(eq=False)
class _Stale(Generic[T]):
    """An idle resource taken out to be closed: too old, or retired."""

    entry: Entry[T]


@attrs.define(eq=False)
class _Vet(Generic[T]):
    """An idle resource leased to the caller, to be checked before it is handed out."""

    entry: Entry[T]


_RETURNING = object()  # ``Entry.handed`` while ``reset`` runs on a released resource
_RESET_REFUSED = Exception("reset returned False")  # closes the resource quietly


@ki_protected  # threads: KeyboardInterrupt waits until the bookkeeping is done
class Pool(Generic[T]):
    """A thread-safe pool of resources for threaded code.

    Args:
        factory: ``() -> T`` makes a new resource.
        releaser: ``(T) -> object`` closes one, or ``None`` if there is
            nothing to close.
        pool_size: the most resources alive at once, counting those being
            created.
        pool_recycle: seconds after its *creation* past which a resource is
            never handed out again (closed on acquire or release instead);
            each resource's limit is cut by a random 0-5 % so resources made
            together do not all expire together.  ``None`` or ``0`` turns
            this off.
        lifo: hand out the most recently returned idle resource first (keeps
            a hot set small); ``False`` for FIFO (spreads use evenly).
        acquire_timeout: the default bound, in seconds, on ``acquire``,
            ``lease`` and ``prefill``; ``None`` waits forever.
        check: ``(T) -> object`` tests an idle resource before it is
            handed out; returning ``False`` or raising means broken: the
            resource is closed and the caller gets another one or a new one,
            within the same timeout.  ``None`` (default) trusts idle resources.
        check_interval: a resource used less than this many seconds ago is
            handed out without a check (default 0.5); ``0`` checks every time.
        reset: ``(T) -> object`` runs on every release (say a
            rollback); if it returns ``False`` or raises, the resource is
            closed instead of pooled.
        leak_timeout: seconds a caller may hold a resource before the pool
            logs a warning naming where it was acquired (and again when it
            comes back); ``None`` (default) turns this off.  Leases are
            looked at on every ``acquire`` and ``stats()``.
        cleanup_timeout: seconds allowed to each ``reset`` and releaser call,
            or ``None`` (default) to let them run as long as they take;
            with it set, they run in a thread of their own, and one still
            running then is left behind: a releaser's resource counts as
            closed, a reset's is closed when the reset ends.
        max_backoff: while the factory keeps failing, creation is retried
            after a pause that starts at 0.05 s and doubles up to this many
            seconds (default 2), each pause shortened by a random up to 50 %.

    Any thread may use the pool; every method is thread-safe.  Ctrl-C
    (``KeyboardInterrupt``) in the main thread is raised at once while it
    waits or runs the factory, ``check``, ``reset`` or releaser, and held
    back for the moment the pool does its bookkeeping, so no slot or
    resource is lost: to do this the first ``Pool`` made in the main thread
    wraps Python's default SIGINT handler (a handler of your own is kept).

    A resource its holder drops without releasing it (the holder was
    garbage-collected) is noticed if the resource supports weak references:
    a ``ResourceWarning`` names where it was acquired, and its slot is freed.

    Raises:
        TypeError: a non-callable factory, releaser, check or reset, or
            non-numeric sizes.
        ValueError: ``pool_size < 1``, negative seconds, ``max_backoff`` 0.
    """

    def __init__(
        self,
        factory: Factory[T],
        releaser: Releaser[T] | None,
        *,
        pool_size: int = 10,
        pool_recycle: float | None = 3600,
        lifo: bool = True,
        acquire_timeout: float | None = 30.0,
        check: Check[T] | None = None,
        check_interval: float = 0.5,
        reset: Check[T] | None = None,
        leak_timeout: float | None = None,
        cleanup_timeout: float | None = None,
        max_backoff: float = 2.0,
    ) -> None:
        check_callable("factory", factory, optional=False)
        check_callable("releaser", releaser)
        check_callable("check", check)
        check_callable("reset", reset)
        self._factory = factory
        self._releaser = releaser
        self._check = check
        self._reset = reset
        self._pool_size = check_count("pool_size", pool_size, 1)
        self._recycle = check_seconds("pool_recycle", pool_recycle) or math.inf
        self._acquire_timeout = check_seconds("acquire_timeout", acquire_timeout)
        self._check_interval = check_seconds("check_interval", check_interval) or 0.0
        self._leak_timeout = check_seconds("leak_timeout", leak_timeout)
        self._cleanup_timeout = check_seconds("cleanup_timeout", cleanup_timeout)
        self._max_backoff = check_seconds("max_backoff", max_backoff) or 0.0
        if not self._max_backoff:
            raise ValueError(f"max_backoff must be > 0 seconds, got {max_backoff}")
        self._lifo = bool(lifo)
        self._sites = leak_timeout is not None or _tracking.watching()
        self._plain = reset is None and leak_timeout is None

        self._guard = LoopGuard()
        self._now = self._guard.clock
        self._helpers = Helpers(factory, self._pool_size)  # threads for bounded calls
        self._idle: deque[Entry[T]] = deque()
        self._pop_idle = self._idle.pop if lifo else self._idle.popleft
        self._alive: dict[int, Entry[T]] = {}  # by id(resource): who is ours, and leased
        self._waiters: deque[_Waiter[T]] = deque()
        self._lost: deque[Entry[T]] = deque()
        self._holding: OrderedDict[Entry[T], None] = OrderedDict()
        self._generation = 0
        self._closed = False
        self._last_error: BaseException | None = None
        self._last_error_at = 0.0
        self._created = self._closed_count = self._acquired = 0
        self._timeouts = self._create_errors = self._close_errors = 0
        self._broken = self._lost_count = 0
        self._start_empty()
        _POOLS.add(self)
        _tracking.pool_created(self)
        wrap_sigint_handler()

    # -- public API --------------------------------------------------------

    def acquire(self, timeout: float | None = None) -> T:
        """Take a resource out of the pool; give it back with :meth:`release`.

        Takes an idle resource if there is one (LIFO or FIFO), closing any
        past ``pool_recycle`` or failing ``check`` on the way; else creates
        one if fewer than ``pool_size`` exist; else waits its turn: waiters
        are served first come, first served.  While the factory fails,
        creation is retried with backoff until the timeout.

        An idle resource is handed out without blocking on anything but the
        pool's short internal lock.

        Args:
            timeout: seconds for the whole call, creation and ``check``
                included; ``None`` means the pool's ``acquire_timeout``;
                ``math.inf`` waits forever; ``0`` takes an idle resource
                that needs no check or fails at once.

        Raises:
            PoolTimeout: the timeout passed.  A factory call cut short (it
                runs in a thread of its own when a timeout applies) goes on;
                what it returns joins the pool.  The message carries the pool's
                counts and the last factory error, which is also its
                ``__cause__`` if it happened within the timeout's span.
            PoolClosed: the pool was disposed, before or during the wait.

        If the wait is interrupted (``KeyboardInterrupt``) nothing is lost: a
        resource or slot handed to this caller at that moment goes to the
        next waiter, and a factory call under way joins the pool when done.
        """
        claim = self._first_claim(timeout)
        if not isinstance(claim, Entry):
            claim = self._serve(claim, timeout)
        return self._hand_out(claim)

    def release(self, resource: T) -> None:
        """Give back a resource taken with :meth:`acquire`.

        Runs ``reset`` first, if the pool has one.  Then the resource goes
        straight to the oldest waiter if any, else back to the idle set.  If
        ``reset`` raised, it is past ``pool_recycle``, was retired by
        ``recycle(force=True)``, or the pool was disposed, it is closed
        instead (a releaser or reset error is logged on the ``respool``
        logger and counted, never raised) and its slot goes to the next
        waiter.

        Never waits for anything but ``reset`` and the releaser, each bounded
        by ``cleanup_timeout`` if set.

        A double release is caught until the resource's next holder has it;
        after that, the pool cannot tell the first holder's second release
        from the new holder's own.  ``lease()`` makes double release
        impossible.

        Raises:
            PoolError: this pool does not currently lease ``resource``
                (released twice, or never acquired from this pool); nothing
                changes.
        """
        if self._return_quickly(resource):
            return
        entry, to_close, overdue = self._take_back(resource, "release")
        if self._reset is not None:
            to_close = self._run_reset(entry)
        if to_close is not None:
            self._close_and_free(to_close)
        if overdue is not None:
            self._log_returned(entry, overdue)

    def discard(self, resource: T) -> None:
        """Close a leased resource the holder knows is broken, instead of releasing it.

        The releaser runs now (bounded by ``cleanup_timeout`` if set; its
        error is logged and counted, never raised) and the slot goes at once
        to the oldest waiter, who creates a fresh resource in it.

        Raises:
            PoolError: this pool does not currently lease ``resource``.
        """
        entry, to_close, overdue = self._take_back(resource, "discard")
        if to_close is not None:
            self._close_and_free(to_close)
        if overdue is not None:
            self._log_returned(entry, overdue)

    def lease(self, timeout: float | None = None) -> Lease[T]:
        """``with pool.lease() as resource:`` acquire, then always release.

        The resource is released when the block exits, also when the body
        raises.
        ``timeout`` and the errors on entry are those of :meth:`acquire`.
        """
        return Lease(self, timeout)

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
                until then, as in :meth:`acquire`); resources made so far stay.
            PoolClosed: the pool was disposed.

        Resources made so far stay when it fails or times out.
        """
        target = self._pool_size
        if count is not None:
            target = min(check_count("count", count, 0), target)
        self._check_loop()
        deadline = self._deadline(timeout, self._now())
        made = 0
        while True:
            with self._lock:
                if self._closed:
                    raise PoolClosed(self._closed_message())
                if len(self._idle) >= target or self._slots >= self._pool_size:
                    return made
                self._slots += 1
                self._creating += 1
            if self._create(deadline, timeout, lease=False) is not None:
                made += 1

    def recycle(self, force: bool = False) -> int:
        """Close idle resources past ``pool_recycle`` now; return how many.

        With ``force=True`` every idle resource is closed and every leased
        one is retired: it is closed when it comes back instead of being
        pooled.  Resources whose creation is under way are retired too.

        Releaser errors are logged on the ``respool`` logger and counted.
        """
        self._check_loop()
        with self._lock:
            if force:
                self._generation += 1
            now = self._now()
            stale = [entry for entry in self._idle if not self._usable(entry, now)]
            if stale:
                keep = [entry for entry in self._idle if self._usable(entry, now)]
                self._idle.clear()
                self._idle.extend(keep)
        self._close_all(stale, log=True)
        return len(stale)

    def dispose(self) -> None:
        """Close the pool; idempotent.

        Idle resources are closed now; every waiter and every later
        ``acquire`` gets :class:`PoolClosed`; a resource leased before is
        closed when it is released (without error).

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
        try:
            errors = self._close_all(idle, log=False)
        finally:
            self._helpers.close()
        if errors:
            raise ExceptionGroup(
                f"{len(errors)} of {len(idle)} idle resources failed to close on dispose", errors
            )

    def stats(self) -> PoolStats:
        """A consistent snapshot of the pool's gauges and counters.

        Never waits (it takes only the pool's short internal lock), so no
        timeout applies.
        """
        if self._leak_timeout is not None:
            self._report_leaks()
        with self._lock:
            if self._lost:
                self._recover_lost()
            return self._stats()

    @property
    def pool_size(self) -> int:
        """The most resources the pool keeps alive at once (never waits)."""
        return self._pool_size

    @property
    def closed(self) -> bool:
        """Whether :meth:`dispose` was called (never waits)."""
        return self._closed

    def __enter__(self) -> Pool[T]:
        """``with pool:`` returns the pool itself."""
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Dispose the pool (see :meth:`dispose`)."""
        self.dispose()

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"<{type(self).__name__} {state} {self.stats()}>"

    # -- the acquire path ----------------------------------------------------

    def _first_claim(
        self, timeout: float | None
    ) -> Entry[T] | _Slot | _Waiter[T] | _Vet[T] | _Stale[T]:
        if self._guard.get_current() is not self._guard.token:
            self._check_loop()
        if timeout is not None:
            check_seconds("timeout", timeout)
        with self._lock:
            return self._claim(self._now())

    def _serve(
        self, claim: _Slot | _Waiter[T] | _Vet[T] | _Stale[T], timeout: float | None
    ) -> Entry[T]:
        """No idle resource was ready: wait, check, replace or create until one is."""
        deadline = self._deadline(timeout, self._now())  # a hair after the claim: never early
        while True:
            served: Entry[T] | _Slot | _Waiter[T] | _Vet[T] | _Stale[T] | None = claim
            if isinstance(served, _Waiter):
                served = self._wait(served, deadline, timeout)
            if isinstance(served, _Vet):
                served = self._vet(served.entry, deadline, timeout)
            if isinstance(served, _Stale):
                served = self._replace(served.entry, deadline)
            if isinstance(served, _Slot):
                served = self._create(deadline, timeout, lease=True)
            if isinstance(served, Entry):
                return served
            with self._lock:
                next_claim = self._claim(self._now())
            if isinstance(next_claim, Entry):
                return next_claim
            claim = next_claim

    def _claim(self, now: float) -> Entry[T] | _Slot | _Waiter[T] | _Vet[T] | _Stale[T]:
        """Under the lock: an idle resource, a slot to create in, or a place in line."""
        if self._closed:
            raise PoolClosed(self._closed_message())
        if self._lost:
            self._recover_lost()
        if self._idle:
            entry = self._pop_idle()
            if now >= entry.expires_at or entry.generation != self._generation:  # _usable
                return _Stale(entry)
            if self._leak_timeout is not None:
                self._lease(entry)
            else:  # _lease, inlined: this is the acquire hot path
                entry.leased = True
                self._leased += 1
                self._acquired += 1
            if self._check is not None and now - entry.last_used >= self._check_interval:
                return _Vet(entry)
            return entry
        if self._slots < self._pool_size:
            self._slots += 1
            self._creating += 1
            return _SLOT
        waiter: _Waiter[T] = _Waiter(self._guard.new_event())
        self._waiters.append(waiter)
        self._waiting += 1
        return waiter

    def _wait(
        self, waiter: _Waiter[T], deadline: float | None, timeout: float | None
    ) -> Entry[T] | _Vet[T] | _Slot:
        try:
            waiter.event.wait(deadline)
        except BaseException:
            with self._lock:
                to_close = self._abandon(waiter)
            if to_close is not None:
                self._close_and_free(to_close)
            raise
        with self._lock:
            if waiter.entry is not None:
                waiter.entry.handed = None  # taken: from now on it is this caller's
                return self._vetting(waiter.entry, self._now())
            if waiter.slot:
                return _SLOT
            if waiter.closed:
                raise PoolClosed(self._closed_message())
            facts = self._timeout_facts()  # taken before leaving: it counts itself
            self._abandon(waiter)
        raise self._timeout_error(facts, timeout, "waiting for a resource")

    def _vet(
        self, entry: Entry[T], deadline: float | None, timeout: float | None
    ) -> Entry[T] | _Slot | None:
        """Run ``check`` on a resource leased to the caller; replace it if broken.

        A check cut short (timeout, interruption) leaves the resource in an
        unknown state, so it is closed.  With no time left to check, the
        resource goes back to the pool untouched.
        """
        if deadline is not None and deadline <= self._now():
            self._put_back(entry)
            with self._lock:
                facts = self._timeout_facts()
            raise self._timeout_error(facts, timeout, "before an idle resource could be checked")
        check = cast(Check[T], self._check)
        call = BoundedCall(
            functools.partial(check, entry.held()),
            functools.partial(self._adopt_held, entry, False),
            self._now,
            self._helpers,
        )
        try:
            verdict = call.run(deadline)
        except NotAwaitableError:
            self._put_back(entry)
            raise
        except BaseException as exc:
            if call.detached:  # threads: the check goes on; _adopt_held closes it when done
                pass
            elif call.timed_out or not isinstance(exc, Exception):
                with self._lock:
                    self._unlease(entry, taken=False)
                self._close_and_free(entry)
            else:
                return self._failed_check(entry, exc, deadline)
            if call.timed_out:
                with self._lock:
                    facts = self._timeout_facts()
                error = self._timeout_error(facts, timeout, "checking an idle resource")
                raise error from error.__cause__
            raise
        if verdict is False:
            return self._failed_check(entry, None, deadline)
        return entry

    def _failed_check(
        self, entry: Entry[T], error: Exception | None, deadline: float | None
    ) -> _Slot | None:
        """``check`` said broken: close the resource, keep the slot for a replacement."""
        logger.warning(
            "check failed on %s (%s); closing it",
            reprlib.repr(entry.resource),
            "it returned False" if error is None else repr(error),
        )
        with self._lock:
            self._unlease(entry, taken=False)
            self._broken += 1
        return self._replace(entry, deadline)

    def _put_back(self, entry: Entry[T]) -> None:
        """Return a resource leased to a caller that did not take it after all."""
        with self._lock:
            self._unlease(entry, taken=False)
            to_close = self._put(entry, self._now())
        if to_close is not None:
            self._close_and_free(to_close)

    def _create(
        self, deadline: float | None, timeout: float | None, lease: bool
    ) -> Entry[T] | None:
        """Make a resource in a slot the caller reserved (counted in ``_creating``).

        While the factory fails, retries after the pool's backoff pause for as
        long as the deadline allows, keeping the slot.  Leases the resource
        to the caller, or (``lease=False``) places it in the pool; returns
        ``None`` if it was closed at once instead (retired meanwhile).
        """
        while True:
            with self._lock:
                generation = self._generation
                resume = self._backoff_until
                if self._closed:  # disposed while this caller backed off
                    self._creation_failed()
                    raise PoolClosed(self._closed_message())
            if resume > self._now():
                self._pause(resume, deadline, timeout)
                continue
            call = BoundedCall(
                self._factory, functools.partial(self._adopt, generation), self._now, self._helpers
            )
            try:
                resource = call.run(deadline)
                break
            except BaseException as exc:
                if (
                    call.timed_out
                    or not isinstance(exc, Exception)
                    or type(exc) is NotAwaitableError
                ):
                    if not call.detached:  # else the slot is _adopt's now
                        with self._lock:
                            self._creation_failed()
                    if call.timed_out:
                        with self._lock:
                            facts = self._timeout_facts()
                        error = self._timeout_error(
                            facts, timeout, "before the factory created one"
                        )
                        raise error from error.__cause__
                    raise
                with self._lock:
                    self._factory_failed(exc)
        try:
            with self._lock:
                entry = self._register(resource, generation)
                if lease and not self._closed:
                    self._lease(entry)
                    return entry
                to_close = self._put(entry, entry.last_used)
        except _Duplicate:
            raise self._duplicate_error(resource) from None
        if to_close is None:
            return entry
        self._close_and_free(to_close)
        if self._closed:
            raise PoolClosed(self._closed_message())
        return None

    def _pause(
        self,
        resume: float,
        deadline: float | None,
        timeout: float | None,
    ) -> None:
        """Wait out the factory's backoff in a reserved slot; time out now if it ends too late."""
        if deadline is not None and resume >= deadline:
            with self._lock:
                self._creation_failed()
                facts = self._timeout_facts()
            early = max(0.0, deadline - self._now())
            what = f"while the factory kept failing (given up {early:.2f}s early: no retry fits)"
            raise self._timeout_error(facts, timeout, what)
        try:
            sleep_until(resume, self._now)
        except BaseException:
            with self._lock:
                self._creation_failed()
            raise

    def _adopt(
        self, generation: int, resource: T | None, error: BaseException | None
    ) -> None:
        """Take over a factory call its caller stopped waiting for (threads only)."""
        with self._lock:
            if error is not None:
                if isinstance(error, Exception):
                    self._factory_failed(error)
                self._creation_failed()
                return
            try:
                entry = self._register(cast(T, resource), generation)
            except _Duplicate:
                to_close = None
                refused = True
            else:
                to_close = self._put(entry, entry.last_used)
                refused = False
        if refused:
            logger.error(
                "discarding what the factory returned after its caller left",
                exc_info=self._duplicate_error(resource),
            )
        elif to_close is not None:
            self._close_and_free(to_close)

    def _adopt_held(
        self, entry: Entry[T], taken: bool, result: object, error: BaseException | None
    ) -> None:
        """A ``check`` or ``reset`` its caller stopped waiting for ended (threads only).

        It overran its time, so the resource is not trusted: close it.
        """
        with self._lock:
            entry.handed = None
            self._unlease(entry, taken=taken)
            self._broken += 1
        self._close_and_free(entry)

    def _replace(self, entry: Entry[T], deadline: float | None) -> _Slot | None:
        """Close a stale or broken resource the caller took; keep its slot to create in.

        Keeping the slot keeps the caller's place: a newcomer parked meanwhile
        stays behind it.  Returns ``None`` (slot freed) to look again when idle
        resources are left or the pool closed.
        """
        try:
            error = self._close(entry, deadline)  # the caller's timeout bounds it too
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

    def _run_reset(self, entry: Entry[T]) -> Entry[T] | None:
        """Run ``reset`` on a released resource; pool it, or return it to be closed."""
        reset = cast(Check[T], self._reset)
        call = BoundedCall(
            functools.partial(reset, entry.held()),
            functools.partial(self._adopt_held, entry, True),
            self._now,
            self._helpers,
        )
        error: BaseException | None = None
        try:
            with Shield():
                if call.run(self._cleanup_deadline(), start=True) is False:
                    error = _RESET_REFUSED
        except BaseException as exc:
            error = exc
        if call.detached:  # threads: the reset goes on; _adopt_held closes it when done
            if isinstance(error, Exception):
                return None
            raise cast(BaseException, error)
        with self._lock:
            entry.handed = None
            if error is None:
                return self._check_in(entry)
            self._unlease(entry)
            self._broken += 1
        if not isinstance(error, Exception):
            self._close_and_free(entry)
            raise error
        if error is not _RESET_REFUSED:
            logger.warning(
                "reset failed on %s (%r); closing it", reprlib.repr(entry.resource), error
            )
        return entry

    def _hand_out(self, entry: Entry[T]) -> T:
        """The caller takes its resource: from now on the pool holds it weakly, if it can."""
        resource: T = entry.resource  # type: ignore[assignment]  # held strongly until now
        if entry.ref is not None:
            entry.resource = None
        if self._sites:
            entry.site = traceback.StackSummary.extract(
                traceback.walk_stack(sys._getframe(2)), limit=32, lookup_lines=False
            )
            if self._leak_timeout is not None:
                self._report_leaks()
        return resource

    # -- bookkeeping, always under the lock ------------------------------------

    def _usable(self, entry: Entry[T], now: float) -> bool:
        return now < entry.expires_at and entry.generation == self._generation

    def _vetting(self, entry: Entry[T], now: float) -> Entry[T] | _Vet[T]:
        if self._check is not None and now - entry.last_used >= self._check_interval:
            return _Vet(entry)
        return entry

    def _lease(self, entry: Entry[T]) -> None:
        entry.leased = True
        self._leased += 1
        self._acquired += 1
        if self._leak_timeout is not None:
            entry.leased_at = self._now()
            entry.reported = False
            self._holding[entry] = None

    def _unlease(self, entry: Entry[T], *, taken: bool = True) -> None:
        """``taken=False``: the caller never got it, so it does not count as acquired."""
        entry.leased = False
        self._leased -= 1
        if not taken:
            self._acquired -= 1
        if self._leak_timeout is not None:
            self._holding.pop(entry, None)

    def _register(self, resource: T, generation: int) -> Entry[T]:
        """A factory call returned: its slot now holds a live resource."""
        self._creating -= 1
        if self._lost:  # a dead resource's id may have been reused by this one
            self._recover_lost()
        if id(resource) in self._alive:
            self._free_slot()
            raise _Duplicate
        self._failures = 0
        self._backoff_until = 0.0
        now = self._now()
        expires_at = now + self._recycle * (1.0 - RECYCLE_JITTER * random.random())
        entry = Entry(resource, id(resource), expires_at, generation, now)
        try:
            ref = LostRef(resource, _on_lost)
        except TypeError:
            pass  # no weak references to this type: a dropped lease goes unnoticed
        else:
            ref.entry = entry
            ref.pool = self._self_ref
            entry.ref = ref
        self._alive[entry.key] = entry
        self._created += 1
        return entry

    def _creation_failed(self) -> None:
        """A reserved slot will hold no resource after all: free it."""
        self._creating -= 1
        self._free_slot()

    def _factory_failed(self, error: Exception) -> None:
        """Count a factory error and push back the next attempt (exponential, jittered)."""
        self._create_errors += 1
        self._last_error = error
        now = self._last_error_at = self._now()
        self._failures += 1
        pause = min(self._max_backoff, FIRST_BACKOFF * 2.0 ** min(self._failures - 1, 32))
        self._backoff_until = max(self._backoff_until, now + pause * (1.0 - random.random() / 2))

    def _release_problem(self, entry: Entry[T] | None, resource: T) -> str | None:
        if entry is None or not entry.leased or not entry.holds(resource):
            return "does not lease it (released twice, or never acquired from this pool)"
        if entry.handed is not None:
            return (
                "already got it back: it was released twice (the first release is still "
                "resetting it, or handed it to a waiter that has not taken it yet)"
            )
        return None

    def _take_back(self, resource: T, how: str) -> tuple[Entry[T], Entry[T] | None, float | None]:
        """Take a resource back from its holder, or raise :class:`PoolError`.

        Returns its record, what must be closed now, and how long it was held
        if it was reported as a leak.  ``reset``, when the pool has one, is
        left to the caller.
        """
        self._check_loop()
        with self._lock:
            entry = self._alive.get(id(resource))
            problem = self._release_problem(entry, resource)
            if entry is not None and problem is None:
                entry.resource = resource
                overdue = self._now() - entry.leased_at if entry.reported else None
                if how == "discard":
                    self._unlease(entry)
                    self._broken += 1
                    return entry, entry, overdue
                if self._reset is not None:
                    entry.handed = _RETURNING
                    return entry, None, overdue
                return entry, self._check_in(entry), overdue
        advice = "release or discard each acquired resource exactly once, or use `lease()`"
        raise PoolError(
            f"{how}({reprlib.repr(resource)}): this {type(self).__name__} {problem}; {advice}"
        )

    def _return_quickly(self, resource: T) -> bool:
        """The common release in one lock round trip; ``False`` if it needs more.

        More is: a ``reset`` or leak tracking, a resource to close (too old,
        retired, pool disposed), or a problem for :meth:`_take_back` to name.
        """
        if self._guard.get_current() is not self._guard.token:
            self._check_loop()
        if not self._plain:
            return False
        with self._lock:
            entry = self._alive.get(id(resource))
            if (
                entry is None
                or not entry.leased
                or entry.handed is not None
                or not (entry.resource is resource or (entry.ref and entry.ref() is resource))
            ):
                return False
            now = self._now()
            if self._closed or now >= entry.expires_at or entry.generation != self._generation:
                return False  # to be closed (_usable, inlined): release's slow path does it
            entry.resource = resource
            entry.leased = False
            entry.last_used = now
            self._leased -= 1
            self._put(entry, now)
            return True

    def _check_in(self, entry: Entry[T]) -> Entry[T] | None:
        """A holder gave ``entry`` back; return it if it must be closed."""
        entry.leased = False  # _unlease, inlined: this is the release hot path
        self._leased -= 1
        if self._leak_timeout is not None:
            self._holding.pop(entry, None)
        entry.last_used = now = self._now()
        return self._put(entry, now)

    def _put(self, entry: Entry[T], now: float) -> Entry[T] | None:
        """Place an unheld resource: to the oldest waiter, else idle.

        Returns it instead when it must be closed (expired, retired, or the
        pool is closed): the caller closes it and frees its slot.
        """
        if (
            self._closed or now >= entry.expires_at or entry.generation != self._generation
        ):  # _usable
            return entry
        waiter = self._next_waiter() if self._waiting else None
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
            self._unlease(entry, taken=False)
            return self._put(entry, self._now())
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

    def _recover_lost(self) -> None:
        """Free the slots of leased resources their holders dropped unreleased."""
        while self._lost:
            entry = self._lost.popleft()
            if self._alive.get(entry.key) is entry and entry.leased and entry.resource is None:
                del self._alive[entry.key]
                entry.ref = None
                self._unlease(entry)
                self._lost_count += 1
                self._closed_count += 1
                self._free_slot()

    def _start_empty(self) -> None:
        self._lock = StateLock()
        self._slots = self._creating = self._leased = self._waiting = 0
        self._failures = 0
        self._backoff_until = 0.0
        self._self_ref = weakref.ref(self)

    def _forget_after_fork(self) -> None:
        """In a child process after ``os.fork()``: every resource is the parent's.

        The child neither hands them out nor closes them; it starts empty.
        (Another thread may have held the lock at the fork: it gets a new one.)
        """
        for entry in self._alive.values():
            entry.ref = None
        self._alive.clear()
        self._idle.clear()
        self._waiters.clear()
        self._lost.clear()
        self._holding.clear()
        self._guard = LoopGuard()
        self._now = self._guard.clock
        self._start_empty()

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
            broken=self._broken,
            lost=self._lost_count,
        )

    def _timeout_facts(self) -> tuple[PoolStats, BaseException | None, float]:
        """Under the lock: count a timeout and note what its message will say."""
        self._timeouts += 1
        return self._stats(), self._last_error, self._now() - self._last_error_at

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
        error = PoolTimeout(
            f"{type(self).__name__}: no resource after {seconds:g}s {what} ({stats}); {cause}",
            stats,
            last,
        )
        # A factory error within the call's own time span is why it timed out.
        error.__cause__ = last if last is not None and ago <= (seconds or 0) else None
        error.__suppress_context__ = True  # the pool's internal TimeoutError says nothing more
        return error

    def _duplicate_error(self, resource: object) -> PoolError:
        return PoolError(
            f"the factory returned {reprlib.repr(resource)}, which this pool already "
            "holds; a factory must return a new resource on every call"
        )

    def _closed_message(self) -> str:
        return f"this {type(self).__name__} was disposed; create a new pool"

    # -- leaks -------------------------------------------------------------------

    def _lost_one(self, entry: Entry[T]) -> None:
        """Weak-reference callback: a holder dropped ``entry``'s resource unreleased.

        It may run inside any allocation, even one made under the pool's own
        lock, so it never waits for the lock: if the lock is busy, recovery is
        scheduled to run once the holder is done (a parked waiter must not
        wait on a slot nobody will free).
        """
        self._lost.append(entry)
        if self._lock.acquire(blocking=False):
            try:
                self._recover_lost()
            finally:
                self._lock.release()
        else:
            self._guard.call_soon(self._recover_lost_soon)
        warnings.warn(
            f"{type(self).__name__}: a leased resource was garbage-collected without being "
            f"released, so its slot was recovered; it was acquired at {_where(entry)}. "
            "Release or discard every resource you acquire, or use `lease()`",
            ResourceWarning,
            stacklevel=2,
        )

    def _recover_lost_soon(self) -> None:
        with self._lock:
            self._recover_lost()

    def _report_leaks(self) -> None:
        """Log each resource held past ``leak_timeout`` that was not reported yet."""
        limit = cast(float, self._leak_timeout)
        overdue = []
        with self._lock:
            now = self._now()
            while self._holding:
                entry = next(iter(self._holding))
                if now - entry.leased_at < limit:
                    break
                del self._holding[entry]
                entry.reported = True
                overdue.append((entry, entry.current(), now - entry.leased_at))
        for entry, resource, held in overdue:
            logger.warning(
                "%s has been held for %.1fs (leak_timeout=%gs); it was acquired at:\n%s",
                reprlib.repr(resource),
                held,
                limit,
                _stack(entry),
            )

    def _log_returned(self, entry: Entry[T], held: float) -> None:
        logger.warning(
            "%s came back after %.1fs (it was reported as a possible leak)",
            reprlib.repr(entry.resource),
            held,
        )

    def _outstanding(self) -> list[tuple[object, traceback.StackSummary | None]]:
        """Resources leased now, with where each was acquired if that was recorded."""
        with self._lock:
            return [(e.current(), e.site) for e in self._alive.values() if e.leased]

    # -- closing ---------------------------------------------------------------

    def _close(self, entry: Entry[T], deadline: float | None = None) -> Exception | None:
        """Run the releaser; return its error.

        It is bounded by ``cleanup_timeout`` and by ``deadline`` (an acquire's,
        when closing is on its way to a resource), whichever comes first.
        """
        error: Exception | None = None
        limit = self._cleanup_deadline()
        if deadline is not None and (limit is None or deadline < limit):
            limit = deadline
        try:
            if self._releaser is not None:
                call = BoundedCall(
                    functools.partial(self._releaser, entry.held()),
                    _no_adoption,
                    self._now,
                    self._helpers,
                )
                with Shield():
                    call.run(limit, start=True)
        except Exception as exc:
            error = exc
            if call.timed_out:
                error = TimeoutError(
                    "the releaser did not finish in time (cleanup_timeout="
                    f"{self._cleanup_timeout}, or the deadline of the acquire that closed it)"
                )
        finally:
            with self._lock:
                del self._alive[entry.key]
                entry.ref = None
                self._closed_count += 1
                if error is not None:
                    self._close_errors += 1
        return error

    def _close_and_free(self, entry: Entry[T]) -> None:
        """Close a resource nobody holds (logging a releaser error), free its slot."""
        try:
            error = self._close(entry)
        finally:
            with self._lock:
                self._free_slot()
        self._log_close_error(entry, error)

    def _log_close_error(self, entry: Entry[T], error: Exception | None) -> None:
        if error is not None:
            logger.error(
                "releaser failed to close %s", reprlib.repr(entry.resource), exc_info=error
            )

    def _close_all(self, entries: list[Entry[T]], *, log: bool) -> list[Exception]:
        """Close resources taken out of the pool, every one, and free their slots."""
        errors = []
        interrupted: BaseException | None = None
        with Shield():
            for entry in entries:
                try:
                    error = self._close(entry)
                except BaseException as exc:
                    # Finish the batch anyway (say after KeyboardInterrupt), or the
                    # rest would hold their slots forever.
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
        guard = self._guard
        if guard.get_current() is guard.token:
            return
        problem = guard.check()
        if problem is not None:
            raise PoolError(problem)
        self._now = guard.clock  # bound now: the loop's clock

    def _cleanup_deadline(self) -> float | None:
        if self._cleanup_timeout is None:
            return None
        return self._now() + self._cleanup_timeout

    def _deadline(self, timeout: float | None, now: float) -> float | None:
        seconds = self._acquire_timeout if timeout is None else check_seconds("timeout", timeout)
        if seconds is None or seconds == math.inf:
            return None
        return now + seconds


@ki_protected
class Lease(Generic[T]):
    """What :meth:`Pool.lease` returns: ``with`` it to hold a resource.

    Entering acquires (with the lease's timeout and the errors of
    :meth:`Pool.acquire`); leaving releases, also when the body raised.
    A lease is entered once.
    """

    __slots__ = ("_pool", "_resource", "_state", "_timeout")

    def __init__(self, pool: Pool[T], timeout: float | None) -> None:
        self._pool = pool
        self._timeout = timeout
        self._state = "new"

    def __enter__(self) -> T:
        """Acquire: the timeout and errors of ``acquire``."""
        if self._state != "new":
            raise PoolError("this lease was already entered; call pool.lease() for a new one")
        self._state = "acquiring"
        # acquire(), spelled out so a lease costs no extra coroutine
        pool, timeout = self._pool, self._timeout
        claim = pool._first_claim(timeout)
        if not isinstance(claim, Entry):
            claim = pool._serve(claim, timeout)
        self._resource = pool._hand_out(claim)
        self._state = "held"
        return self._resource

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Release, whatever ended the block; never raises ``PoolTimeout``.

        If the block discarded the resource (``pool.discard``), there is
        nothing left to release.
        """
        self._state = "done"
        pool, resource = self._pool, self._resource
        if not pool._return_quickly(resource) and id(resource) in pool._alive:
            pool.release(resource)  # else the holder discarded it
