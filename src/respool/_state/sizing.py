"""The bookkeeping of sizing at runtime: ``resize``, ``retain``, idle resources past their time."""

from __future__ import annotations

from typing import TypeVar

from .._errors import PoolClosed, closed_message
from .ledger import Ledger
from .records import IDLE, SURPLUS, Entry

T = TypeVar("T")


class Sizing(Ledger[T]):
    """Changing what the pool keeps, on top of the ledger."""

    __slots__ = ()

    def resize(self, size: int, least: int, cap: int) -> list[Entry[T]]:
        """New sizes; returns the idle surplus, taken out to be closed now.

        Growing hands each newly allowed slot to the oldest waiter.  Leased
        surplus is closed when it comes back (``_put``).
        """
        with self.lock:
            if self.closed:
                raise PoolClosed(closed_message(self.kind))
            self.limit, self.min_size, self.cap = size, least, cap
            line = self.line
            while self.slots < cap and line.waiting > line.creators:
                self.slots += 1
                self._free_slot()  # to the oldest waiter, who creates in it
            surplus: list[Entry[T]] = []
            over = self.slots - size
            while over > 0 and self.idle:
                surplus.append(entry := self.idle.popleft())  # least recently used first (LIFO)
                entry.reason = SURPLUS
                over -= 1
            self._poke()  # min_size may have grown
            return surplus

    def idle_entries(self) -> list[Entry[T]]:
        """The idle resources now (``retain`` asks its predicate outside the lock)."""
        with self.lock:
            return list(self.idle)

    def take_idle(self, entries: list[Entry[T]]) -> list[Entry[T]]:
        """Take these out of the idle set, those still in it, to be closed."""
        with self.lock:
            doomed = {id(entry) for entry in entries}
            taken = [entry for entry in self.idle if id(entry) in doomed]
            if taken:
                keep = [entry for entry in self.idle if id(entry) not in doomed]
                self.idle.clear()
                self.idle.extend(keep)
            return taken

    def idle_past_timeout(self) -> list[Entry[T]]:
        """Idle resources unused for ``idle_timeout``, above ``min_size``: taken out to close.

        What the maintainer does, done lazily on release when none runs.
        """
        with self.lock:
            limit = self.idle_timeout
            if limit is None or self.maintained:
                return []
            now = self.clock()
            spare = self.slots - self.creating - self.min_size
            taken: list[Entry[T]] = []
            while spare > 0 and self.idle and now - self.idle[0].last_used >= limit:
                taken.append(entry := self.idle.popleft())  # the least recently used (LIFO order)
                entry.reason = IDLE
                spare -= 1
            return taken
