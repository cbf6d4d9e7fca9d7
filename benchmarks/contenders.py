"""The pools the benchmark measures, each built ready to use and prefilled.

Every contender is built the same way for every scenario: a pool of
``size`` trivial resources, all created up front (so no factory call happens
while timing), then handed to the timing loops as either an
``acquire``/``release`` pair or a ``lease`` context-manager factory.

Peers are imported lazily: a missing one is reported by :func:`missing`
and skipped by the benchmark.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import importlib.util
import math
import operator
import queue
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

ENDPOINT = "bench"  # generic-connection-pool keys its pools by endpoint


class Resource:
    """The pooled thing: no cost of its own (``close``/``rollback`` for SQLAlchemy)."""

    def close(self) -> None:
        pass

    def rollback(self) -> None:
        pass


class Factory:
    """Makes resources and counts them; with ``stock``, hands out pre-made ones.

    The count lets the benchmark check that no pool made more than its size;
    the stock keeps the resources themselves out of memory measurements.
    """

    def __init__(self, stock: list[Resource] | None = None) -> None:
        self.created = 0
        self._stock = stock

    def __call__(self) -> Resource:
        self.created += 1
        if self._stock is not None:
            return self._stock.pop()
        return Resource()

    async def make(self) -> Resource:
        return self()


async def _aclose(resource: object) -> None:
    pass


def _close(resource: object) -> None:
    pass


@dataclass
class Handle:
    """A built pool, ready for the timing loops."""

    acquire: Callable[[], Any] | None
    release: Callable[[Any], Any] | None
    lease: Callable[[], Any] | None
    factory: Factory
    pool: object  # kept alive (memory measurement) and for ``close``
    close: Callable[[], Any] | None = None  # may return an awaitable


@dataclass(frozen=True)
class Contender:
    """One row of a scenario: a pool on one library, used through one API.

    ``style`` is ``"pair"`` (``acquire()`` then ``release(r)``) or ``"cm"``
    (``with lease():``/``async with lease():``).  ``build(size, factory)``
    returns a :class:`Handle` (awaitable for the async libraries).
    """

    key: str  # unique, stable id used in JSON and on the command line
    label: str
    family: str  # "respool", "floor", or the peer's distribution name
    kind: str  # "respool" | "peer" | "floor"
    library: str  # "asyncio" | "trio" | "threads"
    api: str
    style: str
    build: Callable[[int, Factory], Any]


# -- availability ----------------------------------------------------------------

PEERS = {
    "escudeiro": ("escudeiro.ds.pools.asyncio", (3, 12)),
    "asyncio-connection-pool": ("asyncio_connection_pool", None),
    "generic-connection-pool": ("generic_connection_pool", None),
    "sqlalchemy": ("sqlalchemy.pool", None),
    "trio": ("trio", None),
}


def missing(family: str) -> str | None:
    """Why ``family`` cannot be measured here, or ``None`` if it can."""
    if family in ("respool", "floor"):
        return None
    module, min_python = PEERS[family]
    if min_python is not None and sys.version_info < min_python:
        version = ".".join(map(str, min_python))
        return f"{family} needs Python >= {version} (this is {sys.version.split()[0]})"
    top = module.split(".")[0]
    if importlib.util.find_spec(top) is None:
        return f"{family} is not installed (pip install -e '.[bench]')"
    try:
        importlib.import_module(module)
    except Exception as exc:  # a broken install is a skip with a reason, not a crash
        return f"{family} failed to import: {exc!r}"
    return None


# -- async builds (asyncio and trio) ----------------------------------------------


async def _fill_pair(acquire: Callable[[], Any], release: Callable[[Any], Any], n: int) -> None:
    held = [await acquire() for _ in range(n)]
    for resource in held:
        await release(resource)


async def _fill_cm(lease: Callable[[], Any], n: int) -> None:
    async with contextlib.AsyncExitStack() as stack:
        for _ in range(n):
            await stack.enter_async_context(lease())


async def build_respool_async(size: int, factory: Factory) -> Handle:
    import respool

    pool: Any = respool.AsyncPool(factory.make, None, pool_size=size)
    await pool.prefill(timeout=math.inf)
    return Handle(pool.acquire, pool.release, pool.lease, factory, pool, pool.dispose)


async def build_respool_async_strict(size: int, factory: Factory) -> Handle:
    """respool with ``fairness_window=0``: strict first come, first served."""
    import respool

    pool: Any = respool.AsyncPool(factory.make, None, pool_size=size, fairness_window=0)
    await pool.prefill(timeout=math.inf)
    return Handle(pool.acquire, pool.release, pool.lease, factory, pool, pool.dispose)


async def build_escudeiro_async(size: int, factory: Factory) -> Handle:
    from escudeiro.ds.pools.asyncio import AsyncPool

    pool: Any = AsyncPool(factory.make, _aclose, pool_size=size)
    await pool.prefill(size)
    return Handle(pool.acquire, pool.release, None, factory, pool, pool.dispose)


async def build_acp(size: int, factory: Factory) -> Handle:
    from asyncio_connection_pool import ConnectionPool, ConnectionStrategy

    class Strategy(ConnectionStrategy[Resource]):
        async def make_connection(self) -> Resource:
            return factory()

        def connection_is_closed(self, conn: Resource) -> bool:
            return False

        async def close_connection(self, conn: Resource) -> None:
            pass

    pool: Any = ConnectionPool(strategy=Strategy(), max_size=size)
    await _fill_cm(pool.get_connection, size)
    return Handle(None, None, pool.get_connection, factory, pool)


def _gcp_kwargs(size: int) -> dict[str, Any]:
    # min_idle == max_size: every connection is a core one (no idle-timeout
    # bookkeeping), as in the other pools.
    return {"min_idle": size, "max_size": size, "total_max_size": size}


async def build_gcp_async(size: int, factory: Factory) -> Handle:
    from generic_connection_pool.asyncio import BaseConnectionManager, ConnectionPool

    class Manager(BaseConnectionManager[str, Resource]):
        async def create(self, endpoint: str) -> Resource:
            return factory()

        async def dispose(self, endpoint: str, conn: Resource) -> None:
            pass

    pool: Any = ConnectionPool(Manager(), **_gcp_kwargs(size))

    async def acquire() -> Resource:
        return await pool.acquire(ENDPOINT)  # type: ignore[no-any-return]

    async def release(conn: Resource) -> None:
        await pool.release(conn, ENDPOINT)

    await _fill_pair(acquire, release, size)
    return Handle(acquire, release, None, factory, pool, pool.close)


async def build_asyncio_queue(size: int, factory: Factory) -> Handle:
    q: asyncio.LifoQueue[Resource] = asyncio.LifoQueue()
    for _ in range(size):
        q.put_nowait(factory())
    return Handle(q.get, q.put, None, factory, q)


async def build_trio_channel(size: int, factory: Factory) -> Handle:
    import trio

    send, receive = trio.open_memory_channel[Resource](size)
    for _ in range(size):
        send.send_nowait(factory())
    return Handle(receive.receive, send.send, None, factory, (send, receive))


# -- thread builds -------------------------------------------------------------


def _fill_pair_sync(acquire: Callable[[], Any], release: Callable[[Any], Any], n: int) -> None:
    held = [acquire() for _ in range(n)]
    for resource in held:
        release(resource)


def build_respool_threads(size: int, factory: Factory) -> Handle:
    import respool

    pool: Any = respool.Pool(factory, None, pool_size=size)
    pool.prefill(timeout=math.inf)  # no deadline: the factory runs inline, no helper threads
    return Handle(pool.acquire, pool.release, pool.lease, factory, pool, pool.dispose)


def build_respool_threads_strict(size: int, factory: Factory) -> Handle:
    """respool with ``fairness_window=0``: strict first come, first served."""
    import respool

    pool: Any = respool.Pool(factory, None, pool_size=size, fairness_window=0)
    pool.prefill(timeout=math.inf)
    return Handle(pool.acquire, pool.release, pool.lease, factory, pool, pool.dispose)


def build_escudeiro_threads(size: int, factory: Factory) -> Handle:
    from escudeiro.ds.pools.thread import ThreadPool

    pool: Any = ThreadPool(factory, _close, pool_size=size)
    pool.prefill(size)
    return Handle(pool.acquire, pool.release, None, factory, pool, pool.dispose)


def build_gcp_threads(size: int, factory: Factory) -> Handle:
    from generic_connection_pool.threading import BaseConnectionManager, ConnectionPool

    class Manager(BaseConnectionManager[str, Resource]):
        def create(self, endpoint: str, timeout: float | None = None) -> Resource:
            return factory()

        def dispose(self, endpoint: str, conn: Resource, timeout: float | None = None) -> None:
            pass

    pool: Any = ConnectionPool(Manager(), **_gcp_kwargs(size))

    def acquire() -> Resource:
        return pool.acquire(ENDPOINT)  # type: ignore[no-any-return]

    def release(conn: Resource) -> None:
        pool.release(conn, ENDPOINT)

    _fill_pair_sync(acquire, release, size)
    return Handle(acquire, release, None, factory, pool, pool.close)


def _build_sqlalchemy(size: int, factory: Factory, lifo: bool) -> Handle:
    from sqlalchemy.pool import QueuePool

    pool: Any = QueuePool(
        factory, pool_size=size, max_overflow=0, reset_on_return=None, use_lifo=lifo
    )
    release = operator.methodcaller("close")
    _fill_pair_sync(pool.connect, release, size)
    return Handle(pool.connect, release, None, factory, pool, pool.dispose)


def build_sqlalchemy(size: int, factory: Factory) -> Handle:
    return _build_sqlalchemy(size, factory, lifo=False)


def build_sqlalchemy_lifo(size: int, factory: Factory) -> Handle:
    return _build_sqlalchemy(size, factory, lifo=True)


def build_thread_queue(size: int, factory: Factory) -> Handle:
    q: queue.LifoQueue[Resource] = queue.LifoQueue()
    for _ in range(size):
        q.put_nowait(factory())
    return Handle(q.get, q.put, None, factory, q)


# -- the roster -------------------------------------------------------------------


def _c(*args: Any) -> Contender:
    return Contender(*args)


ACP = "asyncio-connection-pool"
GCP = "generic-connection-pool"
# fmt: off
CONTENDERS: list[Contender] = [
    # asyncio
    _c("respool-async", "respool AsyncPool acquire/release", "respool", "respool", "asyncio",
       "acquire/release", "pair", build_respool_async),
    _c("respool-async-lease", "respool AsyncPool lease()", "respool", "respool", "asyncio",
       "lease()", "cm", build_respool_async),
    _c("respool-async-strict", "respool AsyncPool acquire/release, strict FIFO", "respool",
       "respool", "asyncio", "acquire/release", "pair", build_respool_async_strict),
    _c("escudeiro-async", "escudeiro AsyncPool", "escudeiro", "peer", "asyncio",
       "acquire/release", "pair", build_escudeiro_async),
    _c("acp", "asyncio-connection-pool", ACP, "peer", "asyncio",
       "get_connection()", "cm", build_acp),
    _c("gcp-async", "generic-connection-pool (asyncio)", GCP, "peer", "asyncio",
       "acquire/release", "pair", build_gcp_async),
    _c("asyncio-lifoqueue", "asyncio.LifoQueue (floor)", "floor", "floor", "asyncio",
       "get/put", "pair", build_asyncio_queue),
    # trio
    _c("respool-trio", "respool AsyncPool acquire/release", "respool", "respool", "trio",
       "acquire/release", "pair", build_respool_async),
    _c("respool-trio-lease", "respool AsyncPool lease()", "respool", "respool", "trio",
       "lease()", "cm", build_respool_async),
    _c("respool-trio-strict", "respool AsyncPool acquire/release, strict FIFO", "respool",
       "respool", "trio", "acquire/release", "pair", build_respool_async_strict),
    _c("trio-channel", "trio memory channel (floor)", "floor", "floor", "trio",
       "receive/send", "pair", build_trio_channel),
    # threads
    _c("respool-threads", "respool Pool acquire/release", "respool", "respool", "threads",
       "acquire/release", "pair", build_respool_threads),
    _c("respool-threads-lease", "respool Pool lease()", "respool", "respool", "threads",
       "lease()", "cm", build_respool_threads),
    _c("respool-threads-strict", "respool Pool acquire/release, strict FIFO", "respool",
       "respool", "threads", "acquire/release", "pair", build_respool_threads_strict),
    _c("escudeiro-threads", "escudeiro ThreadPool", "escudeiro", "peer", "threads",
       "acquire/release", "pair", build_escudeiro_threads),
    _c("gcp-threads", "generic-connection-pool (threads)", GCP, "peer", "threads",
       "acquire/release", "pair", build_gcp_threads),
    _c("sqlalchemy", "SQLAlchemy QueuePool", "sqlalchemy", "peer", "threads",
       "connect/close", "pair", build_sqlalchemy),
    _c("sqlalchemy-lifo", "SQLAlchemy QueuePool lifo", "sqlalchemy", "peer", "threads",
       "connect/close", "pair", build_sqlalchemy_lifo),
    _c("queue-lifoqueue", "queue.LifoQueue (floor)", "floor", "floor", "threads",
       "get/put", "pair", build_thread_queue),
]
# fmt: on
BY_KEY = {c.key: c for c in CONTENDERS}


async def maybe_await(value: Awaitable[Any] | Any) -> Any:
    if hasattr(value, "__await__"):
        return await value
    return value
