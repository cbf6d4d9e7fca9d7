"""Ctrl-C anywhere in a thread's pool call loses nothing (issue 9, item 8).

Python raises ``KeyboardInterrupt`` in the main thread between almost any two
bytecodes.  Here the main thread (pytest runs tests in it) leases in a loop
from a ``pool_size=1`` ``Pool`` while another thread sends it ``SIGINT`` at
random short intervals; the loop catches ``KeyboardInterrupt`` and goes on.
Afterwards the pool must be whole: nothing leased, waiting or being created,
every resource made either idle in the pool or closed by the releaser, and
the pool serves at once.

The user callables are builtins (the releaser is ``list.append``, ``reset``
and ``check`` are ``id`` and ``bool``), so no interrupt can land inside them
and the record stays exact; the factory runs in the pool's helper threads
(a deadline applies), where no ``KeyboardInterrupt`` is ever raised.
"""

from __future__ import annotations

import gc
import itertools
import os
import random
import signal
import subprocess
import sys
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from types import FrameType
from typing import Any

import pytest

from respool import Pool, PoolTimeout, _synchronization

from .figures import figures

pytestmark = [
    pytest.mark.skipif(not hasattr(signal, "pthread_kill"), reason="needs signal.pthread_kill"),
    # 3.10: a resource dropped between acquire() returning and the caller's
    # assignment (the caller's own window) is recovered with a ResourceWarning.
    pytest.mark.filterwarnings("ignore::ResourceWarning"),
]

FIGURES = figures("keyboard_interrupt")
STORM_SECONDS = 2.0


class Conn:
    """A stand-in connection (weak-referenceable, like most)."""

    __slots__ = ("__weakref__", "number")

    def __init__(self, number: int) -> None:
        self.number = number

    def __repr__(self) -> str:
        return f"Conn({self.number})"


class Recorder:
    """A factory that records what it makes (weakly); ``closed.append`` is the releaser.

    Only weak references to what it made, so a resource its holder dropped
    unreleased is garbage-collected and the pool's recovery (``lost``) shows.
    """

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay
        self.created: list[tuple[int, weakref.ref[Conn]]] = []
        self.closed: list[Conn] = []
        self._numbers = itertools.count()

    def factory(self) -> Conn:
        if self.delay:
            time.sleep(self.delay)
        conn = Conn(next(self._numbers))
        self.created.append((conn.number, weakref.ref(conn)))
        return conn

    def pool(self, **kwargs: Any) -> Pool[Conn]:
        return Pool(self.factory, self.closed.append, pool_size=1, **kwargs)


# Real SIGINTs, sent from another process to the default handler that respool wraps.  A
# storm with a SIGINT handler of its own cannot tell a fixed pool from a broken one:
# respool leaves such a handler alone by design (the bookkeeping is then not protected).
@pytest.fixture(autouse=True)
def default_sigint_handler() -> Iterator[None]:
    """Start from Python's own SIGINT handler; put back whatever was there after."""
    assert threading.current_thread() is threading.main_thread()
    before = signal.getsignal(signal.SIGINT)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, before)


# Sends SIGINT to the process (argv: pid, seconds, low, high); prints how many.
SENDER = """
import os, random, signal, sys, time
pid, seconds, low, high = int(sys.argv[1]), *map(float, sys.argv[2:])
stop, sent = time.monotonic() + seconds, 0
while time.monotonic() < stop:
    time.sleep(random.uniform(low, high))
    os.kill(pid, signal.SIGINT)
    sent += 1
print(sent)
"""


class Storm(threading.Thread):
    """SIGINT for ``seconds``, from another process and from this thread.

    The other process's signals land anywhere in the main thread's Python
    code: it needs no GIL to send them.  This thread's (``pthread_kill`` at
    the main thread, a few a millisecond) mostly land in blocking waits, since
    it runs when the main thread lets go of the GIL: they check that a
    waiting ``acquire`` is interrupted at once.
    """

    def __init__(self, seconds: float) -> None:
        super().__init__(name="sigint-storm", daemon=True)
        self.seconds = seconds
        self.fired = 0
        self.ended = float("inf")

    def run(self) -> None:
        main = threading.main_thread().ident
        assert main is not None
        rng = random.Random()
        args = [str(os.getpid()), str(self.seconds), "0.00005", "0.0005"]
        sender = subprocess.Popen(
            [sys.executable, "-c", SENDER, *args], stdout=subprocess.PIPE, text=True
        )
        try:
            while sender.poll() is None:
                time.sleep(rng.uniform(0.0005, 0.005))
                signal.pthread_kill(main, signal.SIGINT)
                self.fired += 1
            out, _ = sender.communicate()
            self.fired += int(out or 0)
        finally:
            sender.kill()
            sender.wait()
            self.ended = time.monotonic()


