"""A hypothesis state machine driving the pool state (``respool._state``) against a model.

``test_model.py`` drives a whole ``Pool`` from one thread, so nothing there
ever waits: no waiter, no creation under way, no backoff is ever seen.  Here
the state is driven directly, the way its drivers drive it, one decision at a
time, so all of them are: callers claim, wait in line, give up (a timeout or
a cancellation), are served and take what they were served; factory calls
start, return (a new resource, ``None``, or one the pool holds already) or
fail and are retried after the backoff; resources come back (quickly, the
slow way, or discarded), expire, are retired, are dropped unreleased, and are
closed (on time, or late); prefill, recycle and dispose run in between.

The model is a few lists: the line (each caller's kind: waiting, creating,
failed, backing off), who was served what, the idle order, the leased, the
closing, the factory calls under way, the backoff, every counter.  After every
step ``stats()``, the line, the idle order and each waiter's event must match
it, and each waiter is served at most once: what a finished caller held, and
its event, never change again.  The model counts every slot where it is:
``slots = idle + leased (taken or in hand-off) + closing (late ones too) +
creating`` (callers holding a slot, served a slot, factory calls under way,
creators holding a slot through the backoff), never more than ``pool_size``.

Hypothesis turns a random subset of the rules off in each example (swarm
testing), which starves rules that need the pool in a given state; so each
example starts busy (prefilled, some callers already in), the line and the
clock are bounded, and a rule's follow-up the driver would do at once
(start creating in a slot, take a fresh resource, see a failure) is drawn.
"""

from __future__ import annotations

import math
import threading
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from respool import PoolClosed, PoolStats
from respool._config import DEFAULT
from respool._config import settings as pool_settings
from respool._errors import release_error
from respool._state import PoolState
from respool._state.backoff import FIRST_BACKOFF, OUTAGE_LOG_EVERY
from respool._state.ledger import RECYCLE_JITTER
from respool._state.line import Waiter
from respool._state.records import Entry
from respool._state.steps import (
    AGAIN,
    BEFORE_CREATED,
    KEPT_FAILING,
    MADE,
    SLOT,
    WAITING,
    Creation,
    Duplicate,
    Stale,
    TimedOut,
    Vet,
)

from .coarse import coarse
from .figures import figures
from .test_state import ADVICE, GOT_BACK, NOT_LEASED, Clock, Event, Res

FIGURES = figures("state_model")

RECYCLE = 3.0  # pool_recycle, when on
SECONDS = [0.01, 0.02, 0.05, 0.1, 0.3, 1.0, 2.0, 11.0]  # the clock moves on by one of these
CHECK_INTERVAL = 1.0
MAX_BACKOFF = 0.2
COUNTERS = ["created", "closed", "acquired", "timeouts", "create_errors", "close_errors"]
COUNTERS += ["broken", "lost"]
WHAT = {"plain": WAITING, "creator": BEFORE_CREATED, "holding": KEPT_FAILING}


class Caller:
    """The model's view of one waiter: where it stands, what it was served.

    ``kind``: ``plain`` (in line), ``creator`` (in line, its factory call
    under way), ``failed`` (in line, holding its slot, its call just failed),
    ``holding`` (in line, holding its slot, backing off), ``watcher``
    (prefill's, out of line), ``served``, ``closed`` (woken by dispose), or
    ``done`` (its caller finished with it).
    """

    def __init__(self, waiter: Waiter[Res], kind: str) -> None:
        self.waiter = waiter
        self.kind = kind
        self.resource: Res | None = None  # served with it
        self.slot = False  # served with a slot
        self.fresh = False  # served by its own factory call
        self.sets = 0  # set() calls its current event must have had
        self.frees = False  # closed while holding a slot for a retry
        self.creation: Creation[Res] | None = None

    def __repr__(self) -> str:
        return f"<{self.kind} {id(self.waiter):#x}>"


