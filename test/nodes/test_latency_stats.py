"""Latency windows and tick accounting for the policy node's diagnostics."""

import math

import pytest

from rt_ros.nodes.latency_stats import LatencyWindow, TickClock


def test_percentiles_over_the_last_samples_only():
    window = LatencyWindow(size=100)
    assert math.isnan(window.percentile(50))
    for value in range(1000):
        window.add(float(value))
    assert len(window) == 100
    assert window.percentile(50) == pytest.approx(949.5)
    assert window.percentile(99) == pytest.approx(998.01)


def test_rate_and_missed_ticks():
    clock = TickClock(period_s=0.1)
    for k in range(11):
        clock.tick(k * 0.1)
    assert clock.rate_hz == pytest.approx(10.0)
    assert clock.missed_ticks == 0
    clock.tick(1.3)  # ticks 11 and 12 never ran
    assert clock.missed_ticks == 2
    clock.tick(1.44)  # tick 14, 0.04 s late: late, not missed
    assert clock.missed_ticks == 2


def test_a_late_tick_is_not_a_missed_one():
    clock = TickClock(period_s=0.05)
    clock.tick(0.0)
    clock.tick(0.074)  # tick 1, 24 ms late
    clock.tick(0.100)  # tick 2 on time: the timer kept its phase
    assert clock.missed_ticks == 0
