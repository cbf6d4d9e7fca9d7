"""Exceptions raised by respool pools."""

from __future__ import annotations

import attrs

from ._leaks import Leases, site_line
from ._reprs import show
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


class PoolExhausted(PoolError):
    """``acquire`` was refused at once: ``max_waiting`` callers were waiting already.

    Raised without waiting, so a caller can shed load (say, answer HTTP 503).

    Attributes:
        stats: the pool's :class:`~respool.PoolStats` when the call was refused.
    """

    def __init__(self, message: str, stats: PoolStats) -> None:
        super().__init__(f"{message} ({stats})")
        self.stats = stats


# -- wording: the one place each of the pool's own errors is built ------------


@attrs.frozen
class TimeoutFacts:
    """What a ``PoolTimeout`` will say, noted under the lock as the caller gave up."""

    stats: PoolStats
    last_error: BaseException | None
    ago: float  # seconds since the last factory error
    leases: Leases | None  # the leases held past leak_timeout, if tracked
    failing: bool  # an outage is under way: no creation has worked since that error


def timeout_error(
    kind: str, facts: TimeoutFacts, seconds: float | None, what: str, leak_timeout: float | None
) -> PoolTimeout:
    """The ``PoolTimeout`` of a ``kind`` pool whose caller gave up after ``seconds``.

    Built outside the lock: ``repr()`` of the factory's error is user code.
    """
    last = facts.last_error
    if last is None:
        cause = "no factory errors so far"
    else:
        cause = f"last factory error ({facts.ago:.1f}s ago): {show(last)}"
    held = ""
    leases = facts.leases
    if leases is not None:
        held = (
            f"; {leases.count} lease{'s' if leases.count > 1 else ''} held past "
            f"leak_timeout={leak_timeout:g}s, the oldest for {leases.oldest:.1f}s, "
            f"acquired at {site_line(leases.site)}"
        )
    error = PoolTimeout(
        f"{kind}: no resource after {seconds:g}s {what} ({facts.stats}); {cause}{held}",
        facts.stats,
        last,
    )
    # A factory error within the call's own time span, or of an outage still
    # under way (no creation has worked since), is why it timed out.
    recent = facts.ago <= (seconds or 0) or facts.failing
    error.__cause__ = last if last is not None and recent else None
    error.__suppress_context__ = True  # the pool's internal TimeoutError says nothing more
    return error


def duplicate_error(resource: object) -> PoolError:
    """The factory returned ``None`` or a resource the pool holds already."""
    if resource is None:
        return PoolError(
            "the factory returned None: a factory must return the resource it made "
            "(is a `return` missing?); nothing was pooled and its slot is free"
        )
    return PoolError(
        f"the factory returned {show(resource)}, which this pool already "
        "holds; a factory must return a new resource on every call"
    )


def release_error(kind: str, how: str, resource: object, problem: str) -> PoolError:
    """``how`` (release or discard) of a resource the ``kind`` pool does not lease now."""
    advice = "release or discard each acquired resource exactly once, or use `lease()`"
    return PoolError(f"{how}({show(resource)}): this {kind} {problem}; {advice}")


def exhausted_message(kind: str, max_waiting: int) -> str:
    return (
        f"{kind}: {max_waiting} callers are waiting already (max_waiting={max_waiting}); "
        "shed this request, or raise max_waiting or pool_size"
    )


def closed_message(kind: str) -> str:
    return f"this {kind} was disposed; create a new pool"
