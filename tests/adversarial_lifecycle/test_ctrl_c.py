from __future__ import annotations

import random
import signal
import threading
import time

import pytest

from respool import Pool

pytestmark = [
    pytest.mark.skipif(not hasattr(signal, "pthread_kill"), reason="needs pthread_kill"),
    pytest.mark.filterwarnings("ignore::ResourceWarning"),
]


class Conn:
    __slots__ = ("__weakref__",)


def test_sigint_storm_over_opened_pools(quiet_respool):
    """Open, use and leave `with Pool(...)` while SIGINTs land anywhere in the main thread."""
    assert threading.current_thread() is threading.main_thread()
    main_id = threading.main_thread().ident
    stop = threading.Event()

    def storm():
        rnd = random.Random(11)
        while not stop.is_set():
            time.sleep(rnd.uniform(0.0002, 0.003))
            signal.pthread_kill(main_id, signal.SIGINT)

    pools = []
    interrupts = 0
    th = threading.Thread(target=storm, daemon=True)
    before_threads = set(threading.enumerate())
    th.start()
    deadline = time.monotonic() + 2.0
    running = True
    while running:
        try:
            while time.monotonic() < deadline:
                closed: list = []
                pool = None
                try:
                    pool = Pool(
                        Conn,
                        closed.append,
                        pool_size=3,
                        min_size=2,
                        idle_timeout=0.005,
                        acquire_timeout=5,
                    )
                finally:
                    if pool is not None:
                        pools.append((pool, closed))
                with pool:
                    for _ in range(20):
                        with pool.lease():
                            pass
            running = False
        except KeyboardInterrupt:
            interrupts += 1
    stop.set()
    while th.is_alive():
        try:
            th.join()
        except KeyboardInterrupt:
            pass
    # Let a late SIGINT land while nothing runs.
    try:
        time.sleep(0.05)
    except KeyboardInterrupt:
        pass
    problems = []
    for pool, _closed in pools:
        pool.dispose()  # idempotent; a pool whose `with` was interrupted gets disposed here
    time.sleep(0.5)
    for pool, closed in pools:
        s = pool.stats()
        if not (
            s.idle == 0
            and s.leased == 0
            and s.waiting == 0
            and s.creating == 0
            and s.created == s.closed
        ):
            problems.append(s)
        if len(closed) != len(set(map(id, closed))):
            problems.append("closed twice")
    leftover = [t for t in set(threading.enumerate()) - before_threads if t.is_alive()]
    print("pools", len(pools), "interrupts", interrupts)
    assert not problems, (len(problems), problems[:3])
    assert not leftover, leftover[:5]


CHILD = r"""
import signal, sys, threading, time
from respool import Pool

class Conn:
    __slots__ = ("__weakref__",)

main_id = threading.main_thread().ident
Pool(Conn, None, pool_size=1)  # installs respool's SIGINT handler
raised = 0
for trial in range(5):
    fire = lambda: signal.pthread_kill(main_id, signal.SIGINT)  # noqa: E731
    threading.Timer(0.05 + trial * 0.0013, fire).start()
    t0 = time.monotonic()
    try:
        while time.monotonic() - t0 < 0.4:
            with Pool(Conn, None, pool_size=3, min_size=1):
                pass
    except KeyboardInterrupt:
        raised += 1
        try:
            time.sleep(0.45)
        except KeyboardInterrupt:
            pass
print("RAISED", raised)
"""


def test_one_sigint_while_opening_pools_is_raised():
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, timeout=60)
    line = [x for x in out.stdout.splitlines() if x.startswith("RAISED")]
    assert line, (out.stdout[-500:], out.stderr[-1500:])
    assert line[0] == "RAISED 5", line
