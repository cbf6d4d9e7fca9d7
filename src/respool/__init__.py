"""respool: a resource pool for asyncio, trio and threads.

``AsyncPool`` serves asyncio and trio code (through anyio); ``Pool`` is its
thread-safe twin, generated from the same source.  ``LoopPools`` gives each
running event loop pools of its own; ``AsyncLoopPool`` (and ``LoopPool``, for
threads) runs calls on event loops of its own, each on its own thread.
"""

from . import events
from ._async import AsyncLease, AsyncPool, AsyncSharedPool
from ._async.loop_pool import AsyncLoopPool
from ._checks import Fatal
from ._errors import PoolClosed, PoolError, PoolExhausted, PoolTimeout
from ._loops import LoopPoolInfo, LoopPools, LoopStats
from ._state.shared import ResourceStats
from ._stats import Histogram, PoolStats
from ._sync import Lease, Pool, SharedPool
from ._sync.loop_pool import LoopPool
from ._types import AsyncCheck, AsyncFactory, AsyncReleaser, Check, Factory, Releaser
from ._version import __version__

__all__ = [
    "AsyncCheck",
    "AsyncFactory",
    "AsyncLease",
    "AsyncLoopPool",
    "AsyncPool",
    "AsyncReleaser",
    "AsyncSharedPool",
    "Check",
    "Factory",
    "Fatal",
    "Histogram",
    "Lease",
    "LoopPool",
    "LoopPoolInfo",
    "LoopPools",
    "LoopStats",
    "Pool",
    "PoolClosed",
    "PoolExhausted",
    "PoolError",
    "PoolStats",
    "PoolTimeout",
    "Releaser",
    "ResourceStats",
    "SharedPool",
    "__version__",
    "events",
]
