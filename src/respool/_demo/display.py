"""What the demo shows: the live view, the pools' log, and the summary table."""

from __future__ import annotations

import contextlib
import logging
import re
import time
from collections import deque
from collections.abc import Callable, Iterator

from rich import box
from rich.console import Console, ConsoleOptions, Group, RenderableType, RenderResult
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from .. import PoolStats
from .lanes import Lane


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


LOG_ROWS = 4  # terminal rows for the latest log lines, under the table
LOG_INDENT = "  "
_ADDRESS = re.compile(r"<([\w.]+) object at 0x[0-9a-fA-F]+>")


def shorten(line: str) -> str:
    """A log line in fewer words: ``<sqlite3.Connection object at 0x7f...>`` becomes
    ``<sqlite3.Connection>`` (the addresses tell a reader nothing here)."""
    return _ADDRESS.sub(r"<\1>", line)


class LatestLog:
    """The newest log lines that fit in ``rows`` terminal rows, wrapped at words.

    Older lines give way to newer ones; a line is shown whole, except one so
    long that it alone needs more than ``rows`` rows, which ends at a word
    with "...".  Nothing is cut mid-word.
    """

    def __init__(self, lines: list[str], rows: int = LOG_ROWS) -> None:
        self.lines = [shorten(line) for line in lines]
        self.rows = rows

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        width = max(options.max_width - len(LOG_INDENT), 20)
        shown: list[Text] = []
        for line in reversed(self.lines):  # the newest first
            wrapped = list(Text(line).wrap(console, width, overflow="fold"))
            room = self.rows - len(shown)
            if len(wrapped) > room:
                if not shown:  # the newest alone does not fit: its first rows, then "..."
                    shown = self._cut(console, line, width)
                break
            shown = wrapped + shown
        for row in shown:
            yield Text(LOG_INDENT) + row

    def _cut(self, console: Console, line: str, width: int) -> list[Text]:
        words = line.split(" ")
        while words:
            words.pop()
            wrapped = list(Text(" ".join([*words, "..."])).wrap(console, width, overflow="fold"))
            if len(wrapped) <= self.rows:
                return wrapped
        return []


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


LIVE_ROWS = ("size", "idle", "leased", "waiting", "acquired", "timeouts", "broken")


def live_table(lanes: list[Lane]) -> Table:
    """The lanes side by side, one column each: fits an 80x24 terminal."""
    ran = [lane for lane in lanes if not lane.skipped]
    table = Table(box=box.SIMPLE_HEAD, padding=(0, 1), pad_edge=False, show_edge=False)
    table.add_column("")
    for lane in ran:
        table.add_column(lane.spec.name, justify="right")
    stats = [lane.stats() for lane in ran]
    waits = [lane.wait_percentiles() for lane in ran]
    table.add_row(
        "workers / pool_size", *(f"{lane.spec.workers} / {lane.spec.pool_size}" for lane in ran)
    )
    table.add_row(
        "busy",
        *(
            ProgressBar(total=lane.spec.pool_size, completed=s.leased, width=12)
            if s is not None
            else "starting"
            for lane, s in zip(ran, stats, strict=True)
        ),
    )
    for name in LIVE_ROWS:
        table.add_row(name, *(str(getattr(s, name)) if s is not None else "-" for s in stats))
    table.add_row("wait (the pool's histogram)", *("" for _ in ran))
    for i, label in enumerate(("  p50", "  p99")):
        table.add_row(label, *(ms(w[i]) if w is not None else "-" for w in waits))
    table.add_row(
        "SQL ops/s",
        *(f"{(lane.inserts + lane.reads) / max(lane.seconds(), 1e-3):.0f}" for lane in ran),
    )
    return table


def live_view(lanes: list[Lane], start: float, seconds: float, log: PoolLog) -> RenderableType:
    elapsed = min(time.monotonic() - start, seconds)
    header = Table.grid(padding=(0, 1))
    header.add_row(
        Text("respool demo"),
        ProgressBar(total=seconds, completed=elapsed, width=40),
        Text(f"{elapsed:.1f}/{seconds:g} s"),
    )
    skipped = [Text(f"skipped {lane.spec.name}: {lane.skipped}") for lane in lanes if lane.skipped]
    count, latest = log.lines()
    log_text = Text(f"pool log: {count} messages (logger 'respool')")
    return Group(header, live_table(lanes), *skipped, log_text, LatestLog(latest))


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
