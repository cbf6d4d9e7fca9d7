"""One-shot events a parked waiter waits on, and sleeping until a deadline.

``AsyncEvent`` is the async face's protocol: an asyncio future sharing one
loop timer (``_Deadlines``), or trio's task rescheduling sharing one system
task (``TrioDeadlines``); ``Event`` is a thread's pre-acquired lock.
"""

from __future__ import annotations

import asyncio
import functools
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any, Protocol, cast

import anyio

from .interrupts import _ki_unprotected

# -- one-shot wake-up signal for a parked waiter ----------------------------


class AsyncEvent(Protocol):
    """Set once; waited on by exactly one task.

    The bound :class:`AsyncLoopGuard` makes them (``new_event``) on the
    library's own primitives: an ``asyncio`` future with one timer, or trio's
    task rescheduling, with no ``sniffio`` lookup per wait.
    """

    def set(self) -> None: ...

    async def wait(self, deadline: float | None) -> bool:
        """Wait until set or until the deadline passes; return whether set.

        A checkpoint even when already set; cancellation of the calling task
        propagates.
        """


class _DeadlineQueue:
    """Waits whose deadlines arrive in order, for one timer to serve them all.

    Waiters are served first come, first served and most share the pool's
    default timeout, so their deadlines arrive in increasing order: one timer
    for the oldest pending wait serves them all, where a timer per wait would
    fill the loop's timer structure with cancelled entries.  A deadline that
    arrives out of order is refused (the wait then gets a timer of its own).

    Deadlines are on the pool's clock (``clock``); when the timer fires, each
    is checked again on that clock, so a loop that rounds its timers (uvloop:
    whole milliseconds) never ends a wait early, and a virtual-time loop never
    spins.  Waits that end early behind a long one (served, cancelled) are
    counted and swept out once they are the majority, so they cannot pile up.
    Subclasses arm the timer: ``_Deadlines`` (asyncio), trio's ``TrioDeadlines``.
    """

    __slots__ = ("_armed_for", "_clock", "_dead", "_pending")

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._armed_for = 0.0
        self._dead = 0  # waits still in _pending that ended before their deadline
        self._pending: deque[tuple[float, _Queued]] = deque()

    def ended(self, event: _Queued) -> None:
        """``event``'s wait is over; sweep the queue if such waits are the majority."""
        if event.queued != 1:
            return
        event.queued = 2
        self._dead += 1
        if self._dead > 32 and 2 * self._dead > len(self._pending):
            kept: deque[tuple[float, _Queued]] = deque()
            for item in self._pending:
                if item[1].queued == 1:
                    kept.append(item)
                else:
                    item[1].queued = 0
            self._pending = kept
            self._dead = 0

    def _drop_ended(self) -> None:
        pending = self._pending
        while pending and pending[0][1].done():  # served in order: the front goes first
            event = pending.popleft()[1]
            if event.queued == 2:
                self._dead -= 1
            event.queued = 0

    def _expire_due(self) -> None:
        """End the waits whose deadline has passed on the pool's clock."""
        pending, now = self._pending, self._clock()
        while pending and (pending[0][0] <= now or pending[0][1].done()):
            event = pending.popleft()[1]
            if event.queued == 2:
                self._dead -= 1
            event.queued = 0
            event.expire()


class _Queued(Protocol):
    """An event in a :class:`_DeadlineQueue`."""

    queued: int  # in the queue: 1, and ended early: 2; else 0

    def done(self) -> bool: ...

    def expire(self) -> None: ...


class _Deadlines(_DeadlineQueue):
    """asyncio's: one loop timer, armed on the loop's clock for the oldest pending wait."""

    __slots__ = ("_loop", "_timer")

    def __init__(self, loop: asyncio.AbstractEventLoop, clock: Callable[[], float]) -> None:
        super().__init__(clock)
        self._loop = loop
        self._timer: asyncio.TimerHandle | None = None

    def add(self, deadline: float, event: _Queued) -> bool:
        pending = self._pending
        self._drop_ended()
        if pending and deadline < pending[-1][0]:
            return False
        pending.append((deadline, event))
        event.queued = 1
        if self._timer is None or deadline < self._armed_for:
            # Nothing armed, or armed for a wait that was served before it expired.
            if self._timer is not None:
                self._timer.cancel()
            self._arm()
        return True

    def _arm(self) -> None:
        self._drop_ended()
        pending = self._pending
        if not pending:
            self._timer = None
            return
        loop = self._loop
        self._armed_for = pending[0][0]
        self._timer = loop.call_at(loop.time() + (self._armed_for - self._clock()), self._fire)

    def _fire(self) -> None:
        self._expire_due()
        self._arm()


