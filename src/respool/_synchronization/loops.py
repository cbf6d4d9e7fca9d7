"""Event loops on threads of their own, for ``AsyncLoopPool``/``LoopPool``.

``LoopHost`` runs one event loop (asyncio or trio, through anyio) on a daemon
thread: first an async ``setup``, then every ``RemoteCall`` submitted to it
from any thread, each in a task of its own and a cancel scope any thread can
cancel, then an async ``teardown``, and the loop ends.  The caller waits for
a call with ``completions.AsyncCompletion`` or ``Completion``.  None of this
knows the pool: the loop pool's worker (``respool._loops.worker``) hands in
what runs there.
"""

from __future__ import annotations

import asyncio
import math
import threading
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import sniffio
from anyio.streams.memory import MemoryObjectSendStream

BACKENDS = ("asyncio", "trio")


def check_backend(backend: object) -> str:
    """``"asyncio"`` or ``"trio"`` (trio importable), else a clear error."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be 'asyncio' or 'trio', got {backend!r}")
    if backend == "trio":
        try:
            import trio  # noqa: F401
        except ImportError as error:
            raise ImportError(
                "backend='trio' needs trio, which is not installed: pip install 'respool[trio]'"
            ) from error
    return str(backend)


def current_thread() -> int:
    """The calling thread's identity (``threading.get_ident()``)."""
    return threading.get_ident()


# -- one call, run on a host's loop ---------------------------------------------------


class RemoteCall:
    """``await body()`` on a host's loop, for a caller on another thread.

    ``notify`` is called (from the host's thread) once the call is over:
    returned, raised, stopped, or refused because the loop ended.  Then
    ``outcome()`` returns the result or raises the error.  ``stop()``, from
    any thread, cancels the call on its loop (or before it starts there).
    """

    __slots__ = ("_body", "_host", "_notify", "_scope", "done", "error", "result", "stopped")

    def __init__(self, body: Callable[[], Awaitable[Any]], notify: Callable[[], None]) -> None:
        self._body = body
        self._notify = notify
        self._host: LoopHost | None = None
        self._scope: anyio.CancelScope | None = None
        self.stopped = False  # stop() was asked: the caller gave up on it
        self.done = False
        self.result: Any = None
        self.error: BaseException | None = None

    def outcome(self) -> Any:
        if self.error is not None:
            raise self.error
        return self.result

    def stop(self) -> None:
        """Cancel the call on its loop (from any thread); its end is still notified."""
        self.stopped = True
        host = self._host
        if host is not None and not self.done:
            host.call_soon(self._stop_here)

    def _stop_here(self) -> None:  # on the host's loop
        if self._scope is not None:
            self._scope.cancel()

    def _finish(self, error: BaseException | None) -> None:
        host = self._host
        assert host is not None  # a call is finished only once submitted
        with host._lock:  # the call's thread and a dying host's may both get here
            if self.done:
                return
            self.done = True
            host._pending.discard(self)
        if error is not None:
            self.error = error
        self._notify()

    async def _run(self) -> None:  # a task on the host's loop
        error: BaseException | None = None
        try:
            with anyio.CancelScope() as scope:
                self._scope = scope
                if self.stopped:
                    scope.cancel()
                self.result = await self._body()
            if scope.cancelled_caught:
                error = CallStopped("the call was cancelled on its loop")
        except Exception as exc:
            error = exc
        except BaseException as exc:  # the host's shutdown cancelled it, or KeyboardInterrupt
            host = self._host
            if host is not None and isinstance(exc, anyio.get_cancelled_exc_class()):
                self._finish(host.gone())  # the host's shutdown, or its loop is dying
            else:
                self._finish(exc)
            raise
        finally:
            self._scope = None
        self._finish(error)


class CallStopped(Exception):
    """A call the caller gave up on (a timeout, a cancellation) ended there."""


# -- one event loop on a thread of its own ---------------------------------------------


