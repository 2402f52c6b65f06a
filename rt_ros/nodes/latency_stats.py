"""Rolling latency and rate statistics for /diagnostics (no ROS here)."""

from __future__ import annotations

from collections import deque

import numpy as np


class LatencyWindow:
    """The last `size` samples of one latency, in milliseconds, with percentiles."""

    def __init__(self, size: int = 200) -> None:
        self._samples: deque[float] = deque(maxlen=size)

    def add(self, value_ms: float) -> None:
        self._samples.append(value_ms)

    def __len__(self) -> int:
        return len(self._samples)

    def percentile(self, q: float) -> float:
        """The q-th percentile in ms; NaN while empty."""
        return self.copy().percentile(q)

    def copy(self) -> Samples:
        """The current samples, detached: percentiles of a copy need no lock on the window."""
        return Samples(np.fromiter(self._samples, float, len(self._samples)))


class Samples:
    """A fixed set of latency samples (ms)."""

    def __init__(self, values_ms: np.ndarray) -> None:
        self.values_ms = values_ms

    def percentile(self, q: float) -> float:
        """The q-th percentile in ms; NaN when there are no samples."""
        if self.values_ms.size == 0:
            return float("nan")
        return float(np.percentile(self.values_ms, q))


class TickClock:
    """Achieved rate and missed ticks of a periodic timer, from the start times of its ticks.

    ROS timers keep their phase: tick k is due at t0 + k * period, and a callback that runs late
    does not move later ticks. So the index of each tick is round((t - t0) / period), and a missed
    tick is an index that never ran; a late tick is not a missed one.
    """

    def __init__(self, period_s: float, window: int = 50) -> None:
        self.period_s = period_s
        self.missed_ticks = 0
        self._first_s: float | None = None
        self._count = 0
        self._starts_s: deque[float] = deque(maxlen=window)

    def tick(self, now_s: float) -> None:
        """Record the start of a tick."""
        if self._first_s is None:
            self._first_s = now_s
        self._count += 1
        index = round((now_s - self._first_s) / self.period_s)
        self.missed_ticks = max(self.missed_ticks, index + 1 - self._count)
        self._starts_s.append(now_s)

    @property
    def rate_hz(self) -> float:
        """Ticks per second over the window; NaN until two ticks are known."""
        if len(self._starts_s) < 2 or self._starts_s[-1] == self._starts_s[0]:
            return float("nan")
        return (len(self._starts_s) - 1) / (self._starts_s[-1] - self._starts_s[0])
