"""A ``prometheus_client`` collector for a pool: ``REGISTRY.register(PoolCollector(pool))``.

Needs ``pip install 'respool[prometheus]'``.  Every metric is named
``respool_*`` and labelled ``pool`` (the collector's ``name``):

* gauges ``respool_size``, ``respool_idle``, ``respool_leased``,
  ``respool_waiting``, ``respool_creating``, ``respool_burst`` and
  ``respool_pool_size``, ``respool_min_size``;
* counters ``respool_acquires_total{outcome=...}`` (``at_once``,
  ``after_waiting``, ``by_creating``, ``timeout``, ``cancelled``,
  ``refused_closed``, ``exhausted``), ``respool_closes_total{reason=...}``
  (``recycled``, ``idle``, ``check_failed``, ``reset_failed``,
  ``discarded``, ``lost``, ``disposed``, ``surplus``),
  ``respool_created_total``, ``respool_create_errors_total``,
  ``respool_close_errors_total``, ``respool_checks_total``;
* with ``metrics=True``, histograms ``respool_wait_seconds``,
  ``respool_hold_seconds``, ``respool_create_seconds`` and
  ``respool_check_seconds``, in buckets an octave apart from 15 microseconds
  to 128 s.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

try:
    from prometheus_client.core import (
        CounterMetricFamily,
        GaugeMetricFamily,
        HistogramMetricFamily,
        Metric,
    )
    from prometheus_client.registry import Collector
except ImportError as exc:  # pragma: no cover  # the extra is in the test extra
    raise ImportError(
        "respool.metrics.prometheus needs prometheus_client: pip install 'respool[prometheus]'"
    ) from exc

from . import ACQUIRES, CLOSES, EXPORTED_BOUNDS, HISTOGRAMS, cumulative, totals

GAUGES = (
    ("size", "resources alive: idle, leased, or being closed"),
    ("idle", "resources idle in the pool"),
    ("leased", "resources handed out and not yet released"),
    ("waiting", "callers waiting in acquire"),
    ("creating", "factory calls under way"),
    ("burst", "resources alive above pool_size"),
    ("pool_size", "the most resources the pool keeps alive at once"),
    ("min_size", "the fewest resources an opened pool keeps alive"),
)
COUNTERS = (
    ("created", "created", "resources the factory returned"),
    ("create_errors", "create_errors", "factory calls that raised"),
    ("close_errors", "close_errors", "releaser calls that raised"),
    ("checks", "checks", "check calls run"),
)
_LE = [f"{bound:.10g}" for bound in EXPORTED_BOUNDS] + ["+Inf"]


class PoolCollector(Collector):
    """Reads ``pool``'s stats at each scrape; register it with a registry.

    ``name`` is the value of the ``pool`` label, to tell a process's pools
    apart.  Scrapes read the totals: ``stats(reset=True)`` does not reset
    these counters.
    """

    def __init__(self, pool: Any, name: str = "db") -> None:
        self._pool = pool
        self._name = name

    def collect(self) -> Iterator[Metric]:
        stats = totals(self._pool)
        label = [self._name]
        for field, documentation in GAUGES:
            gauge = GaugeMetricFamily(f"respool_{field}", documentation, labels=["pool"])
            gauge.add_metric(label, getattr(stats, field))
            yield gauge
        acquires = CounterMetricFamily(
            "respool_acquires", "acquire calls, by how they ended", labels=["pool", "outcome"]
        )
        for outcome, field in ACQUIRES:
            acquires.add_metric([self._name, outcome], getattr(stats, field))
        yield acquires
        closes = CounterMetricFamily(
            "respool_closes", "resources closed, by why", labels=["pool", "reason"]
        )
        for reason, field in CLOSES:
            closes.add_metric([self._name, reason], getattr(stats, field))
        yield closes
        for metric, field, documentation in COUNTERS:
            counter = CounterMetricFamily(f"respool_{metric}", documentation, labels=["pool"])
            counter.add_metric(label, getattr(stats, field))
            yield counter
        for field, documentation in HISTOGRAMS:
            histogram = getattr(stats, field)
            if histogram is None:  # the pool was made without metrics=True
                continue
            family = HistogramMetricFamily(
                f"respool_{field}_seconds", documentation, labels=["pool"]
            )
            counts = cumulative(histogram)
            family.add_metric(label, list(zip(_LE, counts, strict=True)), histogram.sum)
            yield family
