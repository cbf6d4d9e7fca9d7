"""The pool's record of one resource, the same for both faces."""

from __future__ import annotations

from typing import Generic, TypeVar

import attrs

T = TypeVar("T")


@attrs.define(eq=False)
class Entry(Generic[T]):
    """One live resource and what the pool knows about it.

    ``expires_at`` is ``created_at + pool_recycle`` (``inf`` when recycling is
    off); ``generation`` is the pool's recycle generation when the factory was
    called, so ``recycle(force=True)`` retires a resource by bumping the pool's.
    """

    resource: T
    created_at: float
    expires_at: float
    generation: int
    last_used: float
    leased: bool = False
    handed: object = None  # the waiter it was handed to, until that waiter takes it