class StateModel(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.state: PoolState[Res] | None = None
        self.clock = Clock()
        self.limit = 1
        self.lifo = self.checks = self.recycles = False
        self.line: list[Caller] = []  # in line, oldest (front) first
        self.served: list[Caller] = []  # served, not yet taken
        self.closed_callers: list[Caller] = []  # woken by dispose, not yet awake
        self.done: list[tuple[Caller, Entry[Res] | None, bool, Any, int]] = []
        self.slot_callers = 0  # callers holding a slot, not yet creating in it
        self.creations: dict[Creation[Res], Caller | None] = {}  # under way: their owners
        self.idle: list[Res] = []  # in the pool's order
        self.taken: list[Res] = []  # leased, and taken by their callers
        self.closing: list[Entry[Res]] = []  # out of the pool, the releaser to run
        self.late: list[Entry[Res]] = []  # their releaser runs on late
        self.gone: list[Res] = []  # closed (kept alive: their ids are never reused)
        self.stranger = Res("stranger")
        self.expires: dict[Res, float] = {}
        self.generation_of: dict[Res, int] = {}
        self.last_used: dict[Res, float] = {}
        self.generation = 0
        self.closed = False
        self.failures = 0  # the backoff: failures in a row, and when it ends
        self.until = self.since = self.logged = 0.0
        self.made = self.steps = 0
        self.data: st.DataObject | None = None  # the running rule's, for draws on the way
        self.counts = dict.fromkeys(COUNTERS, 0)
        FIGURES.add(state_machines=1)

    @initialize(
        size=st.integers(1, 3),
        lifo=st.booleans(),
        checks=st.booleans(),
        recycles=st.booleans(),
        prefilled=st.integers(0, 3),
        claims=st.integers(0, 5),
        data=st.data(),
    )
    def make_state(
        self,
        size: int,
        lifo: bool,
        checks: bool,
        recycles: bool,
        prefilled: int,
        claims: int,
        data: st.DataObject,
    ) -> None:
        """A pool of ``size``, ``prefilled``, then ``claims`` callers: busy from the start."""
        self.limit, self.lifo, self.checks, self.recycles = size, lifo, checks, recycles
        config = pool_settings(
            pool_size=size,
            pool_recycle=RECYCLE if recycles else None,
            lifo=lifo,
            acquire_timeout=None,
            check_interval=CHECK_INTERVAL,
            leak_timeout=None,
            cleanup_timeout=None,
            max_backoff=MAX_BACKOFF,
            is_closed=None,
            discard_on=(),
            fatal=None,
            create_timeout=DEFAULT,
            fairness_window=0,  # the model serves strictly in order (test_state.py: the window)
        )
        self.state = PoolState(
            "Pool", config, checks=checks, resets=False, new_lock=threading.Lock, clock=self.clock
        )
        self.state.new_event = Event
        self.state.call_soon = lambda fn: pytest.fail("lost leases are recovered at once here")
        self.state.wakes_from_any_thread = True
        self.data = data
        for _ in range(min(prefilled, size)):
            self._prefill_one()
            self._returns(next(iter(self.creations)), self._new_resource())
        for _ in range(claims):
            self._claim(False)

    @property
    def s(self) -> PoolState[Res]:
        assert self.state is not None
        return self.state

    def _step(self, data: st.DataObject) -> None:
        self.data = data
        self.steps += 1
        FIGURES.add(operations=1)

    # -- the model's sums -------------------------------------------------------------------------

    @property
    def leased(self) -> int:
        return len(self.taken) + sum(c.resource is not None for c in self.served)

    @property
    def size(self) -> int:
        return len(self.idle) + self.leased + len(self.closing) + len(self.late)

    @property
    def creating(self) -> int:
        return (
            self.slot_callers
            + sum(c.slot for c in self.served)
            + len(self.creations)
            + sum(c.kind in ("failed", "holding") for c in self.line)
            + sum(c.frees for c in self.closed_callers)
        )

    @property
    def slots(self) -> int:
        return self.size + self.creating

    def alive(self) -> list[Res]:
        handed = [c.resource for c in self.served if c.resource is not None]
        ending = [e.resource for e in self.closing + self.late if e.resource is not None]
        return self.idle + self.taken + handed + ending

    def waiting(self) -> list[Caller]:
        """In line, waiting (a failed creator is awake: see creator_looks_again)."""
        return [c for c in self.line if c.kind != "failed"]

    def expected_stats(self) -> PoolStats:
        return PoolStats(
            pool_size=self.limit,
            size=self.size,
            idle=len(self.idle),
            leased=self.leased,
            creating=self.creating,
            waiting=sum(c.kind == "plain" for c in self.line),
            **self.counts,
        )

    # -- what the state must do, in the model -----------------------------------------------------

    def usable(self, resource: Res) -> bool:
        return (
            self.clock.now < self.expires[resource]
            and self.generation_of[resource] == self.generation
        )

    def put(self, resource: Res) -> str:
        """An unheld resource: to close, to the oldest in line, else idle."""
        if self.closed or not self.usable(resource):
            return "close"
        if not self.line:
            self.idle.append(resource)
            return "idle"
        caller = self.line.pop(0)
        FIGURES.add(hand_offs=1)
        was, caller.kind = caller.kind, "served"
        caller.resource = resource
        self.served.append(caller)
        self.counts["acquired"] += 1
        if was != "failed":  # a failed creator is awake already
            caller.sets += 1
        if was == "creator":  # its factory call goes on for whoever is next
            assert caller.creation is not None
            self.creations[caller.creation] = None
            caller.creation = None
        elif was in ("failed", "holding"):  # the slot it held for a retry
            self.free_slot()
        return "handed"

    def free_slot(self) -> None:
        """A slot emptied: to the oldest caller in line not creating, else free."""
        for i, caller in enumerate(self.line):
            if caller.kind == "plain":
                del self.line[i]
                FIGURES.add(slot_hand_offs=1)
                caller.kind, caller.slot = "served", True
                caller.sets += 1
                self.served.append(caller)
                return

    def finish(self, caller: Caller) -> None:
        """Its caller is done with it: from now on, nothing it holds may change."""
        caller.kind = "done"
        waiter = caller.waiter
        self.done.append((caller, waiter.entry, waiter.slot, waiter.event, waiter.event.sets))

    def hand_out(self, entry: Entry[Res]) -> None:
        """The caller takes its resource (held weakly from now on, as the driver does)."""
        resource = entry.resource
        assert resource is not None and entry.ref is not None
        entry.resource = None
        self.taken.append(resource)

    def draw(self, strategy: st.SearchStrategy[Any], label: str) -> Any:
        assert self.data is not None
        return self.data.draw(strategy, label=label)

    def got(self, step: object, resource: Res, fresh: bool) -> None:
        """A claim or a take gave the caller ``resource``: vetted first, if due."""
        vet = self.checks and not fresh
        if vet and self.clock.now - self.last_used[resource] >= CHECK_INTERVAL:
            assert isinstance(step, Vet) and step.entry.resource is resource, step
            if not self.draw(st.booleans(), "the check passes"):  # the caller gives it up
                self.s.broke(step.entry, taken=False)
                self.counts["acquired"] -= 1
                self.counts["broken"] += 1
                self.closing.append(step.entry)
                return
            step = step.entry
        assert isinstance(step, Entry) and step.resource is resource, step
        self.hand_out(step)

    def registered(self, creation: Creation[Res], resource: Res) -> Entry[Res]:
        """A factory call returned a new resource: what the model learns of its record."""
        entry = self.s.alive[id(resource)]
        now = self.clock.now
        if self.recycles:
            low = now + RECYCLE * (1 - RECYCLE_JITTER) - 1e-9
            assert low <= entry.expires_at <= now + RECYCLE
        else:
            assert entry.expires_at == math.inf
        assert entry.generation == creation.generation and entry.last_used == now
        self.expires[resource] = entry.expires_at
        self.generation_of[resource] = creation.generation
        self.last_used[resource] = now
        self.counts["created"] += 1
        return entry

    def start(self, creation: Creation[Res], caller: Caller) -> None:
        assert creation.owner is caller.waiter and creation.generation == self.generation
        creation.stop = lambda: None  # what dispose hands back to stop it
        caller.creation = creation
        if caller.kind != "watcher":
            caller.kind = "creator"
            assert caller.waiter.creation is creation and creation.lease
        self.creations[creation] = caller

    # -- acquiring --------------------------------------------------------------------------------

    @precondition(lambda self: not self.closed and len(self.line) <= 2 * self.limit)
    @rule(data=st.data())
    def claim(self, data: st.DataObject) -> None:
        """A caller's first look, or its look again (``front``: ahead of later ones)."""
        self._step(data)
        self._claim(self.draw(st.booleans(), "front"))

    def _claim(self, front: bool, step: object = None) -> None:
        """``step``: the claim's outcome, if the state claimed already (in the same section)."""
        room = self.slots < self.limit
        if step is None:
            step = self.s.claim(front=front)
        if self.idle:
            resource = self.idle.pop() if self.lifo else self.idle.pop(0)
            if not self.usable(resource):
                assert isinstance(step, Stale) and step.entry.resource is resource, step
                self.closing.append(step.entry)  # the caller closes it, then gives up
                return
            self.counts["acquired"] += 1
            self.got(step, resource, False)
        elif room:
            assert step is SLOT, step
            self._slot()
        else:
            assert isinstance(step, Waiter), step
            caller = Caller(step, "plain")
            self.line.insert(0 if front else len(self.line), caller)

    def _slot(self) -> None:
        """A caller got a slot: it starts creating at once, or a little later (threads)."""
        self.slot_callers += 1
        if self.draw(st.booleans(), "starts creating at once"):
            self._start_creating()

    @precondition(lambda self: self.slot_callers)
    @rule(data=st.data())
    def start_creating(self, data: st.DataObject) -> None:
        """A caller with a slot starts its factory call, or backs off first."""
        self._step(data)
        self._start_creating()

    def _start_creating(self) -> None:
        self.slot_callers -= 1
        if self.closed:
            with pytest.raises(PoolClosed):
                self.s.next_creation(None, None, True)
            self.free_slot()
            return
        todo, waiter = self.s.next_creation(None, None, True)
        if self.idle:  # one came back meanwhile: its slot is freed, and it claims again
            assert waiter is None
            self.free_slot()
            self._claim(True, todo)
            return
        assert waiter is not None
        caller = Caller(waiter, "holding")
        self.line.insert(0, caller)
        if self.until > self.clock.now:
            assert todo == self.until
        else:
            assert isinstance(todo, Creation), todo
            self.start(todo, caller)

    @precondition(lambda self: not self.closed and self.slots < self.limit)
    @rule(data=st.data())
    def prefill_one(self, data: st.DataObject) -> None:
        """Prefill reserves a slot and starts a factory call for the pool (gives up in backoff)."""
        self._step(data)
        self._prefill_one()

    def _prefill_one(self) -> None:
        assert self.s.reserve(self.limit)
        todo, watcher = self.s.next_creation(None, None, False)
        assert watcher is not None and watcher.abandoned
        if self.until > self.clock.now:
            assert todo == self.until
            assert self.s.abandon(watcher) is None  # prefill's caller gives up
            self.free_slot()
            return
        assert isinstance(todo, Creation) and not todo.lease
        self.start(todo, Caller(watcher, "watcher"))

    # -- factory calls ending ---------------------------------------------------------------------

    @precondition(lambda self: self.creations)
    @rule(data=st.data())
    def factory_returns(self, data: st.DataObject) -> None:
        """A new resource, ``None``, or one the pool holds already (refused)."""
        self._step(data)
        creation = data.draw(st.sampled_from(list(self.creations)))
        returns = data.draw(st.sampled_from(["new", "new", "new", "none", "held"]))
        held = self.alive()
        if returns == "held" and held:
            self._returns(creation, data.draw(st.sampled_from(held)))
        elif returns == "none":
            self._returns(creation, None)
        else:
            self._returns(creation, self._new_resource())

    def _new_resource(self) -> Res:
        self.made += 1
        return Res(str(self.made))

    def _returns(self, creation: Creation[Res], resource: Res | None) -> None:
        owner = self.creations.pop(creation)
        new = resource is not None and resource not in self.alive()
        wake, to_close, outage, refused = self.s.creation_made(creation, resource)
        if not new:
            self._refused(owner, wake, to_close, outage, refused)
            return
        ended = (self.clock.now - self.since, self.failures) if self.failures else None
        assert outage == ended  # the outage it ends
        self.failures, self.until = 0, 0.0
        assert resource is not None and not refused
        entry = self.registered(creation, resource)
        if owner is not None and owner.kind == "creator":  # its own caller's, fresh
            assert not self.closed  # dispose took every creator out of line
            assert (wake, to_close) == (owner.waiter, None)
            self.line.remove(owner)
            owner.kind, owner.resource, owner.fresh = "served", resource, True
            owner.creation = None
            self.served.append(owner)
            self.counts["acquired"] += 1
            owner.waiter.event.set()  # the driver wakes it
            owner.sets += 1
            if self.draw(st.booleans(), "its caller takes it at once"):
                self._take(owner, True)
            return
        outcome = self.put(resource)
        if outcome == "close":
            assert to_close is entry
            self.closing.append(entry)
        else:
            assert to_close is None
        if owner is None:
            assert wake is None
        else:  # prefill's
            assert owner.kind == "watcher" and wake is owner.waiter
            assert self.s.creation_ended(owner.waiter) is (AGAIN if outcome == "close" else MADE)

    def _refused(
        self,
        owner: Caller | None,
        wake: object,
        to_close: object,
        outage: object,
        refused: bool,
    ) -> None:
        """The factory returned None or a resource the pool holds: nothing is pooled."""
        assert (wake, to_close, outage) == (None, None, None)
        assert refused is (owner is None)
        if owner is None:
            self.free_slot()
            return
        assert isinstance(owner.waiter.failed, Duplicate)
        if owner.kind == "creator":
            self.line.remove(owner)
            owner.sets += 1
            owner.creation = None
        assert self.s.take(owner.waiter, True) is AGAIN
        assert isinstance(self.s.creation_ended(owner.waiter), Duplicate)
        self.s.drop_creator(owner.waiter)  # the driver raises the PoolError
        self.free_slot()
        if owner.kind == "creator":
            self.finish(owner)

    @precondition(lambda self: self.creations)
    @rule(data=st.data())
    def factory_fails(self, data: st.DataObject) -> None:
        self._step(data)
        creation = data.draw(st.sampled_from(list(self.creations)))
        owner = self.creations.pop(creation)
        error = ConnectionError("down")
        FIGURES.add(factory_failures=1)
        attempts = self.s.creation_failed(creation, error, False, True)
        self.counts["create_errors"] += 1
        now = self.clock.now
        self.failures += 1
        expected = 0
        if self.failures == 1:
            self.since = self.logged = now
            expected = 1
        elif now - self.logged >= OUTAGE_LOG_EVERY:
            self.logged = now
            expected = self.failures
        assert attempts == expected
        pause = min(MAX_BACKOFF, FIRST_BACKOFF * 2.0 ** min(self.failures - 1, 32))
        until = self.s.backoff.until
        assert max(self.until, now + pause / 2) <= until <= max(self.until, now + pause)
        self.until = until
        assert self.s.last_error is error
        if owner is None:
            self.free_slot()
        elif owner.kind == "watcher":  # prefill sees it, and gives up in the backoff
            assert owner.waiter.failed is error
            assert self.s.take(owner.waiter, True) is AGAIN
            assert self.s.creation_ended(owner.waiter) is error
            if self.closed:
                with pytest.raises(PoolClosed):
                    self.s.next_creation(owner.waiter, None, False)
            else:
                assert self.s.next_creation(owner.waiter, None, False) == (until, owner.waiter)
                assert self.s.abandon(owner.waiter) is None
            self.free_slot()
        else:
            assert owner.kind == "creator"
            assert owner.waiter.failed is error and owner.waiter.holds_slot
            owner.kind, owner.creation = "failed", None
            owner.sets += 1
            if self.draw(st.booleans(), "its caller sees it at once"):
                self._sees_failure(owner)

    @precondition(lambda self: any(c.kind in ("failed", "holding") for c in self.line))
    @rule(data=st.data())
    def creator_looks_again(self, data: st.DataObject) -> None:
        """A creator woken by its failure sees it; one backing off retries when it ends."""
        self._step(data)
        backing_off = [c for c in self.line if c.kind in ("failed", "holding")]
        caller = data.draw(st.sampled_from(backing_off))
        if caller.kind == "failed":
            self._sees_failure(caller)
        else:
            self._retries(caller)

    def _sees_failure(self, caller: Caller) -> None:
        assert self.s.take(caller.waiter, True) is AGAIN
        assert isinstance(self.s.creation_ended(caller.waiter), ConnectionError)
        caller.kind, caller.sets = "holding", 0  # a new event, for the backoff's wait

    def _retries(self, caller: Caller) -> None:
        self.s.backed_off(caller.waiter)
        caller.sets = 0
        todo, same = self.s.next_creation(caller.waiter, None, True)
        assert same is caller.waiter
        if self.idle:  # its slot is freed, and it claims again, in the same section
            self.line.remove(caller)
            self.free_slot()
            self.finish(caller)
            self._claim(True, todo)
        elif self.until > self.clock.now:
            assert todo == self.until
        else:
            assert isinstance(todo, Creation), todo
            self.start(todo, caller)

    # -- waiting ends -----------------------------------------------------------------------------

    @precondition(lambda self: self.waiting() or self.served or self.closed_callers)
    @rule(data=st.data())
    def wait_ends(self, data: st.DataObject) -> None:
        """Woken (``take``), at its deadline (``take(woken=False)``), or cancelled (``abandon``)."""
        self._step(data)
        caller = data.draw(st.sampled_from(self.waiting() + self.served + self.closed_callers))
        hows = ["timeout", "cancel"] if caller.kind in WHAT else ["woken", "timeout", "cancel"]
        how = data.draw(st.sampled_from(hows))
        waiter, kind = caller.waiter, caller.kind
        if kind == "closed":
            if how == "cancel":
                assert self.s.abandon(waiter) is None
            else:
                with pytest.raises(PoolClosed):
                    self.s.take(waiter, how == "woken")
            self.closed_callers.remove(caller)
            if caller.frees:
                self.free_slot()
            self.finish(caller)
        elif kind == "served" and how != "cancel":
            self._take(caller, how == "woken")
        elif kind == "served":
            self.served.remove(caller)
            to_close = self.s.abandon(waiter)
            if caller.slot:
                assert to_close is None
                self.free_slot()
            else:
                assert caller.resource is not None
                self.counts["acquired"] -= 1
                if self.put(caller.resource) == "close":
                    assert to_close is not None and to_close.resource is caller.resource
                    self.closing.append(to_close)
                else:
                    assert to_close is None
            self.finish(caller)
        else:
            if how == "timeout":
                FIGURES.add(timeouts=1)
                self.counts["timeouts"] += 1
                facts = self.expected_stats()  # noted before it leaves: it counts itself
                step = self.s.take(waiter, False)
                assert isinstance(step, TimedOut) and step.what == WHAT[kind], step
                assert coarse(step.facts.stats) == facts
            else:
                assert self.s.abandon(waiter) is None
            self.line.remove(caller)
            if kind == "creator":  # its factory call goes on, for whoever is next
                assert caller.creation is not None and caller.creation.owner is None
                self.creations[caller.creation] = None
            elif kind == "holding":
                self.free_slot()
            self.finish(caller)

    def _take(self, caller: Caller, woken: bool) -> None:
        self.served.remove(caller)
        step = self.s.take(caller.waiter, woken)
        self.finish(caller)
        if caller.slot:
            assert step is SLOT, step
            self._slot()
        else:
            assert caller.resource is not None
            self.got(step, caller.resource, caller.fresh)

    # -- resources coming back --------------------------------------------------------------------

    @precondition(lambda self: self.taken)
    @rule(data=st.data())
    def give_back(self, data: st.DataObject) -> None:
        """Released (quickly, or the slow way), discarded, or dropped unreleased.

        ``suspect``: its holder failed.  Then, sometimes, a second give back of
        something the pool does not lease, refused.
        """
        self._step(data)
        resource = data.draw(st.sampled_from(self.taken))
        how = data.draw(st.sampled_from(["quick", "quick", "release", "discard", "dropped"]))
        if how == "dropped":
            self._dropped(resource)
        else:
            self._give_back(resource, how, data.draw(st.booleans(), label="suspect"))
        if data.draw(st.booleans(), label="then gives back what is not leased"):
            self._give_back_what_is_not_leased()

    def _give_back(self, resource: Res, how: str, suspect: bool) -> None:
        self.taken.remove(resource)
        entry = self.s.alive[id(resource)]
        if how == "quick":
            quick = self.s.return_quickly(resource, suspect)
            assert quick is not (self.closed or not self.usable(resource))
            if quick:
                self.last_used[resource] = -math.inf if suspect else self.clock.now
                assert self.put(resource) != "close"
                return
            how = "release"  # release's slow path closes it
        got, to_close, overdue = self.s.take_back(resource, how, suspect)
        assert got is entry and overdue is None
        if how == "discard":
            self.counts["broken"] += 1
            outcome = "close"
        else:
            self.last_used[resource] = -math.inf if suspect else self.clock.now
            outcome = self.put(resource)
        if outcome == "close":
            assert to_close is entry
            self.closing.append(entry)
        else:
            assert to_close is None

    def _dropped(self, resource: Res) -> None:
        """Its holder dropped it unreleased: the weak reference's callback."""
        entry = self.s.alive[id(resource)]
        assert entry.resource is None  # held weakly since it was taken
        with pytest.warns(ResourceWarning):
            self.s.lost_one(entry)
        self.taken.remove(resource)
        self.counts["lost"] += 1
        self.counts["closed"] += 1
        self.gone.append(resource)
        self.free_slot()

    def _give_back_what_is_not_leased(self) -> None:
        """Idle, closed or closing, handed to a waiter, or never ours: refused, nothing changes."""
        handed = [c.resource for c in self.served if c.resource is not None]
        ending = [e.resource for e in self.closing + self.late if e.resource is not None]
        candidates = [*self.idle, *self.gone, *handed, *ending, self.stranger]
        resource = self.draw(st.sampled_from(candidates), "what")
        how = self.draw(st.sampled_from(["release", "discard"]), "how")
        before = self.s.stats()
        assert not self.s.return_quickly(resource, False)
        problem = self.s.take_back(resource, how, False)
        assert problem == (GOT_BACK if any(resource is r for r in handed) else NOT_LEASED)
        error = release_error(self.s.kind, how, resource, problem)  # what the driver raises
        assert str(error) == f"{how}({resource!r}): this Pool {problem}; {ADVICE}"
        assert self.s.stats() == before
        FIGURES.add(refused_give_backs=1)

    # -- closing ----------------------------------------------------------------------------------

    @precondition(lambda self: self.closing or self.late)
    @rule(data=st.data())
    def releaser_ends(self, data: st.DataObject) -> None:
        """A releaser returns (``failed``: raising), runs on late (threads), or ends late."""
        self._step(data)
        entry = data.draw(st.sampled_from(self.closing + self.late))
        if entry in self.late:
            self.late.remove(entry)
            self.s.closed_late(entry)
            self._closed(entry)
            return
        self.closing.remove(entry)
        failed = data.draw(st.booleans(), label="failed")
        late = data.draw(st.booleans(), label="late")
        self.s.closed_one(entry, failed=failed, late=late)
        if failed:
            self.counts["close_errors"] += 1
        if late:
            self.late.append(entry)
            return
        self.s.free_slot()
        self._closed(entry)

    def _closed(self, entry: Entry[Res]) -> None:
        assert entry.resource is not None
        self.counts["closed"] += 1
        self.gone.append(entry.resource)
        self.free_slot()

    # -- the whole pool ---------------------------------------------------------------------------

    @precondition(lambda self: self.clock.now < self.steps / 2)  # time runs, but not away
    @rule(data=st.data())
    def clock_advances(self, data: st.DataObject) -> None:
        self._step(data)
        self.clock.now += data.draw(st.sampled_from(SECONDS))

    @precondition(lambda self: self.idle or self.leased or self.creations or self.closed)
    @rule(data=st.data())
    def recycle(self, data: st.DataObject) -> None:
        """``force``: retire every resource, idle or not, and those being made."""
        self._step(data)
        force = data.draw(st.booleans(), label="force")
        stale = self.s.take_stale(force)
        if force:
            self.generation += 1
        assert [e.resource for e in stale] == [r for r in self.idle if not self.usable(r)]
        self.idle = [r for r in self.idle if self.usable(r)]
        self.closing += stale

    @precondition(lambda self: not self.closed and self.steps >= 35)  # not too early
    @rule(data=st.data())
    def dispose(self, data: st.DataObject) -> None:
        self._step(data)
        closed = self.s.close(False)
        assert closed is not None and self.s.close(False) is None  # then disposed already
        with pytest.raises(PoolClosed):
            self.s.claim()
        idle, stops = closed
        assert [e.resource for e in idle] == self.idle
        expected_stops = [c.stop for c in self.creations]
        assert len(stops) == len(expected_stops)
        assert {id(stop) for stop in stops} == {id(stop) for stop in expected_stops}
        self.closing += idle
        self.idle = []
        self.closed = True
        for caller in self.line:
            caller.frees = caller.kind in ("failed", "holding")
            if caller.kind != "failed":  # a failed creator is awake already
                caller.sets += 1
            if caller.kind == "creator":
                assert caller.creation is not None
                self.creations[caller.creation] = None
                caller.creation = None
            caller.kind = "closed"
        self.closed_callers += self.line
        self.line = []

    # -- what must hold after every step ----------------------------------------------------------

    @invariant()
    def the_state_matches_the_model(self) -> None:
        if self.state is None:
            return
        state = self.s
        assert coarse(state.stats()) == self.expected_stats()
        assert state.slots == self.slots <= self.limit
        assert state.closed == self.closed
        line = state.line
        assert line.waiting == len(self.line)
        assert line.creators == sum(c.kind != "plain" for c in self.line)
        assert [w for w in line._waiters if not w.abandoned] == [c.waiter for c in self.line]
        assert [e.resource for e in state.idle] == self.idle
        idle = {e.key for e in state.idle}
        assert not idle & {e.key for e in state.alive.values() if e.leased}
        assert set(state.alive) == {id(r) for r in self.alive()}
        assert set(state.creations) == set(self.creations)
        for caller in self.line + self.closed_callers:
            assert caller.waiter.entry is None and not caller.waiter.slot, caller
            assert caller.waiter.event.sets == caller.sets, caller
        for caller in self.served:
            waiter = caller.waiter
            if caller.slot:
                assert waiter.slot and waiter.entry is None
            else:
                assert waiter.entry is not None and not waiter.slot
                assert waiter.entry.resource is caller.resource and waiter.entry.handed is waiter
            assert waiter.event.sets == caller.sets, caller
        for caller, entry, slot, event, sets in self.done:  # served at most once
            assert caller.waiter.entry is entry and caller.waiter.slot is slot, caller
            assert event.sets == sets, caller
        FIGURES.add(invariant_checks=1)

    def teardown(self) -> None:
        if self.state is not None:
            self.state.owner = lambda: None  # dropped now: its leases say nothing


StateModel.TestCase.settings = settings(
    max_examples=200,
    stateful_step_count=50,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
test_state_matches_its_model = StateModel.TestCase
