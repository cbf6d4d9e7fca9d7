"""The fairness window on the threaded Pool: bound, handoff, nothing lost, timeouts."""

from __future__ import annotations

import random
import threading
import time

import pytest

from respool import Pool, PoolClosed, PoolTimeout

from ._kit import Book, settled


def _pool(book: Book, **kw) -> Pool:
    kw.setdefault("acquire_timeout", 30)
    return Pool(book.make, book.close, **kw)


def _run(threads):
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not any(t.is_alive() for t in threads), "a thread hung"


@pytest.mark.parametrize("window", [0, 0.005, 0.02])
def test_old_waiter_gets_release_not_the_releaser(window):
    book = Book()
    pool = _pool(book, pool_size=1, fairness_window=window)
    r = pool.acquire()
    got = []

    def waiter():
        x = pool.acquire(timeout=10)
        got.append(x)
        time.sleep(0.05)  # held past the releaser's acquire(timeout=0)
        pool.release(x)

    t = threading.Thread(target=waiter)
    t.start()
    deadline = time.monotonic() + 5
    while pool.stats().waiting != 1 and time.monotonic() < deadline:
        time.sleep(0.001)
    time.sleep(window + 0.1)
    pool.release(r)
    with pytest.raises(PoolTimeout):
        pool.acquire(timeout=0)  # the releaser looping back
    t.join(10)
    assert got == [r]
    assert settled(pool, book) == []
    pool.dispose()
    assert settled(pool, book, disposed=True) == []


def test_strict_fifo_order_with_zero_window():
    book = Book()
    pool = _pool(book, pool_size=1, fairness_window=0)
    r = pool.acquire()
    order = []
    threads = []
    for i in range(6):

        def waiter(i=i):
            x = pool.acquire(timeout=10)
            order.append(i)
            time.sleep(0.002)
            pool.release(x)

        t = threading.Thread(target=waiter)
        t.start()
        threads.append(t)
        deadline = time.monotonic() + 5
        while pool.stats().waiting != i + 1 and time.monotonic() < deadline:
            time.sleep(0.001)
    pool.release(r)
    for t in threads:
        t.join(10)
    assert order == list(range(6)), order
    assert settled(pool, book) == []
    pool.dispose()


@pytest.mark.parametrize("window", [0, 0.005])
def test_one_hog_thread_cannot_starve_a_waiter(window):
    book = Book()
    pool = _pool(book, pool_size=1, fairness_window=window)
    hold = 0.002
    done = threading.Event()

    def hog():
        r = pool.acquire()
        while not done.is_set():
            time.sleep(hold)
            pool.release(r)
            r = pool.acquire(timeout=30)
        pool.release(r)

    h = threading.Thread(target=hog)
    h.start()
    time.sleep(0.01)
    waits = []
    try:
        for _ in range(10):
            t0 = time.monotonic()
            x = pool.acquire(timeout=5)
            waits.append(time.monotonic() - t0)
            pool.release(x)
            time.sleep(0.003)
    finally:
        done.set()
        h.join(10)
    assert max(waits) <= 20 * (window + hold) + 0.3, waits
    assert settled(pool, book) == []
    pool.dispose()


@pytest.mark.parametrize("window", [0, 0.005])
def test_sixteen_threads_three_resources_bounded_and_fair(window):
    book = Book()
    n, size, hold = 16, 3, 0.002
    pool = _pool(book, pool_size=size, fairness_window=window)
    waits = {i: [] for i in range(n)}
    stop = time.monotonic() + 0.6

    def worker(i):
        while time.monotonic() < stop:
            t0 = time.monotonic()
            r = pool.acquire(timeout=30)
            waits[i].append(time.monotonic() - t0)
            book.took(r, i)
            time.sleep(hold)
            book.gave(r, i)
            pool.release(r)

    _run([threading.Thread(target=worker, args=(i,)) for i in range(n)])
    turns = [len(w) for w in waits.values()]
    assert min(turns) >= 0.25 * (sum(turns) / n), turns
    worst = max(max(w) for w in waits.values())
    assert worst <= 20 * (window + (n / size) * hold) + 0.3, worst
    assert settled(pool, book) == []
    pool.dispose()
    assert settled(pool, book, disposed=True) == []


@pytest.mark.parametrize("window", [0, 0.005, 0.05])
def test_twenty_threads_random_timeouts_nothing_lost(window, quiet_respool):
    book = Book()
    pool = _pool(book, pool_size=2, fairness_window=window)
    stop = time.monotonic() + 0.5
    tally = {"served": 0, "timeout": 0}
    lock = threading.Lock()

    def worker(i):
        rng = random.Random(i)
        while time.monotonic() < stop:
            try:
                with pool.lease(timeout=rng.choice([0, 0.001, 0.005, 0.02, 0.5])) as r:
                    book.took(r, i)
                    time.sleep(rng.random() * 0.002)
                    book.gave(r, i)
                with lock:
                    tally["served"] += 1
            except PoolTimeout:
                with lock:
                    tally["timeout"] += 1

    _run([threading.Thread(target=worker, args=(i,)) for i in range(20)])
    # patient waiters after the storm get the idle resources promptly
    t0 = time.monotonic()
    for _ in range(4):
        with pool.lease(timeout=20):
            pass
    assert time.monotonic() - t0 < 2.0
    assert tally["served"] > 50, tally
    assert settled(pool, book) == [], tally
    pool.dispose()
    assert settled(pool, book, disposed=True) == []


