"""The pool state alone (``respool._state``): no event loop, no threads, no sleeping.

Driven as its drivers drive it (``_async/acquiring.py``, ``creating.py``,
``closing.py``), with a fake clock (a mutable float), a plain lock and a fake
event that counts its ``set()`` calls, so every decision is seen directly:
who was woken, which record came back, what ``stats()`` says.  In the spirit
of trio's ``test_parking_lot.py`` and HikariCP's ``TestConcurrentBag``.
"""

from __future__ import annotations

import gc
import math
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from respool import PoolClosed
from respool._config import DEFAULT, settings
from respool._errors import release_error
from respool._state import PoolState
from respool._state.closings import REPLACING
from respool._state.line import Line, Waiter
from respool._state.records import Entry
from respool._state.returns import RETURNING
from respool._state.steps import (
    AGAIN,
    BEFORE_CREATED,
    KEPT_FAILING,
    MADE,
    NO_RETRY_FITS,
    SLOT,
    WAITING,
    Creation,
    Duplicate,
    Stale,
    TimedOut,
    Vet,
)

ADVICE = "release or discard each acquired resource exactly once, or use `lease()`"
NOT_LEASED = "does not lease it (released twice, or never acquired from this pool)"
GOT_BACK = (
    "already got it back: it was released twice (the first release is still resetting it, "
    "or handed it to a waiter that has not taken it yet)"
)
CLOSED = "this Pool was disposed; create a new pool"


class Clock:
    """The state's clock: ``now`` is whatever the test says."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Event:
    """A face's event, reduced to what the state does with it: ``set()``, counted."""

    def __init__(self) -> None:
        self.sets = 0

    def set(self) -> None:
        self.sets += 1


class DeadLoopEvent(Event):
    """An event on a loop that has ended: setting it raises, as anyio's would."""

    def set(self) -> None:
        raise RuntimeError("the loop is closed")


class Res:
    """A resource: weakly referenceable, so the state watches for dropped leases."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"Res({self.name})"


class Rig:
    """One state, its clock and its call_soon queue, and the drivers' common moves."""

    def __init__(self, state: PoolState[Res], clock: Clock) -> None:
        self.state, self.clock = state, clock
        self.soon: list[Callable[[], object]] = []
        state.new_event = Event
        state.call_soon = self.soon.append
        state.wakes_from_any_thread = True

    def made(self, resource: Res) -> Entry[Res]:
        """Prefill one resource: it goes to the oldest waiter, else idle."""
        state = self.state
        assert state.reserve(state.limit)
        creation, watcher = state.next_creation(None, None, lease=False)
        assert isinstance(creation, Creation)
        assert state.creation_made(creation, resource) == (watcher, None, None, False)
        assert state.creation_ended(watcher) is MADE
        return state.alive[id(resource)]

    def created(self, resource: Res) -> Entry[Res]:
        """Acquire by creating: a slot, a factory call that returns ``resource``, taken."""
        state = self.state
        assert state.claim() is SLOT
        creation, waiter = state.next_creation(None, None, lease=True)
        assert isinstance(creation, Creation)
        wake, to_close, _, refused = state.creation_made(creation, resource)
        assert wake is waiter and to_close is None and not refused
        entry = state.take(waiter, True)
        assert isinstance(entry, Entry) and entry.resource is resource
        return entry

    def claimed(self) -> Entry[Res]:
        entry = self.state.claim()
        assert isinstance(entry, Entry)
        return entry

    def waiter(self, front: bool = False) -> Waiter[Res]:
        waiter = self.state.claim(front=front)
        assert isinstance(waiter, Waiter)
        return waiter

    def release(self, resource: Res) -> None:
        assert self.state.return_quickly(resource, False)

    def closed(self, entry: Entry[Res]) -> None:
        """The releaser ran on a resource nobody holds: forget it, free its slot."""
        self.state.closed_one(entry, failed=False, late=False)
        self.state.free_slot()

    def creator(self, deadline: float | None = None) -> tuple[Creation[Res], Waiter[Res]]:
        """Claim a slot and start a factory call in it."""
        assert self.state.claim() is SLOT
        creation, waiter = self.state.next_creation(None, deadline, lease=True)
        assert isinstance(creation, Creation) and waiter is not None
        return creation, waiter

    def failed(self, creation: Creation[Res], waiter: Waiter[Res], error: Exception) -> float:
        """The factory raised; the creator wakes, sees it, and is told when to retry."""
        state = self.state
        state.creation_failed(creation, error, False, True)
        assert state.take(waiter, True) is AGAIN
        assert state.creation_ended(waiter) is error
        resume, same = state.next_creation(waiter, None, lease=True)
        assert isinstance(resume, float) and same is waiter
        return resume


def make_settings(pool_size: int, **options: Any) -> Any:
    values: dict[str, Any] = {
        "pool_size": pool_size,
        "pool_recycle": None,
        "lifo": True,
        "acquire_timeout": 30.0,
        "check_interval": 0.5,
        "leak_timeout": None,
        "cleanup_timeout": None,
        "max_backoff": 2.0,
        "is_closed": None,
        "discard_on": (),
        "fatal": None,
        "create_timeout": DEFAULT,
        "fairness_window": 0.0,  # strict FIFO, unless a test says otherwise
    }
    values.update(options)
    return settings(**values)


def consistent(state: PoolState[Res]) -> None:
    """What holds between any two calls, whatever the test did."""
    stats = state.stats()
    assert stats.size + stats.creating == state.slots <= state.limit
    assert min(stats.size, stats.creating, stats.idle, stats.leased, stats.waiting) >= 0
    live = [w for w in state.line._waiters if not w.abandoned]
    assert state.line.waiting == len(live)
    assert state.line.creators == sum(w.creation is not None or w.holds_slot for w in live)
    assert state.leased == sum(e.leased for e in state.alive.values())
    for entry in state.idle:
        assert state.alive[entry.key] is entry and not entry.leased and entry.handed is None
    assert len({e.key for e in state.idle}) == len(state.idle)
    # Idle resources and a waiter that could take one: one such waiter is awake to look.
    if state.idle and state.line.first(looking=True) is not None:
        assert state.nudged is not None and not state.nudged.abandoned


@pytest.fixture
def make() -> Iterator[Callable[..., Rig]]:
    """``make(pool_size, checks=..., resets=..., **settings)``: a state on a fake clock."""
    rigs: list[Rig] = []

    def build(pool_size: int = 2, *, checks: bool = False, resets: bool = False, **options: Any):
        clock = Clock()
        state: PoolState[Res] = PoolState(
            "Pool",
            make_settings(pool_size, **options),
            checks=checks,
            resets=resets,
            new_lock=threading.Lock,
            clock=clock,
        )
        rigs.append(Rig(state, clock))
        return rigs[-1]

    yield build
    for rig in rigs:
        consistent(rig.state)


def gauges(state: PoolState[Res]) -> dict[str, int]:
    s = state.stats()
    return {
        "size": s.size,
        "idle": s.idle,
        "leased": s.leased,
        "creating": s.creating,
        "waiting": s.waiting,
    }


def gauge(size: int = 0, idle: int = 0, leased: int = 0, creating: int = 0, waiting: int = 0):
    return {"size": size, "idle": idle, "leased": leased, "creating": creating, "waiting": waiting}


a, b, c = Res("a"), Res("b"), Res("c")


# -- claiming an idle resource -------------------------------------------------------------


