"""Render benchmark results: a text table, a markdown block, a bar chart."""

from __future__ import annotations

import os
import platform
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

START = "<!-- results:start -->"
END = "<!-- results:end -->"


def percentile(ordered: Sequence[float], q: float) -> float:
    """The ``q`` quantile (0-1) of sorted values, nearest rank: no interpolation."""
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


def time_percentile(ordered: Sequence[float], q: float) -> float:
    """The ``q`` quantile of sorted waits weighted by their length: the wait that a
    caller looked at in a random moment of waiting is in.  A caller starved for the
    whole window is one sample of a per-acquire percentile, but most of the time."""
    total = sum(ordered)
    if not total:
        return 0.0
    running = 0.0
    for value in ordered:
        running += value
        if running >= q * total:
            return value
    return ordered[-1]  # pragma: no cover  # rounding: the sum reaches q * total above


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

NONE = "—"  # a value this run did not measure (or an older results file does not have)


def _us(value: float | None) -> str:
    if value is None:
        return NONE
    return f"{value:.1f}" if value < 10 else f"{value:,.0f}"


def _ratio(value: float | None) -> str:
    if value is None:
        return NONE
    return f"{value:.2f}x" if value >= 0.1 else f"{value:.3f}x"


def _share(value: float | None) -> str:
    return NONE if value is None else f"{value:.2f}"


def _took(meta: dict[str, Any]) -> str:
    """The run's time, and the wait pass's part of it (older results files: no part)."""
    wait = meta.get("wait_seconds")
    return f"{meta['bench_seconds']:.0f} s" + (
        f" ({wait:.0f} s of it the wait pass)" if wait else ""
    )


WAIT_HEAD = [
    "Scenario",
    "Pool",
    "ops/s",
    "wait p50 µs",
    "p99 µs",
    "max µs",
    "p99 by time µs",
    "slowest caller",
    "p99 / best peer's",
    "p99 by time / best peer's",
    "p99 / floor's",
]


def _waited(results: dict[str, Any]) -> list[dict[str, Any]]:
    """The contended scenarios (several callers), those a wait pass covers."""
    return [s for s in results["scenarios"] if s.get("waited", s["callers"] > 1)]


def _wait_rows(scn: dict[str, Any], bold: bool = False) -> list[list[str]]:
    """A scenario's rows of the wait table, its first cell the scenario (first row only)."""
    rows = []
    for i, r in enumerate(scn["rows"]):
        respool = r["kind"] == "respool"
        label = f"**{r['label']}**" if bold and respool else r["label"]
        rows.append(
            [
                f"{scn['id']}: {scn['title']}" if i == 0 else "",
                label,
                _ops(r["ops_per_s"]),
                _us(r.get("wait_p50_us")),
                _us(r.get("wait_p99_us")),
                _us(r.get("wait_max_us")),
                _us(r.get("wait_p99_time_us")),
                _share(r.get("wait_slowest_share")),
                _ratio(r.get("wait_vs_best_peer")) if respool else "",
                _ratio(r.get("wait_time_vs_best_peer")) if respool else "",
                _ratio(r.get("wait_vs_floor")) if r["kind"] != "floor" else "",
            ]
        )
    return rows


def _table(head: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(head)]
    left = ("Pool", "API", "note", "Growth", "Scenario")
    right = {i for i, h in enumerate(head) if h not in left}

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
        f"{meta['config']['rounds']} round(s), medians; {_took(meta)}",
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
    if _waited(results):
        lines += ["", "[w] wait per acquire, contended scenarios (own pass; medians; µs)"]
        for scn in _waited(results):
            lines += ["", f"  {scn['id']}: {scn['title']}"]
            lines += _table(WAIT_HEAD[1:], [r[1:] for r in _wait_rows(scn)])
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
    if t["lower_is_better"] and t.get("unit") == "x":
        sign = "<=" if t["status"] == "PASS" else ">"
        measured = f"{t['value']:.2f}x {sign} {t['threshold']:.1f}x; {t['detail']}"
    elif t["lower_is_better"]:
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
                *WAIT_HEAD[2:],
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
        f"{_took(meta)}.",
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
    if _waited(results):
        lines += [
            "",
            "### Wait per acquire (contended scenarios)",
            "",
            "From calling `acquire()` (or entering `lease()`) to holding the resource, in "
            "µs, in a pass of its own (see *What is measured*): the median over rounds of "
            "each round's p50 and p99, and the largest max. ops/s is the throughput "
            "pass's. *slowest caller* is the fewest acquires any one caller completed in "
            "the window, over the mean (median over rounds): 0.00 is a caller that got "
            "nothing, whose whole wait is one sample; — where the window is under 4 acquires "
            "per caller (5,000 waiters). *p99 / best peer's* divides by the "
            "lowest p99 of the peers; *p99 / floor's* by the bare queue's.",
            "",
        ]
        lines += _md_table(
            WAIT_HEAD, [row for scn in _waited(results) for row in _wait_rows(scn, bold=True)]
        )
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


