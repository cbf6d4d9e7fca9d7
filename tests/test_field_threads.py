"""Issue 9, trust in the field: regression tests for the threaded Pool alone.

Each test was written from the issue's description (``issues show 9``) and the spec
of the fix, before the fix: each docstring names the issue's item it proves.
"""

from __future__ import annotations

import _thread
import functools
import gc
import json
import os
import random
import signal
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from types import FrameType
from typing import Any

import pytest

from respool import Pool, PoolTimeout

from ._sync.resources import Resource, Resources
from .concurrency import Nursery, wait_until

# -- item 5: helper threads are reused ---------------------------------------------------


def test_helper_threads_are_reused_for_check_and_factory_calls() -> None:
    """Item 5: with a check on every acquire and a timeout (the default), 500 acquires run
    their checks on a small set of persistent helper threads, not a thread each."""
    ran_on: list[threading.Thread] = []  # kept alive, so no two threads share an identity

    def check(resource: Resource) -> bool:
        ran_on.append(threading.current_thread())
        return True

    res = Resources()
    pool = Pool(res.factory, res.releaser, pool_size=2, check=check, check_interval=0)
    for _ in range(500):
        resource = pool.acquire(timeout=5)
        pool.release(resource)
    assert len(ran_on) >= 499
    helpers = set(ran_on)
    assert threading.main_thread() not in helpers  # a timeout applies: not inline
    assert len(helpers) <= 8, f"{len(helpers)} threads ran 500 checks"
    names = sorted({t.name for t in helpers})
    assert all("respool" in name for name in names), names
    pool.dispose()


def test_helper_threads_are_named_after_the_pool() -> None:
    """Item 5: the helper threads are daemons, named after the pool (the pool's type at
    least) so a thread dump says whose they are."""
    seen: list[threading.Thread] = []

    def check(resource: Resource) -> bool:
        seen.append(threading.current_thread())
        return True

    res = Resources()
    pool = Pool(res.factory, res.releaser, pool_size=1, check=check, check_interval=0)
    for _ in range(3):
        pool.release(pool.acquire(timeout=5))
    assert seen
    for thread in seen:
        assert thread.daemon
        assert "Pool" in thread.name or "pool" in thread.name.replace("respool", ""), thread.name
    pool.dispose()


# -- item 6: no overcommit while a releaser cut short still runs ----------------------------


class OpenCount:
    """Resources really open: +1 when the factory returns, -1 when the releaser returns."""

    def __init__(self, close_takes: float) -> None:
        self.close_takes = close_takes
        self.lock = threading.Lock()
        self.open = self.peak = self.made = 0

    def factory(self) -> Resource:
        with self.lock:
            self.made += 1
            self.open += 1
            self.peak = max(self.peak, self.open)
            return Resource(self.made)

    def releaser(self, resource: Resource) -> None:
        time.sleep(self.close_takes)  # a goodbye to a slow server
        with self.lock:
            self.open -= 1


def test_a_releaser_cut_short_keeps_its_slot_until_it_really_ends() -> None:
    """Item 6: ``cleanup_timeout`` cuts the wait for a releaser, not the releaser: with
    ``pool_size=2``, never more than 2 resources open, counting those being closed."""
    count = OpenCount(close_takes=0.3)
    pool = Pool(count.factory, count.releaser, pool_size=2, cleanup_timeout=0.05, pool_recycle=0.02)
    stop = time.monotonic() + 1.5

    def churn(seed: int) -> None:
        rng = random.Random(seed)
        while time.monotonic() < stop:
            try:
                with pool.lease(timeout=1):
                    time.sleep(rng.choice([0, 0.001, 0.01]))
            except PoolTimeout:
                pass
            if rng.random() < 0.3:
                pool.recycle(force=True)

    with Nursery() as nursery:
        for seed in range(4):
            nursery.start_soon(churn, seed)
    assert count.made >= 4  # resources were closed and replaced
    assert count.peak <= 2, f"{count.peak} resources open at once with pool_size=2"
    pool.recycle(force=True)  # close the idle ones, errors logged
    wait_until(lambda: count.open == 0, timeout=10)  # every releaser ended


# -- item 8: KeyboardInterrupt anywhere loses nothing ---------------------------------------


