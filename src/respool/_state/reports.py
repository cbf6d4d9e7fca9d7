"""What a pool's state says about itself: its stats, and the facts of a timeout.

Caller holds the pool's lock for both.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .._errors import TimeoutFacts
from .._stats import PoolStats
from .records import CHECK_FAILED, DISCARDED, DISPOSED, IDLE, RECYCLED, RESET_FAILED, SURPLUS

if TYPE_CHECKING:
    from .ledger import Ledger


def snapshot(ledger: Ledger[Any]) -> PoolStats:
    """The pool's gauges and counters, now."""
    line = ledger.line
    size = ledger.slots - ledger.creating
    closes, metrics = ledger.closes, ledger.metrics
    return PoolStats(
        pool_size=ledger.limit,
        size=size,
        idle=len(ledger.idle),
        leased=ledger.leased,
        creating=ledger.creating,
        waiting=line.waiting - line.creators,
        created=ledger.created,
        closed=ledger.closed_count,
        acquired=ledger.acquired,
        timeouts=ledger.timeouts,
        create_errors=ledger.create_errors,
        close_errors=ledger.close_errors,
        broken=ledger.broken,
        lost=ledger.lost_count,
        min_size=ledger.min_size,
        burst=max(0, size - ledger.limit),
        exhausted=ledger.exhausted,
        acquired_at_once=ledger.acquired - ledger.waited - ledger.made_for,
        acquired_after_waiting=ledger.waited,
        acquired_by_creating=ledger.made_for,
        cancelled=ledger.cancelled,
        refused_closed=ledger.refused,
        checks=ledger.checks,
        closed_recycled=closes[RECYCLED],
        closed_idle=closes[IDLE],
        closed_check_failed=closes[CHECK_FAILED],
        closed_reset_failed=closes[RESET_FAILED],
        closed_discarded=closes[DISCARDED],
        closed_disposed=closes[DISPOSED],
        closed_surplus=closes[SURPLUS],
        wait=None if metrics is None else metrics.wait.read(ledger.acquired - ledger.served),
        hold=None if metrics is None else metrics.hold.read(),
        create=None if metrics is None else metrics.create.read(),
        check=None if metrics is None else metrics.check.read(),
    )


def facts(ledger: Ledger[Any]) -> TimeoutFacts:
    """What a ``PoolTimeout`` will say, as its caller gives up."""
    now = ledger.clock()
    leases = None
    if ledger.leaks is not None:
        leases = ledger.leaks.overdue_leases(ledger.alive.values(), now)
    return TimeoutFacts(
        snapshot(ledger), ledger.last_error, now - ledger.last_error_at, leases,
        ledger.backoff.failures > 0,
    )  # fmt: skip
