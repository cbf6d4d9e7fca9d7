"""The ledger: what a pool holds and owes, and who gets a resource.

Every field is guarded by ``lock``, which is never held across a wait or a
call out to user code.  Methods whose name starts with ``_`` assume the
caller holds it; the others take it themselves (puddle's habit).

* ``slots`` is the one capacity count: resources alive (idle, leased, in
  hand-off or being closed) plus factory calls under way.  It never exceeds
  ``cap`` (``burst_limit``, else ``limit``): only :meth:`claim` (and the
  reservations of prefill and the maintainer) take a slot; only
  :meth:`_free_slot` frees one, handing it to the oldest waiter (who creates
  in it) if any and within ``cap``.  Above ``limit`` (a burst, a shrink), a
  resource that comes back when nobody waits is closed.
* ``idle`` holds resources nobody holds.  While a live waiter is parked, a
  returned resource goes straight to the oldest one (:meth:`_put`), unless
  that one has waited less than ``window`` (``fairness_window``): then it
  goes idle, a newcomer may take it first, and the oldest waiter not
  creating is woken to look (``nudged``, one at a time), keeping its place
  in line meanwhile.  So while a resource is idle and such a waiter is
  parked, one is awake to look, and no waiter is passed over once it has
  waited ``window``: the next resource returned is handed to it where it
  stands, also while it is awake.
* ``lost`` collects records of leased resources their holders dropped
  without releasing them (a weak-reference callback appends, with no lock);
  the next operation under the lock recovers their slots.
"""

from __future__ import annotations

import functools
import random
import weakref
from collections import deque
from collections.abc import Callable
from typing import Any, TypeVar

from .._config import Settings
from .._errors import PoolClosed, PoolExhausted, TimeoutFacts, closed_message, exhausted_message
from .._leaks import Leaks
from .._metrics import Metrics
from .._stats import PoolStats
from ..events import Hooks
from .backoff import Backoff
from .line import Line, Waiter
from .lost import LostLeases, on_lost
from .records import DISPOSED, RECYCLED, SURPLUS, Entry, LostRef
from .reports import facts, snapshot
from .steps import SLOT, Creation, Stale, Step, Vet

T = TypeVar("T")

RECYCLE_JITTER = 0.05  # each resource's pool_recycle is cut by up to this fraction


def unbound_event() -> Any:
    raise RuntimeError("no event before the pool is bound")  # pragma: no cover


def _always() -> object:
    return True


def run_now(fn: Callable[[], object]) -> None:
    fn()


