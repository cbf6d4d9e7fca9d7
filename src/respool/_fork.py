"""After ``os.fork()``, every pool in the child forgets the parent's resources.

A forked child shares its parent's sockets: handing them out, or closing
them, would break the parent.  So each pool, registered here at
construction, starts over empty in the child (``_forget_after_fork``).
Costs nothing until a fork.
"""

from __future__ import annotations

import os
import weakref
from typing import Protocol


class Forgetful(Protocol):
    def _forget_after_fork(self) -> None: ...


_POOLS: weakref.WeakSet[Forgetful] = weakref.WeakSet()


def register(pool: Forgetful) -> None:
    _POOLS.add(pool)


def _forget_in_child() -> None:
    for pool in list(_POOLS):
        pool._forget_after_fork()


if hasattr(os, "register_at_fork"):  # not on Windows
    os.register_at_fork(after_in_child=_forget_in_child)
