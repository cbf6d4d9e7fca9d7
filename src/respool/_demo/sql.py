"""The demo's SQL: the pools' factory, releaser and ``check``, and one unit of work."""

from __future__ import annotations

import contextlib
import random
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .lanes import DISCARD, HOLD, INSERT, KILL, SLOW_HOLD, SLOW_QUERY, Connection, Lane

# -- sqlite3 ---------------------------------------------------------------------


def connect(path: Path) -> Connection:
    """The pools' factory: one new connection.

    ``check_same_thread=False``: a pooled connection is used by whichever
    thread holds it, one at a time.
    """
    conn = sqlite3.connect(path, timeout=10, check_same_thread=False, isolation_level=None)
    conn.execute("PRAGMA synchronous=NORMAL")
    return conn


def close(conn: Connection) -> None:
    """The pools' releaser (closing an already closed connection does nothing)."""
    conn.close()


def create_schema(path: Path) -> None:
    with contextlib.closing(connect(path)) as conn:
        conn.execute("PRAGMA journal_mode=WAL")  # readers do not block the writer
        conn.execute(
            "CREATE TABLE events (lane TEXT, worker INTEGER, seq INTEGER, at REAL,"
            " PRIMARY KEY (lane, worker, seq))"
        )


def count_rows(path: Path, lane: str) -> int:
    with contextlib.closing(connect(path)) as conn:
        row = conn.execute("SELECT count(*) FROM events WHERE lane = ?", (lane,)).fetchone()
    return int(row[0])


def is_closed_error(exc: sqlite3.ProgrammingError) -> bool:
    return "closed" in str(exc)


def work(conn: Connection, lane: str, worker: int, seq: int, insert: bool) -> bool:
    """One unit of SQL work; returns whether it committed a row.

    Raises ``sqlite3.ProgrammingError`` if the connection was closed.
    """
    if not insert:
        conn.execute(
            "SELECT count(*), coalesce(max(seq), -1) FROM events WHERE lane = ? AND worker = ?",
            (lane, worker),
        ).fetchone()
        return False
    conn.execute("BEGIN IMMEDIATE")  # take the write lock up front (waits up to 10 s)
    try:
        conn.execute("INSERT INTO events VALUES (?, ?, ?, ?)", (lane, worker, seq, time.time()))
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
    return True


@dataclass
class Plan:
    """What one unit of work will do, drawn before it starts."""

    insert: bool
    hold: float
    fate: str  # "release", "discard" or "kill"

    @classmethod
    def draw(cls, rng: random.Random) -> Plan:
        slow = rng.random() < SLOW_QUERY
        hold = rng.uniform(*SLOW_HOLD) if slow else rng.uniform(*HOLD)
        roll = rng.random()
        fate = "discard" if roll < DISCARD else "kill" if roll < DISCARD + KILL else "release"
        return cls(insert=rng.random() < INSERT, hold=hold, fate=fate)


def checker(lane: Lane) -> Callable[[Connection], None]:
    """The pools' ``check``: a dead connection raises, so the pool closes it."""

    def check(conn: Connection) -> None:
        try:
            conn.execute("SELECT 1")
        except sqlite3.ProgrammingError:
            lane.count("check_failures")
            raise

    return check
