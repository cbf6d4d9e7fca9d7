"""The pool's record of one resource."""

from __future__ import annotations

import traceback
import weakref
from typing import Any, Generic, TypeVar, cast

import attrs

T = TypeVar("T")

# Why a resource was closed: ``Entry.reason``, an index into ``Ledger.closes``.
RECYCLED, IDLE, CHECK_FAILED, RESET_FAILED, DISCARDED, DISPOSED, SURPLUS = range(7)
REASONS = ("recycled", "idle", "check_failed", "reset_failed", "discarded", "disposed", "surplus")


class LostRef(weakref.ref):  # type: ignore[type-arg]
    """A weak reference to a leased resource that knows its record and pool state.

    Its callback, one per pool state (which it holds weakly: a pool's
    resources must not keep it alive), runs when a holder drops the resource
    without releasing it.
    """

    __slots__ = ("entry",)
    entry: Entry[Any]


@attrs.define(eq=False, weakref_slot=False)  # nothing refers to a record weakly
class Entry(Generic[T]):
    """One live resource and what the pool knows about it.

    ``expires_at`` is the creation time plus ``pool_recycle`` less a little
    jitter (``inf`` when recycling is off); ``generation`` is the pool's
    recycle generation when the factory was called, so ``recycle(force=True)``
    retires a resource by bumping the pool's.

    While a caller holds the resource, ``resource`` is ``None`` if ``ref``
    (a weak reference) can stand in for it: the pool then notices when the
    holder drops the resource without releasing it.
    """

    resource: T | None
    key: int  # id() of the resource: its key in the pool's table
    expires_at: float
    generation: int
    last_used: float  # creation, then each release: when it was last known good
    ref: LostRef | None = None
    leased: bool = False
    handed: object = None  # the waiter it was handed to, until that waiter takes it
    leased_at: float = 0.0
    site: traceback.StackSummary | None = None  # where it was acquired, when recorded
    reported: bool = False  # a leak warning was logged for the current lease
    late: bool = False  # its releaser outlived cleanup_timeout and still runs (threads)
    reason: int = DISCARDED  # why it is closed, once it is (counted by reason)

    def held(self) -> T:
        """The resource, while the pool holds it strongly (idle, or being returned)."""
        return cast(T, self.resource)

    def current(self) -> T | None:
        """The resource, also while lent out; ``None`` once it was garbage-collected."""
        if self.resource is not None or self.ref is None:
            return self.resource
        return cast("T | None", self.ref())

    def holds(self, resource: object) -> bool:
        """Whether ``resource`` is this record's resource (also while lent out)."""
        return resource is not None and self.current() is resource
