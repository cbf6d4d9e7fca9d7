"""The callables a pool is built from, for each face."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeAlias, TypeVar

T = TypeVar("T")

AsyncFactory: TypeAlias = Callable[[], Awaitable[T]]
AsyncReleaser: TypeAlias = Callable[[T], Awaitable[object]]
Factory: TypeAlias = Callable[[], T]
Releaser: TypeAlias = Callable[[T], object]
AsyncCheck: TypeAlias = Callable[[T], Awaitable[object]]
Check: TypeAlias = Callable[[T], object]
