"""Event hooks, with ``on_event=``: typed, frozen records of what a pool did.

The pool state holds a ``Hooks`` only when the pool was made with
``on_event`` (else ``None``: one attribute test where an event happens; the
acquire hot path tests the one flag it tested before, and the pool binds its
quick release to a noting wrapper only with hooks).  A hook
is user code: it is called outside the pool's lock, in the task or thread
where the event happened, and its errors are logged (once per pool), never
raised.  A slow hook slows the pool where it is called: that is its cost.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import attrs

from ._reprs import show

if TYPE_CHECKING:
    from ._errors import PoolTimeout

logger = logging.getLogger("respool")


@attrs.frozen
class Created:
    """The factory returned ``resource`` after ``seconds``."""

    resource: object
    seconds: float


@attrs.frozen
class CheckedOut:
    """``acquire`` handed ``resource`` to its caller."""

    resource: object


@attrs.frozen
class CheckedIn:
    """``resource`` was released (before ``reset``, if any, runs)."""

    resource: object


@attrs.frozen
class CheckFailed:
    """``check`` (or ``is_closed``) found ``resource`` broken; ``error`` is what it raised."""

    resource: object
    error: BaseException | None


@attrs.frozen
class Closed:
    """``resource`` was closed (its releaser ended), for ``reason``.

    ``reason`` is one of ``"recycled"``, ``"idle"``, ``"check_failed"``,
    ``"reset_failed"``, ``"discarded"``, ``"disposed"``, ``"surplus"``;
    ``error`` is what the releaser raised, if it did.
    """

    resource: object
    reason: str
    error: BaseException | None


@attrs.frozen
class TimedOut:
    """An ``acquire`` gave up: ``error`` is the ``PoolTimeout`` it raises."""

    error: PoolTimeout


@attrs.frozen
class Leaked:
    """``resource`` has been held ``seconds``, past ``leak_timeout``.

    ``returned``: it came back just now (else it is still held).
    """

    resource: object
    seconds: float
    returned: bool


Event = Created | CheckedOut | CheckedIn | CheckFailed | Closed | TimedOut | Leaked


class Hooks:
    """A pool's ``on_event`` callback, guarded: an error is logged once, never raised."""

    __slots__ = ("callback", "failed", "name")

    def __init__(self, callback: Callable[[Event], object], name: str) -> None:
        self.callback = callback
        self.name = name  # the pool, in the log line
        self.failed = False

    def emit(self, event: Event) -> None:
        try:
            self.callback(event)
        except Exception as exc:
            if not self.failed:  # once per pool: a broken hook must not flood the log
                self.failed = True
                logger.error(
                    "%s: on_event=%s raised on %s (logged once per pool; it is still called)",
                    self.name,
                    show(self.callback),
                    type(event).__name__,
                    exc_info=exc,
                )


def noting(quick: Callable[[Any, bool], bool], hooks: Hooks) -> Callable[[Any, bool], bool]:
    """The quick release ``quick``, emitting :class:`CheckedIn` when it took the resource."""

    def returned(resource: Any, suspect: bool) -> bool:
        if quick(resource, suspect):
            hooks.emit(CheckedIn(resource))
            return True
        return False

    return returned
