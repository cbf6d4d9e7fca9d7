"""A snapshot of a pool's state and counters, and its latency histograms."""

from __future__ import annotations

import math

import attrs

# The histograms' fixed, log-spaced buckets: bucket ``i`` counts durations below
# ``BOUNDS[i]`` seconds (and at or above ``BOUNDS[i - 1]``): half an octave apart,
# from 2**-20 s (about 1 microsecond) up to 128 s, then one bucket above.
LOWEST_EXPONENT = -20
HIGHEST_EXPONENT = 7
BUCKETS = 2 * (HIGHEST_EXPONENT - LOWEST_EXPONENT) + 2
BOUNDS: tuple[float, ...] = (
    *(2.0 ** (LOWEST_EXPONENT + i / 2) for i in range(BUCKETS - 1)),
    math.inf,
)


@attrs.frozen
class Histogram:
    """Durations, in seconds, in fixed log-spaced buckets (``bounds``).

    ``buckets[i]`` counts the durations below ``bounds[i]`` and at or above
    ``bounds[i - 1]``: half an octave apart from about 1 microsecond to
    128 s, then everything longer.  A quantile is read off the buckets (the
    bucket it falls in, interpolated log-linearly), so it is within that
    bucket's width (19 %) of the truth, and never above ``max``.

    Attributes:
        buckets: the count in each bucket, as many as ``bounds``.
        count: durations recorded.
        sum: their total, in seconds.
        max: the longest, in seconds (0 if none); since the last
            ``stats(reset=True)``, like the rest.
    """

    buckets: tuple[int, ...]
    count: int
    sum: float
    max: float

    bounds = BOUNDS  # a class attribute: the same for every histogram

    @property
    def mean(self) -> float:
        """The average duration, in seconds (0 if none)."""
        return self.sum / self.count if self.count else 0.0

    @property
    def p50(self) -> float:
        """The median, in seconds (0 if none)."""
        return self.quantile(0.5)

    @property
    def p90(self) -> float:
        return self.quantile(0.9)

    @property
    def p99(self) -> float:
        return self.quantile(0.99)

    @property
    def p999(self) -> float:
        return self.quantile(0.999)

    def quantile(self, q: float) -> float:
        """The duration below which a fraction ``q`` (0 to 1) of those recorded fell."""
        if not 0.0 <= q <= 1.0:
            raise ValueError(f"q must be between 0 and 1, got {q!r}")
        if not self.count:
            return 0.0
        rank = q * self.count
        seen = 0
        for i, n in enumerate(self.buckets):
            if n and seen + n >= rank:
                upper = BOUNDS[i]
                if upper == math.inf:
                    return self.max
                fraction = (rank - seen) / n
                if i == 0:
                    value = upper * fraction
                else:
                    lower = BOUNDS[i - 1]
                    value = lower * (upper / lower) ** fraction
                return min(value, self.max)
            seen += n
        return self.max  # pragma: no cover  # the buckets add up to count

    def since(self, base: Histogram) -> Histogram:
        """What was recorded after ``base`` (an earlier reading of the same histogram)."""
        buckets = tuple(a - b for a, b in zip(self.buckets, base.buckets, strict=True))
        return Histogram(buckets, self.count - base.count, self.sum - base.sum, self.max)

    def __str__(self) -> str:
        return (
            f"count={self.count} p50={self.p50 * 1e3:.3g}ms p99={self.p99 * 1e3:.3g}ms "
            f"max={self.max * 1e3:.3g}ms"
        )


