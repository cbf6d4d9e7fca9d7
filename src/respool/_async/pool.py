"""The public face of the pool, and its hot path.

This package is the source of truth for both faces: ``unasync_build.py``
generates ``respool/_sync/`` (``Pool``) from it.  The pool's state, written
once for both, is ``respool._state``; everything that differs between the
two faces comes from ``respool._synchronization``.  This module holds the
public methods and the hot path; the rest of the work is done by
``acquiring`` (the slow path of ``acquire``), ``creating`` and ``closing``.
"""

from __future__ import annotations

import sys
import traceback
import weakref
from collections.abc import Callable
from typing import Any, TypeVar

from .. import _fork, _tracking
from .._checks import Fatal, check_seconds
from .._config import DEFAULT, FAIRNESS_WINDOW, Default, settings
from .._logs import PoolLog
from .._reprs import name_of
from .._state import CODE as STATE_CODE
from .._state import PoolState
from .._state.records import Entry
from .._stats import PoolStats
from .._synchronization import (
    AsyncHelpers,
    AsyncLoopGuard,
    AsyncMaintainerTask,
    AsyncStateLock,
    async_callable_check,
    async_ki_protected,
    async_wrap_sigint_handler,
)
from .._types import AsyncCheck, AsyncFactory, AsyncReleaser
from ..events import CheckedOut, Event, Hooks, noting
from .acquiring import Acquirer
from .binding import Binding
from .closing import Closer
from .creating import Creator
from .lease import AsyncLease
from .lifecycle import AsyncLifecycle
from .maintenance import Maintainer

T = TypeVar("T")

# Threads: KeyboardInterrupt waits until the shared state's bookkeeping is done.
for _code in STATE_CODE:
    async_ki_protected(_code)