def test_claim_takes_the_newest_idle_resource_when_lifo(make):
    rig = make(3)
    for resource in (a, b, c):
        rig.made(resource)
    assert [rig.claimed().resource for _ in range(3)] == [c, b, a]
    assert gauges(rig.state) == gauge(size=3, leased=3)
    assert rig.state.stats().acquired == 3


def test_claim_takes_the_oldest_idle_resource_when_fifo(make):
    rig = make(3, lifo=False)
    for resource in (a, b, c):
        rig.made(resource)
    assert [rig.claimed().resource for _ in range(3)] == [a, b, c]


def test_a_released_resource_is_the_next_lifo_claim(make):
    rig = make(2)
    rig.made(a)
    rig.made(b)
    rig.claimed()  # b
    rig.release(b)
    assert rig.claimed().resource is b


def test_a_released_resource_is_the_last_fifo_claim(make):
    rig = make(2, lifo=False)
    rig.made(a)
    rig.made(b)
    rig.claimed()  # a
    rig.release(a)
    assert [rig.claimed().resource for _ in range(2)] == [b, a]


def test_claim_vets_an_idle_resource_unused_for_check_interval(make):
    rig = make(1, checks=True, check_interval=0.5)
    rig.made(a)
    rig.clock.now = 0.4
    assert isinstance(rig.state.claim(), Entry)  # used 0.4 s ago: trusted
    rig.release(a)
    rig.clock.now = 0.9
    step = rig.state.claim()
    assert isinstance(step, Vet) and step.entry.resource is a


def test_claim_vets_a_resource_released_by_a_failed_holder_at_once(make):
    rig = make(1, checks=True, check_interval=0.5)
    rig.made(a)
    rig.claimed()
    assert rig.state.return_quickly(a, True)  # suspect
    assert isinstance(rig.state.claim(), Vet)


def test_claim_vets_every_hand_out_when_the_pool_asks_is_closed(make):
    rig = make(1, is_closed=lambda resource: False)
    rig.made(a)
    step = rig.state.claim()
    assert isinstance(step, Vet) and step.entry.resource is a


def test_a_resource_put_back_unchecked_is_idle_and_not_counted_acquired(make):
    rig = make(1, checks=True, check_interval=0)
    rig.made(a)
    step = rig.state.claim()
    assert isinstance(step, Vet)
    assert rig.state.put_back(step.entry) is None
    assert gauges(rig.state) == gauge(size=1, idle=1)
    assert rig.state.stats().acquired == 0


# -- slots and the line ------------------------------------------------------------------


def test_claim_reserves_slots_up_to_pool_size_then_queues(make):
    rig = make(2)
    assert rig.state.claim() is SLOT
    assert rig.state.claim() is SLOT
    first, second = rig.waiter(), rig.waiter()
    assert first is not second
    assert gauges(rig.state) == gauge(creating=2, waiting=2)


def test_released_resources_serve_waiters_in_arrival_order(make):
    rig = make(2)
    rig.made(a)
    rig.made(b)
    rig.claimed()
    rig.claimed()
    w1, w2, w3 = rig.waiter(), rig.waiter(), rig.waiter()
    rig.release(b)
    assert w1.entry is not None and w1.entry.resource is b
    assert (w1.event.sets, w2.event.sets, w3.event.sets) == (1, 0, 0)
    rig.release(a)
    assert w2.entry is not None and w2.entry.resource is a
    assert (w1.event.sets, w2.event.sets, w3.event.sets) == (1, 1, 0)
    assert gauges(rig.state) == gauge(size=2, leased=2, waiting=1)
    taken = rig.state.take(w1, True)
    assert isinstance(taken, Entry) and taken.resource is b and taken.handed is None


def test_a_waiter_looking_again_keeps_its_place_ahead_of_later_ones(make):
    rig = make(1)
    rig.made(a)
    rig.claimed()
    later = rig.waiter()
    again = rig.waiter(front=True)
    rig.release(a)
    assert again.entry is not None and later.entry is None
    assert (again.event.sets, later.event.sets) == (1, 0)


def test_a_returned_resource_skips_waiters_who_gave_up(make):
    rig = make(1)
    rig.made(a)
    rig.claimed()
    w1, w2, w3 = rig.waiter(), rig.waiter(), rig.waiter()
    assert rig.state.abandon(w1) is None
    assert rig.state.abandon(w1) is None  # twice changes nothing
    assert rig.state.line.waiting == 2
    rig.release(a)
    assert w1.entry is None and w2.entry is not None and w3.entry is None
    assert (w1.event.sets, w2.event.sets, w3.event.sets) == (0, 1, 0)
    assert gauges(rig.state) == gauge(size=1, leased=1, waiting=1)


def test_a_waiter_giving_up_passes_its_resource_to_the_next_one(make):
    rig = make(1)
    rig.made(a)
    rig.claimed()
    w1, w2 = rig.waiter(), rig.waiter()
    rig.release(a)
    assert rig.state.abandon(w1) is None
    assert w1.entry is None
    assert w2.entry is not None and w2.entry.resource is a and w2.entry.handed is w2
    assert w2.event.sets == 1
    assert gauges(rig.state) == gauge(size=1, leased=1)
    assert rig.state.stats().acquired == 2  # the first claim and w2's; w1's is undone


def test_a_waiter_giving_up_with_nobody_behind_leaves_its_resource_idle(make):
    rig = make(1)
    rig.made(a)
    rig.claimed()
    w1 = rig.waiter()
    rig.release(a)
    assert rig.state.abandon(w1) is None
    assert gauges(rig.state) == gauge(size=1, idle=1)
    assert rig.state.stats().acquired == 1


def test_a_waiter_giving_up_after_dispose_returns_its_resource_to_close(make):
    rig = make(1)
    entry = rig.made(a)
    rig.claimed()
    w1 = rig.waiter()
    rig.release(a)
    assert rig.state.close(False) == ([], [])
    assert rig.state.abandon(w1) is entry
    assert gauges(rig.state) == gauge(size=1)  # closing, still holding its slot
    rig.closed(entry)
    assert gauges(rig.state) == gauge()


def test_the_line_is_compacted_when_those_who_left_outnumber_the_rest(make):
    rig = make(1)
    rig.made(a)
    rig.claimed()
    waiters = [rig.waiter() for _ in range(41)]
    for waiter in waiters[:36]:
        rig.state.abandon(waiter)
    assert len(rig.state.line._waiters) == 41  # 41 <= 2 * 5 + 32: kept
    rig.state.abandon(waiters[36])  # 41 > 2 * 4 + 32
    assert list(rig.state.line._waiters) == waiters[37:]
    assert rig.state.line.waiting == 4
    rig.release(a)
    assert waiters[37].entry is not None
    assert [w.event.sets for w in waiters[36:]] == [0, 1, 0, 0, 0]


# -- the line, alone -------------------------------------------------------------------------


def test_line_pop_for_a_slot_passes_creators_and_keeps_their_order():
    line: Line[Res] = Line()
    creating, backing_off, plain, later = (Waiter(Event()) for _ in range(4))
    creating.creation = Creation(0, creating, True)
    backing_off.holds_slot = True
    for waiter in (creating, backing_off, plain, later):
        line.join(waiter, front=False)
    line.creators = 2
    assert line.pop(for_slot=True) is plain
    assert list(line._waiters) == [creating, backing_off, later]
    assert (line.waiting, line.creators) == (3, 2)
    assert line.pop() is creating
    assert (line.waiting, line.creators) == (2, 1)


def test_line_pop_of_nobody_alive_is_none():
    line: Line[Res] = Line()
    gone = Waiter(Event())
    line.join(gone, front=False)
    line.leave(gone)
    assert line.pop() is None
    assert line.waiting == 0


