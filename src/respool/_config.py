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
    )
