"""``LoopPools``: one ``AsyncPool`` per (key, running event loop).

Code that runs several event loops in one process (a Celery or RQ task that
calls ``asyncio.run``, a sync wrapper, a test suite with a loop per test)
gets, on each loop, a pool of its own, disposed on that loop as it ends.
Async only, hand-written: the threaded face has no loop.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable, Hashable
from typing import Any, Generic, NamedTuple, TypeVar

from .._async import AsyncPool
from .._errors import PoolError
from .._reprs import show
from .._stats import PoolStats
from .._synchronization.completions import AsyncCompletion
from .._synchronization.loopends import EndHook, LoopRef, RegistryLock, running_loop

T = TypeVar("T")

log = logging.getLogger("respool")

MakePool = Callable[[Any], "AsyncPool[T] | Awaitable[AsyncPool[T]]"]


class LoopPoolInfo(NamedTuple):
    """One pool of a :class:`LoopPools` (``pools.info()``): ``(key, loop, stats)``.

    ``loop`` is the asyncio event loop, or the trio run's ``TrioToken``.
    """

    key: Hashable
    loop: object
    stats: PoolStats


class _Slot:
    """A key's pool on one loop: being made (``ready`` not set yet), or made."""

    __slots__ = ("error", "pool", "ready")

    def __init__(self) -> None:
        self.pool: AsyncPool[Any] | None = None
        self.error: BaseException | None = None  # make_pool raised it
        self.ready = AsyncCompletion()


class _Loop:
    """The pools of one running loop, and the hook that disposes them as it ends."""

    __slots__ = ("hook", "ref", "slots")

    def __init__(self, ref: LoopRef) -> None:
        self.ref = ref
        self.slots: dict[Hashable, _Slot] = {}
        self.hook: EndHook | None = None  # installed by the first get()


