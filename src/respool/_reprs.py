"""How user objects appear in log lines and error messages, the same for both faces."""

from __future__ import annotations

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
