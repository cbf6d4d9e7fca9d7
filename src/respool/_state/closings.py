"""The bookkeeping of closing: a resource's end, a replacement's slot, recycle, dispose.

A resource being closed keeps its slot until its releaser ends, so closing
never lets more than ``limit`` resources exist; a releaser left running
past ``cleanup_timeout`` (threads) is ``late`` and settles when it ends.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from .._errors import PoolClosed, closed_message
from .._metrics import Metrics
from .ledger import Ledger, run_now, unbound_event
from .line import Waiter
from .records import DISPOSED, RECYCLED, Entry
from .steps import AGAIN, SLOT, Again, Slot, TimedOut

T = TypeVar("T")

REPLACING = "while a stale or broken resource was closed"


class Closings(Ledger[T]):
    """Closing, recycling and disposing, on top of the ledger."""

    __slots__ = ()

    def closed_one(self, entry: Entry[T], *, failed: bool, late: bool) -> None:
        """Its releaser ended (``failed``: raising), or runs on past its time (``late``)."""
        with self.lock:
            if failed:
                self.close_errors += 1
            if late:
                entry.late = True  # still closing: closed_late counts it and frees its slot
            else:
                self._forget(entry)

    def closed_late(self, entry: Entry[T]) -> None:
        """A releaser left running past ``cleanup_timeout`` ended (threads only)."""
        with self.lock:
            self._forget(entry)
            self._free_slot()

    def _forget(self, entry: Entry[T]) -> None:
        del self.alive[entry.key]
        entry.ref = None
        self.closed_count += 1
        self.closes[entry.reason] += 1
        if self.kept:
            self.kept.pop(entry.key, None)

    # -- replacing a resource an acquire met: its slot goes to that caller ----------------

    def replacing(self, closing: Waiter[T]) -> bool:
        """A caller closes a stale or broken resource; ``False``: it should not wait.

        Another idle resource may serve it at once, so the close's slot goes
        to the line when the close ends.
        """
        with self.lock:
            if self.idle:
                closing.abandoned = True
                return False
            return True

    def background_closed(
        self, entry: Entry[T], closing: Waiter[T], mistake: BaseException | None
    ) -> bool:
        """The close a caller waits for ended; the slot is that caller's if still there.

        ``mistake``: the releaser is not async, an error for that caller to
        raise.  Returns whether it was handed over (else the driver logs it).
        """
        with self.lock:
            if entry.late:  # its slot is freed when the releaser ends: the caller looks again
                if not closing.abandoned:
                    closing.event.set()
                return False
            if closing.abandoned:  # the caller left (timeout): the slot goes to the line
                self._free_slot()
                return False
            closing.slot = True
            closing.failed = mistake
            closing.event.set()
            return mistake is not None

    def stop_replacing(self, closing: Waiter[T]) -> None:
        """The caller stopped waiting for the close (cancelled, interrupted)."""
        with self.lock:
            closing.abandoned = True
            if closing.slot:  # closed just then: the slot was handed to this caller
                self._free_slot()

    def replaced(self, entry: Entry[T], closing: Waiter[T]) -> Slot | Again | TimedOut | None:
        """The caller's wait for the close ended: create in its slot, look again, or give up.

        ``None``: the close failed (its error, ``closing.failed``, is the caller's).
        """
        with self.lock:
            if not closing.slot and entry.late:
                closing.abandoned = True
                return AGAIN  # its releaser runs on, holding the slot: look again (or closed)
            if not closing.slot:  # still closing at the deadline
                closing.abandoned = True
                return TimedOut(self._timeout_facts(), REPLACING)
            if closing.failed is not None:
                self._free_slot()
                return None
            if self.idle or self.closed:
                self._free_slot()
                return AGAIN
            self.creating += 1
            return SLOT

    # -- the whole pool ---------------------------------------------------------------

    def reserve(self, target: int) -> bool:
        """Prefill: reserve a slot to create in, unless ``target`` are idle or all are taken."""
        with self.lock:
            if self.closed:
                raise PoolClosed(closed_message(self.kind))
            if len(self.idle) >= target or self.slots >= self.limit:
                return False
            self.slots += 1
            self.creating += 1
            return True

    def take_stale(self, force: bool) -> list[Entry[T]]:
        """Recycle: take out the idle resources to close (``force``: retire all first)."""
        with self.lock:
            if force:
                self.generation += 1
            now = self.clock()
            stale = [entry for entry in self.idle if not self._usable(entry, now)]
            for entry in stale:
                entry.reason = RECYCLED
            if stale:
                keep = [entry for entry in self.idle if self._usable(entry, now)]
                self.idle.clear()
                self.idle.extend(keep)
            return stale

    def close(self, gone: bool) -> tuple[list[Entry[T]], list[Callable[[], object]]] | None:
        """Dispose: refuse everyone from now on; return the idle resources and the stops.

        Every waiter is woken with ``closed``; the creations under way are
        for the driver to stop.  ``gone``: the pool's loop has ended, so a
        waiter that cannot be woken is nobody's.  ``None``: closed already.
        """
        with self.lock:
            if self.closed:
                return None
            self.closed = True
            self._poke()  # the maintainer ends
            self._filled()  # open(wait=True) raises PoolClosed
            idle = list(self.idle)
            for entry in idle:
                entry.reason = DISPOSED
            self.idle.clear()
            nudged, self.nudged = self.nudged, None
            while (waiter := self.line.pop()) is not None:
                waiter.closed = True
                try:
                    if waiter.failed is None and waiter is not nudged:  # else it is awake
                        waiter.event.set()
                except RuntimeError:
                    if not gone:
                        raise  # else its loop is gone: there is nobody to wake
                if waiter.creation is not None:  # it is not waiting for it any more
                    waiter.creation.owner = None
                    waiter.creation = None
            return idle, [c.stop for c in self.creations if c.stop is not None]

    def forget(self) -> None:
        """In a forked child: every resource is the parent's; start over, empty.

        The child neither hands them out nor closes them.  (Another thread may
        have held the lock at the fork: the child gets a new one.)
        """
        for entry in self.alive.values():
            entry.ref = None
        self.alive.clear()
        self.idle.clear()
        self.line.clear()
        self.lost.clear()
        if self.leaks is not None:
            self.leaks.clear()
        self.new_event = unbound_event
        self.call_soon = run_now
        self.metrics = None if self.metrics is None else Metrics()  # its histograms too
        self._start_empty()