# -- a free slot -----------------------------------------------------------------------------


def test_a_freed_slot_goes_to_the_oldest_waiter_not_creating(make):
    rig = make(2)
    rig.made(a)
    rig.claimed()
    _, creator = rig.creator()
    w1, w2 = rig.waiter(), rig.waiter()
    assert gauges(rig.state) == gauge(size=1, leased=1, creating=1, waiting=2)
    entry, to_close, overdue = rig.state.take_back(a, "discard", False)
    assert to_close is entry and overdue is None
    rig.closed(entry)
    assert w1.slot and not w2.slot and not creator.slot
    assert (creator.event.sets, w1.event.sets, w2.event.sets) == (0, 1, 0)
    assert rig.state.take(w1, True) is SLOT
    assert gauges(rig.state) == gauge(creating=2, waiting=1)
    stats = rig.state.stats()
    assert (stats.broken, stats.closed) == (1, 1)


def test_a_waiter_giving_up_a_slot_passes_it_to_the_next_one(make):
    rig = make(1)
    entry = rig.created(a)
    w1, w2 = rig.waiter(), rig.waiter()
    rig.state.take_back(a, "discard", False)
    rig.closed(entry)
    assert w1.slot
    assert rig.state.abandon(w1) is None
    assert not w1.slot and w2.slot and w2.event.sets == 1
    assert gauges(rig.state) == gauge(creating=1)


def test_a_freed_slot_with_nobody_waiting_is_free(make):
    rig = make(1)
    entry = rig.created(a)
    rig.state.take_back(a, "discard", False)
    assert gauges(rig.state) == gauge(size=1)
    rig.closed(entry)
    assert gauges(rig.state) == gauge()
    assert rig.state.claim() is SLOT


# -- recycling: too old, or retired ------------------------------------------------------------


def test_an_idle_resource_past_pool_recycle_is_stale_on_claim(make):
    rig = make(1, pool_recycle=10)
    entry = rig.made(a)
    assert 9.5 <= entry.expires_at <= 10  # cut by up to 5 %
    rig.clock.now = 9.4
    rig.claimed()
    rig.release(a)
    rig.clock.now = 10.0
    step = rig.state.claim()
    assert isinstance(step, Stale) and step.entry is entry
    assert gauges(rig.state) == gauge(size=1)  # being closed: its slot is still taken
    assert rig.state.stats().acquired == 1
    rig.closed(entry)
    assert gauges(rig.state) == gauge()
    assert rig.state.stats().closed == 1


def test_a_resource_past_pool_recycle_is_not_released_quickly_but_closed(make):
    rig = make(1, pool_recycle=10)
    entry = rig.made(a)
    rig.claimed()
    rig.clock.now = 10.0
    assert not rig.state.return_quickly(a, False)
    assert entry.leased  # nothing changed: the slow path closes it
    assert rig.state.take_back(a, "release", False) == (entry, entry, None)
    assert gauges(rig.state) == gauge(size=1)
    rig.closed(entry)


def test_recycle_takes_out_only_the_idle_resources_past_their_time(make):
    rig = make(2, pool_recycle=10)
    old = rig.made(a)
    rig.clock.now = 5.0
    young = rig.made(b)
    rig.clock.now = 10.0
    assert rig.state.take_stale(False) == [old]
    assert list(rig.state.idle) == [young]
    assert rig.state.generation == 0
    rig.closed(old)


def test_a_forced_recycle_takes_every_idle_resource_and_retires_the_leased(make):
    rig = make(3)
    ea, eb, ec = rig.made(a), rig.made(b), rig.made(c)
    rig.claimed()  # c
    assert rig.state.take_stale(True) == [ea, eb]
    assert rig.state.generation == 1
    assert gauges(rig.state) == gauge(size=3, leased=1)
    assert not rig.state.return_quickly(c, False)
    assert rig.state.take_back(c, "release", False) == (ec, ec, None)
    for entry in (ea, eb, ec):
        rig.closed(entry)


def test_claim_finds_an_idle_resource_of_an_older_generation_stale(make):
    # No idle resource outlives a forced recycle (take_stale takes them all),
    # so this is claim's own check seen directly, with the generation bumped by hand.
    rig = make(1)
    entry = rig.made(a)
    rig.state.generation += 1
    step = rig.state.claim()
    assert isinstance(step, Stale) and step.entry is entry
    rig.closed(entry)


def test_a_creation_started_before_a_forced_recycle_is_closed_when_prefilled(make):
    rig = make(1)
    assert rig.state.reserve(1)
    creation, watcher = rig.state.next_creation(None, None, lease=False)
    assert isinstance(creation, Creation) and creation.generation == 0
    assert rig.state.take_stale(True) == []
    wake, to_close, _, refused = rig.state.creation_made(creation, a)
    assert wake is watcher and not refused
    assert to_close is not None and to_close.resource is a and to_close.generation == 0
    assert rig.state.creation_ended(watcher) is AGAIN  # not placed
    rig.closed(to_close)
    assert gauges(rig.state) == gauge()


def test_a_creation_started_before_a_forced_recycle_serves_its_caller_once(make):
    rig = make(1)
    creation, waiter = rig.creator()
    rig.state.take_stale(True)
    wake, to_close, _, _ = rig.state.creation_made(creation, a)
    assert wake is waiter and to_close is None
    entry = rig.state.take(waiter, True)
    assert isinstance(entry, Entry)
    assert not rig.state.return_quickly(a, False)  # retired: closed on its return
    assert rig.state.take_back(a, "release", False) == (entry, entry, None)
    rig.closed(entry)


def refused(state, resource, how):
    """``take_back`` refuses ``resource``: the error the driver raises for it."""
    problem = state.take_back(resource, how, False)
    assert isinstance(problem, str), problem
    return release_error(state.kind, how, resource, problem)


# -- giving back twice, or what is not ours --------------------------------------------------


def test_a_double_release_is_refused_and_named(make):
    rig = make(1)
    rig.made(a)
    rig.claimed()
    rig.release(a)
    before = rig.state.stats()
    assert not rig.state.return_quickly(a, False)
    assert (
        str(refused(rig.state, a, "release"))
        == f"release(Res(a)): this Pool {NOT_LEASED}; {ADVICE}"
    )
    assert rig.state.stats() == before


def test_a_foreign_object_is_refused_and_named(make):
    rig = make(1)
    rig.made(a)
    stranger = Res("stranger")
    assert not rig.state.return_quickly(stranger, False)
    assert (
        str(refused(rig.state, stranger, "discard"))
        == f"discard(Res(stranger)): this Pool {NOT_LEASED}; {ADVICE}"
    )


def test_a_release_of_what_was_handed_to_a_waiter_is_refused_and_named(make):
    rig = make(1)
    rig.made(a)
    rig.claimed()
    waiter = rig.waiter()
    rig.release(a)
    before = rig.state.stats()
    assert not rig.state.return_quickly(a, False)
    assert (
        str(refused(rig.state, a, "release")) == f"release(Res(a)): this Pool {GOT_BACK}; {ADVICE}"
    )
    assert rig.state.stats() == before
    assert waiter.entry is not None and waiter.entry.handed is waiter


