"""Wilson score intervals: known values, the edges, and bad counts."""

from __future__ import annotations

import pytest

from rt_ros.eval.statistics import wilson_interval


def test_known_wilson_intervals():
    # Reference values: 95% Wilson score interval (z = 1.96).
    low, high = wilson_interval(80, 100)
    assert low == pytest.approx(0.7112, abs=1e-4)
    assert high == pytest.approx(0.8666, abs=1e-4)
    low, high = wilson_interval(50, 100)
    assert (low, high) == pytest.approx((0.4038, 0.5962), abs=1e-4)


def test_intervals_at_the_edges_stay_inside_zero_and_one():
    low, high = wilson_interval(0, 20)
    assert low == 0.0
    assert high == pytest.approx(0.1611, abs=1e-4)
    low, high = wilson_interval(20, 20)
    assert high == 1.0
    assert low == pytest.approx(0.8389, abs=1e-4)
    assert wilson_interval(0, 0) == (0.0, 1.0)
    for trials in range(1, 200):
        assert wilson_interval(0, trials)[0] == 0.0
        assert wilson_interval(trials, trials)[1] == 1.0


def test_impossible_counts_are_refused():
    with pytest.raises(ValueError, match=r"within 0\.\.trials"):
        wilson_interval(5, 4)
