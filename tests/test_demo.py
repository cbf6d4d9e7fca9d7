"""``python -m respool demo``: it runs, checks itself, and fails when a check fails.

rich is in the ``test`` extra, so the demo is always tested.
"""

from __future__ import annotations

import io
import subprocess
import sys
from typing import Any

import pytest
from rich.console import Console

from respool import Histogram, PoolStats, __main__, _demo
from respool._demo import display


def test_the_command_runs_without_a_terminal_and_passes_its_checks() -> None:
    # As in CI: output captured (no TTY), so rich prints the last frame only.
    done = subprocess.run(
        [sys.executable, "-m", "respool", "demo", "--seconds", "1"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert "respool demo: summary" in out
    for lane in ("threads:", "asyncio:", "trio:"):
        assert f"ok   {lane} nothing leased, waiting or being created at the end" in out
        assert f"ok   {lane} rows in the database == committed inserts" in out
    assert "FAIL" not in out
    assert out.rstrip().endswith("checks passed")
    assert done.stderr == ""  # the pools' warnings are shown in the display, not logged raw


def test_the_counts_add_up() -> None:
    lanes = _demo.make_lanes()
    assert [lane.spec.name for lane in lanes] == ["threads", "asyncio", "trio"]
    assert _demo.run(lanes, 1.0)
    assert [text for holds, text in _demo.check_lanes(lanes) if not holds] == []
    for lane in lanes:
        s, f = lane.open_stats, lane.final_stats
        assert s is not None and f is not None
        assert lane.spec.pool_size < lane.spec.workers  # contention, by design
        assert lane.acquired > 0 and lane.inserts > 0
        assert lane.rows == lane.inserts
        assert s.leased == s.waiting == s.creating == 0
        assert f.size == 0 and f.created == f.closed >= 1
        assert f.acquired == lane.acquired
        # A Pool check that overran its acquire's deadline also counts as broken.
        known = lane.discards + lane.check_failures
        assert known <= f.broken <= known + f.timeouts
        assert lane.peak_in_use <= lane.spec.pool_size
        assert f.wait is not None and f.wait.count == lane.acquired  # the pool's histogram


def finished_lane(**changes: int) -> _demo.Lane:
    """A lane whose numbers agree, with ``changes`` to its final stats."""
    lane = _demo.Lane(_demo.LANES[0], acquired=10, inserts=7, reads=3, rows=7)
    lane.started, lane.finished = 1.0, 2.0
    stats: dict[str, Any] = dict.fromkeys(PoolStats.__annotations__, 0)
    waits = [0] * len(Histogram.bounds)
    waits[Histogram.bounds.index(2**-10) + 1] = 10  # ten of 1 ms (0.98 ms up to 1.38 ms)
    wait = Histogram(tuple(waits), 10, 0.01, 0.001)
    stats.update(pool_size=4, created=2, closed=2, acquired=10, wait=wait)
    stats.update(dict.fromkeys(("hold", "create", "check"), None))
    lane.open_stats = PoolStats(**{**stats, "size": 2, "idle": 2, "closed": 0})
    lane.final_stats = PoolStats(**{**stats, **changes})
    return lane


def test_report_passes_a_consistent_lane() -> None:
    out = io.StringIO()
    assert _demo.report([finished_lane()], Console(file=out, width=100)) == 0
    assert "all 9 checks passed" in out.getvalue()


@pytest.mark.parametrize(
    ("changes", "failure"),
    [
        ({"leased": 1, "size": 1}, "FAIL threads: dispose() closed every connection"),
        ({"closed": 1}, "FAIL threads: dispose() closed every connection"),
        ({"acquired": 9}, "FAIL threads: the pool counted what the workers saw"),
        ({"broken": 1}, "FAIL threads: broken == discarded + failed check + checks cut short"),
        ({"close_errors": 1}, "FAIL threads: no factory or releaser errors"),
    ],
)
def test_report_fails_when_an_invariant_does_not_hold(
    changes: dict[str, int], failure: str
) -> None:
    out = io.StringIO()
    assert _demo.report([finished_lane(**changes)], Console(file=out, width=100)) == 1
    assert failure in out.getvalue()
    assert "1 of 9 checks failed" in out.getvalue()


def test_report_fails_when_a_worker_failed_or_a_lane_did_not_finish() -> None:
    failed = finished_lane()
    failed.errors.append(RuntimeError("boom"))
    unfinished = _demo.Lane(_demo.LANES[1])
    out = io.StringIO()
    assert _demo.report([failed, unfinished], Console(file=out, width=100)) == 1
    text = out.getvalue()
    assert "FAIL threads: a worker failed: RuntimeError('boom')" in text
    assert "FAIL asyncio: the pool did not finish" in text


def test_without_trio_its_pool_is_skipped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "trio", None)  # import trio now raises ImportError
    lanes = _demo.make_lanes()
    assert [lane.skipped for lane in lanes] == [
        "",
        "",
        'trio is not installed: pip install "respool[demo]"',
    ]


def test_without_rich_the_command_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "rich", None)
    assert __main__.main(["demo"]) == 2
    assert 'pip install "respool[demo]"' in capsys.readouterr().err


