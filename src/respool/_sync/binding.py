# generated from src/respool/_async/binding.py by unasync_build.py: do not edit, edit the source
"""The one place that knows which loop the pool belongs to: bind on first use, refuse others.

The pool binds to the first loop that uses it (through its guard, from
``_synchronization``); from then on the state runs on that loop's clock,
makes that loop's events and schedules work there.  A pool whose loop has
ended may be disposed from another; a forked child starts unbound.  Threads
have no loop: their guard accepts every thread.
"""

from __future__ import annotations

from typing import Any

from .._errors import PoolError
from .._state import PoolState
from .._synchronization import LoopGuard, ki_protected


@ki_protected  # threads: KeyboardInterrupt waits until the bookkeeping is done
class Binding:
    """A pool's loop guard, and the state's view of it kept in step."""

    __slots__ = ("__weakref__", "_state", "guard")

    def __init__(self, guard: LoopGuard, state: PoolState[Any]) -> None:
        self.guard = guard  # the same object for the pool's life: (un)binding is in place
        self._state = state
        self._bound()

    def check(self) -> None:
        """Raise :class:`PoolError` from a loop that is not the pool's (binding on first use)."""
        guard = self.guard
        if guard.get_current() is guard.token:
            return
        problem = guard.check()
        if problem is not None:
            raise PoolError(problem)
        self._bound()

    def check_or_rebind(self) -> bool:
        """``check``, for ``dispose``: a pool whose loop has ended binds to this one.

        Returns whether it did (nothing can ever run on the loop it had).
        """
        try:
            self.check()
        except PoolError:
            if not self.guard.bound_loop_is_gone():
                raise
            self.guard.unbind()
            self.check()
            return True
        return False

    def _forget_after_fork(self) -> None:
        """In a child process after ``os.fork()``: every resource is the parent's.

        The child neither hands them out nor closes them; it starts empty, its
        counters at zero (they count what the child does), and unbound.
        """
        self._state.forget()
        self.guard.unbind()
        self._bound()

    def _bound(self) -> None:
        guard, state = self.guard, self._state
        state.clock, state.new_event, state.call_soon = (
            guard.clock,
            guard.new_event,
            guard.call_soon,
        )
        state.wakes_from_any_thread = guard.wakes_from_any_thread