def test_a_release_during_reset_is_refused_and_named(make):
    rig = make(1, resets=True)
    rig.made(a)
    rig.claimed()
    assert not rig.state.return_quickly(a, False)  # a reset runs on every return
    entry, to_close, _ = rig.state.take_back(a, "release", False)
    assert to_close is None and entry.handed is RETURNING
    assert (
        str(refused(rig.state, a, "release")) == f"release(Res(a)): this Pool {GOT_BACK}; {ADVICE}"
    )
    assert rig.state.reset_done(entry, True) is None
    assert gauges(rig.state) == gauge(size=1, idle=1)


def test_a_failed_reset_returns_the_resource_to_close_as_broken(make):
    rig = make(1, resets=True)
    rig.made(a)
    rig.claimed()
    entry, _, _ = rig.state.take_back(a, "release", False)
    assert rig.state.reset_done(entry, False) is entry
    assert rig.state.stats().broken == 1
    assert gauges(rig.state) == gauge(size=1)
    rig.closed(entry)


# -- creating --------------------------------------------------------------------------------


def test_next_creation_starts_a_factory_call_owned_by_a_creator_at_the_front(make):
    rig = make(2)
    rig.made(a)
    rig.claimed()
    assert rig.state.claim() is SLOT
    plain = rig.waiter()
    creation, creator = rig.state.next_creation(None, None, lease=True)
    assert isinstance(creation, Creation)
    assert creation.owner is creator and creator.creation is creation
    assert creation.lease and creation.generation == 0
    assert rig.state.creations == {creation}
    assert list(rig.state.line._waiters) == [creator, plain]
    assert (rig.state.line.waiting, rig.state.line.creators) == (2, 1)
    assert gauges(rig.state) == gauge(size=1, leased=1, creating=1, waiting=1)


def test_a_made_resource_goes_to_its_creator_fresh(make):
    rig = make(1, checks=True, check_interval=0)
    creation, creator = rig.creator()
    wake, to_close, outage, refused = rig.state.creation_made(creation, a)
    assert (wake, to_close, outage, refused) == (creator, None, None, False)
    assert creator.event.sets == 0  # the driver wakes it, once its log line is out
    assert creator.fresh and creator.abandoned and creator.creation is None
    entry = rig.state.take(creator, True)
    assert isinstance(entry, Entry) and entry.resource is a  # fresh: no check
    assert gauges(rig.state) == gauge(size=1, leased=1)
    stats = rig.state.stats()
    assert (stats.created, stats.acquired) == (1, 1)
    assert rig.state.creations == set()


def test_a_resource_released_to_a_creator_first_leaves_its_creation_to_the_next(make):
    rig = make(2)
    rig.made(a)
    rig.claimed()
    creation, creator = rig.creator()
    plain = rig.waiter()
    rig.release(a)
    assert creator.entry is not None and creator.entry.resource is a
    assert creator.event.sets == 1 and creation.owner is None and creator.creation is None
    wake, to_close, _, _ = rig.state.creation_made(creation, b)
    assert wake is None and to_close is None
    assert plain.entry is not None and plain.entry.resource is b and plain.event.sets == 1
    assert gauges(rig.state) == gauge(size=2, leased=2)


def test_a_made_resource_whose_creator_timed_out_serves_the_oldest_waiter(make):
    rig = make(1)
    creation, creator = rig.creator(deadline=5.0)
    plain = rig.waiter()
    rig.clock.now = 5.0
    step = rig.state.take(creator, False)
    assert isinstance(step, TimedOut) and step.what == BEFORE_CREATED
    assert creation.owner is None
    assert gauges(rig.state) == gauge(creating=1, waiting=1)  # the call goes on in its slot
    assert rig.state.creation_made(creation, a) == (None, None, None, False)
    assert plain.entry is not None and plain.entry.resource is a and plain.event.sets == 1
    assert not plain.fresh
    assert gauges(rig.state) == gauge(size=1, leased=1)


def test_a_made_resource_whose_creator_left_is_idle_when_nobody_waits(make):
    rig = make(1)
    creation, creator = rig.creator()
    rig.state.abandon(creator)
    assert rig.state.creation_made(creation, a) == (None, None, None, False)
    assert gauges(rig.state) == gauge(size=1, idle=1)


def test_a_slot_claimed_while_a_resource_came_back_takes_it_in_the_same_section(make):
    rig = make(2)
    rig.made(a)
    rig.claimed()
    assert rig.state.claim() is SLOT
    rig.release(a)  # nobody in line yet: idle
    step, waiter = rig.state.next_creation(None, None, lease=True)
    assert waiter is None and isinstance(step, Entry) and step.resource is a
    assert gauges(rig.state) == gauge(size=1, leased=1)  # the slot is free, no barging


def test_next_creation_after_dispose_raises_and_frees_the_slot(make):
    rig = make(1)
    assert rig.state.claim() is SLOT
    rig.state.close(False)
    with pytest.raises(PoolClosed, match=CLOSED):
        rig.state.next_creation(None, None, lease=True)
    assert gauges(rig.state) == gauge()


def test_a_failed_creation_keeps_its_creator_in_line_holding_the_slot(make):
    rig = make(1)
    creation, creator = rig.creator()
    error = ConnectionError("down")
    assert rig.state.creation_failed(creation, error, False, True) == 1  # log the first
    assert creator.failed is error and not creator.fatal
    assert creator.holds_slot and creator.creation is None and not creator.abandoned
    assert creator.event.sets == 1
    assert (rig.state.line.waiting, rig.state.line.creators) == (1, 1)
    assert gauges(rig.state) == gauge(creating=1)
    stats = rig.state.stats()
    assert (stats.create_errors, stats.created) == (1, 0)
    assert rig.state.last_error is error
    assert 0.025 <= rig.state.backoff.until <= 0.05
    first_event = creator.event
    assert rig.state.take(creator, True) is AGAIN
    assert rig.state.creation_ended(creator) is error
    assert creator.failed is None and creator.event is not first_event
    resume, same = rig.state.next_creation(creator, None, lease=True)
    assert resume == rig.state.backoff.until and same is creator
    rig.clock.now = resume
    retry, same = rig.state.next_creation(creator, None, lease=True)
    assert isinstance(retry, Creation) and retry.owner is creator and not creator.holds_slot


def test_a_factory_error_that_does_not_count_has_no_backoff(make):
    rig = make(1)
    creation, creator = rig.creator()
    assert rig.state.creation_failed(creation, KeyboardInterrupt(), True, False) == 0
    assert rig.state.stats().create_errors == 0 and rig.state.backoff.until == 0
    assert creator.fatal and creator.holds_slot


def test_the_backoff_doubles_with_jitter_up_to_max_backoff(make):
    rig = make(1, max_backoff=0.3)
    creation, creator = rig.creator()
    attempts = []
    for pause in (0.05, 0.1, 0.2, 0.3, 0.3, 0.3):
        now = rig.clock.now
        attempts.append(rig.state.creation_failed(creation, OSError(), False, True))
        until = rig.state.backoff.until
        assert now + pause / 2 <= until <= now + pause
        rig.state.take(creator, True)
        rig.state.creation_ended(creator)
        assert rig.state.next_creation(creator, None, lease=True) == (until, creator)
        rig.clock.now = until
        creation, _ = rig.state.next_creation(creator, None, lease=True)
        assert isinstance(creation, Creation)
    assert attempts == [1, 0, 0, 0, 0, 0]  # one log line per 10 s of outage
    assert rig.state.backoff.failures == 6


