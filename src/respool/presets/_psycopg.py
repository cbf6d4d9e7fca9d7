"""The psycopg 3 presets: PostgreSQL connections in a :class:`~respool.Pool` (threads) or an
:class:`~respool.AsyncPool` (``psycopg.AsyncConnection``, asyncio only)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from .. import AsyncPool, Pool

if TYPE_CHECKING:
    from psycopg import AsyncConnection, Connection

logger = logging.getLogger("respool.presets")

_DIRTY = ("INTRANS", "INERROR", "UNKNOWN")  # TransactionStatus names: roll back on return


def _is_closed(conn: Connection[Any] | AsyncConnection[Any]) -> bool:
    from psycopg import pq

    return bool(conn.closed) or conn.pgconn.status == pq.ConnStatus.BAD


def _needs_rollback(conn: Connection[Any] | AsyncConnection[Any]) -> bool:
    status = conn.info.transaction_status
    if status.name in _DIRTY:
        logger.warning("rolling back returned connection (%s): %r", status.name, conn)
        return True
    return False


def _reset(conn: Connection[Any]) -> None:
    if _needs_rollback(conn):
        conn.rollback()


def _check(conn: Connection[Any]) -> None:
    conn.execute("SELECT 1")
    if conn.info.transaction_status.name == "INTRANS":
        conn.rollback()  # end the transaction the SELECT began: the holder starts clean


async def _reset_async(conn: AsyncConnection[Any]) -> None:
    if _needs_rollback(conn):
        await conn.rollback()


async def _check_async(conn: AsyncConnection[Any]) -> None:
    await conn.execute("SELECT 1")
    if conn.info.transaction_status.name == "INTRANS":
        await conn.rollback()


async def _close_async(conn: AsyncConnection[Any]) -> None:
    await conn.close()


def _errors() -> tuple[type[BaseException], ...]:
    import psycopg as driver

    return (driver.OperationalError, driver.InterfaceError)


def psycopg(conninfo: str, **connect_kwargs: Any) -> dict[str, Any]:
    """The :class:`~respool.Pool` keyword arguments for psycopg 3 connections (threads).

    ``Pool(**presets.psycopg(conninfo), pool_size=10)``.  Sets:

    - ``factory``: ``psycopg.Connection.connect(conninfo, **connect_kwargs)``;
    - ``releaser``: ``conn.close()``;
    - ``is_closed``: ``conn.closed`` or ``conn.pgconn.status`` is ``BAD``, so a
      connection known to be broken is never handed out or pooled;
    - ``reset``: a rollback when the connection comes back in a transaction
      (``conn.info.transaction_status`` ``INTRANS``, ``INERROR`` or ``UNKNOWN``),
      with a WARNING on the ``respool.presets`` logger, as psycopg_pool does; if
      the rollback fails, the connection is closed instead of pooled;
    - ``check``: ``SELECT 1`` (then a rollback if it began a transaction) on a
      connection idle longer than ``check_interval``;
    - ``discard_on``: ``psycopg.OperationalError`` and ``psycopg.InterfaceError``:
      such an error raised out of a ``lease()`` body discards the connection.

    Timeouts and cancellation are the pool's: the acquire deadline bounds the
    wait, and a connect under way when its caller gives up finishes in the
    background for the next one.
    """
    import psycopg as driver

    def connect() -> Connection[Any]:
        return driver.Connection.connect(conninfo, **connect_kwargs)

    return {
        "factory": connect,
        "releaser": driver.Connection.close,
        "is_closed": _is_closed,
        "reset": _reset,
        "check": _check,
        "discard_on": _errors(),
    }


def psycopg_async(conninfo: str, **connect_kwargs: Any) -> dict[str, Any]:
    """The :class:`~respool.AsyncPool` keyword arguments for ``psycopg.AsyncConnection``.

    ``AsyncPool(**presets.psycopg_async(conninfo), pool_size=10)``.  Sets:

    - ``factory``: ``psycopg.AsyncConnection.connect(conninfo, **connect_kwargs)``;

    The rest is as for :func:`~respool.presets.psycopg`, awaited.  psycopg's async connections
    run on asyncio only, not trio.
    """
    import psycopg as driver

    async def connect() -> AsyncConnection[Any]:
        return await driver.AsyncConnection.connect(conninfo, **connect_kwargs)

    return {
        "factory": connect,
        "releaser": _close_async,
        "is_closed": _is_closed,
        "reset": _reset_async,
        "check": _check_async,
        "discard_on": _errors(),
    }


def psycopg_pool(
    conninfo: str,
    *,
    pool_size: int = 10,
    connect_kwargs: Mapping[str, Any] | None = None,
    **pool_kwargs: Any,
) -> Pool[Connection[Any]]:
    """A :class:`~respool.Pool` of psycopg 3 connections, with the settings of
    :func:`~respool.presets.psycopg`.

    ``connect_kwargs`` go to ``psycopg.Connection.connect``; ``pool_kwargs``
    go to the pool and override the preset's (say ``check=None``).  Timeouts
    and cancellation behave as the pool documents.
    """
    options = psycopg(conninfo, **dict(connect_kwargs or {}))
    options.update(pool_kwargs)
    return Pool(pool_size=pool_size, **options)


def psycopg_async_pool(
    conninfo: str,
    *,
    pool_size: int = 10,
    connect_kwargs: Mapping[str, Any] | None = None,
    **pool_kwargs: Any,
) -> AsyncPool[AsyncConnection[Any]]:
    """An :class:`~respool.AsyncPool` of ``psycopg.AsyncConnection``, with the settings of
    :func:`~respool.presets.psycopg_async`.

    ``connect_kwargs`` go to ``psycopg.AsyncConnection.connect``;
    ``pool_kwargs`` go to the pool and override the preset's.  Timeouts and
    cancellation behave as the pool documents.  asyncio only.
    """
    options = psycopg_async(conninfo, **dict(connect_kwargs or {}))
    options.update(pool_kwargs)
    return AsyncPool(pool_size=pool_size, **options)