class LoopHost:
    """One event loop on a daemon thread: ``setup``, the calls, then ``teardown``.

    ``start()`` starts the thread.  Once ``setup`` has returned or raised,
    every callback given to ``when_ready`` runs (in the host's thread);
    ``setup_error`` says which.  A failed ``setup`` still runs ``teardown``,
    then the loop ends.  ``finish()`` (any thread) refuses new calls, lets
    those submitted run to their end, then runs ``teardown`` and ends the
    loop; ``stop_calls()`` cancels the calls still running.  Once the loop
    has ended, every ``when_ended`` callback runs; a call still pending then
    (the loop died) ends with ``died`` as its error.
    """

    def __init__(
        self,
        backend: str,
        name: str,
        setup: Callable[[], Awaitable[None]],
        teardown: Callable[[], Awaitable[None]],
        died: Callable[[BaseException | None], BaseException],
    ) -> None:
        self.backend = backend
        self._setup, self._teardown, self._died = setup, teardown, died
        self._lock = threading.Lock()
        self._pending: set[RemoteCall] = set()  # submitted and not over yet
        self._queue: list[RemoteCall] = []  # submitted, not yet handed to the loop
        self.submitted = 0  # calls accepted since the start
        self._ready: list[Callable[[], None]] | None = []  # None once ready
        self._ended: list[Callable[[], None]] | None = []  # None once ended
        self._soon: Callable[[Callable[[], object]], object] | None = None
        self._inbox: MemoryObjectSendStream[RemoteCall] | None = None
        self._stopping: anyio.CancelScope | None = None  # setup and the calls run in it
        self.closing = False  # no new calls: finish() was called, or the loop is ending
        self.finishing = False  # finish() was called
        self.setup_error: BaseException | None = None
        self.error: BaseException | None = None  # the loop died of it
        self.thread_id: int | None = None
        self.thread = threading.Thread(target=self._thread_main, name=name, daemon=True)

    # -- from any thread

    def start(self) -> None:
        try:
            self.thread.start()
        except BaseException as exc:  # no thread (say the OS refused one): never ready
            self.setup_error = exc
            self._fire("_ready")
            self._fire("_ended")
            raise

    @property
    def dying(self) -> bool:
        """Whether the loop ended, or is ending, without being asked to (``finish()``)."""
        return self.error is not None or (self.closing and not self.finishing)

    def gone(self) -> BaseException:
        """The error of a call the loop cannot run any more."""
        if self.finishing and self.error is None:
            return self._died(None)  # shut down as asked
        return self._died(self.error or RuntimeError("its loop ended"))

    @property
    def started(self) -> bool:
        """Whether its thread was started (it may have ended since)."""
        return self.thread.ident is not None

    def join(self) -> None:
        """Wait for the thread to end (it is ending once ``when_ended`` has fired)."""
        if self.thread.ident is not None:
            self.thread.join()

    @property
    def in_flight(self) -> int:
        return len(self._pending)

    @property
    def ended(self) -> bool:
        return self._ended is None

    def when_ready(self, fn: Callable[[], None]) -> None:
        self._when(fn, "_ready")

    def when_ended(self, fn: Callable[[], None]) -> None:
        self._when(fn, "_ended")

    def _when(self, fn: Callable[[], None], which: str) -> None:
        with self._lock:
            waiting: list[Callable[[], None]] | None = getattr(self, which)
            if waiting is not None:
                waiting.append(fn)
                return
        fn()

    def submit(self, call: RemoteCall) -> bool:
        """Queue ``call`` on the loop; ``False`` if the loop no longer takes calls."""
        with self._lock:
            if self.closing or self._ended is None or self._soon is None:
                return False
            self._pending.add(call)
            self.submitted += 1
            call._host = self
            self._queue.append(call)
            wake = len(self._queue) == 1  # else a wake-up is on its way already
        if wake and not self.call_soon(self._drain):
            self._drain()  # the loop is over: each queued call ends with its error
        return True

    def call_soon(self, fn: Callable[[], object]) -> bool:
        """Run ``fn`` on the loop soon; ``False`` if the loop is over."""
        soon = self._soon
        if soon is None:
            return False
        try:
            soon(fn)
        except RuntimeError:  # the loop is closed, or the trio run finished
            return False
        return True

    def finish(self) -> None:
        """No new calls; once the submitted ones end, tear down and end the loop."""
        with self._lock:
            self.closing = self.finishing = True
        self.call_soon(self._close_inbox)

    def stop_calls(self) -> None:
        """Cancel ``setup`` if it still runs, and every call still running."""
        self.call_soon(self._stop_group)

    # -- on the host's loop

    def _drain(self) -> None:
        """Hand every queued call to the loop: one wake-up serves a burst of submits."""
        with self._lock:
            calls, self._queue = self._queue, []
        for call in calls:
            self._dispatch(call)

    def _dispatch(self, call: RemoteCall) -> None:
        inbox = self._inbox
        if inbox is None:
            call._finish(self.gone())
            return
        try:
            inbox.send_nowait(call)
        except (anyio.ClosedResourceError, anyio.BrokenResourceError):
            call._finish(self.gone())

    def _close_inbox(self) -> None:
        if self._inbox is not None:
            self._inbox.close()

    def _stop_group(self) -> None:
        if self._stopping is not None:
            self._stopping.cancel()

    def _fire(self, which: str) -> None:
        with self._lock:
            callbacks: list[Callable[[], None]] = getattr(self, which) or []
            setattr(self, which, None)
        for fn in callbacks:
            fn()

    async def _main(self) -> None:
        send, receive = anyio.create_memory_object_stream[RemoteCall](math.inf)
        self._inbox = send
        self._stopping = stopping = anyio.CancelScope()
        if sniffio.current_async_library() == "trio":
            import trio

            self._soon = trio.lowlevel.current_trio_token().run_sync_soon
        else:
            self._soon = asyncio.get_running_loop().call_soon_threadsafe
        try:
            with stopping:
                try:
                    await self._setup()
                except BaseException as exc:
                    cancelled = isinstance(exc, anyio.get_cancelled_exc_class())
                    self.setup_error = CallStopped("the start was cancelled") if cancelled else exc
                    self._fire("_ready")
                    raise
                self._fire("_ready")
                async with anyio.create_task_group() as group:
                    async for call in receive:
                        group.start_soon(call._run)
        except Exception:
            if self.setup_error is None:
                raise
        finally:
            with self._lock:
                self.closing = True
            send.close()
            receive.close()
            with anyio.CancelScope(shield=True):
                await self._teardown()

    def _thread_main(self) -> None:
        self.thread_id = threading.get_ident()
        try:
            anyio.run(self._main, backend=self.backend)
        except BaseException as exc:  # the loop died (a bug, or fn broke its loop)
            self.error = exc
        finally:
            with self._lock:
                self.closing = True
                leftovers = list(self._pending)
            for call in leftovers:
                call._finish(self.gone())
            if self._ready is not None:  # died before setup ended
                self.setup_error = self.setup_error or self.gone()
                self._fire("_ready")
            self._soon = None
            self._fire("_ended")