def test_a_long_outage_asks_for_a_log_line_every_ten_seconds(make):
    rig = make(1, max_backoff=0.1)
    creation, creator = rig.creator()
    assert rig.state.creation_failed(creation, OSError(), False, True) == 1
    rig.clock.now = 9.9
    rig.state.take(creator, True)
    rig.state.creation_ended(creator)
    creation, _ = rig.state.next_creation(creator, None, lease=True)
    assert rig.state.creation_failed(creation, OSError(), False, True) == 0
    rig.clock.now = 10.0
    rig.state.take(creator, True)
    rig.state.creation_ended(creator)
    creation, _ = rig.state.next_creation(creator, None, lease=True)
    assert rig.state.creation_failed(creation, OSError(), False, True) == 3


def test_a_creation_that_works_again_ends_the_outage(make):
    rig = make(1)
    creation, creator = rig.creator()
    rig.clock.now = 1.0
    resume = rig.failed(creation, creator, OSError("down"))
    rig.clock.now = resume
    creation, _ = rig.state.next_creation(creator, None, lease=True)
    rig.clock.now = 3.0
    wake, _, outage, _ = rig.state.creation_made(creation, a)
    assert wake is creator and outage == (2.0, 1)
    assert (rig.state.backoff.failures, rig.state.backoff.until) == (0, 0.0)


def test_no_retry_fits_the_deadline_gives_up_and_frees_the_slot(make):
    rig = make(1)
    creation, creator = rig.creator(deadline=1.0)
    rig.failed(creation, creator, OSError("down"))
    step, same = rig.state.next_creation(creator, 0.01, lease=True)  # until >= 0.025
    assert isinstance(step, TimedOut) and step.what == NO_RETRY_FITS and same is creator
    assert step.facts.failing and step.facts.last_error is not None
    assert step.facts.stats.creating == 1  # noted before it left: it counts itself
    assert gauges(rig.state) == gauge()
    assert (rig.state.line.waiting, rig.state.line.creators) == (0, 0)
    assert rig.state.stats().timeouts == 1


def test_a_retry_past_the_deadline_is_still_awaited_while_a_lease_may_come_back(make):
    rig = make(2)
    rig.made(a)
    rig.claimed()
    creation, creator = rig.creator(deadline=1.0)
    rig.failed(creation, creator, OSError("down"))
    resume, same = rig.state.next_creation(creator, 0.01, lease=True)
    assert resume == rig.state.backoff.until and same is creator
    rig.release(a)  # and it does: to the creator, in line
    assert creator.entry is not None and creator.entry.resource is a
    assert not creator.holds_slot
    assert gauges(rig.state) == gauge(size=1, leased=1)  # the backoff's slot is freed


def test_a_retry_past_the_deadline_is_awaited_while_a_call_whose_caller_left_runs(make):
    # _no_retry_fits gives up when "nothing else could serve"; a factory call
    # whose caller left goes on, and its resource goes to the oldest waiter.
    rig = make(2)
    orphan, first = rig.creator()
    rig.state.abandon(first)
    creation, creator = rig.creator(deadline=1.0)
    rig.failed(creation, creator, OSError("down"))
    step, _ = rig.state.next_creation(creator, 0.02, lease=True)  # until >= 0.025
    assert step == rig.state.backoff.until  # it waits in line, holding its slot
    rig.clock.now = 0.01
    rig.state.creation_made(orphan, a)
    assert creator.entry is not None and creator.entry.resource is a


def test_a_retry_past_the_deadline_is_awaited_while_prefill_creates(make):
    rig = make(2)
    assert rig.state.reserve(2)
    prefill, _ = rig.state.next_creation(None, None, lease=False)
    assert isinstance(prefill, Creation)
    creation, creator = rig.creator(deadline=1.0)
    rig.failed(creation, creator, OSError("down"))
    step, _ = rig.state.next_creation(creator, 0.02, lease=True)
    assert step == rig.state.backoff.until  # prefill's resource goes to the oldest waiter
    rig.clock.now = 0.01
    rig.state.creation_made(prefill, a)
    assert creator.entry is not None and creator.entry.resource is a


def test_a_deadline_passed_before_the_first_factory_call_times_out(make):
    rig = make(1)
    assert rig.state.claim() is SLOT
    step, waiter = rig.state.next_creation(None, 0.0, lease=True)  # timeout=0
    assert isinstance(step, TimedOut) and step.what == BEFORE_CREATED and waiter is None
    assert gauges(rig.state) == gauge()


def test_a_deadline_passed_while_the_factory_kept_failing_times_out(make):
    rig = make(1)
    creation, creator = rig.creator(deadline=1.0)
    rig.failed(creation, creator, OSError("down"))
    rig.clock.now = 1.0
    step, _ = rig.state.next_creation(creator, 1.0, lease=True)
    assert isinstance(step, TimedOut) and step.what == KEPT_FAILING
    assert step.facts.stats.creating == 1  # its error names it, as concepts.md says
    assert gauges(rig.state) == gauge()


def test_a_factory_returning_none_fails_its_creator_who_then_frees_the_slot(make):
    rig = make(1)
    creation, creator = rig.creator()
    assert rig.state.creation_made(creation, None) == (None, None, None, False)
    assert isinstance(creator.failed, Duplicate) and creator.failed.args == (None,)
    assert creator.event.sets == 1
    assert gauges(rig.state) == gauge(creating=1)
    error = rig.state.creation_ended(creator)
    assert isinstance(error, Duplicate)
    rig.state.drop_creator(creator)
    assert gauges(rig.state) == gauge()
    assert rig.state.stats().created == 0


def test_a_factory_returning_what_the_pool_holds_with_nobody_to_tell_is_refused(make):
    rig = make(2)
    entry = rig.made(a)
    rig.claimed()
    creation, creator = rig.creator()
    rig.state.abandon(creator)
    assert rig.state.creation_made(creation, a) == (None, None, None, True)
    assert rig.state.alive == {id(a): entry}
    assert gauges(rig.state) == gauge(size=1, leased=1)
    assert rig.state.stats().created == 1


def test_prefill_reserves_until_enough_are_idle(make):
    rig = make(3)
    rig.made(a)
    rig.made(b)
    assert not rig.state.reserve(2)
    assert rig.state.reserve(3)
    assert gauges(rig.state) == gauge(size=2, idle=2, creating=1)
    rig.state.drop_creator(None)  # prefill gave up before its factory call
    assert gauges(rig.state) == gauge(size=2, idle=2)


def test_prefill_reserves_nothing_once_every_slot_is_taken(make):
    rig = make(2)
    rig.made(a)
    rig.claimed()
    assert rig.state.claim() is SLOT
    assert not rig.state.reserve(2)
    assert gauges(rig.state) == gauge(size=1, leased=1, creating=1)


def test_prefill_after_dispose_raises(make):
    rig = make(1)
    rig.state.close(False)
    with pytest.raises(PoolClosed, match=CLOSED):
        rig.state.reserve(1)


def test_a_prefilled_resource_goes_to_the_oldest_waiter(make):
    rig = make(2)
    rig.created(a)
    assert rig.state.reserve(2)
    creation, watcher = rig.state.next_creation(None, None, lease=False)
    assert isinstance(creation, Creation) and watcher is not None and watcher.abandoned
    waiter = rig.waiter()  # every slot is taken: it waits
    assert rig.state.creation_made(creation, b) == (watcher, None, None, False)
    assert waiter.entry is not None and waiter.entry.resource is b and waiter.event.sets == 1
    assert rig.state.creation_ended(watcher) is MADE
    assert gauges(rig.state) == gauge(size=2, leased=2)


# -- taking what a wait brought --------------------------------------------------------------


