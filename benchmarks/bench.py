"""respool's benchmark: respool next to its peers and raw floors, in one process.

One operation (op) is one acquire + release cycle of a trivial pooled object.
Every scenario builds a fresh, prefilled pool per measurement; the rounds run
every (scenario, pool) case once each, in a rotated order, and the report
takes the median over rounds.  Each contended case (several callers) also
gets a wait pass in the same round: its own window, with each acquire's
wait timed (p50, p99, max).  See docs/performance.md for the method.

    python benchmarks/bench.py                 # full run (about 3-5 minutes)
    python benchmarks/bench.py --quick         # smoke run, writes nothing by default
    bash benchmarks/run.sh                     # same, in its own venv, on Python 3.12+

Outputs (full run): a table on stdout, benchmarks/results.json, the results
block of docs/performance.md, and docs/performance.png.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import gc
import itertools
import json
import platform
import statistics
import sys
import threading
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from functools import partial
from importlib import metadata
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import report
from contenders import BY_KEY, CONTENDERS, Contender, Factory, Resource, maybe_await, missing

ROOT = Path(__file__).resolve().parent.parent
perf_counter = time.perf_counter
perf_counter_ns = time.perf_counter_ns


# -- what is measured -------------------------------------------------------------


@dataclass(frozen=True)
class Scenario:
    id: str
    title: str
    library: str  # asyncio | trio | threads
    pool_size: int
    callers: int
    hold: bool  # the holder yields once (sleep(0)) while holding
    contenders: tuple[str, ...]
    group: str = "main"  # main | growth


@dataclass(frozen=True)
class Growth:
    id: str
    title: str
    small: str  # scenario ids
    large: str


@dataclass
class Config:
    rounds: int = 3
    single_seconds: float = 0.25  # target duration of one single-caller measurement
    probe_ops: int = 2000
    window: float = 0.4  # measured window of a multi-caller run (at least)
    wait_window: float = 0.1  # the same, for the wait pass (its own run, no slices)
    max_window: float = 3.0
    warmup: float = 0.08
    slices: int = 5  # each measurement is timed in slices; its sample is the best slice
    drain_timeout: float = 10.0
    idle_large: int = 10_000
    waiters_large: int = 5_000
    thread_waiters_large: int = 5_000
    memory_resources: int = 10_000
    quick: bool = False
    wait: bool = True  # run the wait pass of the contended scenarios


ASYNCIO_ALL = (
    "respool-async",
    "respool-async-lease",
    "escudeiro-async",
    "acp",
    "gcp-async",
    "asyncio-lifoqueue",
)
TRIO_ALL = ("respool-trio", "respool-trio-lease", "trio-channel")
THREADS_1 = (
    "respool-threads",
    "respool-threads-lease",
    "escudeiro-threads",
    "gcp-threads",
    "sqlalchemy",
    "queue-lifoqueue",
)
THREADS_8 = (*THREADS_1[:-1], "sqlalchemy-lifo", THREADS_1[-1])
ASYNCIO_GROWTH = ("respool-async", "respool-async-lease", "asyncio-lifoqueue")
THREADS_GROWTH = ("respool-threads", "respool-threads-lease", "queue-lifoqueue")
# Contended: respool with fairness_window=0 too, so both ways are measured in one run.
ASYNCIO_CONTENDED = (*ASYNCIO_ALL[:2], "respool-async-strict", *ASYNCIO_ALL[2:])
TRIO_CONTENDED = (*TRIO_ALL[:2], "respool-trio-strict", *TRIO_ALL[2:])
THREADS_CONTENDED = (*THREADS_8[:2], "respool-threads-strict", *THREADS_8[2:])


def scenarios(cfg: Config) -> tuple[list[Scenario], list[Growth]]:
    big, waiters, tw = cfg.idle_large, cfg.waiters_large, cfg.thread_waiters_large
    main = [
        Scenario("a", "asyncio, 1 task, pool 10", "asyncio", 10, 1, False, ASYNCIO_ALL),
        Scenario(
            "b",
            "asyncio, 100 tasks, pool 10, sleep(0) held",
            "asyncio",
            10,
            100,
            True,
            ASYNCIO_CONTENDED,
        ),
        Scenario("c", "threads, 1 thread, pool 10", "threads", 10, 1, False, THREADS_1),
        Scenario(
            "d",
            "threads, 8 threads, pool 4, sleep(0) held",
            "threads",
            4,
            8,
            True,
            THREADS_CONTENDED,
        ),
        Scenario("e", "threads, 8 threads, pool 8", "threads", 8, 8, False, THREADS_CONTENDED),
        Scenario("f-a", "trio, 1 task, pool 10", "trio", 10, 1, False, TRIO_ALL),
        Scenario(
            "f-b", "trio, 100 tasks, pool 10, sleep(0) held", "trio", 10, 100, True, TRIO_CONTENDED
        ),
    ]
    g = "growth"
    growth_scenarios = [
        Scenario(
            "h-idle-asyncio-10",
            "asyncio, 1 task, 10 idle",
            "asyncio",
            10,
            1,
            False,
            ASYNCIO_GROWTH,
            g,
        ),
        Scenario(
            f"h-idle-asyncio-{big}",
            f"asyncio, 1 task, {big:,} idle",
            "asyncio",
            big,
            1,
            False,
            ASYNCIO_GROWTH,
            g,
        ),
        Scenario(
            "h-idle-threads-10",
            "threads, 1 thread, 10 idle",
            "threads",
            10,
            1,
            False,
            THREADS_GROWTH,
            g,
        ),
        Scenario(
            f"h-idle-threads-{big}",
            f"threads, 1 thread, {big:,} idle",
            "threads",
            big,
            1,
            False,
            THREADS_GROWTH,
            g,
        ),
        Scenario(
            "h-wait-asyncio-10",
            "asyncio, pool 10, 10 waiting",
            "asyncio",
            10,
            20,
            True,
            ASYNCIO_GROWTH,
            g,
        ),
        Scenario(
            f"h-wait-asyncio-{waiters}",
            f"asyncio, pool 10, {waiters:,} waiting",
            "asyncio",
            10,
            10 + waiters,
            True,
            ASYNCIO_GROWTH,
            g,
        ),
        Scenario(
            "h-wait-threads-10",
            "threads, pool 10, 10 waiting",
            "threads",
            10,
            20,
            True,
            THREADS_GROWTH,
            g,
        ),
        Scenario(
            f"h-wait-threads-{tw}",
            f"threads, pool 10, {tw:,} waiting",
            "threads",
            10,
            10 + tw,
            True,
            THREADS_GROWTH,
            g,
        ),
    ]
    growths = [
        Growth(
            "h-idle-asyncio",
            f"asyncio: 10 vs {big:,} idle resources",
            "h-idle-asyncio-10",
            f"h-idle-asyncio-{big}",
        ),
        Growth(
            "h-idle-threads",
            f"threads: 10 vs {big:,} idle resources",
            "h-idle-threads-10",
            f"h-idle-threads-{big}",
        ),
        Growth(
            "h-wait-asyncio",
            f"asyncio: 10 vs {waiters:,} waiting tasks",
            "h-wait-asyncio-10",
            f"h-wait-asyncio-{waiters}",
        ),
        Growth(
            "h-wait-threads",
            f"threads: 10 vs {tw:,} waiting threads",
            "h-wait-threads-10",
            f"h-wait-threads-{tw}",
        ),
    ]
    return main + growth_scenarios, growths


# -- timing loops -----------------------------------------------------------------


class BenchError(Exception):
    """A measurement that did not complete (the pool raised or hung)."""


class State:
    __slots__ = ("count", "counts", "errors", "gate", "stop")

    def __init__(self, callers: int = 0) -> None:
        self.gate = threading.Event()  # threads start cycling together, once all exist
        self.stop = False
        self.count = 0
        self.counts = [0] * callers
        self.errors: list[BaseException] = []


async def loop_pair(acquire: Callable[[], Any], release: Callable[[Any], Any], n: int) -> None:
    for _ in range(n):
        resource = await acquire()
        await release(resource)


async def loop_cm(lease: Callable[[], Any], n: int) -> None:
    for _ in range(n):
        async with lease():
            pass


async def worker_pair(
    acquire: Callable[[], Any], release: Callable[[Any], Any], hold: Any, state: State
) -> None:
    while not state.stop:
        resource = await acquire()
        await hold()
        await release(resource)
        state.count += 1


async def worker_cm(lease: Callable[[], Any], hold: Any, state: State) -> None:
    while not state.stop:
        async with lease():
            await hold()
        state.count += 1


# The wait pass's workers: the same cycle, each acquire's wait (from calling
# acquire or entering lease() to holding the resource) appended, in ns, to the
# worker's own list; nothing else is done per op (no count: the lists' lengths
# are the counts).


async def timed_pair(
    acquire: Callable[[], Any],
    release: Callable[[Any], Any],
    hold: Any,
    state: State,
    waits: list[int],
) -> None:
    took = waits.append
    while not state.stop:
        t0 = perf_counter_ns()
        resource = await acquire()
        took(perf_counter_ns() - t0)
        await hold()
        await release(resource)


async def timed_cm(lease: Callable[[], Any], hold: Any, state: State, waits: list[int]) -> None:
    took = waits.append
    while not state.stop:
        t0 = perf_counter_ns()
        async with lease():
            took(perf_counter_ns() - t0)
            await hold()


def loop_pair_sync(acquire: Callable[[], Any], release: Callable[[Any], Any], n: int) -> None:
    for _ in range(n):
        release(acquire())


def loop_cm_sync(lease: Callable[[], Any], n: int) -> None:
    for _ in range(n):
        with lease():
            pass


def worker_sync(
    acquire: Callable[[], Any] | None,
    release: Callable[[Any], Any] | None,
    lease: Callable[[], Any] | None,
    hold: Callable[[float], Any] | None,
    state: State,
    index: int,
) -> None:
    counts = state.counts
    done = 0
    state.gate.wait()
    try:
        if lease is not None:
            while not state.stop:
                with lease():
                    if hold is not None:
                        hold(0)
                done += 1
                counts[index] = done
        else:
            assert acquire is not None and release is not None
            while not state.stop:
                resource = acquire()
                if hold is not None:
                    hold(0)
                release(resource)
                done += 1
                counts[index] = done
    except BaseException as exc:  # reported as the case's error
        state.errors.append(exc)
        state.stop = True


def timed_sync(
    acquire: Callable[[], Any] | None,
    release: Callable[[Any], Any] | None,
    lease: Callable[[], Any] | None,
    hold: Callable[[float], Any] | None,
    state: State,
    waits: list[int],
) -> None:
    """``worker_sync`` for the wait pass: each acquire's wait appended to ``waits``."""
    took = waits.append
    state.gate.wait()
    try:
        if lease is not None:
            while not state.stop:
                t0 = perf_counter_ns()
                with lease():
                    took(perf_counter_ns() - t0)
                    if hold is not None:
                        hold(0)
        else:
            assert acquire is not None and release is not None
            while not state.stop:
                t0 = perf_counter_ns()
                resource = acquire()
                took(perf_counter_ns() - t0)
                if hold is not None:
                    hold(0)
                release(resource)
    except BaseException as exc:  # reported as the case's error
        state.errors.append(exc)
        state.stop = True


