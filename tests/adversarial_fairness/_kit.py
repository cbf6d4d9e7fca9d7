"""Shared fixtures for the fairness attack tests: tracked resources and invariants."""

from __future__ import annotations

import itertools
import threading

import anyio


class Res:
    _ids = itertools.count()

    def __init__(self) -> None:
        self.id = next(self._ids)
        self.closed = 0
        self.holder: object | None = None

    def __repr__(self) -> str:
        return f"Res({self.id})"


class Book:
    """Tracks who holds what; records every violation instead of raising mid-flight."""

    def __init__(self) -> None:
        self.alive: set[Res] = set()
        self.made = 0
        self.errors: list[str] = []
        self.lock = threading.Lock()
        self.fail_every = 0  # factory fails on every n-th call when > 0
        self.calls = 0

    # -- factory side
    def make(self) -> Res:
        with self.lock:
            self.calls += 1
            if self.fail_every and self.calls % self.fail_every == 0:
                raise OSError(f"factory down (call {self.calls})")
            r = Res()
            self.made += 1
            self.alive.add(r)
            return r

    def close(self, r: Res) -> None:
        with self.lock:
            r.closed += 1
            if r.closed > 1:
                self.errors.append(f"{r} closed twice")
            if r.holder is not None:
                self.errors.append(f"{r} closed while held by {r.holder}")
            self.alive.discard(r)

    async def afactory(self) -> Res:
        await anyio.sleep(0)
        return self.make()

    async def aclose(self, r: Res) -> None:
        self.close(r)

    # -- holder side
    def took(self, r: Res, who: object) -> None:
        with self.lock:
            if r.holder is not None:
                self.errors.append(f"{r} handed to {who} while {r.holder} holds it")
            if r.closed:
                self.errors.append(f"{r} handed to {who} after being closed")
            r.holder = who

    def gave(self, r: Res, who: object) -> None:
        with self.lock:
            if r.holder != who:
                self.errors.append(f"{r} given back by {who} but held by {r.holder}")
            r.holder = None


def settled(pool, book: Book | None = None, *, disposed: bool = False) -> list[str]:
    """What is wrong with a quiet pool's gauges (nobody holding, waiting or creating)."""
    s = pool.stats()
    bad = []
    if s.leased or s.waiting or s.creating:
        bad.append(f"not quiet: leased={s.leased} waiting={s.waiting} creating={s.creating}")
    if s.size != s.idle:
        bad.append(f"size {s.size} != idle {s.idle}")
    if s.created - s.closed != s.size:
        bad.append(f"created {s.created} - closed {s.closed} != size {s.size}")
    if s.size + s.creating > max(s.pool_size, s.pool_size + s.burst):
        bad.append(f"size+creating {s.size + s.creating} > pool_size {s.pool_size}")
    if s.acquired_at_once + s.acquired_after_waiting + s.acquired_by_creating != s.acquired:
        bad.append(f"acquired breakdown does not add up: {s}")
    if disposed and s.size:
        bad.append(f"disposed but size {s.size}")
    if book is not None:
        bad.extend(book.errors)
        if len(book.alive) != s.size:
            bad.append(f"book says {len(book.alive)} alive, pool says size {s.size}")
        if book.made != s.created:
            bad.append(f"book made {book.made}, pool created {s.created}")
    return bad
