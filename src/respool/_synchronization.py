"""The only place where the async and the threaded pool differ.

Each primitive comes as a pair: ``AsyncX`` for :class:`~respool.AsyncPool`
(anyio, so asyncio and trio) and ``X`` for :class:`~respool.Pool` (threads).
``unasync_build.py`` maps every ``AsyncX`` name to ``X``, so the generated
pool code never names anyio or threading itself.

Deadlines are absolute times on the pool's clock, or ``None`` for "no
deadline".  The clock is the loop's own (``loop.time()``, ``trio.current_time()``)
for an async pool, so virtual-time loops and trio's ``MockClock`` work, and
``time.monotonic`` for the threaded one and for loops known to run on it.
"""

from __future__ import annotations

import _thread
import asyncio
import contextlib
import contextvars
import functools
import inspect
import itertools
import logging
import os
import signal
import threading
import time
import weakref
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine
from types import CodeType, FrameType
from typing import Any, Generic, Protocol, TypeVar, cast

import anyio
import sniffio

from ._checks import check_callable, check_not_async
from ._reprs import name_of, qualname, show

T = TypeVar("T")

# The pool's bookkeeping lock, held only around code that never awaits or
# blocks.  The async pool takes a real (uncontended, C-level) lock too: it
# costs tens of nanoseconds, and a slip that held it across an ``await`` would
# deadlock the async tests instead of hiding until the threaded twin hangs.
AsyncStateLock = threading.Lock
StateLock = threading.Lock


# -- KeyboardInterrupt in the threaded face ------------------------------------
#
# Python raises KeyboardInterrupt in the main thread between almost any two
# bytecodes, so no try/except can close every window in the pool's
# bookkeeping (between taking a place in line and the ``try`` around the
# wait, between a helper's result arriving and its registration...).  So the
# threaded face defers it there, as trio does: the code objects of the pool's
# functions are marked, and a SIGINT handler that wraps Python's default one
# looks at the interrupted frame and its callers.  The innermost marked frame
# decides: protected, the interrupt is held back and sent again shortly
# after (every few milliseconds while still protected); unprotected (a
# blocking wait, a call out to user code), it is raised at once.  Marking
# costs nothing at run time: the handler only runs on SIGINT.  The async
# face's decorators do nothing.

_PROTECTED, _UNPROTECTED, _CALLS_OUT = 1, 2, 3
_KI_MARKS: dict[int, tuple[int, CodeType]] = {}  # id(code) -> (kind, code), kept alive
_X = TypeVar("_X")


def _functions_of(value: object) -> list[Any]:
    if isinstance(value, (staticmethod, classmethod)):
        value = value.__func__
    if isinstance(value, property):
        return [f for f in (value.fget, value.fset, value.fdel) if f is not None]
    return [value] if hasattr(value, "__code__") else []


def _mark(obj: object, kind: int) -> None:
    values = list(vars(obj).values()) if isinstance(obj, type) else [obj]
    for value in values:
        for fn in _functions_of(value):
            code = fn.__code__
            if kind == _PROTECTED and id(code) in _KI_MARKS:
                continue  # a method marked on its own keeps its mark
            _KI_MARKS[id(code)] = (kind, code)


def async_ki_protected(obj: _X) -> _X:
    """The async face: nothing to do (cancellation is how tasks are interrupted)."""
    return obj


def ki_protected(obj: _X) -> _X:
    """Hold ``KeyboardInterrupt`` back in ``obj`` (a function, or each function of a class).

    An interrupt landing in its code, or in unmarked code it calls (the
    standard library, a genexpr), is delivered once no protected frame is
    on the stack; marked waits and calls out to user code stay interruptible.
    """
    _mark(obj, _PROTECTED)
    return obj


def _ki_unprotected(obj: _X) -> _X:
    """Raise ``KeyboardInterrupt`` at once in ``obj`` (a blocking wait), even when called
    from protected code, which must clean up in ``except BaseException``."""
    _mark(obj, _UNPROTECTED)
    return obj


