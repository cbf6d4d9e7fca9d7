"""The only place where the async and the threaded pool differ.

Each primitive comes as a pair: ``AsyncX`` for :class:`~respool.AsyncPool`
(anyio, so asyncio and trio) and ``X`` for :class:`~respool.Pool` (threads).
``unasync_build.py`` maps every ``AsyncX`` name to ``X``, so the generated
pool code never names anyio or threading itself.

Deadlines are absolute times on the pool's clock, or ``None`` for "no
deadline".  The clock is the loop's own (``loop.time()``, ``trio.current_time()``)
for an async pool, so virtual-time loops and trio's ``MockClock`` work, and
``time.monotonic`` for the threaded one and for loops known to run on it.
"""

from __future__ import annotations

import threading

from .calls import (
    AsyncBoundedCall,
    AsyncShield,
    BoundedCall,
    CallTimeout,
    NotAwaitableError,
    Shield,
    async_call_within,
    async_callable_check,
    async_cleanup_call,
    call_within,
    callable_check,
    cleanup_call,
)
from .events import AsyncEvent, Event, async_sleep_until, sleep_until
from .guards import AsyncLoopGuard, LoopGuard
from .helpers import AsyncHelpers, Helpers
from .interrupts import (
    async_ki_protected,
    async_wrap_sigint_handler,
    interrupt_pending,
    ki_protected,
    wrap_sigint_handler,
)
from .tasks import (
    ASYNC_TASK_STATUS_IGNORED,
    TASK_STATUS_IGNORED,
    AsyncJobs,
    AsyncMaintainerTask,
    AsyncTaskStatus,
    Jobs,
    MaintainerTask,
    TaskStatus,
)

__all__ = [
    "ASYNC_TASK_STATUS_IGNORED",
    "TASK_STATUS_IGNORED",
    "AsyncJobs",
    "AsyncMaintainerTask",
    "AsyncTaskStatus",
    "Jobs",
    "MaintainerTask",
    "TaskStatus",
    "AsyncBoundedCall",
    "AsyncEvent",
    "AsyncHelpers",
    "AsyncLoopGuard",
    "AsyncShield",
    "AsyncStateLock",
    "BoundedCall",
    "CallTimeout",
    "Event",
    "Helpers",
    "LoopGuard",
    "NotAwaitableError",
    "Shield",
    "StateLock",
    "async_cleanup_call",
    "async_call_within",
    "async_callable_check",
    "async_ki_protected",
    "async_sleep_until",
    "async_wrap_sigint_handler",
    "cleanup_call",
    "call_within",
    "callable_check",
    "interrupt_pending",
    "ki_protected",
    "sleep_until",
    "wrap_sigint_handler",
]

# The pool's bookkeeping lock, held only around code that never awaits or
# blocks.  The async pool takes a real (uncontended, C-level) lock too: it
# costs tens of nanoseconds, and a slip that held it across an ``await`` would
# deadlock the async tests instead of hiding until the threaded twin hangs.
AsyncStateLock = threading.Lock
StateLock = threading.Lock
