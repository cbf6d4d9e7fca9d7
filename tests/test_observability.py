"""Observability (issue 14), beyond tests/_async/test_metrics.py: the
histogram arithmetic, the outcomes of one face only, and the exporters against
the real ``prometheus_client`` and ``opentelemetry-sdk``.
"""

from __future__ import annotations

import gc
import math
import subprocess
import sys
from typing import Any

import anyio
import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import HistogramDataPoint, InMemoryMetricReader
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from respool import AsyncPool, Pool, PoolTimeout
from respool._metrics import Recorder
from respool._stats import BOUNDS
from respool.metrics import EXPORTED_BOUNDS
from respool.metrics.otel import instrument
from respool.metrics.prometheus import PoolCollector

from ._sync.resources import Resources

# -- the histograms --------------------------------------------------------------------


@pytest.mark.parametrize(
    "seconds", [0.0, 1e-7, 2**-20, 2**-19.9, 1e-3, 0.0015, 1.0, 127.9, 128, 1e6]
)
def test_a_duration_lands_in_the_bucket_that_bounds_it(seconds: float) -> None:
    recorder = Recorder()
    recorder.record(seconds)
    (i,) = [i for i, n in enumerate(recorder.buckets) if n]
    assert (BOUNDS[i - 1] if i else 0.0) <= seconds < BOUNDS[i]


def test_a_negative_duration_counts_as_zero() -> None:
    recorder = Recorder()
    recorder.record(-1.0)  # a clock stepping back
    assert recorder.buckets[0] == 1 and recorder.sum == 0.0 and recorder.max == 0.0


def test_quantiles_are_within_a_bucket_of_the_truth() -> None:
    recorder = Recorder()
    values = [i / 1000 for i in range(1, 1001)]  # 1 ms to 1 s, evenly
    for v in values:
        recorder.record(v)
    h = recorder.read()
    assert h.count == 1000 and h.max == 1.0
    assert math.isclose(h.sum, sum(values))
    for q, truth in [(0.5, 0.5), (0.9, 0.9), (0.99, 0.99)]:
        assert truth / 2**0.5 <= h.quantile(q) <= truth * 2**0.5
    assert h.p50 <= h.p90 <= h.p99 <= h.p999 <= h.max
    assert h.quantile(1.0) == h.max
    assert math.isclose(h.mean, 0.5005)
    assert "p99=" in str(h)
    with pytest.raises(ValueError, match="q must be between 0 and 1"):
        h.quantile(1.5)


def test_an_empty_histogram_reads_zero() -> None:
    h = Recorder().read()
    assert (h.count, h.p50, h.p99, h.max, h.mean) == (0, 0.0, 0.0, 0.0, 0.0)


def test_the_overflow_bucket_reads_its_max() -> None:
    recorder = Recorder()
    recorder.record(500.0)
    assert recorder.read().p50 == 500.0


# -- one face only ------------------------------------------------------------------------


class Thing:
    """A resource nobody else references (``Resources`` keeps a list of its own)."""


async def athing() -> Thing:
    return Thing()


@pytest.mark.anyio
async def test_a_cancelled_acquire_is_counted() -> None:
    pool: AsyncPool[Thing] = AsyncPool(athing, None, pool_size=1)
    held = await pool.acquire()
    with anyio.move_on_after(0.01):
        await pool.acquire()  # waits until cancelled
    stats = pool.stats()
    assert (stats.cancelled, stats.timeouts, stats.acquired) == (1, 0, 1)
    await pool.release(held)
    await pool.dispose()


def test_a_lost_lease_closes_as_lost() -> None:
    pool = Pool(Thing, None, pool_size=1)
    with pytest.warns(ResourceWarning):  # noqa: PT031  # the acquire drops its resource
        pool.acquire()  # dropped at once: garbage-collected while leased
        gc.collect()
    stats = pool.stats()
    assert stats.lost == 1 and stats.closed == 1
    pool.dispose()


# -- Prometheus ------------------------------------------------------------------------------


def scrape(registry: CollectorRegistry) -> dict[str, Any]:
    """Each family by name: its type and its samples as {(name, labels): value}."""
    text = generate_latest(registry).decode()
    return {
        family.name: (
            family.type,
            {(s.name, tuple(sorted(s.labels.items()))): s.value for s in family.samples},
        )
        for family in text_string_to_metric_families(text)
    }


def workload(pool: Pool[Any]) -> None:
    """Two acquires (one creating, one at once), one timeout, one discard."""
    r = pool.acquire()
    pool.release(r)
    r = pool.acquire()
    with pytest.raises(PoolTimeout):
        pool.acquire(timeout=0)
    pool.discard(r)


