"""Exceptions raised by respool pools."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._stats import PoolStats


class PoolError(Exception):
    """Base class of every error a pool raises about its own use.

    Also raised directly for misuse: releasing a resource the pool does not
    currently lease (double release, foreign object), or using an
    :class:`~respool.AsyncPool` from a second event loop.
    """


class PoolTimeout(PoolError, TimeoutError):
    """``acquire`` (or ``lease``, ``prefill``) did not get a resource in time.

    The message states the pool's size, idle, leased and waiting counts and the
    last factory error, so an exhausted or failing pool can be diagnosed from
    the error alone.  The same facts are kept as attributes.

    Attributes:
        stats: the pool's :class:`~respool.PoolStats` when the wait gave up.
        last_error: the last exception the factory raised, or ``None``.
    """

    def __init__(
        self, message: str, stats: PoolStats, last_error: BaseException | None = None
    ) -> None:
        super().__init__(message)
        self.stats = stats
        self.last_error = last_error


class PoolClosed(PoolError):
    """The pool was disposed: it hands out nothing any more."""
