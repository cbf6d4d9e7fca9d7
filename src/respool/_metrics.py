"""Latency recording, with ``metrics=True``: four histograms, in fixed buckets.

The pool state holds a :class:`Metrics` only when the pool was made with
``metrics=True`` (else ``None``: one attribute test where a duration ends).
The hot paths test nothing: ``claim`` always notes when a lease starts (one
slot store, cheaper than a test), and the pool binds the quick release to
its metered copy (``Returns.return_metered``, which inlines
:meth:`Recorder.record`) at construction.  Every record is made under the
pool's lock: O(1), a logarithm and four updates of preallocated fields, no
object allocated but the floats themselves.
"""

from __future__ import annotations

from math import log2

from ._stats import BUCKETS, LOWEST_EXPONENT, Histogram

LOWEST = 2.0**LOWEST_EXPONENT
LAST = BUCKETS - 1
SHIFT = -2 * LOWEST_EXPONENT  # 2 * log2(seconds) + SHIFT >= 0 from the lowest bound up


class Recorder:
    """One histogram being recorded: its buckets, count, sum and max."""

    __slots__ = ("buckets", "count", "max", "sum")

    def __init__(self) -> None:
        self.buckets = [0] * BUCKETS
        self.count = 0
        self.sum = 0.0
        self.max = 0.0

    def record(self, seconds: float) -> None:
        if seconds < LOWEST:
            i = 0  # also a clock that stepped back: never a negative duration
            if seconds < 0.0:
                seconds = 0.0
        else:
            i = int(2.0 * log2(seconds) + SHIFT) + 1
            if i > LAST:
                i = LAST
        self.buckets[i] += 1
        self.count += 1
        self.sum += seconds
        if seconds > self.max:
            self.max = seconds

    def read(self, zeros: int = 0) -> Histogram:
        """A frozen copy; ``zeros``: durations of 0 counted without being recorded."""
        buckets = self.buckets
        if zeros > 0:
            buckets = [buckets[0] + zeros, *buckets[1:]]
        return Histogram(tuple(buckets), self.count + max(zeros, 0), self.sum, self.max)


class Metrics:
    """A pool's four histograms (see :class:`~respool.PoolStats`)."""

    __slots__ = ("check", "create", "hold", "wait")

    def __init__(self) -> None:
        self.wait = Recorder()
        self.hold = Recorder()
        self.create = Recorder()
        self.check = Recorder()

    def restart_max(self) -> None:
        """``stats(reset=True)``: each ``max`` starts over (the rest is subtracted)."""
        for recorder in (self.wait, self.hold, self.create, self.check):
            recorder.max = 0.0
