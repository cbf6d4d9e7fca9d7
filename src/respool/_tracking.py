"""Who created which pools, for the leak-checking pytest plugin (``respool.testing``).

A *watch* records every pool created while it is open.  Pools created under
a watch also note where each resource was acquired, so a leak report can
name the line.  Outside a watch this costs one list check per pool created.
"""

from __future__ import annotations

import contextlib
import weakref
from collections.abc import Iterator


class _Watch:
    """One open watch: weak references to its pools, and strong ones if asked."""

    __slots__ = ("kept", "refs")

    def __init__(self, keep_alive: bool) -> None:
        self.refs: list[weakref.ref[object]] = []
        self.kept: list[object] | None = [] if keep_alive else None


_watches: list[_Watch] = []


def watching() -> bool:
    """Whether a watch is open (new pools then record acquire sites)."""
    return bool(_watches)


def pool_created(pool: object) -> None:
    for watch in _watches:
        watch.refs.append(weakref.ref(pool))
        if watch.kept is not None:
            watch.kept.append(pool)


@contextlib.contextmanager
def watch(*, keep_alive: bool = False) -> Iterator[list[weakref.ref[object]]]:
    """Collect weak references to every pool created inside the block.

    With ``keep_alive``, the watch also holds every such pool strongly until
    the block ends, so a pool its creator dropped can still be inspected
    inside the block (the leak check looks at pools a test dropped with
    resources still leased).
    """
    watch = _Watch(keep_alive)
    _watches.append(watch)
    try:
        yield watch.refs
    finally:
        _watches.remove(watch)  # by identity: _Watch has no __eq__