def test_a_waiter_whose_wait_timed_out_leaves_the_line(make):
    rig = make(1)
    rig.made(a)
    rig.claimed()
    waiter = rig.waiter()
    step = rig.state.take(waiter, False)
    assert isinstance(step, TimedOut) and step.what == WAITING
    assert step.facts.stats.waiting == 1 and step.facts.stats.timeouts == 1  # counted itself
    assert not step.facts.failing and step.facts.last_error is None
    assert rig.state.line.waiting == 0
    rig.release(a)
    assert waiter.entry is None


def test_a_waiter_served_at_its_deadline_takes_what_it_was_served(make):
    rig = make(1)
    rig.made(a)
    rig.claimed()
    waiter = rig.waiter()
    rig.release(a)
    entry = rig.state.take(waiter, False)  # the wait timed out, but it was served
    assert isinstance(entry, Entry) and entry.resource is a
    assert rig.state.stats().timeouts == 0


def test_a_creator_timing_out_while_backing_off_frees_its_slot(make):
    rig = make(1)
    creation, creator = rig.creator()
    rig.failed(creation, creator, OSError("down"))
    step = rig.state.take(creator, False)
    assert isinstance(step, TimedOut) and step.what == KEPT_FAILING
    assert gauges(rig.state) == gauge()
    assert (rig.state.line.waiting, rig.state.line.creators) == (0, 0)


def test_a_creator_woken_by_its_failure_at_its_deadline_looks_again(make):
    rig = make(1)
    creation, creator = rig.creator()
    rig.state.creation_failed(creation, OSError("down"), False, True)
    assert rig.state.take(creator, False) is AGAIN  # it sees its error, not a timeout


def test_a_resource_released_to_a_failed_creator_replaces_its_retry(make):
    rig = make(2)
    rig.made(a)
    rig.claimed()
    creation, creator = rig.creator()
    rig.state.creation_failed(creation, OSError("down"), False, True)
    assert creator.event.sets == 1
    rig.release(a)
    assert creator.failed is None and not creator.holds_slot
    assert creator.event.sets == 1  # awake already
    assert rig.state.take(creator, True) is creator.entry
    assert gauges(rig.state) == gauge(size=1, leased=1)


# -- dispose -----------------------------------------------------------------------------------


def test_dispose_returns_the_idle_resources_and_refuses_everyone(make):
    rig = make(2)
    ea, eb = rig.made(a), rig.made(b)
    assert rig.state.close(False) == ([ea, eb], [])
    assert rig.state.closed and not rig.state.idle
    with pytest.raises(PoolClosed, match=CLOSED):
        rig.state.claim()
    assert rig.state.close(False) is None  # disposed already
    assert gauges(rig.state) == gauge(size=2)
    rig.closed(ea)
    rig.closed(eb)
    assert gauges(rig.state) == gauge()


def test_dispose_wakes_every_waiter_closed(make):
    rig = make(1)
    entry = rig.made(a)
    rig.claimed()
    w1, w2 = rig.waiter(), rig.waiter()
    rig.state.close(False)
    assert w1.closed and w2.closed
    assert (w1.event.sets, w2.event.sets) == (1, 1)
    assert rig.state.line.waiting == 0
    with pytest.raises(PoolClosed, match=CLOSED):
        rig.state.take(w1, True)
    assert not rig.state.return_quickly(a, False)
    assert rig.state.take_back(a, "release", False) == (entry, entry, None)
    rig.closed(entry)


def test_dispose_returns_the_stops_of_the_creations_under_way(make):
    rig = make(2)
    creation, creator = rig.creator()
    stop = object()
    creation.stop = stop  # type: ignore[assignment]
    assert rig.state.close(False) == ([], [stop])
    assert creator.closed and creator.event.sets == 1
    assert creation.owner is None and creator.creation is None
    with pytest.raises(PoolClosed):
        rig.state.take(creator, True)
    assert gauges(rig.state) == gauge(creating=1)  # the call still holds its slot
    wake, to_close, _, _ = rig.state.creation_made(creation, a)
    assert wake is None and to_close is not None and to_close.resource is a
    rig.closed(to_close)
    assert gauges(rig.state) == gauge()


def test_dispose_does_not_wake_a_creator_awake_already(make):
    rig = make(1)
    creation, creator = rig.creator()
    rig.state.creation_failed(creation, OSError("down"), False, True)
    rig.state.close(False)
    assert creator.closed and creator.event.sets == 1
    with pytest.raises(PoolClosed):
        rig.state.take(creator, True)
    assert gauges(rig.state) == gauge()  # the slot it held for a retry is freed


def test_dispose_from_another_loop_skips_waiters_that_cannot_be_woken(make):
    rig = make(1)
    rig.made(a)
    rig.claimed()
    rig.state.new_event = DeadLoopEvent
    waiter = rig.waiter()
    assert rig.state.close(True) == ([], [])
    assert waiter.closed


def test_dispose_on_a_live_loop_raises_what_setting_an_event_raised(make):
    rig = make(1)
    rig.made(a)
    rig.claimed()
    rig.state.new_event = DeadLoopEvent
    rig.waiter()
    with pytest.raises(RuntimeError, match="the loop is closed"):
        rig.state.close(False)


def test_a_forked_child_starts_empty(make):
    rig = make(1)
    rig.made(a)
    rig.claimed()
    rig.waiter()
    rig.state.forget()
    assert gauges(rig.state) == gauge()
    assert rig.state.alive == {} and rig.state.stats().created == 0
    rig.state.new_event = Event
    assert rig.state.claim() is SLOT


# -- closing and replacing ---------------------------------------------------------------------


def test_a_releaser_error_is_counted(make):
    rig = make(1)
    entry = rig.created(a)
    rig.state.take_back(a, "discard", False)
    rig.state.closed_one(entry, failed=True, late=False)
    rig.state.free_slot()
    stats = rig.state.stats()
    assert (stats.close_errors, stats.closed, stats.broken) == (1, 1, 1)


def test_a_late_releaser_keeps_its_slot_until_it_ends(make):
    rig = make(1)
    entry = rig.created(a)
    rig.state.take_back(a, "discard", False)
    rig.state.closed_one(entry, failed=False, late=True)
    assert entry.late and rig.state.alive == {id(a): entry}
    assert gauges(rig.state) == gauge(size=1)
    waiter = rig.waiter()
    rig.state.closed_late(entry)
    assert waiter.slot and rig.state.alive == {}
    assert rig.state.stats().closed == 1


def test_closing_a_stale_resource_keeps_its_slot_for_the_caller(make):
    rig = make(1, pool_recycle=10)
    entry = rig.made(a)
    rig.clock.now = 10.0
    stale = rig.state.claim()
    assert isinstance(stale, Stale)
    closing: Waiter[Res] = Waiter(Event())
    assert rig.state.replacing(closing)
    newcomer = rig.waiter()
    rig.state.closed_one(entry, failed=False, late=False)
    assert not rig.state.background_closed(entry, closing, None)
    assert closing.slot and closing.event.sets == 1 and not newcomer.slot
    assert rig.state.replaced(entry, closing) is SLOT
    assert gauges(rig.state) == gauge(creating=1, waiting=1)


def test_a_caller_who_stopped_waiting_for_a_close_leaves_its_slot_to_the_line(make):
    rig = make(1, pool_recycle=10)
    entry = rig.made(a)
    rig.clock.now = 10.0
    rig.state.claim()
    closing: Waiter[Res] = Waiter(Event())
    assert rig.state.replacing(closing)
    newcomer = rig.waiter()
    step = rig.state.replaced(entry, closing)  # its deadline came first
    assert isinstance(step, TimedOut) and step.what == REPLACING
    rig.state.closed_one(entry, failed=False, late=False)
    assert not rig.state.background_closed(entry, closing, None)
    assert newcomer.slot and newcomer.event.sets == 1 and closing.event.sets == 0


