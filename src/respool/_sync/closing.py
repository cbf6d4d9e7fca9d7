# generated from src/respool/_async/closing.py by unasync_build.py: do not edit, edit the source
"""Closing resources: the releaser, ``reset`` on return, and replacing a resource an acquire met.

Every close is cleanup: it runs under a shield, bounded by
``cleanup_timeout``; what follows from it is the state's (``_state/closings.py``).
"""

from __future__ import annotations

import functools
import logging
import sys
from collections.abc import Callable
from typing import Generic, TypeVar, cast

from .._config import Settings
from .._deadline import Deadline
from .._errors import release_error
from .._logs import PoolLog, Shown
from .._state import PoolState
from .._state.line import Waiter
from .._state.records import REASONS, Entry
from .._state.steps import AGAIN, Again, Slot, TimedOut
from .._synchronization import (
    BoundedCall,
    Helpers,
    LoopGuard,
    Shield,
    NotAwaitableError,
    cleanup_call,
    ki_protected,
)
from .._types import Check, Releaser
from ..events import CheckedIn, Closed

if sys.version_info < (3, 11):  # pragma: no cover
    from exceptiongroup import ExceptionGroup

T = TypeVar("T")

logger = logging.getLogger("respool")

_RESET_REFUSED = Exception("reset returned False")  # closes the resource quietly


