"""Argument checks shared by both faces: bad input fails at the call that takes it."""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from typing import TypeAlias

Fatal: TypeAlias = (
    type[BaseException] | tuple[type[BaseException], ...] | Callable[[BaseException], object] | None
)


def check_count(name: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return value


def check_seconds(name: str, value: object) -> float | None:
    """Accept ``None`` or a non-negative number of seconds (``inf`` allowed)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number of seconds or None, got {type(value).__name__}")
    if math.isnan(value) or value < 0:
        raise ValueError(f"{name} must be >= 0 seconds or None, got {value}")
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
    if value is not None and (
        inspect.iscoroutinefunction(value)
        or inspect.iscoroutinefunction(getattr(value, "__call__", None))  # noqa: B004
    ):
        raise TypeError(
            f"{name} must be a plain function that returns at once (it runs under no "
            f"await), got the async {value!r}"
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
