"""Calls out to user code: checked, bounded by a deadline, or shielded.

``AsyncBoundedCall``/``BoundedCall`` give up on a call at a deadline (the
threaded one in a helper thread); ``async_call_within``/``call_within`` cut a
factory call at its limit; ``AsyncShield``/``Shield`` protect cleanup from
cancellation.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import inspect
import threading
import time
from collections.abc import Awaitable, Callable
from types import CoroutineType
from typing import Any, Generic, TypeVar

import anyio

from .._checks import check_callable, check_not_async
from .._reprs import qualname, show
from .events import Event
from .helpers import AsyncHelpers, Helpers
from .interrupts import _CALLS_OUT, _call_out, _mark, ki_protected

T = TypeVar("T")

# -- cleanup that cancellation must not interrupt -----------------------------


def AsyncShield() -> contextlib.AbstractContextManager[Any]:
    """Shield the block from cancellation of the enclosing scopes."""
    return anyio.CancelScope(shield=True)


_NOTHING = contextlib.nullcontext()  # reusable: one is enough for every thread


def Shield() -> contextlib.AbstractContextManager[Any]:
    """Threads cannot be cancelled: nothing to shield from."""
    return _NOTHING


# -- a call bounded by a deadline ----------------------------------------------


class NotAwaitableError(TypeError):
    """An async pool was given a plain callable: a mistake, never worth a retry.

    ``about`` makes the same error naming the callable's role and what the
    pool did about it (the call did run: a plain releaser has closed its
    resource, say).
    """

    def __init__(self, fn: object, returned: str, role: str = "", outcome: str = "") -> None:
        self.fn = fn
        self.returned = returned  # the name of the type the call returned
        what = f"AsyncPool's {role} {_callee(fn)}" if role else _callee(fn)
        then = f" ({outcome})" if outcome else ""
        super().__init__(
            f"{what} returned {returned}, not an awaitable{then}. AsyncPool awaits what its "
            "factory, releaser, check and reset return: make it an `async def` function (or "
            "one that returns an awaitable), or use respool.Pool for plain callables"
        )

    def about(self, role: str, outcome: str) -> NotAwaitableError:
        return NotAwaitableError(self.fn, self.returned, role, outcome)


def _callee(fn: object) -> str:
    """A callable the pool made a ``partial`` of, by name: ``close()``."""
    name = qualname(fn)
    return f"{name}()" if name is not None else show(fn)


def async_callable_check(name: str, value: object, *, optional: bool = True) -> None:
    """``AsyncPool`` takes any callable: a plain one may return an awaitable.

    One that does not is refused when first called (``NotAwaitableError``).
    """
    check_callable(name, value, optional=optional)


def callable_check(name: str, value: object, *, optional: bool = True) -> None:
    """``Pool`` refuses async callables: it would call them and never await the result."""
    check_callable(name, value, optional=optional)
    check_not_async(
        name,
        value,
        "Pool calls it in threads and never awaits it: use respool.AsyncPool for async "
        "callables, or pass a plain function",
    )


class AsyncBoundedCall(Generic[T]):
    """Run ``fn()`` and give up on it at a deadline.

    At the deadline ``fn`` is cancelled, ``timed_out`` is set and
    ``TimeoutError`` raised; with the deadline already past, ``fn`` is not
    called at all.  Nothing outlives the call, so ``detached`` is
    always false and ``adopt`` is never called: whatever ``run`` raises, the
    caller still owns whatever it reserved for the call.
    """

    __slots__ = ("_clock", "_fn", "detached", "timed_out")

    def __init__(
        self,
        fn: Callable[[], Awaitable[T]],
        adopt: Callable[[T | None, BaseException | None], Awaitable[None]],
        clock: Callable[[], float],
        helpers: AsyncHelpers,
    ) -> None:
        self._fn = fn
        self._clock = clock
        self.timed_out = False
        self.detached = False

    async def run(self, deadline: float | None, *, start: bool = False) -> T:
        """``start=True``: call ``fn`` even if the deadline has passed (cleanup must run)."""
        if deadline is None:
            return await self._call()
        remaining = deadline - self._clock()
        if remaining > 0 or start:
            with anyio.move_on_after(remaining):
                return await self._call()
            # Cut on the loop's clock, which may round (uvloop): the caller's
            # timeout must not end early on the pool's.
            while (left := deadline - self._clock()) > 0:
                await anyio.sleep(left)
        self.timed_out = True
        raise TimeoutError("deadline passed before the call finished")

    async def _call(self) -> T:
        awaitable = self._fn()
        if not inspect.isawaitable(awaitable):
            raise NotAwaitableError(self._fn, type(awaitable).__name__)
        return await awaitable


@ki_protected
class BoundedCall(Generic[T]):
    """Run ``fn()`` and give up on it at a deadline.

    A thread cannot be interrupted, so with a deadline ``fn`` runs in one of
    the pool's helper threads (:class:`Helpers`, in a copy of the caller's
    context) while the caller waits.  If the deadline passes before ``fn``
    returns, or the wait is interrupted (say by ``KeyboardInterrupt``) at any
    point, the call is *detached*: ``detached`` is set, ``run`` raises, and
    ``fn``'s outcome goes to ``adopt(result, error)`` (when ``fn`` ends, or at
    once if it already has), which then owns whatever the caller reserved for
    the call.  Without a deadline ``fn`` runs inline; with the deadline
    already past it is not called at all.
    """

    __slots__ = (
        "_adopt",
        "_context",
        "_done",
        "_fn",
        "_helpers",
        "_mutex",
        "_outcome",
        "detached",
        "timed_out",
    )

    def __init__(
        self,
        fn: Callable[[], T],
        adopt: Callable[[T | None, BaseException | None], None],
        clock: Callable[[], float],
        helpers: Helpers,
    ) -> None:
        self._fn = fn
        self._adopt = adopt
        self._helpers = helpers
        self._outcome: tuple[T | None, BaseException | None] | None = None
        self.timed_out = False
        self.detached = False

    def run(self, deadline: float | None, *, start: bool = False) -> T:
        """``start=True``: call ``fn`` even if the deadline has passed (cleanup must run)."""
        if deadline is None:
            return _call_out(self._fn)
        if deadline <= time.monotonic() and not start:
            self.timed_out = True
            raise TimeoutError("deadline passed before the call started")
        self._mutex = threading.Lock()
        self._done = Event()
        self._context = contextvars.copy_context()
        self._helpers.submit(self._target)
        try:
            self._done.wait(deadline)
        except BaseException:
            # Interrupted (KeyboardInterrupt): whatever fn makes, now or
            # already, is adopt's; the caller only re-raises.
            with self._mutex:
                outcome = self._outcome
                self.detached = True
            if outcome is not None:
                self._adopt(*outcome)
            raise
        with self._mutex:
            outcome = self._outcome
            self.detached = outcome is None
        if outcome is None:
            self.timed_out = True
            raise TimeoutError("deadline passed before the call finished")
        result, error = outcome
        if error is not None:
            raise error
        return result  # type: ignore[return-value]  # no error: fn returned it

    def _target(self) -> None:
        """In a helper thread: run ``fn``, hand its outcome to the caller or to adopt."""
        try:
            outcome: tuple[T | None, BaseException | None] = (self._context.run(self._fn), None)
        except BaseException as exc:  # handed to the waiting caller or to adopt
            outcome = (None, exc)
        with self._mutex:
            self._outcome = outcome
            detached = self.detached
        if detached:
            self._adopt(*outcome)
        else:
            self._done.set()


# -- cleanup with no deadline ----------------------------------------------------


async def async_cleanup_call(fn: Callable[[T], Awaitable[Any]], arg: T) -> Any:
    """Await ``fn(arg)`` (cleanup: user code with no deadline), shielded from cancellation.

    ``AsyncBoundedCall``'s work without a deadline, and without the objects
    a deadline needs.  (Running the call unshielded up to its first
    suspension would save the shield's cost, but a cancel scope the call
    enters before suspending would then sit outside the shield: trio
    refuses that nesting, and anyio's scopes would let the cancellation in.)
    """
    with AsyncShield():
        awaitable = fn(arg)
        if type(awaitable) is not CoroutineType and not inspect.isawaitable(awaitable):
            raise NotAwaitableError(functools.partial(fn, arg), type(awaitable).__name__)
        return await awaitable


def cleanup_call(fn: Callable[[T], Any], arg: T) -> Any:
    """``fn(arg)``, where ``fn`` is user code, from protected code (see ``_call_out``);
    a thread cannot be cancelled, so there is nothing to shield it from."""
    return fn(arg)


_mark(cleanup_call, _CALLS_OUT)


# -- work that outlives the caller who started it ----------------------------


class CallTimeout(TimeoutError):
    """A call was cut short at its limit."""


async def async_call_within(
    fn: Callable[[], Awaitable[T]], limit: float | None, clock: Callable[[], float]
) -> T:
    """Await ``fn()``, cancelling it at ``limit`` (raises :class:`CallTimeout`)."""
    if limit is None:
        return await _awaited(fn)
    with anyio.move_on_after(max(0.0, limit - clock())):
        return await _awaited(fn)
    raise CallTimeout("the call did not finish within its limit")


def call_within(fn: Callable[[], T], limit: float | None, clock: Callable[[], float]) -> T:
    """Call ``fn()`` (user code: Ctrl-C stays live in it); a thread cannot be cut
    short, so ``limit`` does not apply."""
    return _call_out(fn)


async def _awaited(fn: Callable[[], Awaitable[T]]) -> T:
    awaitable = fn()
    if not inspect.isawaitable(awaitable):
        raise NotAwaitableError(fn, type(awaitable).__name__, "factory", "nothing was pooled")
    return await awaitable
