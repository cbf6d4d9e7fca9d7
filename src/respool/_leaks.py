"""Leak tracking, with ``leak_timeout``: who holds what for how long, and the warnings.

The pool state holds a :class:`Leaks` only when ``leak_timeout`` is set (else
``None``: one attribute test on the hot path).  Its bookkeeping runs under
the pool's lock and never formats a resource; the warnings are logged by the
driver afterwards, outside the lock (``repr()`` of a resource is user code).
Leases dropped without a release (the weak-reference path) are the state's:
they cost nothing here.
"""

from __future__ import annotations

import logging
import os
import traceback
from collections import OrderedDict
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

import attrs

from ._reprs import show
from .events import Event, Leaked

if TYPE_CHECKING:
    from ._state.records import Entry

logger = logging.getLogger("respool")

_PACKAGE = os.path.dirname(os.path.abspath(__file__))


def site_line(site: traceback.StackSummary | None) -> str:
    """``file:line in function``: the innermost frame of an acquire site outside respool."""
    if site is None:
        return "an unrecorded place (set leak_timeout to record acquire sites)"
    frame = next((f for f in site if not f.filename.startswith(_PACKAGE)), site[0])
    return f"{frame.filename}:{frame.lineno} in {frame.name}"


def _stack(site: traceback.StackSummary | None) -> str:
    if site is None:
        return "  (not recorded)\n"
    return "".join(site.format())


@attrs.frozen
class Overdue:
    """A lease that ended past ``leak_timeout``, as seen under the lock when it ended."""

    resource: object
    held: float  # seconds
    site: traceback.StackSummary | None
    reported: bool  # a warning was logged while it was held


@attrs.frozen
class Leases:
    """The leases held past ``leak_timeout`` when a caller timed out."""

    count: int
    oldest: float  # seconds the oldest has been held
    site: traceback.StackSummary | None  # where the oldest was acquired


class Leaks:
    """Leased records, oldest lease first, so finding overdue ones never scans the rest."""

    __slots__ = ("emit", "holding", "limit")

    def __init__(self, limit: float) -> None:
        self.limit = limit
        self.emit: Callable[[Event], None] | None = None  # the pool's hooks, if any
        self.holding: OrderedDict[Entry[Any], None] = OrderedDict()

    # -- under the pool's lock -------------------------------------------------

    def leased(self, entry: Entry[Any], now: float) -> None:
        entry.leased_at = now
        entry.reported = False
        self.holding[entry] = None

    def unleased(self, entry: Entry[Any]) -> None:
        self.holding.pop(entry, None)

    def overdue(self, entry: Entry[Any], resource: object, now: float) -> Overdue | None:
        """The facts for a warning, if ``entry`` was held past the limit."""
        held = now - entry.leased_at
        if held < self.limit and not entry.reported:
            return None
        return Overdue(resource, held, entry.site, entry.reported)

    def overdue_leases(self, alive: Iterable[Entry[Any]], now: float) -> Leases | None:
        """The leases held past the limit (a scan: timeouts only)."""
        limit = self.limit
        overdue = [e for e in alive if e.leased and e.handed is None and now - e.leased_at >= limit]
        if not overdue:
            return None
        oldest = min(overdue, key=lambda e: e.leased_at)
        return Leases(len(overdue), now - oldest.leased_at, oldest.site)

    def due(self, now: float) -> list[tuple[object, float, traceback.StackSummary | None]]:
        """Leases past the limit not reported yet, marked reported: what to warn about."""
        found = []
        while self.holding:
            entry = next(iter(self.holding))
            if now - entry.leased_at < self.limit:
                break
            del self.holding[entry]
            entry.reported = True
            found.append((entry.current(), now - entry.leased_at, entry.site))
        return found

    def clear(self) -> None:
        self.holding.clear()

    # -- outside the lock --------------------------------------------------------

    def warn_held(self, due: list[tuple[object, float, traceback.StackSummary | None]]) -> None:
        for resource, held, site in due:
            if self.emit is not None:
                self.emit(Leaked(resource, held, False))
            logger.warning(
                "%s has been held for %.1fs (leak_timeout=%gs); it was acquired at:\n%s",
                show(resource),
                held,
                self.limit,
                _stack(site),
            )

    def warn_returned(self, overdue: Overdue) -> None:
        """A lease held past the limit ended: always worth a warning, reported or not."""
        if self.emit is not None:
            self.emit(Leaked(overdue.resource, overdue.held, True))
        logger.warning(
            "%s came back after %.1fs, held past leak_timeout=%gs%s; it was acquired at:\n%s",
            show(overdue.resource),
            overdue.held,
            self.limit,
            " (it was reported as a possible leak while held)" if overdue.reported else "",
            _stack(overdue.site),
        )