def _window_for(
    cfg: Config, callers: int, ops: int, seconds: float, base: float | None = None, turns: int = 2
) -> float:
    """The measured window: ``cfg.window`` (or ``base``), or long enough for each caller
    to get two turns (or ``turns``).

    The warm-up lasted until the callers had made one op each on average
    (``ops`` in ``seconds``), so with thousands of callers every one of them
    is parked in line, cycling, before the window opens.
    """
    least = cfg.window if base is None else base
    if ops <= 0 or seconds <= 0:
        return least
    return min(cfg.max_window, max(least, turns * callers * seconds / ops))


def _wait_window_for(cfg: Config, callers: int, ops: int, seconds: float) -> float:
    """The wait pass's window: ``cfg.wait_window``, or one turn of every caller (each
    waits in it, or is still waiting at its end and counts then)."""
    return _window_for(cfg, callers, ops, seconds, cfg.wait_window, turns=1)


def _n_for(elapsed: float, probe: int, cfg: Config) -> int:
    return max(100, int(probe * cfg.single_seconds / max(elapsed, 1e-9)))


@dataclass
class Measured:
    """One measurement: ``ops`` in ``seconds`` overall, and its best slice's rate."""

    ops: int
    seconds: float
    best: float  # ops/s of the least disturbed of the measurement's slices