class _AsyncioEvent:
    __slots__ = ("_deadlines", "_future", "_loop", "_timer", "queued")

    def __init__(self, loop: asyncio.AbstractEventLoop, deadlines: _Deadlines) -> None:
        self._loop = loop
        self._deadlines = deadlines
        self._future: asyncio.Future[bool] = loop.create_future()
        self._timer: asyncio.TimerHandle | None = None
        self.queued = 0  # in the shared deadline queue: 1, and ended early: 2

    def done(self) -> bool:
        return self._future.done()

    def set(self) -> None:
        if not self._future.done():  # a cancelled wait cancels the future
            self._future.set_result(True)

    def expire(self) -> None:
        if not self._future.done():
            self._future.set_result(False)

    async def wait(self, deadline: float | None) -> bool:
        if deadline is None:
            return await self._future
        deadlines = self._deadlines
        if deadlines.add(deadline, self):
            try:
                return await self._future
            finally:
                deadlines.ended(self)
        self._own_timer(deadline)
        try:
            return await self._future
        finally:
            if self._timer is not None:
                self._timer.cancel()

    def _own_timer(self, deadline: float) -> None:
        # Checked again when it fires: a loop may round its timers (uvloop).
        delay = deadline - self._deadlines._clock()
        if delay <= 0:
            self.expire()
            return
        loop = self._loop
        self._timer = loop.call_at(loop.time() + delay, self._own_timer, deadline)


