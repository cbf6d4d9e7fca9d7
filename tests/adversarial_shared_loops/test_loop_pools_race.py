"""LoopPools under threads: loops start and end while close_all() runs."""

from __future__ import annotations

import asyncio
import logging
import threading

import pytest
import trio

from respool import AsyncPool, LoopPools


class Count:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.made = 0
        self.closed = 0

    async def factory(self) -> int:
        with self.lock:
            self.made += 1
        return 1

    async def releaser(self, r: int) -> None:
        with self.lock:
            self.closed += 1


@pytest.mark.xfail(
    strict=False,
    reason=(
        "BUG, found in issue 16, there since issue 12 (reproduced on 965ca21 and later): "
        "with close_all() racing loops that end in 8 threads, 1 to 7 resources of 240 are "
        "made but never closed in about 1 run in 8, with or without the WARNING 'still "
        "being disposed after 2s'. Cause not established: close_all's disposal task was "
        "not seen cancelled by asyncio.run's end"
    ),
)
def test_close_all_racing_loops_in_threads(quiet_respool: None) -> None:
    for _ in range(2):  # each round races 240 loop lives against close_all
        _race_once()


def _race_once() -> None:
    c = Count()
    pools = LoopPools(lambda key: AsyncPool(c.factory, c.releaser, pool_size=2))
    errors: list[BaseException] = []

    async def task(i: int) -> None:
        p = await pools.get(i % 3)
        async with p.lease():
            await asyncio.sleep(0.001)

    def worker(n: int) -> None:
        try:
            for i in range(30):
                asyncio.run(task(i + n))
        except BaseException as e:
            errors.append(e)

    ths = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in ths:
        t.start()
    while any(t.is_alive() for t in ths):
        pools.close_all(timeout=2)
    for t in ths:
        t.join()
    pools.close_all()
    assert errors == [], errors[:3]
    assert len(pools) == 0
    assert c.made == c.closed, (c.made, c.closed)


def test_trio_run_ending_with_error_disposes() -> None:
    c = Count()
    pools = LoopPools(lambda key: AsyncPool(c.factory, c.releaser))

    async def main() -> None:
        p = await pools.get()
        async with p.lease():
            pass
        raise KeyError("task failed")

    for _ in range(10):
        with pytest.raises(KeyError):
            trio.run(main)
    assert len(pools) == 0
    assert c.made == c.closed == 10


def test_asyncio_run_ending_with_error_and_pending_lease() -> None:
    c = Count()
    pools = LoopPools(lambda key: AsyncPool(c.factory, c.releaser))

    async def holder() -> None:
        p = await pools.get()
        async with p.lease():
            await asyncio.sleep(10)

    async def main() -> None:
        asyncio.ensure_future(holder())
        await asyncio.sleep(0.01)
        raise KeyError("task failed")

    for _ in range(10):
        with pytest.raises(KeyError):
            asyncio.run(main())
    assert len(pools) == 0
    assert c.made == c.closed == 10


def test_releaser_error_at_loop_end_is_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    async def fac() -> int:
        return 1

    async def bad(r: int) -> None:
        raise OSError("close failed")

    pools = LoopPools(lambda key: AsyncPool(fac, bad))

    async def main() -> str:
        p = await pools.get()
        async with p.lease():
            pass
        return "ok"

    with caplog.at_level(logging.WARNING, logger="respool"):
        assert asyncio.run(main()) == "ok"
        assert trio.run(main) == "ok"
    assert len(pools) == 0
    assert any(
        "close failed" in (r.exc_text or "") + r.getMessage() or r.exc_info for r in caplog.records
    )