def interrupt_pending() -> bool:
    """Whether respool holds back an interrupt it will deliver shortly."""
    pending: Callable[[], bool] | None = getattr(_synchronization, "interrupt_pending", None)
    return pending is not None and pending()


def storm(body: Callable[[], None], seconds: float = STORM_SECONDS) -> dict[str, int]:
    """Run ``body`` in a loop through a storm of interrupts; count what happened.

    Only interrupts landing inside ``body()`` are let through to the SIGINT
    handler in place (respool's, or Python's own); one landing in the loop's
    own lines, outside its ``try``, is dropped and counted as skipped (it
    would end the test, and says nothing about the pool).  The loop goes on a
    moment after the storm, until no interrupt is held back, so none lands
    after it returns.  The cyclic garbage collector is off meanwhile: it
    would run other tests' finalizers at random points inside ``body()``,
    and an interrupt landing in a finalizer is "unraisable" (Python's rule,
    not the pool's), which pytest reports.
    """
    counts = {"interrupts": 0, "rounds": 0, "timeouts": 0, "skipped": 0}
    sender = Storm(seconds)
    inner = signal.getsignal(signal.SIGINT)
    assert callable(inner)
    body_code = body.__code__

    def only_in_body(signum: int, frame: FrameType | None) -> None:
        f = frame
        while f is not None and f.f_code is not body_code:
            f = f.f_back
        if f is None:
            counts["skipped"] += 1
            return
        inner(signum, frame)

    gc.collect()
    gc.disable()
    signal.signal(signal.SIGINT, only_in_body)
    try:
        sender.start()
        while time.monotonic() < sender.ended + 0.1 or interrupt_pending():
            try:
                body()
                counts["rounds"] += 1
            except KeyboardInterrupt:
                counts["interrupts"] += 1
            except PoolTimeout:
                counts["timeouts"] += 1
    finally:
        signal.signal(signal.SIGINT, inner)
        gc.enable()
        sender.join(10)
    counts["fired"] = sender.fired
    FIGURES.add(**counts)
    return counts


def plain_round(pool: Pool[Conn]) -> Callable[[], None]:
    """lease(), acquire/release and, now and then, acquire/discard (so it creates)."""
    rng = random.Random()

    def body() -> None:
        turn = rng.random()
        if turn < 0.5:
            with pool.lease(timeout=2):
                pass
        elif turn < 0.95:
            conn = pool.acquire(timeout=2)
            pool.release(conn)
        else:
            conn = pool.acquire(timeout=2)
            pool.discard(conn)

    return body


def assert_whole(pool: Pool[Conn], rec: Recorder, counts: dict[str, int]) -> None:
    """Nothing in flight; every resource idle or closed; the pool serves at once."""
    assert counts["interrupts"] > 50, counts  # the storm really landed
    gc.collect()  # a leased resource dropped in a reference cycle is recovered now
    stats = pool.stats()
    assert (stats.leased, stats.waiting, stats.creating) == (0, 0, 0), (stats, counts)
    assert stats.size == stats.idle <= 1, (stats, counts)
    assert stats.created == len(rec.created), (stats, len(rec.created))
    closed = [c.number for c in rec.closed]
    assert len(set(closed)) == len(closed), "a resource closed twice"
    alive = [ref() for number, ref in rec.created if number not in set(closed)]
    # Dropped by a holder while leased, garbage-collected, recovered by the
    # pool (counted in `lost`): only on 3.10 can that be the caller's own
    # doing, an interrupt between acquire() returning and the assignment.
    dropped = alive.count(None)
    assert dropped == stats.lost, (stats, dropped)
    if sys.version_info >= (3, 11):
        assert stats.lost == 0, (stats, counts)
    assert stats.closed == len(closed) + stats.lost, (stats, len(closed))
    idle = [conn for conn in alive if conn is not None]
    assert len(idle) == stats.idle, (stats, idle)
    assert counts["timeouts"] == 0, counts  # a slot lost for a while is a timeout
    started = time.monotonic()
    conn = pool.acquire(timeout=1)
    assert time.monotonic() - started < 0.5
    assert conn in idle if idle else conn.number == rec.created[-1][0]
    pool.release(conn)
    del conn, idle, alive
    pool.dispose()
    assert len(rec.closed) + stats.lost == len(rec.created)


def test_acquire_release_and_lease_through_a_storm_of_interrupts() -> None:
    rec = Recorder()
    pool = rec.pool(acquire_timeout=5)
    counts = storm(plain_round(pool))
    assert_whole(pool, rec, counts)


def test_a_slow_factory_in_its_helper_thread_through_a_storm() -> None:
    rec = Recorder(delay=0.001)  # interrupts land while the call is submitted and awaited
    pool = rec.pool(acquire_timeout=5)
    rng = random.Random()

    def body() -> None:
        discard = rng.random() < 0.7  # not between acquire and release: that window is ours
        conn = pool.acquire(timeout=0.5)
        if discard:
            pool.discard(conn)
        else:
            pool.release(conn)

    counts = storm(body)
    assert_whole(pool, rec, counts)