def _call_out(fn: Callable[[], T]) -> T:
    """``fn()``, where ``fn`` is user code (the factory, ``check``...), from protected code.

    Its code is marked "calls out": an interrupt landing in ``fn`` (in any
    frame below this one) is raised there, and the caller cleans up; one
    landing in this frame itself, say just as ``fn`` returned a resource, is
    held back like any in protected code.
    """
    return fn()


_mark(_call_out, _CALLS_OUT)


def _deferrable(frame: FrameType | None) -> bool:
    """Whether an interrupt landing in ``frame`` must wait: the innermost marked frame says."""
    deeper = False
    marks = _KI_MARKS
    while frame is not None:
        code = frame.f_code
        mark = marks.get(id(code))
        if mark is not None and mark[1] is code:
            if mark[0] == _CALLS_OUT:
                return not deeper
            return mark[0] == _PROTECTED
        deeper = True
        frame = frame.f_back
    return False


class _Interrupts:
    """The state of a held-back interrupt (one per process)."""

    deferred = False  # an interrupt is owed to the main thread
    main = 0  # its ident, as seen by the handler
    poke = _thread.allocate_lock()
    poke.acquire()  # released to wake the resender
    resender = False  # the resender thread was started (in this process)


def _on_sigint(signum: int, frame: FrameType | None) -> None:
    """respool's SIGINT handler: Python's own, unless the interrupt lands in protected code."""
    if _deferrable(frame):
        _Interrupts.deferred = True
        _Interrupts.main = threading.get_ident()  # handlers run in the main thread
        if not _Interrupts.resender:
            # A bare thread: the threading module's locks may be held right here.
            _Interrupts.resender = True
            _thread.start_new_thread(_resend, ())
        try:
            _Interrupts.poke.release()
        except RuntimeError:  # already woken
            pass
        return
    _Interrupts.deferred = False
    signal.default_int_handler(signum, frame)


def _resend() -> None:
    """Send a held-back interrupt again, after 1 ms, then less often, until it is delivered."""
    while True:
        _Interrupts.poke.acquire()
        delay = 0.001
        while _Interrupts.deferred:
            time.sleep(delay)
            if not _Interrupts.deferred:
                break
            if hasattr(signal, "pthread_kill"):
                # A real signal: it also ends a blocking wait the main thread
                # may have entered since.
                signal.pthread_kill(_Interrupts.main, signal.SIGINT)
            else:  # pragma: no cover  # Windows
                _thread.interrupt_main()
            delay = min(2 * delay, 0.05)


def interrupt_pending() -> bool:
    """Whether an interrupt is held back, to be delivered shortly (for tests)."""
    return _Interrupts.deferred


def async_wrap_sigint_handler() -> None:
    """The async face leaves SIGINT to the event loop."""


def wrap_sigint_handler() -> None:
    """Put respool's SIGINT handler in place of Python's default one, if that is the one.

    Called at each ``Pool`` construction; does something only in the main
    thread and only while SIGINT has Python's default handler (a handler
    of the application's own is left alone, and then an interrupt can land
    anywhere, as before).
    """
    if threading.current_thread() is not threading.main_thread():
        return
    try:
        if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
            signal.signal(signal.SIGINT, _on_sigint)
    except ValueError:  # pragma: no cover  # not the main interpreter
        pass


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


def _trio_clock() -> tuple[Callable[[], float], bool]:
    """The clock a trio pool keeps its times on, and whether it is ``time.monotonic``."""
    import trio

    clock = trio.lowlevel.current_clock()
    if type(clock).__name__ == "SystemClock" and type(clock).__module__.startswith("trio."):
        return time.monotonic, True  # trio's own: perf_counter, plus an offset
    run_clock = clock.current_time
    fallback = run_clock() - time.monotonic()

    def now() -> float:
        try:
            return run_clock()
        except RuntimeError:  # pragma: no cover  # a user's clock that needs its run
            return time.monotonic() + fallback

    return now, False


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


# -- cleanup that cancellation must not interrupt -----------------------------


def AsyncShield() -> contextlib.AbstractContextManager[Any]:
    """Shield the block from cancellation of the enclosing scopes."""
    return anyio.CancelScope(shield=True)


def Shield() -> contextlib.AbstractContextManager[Any]:
    """Threads cannot be cancelled: nothing to shield from."""
    return contextlib.nullcontext()


