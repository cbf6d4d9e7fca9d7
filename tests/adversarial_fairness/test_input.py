"""Bad fairness_window values are refused at construction, naming the argument."""

from __future__ import annotations

import math

import pytest

from respool import AsyncPool, Pool

from ._kit import Book

BAD = [
    (-0.001, ValueError),
    (-1, ValueError),
    (-math.inf, ValueError),
    (math.nan, ValueError),
    ("0.005", TypeError),
    (True, TypeError),
    (False, TypeError),
    (None, TypeError),
    ([0.005], TypeError),
    (1j, TypeError),
]


def _build(kind: str, window):
    b = Book()
    if kind == "async":
        return AsyncPool(b.afactory, b.aclose, pool_size=2, fairness_window=window)
    return Pool(b.make, b.close, pool_size=2, fairness_window=window)


@pytest.mark.parametrize("kind", ["async", "threads"])
@pytest.mark.parametrize(("window", "exc"), BAD, ids=[repr(w) for w, _ in BAD])
def test_bad_fairness_window_refused(kind, window, exc):
    with pytest.raises(exc) as info:
        _build(kind, window)
    assert "fairness_window" in str(info.value), str(info.value)


@pytest.mark.parametrize("kind", ["async", "threads"])
@pytest.mark.parametrize("window", [0, 0.0, 1, 0.005, 2.5, math.inf])
def test_good_fairness_window_accepted(kind, window):
    pool = _build(kind, window)
    assert pool is not None


@pytest.mark.parametrize("kind", ["async", "threads"])
def test_fairness_window_is_keyword_only(kind):
    b = Book()
    with pytest.raises(TypeError):
        if kind == "async":
            AsyncPool(b.afactory, b.aclose, 2, fairness_window=0)  # type: ignore[misc]
        else:
            Pool(b.make, b.close, 2, fairness_window=0)  # type: ignore[misc]
