"""KeyboardInterrupt in the threaded face: held back in the pool's bookkeeping.

``ki_protected`` and its kin mark code objects; ``wrap_sigint_handler`` puts
the handler in place that reads the marks.  The async face's twins do nothing.
"""

from __future__ import annotations

import _thread
import signal
import threading
import time
from collections.abc import Callable
from types import CodeType, FrameType
from typing import Any, TypeVar

T = TypeVar("T")

# -- KeyboardInterrupt in the threaded face ------------------------------------
#
# Python raises KeyboardInterrupt in the main thread between almost any two
# bytecodes, so no try/except can close every window in the pool's
# bookkeeping (between taking a place in line and the ``try`` around the
# wait, between a helper's result arriving and its registration...).  So the
# threaded face defers it there, as trio does: the code objects of the pool's
# functions are marked, and a SIGINT handler that wraps Python's default one
# looks at the interrupted frame and its callers.  The innermost marked frame
# decides: protected, the interrupt is held back and sent again shortly
# after (every few milliseconds while still protected); unprotected (a
# blocking wait, a call out to user code), it is raised at once.  Marking
# costs nothing at run time: the handler only runs on SIGINT.  The async
# face's decorators do nothing.

_PROTECTED, _UNPROTECTED, _CALLS_OUT = 1, 2, 3
_KI_MARKS: dict[int, tuple[int, CodeType]] = {}  # id(code) -> (kind, code), kept alive
_X = TypeVar("_X")


def _functions_of(value: object) -> list[Any]:
    if isinstance(value, (staticmethod, classmethod)):
        value = value.__func__
    if isinstance(value, property):
        return [f for f in (value.fget, value.fset, value.fdel) if f is not None]
    return [value] if hasattr(value, "__code__") else []


def _mark(obj: object, kind: int) -> None:
    values = list(vars(obj).values()) if isinstance(obj, type) else [obj]
    for value in values:
        for fn in _functions_of(value):
            code = fn.__code__
            if kind == _PROTECTED and id(code) in _KI_MARKS:
                continue  # a method marked on its own keeps its mark
            _KI_MARKS[id(code)] = (kind, code)


def async_ki_protected(obj: _X) -> _X:
    """The async face: nothing to do (cancellation is how tasks are interrupted)."""
    return obj


def ki_protected(obj: _X) -> _X:
    """Hold ``KeyboardInterrupt`` back in ``obj`` (a function, or each function of a class).

    An interrupt landing in its code, or in unmarked code it calls (the
    standard library, a genexpr), is delivered once no protected frame is
    on the stack; marked waits and calls out to user code stay interruptible.
    """
    _mark(obj, _PROTECTED)
    return obj


def _ki_unprotected(obj: _X) -> _X:
    """Raise ``KeyboardInterrupt`` at once in ``obj`` (a blocking wait), even when called
    from protected code, which must clean up in ``except BaseException``."""
    _mark(obj, _UNPROTECTED)
    return obj


def _call_out(fn: Callable[[], T]) -> T:
    """``fn()``, where ``fn`` is user code (the factory, ``check``...), from protected code.

    Its code is marked "calls out": an interrupt landing in ``fn`` (in any
    frame below this one) is raised there, and the caller cleans up; one
    landing in this frame itself, say just as ``fn`` returned a resource, is
    held back like any in protected code.
    """
    return fn()


_mark(_call_out, _CALLS_OUT)


def _deferrable(frame: FrameType | None) -> bool:
    """Whether an interrupt landing in ``frame`` must wait: the innermost marked frame says."""
    deeper = False
    marks = _KI_MARKS
    while frame is not None:
        code = frame.f_code
        mark = marks.get(id(code))
        if mark is not None and mark[1] is code:
            if mark[0] == _CALLS_OUT:
                return not deeper
            return mark[0] == _PROTECTED
        deeper = True
        frame = frame.f_back
    return False


class _Interrupts:
    """The state of a held-back interrupt (one per process)."""

    deferred = False  # an interrupt is owed to the main thread
    main = 0  # its ident, as seen by the handler
    poke = _thread.allocate_lock()
    poke.acquire()  # released to wake the resender
    resender = False  # the resender thread was started (in this process)


def _on_sigint(signum: int, frame: FrameType | None) -> None:
    """respool's SIGINT handler: Python's own, unless the interrupt lands in protected code."""
    if _deferrable(frame):
        _Interrupts.deferred = True
        _Interrupts.main = threading.get_ident()  # handlers run in the main thread
        if not _Interrupts.resender:
            # A bare thread: the threading module's locks may be held right here.
            _Interrupts.resender = True
            _thread.start_new_thread(_resend, ())
        try:
            _Interrupts.poke.release()
        except RuntimeError:  # already woken
            pass
        return
    _Interrupts.deferred = False
    signal.default_int_handler(signum, frame)


def _resend() -> None:
    """Send a held-back interrupt again, after 1 ms, then less often, until it is delivered."""
    while True:
        _Interrupts.poke.acquire()
        delay = 0.001
        while _Interrupts.deferred:
            time.sleep(delay)
            if not _Interrupts.deferred:
                break
            if hasattr(signal, "pthread_kill"):
                # A real signal: it also ends a blocking wait the main thread
                # may have entered since.
                signal.pthread_kill(_Interrupts.main, signal.SIGINT)
            else:  # pragma: no cover  # Windows
                _thread.interrupt_main()
            delay = min(2 * delay, 0.05)


def interrupt_pending() -> bool:
    """Whether an interrupt is held back, to be delivered shortly (for tests)."""
    return _Interrupts.deferred


def async_wrap_sigint_handler() -> None:
    """The async face leaves SIGINT to the event loop."""


def wrap_sigint_handler() -> None:
    """Put respool's SIGINT handler in place of Python's default one, if that is the one.

    Called at each ``Pool`` construction; does something only in the main
    thread and only while SIGINT has Python's default handler (a handler
    of the application's own is left alone, and then an interrupt can land
    anywhere, as before).
    """
    if threading.current_thread() is not threading.main_thread():
        return
    try:
        if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
            signal.signal(signal.SIGINT, _on_sigint)
    except ValueError:  # pragma: no cover  # not the main interpreter
        pass
