"""The sqlite3 preset: connections in a :class:`~respool.Pool` (threads)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from .. import Pool

if TYPE_CHECKING:
    import sqlite3

logger = logging.getLogger("respool.presets")


def _reset(conn: sqlite3.Connection) -> None:
    if conn.in_transaction:
        logger.warning("rolling back returned connection (in a transaction): %r", conn)
        conn.rollback()


def sqlite(path: str, **connect_kwargs: Any) -> dict[str, Any]:
    """The :class:`~respool.Pool` keyword arguments for sqlite3 connections (threads).

    ``Pool(**presets.sqlite(path), pool_size=4)``.  Sets:

    - ``factory``: ``sqlite3.connect(path, check_same_thread=False,
      **connect_kwargs)``: a pooled connection moves between threads, and the
      pool may run the factory in a helper thread;
    - ``releaser``: ``conn.close()``;
    - ``reset``: a rollback when the connection comes back in a transaction
      (``conn.in_transaction``), with a WARNING on the ``respool.presets``
      logger: uncommitted changes are undone, never left for the next holder.

    Timeouts and cancellation are the pool's: the acquire deadline bounds the
    wait (sqlite's own lock wait is ``timeout`` in ``connect_kwargs``).
    """
    import sqlite3

    connect_kwargs.setdefault("check_same_thread", False)

    def connect() -> sqlite3.Connection:
        conn: sqlite3.Connection = sqlite3.connect(path, **connect_kwargs)
        return conn

    return {"factory": connect, "releaser": sqlite3.Connection.close, "reset": _reset}


def sqlite_pool(path: str, *, pool_size: int = 4, **pool_kwargs: Any) -> Pool[sqlite3.Connection]:
    """A :class:`~respool.Pool` of sqlite3 connections: :func:`~respool.presets.sqlite`'s settings.

    ``pool_kwargs`` go to the pool and override the preset's.  Timeouts and
    cancellation behave as the pool documents.
    """
    options = sqlite(path)
    options.update(pool_kwargs)
    return Pool(pool_size=pool_size, **options)
