"""What the pool state tells a driver to do next: a small, closed set of values.

``PoolState.claim`` and the state's other decisions return one of them; the
driver's serve loop (``_async/acquiring.py``) matches on it in one place:

* an ``Entry``: a resource leased to the caller, ready to hand out;
* ``Vet(entry)``: leased to the caller, to be checked first;
* ``Stale(entry)``: taken out to be closed; the caller keeps its slot;
* ``SLOT``: a slot reserved for the caller to create a resource in;
* a ``Waiter``: the caller's place in line, to wait on;
* ``AGAIN``: look again, ahead of those who came later;
* ``TimedOut(facts, what)``: give up with a ``PoolTimeout`` built from the facts.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Generic, TypeAlias, TypeVar

import attrs

from .line import Waiter
from .records import Entry

if TYPE_CHECKING:
    from .._errors import TimeoutFacts

T = TypeVar("T")


class Slot:
    """The right to create one resource: a free slot, reserved."""

    __slots__ = ()


SLOT = Slot()


class Again:
    """Look again: what the caller waited for ended without serving it."""

    __slots__ = ()


AGAIN = Again()


class Made:
    """Prefill's creation placed its resource in the pool."""

    __slots__ = ()


MADE = Made()


@attrs.define(eq=False)
class Vet(Generic[T]):
    """An idle resource leased to the caller, to be checked before it is handed out."""

    entry: Entry[T]


@attrs.define(eq=False)
class Stale(Generic[T]):
    """An idle resource taken out to be closed: too old, retired, or dead."""

    entry: Entry[T]


@attrs.frozen
class TimedOut:
    """The caller's deadline passed: ``what`` it was doing, and the facts for its error."""

    facts: TimeoutFacts
    what: str


Step: TypeAlias = "Entry[T] | Vet[T] | Stale[T] | Slot | Waiter[T] | Again | TimedOut"


class Creation(Generic[T]):
    """A factory call running in the background, in a slot of its own.

    It outlives the caller who started it (``owner``): if that caller gives
    up or is served by a released resource first, what the factory returns
    goes to the oldest waiter, else to the idle set.  ``lease=False`` is
    prefill's: the resource goes to the pool, and the owner only watches.
    """

    __slots__ = ("generation", "lease", "owner", "started", "stop")

    def __init__(self, generation: int, owner: Waiter[T] | None, lease: bool) -> None:
        self.generation = generation
        self.owner = owner
        self.lease = lease
        self.stop: Callable[[], object] | None = None  # dispose ends it with this
        self.started = 0.0  # when its factory call began (the driver notes it)


class Duplicate(Exception):
    """The factory returned what the pool cannot take: an object it already holds, or None.

    Handed to the creator waiting for it as its ``failed``; the slot is freed.
    """


NO_RETRY_FITS = "while the factory kept failing (its next retry comes after the deadline)"
BEFORE_CREATED = "before the factory created one"
KEPT_FAILING = "while the factory kept failing"
WAITING = "waiting for a resource"
