"""One deadline for the whole of an ``acquire``: waiting, checking, creating, closing.

It keeps the timeout it was made from, so an error can say how long the
caller waited without a second value travelling beside it.
"""

from __future__ import annotations

import math


class Deadline:
    """``at``: the clock reading past which the caller gives up (``None``: never)."""

    __slots__ = ("at", "seconds", "start")

    def __init__(self, seconds: float | None, now: float) -> None:
        self.seconds = seconds  # as the caller asked, for the error's wording
        self.start = now  # when the call began, near enough (its wait is timed from here)
        self.at = None if seconds is None or seconds == math.inf else now + seconds

    def passed(self, now: float) -> bool:
        return self.at is not None and self.at <= now

    def __repr__(self) -> str:
        return f"Deadline(at={self.at}, seconds={self.seconds})"
