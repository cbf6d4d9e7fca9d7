"""A pool's settings, checked once at construction (the same for both faces).

The face checks its own callables first (an async face wants async ones);
:func:`settings` then checks the rest, in the order they are documented, so
the first bad argument is the one named.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import attrs

from ._checks import (
    Fatal,
    check_count,
    check_exception_types,
    check_fatal,
    check_flag,
    check_predicate,
    check_seconds,
)


class Default:
    """The default of an argument whose value depends on another one."""

    def __repr__(self) -> str:
        return "<default>"


DEFAULT = Default()

# How long the oldest waiter may be passed over by newcomers (see design.md, decision 1).
FAIRNESS_WINDOW = 0.005


@attrs.frozen
class Settings:
    """Every setting of a pool but its callables, checked; see ``AsyncPool`` for each."""

    pool_size: int
    recycle: float  # inf: off
    acquire_timeout: float | None
    check_interval: float
    leak_timeout: float | None
    cleanup_timeout: float | None
    max_backoff: float
    is_closed: Callable[[Any], object] | None
    discard_on: tuple[type[BaseException], ...]
    fatal: tuple[type[BaseException], ...] | Callable[[BaseException], object] | None
    create_timeout: float | None
    lifo: bool
    min_size: int = 0
    idle_timeout: float | None = None
    keepalive: float | None = None
    burst_limit: int | None = None  # None: no burst
    max_waiting: int | None = None
    metrics: bool = False
    on_event: Callable[[Any], object] | None = None
    name: str | None = None  # in log lines; None: the factory's qualname
    fairness_window: float = FAIRNESS_WINDOW  # 0: strict first come, first served

    @property
    def cap(self) -> int:
        """The most resources alive at once, bursts included."""
        return self.pool_size if self.burst_limit is None else self.burst_limit


def settings(
    *,
    pool_size: object,
    pool_recycle: object,
    lifo: object,
    acquire_timeout: object,
    check_interval: object,
    leak_timeout: object,
    cleanup_timeout: object,
    max_backoff: object,
    is_closed: object,
    discard_on: object,
    fatal: Fatal,
    create_timeout: object,
    min_size: object = 0,
    idle_timeout: object = None,
    keepalive: object = None,
    burst_limit: object = None,
    max_waiting: object = None,
    metrics: object = False,
    on_event: object = None,
    name: object = None,
    fairness_window: object = FAIRNESS_WINDOW,
    checks: bool = False,
) -> Settings:
    """Check a pool's arguments; raise ``TypeError`` or ``ValueError`` naming the first bad one."""
    size = check_count("pool_size", pool_size, 1)
    recycle = check_seconds("pool_recycle", pool_recycle) or math.inf
    acquire = check_seconds("acquire_timeout", acquire_timeout)
    interval = check_seconds("check_interval", check_interval, optional=False)
    leak = check_seconds("leak_timeout", leak_timeout)
    # 0 would cut every reset and releaser short before it could run.
    cleanup = check_seconds("cleanup_timeout", cleanup_timeout, positive=True)
    backoff = check_seconds("max_backoff", max_backoff) or 0.0
    predicate = check_predicate("is_closed", is_closed)
    discard = check_exception_types("discard_on", discard_on)
    fatal_errors = check_fatal(fatal)
    if isinstance(create_timeout, Default):
        create = acquire
    else:
        create = check_seconds("create_timeout", create_timeout)
    if not backoff:
        raise ValueError(f"max_backoff must be > 0 seconds, got {max_backoff}")
    sizes = sizes_of(size, min_size, burst_limit)
    idle = check_seconds("idle_timeout", idle_timeout, positive=True)
    alive = check_seconds("keepalive", keepalive, positive=True)
    if alive is not None and not checks:
        raise ValueError(
            "keepalive needs a check: pass check= (say, one that runs `SELECT 1`) "
            "for the pool to test idle resources with"
        )
    waiting = None if max_waiting is None else check_count("max_waiting", max_waiting, 0)
    return Settings(
        size,
        recycle,
        acquire,
        interval,
        leak,
        cleanup,
        backoff,
        predicate,
        discard,
        fatal_errors,
        create,
        check_flag("lifo", lifo),
        sizes[1],
        idle,
        alive,
        sizes[2],
        waiting,
        check_flag("metrics", metrics),
        check_predicate("on_event", on_event),
        check_name(name),
        check_seconds("fairness_window", fairness_window, optional=False),
    )


def check_name(name: object) -> str | None:
    if name is not None and (not isinstance(name, str) or not name):
        raise TypeError(f"name must be a non-empty str or None, got {name!r}")
    return name


def sizes_of(
    pool_size: object, min_size: object, burst_limit: object
) -> tuple[int, int, int | None]:
    """Check ``min_size <= pool_size <= burst_limit`` (construction and ``resize``)."""
    size = check_count("pool_size", pool_size, 1)
    least = check_count("min_size", min_size, 0)
    if least > size:
        raise ValueError(f"min_size must be <= pool_size, got min_size={least} > pool_size={size}")
    burst = None if burst_limit is None else check_count("burst_limit", burst_limit, 1)
    if burst is not None and burst < size:
        raise ValueError(
            f"burst_limit must be >= pool_size (it counts every resource alive, bursts "
            f"included), got burst_limit={burst} < pool_size={size}"
        )
    return size, least, burst
