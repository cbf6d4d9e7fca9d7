# generated from src/respool/_async/loop_pool.py by unasync_build.py: do not edit, edit the source
"""A pool of event loops, each on a thread of its own with its own pool of resources.

The caller's side of ``LoopPool``, for threads; generated from
``respool._async.loop_pool``.  What runs on the pool's
loops (the factory, the releaser, ``fn``) is async in both faces and lives in
``respool._loops.worker``; only how the caller waits differs.
"""

from __future__ import annotations

import functools
import itertools
import os
import time
from collections.abc import Awaitable, Callable, Iterable
from types import TracebackType
from typing import Any, Generic, TypeVar

from .._checks import check_count, check_seconds, is_async_callable
from .._loops import worker as words
from .._loops.worker import LoopFactory, LoopReleaser, LoopStats, Worker
from .._synchronization import Shield
from .._synchronization.completions import Completion, Tally
from .._synchronization.loops import CallStopped, RemoteCall, check_backend, current_thread

T = TypeVar("T")
R = TypeVar("R")


class LoopPool(Generic[T]):
    """Event loops on threads of their own, each with its own pool of resources.

    Each of the ``loop_count`` loops runs on a daemon thread named
    ``respool-loop-<index>``, with its own :class:`AsyncPool` of up to
    ``pool_size`` resources, made there by ``factory`` and closed there by
    ``releaser``: a resource is never used on a loop other than the one that
    made it.  :meth:`run` and :meth:`map` hand ``fn`` to one of the loops and
    block the calling thread until its result is in.

    Args:
        factory: ``async () -> T``, run on each loop to make its resources.
        releaser: ``async (T) -> object``, run on the resource's loop to close
            it, or ``None``.
        loop_count: how many loops (and threads); default ``os.cpu_count()``.
        pool_size: resources per loop, all made when the pool starts.
        backend: ``"asyncio"`` or ``"trio"``, the loops' library (any caller
            may use either).
        shutdown_timeout: seconds the shutdown waits for calls in flight
            before cancelling them on their loops (``None``: no limit).
        **pool_options: the other arguments of :class:`AsyncPool`
            (``acquire_timeout``, ``check``, ``reset``, ``min_size``...), for
            each loop's pool.  Each pool is opened on its loop, so its
            maintainer (``min_size``, ``idle_timeout``, ``keepalive``) runs
            there.

    ``with LoopPool(...) as loops:`` starts it (:meth:`start`) and shuts it
    down on exit (:meth:`close`).  Every method may be called from any
    thread but the pool's own.

    Raises:
        TypeError: ``loop_count`` not an int, or a bad argument of
            :class:`AsyncPool`.
        ValueError: ``loop_count < 1``, an unknown ``backend``, or a bad
            value for :class:`AsyncPool`.
        ImportError: ``backend="trio"`` without trio installed (the
            ``respool[trio]`` extra).
    """

    def __init__(
        self,
        factory: LoopFactory[T],
        releaser: LoopReleaser[T] | None,
        loop_count: int | None = None,
        pool_size: int = 1,
        backend: str = "asyncio",
        *,
        shutdown_timeout: float | None = 30.0,
        **pool_options: Any,
    ) -> None:
        count = (os.cpu_count() or 1) if loop_count is None else loop_count
        self._count = check_count("loop_count", count, 1)
        backend = check_backend(backend)
        self._shutdown_timeout = check_seconds("shutdown_timeout", shutdown_timeout)
        self._name = f"{type(self).__name__}({self._count} {backend} loops)"
        self._workers = [
            Worker(i, self._name, backend, factory, releaser, pool_size, pool_options)
            for i in range(self._count)
        ]
        self._threads = frozenset[int]()
        self._turn = itertools.count()
        self._started = False
        self._closed = False

    # -- public API --------------------------------------------------------

    def start(self) -> None:
        """Start the threads and their loops, and make each loop's resources.

        Returns once every loop runs and holds ``pool_size`` resources.  A
        failure at any step (a thread, a loop, the factory on any loop)
        stops and joins everything already started and raises that error:
        there is no half-built pool.  A factory that keeps failing is retried
        as :meth:`AsyncPool.prefill` does, until ``acquire_timeout``, then
        the start fails with that ``PoolTimeout``; errors listed in
        ``fatal=`` fail it at once.  If the wait is interrupted
        (``KeyboardInterrupt``) everything started is stopped the same way
        before the interruption goes on.

        Raises:
            PoolError: started before.
            PoolClosed: closed before.
        """
        if self._closed:
            raise words.closed(self._name)
        if self._started:
            raise words.started_twice(self._name)
        self._started = True
        first, every = Completion(), Completion()
        tally = Tally(self._count, first.notify, every.notify)
        try:
            for worker in self._workers:
                worker.host.when_ready(functools.partial(_report_ready, tally, worker))
                worker.host.start()
            first.wait(None)
        except BaseException:
            self._shut_down(at_once=True)
            raise
        if tally.failed is not None:
            self._shut_down(at_once=True)
            error = self._workers[tally.failed].host.setup_error
            assert error is not None
            raise error
        self._threads = frozenset(w.host.thread_id for w in self._workers if w.host.thread_id)

    def run(
        self,
        fn: Callable[[T], Awaitable[R]],
        pick: int | None = None,
        *,
        timeout: float | None = None,
    ) -> R:
        """Run ``await fn(resource)`` on one of the loops; return or raise what it does.

        The loop is the next one in turn (round-robin), or loop ``pick``
        (``0`` to ``loop_count - 1``).  ``resource`` is leased from that
        loop's pool for the call (waiting up to the pool's
        ``acquire_timeout`` for one) and given back when ``fn`` ends.

        Args:
            fn: a coroutine function taking the resource.
            pick: the loop's index, or ``None`` for round-robin.
            timeout: seconds for the whole call; ``None`` for no limit.

        Raises:
            TimeoutError: the timeout passed: ``fn`` was cancelled on its
                loop, and this returns once it has ended there.
            PoolError: not started, called from one of the pool's own loops
                (it would deadlock), or that loop has died.
            PoolClosed: the pool is closed or closing.
            TypeError: ``fn`` is not a coroutine function (before anything
                runs), or a bad ``pick`` or ``timeout``.
            ValueError: a negative ``timeout``.
            IndexError: ``pick`` out of range.

        If the wait is interrupted (``KeyboardInterrupt``), ``fn`` is
        cancelled on its loop, and the interruption goes on once it has
        ended there.
        """
        worker = self._choose(fn, pick, timeout)
        done = Completion()
        call = worker.call(fn, (), done.notify)
        if not worker.host.submit(call):
            raise self._refused(worker)
        ok = False
        try:
            ok = done.wait(timeout)
        finally:
            if not ok:
                self._stop([call], [done])
        if not ok and isinstance(call.error, CallStopped):
            assert timeout is not None
            raise words.timed_out(self._name, "run()", timeout, f"loop {worker.index}")
        result: R = call.outcome()
        return result

    def map(
        self,
        fn: Callable[[T, Any], Awaitable[R]],
        inputs: Iterable[Any],
        *,
        timeout: float | None = None,
    ) -> list[R]:
        """Run ``await fn(resource, item)`` for each item; return the results in order.

        Items go to the loops round-robin, each call with a resource leased
        from its loop's pool.  All run at once (each loop's pool bounds how
        many run there together).

        Args:
            fn: a coroutine function taking the resource and one item.
            inputs: the items (consumed before anything runs).
            timeout: seconds for the whole batch; ``None`` for no limit.

        Raises:
            TimeoutError: the timeout passed: the calls still running were
                cancelled on their loops, and this returns once they ended.
            Exception: the first error a call raised; the calls still
                running were cancelled on their loops first.
            PoolError, PoolClosed, TypeError: as for :meth:`run`.

        If the wait is interrupted (``KeyboardInterrupt``), every call still
        running is cancelled on its loop, and the interruption goes on once
        they have ended.
        """
        items = list(inputs)
        self._choose(fn, None, timeout)  # the checks of run()
        start = next(self._turn)
        first, every = Completion(), Completion()
        tally = Tally(len(items), first.notify, every.notify)
        calls: list[RemoteCall] = []
        for i, item in enumerate(items):
            worker = self._workers[(start + i) % self._count]
            call = worker.call(fn, (item,), functools.partial(_report_done, tally, calls, i))
            calls.append(call)
        for i, call in enumerate(calls):
            worker = self._workers[(start + i) % self._count]
            if not worker.host.submit(call):
                self._stop(calls[:i], [every])
                raise self._refused(worker)
        ok, failed = False, None
        try:
            ok = first.wait(timeout)
            failed = tally.failed  # before any call is stopped: a failure of fn's own
        finally:
            if not ok or failed is not None:
                self._stop(calls, [every])
        if failed is not None:
            calls[failed].outcome()
        if not ok:
            assert timeout is not None
            raise words.timed_out(self._name, "map()", timeout, "their loops")
        return [call.outcome() for call in calls]

    def stats(self) -> list[LoopStats]:
        """One :class:`LoopStats` per loop, in index order (never waits)."""
        return [worker.stats() for worker in self._workers]

    @property
    def loop_count(self) -> int:
        """How many loops the pool runs (never waits)."""
        return self._count

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called or the start failed (never waits)."""
        return self._closed

    def close(self) -> None:
        """Shut down, in order; idempotent.

        New calls are refused (:class:`PoolClosed`) at once; calls in flight
        may finish, for up to ``shutdown_timeout`` seconds, after which they
        are cancelled on their loops (their callers get ``PoolClosed``);
        then each loop closes its pool there (the releaser runs on the
        resource's own loop), the loops end, and their threads are joined.
        A loop that died is skipped (its resources were dropped, with a
        WARNING on the ``respool`` logger).

        Raises:
            PoolError: called from one of the pool's own loops (it would wait
                for itself).
        """
        if self._closed:
            return
        self._not_from_my_loops(self.close.__name__ + "()")
        self._shut_down(at_once=False)

    def __enter__(self) -> LoopPool[T]:
        """``async with loops:`` starts the pool (:meth:`start`) and returns it."""
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Shut the pool down (:meth:`close`)."""
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else "running" if self._started else "not started"
        return f"<{self._name} {state}>"

    # -- internals -------------------------------------------------------------

    def _choose(self, fn: object, pick: int | None, timeout: float | None) -> Worker[T]:
        if not is_async_callable(fn):
            raise words.not_async(fn)
        check_seconds("timeout", timeout)
        if self._closed:
            raise words.closed(self._name)
        if not self._started:
            raise words.not_started(self._name)
        self._not_from_my_loops("run() or map()")
        count = self._count
        if pick is None:
            worker = self._workers[next(self._turn) % count]
        elif isinstance(pick, bool) or not isinstance(pick, int) or not 0 <= pick < count:
            raise words.bad_pick(pick, count)
        else:
            worker = self._workers[pick]
        if worker.host.dying:
            raise worker.host.gone()
        return worker

    def _not_from_my_loops(self, what: str) -> None:
        me = current_thread()
        if me in self._threads:
            index = next(w.index for w in self._workers if w.host.thread_id == me)
            raise words.own_loop(self._name, what, index)

    def _refused(self, worker: Worker[T]) -> BaseException:
        if worker.host.dying:
            return worker.host.gone()
        return words.closed(self._name)

    def _stop(self, calls: list[RemoteCall], ends: list[Completion]) -> None:
        """Cancel ``calls`` on their loops and wait until each has ended there."""
        with Shield():
            for call in calls:
                call.stop()
            for end in ends:
                end.wait(None)
            for call in calls:
                assert call.done

    def _shut_down(self, *, at_once: bool) -> None:
        """Fence, wait for calls in flight, close each pool on its loop, end loops, join."""
        self._closed = True
        with Shield():
            ends = []
            workers = [w for w in self._workers if w.host.started]
            for worker in workers:
                end = Completion()
                worker.host.when_ended(end.notify)
                worker.host.finish()
                ends.append(end)
            limit = None if at_once else self._shutdown_timeout
            deadline = None if limit is None else time.monotonic() + limit
            for worker, end in zip(workers, ends, strict=True):
                if at_once:
                    worker.host.stop_calls()
                elif deadline is not None:
                    ended = end.wait(max(0.0, deadline - time.monotonic()))
                    if not ended:
                        worker.host.stop_calls()
                end.wait(None)
            for worker in workers:
                worker.host.join()


def _report_ready(tally: Tally, worker: Worker[Any]) -> None:
    tally.one(worker.index, worker.host.setup_error is None)


def _report_done(tally: Tally, calls: list[RemoteCall], index: int) -> None:
    tally.one(index, calls[index].error is None)
