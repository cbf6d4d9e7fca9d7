"""OpenTelemetry metrics for a pool: ``instrument(pool, name="db")``.

Needs ``pip install 'respool[otel]'``.  Instruments follow the semantic
conventions for database client connection pools where they fit, each with
the attribute ``db.client.connection.pool.name`` (``name``):

* ``db.client.connection.count`` ``{connection}``, by
  ``db.client.connection.state`` (``idle``, ``used``);
* ``db.client.connection.max`` and ``db.client.connection.idle.min``
  ``{connection}``: ``pool_size`` and ``min_size``;
* ``db.client.connection.pending_requests`` ``{request}``: callers waiting;
* ``db.client.connection.timeouts`` ``{timeout}``: ``PoolTimeout`` raised;
* with ``metrics=True``, the histograms ``db.client.connection.wait_time``,
  ``db.client.connection.use_time`` and ``db.client.connection.create_time``
  (seconds), and respool's ``respool.check_time``;
* respool's own counters: ``respool.acquires`` ``{acquire}`` by
  ``respool.outcome``, ``respool.closes`` ``{connection}`` by
  ``respool.reason``, ``respool.create_errors`` ``{error}``,
  ``respool.checks`` ``{check}``.

The histograms are recorded at each collection, from what the pool's
buckets gained since the last one: each duration is recorded as its
bucket's geometric middle, so the exported buckets (an octave apart, the
advised boundaries) are exact and the sum is within a bucket's width.
That replay costs the collecting thread about a microsecond per duration.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterable
from typing import Any

try:
    from opentelemetry import metrics
    from opentelemetry.metrics import CallbackOptions, Meter, Observation
except ImportError as exc:  # pragma: no cover  # the extra is in the test extra
    raise ImportError(
        "respool.metrics.otel needs opentelemetry-api: pip install 'respool[otel]'"
    ) from exc

from .._stats import BOUNDS, PoolStats
from .._version import __version__
from . import ACQUIRES, CLOSES, EXPORTED_BOUNDS, totals

POOL_NAME = "db.client.connection.pool.name"
HISTOGRAMS = (  # (PoolStats field, instrument, description)
    ("wait", "db.client.connection.wait_time", "time it took to obtain a connection"),
    ("hold", "db.client.connection.use_time", "time between borrowing and returning"),
    ("create", "db.client.connection.create_time", "time it took to create a connection"),
    ("check", "respool.check_time", "time a check call took"),
)


def _middle(i: int) -> float:
    """A value inside bucket ``i`` of the pool's histograms."""
    upper = BOUNDS[i]
    if i == 0:
        return upper / 2
    lower = BOUNDS[i - 1]
    return lower * 2 if upper == math.inf else math.sqrt(lower * upper)


class Instrumentation:
    """The instruments ``instrument()`` made for one pool (keep it referenced)."""

    def __init__(self, pool: Any, meter: Meter, name: str) -> None:
        self._pool = pool
        self._attributes = {POOL_NAME: name}
        self._lock = threading.Lock()
        self._seen: dict[str, tuple[int, ...]] = {}
        self._histograms = {
            field: meter.create_histogram(
                instrument, "s", description, explicit_bucket_boundaries_advisory=EXPORTED_BOUNDS
            )
            for field, instrument, description in HISTOGRAMS
        }
        self.instruments = [
            meter.create_observable_up_down_counter(
                "db.client.connection.count", [self._count], "{connection}",
                "connections now, by state",
            ),
            meter.create_observable_up_down_counter(
                "db.client.connection.max", [self._gauge("pool_size")], "{connection}",
                "the most connections allowed",
            ),
            meter.create_observable_up_down_counter(
                "db.client.connection.idle.min", [self._gauge("min_size")], "{connection}",
                "the fewest connections an opened pool keeps",
            ),
            meter.create_observable_up_down_counter(
                "db.client.connection.pending_requests", [self._gauge("waiting")], "{request}",
                "callers waiting for a connection",
            ),
            meter.create_observable_counter(
                "db.client.connection.timeouts", [self._gauge("timeouts")], "{timeout}",
                "acquires that timed out",
            ),
            meter.create_observable_counter(
                "respool.acquires", [self._by("respool.outcome", ACQUIRES)], "{acquire}",
                "acquire calls, by how they ended",
            ),
            meter.create_observable_counter(
                "respool.closes", [self._by("respool.reason", CLOSES)], "{connection}",
                "connections closed, by why",
            ),
            meter.create_observable_counter(
                "respool.create_errors", [self._gauge("create_errors")], "{error}",
                "factory calls that raised",
            ),
            meter.create_observable_counter(
                "respool.checks", [self._gauge("checks")], "{check}", "check calls run"
            ),
        ]  # fmt: skip

    def _read(self) -> PoolStats:
        """The pool's totals; record what the histograms gained since the last reading."""
        stats = totals(self._pool)
        with self._lock:
            for field, histogram in self._histograms.items():
                reading = getattr(stats, field)
                if reading is None:
                    continue
                before = self._seen.get(field, (0,) * len(reading.buckets))
                self._seen[field] = reading.buckets
                for i, (now, then) in enumerate(zip(reading.buckets, before, strict=True)):
                    if now > then:
                        value = _middle(i)
                        for _ in range(now - then):
                            histogram.record(value, self._attributes)
        return stats

    def _count(self, options: CallbackOptions) -> Iterable[Observation]:
        stats = self._read()  # the histograms are recorded here, once per collection
        idle = {**self._attributes, "db.client.connection.state": "idle"}
        used = {**self._attributes, "db.client.connection.state": "used"}
        return [Observation(stats.idle, idle), Observation(stats.leased, used)]

    def _gauge(self, field: str) -> Any:
        def observe(options: CallbackOptions) -> Iterable[Observation]:
            return [Observation(getattr(totals(self._pool), field), self._attributes)]

        return observe

    def _by(self, key: str, fields: tuple[tuple[str, str], ...]) -> Any:
        def observe(options: CallbackOptions) -> Iterable[Observation]:
            stats = totals(self._pool)
            return [
                Observation(getattr(stats, field), {**self._attributes, key: value})
                for value, field in fields
            ]

        return observe


def instrument(pool: Any, meter: Meter | None = None, name: str = "db") -> Instrumentation:
    """Report ``pool``'s gauges, counters and histograms through ``meter``.

    ``meter``: the default is the global meter provider's meter ``respool``.
    ``name``: the value of ``db.client.connection.pool.name``.  Returns the
    instruments' holder; keep it as long as the pool is reported.
    """
    if meter is None:
        meter = metrics.get_meter("respool", __version__)
    return Instrumentation(pool, meter, name)
