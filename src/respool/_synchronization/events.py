"""One-shot events a parked waiter waits on, and sleeping until a deadline.

``AsyncEvent`` is the async face's protocol: an asyncio future sharing one
loop timer (``_Deadlines``), or trio's task rescheduling; ``Event`` is a
thread's pre-acquired lock.
"""

from __future__ import annotations

import asyncio
import functools
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Protocol

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


class _Deadlines:
    """One loop timer for many waits whose deadlines arrive in order.

    Waiters are served first come, first served and most share the pool's
    default timeout, so their deadlines arrive in increasing order: one timer
    for the oldest pending wait serves them all, where a timer per wait would
    fill asyncio's timer heap with cancelled handles.  A deadline that arrives
    out of order is refused (the wait then gets a timer of its own).

    Deadlines are on the pool's clock (``clock``); the timer is armed on the
    loop's own clock and, when it fires, each deadline is checked again on
    the pool's clock, so a loop that rounds its timers (uvloop: whole
    milliseconds) never ends a wait early, and a virtual-time loop never
    spins.  Waits that end early behind a long one (served, cancelled) are
    counted and swept out once they are the majority, so they cannot pile up.
    """

    __slots__ = ("_armed_for", "_clock", "_dead", "_loop", "_pending", "_timer")

    def __init__(self, loop: asyncio.AbstractEventLoop, clock: Callable[[], float]) -> None:
        self._loop = loop
        self._clock = clock
        self._armed_for = 0.0
        self._dead = 0  # waits still in _pending that ended before their deadline
        self._pending: deque[tuple[float, _AsyncioEvent]] = deque()
        self._timer: asyncio.TimerHandle | None = None

    def add(self, deadline: float, event: _AsyncioEvent) -> bool:
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

    def ended(self, event: _AsyncioEvent) -> None:
        """``event``'s wait is over; sweep the queue if such waits are the majority."""
        if event.queued != 1:
            return
        event.queued = 2
        self._dead += 1
        if self._dead > 32 and 2 * self._dead > len(self._pending):
            kept: deque[tuple[float, _AsyncioEvent]] = deque()
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
        pending, now = self._pending, self._clock()
        while pending and (pending[0][0] <= now or pending[0][1].done()):
            event = pending.popleft()[1]
            if event.queued == 2:
                self._dead -= 1
            event.queued = 0
            event.expire()
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
    Callable[[], object], Callable[[], AsyncEvent], Callable[[], AsyncEvent]
]:
    """trio's token getter and event types, built once (trio is an optional dependency).

    The first event type takes deadlines on ``time.monotonic`` (a run on
    trio's own clock, which is ``time.perf_counter`` plus an offset: the same
    clock on the platforms trio runs on); the second on the run's clock itself
    (``MockClock`` or a clock of the user's).
    """
    import trio

    current_token = trio.lowlevel.current_trio_token
    current_task = trio.lowlevel.current_task
    reschedule = trio.lowlevel.reschedule
    wait_task_rescheduled = trio.lowlevel.wait_task_rescheduled
    checkpoint = trio.lowlevel.checkpoint
    succeeded = trio.lowlevel.Abort.SUCCEEDED

    def token() -> object:
        try:
            return current_token()
        except RuntimeError:  # not inside a trio run
            return None

    class TrioEvent:
        __slots__ = ("_set", "_task")

        def __init__(self) -> None:
            self._set = False
            self._task: trio.lowlevel.Task | None = None

        def set(self) -> None:
            self._set = True
            task, self._task = self._task, None
            if task is not None:
                reschedule(task)

        def _abort(self, raise_cancel: object) -> trio.lowlevel.Abort:
            self._task = None
            return succeeded

        @staticmethod
        def _trio_deadline(deadline: float) -> float:
            # trio's own clock is time.perf_counter() plus an offset: the same clock.
            return trio.current_time() + (deadline - time.monotonic())

        async def wait(self, deadline: float | None) -> bool:
            if self._set:
                await checkpoint()
                return True
            self._task = current_task()
            if deadline is None:
                await wait_task_rescheduled(self._abort)
            else:
                with trio.move_on_at(self._trio_deadline(deadline)):
                    await wait_task_rescheduled(self._abort)
            return self._set

    class TrioClockEvent(TrioEvent):
        __slots__ = ()

        @staticmethod
        def _trio_deadline(deadline: float) -> float:
            return deadline  # the pool's clock is the run's

    return token, TrioEvent, TrioClockEvent


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
