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
    """Achieved rate and missed ticks of a periodic timer, from the start times of its ticks."""

    def __init__(self, period_s: float, window: int = 50) -> None:
        self.period_s = period_s
        self.missed_ticks = 0
        self._starts_s: deque[float] = deque(maxlen=window)

    def tick(self, now_s: float) -> None:
        """Record a tick start; a gap of k periods (rounded) counts k - 1 missed ticks."""
        if self._starts_s:
            periods = round((now_s - self._starts_s[-1]) / self.period_s)
            self.missed_ticks += max(0, periods - 1)
        self._starts_s.append(now_s)

    @property
    def rate_hz(self) -> float:
        """Ticks per second over the window; NaN until two ticks are known."""
        if len(self._starts_s) < 2 or self._starts_s[-1] == self._starts_s[0]:
            return float("nan")
        return (len(self._starts_s) - 1) / (self._starts_s[-1] - self._starts_s[0])
