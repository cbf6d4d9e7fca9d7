"""A start that fails on one loop must stop every loop: it must not hang.

Run in a subprocess with a time bound, since the failure is a hang.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

SCRIPT = textwrap.dedent(
    """
    import sys, threading, anyio
    from respool import AsyncLoopPool, LoopPool
    made = 0
    lock = threading.Lock()
    FACE, BACKEND = sys.argv[1], sys.argv[2]

    async def factory():
        global made
        with lock:
            made += 1
            n = made
        if n == 1:
            raise OSError("factory failed on its first call")
        return {}

    async def amain():
        loops = AsyncLoopPool(factory, None, loop_count=3, pool_size=2, backend=BACKEND, fatal=OSError)
        try:
            await loops.start()
        except OSError:
            pass

    for i in range(300):
        made = 0
        if FACE == "async":
            anyio.run(amain)
        else:
            lp = LoopPool(factory, None, loop_count=3, pool_size=2, backend=BACKEND, fatal=OSError)
            try:
                lp.start()
            except OSError:
                pass
    left = [t.name for t in threading.enumerate() if t.name.startswith("respool-loop")]
    assert not left, left
    print("done")
    """
)


@pytest.mark.parametrize("face", ["async", "sync"])
@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_failed_start_never_hangs(face: str, backend: str) -> None:
    try:
        out = subprocess.run(
            [sys.executable, "-c", SCRIPT, face, backend],
            capture_output=True,
            text=True,
            timeout=15,
        )
    except subprocess.TimeoutExpired:
        pytest.fail("start() hung after a factory failure")
    assert out.returncode == 0, out.stderr[-2000:]
    assert "done" in out.stdout


CANCEL_SCRIPT = textwrap.dedent(
    """
    import sys, threading, anyio
    from respool import AsyncLoopPool

    async def factory():
        await anyio.sleep(0.02)
        return {}

    async def main():
        loops = AsyncLoopPool(factory, None, loop_count=3, pool_size=3, backend=sys.argv[1])
        with anyio.move_on_after(0):
            await loops.start()

    for i in range(100):
        anyio.run(main)
    left = [t.name for t in threading.enumerate() if t.name.startswith("respool-loop")]
    assert not left, left
    print("done")
    """
)


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_cancelled_start_never_hangs(backend: str) -> None:
    try:
        out = subprocess.run(
            [sys.executable, "-c", CANCEL_SCRIPT, backend],
            capture_output=True,
            text=True,
            timeout=15,
        )
    except subprocess.TimeoutExpired:
        pytest.fail("a cancelled start() hung")
    assert out.returncode == 0, out.stderr[-2000:]
    assert "done" in out.stdout
