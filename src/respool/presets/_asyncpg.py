"""The asyncpg preset: PostgreSQL connections in an :class:`~respool.AsyncPool` (asyncio only)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .. import AsyncPool

# Seconds allowed to the round trips the preset itself makes (close, reset, check).
CLEANUP_SECONDS = 5.0


async def _close(conn: Any) -> None:
    await conn.close(timeout=CLEANUP_SECONDS)


async def _reset(conn: Any) -> None:
    # What asyncpg's own pool runs on release: roll back an open transaction,
    # close cursors, UNLISTEN, unlock advisory locks, RESET ALL.
    await conn.reset(timeout=CLEANUP_SECONDS)


async def _check(conn: Any) -> None:
    await conn.fetchval("SELECT 1", timeout=CLEANUP_SECONDS)


def asyncpg(dsn: str, **connect_kwargs: Any) -> dict[str, Any]:
    """The :class:`~respool.AsyncPool` keyword arguments for asyncpg connections.

    ``AsyncPool(**presets.asyncpg(dsn), pool_size=10)``.  Sets:

    - ``factory``: ``asyncpg.connect(dsn, **connect_kwargs)``;
    - ``releaser``: ``conn.close(timeout=5)``, bounded, since a releaser is
      never cancelled;
    - ``is_closed``: ``asyncpg.Connection.is_closed``, so a connection the
      server dropped is never handed out or pooled;
    - ``reset``: ``conn.reset(timeout=5)``, what asyncpg's own pool runs on
      release (rolls back a transaction left open, closes cursors, removes
      listeners, releases advisory locks, ``RESET ALL``); if it fails, the
      connection is closed instead of pooled;
    - ``check``: ``SELECT 1`` on a connection idle longer than
      ``check_interval``;
    - ``discard_on``: ``ConnectionDoesNotExistError``, ``InterfaceError``,
      ``InternalClientError`` (what asyncpg raises for a connection that
      broke mid-protocol) and ``OSError``: such an error raised out of a
      ``lease()`` body discards the connection.

    Timeouts and cancellation are the pool's: the acquire deadline bounds the
    wait, and a connect under way when its caller gives up finishes in the
    background for the next one.  asyncpg runs on asyncio only, not trio.
    """
    import asyncpg as driver  # type: ignore[import-untyped]  # asyncpg ships no hints

    errors = driver.exceptions

    async def connect() -> Any:
        return await driver.connect(dsn, **connect_kwargs)

    return {
        "factory": connect,
        "releaser": _close,
        "is_closed": driver.Connection.is_closed,
        "reset": _reset,
        "check": _check,
        "discard_on": (
            errors.ConnectionDoesNotExistError,
            errors.InterfaceError,
            errors.InternalClientError,
            OSError,
        ),
    }


def asyncpg_pool(
    dsn: str,
    *,
    pool_size: int = 10,
    connect_kwargs: Mapping[str, Any] | None = None,
    **pool_kwargs: Any,
) -> AsyncPool[Any]:
    """An :class:`~respool.AsyncPool` of asyncpg connections, with the settings of
    :func:`~respool.presets.asyncpg`.

    ``connect_kwargs`` go to ``asyncpg.connect``; ``pool_kwargs`` go to the
    pool and override the preset's (say ``check=None`` or another
    ``reset``).  Timeouts and cancellation behave as the pool documents.
    The pool's resources are ``asyncpg.Connection`` objects (typed ``Any``:
    asyncpg ships no type hints).
    """
    options = asyncpg(dsn, **dict(connect_kwargs or {}))
    options.update(pool_kwargs)
    return AsyncPool(pool_size=pool_size, **options)