def test_a_stale_resource_met_with_others_idle_does_not_wait_for_its_close(make):
    rig = make(2, pool_recycle=10, lifo=False)
    entry = rig.made(a)
    rig.clock.now = 5.0
    rig.made(b)
    rig.clock.now = 10.0
    assert isinstance(rig.state.claim(), Stale)
    closing: Waiter[Res] = Waiter(Event())
    assert not rig.state.replacing(closing) and closing.abandoned
    rig.state.closed_one(entry, failed=False, late=False)
    assert not rig.state.background_closed(entry, closing, None)
    assert gauges(rig.state) == gauge(size=1, idle=1)


def test_a_close_still_running_late_makes_its_caller_look_again(make):
    rig = make(1, pool_recycle=10)
    entry = rig.made(a)
    rig.clock.now = 10.0
    rig.state.claim()
    closing: Waiter[Res] = Waiter(Event())
    rig.state.replacing(closing)
    rig.state.closed_one(entry, failed=False, late=True)
    assert not rig.state.background_closed(entry, closing, None)
    assert closing.event.sets == 1
    assert rig.state.replaced(entry, closing) is AGAIN
    rig.state.closed_late(entry)
    assert gauges(rig.state) == gauge()


def test_a_close_running_late_in_a_disposed_pool_makes_its_caller_look_again(make):
    # Looking again raises PoolClosed; a TimedOut would be a PoolTimeout before its time.
    rig = make(1, pool_recycle=10)
    entry = rig.made(a)
    rig.clock.now = 10.0
    rig.state.claim()
    closing: Waiter[Res] = Waiter(Event())
    rig.state.replacing(closing)
    rig.state.close(False)
    rig.state.closed_one(entry, failed=False, late=True)
    assert not rig.state.background_closed(entry, closing, None)
    assert closing.event.sets == 1  # woken, not timed out
    assert rig.state.replaced(entry, closing) is AGAIN
    with pytest.raises(PoolClosed, match=CLOSED):
        rig.state.claim(front=True)
    assert rig.state.stats().timeouts == 0
    rig.state.closed_late(entry)


def test_a_failed_check_counts_the_resource_broken(make):
    rig = make(1, checks=True, check_interval=0)
    entry = rig.made(a)
    step = rig.state.claim()
    assert isinstance(step, Vet)
    rig.state.broke(entry, taken=False)
    stats = rig.state.stats()
    assert (stats.broken, stats.acquired, stats.leased) == (1, 0, 0)
    rig.closed(entry)


# -- leases dropped unreleased -----------------------------------------------------------------


def hand_out(entry: Entry[Res]) -> None:
    """What the driver does as its caller takes a resource: hold it weakly from now on."""
    assert entry.ref is not None
    entry.resource = None


def test_a_lease_dropped_unreleased_frees_its_slot(make):
    rig = make(1)
    entry = rig.created(a)
    hand_out(entry)
    with pytest.warns(ResourceWarning, match="garbage-collected without being released"):
        rig.state.lost_one(entry)
    assert rig.state.alive == {} and entry.ref is None
    assert gauges(rig.state) == gauge()
    stats = rig.state.stats()
    assert (stats.lost, stats.closed) == (1, 1)


def test_a_lost_slot_goes_to_the_oldest_waiter(make):
    rig = make(1)
    entry = rig.created(a)
    hand_out(entry)
    waiter = rig.waiter()
    with pytest.warns(ResourceWarning):
        rig.state.lost_one(entry)
    assert waiter.slot and waiter.event.sets == 1
    assert gauges(rig.state) == gauge(creating=1)


def test_a_lease_lost_while_the_lock_is_held_is_recovered_soon(make):
    rig = make(1)
    entry = rig.created(a)
    hand_out(entry)
    with rig.state.lock, pytest.warns(ResourceWarning):
        rig.state.lost_one(entry)
    assert rig.soon == [rig.state.recover_lost]
    assert list(rig.state.lost) == [entry] and rig.state.leased == 1
    rig.soon.pop()()
    assert gauges(rig.state) == gauge() and rig.state.stats().lost == 1


def test_a_pool_bound_to_a_loop_recovers_a_lost_lease_on_it(make):
    rig = make(1)
    entry = rig.created(a)
    hand_out(entry)
    rig.state.wakes_from_any_thread = False
    with pytest.warns(ResourceWarning):
        rig.state.lost_one(entry)
    assert rig.soon == [rig.state.recover_lost]
    assert gauges(rig.state) == gauge(size=0, leased=0)  # stats() recovers it first


def test_a_lost_report_for_a_resource_released_meanwhile_frees_nothing(make):
    rig = make(1)
    entry = rig.created(a)
    rig.release(a)  # held strongly again
    with pytest.warns(ResourceWarning):
        rig.state.lost_one(entry)
    assert gauges(rig.state) == gauge(size=1, idle=1)
    assert rig.state.stats().lost == 0


def test_a_garbage_collected_lease_is_noticed_through_its_weak_reference(make):
    rig = make(1)
    holder = [Res("lost")]
    entry = rig.created(holder[0])
    hand_out(entry)
    with pytest.warns(ResourceWarning, match="garbage-collected without being released"):
        holder.clear()  # its last strong reference
    assert gauges(rig.state) == gauge()
    assert rig.state.stats().lost == 1


def test_a_lease_dropped_after_its_pool_was_dropped_says_nothing(make):
    rig = make(1)
    lost = Res("lost")
    entry = rig.created(lost)
    hand_out(entry)
    rig.state.owner = lambda: None
    del lost
    gc.collect()
    assert list(rig.state.lost) == []
    assert rig.state.stats().lost == 0


def test_last_used_is_minus_infinity_for_a_suspect_taken_back(make):
    rig = make(1, resets=True)
    entry = rig.made(a)
    rig.claimed()
    rig.state.take_back(a, "release", True)
    assert entry.last_used == -math.inf


# -- claim and _claim: two spellings of one rule ------------------------------------------

CLAIM_CASES = {
    "a fresh idle resource": ({}, lambda rig: rig.made(Res("x"))),
    "an idle resource due a check": (
        {"checks": True, "check_interval": 0.0},
        lambda rig: rig.made(Res("x")),
    ),
    "an idle resource asked is_closed": (
        {"is_closed": lambda resource: False},
        lambda rig: rig.made(Res("x")),
    ),
    "with leak tracking": ({"leak_timeout": 10.0}, lambda rig: rig.made(Res("x"))),
    "an expired idle resource": (
        {"pool_recycle": 1.0},
        lambda rig: (rig.made(Res("x")), setattr(rig.clock, "now", 5.0)),
    ),
    "a free slot": ({}, lambda rig: None),
    "no slot left": ({}, lambda rig: (rig.state.claim(), rig.state.claim())),
}


