"""respool: a resource pool for asyncio, trio and threads.

``AsyncPool`` serves asyncio and trio code (through anyio); ``Pool`` is its
thread-safe twin, generated from the same source.
"""

from ._async import AsyncLease, AsyncPool
from ._errors import PoolClosed, PoolError, PoolTimeout
from ._stats import PoolStats
from ._sync import Lease, Pool
from ._version import __version__

__all__ = [
    "AsyncLease",
    "AsyncPool",
    "Lease",
    "Pool",
    "PoolClosed",
    "PoolError",
    "PoolStats",
    "PoolTimeout",
    "__version__",
]
