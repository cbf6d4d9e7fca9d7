"""The waiting line: callers parked in ``acquire``, first come, first served.

Like trio's ``ParkingLot``, the line knows nothing of what its waiters wait
for or how they are woken: a waiter's ``event`` is the face's own (an anyio
or a thread event), set by the pool state and waited on by the driver.  A
waiter that gives up is only flagged ``abandoned`` (O(1)) and skipped when
reached; the deque is compacted when the dead outnumber the living.

Caller holds the pool's lock for every method here.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Any, Generic, TypeVar

if TYPE_CHECKING:
    from .records import Entry
    from .steps import Creation

T = TypeVar("T")


class Waiter(Generic[T]):
    """A caller in line in ``acquire``; served at most once, under the lock.

    A caller creating a resource (its factory call under way, or backing off
    after a failed one in a slot it holds) stands in line too, so a resource
    released meanwhile goes to it before anyone who came later.
    """

    __slots__ = (
        "abandoned", "closed", "creation", "entry", "event", "failed", "fatal", "fresh",
        "holds_slot", "since", "slot",
    )  # fmt: skip

    def __init__(self, event: Any, since: float = 0.0) -> None:
        self.event = event  # the face's event: set here, waited on by the driver
        self.since = since  # when it joined the line (a nudged waiter keeps it)
        self.entry: Entry[T] | None = None  # served with a resource
        self.slot = False  # served with a slot to create in
        self.closed = False  # the pool was disposed
        self.abandoned = False  # out of line: gave up, or served by its own creation
        self.creation: Creation[T] | None = None  # the factory call it waits for
        self.holds_slot = False  # backing off in a slot it reserved
        self.failed: BaseException | None = None  # its factory call failed; the slot is back
        self.fatal = False  # and that failure is not worth a retry (decided once, in the call)
        self.fresh = False  # its entry comes straight from the factory: no check needed


class Line(Generic[T]):
    """Waiters, oldest first; ``waiting`` counts the live ones, ``creators`` those creating."""

    __slots__ = ("_waiters", "creators", "waiting")

    def __init__(self) -> None:
        self._waiters: deque[Waiter[T]] = deque()
        self.waiting = 0
        self.creators = 0

    def join(self, waiter: Waiter[T], *, front: bool) -> None:
        """``front``: it was at the head of the line already, so it keeps its place."""
        if front:
            self._waiters.appendleft(waiter)
        else:
            self._waiters.append(waiter)
        self.waiting += 1

    def first(self, *, looking: bool = False) -> Waiter[T] | None:
        """The oldest waiter, left in line; ``looking``: the oldest one that could come and
        take an idle resource (not creating, not awake already after a failed one)."""
        waiters = self._waiters
        while waiters and waiters[0].abandoned:
            waiters.popleft()
        if not looking:
            return waiters[0] if waiters else None
        for waiter in waiters:  # past at most pool_size creators, and those who left
            if not (waiter.abandoned or waiter.creation or waiter.holds_slot or waiter.failed):
                return waiter
        return None

    def pop(self, *, for_slot: bool = False) -> Waiter[T] | None:
        """Take the oldest waiter out of line.  ``for_slot``: one that is not creating already."""
        waiters = self._waiters
        passed: list[Waiter[T]] = []
        found = None
        while waiters:
            waiter = waiters.popleft()
            if waiter.abandoned:
                continue
            if for_slot and (waiter.creation is not None or waiter.holds_slot):
                passed.append(waiter)  # at most pool_size of them: they hold slots
                continue
            found = waiter
            self.waiting -= 1
            if waiter.creation is not None or waiter.holds_slot:
                self.creators -= 1
            break
        waiters.extendleft(reversed(passed))
        return found

    def leave(self, waiter: Waiter[T]) -> None:
        """Take a waiter out of line where it stands (skipped when reached)."""
        if waiter.abandoned:
            return
        waiter.abandoned = True
        self.waiting -= 1
        if waiter.creation is not None or waiter.holds_slot:
            self.creators -= 1
        if len(self._waiters) > 2 * self.waiting + 32:
            self._waiters = deque(w for w in self._waiters if not w.abandoned)

    def clear(self) -> None:
        self._waiters.clear()
        self.waiting = self.creators = 0
