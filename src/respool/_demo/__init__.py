"""``python -m respool demo``: three pools of real sqlite3 connections, watched live.

One temporary database file, three pools working on it at the same time,
each in its own thread:

- ``threads``: a :class:`respool.Pool` shared by worker threads;
- ``asyncio``: an :class:`respool.AsyncPool` shared by tasks of an asyncio
  event loop (``anyio.run(..., backend="asyncio")``);
- ``trio``: the same async code under trio (skipped if trio is missing).

A pool belongs to one event loop, so each loop gets its own.  Every pool is
smaller than its crowd of workers, so workers queue for connections; a few
slow queries make some of them give up (``PoolTimeout``).  Each unit of work
is real SQL: an insert in its own transaction, or a read.  A few connections
are damaged on purpose: some are closed behind the pool's back (the pool's
``check`` finds them before handing them out again; a worker that is handed
one directly discards it), and some are discarded by their holder.

The demo shows every pool's ``stats()`` while it runs (the waits in
``acquire`` from the pool's own histograms, ``metrics=True``), then prints a
summary and checks invariants: no connection leased, waiting or being
created at the end, every connection closed after ``dispose()``, the pools'
counters equal to what the workers counted, and the rows in the database
equal to the inserts the workers committed.  :func:`main` returns 0 if every
check holds, 1 otherwise.

Needs ``rich`` (``pip install "respool[demo]"``); ``trio`` for the third pool.
"""

from __future__ import annotations

from .invariants import check_lanes
from .lanes import LANES, Lane
from .running import main, make_lanes, report, run

__all__ = ["LANES", "Lane", "check_lanes", "main", "make_lanes", "report", "run"]