def update_markdown(path: Path, block: str, start: str = START, end: str = END) -> None:
    """Rewrite what lies between the markers in ``path`` (appended if absent).

    The markers are the results block's unless ``start`` and ``end`` name
    others (``benchmarks/servers.py`` has its own).  Each marker must stand
    on a line of its own, once: a marker quoted inside a sentence or a table
    is left alone.
    """
    old = path.read_text() if path.exists() else ""
    lines = old.splitlines(keepends=True)
    starts = [i for i, line in enumerate(lines) if line.strip() == start]
    ends = [i for i, line in enumerate(lines) if line.strip() == end]
    fresh = f"{start}\n{block}\n{end}\n"
    if not starts and not ends:
        new = (old.rstrip() + "\n\n" if old else "") + fresh
    elif len(starts) == 1 and len(ends) == 1 and starts[0] < ends[0]:
        new = "".join(lines[: starts[0]]) + fresh + "".join(lines[ends[0] + 1 :])
    else:
        raise ValueError(
            f"{path}: expected one {start} line before one {end} line, "
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
    "respool-async-strict": "#0d2a57",
    "respool-threads-strict": "#0d2a57",
    "respool-trio-strict": "#0d2a57",
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
    "respool-async-strict": "respool strict FIFO (fairness_window=0)",
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
    "respool-threads-strict": "respool-async-strict",
    "respool-trio-strict": "respool-async-strict",
    "escudeiro-threads": "escudeiro-async",
    "gcp-threads": "gcp-async",
    "queue-lifoqueue": "asyncio-lifoqueue",
    "trio-channel": "asyncio-lifoqueue",
}


# The chart is shown at the width of the docs' content column (about 7.5 in), so it is
# drawn that wide, with no text under 9 pt at that size.
FIG_WIDTH = 7.5
MIN_FONT = 9
FONT = 10


def _growth_rows(results: dict[str, Any]) -> list[tuple[str, list[tuple[str, float, str]]]]:
    """Growth groups as (title, [(short pool label, ratio, colour)]), empty ones left out."""
    groups = []
    for g in results["growth"]:
        rows = [
            (LEGEND[SAME.get(r["contender"], r["contender"])], r["ratio"], COLORS[r["contender"]])
            for r in g["rows"]
            if r["ratio"] is not None
        ]
        if rows:
            groups.append((g["title"], rows))
    return groups


