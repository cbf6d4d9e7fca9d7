"""Exporters of a pool's stats: ``respool.metrics.prometheus`` and ``respool.metrics.otel``.

Each needs its extra (``pip install 'respool[prometheus]'``, ``'respool[otel]'``);
``import respool`` never imports them.  Both read the pool's totals (counters
since it was made, whatever ``stats(reset=True)`` did) when they are
scraped or collected, so they cost the pool nothing between readings.
"""

from __future__ import annotations

from typing import Any

from .._stats import BOUNDS, Histogram, PoolStats

# The acquires by how they ended: (label value, PoolStats field).
ACQUIRES = (
    ("at_once", "acquired_at_once"),
    ("after_waiting", "acquired_after_waiting"),
    ("by_creating", "acquired_by_creating"),
    ("timeout", "timeouts"),
    ("cancelled", "cancelled"),
    ("refused_closed", "refused_closed"),
    ("exhausted", "exhausted"),
)
# The closes by reason: (label value, PoolStats field).
CLOSES = (
    ("recycled", "closed_recycled"),
    ("idle", "closed_idle"),
    ("check_failed", "closed_check_failed"),
    ("reset_failed", "closed_reset_failed"),
    ("discarded", "closed_discarded"),
    ("lost", "lost"),
    ("disposed", "closed_disposed"),
    ("surplus", "closed_surplus"),
)
# The histograms: (PoolStats field, what it times).
HISTOGRAMS = (
    ("wait", "time acquire took, from its call to its resource"),
    ("hold", "time a resource was held, from acquire to release"),
    ("create", "time a successful factory call took"),
    ("check", "time a check call took"),
)
# The exported bucket bounds, in seconds: every other one of the pool's (an
# octave apart), from 2**-16 s (15 microseconds) to 128 s.
EXPORTED = tuple(range(8, len(BOUNDS) - 1, 2))  # indices into BOUNDS
EXPORTED_BOUNDS = tuple(BOUNDS[i] for i in EXPORTED)


def totals(pool: Any) -> PoolStats:
    """The pool's counters since it was made, with its gauges now."""
    stats: PoolStats = pool._state.totals()
    return stats


def cumulative(histogram: Histogram) -> list[int]:
    """The count at or below each of ``EXPORTED_BOUNDS``, then the total."""
    counts, running, at = [], 0, 0
    for i in EXPORTED:
        while at <= i:
            running += histogram.buckets[at]
            at += 1
        counts.append(running)
    counts.append(histogram.count)
    return counts


__all__: list[str] = []
