"""``python -m respool demo``: three pools of real sqlite3 connections, watched live.

One temporary database file, three pools working on it at the same time,
each in its own thread:

- ``threads``: a :class:`respool.Pool` shared by worker threads;
- ``asyncio``: an :class:`respool.AsyncPool` shared by tasks of an asyncio
  event loop (``anyio.run(..., backend="asyncio")``);
- ``trio``: the same async code under trio (skipped if trio is missing).

A pool belongs to one event loop, so each loop gets its own.  Every pool is
smaller than its crowd of workers, so workers queue for connections; a few
slow queries make some of them give up (``PoolTimeout``).  Each unit of work
is real SQL: an insert in its own transaction, or a read.  A few connections
are damaged on purpose: some are closed behind the pool's back (the pool's
``check`` finds them before handing them out again; a worker that is handed
one directly discards it), and some are discarded by their holder.

The demo measures each ``acquire`` call's wait itself, shows every pool's
``stats()`` while it runs, then prints a summary and checks invariants: no
connection leased, waiting or being created at the end, every connection
closed after ``dispose()``, the pools' counters equal to what the workers
counted, and the rows in the database equal to the inserts the workers
committed.  :func:`main` returns 0 if every check holds, 1 otherwise.

Needs ``rich`` (``pip install "respool[demo]"``); ``trio`` for the third pool.
"""

from __future__ import annotations

import contextlib
import logging
import random
import sqlite3
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import anyio
import anyio.to_thread
from rich import box
from rich.columns import Columns
from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.panel import Panel
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from . import AsyncPool, Pool, PoolStats, PoolTimeout

ACQUIRE_TIMEOUT = 0.05  # seconds a worker waits for a connection before giving up
HOLD = (0.0005, 0.003)  # seconds a connection is held after its SQL, uniform
SLOW_QUERY = 0.03  # chance that a unit of work is a slow query...
SLOW_HOLD = (0.05, 0.15)  # ...holding its connection this long
DISCARD = 0.005  # chance that a holder discards its connection as broken
KILL = 0.005  # chance that a holder closes its connection behind the pool's back
INSERT = 0.7  # chance that a unit of work writes a row (else it reads)
BACKOFF = 0.005  # seconds a worker pauses after a PoolTimeout
LIVE_WINDOW = 2000  # latest waits used for the live percentiles
GRACE = 30.0  # seconds past the deadline a lane may take to finish

Connection = sqlite3.Connection


class PoolLog(logging.Handler):
    """Keeps what the pools log (logger ``respool``): a count and the latest lines."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.count = 0
        self.latest: deque[str] = deque(maxlen=3)

    def emit(self, record: logging.LogRecord) -> None:
        line = record.getMessage().splitlines()[0]
        with self.lock or contextlib.nullcontext():
            self.count += 1
            self.latest.append(f"{record.levelname} {line}")

    def lines(self) -> tuple[int, list[str]]:
        with self.lock or contextlib.nullcontext():
            return self.count, list(self.latest)


@contextlib.contextmanager
def capture_pool_log() -> Iterator[PoolLog]:
    """Route the ``respool`` logger to a :class:`PoolLog` (only) for the block."""
    logger = logging.getLogger("respool")
    handler = PoolLog()
    saved = logger.propagate, logger.level
    logger.addHandler(handler)
    logger.propagate = False
    logger.setLevel(logging.INFO)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.propagate, logger.level = saved


@dataclass(frozen=True)
class LaneSpec:
    """One pool and its workers."""

    name: str
    backend: str  # "threads", "asyncio" or "trio"
    workers: int
    pool_size: int


LANES = (
    LaneSpec("threads", "threads", workers=10, pool_size=4),
    LaneSpec("asyncio", "asyncio", workers=16, pool_size=4),
    LaneSpec("trio", "trio", workers=16, pool_size=4),
)


@dataclass
class Lane:
    """What one pool's workers did, counted by the demo itself (not by the pool)."""

    spec: LaneSpec
    pool: Pool[Connection] | AsyncPool[Connection] | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)
    waits: list[float] = field(default_factory=list)  # seconds per acquire call
    acquired: int = 0
    timeouts: int = 0
    inserts: int = 0  # committed
    reads: int = 0
    discards: int = 0  # discard() calls: planned, or a dead connection handed over
    kills: int = 0  # connections closed behind the pool's back
    check_failures: int = 0  # the pool's check found a dead connection (raised)
    peak_in_use: int = 0  # most of size + creating seen while sampling
    started: float = 0.0
    finished: float = 0.0
    errors: list[BaseException] = field(default_factory=list)
    open_stats: PoolStats | None = None  # just before dispose()
    final_stats: PoolStats | None = None  # after dispose()
    rows: int = 0  # rows of this lane in the database at the end
    skipped: str = ""  # why the lane did not run

    def record_wait(self, seconds: float, *, timed_out: bool) -> None:
        with self.lock:
            self.waits.append(seconds)
            if timed_out:
                self.timeouts += 1
            else:
                self.acquired += 1

    def count(self, what: str) -> None:
        with self.lock:
            setattr(self, what, getattr(self, what) + 1)

    def stats(self) -> PoolStats | None:
        """The pool's stats now (also sampling its peak), or its last snapshot."""
        pool = self.pool
        if pool is None:
            return None
        stats = pool.stats()
        with self.lock:
            self.peak_in_use = max(self.peak_in_use, stats.size + stats.creating)
        return stats

    def wait_percentiles(self, last: int | None = None) -> tuple[float, float, float] | None:
        """p50, p99 and max of the measured waits (of the ``last`` ones), in seconds."""
        with self.lock:
            waits = self.waits[-last:] if last else list(self.waits)
        if not waits:
            return None
        waits.sort()
        return percentile(waits, 50), percentile(waits, 99), waits[-1]

    def seconds(self) -> float:
        end = self.finished or time.monotonic()
        return max(end - self.started, 1e-9) if self.started else 0.0


