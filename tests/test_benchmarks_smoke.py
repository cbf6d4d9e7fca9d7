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
        assert kinds == ["floor", "respool", "respool"], (sid, kinds)  # no peer asked for
        assert scenarios[sid]["best_peer"] is None
        for row in rows.values():
            assert row["error"] is None and row["invalid"] is None, (sid, row)
            assert len(row["samples"]) == 1 and row["ops_per_s"] > 0
            assert row["vs_floor"] is not None and row["vs_floor"] > 0
            assert row["vs_best_peer"] is None

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
    assert len(peer_targets) == 10  # scenarios a-e, bare and lease
    assert all(statuses[name] == "SKIP" for name in peer_targets)  # no peer measured
    floor_targets = [name for name in statuses if "vs floor" in name]
    assert len(floor_targets) == 8 and all(statuses[n] != "SKIP" for n in floor_targets)
    for name, status in statuses.items():
        assert f"{status}  {name}" in proc.stdout

    text = doc.read_text()
    assert text.startswith(f"# Performance\n\n{quoted}<!-- results:start -->\n")
    assert text.endswith("<!-- results:end -->\ntail\n")
    assert "stale" not in text
    assert "| Scenario | Pool |" in text and "### Targets" in text


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