class Storm:
    """SIGINT sent to the main thread at random short intervals, from another thread."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.stop = threading.Event()
        self.sent = 0
        self.thread = threading.Thread(target=self._run, name="interrupter", daemon=True)

    def _run(self) -> None:
        main = threading.main_thread().ident
        assert main is not None
        while not self.stop.wait(self.rng.uniform(0.0002, 0.003)):
            if self.rng.random() < 0.7:
                signal.pthread_kill(main, signal.SIGINT)  # wakes a blocking wait, too
            else:
                _thread.interrupt_main()
            self.sent += 1


@pytest.fixture
def interrupts() -> Iterator[Callable[[Callable[[], None], float], int]]:
    """``interrupts(one_round, seconds)``: repeat ``one_round`` under a storm of
    KeyboardInterrupts; return how many it caught.

    Only an interrupt landing in the loop below itself (its bookkeeping, not the pool's) is
    held back, so that the loop can go on; every other one raises KeyboardInterrupt
    wherever the main thread is, as Ctrl-C does.
    """
    assert threading.current_thread() is threading.main_thread()
    previous = signal.getsignal(signal.SIGINT)
    storms: list[Storm] = []

    def run(one_round: Callable[[], None], seconds: float) -> int:
        caught = 0

        active = True

        def handler(signum: int, frame: FrameType | None) -> None:
            if not active or (frame is not None and frame.f_code is loop_code):
                return  # in the loop's own bookkeeping, or after it: not the pool's business
            raise KeyboardInterrupt

        def loop() -> None:
            nonlocal caught, active
            stop = time.monotonic() + seconds
            try:
                while time.monotonic() < stop:
                    try:
                        one_round()
                    except KeyboardInterrupt:
                        caught += 1
            finally:
                active = False

        loop_code = loop.__code__
        storm = Storm(len(storms))
        storms.append(storm)
        signal.signal(signal.SIGINT, handler)
        storm.thread.start()
        try:
            loop()
        finally:
            storm.stop.set()
            storm.thread.join(5)
            signal.signal(signal.SIGINT, signal.SIG_IGN)  # the last one in flight
            time.sleep(0.01)
            signal.signal(signal.SIGINT, previous)
            gc.collect()
        assert storm.sent > 50, "the storm hardly blew"
        return caught

    yield run
    signal.signal(signal.SIGINT, previous)


def assert_still_serves(pool: Pool[Resource], res: Resources, *, exact: bool) -> None:
    """After the storm: nothing leased, waiting or creating, and the pool still serves.

    ``exact``: the factory and releaser ran in helper threads only (out of the interrupts'
    reach), so every resource the factory made must be the pool's: in it, or closed.
    """
    wait_until(lambda: pool.stats().creating == 0, timeout=10)
    stats = pool.stats()
    assert (stats.leased, stats.waiting, stats.creating) == (0, 0, 0), stats
    assert stats.size <= stats.pool_size, stats
    assert stats.lost == 0, stats  # the test keeps every resource: none can be collected
    if exact:
        deadline = time.monotonic() + 10  # closes still in flight in helper threads
        while pool.stats().size != res.alive and time.monotonic() < deadline:
            time.sleep(0.01)
        stats = pool.stats()
        made, alive = len(res.created), res.alive
        assert stats.created == made, f"the factory made {made}, the pool knows of {stats!r}"
        assert stats.size == alive, f"{alive} resources not closed, the pool holds {stats!r}"
    try:
        resource = pool.acquire(timeout=2)
    except PoolTimeout as exc:
        pytest.fail(f"the pool lost its slot to a KeyboardInterrupt: {exc}")
    pool.release(resource)
    with pool.lease(timeout=2):
        pass
    stats = pool.stats()
    assert (stats.leased, stats.waiting, stats.creating) == (0, 0, 0), stats


@pytest.mark.parametrize(
    "variant", ["quick-path", "no-timeout", "waiting-in-line", "slow-factory", "check"]
)
def test_keyboard_interrupt_anywhere_loses_no_slot_or_resource(
    interrupts: Callable[[Callable[[], None], float], int], variant: str
) -> None:
    """Item 8: Ctrl-C landing anywhere in acquire, release or lease (joining the line,
    woken served, the release quick path, starting or joining the factory's or check's
    helper thread) leaves a ``pool_size=1`` pool serving, with nothing leased or waiting."""
    res = Resources(delay=0.002 if variant == "slow-factory" else 0.0)
    kwargs: dict[str, Any] = {"pool_size": 1}
    if variant == "no-timeout":
        kwargs["acquire_timeout"] = None
    else:  # the releaser runs in a helper thread too, out of the interrupts' reach
        kwargs["cleanup_timeout"] = 5
    if variant == "slow-factory":
        kwargs["pool_recycle"] = 0.003  # creation on nearly every acquire
    if variant == "check":
        kwargs.update(check=lambda resource: True, check_interval=0)
    pool = Pool(res.factory, res.releaser, **kwargs)
    competitor_stop = threading.Event()

    def competitor() -> None:  # keeps the main thread waiting in line
        while not competitor_stop.is_set():
            try:
                with pool.lease(timeout=5):
                    time.sleep(0.0005)
            except PoolTimeout:
                pass
            time.sleep(0.0002)

    rng = random.Random(8)
    timeout = None if variant == "no-timeout" else 1.0

    def one_round() -> None:
        if rng.random() < 0.5:
            with pool.lease(timeout):
                pass
        else:
            resource = pool.acquire(timeout)
            try:
                pass
            finally:
                pool.release(resource)

    helper = threading.Thread(target=competitor, daemon=True)
    if variant == "waiting-in-line":
        helper.start()
    try:
        caught = interrupts(one_round, 0.8)
    finally:
        competitor_stop.set()
        if helper.is_alive():
            helper.join(10)
    assert caught > 20, f"only {caught} interrupts reached the pool"
    assert_still_serves(pool, res, exact=variant != "no-timeout")


# -- item 15: Pool refuses async callables -----------------------------------------------


async def _async_factory() -> Resource:
    return Resource(0)


async def _async_one(resource: Resource) -> bool:
    return True


@pytest.mark.parametrize("name", ["factory", "releaser", "check", "reset", "is_closed"])
def test_pool_refuses_async_callables_at_construction(name: str) -> None:
    """Item 15: an async factory, releaser, check, reset or is_closed given to ``Pool`` is a
    TypeError at construction, naming the argument."""
    res = Resources()
    factory: Callable[..., Any] = _async_factory if name == "factory" else res.factory
    releaser: Callable[..., Any] = _async_one if name == "releaser" else res.releaser
    kwargs = {name: _async_one} if name not in ("factory", "releaser") else {}
    with pytest.raises(TypeError) as info:
        Pool(factory, releaser, pool_size=1, **kwargs)
    message = str(info.value)
    assert name in message, message
    assert "unexpected keyword" not in message, message


def test_pool_refuses_a_partial_of_an_async_function() -> None:
    """Item 15: also an async function wrapped in ``functools.partial``."""
    with pytest.raises(TypeError, match="factory"):
        Pool(functools.partial(_async_factory), None, pool_size=1)


# -- item 17: a forked child's counters start at zero --------------------------------------


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork()")
def test_a_forked_childs_counters_start_at_zero() -> None:
    """Item 17: in a forked child the pool's counters start at zero; after ``dispose()``
    there, ``created == 0`` and ``closed == 0``."""
    res = Resources()
    pool = res.pool(pool_size=3)
    pool.prefill(3)
    pool.release(pool.acquire(timeout=1))
    pool.recycle(force=True)  # the parent: created 3, closed 3, acquired 1
    pool.prefill(1)
    parent = pool.stats()
    assert parent.created == 4 and parent.closed == 3 and parent.acquired == 1
    read_end, write_end = os.pipe()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # 3.12+: fork with threads alive
        pid = os.fork()
    if pid == 0:  # the child: report, then leave at once, running no test teardown
        code = 0
        try:
            before = pool.stats()
            pool.dispose()
            after = pool.stats()
            fields = ["created", "closed", "acquired", "timeouts", "create_errors"]
            fields += ["close_errors", "broken", "lost"]
            report = {
                "before": {f: getattr(before, f) for f in fields},
                "after": {f: getattr(after, f) for f in fields},
            }
            os.write(write_end, json.dumps(report).encode())
        except BaseException:
            code = 1
        finally:
            os._exit(code)
    os.close(write_end)
    with os.fdopen(read_end) as pipe:
        report = json.loads(pipe.read() or "{}")
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, report
    assert all(v == 0 for v in report["before"].values()), report["before"]
    assert report["after"]["created"] == 0 and report["after"]["closed"] == 0, report["after"]
    assert pool.stats() == parent  # the parent is untouched
    pool.dispose()