def percentile(ordered: list[float], p: float) -> float:
    """Nearest-rank percentile of a sorted, non-empty list."""
    rank = max(1, -(-len(ordered) * p // 100))  # ceil(n * p / 100), at least 1
    return ordered[int(rank) - 1]


# -- sqlite3 ---------------------------------------------------------------------


def connect(path: Path) -> Connection:
    """The pools' factory: one new connection.

    ``check_same_thread=False``: a pooled connection is used by whichever
    thread holds it, one at a time.
    """
    conn = sqlite3.connect(path, timeout=10, check_same_thread=False, isolation_level=None)
    conn.execute("PRAGMA synchronous=NORMAL")
    return conn


def close(conn: Connection) -> None:
    """The pools' releaser (closing an already closed connection does nothing)."""
    conn.close()


def create_schema(path: Path) -> None:
    with contextlib.closing(connect(path)) as conn:
        conn.execute("PRAGMA journal_mode=WAL")  # readers do not block the writer
        conn.execute(
            "CREATE TABLE events (lane TEXT, worker INTEGER, seq INTEGER, at REAL,"
            " PRIMARY KEY (lane, worker, seq))"
        )


def count_rows(path: Path, lane: str) -> int:
    with contextlib.closing(connect(path)) as conn:
        row = conn.execute("SELECT count(*) FROM events WHERE lane = ?", (lane,)).fetchone()
    return int(row[0])


def is_closed_error(exc: sqlite3.ProgrammingError) -> bool:
    return "closed" in str(exc)


def work(conn: Connection, lane: str, worker: int, seq: int, insert: bool) -> bool:
    """One unit of SQL work; returns whether it committed a row.

    Raises ``sqlite3.ProgrammingError`` if the connection was closed.
    """
    if not insert:
        conn.execute(
            "SELECT count(*), coalesce(max(seq), -1) FROM events WHERE lane = ? AND worker = ?",
            (lane, worker),
        ).fetchone()
        return False
    conn.execute("BEGIN IMMEDIATE")  # take the write lock up front (waits up to 10 s)
    try:
        conn.execute("INSERT INTO events VALUES (?, ?, ?, ?)", (lane, worker, seq, time.time()))
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
    return True


@dataclass
class Plan:
    """What one unit of work will do, drawn before it starts."""

    insert: bool
    hold: float
    fate: str  # "release", "discard" or "kill"

    @classmethod
    def draw(cls, rng: random.Random) -> Plan:
        slow = rng.random() < SLOW_QUERY
        hold = rng.uniform(*SLOW_HOLD) if slow else rng.uniform(*HOLD)
        roll = rng.random()
        fate = "discard" if roll < DISCARD else "kill" if roll < DISCARD + KILL else "release"
        return cls(insert=rng.random() < INSERT, hold=hold, fate=fate)


def checker(lane: Lane) -> Callable[[Connection], None]:
    """The pools' ``check``: a dead connection raises, so the pool closes it."""

    def check(conn: Connection) -> None:
        try:
            conn.execute("SELECT 1")
        except sqlite3.ProgrammingError:
            lane.count("check_failures")
            raise

    return check


# -- the threads lane: Pool --------------------------------------------------------


def thread_worker(lane: Lane, pool: Pool[Connection], n: int, done: Callable[[], bool]) -> None:
    rng = random.Random(f"{lane.spec.name}-{n}")
    seq = 0
    while not done():
        start = time.perf_counter()
        try:
            conn = pool.acquire(timeout=ACQUIRE_TIMEOUT)
        except PoolTimeout:
            lane.record_wait(time.perf_counter() - start, timed_out=True)
            time.sleep(BACKOFF)
            continue
        lane.record_wait(time.perf_counter() - start, timed_out=False)
        plan = Plan.draw(rng)
        try:
            inserted = work(conn, lane.spec.name, n, seq, plan.insert)
        except sqlite3.ProgrammingError as exc:
            if not is_closed_error(exc):
                pool.release(conn)
                raise
            pool.discard(conn)  # handed a dead connection: say so
            lane.count("discards")
            continue
        except BaseException:
            pool.release(conn)
            raise
        seq += inserted
        lane.count("inserts" if inserted else "reads")
        time.sleep(plan.hold)
        if plan.fate == "discard":
            pool.discard(conn)
            lane.count("discards")
        elif plan.fate == "kill":
            conn.close()
            lane.count("kills")
            pool.release(conn)
        else:
            pool.release(conn)


def run_threads(lane: Lane, path: Path, done: Callable[[], bool]) -> None:
    pool = Pool(
        partial(connect, path),
        close,
        pool_size=lane.spec.pool_size,
        acquire_timeout=ACQUIRE_TIMEOUT,
        check=checker(lane),
        check_interval=0,  # check every idle connection before handing it out
    )
    lane.pool = pool
    with pool:  # disposes the pool on the way out
        workers = lane.spec.workers
        with ThreadPoolExecutor(workers, thread_name_prefix="respool-demo") as executor:
            futures = [executor.submit(thread_worker, lane, pool, n, done) for n in range(workers)]
        for future in futures:
            error = future.exception()
            if error is not None:
                lane.errors.append(error)
        lane.open_stats = settled(pool)
    lane.final_stats = settled(pool, disposed=True)


def settled(pool: Pool[Connection], *, disposed: bool = False, wait: float = 2.0) -> PoolStats:
    """The pool's stats once it is quiet, or after ``wait`` seconds.

    Quiet: nothing leased or being created, and nothing alive if ``disposed``.

    A ``check`` or factory call that overran its acquire's deadline goes on
    in its helper thread, and the pool closes what it leaves when it ends:
    the workers may be done a moment before that.
    """
    deadline = time.monotonic() + wait
    while True:
        stats = pool.stats()
        quiet = stats.leased == stats.creating == 0 and not (disposed and stats.size)
        if quiet or time.monotonic() >= deadline:
            return stats
        time.sleep(0.01)


# -- the asyncio and trio lanes: AsyncPool -----------------------------------------


async def task_worker(
    lane: Lane, pool: AsyncPool[Connection], n: int, done: Callable[[], bool]
) -> None:
    rng = random.Random(f"{lane.spec.name}-{n}")
    seq = 0
    while not done():
        start = time.perf_counter()
        try:
            conn = await pool.acquire(timeout=ACQUIRE_TIMEOUT)
        except PoolTimeout:
            lane.record_wait(time.perf_counter() - start, timed_out=True)
            await anyio.sleep(BACKOFF)
            continue
        lane.record_wait(time.perf_counter() - start, timed_out=False)
        plan = Plan.draw(rng)
        try:
            # sqlite3 blocks: run it in a worker thread, the loop serves others.
            inserted = await anyio.to_thread.run_sync(
                work, conn, lane.spec.name, n, seq, plan.insert
            )
        except sqlite3.ProgrammingError as exc:
            if not is_closed_error(exc):
                await pool.release(conn)
                raise
            await pool.discard(conn)
            lane.count("discards")
            continue
        except BaseException:
            await pool.release(conn)
            raise
        seq += inserted
        lane.count("inserts" if inserted else "reads")
        await anyio.sleep(plan.hold)
        if plan.fate == "discard":
            await pool.discard(conn)
            lane.count("discards")
        elif plan.fate == "kill":
            await anyio.to_thread.run_sync(conn.close)
            lane.count("kills")
            await pool.release(conn)
        else:
            await pool.release(conn)


async def run_tasks(lane: Lane, path: Path, done: Callable[[], bool]) -> None:
    """The same code for asyncio and trio: anyio runs on whichever is running."""

    async def open_conn() -> Connection:
        return await anyio.to_thread.run_sync(connect, path)

    async def close_conn(conn: Connection) -> None:
        await anyio.to_thread.run_sync(close, conn)

    check = checker(lane)

    async def check_conn(conn: Connection) -> None:
        check(conn)  # SELECT 1 on an idle connection: quick enough for the loop

    pool = AsyncPool(
        open_conn,
        close_conn,
        pool_size=lane.spec.pool_size,
        acquire_timeout=ACQUIRE_TIMEOUT,
        check=check_conn,
        check_interval=0,
    )
    lane.pool = pool
    async with pool:
        try:
            async with anyio.create_task_group() as tg:
                for n in range(lane.spec.workers):
                    tg.start_soon(task_worker, lane, pool, n, done)
        except Exception as exc:  # an ExceptionGroup of the workers' errors
            lane.errors.append(exc)
        lane.open_stats = pool.stats()
    lane.final_stats = pool.stats()


def run_lane(lane: Lane, path: Path, done: Callable[[], bool]) -> None:
    """A lane's thread: its pool and workers, start to finish."""
    lane.started = time.monotonic()
    try:
        if lane.spec.backend == "threads":
            run_threads(lane, path, done)
        else:
            anyio.run(run_tasks, lane, path, done, backend=lane.spec.backend)
    except BaseException as exc:
        lane.errors.append(exc)
    finally:
        lane.finished = time.monotonic()


# -- display -------------------------------------------------------------------------


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def lane_panel(lane: Lane) -> Panel:
    spec = lane.spec
    title = f"{spec.name}: {spec.workers} workers, pool_size={spec.pool_size}"
    if lane.skipped:
        return Panel(Text(lane.skipped), title=title, width=38)
    stats = lane.stats()
    grid = Table.grid(padding=(0, 1))
    grid.add_column(justify="left")
    grid.add_column(justify="right")
    if stats is None:
        grid.add_row("starting", "")
        return Panel(grid, title=title, width=38)
    grid.add_row("busy", ProgressBar(total=spec.pool_size, completed=stats.leased, width=20))
    for name in ("size", "idle", "leased", "waiting", "acquired", "timeouts", "broken"):
        grid.add_row(name, str(getattr(stats, name)))
    waits = lane.wait_percentiles(LIVE_WINDOW)
    if waits is not None:
        grid.add_row("wait p50", ms(waits[0]))
        grid.add_row("wait p99", ms(waits[1]))
    grid.add_row("SQL ops/s", f"{(lane.inserts + lane.reads) / max(lane.seconds(), 1e-3):.0f}")
    return Panel(grid, title=title, width=38)


def live_view(lanes: list[Lane], start: float, seconds: float, log: PoolLog) -> RenderableType:
    elapsed = min(time.monotonic() - start, seconds)
    header = Table.grid(padding=(0, 1))
    header.add_row(
        Text("respool demo"),
        ProgressBar(total=seconds, completed=elapsed, width=40),
        Text(f"{elapsed:.1f}/{seconds:g} s"),
    )
    count, latest = log.lines()
    log_text = Text(f"pool log: {count} messages (logger 'respool')", no_wrap=True)
    for line in latest:
        log_text.append(f"\n  {line}")
    return Group(header, Columns([lane_panel(lane) for lane in lanes]), log_text)


def summary_table(lanes: list[Lane]) -> Table:
    ran = [lane for lane in lanes if not lane.skipped]
    table = Table(title="respool demo: summary", box=box.SIMPLE_HEAD)
    table.add_column("")
    for lane in ran:
        table.add_column(lane.spec.name, justify="right")

    def row(label: str, cell: Callable[[Lane], str]) -> None:
        table.add_row(label, *(cell(lane) for lane in ran))

    def final(lane: Lane, show: Callable[[PoolStats], str]) -> str:
        return show(lane.final_stats) if lane.final_stats is not None else "-"

    def waits(lane: Lane, i: int) -> str:
        found = lane.wait_percentiles()
        return ms(found[i]) if found else "-"

    row("pool", lambda lane: "Pool" if lane.spec.backend == "threads" else "AsyncPool")
    row("workers / pool_size", lambda lane: f"{lane.spec.workers} / {lane.spec.pool_size}")
    row("seconds", lambda lane: f"{lane.seconds():.1f}")
    row("acquired", lambda lane: str(lane.acquired))
    row(
        "acquired / s",
        lambda lane: f"{lane.acquired / lane.seconds():.0f}" if lane.seconds() else "-",
    )
    row("timeouts", lambda lane: str(lane.timeouts))
    row("wait p50", lambda lane: waits(lane, 0))
    row("wait p99", lambda lane: waits(lane, 1))
    row("wait max", lambda lane: waits(lane, 2))
    row("rows written", lambda lane: str(lane.inserts))
    row("reads", lambda lane: str(lane.reads))
    row("killed / discarded", lambda lane: f"{lane.kills} / {lane.discards}")
    row("failed check", lambda lane: str(lane.check_failures))
    row("broken (pool)", lambda lane: final(lane, lambda f: str(f.broken)))
    row("created / closed", lambda lane: final(lane, lambda f: f"{f.created} / {f.closed}"))
    return table


# -- invariants --------------------------------------------------------------------


def check_lane(lane: Lane) -> list[tuple[bool, str]]:
    """Each invariant of a finished lane: (holds, what it says)."""
    name = lane.spec.name
    if lane.errors:
        return [(False, f"{name}: a worker failed: {error!r}") for error in lane.errors]
    s, f = lane.open_stats, lane.final_stats
    if not lane.finished or s is None or f is None:
        return [(False, f"{name}: the pool did not finish within {GRACE:g} s of the deadline")]
    size = lane.spec.pool_size
    known = lane.discards + lane.check_failures  # broken connections the demo saw
    return [
        (
            s.leased == s.waiting == s.creating == 0,
            f"{name}: nothing leased, waiting or being created at the end"
            f" (leased={s.leased} waiting={s.waiting} creating={s.creating})",
        ),
        (
            s.created - s.closed == s.size,
            f"{name}: created - closed == size before dispose"
            f" ({s.created} - {s.closed} == {s.size})",
        ),
        (
            f.size == f.idle == f.leased == 0 and f.created == f.closed,
            f"{name}: dispose() closed every connection"
            f" (size={f.size} created={f.created} closed={f.closed})",
        ),
        (
            lane.peak_in_use <= size,
            f"{name}: never more than pool_size alive, sampled (peak {lane.peak_in_use} <= {size})",
        ),
        (
            f.acquired == lane.acquired and f.timeouts == lane.timeouts,
            f"{name}: the pool counted what the workers saw"
            f" (acquired {f.acquired} == {lane.acquired},"
            f" timeouts {f.timeouts} == {lane.timeouts})",
        ),
        (
            # Pool runs a check in a helper thread when a deadline applies; one
            # that overruns it closes the connection as broken and times out
            # the acquire: at most one such check per timeout.
            known <= f.broken <= known + f.timeouts,
            f"{name}: broken == discarded + failed check + checks cut short by a timeout"
            f" ({f.broken} == {lane.discards} + {lane.check_failures} + {f.broken - known},"
            f" and {f.broken - known} <= {f.timeouts} timeouts)",
        ),
        (
            f.create_errors == f.close_errors == 0,
            f"{name}: no factory or releaser errors"
            f" (create_errors={f.create_errors} close_errors={f.close_errors})",
        ),
        (
            lane.rows == lane.inserts,
            f"{name}: rows in the database == committed inserts ({lane.rows} == {lane.inserts})",
        ),
        (lane.acquired > 0, f"{name}: the workers got connections ({lane.acquired} acquired)"),
    ]


def check_lanes(lanes: list[Lane]) -> list[tuple[bool, str]]:
    return [result for lane in lanes if not lane.skipped for result in check_lane(lane)]


# -- running it ------------------------------------------------------------------------


def trio_missing() -> str:
    try:
        import trio  # noqa: F401
    except ImportError:
        return 'trio is not installed: pip install "respool[demo]"'
    return ""


def make_lanes() -> list[Lane]:
    """The lanes to run; trio's is marked skipped if trio is not installed."""
    lanes = [Lane(spec) for spec in LANES]
    skip_trio = trio_missing()
    for lane in lanes:
        if lane.spec.backend == "trio":
            lane.skipped = skip_trio
    return lanes


def run(lanes: list[Lane], seconds: float) -> bool:
    """Run the lanes for ``seconds`` on a fresh temporary database.

    Fills in each lane's counts, stats and rows.  Returns ``False`` if Ctrl-C
    stopped the workers early.  A lane still running ``GRACE`` seconds after
    the deadline is left behind (its thread is a daemon) and reported by
    :func:`check_lanes` as not finished.
    """
    stop = threading.Event()
    deadline = time.monotonic() + seconds

    def done() -> bool:
        return stop.is_set() or time.monotonic() >= deadline

    completed = True
    with tempfile.TemporaryDirectory(prefix="respool-demo-") as tmp:
        path = Path(tmp) / "demo.db"
        create_schema(path)
        threads = [
            threading.Thread(
                target=run_lane,
                args=(lane, path, done),
                name=f"respool-demo-{lane.spec.name}",
                daemon=True,
            )
            for lane in lanes
            if not lane.skipped
        ]
        for thread in threads:
            thread.start()
        try:
            while any(thread.is_alive() for thread in threads):
                for lane in lanes:
                    lane.stats()  # samples the peak
                time.sleep(0.05)
                if time.monotonic() > deadline + GRACE:
                    break
        except KeyboardInterrupt:
            completed = False
            stop.set()
            for thread in threads:
                thread.join(GRACE)
        for lane in lanes:
            if not lane.skipped and lane.finished:
                lane.rows = count_rows(path, lane.spec.name)
    return completed


def main(seconds: float = 6.0, console: Console | None = None) -> int:
    """Run the demo with a live display, print the summary and the checks.

    Returns 0 if every invariant held, 1 if one failed, 130 after Ctrl-C.
    """
    console = console or Console()
    lanes = make_lanes()
    console.print(
        f"respool demo: {len(lanes)} pools of sqlite3 connections, one database file,"
        f" {seconds:g} s (Ctrl-C stops early)"
    )
    start = time.monotonic()
    with capture_pool_log() as log:
        with Live(
            get_renderable=lambda: live_view(lanes, start, seconds, log),
            console=console,
            refresh_per_second=8,
        ):
            completed = run(lanes, seconds)
    if not console.is_terminal:
        console.line()  # Live leaves its last line open when it is not a terminal
    return report(lanes, console, completed=completed)


def report(lanes: list[Lane], console: Console, *, completed: bool = True) -> int:
    """Print the summary and the checks of finished lanes; return the exit status.

    0 if every check held, 1 if one failed, 130 if not ``completed`` (Ctrl-C).
    """
    console.print(summary_table(lanes))
    results = check_lanes(lanes)
    for holds, text in results:
        mark = "ok  " if holds else "FAIL"
        console.print(f"{mark} {text}", markup=False, highlight=False, soft_wrap=True)
    for lane in lanes:
        if lane.skipped:
            console.print(f"skipped {lane.spec.name}: {lane.skipped}", markup=False)
    failed = sum(not holds for holds, _ in results)
    if not completed:
        console.print("interrupted", style="bold yellow")
        return 130
    if failed:
        console.print(f"{failed} of {len(results)} checks failed", style="bold red")
        return 1
    console.print(f"all {len(results)} checks passed", style="bold green", highlight=False)
    return 0
