"""A pool's state, sans I/O: written once, shared by both faces, never generated.

Everything a pool decides under its lock lives here: the idle store, the
alive table, slot counting, the waiting line, generations, backoff, counters
and the lost-lease queue.  It never awaits, never calls user code, never
formats a resource, and knows no event loop or thread; the drivers in
``_async/`` (and their generated twins in ``_sync/``) await, call the user's
callables, and act on the steps it returns (``steps.py``).

``PoolState`` is the ledger (``ledger.py``: claim, place, free a slot,
lease, lost leases, stats) with the bookkeeping of creation
(``creations.py``), of resources coming back (``returns.py``), of closing
(``closings.py``), of sizing at runtime (``sizing.py``) and of an opened
pool's maintainer (``upkeep.py``) and of what it says about itself
(``tallies.py``) mixed in, each a topic of its own.  Methods whose name
starts with ``_`` assume the caller holds the lock; the others take it.
"""

from __future__ import annotations

from typing import TypeVar

from .backoff import Backoff
from .closings import Closings
from .creations import Creations
from .ledger import Ledger
from .line import Line
from .lost import LostLeases, on_lost
from .returns import Returns
from .sizing import Sizing
from .tallies import Tallies
from .upkeep import Upkeep

T = TypeVar("T")


class PoolState(Creations[T], Returns[T], Closings[T], Sizing[T], Upkeep[T], Tallies[T]):
    """One pool's state; see the package docstring and each part's module."""

    __slots__ = ()


# Everything here that runs code: the threaded face marks it for its Ctrl-C protection.
CODE = (
    Backoff,
    Closings,
    Creations,
    Ledger,
    Line,
    LostLeases,
    Returns,
    Sizing,
    Tallies,
    Upkeep,
    on_lost,
)

__all__ = ["CODE", "PoolState"]
