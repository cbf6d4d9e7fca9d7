"""Argument checks shared by both faces: bad input fails at the call that takes it."""

from __future__ import annotations

import functools
import inspect
import math
from collections.abc import Callable
from typing import Literal, TypeAlias, overload

from ._reprs import show

Fatal: TypeAlias = (
    type[BaseException] | tuple[type[BaseException], ...] | Callable[[BaseException], object] | None
)


def check_count(name: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return value


def check_flag(name: str, value: object) -> bool:
    """Accept ``True`` or ``False`` only: a string such as ``"no"`` would read as true."""
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be True or False, got {type(value).__name__}")
    return value


@overload
def check_seconds(
    name: str, value: object, *, optional: Literal[False], positive: bool = False
) -> float: ...


@overload
def check_seconds(
    name: str, value: object, *, optional: bool = True, positive: bool = False
) -> float | None: ...


def check_seconds(
    name: str, value: object, *, optional: bool = True, positive: bool = False
) -> float | None:
    """Accept a non-negative number of seconds (``inf`` allowed), or ``None`` if optional.

    ``positive``: ``0`` is refused too.  Booleans are refused: ``True`` is not
    one second.
    """
    none = " or None" if optional else ""
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number of seconds{none}, got {type(value).__name__}")
    if math.isnan(value) or value < 0 or (positive and value == 0):
        bound = "> 0" if positive else ">= 0"
        raise ValueError(f"{name} must be {bound} seconds{none}, got {value}")
    return float(value)


def check_callable(name: str, value: object, *, optional: bool = True) -> None:
    if value is None and optional:
        return
    if not callable(value):
        none = " or None" if optional else ""
        raise TypeError(f"{name} must be callable{none}, got {type(value).__name__}")


def check_predicate(name: str, value: object) -> Callable[[object], object] | None:
    """A plain (never async) callable, or ``None``."""
    check_callable(name, value)
    check_not_async(
        name, value, "it must return at once, with no await (say asyncpg's Connection.is_closed)"
    )
    return value  # type: ignore[return-value]


def check_exception_types(name: str, value: object) -> tuple[type[BaseException], ...]:
    """An exception type or a tuple of them (``()`` for none)."""
    types = value if isinstance(value, tuple) else (value,)
    for item in types:
        if not (isinstance(item, type) and issubclass(item, BaseException)):
            raise TypeError(f"{name} must be an exception type or a tuple of them, got {item!r}")
    return types


def check_fatal(
    value: object,
) -> tuple[type[BaseException], ...] | Callable[[BaseException], object] | None:
    """``fatal=``: exception types, a predicate on the error, or ``None``."""
    if value is None:
        return None
    if isinstance(value, (type, tuple)):
        return check_exception_types("fatal", value) or None
    if callable(value):
        return value
    raise TypeError(
        "fatal must be an exception type, a tuple of them, a predicate on the error, "
        f"or None, got {type(value).__name__}"
    )


def is_async_callable(value: object) -> bool:
    """Whether calling ``value`` makes a coroutine: an ``async def`` function or method,
    a ``functools.partial`` of one, or an object whose ``__call__`` is ``async def``."""
    while isinstance(value, functools.partial):
        value = value.func
    if inspect.iscoroutinefunction(value):
        return True
    # An instance with ``async def __call__``; a class is called to construct, not awaited.
    call = inspect.getattr_static(type(value), "__call__", None)
    return not isinstance(value, type) and inspect.iscoroutinefunction(call)


def check_not_async(name: str, value: object, advice: str) -> None:
    """Refuse an async callable where a plain one is needed, naming the argument."""
    if value is not None and is_async_callable(value):
        raise TypeError(f"{name} must be a plain callable, but {show(value)} is async; {advice}")
