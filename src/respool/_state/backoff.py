"""Backoff while the factory fails, and the outage it makes (psycopg's ``AttemptWithBackoff``).

Caller holds the pool's lock; times come from the pool's clock.
"""

from __future__ import annotations

import random

FIRST_BACKOFF = 0.05  # seconds before the first retry of a failing factory; doubles
OUTAGE_LOG_EVERY = 10.0  # seconds between "still failing" lines while the factory fails


class Backoff:
    """How long to wait before the next factory call, and the outage so far."""

    __slots__ = ("failures", "logged", "max", "since", "until")

    def __init__(self, max_backoff: float) -> None:
        self.max = max_backoff
        self.failures = 0  # in a row: the outage's attempts
        self.until = 0.0  # no factory call before this
        self.since = 0.0  # the outage's first failure
        self.logged = 0.0  # its last log line

    def failed(self, now: float) -> int:
        """Push back the next attempt (exponential, jittered by up to half).

        Returns the outage's attempt count when a log line is due (its first
        failure, then one every ``OUTAGE_LOG_EVERY`` seconds), else 0.
        """
        self.failures += 1
        pause = min(self.max, FIRST_BACKOFF * 2.0 ** min(self.failures - 1, 32))
        self.until = max(self.until, now + pause * (1.0 - random.random() / 2))
        if self.failures == 1:
            self.since = self.logged = now
            return 1
        if now - self.logged >= OUTAGE_LOG_EVERY:
            self.logged = now
            return self.failures
        return 0

    def outage(self, now: float) -> tuple[float, int] | None:
        """As a creation succeeds: the outage it ends (seconds, attempts), if any."""
        if not self.failures:
            return None
        return now - self.since, self.failures

    def succeeded(self) -> None:
        self.failures = 0
        self.until = 0.0
