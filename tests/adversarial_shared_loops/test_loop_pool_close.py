"""AsyncLoopPool shutdown corner cases."""

from __future__ import annotations

import threading

import anyio
import pytest

from respool import AsyncLoopPool, PoolClosed, PoolError


async def fac() -> dict:
    return {}


def loop_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("respool-loop")]


@pytest.mark.anyio
async def test_aclose_not_interrupted_by_cancellation() -> None:
    loops = AsyncLoopPool(fac, None, loop_count=2, shutdown_timeout=0.05)
    await loops.start()

    async def slow(r: dict) -> None:
        await anyio.sleep(10)

    async with anyio.create_task_group() as tg:
        tg.start_soon(lambda: _swallow(loops.run(slow)))
        await anyio.sleep(0.01)
        with anyio.move_on_after(0):
            await loops.aclose()
    assert loops.closed
    assert loop_threads() == []


async def _swallow(coro: object) -> None:
    try:
        await coro  # type: ignore[misc]
    except PoolClosed:
        pass


@pytest.mark.anyio
async def test_aclose_from_own_loop_raises() -> None:
    async with AsyncLoopPool(fac, None, loop_count=1) as loops:

        async def inner(r: dict) -> str:
            with pytest.raises(PoolError):
                await loops.aclose()
            return "ok"

        assert await loops.run(inner) == "ok"
        assert not loops.closed
    assert loop_threads() == []


@pytest.mark.anyio
async def test_run_timeout_zero_and_fn_swallowing_cancel() -> None:
    async def stubborn(r: dict) -> str:
        try:
            await anyio.sleep(10)
        except BaseException:
            pass
        return "swallowed"

    async with AsyncLoopPool(fac, None, loop_count=1) as loops:
        with pytest.raises(TimeoutError):
            await loops.run(stubborn, timeout=0.02)
        assert loops.stats()[0].pool.leased == 0