@pytest.mark.parametrize("seconds", ["0", "-1", "inf", "nan", "soon"])
def test_seconds_must_be_a_positive_number(
    seconds: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        __main__.main(["demo", "--seconds", seconds])
    assert exit_info.value.code == 2
    assert "--seconds" in capsys.readouterr().err


def test_a_command_is_required(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        __main__.main([])
    assert exit_info.value.code == 2
    assert "demo" in capsys.readouterr().err


def test_the_live_view_fits_an_80x24_terminal() -> None:
    lanes = [finished_lane(), _demo.Lane(_demo.LANES[1]), _demo.Lane(_demo.LANES[2])]
    log = display.PoolLog()
    log.latest.extend(["WARNING " + "word " * 30] * 3)
    out = io.StringIO()
    console = Console(file=out, width=80, height=24)
    console.print(display.live_view(lanes, 0.0, 6.0, log))
    lines = out.getvalue().splitlines()
    assert len(lines) <= 24 - 2  # with the demo's first line, wrapped in two
    assert all(len(line) <= 80 for line in lines)
    text = out.getvalue()
    assert "wait (the pool's histogram)" in text
    assert "1.0 ms" in text  # finished_lane's waits


def test_on_a_terminal_the_checks_wrap_at_words() -> None:
    out = io.StringIO()
    console = Console(file=out, width=80, force_terminal=True, color_system=None)
    assert _demo.report([finished_lane()], console) == 0
    lines = out.getvalue().splitlines()
    assert all(len(line) <= 80 for line in lines)
    checks = [line for line in lines if line.startswith(("ok  ", "     "))]
    assert any(line.startswith("     ") for line in checks)  # a long one, wrapped
    joined = " ".join(line.strip() for line in checks)
    for _, text in _demo.check_lanes([finished_lane()]):
        assert text in joined  # the same words, only broken between them


CHECK_FAILED = (
    "WARNING check failed on <sqlite3.Connection object at 0x7f7bcc0bbb50> "
    "(ProgrammingError('Cannot operate on a closed database.')); closing it"
)


def render_live_view(latest: list[str]) -> list[str]:
    lanes = [finished_lane(), _demo.Lane(_demo.LANES[1]), _demo.Lane(_demo.LANES[2])]
    log = display.PoolLog()
    log.latest.extend(latest)
    out = io.StringIO()
    Console(file=out, width=80, height=24).print(display.live_view(lanes, 0.0, 6.0, log))
    return out.getvalue().splitlines()


def log_rows(lines: list[str]) -> list[str]:
    """The rows under the line "pool log: ...", stripped."""
    start = next(i for i, line in enumerate(lines) if line.startswith("pool log: "))
    return [line.strip() for line in lines[start + 1 :]]


def test_the_pool_log_wraps_at_words_and_shows_the_newest_lines_whole() -> None:
    older = "WARNING dispose: the releaser failed to close <sqlite3.Connection object at 0x1>"
    lines = render_live_view([older, CHECK_FAILED, CHECK_FAILED.replace("closed", "shut")])
    assert all(len(line) <= 80 for line in lines)
    assert len(lines) <= 24 - 2
    rows = log_rows(lines)
    assert 1 < len(rows) <= display.LOG_ROWS
    assert "…" not in "\n".join(lines) and "..." not in " ".join(rows)
    # The two newest, addresses dropped, each whole, broken only between words;
    # the oldest gave way.
    newest = display.shorten(CHECK_FAILED)
    assert " ".join(rows) == f"{newest} {newest.replace('closed', 'shut')}"
    assert "0x7f7bcc0bbb50" not in " ".join(rows)
    assert "<sqlite3.Connection>" in rows[0]


def test_a_log_line_too_long_for_its_rows_ends_at_a_word() -> None:
    words = [f"word{n}" for n in range(100)]
    rows = log_rows(render_live_view([" ".join(words)]))
    assert len(rows) == display.LOG_ROWS
    assert rows[-1].endswith(" ...")
    shown = " ".join(rows).removesuffix(" ...").split(" ")
    assert shown == words[: len(shown)]  # whole words, in order, none cut
