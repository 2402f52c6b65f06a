"""RT-1 inference that holds no episode: each step brings the tokens of the frames before it.

The policy server runs this, so any replica can answer any robot's step (no sticky routing): the
client keeps its window of frame tokens, sends it with the newest frame, and gets back the new
frame's tokens to append. The window is laid out as `FrameTokenCache` lays it out (frame t of an
episode at slot t until the window is full), so a step here is the step `Policy` would take.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
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
class _Prepared:
    """One step made ready for the graphs; `index`: its place among the batch's items."""

    index: int
    history: np.ndarray  # [frames, tokens_per_frame, token_dim] float32
    embedding: np.ndarray  # [embedding_dim]
    image: np.ndarray  # [1, H, W, 3] uint8

    @property
    def frames(self) -> int:
        return self.history.shape[0]


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

    def step(self, instruction: str, rgb_frame: np.ndarray, history: np.ndarray) -> WindowStep:
        """Encode the newest frame, run the transformer on history + it, decode the action."""
        started_ns = time.perf_counter_ns()
        prepared = self._prepare(WindowInput(instruction, rgb_frame, history))
        preprocess_ms = (time.perf_counter_ns() - started_ns) / 1e6
        (step,) = self._run_group([prepared], preprocess_ms)
        return step

    def step_batch(self, items: Sequence[WindowInput]) -> Iterator[WindowStep | RtRosError]:
        """Several robots' steps, in order: per item its WindowStep, or the error that refused
        it (the others still run); each equals `step` on the item. Where the graphs batch, steps
        with the same number of earlier frames run as one batch (they share the transformer's
        current step) and each item's timings are its batch's; elsewhere the steps run in turn,
        each yielded as soon as it is done."""
        if not self.batches:
            for item in items:
                try:
                    yield self.step(item.instruction, item.rgb_frame, item.history)
                except RtRosError as error:
                    yield error
            return
        results: list[WindowStep | RtRosError | None] = []
        groups: dict[int, list[_Prepared]] = {}
        started_ns = time.perf_counter_ns()
        for index, item in enumerate(items):
            try:
                prepared = self._prepare(item, index)
            except RtRosError as error:
                results.append(error)
                continue
            results.append(None)  # filled by its batch below
            groups.setdefault(prepared.frames, []).append(prepared)
        preprocess_ms = (time.perf_counter_ns() - started_ns) / 1e6 / max(1, len(items))
        for group in groups.values():
            for prepared, step in zip(group, self._run_group(group, preprocess_ms), strict=True):
                results[prepared.index] = step
        yield from results

    def _prepare(self, item: WindowInput, index: int = 0) -> _Prepared:
        """The checked history, the instruction's embedding and the resized frame of one step."""
        history = self.check_history(item.history)
        embedding = self.bundle.instruction_encoder.encode(item.instruction)
        image = resize_frame(item.rgb_frame, *self.image_size_px)
        return _Prepared(index, history, embedding, image)

    def _run_group(self, group: list[_Prepared], preprocess_ms: float) -> list[WindowStep]:
        """One batch through both graphs: steps that all hold the same number of earlier frames."""
        frames = group[0].frames
        started_ns = time.perf_counter_ns()
        images = np.concatenate([prepared.image for prepared in group])  # each [1, H, W, 3]
        embeddings = np.stack([prepared.embedding for prepared in group]).astype(np.float32)
        (tokens,) = self.bundle.frame_encoder.run(
            {IMAGE_INPUT: images, EMBEDDING_INPUT: embeddings}, [FRAME_TOKENS]
        )
        encoded_ns = time.perf_counter_ns()
        window = np.zeros((len(group), self.history_length, *self.token_shape), np.float32)
        for row, prepared in enumerate(group):
            window[row, :frames] = prepared.history
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