@dataclass
class Waits:
    """One wait-pass measurement: each acquire's wait, in ns, and the pass's own rate."""

    samples: list[int]  # the acquires done in the window, and those in flight at its end
    per_caller: list[int]  # acquires each caller completed in the window
    seconds: float

    def summary(self) -> dict[str, float | None]:
        ordered = sorted(self.samples)
        mean = statistics.fmean(self.per_caller)
        return {
            "p50_us": report.percentile(ordered, 0.50) / 1000,
            "p99_us": report.percentile(ordered, 0.99) / 1000,
            "max_us": ordered[-1] / 1000,
            "p99_time_us": report.time_percentile(ordered, 0.99) / 1000,
            "n": len(ordered),
            "ops_per_s": sum(self.per_caller) / self.seconds,
            # as in benchmarks/servers.py: 1.0 is every caller served alike, 0.0 a caller
            # that got nothing in the whole window (one wait sample, however long); not
            # told where the window holds too few turns (the 5,000 waiters: about one)
            "slowest_share": min(self.per_caller) / mean if mean >= SHARE_TURNS else None,
        }


SHARE_TURNS = 4  # the fewest acquires per caller in a wait window that tell a slowest caller


def _total(waits: list[list[int]]) -> int:
    return sum(map(len, waits))


def _waits(waits: list[list[int]], start: list[int], end: list[int], seconds: float) -> Waits:
    """Every wait recorded after the window opened: those that ended in it, and those in
    flight when it closed (they end while the callers stop), so a wait that spans the
    window's end still counts, with its whole length."""
    samples = [ns for w, i in zip(waits, start, strict=True) for ns in w[i:]]
    if not samples:
        raise BenchError("no acquire completed in the wait window (stalled)")
    per_caller = [j - i for i, j in zip(start, end, strict=True)]
    if not sum(per_caller):
        raise BenchError("no acquire completed in the wait window (stalled)")
    return Waits(samples, per_caller, seconds)


