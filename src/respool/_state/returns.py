"""The bookkeeping of a resource coming back: release, discard, reset, a failed check."""

from __future__ import annotations

import math
import traceback
from math import log2
from typing import TypeVar, cast

from .._leaks import Overdue
from .._metrics import LAST, LOWEST, SHIFT
from .ledger import Ledger
from .records import CHECK_FAILED, RESET_FAILED, Entry

T = TypeVar("T")

RETURNING = object()  # ``Entry.handed`` while ``reset`` runs on a released resource


class Returns(Ledger[T]):
    """Taking resources back from their holders, on top of the ledger."""

    __slots__ = ()

    def return_quickly(self, resource: T, suspect: bool) -> bool:
        """The common release in one lock round trip; ``False`` if it needs more.

        More is: a ``reset``, ``is_closed`` or leak tracking, a resource to
        close (too old, retired, pool disposed), or a problem for
        :meth:`take_back` to name.  ``suspect``: its holder failed, so it is
        checked when next handed out.
        """
        if not self.plain:
            return False
        with self.lock:
            entry = self.alive.get(id(resource))
            if (
                entry is None
                or not entry.leased
                or entry.handed is not None
                or not (entry.resource is resource or (entry.ref and entry.ref() is resource))
            ):
                return False
            now = self.clock()
            if (
                self.closed
                or now >= entry.expires_at
                or entry.generation != self.generation
                or self.slots > self.limit
            ):
                return False  # maybe to be closed (_usable, inlined, or surplus): the slow path
            entry.resource = resource
            entry.leased = False
            entry.last_used = -math.inf if suspect else now
            self.leased -= 1
            self._put(entry, now)
            return True

    def return_metered(self, resource: T, suspect: bool) -> bool:
        """:meth:`return_quickly`, recording the hold: the pool's choice with ``metrics=True``.

        A copy, so that a pool without metrics pays nothing for them here.
        """
        if not self.plain:
            return False
        with self.lock:
            entry = self.alive.get(id(resource))
            if (
                entry is None
                or not entry.leased
                or entry.handed is not None
                or not (entry.resource is resource or (entry.ref and entry.ref() is resource))
            ):
                return False
            now = self.clock()
            if (
                self.closed
                or now >= entry.expires_at
                or entry.generation != self.generation
                or self.slots > self.limit
            ):
                return False
            # Recorder.record, inlined: a call costs more than the recording
            held = now - entry.leased_at
            hold = self.metrics.hold  # type: ignore[union-attr]
            i = 0 if held < LOWEST else int(2.0 * log2(held) + SHIFT) + 1
            hold.buckets[i if i < LAST else LAST] += 1
            hold.count += 1
            hold.sum += held
            if held > hold.max:
                hold.max = held
            entry.resource = resource
            entry.leased = False
            entry.last_used = -math.inf if suspect else now
            self.leased -= 1
            self._put(entry, now)
            return True

    def take_back(
        self, resource: T, how: str, suspect: bool
    ) -> tuple[Entry[T], Entry[T] | None, Overdue | None] | str:
        """Take a resource back from its holder; else say why not (nothing changes).

        ``how`` is ``"release"`` or ``"discard"``.  Returns its record, what
        must be closed now, and, if it was held past ``leak_timeout``, what
        the warning about it will say.  ``reset``, when the pool has one, is
        left to the caller (the record is marked ``RETURNING`` meanwhile).
        """
        with self.lock:
            entry = self.alive.get(id(resource))
            problem = self._release_problem(entry, resource)
            if entry is not None and problem is None:
                entry.resource = resource
                if self.metrics is not None:
                    self.metrics.hold.record(self.clock() - entry.leased_at)
                overdue = None
                if self.leaks is not None:
                    overdue = self.leaks.overdue(entry, resource, self.clock())
                if how == "discard":
                    self._unlease(entry)
                    self.broken += 1
                    return entry, entry, overdue
                if self.resets:
                    entry.handed = RETURNING
                    if suspect:
                        entry.last_used = -math.inf
                    return entry, None, overdue
                return entry, self._check_in(entry, suspect), overdue
        return cast(str, problem)

    def _release_problem(self, entry: Entry[T] | None, resource: T) -> str | None:
        if entry is None or not entry.leased or not entry.holds(resource):
            return "does not lease it (released twice, or never acquired from this pool)"
        if entry.handed is not None:
            return (
                "already got it back: it was released twice (the first release is still "
                "resetting it, or handed it to a waiter that has not taken it yet)"
            )
        return None

    def _check_in(self, entry: Entry[T], suspect: bool = False) -> Entry[T] | None:
        """A holder gave ``entry`` back; return it if it must be closed."""
        entry.leased = False  # _unlease, inlined: this is the release hot path
        self.leased -= 1
        if self.leaks is not None:
            self.leaks.unleased(entry)
        now = self.clock()
        entry.last_used = -math.inf if suspect else now  # suspect: checked when next handed out
        return self._put(entry, now)

    def reset_done(self, entry: Entry[T], ok: bool) -> Entry[T] | None:
        """``reset`` ended on a released resource: pool it if ``ok``; else it is broken.

        Returns what must be closed (when not ``ok``, the resource itself).
        """
        with self.lock:
            entry.handed = None
            if ok:  # a suspect was marked by take_back
                return self._check_in(entry, entry.last_used == -math.inf)
            self._unlease(entry)
            self.broken += 1
            entry.reason = RESET_FAILED
            return entry

    def put_back(self, entry: Entry[T]) -> Entry[T] | None:
        """A resource leased to a caller that did not take it after all; what to close."""
        with self.lock:
            self._unlease(entry, taken=False)
            return self._put(entry, self.clock())

    def drop(self, entry: Entry[T], *, taken: bool) -> bool:
        """A leased resource is to be closed, not as broken; whether the caller closes it now."""
        with self.lock:
            self._unlease(entry, taken=taken)
            return True

    def broke(self, entry: Entry[T], *, taken: bool) -> bool:
        """A leased resource is broken (dead, a failed check, an overrun): it will be closed.

        Returns whether the caller closes it now (a shared resource others
        still hold is closed when the last of them leaves).
        """
        with self.lock:
            entry.handed = None
            self._unlease(entry, taken=taken)
            self.broken += 1
            entry.reason = RESET_FAILED if taken else CHECK_FAILED  # taken: a reset overran
            return True

    # -- leaks, for the driver to report ----------------------------------------------

    def leaks_due(self) -> list[tuple[object, float, traceback.StackSummary | None]]:
        """Leases past ``leak_timeout`` not reported yet (marked reported now)."""
        if self.leaks is None:
            return []
        with self.lock:
            return self.leaks.due(self.clock())

    def outstanding(self) -> list[tuple[object, traceback.StackSummary | None]]:
        """Resources leased now, with where each was acquired if that was recorded."""
        with self.lock:
            return [(e.current(), e.site) for e in self.alive.values() if e.leased]
