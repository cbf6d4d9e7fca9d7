"""respool: a resource pool for asyncio, trio and threads.

``AsyncPool`` serves asyncio and trio code (through anyio); ``Pool`` is its
thread-safe twin, generated from the same source.
"""

from . import events
from ._async import AsyncLease, AsyncPool
from ._checks import Fatal
from ._errors import PoolClosed, PoolError, PoolExhausted, PoolTimeout
from ._stats import Histogram, PoolStats
from ._sync import Lease, Pool
from ._types import AsyncCheck, AsyncFactory, AsyncReleaser, Check, Factory, Releaser
from ._version import __version__

__all__ = [
    "AsyncCheck",
    "AsyncFactory",
    "AsyncLease",
    "AsyncPool",
    "AsyncReleaser",
    "Check",
    "Factory",
    "Fatal",
    "Histogram",
    "Lease",
    "Pool",
    "PoolClosed",
    "PoolExhausted",
    "PoolError",
    "PoolStats",
    "PoolTimeout",
    "Releaser",
    "__version__",
    "events",
]
