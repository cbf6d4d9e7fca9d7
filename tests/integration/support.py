"""Helpers for the integration tests: the recipes as modules, the check interval, full pools."""

from __future__ import annotations

import functools
import importlib.util
import inspect
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import ModuleType
from typing import Any, TypeVar

import anyio
import pytest

import respool

T = TypeVar("T")
R = TypeVar("R")

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
WAIT = 10.0  # seconds: the most any single step here waits for a server or a peer


# -- the recipes as modules -------------------------------------------------------------


@functools.cache
def load_example(name: str) -> ModuleType:
    """Import ``examples/<name>.py``: the tests exercise the very code the docs show."""
    path = EXAMPLES / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"respool_examples.{name}", path)
    assert spec is not None and spec.loader is not None, path
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses and pickling look modules up by name
    spec.loader.exec_module(module)
    return module


# -- the health-check interval ----------------------------------------------------------


def default_check_interval() -> float:
    """The pools' default ``check_interval`` (read from the signature, not copied)."""
    default = inspect.signature(respool.Pool).parameters["check_interval"].default
    assert default == inspect.signature(respool.AsyncPool).parameters["check_interval"].default
    return float(default)


# How the tests use the interval: `0` checks every idle resource before handing
# it out; `None` keeps the recipe's default and waits it out.
CHECK_INTERVALS = [
    pytest.param(0, id="check_interval=0"),
    pytest.param(None, id="default-interval-waited-out"),
]


def interval_option(check_interval: float | None) -> dict[str, float]:
    return {} if check_interval is None else {"check_interval": check_interval}


def wait_out(check_interval: float | None) -> None:
    """Sleep until every idle resource is due for its check."""
    if check_interval is None:
        time.sleep(default_check_interval() + 0.1)


async def await_out(check_interval: float | None) -> None:
    if check_interval is None:
        await anyio.sleep(default_check_interval() + 0.1)


# -- every slot at once -------------------------------------------------------------------


def lease_all_at_once(pool: respool.Pool[T], use: Callable[[T], R]) -> list[R]:
    """``pool_size`` threads each lease a resource and ``use`` it, all holding theirs at once.

    So every idle resource the pool had was either handed out or dropped.
    Returns the results in thread order; re-raises the first error a caller saw.
    """
    barrier = threading.Barrier(pool.pool_size)

    def one(_: int) -> R:
        try:
            with pool.lease(timeout=WAIT) as resource:
                result = use(resource)
                barrier.wait(timeout=WAIT)
                return result
        except threading.BrokenBarrierError:
            raise
        except BaseException:
            barrier.abort()  # the others stop waiting; the real error is re-raised first
            raise

    with ThreadPoolExecutor(max_workers=pool.pool_size) as executor:
        futures = [executor.submit(one, n) for n in range(pool.pool_size)]
    errors = [f.exception() for f in futures if f.exception() is not None]
    errors.sort(key=lambda e: isinstance(e, threading.BrokenBarrierError))
    if errors:
        raise errors[0]  # type: ignore[misc]
    return [f.result() for f in futures]


async def lease_all_at_once_async(
    pool: respool.AsyncPool[T], use: Callable[[T], Awaitable[R]]
) -> list[R]:
    """:func:`lease_all_at_once` for tasks: ``pool_size`` tasks hold a resource at once."""
    results: list[Any] = [None] * pool.pool_size
    arrived = 0
    everyone_in = anyio.Event()

    async def one(n: int) -> None:
        nonlocal arrived
        async with pool.lease(timeout=WAIT) as resource:
            results[n] = await use(resource)
            arrived += 1
            if arrived == pool.pool_size:
                everyone_in.set()
            with anyio.fail_after(WAIT):
                await everyone_in.wait()

    async with anyio.create_task_group() as tg:
        for n in range(pool.pool_size):
            tg.start_soon(one, n)
    return results
