"""Which event loop a pool belongs to: ``AsyncLoopGuard``/``LoopGuard``.

The guard binds an async pool to the first loop that uses it and gives the
pool that loop's clock, its events, and a way to run code on it; the threaded
twin has no loop to bind to.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import threading
import time
from collections.abc import Callable, Coroutine
from typing import Any, cast

import anyio
import sniffio

from .events import AsyncEvent, Event, _AsyncioEvent, _Deadlines, _trio_parts
from .helpers import AsyncHelpers, Helpers

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
        new_event: Callable[[], AsyncEvent] = functools.partial(
            _AsyncioEvent, loop, _Deadlines(loop, clock)
        )
        return library, loop, asyncio._get_running_loop, new_event, clock
    if library == "trio":
        token, trio_event, trio_deadlines = _trio_parts()
        clock, real = _trio_clock()
        new_event = functools.partial(trio_event, trio_deadlines(clock, real))
        return library, token(), token, new_event, clock
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