# -- a call bounded by a deadline ----------------------------------------------


class NotAwaitableError(TypeError):
    """An async pool was given a plain callable: a mistake, never worth a retry.

    ``about`` makes the same error naming the callable's role and what the
    pool did about it (the call did run: a plain releaser has closed its
    resource, say).
    """

    def __init__(self, fn: object, returned: str, role: str = "", outcome: str = "") -> None:
        self.fn = fn
        self.returned = returned  # the name of the type the call returned
        what = f"AsyncPool's {role} {_callee(fn)}" if role else _callee(fn)
        then = f" ({outcome})" if outcome else ""
        super().__init__(
            f"{what} returned {returned}, not an awaitable{then}. AsyncPool awaits what its "
            "factory, releaser, check and reset return: make it an `async def` function (or "
            "one that returns an awaitable), or use respool.Pool for plain callables"
        )

    def about(self, role: str, outcome: str) -> NotAwaitableError:
        return NotAwaitableError(self.fn, self.returned, role, outcome)


def _callee(fn: object) -> str:
    """A callable the pool made a ``partial`` of, by name: ``close()``."""
    name = qualname(fn)
    return f"{name}()" if name is not None else show(fn)


def async_callable_check(name: str, value: object, *, optional: bool = True) -> None:
    """``AsyncPool`` takes any callable: a plain one may return an awaitable.

    One that does not is refused when first called (``NotAwaitableError``).
    """
    check_callable(name, value, optional=optional)


def callable_check(name: str, value: object, *, optional: bool = True) -> None:
    """``Pool`` refuses async callables: it would call them and never await the result."""
    check_callable(name, value, optional=optional)
    check_not_async(
        name,
        value,
        "Pool calls it in threads and never awaits it: use respool.AsyncPool for async "
        "callables, or pass a plain function",
    )


class AsyncBoundedCall(Generic[T]):
    """Run ``fn()`` and give up on it at a deadline.

    At the deadline ``fn`` is cancelled, ``timed_out`` is set and
    ``TimeoutError`` raised; with the deadline already past, ``fn`` is not
    called at all.  Nothing outlives the call, so ``detached`` is
    always false and ``adopt`` is never called: whatever ``run`` raises, the
    caller still owns whatever it reserved for the call.
    """

    __slots__ = ("_clock", "_fn", "detached", "timed_out")

    def __init__(
        self,
        fn: Callable[[], Awaitable[T]],
        adopt: Callable[[T | None, BaseException | None], Awaitable[None]],
        clock: Callable[[], float],
        helpers: AsyncHelpers,
    ) -> None:
        self._fn = fn
        self._clock = clock
        self.timed_out = False
        self.detached = False

    async def run(self, deadline: float | None, *, start: bool = False) -> T:
        """``start=True``: call ``fn`` even if the deadline has passed (cleanup must run)."""
        if deadline is None:
            return await self._call()
        remaining = deadline - self._clock()
        if remaining > 0 or start:
            with anyio.move_on_after(remaining):
                return await self._call()
            # Cut on the loop's clock, which may round (uvloop): the caller's
            # timeout must not end early on the pool's.
            while (left := deadline - self._clock()) > 0:
                await anyio.sleep(left)
        self.timed_out = True
        raise TimeoutError("deadline passed before the call finished")

    async def _call(self) -> T:
        awaitable = self._fn()
        if not inspect.isawaitable(awaitable):
            raise NotAwaitableError(self._fn, type(awaitable).__name__)
        return await awaitable


