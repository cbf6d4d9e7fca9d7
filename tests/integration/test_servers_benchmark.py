"""benchmarks/servers.py runs end to end against the real servers and reports well-formed results.

Only the structure is checked, never a timing: one ``--quick`` round in a
subprocess with warnings turned into errors.  Without PostgreSQL or Redis the
test skips (fails with ``RESPOOL_REQUIRE_SERVICES=1``), as every integration
test does.  A peer whose package is not installed (SQLAlchemy is in the
``bench`` extra only) is skipped by the script with a note, and its rows and
targets must say so; respool's side always runs.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "servers.py"

DRIVERS = ["psycopg", "psycopg-async", "asyncpg", "redis", "redis-async"]
PEERS = {  # driver: (the peer pools' keys, the module each needs)
    "psycopg": {"psycopg-pool": "psycopg_pool", "sqlalchemy": "sqlalchemy"},
    "psycopg-async": {"psycopg-pool-async": "psycopg_pool"},
    "asyncpg": {"asyncpg-pool": "asyncpg"},
    "redis": {"redis-blocking": "redis"},
    "redis-async": {"redis-blocking-async": "redis"},
}


def installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ImportError:
        return False


def test_quick_run_reports_every_pair_target_and_markdown_block(
    pg_dsn: str, redis_url: str, tmp_path: Path
) -> None:
    results_path = tmp_path / "servers.json"
    doc = tmp_path / "performance.md"
    doc.write_text(
        "# Performance\n\n<!-- results:start -->\nkept\n<!-- results:end -->\n\n"
        "<!-- servers:start -->\nstale\n<!-- servers:end -->\ntail\n"
    )
    env = {**os.environ, "RESPOOL_PG_DSN": pg_dsn, "RESPOOL_REDIS_URL": redis_url}
    command = [
        sys.executable, "-W", "error", str(SCRIPT), "--quick",
        "--json", str(results_path), "--markdown", str(doc),
    ]  # fmt: skip
    proc = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False, env=env)
    assert proc.returncode == 0, proc.stderr

    results = json.loads(results_path.read_text())
    scenarios = {s["id"]: s for s in results["scenarios"]}
    assert list(scenarios) == [f"{d}-{n}" for d in DRIVERS for n in (1, 50)]
    targets = {t["name"]: t for t in results["targets"]}
    for sid, scn in scenarios.items():
        driver = scn["driver"]
        assert (scn["pool_size"], scn["callers"]) == (10, int(sid.rsplit("-", 1)[1]))
        rows = {r["contender"]: r for r in scn["rows"]}
        kinds = [r["kind"] for r in scn["rows"]]
        assert kinds[:2] == ["respool", "noise"], (sid, kinds)
        expected_peers = {k for k, module in PEERS[driver].items() if installed(module)}
        assert set(rows) - {r["contender"] for r in scn["rows"][:2]} == expected_peers, sid
        for row in rows.values():
            assert row["error"] is None, (sid, row)
            assert len(row["samples"]) == 1 and row["ops_per_s"] > 0
            assert 0 < row["p50_ms"] <= row["p99_ms"] <= row["max_ms"], (sid, row)
            assert 0 <= row["slowest_share"] <= 1.0 + 1e-9
            if row["kind"] == "peer":
                assert row["checks"] is None
            else:
                assert len(row["checks"]) == 1
        pairs = {p["other"]: p for p in scn["pairs"]}
        assert set(pairs) == {scn["rows"][1]["contender"], *PEERS[driver]}
        for key, pair in pairs.items():
            measured = key in rows
            assert pair["skipped"] is not measured
            assert (pair["ratio"] is not None) is measured
            assert (pair["p99_ratio"] is not None) is measured
            if pair["kind"] == "peer":
                for what in ("ops/s", "p99"):
                    (target,) = (
                        t for n, t in targets.items()
                        if t["scenario"] == sid and t["other"] == key and t["what"] == what
                    )  # fmt: skip
                    assert target["status"] in (("PASS", "FAIL") if measured else ("SKIP",))
    assert len(targets) == 2 * 2 * sum(len(p) for p in PEERS.values())  # 2 callers, 2 targets
    for name, target in targets.items():
        assert f"{target['status']}  {name}" in proc.stdout
    for module in ("psycopg_pool", "sqlalchemy"):
        skipped = any(module in note for note in results["meta"]["notes"])
        assert skipped is not installed(module)
    assert results["noise"]["ops_worst"] >= 0 and results["noise"]["p99_worst"] >= 0
    assert "noise (respool against a second respool pool" in proc.stdout

    text = doc.read_text()
    assert text.startswith("# Performance\n\n<!-- results:start -->\nkept\n<!-- results:end -->")
    assert text.endswith("<!-- servers:end -->\ntail\n")
    assert "stale" not in text
    assert "| Scenario | Pool | ops/s |" in text and "respool/this p99" in text
    assert "- PASS  " in text or "- FAIL  " in text
