"""Running the demo: the lanes' threads, the live display, the report."""

from __future__ import annotations

import tempfile
import textwrap
import threading
import time
from pathlib import Path

from rich.console import Console
from rich.live import Live

from .display import capture_pool_log, live_view, summary_table
from .invariants import check_lanes
from .lanes import GRACE, LANES, Lane
from .sql import count_rows, create_schema
from .workers import run_lane

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


def check_line(line: str, console: Console) -> str:
    """``line`` wrapped at words to a terminal's width, with a hanging indent.

    Not wrapped when the output is not a terminal (a file, a pipe, CI's log):
    one line per check there, whole.
    """
    if not console.is_terminal:
        return line
    return textwrap.fill(
        line,
        width=console.width,
        subsequent_indent=" " * 5,
        break_long_words=False,
        break_on_hyphens=False,
    )


def report(lanes: list[Lane], console: Console, *, completed: bool = True) -> int:
    """Print the summary and the checks of finished lanes; return the exit status.

    0 if every check held, 1 if one failed, 130 if not ``completed`` (Ctrl-C).
    """
    console.print(summary_table(lanes))
    results = check_lanes(lanes)
    for holds, text in results:
        mark = "ok  " if holds else "FAIL"
        console.print(
            check_line(f"{mark} {text}", console), markup=False, highlight=False, soft_wrap=True
        )
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
