"""Run a coroutine function on a chosen event loop, for AsyncPool's tests.

``run_on(flavour, main)``: asyncio (plain, debug, virtual time, uvloop) or trio (real
or mock clock).  The virtual-time asyncio loop's ``loop.time()`` jumps to the next timer
whenever every task waits, as trio's ``MockClock(autojump_threshold=0)`` does.
"""

from __future__ import annotations

import asyncio
import selectors
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import pytest
import trio
import trio.testing

# -- a virtual-time asyncio loop (issue 9, items 13 and 14) ---------------------------


class _VirtualClock:
    def __init__(self) -> None:
        self.now = 1000.0


def _jumping_selector(clock: _VirtualClock) -> selectors.BaseSelector:
    """A selector that, instead of sleeping until the next timer, jumps the clock to it."""

    class JumpingSelector(selectors.DefaultSelector):  # type: ignore[misc,valid-type]
        def select(self, timeout: float | None = None) -> list[Any]:
            ready: list[Any] = super().select(0)
            if ready or (timeout is not None and timeout <= 0):
                return ready
            if timeout is None:  # no timer at all: only real I/O can wake the loop
                return list(super().select(None))
            clock.now += timeout
            return ready

    return JumpingSelector()


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    """``loop.time()`` is virtual: when every task waits, it jumps to the next timer."""

    def __init__(self) -> None:
        self._virtual = _VirtualClock()
        super().__init__(selector=_jumping_selector(self._virtual))

    def time(self) -> float:
        return self._virtual.now


def run_virtual(main: Callable[[], Awaitable[Any]]) -> Any:
    loop = VirtualTimeLoop()
    try:
        return loop.run_until_complete(main())
    finally:
        loop.close()


def run_on(flavour: str, main: Callable[[], Awaitable[Any]]) -> Any:
    """Run ``main`` on asyncio (plain, debug, virtual time, uvloop) or trio (real or mock)."""
    if flavour == "asyncio":
        return anyio.run(main, backend="asyncio")
    if flavour == "asyncio-debug":
        return anyio.run(main, backend="asyncio", backend_options={"debug": True})
    if flavour == "asyncio-virtual":
        return run_virtual(main)
    if flavour == "uvloop":
        pytest.importorskip("uvloop")
        return anyio.run(main, backend="asyncio", backend_options={"use_uvloop": True})
    if flavour == "trio":
        return trio.run(main)
    if flavour == "trio-mock":
        return trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
    raise AssertionError(flavour)
