# generated from src/respool/_async/creating.py by unasync_build.py: do not edit, edit the source
"""Creating resources: the factory call in the background, the backoff pauses, the line.

The factory runs in the background while its caller stands in line, so a
resource released meanwhile may serve the caller first, and a caller who
gives up leaves the call to finish (bounded by ``create_timeout``) for
whoever is next.  Who gets what is decided by the state (``_state/creations.py``).
"""

from __future__ import annotations

import functools
import logging
from typing import Generic, TypeVar, cast

from .._config import Settings
from .._deadline import Deadline
from .._errors import PoolClosed, PoolError, closed_message, duplicate_error
from .._logs import PoolLog, Shown
from .._state import PoolState
from .._state.line import Waiter
from .._state.steps import Again, Creation, Duplicate, Made, Slot, Step, TimedOut
from .._synchronization import (
    Helpers,
    LoopGuard,
    CallTimeout,
    NotAwaitableError,
    call_within,
    ki_protected,
    sleep_until,
)
from .._types import Factory
from ..events import Created
from .closing import Closer

T = TypeVar("T")

logger = logging.getLogger("respool")


def wait(
    state: PoolState[T], closer: Closer[T], waiter: Waiter[T], deadline: Deadline
) -> Step[T]:
    """Wait in line until served, the creation waited for ends, or the deadline.

    Interrupted, the waiter passes on what it was handed meanwhile.
    """
    try:
        woken = waiter.event.wait(deadline.at)
    except BaseException:
        to_close = state.abandon(waiter)
        if to_close is not None:
            closer.close_and_free(to_close)
        raise
    return state.take(waiter, woken)


@ki_protected  # threads: KeyboardInterrupt waits until the bookkeeping is done
class Creator(Generic[T]):
    """Makes resources for one pool, in slots its callers reserved."""

    def __init__(
        self,
        state: PoolState[T],
        settings: Settings,
        factory: Factory[T],
        log: PoolLog,
        guard: LoopGuard,
        helpers: Helpers,
        closer: Closer[T],
    ) -> None:
        self._state = state
        self._factory = factory
        self._log = log
        self._create_timeout = settings.create_timeout
        self._fatal = settings.fatal
        self._guard = guard
        self._helpers = helpers
        self._closer = closer

    def create(self, deadline: Deadline) -> Step[T]:
        """Make a resource for the caller, in the slot it reserved (counted in ``creating``)."""
        return cast("Step[T]", self._create(deadline, lease=True))

    def prefill_one(self, deadline: Deadline) -> Made | Again | TimedOut:
        """Make a resource for the pool, in the slot prefill reserved; ``MADE`` if it is placed."""
        return cast("Made | Again | TimedOut", self._create(deadline, lease=False))

    def _create(self, deadline: Deadline, lease: bool) -> Step[T] | Made:
        """While the factory fails, retry after the pool's backoff pause, keeping the slot
        and the caller's place in line all along."""
        state = self._state
        waiter: Waiter[T] | None = None  # its place in line (a prefill's stands apart)
        while True:
            todo, waiter = state.next_creation(waiter, deadline.at, lease)
            if isinstance(todo, float):  # the backoff: wait it out in line, then look again
                self._wait_out_backoff(cast("Waiter[T]", waiter), todo, deadline, lease)
                continue
            if not isinstance(todo, Creation):
                return todo
            assert waiter is not None  # given its place with its creation
            todo.stop = self._guard.spawn(
                functools.partial(self.run, todo),
                needed=deadline.at is not None,
                helpers=self._helpers,
            )
            got = wait(state, self._closer, waiter, deadline)
            assert not isinstance(got, Slot)  # a creator is never handed a slot
            if not isinstance(got, Again):
                return got
            ended = state.creation_ended(waiter)
            if not isinstance(ended, BaseException):
                return ended
            error = ended
            if isinstance(error, Duplicate):
                error = duplicate_error(error.args[0])
            elif not isinstance(error, Exception) and state.closed:
                error = PoolClosed(closed_message(state.kind))  # dispose stopped the call
            if waiter.fatal or isinstance(error, PoolError):  # PoolClosed, a duplicate
                state.drop_creator(waiter)
                raise error

    def _wait_out_backoff(
        self, waiter: Waiter[T], resume: float, deadline: Deadline, lease: bool
    ) -> None:
        """Wait for the backoff to end, holding the slot (in line, unless prefill's).

        A resource released meanwhile is handed to the waiter; the caller then
        takes it on its next look.
        """
        limit = resume if deadline.at is None else min(resume, deadline.at)
        try:
            if lease:
                waiter.event.wait(limit)
            else:
                sleep_until(limit, self._state.clock)
        except BaseException:
            to_close = self._state.abandon(waiter)  # frees the slot it holds
            if to_close is not None:
                self._closer.close_and_free(to_close)
            raise
        self._state.backed_off(waiter)

    def _is_fatal(self, error: BaseException) -> bool:
        """Whether a factory error ends the acquire at once instead of a retry."""
        if not isinstance(error, Exception) or isinstance(error, (NotAwaitableError, PoolError)):
            return True
        fatal = self._fatal
        if fatal is None:
            return False
        if isinstance(fatal, tuple):
            return isinstance(error, fatal)
        try:
            return bool(fatal(error))
        except Exception:
            self._log.error(
                "fatal=%s raised; treating the factory error as fatal", Shown(fatal), exc_info=True
            )
            return True

    def run(self, creation: Creation[T]) -> None:
        """The factory call, in the background: its resource or error goes where it is due.

        It never raises (nothing would catch it): whatever happens is handed
        to the caller waiting for it, or settled here.
        """
        state = self._state
        creation.started = now = state.clock()
        limit = None if self._create_timeout is None else now + self._create_timeout
        try:
            resource = call_within(self._factory, limit, state.clock)
        except BaseException as exc:
            error: BaseException = exc
            if isinstance(exc, CallTimeout):
                error = TimeoutError(
                    f"the factory did not return within create_timeout={self._create_timeout:g}s"
                )
            fatal = self._is_fatal(error)  # user code (a predicate): outside the lock
            counts = isinstance(error, Exception) and not isinstance(error, NotAwaitableError)
            attempts = state.creation_failed(creation, error, fatal, counts)
            if attempts:
                self._log_outage(error, attempts)
            return
        wake, to_close, outage, refused = state.creation_made(creation, resource)
        hooks = state.hooks
        if hooks is not None and not refused and resource is not None:
            hooks.emit(Created(resource, state.clock() - creation.started))  # before its caller
        self._log.debug("created %s", Shown(resource))
        if outage is not None:
            self._log.info("the factory works again after %.1fs and %d failed attempts", *outage)
        if wake is not None:
            wake.event.set()
        if refused:
            self._log.error(
                "discarding what the factory returned after its caller left",
                exc_info=duplicate_error(resource),
            )
        if to_close is not None:
            try:
                self._closer.close_and_free(to_close)
            except BaseException as exc:  # in the background: nothing would catch it
                if isinstance(exc, Exception):
                    self._log.warning("closing %s failed", Shown(to_close.resource), exc_info=exc)

    def _log_outage(self, error: BaseException, attempts: int) -> None:
        if attempts == 1:
            self._log.warning(
                "the factory failed (%s); retrying with backoff (up to %gs apart) while it fails",
                Shown(error),
                self._state.backoff.max,
            )
        else:
            self._log.warning(
                "the factory is still failing after %d attempts over %.1fs; last error: %s",
                attempts,
                self._state.clock() - self._state.backoff.since,
                Shown(error),
            )