def test_prometheus_scrape_names_types_labels_and_values() -> None:
    res = Resources()
    pool = res.pool(pool_size=1, metrics=True)
    workload(pool)
    registry = CollectorRegistry()
    registry.register(PoolCollector(pool, name="orders"))
    families = scrape(registry)
    pool_label = ("pool", "orders")
    gauges = {"size": 0, "idle": 0, "leased": 0, "waiting": 0, "creating": 0, "burst": 0}
    for gauge, value in [*gauges.items(), ("pool_size", 1), ("min_size", 0)]:
        kind, samples = families[f"respool_{gauge}"]
        assert kind == "gauge"
        assert samples == {(f"respool_{gauge}", (pool_label,)): value}
    kind, samples = families["respool_acquires"]
    assert kind == "counter"
    by_outcome = {dict(labels)["outcome"]: v for (_, labels), v in samples.items()}
    assert by_outcome == {
        "at_once": 1, "after_waiting": 0, "by_creating": 1, "timeout": 1, "cancelled": 0,
        "refused_closed": 0, "exhausted": 0,
    }  # fmt: skip
    kind, samples = families["respool_closes"]
    by_reason = {dict(labels)["reason"]: v for (_, labels), v in samples.items()}
    assert by_reason["discarded"] == 1 and sum(by_reason.values()) == 1
    assert families["respool_created"][1] == {("respool_created_total", (pool_label,)): 1}
    kind, samples = families["respool_wait_seconds"]
    assert kind == "histogram"
    buckets = {
        dict(labels)["le"]: v for (name, labels), v in samples.items() if name.endswith("_bucket")
    }
    assert len(buckets) == len(EXPORTED_BOUNDS) + 1
    assert buckets["+Inf"] == 2
    assert samples[("respool_wait_seconds_count", (pool_label,))] == 2
    assert list(buckets.values()) == sorted(buckets.values())  # cumulative
    assert ("respool_hold_seconds_sum", (pool_label,)) in families["respool_hold_seconds"][1]
    assert "respool_create_seconds" in families and "respool_check_seconds" in families
    pool.stats(reset=True)  # the exporter's counters never go down
    assert scrape(registry)["respool_created"][1][("respool_created_total", (pool_label,))] == 1
    pool.dispose()


def test_prometheus_without_metrics_has_no_histograms() -> None:
    pool = Resources().pool()
    registry = CollectorRegistry()
    registry.register(PoolCollector(pool))
    families = scrape(registry)
    assert "respool_size" in families and "respool_wait_seconds" not in families
    pool.dispose()


# -- OpenTelemetry -----------------------------------------------------------------------------


def collect(reader: InMemoryMetricReader) -> dict[str, Any]:
    data = reader.get_metrics_data()
    assert data is not None
    return {
        metric.name: metric
        for resource in data.resource_metrics
        for scope in resource.scope_metrics
        for metric in scope.metrics
    }


def points(metric: Any) -> dict[tuple[tuple[str, Any], ...], Any]:
    return {tuple(sorted(p.attributes.items())): p for p in metric.data.data_points}


def test_otel_instrument_names_units_and_values() -> None:
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    res = Resources()
    pool = res.pool(pool_size=1, metrics=True)
    handle = instrument(pool, provider.get_meter("test"), name="orders")
    workload(pool)
    kept = pool.acquire()
    metrics = collect(reader)
    name = ("db.client.connection.pool.name", "orders")
    count = metrics["db.client.connection.count"]
    assert count.unit == "{connection}"
    by_state = {dict(k)["db.client.connection.state"]: p.value for k, p in points(count).items()}
    assert by_state == {"idle": 0, "used": 1}
    assert points(metrics["db.client.connection.max"])[(name,)].value == 1
    assert points(metrics["db.client.connection.pending_requests"])[(name,)].value == 0
    timeouts = metrics["db.client.connection.timeouts"]
    assert timeouts.unit == "{timeout}" and points(timeouts)[(name,)].value == 1
    acquires = {
        dict(k)["respool.outcome"]: p.value for k, p in points(metrics["respool.acquires"]).items()
    }
    assert acquires["by_creating"] == 2 and acquires["at_once"] == 1  # the discard's replacement
    closes = {
        dict(k)["respool.reason"]: p.value for k, p in points(metrics["respool.closes"]).items()
    }
    assert closes["discarded"] == 1
    for instrument_name, count_ in [("db.client.connection.wait_time", 3),
                                    ("db.client.connection.use_time", 2),
                                    ("db.client.connection.create_time", 2)]:  # fmt: skip
        metric = metrics[instrument_name]
        assert metric.unit == "s"
        point = points(metric)[(name,)]
        assert isinstance(point, HistogramDataPoint)
        assert point.count == count_, instrument_name
        assert tuple(point.explicit_bounds) == EXPORTED_BOUNDS
    pool.release(kept)
    metrics = collect(reader)  # cumulative: one more hold
    assert points(metrics["db.client.connection.use_time"])[(name,)].count == 3
    assert handle.instruments
    pool.dispose()


# -- the extras are optional -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("module", "blocked", "extra"),
    [("respool.metrics.prometheus", "prometheus_client", "respool[prometheus]"),
     ("respool.metrics.otel", "opentelemetry", "respool[otel]")],
)  # fmt: skip
def test_an_exporter_without_its_library_names_the_extra(
    module: str, blocked: str, extra: str
) -> None:
    code = f"""
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name == {blocked!r} or name.startswith({blocked!r} + "."):
            raise ImportError("blocked: " + name)
sys.meta_path.insert(0, Block())
import respool
respool.Pool(object, None)
try:
    import {module}
except ImportError as exc:
    print(exc)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert extra in out.stdout, out
