"""The checks a finished lane must pass."""

from __future__ import annotations

from .lanes import GRACE, Lane

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
