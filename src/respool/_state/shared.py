"""The state of a shared pool: each resource serves up to ``max_holders`` holders at once.

``SharedState`` is :class:`PoolState` with a holder count for each record
(``held``, by record key); the line, creation, backoff, closing, sizing and the
maintainer's chores are the same code.  Where a resource is:

* ``idle``: live, no holder (closed by ``dispose``, the maintainer's chores
  and ``recycle`` as in an exclusive pool);
* ``busy``: live, held, taking more holders while it has fewer than
  ``max_holders``;
* neither, ``retired``: broken, expired or surplus; it gets no new holder and
  is closed when its last holder leaves.

A caller gets the least-loaded live resource (fewest holders, ties to the
oldest, so load spreads); if all are full, it creates one while a slot is
free, else waits in line (first come, first served).  A seat freed by a
holder, or a new resource, goes to the oldest waiters first.
"""

from __future__ import annotations

import math
from typing import Any, TypeVar

import attrs

from .. import _errors
from . import PoolState
from .records import CHECK_FAILED, DISCARDED, DISPOSED, RECYCLED, SURPLUS, Entry
from .steps import SLOT, Stale, Step

T = TypeVar("T")


@attrs.frozen
class ResourceStats:
    """One resource of a shared pool, at one moment (``pool.resource_stats()``).

    Attributes:
        holders: callers holding it now.
        age: seconds since it was created.
        broken: retired (broken, expired, retired by ``recycle`` or a shrink):
            it gets no new holder and is closed when its last holder leaves.
    """

    holders: int
    age: float
    broken: bool


