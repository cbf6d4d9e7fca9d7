"""How user objects appear in log lines and error messages, the same for both faces."""

from __future__ import annotations

import functools

REPR_LIMIT = 300  # characters of a repr shown; longer ones are cut, ending in "..."


def show(obj: object, limit: int = REPR_LIMIT) -> str:
    """``repr(obj)`` for a message: whole up to ``limit`` characters, else cut with ``...``.

    A repr that raises shows as ``<unprintable T>``: a message about a resource
    must never fail because of it.  It runs user code, so never call it under
    the pool's lock.
    """
    try:
        text = repr(obj)
    except Exception:
        return f"<unprintable {type(obj).__name__}>"
    if len(text) > limit:
        return text[: limit - 3] + "..."
    return text


def qualname(fn: object) -> str | None:
    """A callable's qualified name (through ``functools.partial``), or ``None``."""
    while isinstance(fn, functools.partial):
        fn = fn.func
    name = getattr(fn, "__qualname__", None)
    return name if isinstance(name, str) else None


def name_of(fn: object) -> str:
    """A callable's qualified name, else its type's (a callable object)."""
    return qualname(fn) or type(fn).__qualname__
