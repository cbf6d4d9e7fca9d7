"""A pool's log lines: all on the ``respool`` logger, each naming its pool.

Levels: WARNING for leaks, close errors, failed checks and resets, and an
outage's start and repeats; INFO for an outage's end; DEBUG for each
resource created and closed.  A message is formatted, and a resource's
``repr()`` (user code) called, only when its level is enabled: arguments are
passed through :class:`Shown`, which formats on demand.  Each record also
carries the pool's name as ``record.pool``, for structured logging.
"""

from __future__ import annotations

import logging
from typing import Any

from ._reprs import show

logger = logging.getLogger("respool")


class Shown:
    """``show(value)``, computed only if the line is emitted."""

    __slots__ = ("value",)

    def __init__(self, value: object) -> None:
        self.value = value

    def __str__(self) -> str:
        return show(self.value)


class PoolLog:
    """The ``respool`` logger for one pool: every line starts with ``label: ``."""

    __slots__ = ("extra", "label")

    def __init__(self, label: str) -> None:
        self.label = label
        self.extra = {"pool": label}

    def enabled(self, level: int) -> bool:
        return logger.isEnabledFor(level)

    def log(self, level: int, message: str, *args: Any, exc_info: Any = None) -> None:
        if logger.isEnabledFor(level):
            logger.log(
                level, "%s: " + message, self.label, *args, exc_info=exc_info, extra=self.extra
            )

    def debug(self, message: str, *args: Any) -> None:
        self.log(logging.DEBUG, message, *args)

    def info(self, message: str, *args: Any) -> None:
        self.log(logging.INFO, message, *args)

    def warning(self, message: str, *args: Any, exc_info: Any = None) -> None:
        self.log(logging.WARNING, message, *args, exc_info=exc_info)

    def error(self, message: str, *args: Any, exc_info: Any = None) -> None:
        self.log(logging.ERROR, message, *args, exc_info=exc_info)