def test_patient_threads_in_line_through_a_timeout_storm_not_stuck():
    book = Book()
    pool = _pool(book, pool_size=2, fairness_window=0.02)
    stop = time.monotonic() + 0.6
    finished = []

    def stormer(i):
        rng = random.Random(100 + i)
        while time.monotonic() < stop:
            try:
                with pool.lease(timeout=rng.choice([0.0005, 0.002, 0.01])) as r:
                    book.took(r, i)
                    time.sleep(rng.random() * 0.002)
                    book.gave(r, i)
            except PoolTimeout:
                pass

    def patient(i):
        time.sleep(0.05 * i)
        with pool.lease(timeout=20) as r:
            book.took(r, f"p{i}")
            book.gave(r, f"p{i}")
        finished.append(time.monotonic())

    _run(
        [threading.Thread(target=stormer, args=(i,)) for i in range(14)]
        + [threading.Thread(target=patient, args=(i,)) for i in range(6)]
    )
    assert len(finished) == 6
    assert max(finished) - stop < 3.0
    assert settled(pool, book) == []
    pool.dispose()


@pytest.mark.parametrize("window", [0, 0.005])
def test_threads_factory_failing_check_reset_while_barging(window, quiet_respool):
    book = Book()
    book.fail_every = 4
    rng = random.Random(7)
    rlock = threading.Lock()

    def check(r):
        with rlock:
            return rng.random() > 0.1

    def reset(r):
        with rlock:
            if rng.random() < 0.1:
                raise RuntimeError("reset failed")
        return True

    pool = Pool(
        book.make, book.close, pool_size=3, fairness_window=window, check=check,
        check_interval=0, reset=reset, max_backoff=0.05, acquire_timeout=30,
    )  # fmt: skip
    stop = time.monotonic() + 0.5

    def worker(i):
        r2 = random.Random(i)
        while time.monotonic() < stop:
            try:
                with pool.lease(timeout=r2.choice([0.001, 0.01, 0.2])) as r:
                    book.took(r, i)
                    time.sleep(r2.random() * 0.002)
                    book.gave(r, i)
            except PoolTimeout:
                pass

    _run([threading.Thread(target=worker, args=(i,)) for i in range(16)])
    book.fail_every = 0
    with pool.lease(timeout=10):
        pass
    assert settled(pool, book) == []
    pool.dispose()
    assert settled(pool, book, disposed=True) == []


@pytest.mark.parametrize("window", [0, 0.005, 10.0])
def test_threads_dispose_mid_contention(window):
    book = Book()
    pool = _pool(book, pool_size=2, fairness_window=window)
    closed = []

    def worker(i):
        while True:
            try:
                with pool.lease(timeout=10) as r:
                    book.took(r, i)
                    time.sleep(0.001)
                    book.gave(r, i)
            except PoolClosed:
                closed.append(i)
                return

    ts = [threading.Thread(target=worker, args=(i,)) for i in range(12)]
    for t in ts:
        t.start()
    time.sleep(0.2)
    pool.dispose()
    for t in ts:
        t.join(10)
    assert sorted(closed) == list(range(12))
    assert settled(pool, book, disposed=True) == []
    assert book.alive == set()


@pytest.mark.parametrize("window", [0, 0.005, 5.0])
def test_threads_timeout_on_time_while_hog_barges(window):
    book = Book()
    pool = _pool(book, pool_size=1, fairness_window=window)
    done = threading.Event()

    def hog():
        r = pool.acquire()
        while not done.is_set():
            time.sleep(0.002)
            pool.release(r)
            r = pool.acquire(timeout=30)
        pool.release(r)

    h = threading.Thread(target=hog)
    h.start()
    time.sleep(0.01)
    t0 = time.monotonic()
    try:
        x = pool.acquire(timeout=0.3)
        pool.release(x)
        outcome = "served"
    except PoolTimeout:
        outcome = "timeout"
    elapsed = time.monotonic() - t0
    done.set()
    h.join(10)
    if window > 0.3:
        assert outcome == "timeout"
        assert 0.29 <= elapsed <= 1.3, elapsed
    else:
        assert outcome == "served", elapsed
    assert settled(pool, book) == []
    pool.dispose()


@pytest.mark.parametrize("window", [0, 0.005, 0.02])
def test_zero_hold_hog_thread_stopped_by_the_window(window):
    book = Book()
    pool = _pool(book, pool_size=1, fairness_window=window)
    r = pool.acquire()
    got = {}

    def waiter():
        t0 = time.monotonic()
        x = pool.acquire(timeout=10)
        got["wait"] = time.monotonic() - t0
        pool.release(x)

    t = threading.Thread(target=waiter)
    t.start()
    deadline = time.monotonic() + 5
    while pool.stats().waiting != 1 and time.monotonic() < deadline:
        time.sleep(0.001)
    spins = 0
    start = time.monotonic()
    while "wait" not in got and time.monotonic() - start < 5:
        pool.release(r)
        r = pool.acquire(timeout=10)
        spins += 1
    pool.release(r)
    t.join(10)
    assert "wait" in got, f"waiter starved through {spins} cycles"
    assert got["wait"] <= 20 * window + 0.3, got
    assert settled(pool, book) == []
    pool.dispose()
