from __future__ import annotations

import faulthandler
import logging
from collections.abc import Iterator

import pytest

HANG_LIMIT = 120  # seconds; no test comes close


@pytest.fixture(autouse=True)
def no_test_hangs() -> Iterator[None]:
    """A hang (a deadlock, a lost wake-up) ends the run with every thread's stack."""
    faulthandler.dump_traceback_later(HANG_LIMIT, exit=True)
    yield
    faulthandler.cancel_dump_traceback_later()


@pytest.fixture
def quiet_respool() -> Iterator[None]:
    """respool's own log quiet, for tests whose faults it would report at length."""
    logger = logging.getLogger("respool")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    yield
    logger.setLevel(level)


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    """Every async test runs under both asyncio and trio."""
    return str(request.param)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Print the totals the proof tests counted (and write them, see tests/figures.py)."""
    from .figures import publish

    lines = publish()
    if lines:
        terminalreporter.section("proof figures")
        for line in lines:
            terminalreporter.write_line(line)
