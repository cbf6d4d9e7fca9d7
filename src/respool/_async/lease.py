"""The lease: ``async with pool.lease() as resource:``, acquire then always release."""

from __future__ import annotations

from types import TracebackType
from typing import TYPE_CHECKING, Generic, TypeVar

from .._checks import check_seconds
from .._errors import PoolError
from .._state.records import Entry
from .._synchronization import async_ki_protected

if TYPE_CHECKING:  # for annotations only: the pool imports this module
    from .pool import AsyncPool

T = TypeVar("T")


@async_ki_protected
class AsyncLease(Generic[T]):
    """What :meth:`AsyncPool.lease` returns: ``async with`` it to hold a resource.

    Entering acquires (with the lease's timeout and the errors of
    :meth:`AsyncPool.acquire`); leaving releases, also when the body raised
    or was cancelled.  A lease is entered once.
    """

    __slots__ = ("_phase", "_pool", "_resource", "_timeout")

    def __init__(self, pool: AsyncPool[T], timeout: float | None) -> None:
        self._pool = pool
        self._timeout = timeout
        self._phase = "new"

    async def __aenter__(self) -> T:
        """Acquire: the timeout, cancellation and errors of ``acquire``."""
        if self._phase != "new":
            raise PoolError("this lease was already entered; call pool.lease() for a new one")
        self._phase = "acquiring"
        # acquire(), spelled out so a lease costs no extra coroutine
        pool, timeout = self._pool, self._timeout
        guard = pool._guard
        if guard.get_current() is not guard.token:
            pool._check_loop()
        if timeout is not None:
            check_seconds("timeout", timeout)
        claim = pool._claim()
        if not isinstance(claim, Entry):
            claim = await pool._serve(claim, pool._deadline(timeout))
        self._resource = pool._hand_out(claim)
        self._phase = "held"
        return self._resource

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Release, whatever ended the block; never raises ``PoolTimeout``.

        If the block discarded the resource (``pool.discard``), there is
        nothing left to release.
        """
        self._phase = "done"
        pool, resource = self._pool, self._resource
        if exc_type is not None and pool._discard_on and issubclass(exc_type, pool._discard_on):
            if id(resource) in pool._state.alive:  # else the holder discarded it already
                await pool.discard(resource)
            return
        suspect = exc_type is not None  # the body failed: the resource may be why
        guard = pool._guard
        if guard.get_current() is not guard.token:
            pool._check_loop()
        if not pool._return_quickly(resource, suspect) and id(resource) in pool._state.alive:
            await pool._release(resource, suspect)  # else the holder discarded it
