"""The stats the models predict: the breakdowns by outcome and reason zeroed.

The models count acquires, closes and the older counters; what each breaks
down into (``acquired_at_once``, ``closed_idle``...) is checked by
tests/_async/test_metrics.py against scripted workloads instead.
"""

from __future__ import annotations

import attrs

from respool import PoolStats
from respool._stats import COUNTERS

BREAKDOWN = COUNTERS[COUNTERS.index("acquired_at_once") :]


def coarse(stats: PoolStats) -> PoolStats:
    return attrs.evolve(stats, **dict.fromkeys(BREAKDOWN, 0))