def test_reset_and_check_through_a_storm() -> None:
    rec = Recorder()
    pool = rec.pool(acquire_timeout=5, reset=id, check=bool, check_interval=0)
    counts = storm(plain_round(pool))
    assert_whole(pool, rec, counts)


def test_the_slow_release_path_with_leak_timeout_through_a_storm() -> None:
    rec = Recorder()
    pool = rec.pool(acquire_timeout=5, leak_timeout=60, cleanup_timeout=5)
    counts = storm(plain_round(pool))
    assert_whole(pool, rec, counts)


def test_waiting_in_line_behind_another_thread_through_a_storm() -> None:
    rec = Recorder()
    pool = rec.pool(acquire_timeout=5)
    stop = threading.Event()
    other_timeouts = 0

    def contender() -> None:
        nonlocal other_timeouts
        while not stop.is_set():
            try:
                with pool.lease(timeout=2):
                    time.sleep(0.0005)
            except PoolTimeout:
                other_timeouts += 1

    thread = threading.Thread(target=contender, daemon=True)
    thread.start()
    try:
        counts = storm(plain_round(pool))
    finally:
        stop.set()
        thread.join(10)
    assert not thread.is_alive()
    assert other_timeouts == 0
    assert_whole(pool, rec, counts)


# -- the mechanism, one case at a time ------------------------------------------


def interrupt_main_in(seconds: float) -> threading.Thread:
    """SIGINT to the main thread after ``seconds``, from a thread of its own."""
    main = threading.main_thread().ident
    assert main is not None

    def send() -> None:
        time.sleep(seconds)
        signal.pthread_kill(main, signal.SIGINT)

    thread = threading.Thread(target=send, daemon=True)
    thread.start()
    return thread


def test_pool_construction_wraps_only_the_default_handler() -> None:
    Recorder().pool()
    wrapped = signal.getsignal(signal.SIGINT)
    assert wrapped is not signal.default_int_handler
    assert getattr(wrapped, "__module__", None) == "respool._synchronization.interrupts"

    def mine(signum: int, frame: FrameType | None) -> None:
        pass

    signal.signal(signal.SIGINT, mine)
    Recorder().pool()
    assert signal.getsignal(signal.SIGINT) is mine  # an application's own handler is kept


def test_a_pool_made_in_another_thread_or_an_async_pool_installs_nothing() -> None:
    from respool import AsyncPool

    async def factory() -> Conn:
        return Conn(0)

    AsyncPool(factory, None)
    thread = threading.Thread(target=Recorder().pool)
    thread.start()
    thread.join(5)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_ctrl_c_while_waiting_in_acquire_raises_at_once_and_leaves_the_line() -> None:
    rec = Recorder()
    pool = rec.pool(acquire_timeout=30)
    taken, done = threading.Event(), threading.Event()

    def holder() -> None:
        with pool.lease():
            taken.set()
            done.wait(10)

    thread = threading.Thread(target=holder, daemon=True)
    thread.start()
    assert taken.wait(5)
    interrupt_main_in(0.1)
    started = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        pool.acquire()  # waits in line: Ctrl-C gets through at once
    assert time.monotonic() - started < 1
    assert pool.stats().waiting == 0
    done.set()
    thread.join(5)
    assert pool.stats().idle == 1
    pool.dispose()


def test_ctrl_c_in_a_factory_called_inline_raises_and_frees_its_slot() -> None:
    def factory() -> Conn:
        time.sleep(5)  # user code: interruptible
        return Conn(0)  # pragma: no cover

    pool = Pool(factory, None, pool_size=1, acquire_timeout=None)  # no deadline: inline
    interrupt_main_in(0.1)
    started = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        pool.acquire()
    assert time.monotonic() - started < 1
    stats = pool.stats()
    assert (stats.size, stats.creating, stats.leased) == (0, 0, 0), stats


def test_an_interrupt_in_protected_code_is_held_back_then_delivered() -> None:
    Recorder().pool()  # installs the handler
    from respool._synchronization import ki_protected

    finished = False

    @ki_protected
    def bookkeeping() -> None:  # stands for the pool's own code
        nonlocal finished
        end = time.perf_counter() + 0.1
        while time.perf_counter() < end:  # C calls: where interrupts land
            pass
        finished = True

    interrupt_main_in(0.02)
    started = time.monotonic()
    try:
        bookkeeping()  # the interrupt lands in here, and waits...
        time.sleep(1)  # ...to be delivered here, at once
    except KeyboardInterrupt:
        pass
    else:
        pytest.fail("the held-back interrupt was never delivered")
    assert finished
    assert 0.1 <= time.monotonic() - started < 0.5
    assert not interrupt_pending()
