"""`rt-ros train-bench`: what a training step costs, side by side in one process.

Four ways to train on the same store: windows built from frames encoded once per chunk (shared)
or every window's frames encoded on their own (naive, RT-1's batching), each in float32 and under
bfloat16 autocast. They alternate step by step so that machine noise hits them alike; the cost
that matters is per window (one training sample), the encoder's per encoded frame.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from rt_ros.model.rt1 import RT1
from rt_ros.train.trainer import _forward
from rt_ros.train.training_store import TrainingStore
from rt_ros.train.windowed_model import WindowedRT1
from rt_ros.train.windows import plan_chunks


@dataclass(frozen=True)
class Variant:
    name: str
    windows_per_chunk: int
    chunks_per_batch: int
    precision: str


VARIANTS = (
    Variant("shared fp32", 8, 4, "fp32"),
    Variant("shared bf16", 8, 4, "bf16"),
    Variant("naive fp32", 1, 8, "fp32"),
    Variant("naive bf16", 1, 8, "bf16"),
)


@dataclass
class VariantResult:
    variant: Variant
    step_s: list[float]
    frames: list[int]
    windows: list[int]

    @property
    def ms_per_window(self) -> float:
        return 1000 * float(np.median(np.array(self.step_s) / np.array(self.windows)))

    @property
    def ms_per_frame(self) -> float:
        return 1000 * float(np.median(np.array(self.step_s) / np.array(self.frames)))


def run_train_benchmark(
    store: TrainingStore,
    preset: str,
    steps: int,
    warmup: int = 2,
    on_step: Callable[[], None] | None = None,
) -> list[VariantResult]:
    """Time `steps` optimiser steps of every variant (after `warmup` each), interleaved."""
    model = RT1.from_preset(preset, seed=0).train()
    module = WindowedRT1(model)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    episodes = store.select("train")
    history = model.preset.history_length
    rng = np.random.default_rng(0)
    plans = {v.name: plan_chunks(episodes, history, v.windows_per_chunk) for v in VARIANTS}
    results = {v.name: VariantResult(v, [], [], []) for v in VARIANTS}
    for round_index in range(warmup + steps):
        for variant in VARIANTS:
            plan = plans[variant.name]
            chunks = [plan[i] for i in rng.choice(len(plan), variant.chunks_per_batch)]
            started = time.perf_counter()
            loss, _, _ = _forward(
                module, store, chunks, history, torch.device("cpu"), variant.precision
            )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            elapsed = time.perf_counter() - started
            if round_index >= warmup:
                result = results[variant.name]
                result.step_s.append(elapsed)
                result.frames.append(sum(chunk.length for chunk in chunks))
                result.windows.append(sum(max(1, c.length - history + 1) for c in chunks))
        if on_step is not None:
            on_step()
    return list(results.values())