async def measure_async(
    scn: Scenario, c: Contender, cfg: Config, n: int | None, wait: bool = False
) -> Measured | Waits:
    """Build, run, close; ``n is None``: calibrate the op count first; ``wait``: the wait pass."""
    factory = Factory()
    handle = await c.build(scn.pool_size, factory)
    result: Measured | Waits
    try:
        if wait:
            if scn.library == "asyncio":
                result = await _waits_asyncio(scn, c, cfg, handle)
            else:
                result = await _waits_trio(scn, c, cfg, handle)
        elif scn.callers == 1:
            if c.style == "pair":
                run = partial(loop_pair, handle.acquire, handle.release)
            else:
                run = partial(loop_cm, handle.lease)
            if n is None:
                t0 = perf_counter()
                await run(cfg.probe_ops)
                n = _n_for(perf_counter() - t0, cfg.probe_ops, cfg)
            else:
                await run(max(10, n // 50))  # warm
            gc.collect()
            chunk = max(1, n // cfg.slices)
            times = []
            for _ in range(cfg.slices):
                t0 = perf_counter()
                await run(chunk)
                times.append(perf_counter() - t0)
            result = Measured(chunk * cfg.slices, sum(times), chunk / min(times))
        elif scn.library == "asyncio":
            result = await _window_asyncio(scn, c, cfg, handle)
        else:
            result = await _window_trio(scn, c, cfg, handle)
    finally:
        if handle.close is not None:
            await maybe_await(handle.close())
    _check_size(scn, factory, result)
    return result


def _worker_args(c: Contender, handle: Any) -> tuple[Any, ...]:
    return (handle.acquire, handle.release) if c.style == "pair" else (handle.lease,)


def _slice_rate(marks: list[tuple[int, float]]) -> Measured:
    """From (count, time) marks at the window's start and slice ends."""
    rates = [(c1 - c0) / (t1 - t0) for (c0, t0), (c1, t1) in itertools.pairwise(marks) if t1 > t0]
    (first, begin), (last, end) = marks[0], marks[-1]
    return Measured(last - first, end - begin, max(rates, default=0.0))


async def _window_async(
    scn: Scenario, cfg: Config, state: State, sleep: Callable[[float], Any]
) -> Measured:
    begun = perf_counter()
    await sleep(cfg.warmup)
    while state.count < scn.callers and perf_counter() - begun < cfg.drain_timeout:
        await sleep(0.005)
    marks = [(state.count, perf_counter())]
    window = _window_for(cfg, scn.callers, marks[0][0], marks[0][1] - begun)
    for _ in range(cfg.slices):
        await sleep(window / cfg.slices)
        marks.append((state.count, perf_counter()))
    state.stop = True
    return _slice_rate(marks)


async def _wait_window_async(
    scn: Scenario, cfg: Config, state: State, sleep: Callable[[float], Any], waits: list[list[int]]
) -> tuple[list[int], list[int], float]:
    """The wait pass's window: warm up as the throughput pass does, then one window."""
    begun = perf_counter()
    await sleep(cfg.warmup)
    while _total(waits) < scn.callers and perf_counter() - begun < cfg.drain_timeout:
        await sleep(0.005)
    start, t0 = [len(w) for w in waits], perf_counter()
    await sleep(_wait_window_for(cfg, scn.callers, sum(start), t0 - begun))
    end, t1 = [len(w) for w in waits], perf_counter()
    state.stop = True
    return start, end, t1 - t0


async def _drain_asyncio(tasks: list[asyncio.Task[None]], cfg: Config) -> None:
    done, pending = await asyncio.wait(tasks, timeout=cfg.drain_timeout)
    for task in pending:
        task.cancel()
    if pending:
        await asyncio.wait(pending, timeout=cfg.drain_timeout)
        raise BenchError(f"{len(pending)} tasks still blocked {cfg.drain_timeout:g}s after stop")
    for task in done:
        if task.exception() is not None:
            raise BenchError(repr(task.exception()))


async def _waits_asyncio(scn: Scenario, c: Contender, cfg: Config, handle: Any) -> Waits:
    state = State()
    hold = partial(asyncio.sleep, 0)
    worker: Callable[..., Any] = timed_pair if c.style == "pair" else timed_cm
    args = _worker_args(c, handle)
    waits: list[list[int]] = [[] for _ in range(scn.callers)]
    gc.collect()
    tasks = [asyncio.create_task(worker(*args, hold, state, w)) for w in waits]
    start, end, seconds = await _wait_window_async(scn, cfg, state, asyncio.sleep, waits)
    await _drain_asyncio(tasks, cfg)
    return _waits(waits, start, end, seconds)


async def _waits_trio(scn: Scenario, c: Contender, cfg: Config, handle: Any) -> Waits:
    import trio

    state = State()
    hold = partial(trio.sleep, 0)
    worker: Callable[..., Any] = timed_pair if c.style == "pair" else timed_cm
    args = _worker_args(c, handle)
    waits: list[list[int]] = [[] for _ in range(scn.callers)]
    gc.collect()
    with trio.CancelScope() as scope:
        try:
            async with trio.open_nursery() as nursery:
                for w in waits:
                    nursery.start_soon(worker, *args, hold, state, w)
                start, end, seconds = await _wait_window_async(scn, cfg, state, trio.sleep, waits)
                scope.deadline = trio.current_time() + cfg.drain_timeout
        except Exception as exc:
            raise BenchError(repr(exc)) from exc
    if scope.cancelled_caught:
        raise BenchError(f"tasks still blocked {cfg.drain_timeout:g}s after stop")
    return _waits(waits, start, end, seconds)


async def _window_asyncio(scn: Scenario, c: Contender, cfg: Config, handle: Any) -> Measured:
    state = State()
    hold = partial(asyncio.sleep, 0)
    worker = worker_pair if c.style == "pair" else worker_cm
    args = _worker_args(c, handle)
    gc.collect()
    tasks = [asyncio.create_task(worker(*args, hold, state)) for _ in range(scn.callers)]
    result = await _window_async(scn, cfg, state, asyncio.sleep)
    await _drain_asyncio(tasks, cfg)
    return result


async def _window_trio(scn: Scenario, c: Contender, cfg: Config, handle: Any) -> Measured:
    import trio

    state = State()
    hold = partial(trio.sleep, 0)
    worker = worker_pair if c.style == "pair" else worker_cm
    args = _worker_args(c, handle)
    gc.collect()
    with trio.CancelScope() as scope:
        try:
            async with trio.open_nursery() as nursery:
                for _ in range(scn.callers):
                    nursery.start_soon(worker, *args, hold, state)
                result = await _window_async(scn, cfg, state, trio.sleep)
                scope.deadline = trio.current_time() + cfg.drain_timeout
        except Exception as exc:
            raise BenchError(repr(exc)) from exc
    if scope.cancelled_caught:
        raise BenchError(f"tasks still blocked {cfg.drain_timeout:g}s after stop")
    return result


def measure_threads(
    scn: Scenario, c: Contender, cfg: Config, n: int | None, wait: bool = False
) -> Measured | Waits:
    factory = Factory()
    handle = c.build(scn.pool_size, factory)
    result: Measured | Waits
    try:
        if wait:
            result = _waits_threads(scn, c, cfg, handle)
        elif scn.callers == 1:
            if c.style == "pair":
                run = partial(loop_pair_sync, handle.acquire, handle.release)
            else:
                run = partial(loop_cm_sync, handle.lease)
            if n is None:
                t0 = perf_counter()
                run(cfg.probe_ops)
                n = _n_for(perf_counter() - t0, cfg.probe_ops, cfg)
            else:
                run(max(10, n // 50))
            gc.collect()
            chunk = max(1, n // cfg.slices)
            times = []
            for _ in range(cfg.slices):
                t0 = perf_counter()
                run(chunk)
                times.append(perf_counter() - t0)
            result = Measured(chunk * cfg.slices, sum(times), chunk / min(times))
        else:
            result = _window_threads(scn, c, cfg, handle)
    finally:
        if handle.close is not None:
            handle.close()
    _check_size(scn, factory, result)
    return result


def _sync_args(scn: Scenario, c: Contender, handle: Any) -> tuple[Any, ...]:
    hold = time.sleep if scn.hold else None
    if c.style == "pair":
        return (handle.acquire, handle.release, None, hold)
    return (None, None, handle.lease, hold)


def _run_threads(
    scn: Scenario,
    cfg: Config,
    state: State,
    target: Callable[..., None],
    per_thread: list[tuple[Any, ...]],
    during: Callable[[float], Any],
) -> Any:
    """Start the threads, open the gate, run ``during(begun)`` (it sets ``state.stop``),
    join them; its return, unless a thread raised or hung."""
    threads = [threading.Thread(target=target, args=args, daemon=True) for args in per_thread]
    old_stack = threading.stack_size()
    if scn.callers > 64:
        threading.stack_size(512 * 1024)  # thousands of threads: keep their stacks small
    gc.collect()
    started = 0
    try:
        for thread in threads:
            thread.start()
            started += 1
    except RuntimeError as exc:
        state.stop = True
        state.gate.set()
        raise BenchError(f"could start only {started} of {scn.callers} threads: {exc}") from exc
    finally:
        threading.stack_size(old_stack)
    state.gate.set()
    result = during(perf_counter())
    deadline = time.monotonic() + cfg.drain_timeout
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    alive = sum(thread.is_alive() for thread in threads)
    if state.errors:
        raise BenchError(repr(state.errors[0]))
    if alive:
        raise BenchError(f"{alive} threads still blocked {cfg.drain_timeout:g}s after stop")
    return result


def _window_threads(scn: Scenario, c: Contender, cfg: Config, handle: Any) -> Measured:
    state = State(scn.callers)
    args = (*_sync_args(scn, c, handle), state)

    def during(begun: float) -> Measured:
        time.sleep(cfg.warmup)
        while sum(state.counts) < scn.callers and perf_counter() - begun < cfg.drain_timeout:
            time.sleep(0.005)
        marks = [(sum(state.counts), perf_counter())]
        window = _window_for(cfg, scn.callers, marks[0][0], marks[0][1] - begun)
        for _ in range(cfg.slices):
            time.sleep(window / cfg.slices)
            marks.append((sum(state.counts), perf_counter()))
        state.stop = True
        return _slice_rate(marks)

    per_thread = [(*args, i) for i in range(scn.callers)]
    result: Measured = _run_threads(scn, cfg, state, worker_sync, per_thread, during)
    return result


def _waits_threads(scn: Scenario, c: Contender, cfg: Config, handle: Any) -> Waits:
    state = State()
    args = (*_sync_args(scn, c, handle), state)
    waits: list[list[int]] = [[] for _ in range(scn.callers)]

    def during(begun: float) -> tuple[list[int], list[int], float]:
        time.sleep(cfg.warmup)
        while _total(waits) < scn.callers and perf_counter() - begun < cfg.drain_timeout:
            time.sleep(0.005)
        start, t0 = [len(w) for w in waits], perf_counter()
        time.sleep(_wait_window_for(cfg, scn.callers, sum(start), t0 - begun))
        end, t1 = [len(w) for w in waits], perf_counter()
        state.stop = True
        return start, end, t1 - t0

    per_thread = [(*args, w) for w in waits]
    start, end, seconds = _run_threads(scn, cfg, state, timed_sync, per_thread, during)
    return _waits(waits, start, end, seconds)


def _check_size(scn: Scenario, factory: Factory, result: Measured | Waits) -> None:
    if factory.created > scn.pool_size:
        raise Oversize(f"made {factory.created} resources for a pool of {scn.pool_size}", result)


class Oversize(Exception):
    """The pool made more resources than its size: measured, but not a fair number."""

    def __init__(self, message: str, result: Any) -> None:
        super().__init__(message)
        self.result = result


def measure(
    scn: Scenario, c: Contender, cfg: Config, n: int | None, wait: bool = False
) -> Measured | Waits:
    """One case: its throughput (``Measured``), or with ``wait`` its waits (``Waits``)."""
    if scn.library == "asyncio":
        return asyncio.run(measure_async(scn, c, cfg, n, wait))
    if scn.library == "trio":
        import trio

        return trio.run(measure_async, scn, c, cfg, n, wait)
    return measure_threads(scn, c, cfg, n, wait)


# -- memory -----------------------------------------------------------------------

MEMORY = (
    ("respool-async", "asyncio"),
    ("escudeiro-async", "asyncio"),
    ("acp", "asyncio"),
    ("gcp-async", "asyncio"),
    ("asyncio-lifoqueue", "asyncio"),
    ("respool-threads", "threads"),
    ("escudeiro-threads", "threads"),
    ("gcp-threads", "threads"),
    ("sqlalchemy", "threads"),
    ("queue-lifoqueue", "threads"),
)


def memory_per_resource(c: Contender, n: int) -> float:
    """Bytes the pool holds per idle resource, the resources themselves excluded."""
    stock = [Resource() for _ in range(n)]
    factory = Factory(stock)

    async def in_loop() -> float:
        warm = await c.build(10, Factory())  # imports and first-use caches stay out of the count
        if warm.close is not None:
            await maybe_await(warm.close())
        gc.collect()
        tracemalloc.start()
        try:
            base = tracemalloc.get_traced_memory()[0]
            handle = await c.build(n, factory)
            gc.collect()
            used = tracemalloc.get_traced_memory()[0] - base
        finally:
            tracemalloc.stop()
        if handle.close is not None:
            await maybe_await(handle.close())
        return used / n

    if c.library == "asyncio":
        return asyncio.run(in_loop())
    warm = c.build(10, Factory())
    if warm.close is not None:
        warm.close()
    gc.collect()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        handle = c.build(n, factory)
        gc.collect()
        used = tracemalloc.get_traced_memory()[0] - base
    finally:
        tracemalloc.stop()
    if handle.close is not None:
        handle.close()
    return used / n


# -- the run ---------------------------------------------------------------------------


@dataclass
class Case:
    scenario: str
    contender: str
    samples: list[float] = field(default_factory=list)  # best slice of each round
    overall: list[float] = field(default_factory=list)  # whole measurement of each round
    waits: list[dict[str, float | None]] = field(default_factory=list)  # wait pass, per round
    error: str | None = None
    invalid: str | None = None  # measured, but the pool broke its size: not a fair number

    @property
    def median(self) -> float | None:
        return statistics.median(self.samples) if self.samples else None

    def wait(self, key: str) -> float | None:
        """The wait pass over rounds: the median of the rounds' p50 and p99, the max of max."""
        values = [v for w in self.waits if (v := w.get(key)) is not None]
        if not values:
            return None
        return max(values) if key == "max_us" else statistics.median(values)


def waited(scn: Scenario) -> bool:
    """A contended scenario, whose acquires wait: it gets a wait pass."""
    return scn.callers > 1


def run(cfg: Config, families: set[str] | None, log: Callable[[str], None]) -> dict[str, Any]:
    all_scenarios, growths = scenarios(cfg)
    notes: list[str] = []
    skipped: set[str] = set()
    for family in sorted({c.family for c in CONTENDERS}):
        if families is not None and family not in families:
            skipped.add(family)
            continue
        reason = missing(family)
        if reason is not None:
            skipped.add(family)
            notes.append(f"skipped: {reason}")
    no_trio = missing("trio")
    if no_trio is not None:
        notes.append(f"skipped the trio scenarios: {no_trio}")
    for note in notes:
        log(note)

    active: list[tuple[Scenario, list[Contender]]] = []
    for scn in all_scenarios:
        if scn.library == "trio" and no_trio is not None:
            continue
        rows = [BY_KEY[k] for k in scn.contenders if BY_KEY[k].family not in skipped]
        if rows:
            active.append((scn, rows))

    cases = {(s.id, c.key): Case(s.id, c.key) for s, rows in active for c in rows}
    calibration: dict[tuple[str, str], int] = {}
    started = perf_counter()
    wait_seconds = 0.0  # of bench_seconds, in the wait pass
    for round_no in range(cfg.rounds):
        log(f"round {round_no + 1}/{cfg.rounds} ...")
        for scn, rows in active:
            shift = round_no % len(rows)
            for c in rows[shift:] + rows[:shift]:
                case = cases[(scn.id, c.key)]
                if case.error is not None:
                    continue
                key = (scn.id, c.key)
                try:
                    result = measure(scn, c, cfg, calibration.get(key))
                except Oversize as exc:
                    if case.invalid is None:
                        log(f"  {scn.id} {c.label}: {exc}")
                    case.invalid = str(exc)
                    result = exc.result
                except BenchError as exc:
                    case.error = str(exc)
                    log(f"  {scn.id} {c.label}: {case.error}")
                    continue
                except Exception as exc:
                    case.error = repr(exc)
                    log(f"  {scn.id} {c.label}: {case.error}")
                    continue
                assert isinstance(result, Measured)
                if result.ops <= 0:
                    case.error = "no op completed in the measured window (stalled)"
                    log(f"  {scn.id} {c.label}: {case.error}")
                    continue
                if scn.callers == 1:
                    calibration.setdefault(key, result.ops)
                case.samples.append(result.best)
                case.overall.append(result.ops / result.seconds)
            if not (cfg.wait and waited(scn)):
                continue
            # The wait pass: its own window per case, with a fresh pool, in the same order.
            wait_started = perf_counter()
            for c in rows[shift:] + rows[:shift]:
                case = cases[(scn.id, c.key)]
                if case.error is not None:
                    continue
                case_started = perf_counter()
                try:
                    waits = measure(scn, c, cfg, None, wait=True)
                except Oversize as exc:
                    if case.invalid is None:
                        log(f"  {scn.id} {c.label} (wait pass): {exc}")
                    case.invalid = str(exc)
                    waits = exc.result
                except Exception as exc:
                    case.error = f"wait pass: {exc if isinstance(exc, BenchError) else repr(exc)}"
                    log(f"  {scn.id} {c.label}: {case.error}")
                    continue
                assert isinstance(waits, Waits)
                summary = waits.summary()
                summary["case_seconds"] = round(perf_counter() - case_started, 3)  # all of it
                case.waits.append(summary)
            wait_seconds += perf_counter() - wait_started
    bench_seconds = perf_counter() - started

    memory: list[dict[str, Any]] = []
    for key, _library in MEMORY:
        c = BY_KEY[key]
        if c.family in skipped:
            continue
        try:
            value: float | None = memory_per_resource(c, cfg.memory_resources)
            error = None
        except Exception as exc:
            value, error = None, repr(exc)
        memory.append(
            {
                "contender": key,
                "label": c.label,
                "library": c.library,
                "bytes_per_resource": value,
                "error": error,
            }
        )

    return assemble(cfg, active, cases, growths, memory, notes, bench_seconds, wait_seconds)


def _versions() -> dict[str, str]:
    names = [
        "respool",
        "anyio",
        "trio",
        "attrs",
        "escudeiro",
        "asyncio-connection-pool",
        "generic-connection-pool",
        "SQLAlchemy",
        "matplotlib",
    ]
    found = {}
    for name in names:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return found


def assemble(
    cfg: Config,
    active: list[tuple[Scenario, list[Contender]]],
    cases: dict[tuple[str, str], Case],
    growths: list[Growth],
    memory: list[dict[str, Any]],
    notes: list[str],
    bench_seconds: float,
    wait_seconds: float = 0.0,
) -> dict[str, Any]:
    out_scenarios = []
    by_id: dict[str, dict[str, Any]] = {}
    for scn, rows in active:
        entries: list[dict[str, Any]] = []
        for c in rows:
            case = cases[(scn.id, c.key)]
            entries.append(
                {
                    "contender": c.key,
                    "label": c.label,
                    "family": c.family,
                    "kind": c.kind,
                    "api": c.api,
                    "ops_per_s": case.median,
                    "samples": case.samples,
                    "overall": case.overall,
                    "error": case.error,
                    "invalid": case.invalid,
                    "wait_p50_us": case.wait("p50_us"),
                    "wait_p99_us": case.wait("p99_us"),
                    "wait_max_us": case.wait("max_us"),
                    "wait_p99_time_us": case.wait("p99_time_us"),
                    "wait_slowest_share": case.wait("slowest_share"),
                    "wait_rounds": case.waits,
                }
            )
        valid_peers = [e for e in entries if e["kind"] == "peer" and _usable(e)]
        best = max(valid_peers, key=lambda e: e["ops_per_s"], default=None)
        floor = next((e for e in entries if e["kind"] == "floor" and _usable(e)), None)
        waited_peers = [e for e in valid_peers if e["wait_p99_us"]]
        best_wait = min(waited_peers, key=lambda e: e["wait_p99_us"], default=None)
        floor_wait = floor["wait_p99_us"] if floor else None
        timed_peers = [e for e in valid_peers if e.get("wait_p99_time_us")]
        best_time = min(timed_peers, key=lambda e: e["wait_p99_time_us"], default=None)
        for e in entries:
            ops = e["ops_per_s"]
            e["vs_best_peer"] = ops / best["ops_per_s"] if ops and best else None
            e["vs_floor"] = ops / floor["ops_per_s"] if ops and floor else None
            p99 = e["wait_p99_us"] if _usable(e) else None
            e["wait_vs_best_peer"] = p99 / best_wait["wait_p99_us"] if p99 and best_wait else None
            e["wait_vs_floor"] = p99 / floor_wait if p99 and floor_wait else None
            by_time = e.get("wait_p99_time_us") if _usable(e) else None
            e["wait_time_vs_best_peer"] = (
                by_time / best_time["wait_p99_time_us"] if by_time and best_time else None
            )
        record = {
            **{k: v for k, v in asdict(scn).items() if k != "contenders"},
            "best_peer": best["contender"] if best else None,
            "floor": floor["contender"] if floor else None,
            "waited": cfg.wait and waited(scn),
            "best_wait_peer": best_wait["contender"] if best_wait else None,
            "rows": entries,
        }
        out_scenarios.append(record)
        by_id[scn.id] = record

    out_growth = []
    for g in growths:
        small, large = by_id.get(g.small), by_id.get(g.large)
        if small is None or large is None:
            continue
        rows = []
        for s_row in small["rows"]:
            l_row = next(r for r in large["rows"] if r["contender"] == s_row["contender"])
            ratio = None
            if _usable(s_row) and _usable(l_row):
                ratio = l_row["ops_per_s"] / s_row["ops_per_s"]
            rows.append(
                {
                    "contender": s_row["contender"],
                    "label": s_row["label"],
                    "kind": s_row["kind"],
                    "small": s_row["ops_per_s"],
                    "large": l_row["ops_per_s"],
                    "ratio": ratio,
                    "error": s_row["error"] or l_row["error"],
                }
            )
        out_growth.append(
            {"id": g.id, "title": g.title, "small": g.small, "large": g.large, "rows": rows}
        )

    results: dict[str, Any] = {
        "meta": {
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "machine": report.machine(ROOT),
            "versions": _versions(),
            "config": asdict(cfg),
            "bench_seconds": round(bench_seconds, 1),
            "wait_seconds": round(wait_seconds, 1),
            "notes": notes,
        },
        "scenarios": out_scenarios,
        "growth": out_growth,
        "memory": memory,
    }
    results["targets"] = targets(results)
    return results


def _usable(row: dict[str, Any]) -> bool:
    return bool(row["ops_per_s"]) and row["error"] is None and row["invalid"] is None


# -- targets ------------------------------------------------------------------------

PEER_TARGET_SCENARIOS = ("a", "b", "c", "d", "e")
FLOOR_TARGETS = {"a": 0.5, "c": 0.6, "f-a": 0.8, "f-b": 0.8}
GROWTH_TARGET = 0.8
# respool's p99 wait over the lowest p99 of the peers (they all barge: a released
# resource goes to whoever asks first, not to the oldest waiter), or of the floor
# where no peer runs (trio)
WAIT_TARGET = 0.5
WAIT_PEER_SCENARIOS = ("b", "d", "e")
WAIT_FLOOR_SCENARIOS = ("f-b",)


def targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []

    def add(
        name: str,
        value: float | None,
        threshold: float,
        detail: str = "",
        lower_is_better: bool = False,
        unit: str = "",
    ) -> None:
        if value is None:
            status = "SKIP"
        elif lower_is_better:
            status = "PASS" if value <= threshold else "FAIL"
        else:
            status = "PASS" if value >= threshold else "FAIL"
        out.append(
            {
                "name": name,
                "value": value,
                "threshold": threshold,
                "status": status,
                "detail": detail,
                "lower_is_better": lower_is_better,
                **({"unit": unit} if unit else {}),
            }
        )

    for scn in results["scenarios"]:
        respool_rows = [r for r in scn["rows"] if r["kind"] == "respool"]
        if scn["id"] in PEER_TARGET_SCENARIOS:
            best = scn["best_peer"]
            for r in respool_rows:
                add(
                    f"{scn['id']} ({scn['title']}): {r['label']} vs best peer",
                    r["vs_best_peer"],
                    1.0,
                    f"best peer: {_label(best)}",
                )
        if scn["id"] in FLOOR_TARGETS:
            for r in respool_rows:
                add(
                    f"{scn['id']} ({scn['title']}): {r['label']} vs floor",
                    r["vs_floor"],
                    FLOOR_TARGETS[scn["id"]],
                    f"floor: {_label(scn['floor'])}",
                )
        for r in respool_rows:
            if scn["id"] in WAIT_PEER_SCENARIOS:
                add(
                    f"{scn['id']} ({scn['title']}): {r['label']} p99 wait vs best barging peer",
                    r.get("wait_vs_best_peer"),
                    WAIT_TARGET,
                    f"best barging peer (lowest p99): {_label(scn.get('best_wait_peer'))}",
                    lower_is_better=True,
                    unit="x",
                )
                add(
                    f"{scn['id']} ({scn['title']}): {r['label']} p99 wait by time vs best "
                    "barging peer",
                    r.get("wait_time_vs_best_peer"),
                    WAIT_TARGET,
                    "each wait weighted by its length (a starved caller counts for its "
                    "whole wait); best barging peer: the lowest such p99",
                    lower_is_better=True,
                    unit="x",
                )
            elif scn["id"] in WAIT_FLOOR_SCENARIOS:
                add(
                    f"{scn['id']} ({scn['title']}): {r['label']} p99 wait vs floor (no peer)",
                    r.get("wait_vs_floor"),
                    WAIT_TARGET,
                    f"floor: {_label(scn['floor'])}",
                    lower_is_better=True,
                    unit="x",
                )
    for g in results["growth"]:
        for r in g["rows"]:
            if r["kind"] == "respool":
                add(f"growth {g['title']}: {r['label']}", r["ratio"], GROWTH_TARGET)
    mem = {m["contender"]: m["bytes_per_resource"] for m in results["memory"]}
    for ours, theirs in (
        ("respool-async", "escudeiro-async"),
        ("respool-threads", "escudeiro-threads"),
    ):
        if mem.get(ours) is not None and mem.get(theirs) is not None:
            add(
                f"memory per idle resource: {_label(ours)} vs {_label(theirs)}",
                mem[ours],
                mem[theirs],
                "bytes",
                lower_is_better=True,
            )
        else:
            add(
                f"memory per idle resource: {_label(ours)} vs {_label(theirs)}",
                None,
                0.0,
                "not measured",
                lower_is_better=True,
            )
    return out


def _label(key: str | None) -> str:
    return BY_KEY[key].label if key in BY_KEY else "none measured"


# -- command line -------------------------------------------------------------------------


FAMILY_ALIASES = {
    "floors": "floor",
    "acp": "asyncio-connection-pool",
    "gcp": "generic-connection-pool",
    "escudeiro": "escudeiro",
    "sqlalchemy": "sqlalchemy",
    "respool": "respool",
    "floor": "floor",
    "asyncio-connection-pool": "asyncio-connection-pool",
    "generic-connection-pool": "generic-connection-pool",
}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=None, help="interleaved rounds (default 3)")
    p.add_argument(
        "--quick",
        action="store_true",
        help="short smoke run: 1 round, tiny windows, small growth sizes; "
        "writes no file unless a path is given",
    )
    p.add_argument(
        "--pools",
        default=None,
        help="comma-separated families to run: respool, floors, escudeiro, acp, gcp, "
        "sqlalchemy (default: all installed)",
    )
    p.add_argument("--json", default=None, help="results file (default benchmarks/results.json)")
    p.add_argument(
        "--markdown",
        default=None,
        help="markdown file whose results block (between <!-- results:start --> and "
        "<!-- results:end -->) is rewritten (default docs/performance.md)",
    )
    p.add_argument("--chart", default=None, help="bar chart PNG (default docs/performance.png)")
    p.add_argument("--no-output", action="store_true", help="print only, write no file")
    p.add_argument(
        "--render",
        metavar="RESULTS_JSON",
        default=None,
        help="measure nothing: print, and write the markdown block and chart of, a saved run",
    )
    p.add_argument("--idle-large", type=int, default=None, help="idle resources (default 10000)")
    p.add_argument("--waiters", type=int, default=None, help="waiting tasks (default 5000)")
    p.add_argument(
        "--thread-waiters",
        type=int,
        default=None,
        help="waiting threads (default: same as --waiters)",
    )
    p.add_argument("--window", type=float, default=None, help="seconds per multi-caller run")
    p.add_argument(
        "--wait-window",
        type=float,
        default=None,
        help="seconds per wait-pass run of a contended scenario (default 0.1)",
    )
    p.add_argument(
        "--no-wait",
        action="store_true",
        help="skip the wait pass: throughput only (the wait targets are skipped)",
    )
    p.add_argument(
        "--single-seconds", type=float, default=None, help="seconds per single-caller run"
    )
    p.add_argument(
        "--memory-resources",
        type=int,
        default=None,
        help="resources for the memory measurement (default 10000)",
    )
    return p.parse_args(argv)


def make_config(args: argparse.Namespace) -> Config:
    cfg = Config()
    if args.quick:
        cfg = Config(
            rounds=1,
            single_seconds=0.01,
            probe_ops=200,
            window=0.02,
            wait_window=0.02,
            max_window=0.2,
            warmup=0.005,
            idle_large=1000,
            waiters_large=200,
            thread_waiters_large=200,
            memory_resources=1000,
            quick=True,
        )
    if args.rounds is not None:
        cfg.rounds = max(1, args.rounds)
    if args.idle_large is not None:
        cfg.idle_large = args.idle_large
    if args.waiters is not None:
        cfg.waiters_large = cfg.thread_waiters_large = args.waiters
    if args.thread_waiters is not None:
        cfg.thread_waiters_large = args.thread_waiters
    if args.window is not None:
        cfg.window = args.window
    if args.wait_window is not None:
        cfg.wait_window = args.wait_window
    if args.no_wait:
        cfg.wait = False
    if args.single_seconds is not None:
        cfg.single_seconds = args.single_seconds
    if args.memory_resources is not None:
        cfg.memory_resources = args.memory_resources
    return cfg


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    cfg = make_config(args)
    families = None
    if args.pools:
        families = set()
        for name in args.pools.split(","):
            name = name.strip().lower()
            if name not in FAMILY_ALIASES:
                raise SystemExit(f"unknown pool family {name!r}; see --help")
            families.add(FAMILY_ALIASES[name])

    def default(path: str | None, fallback: str) -> Path | None:
        if args.no_output:
            return None
        if path is not None:
            return Path(path)
        return None if cfg.quick else ROOT / fallback

    json_path = default(args.json, "benchmarks/results.json")
    md_path = default(args.markdown, "docs/performance.md")
    chart_path = default(args.chart, "docs/performance.png")

    def log(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    if args.render is not None:
        results = json.loads(Path(args.render).read_text())
        json_path = None  # it is the input
    else:
        log(
            f"respool benchmark on Python {platform.python_version()}: {cfg.rounds} round(s)"
            + (" (quick)" if cfg.quick else "")
        )
        results = run(cfg, families, log)
    print(report.text(results))
    if json_path is not None:
        json_path.write_text(json.dumps(results, indent=2) + "\n")
        log(f"wrote {json_path}")
    if md_path is not None:
        report.update_markdown(md_path, report.markdown(results))
        log(f"wrote the results block of {md_path}")
    if chart_path is not None:
        problem = report.chart(results, chart_path)
        log(problem or f"wrote {chart_path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
