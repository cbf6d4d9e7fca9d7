"""How a caller waits for work on another thread: ``AsyncCompletion``/``Completion``.

``AsyncCompletion`` is awaited by an asyncio or trio task without blocking its
loop; ``Completion`` blocks a thread.  Either is set once, from any thread.
``Tally`` counts outcomes reported from many threads (a batch, a start).
"""

from __future__ import annotations

import asyncio
import math
import threading
import weakref
from collections.abc import Callable

import anyio
import sniffio

# -- the caller's side: waiting for another thread -----------------------------------


class _Mailbox:
    """Wake-ups for the tasks of one loop, posted from other threads.

    One ``call_soon_threadsafe`` (or ``run_sync_soon``) serves every wake-up
    posted before the loop gets to it: under load, the loop is woken once per
    burst rather than once per call.
    """

    __slots__ = ("_events", "_lock", "_loop", "_method")

    def __init__(self, loop: object, method: str) -> None:
        self._lock = threading.Lock()
        self._events: list[anyio.Event] = []
        self._loop = weakref.ref(loop)  # the mailboxes are keyed weakly by their loop
        self._method = method  # call_soon_threadsafe, or run_sync_soon

    def post(self, event: anyio.Event) -> None:
        with self._lock:
            self._events.append(event)
            wake = len(self._events) == 1
        loop = self._loop()
        if wake and loop is not None:
            try:
                getattr(loop, self._method)(self._deliver)
            except RuntimeError:  # the loop or run is over: nobody waits any more
                with self._lock:
                    self._events.clear()

    def _deliver(self) -> None:
        with self._lock:
            events, self._events = self._events, []
        for event in events:
            event.set()


_MAILBOXES: weakref.WeakKeyDictionary[object, _Mailbox] = weakref.WeakKeyDictionary()
_MAILBOXES_LOCK = threading.Lock()


def _mailbox() -> _Mailbox:
    """The running loop's mailbox (made on first use)."""
    if sniffio.current_async_library() == "trio":
        import trio

        loop: object = trio.lowlevel.current_trio_token()
        method = "run_sync_soon"
    else:
        loop, method = asyncio.get_running_loop(), "call_soon_threadsafe"
    mailbox = _MAILBOXES.get(loop)
    if mailbox is None:
        with _MAILBOXES_LOCK:
            mailbox = _MAILBOXES.setdefault(loop, _Mailbox(loop, method))
    return mailbox


class AsyncCompletion:
    """Set once, from any thread; awaited by one asyncio or trio task.

    Made in the waiting task's loop: ``notify()`` posts the wake-up there
    (``call_soon_threadsafe``, ``run_sync_soon``), so waiting never blocks it.
    """

    __slots__ = ("_event", "_mailbox")

    def __init__(self) -> None:
        self._event = anyio.Event()
        self._mailbox = _mailbox()

    def notify(self) -> None:
        """Wake the waiter (from any thread); a waiter whose loop has ended is let be."""
        self._mailbox.post(self._event)

    async def wait(self, timeout: float | None) -> bool:
        """Wait until notified (``True``) or ``timeout`` seconds passed (``False``)."""
        if timeout is None or math.isinf(timeout):
            await self._event.wait()
            return True
        with anyio.move_on_after(timeout):
            await self._event.wait()
            return True
        return self._event.is_set()


class Completion:
    """Set once, from any thread; waited for by one thread."""

    __slots__ = ("_event",)

    def __init__(self) -> None:
        self._event = threading.Event()

    def notify(self) -> None:
        """Wake the waiter (from any thread)."""
        self._event.set()

    def wait(self, timeout: float | None) -> bool:
        """Wait until notified (``True``) or ``timeout`` seconds passed (``False``)."""
        if timeout is not None and math.isinf(timeout):
            timeout = None
        return self._event.wait(timeout)


class Tally:
    """Counts ``total`` outcomes reported from any thread.

    ``first()`` is called at the first failure, or once all succeeded;
    ``last()`` once every outcome is in.  ``failed`` is the index of the first
    failure, or ``None``.
    """

    __slots__ = ("_first", "_last", "_lock", "failed", "left")

    def __init__(self, total: int, first: Callable[[], None], last: Callable[[], None]) -> None:
        self._lock = threading.Lock()
        self.left = total
        self.failed: int | None = None
        self._first: Callable[[], None] | None = first
        self._last = last
        if total == 0:
            self._fire()

    def one(self, index: int, ok: bool) -> None:
        with self._lock:
            self.left -= 1
            if not ok and self.failed is None:
                self.failed = index
        self._fire()

    def _fire(self) -> None:
        with self._lock:
            first = self._first if self.failed is not None or self.left == 0 else None
            if first is not None:
                self._first = None
            last = self.left == 0
        if first is not None:
            first()
        if last:
            self._last()