@async_ki_protected  # threads: KeyboardInterrupt waits until the bookkeeping is done
class AsyncPool(AsyncLifecycle[T]):
    """A pool of resources for asyncio and trio code (through anyio).

    Args:
        factory: ``async () -> T`` makes a new resource.
        releaser: ``async (T) -> object`` closes one, or ``None`` if there is
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
        check: ``async (T) -> object`` tests an idle resource before it is
            handed out; returning ``False`` or raising means broken: the
            resource is closed and the caller gets another one or a new one,
            within the same timeout.  ``None`` (default) trusts idle resources.
        check_interval: a resource used less than this many seconds ago is
            handed out without a check (default 0.5); ``0`` checks every time.
            A resource whose ``lease()`` body raised is checked next time
            regardless.
        reset: ``async (T) -> object`` runs on every release (say a
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
            they take; one still running then is cancelled and its resource
            counted as closed.
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
            whoever waits for it (default: ``acquire_timeout``).  A factory
            call runs in the background: a caller who gives up leaves it to
            finish, and its resource goes to the oldest waiter or the idle
            set.
        min_size: the fewest resources an opened pool (see :meth:`open`)
            keeps alive, idle or leased, creating the missing ones in the background one at a
            time (with the backoff while the factory fails).  Callers never
            wait for this: they create on demand as ever.
        idle_timeout: seconds an idle resource may stay unused before it is
            closed, while more than ``min_size`` are alive; enforced by the
            maintainer, else on release.  ``None`` (default): never.
        keepalive: seconds after which an opened pool checks an idle
            resource nobody used (with ``check``, in the background), so a
            firewall or server timeout cannot kill it unseen; a failed one
            is closed (and, below ``min_size``, replaced).  Needs ``check``.
        burst_limit: when ``pool_size`` resources are alive and a caller
            would wait, the pool creates more, up to this many alive in all;
            one above ``pool_size`` that comes back when nobody waits is
            closed.  ``None`` (default): no burst.
        max_waiting: when this many callers wait already, ``acquire``
            raises :class:`PoolExhausted` at once instead of waiting.
        metrics: record the latency histograms of :meth:`stats` (``wait``,
            ``hold``, ``create``, ``check``).  Off by default: it costs
            17-20 % of a warm ``acquire`` and ``release`` (measured: see the
            docs' Monitoring page); the counters are always kept.
        on_event: a plain callable given a record of each thing the pool
            does (``respool.events``: ``Created``, ``CheckedOut``,
            ``CheckedIn``, ``CheckFailed``, ``Closed`` with its reason,
            ``TimedOut`` with its ``PoolTimeout``, ``Leaked``).  It is called
            outside the pool's lock, where the event happens; an error it
            raises is logged once per pool, never raised.
        name: the pool's name in its log lines (``Pool(name): ...``) and in
            each record's ``pool`` attribute; default: the factory's
            qualified name.  Every line goes to the ``respool`` logger:
            WARNING for leaks, close errors, failed checks and resets and an
            outage's start; INFO for an outage's end; DEBUG for each
            resource created and closed.
        fairness_window: seconds the oldest waiter may be passed over
            (default 0.005).  While it has waited less, a resource coming
            back goes to the idle set, whoever asks first takes it, and the
            oldest waiter is woken to look too; once it has waited this
            long, a returned resource is handed straight to it.  So
            newcomers never delay a waiter by more than about this long,
            and under contention a returning caller rarely has to wait and
            be woken (2x the throughput, measured: see the docs' Design
            page, decision 1).  ``0``: strict first come, first served.

    The pool can be built outside any event loop (say at module level); it
    binds to the first loop that uses it, and use from another loop raises
    :class:`PoolError`.

    A resource its holder drops without releasing it (the holder was
    garbage-collected) is noticed if the resource supports weak references:
    a ``ResourceWarning`` names where it was acquired, and its slot is freed.

    A plain (not async) factory, releaser, check or reset is accepted, as it
    may return an awaitable; one that returns something else makes the call
    that ran it raise ``TypeError`` (a releaser's resource still counts
    as closed, a reset's is closed; either way its slot is freed).

    Raises:
        TypeError: a non-callable factory, releaser, check or reset, a
            non-numeric size or number of seconds (a bool is neither, and
            ``check_interval`` and ``fairness_window`` cannot be ``None``),
            or a ``lifo`` that is not a bool.
        ValueError: ``pool_size < 1``, negative seconds (``fairness_window``
            too), ``max_backoff``,
            ``cleanup_timeout``, ``idle_timeout`` or ``keepalive`` 0, sizes
            out of order (``min_size <= pool_size <= burst_limit``), or
            ``keepalive`` without ``check``.
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
        check: AsyncCheck[T] | None = None,
        check_interval: float = 0.5,
        reset: AsyncCheck[T] | None = None,
        leak_timeout: float | None = None,
        cleanup_timeout: float | None = None,
        max_backoff: float = 2.0,
        is_closed: Callable[[T], object] | None = None,
        discard_on: type[BaseException] | tuple[type[BaseException], ...] = (),
        fatal: Fatal = None,
        create_timeout: float | Default | None = DEFAULT,
        min_size: int = 0,
        idle_timeout: float | None = None,
        keepalive: float | None = None,
        burst_limit: int | None = None,
        max_waiting: int | None = None,
        metrics: bool = False,
        on_event: Callable[[Event], object] | None = None,
        name: str | None = None,
        fairness_window: float = FAIRNESS_WINDOW,
    ) -> None:
        async_callable_check("factory", factory, optional=False)
        async_callable_check("releaser", releaser)
        async_callable_check("check", check)
        async_callable_check("reset", reset)
        s = settings(
            pool_size=pool_size, pool_recycle=pool_recycle, lifo=lifo,
            acquire_timeout=acquire_timeout, check_interval=check_interval,
            leak_timeout=leak_timeout, cleanup_timeout=cleanup_timeout, max_backoff=max_backoff,
            is_closed=is_closed, discard_on=discard_on, fatal=fatal, create_timeout=create_timeout,
            min_size=min_size, idle_timeout=idle_timeout, keepalive=keepalive,
            burst_limit=burst_limit, max_waiting=max_waiting, metrics=metrics,
            on_event=on_event, name=name, fairness_window=fairness_window,
            checks=check is not None,
        )  # fmt: skip
        self._pool_size = s.pool_size
        self._acquire_timeout = s.acquire_timeout
        self._discard_on = s.discard_on  # read by the lease
        self._sites = leak_timeout is not None or _tracking.watching()
        guard = AsyncLoopGuard()
        self._state = state = self._new_state(
            type(self).__name__, s, checks=check is not None, resets=reset is not None,
            new_lock=AsyncStateLock, clock=guard.clock,
        )  # fmt: skip
        self._leaks = state.leaks
        state.owner = weakref.ref(self)
        self._name = s.name if s.name is not None else name_of(factory)
        name = f"{type(self).__name__}({self._name})"  # in log lines
        self._log = log = PoolLog(name)
        self._hooks = hooks = None if s.on_event is None else Hooks(s.on_event, name)
        state.hooks = hooks
        if hooks is not None and state.leaks is not None:
            state.leaks.emit = hooks.emit
        self._noted = self._sites or hooks is not None  # _hand_out has more to do
        self._binding = binding = Binding(guard, state)
        self._guard, self._check_loop = guard, binding.check
        self._helpers = helpers = AsyncHelpers(factory, s.cap)  # threads for bounded calls
        self._closer = closer = Closer(state, s, releaser, reset, guard, helpers, log)
        self._creator = creator = Creator(state, s, factory, log, guard, helpers, closer)
        acquirer = Acquirer(state, s, check, helpers, closer, creator, log)
        self._maintainer = Maintainer(state, s, check, helpers, closer, creator, log)
        self._task = AsyncMaintainerTask()
        self._timeout_error = acquirer.timeout_error
        # The hot path, bound: one attribute hop fewer per call.
        self._claim = state.claim
        self._serve = acquirer.serve
        self._return_quickly: Callable[[T, bool], bool] = (
            state.return_metered if metrics else state.return_quickly
        )
        if hooks is not None:
            self._return_quickly = noting(self._return_quickly, hooks)
        _fork.register(binding)  # a forked child's pool starts over, empty
        _tracking.pool_created(self)
        async_wrap_sigint_handler()

    # -- public API --------------------------------------------------------

    async def acquire(self, timeout: float | None = None) -> T:
        """Take a resource out of the pool; give it back with :meth:`release`.

        Takes an idle resource if there is one (LIFO or FIFO), closing any
        past ``pool_recycle`` or failing ``check`` on the way; else creates
        one if fewer than ``pool_size`` exist; else waits its turn: waiters
        are served first come, first served, and a caller arriving as a
        resource comes back may take it first only while the oldest waiter
        has waited less than ``fairness_window``.  While the factory fails,
        creation is retried with backoff until the timeout.

        An idle resource is handed out without yielding to the event loop, so
        this is a checkpoint only when it waits, checks or creates.

        Args:
            timeout: seconds for the whole call, creation and ``check``
                included; ``None`` means the pool's ``acquire_timeout``;
                ``math.inf`` waits forever; ``0`` takes an idle resource
                that needs no check or fails at once.

        Raises:
            PoolTimeout: the timeout passed.  A factory call under way is
                not cut short: it finishes in the background (within
                ``create_timeout``) and its resource goes to the next waiter.
                The message carries the pool's counts and the last factory
                error, which is also its ``__cause__`` if it happened within
                the timeout's span or the factory is still failing.
            PoolClosed: the pool was disposed, before or during the wait.
            PoolExhausted: ``max_waiting`` callers were waiting already.
            PoolError: the pool belongs to another event loop.
            TypeError: the factory or ``check`` is not async.

        On cancellation nothing is lost: a resource or slot handed to this
        caller at that moment goes to the next waiter, and a factory call
        under way finishes in the background for whoever is next.
        """
        guard = self._guard
        if guard.get_current() is not guard.token:
            self._check_loop()
        if timeout is not None:
            check_seconds("timeout", timeout)
        claim = self._claim()
        if not isinstance(claim, Entry):  # no idle resource was ready
            claim = await self._serve(claim, self._deadline(timeout))
        return self._hand_out(claim)

    async def release(self, resource: T) -> None:
        """Give back a resource taken with :meth:`acquire`.

        Runs ``reset`` first, if the pool has one.  Then the resource goes
        straight to the oldest waiter if it has waited ``fairness_window``,
        else back to the idle set (a waiter, if any, is woken to take it, and
        the first caller to ask may take it before).  If
        ``reset`` raised, it is past ``pool_recycle``, was retired by
        ``recycle(force=True)``, or the pool was disposed, it is closed
        instead (a releaser or reset error is logged on the ``respool``
        logger and counted, never raised) and its slot goes to the next
        waiter.

        Never waits for anything but ``reset`` and the releaser, each bounded
        by ``cleanup_timeout`` if set; cancellation does not interrupt them
        (returning is cleanup and runs shielded), so the resource is returned
        or closed either way.  Only asyncio's own ``Task.cancel()`` gets
        through a shield: the call is then cut short, and the resource still
        counts as closed and frees its slot.

        A double release is caught until the resource's next holder has it;
        after that, the pool cannot tell the first holder's second release
        from the new holder's own.  ``lease()`` makes double release
        impossible.

        Raises:
            PoolError: this pool does not currently lease ``resource``
                (released twice, or never acquired from this pool); nothing
                changes.
        """
        guard = self._guard
        if guard.get_current() is not guard.token:
            self._check_loop()
        if not self._return_quickly(resource, False):
            await self._release(resource, False)

    async def _release(self, resource: T, suspect: bool) -> None:
        """Release's slow path; ``suspect``: its holder failed, so it is checked next time."""
        await self._closer.take_back(resource, "release", suspect)

    async def discard(self, resource: T) -> None:
        """Close a leased resource the holder knows is broken, instead of releasing it.

        The releaser runs now (bounded by ``cleanup_timeout`` if set; its
        error is logged and counted, never raised) and the slot goes at once
        to the oldest waiter, who creates a fresh resource in it.  Closing is
        cleanup and is not interrupted by cancellation.

        Raises:
            PoolError: this pool does not currently lease ``resource``.
        """
        self._check_loop()
        await self._closer.take_back(resource, "discard", False)

    def lease(self, timeout: float | None = None) -> AsyncLease[T]:
        """``async with pool.lease() as resource:`` acquire, then always release.

        The resource is released when the block exits, also when the body
        raises or is cancelled (the release cannot be interrupted).
        ``timeout`` and the errors on entry are those of :meth:`acquire`.
        """
        return AsyncLease(self, timeout)

    def stats(self, reset: bool = False) -> PoolStats:
        """A consistent snapshot of the pool's gauges, counters and histograms.

        Counters and histograms add up since the pool was made, or since the
        last ``stats(reset=True)``.

        Args:
            reset: start the counters and histograms over after this reading
                (psycopg_pool's ``pop_stats()``): each reading then covers
                the time since the one before, for log-based monitoring.
                The exporters of ``respool.metrics`` are not affected.

        Never waits (it takes only the pool's short internal lock), so no
        timeout applies and it is not a cancellation point.
        """
        if self._leaks is not None:
            self._leaks.warn_held(self._state.leaks_due(), self._log)
        return self._state.stats(reset)

    @property
    def pool_size(self) -> int:
        """The most resources the pool keeps alive at once (never waits)."""
        return self._pool_size

    @property
    def name(self) -> str:
        """The pool's name, as its log lines show it (never waits)."""
        return self._name

    @property
    def min_size(self) -> int:
        """The fewest resources an opened pool keeps alive (never waits)."""
        return self._state.min_size

    @property
    def closed(self) -> bool:
        """Whether :meth:`dispose` was called (never waits)."""
        return self._state.closed

    def __repr__(self) -> str:
        state = "closed" if self._state.closed else "open"
        return f"<{type(self).__name__} {state} {self.stats()}>"

    # -- internals -------------------------------------------------------------

    def _new_state(self, *args: Any, **kwargs: Any) -> PoolState[T]:
        return PoolState[T](*args, **kwargs)  # a shared pool's is a SharedState

    def _hand_out(self, entry: Entry[T]) -> T:
        """The caller takes its resource: from now on the pool holds it weakly, if it can."""
        resource: T = entry.resource  # type: ignore[assignment]  # held strongly until now
        if entry.ref is not None:
            entry.resource = None
        if self._noted:  # the one test the hot path pays for sites and hooks
            if self._sites:
                entry.site = traceback.StackSummary.extract(
                    traceback.walk_stack(sys._getframe(2)), limit=32, lookup_lines=False
                )
                if self._leaks is not None:
                    self._leaks.warn_held(self._state.leaks_due(), self._log)
            if self._hooks is not None:
                self._hooks.emit(CheckedOut(resource))
        return resource

    def _outstanding(self) -> list[tuple[object, traceback.StackSummary | None]]:
        """Resources leased now, with where each was acquired (the pytest plugin asks)."""
        return self._state.outstanding()
