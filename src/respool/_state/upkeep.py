"""The bookkeeping of an opened pool's maintainer: what it does next, and when.

The maintainer (``_async/maintenance.py``) asks :meth:`Upkeep.chores` what
to do, starts that work in the background, and waits for the chores' event
until their ``wake_at``.  It is woken early (``Ledger._poke``) only when work
appears that no deadline foretells: the pool fell below ``min_size``, its own
factory call ended, ``resize``, ``dispose``.  Every other chore has a
deadline known now or bounded by a period: a lease made after the maintainer
went to sleep is due ``leak_timeout`` later, never sooner, so sleeping at
most ``leak_timeout`` finds it on time; the same holds for ``idle_timeout``,
``keepalive`` and ``pool_recycle``.  No hot path pays for the maintainer.
"""

from __future__ import annotations

import math
import traceback
from typing import Any, Generic, TypeVar

import attrs

from .._errors import PoolClosed, PoolError, closed_message
from .ledger import RECYCLE_JITTER, Ledger
from .records import CHECK_FAILED, IDLE, RECYCLED, Entry
from .steps import Creation

T = TypeVar("T")

GRANULE = 0.01  # seconds: chores due this close together are done in one round
RETIRE_BATCH = 2  # expired idle resources replaced per round: no reconnect storm


@attrs.define(eq=False)
class Chores(Generic[T]):
    """One round of maintenance: taken out of the pool under the lock, done outside it."""

    event: Any  # set when there is new work; waited on until ``wake_at``
    wake_at: float | None = None  # the next deadline; None: only when woken
    retire: list[Entry[T]] = attrs.Factory(list)  # expired idle: close, then replace
    idle: list[Entry[T]] = attrs.Factory(list)  # idle past idle_timeout: close
    keep: list[Entry[T]] = attrs.Factory(list)  # idle past keepalive: check
    create: Creation[T] | None = None  # the factory call to start (min_size, replacement)
    leaks: list[tuple[object, float, traceback.StackSummary | None]] = attrs.Factory(list)


class Upkeep(Ledger[T]):
    """The maintainer's chores, on top of the ledger."""

    __slots__ = ()

    def start_maintaining(self) -> None:
        """A maintainer starts; one at a time, and not on a disposed pool."""
        with self.lock:
            if self.closed:
                raise PoolClosed(closed_message(self.kind))
            if self.maintained:
                raise PoolError(
                    f"this {self.kind} has a maintainer running already (it was opened, or "
                    "maintain() runs elsewhere); run one maintainer per pool"
                )
            self.maintained, self.stopping = True, False
            self.plain = self._plain  # idle_timeout is the maintainer's now, not release's

    def stop_maintaining(self, *, ended: bool) -> None:
        """Ask the maintainer to stop (``ended=False``), or note that it has (``True``)."""
        with self.lock:
            if ended:
                self.maintained = self.stopping = False
                self.plain = self._plain and not self.sweeps
                self.chore_event = None
            else:
                self.stopping = True
            self._poke()

    def chores(self) -> Chores[T] | None:
        """What the maintainer does now, and when it looks next; ``None``: it stops."""
        with self.lock:
            if self.closed or self.stopping:
                return None
            if self.lost:
                self._recover_lost()
            now = self.clock()
            chores: Chores[T] = Chores(self.new_event())
            wake_at = self._sort_idle(chores, now)
            if self.leaks is not None:
                chores.leaks = self.leaks.due(now)
                if self.leaks.holding:
                    first = next(iter(self.leaks.holding))
                    wake_at = min(wake_at, first.leased_at + self.leaks.limit)
            wake_at = min(wake_at, self._top_up(chores, now), now + self._period())
            if wake_at < math.inf:
                chores.wake_at = max(wake_at, now + GRANULE)
            self.chore_event = chores.event
            return chores

    def _sort_idle(self, chores: Chores[T], now: float) -> float:
        """Take out the idle resources due for a chore; return the next idle deadline."""
        idle_timeout, keepalive = self.idle_timeout, self.keepalive
        alive = self.slots - self.creating
        wake_at = math.inf
        keep: list[Entry[T]] = []
        for entry in self.idle:  # least recently used first with LIFO
            if not self._usable(entry, now):
                if len(chores.retire) < RETIRE_BATCH:
                    chores.retire.append(entry)
                    entry.reason = RECYCLED
                    self.owed += 1
                    alive -= 1
                    continue
                wake_at = now  # the rest next round
                keep.append(entry)
                continue
            if idle_timeout is not None and alive > self.min_size:
                if now - entry.last_used >= idle_timeout:
                    chores.idle.append(entry)
                    entry.reason = IDLE
                    alive -= 1
                    continue
                wake_at = min(wake_at, entry.last_used + idle_timeout)
            if keepalive is not None:
                known_good = max(entry.last_used, self.kept.get(entry.key, -math.inf))
                if now - known_good >= keepalive:
                    chores.keep.append(entry)
                    continue
                wake_at = min(wake_at, known_good + keepalive)
            wake_at = min(wake_at, entry.expires_at)
            keep.append(entry)
        if len(keep) != len(self.idle):
            self.idle.clear()
            self.idle.extend(keep)
        return wake_at

    def _top_up(self, chores: Chores[T], now: float) -> float:
        """Start one factory call if below ``min_size`` or a replacement is owed.

        One at a time, and not during a backoff pause: returns when to try
        again (``inf``: nothing to wait for).
        """
        if self.owed and self.slots >= self.limit:
            self.owed = 0  # the pool is full: the replacements are not needed
        if self.slots >= self.min_size and not self.owed:
            return math.inf
        if self.upkeep is not None:
            return math.inf  # woken when it ends
        if self.backoff.until > now:
            return self.backoff.until
        if self.owed:
            self.owed -= 1
        self.slots += 1
        self.creating += 1
        creation: Creation[T] = Creation(self.generation, None, False)
        self.creations.add(creation)
        self.upkeep = chores.create = creation
        return math.inf

    def _period(self) -> float:
        """The longest sleep that still finds on time a chore born after it began."""
        periods = [self.idle_timeout, self.keepalive]
        if self.leaks is not None:
            periods.append(self.leaks.limit)
        if self.recycle < math.inf:
            periods.append(self.recycle * (1.0 - RECYCLE_JITTER))
        return min((p for p in periods if p is not None), default=math.inf)

    def kept_alive(self, entry: Entry[T], ok: bool, *, broken: bool) -> Entry[T] | None:
        """A keepalive check ended (``ok``: it passed); return the resource if it must close.

        ``broken``: it failed (else it was cut short, and is closed all the same).
        """
        with self.lock:
            if not ok:
                self.broken += broken
                entry.reason = CHECK_FAILED
                return entry
            now = self.clock()
            self.kept[entry.key] = now  # not a use: idle_timeout still counts from last_used
            return self._put(entry, now)

    def filled(self, event: Any) -> bool:
        """Whether ``min_size`` resources exist; else ``event`` (if any) is set once they do."""
        with self.lock:
            if self.closed:
                raise PoolClosed(closed_message(self.kind))
            if self.slots - self.creating >= self.min_size:
                return True
            if event is not None:
                self.fill.append(event)
            return False

    def unfill(self, event: Any) -> None:
        """An ``open(wait=True)`` caller gave up."""
        with self.lock:
            if event in self.fill:
                self.fill.remove(event)
