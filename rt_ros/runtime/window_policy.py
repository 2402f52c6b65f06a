"""RT-1 inference that holds no episode: each step brings the tokens of the frames before it.

The policy server runs this, so any replica can answer any robot's step (no sticky routing): the
client keeps its window of frame tokens, sends it with the newest frame, and gets back the new
frame's tokens to append. The window is laid out as `FrameTokenCache` lays it out (frame t of an
episode at slot t until the window is full), so a step here is the step `Policy` would take.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rt_ros.runtime.action import Action
from rt_ros.runtime.action_codec import ActionTokenCodec
from rt_ros.runtime.errors import RtRosError, TokenWindowError
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
from rt_ros.runtime.policy import StepTimings


@dataclass(frozen=True)
class WindowInput:
    """One robot's step: its instruction, newest frame (RGB uint8 HxWx3) and earlier tokens."""

    instruction: str
    rgb_frame: np.ndarray
    history: np.ndarray


@dataclass(frozen=True)
class WindowStep:
    """What one stateless step returns: the new frame's tokens and the action."""

    frame_tokens: np.ndarray  # [tokens_per_frame, token_dim] float32
    action: Action
    timings: StepTimings


class WindowPolicy:
    """Steps on (instruction, newest frame, tokens of up to history_length - 1 earlier frames).

    Not thread-safe (the graphs' bound buffers are shared): one thread runs all steps.
    """

    def __init__(self, bundle: ModelBundle) -> None:
        self.bundle = bundle
        manifest = bundle.manifest
        self.action_space = manifest.action_space
        self.codec = ActionTokenCodec(self.action_space)
        self.history_length = manifest.history_length
        self.token_shape = (manifest.tokens_per_frame, manifest.token_dim)
        self._window = np.zeros((1, self.history_length, *self.token_shape), np.float32)
        self._current_step = np.zeros((), np.int64)

    @classmethod
    def from_bundle(
        cls, path: Path | str, session_config: SessionConfig | None = None
    ) -> WindowPolicy:
        return cls(ModelBundle.load(path, session_config))

    @property
    def image_size_px(self) -> tuple[int, int]:
        """(height, width) of the frames the model takes."""
        return self.bundle.manifest.image.height_px, self.bundle.manifest.image.width_px

    def check_history(self, history: np.ndarray) -> np.ndarray:
        """The earlier frames' tokens as float32 [k, tokens_per_frame, token_dim], k < history
        length, all finite; TokenWindowError naming what is off."""
        if not isinstance(history, np.ndarray) or history.dtype not in (np.float16, np.float32):
            raise TokenWindowError(
                f"history: tokens must be a float16 or float32 array, got "
                f"{getattr(history, 'dtype', type(history).__name__)}"
            )
        most = self.history_length - 1
        if history.ndim != 3 or history.shape[1:] != self.token_shape:
            raise TokenWindowError(
                f"history: shape must be (frames, {self.token_shape[0]}, {self.token_shape[1]}), "
                f"got {history.shape}"
            )
        if history.shape[0] > most:
            raise TokenWindowError(
                f"history: at most {most} earlier frames (history_length "
                f"{self.history_length} with the new one), got {history.shape[0]}"
            )
        if not np.isfinite(history).all():
            raise TokenWindowError("history: tokens must be finite (NaN or infinity found)")
        return history.astype(np.float32, copy=False)

    @property
    def batches(self) -> bool:
        """Whether several robots' steps run as one batch through the graphs (else in turn)."""
        return self.bundle.frame_encoder.batches and self.bundle.policy.batches

    def step_batch(self, items: Sequence[WindowInput]) -> list[WindowStep | RtRosError]:
        """Several robots' steps: per item its WindowStep, or the error that refused it (the
        others still run). Where the graphs batch, steps with the same number of earlier frames
        run as one batch (they share the transformer's current step); each item's timings are
        its batch's. The results equal those of `step` on each item."""
        if not self.batches:
            return [self.step_or_error(item) for item in items]
        results: list[WindowStep | RtRosError | None] = [None] * len(items)
        groups: dict[int, list[tuple[int, np.ndarray, np.ndarray, np.ndarray]]] = {}
        started_ns = time.perf_counter_ns()
        for index, item in enumerate(items):
            try:
                history = self.check_history(item.history)
                embedding = self.bundle.instruction_encoder.encode(item.instruction)
                image = resize_frame(item.rgb_frame, *self.image_size_px)
            except RtRosError as error:
                results[index] = error
                continue
            groups.setdefault(history.shape[0], []).append((index, history, embedding, image))
        preprocess_ms = (time.perf_counter_ns() - started_ns) / 1e6 / max(1, len(items))
        for frames, group in groups.items():
            steps = self._run_group(frames, group, preprocess_ms)
            for entry, step in zip(group, steps, strict=True):
                results[entry[0]] = step
        return results

    def step_or_error(self, item: WindowInput) -> WindowStep | RtRosError:
        """`step` on one item; the error that refused it instead of raising it."""
        try:
            return self.step(item.instruction, item.rgb_frame, item.history)
        except RtRosError as error:
            return error

    def _run_group(self, frames: int, group: list, preprocess_ms: float) -> list[WindowStep]:
        """One batch of steps that all hold `frames` earlier frames."""
        started_ns = time.perf_counter_ns()
        images = np.concatenate([entry[3] for entry in group])  # each [1, H, W, 3]
        embeddings = np.stack([entry[2] for entry in group]).astype(np.float32, copy=False)
        (tokens,) = self.bundle.frame_encoder.run(
            {IMAGE_INPUT: images, EMBEDDING_INPUT: embeddings}, [FRAME_TOKENS]
        )
        encoded_ns = time.perf_counter_ns()
        window = np.zeros((len(group), self.history_length, *self.token_shape), np.float32)
        for row, entry in enumerate(group):
            window[row, :frames] = entry[1]
        window[:, frames] = tokens
        (logits,) = self.bundle.policy.run(
            {FRAME_TOKENS: window, CURRENT_STEP_INPUT: np.array(frames, np.int64)},
            [LOGITS_OUTPUT],
        )
        transformer_ns = time.perf_counter_ns()
        actions = [self.codec.decode_logits(row) for row in logits]
        done_ns = time.perf_counter_ns()
        timings = StepTimings(
            preprocess_ms,
            (encoded_ns - started_ns) / 1e6,
            (transformer_ns - encoded_ns) / 1e6,
            (done_ns - transformer_ns) / 1e6,
        )
        return [
            WindowStep(np.array(tokens[row], np.float32), action, timings)
            for row, action in enumerate(actions)
        ]

    def step(self, instruction: str, rgb_frame: np.ndarray, history: np.ndarray) -> WindowStep:
        """Encode the newest frame, run the transformer on history + it, decode the action."""
        history = self.check_history(history)
        started_ns = time.perf_counter_ns()
        embedding = self.bundle.instruction_encoder.encode(instruction)[np.newaxis]
        image = resize_frame(rgb_frame, *self.image_size_px)
        preprocess_ns = time.perf_counter_ns()
        (tokens,) = self.bundle.frame_encoder.run(
            {IMAGE_INPUT: image, EMBEDDING_INPUT: np.ascontiguousarray(embedding, np.float32)},
            [FRAME_TOKENS],
        )
        encoded_ns = time.perf_counter_ns()
        frames = history.shape[0]
        self._window.fill(0.0)
        self._window[0, :frames] = history
        self._window[0, frames] = tokens[0]
        self._current_step[...] = frames
        (logits,) = self.bundle.policy.run(
            {FRAME_TOKENS: self._window, CURRENT_STEP_INPUT: self._current_step}, [LOGITS_OUTPUT]
        )
        transformer_ns = time.perf_counter_ns()
        action = self.codec.decode_logits(logits[0])
        done_ns = time.perf_counter_ns()
        timings = StepTimings(
            (preprocess_ns - started_ns) / 1e6,
            (encoded_ns - preprocess_ns) / 1e6,
            (transformer_ns - encoded_ns) / 1e6,
            (done_ns - transformer_ns) / 1e6,
        )
        return WindowStep(np.array(tokens[0], np.float32), action, timings)
