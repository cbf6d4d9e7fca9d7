"""Render benchmark results: a text table, a markdown block, a bar chart."""

from __future__ import annotations

from pathlib import Path
from typing import Any

START = "<!-- results:start -->"
END = "<!-- results:end -->"


def _ops(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


def _x(value: float | None) -> str:
    return "" if value is None else f"{value:.2f}x"


def _spread(samples: list[float]) -> str:
    if len(samples) < 2:
        return ""
    mid = sorted(samples)[len(samples) // 2]
    return f"±{(max(samples) - min(samples)) / 2 / mid * 100:.0f}%"


def _status(row: dict[str, Any]) -> str:
    if row["error"]:
        return f"error: {row['error']}"
    if row["invalid"]:
        return f"not counted: {row['invalid']}"
    return ""


def _row_cells(row: dict[str, Any]) -> list[str]:
    respool = row["kind"] == "respool"
    return [
        row["label"],
        row["api"],
        _ops(row["ops_per_s"]),
        _spread(row["samples"]),
        _x(row["vs_best_peer"]) if respool else "",
        _x(row["vs_floor"]),
        _status(row),
    ]


MAIN_HEAD = ["Pool", "API", "ops/s", "spread", "vs best peer", "vs floor", "note"]


def _table(head: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(head)]
    right = {i for i, h in enumerate(head) if h not in ("Pool", "API", "note", "Growth")}

    def fmt(cells: list[str]) -> str:
        parts = [
            c.rjust(w) if i in right else c.ljust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ]
        return "  " + "  ".join(parts).rstrip()

    return [fmt(head), "  " + "  ".join("-" * w for w in widths), *map(fmt, rows)]


def text(results: dict[str, Any]) -> str:
    meta = results["meta"]
    m = meta["machine"]
    lines = [
        f"respool benchmark: Python {m['python']} on {m['cpu']} ({m['cpus']} CPUs), "
        f"{meta['config']['rounds']} round(s), medians; {meta['bench_seconds']}s",
    ]
    lines += [f"  note: {n}" for n in meta["notes"]]
    for scn in results["scenarios"]:
        if scn["group"] != "main":
            continue
        lines += ["", f"[{scn['id']}] {scn['title']}"]
        lines += _table(MAIN_HEAD, [_row_cells(r) for r in scn["rows"]])
    if results["growth"]:
        lines += ["", "[h] growth (large / small throughput)"]
        rows = [
            [
                g["title"],
                r["label"],
                _ops(r["small"]),
                _ops(r["large"]),
                _x(r["ratio"]),
                r["error"] or "",
            ]
            for g in results["growth"]
            for r in g["rows"]
        ]
        lines += _table(["Growth", "Pool", "small ops/s", "large ops/s", "ratio", "note"], rows)
    if results["memory"]:
        n = results["meta"]["config"]["memory_resources"]
        lines += ["", f"[i] memory per idle resource ({n:,} idle, tracemalloc)"]
        rows = [
            [m["label"], m["library"], _bytes(m["bytes_per_resource"]), m["error"] or ""]
            for m in results["memory"]
        ]
        lines += _table(["Pool", "API", "bytes", "note"], rows)
    lines += ["", "targets"]
    lines += [f"  {_target_line(t)}" for t in results["targets"]]
    return "\n".join(lines)


def _bytes(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"


def _target_line(t: dict[str, Any]) -> str:
    if t["status"] == "SKIP":
        return f"SKIP  {t['name']} ({t['detail'] or 'not measured'})"
    if t["lower_is_better"]:
        sign = "<=" if t["status"] == "PASS" else ">"
        measured = f"{t['value']:.0f} {sign} {t['threshold']:.0f} {t['detail']}"
    else:
        sign = ">=" if t["status"] == "PASS" else "<"
        measured = f"{t['value']:.2f}x {sign} {t['threshold']:.1f}x"
        if t["detail"]:
            measured += f"; {t['detail']}"
    return f"{t['status']}  {t['name']}: {measured}"


# -- markdown ------------------------------------------------------------------------


def _md_table(head: list[str], rows: list[list[str]]) -> list[str]:
    out = ["| " + " | ".join(head) + " |"]
    out.append(
        "|"
        + "|".join(
            "---:"
            if h
            in (
                "ops/s",
                "spread",
                "vs best peer",
                "vs floor",
                "small ops/s",
                "large ops/s",
                "ratio",
                "bytes",
            )
            else "---"
            for h in head
        )
        + "|"
    )
    out += ["| " + " | ".join(c.replace("|", "\\|") for c in r) + " |" for r in rows]
    return out


def markdown(results: dict[str, Any]) -> str:
    meta = results["meta"]
    m = meta["machine"]
    v = meta["versions"]
    lines = [
        f"Measured {meta['date']} at commit `{m['commit'] or 'unknown'}`: Python {m['python']} "
        f"({m['implementation']}) on {m['cpu']}, {m['cpus']} CPUs, {m['platform']}; "
        f"{meta['config']['rounds']} interleaved rounds, medians; the run took "
        f"{meta['bench_seconds']:.0f} s.",
        "",
        "Versions: " + ", ".join(f"{k} {val}" for k, val in v.items()) + ".",
    ]
    lines += [f"\n*{n}*" for n in meta["notes"]]
    lines += ["", "### Throughput (ops/s; one op = one acquire + release)", ""]
    rows = []
    for scn in results["scenarios"]:
        if scn["group"] != "main":
            continue
        for i, r in enumerate(scn["rows"]):
            label = f"**{r['label']}**" if r["kind"] == "respool" else r["label"]
            cells = _row_cells(r)
            cells[0] = label
            rows.append([f"{scn['id']}: {scn['title']}" if i == 0 else "", *cells])
    lines += _md_table(["Scenario", *MAIN_HEAD], rows)
    if results["growth"]:
        lines += ["", "### Growth (throughput with many idle / many waiting, over few)", ""]
        rows = [
            [g["title"], r["label"], _ops(r["small"]), _ops(r["large"]), _x(r["ratio"])]
            for g in results["growth"]
            for r in g["rows"]
        ]
        lines += _md_table(["Growth", "Pool", "small ops/s", "large ops/s", "ratio"], rows)
    if results["memory"]:
        n = meta["config"]["memory_resources"]
        lines += ["", f"### Memory per idle resource ({n:,} idle resources, tracemalloc)", ""]
        rows = [
            [x["label"], x["library"], _bytes(x["bytes_per_resource"]), x["error"] or ""]
            for x in results["memory"]
        ]
        lines += _md_table(["Pool", "API", "bytes", "note"], rows)
    lines += ["", "### Targets", ""]
    lines += [f"- {_target_line(t)}" for t in results["targets"]]
    return "\n".join(lines)


def update_markdown(path: Path, block: str) -> None:
    """Rewrite what lies between the results markers in ``path`` (appended if absent).

    Each marker must stand on a line of its own, once: a marker quoted inside
    a sentence or a table is left alone.
    """
    old = path.read_text() if path.exists() else ""
    lines = old.splitlines(keepends=True)
    starts = [i for i, line in enumerate(lines) if line.strip() == START]
    ends = [i for i, line in enumerate(lines) if line.strip() == END]
    fresh = f"{START}\n{block}\n{END}\n"
    if not starts and not ends:
        new = (old.rstrip() + "\n\n" if old else "") + fresh
    elif len(starts) == 1 and len(ends) == 1 and starts[0] < ends[0]:
        new = "".join(lines[: starts[0]]) + fresh + "".join(lines[ends[0] + 1 :])
    else:
        raise ValueError(
            f"{path}: expected one {START} line before one {END} line, "
            f"found {len(starts)} and {len(ends)}"
        )
    path.write_text(new)


# -- chart -----------------------------------------------------------------------------

COLORS = {
    "respool-async": "#1f4e99",
    "respool-threads": "#1f4e99",
    "respool-trio": "#1f4e99",
    "respool-async-lease": "#6b9bd8",
    "respool-threads-lease": "#6b9bd8",
    "respool-trio-lease": "#6b9bd8",
    "escudeiro-async": "#e08a1e",
    "escudeiro-threads": "#e08a1e",
    "acp": "#3c9a3c",
    "gcp-async": "#8e5bb5",
    "gcp-threads": "#8e5bb5",
    "sqlalchemy": "#c23b3b",
    "sqlalchemy-lifo": "#e88c8c",
    "asyncio-lifoqueue": "#9a9a9a",
    "queue-lifoqueue": "#9a9a9a",
    "trio-channel": "#9a9a9a",
}
LEGEND = {
    "respool-async": "respool acquire/release",
    "respool-async-lease": "respool lease()",
    "escudeiro-async": "escudeiro",
    "acp": "asyncio-connection-pool",
    "gcp-async": "generic-connection-pool",
    "sqlalchemy": "SQLAlchemy QueuePool",
    "sqlalchemy-lifo": "SQLAlchemy QueuePool lifo",
    "asyncio-lifoqueue": "floor (bare queue/channel)",
}
SAME = {
    "respool-threads": "respool-async",
    "respool-trio": "respool-async",
    "respool-threads-lease": "respool-async-lease",
    "respool-trio-lease": "respool-async-lease",
    "escudeiro-threads": "escudeiro-async",
    "gcp-threads": "gcp-async",
    "queue-lifoqueue": "asyncio-lifoqueue",
    "trio-channel": "asyncio-lifoqueue",
}


def chart(results: dict[str, Any], path: Path) -> str | None:
    """Draw the chart; return why not if matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "skipped the chart: matplotlib is not installed (pip install -e '.[bench]')"

    main = [s for s in results["scenarios"] if s["group"] == "main"]
    fig, axes = plt.subplots(3, 1, figsize=(12, 13), gridspec_kw={"height_ratios": [3, 1.6, 1.3]})
    ax = axes[0]
    width = 0.11
    seen: set[str] = set()
    ticks = []
    for gi, scn in enumerate(main):
        rows = [r for r in scn["rows"] if r["ops_per_s"]]
        start = gi - width * (len(rows) - 1) / 2
        first, *rest = scn["title"].split(", ")
        ticks.append("\n".join([f"{scn['id']}: {first}", *rest]))
        for ri, r in enumerate(rows):
            key = SAME.get(r["contender"], r["contender"])
            hatch = "//" if (r["invalid"] or r["error"]) else None
            bar = ax.bar(
                start + ri * width,
                r["ops_per_s"],
                width,
                color=COLORS[r["contender"]],
                hatch=hatch,
                edgecolor="white" if hatch else None,
                label=LEGEND[key] if key not in seen else None,
            )
            seen.add(key)
            ratio = r["vs_best_peer"] or r["vs_floor"]
            if r["kind"] == "respool" and ratio:
                mark = "" if r["vs_best_peer"] else " fl"
                ax.annotate(
                    f"{ratio:.2f}x{mark}",
                    (bar[0].get_x() + width / 2, r["ops_per_s"]),
                    ha="center",
                    va="bottom",
                    fontsize=6.5,
                    rotation=90,
                    xytext=(0, 2),
                    textcoords="offset points",
                )
    ax.set_yscale("log")
    ax.set_xticks(range(len(main)), ticks, fontsize=8)
    ax.set_ylabel("ops/s (log scale; acquire + release)")
    ax.set_title(
        "Throughput per scenario (median of rounds). Labels: respool / best peer, "
        'or / floor ("fl") where no peer runs; hatched: pool broke its size or failed',
        fontsize=10,
    )
    ax.grid(axis="y", which="both", alpha=0.3)
    ax.legend(fontsize=8, ncol=4, loc="upper right")
    ax.set_ylim(top=ax.get_ylim()[1] * 3)

    ax = axes[1]
    labels, values, colors = [], [], []
    for g in results["growth"]:
        for r in g["rows"]:
            if r["ratio"] is None:
                continue
            labels.append(f"{g['title']}\n{r['label']}")
            values.append(r["ratio"])
            colors.append(COLORS[r["contender"]])
    if values:
        ax.barh(range(len(values)), values, color=colors)
        ax.set_yticks(range(len(values)), labels, fontsize=6.5)
        ax.invert_yaxis()
        ax.axvline(0.8, color="black", linestyle="--", linewidth=1, label="target 0.8")
        ax.axvline(1.0, color="gray", linewidth=0.8)
        for i, value in enumerate(values):
            ax.annotate(
                f"{value:.2f}",
                (value, i),
                va="center",
                fontsize=7,
                xytext=(3, 0),
                textcoords="offset points",
            )
        ax.set_xlim(0, max(1.2, max(values) * 1.15))
        ax.legend(fontsize=8, loc="lower right")
    ax.set_title("Growth: throughput with many idle / many waiting over few", fontsize=10)

    ax = axes[2]
    mem = [m for m in results["memory"] if m["bytes_per_resource"] is not None]
    if mem:
        ax.barh(
            range(len(mem)),
            [m["bytes_per_resource"] for m in mem],
            color=[COLORS[m["contender"]] for m in mem],
        )
        ax.set_yticks(range(len(mem)), [m["label"] for m in mem], fontsize=7.5)
        ax.invert_yaxis()
        for i, m in enumerate(mem):
            ax.annotate(
                f"{m['bytes_per_resource']:.0f} B",
                (m["bytes_per_resource"], i),
                va="center",
                fontsize=7,
                xytext=(3, 0),
                textcoords="offset points",
            )
        ax.set_xlim(0, max(m["bytes_per_resource"] for m in mem) * 1.15)
    n = results["meta"]["config"]["memory_resources"]
    ax.set_title(f"Bytes per idle pooled resource ({n:,} idle; lower is better)", fontsize=10)

    meta = results["meta"]
    m = meta["machine"]
    fig.suptitle(
        f"respool benchmark - Python {m['python']}, {m['cpus']} CPUs, "
        f"commit {m['commit'] or '?'}, {meta['date'][:10]}",
        fontsize=11,
    )
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return None
