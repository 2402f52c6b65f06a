"""RT-1 policy loop without ROS: newest frame -> tokens -> 6-frame cache -> transformer -> Action.

One `step` encodes only the newest frame; frames already in the cache are never encoded again.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rt_ros.runtime.action import Action
from rt_ros.runtime.action_codec import ActionTokenCodec
from rt_ros.runtime.action_space import ActionSpace
from rt_ros.runtime.errors import ConfigError, FrameError, InstructionError
from rt_ros.runtime.frame_preprocess import resize_frame
from rt_ros.runtime.manifest import (
    CURRENT_STEP_INPUT,
    EMBEDDING_INPUT,
    FRAME_TOKENS,
    IMAGE_INPUT,
    LOGITS_OUTPUT,
)
from rt_ros.runtime.model_bundle import ModelBundle
from rt_ros.runtime.onnx_session import SessionConfig
from rt_ros.runtime.token_cache import FrameTokenCache


@dataclass(frozen=True)
class StepTimings:
    """Wall time of each stage of one policy step, in milliseconds."""

    preprocess_ms: float = 0.0
    encode_ms: float = 0.0
    transformer_ms: float = 0.0
    decode_ms: float = 0.0

    @property
    def total_ms(self) -> float:
        return self.preprocess_ms + self.encode_ms + self.transformer_ms + self.decode_ms


class _Stopwatch:
    """Laps in milliseconds from one monotonic clock."""

    def __init__(self) -> None:
        self._last_ns = time.perf_counter_ns()

    def lap_ms(self) -> float:
        now_ns = time.perf_counter_ns()
        elapsed_ms = (now_ns - self._last_ns) / 1e6
        self._last_ns = now_ns
        return elapsed_ms


class Policy:
    """RT-1 inference over a bundle: `reset(instruction)`, then `step(frame, stamp)` per tick."""

    def __init__(
        self,
        bundle: ModelBundle,
        max_history_gap_s: float = math.inf,
        action_space: ActionSpace | None = None,
    ) -> None:
        self.bundle = bundle
        manifest = bundle.manifest
        self.action_space = action_space or manifest.action_space
        own = manifest.action_space
        if (len(self.action_space.dimensions), self.action_space.num_bins) != (
            len(own.dimensions),
            own.num_bins,
        ):
            raise ConfigError(
                f"action_space: profile {self.action_space.name} has "
                f"{len(self.action_space.dimensions)} dimensions x {self.action_space.num_bins} "
                f"bins but the bundle predicts {len(own.dimensions)} x {own.num_bins}"
            )
        self.codec = ActionTokenCodec(self.action_space)
        self.cache = FrameTokenCache(
            manifest.history_length,
            manifest.tokens_per_frame,
            manifest.token_dim,
            max_history_gap_s,
        )
        self.instruction: str | None = None
        self._embedding: np.ndarray | None = None
        self._current_step = np.zeros((), np.int64)
        self._last_action: Action | None = None
        self.last_timings = StepTimings()
        # The action logits [dimensions, bins] of the last step run (agreement between backends).
        self.last_logits: np.ndarray | None = None
        self.frames_encoded = 0

    @classmethod
    def from_bundle(
        cls,
        path: Path | str,
        session_config: SessionConfig | None = None,
        max_history_gap_s: float = math.inf,
        action_space: ActionSpace | None = None,
    ) -> Policy:
        """Load and check a bundle folder; `action_space` overrides the manifest's profile."""
        return cls(ModelBundle.load(path, session_config), max_history_gap_s, action_space)

    @property
    def image_size_px(self) -> tuple[int, int]:
        """(height, width) of the frames the model takes."""
        return self.bundle.manifest.image.height_px, self.bundle.manifest.image.width_px

    def reset(self, instruction: str) -> None:
        """Start an episode for an instruction: embed it (cached per string), empty the history."""
        embedding = self.bundle.instruction_encoder.encode(instruction)
        self._embedding = np.ascontiguousarray(embedding, dtype=np.float32)[np.newaxis]
        self.instruction = instruction.strip()
        self.cache.reset()
        self._last_action = None

    def step(self, rgb_frame: np.ndarray, stamp_s: float) -> Action:
        """One control tick on the newest frame (HxWx3 uint8 RGB, any size) taken at `stamp_s`.

        The same stamp again returns the action already computed for that frame without running
        the model: a frame is never encoded twice.
        """
        if self._embedding is None:
            raise InstructionError("no instruction: call reset(instruction) before step()")
        if self._last_action is not None and stamp_s == self.cache.newest_stamp_s:
            self.last_timings = StepTimings()
            return self._last_action
        if not math.isfinite(stamp_s):
            raise FrameError(f"frame stamp must be finite, got {stamp_s}")
        newest = self.cache.newest_stamp_s
        if newest is not None and stamp_s < newest:
            raise FrameError(
                f"frame stamp {stamp_s:.6f} s is older than the newest {newest:.6f} s"
            )
        watch = _Stopwatch()
        image = resize_frame(rgb_frame, *self.image_size_px)
        preprocess_ms = watch.lap_ms()
        (tokens,) = self.bundle.frame_encoder.run(
            {IMAGE_INPUT: image, EMBEDDING_INPUT: self._embedding}, [FRAME_TOKENS]
        )
        self.frames_encoded += 1
        self.cache.append(tokens, stamp_s)
        encode_ms = watch.lap_ms()
        self._current_step[...] = self.cache.current_step
        (logits,) = self.bundle.policy.run(
            {FRAME_TOKENS: self.cache.window(), CURRENT_STEP_INPUT: self._current_step},
            [LOGITS_OUTPUT],
        )
        transformer_ms = watch.lap_ms()
        self.last_logits = logits[0]
        action = self.codec.decode_logits(logits[0])
        self.last_timings = StepTimings(preprocess_ms, encode_ms, transformer_ms, watch.lap_ms())
        self._last_action = action
        return action