@ki_protected
class BoundedCall(Generic[T]):
    """Run ``fn()`` and give up on it at a deadline.

    A thread cannot be interrupted, so with a deadline ``fn`` runs in one of
    the pool's helper threads (:class:`Helpers`, in a copy of the caller's
    context) while the caller waits.  If the deadline passes before ``fn``
    returns, or the wait is interrupted (say by ``KeyboardInterrupt``) at any
    point, the call is *detached*: ``detached`` is set, ``run`` raises, and
    ``fn``'s outcome goes to ``adopt(result, error)`` (when ``fn`` ends, or at
    once if it already has), which then owns whatever the caller reserved for
    the call.  Without a deadline ``fn`` runs inline; with the deadline
    already past it is not called at all.
    """

    __slots__ = (
        "_adopt",
        "_context",
        "_done",
        "_fn",
        "_helpers",
        "_mutex",
        "_outcome",
        "detached",
        "timed_out",
    )

    def __init__(
        self,
        fn: Callable[[], T],
        adopt: Callable[[T | None, BaseException | None], None],
        clock: Callable[[], float],
        helpers: Helpers,
    ) -> None:
        self._fn = fn
        self._adopt = adopt
        self._helpers = helpers
        self._outcome: tuple[T | None, BaseException | None] | None = None
        self.timed_out = False
        self.detached = False

    def run(self, deadline: float | None, *, start: bool = False) -> T:
        """``start=True``: call ``fn`` even if the deadline has passed (cleanup must run)."""
        if deadline is None:
            return _call_out(self._fn)
        if deadline <= time.monotonic() and not start:
            self.timed_out = True
            raise TimeoutError("deadline passed before the call started")
        self._mutex = threading.Lock()
        self._done = Event()
        self._context = contextvars.copy_context()
        self._helpers.submit(self._target)
        try:
            self._done.wait(deadline)
        except BaseException:
            # Interrupted (KeyboardInterrupt): whatever fn makes, now or
            # already, is adopt's; the caller only re-raises.
            with self._mutex:
                outcome = self._outcome
                self.detached = True
            if outcome is not None:
                self._adopt(*outcome)
            raise
        with self._mutex:
            outcome = self._outcome
            self.detached = outcome is None
        if outcome is None:
            self.timed_out = True
            raise TimeoutError("deadline passed before the call finished")
        result, error = outcome
        if error is not None:
            raise error
        return result  # type: ignore[return-value]  # no error: fn returned it

    def _target(self) -> None:
        """In a helper thread: run ``fn``, hand its outcome to the caller or to adopt."""
        try:
            outcome: tuple[T | None, BaseException | None] = (self._context.run(self._fn), None)
        except BaseException as exc:  # handed to the waiting caller or to adopt
            outcome = (None, exc)
        with self._mutex:
            self._outcome = outcome
            detached = self.detached
        if detached:
            self._adopt(*outcome)
        else:
            self._done.set()


# -- work that outlives the caller who started it ----------------------------


class CallTimeout(TimeoutError):
    """A call was cut short at its limit."""


async def async_call_within(
    fn: Callable[[], Awaitable[T]], limit: float | None, clock: Callable[[], float]
) -> T:
    """Await ``fn()``, cancelling it at ``limit`` (raises :class:`CallTimeout`)."""
    if limit is None:
        return await _awaited(fn)
    with anyio.move_on_after(max(0.0, limit - clock())):
        return await _awaited(fn)
    raise CallTimeout("the call did not finish within its limit")


def call_within(fn: Callable[[], T], limit: float | None, clock: Callable[[], float]) -> T:
    """Call ``fn()`` (user code: Ctrl-C stays live in it); a thread cannot be cut
    short, so ``limit`` does not apply."""
    return _call_out(fn)


async def _awaited(fn: Callable[[], Awaitable[T]]) -> T:
    awaitable = fn()
    if not inspect.isawaitable(awaitable):
        raise NotAwaitableError(fn, type(awaitable).__name__, "factory", "nothing was pooled")
    return await awaitable


# -- the threaded pool's helper threads -----------------------------------------


class AsyncHelpers:
    """An async pool needs no helper threads: a bounded call runs in the caller's task."""

    __slots__ = ()

    def __init__(self, factory: object, pool_size: int) -> None:
        pass

    def close(self) -> None:
        """Nothing to stop."""


_helpers_logger = logging.getLogger("respool")


class _Helper:
    """One helper thread's mailbox: its next task, and the lock it parks on."""

    __slots__ = ("task", "thread", "wake")

    def __init__(self, task: Callable[[], object]) -> None:
        self.task: Callable[[], object] | None = task
        self.wake = threading.Lock()
        self.wake.acquire()  # released to hand over a task (or None: exit)
        self.thread: threading.Thread | None = None


