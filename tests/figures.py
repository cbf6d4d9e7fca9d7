"""Totals the proof tests count, so docs/reliability.md can quote real figures.

Each proof module adds to one named ``Figures`` record.  At the end of the
run the totals are printed in pytest's summary and, if the environment
variable ``RESPOOL_PROOF_FIGURES`` names a directory, written there as
``<name>.json`` (one file per record, so a partial run writes only what it
ran).
"""

from __future__ import annotations

import json
import os
import platform
import time
from collections import Counter
from pathlib import Path

ENV = "RESPOOL_PROOF_FIGURES"

_records: dict[str, Figures] = {}


class Figures:
    """Named counters for one proof suite, accumulated over its tests."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.counts: Counter[str] = Counter()
        self.tests = 0
        self.seconds = 0.0

    def add(self, **counts: int) -> None:
        self.counts.update(counts)

    def timed(self) -> _Timer:
        """``with figures.timed():`` around one test counts it and its duration."""
        return _Timer(self)

    def as_dict(self) -> dict[str, object]:
        timing = {"tests": self.tests, "seconds": round(self.seconds, 2)} if self.tests else {}
        return {
            "suite": self.name,
            **timing,
            "python": platform.python_version(),
            **dict(sorted(self.counts.items())),
        }


class _Timer:
    def __init__(self, figures: Figures) -> None:
        self._figures = figures

    def __enter__(self) -> None:
        self._started = time.monotonic()

    def __exit__(self, *exc: object) -> None:
        self._figures.tests += 1
        self._figures.seconds += time.monotonic() - self._started


def figures(name: str) -> Figures:
    """The record called ``name``, created on first use."""
    if name not in _records:
        _records[name] = Figures(name)
    return _records[name]


def publish() -> list[str]:
    """Write every record to ``$RESPOOL_PROOF_FIGURES`` if set; return summary lines."""
    lines = []
    target = os.environ.get(ENV)
    for record in _records.values():
        data = record.as_dict()
        lines.append(" ".join(f"{k}={v}" for k, v in data.items()))
        if target:
            Path(target).mkdir(parents=True, exist_ok=True)
            (Path(target) / f"{record.name}.json").write_text(json.dumps(data, indent=2) + "\n")
    return lines
