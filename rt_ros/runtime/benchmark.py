"""Cached vs naive policy steps, measured side by side in one run (`rt-ros bench`).

The cached step is `Policy.step`: encode the newest frame only, then the transformer. The naive
step is what a policy without the token cache does: re-encode all 6 frames of the window every
tick. Both use the same ONNX sessions and the same camera-sized frames; their steps alternate, so
machine noise hits both alike.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from rt_ros.runtime.action import Action
from rt_ros.runtime.frame_preprocess import resize_frame
from rt_ros.runtime.manifest import (
    CURRENT_STEP_INPUT,
    EMBEDDING_INPUT,
    FRAME_TOKENS,
    IMAGE_INPUT,
    LOGITS_OUTPUT,
)
from rt_ros.runtime.policy import Policy, StepTimings

STAGES = ("preprocess_ms", "encode_ms", "transformer_ms", "decode_ms", "total_ms")
BENCH_INSTRUCTION = "pick coke can"


@dataclass
class LatencySeries:
    """Per-stage samples in milliseconds."""

    samples: dict[str, list[float]] = field(default_factory=lambda: {s: [] for s in STAGES})

    def add(self, timings: StepTimings) -> None:
        for stage in STAGES:
            self.samples[stage].append(getattr(timings, stage))

    def percentile(self, stage: str, q: float) -> float:
        return float(np.percentile(self.samples[stage], q))


@dataclass
class BenchResult:
    """One bundle's cached and naive series, with what ran them."""

    name: str
    providers: dict[str, str]
    frame_shape: tuple[int, int, int]
    steps: int
    cached: LatencySeries
    naive: LatencySeries

    @property
    def speedup_p50(self) -> float:
        """Naive p50 / cached p50 of the whole step."""
        return self.naive.percentile("total_ms", 50) / self.cached.percentile("total_ms", 50)

    def to_dict(self) -> dict:
        def summary(series: LatencySeries) -> dict:
            return {
                stage: {
                    "p50": round(series.percentile(stage, 50), 3),
                    "p99": round(series.percentile(stage, 99), 3),
                }
                for stage in STAGES
            }

        return {
            "name": self.name,
            "providers": self.providers,
            "frame_shape": list(self.frame_shape),
            "steps": self.steps,
            "cached": summary(self.cached),
            "naive": summary(self.naive),
            "speedup_p50": round(self.speedup_p50, 2),
        }


class NaiveStepper:
    """A policy step without the token cache: every tick re-encodes all frames of the window."""

    def __init__(self, policy: Policy) -> None:
        self._policy = policy
        self._frames: list[np.ndarray] = []
        manifest = policy.bundle.manifest
        self._window = np.zeros(
            (1, manifest.history_length, manifest.tokens_per_frame, manifest.token_dim), np.float32
        )

    def step(self, rgb_frame: np.ndarray, embedding: np.ndarray) -> tuple[Action, StepTimings]:
        bundle = self._policy.bundle
        start = time.perf_counter_ns()
        self._frames.append(resize_frame(rgb_frame, *self._policy.image_size_px))
        del self._frames[: -bundle.manifest.history_length]
        preprocessed = time.perf_counter_ns()
        for slot, image in enumerate(self._frames):
            (tokens,) = bundle.frame_encoder.run(
                {IMAGE_INPUT: image, EMBEDDING_INPUT: embedding}, [FRAME_TOKENS]
            )
            self._window[0, slot] = tokens[0]
        encoded = time.perf_counter_ns()
        current = np.array(len(self._frames) - 1, np.int64)
        (logits,) = bundle.policy.run(
            {FRAME_TOKENS: self._window, CURRENT_STEP_INPUT: current}, [LOGITS_OUTPUT]
        )
        inferred = time.perf_counter_ns()
        action = self._policy.codec.decode_logits(logits[0])
        decoded = time.perf_counter_ns()
        return action, StepTimings(
            (preprocessed - start) / 1e6,
            (encoded - preprocessed) / 1e6,
            (inferred - encoded) / 1e6,
            (decoded - inferred) / 1e6,
        )


def run_benchmark(
    name: str,
    policy: Policy,
    steps: int = 60,
    frame_shape: tuple[int, int, int] = (480, 640, 3),
    seed: int = 0,
    on_step: Callable[[], None] | None = None,
) -> BenchResult:
    """Alternate cached and naive steps on the same random camera frames; warm-up not counted.

    Timing starts once the window is full (history_length frames), the steady state of a robot.
    """
    history = policy.bundle.manifest.history_length
    generator = np.random.default_rng(seed)
    frames: Sequence[np.ndarray] = [
        generator.integers(0, 256, frame_shape, dtype=np.uint8) for _ in range(8)
    ]
    policy.reset(BENCH_INSTRUCTION)
    embedding = np.ascontiguousarray(
        policy.bundle.instruction_encoder.encode(BENCH_INSTRUCTION), np.float32
    )[np.newaxis]
    naive = NaiveStepper(policy)
    cached_series, naive_series = LatencySeries(), LatencySeries()
    for tick in range(history + steps):
        frame = frames[tick % len(frames)]
        policy.step(frame, stamp_s=float(tick))
        _, naive_timings = naive.step(frame, embedding)
        if tick >= history:
            cached_series.add(policy.last_timings)
            naive_series.add(naive_timings)
            if on_step is not None:
                on_step()
    return BenchResult(
        name, policy.bundle.providers, frame_shape, steps, cached_series, naive_series
    )