class LoopPools(Generic[T]):
    """One :class:`AsyncPool` per key and running event loop (asyncio or trio).

    ``make_pool(key)`` makes the pool for ``key`` (an ``AsyncPool``, or an
    awaitable of one); it is called on the loop that will use the pool, the
    first time :meth:`get` asks for that key there.  A pool is never handed
    to another loop, so its resources never meet a loop other than their own.

    When a loop ends, its pools are disposed on it while it still runs:
    asyncio's ``asyncio.run`` (and ``asyncio.Runner``, ``anyio.run``, uvloop)
    closes async generators before closing the loop, and a parked one of
    ours runs the disposal then; a trio run ends by cancelling a system task
    of ours, which disposes shielded.  A loop closed without that step
    (``loop.close()`` after ``run_until_complete``) cannot run code any more:
    its pools are dropped when next noticed (by :meth:`get`, :meth:`info`,
    ``len()`` or :meth:`close_all`), their resources left to the garbage
    collector unclosed, with a WARNING on the ``respool`` logger naming the
    key.  A new loop never gets a dead loop's pool, even at the same ``id()``.

    Args:
        make_pool: ``(key) -> AsyncPool`` (or an awaitable of one).
    """

    def __init__(self, make_pool: MakePool[T]) -> None:
        if not callable(make_pool):
            raise TypeError(f"make_pool must be callable, got {show(make_pool)}")
        self._make_pool = make_pool
        self._lock = RegistryLock()
        self._loops: dict[int, _Loop] = {}  # by id() of the loop, each checked by identity

    async def get(self, key: Hashable = "default") -> AsyncPool[T]:
        """The pool for ``key`` on the running loop, made on first use.

        Keys are compared by equality (a dict lookup), so two equal keys share
        a pool and two keys that merely hash alike do not.  Concurrent first
        uses on one loop make exactly one pool: the first caller calls
        ``make_pool``, the others wait for it.

        Raises:
            TypeError: ``key`` is not hashable, or ``make_pool`` returned
                something other than an ``AsyncPool``.
            PoolError: ``make_pool`` failed for a caller that waited for it
                (its error is the ``__cause__``); the caller that called it
                gets the error itself.  Nothing is registered then: the next
                ``get`` calls ``make_pool`` again.
            RuntimeError: not called from inside an asyncio or trio run.

        No timeout applies but ``make_pool``'s own.  On cancellation of the
        caller that runs ``make_pool``, nothing is registered and one of the
        waiters calls it again; a waiter's cancellation changes nothing else.
        """
        try:
            hash(key)
        except TypeError:
            raise TypeError(f"a LoopPools key must be hashable, got {show(key)}") from None
        record = await self._record()
        while True:
            with self._lock:
                slot = record.slots.get(key)
                mine = slot is None
                if slot is None:
                    slot = record.slots[key] = _Slot()
                elif slot.pool is not None:
                    return slot.pool
            if mine:
                return await self._make(record, key, slot)
            await slot.ready.wait(None)
            if slot.pool is not None:
                return slot.pool
            if slot.error is not None:
                raise PoolError(
                    f"make_pool({show(key)}) failed in the task that called it first; "
                    "nothing was registered, the next get() tries again"
                ) from slot.error
            # its caller was cancelled: try again (one waiter becomes the maker)

    async def aclose(self) -> None:
        """Dispose every pool of the running loop (they are made again on demand).

        A pool still being made when this runs is registered when it is
        ready, and disposed at the loop's end.  Disposing is cleanup: it is
        not interrupted by cancellation, and no timeout applies but the
        pools' own ``cleanup_timeout``.
        """
        _, loop = running_loop()
        with self._lock:
            record = self._loops.get(id(loop))
            if record is None or record.ref.get() is not loop:
                return
            pools = _take_pools(record)
        await _dispose_all(pools)

    def close_all(self, timeout: float = 10.0) -> None:
        """From sync code (say ``atexit``): dispose the pools of every loop.

        A loop running in another thread disposes its pools there; this
        waits up to ``timeout`` seconds for each (one still disposing then
        is left to finish and logged).  The loop of the calling thread, if
        it runs, is given the disposal as a task and not waited for.  A loop
        that has ended, or is not running now, cannot run anything: its
        pools are dropped, their resources unclosed, with a WARNING naming
        each key.  Never calls ``asyncio.run`` and never starts a loop.
        """
        with self._lock:
            records = list(self._loops.values())
            self._loops.clear()
        for record in records:
            with self._lock:
                pools = _take_pools(record)
            if not pools:
                _drop_hook(record)
                continue
            if not record.ref.running():
                _drop_hook(record)
                _drop(record, pools, "is not running")
                continue
            done = record.ref.run_soon(lambda pools=pools: _dispose_all(pools))  # type: ignore[misc]
            if done is None:
                _drop(record, pools, "has ended")
            elif not record.ref.on_this_thread() and not done.wait(timeout):
                log.warning(
                    "LoopPools.close_all: the pools of %s were still being disposed after "
                    "%ss; left to finish there: %s",
                    record.ref.description, timeout, ", ".join(show(k) for k, _ in pools),
                )  # fmt: skip

    def info(self) -> list[LoopPoolInfo]:
        """``(key, loop, stats)`` for every live pool (never waits)."""
        self._sweep()
        with self._lock:
            found = [
                (key, record.ref.get(), slot.pool)
                for record in self._loops.values()
                for key, slot in record.slots.items()
                if slot.pool is not None
            ]
        return [LoopPoolInfo(k, loop, pool.stats()) for k, loop, pool in found if loop is not None]

    def __len__(self) -> int:
        """How many live pools there are, over every loop (never waits)."""
        self._sweep()
        with self._lock:
            return sum(
                1
                for record in self._loops.values()
                for slot in record.slots.values()
                if slot.pool is not None
            )

    def __repr__(self) -> str:
        return f"<LoopPools {len(self)} pools>"

    # -- internals -------------------------------------------------------------

    async def _record(self) -> _Loop:
        """The running loop's record, made (and its end hooked) on first use."""
        library, loop = running_loop()
        with self._lock:
            record = self._loops.get(id(loop))
        if record is None or record.ref.get() is not loop:
            self._sweep()  # a dead loop at this id() is forgotten first, its pools dropped
            with self._lock:
                record = self._loops.get(id(loop))
                if record is None or record.ref.get() is not loop:
                    record = self._loops[id(loop)] = _Loop(LoopRef(library, loop))
        if record.hook is None:  # one task installs it: no await between check and set
            record.hook = EndHook()
            record.hook = await EndHook.install(lambda: self._loop_ended(record))
        return record

    async def _make(self, record: _Loop, key: Hashable, slot: _Slot) -> AsyncPool[T]:
        try:
            made: Any = self._make_pool(key)
            if inspect.isawaitable(made):
                made = await made
            if not isinstance(made, AsyncPool):
                raise TypeError(
                    f"make_pool({show(key)}) must return an AsyncPool, got {show(made)}"
                )
        except BaseException as exc:
            with self._lock:
                if record.slots.get(key) is slot:
                    del record.slots[key]
            if isinstance(exc, Exception):
                slot.error = exc
            slot.ready.notify()
            raise
        with self._lock:
            slot.pool = made
        slot.ready.notify()
        return made

    async def _loop_ended(self, record: _Loop) -> None:
        """On the loop, as it ends: forget it, and dispose its pools there."""
        with self._lock:
            if self._loops.get(id(record.ref.get())) is record:
                del self._loops[id(record.ref.get())]
            pools = _take_pools(record)
        await _dispose_all(pools)

    def _sweep(self) -> None:
        """Forget the loops that ended without running their hook, dropping their pools."""
        with self._lock:
            dead = [(i, r) for i, r in self._loops.items() if r.ref.over()]
            for i, _ in dead:
                del self._loops[i]
            gone = [(r, _take_pools(r)) for _, r in dead]
        for record, pools in gone:
            _drop_hook(record)
            if pools:
                _drop(record, pools, "ended without disposing them")


def _take_pools(record: _Loop) -> list[tuple[Hashable, AsyncPool[Any]]]:
    """The made pools of ``record``, removed from it (call under the lock)."""
    made = [(key, slot.pool) for key, slot in record.slots.items() if slot.pool is not None]
    for key, _ in made:
        del record.slots[key]
    return made


def _drop_hook(record: _Loop) -> None:
    if record.hook is not None:
        record.hook.drop()


def _drop(record: _Loop, pools: list[tuple[Hashable, AsyncPool[Any]]], why: str) -> None:
    for key, pool in pools:
        log.warning(
            "LoopPools: the pool for key %s belonged to %s, which %s; its %d resource(s) "
            "were dropped without their releaser (await pools.aclose() on that loop before "
            "it ends, or end it with asyncio.run, to close them there)",
            show(key), record.ref.description, why, pool.stats().size,
        )  # fmt: skip


async def _dispose_all(pools: list[tuple[Hashable, AsyncPool[Any]]]) -> None:
    for key, pool in pools:
        try:
            await pool.dispose()
        except Exception:
            log.exception("LoopPools: disposing the pool for key %s failed", show(key))
