"""The threaded pool's helper threads (``Helpers``), and what a fork leaves of them.

``AsyncHelpers`` is the async face's twin, which has nothing to do.
"""

from __future__ import annotations

import _thread
import itertools
import logging
import os
import threading
import time
import weakref
from collections.abc import Callable

from .._reprs import name_of
from .interrupts import _Interrupts, ki_protected

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
