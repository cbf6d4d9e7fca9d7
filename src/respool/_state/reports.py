"""What a pool's state says about itself: its stats, and the facts of a timeout.

Caller holds the pool's lock for both.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .._errors import TimeoutFacts
from .._stats import PoolStats

if TYPE_CHECKING:
    from .ledger import Ledger


def snapshot(ledger: Ledger[Any]) -> PoolStats:
    """The pool's gauges and counters, now."""
    line = ledger.line
    size = ledger.slots - ledger.creating
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
