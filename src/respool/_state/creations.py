"""The bookkeeping of creation: who creates in which slot, and where a new resource goes.

A caller who got a slot stands in line (at its front) while its factory call
runs in the background, so a resource released meanwhile is its own, and a
caller who gives up leaves the call to finish for whoever is next.  While the
factory fails, the caller keeps the slot and its place through the backoff.
The driver (``_async/creating.py``) awaits; everything it decides is here.
"""

from __future__ import annotations

from typing import TypeAlias, TypeVar, cast

from .._errors import PoolClosed, closed_message
from .ledger import Ledger
from .line import Waiter
from .records import Entry
from .steps import (
    AGAIN,
    BEFORE_CREATED,
    KEPT_FAILING,
    MADE,
    NO_RETRY_FITS,
    SLOT,
    WAITING,
    Again,
    Creation,
    Duplicate,
    Made,
    Step,
    TimedOut,
    Vet,
)

T = TypeVar("T")

# What a creator does next: a step (a resource, another claim's outcome, or
# giving up), run this factory call, or back off until this clock reading.
Next: TypeAlias = "Step[T] | Creation[T] | float"


class Creations(Ledger[T]):
    """Creation and backoff, on top of the ledger."""

    __slots__ = ()

    def next_creation(
        self, waiter: Waiter[T] | None, deadline: float | None, lease: bool
    ) -> tuple[Next[T], Waiter[T] | None]:
        """A creator (``waiter``, ``None`` on its first look) decides what to do now.

        ``lease=False`` is prefill's: it stands out of line and its resource
        goes to the pool.  Raises ``PoolClosed`` (slot freed).
        """
        with self.lock:
            if waiter is not None and waiter.entry is not None:  # released to it meanwhile
                return self._taken(waiter), waiter
            resume, now = self.backoff.until, self.clock()
            problem = self._creation_problem(waiter, deadline, now, lease)
            if problem is not None:
                timed_out = None
                if problem not in ("idle", "closed"):  # noted before it leaves: it counts itself
                    timed_out = TimedOut(self._timeout_facts(), problem)
                self._drop_creator(waiter)
                if problem == "idle":  # returned while its factory call failed: take it
                    return self._claim(front=True), waiter  # in this lock section: no barging
                if timed_out is None:
                    raise PoolClosed(closed_message(self.kind))
                return timed_out, waiter
            if waiter is None:
                waiter = self._new_creator(lease)
            waiter.holds_slot = resume > now
            if waiter.holds_slot:
                return resume, waiter
            creation: Creation[T] = Creation(self.generation, waiter, lease)
            waiter.creation = creation
            self.creations.add(creation)
            return creation, waiter

    def _creation_problem(
        self, waiter: Waiter[T] | None, deadline: float | None, now: float, lease: bool
    ) -> str | None:
        """Why a creator must not (re)try now, if it must not."""
        if self.closed:
            return "closed"
        if lease and self.idle:
            return "idle"
        if deadline is not None and deadline <= now:  # timeout=0 never calls the factory
            return BEFORE_CREATED if waiter is None else KEPT_FAILING
        if self.backoff.until > now and self._no_retry_fits(deadline, waiter):
            return NO_RETRY_FITS
        return None

    def _no_retry_fits(self, deadline: float | None, waiter: Waiter[T] | None) -> bool:
        """The backoff outlasts the deadline, and nothing else could serve.

        Else could: a lease coming back, another creator in line, or a factory
        call under way whose caller left (or prefill's): its resource goes to
        the oldest waiter.
        """
        if deadline is None or self.backoff.until < deadline:
            return False
        others = self.line.creators - (waiter is not None and not waiter.abandoned)
        return self.leased == 0 and others == 0 and not self.creations

    def _new_creator(self, lease: bool) -> Waiter[T]:
        """A creator's place in line (front: it got a slot, so none is older)."""
        if not lease:  # prefill: out of line, it only watches its creation
            waiter: Waiter[T] = Waiter(self.new_event())
            waiter.abandoned = True
            return waiter
        waiter = self._enqueue(front=True)
        self.line.creators += 1
        return waiter

    def drop_creator(self, waiter: Waiter[T] | None) -> None:
        with self.lock:
            self._drop_creator(waiter)

    def _drop_creator(self, waiter: Waiter[T] | None) -> None:
        """A creator gives up its slot and its place in line."""
        if waiter is None or (waiter.abandoned and not waiter.holds_slot):
            self._creation_failed()
        else:
            waiter.holds_slot = True  # so _abandon frees the slot it holds
            self._abandon(waiter)

    def take(self, waiter: Waiter[T], woken: bool) -> Step[T]:
        """A waiter's wait ended (``woken``: its event was set): what it got.

        A resource, a slot to create in, ``AGAIN`` (the creation it waited
        for ended without serving it), its timeout, or, if it was nudged to
        look and nothing is idle any more, itself, to wait on in its place in
        line; raises ``PoolClosed``.
        """
        with self.lock:
            if waiter.entry is not None:
                return self._taken(waiter)
            if waiter.slot:
                return SLOT
            if waiter.closed:
                self._abandon(waiter)  # frees a slot it held
                raise PoolClosed(closed_message(self.kind))
            if waiter is self.nudged:
                return self._looked(waiter)
            if woken or waiter.failed is not None:
                return AGAIN  # its creation ended (failed, or prefill's resource is placed)
            facts = self._timeout_facts()  # taken before leaving: it counts itself
            what = WAITING
            if waiter.holds_slot:
                what = KEPT_FAILING
            elif waiter.creation is not None:
                what = BEFORE_CREATED
            self._abandon(waiter)
            return TimedOut(facts, what)

    def _taken(self, waiter: Waiter[T]) -> Entry[T] | Vet[T]:
        """The resource handed to a waiter is its caller's now."""
        entry = cast("Entry[T]", waiter.entry)
        entry.handed = None
        if waiter.fresh:
            return entry
        return self._vetting(entry, self.clock())

    def backed_off(self, waiter: Waiter[T]) -> None:
        """The backoff ended: still in line, for the next wait."""
        with self.lock:
            if waiter.entry is None and not waiter.closed:
                waiter.event = self.new_event()

    def creation_ended(self, waiter: Waiter[T]) -> Entry[T] | Vet[T] | Made | Again | BaseException:
        """A creator's factory call ended without serving it: take, look again, or its error.

        On an error the creator stays in line, holding the slot, to retry.
        """
        with self.lock:
            if waiter.entry is not None:  # released to it just then
                return self._taken(waiter)
            error, waiter.failed = waiter.failed, None
            if error is None:  # prefill: placed, or closed at once
                return MADE if waiter.fresh else AGAIN
            waiter.event = self.new_event()
            return error

    # -- the factory call's end, in the background --------------------------------

    def _settle(self, creation: Creation[T], *, served: bool) -> Waiter[T] | None:
        """A creation ended; the caller still waiting for it, if any.

        ``served``: its resource serves that caller, out of turn, so the caller
        leaves the line.  Else (the factory failed) the caller keeps its place,
        holding the slot again, to retry.
        """
        owner, creation.owner = creation.owner, None
        self.creations.discard(creation)
        if creation is self.upkeep:  # the maintainer's: it may make the next one now
            self.upkeep = None
            self._poke()
        if owner is not None:
            if served and creation.lease:
                self.line.leave(owner)
            elif not served:
                owner.holds_slot = True  # still counted a creator, in line
            owner.creation = None
        return owner

    def creation_failed(
        self, creation: Creation[T], error: BaseException, fatal: bool, counts: bool
    ) -> int:
        """The factory call raised ``error``; ``counts``: as a factory error (with backoff).

        The slot goes back to the caller waiting for it, else is freed.
        Returns the outage's attempt count when a log line is due, else 0.
        """
        attempts = 0
        with self.lock:
            owner = self._settle(creation, served=False)
            if counts:
                self.create_errors += 1
                self.last_error = error
                now = self.last_error_at = self.clock()
                if not fatal:  # a fatal error is raised, never retried
                    attempts = self.backoff.failed(now)
            if owner is not None:  # the slot goes back to its caller
                owner.failed, owner.fatal = error, fatal
                owner.event.set()
            else:
                self._creation_failed()
        return attempts

    def creation_made(
        self, creation: Creation[T], resource: T
    ) -> tuple[Waiter[T] | None, Entry[T] | None, tuple[float, int] | None, bool]:
        """The factory call returned ``resource``: register it and place it.

        Returns whom to wake, what to close (the pool closed, or it was
        retired meanwhile), the outage it ends, and whether it was refused
        (``None``, or a resource the pool holds already) with nobody to tell.
        """
        wake: Waiter[T] | None = None  # woken by the driver, once its log line is out
        to_close: Entry[T] | None = None
        outage = None
        with self.lock:
            owner = self._settle(creation, served=True)
            if self.lost:  # a dead resource's id may have been reused by this one
                self._recover_lost()
            if resource is None or id(resource) in self.alive:
                if owner is None:
                    self._creation_failed()
                    return None, None, None, True
                owner.failed = Duplicate(resource)
                owner.event.set()
                return None, None, None, False
            outage = self.backoff.outage(self.clock())
            entry = self._register(resource, creation.generation)
            if self.metrics is not None:
                self.metrics.create.record(entry.last_used - creation.started)
            if owner is not None and creation.lease and not self.closed:
                self._lease(entry)  # its own caller, out of line: nobody else wakes it
                owner.entry = entry
                owner.fresh = True
                entry.handed = owner
                wake = owner
            else:
                to_close = self._put(entry, entry.last_used)
                if owner is not None:  # prefill, waiting for it
                    owner.fresh = to_close is None
                    wake = owner
        return wake, to_close, outage, False
