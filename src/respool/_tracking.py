"""Who created which pools, for the leak-checking pytest plugin (``respool.testing``).

A *watch* records every pool created while it is open.  Pools created under
a watch also note where each resource was acquired, so a leak report can
name the line.  Outside a watch this costs one list check per pool created.
"""

from __future__ import annotations

import contextlib
import weakref
from collections.abc import Iterator

_watches: list[list[weakref.ref[object]]] = []


def watching() -> bool:
    """Whether a watch is open (new pools then record acquire sites)."""
    return bool(_watches)


def pool_created(pool: object) -> None:
    for pools in _watches:
        pools.append(weakref.ref(pool))


@contextlib.contextmanager
def watch() -> Iterator[list[weakref.ref[object]]]:
    """Collect weak references to every pool created inside the block."""
    pools: list[weakref.ref[object]] = []
    _watches.append(pools)
    try:
        yield pools
    finally:
        _watches.remove(pools)
