"""What the demo shows: the live view, the pools' log, and the summary table."""

from __future__ import annotations

import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable, Iterator

from rich import box
from rich.columns import Columns
from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from .. import PoolStats
from .lanes import LIVE_WINDOW, Lane


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
