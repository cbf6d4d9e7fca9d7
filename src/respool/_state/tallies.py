"""The bookkeeping of what a pool can say about itself: outcomes, durations, stats.

The counters live on the ledger (the hot path bumps some of them inline);
what only a slower path notes is here: how an acquire that could not be
served at once ended, a check's run, and the readings (``stats``, with
``reset=True`` psycopg's ``pop_stats``: the counters since the last reset).
A reset takes nothing from the ledger: it keeps the totals it read as its
baseline, so the exporters, which read the totals, never see a counter fall.
"""

from __future__ import annotations

from typing import TypeVar

from .._errors import PoolClosed
from .._stats import PoolStats
from .ledger import Ledger
from .records import Entry
from .reports import snapshot

T = TypeVar("T")


class Tallies(Ledger[T]):
    """Outcomes, durations and readings, on top of the ledger."""

    __slots__ = ()

    def stats(self, reset: bool = False) -> PoolStats:
        """The stats since the last reset (or the pool's birth); ``reset``: start over."""
        with self.lock:
            if self.lost:
                self._recover_lost()
            if not reset:
                return self._stats()
            totals = snapshot(self)
            since = totals if self.base is None else totals.since(self.base)
            self.base = totals
            if self.metrics is not None:
                self.metrics.restart_max()
            return since

    def totals(self) -> PoolStats:
        """The counters since the pool was made, whatever was reset (for the exporters)."""
        with self.lock:
            if self.lost:
                self._recover_lost()
            return snapshot(self)

    def note_served(self, entry: Entry[T], started: float, waited: bool, created: bool) -> None:
        """An acquire the hot path could not serve got ``entry`` (``started``: its call)."""
        with self.lock:
            self.served += 1
            if created:
                self.made_for += 1
            elif waited:
                self.waited += 1
            metrics = self.metrics
            if metrics is not None:
                now = self.clock()
                metrics.wait.record(now - started)
                if self.leaks is None:  # (leak tracking keeps its leases in leased_at order)
                    entry.leased_at = now  # its hold starts now, not when it was handed over

    def note_gave_up(self, error: BaseException) -> None:
        """An acquire the hot path could not serve ended with ``error``."""
        if isinstance(error, Exception) and not isinstance(error, PoolClosed):
            return  # a PoolTimeout is counted as it is noted; other errors are the user's
        with self.lock:
            if isinstance(error, PoolClosed):
                self.refused += 1
            else:
                self.cancelled += 1

    def note_check(self, started: float) -> None:
        """A ``check`` call ran from ``started`` until now (passed or not)."""
        with self.lock:
            self.checks += 1
            if self.metrics is not None:
                self.metrics.check.record(self.clock() - started)