def chart(results: dict[str, Any], path: Path) -> str | None:
    """Draw the chart; return why not if matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "skipped the chart: matplotlib is not installed (pip install -e '.[bench]')"

    main = [s for s in results["scenarios"] if s["group"] == "main"]
    growth = _growth_rows(results)
    mem = [m for m in results["memory"] if m["bytes_per_resource"] is not None]
    # The scenarios in two rows of bars, so each respool bar has room for its label.
    per_row = -(-len(main) // 2) if len(main) > 4 else max(len(main), 1)
    bar_rows = [main[i : i + per_row] for i in range(0, len(main), per_row)] or [[]]
    growth_slots = sum(len(rows) + 1 for _, rows in growth)  # a header slot per group
    waits = _wait_chart_scenarios(results)
    heights = [
        1.6 + 3.3 * len(bar_rows),
        *([1.0 + 3.3] if waits else []),  # old results files have no waits: no panel
        0.7 + 0.27 * max(growth_slots, 4),
        0.7 + 0.27 * max(len(mem), 3),
    ]
    with plt.rc_context({"font.size": FONT, "legend.fontsize": MIN_FONT}):
        fig = plt.figure(figsize=(FIG_WIDTH, sum(heights) + 0.4), layout="constrained")
        top, *wait, mid, bottom = fig.subfigures(len(heights), 1, height_ratios=heights)
        _throughput_panel(top, bar_rows, per_row)
        if waits:
            _wait_panel(wait[0].subplots(), waits)
        _growth_panel(mid.subplots(), growth)
        _memory_panel(bottom.subplots(), mem, results["meta"]["config"]["memory_resources"])
        meta = results["meta"]
        m = meta["machine"]
        fig.suptitle(
            f"respool benchmark - Python {m['python']}, {m['cpus']} CPUs, "
            f"commit {m['commit'] or '?'}, {meta['date'][:10]}",
            fontsize=12,
            weight="bold",
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=150)
        plt.close(fig)
    return None


def _throughput_panel(sub: Any, bar_rows: list[list[dict[str, Any]]], per_row: int) -> None:
    axes = sub.subplots(len(bar_rows), 1, sharey=True, squeeze=False)[:, 0]
    width = 0.12
    seen: set[str] = set()
    handles = []
    for ax, scenarios in zip(axes, bar_rows, strict=True):
        ticks = []
        for gi, scn in enumerate(scenarios):
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
                    label=LEGEND[key],
                )
                if key not in seen:
                    handles.append(bar)
                seen.add(key)
                ratio = r["vs_best_peer"] or r["vs_floor"]
                if r["kind"] == "respool" and ratio:
                    mark = "" if r["vs_best_peer"] else " fl"
                    ax.annotate(
                        f"{ratio:.2f}x{mark}",
                        (bar[0].get_x() + width / 2, r["ops_per_s"]),
                        ha="center",
                        va="bottom",
                        fontsize=MIN_FONT,
                        rotation=90,
                        xytext=(0, 2),
                        textcoords="offset points",
                    )
        ax.set_yscale("log")
        ax.set_xticks(range(len(scenarios)), ticks, fontsize=MIN_FONT)
        ax.set_xlim(-0.5, per_row - 0.5)
        ax.grid(axis="y", which="both", alpha=0.3)
    axes[0].set_ylim(top=axes[0].get_ylim()[1] * 3)
    sub.supylabel("ops/s (log scale; one op = acquire + release)", fontsize=FONT)
    sub.suptitle(
        "Throughput per scenario (median of rounds). Labels: respool / best peer,\n"
        'or / floor ("fl") where no peer runs; hatched: pool broke its size or failed',
        fontsize=FONT,
    )
    axes[0].legend(
        handles=handles,
        ncol=2,
        loc="lower center",
        bbox_to_anchor=(0.5, 1.02),
        columnspacing=1.2,
        borderaxespad=0,
    )


def _wait_chart_scenarios(results: dict[str, Any]) -> list[dict[str, Any]]:
    """The contended main scenarios and the growth cases with many waiters, with waits."""
    by_id = {s["id"]: s for s in results["scenarios"]}
    chosen = [s for s in _waited(results) if s["group"] == "main"]
    chosen += [by_id[g["large"]] for g in results["growth"] if g["id"].startswith("h-wait")]
    return [s for s in chosen if any(r.get("wait_p99_us") for r in s["rows"])]


def _wait_panel(ax: Any, scenarios: list[dict[str, Any]]) -> None:
    width = 0.12
    ticks = []
    tops: list[tuple[float, float]] = []  # (x, max) of each bar
    for gi, scn in enumerate(scenarios):
        rows = [r for r in scn["rows"] if r.get("wait_p99_us")]
        start = gi - width * (len(rows) - 1) / 2
        first, *rest = scn["title"].split(", ")
        name = scn["id"] if scn["group"] == "main" else "h-wait"
        ticks.append("\n".join([f"{name}: {first}", *rest]))
        for ri, r in enumerate(rows):
            hatch = "//" if (r["invalid"] or r["error"]) else None
            bar = ax.bar(
                start + ri * width,
                r["wait_p99_us"],
                width,
                color=COLORS[r["contender"]],
                hatch=hatch,
                edgecolor="white" if hatch else None,
            )
            if r.get("wait_max_us"):
                tops.append((start + ri * width, r["wait_max_us"]))
            ratio = r.get("wait_vs_best_peer") or r.get("wait_vs_floor")
            if r["kind"] == "respool" and ratio:
                mark = "" if r.get("wait_vs_best_peer") else " fl"
                ax.annotate(
                    f"{ratio:.2f}x{mark}" if ratio >= 0.1 else f"{ratio:.3f}x{mark}",
                    (bar[0].get_x() + width / 2, max(r["wait_p99_us"], r.get("wait_max_us") or 0)),
                    ha="center",
                    va="bottom",
                    fontsize=MIN_FONT,
                    rotation=90,
                    xytext=(0, 4),
                    textcoords="offset points",
                )
    if tops:
        xs, ys = zip(*tops, strict=True)
        ax.scatter(xs, ys, marker="_", s=60, color="black", linewidths=1.5, label="max", zorder=3)
        ax.legend(loc="upper left")
    ax.set_yscale("log")
    ax.set_xticks(range(len(scenarios)), ticks, fontsize=MIN_FONT)
    ax.set_xlim(-0.5, len(scenarios) - 0.5)
    ax.set_ylim(top=ax.get_ylim()[1] * 8)
    ax.grid(axis="y", which="both", alpha=0.3)
    ax.set_ylabel("p99 wait, µs (log scale)")
    ax.set_title(
        "p99 wait per acquire, contended scenarios (own pass; lower is better); dashes: max.\n"
        'Labels (above the max): respool / the peers\' lowest p99, or / floor ("fl")',
        fontsize=FONT,
    )


def _growth_panel(ax: Any, growth: list[tuple[str, list[tuple[str, float, str]]]]) -> None:
    ax.set_title("Growth: throughput with many idle / many waiting, over few", fontsize=FONT)
    if not growth:
        return
    ys, labels, values, colors = [], [], [], []
    y = 0
    for title, rows in growth:
        ax.text(
            0.005,
            y,
            title,
            transform=ax.get_yaxis_transform(),
            va="center",
            weight="bold",
            bbox={"facecolor": "white", "edgecolor": "none", "pad": 1},
        )
        y += 1
        for label, ratio, colour in rows:
            ys.append(y)
            labels.append(label)
            values.append(ratio)
            colors.append(colour)
            y += 1
    ax.barh(ys, values, color=colors)
    ax.set_yticks(ys, labels, fontsize=MIN_FONT)
    ax.set_ylim(y - 0.4, -0.6)
    ax.axvline(0.8, color="black", linestyle="--", linewidth=1, label="target 0.8")
    ax.axvline(1.0, color="gray", linewidth=0.8)
    for yy, value in zip(ys, values, strict=True):
        ax.annotate(
            f"{value:.2f}",
            (value, yy),
            va="center",
            fontsize=MIN_FONT,
            xytext=(3, 0),
            textcoords="offset points",
        )
    ax.set_xlim(0, max(1.25, max(values) * 1.2))
    ax.legend(loc="lower right")


def _memory_panel(ax: Any, mem: list[dict[str, Any]], n: int) -> None:
    ax.set_title(f"Bytes per idle pooled resource ({n:,} idle; lower is better)", fontsize=FONT)
    if not mem:
        return
    ax.barh(
        range(len(mem)),
        [m["bytes_per_resource"] for m in mem],
        color=[COLORS[m["contender"]] for m in mem],
    )
    ax.set_yticks(range(len(mem)), [m["label"] for m in mem], fontsize=MIN_FONT)
    ax.invert_yaxis()
    for i, m in enumerate(mem):
        ax.annotate(
            f"{m['bytes_per_resource']:.0f} B",
            (m["bytes_per_resource"], i),
            va="center",
            fontsize=MIN_FONT,
            xytext=(3, 0),
            textcoords="offset points",
        )
    ax.set_xlim(0, max(m["bytes_per_resource"] for m in mem) * 1.18)


def machine(root: Path, *, load: bool = False) -> dict[str, Any]:
    """What a run was measured on: Python, CPU, the commit, and (``load``) the load average."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=root,
            capture_output=True,
            text=True,
            check=False,
            timeout=5,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = ""
    found: dict[str, Any] = {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "cpu": cpu,
        "cpus": os.cpu_count(),
        "commit": commit,
    }
    if load:
        try:
            found["load_average"] = [round(x, 2) for x in os.getloadavg()]
        except OSError:
            found["load_average"] = []
    return found
