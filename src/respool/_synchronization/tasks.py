"""Where an opened pool's maintainer runs, and its background work.

``AsyncMaintainerTask`` runs an async pool's maintainer in a task group that
``async with pool:`` owns (structured: it ends with the block), or, for
``await pool.open()``, as a background task on the pool's loop (an asyncio
task, a trio system task).  ``MaintainerTask`` runs a threaded pool's in one
daemon thread.  ``AsyncJobs``/``Jobs`` run the maintainer's own work (a
factory call, a close, a keepalive check) beside it: in its task group, or
in the pool's helper threads.
"""

from __future__ import annotations

import contextvars
import functools
import threading
from collections.abc import Awaitable, Callable, Coroutine
from types import TracebackType
from typing import Any, Protocol, TypeVar

import anyio
import anyio.abc

from .guards import AsyncLoopGuard, LoopGuard
from .helpers import AsyncHelpers, Helpers
from .interrupts import _ki_unprotected

AsyncTaskStatus = anyio.abc.TaskStatus
ASYNC_TASK_STATUS_IGNORED = anyio.TASK_STATUS_IGNORED

JOIN_SECONDS = 5.0  # the most dispose() waits for a maintainer thread to end


def _nothing() -> None:
    pass


class AsyncJobs:
    """The maintainer's background work: tasks in a group it owns (``async with``).

    Leaving the block waits for them; cancelling the maintainer cancels them.
    """

    def __init__(self, helpers: AsyncHelpers) -> None:
        self._tg = anyio.create_task_group()

    async def __aenter__(self) -> AsyncJobs:
        await self._tg.__aenter__()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        return await self._tg.__aexit__(exc_type, exc, tb)

    def start(self, fn: Callable[..., Awaitable[None]], *args: Any) -> Callable[[], object]:
        """Run ``await fn(*args)`` (which must not raise); return what cancels it."""
        scope = anyio.CancelScope()

        async def run() -> None:
            with scope:
                await fn(*args)

        self._tg.start_soon(run)
        return scope.cancel


class Jobs:
    """The maintainer's background work: calls in the pool's helper threads."""

    def __init__(self, helpers: Helpers) -> None:
        self._helpers = helpers

    def __enter__(self) -> Jobs:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        return None  # each call runs to its end, bounded by the pool's own timeouts

    def start(self, fn: Callable[..., None], *args: Any) -> Callable[[], object]:
        """Run ``fn(*args)`` (which must not raise) in a helper thread; it cannot be stopped."""
        context = contextvars.copy_context()
        self._helpers.submit(functools.partial(context.run, fn, *args))
        return _nothing


class AsyncMaintainerTask:
    """Runs an async pool's maintainer, owned by a block or in the background."""

    __slots__ = ("_stop", "_tg")

    def __init__(self) -> None:
        self._tg: anyio.abc.TaskGroup | None = None
        self._stop: Callable[[], object] | None = None

    async def enter(self, maintain: Callable[..., Coroutine[Any, Any, None]]) -> None:
        """Start ``maintain(task_status=...)`` in a task group the caller's block owns."""
        tg = anyio.create_task_group()
        await tg.__aenter__()
        try:
            await tg.start(maintain)
        except BaseException as exc:
            await tg.__aexit__(type(exc), exc, exc.__traceback__)
            raise
        self._tg = tg

    def background(
        self, loop: Callable[[], Coroutine[Any, Any, None]], guard: AsyncLoopGuard
    ) -> None:
        """Run ``await loop()`` as a task of its own on the pool's loop."""
        self._stop = guard.spawn(loop)

    async def stop(self) -> None:
        """At dispose: cancel a background maintainer (one a block owns ends by itself)."""
        stop, self._stop = self._stop, None
        if stop is not None:
            stop()

    async def leave(self) -> None:
        """At the end of the owning block: cancel the maintainer, leave its task group."""
        tg, self._tg = self._tg, None
        if tg is not None:
            tg.cancel_scope.cancel()
            await tg.__aexit__(None, None, None)


class _Started:
    """``task_status`` for a maintainer thread: says when it runs, or why it could not."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self.error: BaseException | None = None

    def started(self, value: object = None) -> None:
        self.event.set()


class MaintainerTask:
    """Runs a threaded pool's maintainer in a daemon thread of its own."""

    __slots__ = ("_thread",)

    def __init__(self) -> None:
        self._thread: threading.Thread | None = None

    def enter(self, maintain: Callable[..., None]) -> None:
        """Start ``maintain(task_status=...)`` in a daemon thread, once it runs."""
        status = _Started()

        def run() -> None:
            try:
                maintain(task_status=status)
            except BaseException as exc:  # before it started: the opener raises it
                status.error = exc
                status.event.set()

        thread = threading.Thread(target=run, name="respool-maintainer", daemon=True)
        thread.start()
        self._thread = thread  # from now on dispose() stops it, even if the wait is interrupted
        _wait(status.event)
        if status.error is not None:
            self._thread = None
            _join(thread, None)
            raise status.error

    def background(self, loop: Callable[[], None], guard: LoopGuard) -> None:
        """Run ``loop()`` in a daemon thread of its own."""
        thread = threading.Thread(target=loop, name="respool-maintainer", daemon=True)
        thread.start()
        self._thread = thread

    def stop(self) -> None:
        """Wait, at most ``JOIN_SECONDS``, for the maintainer thread (asked to stop) to end."""
        thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            _join(thread, JOIN_SECONDS)

    def leave(self) -> None:
        """At the end of a ``with`` block: as :meth:`stop`."""
        self.stop()

    @property
    def thread(self) -> threading.Thread | None:
        """The maintainer's thread, while it runs (tests count threads)."""
        return self._thread


@_ki_unprotected  # Ctrl-C raises at once here, also inside the pool's protected code
def _wait(event: threading.Event) -> None:
    event.wait()


@_ki_unprotected
def _join(thread: threading.Thread, timeout: float | None) -> None:
    thread.join(timeout)


T_contra = TypeVar("T_contra", contravariant=True)


class TaskStatus(Protocol[T_contra]):
    """What a threaded maintainer tells its starter (anyio's ``TaskStatus``, for threads)."""

    def started(self, value: T_contra | None = None) -> None: ...


class _Ignored:
    def started(self, value: object = None) -> None:
        pass


TASK_STATUS_IGNORED: TaskStatus[Any] = _Ignored()  # maintain() called without a starter
