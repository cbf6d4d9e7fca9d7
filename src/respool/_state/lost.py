"""Leases dropped unreleased: noticed by a weak reference, recovered under the lock."""

from __future__ import annotations

import warnings
import weakref
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from .._leaks import site_line
from .records import LostRef

if TYPE_CHECKING:
    from .records import Entry

T = TypeVar("T")


def on_lost(state_ref: weakref.ref[Any], ref: LostRef) -> None:
    """A leased resource was garbage-collected: its holder never released it."""
    state = state_ref()
    if state is not None and state.owner() is not None:  # a pool dropped says nothing
        state.lost_one(ref.entry)


class LostLeases(Generic[T]):
    """The ledger's part that recovers the slots of resources dropped while leased."""

    # Its own fields (closed_count counts every close; the ledger sets them all at zero).
    __slots__ = ("closed_count", "lost", "lost_count")
    lost: deque[Entry[T]]  # records of leased resources dropped, for the next locked operation
    lost_count: int
    closed_count: int
    # The ledger's, declared here for the type checker.
    lock: Any
    alive: dict[int, Entry[T]]
    kind: str
    wakes_from_any_thread: bool
    call_soon: Callable[[Callable[[], object]], None]

    def _unlease(self, entry: Entry[T], *, taken: bool = True) -> None:
        raise NotImplementedError  # pragma: no cover  # the ledger's

    def _free_slot(self) -> None:
        raise NotImplementedError  # pragma: no cover  # the ledger's

    def lost_one(self, entry: Entry[T]) -> None:
        """Weak-reference callback: a holder dropped ``entry``'s resource unreleased.

        It may run inside any allocation, even one made under the pool's own
        lock, and in any thread (the cyclic GC runs wherever it is triggered),
        so it never waits for the lock: if the lock is busy, recovery is
        scheduled to run once the holder is done (a parked waiter must not
        wait on a slot nobody will free).  A pool bound to a loop always
        schedules it there: only on its own loop may a parked task be woken.
        """
        self.lost.append(entry)
        if self.wakes_from_any_thread and self.lock.acquire(blocking=False):
            try:
                self._recover_lost()
            finally:
                self.lock.release()
        else:
            self.call_soon(self.recover_lost)
        warnings.warn(
            f"{self.kind}: a leased resource was garbage-collected without being "
            f"released, so its slot was recovered; it was acquired at {site_line(entry.site)}. "
            "Release or discard every resource you acquire, or use `lease()`",
            ResourceWarning,
            stacklevel=2,
        )

    def recover_lost(self) -> None:
        with self.lock:
            self._recover_lost()

    def _recover_lost(self) -> None:
        """Free the slots of leased resources their holders dropped unreleased."""
        while self.lost:
            entry = self.lost.popleft()
            if self.alive.get(entry.key) is entry and entry.leased and entry.resource is None:
                del self.alive[entry.key]
                entry.ref = None
                self._unlease(entry)
                self.lost_count += 1
                self.closed_count += 1
                self._free_slot()