@pytest.mark.parametrize("case", list(CLAIM_CASES))
def test_claim_and_its_locked_spelling_decide_alike(make, case):
    """``Ledger.claim`` inlines ``_lease`` and ``_vetting`` for speed; ``_claim`` (for a
    caller holding the lock) must decide exactly as it does, whatever the pool holds."""
    options, setup = CLAIM_CASES[case]
    outcomes = []
    for locked in (False, True):
        rig = make(2, **options)
        setup(rig)
        if locked:
            with rig.state.lock:
                step = rig.state._claim()
        else:
            step = rig.state.claim()
        leases = rig.state.leaks.holding if rig.state.leaks is not None else {}
        outcomes.append((type(step), gauges(rig.state), rig.state.acquired, len(leases)))
        if isinstance(step, (Entry, Vet, Stale)):  # give it back, so the rig stays consistent
            entry = step.entry if isinstance(step, (Vet, Stale)) else step
            if isinstance(step, Stale):
                rig.closed(entry)
            else:
                assert rig.state.put_back(entry) is None
    assert outcomes[0] == outcomes[1], outcomes


# -- the fairness window: newcomers may pass a young waiter, never an old one ----------------


def test_a_release_while_the_oldest_waiter_is_young_goes_idle_and_wakes_it_to_look(make):
    rig = make(1, fairness_window=0.005)
    state = rig.state
    rig.made(a)
    held = rig.claimed()
    waiter = rig.waiter()
    rig.clock.now = 0.004  # it has waited 4 ms: young
    rig.release(a)
    assert list(state.idle) == [held] and waiter.entry is None
    assert state.nudged is waiter and waiter.event.sets == 1
    assert gauges(state) == gauge(size=1, idle=1, waiting=1)  # it keeps its place
    assert rig.claimed() is held  # a newcomer asks first, and takes it
    assert state.take(waiter, True) is waiter  # nothing left: it waits on, in its place
    assert state.nudged is None and waiter.event.sets == 0  # a fresh event to wait on
    assert gauges(state) == gauge(size=1, leased=1, waiting=1)
    rig.clock.now = 0.006  # it has waited 6 ms, counted from when it first joined
    rig.release(a)
    assert waiter.entry is held  # handed to it: no newcomer passes it now
    assert state.take(waiter, True) is held


def test_the_nudged_waiter_takes_the_idle_resource_when_it_looks_first(make):
    rig = make(1, fairness_window=0.005)
    state = rig.state
    rig.made(a)
    held = rig.claimed()
    waiter = rig.waiter()
    rig.release(a)
    assert state.take(waiter, True) is held
    assert state.nudged is None and gauges(state) == gauge(size=1, leased=1)
    assert state.stats().acquired == 2


def test_one_waiter_looks_at_a_time_and_the_next_looks_while_resources_stay_idle(make):
    rig = make(2, fairness_window=0.005)
    state = rig.state
    rig.made(a)
    rig.made(b)
    first, second = rig.claimed(), rig.claimed()
    w1, w2 = rig.waiter(), rig.waiter()
    rig.release(first.current())
    rig.release(second.current())
    assert state.nudged is w1 and w2.event.sets == 0  # only one woken: no herd
    assert len(state.idle) == 2
    assert isinstance(state.take(w1, True), Entry)
    assert state.nudged is w2 and w2.event.sets == 1  # one is still idle: the next looks
    assert isinstance(state.take(w2, True), Entry)
    assert state.nudged is None and gauges(state) == gauge(size=2, leased=2)


@pytest.mark.parametrize("why", ["cancelled", "timed out"])
def test_a_nudged_waiter_that_gives_up_wakes_the_next_to_look(make, why):
    rig = make(1, fairness_window=0.005)
    state = rig.state
    rig.made(a)
    held = rig.claimed()
    w1, w2 = rig.waiter(), rig.waiter()
    rig.release(a)
    assert state.nudged is w1
    if why == "cancelled":
        assert state.abandon(w1) is None
    else:  # its deadline came as it was woken: it still looks, and finds the resource
        assert state.take(w1, False) is held
        rig.release(a)
        assert state.nudged is w2
        return
    assert state.nudged is w2 and w2.event.sets == 1
    assert state.take(w2, True) is held
    assert gauges(state) == gauge(size=1, leased=1)


def test_no_newcomer_passes_a_waiter_creating_or_backing_off(make):
    """With a creator in line, a returned resource goes to the oldest waiter, as ever."""
    rig = make(2, fairness_window=0.005)
    state = rig.state
    rig.made(a)
    held = rig.claimed()
    _creation, creator = rig.creator()
    assert state.line.creators == 1
    rig.release(a)
    assert creator.entry is held and not state.idle and state.nudged is None


def test_a_waiter_nudged_when_the_pool_is_disposed_is_told_so(make):
    rig = make(1, fairness_window=0.005)
    state = rig.state
    rig.made(a)
    held = rig.claimed()
    waiter = rig.waiter()
    rig.release(a)
    assert state.nudged is waiter
    closing = state.close(gone=False)
    assert closing is not None and closing[0] == [held]  # the idle one, to be closed
    with pytest.raises(PoolClosed):
        state.take(waiter, True)
    assert state.nudged is None
    for entry in closing[0]:
        rig.closed(entry)


def test_a_zero_window_is_strict_first_come_first_served(make):
    rig = make(1, fairness_window=0.0)
    state = rig.state
    rig.made(a)
    held = rig.claimed()
    waiter = rig.waiter()
    rig.release(a)
    assert waiter.entry is held and not state.idle and state.nudged is None


def test_a_burst_resource_coming_back_goes_to_the_waiter_whatever_the_window(make):
    """Above pool_size (a burst), a returned resource serves a waiter at once or is closed:
    it is never left idle for a newcomer, where nobody might take it again."""
    rig = make(1, fairness_window=0.005, burst_limit=2)
    state = rig.state
    rig.made(a)
    held = rig.claimed()
    burst = rig.created(b)  # the burst: 2 alive, pool_size 1
    waiter = rig.waiter()
    taken = state.take_back(b, "release", False)
    assert not isinstance(taken, str) and taken[1] is None  # kept: it serves the waiter
    assert waiter.entry is burst and state.nudged is None and not state.idle
    assert state.take(waiter, True) is burst
    taken = state.take_back(a, "release", False)  # nobody waits: one too many, closed
    assert not isinstance(taken, str) and taken[1] is held
    rig.closed(held)
    rig.release(b)
    assert gauges(state) == gauge(size=1, idle=1)


def test_a_waiter_awake_to_look_still_gets_a_freed_slot_and_a_late_handoff(make):
    """While nudged, a waiter keeps its place: a slot freed meanwhile is its (not given
    up), and once it has waited the window a returned resource is handed to it even
    though it has not run yet (a releaser looping back without yielding cannot pass it)."""
    rig = make(2, fairness_window=0.005)
    state = rig.state
    rig.made(a)
    rig.made(b)
    rig.claimed(), rig.claimed()
    entry_a = state.alive[id(a)]
    waiter = rig.waiter()
    rig.release(a)
    assert state.nudged is waiter and gauges(state)["waiting"] == 1
    assert rig.claimed() is entry_a  # a newcomer (the releaser, looping back) takes it
    rig.clock.now = 0.01  # the waiter has not run; it has waited the window
    rig.release(a)
    assert waiter.entry is entry_a and state.nudged is None and waiter.event.sets == 1
    assert state.take(waiter, True) is entry_a
    waiter2 = rig.waiter()
    rig.release(a)  # young again: idle, and waiter2 is woken to look
    assert state.nudged is waiter2
    entry = state.alive[id(b)]
    taken = state.take_back(b, "discard", False)
    assert not isinstance(taken, str) and taken[1] is entry
    rig.closed(entry)  # the slot freed: it goes to waiter2, awake or not
    assert waiter2.slot and state.nudged is None
    assert waiter2.event.sets == 1  # not set twice (a thread's event would raise)
    assert state.take(waiter2, True) is SLOT