class SharedState(PoolState[T]):
    """A pool state whose resources have several holders; see the module docstring."""

    __slots__ = ("born", "busy", "held", "max_holders", "retired")

    def __init__(self, *args: Any, max_holders: int, **kwargs: Any) -> None:
        self.max_holders = max_holders
        self.busy: list[Entry[T]] = []
        # By record key, kept here so an exclusive pool's records stay small.
        self.held: dict[int, int] = {}  # holders of each live or retired resource
        self.born: dict[int, float] = {}  # when each was created (ties go to the oldest)
        self.retired: set[int] = set()  # no new holders; closed when the last leaves
        super().__init__(*args, **kwargs)
        self.plain = self._plain = False  # every release takes the slow path: count holders
        self.window = 0.0  # its own _put seats waiters in order: no one is passed over

    def forget(self) -> None:
        self.busy.clear()
        self.held.clear()
        self.born.clear()
        self.retired.clear()
        super().forget()

    def _forget(self, entry: Entry[T]) -> None:
        super()._forget(entry)
        self.held.pop(entry.key, None)
        self.born.pop(entry.key, None)
        self.retired.discard(entry.key)

    # -- who gets a seat ---------------------------------------------------------------

    def claim(self, front: bool = False) -> Step[T]:
        with self.lock:
            return self._claim(front)

    def _claim(self, front: bool = False) -> Step[T]:
        if self.closed:
            raise _errors.PoolClosed(_errors.closed_message(self.kind))
        if self.lost:
            self._recover_lost()
        now = self.clock()
        best: Entry[T] | None = None
        least = (0, 0.0)
        for entry in [*self.busy, *self.idle]:
            holders = self.held[entry.key]
            if not self._usable(entry, now):
                entry.reason = RECYCLED
                if holders == 0:
                    self.idle.remove(entry)
                    return Stale(entry)  # the caller closes it, in its slot
                self._retire(entry)
            elif holders < self.max_holders and (
                best is None or (holders, self.born[entry.key]) < least
            ):
                best, least = entry, (holders, self.born[entry.key])
        if best is not None:
            self._lease(best)
            return self._vetting(best, now)
        if self.slots < self.cap:
            self.slots += 1
            self.creating += 1
            return SLOT
        return self._park(front)

    def _lease(self, entry: Entry[T]) -> None:
        key = entry.key
        if self.held[key] == 0 and key not in self.retired:
            if entry in self.idle:
                self.idle.remove(entry)
            if entry not in self.busy:  # it may be there already, its holder just gone
                self.busy.append(entry)
        self.held[key] += 1
        entry.leased = True
        self.leased += 1
        self.acquired += 1

    def _unlease(self, entry: Entry[T], *, taken: bool = True) -> None:
        self.held[entry.key] -= 1
        entry.leased = self.held[entry.key] > 0
        self.leased -= 1
        if not taken:
            self.acquired -= 1

    def _retire(self, entry: Entry[T]) -> None:
        """No new holders: it is closed when the last one leaves."""
        if entry.key not in self.retired:
            self.retired.add(entry.key)
            if entry in self.busy:
                self.busy.remove(entry)
            if self.maintained:
                self.owed += 1  # the maintainer replaces it
            self._poke()

    def _put(self, entry: Entry[T], now: float) -> Entry[T] | None:
        """A holder left ``entry``, or it is new: seat waiters, or place it; what to close."""
        surplus = self.slots > self.limit and (self.slots > self.cap or not self.line.waiting)
        key = entry.key
        if key in self.retired or not self._usable(entry, now) or self.closed or surplus:
            if key not in self.retired:  # else its reason was noted when it was retired
                entry.reason = DISPOSED if self.closed else SURPLUS if surplus else RECYCLED
            self._retire(entry)
            if self.held[key] == 0:
                return entry
            return None
        if self.held[key] == 0 and entry not in self.busy and entry not in self.idle:
            self.idle.append(entry)  # new (or back from a keepalive check)
        while self.held[key] < self.max_holders and self.line.waiting:
            waiter = self.line.pop()
            if waiter is None:
                break
            self._hand(entry, waiter)
        if self.held[key] == 0 and entry in self.busy:
            self.busy.remove(entry)
            self.idle.append(entry)
        return None

    def creation_made(self, creation: Any, resource: T) -> Any:
        """As for an exclusive pool; then the new resource's other seats go to the line."""
        made = super().creation_made(creation, resource)
        with self.lock:
            entry = self.alive.get(id(resource))
            if entry is not None and self.held[entry.key] and not self.closed:
                self._put(entry, self.clock())
        return made

    def _register(self, resource: T, generation: int) -> Entry[T]:
        entry = super()._register(resource, generation)
        entry.ref = None  # held strongly: several holders share it
        self.held[entry.key] = 0
        self.born[entry.key] = entry.last_used  # its creation time
        return entry

    # -- a holder leaves -----------------------------------------------------------------

    def return_quickly(self, resource: T, suspect: bool) -> bool:
        return False

    def take_back(
        self, resource: T, how: str, suspect: bool
    ) -> tuple[Entry[T], Entry[T] | None, None] | str:
        """One holder releases (or discards) ``resource``; what to close, or the problem."""
        with self.lock:
            entry = self.alive.get(id(resource))
            if entry is None or not self.held[entry.key] or entry.resource is not resource:
                return (
                    "has no holder of it left (released more times than acquired, or "
                    "never acquired from this pool)"
                )
            self._unlease(entry)
            if how == "discard":
                if entry.key not in self.retired:
                    self.broken += 1
                    entry.reason = DISCARDED
                self._retire(entry)
            elif suspect:
                entry.last_used = -math.inf  # checked before its next hand-out
            else:
                entry.last_used = self.clock()
            return entry, self._put(entry, self.clock()), None

    def broke(self, entry: Entry[T], *, taken: bool) -> bool:
        with self.lock:
            entry.handed = None
            self._unlease(entry, taken=taken)
            if entry.key not in self.retired:
                self.broken += 1
                entry.reason = CHECK_FAILED
            self._retire(entry)
            return self.held[entry.key] == 0

    def drop(self, entry: Entry[T], *, taken: bool) -> bool:
        with self.lock:
            self._unlease(entry, taken=taken)
            self._retire(entry)  # its reason was set by the caller
            return self.held[entry.key] == 0

    # -- sizing ------------------------------------------------------------------------------

    def resize(self, size: int, least: int, cap: int) -> list[Entry[T]]:
        """As for an exclusive pool; busy surplus is retired (closed after its holders)."""
        surplus = super().resize(size, least, cap)
        with self.lock:
            over = len(self.idle) + len(self.busy) - size
            for entry in sorted(self.busy, key=lambda e: self.held[e.key]):
                if over <= 0:
                    break
                entry.reason = SURPLUS
                self._retire(entry)
                over -= 1
        return surplus

    def retired_held(self) -> int:
        """Retired resources that still have holders: what ``reconnect`` replaces."""
        with self.lock:
            return sum(1 for key in self.retired if self.held.get(key))

    def live(self) -> int:
        with self.lock:
            return len(self.idle) + len(self.busy)

    def resource_stats(self) -> list[ResourceStats]:
        with self.lock:
            now = self.clock()
            return [
                ResourceStats(self.held[key], now - born, self._retired(key, now))
                for key, born in self.born.items()  # oldest first
            ]

    def _retired(self, key: int, now: float) -> bool:
        """Retired, or due to be: expired or of an older generation, not noticed yet."""
        entry = self.alive.get(key)
        return key in self.retired or entry is None or not self._usable(entry, now)
