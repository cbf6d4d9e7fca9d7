# generated from src/respool/_async/maintenance.py by unasync_build.py: do not edit, edit the source
"""An opened pool's maintainer: ``min_size``, idle timeouts, keepalive, expiry, leak reports.

It runs one loop: ask the state for its chores (``_state/upkeep.py``), start
each in the background (a factory call, a close, a keepalive check), report
the leases held past ``leak_timeout``, and wait for the chores' event until
their next deadline.  It holds no lock across a wait and never waits for
user code itself, so a slow or failing hook cannot stall it; an error of its
own is logged and it goes on.  Callers never wait for it.
"""

from __future__ import annotations

import functools
import logging
from typing import Generic, TypeVar

from .._config import Settings
from .._reprs import show
from .._state import PoolState
from .._state.records import Entry
from .._state.upkeep import Chores
from .._synchronization import (
    TASK_STATUS_IGNORED,
    BoundedCall,
    Helpers,
    Jobs,
    Shield,
    TaskStatus,
    ki_protected,
)
from .._types import Check
from .closing import Closer
from .creating import Creator

T = TypeVar("T")

logger = logging.getLogger("respool")

PAUSE_AFTER_ERROR = 1.0  # seconds: the maintainer's own error is not retried in a spin


@ki_protected  # threads: KeyboardInterrupt waits until the bookkeeping is done
class Maintainer(Generic[T]):
    """Keeps one opened pool in shape; see the module docstring."""

    def __init__(
        self,
        state: PoolState[T],
        settings: Settings,
        check: Check[T] | None,
        helpers: Helpers,
        closer: Closer[T],
        creator: Creator[T],
    ) -> None:
        self._state = state
        self._check = check
        self._check_timeout = settings.cleanup_timeout or settings.acquire_timeout
        self._helpers = helpers
        self._closer = closer
        self._creator = creator

    def run(self, task_status: TaskStatus[None] = TASK_STATUS_IGNORED) -> None:
        """Maintain until the pool is disposed or the maintainer is stopped."""
        self._state.start_maintaining()
        try:
            task_status.started()
        except BaseException:
            self._state.stop_maintaining(ended=True)
            raise
        self.loop()

    def started(self, task_status: TaskStatus[None] = TASK_STATUS_IGNORED) -> None:
        """:meth:`loop`, once ``start_maintaining`` has run: say so, then maintain."""
        task_status.started()
        self.loop()

    def loop(self) -> None:
        """The maintainer's rounds, after ``start_maintaining``; it ends them in any case."""
        state = self._state
        try:
            with Jobs(self._helpers) as jobs:
                while True:
                    try:
                        chores = state.chores()
                    except Exception:
                        logger.exception("the pool's maintainer failed; it goes on")
                        event = state.new_event()
                        event.wait(state.clock() + PAUSE_AFTER_ERROR)
                        continue
                    if chores is None:
                        return  # disposed, or asked to stop
                    self._start(chores, jobs)
                    chores.event.wait(chores.wake_at)
        finally:
            state.stop_maintaining(ended=True)

    def _start(self, chores: Chores[T], jobs: Jobs) -> None:
        """Start the round's work in the background, and report the leaks due."""
        state = self._state
        if chores.leaks and state.leaks is not None:
            state.leaks.warn_held(chores.leaks)
        if chores.create is not None:
            chores.create.stop = jobs.start(self._creator.run, chores.create)
        for entry in chores.retire + chores.idle:
            jobs.start(self._close, entry)
        for entry in chores.keep:
            jobs.start(self._keepalive, entry)

    def _close(self, entry: Entry[T]) -> None:
        try:
            self._closer.close_all([entry], log=True)
        except BaseException as exc:  # in the background: nothing would catch it
            if isinstance(exc, Exception):  # pragma: no cover  # close_all logs its own
                logger.error("closing %s failed", show(entry.resource), exc_info=exc)

    def _keepalive(self, entry: Entry[T]) -> None:
        """Check an idle resource nobody used for ``keepalive`` seconds; close it if it fails.

        Bounded by ``cleanup_timeout`` (else ``acquire_timeout``).  A check cut
        short leaves the resource in an unknown state, so it is closed.
        """
        state, check = self._state, self._check
        assert check is not None  # keepalive needs a check (checked at construction)
        limit = None if self._check_timeout is None else state.clock() + self._check_timeout
        call = BoundedCall(
            functools.partial(check, entry.held()),
            functools.partial(self._overran, entry),
            state.clock,
            self._helpers,
        )
        ok, broken = False, True
        started = state.clock()
        try:
            ok = call.run(limit) is not False
            if not ok:
                logger.warning(
                    "keepalive check returned False on %s; closing it", show(entry.resource)
                )
        except BaseException as exc:
            if call.detached:  # threads: the check goes on; _overran() closes it when done
                return
            if isinstance(exc, Exception):
                logger.warning(
                    "keepalive check failed on %s (%s); closing it", show(entry.resource), show(exc)
                )
            else:
                broken = False  # cut short (the maintainer stopped): closed, not broken
        finally:
            state.note_check(started)
            if not call.detached:
                to_close = state.kept_alive(entry, ok, broken=broken)
                if to_close is not None:
                    with Shield():
                        self._closer.close_and_free(to_close)

    def _overran(self, entry: Entry[T], result: object, error: BaseException | None) -> None:
        """A keepalive check its maintainer stopped waiting for ended (threads only)."""
        self._state.kept_alive(entry, False, broken=True)
        self._closer.close_and_free(entry)