@attrs.frozen
class PoolStats:
    """What a pool held and had done at one moment (``pool.stats()``).

    Gauges describe that moment; counters add up since the pool was made
    (or the last ``stats(reset=True)``); histograms are ``None`` unless the
    pool records them (``metrics=True``).
    ``size + creating`` is the number of slots taken and never exceeds
    ``pool_size`` (``burst_limit`` with bursts).

    Attributes:
        pool_size: gauge: the most resources the pool keeps alive at once.
        size: gauge: resources alive now: idle, leased, or being closed.
        idle: gauge: resources waiting in the pool to be handed out.
        leased: gauge: resources handed out and not yet released.
        creating: gauge: factory calls under way (each holds one of the ``pool_size``
            slots).
        waiting: gauge: callers parked in ``acquire`` until a resource or slot frees.
        created: counter: resources the factory returned.
        closed: counter: resources gone: given to the releaser (successfully or
            not), or lost (garbage-collected while leased).
        acquired: counter: resources handed to callers.
        timeouts: counter: ``PoolTimeout`` errors raised.
        create_errors: counter: factory calls that raised.
        close_errors: counter: releaser calls that raised.
        broken: counter: resources closed as broken: a failed ``check`` or
            ``reset``, or ``discard()``.
        lost: counter: leased resources garbage-collected without being released
            (each also emitted a ``ResourceWarning``; its slot was recovered).
        min_size: gauge: the fewest resources an opened pool keeps alive.
        burst: gauge: resources alive above ``pool_size`` (``burst_limit``, or a
            pool shrunk by ``resize`` whose surplus is still leased).
        exhausted: counter: ``acquire`` calls refused with ``PoolExhausted``
            because ``max_waiting`` callers were waiting already.
        acquired_at_once: counter: acquires served without waiting in line or
            creating: from the idle set (also after closing a stale one, or a
            ``check``).  The three ``acquired_*`` add up to ``acquired``.
        acquired_after_waiting: counter: acquires that waited in line and were
            handed a released resource (or a slot, to create in: then they count
            as ``acquired_by_creating``).
        acquired_by_creating: counter: acquires that took a slot and started a
            factory call (served by it, or by a resource released meanwhile).
        cancelled: counter: acquires cancelled (or, in ``Pool``, interrupted
            by ``KeyboardInterrupt``) before they got a resource.
        refused_closed: counter: acquires refused with ``PoolClosed`` (the pool
            was disposed before or during the call); ``refused`` adds
            ``exhausted``.
        checks: counter: ``check`` calls run (before a hand-out and for
            ``keepalive``); ``is_closed`` is not counted.
        closed_recycled: counter: resources closed past ``pool_recycle`` or
            retired by ``recycle(force=True)``.
        closed_idle: counter: resources closed idle past ``idle_timeout``.
        closed_check_failed: counter: resources closed because ``check`` (or
            ``is_closed`` at a hand-out) said broken, raised, or was cut short.
        closed_reset_failed: counter: resources closed because ``reset``
            returned ``False`` or raised.
        closed_discarded: counter: resources closed by ``discard()``,
            ``discard_on``, or ``is_closed`` on release.
        closed_disposed: counter: resources closed because the pool was
            disposed.
        closed_surplus: counter: resources closed above ``pool_size`` (a
            burst, or a pool shrunk by ``resize``) when nobody waited.  With
            ``lost``, the ``closed_*`` counters add up to ``closed``.
        wait: histogram: how long each ``acquire`` took, from its call to its
            resource (``0`` for one served at once from the idle set); ``None``
            unless the pool was made with ``metrics=True``.
        hold: histogram: how long each resource was held, from its ``acquire``
            returning to its ``release`` or ``discard``; ``None`` without metrics.
        create: histogram: how long each successful factory call took; ``None``
            without metrics.
        check: histogram: how long each ``check`` call took (passed or not);
            ``None`` without metrics.

    Counters add up since the pool was made, or since the last
    ``stats(reset=True)``.
    """

    pool_size: int
    size: int
    idle: int
    leased: int
    creating: int
    waiting: int
    created: int
    closed: int
    acquired: int
    timeouts: int
    create_errors: int
    close_errors: int
    broken: int = 0
    lost: int = 0
    min_size: int = 0
    burst: int = 0
    exhausted: int = 0
    acquired_at_once: int = 0
    acquired_after_waiting: int = 0
    acquired_by_creating: int = 0
    cancelled: int = 0
    refused_closed: int = 0
    checks: int = 0
    closed_recycled: int = 0
    closed_idle: int = 0
    closed_check_failed: int = 0
    closed_reset_failed: int = 0
    closed_discarded: int = 0
    closed_disposed: int = 0
    closed_surplus: int = 0
    wait: Histogram | None = None
    hold: Histogram | None = None
    create: Histogram | None = None
    check: Histogram | None = None

    @property
    def refused(self) -> int:
        """Counter: acquires refused at once, ``refused_closed + exhausted``."""
        return self.refused_closed + self.exhausted

    def since(self, base: PoolStats) -> PoolStats:
        """These stats with ``base``'s counters and histograms taken off (gauges as they are)."""
        changes: dict[str, object] = {n: getattr(self, n) - getattr(base, n) for n in COUNTERS}
        for name in HISTOGRAMS:
            mine, theirs = getattr(self, name), getattr(base, name)
            if mine is not None and theirs is not None:
                changes[name] = mine.since(theirs)
        return attrs.evolve(self, **changes)  # type: ignore[arg-type]

    def __str__(self) -> str:
        return (
            f"pool_size={self.pool_size} size={self.size} idle={self.idle} "
            f"leased={self.leased} creating={self.creating} waiting={self.waiting}"
            + (f" burst={self.burst}" if self.burst else "")
        )


COUNTERS = (
    "created", "closed", "acquired", "timeouts", "create_errors", "close_errors", "broken",
    "lost", "exhausted", "acquired_at_once", "acquired_after_waiting", "acquired_by_creating",
    "cancelled", "refused_closed", "checks", "closed_recycled", "closed_idle",
    "closed_check_failed", "closed_reset_failed", "closed_discarded", "closed_disposed",
    "closed_surplus",
)  # fmt: skip
HISTOGRAMS = ("wait", "hold", "create", "check")
