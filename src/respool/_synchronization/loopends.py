"""Which event loop is running, and a hook at its end, for ``LoopPools``.

``running_loop()`` names the current asyncio loop or trio run: the loop
object, or the run's ``TrioToken`` (one per run).  ``LoopRef`` holds one
weakly, with the thread it runs on, and says whether it is over.
``EndHook.install(on_end)`` makes ``await on_end()`` run on that loop as it
ends, while it can still run code:

- asyncio: an async generator, started on the loop and parked at a
  ``yield``.  The loop's async generator hooks register it, and
  ``loop.shutdown_asyncgens()`` (which ``asyncio.run``, ``asyncio.Runner``,
  ``anyio.run`` and uvloop's ``run`` call after cancelling the remaining
  tasks, before closing the loop) closes it: its ``finally`` runs
  ``on_end()`` on the still-running loop.  Nothing of the loop is patched,
  and no task is left pending.
- trio: a system task sleeping until the run's main task has returned (the
  run then cancels it), which runs ``on_end()`` shielded.

A loop closed without ``shutdown_asyncgens()`` (``loop.close()`` after
``run_until_complete``) never runs the hook: ``LoopRef.over()`` tells, and
``EndHook.drop()`` closes the parked generator without running anything.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import weakref
from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import Any

import anyio
import sniffio

log = logging.getLogger("respool")

RegistryLock = threading.Lock

_TASKS: set[asyncio.Task[None]] = set()  # keeps fire-and-forget tasks referenced


def running_loop() -> tuple[str, object]:
    """``("asyncio", loop)`` or ``("trio", token)`` for the code calling it."""
    try:
        library = sniffio.current_async_library()
    except sniffio.AsyncLibraryNotFoundError:
        raise RuntimeError(
            "LoopPools.get() must be awaited inside an asyncio or trio run"
        ) from None
    if library == "asyncio":
        return library, asyncio.get_running_loop()
    if library == "trio":
        import trio

        return library, trio.lowlevel.current_trio_token()
    raise RuntimeError(f"respool supports asyncio and trio, not {library}")


class LoopRef:
    """An asyncio loop or trio run, held weakly, and the thread it runs on."""

    __slots__ = ("_ref", "description", "library", "thread")

    def __init__(self, library: str, loop: object) -> None:
        self.library = library
        self._ref = weakref.ref(loop)
        self.thread = threading.get_ident()
        if library == "asyncio":
            self.description = f"the asyncio event loop {type(loop).__name__} at {id(loop):#x}"
        else:
            self.description = f"the trio run with token at {id(loop):#x}"

    def get(self) -> object | None:
        """The loop (or trio token), or ``None`` once garbage-collected."""
        return self._ref()

    def over(self) -> bool:
        """Whether nothing can run on it again: closed, finished, or collected."""
        loop: Any = self._ref()
        if loop is None:
            return True
        if self.library == "asyncio":
            return bool(loop.is_closed())
        try:
            loop.run_sync_soon(_nothing)
        except RuntimeError:  # trio.RunFinishedError
            return True
        return False

    def running(self) -> bool:
        """Whether it runs now (a trio run that is not over always does)."""
        loop: Any = self._ref()
        if loop is None or self.over():
            return False
        return self.library == "trio" or bool(loop.is_running())

    def on_this_thread(self) -> bool:
        return threading.get_ident() == self.thread

    def run_soon(self, afn: Callable[[], Awaitable[None]]) -> threading.Event | None:
        """Run ``await afn()`` on the loop, from any thread; ``None`` if it refused.

        The returned event is set once ``afn`` has ended.  ``afn`` must not raise.
        """
        loop: Any = self._ref()
        if loop is None:
            return None
        done = threading.Event()

        async def body() -> None:
            try:
                with anyio.CancelScope(shield=True):
                    await afn()
            finally:
                done.set()

        try:
            if self.library == "asyncio":
                loop.call_soon_threadsafe(_create_task, loop, body)
            else:
                import trio

                loop.run_sync_soon(trio.lowlevel.spawn_system_task, body)
        except RuntimeError:  # closed, or finished
            return None
        return done


def _create_task(loop: asyncio.AbstractEventLoop, body: Callable[[], Any]) -> None:
    task = loop.create_task(body())
    _TASKS.add(task)
    task.add_done_callback(_TASKS.discard)


def _nothing() -> None:
    pass


class EndHook:
    """Runs ``await on_end()`` on the current loop as it ends (see the module)."""

    __slots__ = ("_generator", "dropped")

    def __init__(self) -> None:
        self.dropped = False
        self._generator: AsyncGenerator[None, None] | None = None

    @classmethod
    async def install(cls, on_end: Callable[[], Awaitable[None]]) -> EndHook:
        """Hook ``on_end`` to the end of the loop running the caller."""
        hook = cls()
        if sniffio.current_async_library() == "trio":
            import trio

            trio.lowlevel.spawn_system_task(hook._trio_watch, on_end, name="respool-loop-end")
            return hook
        generator = hook._parked(on_end)
        await generator.__anext__()  # registers it with the loop, parks it at its yield
        hook._generator = generator
        return hook

    async def _parked(self, on_end: Callable[[], Awaitable[None]]) -> AsyncGenerator[None, None]:
        try:
            yield
        finally:
            if not self.dropped:
                await _run_logged(on_end)

    async def _trio_watch(self, on_end: Callable[[], Awaitable[None]]) -> None:
        import trio

        try:
            await trio.sleep_forever()
        finally:
            if not self.dropped:
                with trio.CancelScope(shield=True):
                    await _run_logged(on_end)

    def drop(self) -> None:
        """Never run ``on_end``: close the parked generator without awaiting anything."""
        self.dropped = True
        generator, self._generator = self._generator, None
        if generator is not None:
            closing = generator.aclose()
            try:
                closing.send(None)
            except StopIteration:
                pass
            except RuntimeError:  # pragma: no cover  # already being closed by its loop
                closing.close()


async def _run_logged(on_end: Callable[[], Awaitable[None]]) -> None:
    try:
        await on_end()
    except Exception:  # pragma: no cover  # on_end logs its own errors; a bug otherwise
        log.exception("respool: a loop-end hook failed")