@ki_protected
class Helpers:
    """A threaded pool's helper threads: persistent, reused, started lazily.

    ``submit(task)`` runs ``task()`` in a helper thread and never waits for
    one: an idle helper is reused (the most recently parked first, so the
    others age out), else a new daemon thread is started, named
    ``respool-<factory qualname>-<n>``.  A helper that finishes its task
    parks for reuse unless ``bound`` helpers (``max(4, pool_size)``) are
    parked already, in which case it ends; a parked helper ends after
    ``IDLE_SECONDS`` without work.  So the threads alive are at most
    ``bound`` idle ones plus one per call still running.

    A call that never returns (a ``check`` stuck forever) holds its helper
    for good, and no other call waits for it: the next call finds another
    idle helper or starts one.  Such calls are the only way the number of
    threads grows past ``bound`` (each stuck call keeps one daemon thread,
    as a thread per call did).

    ``close()`` (at ``dispose()``) ends the idle helpers and waits at most
    ``JOIN_SECONDS`` in all for every helper to end; one still running a
    call then is left to end with it.  Afterwards each call gets a thread
    of its own that ends with the call.  In a forked child the parent's
    helpers do not exist: the child starts with none.
    """

    IDLE_SECONDS = 10.0
    JOIN_SECONDS = 0.25

    __slots__ = ("__weakref__", "_busy", "_closed", "_idle", "_mutex", "_name", "_serial", "bound")

    def __init__(self, factory: object, pool_size: int) -> None:
        self._name = f"respool-{name_of(factory)}"
        self.bound = max(4, pool_size)
        self._closed = False
        self._start_empty()
        _ALL_HELPERS.add(self)

    def _start_empty(self) -> None:
        self._mutex = threading.Lock()
        self._idle: list[_Helper] = []  # parked, most recent last
        self._busy: set[_Helper] = set()  # running a task
        self._serial = itertools.count(1)

    def submit(self, task: Callable[[], object]) -> None:
        """Run ``task()`` in a helper thread; it must not raise (errors are logged)."""
        with self._mutex:
            if self._idle:
                helper = self._idle.pop()
                self._busy.add(helper)
                helper.task = task
                helper.wake.release()
                return
            helper = _Helper(task)
            self._busy.add(helper)
            name = f"{self._name}-{next(self._serial)}"
        thread = threading.Thread(target=self._serve, args=(helper,), name=name, daemon=True)
        helper.thread = thread
        try:
            thread.start()
        except BaseException:
            with self._mutex:
                self._busy.discard(helper)
            raise

    def threads(self) -> list[threading.Thread]:
        """The helper threads alive now, idle or busy (for tests and ``close``)."""
        with self._mutex:
            helpers = [*self._idle, *self._busy]
        return [h.thread for h in helpers if h.thread is not None and h.thread.is_alive()]

    def close(self) -> None:
        """End the idle helpers and let busy ones end after their call; wait a bounded time."""
        with self._mutex:
            self._closed = True
            idle, self._idle = self._idle, []
            for helper in idle:
                helper.task = None
                helper.wake.release()
            helpers = [*idle, *self._busy]
        deadline = time.monotonic() + self.JOIN_SECONDS
        current = threading.current_thread()
        for helper in helpers:
            thread = helper.thread
            if thread is not None and thread is not current and thread.ident is not None:
                thread.join(max(0.0, deadline - time.monotonic()))

    def _serve(self, helper: _Helper) -> None:
        """A helper thread's life: run tasks handed over, park in between, end when idle."""
        mutex = self._mutex
        task = helper.task
        while task is not None:
            helper.task = None
            try:
                task()
            except BaseException:  # pragma: no cover  # BoundedCall's tasks catch their own
                _helpers_logger.exception("a respool helper thread's task failed")
            del task  # drop the call (and what it made) before parking
            with mutex:
                self._busy.discard(helper)
                if self._closed or len(self._idle) >= self.bound:
                    return
                self._idle.append(helper)
            if not helper.wake.acquire(timeout=self.IDLE_SECONDS):
                with mutex:
                    if helper in self._idle:  # nobody took it meanwhile: end
                        self._idle.remove(helper)
                        return
                helper.wake.acquire()  # taken just now: its task is on the way
            task = helper.task

    def _forget_after_fork(self) -> None:
        """In a forked child: only the forking thread exists, so no helper does."""
        self._start_empty()