class Ledger(LostLeases[T]):
    """The core of a pool's state: sans-I/O, the same object for both faces.

    It never awaits, never calls user code, never formats a resource, and
    knows no event loop or thread: the driver gives it a lock factory, a
    clock, an event factory and a way to run a function soon, and rebinds the
    last three when the pool binds to its loop.  Its fields are slots: the
    hot path reads them, and slot reads are the cheapest.
    """

    __slots__ = (
        "__weakref__", "_max_backoff", "_new_lock", "_on_lost", "_plain", "_pop_idle", "acquired",
        "alive", "asks_is_closed", "backoff", "base", "broken", "call_soon", "cancelled", "cap",
        "check_interval", "checks", "chore_event", "clock", "close_errors", "closed", "closes",
        "create_errors", "created", "creating", "creations", "exhausted", "fill", "generation",
        "hooks", "idle", "idle_timeout", "keepalive", "kept", "kind", "last_error",
        "last_error_at", "leaks", "leased", "limit", "line", "lock", "made_for", "maintained",
        "max_waiting", "metrics", "min_size", "new_event", "nudged", "owed", "owner", "plain",
        "recycle", "refused", "resets", "served", "slots", "stopping", "sweeps", "timeouts",
        "upkeep", "vets", "waited", "wakes_from_any_thread", "window"
    )  # fmt: skip

    def __init__(
        self,
        kind: str,
        settings: Settings,
        *,
        checks: bool,
        resets: bool,
        new_lock: Callable[[], Any],
        clock: Callable[[], float],
    ) -> None:
        """``checks``, ``resets``: whether the pool has a ``check``, a ``reset``."""
        self.kind = kind  # the face's class name, for errors
        self.limit = settings.pool_size
        self.cap = settings.cap
        self.min_size = settings.min_size
        self.max_waiting = settings.max_waiting
        self.window = settings.fairness_window  # how long the oldest waiter may be passed by
        self.idle_timeout = settings.idle_timeout
        self.keepalive = settings.keepalive
        self.sweeps = settings.idle_timeout is not None  # without a maintainer: on release
        self.recycle = settings.recycle
        self.check_interval = settings.check_interval
        asks_is_closed = settings.is_closed is not None
        self.asks_is_closed = asks_is_closed  # every hand-out is vetted
        self.vets = checks or asks_is_closed  # some hand-outs are vetted
        self.resets = resets  # every return runs reset first
        leak_timeout = settings.leak_timeout
        self.leaks = None if leak_timeout is None else Leaks(leak_timeout)
        self.metrics = Metrics() if settings.metrics else None
        self.hooks: Hooks | None = None  # on_event's, set by the face (it names the pool)
        self.plain = not resets and leak_timeout is None and not asks_is_closed
        self._plain = self.plain  # with a maintainer; without one, sweeps makes it False
        lifo, max_backoff = settings.lifo, settings.max_backoff
        self.clock = clock
        self.new_event: Callable[[], Any] = unbound_event
        self.call_soon: Callable[[Callable[[], object]], None] = run_now
        self.wakes_from_any_thread = True  # False: call_soon, on the pool's own loop
        self._new_lock = new_lock
        self._max_backoff = max_backoff
        self.idle: deque[Entry[T]] = deque()
        self._pop_idle = self.idle.pop if lifo else self.idle.popleft
        self.alive: dict[int, Entry[T]] = {}  # by id(resource): who is ours, and leased
        self.line: Line[T] = Line()
        self.lost: deque[Entry[T]] = deque()
        self.generation = 0  # recycle(force=True) bumps it: older resources are retired
        self.closed = False
        self._on_lost = functools.partial(on_lost, weakref.ref(self))  # one for every LostRef
        self.owner: Callable[[], object] = _always  # the pool, weakly (set by the face)
        self._start_empty()

    def _start_empty(self) -> None:
        """Every gauge and counter at zero, and a fresh lock: a new pool, or a forked child's."""
        self.lock = self._new_lock()
        self.slots = self.creating = self.leased = 0
        self.creations: set[Creation[T]] = set()  # running in the background
        self.created = self.closed_count = self.acquired = 0
        self.timeouts = self.create_errors = self.close_errors = 0
        self.broken = self.lost_count = self.exhausted = 0
        self.waited = self.made_for = self.served = self.cancelled = self.refused = self.checks = 0
        self.closes = [0] * 7  # by reason (records.REASONS)
        self.base: PoolStats | None = None  # the totals at the last stats(reset=True)
        self.owed = 0  # resources the maintainer retired and owes a replacement for
        self.upkeep: Creation[T] | None = None  # the maintainer's factory call under way
        self.maintained = self.stopping = False  # a maintainer runs; it was asked to stop
        self.fill: list[Any] = []  # events of open(wait=True) callers, set once filled
        self.kept: dict[int, float] = {}  # by record key: its last passed keepalive check
        self.last_error: BaseException | None = None
        self.last_error_at = 0.0
        self.backoff = Backoff(self._max_backoff)
        self.chore_event: Any = None  # set when the maintainer has work (it waits on it)
        self.nudged: Waiter[T] | None = None  # woken to look for an idle resource (_nudge)
        self.plain = self._plain and not self.sweeps  # no maintainer (yet)

    # -- the acquire hot path ----------------------------------------------------

    def claim(self, front: bool = False) -> Step[T]:
        """An idle resource, a slot to create in, or a place in line.

        ``front``: the caller was at the head of the line already (it looks
        again), so it keeps its place ahead of those who came later.
        """
        with self.lock:
            if self.closed:
                self.refused += not front  # one looking again: counted as its driver gives up
                raise PoolClosed(closed_message(self.kind))
            if self.lost:
                self._recover_lost()
            if self.idle:
                entry = self._pop_idle()
                now = self.clock()
                if now >= entry.expires_at or entry.generation != self.generation:  # _usable
                    entry.reason = RECYCLED
                    return Stale(entry)
                if self.leaks is not None:
                    self._lease(entry)
                else:  # _lease, inlined: this is the acquire hot path
                    entry.leased = True
                    entry.leased_at = now  # a hold starts (for metrics: cheaper than a test)
                    self.leased += 1
                    self.acquired += 1
                if self.vets and (
                    self.asks_is_closed or now - entry.last_used >= self.check_interval
                ):
                    return Vet(entry)
                return entry
            if self.slots < self.cap:
                self.slots += 1
                self.creating += 1
                return SLOT
            return self._park(front)

    def _claim(self, front: bool = False) -> Step[T]:
        """:meth:`claim`, for a caller holding the lock already (not the hot path).

        It must agree with ``claim``, which is this with ``_lease`` and
        ``_vetting`` inlined: an extra call there costs 4 % of an acquire.
        """
        if self.closed:
            self.refused += not front
            raise PoolClosed(closed_message(self.kind))
        if self.lost:
            self._recover_lost()
        if self.idle:
            entry = self._pop_idle()
            now = self.clock()
            if not self._usable(entry, now):
                entry.reason = RECYCLED
                return Stale(entry)
            self._lease(entry)
            return self._vetting(entry, now)
        if self.slots < self.cap:
            self.slots += 1
            self.creating += 1
            return SLOT
        return self._park(front)

    def _park(self, front: bool) -> Waiter[T]:
        """A place in line, unless ``max_waiting`` callers wait already.

        ``front``: it is in line already (looking again), so never refused.
        """
        line = self.line
        waiting = self.max_waiting
        if not front and waiting is not None and line.waiting - line.creators >= waiting:
            self.exhausted += 1
            raise PoolExhausted(exhausted_message(self.kind, waiting), self._stats())
        return self._enqueue(front=front)

    def _enqueue(self, *, front: bool) -> Waiter[T]:
        waiter: Waiter[T] = Waiter(self.new_event(), self.clock())
        self.line.join(waiter, front=front)
        return waiter

    def _usable(self, entry: Entry[T], now: float) -> bool:
        return now < entry.expires_at and entry.generation == self.generation

    def _vetting(self, entry: Entry[T], now: float) -> Entry[T] | Vet[T]:
        if self.vets and (self.asks_is_closed or now - entry.last_used >= self.check_interval):
            return Vet(entry)
        return entry

    # -- placing a resource, freeing a slot ----------------------------------------

    def _put(self, entry: Entry[T], now: float) -> Entry[T] | None:
        """Place an unheld resource: to the oldest waiter, else (or while it is young) idle.

        Returns it instead when it must be closed (expired, retired, or the
        pool is closed): the caller closes it and frees its slot.
        """
        if self.closed or now >= entry.expires_at or entry.generation != self.generation:  # _usable
            entry.reason = DISPOSED if self.closed else RECYCLED
            return entry
        if self.slots > self.limit and (self.slots > self.cap or not self.line.waiting):
            entry.reason = SURPLUS  # a burst, or shrunk: closed unless it serves a waiter
            return entry
        line = self.line
        oldest = line.first() if line.waiting else None
        if oldest is None:
            self.idle.append(entry)
            return None
        if (
            self.window
            and now - oldest.since < self.window
            and not line.creators
            and self.slots <= self.limit  # a burst's resource must serve a waiter, or close
        ):
            # The oldest waiter is young: whoever asks first may take this (design
            # decision 1); the waiter is woken to look, unless one is on its way.
            self.idle.append(entry)
            self._nudge()
            return None
        self._hand(entry, line.pop())  # type: ignore[arg-type]  # the oldest, still in line
        return None

    def _nudge(self) -> None:
        """Wake the oldest waiter not creating to look for an idle resource, unless one is awake.

        It keeps its place in line meanwhile, so a resource returned once it
        has waited the window, or a freed slot, is still handed to it there.
        """
        if self.nudged is None and self.idle:
            waiter = self.line.first(looking=True)
            if waiter is not None:
                self.nudged = waiter
                waiter.event.set()

    def _looked(self, waiter: Waiter[T]) -> Step[T]:
        """The nudged waiter looks: it takes an idle resource, else waits on in its place."""
        self.nudged = None
        if not self.idle:
            waiter.event = self.new_event()  # its last one is set
            return waiter
        self.line.leave(waiter)
        step = self._claim(front=True)  # a resource (or one to replace): never a wait
        self._nudge()  # more are idle: the next waiter looks too
        return step

    def _woken(self, waiter: Waiter[T]) -> None:
        """Wake a waiter taken out of line with something for it (a resource, a slot)."""
        if waiter is self.nudged:  # awake already: another looks, if there is something idle
            self.nudged = None
            self._nudge()
        elif waiter.failed is None:
            waiter.event.set()

    def _hand(self, entry: Entry[T], waiter: Waiter[T]) -> None:
        """Lease ``entry`` to a waiter taken out of line, and wake it."""
        self._lease(entry)
        entry.handed = waiter
        waiter.entry = entry
        self._woken(waiter)
        waiter.failed = None  # if its factory call failed, it was awake: it takes this instead
        if waiter.creation is not None:  # its factory call goes on for whoever is next
            waiter.creation.owner = None
            waiter.creation = None
        elif waiter.holds_slot:  # it was backing off in a slot it no longer needs
            waiter.holds_slot = False
            self._creation_failed()

    def free_slot(self) -> None:
        with self.lock:
            self._free_slot()

    def _free_slot(self) -> None:
        """A slot emptied: the oldest waiter gets to create in it, else it is free.

        Not above ``cap`` (the pool was shrunk): then it is free, and gone.
        """
        waiter = self.line.pop(for_slot=True) if self.slots <= self.cap else None
        if waiter is None:
            self.slots -= 1
            if self.slots < self.min_size:
                self._poke()  # below min_size: the maintainer makes up for it
            return
        self.creating += 1
        waiter.slot = True
        self._woken(waiter)

    def _creation_failed(self) -> None:
        """A reserved slot will hold no resource after all: free it."""
        self.creating -= 1
        self._free_slot()

    def _filled(self) -> None:
        """``min_size`` resources exist (or the pool closed): wake ``open(wait=True)``."""
        fill, self.fill = self.fill, []
        for event in fill:
            event.set()

    def _poke(self) -> None:
        """Wake the maintainer, if it waits: there is work for it."""
        event = self.chore_event
        if event is not None:
            self.chore_event = None
            event.set()

    # -- leases ------------------------------------------------------------------

    def _lease(self, entry: Entry[T]) -> None:
        entry.leased = True
        self.leased += 1
        self.acquired += 1
        if self.leaks is not None:
            self.leaks.leased(entry, self.clock())

    def _unlease(self, entry: Entry[T], *, taken: bool = True) -> None:
        """``taken=False``: the caller never got it, so it does not count as acquired."""
        entry.leased = False
        self.leased -= 1
        if not taken:
            self.acquired -= 1
        if self.leaks is not None:
            self.leaks.unleased(entry)

    def abandon(self, waiter: Waiter[T]) -> Entry[T] | None:
        with self.lock:
            return self._abandon(waiter)

    def _abandon(self, waiter: Waiter[T]) -> Entry[T] | None:
        """A waiter gave up (or the pool closed): pass on what it holds, leave the line.

        Returns a resource the caller must close (the pool closed meanwhile).
        """
        if waiter.entry is not None:
            entry, waiter.entry = waiter.entry, None
            entry.handed = None
            self._unlease(entry, taken=False)
            return self._put(entry, self.clock())
        if waiter.slot:
            waiter.slot = False
            self.creating -= 1
            self._free_slot()
            return None
        if not waiter.closed:
            self.line.leave(waiter)
        if waiter is self.nudged:  # it was to look: another looks instead
            self.nudged = None
            self._nudge()
        if waiter.creation is not None:  # its factory call goes on, for whoever is next
            waiter.creation.owner = None
            waiter.creation = None
        if waiter.holds_slot or waiter.failed is not None:  # a slot it held for a retry
            waiter.holds_slot = False
            waiter.failed = None
            self._creation_failed()
        return None

    # -- new resources -------------------------------------------------------------

    def _register(self, resource: T, generation: int) -> Entry[T]:
        """A factory call returned a new resource: its slot now holds it."""
        self.creating -= 1
        self.backoff.succeeded()
        if self.fill and self.slots - self.creating >= self.min_size:
            self._filled()
        now = self.clock()
        expires_at = now + self.recycle * (1.0 - RECYCLE_JITTER * random.random())
        entry = Entry(resource, id(resource), expires_at, generation, now)
        try:
            ref = LostRef(resource, self._on_lost)
        except TypeError:
            pass  # no weak references to this type: a dropped lease goes unnoticed
        else:
            ref.entry = entry
            entry.ref = ref
        self.alive[entry.key] = entry
        self.created += 1
        return entry

    # -- what the pool can say about itself ------------------------------------------

    def _stats(self) -> PoolStats:
        return snapshot(self) if self.base is None else snapshot(self).since(self.base)

    def timeout_facts(self) -> TimeoutFacts:
        with self.lock:
            return self._timeout_facts()

    def _timeout_facts(self) -> TimeoutFacts:
        """Count a timeout and note what its message will say."""
        self.timeouts += 1
        return facts(self)