@functools.cache
def _trio_parts() -> tuple[
    Callable[[], object], Callable[[Any], AsyncEvent], Callable[[Callable[[], float], bool], Any]
]:
    """trio's token getter, event type and deadline queue, built once (trio is optional).

    A pool's events share its :class:`_DeadlineQueue`: one system task per
    pool and run sleeps until the oldest pending deadline, where a
    ``move_on_at`` scope per wait would cost an entry in trio's deadline
    structure each.  Deadlines are on the pool's clock: ``time.monotonic``
    (for a run on trio's own clock, which is ``time.perf_counter`` plus an
    offset: the same clock on the platforms trio runs on) or the run's clock
    itself (``MockClock`` or a clock of the user's), which ``real`` tells.
    """
    import outcome
    import trio

    current_token = trio.lowlevel.current_trio_token
    current_task = trio.lowlevel.current_task
    reschedule = trio.lowlevel.reschedule
    wait_task_rescheduled = trio.lowlevel.wait_task_rescheduled
    checkpoint = trio.lowlevel.checkpoint
    succeeded = trio.lowlevel.Abort.SUCCEEDED
    current_time = trio.current_time
    again = outcome.Value(_AGAIN)

    def token() -> object:
        try:
            return current_token()
        except RuntimeError:  # not inside a trio run
            return None

    class TrioDeadlines(_DeadlineQueue):
        """The system task that ends a pool's timed waits, started when one is queued.

        It sleeps in a cancel scope until the oldest pending deadline (moved
        earlier when an earlier one is queued behind nothing), expires what is
        due and sleeps again, and ends when nothing is pending.  The run's end
        cancels it: it then wakes the waits still queued (shielded ones) to
        take timers of their own, and refuses new ones.
        """

        __slots__ = ("_gone", "_real", "_scope", "_task")

        def __init__(self, clock: Callable[[], float], real: bool) -> None:
            super().__init__(clock)
            self._real = real
            self._gone = False  # the run is ending: no more shared deadlines
            self._task = False  # the system task is running
            self._scope: trio.CancelScope | None = None  # its sleep, once it sleeps

        def to_trio(self, deadline: float) -> float:
            """``deadline`` on the run's clock."""
            if self._real:  # trio's own clock is time.perf_counter() plus an offset
                return current_time() + (deadline - self._clock())
            return deadline  # the pool's clock is the run's

        def add(self, deadline: float, event: _Queued) -> bool:
            pending = self._pending
            self._drop_ended()
            if pending and deadline < pending[-1][0]:
                return False
            if not self._task:
                if self._gone:
                    return False
                self._task = True
                try:
                    trio.lowlevel.spawn_system_task(self._run, name="respool-deadlines")
                except RuntimeError:  # pragma: no cover  # the run is over
                    self._task, self._gone = False, True
                    return False
            elif deadline < self._armed_for and self._scope is not None:
                # Armed for a wait that was served before it expired.
                self._armed_for = deadline
                self._scope.deadline = self.to_trio(deadline)
            pending.append((deadline, event))
            event.queued = 1
            return True

        async def _run(self) -> None:
            pending = self._pending
            try:
                while True:
                    self._drop_ended()
                    if not pending:
                        return
                    self._armed_for = pending[0][0]
                    with trio.CancelScope(deadline=self.to_trio(self._armed_for)) as scope:
                        self._scope = scope
                        await trio.sleep_forever()
                    self._scope = None
                    self._expire_due()
            except trio.Cancelled:  # the run is ending
                self._gone = True
                while pending:
                    event = pending.popleft()[1]
                    event.queued = 0
                    if not event.done():
                        cast("TrioEvent", event).orphan()
                self._dead = 0
                raise
            finally:
                self._task, self._scope = False, None

    class TrioEvent:
        __slots__ = ("_deadlines", "_set", "_task", "queued")

        def __init__(self, deadlines: TrioDeadlines) -> None:
            self._deadlines = deadlines
            self._set = False
            self._task: trio.lowlevel.Task | None = None
            self.queued = 0  # in the shared deadline queue: 1, and ended early: 2

        def set(self) -> None:
            self._set = True
            task, self._task = self._task, None
            if task is not None:
                reschedule(task)

        def done(self) -> bool:
            return self._task is None

        def expire(self) -> None:
            task, self._task = self._task, None
            if task is not None:
                reschedule(task)  # not set: the wait returns False

        def orphan(self) -> None:
            task, self._task = self._task, None
            if task is not None:
                reschedule(task, again)

        def _abort(self, raise_cancel: object) -> trio.lowlevel.Abort:
            self._task = None
            return succeeded

        async def wait(self, deadline: float | None) -> bool:
            if self._set:
                await checkpoint()
                return True
            self._task = current_task()
            if deadline is None:
                await wait_task_rescheduled(self._abort)
                return self._set
            deadlines = self._deadlines
            if deadlines.add(deadline, self):
                try:
                    if await wait_task_rescheduled(self._abort) is not _AGAIN:
                        return self._set
                finally:
                    deadlines.ended(self)
                if self._set:  # pragma: no cover  # set as the run ended
                    return True
                self._task = current_task()
            with trio.move_on_at(deadlines.to_trio(deadline)):
                await wait_task_rescheduled(self._abort)
            return self._set

    return token, TrioEvent, TrioDeadlines


_AGAIN = object()  # a shared deadline's wake-up: the run is ending, wait on a timer of its own


class Event:
    """Set once; waited on by exactly one thread.

    A pre-acquired lock is cheaper than ``threading.Event`` (which is a
    Condition plus a Lock) and is all a single waiter needs.
    """

    __slots__ = ("_lock",)

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._lock.acquire()

    def set(self) -> None:
        self._lock.release()

    @_ki_unprotected
    def wait(self, deadline: float | None) -> bool:
        """Block until set or until the deadline passes (never earlier); return whether set.

        Interruptible (``KeyboardInterrupt``) even in protected code: the
        caller cleans up.
        """
        if deadline is None:
            return self._lock.acquire()
        while True:
            remaining = deadline - time.monotonic()
            if remaining > threading.TIMEOUT_MAX:
                return self._lock.acquire()
            if self._lock.acquire(timeout=max(0.0, remaining)):
                return True
            if remaining <= 0 or time.monotonic() >= deadline:  # else woken a hair early
                return False


# -- pausing between retries ----------------------------------------------------


async def async_sleep_until(deadline: float, clock: Callable[[], float]) -> None:
    """Sleep until ``deadline`` on ``clock``; cancellation of the calling task propagates."""
    await anyio.sleep(max(0.0, deadline - clock()))


@_ki_unprotected
def sleep_until(deadline: float, clock: Callable[[], float]) -> None:
    """Block the calling thread until ``deadline`` on ``clock`` (interruptible)."""
    time.sleep(max(0.0, deadline - clock()))
