"""The slow path of ``acquire``: wait, check, replace or create until a resource is ready.

``serve`` is the one place the state's steps (``_state/steps.py``) are acted
on, and the one place a ``PoolTimeout`` is raised on the way.
"""

from __future__ import annotations

import functools
import logging
from typing import Generic, TypeVar

from .._config import Settings
from .._deadline import Deadline
from .._errors import PoolTimeout, timeout_error
from .._reprs import show
from .._state import PoolState
from .._state.line import Waiter
from .._state.records import CHECK_FAILED, Entry
from .._state.steps import AGAIN, Again, Slot, Stale, Step, TimedOut, Vet
from .._synchronization import AsyncBoundedCall, AsyncHelpers, NotAwaitableError, async_ki_protected
from .._types import AsyncCheck
from ..events import CheckFailed
from ..events import TimedOut as TimeoutEvent
from .closing import Closer, is_dead
from .creating import Creator, wait

T = TypeVar("T")

logger = logging.getLogger("respool")


@async_ki_protected  # threads: KeyboardInterrupt waits until the bookkeeping is done
class Acquirer(Generic[T]):
    """Serves one pool's callers when no idle resource was ready at once."""

    def __init__(
        self,
        state: PoolState[T],
        settings: Settings,
        check: AsyncCheck[T] | None,
        helpers: AsyncHelpers,
        closer: Closer[T],
        creator: Creator[T],
    ) -> None:
        self._state = state
        self._check = check
        self._is_closed = settings.is_closed
        self._leak_timeout = settings.leak_timeout  # named in timeout errors
        self._helpers = helpers
        self._closer = closer
        self._creator = creator

    async def serve(self, step: Step[T], deadline: Deadline) -> Entry[T]:
        """Act on the state's steps until one is a resource for the caller.

        How it ended is noted: served after waiting or creating (and how
        long it took), given up, refused.
        """
        state, closer = self._state, self._closer
        waited = created = False
        try:
            while True:
                match step:
                    case Entry():
                        state.note_served(step, deadline.start, waited, created)
                        return step
                    case Waiter():
                        waited = True
                        step = await wait(state, closer, step, deadline)
                    case Vet(entry=entry):
                        step = await self._vet(entry, deadline)
                    case Stale(entry=entry):
                        step = await closer.replace(entry, deadline)
                    case Slot():
                        created = True
                        step = await self._creator.create(deadline)
                    case Again():  # look again, ahead of those who came later
                        step = state.claim(front=True)
                    case TimedOut():
                        error = self.timeout_error(step, deadline)
                        if state.hooks is not None:
                            state.hooks.emit(TimeoutEvent(error))
                        raise error
                    case _:  # pragma: no cover  # the steps are a closed set
                        raise AssertionError(f"unknown step {step!r}")
        except BaseException as exc:
            state.note_gave_up(exc)
            raise

    def timeout_error(self, timed_out: TimedOut, deadline: Deadline) -> PoolTimeout:
        return timeout_error(
            self._state.kind, timed_out.facts, deadline.seconds, timed_out.what, self._leak_timeout
        )

    async def _vet(self, entry: Entry[T], deadline: Deadline) -> Step[T]:
        """Ask ``is_closed``, then run ``check``, on a resource leased to the caller.

        ``is_closed`` is asked first, every time; ``check`` only when the
        resource was not used within ``check_interval``.  A check cut short
        (timeout, interruption) leaves the resource in an unknown state, so it
        is closed.  With no time left to check, the resource goes back to the
        pool untouched.
        """
        state = self._state
        if self._is_closed is not None and is_dead(self._is_closed, entry.held()):
            if state.hooks is not None:
                state.hooks.emit(CheckFailed(entry.resource, None))
            if not state.broke(entry, taken=False):
                return AGAIN  # shared, and others still hold it: it closes after them
            return await self._closer.replace(entry, deadline)
        if self._check is None or state.clock() - entry.last_used < state.check_interval:
            return entry
        if deadline.passed(state.clock()):
            await self._put_back(entry)
            return TimedOut(state.timeout_facts(), "before an idle resource could be checked")
        call = AsyncBoundedCall(
            functools.partial(self._check, entry.held()),
            functools.partial(self._closer.overran, entry, False),
            state.clock,
            self._helpers,
        )
        started = state.clock()
        try:
            verdict = await call.run(deadline.at)
        except NotAwaitableError:
            await self._put_back(entry)
            raise
        except BaseException as exc:
            state.note_check(started)
            if call.detached:  # threads: the check goes on; overran() closes it when done
                pass
            elif call.timed_out or not isinstance(exc, Exception):
                entry.reason = CHECK_FAILED  # cut short: closed as untrusted
                if state.drop(entry, taken=False):  # its state is unknown
                    await self._closer.close_and_free(entry)
            else:
                return await self._failed_check(entry, exc, deadline)
            if call.timed_out:
                return TimedOut(state.timeout_facts(), "checking an idle resource")
            raise
        state.note_check(started)
        if verdict is False:
            return await self._failed_check(entry, None, deadline)
        return entry

    async def _failed_check(
        self, entry: Entry[T], error: Exception | None, deadline: Deadline
    ) -> Slot | Again | TimedOut:
        """``check`` said broken: close the resource, keep the slot for a replacement."""
        logger.warning(
            "check failed on %s (%s); closing it",
            show(entry.resource),
            "it returned False" if error is None else show(error),
        )
        if self._state.hooks is not None:
            self._state.hooks.emit(CheckFailed(entry.resource, error))
        if not self._state.broke(entry, taken=False):
            return AGAIN  # shared, and others still hold it: it closes after them
        return await self._closer.replace(entry, deadline)

    async def _put_back(self, entry: Entry[T]) -> None:
        """Return a resource leased to a caller that did not take it after all."""
        to_close = self._state.put_back(entry)
        if to_close is not None:
            await self._closer.close_and_free(to_close)
