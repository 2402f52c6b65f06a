"""Backends, and cached vs naive policy steps, measured side by side in one run (`rt-ros bench`).

The cached step is `Policy.step`: encode the newest frame only, then the transformer. The naive
step is what a policy without the token cache does: re-encode all 6 frames of the window every
tick. Every backend (ONNX Runtime, OpenVINO f32/bf16 ...) runs its cached step on the same camera-
sized frames, the reference backend its naive step too; their steps alternate within each tick, in
an order that rotates from tick to tick, so machine noise hits all alike.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Mapping, Sequence
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
NAIVE = "naive"


@dataclass
class LatencySeries:
    """Per-stage samples in milliseconds."""

    samples: dict[str, list[float]] = field(default_factory=lambda: {s: [] for s in STAGES})

    def add(self, timings: StepTimings) -> None:
        for stage in STAGES:
            self.samples[stage].append(getattr(timings, stage))

    def percentile(self, stage: str, q: float) -> float:
        return float(np.percentile(self.samples[stage], q))


def _summary(series: LatencySeries) -> dict:
    return {
        stage: {
            "p50": round(series.percentile(stage, 50), 3),
            "p99": round(series.percentile(stage, 99), 3),
        }
        for stage in STAGES
    }


@dataclass
class BenchResult:
    """One bundle's cached series per backend (the first is the reference) and the reference's
    naive series, with what ran them."""

    name: str
    backends: dict[str, str]  # label -> what runs it (backend, release, precision, threads)
    frame_shape: tuple[int, int, int]
    steps: int
    cached: dict[str, LatencySeries]
    naive: LatencySeries

    @property
    def reference(self) -> str:
        return next(iter(self.cached))

    @property
    def speedup_p50(self) -> float:
        """Naive p50 / cached p50 of the whole step, on the reference backend."""
        reference = self.cached[self.reference]
        return self.naive.percentile("total_ms", 50) / reference.percentile("total_ms", 50)

    def ratio_to_reference_p50(self, label: str) -> float:
        """Reference p50 / this backend's p50 of the cached step: >1 is faster."""
        reference = self.cached[self.reference].percentile("total_ms", 50)
        return reference / self.cached[label].percentile("total_ms", 50)

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "backends": self.backends,
            "reference": self.reference,
            "frame_shape": list(self.frame_shape),
            "steps": self.steps,
            "cached": {label: _summary(series) for label, series in self.cached.items()},
            "naive": _summary(self.naive),
            "speedup_p50": round(self.speedup_p50, 2),
            "ratio_to_reference_p50": {
                label: round(self.ratio_to_reference_p50(label), 2) for label in self.cached
            },
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
    policies: Mapping[str, Policy],
    steps: int = 60,
    frame_shape: tuple[int, int, int] = (480, 640, 3),
    seed: int = 0,
    on_step: Callable[[], None] | None = None,
) -> BenchResult:
    """Alternate every backend's cached step and the first (reference) backend's naive step on
    the same random camera frames; warm-up not counted.

    `policies`: label -> a Policy over the same bundle, each on its own backend. Timing starts
    once the window is full (history_length frames), the steady state of a robot.
    """
    if not policies:
        raise ValueError("run_benchmark needs at least one policy")
    reference = next(iter(policies.values()))
    history = reference.bundle.manifest.history_length
    generator = np.random.default_rng(seed)
    frames: Sequence[np.ndarray] = [
        generator.integers(0, 256, frame_shape, dtype=np.uint8) for _ in range(8)
    ]
    for policy in policies.values():
        policy.reset(BENCH_INSTRUCTION)
    embedding = np.ascontiguousarray(
        reference.bundle.instruction_encoder.encode(BENCH_INSTRUCTION), np.float32
    )[np.newaxis]
    naive = NaiveStepper(reference)
    runners: list[Callable[[np.ndarray, int], tuple[str, StepTimings]]] = [
        functools.partial(_cached_step, label, policy) for label, policy in policies.items()
    ]
    runners.append(lambda frame, _tick: (NAIVE, naive.step(frame, embedding)[1]))
    series = {label: LatencySeries() for label in (*policies, NAIVE)}
    for tick in range(history + steps):
        frame = frames[tick % len(frames)]
        start = tick % len(runners)  # who goes first rotates: no backend always follows another
        for runner in runners[start:] + runners[:start]:
            label, timings = runner(frame, tick)
            if tick >= history:
                series[label].add(timings)
        if tick >= history and on_step is not None:
            on_step()
    naive_series = series.pop(NAIVE)
    backends = {
        label: policy.bundle.frame_encoder.description for label, policy in policies.items()
    }
    return BenchResult(name, backends, frame_shape, steps, series, naive_series)


def _cached_step(
    label: str, policy: Policy, frame: np.ndarray, tick: int
) -> tuple[str, StepTimings]:
    policy.step(frame, stamp_s=float(tick))
    return label, policy.last_timings