_ALL_HELPERS: weakref.WeakSet[Helpers] = weakref.WeakSet()


def _forget_threads_in_child() -> None:
    """In a forked child only the forking thread exists: no helper, no resender."""
    for helpers in list(_ALL_HELPERS):
        helpers._forget_after_fork()
    _Interrupts.deferred = _Interrupts.resender = False
    _Interrupts.poke = _thread.allocate_lock()
    _Interrupts.poke.acquire()


if hasattr(os, "register_at_fork"):  # not on Windows
    os.register_at_fork(after_in_child=_forget_threads_in_child)


# -- which event loop a pool belongs to ----------------------------------------


def _describe(library: str, token: object) -> str:
    return f"{library} event loop {token!r}" if library == "asyncio" else f"{library} run {token!r}"


_REAL_TIME_LOOPS = ("uvloop", "winloop")  # loops whose time() is time.monotonic, rounded


def _asyncio_clock(loop: asyncio.AbstractEventLoop) -> Callable[[], float]:
    """The clock an asyncio pool keeps its times on.

    ``time.monotonic`` where the loop's own ``time()`` is that clock (asyncio's
    loops; uvloop's, which is cached and rounded to milliseconds, so reading
    it would make waits end early); else the loop's ``time()`` itself: a
    virtual-time loop (tests) then drives every timeout and age.
    """
    method = getattr(loop.time, "__func__", None)
    if method is asyncio.BaseEventLoop.time:
        return time.monotonic
    if type(loop).__module__.split(".")[0] in _REAL_TIME_LOOPS:
        return time.monotonic
    return loop.time


def _current_loop() -> tuple[
    str, object, Callable[[], object], Callable[[], AsyncEvent], Callable[[], float]
]:
    """The running async library, its current loop, a getter for it, its events and clock.

    The getter never raises: outside its library it returns ``None``.
    """
    try:
        library = sniffio.current_async_library()
    except sniffio.AsyncLibraryNotFoundError:
        raise RuntimeError("an AsyncPool must be used from inside an asyncio or trio run") from None
    if library == "asyncio":
        loop = asyncio.get_running_loop()
        clock = _asyncio_clock(loop)
        new_event = functools.partial(_AsyncioEvent, loop, _Deadlines(loop, clock))
        return library, loop, asyncio._get_running_loop, new_event, clock
    if library == "trio":
        token, real_event, clock_event = _trio_parts()
        clock, real = _trio_clock()
        return library, token(), token, real_event if real else clock_event, clock
    raise RuntimeError(f"respool supports asyncio and trio through anyio, not {library}")


def _unbound() -> object:
    return _unbound  # matches no loop: the first check binds the guard


def _call_now(fn: Callable[[], object]) -> None:
    fn()  # not bound to a loop yet: nothing is parked, and nobody holds the lock for long


def _call_soon(library: str, token: Any, fn: Callable[[], object]) -> None:
    """Run ``fn`` on the pool's loop once the current step is done, from any thread."""
    try:
        if library == "asyncio":
            token.call_soon_threadsafe(fn)
        else:
            token.run_sync_soon(fn)
    except RuntimeError:  # the loop or run is over (trio's RunFinishedError is one too)
        pass


def _unbound_event() -> AsyncEvent:
    raise RuntimeError("no event before the pool is bound to a loop")  # pragma: no cover


