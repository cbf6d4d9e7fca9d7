"""benchmarks/bench.py runs end to end and reports well-formed results.

Only the structure is checked, never a timing: respool and the raw floors
(no optional peer needed), one short round, tiny growth sizes, in a
subprocess with warnings turned into errors.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "benchmarks" / "bench.py"

MAIN = ["a", "b", "c", "d", "e", "f-a", "f-b"]
CONTENDED = ["b", "d", "e", "f-b", "h-wait-asyncio-10", "h-wait-asyncio-20"]
CONTENDED += ["h-wait-threads-10", "h-wait-threads-20"]
WAIT_KEYS = ("wait_p50_us", "wait_p99_us", "wait_max_us")


def test_quick_run_reports_every_scenario_target_and_markdown_block(tmp_path: Path) -> None:
    results_path = tmp_path / "results.json"
    doc = tmp_path / "performance.md"
    quoted = "kept: `<!-- results:start -->` quoted in a sentence is not a marker\n"
    doc.write_text(
        f"# Performance\n\n{quoted}<!-- results:start -->\nstale\n<!-- results:end -->\ntail\n"
    )
    command = [
        sys.executable, "-W", "error", str(BENCH), "--quick", "--pools", "respool,floors",
        "--idle-large", "50", "--waiters", "20", "--memory-resources", "100",
        "--json", str(results_path), "--markdown", str(doc),
    ]  # fmt: skip
    proc = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr

    results = json.loads(results_path.read_text())
    scenarios = {s["id"]: s for s in results["scenarios"]}
    assert [s for s in scenarios if s in MAIN] == MAIN
    for sid in MAIN:
        rows = {r["contender"]: r for r in scenarios[sid]["rows"]}
        kinds = sorted(r["kind"] for r in rows.values())
        # no peer asked for; the contended scenarios measure respool strict FIFO too
        respools = 3 if sid in ("b", "d", "e", "f-b") else 2
        assert kinds == ["floor", *["respool"] * respools], (sid, kinds)
        assert scenarios[sid]["best_peer"] is None
        for row in rows.values():
            assert row["error"] is None and row["invalid"] is None, (sid, row)
            assert len(row["samples"]) == 1 and row["ops_per_s"] > 0
            assert row["vs_floor"] is not None and row["vs_floor"] > 0
            assert row["vs_best_peer"] is None

    for scn in results["scenarios"]:  # the wait pass: contended scenarios only
        assert scn["waited"] == (scn["id"] in CONTENDED), scn["id"]
        for row in scn["rows"]:
            p50, p99, top = (row[k] for k in WAIT_KEYS)
            if not scn["waited"]:
                assert (p50, p99, top, row["wait_rounds"]) == (None, None, None, []), row
                continue
            assert 0 < p50 <= p99 <= top, (scn["id"], row["contender"], p50, p99, top)
            (round_,) = row["wait_rounds"]
            assert round_["n"] > 0 and round_["ops_per_s"] > 0
            share = row["wait_slowest_share"]  # None: too few turns in the window to tell
            assert share is None or 0 <= share <= 1, share
            assert (round_["p50_us"], round_["p99_us"], round_["max_us"]) == (p50, p99, top)
            assert p50 <= row["wait_p99_time_us"] <= top  # weighted by length: toward the max
            assert row["wait_vs_best_peer"] is None  # no peer measured
            assert row["wait_time_vs_best_peer"] is None
            if row["kind"] != "floor":
                assert row["wait_vs_floor"] is not None and row["wait_vs_floor"] > 0

    growth = {g["id"]: g for g in results["growth"]}
    assert sorted(growth) == [
        "h-idle-asyncio",
        "h-idle-threads",
        "h-wait-asyncio",
        "h-wait-threads",
    ]
    assert scenarios["h-idle-asyncio-50"]["pool_size"] == 50
    assert scenarios["h-wait-threads-20"]["callers"] == 30  # pool 10, 20 waiting
    for g in growth.values():
        assert len(g["rows"]) == 3
        assert all(r["ratio"] is not None and r["ratio"] > 0 for r in g["rows"]), g

    memory = {m["contender"]: m for m in results["memory"]}
    assert sorted(memory) == [
        "asyncio-lifoqueue", "queue-lifoqueue", "respool-async", "respool-threads",
    ]  # fmt: skip
    assert all(m["bytes_per_resource"] > 0 for m in memory.values())

    statuses = {t["name"]: t["status"] for t in results["targets"]}
    assert set(statuses.values()) <= {"PASS", "FAIL", "SKIP"}
    peer_targets = [name for name in statuses if "vs best peer" in name]
    assert len(peer_targets) == 13  # scenarios a-e, bare and lease; b, d, e strict FIFO too
    assert all(statuses[name] == "SKIP" for name in peer_targets)  # no peer measured
    floor_targets = [name for name in statuses if "vs floor" in name and "wait" not in name]
    assert len(floor_targets) == 9 and all(statuses[n] != "SKIP" for n in floor_targets)
    by_time = [name for name in statuses if "p99 wait by time vs best barging peer" in name]
    assert len(by_time) == 9 and all(statuses[name] == "SKIP" for name in by_time)
    wait_targets = [name for name in statuses if "p99 wait vs best barging peer" in name]
    assert len(wait_targets) == 9  # scenarios b, d, e: bare, lease and strict FIFO
    assert all(statuses[name] == "SKIP" for name in wait_targets)  # no peer measured
    trio_wait = [name for name in statuses if "p99 wait vs floor (no peer)" in name]
    assert [name[:3] for name in trio_wait] == ["f-b", "f-b", "f-b"]
    assert all(statuses[name] != "SKIP" for name in trio_wait)
    for name, status in statuses.items():
        assert f"{status}  {name}" in proc.stdout

    text = doc.read_text()
    assert text.startswith(f"# Performance\n\n{quoted}<!-- results:start -->\n")
    assert text.endswith("<!-- results:end -->\ntail\n")
    assert "stale" not in text
    assert "| Scenario | Pool |" in text and "### Targets" in text
    assert "### Wait per acquire (contended scenarios)" in text
    assert "| Scenario | Pool | ops/s | wait p50 µs | p99 µs | max µs |" in text
    assert "[w] wait per acquire" in proc.stdout


def test_render_reads_a_results_file_without_the_wait_fields(tmp_path: Path) -> None:
    """An older results.json (no wait pass) still renders, its waits shown as —."""
    results_path = tmp_path / "results.json"
    command = [
        sys.executable, "-W", "error", str(BENCH), "--quick", "--pools", "floors",
        "--idle-large", "50", "--waiters", "20", "--memory-resources", "100",
        "--json", str(results_path),
    ]  # fmt: skip
    proc = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    results = json.loads(results_path.read_text())
    for scn in results["scenarios"]:
        for key in ("waited", "best_wait_peer"):
            del scn[key]
        for row in scn["rows"]:
            for key in [k for k in row if k.startswith("wait_")]:
                del row[key]
    del results["meta"]["wait_seconds"]
    results["targets"] = [t for t in results["targets"] if "wait" not in t["name"]]
    old = tmp_path / "old.json"
    old.write_text(json.dumps(results))
    doc = tmp_path / "performance.md"
    command = [
        sys.executable, "-W", "error", str(BENCH), "--render", str(old),
        "--markdown", str(doc), "--chart", str(tmp_path / "chart.png"),
    ]  # fmt: skip
    proc = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    wait_table = doc.read_text().split("### Wait per acquire (contended scenarios)")[1]
    line = next(x for x in wait_table.splitlines() if x.startswith("| b: asyncio"))
    assert line.endswith("| — | — | — | — | — |  |  |  |"), line  # the floor: no ratio to itself
    assert "[w] wait per acquire" in proc.stdout


def test_loop_pools_benchmark_quick_run_prints_its_table() -> None:
    """benchmarks/loop_pools.py, CPU rows only (no Redis needed): the table's shape."""
    command = [
        sys.executable, "-W", "error", str(ROOT / "benchmarks" / "loop_pools.py"),
        "--quick", "--no-io", "--ops", "50",
    ]  # fmt: skip
    proc = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert "(GIL build)" in lines[0] or "(free-threaded build)" in lines[0]
    assert lines[2] == "| | one loop | loop_count=1 | loop_count=2 | loop_count=4 |"
    (cpu,) = (line for line in lines if line.startswith("| CPU"))
    assert cpu.count("x)") == 4 and "(1.00x)" in cpu


def test_a_wait_percentile_by_time_counts_a_starved_caller_for_its_whole_wait() -> None:
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import report

    waits = sorted([1.0] * 999 + [1000.0])  # one caller starved, 999 quick turns
    assert report.percentile(waits, 0.99) == 1.0  # per acquire: the starved one is 0.1 %
    assert report.time_percentile(waits, 0.99) == 1000.0  # by time: half of all waiting
    assert report.time_percentile([2.0, 2.0, 2.0], 0.99) == 2.0
    assert report.time_percentile([0.0, 0.0], 0.99) == 0.0
