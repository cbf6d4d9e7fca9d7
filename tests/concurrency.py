"""Test helpers that differ between anyio and threads, in AsyncX / X pairs.

``unasync_build.py`` maps each async name to its twin, so the generated
threaded tests use threads where the async tests use tasks.
"""

from __future__ import annotations

import json
import os
import threading
import time
import warnings
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any

import anyio
import anyio.abc


class AsyncNursery:
    """``async with AsyncNursery() as n: n.start_soon(fn, *args)``: an anyio task group."""

    async def __aenter__(self) -> AsyncNursery:
        self._group = anyio.create_task_group()
        await self._group.__aenter__()
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> bool | None:
        return await self._group.__aexit__(et, e, tb)

    def start_soon(self, fn: Callable[..., Awaitable[Any]], *args: Any) -> None:
        self._group.start_soon(fn, *args)


class Nursery:
    """``with Nursery() as n: n.start_soon(fn, *args)``: threads, joined on exit.

    The first exception a thread raised is re-raised on exit.
    """

    def __enter__(self) -> Nursery:
        self._threads: list[threading.Thread] = []
        self._errors: list[BaseException] = []
        return self

    def __exit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        for thread in self._threads:
            thread.join(timeout=60)
            assert not thread.is_alive(), "a test thread did not finish within 60s"
        if self._errors and et is None:
            raise self._errors[0]

    def start_soon(self, fn: Callable[..., Any], *args: Any) -> None:
        def run() -> None:
            try:
                fn(*args)
            except BaseException as exc:
                self._errors.append(exc)

        thread = threading.Thread(target=run, daemon=True)
        self._threads.append(thread)
        thread.start()


async def async_sleep(seconds: float) -> None:
    await anyio.sleep(seconds)


def sleep(seconds: float) -> None:
    time.sleep(seconds)


async def async_wait_until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    """Poll until ``condition()`` holds; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        await anyio.sleep(0.001)


def wait_until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    """Poll until ``condition()`` holds; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.001)


def in_forked_child(child: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """Run ``child()`` in a forked process; return the JSON report it made.

    The child leaves at once (``os._exit``), running no test teardown; a child
    that raised exits 1, which fails the caller with what was reported.
    """
    read_end, write_end = os.pipe()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # 3.12+: fork with threads alive
        pid = os.fork()
    if pid == 0:
        code = 0
        try:
            os.write(write_end, json.dumps(child()).encode())
        except BaseException:
            code = 1
        finally:
            os._exit(code)
    os.close(write_end)
    with os.fdopen(read_end) as pipe:
        report: dict[str, Any] = json.loads(pipe.read() or "{}")
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, report
    return report