class AsyncLoopGuard:
    """Binds an async pool to the first event loop that uses it.

    The hot path compares ``get_current()`` (which never raises) with
    ``token`` and calls ``check()`` only when they differ.
    ``check()`` binds the guard on first use, then returns ``None`` when called
    from that loop and a message naming both loops otherwise; the pool turns
    it into ``PoolError``.
    """

    __slots__ = ("_library", "_tasks", "call_soon", "clock", "get_current", "new_event", "token")

    wakes_from_any_thread = False  # a parked task is woken on its own loop only

    def __init__(self) -> None:
        self.unbind()

    def unbind(self) -> None:
        """Back to unbound: the next ``check()`` binds to the loop it runs on."""
        self._library = ""
        self._tasks: set[asyncio.Task[None]] = set()
        self.token: object = None
        self.get_current: Callable[[], object] = _unbound
        self.new_event: Callable[[], AsyncEvent] = _unbound_event
        self.call_soon: Callable[[Callable[[], object]], None] = _call_now
        self.clock: Callable[[], float] = time.monotonic  # the loop's, once bound

    def spawn(
        self,
        fn: Callable[[], Coroutine[Any, Any, None]],
        *,
        needed: bool = True,
        helpers: AsyncHelpers | None = None,
    ) -> Callable[[], object]:
        """Run ``await fn()`` in the background on the bound loop; return what cancels it.

        asyncio: a task the guard keeps referenced until it ends; trio: a
        system task (it outlives the caller's nursery, and the run's end
        cancels it).  ``fn`` must not raise.  ``needed`` is for the threaded
        twin (which runs ``fn`` inline when nothing needs a thread).
        """
        scope = anyio.CancelScope()  # cancelled before it starts, it still runs fn's cleanup

        async def run() -> None:
            with scope:
                await fn()

        if self._library == "asyncio":
            loop = cast("asyncio.AbstractEventLoop", self.token)
            task: asyncio.Task[None] = loop.create_task(run())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        else:
            import trio

            trio.lowlevel.spawn_system_task(run, context=contextvars.copy_context())
        return scope.cancel

    def check(self) -> str | None:
        library, token, get_current, new_event, clock = _current_loop()
        if self.get_current is _unbound:
            self._library, self.token, self.get_current = library, token, get_current
            self.new_event = new_event
            self.call_soon = functools.partial(_call_soon, library, token)
            self.clock = clock
            return None
        if library == self._library and token is self.token:
            return None
        return (
            f"this pool is bound to the {_describe(self._library, self.token)}, where it was "
            f"first used, but was now used from the {_describe(library, token)}. A pool and "
            "its resources belong to one event loop: create one pool per loop"
        )

    def bound_loop_is_gone(self) -> bool:
        """Whether the loop this guard is bound to has ended: nothing can run on it again.

        An asyncio loop that is closed (``asyncio.run`` closes its loop), or a
        trio run that has finished (its token refuses ``run_sync_soon``).
        Unbound, or bound to a loop that may still run: ``False``.
        """
        if self.get_current is _unbound:
            return False
        if self._library == "asyncio":
            return cast(asyncio.AbstractEventLoop, self.token).is_closed()
        try:
            cast(Any, self.token).run_sync_soon(_nothing)
        except RuntimeError:  # trio.RunFinishedError
            return True
        return False


def _nothing() -> None:
    pass


def _no_loop() -> None:
    return None


class LoopGuard:
    """Threads share one pool freely: there is no loop to bind to."""

    __slots__ = ("clock", "get_current", "new_event", "token")

    wakes_from_any_thread = True  # any thread may release a parked thread's lock

    def __init__(self) -> None:
        self.token = None
        self.get_current: Callable[[], object] = _no_loop
        self.new_event = Event
        self.clock: Callable[[], float] = time.monotonic

    def unbind(self) -> None:
        """Nothing to undo: threads have no loop."""

    @staticmethod
    def spawn(
        fn: Callable[[], None], *, needed: bool = True, helpers: Helpers | None = None
    ) -> Callable[[], object]:
        """Run ``fn()`` in one of the pool's helper threads if ``needed`` (a caller may
        stop waiting), else inline.  ``helpers`` and ``needed`` are the threaded face's.

        Returns a no-op: a thread cannot be stopped, it runs to its end.
        """
        if needed:
            context = contextvars.copy_context()  # the caller's, as an inline call would see
            if helpers is None:
                threading.Thread(
                    target=context.run, args=(fn,), name="respool-create", daemon=True
                ).start()
            else:
                helpers.submit(functools.partial(context.run, fn))
        else:
            fn()
        return _no_loop

    @staticmethod
    def call_soon(fn: Callable[[], object]) -> None:
        """Run ``fn`` in a thread of its own, which may wait for the caller's lock."""
        threading.Thread(target=fn, name="respool-recover", daemon=True).start()

    def check(self) -> str | None:
        return None

    @staticmethod
    def bound_loop_is_gone() -> bool:
        """Threads have no loop that could end."""
        return False