@ki_protected  # threads: KeyboardInterrupt waits until the bookkeeping is done
class Closer(Generic[T]):
    """Runs the releaser and ``reset`` for one pool."""

    def __init__(
        self,
        state: PoolState[T],
        settings: Settings,
        releaser: Releaser[T] | None,
        reset: Check[T] | None,
        guard: LoopGuard,
        helpers: Helpers,
        log: PoolLog,
    ) -> None:
        self._state = state
        self.log = log
        self._releaser = releaser
        self._reset = reset
        self._is_closed = settings.is_closed
        self._cleanup_timeout = settings.cleanup_timeout
        self._guard = guard
        self._helpers = helpers

    def take_back(self, resource: T, how: str, suspect: bool) -> None:
        """Release (``how="release"``) or discard a leased resource: reset, pool or close it.

        ``suspect``: its holder failed, so it is checked when next handed out.
        Raises :class:`PoolError` (nothing changes) if the pool does not lease it.
        """
        if (
            how == "release"
            and self._is_closed is not None
            and is_dead(self._is_closed, resource, self.log)
        ):
            how = "discard"  # dead: closed, never pooled
        taken = self._state.take_back(resource, how, suspect)
        if isinstance(taken, str):
            raise release_error(self._state.kind, how, resource, taken)
        entry, to_close, overdue = taken
        hooks = self._state.hooks
        if hooks is not None and how == "release":
            hooks.emit(CheckedIn(resource))
        if self._reset is not None and how == "release":
            to_close = self.run_reset(entry)
        if to_close is not None:
            self.close_and_free(to_close)
        if self._state.sweeps:  # idle_timeout with no maintainer: enforced here, lazily
            self.close_all(self._state.idle_past_timeout(), log=True)
        if overdue is not None and self._state.leaks is not None:
            self._state.leaks.warn_returned(overdue, self.log)

    def _cleanup_deadline(self) -> float | None:
        if self._cleanup_timeout is None:
            return None
        return self._state.clock() + self._cleanup_timeout

    def close(self, entry: Entry[T]) -> Exception | None:
        """Run the releaser; return its error.

        It is bounded by ``cleanup_timeout``.  A releaser left running past it
        (threads: a call cannot be cut short) keeps its resource counted alive
        and its slot taken until it really ends (``entry.late`` is set, and
        the state's ``closed_late`` settles it), so closing never lets more
        than ``pool_size`` resources exist.
        """
        error: Exception | None = None
        call: BoundedCall[object] | None = None
        try:
            if self._releaser is not None:
                call = BoundedCall(
                    functools.partial(self._releaser, entry.held()),
                    functools.partial(self._closed_late, entry),
                    self._state.clock,
                    self._helpers,
                )
                with Shield():
                    call.run(self._cleanup_deadline(), start=True)
        except Exception as exc:
            error = exc
            if call is not None and call.timed_out:
                error = TimeoutError(
                    f"the releaser did not finish within cleanup_timeout={self._cleanup_timeout}s"
                )
        finally:
            late = call is not None and call.detached
            self._state.closed_one(entry, failed=error is not None, late=late)
            self.log.debug("closed %s", Shown(entry.resource))
            hooks = self._state.hooks
            if hooks is not None:
                hooks.emit(Closed(entry.resource, REASONS[entry.reason], error))
        if isinstance(error, NotAwaitableError):  # a plain releaser: a mistake, raised
            raise error.about("releaser", "it ran; its resource counts as closed") from None
        return error

    def _log_close_error(self, entry: Entry[T], error: Exception | None) -> None:
        if error is not None:
            self.log.warning("releaser failed to close %s", Shown(entry.resource), exc_info=error)

    def _closed_late(
        self, entry: Entry[T], result: object, error: BaseException | None
    ) -> None:
        self._state.closed_late(entry)

    def close_and_free(self, entry: Entry[T]) -> None:
        """Close a resource nobody holds (logging a releaser error), free its slot."""
        try:
            error = self.close(entry)
        finally:
            if not entry.late:
                self._state.free_slot()
        self._log_close_error(entry, error)

    def close_all(self, entries: list[Entry[T]], *, log: bool) -> list[Exception]:
        """Close resources taken out of the pool, every one, and free their slots."""
        errors = []
        interrupted: BaseException | None = None
        with Shield():
            for entry in entries:
                try:
                    error = self.close(entry)
                except BaseException as exc:
                    # Finish the batch anyway (say after KeyboardInterrupt), or the
                    # rest would hold their slots forever.
                    interrupted = interrupted or exc
                    continue
                finally:
                    if not entry.late:
                        self._state.free_slot()
                if log:
                    self._log_close_error(entry, error)
                elif error is not None:
                    errors.append(error)
        if interrupted is not None:
            raise interrupted
        return errors

    def dispose(
        self,
        idle: list[Entry[T]],
        stops: list[Callable[[], object]],
        *,
        gone: bool,
        raise_errors: bool,
    ) -> None:
        """Dispose's closing: stop the creations, close every idle resource, name each failure.

        ``gone``: the pool's loop has ended, so a creation there cannot be stopped.
        """
        for stop in stops:  # what they made would only be closed: stop them
            try:
                stop()
            except RuntimeError:
                if not gone:
                    raise
        failed: list[tuple[Entry[T], Exception]] = []
        interrupted: BaseException | None = None
        try:
            for entry in idle:
                try:
                    failed += [(entry, error) for error in self.close_all([entry], log=False)]
                except BaseException as exc:  # finish the batch (see close_all), then re-raise
                    interrupted = interrupted or exc
        finally:
            self._helpers.close()
        if failed and raise_errors and interrupted is None:
            raise ExceptionGroup(
                f"{len(failed)} of {len(idle)} idle resources failed to close on dispose",
                [error for _, error in failed],
            )
        hint = " (the pool's loop had ended: the resource may have belonged to it)" if gone else ""
        for entry, error in failed:
            self.log.warning(
                "dispose: the releaser failed to close %s%s", Shown(entry.resource), hint,
                exc_info=error,
            )  # fmt: skip
        if interrupted is not None:
            raise interrupted

    def replace(self, entry: Entry[T], deadline: Deadline) -> Slot | Again | TimedOut:
        """Close a stale or broken resource the caller took; keep its slot to create in.

        Keeping the slot keeps the caller's place: a newcomer parked meanwhile
        stays behind it.  The releaser runs in the background, bounded by
        ``cleanup_timeout`` alone, while the caller waits for it until its own
        deadline: past it the caller times out and the close goes on, its slot
        then going to the line.  Looks again when idle resources are left or
        the pool closed.
        """
        state = self._state
        closing: Waiter[T] = Waiter(state.new_event())  # in no line
        wait = state.replacing(closing)
        self._guard.spawn(
            functools.partial(self._close_in_background, entry, closing),
            needed=deadline.at is not None,
            helpers=self._helpers,
        )
        if not wait:
            return AGAIN  # another idle one may serve at once: do not wait for the close
        try:
            closing.event.wait(deadline.at)
        except BaseException:
            state.stop_replacing(closing)
            raise
        step = state.replaced(entry, closing)
        if step is None:
            raise cast(BaseException, closing.failed)
        return step

    def _close_in_background(self, entry: Entry[T], closing: Waiter[T]) -> None:
        """Close a resource an acquire met; hand its slot to that caller if still there.

        It runs in the background and never raises (nothing would catch it).
        """
        error: BaseException | None
        try:
            error = self.close(entry)
        except BaseException as exc:  # a plain releaser (TypeError), the loop ending
            error = exc
        mistake = error if isinstance(error, NotAwaitableError) else None
        if self._state.background_closed(entry, closing, mistake):
            error = None  # its caller raises it
        if isinstance(error, Exception):
            self._log_close_error(entry, error)

    def run_reset(self, entry: Entry[T]) -> Entry[T] | None:
        """Run ``reset`` on a released resource; pool it, or return it to be closed."""
        reset = self._reset  # (a cast() with a subscript here cost 2 µs per release)
        assert reset is not None
        call: BoundedCall[object] | None = None
        error: BaseException | None = None
        try:
            if self._cleanup_timeout is None:  # unbounded: called inline, nothing to build
                verdict = cleanup_call(reset, entry.held())
            else:
                call = BoundedCall(
                    functools.partial(reset, entry.held()),
                    functools.partial(self.overran, entry, True),
                    self._state.clock,
                    self._helpers,
                )
                with Shield():
                    verdict = call.run(self._cleanup_deadline(), start=True)
            if verdict is False:
                error = _RESET_REFUSED
        except BaseException as exc:
            error = exc
        if call is not None and call.detached:  # threads: the reset goes on; overran() closes it
            if isinstance(error, Exception):
                return None
            raise cast(BaseException, error)
        to_close = self._state.reset_done(entry, ok=error is None)
        if error is None:
            return to_close
        if not isinstance(error, Exception) or isinstance(error, NotAwaitableError):
            self.close_and_free(entry)
            if isinstance(error, NotAwaitableError):  # a plain reset: a mistake, raised
                raise error.about("reset", "its resource was closed, not pooled") from None
            raise error
        if error is not _RESET_REFUSED:
            self.log.warning(
                "reset failed on %s (%s); closing it", Shown(entry.resource), Shown(error)
            )
        return entry

    def overran(
        self, entry: Entry[T], taken: bool, result: object, error: BaseException | None
    ) -> None:
        """A ``check`` or ``reset`` its caller stopped waiting for ended (threads only).

        It overran its time, so the resource is not trusted: close it.
        """
        if self._state.broke(entry, taken=taken):
            self.close_and_free(entry)


def is_dead(is_closed: Callable[[T], object], resource: T, log: PoolLog) -> bool:
    """``is_closed(resource)``, outside the lock; an error counts as dead."""
    try:
        return bool(is_closed(resource))
    except Exception as exc:
        log.warning("is_closed raised on %s (%s); closing it", Shown(resource), Shown(exc))
        return True
