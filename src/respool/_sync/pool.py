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
import sys
import traceback
import warnings
import weakref
from collections import OrderedDict, deque
from collections.abc import Callable
from types import TracebackType
from typing import Any, Generic, TypeVar, cast

import attrs

from .. import _tracking
from .._checks import (
    Fatal,
    check_count,
    check_exception_types,
    check_fatal,
    check_flag,
    check_predicate,
    check_seconds,
)
from .._errors import PoolClosed, PoolError, PoolTimeout
from .._records import Entry, LostRef
from .._reprs import name_of, show
from .._stats import PoolStats
from .._synchronization import (
    BoundedCall,
    Event,
    Helpers,
    LoopGuard,
    Shield,
    StateLock,
    CallTimeout,
    NotAwaitableError,
    call_within,
    callable_check,
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
OUTAGE_LOG_EVERY = 10.0  # seconds between "still failing" lines while the factory fails


@ki_protected
def _on_lost(ref: LostRef) -> None:
    """A leased resource was garbage-collected: its holder never released it."""
    pool = ref.pool()
    if pool is not None:
        pool._lost_one(ref.entry)


_PACKAGE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _where(entry: Entry[Any]) -> str:
    """The line outside respool that acquired ``entry``'s resource, if recorded."""
    return _site_line(entry.site)


def _site_line(site: traceback.StackSummary | None) -> str:
    """``file:line in function``: the innermost frame of an acquire site outside respool."""
    if site is None:
        return "an unrecorded place (set leak_timeout to record acquire sites)"
    frame = next((f for f in site if not f.filename.startswith(_PACKAGE)), site[0])
    return f"{frame.filename}:{frame.lineno} in {frame.name}"


def _stack(site: traceback.StackSummary | None) -> str:
    if site is None:
        return "  (not recorded)\n"
    return "".join(site.format())


@attrs.frozen
class _Overdue:
    """A lease that ended past ``leak_timeout``, as seen under the lock when it ended."""

    resource: object
    held: float  # seconds
    site: traceback.StackSummary | None
    reported: bool  # a warning was logged while it was held


@attrs.frozen
class _Leases:
    """The leases held past ``leak_timeout`` when a caller timed out."""

    count: int
    oldest: float  # seconds the oldest has been held
    site: traceback.StackSummary | None  # where the oldest was acquired


_Facts = tuple[PoolStats, BaseException | None, float, _Leases | None]


_POOLS: weakref.WeakSet[Any] = weakref.WeakSet()  # every pool, to reset in a forked child


def _forget_in_child() -> None:
    for pool in list(_POOLS):
        pool._forget_after_fork()


if hasattr(os, "register_at_fork"):  # not on Windows
    os.register_at_fork(after_in_child=_forget_in_child)


class _Default:
    """The default of an argument whose value depends on another one."""

    def __repr__(self) -> str:
        return "<default>"


_DEFAULT = _Default()


class _Made:
    """Prefill's creation placed its resource in the pool."""


_MADE = _Made()


class _Slot:
    """The right to create one resource: a free slot, reserved."""


_SLOT = _Slot()


class _Duplicate(Exception):
    """The factory returned what the pool cannot take: an object it already holds, or None.

    Raised under the lock by ``_register``, which has freed the slot already.
    """


class _Waiter(Generic[T]):
    """A caller in line in ``acquire``; served at most once, under the lock.

    A caller creating a resource (its factory call under way, or backing off
    after a failed one in a slot it holds) stands in line too, so a resource
    released meanwhile goes to it before anyone who came later.
    """

    __slots__ = (
        "abandoned", "closed", "creation", "entry", "event", "failed", "fatal", "fresh",
        "holds_slot", "slot",
    )  # fmt: skip

    def __init__(self, event: Event) -> None:
        self.event = event
        self.entry: Entry[T] | None = None  # served with a resource
        self.slot = False  # served with a slot to create in
        self.closed = False  # the pool was disposed
        self.abandoned = False  # out of line: gave up, or served by its own creation
        self.creation: _Creation[T] | None = None  # the factory call it waits for
        self.holds_slot = False  # backing off in a slot it reserved
        self.failed: BaseException | None = None  # its factory call failed; the slot is back
        self.fatal = False  # and that failure is not worth a retry (decided once, in the call)
        self.fresh = False  # its entry comes straight from the factory: no check needed


class _Creation(Generic[T]):
    """A factory call running in the background, in a slot of its own.

    It outlives the caller who started it (``owner``): if that caller gives
    up or is served by a released resource first, what the factory returns
    goes to the oldest waiter, else to the idle set.  ``lease=False`` is
    prefill's: the resource goes to the pool, and the owner only watches.
    """

    __slots__ = ("generation", "lease", "owner", "stop")

    def __init__(self, generation: int, owner: _Waiter[T] | None, lease: bool) -> None:
        self.generation = generation
        self.owner = owner
        self.lease = lease
        self.stop: Callable[[], object] | None = None  # dispose ends it with this


@attrs.define(eq=False)
class _Stale(Generic[T]):
    """An idle resource taken out to be closed: too old, or retired."""

    entry: Entry[T]


@attrs.define(eq=False)
class _Vet(Generic[T]):
    """An idle resource leased to the caller, to be checked before it is handed out."""

    entry: Entry[T]


_NO_RETRY_FITS = "while the factory kept failing (its next retry comes after the deadline)"
_BEFORE_CREATED = "before the factory created one"
_KEPT_FAILING = "while the factory kept failing"
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
            created and those being closed.
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
            A resource whose ``lease()`` body raised is checked next time
            regardless.
        reset: ``(T) -> object`` runs on every release (say a
            rollback); if it returns ``False`` or raises, the resource is
            closed instead of pooled.
        leak_timeout: seconds a caller may hold a resource before the pool
            logs a warning naming where it was acquired; ``None`` (default)
            turns this off.  Leases are looked at on every ``acquire`` and
            ``stats()``; one that comes back past the limit is always logged,
            with its holding time and acquire stack, and a ``PoolTimeout``
            names the leases held past it.
        cleanup_timeout: seconds (more than 0) allowed to each ``reset`` and
            releaser call, or ``None`` (default) to let them run as long as
            they take; with it set, they run in a thread of their own, and
            one still running then is left behind: a releaser's resource
            stays counted alive, its slot taken, until the releaser returns;
            a reset's resource is closed when the reset ends.
        max_backoff: while the factory keeps failing, creation is retried
            after a pause that starts at 0.05 s and doubles up to this many
            seconds (default 2), each pause shortened by a random up to 50 %.
            The first failure of an outage is logged (WARNING), then at most
            one line every 10 s, and its end (INFO).
        is_closed: ``(T) -> object``, a plain, quick predicate (say
            ``asyncpg.Connection.is_closed``) asked on every hand-out of an
            idle resource and on every return, never skipped by
            ``check_interval``; true (or raising) means dead: the resource is
            closed and the caller gets another one within its timeout.
        discard_on: exception types that, raised out of a ``lease()`` body,
            make the lease discard its resource instead of releasing it
            (the exception still propagates).
        fatal: factory errors not worth retrying (exception types, or a
            predicate on the error): such an error ends the acquire at once
            and is raised as itself; others are retried with backoff.
        create_timeout: seconds one factory call may take, from its start,
            whoever waits for it (default: ``acquire_timeout``), in the
            pool for tasks; here a thread cannot be cut short, so a factory
            call runs to its end and what it makes joins the pool.  A factory
            call runs in the background while a timeout applies: a caller who gives up leaves it to
            finish, and its resource goes to the oldest waiter or the idle
            set.

    Any thread may use the pool; every method is thread-safe.  Ctrl-C
    (``KeyboardInterrupt``) in the main thread is raised at once while it
    waits or runs the factory, ``check``, ``reset`` or releaser, and held
    back for the moment the pool does its bookkeeping, so no slot or
    resource is lost: to do this the first ``Pool`` made in the main thread
    wraps Python's default SIGINT handler (a handler of your own is kept).

    A resource its holder drops without releasing it (the holder was
    garbage-collected) is noticed if the resource supports weak references:
    a ``ResourceWarning`` names where it was acquired, and its slot is freed.

    A coroutine function as factory, releaser, check or reset is refused:
    called in a thread, it would only hand back a coroutine, never run.

    Raises:
        TypeError: a non-callable factory, releaser, check or reset, or a
            coroutine function as one, a
            non-numeric size or number of seconds (a bool is neither, and
            ``check_interval`` cannot be ``None``), or a ``lifo`` that is not
            a bool.
        ValueError: ``pool_size < 1``, negative seconds, ``max_backoff`` or
            ``cleanup_timeout`` 0.
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
        is_closed: Callable[[T], object] | None = None,
        discard_on: type[BaseException] | tuple[type[BaseException], ...] = (),
        fatal: Fatal = None,
        create_timeout: float | _Default | None = _DEFAULT,
    ) -> None:
        callable_check("factory", factory, optional=False)
        callable_check("releaser", releaser)
        callable_check("check", check)
        callable_check("reset", reset)
        self._factory = factory
        self._name = f"{type(self).__name__}({name_of(factory)})"  # in log lines
        self._releaser = releaser
        self._check = check
        self._reset = reset
        self._pool_size = check_count("pool_size", pool_size, 1)
        self._recycle = check_seconds("pool_recycle", pool_recycle) or math.inf
        self._acquire_timeout = check_seconds("acquire_timeout", acquire_timeout)
        self._check_interval = check_seconds("check_interval", check_interval, optional=False)
        self._leak_timeout = check_seconds("leak_timeout", leak_timeout)
        # 0 would cut every reset and releaser short before it could run.
        self._cleanup_timeout = check_seconds("cleanup_timeout", cleanup_timeout, positive=True)
        self._max_backoff = check_seconds("max_backoff", max_backoff) or 0.0
        self._is_closed = check_predicate("is_closed", is_closed)
        self._discard_on = check_exception_types("discard_on", discard_on)
        self._fatal = check_fatal(fatal)
        if isinstance(create_timeout, _Default):
            self._create_timeout = self._acquire_timeout
        else:
            self._create_timeout = check_seconds("create_timeout", create_timeout)
        if not self._max_backoff:
            raise ValueError(f"max_backoff must be > 0 seconds, got {max_backoff}")
        self._lifo = check_flag("lifo", lifo)
        self._sites = leak_timeout is not None or _tracking.watching()
        self._plain = reset is None and leak_timeout is None and is_closed is None
        self._vets = check is not None or is_closed is not None

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
            PoolTimeout: the timeout passed.  A factory call under way (it
                runs in a thread of its own when a timeout applies) goes on;
                what it returns goes to the next waiter or joins the pool.
                The message carries the pool's counts and the last factory
                error, which is also its ``__cause__`` if it happened within
                the timeout's span or the factory is still failing.
            PoolClosed: the pool was disposed, before or during the wait.

        If the wait is interrupted (``KeyboardInterrupt``) nothing is lost: a
        resource or slot handed to this caller at that moment goes to the
        next waiter, and a factory call under way finishes for whoever is next.
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
        if not self._return_quickly(resource, False):
            self._release(resource, False)

    def _release(self, resource: T, suspect: bool) -> None:
        """Release's slow path; ``suspect``: its holder failed, so it is checked next time."""
        how = "release"
        if self._is_closed is not None and self._is_dead(resource):
            how = "discard"  # dead: closed, never pooled
        entry, to_close, overdue = self._take_back(resource, how, suspect)
        if self._reset is not None and how == "release":
            to_close = self._run_reset(entry)
        if to_close is not None:
            self._close_and_free(to_close)
        if overdue is not None:
            self._log_returned(overdue)

    def discard(self, resource: T) -> None:
        """Close a leased resource the holder knows is broken, instead of releasing it.

        The releaser runs now (bounded by ``cleanup_timeout`` if set; its
        error is logged and counted, never raised) and the slot goes at once
        to the oldest waiter, who creates a fresh resource in it.

        Raises:
            PoolError: this pool does not currently lease ``resource``.
        """
        _, to_close, overdue = self._take_back(resource, "discard", False)
        if to_close is not None:
            self._close_and_free(to_close)
        if overdue is not None:
            self._log_returned(overdue)

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
            if self._create(deadline, timeout, lease=False) is _MADE:
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

    def dispose(self, *, raise_errors: bool = False) -> None:
        """Close the pool; idempotent.

        Idle resources are closed now; every waiter and every later
        ``acquire`` gets :class:`PoolClosed`; a resource leased before is
        closed when it is released (without error).

        Every idle resource is tried.  A releaser error is counted and logged
        on the ``respool`` logger (a WARNING naming the resource, with the
        error's traceback: one record per error), and ``dispose`` returns.

        Args:
            raise_errors: raise the releaser errors instead (none is logged).

        Raises:
            ExceptionGroup: with ``raise_errors=True``, the releaser errors,
                raised together after every idle resource was tried.
        """
        gone = self._check_loop_or_rebind()
        with self._lock:
            if self._closed:
                return
            self._closed = True
            idle = list(self._idle)
            self._idle.clear()
            while (waiter := self._next_waiter()) is not None:
                waiter.closed = True
                try:
                    if waiter.failed is None:  # else it is awake already
                        waiter.event.set()
                except RuntimeError:
                    if not gone:
                        raise  # else its loop is gone: there is nobody to wake
                if waiter.creation is not None:  # it is not waiting for it any more
                    waiter.creation.owner = None
                    waiter.creation = None
            creations = [c.stop for c in self._creations if c.stop is not None]
        for stop in creations:  # what they made would only be closed: stop them
            try:
                stop()
            except RuntimeError:
                if not gone:
                    raise
        failed: list[tuple[Entry[T], Exception]] = []
        interrupted: BaseException | None = None
        try:
            for entry in idle:  # one at a time, to name each resource whose releaser failed
                try:
                    failed += [
                        (entry, error) for error in self._close_all([entry], log=False)
                    ]
                except BaseException as exc:  # finish the batch (see _close_all), then re-raise
                    interrupted = interrupted or exc
        finally:
            self._helpers.close()
        if failed and raise_errors and interrupted is None:
            raise ExceptionGroup(
                f"{len(failed)} of {len(idle)} idle resources failed to close on dispose",
                [error for _, error in failed],
            )
        hint = " (the pool's loop had ended: the resource may have belonged to it)" if gone else ""
        for entry, error in failed:
            logger.warning(
                "dispose: the releaser failed to close %s%s",
                show(entry.resource),
                hint,
                exc_info=error,
            )
        if interrupted is not None:
            raise interrupted

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
        """``with pool:`` returns the pool itself.

        Raises:
            PoolClosed: the pool was disposed.
        """
        if self._closed:
            raise PoolClosed(self._closed_message())
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
        step: Entry[T] | _Slot | _Waiter[T] | _Vet[T] | _Stale[T] | _Made | None = claim
        while not isinstance(step, Entry):
            if isinstance(step, _Waiter):
                step = self._wait(step, deadline, timeout)
            elif isinstance(step, _Vet):
                step = self._vet(step.entry, deadline, timeout)
            elif isinstance(step, _Stale):
                step = self._replace(step.entry, deadline, timeout)
            elif isinstance(step, _Slot):
                step = self._create(deadline, timeout, lease=True)
            else:  # look again, ahead of those who came later
                with self._lock:
                    step = self._claim(self._now(), front=True)
        return step

    def _claim(
        self, now: float, front: bool = False
    ) -> Entry[T] | _Slot | _Waiter[T] | _Vet[T] | _Stale[T]:
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
            if self._vets and (
                self._is_closed is not None or now - entry.last_used >= self._check_interval
            ):
                return _Vet(entry)
            return entry
        if self._slots < self._pool_size:
            self._slots += 1
            self._creating += 1
            return _SLOT
        return self._enqueue(front=front)

    def _enqueue(self, *, front: bool) -> _Waiter[T]:
        waiter: _Waiter[T] = _Waiter(self._guard.new_event())
        if front:  # it was at the head of the line already: it keeps its place
            self._waiters.appendleft(waiter)
        else:
            self._waiters.append(waiter)
        self._waiting += 1
        return waiter

    def _wait(
        self, waiter: _Waiter[T], deadline: float | None, timeout: float | None
    ) -> Entry[T] | _Vet[T] | _Slot | None:
        """Wait in line; ``None``: a creation this caller waits for ended without serving it."""
        try:
            woken = waiter.event.wait(deadline)
        except BaseException:
            with self._lock:
                to_close = self._abandon(waiter)
            if to_close is not None:
                self._close_and_free(to_close)
            raise
        return self._take(waiter, woken, timeout)

    def _take(
        self, waiter: _Waiter[T], woken: bool, timeout: float | None
    ) -> Entry[T] | _Vet[T] | _Slot | None:
        """What a waiter's wait ended with: a resource, a slot, or an error."""
        with self._lock:
            if waiter.entry is not None:
                return self._taken(waiter)
            if waiter.slot:
                return _SLOT
            if waiter.closed:
                self._abandon(waiter)  # frees a slot it held
                raise PoolClosed(self._closed_message())
            if woken or waiter.failed is not None:
                return None  # its creation ended (failed, or prefill's resource is placed)
            facts = self._timeout_facts()  # taken before leaving: it counts itself
            pausing, creating = waiter.holds_slot, waiter.creation is not None
            self._abandon(waiter)
        what = "waiting for a resource"
        if pausing:
            what = "while the factory kept failing"
        elif creating:
            what = _BEFORE_CREATED
        raise self._timeout_error(facts, timeout, what)

    def _vet(
        self, entry: Entry[T], deadline: float | None, timeout: float | None
    ) -> Entry[T] | _Slot | None:
        """Run ``check`` on a resource leased to the caller; replace it if broken.

        ``is_closed`` is asked first, every time; ``check`` only when the
        resource was not used within ``check_interval``.  A check cut short
        (timeout, interruption) leaves the resource in an unknown state, so it
        is closed.  With no time left to check, the resource goes back to the
        pool untouched.
        """
        if self._is_closed is not None and self._is_dead(entry.held()):
            with self._lock:
                self._unlease(entry, taken=False)
                self._broken += 1
            return self._replace(entry, deadline, timeout)
        if self._check is None or self._now() - entry.last_used < self._check_interval:
            return entry
        if deadline is not None and deadline <= self._now():
            self._put_back(entry)
            with self._lock:
                facts = self._timeout_facts()
            raise self._timeout_error(facts, timeout, "before an idle resource could be checked")
        check = self._check
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
                return self._failed_check(entry, exc, deadline, timeout)
            if call.timed_out:
                with self._lock:
                    facts = self._timeout_facts()
                error = self._timeout_error(facts, timeout, "checking an idle resource")
                raise error from error.__cause__
            raise
        if verdict is False:
            return self._failed_check(entry, None, deadline, timeout)
        return entry

    def _failed_check(
        self,
        entry: Entry[T],
        error: Exception | None,
        deadline: float | None,
        timeout: float | None,
    ) -> _Slot | None:
        """``check`` said broken: close the resource, keep the slot for a replacement."""
        logger.warning(
            "check failed on %s (%s); closing it",
            show(entry.resource),
            "it returned False" if error is None else show(error),
        )
        with self._lock:
            self._unlease(entry, taken=False)
            self._broken += 1
        return self._replace(entry, deadline, timeout)

    def _put_back(self, entry: Entry[T]) -> None:
        """Return a resource leased to a caller that did not take it after all."""
        with self._lock:
            self._unlease(entry, taken=False)
            to_close = self._put(entry, self._now())
        if to_close is not None:
            self._close_and_free(to_close)

    def _create(
        self, deadline: float | None, timeout: float | None, lease: bool
    ) -> Entry[T] | _Vet[T] | _Stale[T] | _Slot | _Waiter[T] | _Made | None:
        """Make a resource in a slot the caller reserved (counted in ``_creating``).

        The factory runs in the background (:meth:`_run_creation`) while the
        caller stands in line, so a resource released meanwhile may serve it
        first, and a caller who gives up leaves the factory call to finish.
        While the factory fails, the caller retries after the pool's backoff
        pause, keeping the slot and its place in line all along.
        ``lease=False`` (prefill) places the resource in the pool instead and
        returns ``_MADE``; ``None`` means look again.
        """
        waiter: _Waiter[T] | None = None  # its place in line (a prefill's stands apart)
        while True:
            with self._lock:
                if waiter is not None and waiter.entry is not None:  # released to it meanwhile
                    return self._taken(waiter)
                resume, now = self._backoff_until, self._now()
                problem = self._creation_problem(waiter, deadline, now, lease)
                if problem is not None:
                    self._drop_creator(waiter)
                    if problem == "idle":  # returned while its factory call failed: take it
                        return self._claim(now, front=True)
                    if problem == "closed":
                        raise PoolClosed(self._closed_message())
                    facts = self._timeout_facts()
                else:
                    if waiter is None:
                        waiter = self._new_creator(lease)
                    waiter.holds_slot = resume > now
                    if not waiter.holds_slot:
                        creation: _Creation[T] = _Creation(self._generation, waiter, lease)
                        waiter.creation = creation
                        self._creations.add(creation)
            if problem is not None:
                raise self._timeout_error(facts, timeout, problem)
            assert waiter is not None  # given its place above
            if waiter.holds_slot:  # the backoff: wait it out in line, then look again
                self._wait_out_backoff(waiter, resume, deadline, lease)
                continue
            creation.stop = self._guard.spawn(
                functools.partial(self._run_creation, creation),
                needed=deadline is not None,
                helpers=self._helpers,
            )
            got = self._wait(waiter, deadline, timeout)
            assert not isinstance(got, _Slot)  # a creator is never handed a slot
            if got is not None:
                return got
            with self._lock:  # its factory call ended without serving it
                if waiter.entry is not None:  # released to it just then
                    return self._taken(waiter)
                error, waiter.failed = waiter.failed, None
                if error is None:  # prefill: placed, or closed at once
                    return _MADE if waiter.fresh else None
                waiter.event = self._guard.new_event()  # it stays in line, holding the slot
            if isinstance(error, _Duplicate):
                error = self._duplicate_error(error.args[0])
            elif not isinstance(error, Exception) and self._closed:
                error = PoolClosed(self._closed_message())  # dispose stopped the call
            if waiter.fatal or isinstance(error, PoolError):  # PoolClosed, a duplicate
                with self._lock:
                    self._drop_creator(waiter)
                raise error

    def _creation_problem(
        self, waiter: _Waiter[T] | None, deadline: float | None, now: float, lease: bool
    ) -> str | None:
        """Under the lock: why a creator must not (re)try now, if it must not."""
        if self._closed:
            return "closed"
        if lease and self._idle:
            return "idle"
        if deadline is not None and deadline <= now:  # timeout=0 never calls the factory
            return _BEFORE_CREATED if waiter is None else _KEPT_FAILING
        if self._backoff_until > now and self._no_retry_fits(deadline, waiter):
            return _NO_RETRY_FITS
        return None

    def _new_creator(self, lease: bool) -> _Waiter[T]:
        """Under the lock: a creator's place in line (front: it got a slot, so none is older)."""
        if not lease:  # prefill: out of line, it only watches its creation
            waiter: _Waiter[T] = _Waiter(self._guard.new_event())
            waiter.abandoned = True
            return waiter
        waiter = self._enqueue(front=True)
        self._creators += 1
        return waiter

    def _drop_creator(self, waiter: _Waiter[T] | None) -> None:
        """Under the lock: a creator gives up its slot and its place in line."""
        if waiter is None or (waiter.abandoned and not waiter.holds_slot):
            self._creation_failed()
        else:
            waiter.holds_slot = True  # so _abandon frees the slot it holds
            self._abandon(waiter)

    def _taken(self, waiter: _Waiter[T]) -> Entry[T] | _Vet[T]:
        """Under the lock: the resource handed to a waiter is its caller's now."""
        entry = cast(Entry[T], waiter.entry)
        entry.handed = None
        if waiter.fresh:
            return entry
        return self._vetting(entry, self._now())

    def _wait_out_backoff(
        self, waiter: _Waiter[T], resume: float, deadline: float | None, lease: bool
    ) -> None:
        """Wait for the backoff to end, holding the slot (in line, unless prefill's).

        A resource released meanwhile is handed to the waiter; the caller then
        takes it on its next look.
        """
        limit = resume if deadline is None else min(resume, deadline)
        try:
            if lease:
                waiter.event.wait(limit)
            else:
                sleep_until(limit, self._now)
        except BaseException:
            with self._lock:
                to_close = self._abandon(waiter)  # frees the slot it holds
            if to_close is not None:
                self._close_and_free(to_close)
            raise
        with self._lock:
            if waiter.entry is None and not waiter.closed:
                waiter.event = self._guard.new_event()  # still in line, for the next wait

    def _no_retry_fits(self, deadline: float | None, waiter: _Waiter[T] | None) -> bool:
        """Under the lock: the backoff outlasts the deadline, and nothing else could serve."""
        if deadline is None or self._backoff_until < deadline:
            return False
        others = self._creators - (waiter is not None and not waiter.abandoned)
        return self._leased == 0 and others == 0

    def _is_fatal(self, error: BaseException) -> bool:
        """Whether a factory error ends the acquire at once instead of a retry."""
        if not isinstance(error, Exception) or isinstance(error, (NotAwaitableError, PoolError)):
            return True
        fatal = self._fatal
        if fatal is None:
            return False
        if isinstance(fatal, tuple):
            return isinstance(error, fatal)
        try:
            return bool(fatal(error))
        except Exception:
            logger.exception("fatal=%s raised; treating the factory error as fatal", show(fatal))
            return True

    def _run_creation(self, creation: _Creation[T]) -> None:
        """The factory call, in the background: its resource or error goes where it is due.

        It never raises (nothing would catch it): whatever happens is handed
        to the caller waiting for it, or settled here.
        """
        limit = None if self._create_timeout is None else self._now() + self._create_timeout
        try:
            resource = call_within(self._factory, limit, self._now)
        except BaseException as exc:
            error: BaseException = exc
            if isinstance(exc, CallTimeout):
                error = TimeoutError(
                    f"the factory did not return within create_timeout={self._create_timeout:g}s"
                )
            attempts = 0
            fatal = self._is_fatal(error)  # user code (a predicate): outside the lock
            with self._lock:
                owner = self._settle(creation, served=False)
                if isinstance(error, Exception) and not isinstance(error, NotAwaitableError):
                    attempts = self._factory_failed(error, fatal)
                if owner is not None:  # the slot goes back to its caller
                    owner.failed, owner.fatal = error, fatal
                    owner.event.set()
                else:
                    self._creation_failed()
            if attempts:
                self._log_outage(error, attempts)
            return
        to_close: Entry[T] | None = None
        refused = False
        wake: _Waiter[T] | None = None  # woken once the log line is out
        outage = None
        with self._lock:
            owner = self._settle(creation, served=True)
            if self._lost:  # a dead resource's id may have been reused by this one
                self._recover_lost()
            if resource is None or id(resource) in self._alive:
                refused = True
                if owner is not None:
                    owner.failed = _Duplicate(resource)
                    owner.event.set()
                else:
                    self._creation_failed()
            else:
                outage = self._outage_over()
                entry = self._register(resource, creation.generation)
                if owner is not None and creation.lease and not self._closed:
                    self._lease(entry)  # its own caller, out of line: nobody else wakes it
                    owner.entry = entry
                    owner.fresh = True
                    entry.handed = owner
                    wake = owner
                else:
                    to_close = self._put(entry, entry.last_used)
                    if owner is not None:  # prefill, waiting for it
                        owner.fresh = to_close is None
                        wake = owner
        if outage is not None:
            logger.info(
                "%s: the factory works again after %.1fs and %d failed attempts",
                self._name,
                *outage,
            )
        if wake is not None:
            wake.event.set()
        if refused and owner is None:
            logger.error(
                "discarding what the factory returned after its caller left",
                exc_info=self._duplicate_error(resource),
            )
        if to_close is not None:
            try:
                self._close_and_free(to_close)
            except BaseException as exc:  # in the background: nothing would catch it
                if isinstance(exc, Exception):
                    logger.error("closing %s failed", show(to_close.resource), exc_info=exc)

    def _settle(self, creation: _Creation[T], *, served: bool) -> _Waiter[T] | None:
        """Under the lock: a creation ended; the caller still waiting for it, if any.

        ``served``: its resource serves that caller, out of turn, so the caller
        leaves the line.  Else (the factory failed) the caller keeps its place,
        holding the slot again, to retry.
        """
        owner, creation.owner = creation.owner, None
        self._creations.discard(creation)
        if owner is not None:
            if served and creation.lease:
                self._leave_line(owner)
            elif not served:
                owner.holds_slot = True  # still counted a creator, in line
            owner.creation = None
        return owner

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

    def _replace(
        self, entry: Entry[T], deadline: float | None, timeout: float | None
    ) -> _Slot | None:
        """Close a stale or broken resource the caller took; keep its slot to create in.

        Keeping the slot keeps the caller's place: a newcomer parked meanwhile
        stays behind it.  The releaser runs in the background, bounded by
        ``cleanup_timeout`` alone, while the caller waits for it until its own
        deadline: past it the caller times out and the close goes on, its slot
        then going to the line.  Returns ``None`` (slot freed) to look again
        when idle resources are left or the pool closed.
        """
        closing: _Waiter[T] = _Waiter(self._guard.new_event())  # in no line
        with self._lock:
            if self._idle:  # another idle one may serve at once: do not wait for the close
                closing.abandoned = True  # its slot goes to the line when the close ends
        self._guard.spawn(
            functools.partial(self._close_in_background, entry, closing),
            needed=deadline is not None,
            helpers=self._helpers,
        )
        if closing.abandoned:
            return None  # look again
        try:
            closing.event.wait(deadline)
        except BaseException:
            with self._lock:
                closing.abandoned = True
                if closing.slot:  # closed just then: the slot was handed to this caller
                    self._free_slot()
            raise
        with self._lock:
            if not closing.slot and entry.late and not self._closed:
                closing.abandoned = True
                return None  # its releaser runs on, holding the slot: look again
            if not closing.slot:  # still closing at the deadline
                closing.abandoned = True
                facts = self._timeout_facts()
            elif closing.failed is not None:
                self._free_slot()
                raise closing.failed
            elif self._idle or self._closed:
                self._free_slot()
                return None
            else:
                self._creating += 1
                return _SLOT
        raise self._timeout_error(facts, timeout, "while a stale or broken resource was closed")

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
            if error is None:  # a suspect was marked by _take_back
                return self._check_in(entry, entry.last_used == -math.inf)
            self._unlease(entry)
            self._broken += 1
        if not isinstance(error, Exception) or isinstance(error, NotAwaitableError):
            self._close_and_free(entry)
            if isinstance(error, NotAwaitableError):  # a plain reset: a mistake, raised
                raise error.about("reset", "its resource was closed, not pooled") from None
            raise error
        if error is not _RESET_REFUSED:
            logger.warning("reset failed on %s (%s); closing it", show(entry.resource), show(error))
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
        if self._vets and (
            self._is_closed is not None or now - entry.last_used >= self._check_interval
        ):
            return _Vet(entry)
        return entry

    def _is_dead(self, resource: T) -> bool:
        """``is_closed(resource)``, outside the lock; an error counts as dead."""
        try:
            return bool(cast(Callable[[T], object], self._is_closed)(resource))
        except Exception as exc:
            logger.warning("is_closed raised on %s (%s); closing it", show(resource), show(exc))
            return True

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
        """A factory call returned: its slot now holds a live resource.

        Raises ``_Duplicate`` (slot freed, nothing counted) for a resource the
        pool already holds, or for ``None``, which cannot be told apart from
        a resource its holder has (see ``Entry``).
        """
        self._creating -= 1
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

    def _factory_failed(self, error: Exception, fatal: bool = False) -> int:
        """Count a factory error and push back the next attempt (exponential, jittered).

        Returns the outage's attempt count when a log line is due (its first
        failure, then one every ``OUTAGE_LOG_EVERY`` seconds), else 0.  A
        ``fatal`` error is only counted: it is raised, never retried.
        """
        self._create_errors += 1
        self._last_error = error
        now = self._last_error_at = self._now()
        if fatal:
            return 0
        self._failures += 1
        pause = min(self._max_backoff, FIRST_BACKOFF * 2.0 ** min(self._failures - 1, 32))
        self._backoff_until = max(self._backoff_until, now + pause * (1.0 - random.random() / 2))
        if self._failures == 1:
            self._outage_since = self._outage_logged = now
            return 1
        if now - self._outage_logged >= OUTAGE_LOG_EVERY:
            self._outage_logged = now
            return self._failures
        return 0

    def _outage_over(self) -> tuple[float, int] | None:
        """Under the lock, as a creation succeeds: the outage it ends (seconds, attempts)."""
        if not self._failures:
            return None
        return self._now() - self._outage_since, self._failures

    def _log_outage(self, error: BaseException, attempts: int) -> None:
        if not logger.isEnabledFor(logging.WARNING):
            return
        if attempts == 1:
            logger.warning(
                "%s: the factory failed (%s); retrying with backoff (up to %gs apart) "
                "while it fails",
                self._name,
                show(error),
                self._max_backoff,
            )
        else:
            logger.warning(
                "%s: the factory is still failing after %d attempts over %.1fs; last error: %s",
                self._name,
                attempts,
                self._now() - self._outage_since,
                show(error),
            )

    def _release_problem(self, entry: Entry[T] | None, resource: T) -> str | None:
        if entry is None or not entry.leased or not entry.holds(resource):
            return "does not lease it (released twice, or never acquired from this pool)"
        if entry.handed is not None:
            return (
                "already got it back: it was released twice (the first release is still "
                "resetting it, or handed it to a waiter that has not taken it yet)"
            )
        return None

    def _take_back(
        self, resource: T, how: str, suspect: bool
    ) -> tuple[Entry[T], Entry[T] | None, _Overdue | None]:
        """Take a resource back from its holder, or raise :class:`PoolError`.

        Returns its record, what must be closed now, and, if it was held past
        ``leak_timeout``, what the warning about it will say.  ``reset``, when
        the pool has one, is left to the caller.
        """
        self._check_loop()
        with self._lock:
            entry = self._alive.get(id(resource))
            problem = self._release_problem(entry, resource)
            if entry is not None and problem is None:
                entry.resource = resource
                overdue = self._overdue(entry, resource)
                if how == "discard":
                    self._unlease(entry)
                    self._broken += 1
                    return entry, entry, overdue
                if self._reset is not None:
                    entry.handed = _RETURNING
                    if suspect:
                        entry.last_used = -math.inf
                    return entry, None, overdue
                return entry, self._check_in(entry, suspect), overdue
        advice = "release or discard each acquired resource exactly once, or use `lease()`"
        raise PoolError(f"{how}({show(resource)}): this {type(self).__name__} {problem}; {advice}")

    def _overdue(self, entry: Entry[T], resource: T) -> _Overdue | None:
        """Under the lock: the facts for a warning, if ``entry`` was held past ``leak_timeout``."""
        if self._leak_timeout is None:
            return None
        held = self._now() - entry.leased_at
        if held < self._leak_timeout and not entry.reported:
            return None
        return _Overdue(resource, held, entry.site, entry.reported)

    def _return_quickly(self, resource: T, suspect: bool) -> bool:
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
            entry.last_used = -math.inf if suspect else now  # suspect: checked when next handed out
            self._leased -= 1
            self._put(entry, now)
            return True

    def _check_in(self, entry: Entry[T], suspect: bool = False) -> Entry[T] | None:
        """A holder gave ``entry`` back; return it if it must be closed."""
        entry.leased = False  # _unlease, inlined: this is the release hot path
        self._leased -= 1
        if self._leak_timeout is not None:
            self._holding.pop(entry, None)
        now = self._now()
        entry.last_used = -math.inf if suspect else now  # suspect: checked when next handed out
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
        if waiter.failed is None:
            waiter.event.set()
        else:  # woken already (its factory call failed): it takes this instead of retrying
            waiter.failed = None
        if waiter.creation is not None:  # its factory call goes on for whoever is next
            waiter.creation.owner = None
            waiter.creation = None
        elif waiter.holds_slot:  # it was backing off in a slot it no longer needs
            waiter.holds_slot = False
            self._creation_failed()
        return None

    def _free_slot(self) -> None:
        """A slot emptied: the oldest waiter gets to create in it, else it is free."""
        waiter = self._next_waiter(for_slot=True)
        if waiter is None:
            self._slots -= 1
            return
        self._creating += 1
        waiter.slot = True
        waiter.event.set()

    def _next_waiter(self, *, for_slot: bool = False) -> _Waiter[T] | None:
        """Take the oldest waiter out of line.  ``for_slot``: one that is not creating already."""
        waiters = self._waiters
        passed: list[_Waiter[T]] = []
        found = None
        while waiters:
            waiter = waiters.popleft()
            if waiter.abandoned:
                continue
            if for_slot and (waiter.creation is not None or waiter.holds_slot):
                passed.append(waiter)  # at most pool_size of them: they hold slots
                continue
            found = waiter
            self._waiting -= 1
            if waiter.creation is not None or waiter.holds_slot:
                self._creators -= 1
            break
        waiters.extendleft(reversed(passed))
        return found

    def _leave_line(self, waiter: _Waiter[T]) -> None:
        """Take a waiter out of line where it stands (skipped when reached)."""
        if waiter.abandoned:
            return
        waiter.abandoned = True
        self._waiting -= 1
        if waiter.creation is not None or waiter.holds_slot:
            self._creators -= 1
        if len(self._waiters) > 2 * self._waiting + 32:
            self._waiters = deque(w for w in self._waiters if not w.abandoned)

    def _abandon(self, waiter: _Waiter[T]) -> Entry[T] | None:
        """A waiter gave up (or the pool closed): pass on what it holds, leave the line.

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
            return None
        if not waiter.closed:
            self._leave_line(waiter)
        if waiter.creation is not None:  # its factory call goes on, for whoever is next
            waiter.creation.owner = None
            waiter.creation = None
        if waiter.holds_slot or waiter.failed is not None:  # a slot it held for a retry
            waiter.holds_slot = False
            waiter.failed = None
            self._creation_failed()
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
        """Every gauge and counter at zero, and a fresh lock: a new pool, or a forked child's."""
        self._lock = StateLock()
        self._slots = self._creating = self._leased = self._waiting = self._creators = 0
        self._creations: set[_Creation[T]] = set()  # running in the background
        self._created = self._closed_count = self._acquired = 0
        self._timeouts = self._create_errors = self._close_errors = 0
        self._broken = self._lost_count = 0
        self._last_error = None
        self._last_error_at = 0.0
        self._failures = 0
        self._backoff_until = self._outage_since = self._outage_logged = 0.0
        self._self_ref = weakref.ref(self)

    def _forget_after_fork(self) -> None:
        """In a child process after ``os.fork()``: every resource is the parent's.

        The child neither hands them out nor closes them; it starts empty, its
        counters at zero (they count what the child does).  (Another thread
        may have held the lock at the fork: it gets a new one.)
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
            waiting=self._waiting - self._creators,
            created=self._created,
            closed=self._closed_count,
            acquired=self._acquired,
            timeouts=self._timeouts,
            create_errors=self._create_errors,
            close_errors=self._close_errors,
            broken=self._broken,
            lost=self._lost_count,
        )

    def _timeout_facts(self) -> _Facts:
        """Under the lock: count a timeout and note what its message will say."""
        self._timeouts += 1
        now = self._now()
        return self._stats(), self._last_error, now - self._last_error_at, self._overdue_leases(now)

    def _overdue_leases(self, now: float) -> _Leases | None:
        """Under the lock: the leases held past ``leak_timeout`` (a scan: timeouts only)."""
        limit = self._leak_timeout
        if limit is None:
            return None
        overdue = [
            e
            for e in self._alive.values()
            if e.leased and e.handed is None and now - e.leased_at >= limit
        ]
        if not overdue:
            return None
        oldest = min(overdue, key=lambda e: e.leased_at)
        return _Leases(len(overdue), now - oldest.leased_at, oldest.site)

    def _timeout_error(self, facts: _Facts, timeout: float | None, what: str) -> PoolTimeout:
        # Built outside the lock: repr() of the factory's error is user code.
        stats, last, ago, leases = facts
        seconds = self._acquire_timeout if timeout is None else timeout
        if last is None:
            cause = "no factory errors so far"
        else:
            cause = f"last factory error ({ago:.1f}s ago): {show(last)}"
        held = ""
        if leases is not None:
            held = (
                f"; {leases.count} lease{'s' if leases.count > 1 else ''} held past "
                f"leak_timeout={self._leak_timeout:g}s, the oldest for {leases.oldest:.1f}s, "
                f"acquired at {_site_line(leases.site)}"
            )
        error = PoolTimeout(
            f"{type(self).__name__}: no resource after {seconds:g}s {what} ({stats}); "
            f"{cause}{held}",
            stats,
            last,
        )
        # A factory error within the call's own time span, or of an outage still
        # under way (no creation has worked since), is why it timed out.
        recent = ago <= (seconds or 0) or self._failures > 0  # a plain read: a hint
        error.__cause__ = last if last is not None and recent else None
        error.__suppress_context__ = True  # the pool's internal TimeoutError says nothing more
        return error

    def _duplicate_error(self, resource: object) -> PoolError:
        if resource is None:
            return PoolError(
                "the factory returned None: a factory must return the resource it made "
                "(is a `return` missing?); nothing was pooled and its slot is free"
            )
        return PoolError(
            f"the factory returned {show(resource)}, which this pool already "
            "holds; a factory must return a new resource on every call"
        )

    def _closed_message(self) -> str:
        return f"this {type(self).__name__} was disposed; create a new pool"

    # -- leaks -------------------------------------------------------------------

    def _lost_one(self, entry: Entry[T]) -> None:
        """Weak-reference callback: a holder dropped ``entry``'s resource unreleased.

        It may run inside any allocation, even one made under the pool's own
        lock, and in any thread (the cyclic GC runs wherever it is triggered),
        so it never waits for the lock: if the lock is busy, recovery is
        scheduled to run once the holder is done (a parked waiter must not
        wait on a slot nobody will free).  A pool bound to a loop always
        schedules it there: only on its own loop may a parked task be woken.
        """
        self._lost.append(entry)
        if self._guard.wakes_from_any_thread and self._lock.acquire(blocking=False):
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
                overdue.append((entry.current(), now - entry.leased_at, entry.site))
        for resource, held, site in overdue:
            logger.warning(
                "%s has been held for %.1fs (leak_timeout=%gs); it was acquired at:\n%s",
                show(resource),
                held,
                limit,
                _stack(site),
            )

    def _log_returned(self, overdue: _Overdue) -> None:
        """A lease held past ``leak_timeout`` ended: always worth a warning, reported or not."""
        logger.warning(
            "%s came back after %.1fs, held past leak_timeout=%gs%s; it was acquired at:\n%s",
            show(overdue.resource),
            overdue.held,
            self._leak_timeout,
            " (it was reported as a possible leak while held)" if overdue.reported else "",
            _stack(overdue.site),
        )

    def _outstanding(self) -> list[tuple[object, traceback.StackSummary | None]]:
        """Resources leased now, with where each was acquired if that was recorded."""
        with self._lock:
            return [(e.current(), e.site) for e in self._alive.values() if e.leased]

    # -- closing ---------------------------------------------------------------

    def _close(self, entry: Entry[T]) -> Exception | None:
        """Run the releaser; return its error.

        It is bounded by ``cleanup_timeout``.  A releaser left running past it
        (threads: a call cannot be cut short) keeps its resource counted alive
        and its slot taken until it really ends (``entry.late`` is set, and
        :meth:`_closed_late` settles it), so closing never lets more than
        ``pool_size`` resources exist.
        """
        error: Exception | None = None
        call: BoundedCall[object] | None = None
        try:
            if self._releaser is not None:
                call = BoundedCall(
                    functools.partial(self._releaser, entry.held()),
                    functools.partial(self._closed_late, entry),
                    self._now,
                    self._helpers,
                )
                with Shield():
                    call.run(self._cleanup_deadline(), start=True)
        except Exception as exc:
            error = exc
            if call is not None and call.timed_out:
                error = TimeoutError(
                    f"the releaser did not finish within cleanup_timeout={self._cleanup_timeout}s"
                )
        finally:
            with self._lock:
                if error is not None:
                    self._close_errors += 1
                if call is not None and call.detached:
                    entry.late = True  # still closing: _closed_late counts it and frees its slot
                else:
                    del self._alive[entry.key]
                    entry.ref = None
                    self._closed_count += 1
        if isinstance(error, NotAwaitableError):  # a plain releaser: a mistake, raised
            raise error.about("releaser", "it ran; its resource counts as closed") from None
        return error

    def _closed_late(
        self, entry: Entry[T], result: object, error: BaseException | None
    ) -> None:
        """A releaser left running past ``cleanup_timeout`` ended (threads only)."""
        with self._lock:
            del self._alive[entry.key]
            entry.ref = None
            self._closed_count += 1
            self._free_slot()

    def _close_and_free(self, entry: Entry[T]) -> None:
        """Close a resource nobody holds (logging a releaser error), free its slot."""
        try:
            error = self._close(entry)
        finally:
            if not entry.late:
                with self._lock:
                    self._free_slot()
        self._log_close_error(entry, error)

    def _close_in_background(self, entry: Entry[T], closing: _Waiter[T]) -> None:
        """Close a resource an acquire met; hand its slot to that caller if still there.

        It runs in the background and never raises (nothing would catch it).
        """
        error: BaseException | None
        try:
            error = self._close(entry)
        except BaseException as exc:  # a plain releaser (TypeError), the loop ending
            error = exc
        with self._lock:
            if entry.late:  # its slot is freed when the releaser ends: the caller looks again
                if not closing.abandoned:
                    closing.event.set()
            elif closing.abandoned:  # the caller left (timeout): the slot goes to the line
                self._free_slot()
            else:
                closing.slot = True
                if isinstance(error, NotAwaitableError):  # a mistake: its caller raises it
                    closing.failed, error = error, None
                closing.event.set()
        if isinstance(error, Exception):
            self._log_close_error(entry, error)

    def _log_close_error(self, entry: Entry[T], error: Exception | None) -> None:
        if error is not None:
            logger.error("releaser failed to close %s", show(entry.resource), exc_info=error)

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
                    if not entry.late:
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

    def _check_loop_or_rebind(self) -> bool:
        """``_check_loop``, for ``dispose``: a pool whose loop has ended binds to this one.

        Returns whether it did (nothing can ever run on the loop it had).
        """
        try:
            self._check_loop()
        except PoolError:
            if not self._guard.bound_loop_is_gone():
                raise
            self._guard = LoopGuard()
            self._check_loop()
            return True
        return False

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
        if exc_type is not None and pool._discard_on and issubclass(exc_type, pool._discard_on):
            if id(resource) in pool._alive:  # else the holder discarded it already
                pool.discard(resource)
            return
        suspect = exc_type is not None  # the body failed: the resource may be why
        if not pool._return_quickly(resource, suspect) and id(resource) in pool._alive:
            pool._release(resource, suspect)  # else the holder discarded it
